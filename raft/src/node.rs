//! The handle Arca uses to reach metadata: start or join a cluster, write commands (forwarded to the
//! leader and retried under one request id), linearizable reads, membership and status.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState, SnapshotPolicy};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::error::RaftNodeError;
use crate::log_store::LogStore;
use crate::network::{
    ClusterHandler, ClusterRequest, ClusterService, LastHeard, NetError, Network, PeerClients,
};
use crate::sm_store::StateMachineStore;
use crate::state::MetaState;
use crate::tls::cluster_identity;
use crate::{MetaRequest, MetaResponse, Raft};
use arca_types::records::NodeInfo;
use arca_types::{Command, CommandOutput, NodeId, RequestId};

/// How long a write or leader-only call keeps retrying (elections, forwarding) before giving up.
const LEADER_CALL_DEADLINE: Duration = Duration::from_secs(20);
/// How long one attempt may wait for its entry to commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of one RPC to a peer.
const RPC_TIMEOUT: Duration = Duration::from_secs(6);

/// Everything needed to start a metadata node.
#[derive(Debug)]
pub struct NodeOptions {
    /// The node's data directory; Raft files go to `<data_dir>/raft`.
    pub data_dir: PathBuf,
    /// The cluster secret (contents of the secret file).
    pub secret: String,
    /// The bound cluster listener.
    pub listener: TcpListener,
    /// Addresses announced to the cluster.
    pub info: NodeInfo,
    /// Source IP of outgoing cluster connections, if fixed.
    pub source_address: Option<IpAddr>,
    /// Cluster address of any member to join when the data directory is new.
    pub join: Option<String>,
    /// How long joining may take before startup fails.
    pub join_timeout: Duration,
    pub max_voters: usize,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_after_logs: u64,
    /// Largest message between nodes, encoded (forwarded requests and their answers); at least
    /// [`DEFAULT_MAX_MESSAGE`](crate::network::DEFAULT_MAX_MESSAGE).
    pub max_call_bytes: usize,
    /// This node's lease on the stores it owns (`cluster.lease_ms`), see [`crate::lease`].
    pub lease: Duration,
}

/// One member as `arca cluster status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub id: NodeId,
    pub role: String,
    pub cluster_addr: String,
    pub api_addr: String,
    /// Log entries the member is behind the leader; `None` when unknown.
    pub lag: Option<u64>,
    /// Milliseconds since the leader last heard from the member (0 for the leader itself); `None` when
    /// this leader has not heard from it since it started.
    #[serde(default)]
    pub last_heard_ms: Option<u64>,
}

/// The cluster as the leader sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// One node's own position: used to compare replicas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LocalState {
    pub id: NodeId,
    pub state: String,
    pub applied_index: Option<u64>,
    pub state_hash: String,
}

