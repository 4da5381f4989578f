//! Inter-node RPC over tonic with mutual TLS: Raft messages and the cluster's own calls (forwarded
//! writes, read index, join, membership changes, status), each one JSON document per unary call; and
//! the higher layers' own requests (`/arca.Cluster/App`), whose bytes this crate carries unread.

use std::collections::HashMap;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut};
use futures::future::BoxFuture;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Status, server::NamedService};

use crate::tls::{ClusterIdentity, NODE_SERVER_NAME};
use crate::{MetaRequest, TypeConfig};
use arca_types::NodeId;
use arca_types::records::NodeInfo;

/// gRPC path of the cluster's own calls.
const CALL_PATH: &str = "/arca.Cluster/Call";
/// gRPC path of the higher layers' requests: a service name and opaque bytes ([`app_frame`]).
const APP_PATH: &str = "/arca.Cluster/App";
/// Largest message accepted between nodes unless the node says otherwise
/// ([`NodeOptions::max_call_bytes`](crate::NodeOptions), derived by `arca serve` from the API's own
/// limits so that whatever the API accepts can be forwarded); snapshot chunks and log batches stay far
/// below it.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A call from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum ClusterRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client write forwarded to the node believed to lead.
    Write(MetaRequest),
    /// Asks the leader for a log index that a linearizable read must wait for.
    ReadIndex,
    /// Adds a node as learner (and voter while voters are few); answered by the leader.
    Join {
        id: NodeId,
        info: NodeInfo,
    },
    /// Promotes a learner to voter; answered by the leader.
    Promote {
        id: NodeId,
    },
    /// Removes a node from the membership; answered by the leader.
    Remove {
        id: NodeId,
    },
    /// The leader's view of the cluster.
    Status,
    /// This node's own applied index and state hash.
    LocalState,
}

/// Why a call to a peer failed before the peer could answer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot reach node at {addr}: {message}")]
    Unreachable { addr: String, message: String },
    #[error("node at {addr} answered something unreadable: {message}")]
    Protocol { addr: String, message: String },
    #[error("call to node at {addr} timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
}

/// Passes bytes through unchanged; requests and answers are serialized by the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;
    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0u8; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// What the serving side does with a [`ClusterRequest`]: answers with a JSON document.
pub trait ClusterHandler: Send + Sync + 'static {
    /// Handles one request; `Err` becomes a gRPC status.
    fn handle(&self, request: ClusterRequest) -> BoxFuture<'_, Result<Vec<u8>, String>>;
    /// Handles one request of a higher layer's `service`; `Err` (no such service) becomes a gRPC status.
    fn handle_app(&self, service: String, payload: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>>;
}

/// The body of an App request: the service name's length (2 bytes, big-endian), the name, the payload.
pub fn app_frame(service: &str, payload: &[u8]) -> Vec<u8> {
    let name = &service.as_bytes()[..service.len().min(u16::MAX as usize)];
    let mut body = Vec::with_capacity(2 + name.len() + payload.len());
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(payload);
    body
}

/// Splits an App request body into its service name and payload; `None` when it is malformed.
pub fn app_unframe(mut body: Vec<u8>) -> Option<(String, Vec<u8>)> {
    let len = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let name = std::str::from_utf8(body.get(2..2 + len)?).ok()?.to_string();
    let payload = body.split_off(2 + len);
    Some((name, payload))
}

/// The tonic service that exposes a [`ClusterHandler`].
pub struct ClusterService<H> {
    handler: Arc<H>,
    max_message: usize,
}

impl<H> Clone for ClusterService<H> {
    fn clone(&self) -> Self {
        ClusterService { handler: self.handler.clone(), max_message: self.max_message }
    }
}

impl<H: ClusterHandler> ClusterService<H> {
    /// Wraps a handler.
    pub fn new(handler: Arc<H>) -> Self {
        ClusterService { handler, max_message: DEFAULT_MAX_MESSAGE }
    }

    /// Accepts and answers messages of up to `bytes` (encoded).
    pub fn with_max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }
}

