//! Test harness for Arca: N nodes on random loopback ports, as real `arca` processes or in-process, with
//! kill -9, restart, and link cutting through per-node TCP proxies; a real S3-compatible server for them.
//!
//! Every node advertises its proxy as its cluster address and makes outgoing cluster connections from its
//! own loopback IP (127.0.0.(10+i)), so a proxy knows both ends of every link and can cut a node off
//! completely.

pub mod api;
pub mod cluster;
pub mod proxy;
pub mod s3;

pub use api::ApiClient;
pub use cluster::{Cluster, NodeHandle};
pub use s3::S3Server;

/// Path of the `arca` binary built alongside the tests.
pub fn arca_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("ARCA_BIN") {
        return p.into();
    }
    // Test executables live in <target>/<profile>/deps/, benchmark binaries in <target>/<profile>/.
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("executable directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("profile directory");
    }
    dir.join("arca")
}

/// A free TCP port on 127.0.0.1 (bound and released; collisions are unlikely and retried by callers).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The project's `shared/` directory (`$ARCA_SHARED_DIR`, else `../shared` beside the workspace), when it
/// holds `marker` (e.g. `corpus/public/index.tsv`); suites that need the corpus skip without it.
pub fn shared_dir(marker: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("ARCA_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    dir.join(marker).exists().then_some(dir)
}