/// Serves requests of higher layers that other nodes address to this one (`MetaNode::call_node`).
pub trait AppHandler: Send + Sync + 'static {
    /// Handles one request for `service` (its bytes are the service's own encoding); `Err` says the
    /// service cannot take requests (unknown, shutting down). Failures of the request itself belong in
    /// the service's answer, typed.
    fn handle(&self, service: String, payload: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// Answer of a call that only the leader can serve.
#[derive(Debug, Serialize, Deserialize)]
enum LeaderAnswer<T> {
    Done(T),
    NotLeader(Option<NodeInfo>),
    Failed(String),
}

struct Inner {
    id: NodeId,
    raft: Raft,
    sm: StateMachineStore,
    clients: PeerClients,
    /// When each peer last answered this node's Raft messages.
    heard: LastHeard,
    info: NodeInfo,
    max_voters: usize,
    shutdown: watch::Sender<bool>,
    app: std::sync::OnceLock<Arc<dyn AppHandler>>,
    leases: crate::lease::Leases,
}

/// A running metadata node. Cheap to clone.
#[derive(Clone)]
pub struct MetaNode {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetaNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetaNode({})", self.inner.id)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RaftNodeError + '_ {
    move |source| RaftNodeError::Io { path: path.to_path_buf(), source }
}

/// Reads the node id from `<dir>/node.id`, creating a random one for a new directory.
fn node_id(dir: &Path) -> Result<NodeId, RaftNodeError> {
    let path = dir.join("node.id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            RaftNodeError::Storage(arca_types::wal::WalError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: "not a node id".into(),
            })
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = loop {
                let id = rand::random::<u64>() % 1_000_000_000_000;
                if id != 0 {
                    break id;
                }
            };
            arca_types::wal::write_atomically_plain(&path, id.to_string().as_bytes()).map_err(io(&path))?;
            Ok(id)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

impl MetaNode {
    /// Starts the node: opens storage, serves the cluster listener, and initialises a new one-voter
    /// cluster (new directory, no join) or joins the given one (new directory with `join`).
    pub async fn start(opts: NodeOptions) -> Result<MetaNode, RaftNodeError> {
        let dir = opts.data_dir.join("raft");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let id = node_id(&dir)?;
        let mut log = LogStore::open(&dir)?;
        let sm = StateMachineStore::open(&dir)?;
        let fresh = {
            use openraft::storage::RaftLogStorage;
            let state = log.get_log_state().await.map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
            let vote = log.read_vote().await.map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
            state.last_log_id.is_none() && vote.is_none() && sm.read().last_applied.is_none()
        };
        let identity = cluster_identity(&opts.secret)?;
        let clients = PeerClients::new(identity.clone())
            .with_source(opts.source_address)
            .with_max_message(opts.max_call_bytes.max(crate::network::DEFAULT_MAX_MESSAGE));
        let config = openraft::Config {
            cluster_name: "arca".into(),
            heartbeat_interval: opts.heartbeat_ms,
            election_timeout_min: opts.election_timeout_ms,
            election_timeout_max: opts.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(opts.snapshot_after_logs),
            max_in_snapshot_log_to_keep: (opts.snapshot_after_logs / 2).min(1000),
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
        let network = Network::new(clients.clone());
        let heard = network.last_heard();
        let raft = Raft::new(id, Arc::new(config), network, log, sm.clone())
            .await
            .map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
        let (shutdown, mut shutdown_rx) = watch::channel(false);
        let node = MetaNode {
            inner: Arc::new(Inner {
                id,
                raft: raft.clone(),
                sm,
                clients,
                heard,
                info: opts.info.clone(),
                max_voters: opts.max_voters.max(1),
                shutdown,
                app: std::sync::OnceLock::new(),
                leases: crate::lease::Leases::new(opts.lease),
            }),
        };

        opts.listener.set_nonblocking(true).map_err(io(&dir))?;
        let listener = tokio::net::TcpListener::from_std(opts.listener).map_err(io(&dir))?;
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&identity.cert_pem, &identity.key_pem))
            .client_ca_root(Certificate::from_pem(&identity.ca_pem));
        let service = ClusterService::new(Arc::new(node.clone()))
            .with_max_message(opts.max_call_bytes.max(crate::network::DEFAULT_MAX_MESSAGE));
        let server = Server::builder()
            .tls_config(tls)
            .map_err(|e| RaftNodeError::Fatal(format!("cluster TLS: {e}")))?
            .add_service(service);
        tokio::spawn(async move {
            use tokio_stream::StreamExt;
            // Small Raft messages must not wait for Nagle and delayed ACKs.
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
                if let Ok(stream) = &conn {
                    let _ = stream.set_nodelay(true);
                }
                conn
            });
            let stop = async move {
                let _ = shutdown_rx.wait_for(|s| *s).await;
            };
            if let Err(e) = server.serve_with_incoming_shutdown(incoming, stop).await {
                tracing::error!("cluster listener stopped: {e}");
            }
        });

        if fresh {
            match &opts.join {
                None => {
                    let members = BTreeMap::from([(id, opts.info.clone())]);
                    raft.initialize(members).await.map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
                    tracing::info!(node = id, "initialised a new one-voter metadata cluster");
                }
                Some(addr) => {
                    node.join(addr, opts.join_timeout).await?;
                }
            }
        } else if opts.join.is_some() {
            tracing::info!("data directory already holds cluster state; --join ignored");
        }
        crate::lease::spawn(node.clone(), node.inner.shutdown.subscribe());
        Ok(node)
    }

    async fn join(&self, addr: &str, timeout: Duration) -> Result<(), RaftNodeError> {
        let request = || ClusterRequest::Join { id: self.inner.id, info: self.inner.info.clone() };
        tracing::info!(node = self.inner.id, via = addr, "joining the metadata cluster");
        let _: () = self.leader_call_via(Some(addr.to_string()), request, timeout).await.map_err(|e| match e {
            RaftNodeError::Unavailable(why) => RaftNodeError::Unavailable(format!(
                "could not join the cluster through {addr}: {why} (is the address right, and is the cluster secret \
                 file the one the cluster uses?)"
            )),
            other => other,
        })?;
        Ok(())
    }

    /// Installs the handler of higher layers' requests (once; later calls are ignored).
    pub fn set_app_handler(&self, handler: Arc<dyn AppHandler>) {
        let _ = self.inner.app.set(handler);
    }

    /// Sends a request for `service` to node `id` (or handles it here when `id` is this node).
    pub async fn call_node(
        &self,
        id: NodeId,
        service: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RaftNodeError> {
        if id == self.inner.id {
            return self.serve_app(service.to_string(), payload).await.map_err(RaftNodeError::Unavailable);
        }
        let metrics = self.inner.raft.metrics().borrow().clone();
        let Some(info) = metrics.membership_config.membership().get_node(&id).cloned() else {
            return Err(RaftNodeError::Unavailable(format!("node {id} is not a member of the cluster")));
        };
        self.inner
            .clients
            .call_app(&info.cluster_addr, service, &payload, timeout)
            .await
            .map_err(|e| RaftNodeError::Unavailable(e.to_string()))
    }

    async fn serve_app(&self, service: String, payload: Vec<u8>) -> Result<Vec<u8>, String> {
        match self.inner.app.get() {
            Some(handler) => handler.handle(service, payload).await,
            None => Err(format!("this node does not serve '{service}' yet")),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// This node's lease and its observations of the other nodes' leases.
    pub fn leases(&self) -> &crate::lease::Leases {
        &self.inner.leases
    }

    /// `Some(renewal counter)` when `node` is dead by this node's observations (its lease lapsed),
    /// judged on the locally applied counters; see [`crate::lease::Leases::dead`].
    pub fn lease_dead(&self, node: NodeId) -> Option<u64> {
        let counters = self.with_state(|s| s.leases.clone());
        self.inner.leases.dead(node, &counters)
    }

    /// How long ago this node saw `node` renew its lease (`None` before it saw it at all): for status
    /// displays.
    pub fn lease_age(&self, node: NodeId) -> Option<Duration> {
        self.inner.leases.lease_age(node)
    }

    /// The underlying openraft handle (metrics, tests).
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// Runs `f` on the applied metadata as this node has it (not necessarily the latest; see
    /// [`MetaNode::linearizable`]).
    pub fn with_state<R>(&self, f: impl FnOnce(&MetaState) -> R) -> R {
        f(&self.inner.sm.read().state)
    }

    /// Waits until this node has applied everything committed before the call: a read after this sees
    /// every write acknowledged before it began.
    pub async fn linearizable(&self) -> Result<(), RaftNodeError> {
        let index: Option<u64> = self.leader_call(|| ClusterRequest::ReadIndex, LEADER_CALL_DEADLINE).await?;
        self.inner
            .raft
            .wait(Some(COMMIT_TIMEOUT))
            .applied_index_at_least(index, "linearizable read")
            .await
            .map_err(|e| RaftNodeError::Unavailable(format!("could not catch up for a read: {e}")))?;
        Ok(())
    }

    /// Applies `command` once through Raft with a fresh request id.
    pub async fn write(&self, command: Command) -> Result<CommandOutput, RaftNodeError> {
        self.write_with_id(new_request_id(), command).await
    }

    /// Applies `command` once through Raft under `request_id`; retries (forwarding, elections) keep the id.
    pub async fn write_with_id(
        &self,
        request_id: RequestId,
        command: Command,
    ) -> Result<CommandOutput, RaftNodeError> {
        let req = MetaRequest { request_id, command };
        let response: MetaResponse =
            self.leader_call(|| ClusterRequest::Write(req.clone()), LEADER_CALL_DEADLINE).await?;
        let output = response.result?;
        Ok(output)
    }

    /// The cluster as its leader sees it.
    pub async fn status(&self) -> Result<ClusterStatus, RaftNodeError> {
        self.leader_call(|| ClusterRequest::Status, LEADER_CALL_DEADLINE).await
    }

    /// [`MetaNode::status`] giving up after `deadline` (e.g. while no leader is elected).
    pub async fn status_within(&self, deadline: Duration) -> Result<ClusterStatus, RaftNodeError> {
        self.leader_call(|| ClusterRequest::Status, deadline).await
    }

    /// This node's applied index and state hash.
    pub fn local_state(&self) -> LocalState {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let applied = self.inner.sm.read();
        LocalState {
            id: self.inner.id,
            state: format!("{:?}", metrics.state),
            applied_index: applied.last_applied.map(|l| l.index),
            state_hash: applied.state.state_hash(),
        }
    }

    /// Promotes a learner to voter.
    pub async fn promote(&self, id: NodeId) -> Result<(), RaftNodeError> {
        self.leader_call(|| ClusterRequest::Promote { id }, LEADER_CALL_DEADLINE).await
    }

    /// Removes a node from the cluster (voter or learner).
    pub async fn remove(&self, id: NodeId) -> Result<(), RaftNodeError> {
        self.leader_call(|| ClusterRequest::Remove { id }, LEADER_CALL_DEADLINE).await
    }

    /// Stops Raft and the cluster listener.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let _ = self.inner.raft.shutdown().await;
    }

    fn leader_hint(&self) -> Option<(NodeId, NodeInfo)> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let info = metrics.membership_config.membership().get_node(&leader)?.clone();
        Some((leader, info))
    }

    async fn leader_call<R: DeserializeOwned>(
        &self,
        make: impl Fn() -> ClusterRequest,
        deadline: Duration,
    ) -> Result<R, RaftNodeError> {
        self.leader_call_via(None, make, deadline).await
    }

    /// Sends a leader-only request to the leader (itself, or a peer), following redirects and retrying
    /// through elections until `deadline`.
    async fn leader_call_via<R: DeserializeOwned>(
        &self,
        first: Option<String>,
        make: impl Fn() -> ClusterRequest,
        deadline: Duration,
    ) -> Result<R, RaftNodeError> {
        let start = Instant::now();
        let mut target: Option<String> = first;
        let mut last_problem = String::from("no leader known yet");
        let mut attempt = 0u32;
        loop {
            if start.elapsed() > deadline {
                return Err(RaftNodeError::Unavailable(format!(
                    "gave up after {:?}: {last_problem}",
                    deadline
                )));
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis((50 * u64::from(attempt)).min(500))).await;
            }
            attempt += 1;
            let addr = match target.take() {
                Some(addr) => Some(addr),
                None => match self.leader_hint() {
                    Some((id, _)) if id == self.inner.id => None,
                    Some((_, info)) => Some(info.cluster_addr),
                    None => {
                        last_problem = "no leader elected yet".into();
                        continue;
                    }
                },
            };
            let answer: Result<LeaderAnswer<R>, String> = match &addr {
                None => match self.execute_as_leader(make()).await {
                    Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                },
                Some(addr) => self
                    .inner
                    .clients
                    .call(addr, &make(), RPC_TIMEOUT)
                    .await
                    .map_err(|e: NetError| e.to_string()),
            };
            match answer {
                Ok(LeaderAnswer::Done(r)) => return Ok(r),
                Ok(LeaderAnswer::NotLeader(hint)) => {
                    last_problem = "the contacted node is not the leader".into();
                    target = hint.map(|n| n.cluster_addr).filter(|a| Some(a) != addr.as_ref());
                }
                Ok(LeaderAnswer::Failed(message)) => return Err(RaftNodeError::Membership(message)),
                Err(problem) => last_problem = problem,
            }
        }
    }

    fn not_leader<T>(&self) -> LeaderAnswer<T> {
        LeaderAnswer::NotLeader(self.leader_hint().map(|(_, info)| info))
    }

    /// Serves a leader-only request here, or answers `NotLeader` with a hint.
    async fn execute_as_leader(&self, request: ClusterRequest) -> Result<Vec<u8>, String> {
        let raft = &self.inner.raft;
        let encode = |v: Result<Vec<u8>, serde_json::Error>| v.map_err(|e| e.to_string());
        match request {
            ClusterRequest::Write(req) => {
                let answer = match tokio::time::timeout(COMMIT_TIMEOUT, raft.client_write(req)).await {
                    Err(_) => LeaderAnswer::Failed("timed out waiting for the write to commit".to_string()),
                    Ok(Ok(resp)) => LeaderAnswer::Done(resp.data),
                    Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                        LeaderAnswer::NotLeader(f.leader_node)
                    }
                    Ok(Err(e)) => LeaderAnswer::Failed(e.to_string()),
                };
                // A timed-out write is retried by the caller with the same request id: "Failed" would stop
                // the retry loop, so report it as "not leader" (the caller then re-resolves the leader).
                let answer = match answer {
                    LeaderAnswer::Failed(m) if m.starts_with("timed out") => LeaderAnswer::NotLeader(None),
                    other => other,
                };
                encode(serde_json::to_vec(&answer))
            }
            ClusterRequest::ReadIndex => {
                let answer = match tokio::time::timeout(COMMIT_TIMEOUT, raft.ensure_linearizable()).await {
                    Err(_) => LeaderAnswer::NotLeader(None),
                    Ok(Ok(log_id)) => LeaderAnswer::Done(log_id.map(|l| l.index)),
                    Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f)))) => {
                        LeaderAnswer::NotLeader(f.leader_node)
                    }
                    Ok(Err(_)) => LeaderAnswer::NotLeader(None),
                };
                encode(serde_json::to_vec(&answer))
            }
            ClusterRequest::Join { id, info } => {
                encode(serde_json::to_vec(&self.join_as_leader(id, info).await))
            }
            ClusterRequest::Promote { id } => {
                let answer = if !self.is_leader() {
                    self.not_leader()
                } else {
                    membership_answer(
                        raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false).await,
                    )
                };
                encode(serde_json::to_vec(&answer))
            }
            ClusterRequest::Remove { id } => encode(serde_json::to_vec(&self.remove_as_leader(id).await)),
            ClusterRequest::Status => {
                let answer = if self.is_leader() {
                    LeaderAnswer::Done(self.leader_status())
                } else {
                    self.not_leader()
                };
                encode(serde_json::to_vec(&answer))
            }
            other => Err(format!("not a leader request: {other:?}")),
        }
    }

    fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().state == ServerState::Leader
    }

    async fn join_as_leader(&self, id: NodeId, info: NodeInfo) -> LeaderAnswer<()> {
        if !self.is_leader() {
            return self.not_leader();
        }
        let raft = &self.inner.raft;
        if let Err(e) = raft.add_learner(id, info, true).await {
            return match e {
                RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                    LeaderAnswer::NotLeader(f.leader_node)
                }
                e => LeaderAnswer::Failed(e.to_string()),
            };
        }
        let voters = raft.metrics().borrow().membership_config.membership().voter_ids().count();
        if voters < self.inner.max_voters {
            let change =
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false).await;
            if let LeaderAnswer::Failed(m) = membership_answer(change) {
                return LeaderAnswer::Failed(m);
            }
        }
        tracing::info!(node = id, "node joined the metadata cluster");
        LeaderAnswer::Done(())
    }

    async fn remove_as_leader(&self, id: NodeId) -> LeaderAnswer<()> {
        if !self.is_leader() {
            return self.not_leader();
        }
        let raft = &self.inner.raft;
        let membership = raft.metrics().borrow().membership_config.membership().clone();
        if membership.get_node(&id).is_none() {
            return LeaderAnswer::Failed(format!("node {id} is not a member of the cluster"));
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if voters.contains(&id) {
            if voters.len() == 1 {
                return LeaderAnswer::Failed(format!("node {id} is the only voter; it cannot be removed"));
            }
            if let LeaderAnswer::Failed(m) = membership_answer(
                raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false).await,
            ) {
                return LeaderAnswer::Failed(m);
            }
        }
        let still_there = raft.metrics().borrow().membership_config.membership().get_node(&id).is_some();
        if still_there
            && let LeaderAnswer::Failed(m) = membership_answer(
                raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false).await,
            )
        {
            return LeaderAnswer::Failed(m);
        }
        tracing::info!(node = id, "node removed from the metadata cluster");
        LeaderAnswer::Done(())
    }

    fn leader_status(&self) -> ClusterStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last = m.last_log_index;
        let members = membership
            .nodes()
            .map(|(id, info)| {
                let matched = if *id == self.inner.id {
                    last
                } else {
                    m.replication.as_ref().and_then(|r| r.get(id)).and_then(|l| l.map(|l| l.index))
                };
                MemberStatus {
                    id: *id,
                    role: if *id == self.inner.id {
                        "leader".into()
                    } else if voters.contains(id) {
                        "voter".into()
                    } else {
                        "learner".into()
                    },
                    cluster_addr: info.cluster_addr.clone(),
                    api_addr: info.api_addr.clone(),
                    lag: match (last, matched) {
                        (Some(l), Some(mi)) => Some(l.saturating_sub(mi)),
                        (Some(l), None) => Some(l),
                        _ => None,
                    },
                    last_heard_ms: if *id == self.inner.id {
                        Some(0)
                    } else {
                        self.inner.heard.since(*id).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    },
                }
            })
            .collect();
        ClusterStatus {
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: last,
            applied_index: m.last_applied.map(|l| l.index),
            members,
        }
    }
}

