//! The node-to-node shard protocol: typed requests to the node serving a shard, typed answers and
//! errors, message bytes as bytes (CBOR), each request with a deadline the serving node keeps.

use std::time::Duration;

use arca_raft::RaftNodeError;
use arca_search::ShardQuery;
use arca_shard::manifest::Entry;
use arca_shard::shard::ShardError;
use arca_types::query::QueryLimitError;
use arca_types::{ArchiveId, NodeId, ShardId};

use super::{ArchiveError, ArchiveService, Archived, NewMessage};

/// The service name under which nodes send shard requests to the node serving the shard.
pub const ARCHIVE_SERVICE: &str = "archive.shard";

/// A request for the node serving `shard` of `tenant`, to be answered within `deadline_ms`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct ShardRequest {
    pub tenant: String,
    pub shard: ShardId,
    /// How long the serving node may work on it; past it, it answers [`WireError::DeadlineExceeded`].
    pub deadline_ms: u64,
    pub op: ShardOp,
}

/// What a [`ShardRequest`] asks of the shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) enum ShardOp {
    Archive { archive: ArchiveId, messages: Vec<WireMessage> },
    Search { query: Box<ShardQuery> },
    Fetch { number: u64, readable: Vec<ArchiveId> },
    Verify { include_indexes: bool },
    Rebuild,
    IndexInfo,
    Entries { after: u64, limit: usize },
}

/// One message of a forwarded batch: its folder key, its exact bytes and its direction.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct WireMessage {
    pub folder: String,
    #[serde(with = "serde_bytes")]
    pub raw: Vec<u8>,
    pub sent: bool,
}

/// The serving node's answer to a [`ShardOp`], one variant per operation.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) enum ShardReply {
    Archived(Vec<Archived>),
    Page(Box<arca_search::ShardPage>),
    Fetched {
        entry: Entry,
        #[serde(with = "serde_bytes")]
        raw: Vec<u8>,
    },
    Verified {
        report: Box<(arca_shard::shard::ShardVerify, Option<crate::index_check::IndexCheck>)>,
        /// The progress lines written meanwhile.
        lines: Vec<String>,
    },
    Rebuilt(u64),
    IndexInfo {
        documents: u64,
        files: Vec<(String, u64)>,
    },
    Entries(Vec<Entry>),
}

/// Why the serving node could not do a [`ShardRequest`]: the cases a caller acts on are variants of
/// their own; anything else travels as its message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) enum WireError {
    ServedElsewhere { shard: ShardId, node: NodeId },
    NotCurrent { shard: ShardId },
    NoSuchMessage { shard: ShardId, number: u64 },
    QueryLimit(QueryLimitError),
    StoreDisabled { id: ShardId, name: String },
    TakeoverFailed { shard: ShardId, retry_in_ms: u64, reason: String },
    DeadlineExceeded { shard: ShardId, after_ms: u64 },
    Undecodable { reason: String },
    Failed { message: String },
}

impl From<ArchiveError> for WireError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::ServedElsewhere { shard, node } => WireError::ServedElsewhere { shard, node },
            ArchiveError::NotCurrent { shard } => WireError::NotCurrent { shard },
            ArchiveError::Shard(ShardError::NoSuchMessage { shard, number }) => {
                WireError::NoSuchMessage { shard, number }
            }
            ArchiveError::QueryLimit(limit) => WireError::QueryLimit(limit),
            ArchiveError::StoreDisabled { id, name } => WireError::StoreDisabled { id, name },
            ArchiveError::TakeoverFailed { shard, retry_in_ms, reason } => {
                WireError::TakeoverFailed { shard, retry_in_ms, reason }
            }
            other => WireError::Failed { message: other.to_string() },
        }
    }
}

