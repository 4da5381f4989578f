//! Arca's metadata cluster: typed commands applied through openraft, durable log and snapshot storage on
//! local disk, a TLS network authenticated by the cluster secret, and membership at run time.
//!
//! Map: [`state`] is the deterministic state machine (pure, no IO); [`log_store`] and [`sm_store`] are the
//! openraft storage; [`tls`] turns the cluster secret into certificates; [`network`] carries Raft and
//! cluster RPCs over tonic; [`node`] is the handle the rest of Arca uses (write, linearizable read,
//! join, status); [`lease`] renews this node's lease on its stores and judges the others'.

pub mod error;
pub mod lease;
pub mod log_store;
pub mod network;
pub mod node;
pub mod sm_store;
pub mod state;
pub mod tls;

use std::io::Cursor;

use arca_types::records::NodeInfo;
use arca_types::{Command, CommandOutput, MetaError, NodeId, RequestId};
use serde::{Deserialize, Serialize};

pub use error::RaftNodeError;
pub use node::{AppHandler, ClusterStatus, MemberStatus, MetaNode, NodeOptions};
pub use state::MetaState;

/// One client write as it travels through the Raft log: the command and the id that makes it idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRequest {
    pub request_id: RequestId,
    pub command: Command,
}

impl std::fmt::Display for MetaRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:?}", self.request_id, self.command)
    }
}

/// The state machine's answer to one [`MetaRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaResponse {
    pub result: Result<CommandOutput, MetaError>,
}

openraft::declare_raft_types!(
    /// openraft type configuration of Arca's metadata cluster.
    pub TypeConfig:
        D = MetaRequest,
        R = MetaResponse,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The openraft instance type used by Arca.
pub type Raft = openraft::Raft<TypeConfig>;