fn membership_answer(
    result: Result<
        openraft::raft::ClientWriteResponse<crate::TypeConfig>,
        RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>,
    >,
) -> LeaderAnswer<()> {
    match result {
        Ok(_) => LeaderAnswer::Done(()),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            LeaderAnswer::NotLeader(f.leader_node)
        }
        Err(e) => LeaderAnswer::Failed(e.to_string()),
    }
}

/// A new random request id: 32 lower-case hex characters.
pub fn new_request_id() -> RequestId {
    format!("{:032x}", rand::random::<u128>())
}

impl ClusterHandler for MetaNode {
    fn handle(&self, request: ClusterRequest) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let raft = &self.inner.raft;
            let json = |v: Result<Vec<u8>, serde_json::Error>| v.map_err(|e| e.to_string());
            match request {
                ClusterRequest::AppendEntries(rpc) => {
                    json(serde_json::to_vec(&raft.append_entries(rpc).await))
                }
                ClusterRequest::Vote(rpc) => json(serde_json::to_vec(&raft.vote(rpc).await)),
                ClusterRequest::InstallSnapshot(rpc) => {
                    json(serde_json::to_vec(&raft.install_snapshot(rpc).await))
                }
                ClusterRequest::LocalState => json(serde_json::to_vec(&self.local_state())),
                leader_only => self.execute_as_leader(leader_only).await,
            }
        })
    }

    fn handle_app(&self, service: String, payload: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(self.serve_app(service, payload))
    }
}
