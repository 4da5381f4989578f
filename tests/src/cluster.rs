//! Clusters of test nodes: start, join, kill -9, stop, restart, cut off, and wait for convergence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::api::ApiClient;
use crate::proxy::{self, Partition};
use crate::{arca_bin, free_port};

/// How a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A real `arca serve` process.
    Process,
    /// `arca_node::serve::run_until` inside the test process.
    InProcess,
}

/// One node of a test cluster.
pub struct NodeHandle {
    pub index: usize,
    pub dir: PathBuf,
    pub cluster_port: u16,
    pub api_port: u16,
    pub web_port: u16,
    pub proxy: SocketAddr,
    /// Environment of this node only, added after the cluster's.
    pub env: Vec<(String, String)>,
    kind: Kind,
    child: Option<Child>,
    in_process: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<Result<()>>)>,
}

impl NodeHandle {
    /// The API listener address.
    pub fn api_addr(&self) -> String {
        format!("127.0.0.1:{}", self.api_port)
    }

    /// True while the node runs.
    pub fn is_running(&mut self) -> bool {
        match (&mut self.child, &self.in_process) {
            (Some(c), _) => c.try_wait().ok().flatten().is_none(),
            (None, Some((_, h))) => !h.is_finished(),
            _ => false,
        }
    }

    /// The operating-system process id of a process node while it runs (None in-process or stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The node's log (processes only).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

/// A test cluster in a temporary directory.
pub struct Cluster {
    pub nodes: Vec<NodeHandle>,
    pub partition: Arc<Partition>,
    pub secret_file: PathBuf,
    env: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!("===== log of node {} ({}) =====\n{}", n.index, n.dir.display(), n.log());
            }
        }
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            if let Some((stop, _)) = n.in_process.take() {
                let _ = stop.send(());
            }
        }
    }
}

impl Cluster {
    /// An empty cluster; `env` is added to every node's environment (e.g. Raft timings).
    pub fn new(env: &[(&str, &str)]) -> Result<Cluster> {
        let tmp = tempfile::tempdir()?;
        let secret_file = tmp.path().join("cluster.secret");
        std::fs::write(&secret_file, arca_raft::tls::new_secret())?;
        Ok(Cluster {
            nodes: Vec::new(),
            partition: Arc::new(Partition::default()),
            secret_file,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            _tmp: tmp,
        })
    }

    /// Starts `n` process nodes: the first initialises the cluster, the others join through the CLI.
    pub async fn start(n: usize, env: &[(&str, &str)]) -> Result<Cluster> {
        let mut c = Cluster::new(env)?;
        for _ in 0..n {
            c.add_node(Kind::Process).await?;
        }
        c.wait_members(n, Duration::from_secs(60)).await?;
        Ok(c)
    }

    /// Directory of the cluster's temporary files.
    pub fn root(&self) -> &Path {
        self._tmp.path()
    }

    /// Adds a node; it joins the first node unless it is the first.
    pub async fn add_node(&mut self, kind: Kind) -> Result<usize> {
        let index = self.place_node(kind, &[]).await?;
        self.launch(index)?;
        self.wait_api(index, Duration::from_secs(60)).await?;
        Ok(index)
    }

    /// Prepares a node's directory, ports and proxy without starting it.
    pub async fn place_node(&mut self, kind: Kind, env: &[(&str, &str)]) -> Result<usize> {
        let index = self.nodes.len();
        let dir = self._tmp.path().join(format!("node{index}"));
        std::fs::create_dir_all(&dir)?;
        let cluster_port = free_port();
        let proxy =
            proxy::start(index, format!("127.0.0.1:{cluster_port}").parse()?, self.partition.clone()).await;
        let node = NodeHandle {
            index,
            dir,
            cluster_port,
            api_port: free_port(),
            web_port: free_port(),
            proxy,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            kind,
            child: None,
            in_process: None,
        };
        self.nodes.push(node);
        Ok(index)
    }

