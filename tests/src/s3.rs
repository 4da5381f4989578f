//! A real S3-compatible server for the suites: `s3s-fs` (installed by `scripts/test.sh`) on a random
//! loopback port, checking AWS Signature V4 against one access key, with one bucket; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_shard::objects::Objects;
use arca_types::config::StorageConfig;

/// The server's crate and version, as `scripts/test.sh` installs it (newer ones need Rust 1.96).
pub const SERVER_CRATE: &str = "s3s-fs";
pub const SERVER_VERSION: &str = "0.14.1";

/// The S3 server binary: `$ARCA_S3_SERVER`, else `s3s-fs` on `PATH` or in `~/.cargo/bin`; an error
/// saying how to install it when there is none (suites fail rather than skip).
pub fn server_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ARCA_S3_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("ARCA_S3_SERVER={} is not a file", p.display());
        }
        return Ok(p);
    }
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(SERVER_CRATE)).find(|p| p.is_file()).with_context(|| {
        format!(
            "no S3-compatible test server: {SERVER_CRATE} is not installed. Run `bash scripts/test.sh` (it \
             installs it) or `cargo install {SERVER_CRATE} --version {SERVER_VERSION} --features binary \
             --locked`, or point ARCA_S3_SERVER at the binary"
        )
    })
}

/// A running S3 server with one bucket.
pub struct S3Server {
    child: Child,
    binary: PathBuf,
    secret: String,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    /// File holding the secret access key (as `storage.secret_access_key_file` wants it).
    pub secret_file: PathBuf,
    root: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("===== log of the S3 server =====\n{}", self.log());
        }
    }
}

/// Starts `binary` on `port` (0: any) of 127.0.0.1, serving the buckets in `<root>/data` and logging to
/// `<root>/s3.log` (truncated: a restart's log starts afresh).
fn spawn(binary: &Path, root: &Path, port: u16, access_key: &str, secret: &str) -> Result<Child> {
    let log = std::fs::File::create(root.join("s3.log"))?;
    Command::new(binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", access_key])
        .args(["--secret-key", secret])
        .arg(root.join("data"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting the S3 server {}", binary.display()))
}

impl S3Server {
    /// Starts the server on a random loopback port with bucket `arca` and fresh credentials, and waits
    /// until it listens.
    pub fn start() -> Result<S3Server> {
        let binary = server_binary()?;
        let root = tempfile::tempdir()?;
        let bucket = "arca".to_string();
        let data = root.path().join("data");
        // s3s-fs keeps each bucket as a directory below its root.
        std::fs::create_dir_all(data.join(&bucket))?;
        let access_key = format!("AKARCA{:010}", rand::random::<u32>());
        let secret = hex::encode(rand::random::<[u8; 20]>());
        let secret_file = root.path().join("s3.secret");
        std::fs::write(&secret_file, &secret)?;
        let child = spawn(&binary, root.path(), 0, &access_key, &secret)?;
        let mut server = S3Server {
            child,
            binary,
            endpoint: String::new(),
            bucket,
            access_key,
            secret,
            secret_file,
            root,
        };
        server.endpoint = server.wait_listening(Duration::from_secs(20))?;
        Ok(server)
    }

    /// Kills the server (an outage); its objects stay on disk for [`S3Server::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port, objects and credentials.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let port: u16 = self
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no port in {}", self.endpoint))?;
        self.child = spawn(&self.binary, self.root.path(), port, &self.access_key, &self.secret)?;
        let endpoint = self.wait_listening(Duration::from_secs(20))?;
        if endpoint != self.endpoint {
            bail!("the S3 server came back at {endpoint}, not {}", self.endpoint);
        }
        Ok(())
    }

    /// Waits for the "running" line of the current run in the log and returns its URL.
    fn wait_listening(&mut self, timeout: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            let text = self.log();
            if let Some(at) = text.find("server is running at http://") {
                let url = text[at + "server is running at ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                return Ok(url);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the S3 server exited ({status}) before listening:\n{text}");
            }
            if start.elapsed() > timeout {
                bail!("the S3 server did not listen within {timeout:?}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("s3.log")).unwrap_or_default()
    }

    /// The `storage.url` of objects below `prefix` of the bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// The `ARCA_STORAGE_*` environment of a node keeping its objects below `prefix` of the bucket.
    pub fn node_env(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            ("ARCA_STORAGE_URL".into(), self.url(prefix)),
            ("ARCA_STORAGE_ENDPOINT".into(), self.endpoint.clone()),
            ("ARCA_STORAGE_REGION".into(), "us-east-1".into()),
            ("ARCA_STORAGE_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("ARCA_STORAGE_SECRET_ACCESS_KEY_FILE".into(), self.secret_file.display().to_string()),
            ("ARCA_STORAGE_ALLOW_HTTP".into(), "true".into()),
        ]
    }

    /// The same settings as a `[storage]` section.
    pub fn storage_config(&self, prefix: &str) -> StorageConfig {
        StorageConfig {
            url: self.url(prefix),
            endpoint: self.endpoint.clone(),
            region: "us-east-1".into(),
            access_key_id: self.access_key.clone(),
            secret_access_key_file: self.secret_file.display().to_string(),
            allow_http: true,
            ..StorageConfig::default()
        }
    }

    /// Keys (relative to `prefix`) and sizes of every object below `prefix`, listed through the S3 API.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let objects = Objects::from_config(&self.storage_config(prefix), self.root.path())?;
        Ok(objects.list("").await?)
    }
}