impl WireError {
    /// The error as the caller's node reports it: the serving node's typed refusals keep their type.
    fn into_archive_error(self, node: NodeId) -> ArchiveError {
        match self {
            WireError::ServedElsewhere { shard, node } => ArchiveError::ServedElsewhere { shard, node },
            WireError::NotCurrent { shard } => ArchiveError::NotCurrent { shard },
            WireError::NoSuchMessage { shard, number } => ShardError::NoSuchMessage { shard, number }.into(),
            WireError::QueryLimit(limit) => ArchiveError::QueryLimit(limit),
            WireError::StoreDisabled { id, name } => ArchiveError::StoreDisabled { id, name },
            WireError::TakeoverFailed { shard, retry_in_ms, reason } => {
                ArchiveError::TakeoverFailed { shard, retry_in_ms, reason }
            }
            WireError::DeadlineExceeded { shard, after_ms } => {
                ArchiveError::Deadline { shard, node, after: Duration::from_millis(after_ms) }
            }
            WireError::Undecodable { reason } => ArchiveError::Forward { node, reason },
            WireError::Failed { message } => ArchiveError::Remote { node, message },
        }
    }
}

/// How long a serving node may take by default: verifying and rebuilding read every pack of the shard.
pub(super) fn default_deadline(op: &ShardOp) -> Duration {
    match op {
        ShardOp::Verify { .. } | ShardOp::Rebuild => Duration::from_secs(6 * 3600),
        _ => Duration::from_secs(300),
    }
}

/// Time allowed on top of a request's deadline for the network and the answer's way back.
const TRANSIT: Duration = Duration::from_secs(1);

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every type sent here is plain data.
    if let Err(e) = ciborium::into_writer(value, &mut out) {
        tracing::error!("encoding a shard request failed: {e}");
    }
    out
}

impl ArchiveService {
    /// Sends `op` on shard `shard` to `node`, which serves it, and answers its reply; `deadline` bounds
    /// the serving node's work (and, plus transit, the wait here).
    pub(super) async fn forward(
        &self,
        node: NodeId,
        tenant: &str,
        shard: ShardId,
        op: ShardOp,
        deadline: Option<Duration>,
    ) -> Result<ShardReply, ArchiveError> {
        let deadline = deadline.unwrap_or_else(|| default_deadline(&op));
        let request = ShardRequest {
            tenant: tenant.into(),
            shard,
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            op,
        };
        let answer = self.meta.call_node(node, ARCHIVE_SERVICE, encode(&request), deadline + TRANSIT).await;
        let bytes = match answer {
            Ok(b) => b,
            Err(RaftNodeError::Unavailable(why)) => {
                return Err(ArchiveError::Unreachable { node, reason: why });
            }
            Err(e) => return Err(e.into()),
        };
        let reply: Result<ShardReply, WireError> = ciborium::from_reader(bytes.as_slice())
            .map_err(|e| ArchiveError::Forward { node, reason: e.to_string() })?;
        reply.map_err(|e| e.into_archive_error(node))
    }

    /// Serves a [`ShardRequest`] another node sent because this node serves the shard; answers the
    /// encoded `Result<ShardReply, WireError>`.
    pub async fn handle_remote(&self, payload: &[u8]) -> Vec<u8> {
        let answer = match ciborium::from_reader::<ShardRequest, _>(payload) {
            Ok(request) => {
                let (shard, after_ms) = (request.shard, request.deadline_ms);
                let work = self.serve_request(request);
                match tokio::time::timeout(Duration::from_millis(after_ms), work).await {
                    Ok(answer) => answer.map_err(WireError::from),
                    Err(_) => Err(WireError::DeadlineExceeded { shard, after_ms }),
                }
            }
            Err(e) => Err(WireError::Undecodable { reason: e.to_string() }),
        };
        encode(&answer)
    }

    async fn serve_request(&self, request: ShardRequest) -> Result<ShardReply, ArchiveError> {
        let ShardRequest { tenant, shard, op, .. } = request;
        let served = self.place_here(&tenant, shard).await?;
        Ok(match op {
            ShardOp::Archive { archive, messages } => {
                let messages = messages
                    .into_iter()
                    .map(|m| NewMessage { folder: m.folder, raw: m.raw, sent: m.sent })
                    .collect();
                ShardReply::Archived(self.archive_served(served, &tenant, shard, archive, messages).await?)
            }
            ShardOp::Search { query } => {
                self.counters.shard_search();
                ShardReply::Page(Box::new(super::read::search_served(&served, shard, *query).await?))
            }
            ShardOp::Fetch { number, readable } => {
                let (entry, raw) = super::read::fetch_served(&served, shard, number, &readable).await?;
                ShardReply::Fetched { entry, raw }
            }
            ShardOp::Verify { include_indexes } => {
                let mut lines = Vec::new();
                let report =
                    super::admin::verify_served(&served, shard, include_indexes, |l| lines.push(l)).await?;
                ShardReply::Verified { report: Box::new(report), lines }
            }
            ShardOp::Rebuild => ShardReply::Rebuilt(self.rebuild_served(&served).await?),
            ShardOp::IndexInfo => {
                let (documents, files) = super::admin::index_info_served(&served);
                ShardReply::IndexInfo { documents, files }
            }
            ShardOp::Entries { after, limit } => {
                ShardReply::Entries(super::read::entries_page(&served, after, limit))
            }
        })
    }
}

