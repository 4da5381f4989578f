//! Keys: the node's master key unwraps tenant keys held in Raft, which unwrap shard data keys.

use arca_raft::RaftNodeError;
use arca_shard::{DataKey, TenantKey, WrappedKey};
use arca_types::{Command, MetaError, ShardId};

use super::{ArchiveError, ArchiveService};

impl ArchiveService {
    /// The data key of shard `id` of `tenant`, unwrapped from its catalogue record.
    pub(crate) async fn shard_data_key(
        &self,
        tenant: &str,
        id: ShardId,
        wrapped_key: Option<&str>,
    ) -> Result<DataKey, ArchiveError> {
        let json = wrapped_key.ok_or_else(|| ArchiveError::Keys(format!("store {id} has no data key")))?;
        let tenant_key = self.tenant_key(tenant).await?;
        tenant_key.unwrap_data_key(&wrapped(json)?).map_err(|e| ArchiveError::Keys(e.to_string()))
    }

    /// The master key as hex, for handing to a joining node over the cluster channel. Never log it.
    pub fn master_key_hex(&self) -> String {
        hex::encode(self.master.expose_secret())
    }

    /// The tenant key, created (and published through Raft) when the tenant has none.
    pub(super) async fn tenant_key(&self, tenant: &str) -> Result<TenantKey, ArchiveError> {
        self.meta.linearizable().await?;
        let existing = self.meta.with_state(|s| s.tenant(tenant).map(|t| t.wrapped_key.clone()))?;
        let json = match existing {
            Some(json) => json,
            None => {
                let key = TenantKey::generate();
                let w = self.master.wrap_tenant_key(&key).map_err(|e| ArchiveError::Keys(e.to_string()))?;
                let text = serde_json::to_string(&w).map_err(|e| ArchiveError::Keys(e.to_string()))?;
                match self
                    .meta
                    .write(Command::SetTenantKey { tenant: tenant.into(), wrapped_key: text })
                    .await
                {
                    Ok(_) | Err(RaftNodeError::Meta(MetaError::AlreadyExists { .. })) => {}
                    Err(e) => return Err(e.into()),
                }
                self.meta.linearizable().await?;
                self.meta
                    .with_state(|s| s.tenant(tenant).map(|t| t.wrapped_key.clone()))?
                    .ok_or_else(|| ArchiveError::Keys("the tenant key was not recorded".into()))?
            }
        };
        self.master.unwrap_tenant_key(&wrapped(&json)?).map_err(|e| ArchiveError::Keys(e.to_string()))
    }
}

/// A wrapped key as the catalogue holds it (JSON).
pub(super) fn wrapped(json: &str) -> Result<WrappedKey, ArchiveError> {
    serde_json::from_str(json)
        .map_err(|e| ArchiveError::Keys(format!("a wrapped key in the catalogue is unreadable: {e}")))
}
