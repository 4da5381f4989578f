//! Object storage of a shard: a local directory or an S3 bucket behind one small interface, with the
//! key layout of the design and counters of PUTs and GETs (the benchmark reports them).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};

use arca_types::ShardId;
use arca_types::config::StorageConfig;

/// Why an object operation failed; names the object key.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object store configuration: {0}")]
    Config(String),
    #[error("object '{key}': {source}")]
    Store { key: String, source: object_store::Error },
    #[error("object '{key}' does not exist")]
    Missing { key: String },
    /// The start-up check failed; `cause` is object_store's message, which already holds its cause chain.
    #[error("object store {location} cannot be used: {cause}")]
    Unusable { location: String, cause: String },
}

/// How long one S3 request may take to connect and to complete.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long failed S3 requests are retried before the error surfaces (bounds a stall on an unreachable
/// or refusing endpoint; object_store's own default is three minutes).
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);

/// Counts of requests, for the benchmark's "PUTs per 1,000 messages" and "GETs per fetch".
#[derive(Debug, Default)]
pub struct Counters {
    pub puts: AtomicU64,
    pub gets: AtomicU64,
}

/// The object store of the cluster, rooted at its configured prefix.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    location: String,
    pub counters: Arc<Counters>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Objects({})", self.location)
    }
}

/// Object keys of a shard, as `../shared/DESIGN.md` lays them out.
#[derive(Debug, Clone)]
pub struct ShardKeys {
    root: String,
}

impl ShardKeys {
    /// The keys of shard `shard` of tenant `tenant`.
    pub fn new(tenant: &str, shard: ShardId) -> ShardKeys {
        ShardKeys { root: format!("tenants/{tenant}/shards/{shard}") }
    }
    /// A pack.
    pub fn pack(&self, pack_id: &str) -> String {
        format!("{}/packs/{pack_id}", self.root)
    }
    /// An index segment file.
    pub fn index_file(&self, name: &str) -> String {
        format!("{}/index/{name}", self.root)
    }
    /// The prefix of all index files.
    pub fn index_prefix(&self) -> String {
        format!("{}/index/", self.root)
    }
    /// A manifest delta or compaction.
    pub fn manifest(&self, epoch: u64, sequence: u64) -> String {
        format!("{}/manifest/{epoch:010}-{sequence:012}", self.root)
    }
}

fn store_err(key: &str) -> impl FnOnce(object_store::Error) -> ObjectError + '_ {
    move |source| match source {
        object_store::Error::NotFound { .. } => ObjectError::Missing { key: key.to_string() },
        source => ObjectError::Store { key: key.to_string(), source },
    }
}

