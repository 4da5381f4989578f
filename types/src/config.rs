//! Node configuration: one TOML file, every setting overridable as `ARCA_<SECTION>_<KEY>`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the configuration could not be loaded; names the file or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

/// The whole configuration of one node. `arca config example` prints it with every default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data: DataConfig,
    pub listen: ListenConfig,
    pub cluster: ClusterConfig,
    pub tls: TlsConfig,
    pub api: ApiConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    pub search: SearchConfig,
}

/// `[storage]`: where packs, indexes and manifests live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Empty = the directory `<data.dir>/objects`; `file:///path` = another local directory;
    /// `s3://bucket/prefix` = an S3 bucket.
    pub url: String,
    /// S3 endpoint for S3-compatible servers, e.g. `http://127.0.0.1:9000`; empty = AWS.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    /// File holding the S3 secret access key (kept out of the configuration file).
    pub secret_access_key_file: String,
    /// Allow plain HTTP to the endpoint (only for servers on a trusted network, e.g. loopback).
    pub allow_http: bool,
    /// Manifest entries (about 150 bytes each) of other stores a node keeps in memory to confirm that
    /// a message is already archived in an older store of its tenant (dedupe across stores).
    pub identity_cache_entries: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: String::new(),
            endpoint: String::new(),
            region: String::new(),
            access_key_id: String::new(),
            secret_access_key_file: String::new(),
            allow_http: false,
            identity_cache_entries: 1_000_000,
        }
    }
}

/// `[data]`: where the node keeps its identity, Raft log, snapshots and caches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub dir: PathBuf,
}

/// `[listen]`: addresses of the listeners; an empty string switches an optional listener off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    pub cluster: String,
    pub api: String,
    pub web: String,
    pub http: String,
    pub imap: String,
    pub imaps: String,
}

/// `[cluster]`: membership and the shared secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// File holding the cluster secret; empty means `<data.dir>/cluster.secret`.
    pub secret_file: String,
    /// Address other nodes use to reach this node's cluster listener; empty derives it from `listen.cluster`.
    pub advertise: String,
    /// Address of the API listener that other nodes and clients are told about; empty derives it.
    pub advertise_api: String,
    /// Local IP address outgoing cluster connections are made from; empty lets the system choose.
    pub source_address: String,
    /// Joining nodes are promoted to voters automatically while the cluster has fewer voters than this.
    pub max_voters: usize,
    /// Raft heartbeat interval in milliseconds.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout in milliseconds (the upper bound is twice it).
    pub election_timeout_ms: u64,
    /// A new node gives up joining after this many milliseconds.
    pub join_timeout_ms: u64,
    /// A snapshot is built after this many log entries; older entries are then purged.
    pub snapshot_after_logs: u64,
    /// A node's lease on the stores it serves, in milliseconds: renewed through Raft every quarter of
    /// it; a node that has not renewed for longer (plus a margin) loses its stores to other nodes.
    pub lease_ms: u64,
}

/// `[tls]`: the certificate of the web, IMAP and API listeners; empty means a generated self-signed one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: String,
    pub key_file: String,
}

/// `[api]`: behaviour of the Administration API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// An invoked function that has not finished after this long answers `running` with a token.
    pub invoke_wait_ms: u64,
    /// Password verifications (argon2id) running at once on this node; more wait (bounded CPU).
    pub max_password_checks: usize,
    /// How long a login waits for a verification slot before it is refused with 503 naming the limit.
    pub password_check_wait_ms: u64,
    /// Failed logins for one user from one address before that pair is slowed down (backoff).
    pub login_failures_per_account_address: u32,
    /// Failed logins for one user from any address before the user is slowed down, except from
    /// addresses it logged in from successfully.
    pub login_failures_per_account: u32,
    /// Failed logins from one address for any users before that address is slowed down.
    pub login_failures_per_address: u32,
    /// Longest wait imposed after repeated failures (the backoff doubles from one second up to this).
    pub login_backoff_max_ms: u64,
    /// Failed logins are forgotten after this long without a new failure.
    pub login_failure_memory_ms: u64,
    /// Largest request body of an Administration API route (`/api/invoke/…`, `get-status`, …), bytes.
    pub max_request_bytes: u64,
    /// Largest value of one Administration API argument, bytes (after url-decoding).
    pub max_argument_bytes: u64,
}