    fn node_env(&self, index: usize) -> Vec<(String, String)> {
        let n = &self.nodes[index];
        let mut env = vec![
            ("ARCA_DATA_DIR".to_string(), n.dir.join("data").display().to_string()),
            ("ARCA_LISTEN_CLUSTER".into(), format!("127.0.0.1:{}", n.cluster_port)),
            ("ARCA_LISTEN_API".into(), format!("127.0.0.1:{}", n.api_port)),
            ("ARCA_LISTEN_WEB".into(), format!("127.0.0.1:{}", n.web_port)),
            ("ARCA_CLUSTER_ADVERTISE".into(), n.proxy.to_string()),
            ("ARCA_CLUSTER_SOURCE_ADDRESS".into(), proxy::source_ip(index).to_string()),
            ("ARCA_CLUSTER_SECRET_FILE".into(), self.secret_file.display().to_string()),
            ("ARCA_CLUSTER_HEARTBEAT_MS".into(), "100".into()),
            ("ARCA_CLUSTER_ELECTION_TIMEOUT_MS".into(), "600".into()),
            ("ARCA_ENABLE_TEST_FUNCTIONS".into(), "1".into()),
        ];
        env.extend(self.env.iter().cloned());
        env.extend(n.env.iter().cloned());
        env
    }

    fn join_arg(&self, index: usize) -> Option<String> {
        (index > 0).then(|| self.nodes[0].proxy.to_string())
    }

    /// Starts (or restarts) node `index` on its directory and ports.
    pub fn launch(&mut self, index: usize) -> Result<()> {
        let env = self.node_env(index);
        let join = self.join_arg(index);
        let n = &mut self.nodes[index];
        match n.kind {
            Kind::Process => {
                let log =
                    std::fs::OpenOptions::new().create(true).append(true).open(n.dir.join("node.log"))?;
                let mut cmd = Command::new(arca_bin());
                cmd.arg("serve");
                if let Some(j) = join {
                    cmd.arg("--join").arg(j);
                }
                // Level info unless the test's environment names another.
                cmd.env("ARCA_LOG_LEVEL", "info");
                for (k, v) in &env {
                    cmd.env(k, v);
                }
                cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
                n.child = Some(cmd.spawn().with_context(|| format!("spawning {}", arca_bin().display()))?);
            }
            Kind::InProcess => {
                let config = arca_types::config::Config::load(None, env)?;
                let (tx, rx) = oneshot::channel::<()>();
                let handle = tokio::spawn(async move {
                    arca_node::serve::run_until(config, join, async move {
                        let _ = rx.await;
                    })
                    .await
                });
                n.in_process = Some((tx, handle));
            }
        }
        Ok(())
    }

