//! Typed metadata commands: every change of metadata is one of these, validated by the state machine.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, ShardId};
use crate::records::{Compliance, NodeInfo};
use crate::values::{Authentication, FolderPrivilege, Privilege, ShardState, TenantState};

/// Identifies one logical write, so that a retried or forwarded write is applied once.
pub type RequestId = String;

/// A metadata change. Arguments arrive already parsed into value sets; names are validated on apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates a tenant (CLU-04).
    CreateTenant { name: String },
    /// Creates a user and, in the same step, the user's archive with `read,write` for the user (ADM-01).
    /// An orphaned archive of the same name is re-linked instead.
    CreateUser {
        tenant: String,
        user_name: String,
        full_name: Option<String>,
        authentication: Authentication,
        password_hash: Option<String>,
        privileges: BTreeSet<Privilege>,
        distinguished_name: Option<String>,
        email_addresses: Vec<String>,
    },
    /// Deletes a user; the archive stays (orphaned) and the user's grants on other archives go.
    DeleteUser { tenant: String, user_name: String },
    /// Renames a user record only; the archive's top-level folder keeps its name.
    RenameUser { tenant: String, old_user_name: String, new_user_name: String },
    /// Changes one property of a user.
    UpdateUser { tenant: String, user_name: String, change: UserChange },
    /// Replaces the privileges of a user on one archive (top-level folder). Empty = none.
    SetFolderPrivileges {
        tenant: String,
        user_name: String,
        folder: String,
        privileges: BTreeSet<FolderPrivilege>,
    },
    /// Removes every folder privilege of a user, own archive included.
    ClearFolderPrivileges { tenant: String, user_name: String },
    /// Creates a folder (and missing parents) below an archive's top-level folder: `archive/a/b`.
    CreateFolder { tenant: String, path: String },
    /// Moves or renames a folder, subfolders included, within its archive; its mail moves with it
    /// (filed under the folder's key, which the move keeps). Top-level folders rename the archive.
    MoveFolder { tenant: String, from: String, to: String },
    /// Deletes a folder and its subfolders (not a top-level folder).
    DeleteFolder { tenant: String, path: String },
    /// Adds a shard to the catalogue; `current` makes the tenant's previous current shard `normal`.
    /// `wrapped_key` is the shard's data key wrapped by the tenant key (JSON), never a key in clear.
    CreateShard {
        tenant: String,
        name: String,
        state: ShardState,
        #[serde(default)]
        wrapped_key: Option<String>,
    },
    /// Sets a tenant's key, wrapped by the cluster master key (JSON); refused once one is set.
    SetTenantKey { tenant: String, wrapped_key: String },
    /// Sets a shard's requested state.
    SetShardState { tenant: String, id: ShardId, state: ShardState },
    /// Renames a shard.
    RenameShard { tenant: String, id: ShardId, name: String },
    /// Makes `node` the serving node of a shard and raises its epoch, fencing every earlier writer.
    AssignShard { tenant: String, id: ShardId, node: NodeId },
    /// Publishes a shard's new manifest; refused unless `epoch` is the shard's current epoch
    /// (invariant 2) and `sequence` follows the last committed one.
    CommitManifest {
        tenant: String,
        id: ShardId,
        epoch: u64,
        sequence: u64,
        manifest: String,
        message_count: u64,
        byte_count: u64,
    },
    /// Replaces a tenant's compliance settings (CMP-01); the API checked the administrator's password.
    SetCompliance { tenant: String, compliance: Compliance },
    /// Records (or updates) a cluster node's addresses and version.
    RegisterNode { id: NodeId, info: NodeInfo },
    /// Forgets a node removed from the cluster.
    ForgetNode { id: NodeId },
    /// Creates a tenant and, in the same step, its first administrator (privilege `admin`, integrated
    /// login with `password_hash`) with the user's archive (CLU-04): the tenant can log in at once.
    CreateTenantWithAdmin { name: String, admin_name: String, password_hash: String },
    /// Enables or disables a tenant (CLU-04); the cluster operator tenant cannot be disabled.
    SetTenantState { name: String, state: TenantState },
    /// Deletes a tenant that has no archive stores; its users, archives and grants go with it only
    /// when `force` (else it must have none). The cluster operator tenant cannot be deleted.
    DeleteTenant { name: String, force: bool },
    /// Renews `node`'s lease on every store it owns: raises the node's renewal counter
    /// (`MetaState::leases`). Other nodes judge a lease expired when they have not seen the counter
    /// advance for a while, by their own clocks; no clocks are compared across nodes.
    RenewLease { node: NodeId },
    /// Takes a store over for `node` as a compare-and-set: refused (`MetaError::ClaimLost`) unless the
    /// store's epoch is still `expected_epoch` and, when `owner_renewals` is given, its owner's renewal
    /// counter is still that value (the owner has not renewed since it was judged dead). Raises the
    /// epoch, fencing every earlier writer (invariant 2).
    ClaimShard { tenant: String, id: ShardId, node: NodeId, expected_epoch: u64, owner_renewals: Option<u64> },
    /// Marks a node draining (no shard is moved or placed onto it; `arca node drain` moves its shards
    /// away) or clears the mark.
    SetNodeDraining { id: NodeId, draining: bool },
    /// Moves a shard to `node` if its epoch is still `epoch` (compare-and-set: a takeover or another
    /// move in between refuses this one) and raises the epoch, fencing the previous writer
    /// (invariant 2). Refused for an unknown or draining node, a disabled shard, or its own owner.
    MoveShard { tenant: String, id: ShardId, node: NodeId, epoch: u64 },
}

/// One property change of a user, as the `SetUser*` functions make them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserChange {
    /// An argon2id PHC string, already checked against the password policy.
    PasswordHash(String),
    Privileges(BTreeSet<Privilege>),
    EmailAddresses(Vec<String>),
    FullName(Option<String>),
    Authentication(Authentication),
    DistinguishedName(Option<String>),
    Pop3UserNames(Vec<String>),
}

/// What a successfully applied command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutput {
    /// Nothing beyond success.
    Done,
    /// The id of a newly created record (user, shard, tenant).
    Created(u64),
    /// The new epoch of a shard after [`Command::AssignShard`].
    Epoch(u64),
    /// The node's renewal counter after [`Command::RenewLease`].
    Renewed(u64),
}