/// `[log]`: diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `arca_raft=debug,info`; changeable at run time through
    /// `POST /api/log-level`.
    pub level: String,
    /// How log lines are written to stderr.
    pub format: LogFormat,
}

/// The shape of log lines (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event; colours only when stderr is a terminal; control characters in
    /// messages and fields escaped, so user input cannot forge a line.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[search]`: the bounds of one search request (invariant 7). A request over one is refused with a 4xx
/// answer naming the setting; a search that runs out of time is refused, not answered partially.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Largest body of `POST /api/data/search`, bytes (query text, filters, cursor).
    pub max_request_bytes: u64,
    /// Most words in one search: each word, wildcard and word of a phrase counts, in the query and
    /// in the From and To/Cc/Bcc boxes.
    pub max_terms: u32,
    /// Most wildcard terms (`*`, `?`) in one search.
    pub max_wildcards: u32,
    /// Longest wildcard term, in characters.
    pub max_wildcard_chars: u32,
    /// Most distinct indexed words one wildcard term may match in one index segment of a store.
    pub max_wildcard_expansion: u64,
    /// Largest page (`limit`) of a search or message list.
    pub max_results: u32,
    /// Time one search may take on a store, milliseconds; the receiving node waits this long plus
    /// a second for every store's answer and lists stores that did not answer as missing.
    pub timeout_ms: u64,
    /// Searches this node runs at once; further ones wait up to `timeout_ms` for a turn, then are
    /// refused with 503.
    pub max_concurrent: u32,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig { dir: PathBuf::from("./arca-data") }
    }
}
impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            cluster: "0.0.0.0:8460".into(),
            api: "127.0.0.1:8463".into(),
            web: "0.0.0.0:8462".into(),
            http: String::new(),
            imap: String::new(),
            imaps: String::new(),
        }
    }
}
impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            secret_file: String::new(),
            advertise: String::new(),
            advertise_api: String::new(),
            source_address: String::new(),
            max_voters: 3,
            heartbeat_ms: 250,
            election_timeout_ms: 1000,
            join_timeout_ms: 60_000,
            snapshot_after_logs: 5000,
            lease_ms: 4000,
        }
    }
}
impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            invoke_wait_ms: 1000,
            max_password_checks: 4,
            password_check_wait_ms: 2000,
            login_failures_per_account_address: 10,
            login_failures_per_account: 30,
            login_failures_per_address: 100,
            login_backoff_max_ms: 60_000,
            login_failure_memory_ms: 900_000,
            max_request_bytes: 1 << 20,
            max_argument_bytes: 64 << 10,
        }
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
    }
}
impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            max_request_bytes: 64 << 10,
            max_terms: 64,
            max_wildcards: 8,
            max_wildcard_chars: 64,
            max_wildcard_expansion: 100_000,
            max_results: 1000,
            timeout_ms: 10_000,
            max_concurrent: 16,
        }
    }
}

/// The documented configuration file with every default; `arca config example` prints it.
pub const EXAMPLE: &str = r#"# Arca node configuration. Every setting may also be given as an environment variable
# ARCA_<SECTION>_<KEY>, e.g. ARCA_DATA_DIR, ARCA_LISTEN_API, ARCA_CLUSTER_SECRET_FILE.
# Environment variables override this file; the values below are the defaults.

[data]
# Node identity, Raft log and snapshots, certificate, caches. Empty directory = new cluster or join.
dir = "./arca-data"