    /// Waits for node `index` (a process) to exit by itself and returns its exit status.
    pub async fn wait_exit(&mut self, index: usize, timeout: Duration) -> Result<std::process::ExitStatus> {
        let start = Instant::now();
        let n = &mut self.nodes[index];
        let Some(child) = n.child.as_mut() else { bail!("node {index} is not a running process") };
        loop {
            if let Some(status) = child.try_wait()? {
                n.child = None;
                return Ok(status);
            }
            if start.elapsed() > timeout {
                bail!("node {index} still runs after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills node `index` at once (SIGKILL for processes).
    pub fn kill(&mut self, index: usize) {
        let n = &mut self.nodes[index];
        if let Some(mut c) = n.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some((_, h)) = n.in_process.take() {
            h.abort();
        }
    }

    /// Stops node `index` gracefully (SIGTERM) and waits for it to exit.
    pub async fn stop(&mut self, index: usize) -> Result<()> {
        let n = &mut self.nodes[index];
        if let Some(mut c) = n.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
            let start = Instant::now();
            while c.try_wait()?.is_none() {
                if start.elapsed() > Duration::from_secs(20) {
                    let _ = c.kill();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if let Some((stop, h)) = n.in_process.take() {
            let _ = stop.send(());
            let _ = h.await;
        }
        Ok(())
    }

    /// Restarts node `index` and waits until its API answers.
    pub async fn restart(&mut self, index: usize) -> Result<()> {
        self.launch(index)?;
        self.wait_api(index, Duration::from_secs(60)).await
    }

    /// An admin client of node `index` (default credentials).
    pub fn api(&self, index: usize) -> ApiClient {
        ApiClient::new(&self.nodes[index].api_addr(), "admin", "admin")
    }

    /// Waits until node `index` answers `/healthz`; fails early if its process died.
    pub async fn wait_api(&mut self, index: usize, timeout: Duration) -> Result<()> {
        let api = self.api(index);
        let start = Instant::now();
        loop {
            if let Ok(a) = api.get("/readyz").await
                && a.status == 200
            {
                return Ok(());
            }
            if !self.nodes[index].is_running() {
                bail!("node {index} exited during startup:\n{}", self.nodes[index].log());
            }
            if start.elapsed() > timeout {
                bail!("node {index} not ready after {timeout:?}:\n{}", self.nodes[index].log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The cluster status as node `via` reports it.
    pub async fn status(&self, via: usize) -> Result<Value> {
        let env = self.api(via).envelope("/api/cluster/status", &[]).await?;
        if !env["error"].is_null() {
            bail!("status failed: {env}");
        }
        Ok(env["result"].clone())
    }

    /// Waits until `n` members are in the cluster and the leader is known.
    pub async fn wait_members(&mut self, n: usize, timeout: Duration) -> Result<Value> {
        let start = Instant::now();
        loop {
            if let Ok(s) = self.status(0).await
                && s["members"].as_array().map(Vec::len) == Some(n)
            {
                return Ok(s);
            }
            if start.elapsed() > timeout {
                bail!("cluster did not reach {n} members in {timeout:?}: {:?}", self.status(0).await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The index of the node that leads, asked through any running node.
    pub async fn leader(&mut self) -> Result<usize> {
        let start = Instant::now();
        loop {
            for via in 0..self.nodes.len() {
                if !self.nodes[via].is_running() {
                    continue;
                }
                if let Ok(s) = self.status(via).await
                    && let Some(leader) = s["leader"].as_u64()
                {
                    let addr = s["members"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|m| m["id"].as_u64() == Some(leader))
                        .and_then(|m| m["apiAddr"].as_str().map(str::to_string));
                    if let Some(i) = self.nodes.iter().position(|n| Some(n.api_addr()) == addr) {
                        return Ok(i);
                    }
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("no leader found");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The applied index and state hash of node `index`.
    pub async fn local_state(&self, index: usize) -> Result<Value> {
        let env = self.api(index).envelope("/api/cluster/local-state", &[]).await?;
        Ok(env["result"].clone())
    }

    /// Waits until every running node has applied the same index with the same state hash.
    pub async fn wait_converged(&mut self, timeout: Duration) -> Result<Vec<Value>> {
        let start = Instant::now();
        loop {
            let mut states = Vec::new();
            for i in 0..self.nodes.len() {
                if self.nodes[i].is_running() {
                    states.push(self.local_state(i).await.unwrap_or(Value::Null));
                }
            }
            let first = &states[0];
            if !first.is_null()
                && states.iter().all(|s| {
                    s["appliedIndex"] == first["appliedIndex"] && s["stateHash"] == first["stateHash"]
                })
            {
                return Ok(states);
            }
            if start.elapsed() > timeout {
                bail!("nodes did not converge in {timeout:?}: {states:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs the `arca` CLI with the client options of node `index`.
    pub fn cli(&self, index: usize, args: &[&str]) -> std::process::Output {
        Command::new(arca_bin())
            .args(args)
            .env("ARCA_HOST", self.nodes[index].api_addr())
            .env("ARCA_USER", "admin")
            .env("ARCA_PASSWORD", "admin")
            .arg("--insecure")
            .stdin(Stdio::null())
            .output()
            .expect("run arca cli")
    }
}