impl<H> NamedService for ClusterService<H> {
    const NAME: &'static str = "arca.Cluster";
}

struct CallSvc<H>(Arc<H>);

impl<H: ClusterHandler> tonic::server::UnaryService<Vec<u8>> for CallSvc<H> {
    type Response = Vec<u8>;
    type Future = BoxFuture<'static, Result<tonic::Response<Vec<u8>>, Status>>;
    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        let handler = self.0.clone();
        Box::pin(async move {
            let req: ClusterRequest = serde_json::from_slice(request.get_ref())
                .map_err(|e| Status::invalid_argument(format!("undecodable cluster request: {e}")))?;
            handler.handle(req).await.map(tonic::Response::new).map_err(Status::unavailable)
        })
    }
}

struct AppSvc<H>(Arc<H>);

impl<H: ClusterHandler> tonic::server::UnaryService<Vec<u8>> for AppSvc<H> {
    type Response = Vec<u8>;
    type Future = BoxFuture<'static, Result<tonic::Response<Vec<u8>>, Status>>;
    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        let handler = self.0.clone();
        Box::pin(async move {
            let (service, payload) = app_unframe(request.into_inner())
                .ok_or_else(|| Status::invalid_argument("malformed App request"))?;
            handler.handle_app(service, payload).await.map(tonic::Response::new).map_err(Status::unavailable)
        })
    }
}

impl<H, B> tower::Service<http::Request<B>> for ClusterService<H>
where
    H: ClusterHandler,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let handler = self.handler.clone();
        let max = self.max_message;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(BytesCodec)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max);
            match req.uri().path() {
                CALL_PATH => Ok(grpc.unary(CallSvc(handler), req).await),
                APP_PATH => Ok(grpc.unary(AppSvc(handler), req).await),
                _ => Ok(Status::unimplemented("unknown cluster method").into_http()),
            }
        })
    }
}

/// Client side: one lazily connected channel per peer address, authenticated by the cluster identity.
#[derive(Clone)]
pub struct PeerClients {
    identity: ClusterIdentity,
    source: Option<std::net::IpAddr>,
    max_message: usize,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl std::fmt::Debug for PeerClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerClients")
    }
}

impl PeerClients {
    /// Clients that present `identity` and trust only its cluster authority.
    pub fn new(identity: ClusterIdentity) -> Self {
        PeerClients {
            identity,
            source: None,
            max_message: DEFAULT_MAX_MESSAGE,
            channels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Sends and accepts messages of up to `bytes` (encoded).
    pub fn with_max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Makes outgoing connections from `source` (a fixed local IP) when given.
    pub fn with_source(mut self, source: Option<std::net::IpAddr>) -> Self {
        self.source = source;
        self
    }

    fn channel(&self, addr: &str) -> Result<Channel, NetError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let unreachable = |e: tonic::transport::Error| NetError::Unreachable {
            addr: addr.to_string(),
            message: e.to_string(),
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.identity.ca_pem))
            .identity(Identity::from_pem(&self.identity.cert_pem, &self.identity.key_pem))
            .domain_name(NODE_SERVER_NAME);
        let channel = Endpoint::from_shared(format!("https://{addr}"))
            .map_err(unreachable)?
            .tls_config(tls)
            .map_err(unreachable)?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .local_address(self.source)
            .connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// Sends `request` to the node at `addr` and decodes its answer.
    pub async fn call<R: DeserializeOwned>(
        &self,
        addr: &str,
        request: &ClusterRequest,
        timeout: Duration,
    ) -> Result<R, NetError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| NetError::Protocol { addr: addr.to_string(), message: e.to_string() })?;
        let answer = self.unary(addr, CALL_PATH, body, timeout).await?;
        serde_json::from_slice(&answer)
            .map_err(|e| NetError::Protocol { addr: addr.to_string(), message: e.to_string() })
    }

    /// Sends `payload` for a higher layer's `service` to the node at `addr`; answers its bytes.
    pub async fn call_app(
        &self,
        addr: &str,
        service: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, NetError> {
        self.unary(addr, APP_PATH, app_frame(service, payload), timeout).await
    }

    /// One unary call of `path` with `body`, within `timeout`.
    async fn unary(
        &self,
        addr: &str,
        path: &'static str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, NetError> {
        let channel = self.channel(addr)?;
        let fut = async {
            let mut grpc = tonic::client::Grpc::new(channel)
                .max_decoding_message_size(self.max_message)
                .max_encoding_message_size(self.max_message);
            grpc.ready()
                .await
                .map_err(|e| NetError::Unreachable { addr: addr.to_string(), message: e.to_string() })?;
            let path = http::uri::PathAndQuery::from_static(path);
            grpc.unary(tonic::Request::new(body), path, BytesCodec)
                .await
                .map_err(|s| NetError::Unreachable { addr: addr.to_string(), message: describe_status(&s) })
        };
        let answer = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| NetError::Timeout { addr: addr.to_string(), after: timeout })??;
        Ok(answer.into_inner())
    }
}