impl Objects {
    /// Objects in a local directory (created when missing).
    pub fn local(dir: &Path) -> Result<Objects, ObjectError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ObjectError::Config(format!("cannot create {}: {e}", dir.display())))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| ObjectError::Config(format!("{}: {e}", dir.display())))?;
        Ok(Objects { store: Arc::new(store), location: dir.display().to_string(), counters: Arc::default() })
    }

    /// Objects as the `[storage]` configuration says; `data_dir` holds the default local directory.
    pub fn from_config(config: &StorageConfig, data_dir: &Path) -> Result<Objects, ObjectError> {
        let url = config.url.trim();
        if url.is_empty() {
            return Objects::local(&data_dir.join("objects"));
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Objects::local(Path::new(path));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(ObjectError::Config(format!(
                "storage.url '{url}' must be empty, file:///path or s3://bucket/prefix"
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectError::Config("storage.url names no bucket".into()));
        }
        let endpoint = config.endpoint.trim();
        if endpoint.starts_with("http://") && !config.allow_http {
            return Err(ObjectError::Config(format!(
                "storage.endpoint '{endpoint}' is plain HTTP: set storage.allow_http = true \
                 (ARCA_STORAGE_ALLOW_HTTP) to allow it, or use https://"
            )));
        }
        if config.access_key_id.is_empty() != config.secret_access_key_file.is_empty() {
            return Err(ObjectError::Config(
                "storage.access_key_id and storage.secret_access_key_file must be set together".into(),
            ));
        }
        let retry = RetryConfig { retry_timeout: RETRY_TIMEOUT, ..RetryConfig::default() };
        let client = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT);
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_client_options(client)
            .with_retry(retry)
            .with_region(if config.region.is_empty() { "us-east-1" } else { config.region.as_str() });
        if !endpoint.is_empty() {
            builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
        }
        if !config.access_key_id.is_empty() {
            let secret = std::fs::read_to_string(&config.secret_access_key_file).map_err(|e| {
                ObjectError::Config(format!(
                    "storage.secret_access_key_file {}: {e}",
                    config.secret_access_key_file
                ))
            })?;
            builder =
                builder.with_access_key_id(config.access_key_id.trim()).with_secret_access_key(secret.trim());
        }
        let store = builder.build().map_err(|e| ObjectError::Config(format!("storage.url '{url}': {e}")))?;
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(store)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix.trim_end_matches('/')))
        };
        Ok(Objects { store, location: url.to_string(), counters: Arc::default() })
    }

    /// Checks with one LIST request that the store answers with these credentials, so a wrong setting
    /// stops start-up with its cause instead of failing the first import.
    pub async fn check(&self) -> Result<(), ObjectError> {
        self.store
            .list_with_delimiter(None)
            .await
            .map(|_| ())
            .map_err(|e| ObjectError::Unusable { location: self.location.clone(), cause: e.to_string() })
    }

    /// Where the objects live, for messages (never includes credentials).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes an object (objects are written once and never changed).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectError> {
        self.counters.puts.fetch_add(1, Ordering::Relaxed);
        self.store.put(&ObjectPath::from(key), PutPayload::from(bytes)).await.map_err(store_err(key))?;
        Ok(())
    }

    /// Reads a whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes, ObjectError> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let result = self.store.get(&ObjectPath::from(key)).await.map_err(store_err(key))?;
        result.bytes().await.map_err(store_err(key))
    }

    /// Reads a byte range of an object (one ranged GET).
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, ObjectError> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        self.store.get_range(&ObjectPath::from(key), range).await.map_err(store_err(key))
    }

    /// The size of an object.
    pub async fn size(&self, key: &str) -> Result<u64, ObjectError> {
        let meta = self.store.head(&ObjectPath::from(key)).await.map_err(store_err(key))?;
        Ok(meta.size)
    }

    /// Keys and sizes of the objects below `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, ObjectError> {
        let path = ObjectPath::from(prefix.trim_end_matches('/'));
        let items: Vec<_> = self.store.list(Some(&path)).try_collect().await.map_err(store_err(prefix))?;
        Ok(items.into_iter().map(|m| (m.location.to_string(), m.size)).collect())
    }

    /// Deletes an object (only for objects no manifest references any more).
    pub async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.store.delete(&ObjectPath::from(key)).await.map_err(store_err(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(endpoint: &str) -> StorageConfig {
        StorageConfig {
            url: "s3://bucket/prefix".into(),
            endpoint: endpoint.into(),
            ..StorageConfig::default()
        }
    }

    fn config_error(config: &StorageConfig) -> String {
        match Objects::from_config(config, Path::new("/nonexistent")) {
            Ok(o) => panic!("accepted {config:?} as {o:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_http_endpoint_needs_allow_http() {
        let err = config_error(&s3("http://127.0.0.1:9000"));
        assert!(err.contains("storage.allow_http"), "{err}");
        let allowed = StorageConfig { allow_http: true, ..s3("http://127.0.0.1:9000") };
        assert!(Objects::from_config(&allowed, Path::new("/nonexistent")).is_ok());
    }

    #[test]
    fn access_key_and_secret_file_come_together() {
        let key_only = StorageConfig { access_key_id: "AK".into(), ..s3("https://s3.example") };
        assert!(config_error(&key_only).contains("storage.secret_access_key_file"));
        let missing = StorageConfig {
            access_key_id: "AK".into(),
            secret_access_key_file: "/nonexistent/secret".into(),
            ..s3("https://s3.example")
        };
        let err = config_error(&missing);
        assert!(err.contains("storage.secret_access_key_file /nonexistent/secret"), "{err}");
    }

    #[test]
    fn url_must_name_a_known_scheme_and_a_bucket() {
        let other = StorageConfig { url: "gs://bucket".into(), ..StorageConfig::default() };
        assert!(config_error(&other).contains("storage.url 'gs://bucket'"));
        let no_bucket = StorageConfig { url: "s3://".into(), ..StorageConfig::default() };
        assert!(config_error(&no_bucket).contains("no bucket"));
    }
}
