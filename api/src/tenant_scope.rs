//! Shard ids are numbered cluster-wide, so a request of one tenant can name another tenant's store id
//! (in `VerifyStore`, a message id `<store>:<number>`, a search filter). Every path to a shard checks
//! here first that the store is the caller's tenant's (CLU-04): another tenant's store is "not found",
//! before anything is looked up, opened, taken over or dropped by its id.

use arca_raft::MetaNode;
use arca_types::{MetaError, ShardId};

use crate::archive::ArchiveError;

/// `Ok` when `tenant` has store `id`; else the same "store not found" an unknown id gets. Reads the
/// locally applied state, and only when the store is not there a linearizable one (a store created a
/// moment ago elsewhere).
pub(crate) async fn shard_of_tenant(meta: &MetaNode, tenant: &str, id: ShardId) -> Result<(), ArchiveError> {
    let known = || meta.with_state(|s| s.tenant(tenant).is_ok_and(|t| t.shards.contains_key(&id)));
    if known() {
        return Ok(());
    }
    meta.linearizable().await?;
    if known() { Ok(()) } else { Err(MetaError::not_found("store", id.to_string()).into()) }
}