[listen]
# Raft and inter-node RPC (TLS, cluster secret).
cluster = "0.0.0.0:8460"
# Administration API and data API (HTTPS), /healthz, /readyz, /metrics.
api = "127.0.0.1:8463"
# Web Access (HTTPS).
web = "0.0.0.0:8462"
# Plain-HTTP redirect to Web Access; empty = off.
http = ""
# IMAP with STARTTLS and IMAP over TLS; empty = off (ports below 1024 need privileges).
imap = ""
imaps = ""

[cluster]
# File with the cluster secret; empty = <data.dir>/cluster.secret (created on first start).
secret_file = ""
# Address other nodes reach this node's cluster listener at; empty = listen.cluster
# (with 0.0.0.0 replaced by 127.0.0.1: set it on a multi-host cluster).
advertise = ""
# Address of this node's API listener as announced to the cluster; empty = listen.api.
advertise_api = ""
# Local IP address that outgoing cluster connections are made from; empty = chosen by the system.
source_address = ""
# Joining nodes become voters automatically while there are fewer voters than this.
max_voters = 3
heartbeat_ms = 250
election_timeout_ms = 1000
# A joining node gives up after this many milliseconds.
join_timeout_ms = 60000
# Build a Raft snapshot (and compact the log) after this many entries.
snapshot_after_logs = 5000
# Lease of a node on the stores it serves (ms), renewed through Raft every lease_ms/4. A node stops
# answering from its stores when its last renewal is older than lease_ms*3/4; other nodes take its
# stores over when they have not seen it renew for lease_ms*5/4 (failover without an operator).
lease_ms = 4000

[tls]
# PEM certificate chain and key for the web, IMAP and API listeners; empty = self-signed, generated once.
cert_file = ""
key_file = ""

[api]
# A function still running after this many milliseconds answers "running" with a token.
invoke_wait_ms = 1000
# Password verifications (argon2id, ~20 ms of CPU each) at once; further logins wait at most
# password_check_wait_ms and are then refused (503 naming api.max_password_checks). Logins whose
# password was verified in the last 5 minutes need no slot.
max_password_checks = 4
password_check_wait_ms = 2000
# Login throttling: after this many failed logins (per user and address, per user from addresses it
# never logged in from, per address) further attempts of that kind wait 1 s, 2 s, 4 s, ... up to
# login_backoff_max_ms and are refused (429 naming the limit) meanwhile. Failures are forgotten after
# login_failure_memory_ms without a new one.
login_failures_per_account_address = 10
login_failures_per_account = 30
login_failures_per_address = 100
login_backoff_max_ms = 60000
login_failure_memory_ms = 900000
# Largest request body of an Administration API route, and largest value of one argument (bytes);
# larger ones are refused with 413 / an error naming the setting.
max_request_bytes = 1048576
max_argument_bytes = 65536

[storage]
# Where packs, indexes and manifests live: empty = <data.dir>/objects; file:///path; s3://bucket/prefix.
url = ""
# For S3-compatible servers: endpoint (e.g. https://s3.example.net:9000; path-style requests); empty = AWS.
endpoint = ""
# Empty = us-east-1.
region = ""
# Access key id and the file holding the secret key: both or neither.
access_key_id = ""
secret_access_key_file = ""
# An http:// endpoint is refused unless this is true (only for a trusted network, e.g. loopback).
allow_http = false
# Manifest entries of older stores kept in memory (about 150 bytes each) to confirm that a message is
# archived already in another store of its tenant; the identity table itself is not bounded by this.
identity_cache_entries = 1000000

[log]
# A tracing filter, e.g. "info" or "arca_raft=debug,info"; change it at run time with
# POST /api/log-level (level=<filter>, administrators) on the node concerned.
level = "info"
# "text" (colours only when stderr is a terminal; control characters escaped) or "json" (one object a line).
format = "text"