fn describe_status(s: &Status) -> String {
    use std::error::Error;
    let mut text = format!("{}: {}", s.code(), s.message());
    let mut source = s.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

/// When each peer last answered a Raft message of this node (heartbeats and log batches of a leader,
/// votes of a candidate): on the leader, how long ago it last heard from each member.
#[derive(Debug, Clone, Default)]
pub struct LastHeard(Arc<Mutex<HashMap<NodeId, Instant>>>);

impl LastHeard {
    /// Notes that `node` answered just now.
    fn heard(&self, node: NodeId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(node, Instant::now());
    }

    /// How long ago `node` last answered; `None` when it never did since this node started.
    pub fn since(&self, node: NodeId) -> Option<Duration> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&node).map(Instant::elapsed)
    }
}

/// openraft's network factory over [`PeerClients`].
#[derive(Debug, Clone)]
pub struct Network {
    clients: PeerClients,
    heard: LastHeard,
}

impl Network {
    /// A factory sharing `clients` with the rest of the node.
    pub fn new(clients: PeerClients) -> Self {
        Network { clients, heard: LastHeard::default() }
    }

    /// The record of when each peer last answered, shared with the connections this factory makes.
    pub fn last_heard(&self) -> LastHeard {
        self.heard.clone()
    }
}

/// A connection to one peer, as openraft uses it.
pub struct PeerConnection {
    clients: PeerClients,
    target: NodeId,
    node: NodeInfo,
    heard: LastHeard,
    _p: PhantomData<()>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;
    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerConnection {
        PeerConnection {
            clients: self.clients.clone(),
            target,
            node: node.clone(),
            heard: self.heard.clone(),
            _p: PhantomData,
        }
    }
}

impl PeerConnection {
    async fn send<R, E>(
        &self,
        req: ClusterRequest,
        option: &RPCOption,
    ) -> Result<R, RPCError<NodeId, NodeInfo, E>>
    where
        R: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<R, E> =
            self.clients.call(&self.node.cluster_addr, &req, option.hard_ttl()).await.map_err(
                |e| match e {
                    NetError::Protocol { .. } => RPCError::Network(NetworkError::new(&e)),
                    _ => RPCError::Unreachable(Unreachable::new(&e)),
                },
            )?;
        self.heard.heard(self.target);
        answer
            .map_err(|e| RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.send(ClusterRequest::AppendEntries(rpc), &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(ClusterRequest::InstallSnapshot(rpc), &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.send(ClusterRequest::Vote(rpc), &option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_frame_round_trips_and_malformed_bodies_are_refused() {
        let body = app_frame("archive.shard", &[0, 1, 2, 255]);
        assert_eq!(app_unframe(body), Some(("archive.shard".to_string(), vec![0, 1, 2, 255])));
        assert_eq!(app_unframe(app_frame("", &[])), Some((String::new(), Vec::new())));
        assert_eq!(app_unframe(vec![]), None);
        assert_eq!(app_unframe(vec![0]), None);
        assert_eq!(app_unframe(vec![0, 5, b'a']), None, "a name longer than the body");
        assert_eq!(app_unframe(vec![0, 1, 0xff]), None, "a name that is not UTF-8");
    }
}