/// The error for a reply of the wrong kind (a node of another version, or a bug).
pub(super) fn unexpected(node: NodeId, reply: &ShardReply) -> ArchiveError {
    let kind = format!("{reply:?}");
    let kind = kind.split(['(', ' ', '{']).next().unwrap_or("?").to_string();
    ArchiveError::Forward { node, reason: format!("unexpected answer '{kind}'") }
}

/// Listing entries per forwarded page (about 250 bytes each encoded: ~12 MiB a page).
pub(super) const ENTRIES_PAGE: usize = 50_000;

/// Room kept in a forwarded request for everything but its messages (tenant, ids, framing).
pub(super) const FORWARD_ENVELOPE_BYTES: usize = 64 * 1024;

/// Room for one message's folder key in a forwarded request or answer.
const MAX_FOLDER_BYTES: usize = 64 * 1024;

/// The largest message between nodes, derived from what the API accepts: one message of the largest
/// size the limits allow with its folder, plus the envelope. Batches are forwarded in requests of at
/// most this size, and a forwarded fetch answers one message, so every request the API accepts can be
/// forwarded. `arca serve` configures the cluster RPC with it.
pub fn max_forward_bytes(limits: &arca_ingest::Limits) -> usize {
    let message = usize::try_from(limits.max_message_bytes).unwrap_or(usize::MAX / 2);
    encoded_message_bytes("", message)
        .saturating_add(MAX_FOLDER_BYTES)
        .saturating_add(FORWARD_ENVELOPE_BYTES)
        .max(arca_raft::network::DEFAULT_MAX_MESSAGE)
}

/// The encoded size of one forwarded message at most: its bytes, folder and CBOR framing.
pub(super) fn encoded_message_bytes(folder: &str, raw_len: usize) -> usize {
    raw_len.saturating_add(folder.len()).saturating_add(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_bytes_travel_as_bytes_not_as_text() {
        let raw: Vec<u8> = (0..=255u8).cycle().take(30_000).collect();
        let request = ShardRequest {
            tenant: "t".into(),
            shard: 7,
            deadline_ms: 1000,
            op: ShardOp::Archive {
                archive: 3,
                messages: vec![WireMessage { folder: "inbox".into(), raw: raw.clone(), sent: true }],
            },
        };
        let bytes = encode(&request);
        assert!(bytes.len() < encoded_message_bytes("inbox", raw.len()) + 100, "{} bytes", bytes.len());
        let back: ShardRequest = ciborium::from_reader(bytes.as_slice()).expect("decodes");
        match back.op {
            ShardOp::Archive { messages, .. } => assert_eq!(messages[0].raw, raw),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn typed_errors_keep_their_type_across_nodes() {
        let e: WireError = ArchiveError::Shard(ShardError::NoSuchMessage { shard: 4, number: 9 }).into();
        let bytes = encode(&Err::<ShardReply, _>(e));
        let back: Result<ShardReply, WireError> = ciborium::from_reader(bytes.as_slice()).expect("decodes");
        let err = back.expect_err("an error").into_archive_error(2);
        assert!(matches!(err, ArchiveError::Shard(ShardError::NoSuchMessage { shard: 4, number: 9 })));
    }

    #[test]
    fn garbage_is_answered_as_undecodable() {
        assert!(ciborium::from_reader::<ShardRequest, _>(&[0xff, 0x00, 0x13][..]).is_err());
    }
}