[search]
# Bounds of one search request; a request over one is refused (400, 413 or 422) naming the setting.
# Largest body of POST /api/data/search, bytes.
max_request_bytes = 65536
# Most words in one search (each word, wildcard and word of a phrase; query and From/To boxes).
max_terms = 64
# Most wildcard terms in one search, and the longest one in characters.
max_wildcards = 8
max_wildcard_chars = 64
# Most distinct indexed words one wildcard may match in one index segment of a store.
max_wildcard_expansion = 100000
# Largest page of hits (limit) of a search or message list.
max_results = 1000
# Time a search may take on a store (ms); a search that takes longer is refused, not cut short.
timeout_ms = 10000
# Searches this node runs at once; more wait up to timeout_ms for a turn, then get 503.
max_concurrent = 16
"#;

impl Config {
    /// Loads the file (when given) and applies `ARCA_<SECTION>_<KEY>` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                let parsed: Config = toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
                to_table(&parsed)
            }
            None => to_table(&Config::default()),
        };
        for (var, raw) in env {
            let Some(rest) = var.strip_prefix("ARCA_") else { continue };
            let Some((section, key)) = find_setting(&value, rest) else { continue };
            let slot = value.get_mut(&section).and_then(|s| s.as_table_mut()).and_then(|t| t.get_mut(&key));
            if let Some(slot) = slot {
                *slot = match slot {
                    toml::Value::Integer(_) => {
                        toml::Value::Integer(raw.trim().parse().map_err(|_| ConfigError::Env {
                            var: var.clone(),
                            message: format!("'{raw}' is not a whole number"),
                        })?)
                    }
                    toml::Value::Boolean(_) => {
                        toml::Value::Boolean(raw.trim().parse().map_err(|_| ConfigError::Env {
                            var: var.clone(),
                            message: format!("'{raw}' is not true or false"),
                        })?)
                    }
                    _ => toml::Value::String(raw),
                };
            }
        }
        toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Env { var: "ARCA_*".into(), message: e.to_string() })
    }

    /// The cluster secret file: the configured one or `<data.dir>/cluster.secret`.
    pub fn secret_file(&self) -> PathBuf {
        if self.cluster.secret_file.is_empty() {
            self.data.dir.join("cluster.secret")
        } else {
            PathBuf::from(&self.cluster.secret_file)
        }
    }
}

fn to_table(config: &Config) -> toml::Table {
    match toml::Value::try_from(config) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    }
}

/// Maps `DATA_DIR` to (`data`, `dir`), `CLUSTER_SECRET_FILE` to (`cluster`, `secret_file`), and so on.
fn find_setting(table: &toml::Table, rest: &str) -> Option<(String, String)> {
    let lower = rest.to_ascii_lowercase();
    table.iter().find_map(|(section, inner)| {
        let key = lower.strip_prefix(section.as_str())?.strip_prefix('_')?;
        inner.as_table()?.contains_key(key).then(|| (section.clone(), key.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_matches_the_defaults() {
        let parsed: Config = toml::from_str(EXAMPLE).expect("example parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn environment_overrides_settings_by_section_and_key() {
        let env = vec![
            ("ARCA_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("ARCA_LISTEN_API".to_string(), "127.0.0.1:1".to_string()),
            ("ARCA_CLUSTER_SECRET_FILE".to_string(), "/s".to_string()),
            ("ARCA_CLUSTER_MAX_VOTERS".to_string(), "5".to_string()),
            ("ARCA_PASSWORD".to_string(), "not a setting".to_string()),
        ];
        let c = Config::load(None, env).expect("loads");
        assert_eq!(c.data.dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.listen.api, "127.0.0.1:1");
        assert_eq!(c.secret_file(), PathBuf::from("/s"));
        assert_eq!(c.cluster.max_voters, 5);
    }

    #[test]
    fn malformed_number_names_the_variable() {
        let env = vec![("ARCA_API_INVOKE_WAIT_MS".to_string(), "soon".to_string())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("ARCA_API_INVOKE_WAIT_MS"), "{err}");
    }
}
