//! The deterministic metadata state machine: tenants, users, archives, folder grants, shards, nodes.
//!
//! Pure data and logic, no IO: every replica that applies the same commands in the same order reaches
//! the same state (and the same [`MetaState::state_hash`]). Every command is validated completely before
//! anything changes, so a refused command leaves the state untouched (apart from the remembered answer
//! for its request id).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use arca_types::command::{Command, CommandOutput, RequestId, UserChange};
use arca_types::error::MetaError;
use arca_types::ids::{ArchiveId, NodeId, ShardId, UserId};
use arca_types::names::{
    MAX_FOLDER_LISTING, MAX_FOLDERS_PER_ARCHIVE, validate_folder_name, validate_tenant_name,
    validate_user_name,
};
use arca_types::records::{Archive, DEFAULT_TENANT, NodeInfo, Shard, Tenant, User};
use arca_types::values::{Authentication, FolderPrivilege, Privilege, ShardState, TenantState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many request ids the state machine remembers for deduplication (oldest forgotten first).
pub const MAX_REMEMBERED_REQUESTS: usize = 100_000;

/// The replicated metadata of the whole cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    /// Tenants by name (as entered; looked up case-insensitively).
    pub tenants: BTreeMap<String, Tenant>,
    /// Cluster nodes known to the catalogue.
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// The next id to hand out for users, archives, shards and tenants (0 is treated as 1).
    pub next_id: u64,
    /// The answer recorded for each remembered request id.
    pub applied_requests: BTreeMap<RequestId, Result<CommandOutput, MetaError>>,
    /// Remembered request ids, oldest first.
    pub request_order: VecDeque<RequestId>,
    /// The fingerprint of the command each remembered request id carried, so that an id reused for
    /// another command is refused instead of answering the first command's result.
    #[serde(default)]
    pub request_fingerprints: BTreeMap<RequestId, String>,
    /// Each node's lease renewal counter (`RenewLease`): a node whose counter stops advancing loses
    /// its stores (see `lease.rs`). Counters only grow while the node is registered.
    #[serde(default)]
    pub leases: BTreeMap<NodeId, u64>,
    /// Nodes marked draining (`SetNodeDraining`): no shard is moved or placed onto them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub draining: BTreeSet<NodeId>,
}

/// The fingerprint of a command as a retry must repeat it: SHA-256 of its JSON, without the freshly
/// generated wrapped keys (a retried `CreateStore` wraps a new key; it is the same request).
pub fn command_fingerprint(cmd: &Command) -> String {
    let mut cmd = cmd.clone();
    match &mut cmd {
        Command::CreateShard { wrapped_key, .. } => *wrapped_key = None,
        Command::SetTenantKey { wrapped_key, .. } => wrapped_key.clear(),
        _ => {}
    }
    let json = serde_json::to_vec(&cmd).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..16])
}

impl MetaState {
    /// Applies a command once per request id: a repeated id returns the recorded answer without applying
    /// again. An empty request id disables deduplication for that command.
    pub fn apply(&mut self, request_id: &str, cmd: &Command) -> Result<CommandOutput, MetaError> {
        if request_id.is_empty() {
            return self.apply_command(cmd);
        }
        let fingerprint = command_fingerprint(cmd);
        if let Some(answer) = self.applied_requests.get(request_id) {
            // Ids remembered before fingerprints were recorded have none: their answer stands.
            return match self.request_fingerprints.get(request_id) {
                Some(f) if *f != fingerprint => {
                    Err(MetaError::RequestIdReused { id: request_id.to_string() })
                }
                _ => answer.clone(),
            };
        }
        let answer = self.apply_command(cmd);
        self.applied_requests.insert(request_id.to_string(), answer.clone());
        self.request_fingerprints.insert(request_id.to_string(), fingerprint);
        self.request_order.push_back(request_id.to_string());
        while self.request_order.len() > MAX_REMEMBERED_REQUESTS {
            if let Some(oldest) = self.request_order.pop_front() {
                self.applied_requests.remove(&oldest);
                self.request_fingerprints.remove(&oldest);
            }
        }
        answer
    }

    /// Validates and applies one command; a refused command changes nothing.
    fn apply_command(&mut self, cmd: &Command) -> Result<CommandOutput, MetaError> {
        match cmd {
            Command::CreateTenant { name } => self.create_tenant(name),
            Command::CreateUser {
                tenant,
                user_name,
                full_name,
                authentication,
                password_hash,
                privileges,
                distinguished_name,
                email_addresses,
            } => {
                let key = self.tenant_key(tenant)?;
                let Some(t) = self.tenants.get_mut(&key) else {
                    return Err(MetaError::not_found("tenant", tenant.as_str()));
                };
                let new_user = NewUser {
                    user_name,
                    full_name,
                    authentication: *authentication,
                    password_hash,
                    privileges,
                    distinguished_name,
                    email_addresses,
                };
                create_user(t, &mut self.next_id, new_user)
            }
            Command::DeleteUser { tenant, user_name } => delete_user(self.tenant_mut(tenant)?, user_name),
            Command::RenameUser { tenant, old_user_name, new_user_name } => {
                rename_user(self.tenant_mut(tenant)?, old_user_name, new_user_name)
            }
            Command::UpdateUser { tenant, user_name, change } => {
                update_user(self.tenant_mut(tenant)?, user_name, change)
            }
            Command::SetFolderPrivileges { tenant, user_name, folder, privileges } => {
                set_folder_privileges(self.tenant_mut(tenant)?, user_name, folder, privileges)
            }
            Command::ClearFolderPrivileges { tenant, user_name } => {
                let t = self.tenant_mut(tenant)?;
                let id = find_user(t, user_name)
                    .ok_or_else(|| MetaError::not_found("user", user_name.as_str()))?;
                t.grants.remove(&id);
                Ok(CommandOutput::Done)
            }
            Command::CreateFolder { tenant, path } => create_folder(self.tenant_mut(tenant)?, path),
            Command::MoveFolder { tenant, from, to } => move_folder(self.tenant_mut(tenant)?, from, to),
            Command::DeleteFolder { tenant, path } => delete_folder(self.tenant_mut(tenant)?, path),
            Command::CreateShard { tenant, name, state, wrapped_key } => {
                let key = self.tenant_key(tenant)?;
                let Some(t) = self.tenants.get_mut(&key) else {
                    return Err(MetaError::not_found("tenant", tenant.as_str()));
                };
                let created = create_shard(t, &mut self.next_id, name, *state)?;
                if let (CommandOutput::Created(id), Some(shard)) = (&created, wrapped_key)
                    && let Some(s) = t.shards.get_mut(id)
                {
                    s.wrapped_key = Some(shard.clone());
                }
                Ok(created)
            }
            Command::SetTenantKey { tenant, wrapped_key } => {
                let t = self.tenant_mut(tenant)?;
                if t.wrapped_key.is_some() {
                    return Err(MetaError::exists("tenant key", tenant.as_str()));
                }
                t.wrapped_key = Some(wrapped_key.clone());
                Ok(CommandOutput::Done)
            }
            Command::SetShardState { tenant, id, state } => {
                set_shard_state(self.tenant_mut(tenant)?, *id, *state)
            }
            Command::RenameShard { tenant, id, name } => rename_shard(self.tenant_mut(tenant)?, *id, name),
            Command::AssignShard { tenant, id, node } => assign_shard(self.tenant_mut(tenant)?, *id, *node),
            Command::CommitManifest { tenant, id, epoch, sequence, manifest, message_count, byte_count } => {
                let commit = ManifestCommit {
                    epoch: *epoch,
                    sequence: *sequence,
                    manifest,
                    message_count: *message_count,
                    byte_count: *byte_count,
                };
                commit_manifest(self.tenant_mut(tenant)?, *id, commit)
            }
            Command::SetCompliance { tenant, compliance } => {
                self.tenant_mut(tenant)?.compliance = *compliance;
                Ok(CommandOutput::Done)
            }
            Command::RegisterNode { id, info } => {
                self.nodes.insert(*id, info.clone());
                Ok(CommandOutput::Done)
            }
            Command::ForgetNode { id } => {
                self.nodes.remove(id);
                self.leases.remove(id);
                self.draining.remove(id);
                Ok(CommandOutput::Done)
            }
            Command::CreateTenantWithAdmin { name, admin_name, password_hash } => {
                self.create_tenant_with_admin(name, admin_name, password_hash)
            }
            Command::SetTenantState { name, state } => {
                let key = self.tenant_key(name)?;
                if *state == TenantState::Disabled && key == DEFAULT_TENANT {
                    return Err(operator_tenant_refusal("disabled"));
                }
                self.tenant_mut(name)?.state = *state;
                Ok(CommandOutput::Done)
            }
            Command::DeleteTenant { name, force } => self.delete_tenant(name, *force),
            Command::RenewLease { node } => {
                if !self.nodes.contains_key(node) {
                    return Err(MetaError::not_found("node", node.to_string()));
                }
                let counter = self.leases.entry(*node).or_insert(0);
                *counter += 1;
                Ok(CommandOutput::Renewed(*counter))
            }
            Command::ClaimShard { tenant, id, node, expected_epoch, owner_renewals } => {
                let leases = &self.leases;
                let key = self.tenant_key(tenant)?;
                let t = self
                    .tenants
                    .get_mut(&key)
                    .ok_or_else(|| MetaError::not_found("tenant", tenant.as_str()))?;
                claim_shard(t, leases, *id, *node, *expected_epoch, *owner_renewals)
            }
            Command::SetNodeDraining { id, draining } => {
                if !self.nodes.contains_key(id) {
                    return Err(MetaError::not_found("node", id.to_string()));
                }
                if *draining {
                    self.draining.insert(*id);
                } else {
                    self.draining.remove(id);
                }
                Ok(CommandOutput::Done)
            }
            Command::MoveShard { tenant, id, node, epoch } => {
                if !self.nodes.contains_key(node) {
                    return Err(MetaError::not_found("node", node.to_string()));
                }
                if self.draining.contains(node) {
                    return Err(MetaError::Refused(format!(
                        "node {node} is draining: no store is moved onto it (arca node undrain {node} first)"
                    )));
                }
                move_shard(self.tenant_mut(tenant)?, *id, *node, *epoch)
            }
        }
    }

    /// `CreateTenantWithAdmin`: the tenant and its first administrator in one step; validated whole
    /// (on a copy) before anything changes.
    fn create_tenant_with_admin(
        &mut self,
        name: &str,
        admin_name: &str,
        password_hash: &str,
    ) -> Result<CommandOutput, MetaError> {
        validate_tenant_name("name", name)?;
        if self.tenants.keys().any(|k| same_name(k, name)) {
            return Err(MetaError::exists("tenant", name));
        }
        let mut next_id = self.next_id;
        let tenant_id = alloc_id(&mut next_id);
        let mut tenant = Tenant { name: name.to_string(), ..Tenant::default() };
        let admin = NewUser {
            user_name: admin_name,
            full_name: &Some("Administrator".to_string()),
            authentication: Authentication::Integrated,
            password_hash: &Some(password_hash.to_string()),
            privileges: &BTreeSet::from([Privilege::Admin]),
            distinguished_name: &None,
            email_addresses: &[],
        };
        create_user(&mut tenant, &mut next_id, admin).map_err(|e| match e {
            MetaError::Invalid { field, reason } if field == "userName" => {
                MetaError::Invalid { field: "adminName".into(), reason }
            }
            other => other,
        })?;
        self.next_id = next_id;
        self.tenants.insert(name.to_string(), tenant);
        Ok(CommandOutput::Created(tenant_id))
    }

    /// `DeleteTenant`: refused for the operator tenant and while the tenant has archive stores
    /// (removing their objects is not available yet); users and archives go only with `force`.
    fn delete_tenant(&mut self, name: &str, force: bool) -> Result<CommandOutput, MetaError> {
        let key = self.tenant_key(name)?;
        if key == DEFAULT_TENANT {
            return Err(operator_tenant_refusal("deleted"));
        }
        let t = self.tenant(&key)?;
        if !t.shards.is_empty() {
            let ids: Vec<String> = t.shards.keys().map(ShardId::to_string).collect();
            return Err(MetaError::Refused(format!(
                "tenant '{key}' has {} archive store(s) (ids {}): deleting a tenant's stores and their objects is \
                 not available yet in this version of Arca; nothing was deleted (disable the tenant instead)",
                ids.len(),
                ids.join(", ")
            )));
        }
        if !force && (!t.users.is_empty() || !t.archives.is_empty()) {
            return Err(MetaError::Refused(format!(
                "tenant '{key}' still has {} user(s) and {} archive(s); delete them first, or pass force=true \
                 to delete them with the tenant; nothing was deleted",
                t.users.len(),
                t.archives.len()
            )));
        }
        self.tenants.remove(&key);
        Ok(CommandOutput::Done)
    }

    /// Creates a tenant; names follow the tenant name rule and are unique case-insensitively.
    fn create_tenant(&mut self, name: &str) -> Result<CommandOutput, MetaError> {
        validate_tenant_name("name", name)?;
        if self.tenants.keys().any(|k| same_name(k, name)) {
            return Err(MetaError::exists("tenant", name));
        }
        let id = alloc_id(&mut self.next_id);
        self.tenants.insert(name.to_string(), Tenant { name: name.to_string(), ..Tenant::default() });
        Ok(CommandOutput::Created(id))
    }

    /// The map key of a tenant, found exactly or case-insensitively.
    fn tenant_key(&self, name: &str) -> Result<String, MetaError> {
        if self.tenants.contains_key(name) {
            return Ok(name.to_string());
        }
        self.tenants
            .keys()
            .find(|k| same_name(k, name))
            .cloned()
            .ok_or_else(|| MetaError::not_found("tenant", name))
    }

    /// A tenant for changing, found exactly or case-insensitively.
    fn tenant_mut(&mut self, name: &str) -> Result<&mut Tenant, MetaError> {
        let key = self.tenant_key(name)?;
        self.tenants.get_mut(&key).ok_or_else(|| MetaError::not_found("tenant", name))
    }

    /// A tenant by name (case-insensitive).
    pub fn tenant(&self, name: &str) -> Result<&Tenant, MetaError> {
        let key = self.tenant_key(name)?;
        self.tenants.get(&key).ok_or_else(|| MetaError::not_found("tenant", name))
    }

    /// A user by name (case-insensitive) within a tenant.
    pub fn user(&self, tenant: &str, user_name: &str) -> Result<&User, MetaError> {
        let t = self.tenant(tenant)?;
        find_user(t, user_name)
            .and_then(|id| t.users.get(&id))
            .ok_or_else(|| MetaError::not_found("user", user_name))
    }

    /// An archive by its top-level folder name (case-insensitive); a path with `/` is an error naming `folder`.
    pub fn archive_by_name(&self, tenant: &str, folder: &str) -> Result<&Archive, MetaError> {
        let t = self.tenant(tenant)?;
        let id = top_level_archive(t, "folder", folder)?;
        t.archives.get(&id).ok_or_else(|| MetaError::not_found("folder", folder))
    }

    /// The folder privileges a user holds, as (archive name, privileges), sorted by archive name.
    pub fn folder_grants_of(&self, tenant: &str, user: UserId) -> Vec<(String, BTreeSet<FolderPrivilege>)> {
        let Ok(t) = self.tenant(tenant) else {
            return Vec::new();
        };
        let mut out: Vec<(String, BTreeSet<FolderPrivilege>)> = t
            .grants
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|(archive, privileges)| {
                t.archives.get(archive).map(|a| (a.name.clone(), privileges.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.0.to_lowercase().cmp(&b.0.to_lowercase()).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// The tenant's current shard, if it has one.
    pub fn current_shard(&self, tenant: &str) -> Option<&Shard> {
        self.tenant(tenant).ok()?.shards.values().find(|s| s.state == ShardState::Current)
    }

    /// Folders below `folder` (all archives and their folders when `None` or empty) as full paths
    /// `archive/Inbox/Sub`, sorted; `max_levels` limits the depth below the start (1 = direct children).
    /// A listing of more than [`MAX_FOLDER_LISTING`] folders is refused naming the limit.
    pub fn child_folders(
        &self,
        tenant: &str,
        folder: Option<&str>,
        max_levels: Option<u32>,
    ) -> Result<Vec<String>, MetaError> {
        let t = self.tenant(tenant)?;
        let max = max_levels.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let mut out = Vec::new();
        let push = |out: &mut Vec<String>, path: String| {
            if out.len() >= MAX_FOLDER_LISTING {
                return Err(MetaError::invalid(
                    "folder",
                    format!(
                        "the listing holds more than {MAX_FOLDER_LISTING} folders (MAX_FOLDER_LISTING); name a folder or lower maxLevels"
                    ),
                ));
            }
            out.push(path);
            Ok(())
        };
        match folder.filter(|f| !f.is_empty()) {
            None => {
                for archive in t.archives.values() {
                    if max >= 1 {
                        push(&mut out, archive.name.clone())?;
                    }
                    for sub in archive.folders.keys() {
                        if depth(sub) < max {
                            push(&mut out, format!("{}/{}", archive.name, sub))?;
                        }
                    }
                }
            }
            Some(start) => {
                let (top, rest) = split_top(start);
                let id = find_archive(t, top).ok_or_else(|| MetaError::not_found("folder", start))?;
                let archive = t.archives.get(&id).ok_or_else(|| MetaError::not_found("folder", start))?;
                match rest {
                    None => {
                        for sub in archive.folders.keys() {
                            if depth(sub) <= max {
                                push(&mut out, format!("{}/{}", archive.name, sub))?;
                            }
                        }
                    }
                    Some(rest) => {
                        if !archive.folders.contains_key(rest) {
                            return Err(MetaError::not_found("folder", start));
                        }
                        let base = depth(rest);
                        for sub in archive.folders.keys().filter(|f| is_strictly_below(f, rest)) {
                            if depth(sub) - base <= max {
                                push(&mut out, format!("{}/{}", archive.name, sub))?;
                            }
                        }
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Hex SHA-256 of the canonical JSON serialization; equal states give equal hashes on every replica.
    pub fn state_hash(&self) -> String {
        let bytes = match serde_json::to_vec(self) {
            Ok(bytes) => bytes,
            Err(e) => format!("unserializable state: {e}").into_bytes(),
        };
        hex::encode(Sha256::digest(&bytes))
    }
}

/// The refusal of disabling or deleting the cluster operator tenant.
fn operator_tenant_refusal(what: &str) -> MetaError {
    MetaError::Refused(format!(
        "tenant '{DEFAULT_TENANT}' is the cluster operator tenant (its administrators manage tenants and the cluster); \
         it cannot be {what}"
    ))
}

/// The arguments of `CreateUser`, borrowed from the command.
struct NewUser<'a> {
    user_name: &'a str,
    full_name: &'a Option<String>,
    authentication: Authentication,
    password_hash: &'a Option<String>,
    privileges: &'a BTreeSet<Privilege>,
    distinguished_name: &'a Option<String>,
    email_addresses: &'a [String],
}

/// Hands out the next id from the single counter (starting at 1).
fn alloc_id(next_id: &mut u64) -> u64 {
    let id = (*next_id).max(1);
    *next_id = id.saturating_add(1);
    id
}

/// Case-insensitive name comparison (Unicode lower case).
fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// The id of the user with that name (case-insensitive).
fn find_user(t: &Tenant, name: &str) -> Option<UserId> {
    t.users.values().find(|u| same_name(&u.name, name)).map(|u| u.id)
}

/// The id of the archive with that top-level folder name (case-insensitive).
fn find_archive(t: &Tenant, name: &str) -> Option<ArchiveId> {
    t.archives.values().find(|a| same_name(&a.name, name)).map(|a| a.id)
}

/// The archive named by a top-level folder argument; subfolder paths are refused naming `field`.
fn top_level_archive(t: &Tenant, field: &str, folder: &str) -> Result<ArchiveId, MetaError> {
    if folder.contains('/') {
        return Err(MetaError::invalid(
            field,
            format!("'{folder}' is a subfolder; only top-level folders (user archives) are accepted"),
        ));
    }
    find_archive(t, folder).ok_or_else(|| MetaError::not_found("folder", folder))
}

/// Splits `archive/a/b` into the top-level folder and the path below it.
fn split_top(path: &str) -> (&str, Option<&str>) {
    match path.split_once('/') {
        Some((top, rest)) => (top, Some(rest)),
        None => (path, None),
    }
}

/// Number of segments of a subfolder path (`a/b` = 2).
fn depth(path: &str) -> usize {
    path.split('/').count()
}

/// True when `path` lies strictly below `ancestor`.
fn is_strictly_below(path: &str, ancestor: &str) -> bool {
    path.len() > ancestor.len() && path.starts_with(ancestor) && path.as_bytes()[ancestor.len()] == b'/'
}

/// True for `path` itself or anything below it.
fn is_in_subtree(path: &str, root: &str) -> bool {
    path == root || is_strictly_below(path, root)
}

/// The path and all its ancestors: `a/b/c` -> `a`, `a/b`, `a/b/c`.
fn with_parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in path.char_indices() {
        if c == '/' {
            out.push(path[..i].to_string());
        }
    }
    out.push(path.to_string());
    out
}

/// A user can administer the tenant: holds `admin` and can log in (a password, or directory login).
fn is_usable_admin(u: &User) -> bool {
    u.is_admin() && (u.authentication == Authentication::DirectoryServices || u.password_hash.is_some())
}

/// Refuses a change that would leave the tenant without a usable administrator.
fn guard_last_admin(t: &Tenant, before: &User, after: Option<&User>) -> Result<(), MetaError> {
    if !is_usable_admin(before) || after.is_some_and(is_usable_admin) {
        return Ok(());
    }
    if t.users.values().any(|u| u.id != before.id && is_usable_admin(u)) {
        return Ok(());
    }
    Err(MetaError::Refused(format!(
        "user '{}' is the last administrator with a usable login; make another user an administrator first",
        before.name
    )))
}

/// Checks a global privilege set (`none` and `admin` alone) and drops `none`.
fn checked_privileges(privileges: &BTreeSet<Privilege>) -> Result<BTreeSet<Privilege>, MetaError> {
    for only in [Privilege::None, Privilege::Admin] {
        if privileges.contains(&only) && privileges.len() > 1 {
            return Err(MetaError::invalid("privileges", format!("'{only}' must be the only value")));
        }
    }
    Ok(privileges.iter().copied().filter(|p| *p != Privilege::None).collect())
}

/// Checks a password hash argument (never empty).
fn checked_hash(hash: &Option<String>) -> Result<(), MetaError> {
    match hash {
        Some(h) if h.is_empty() => Err(MetaError::invalid("password", "the password hash is empty")),
        _ => Ok(()),
    }
}

/// `CreateUser`: the user plus the own archive (or the re-linked orphaned one) with `read,write`.
fn create_user(t: &mut Tenant, next_id: &mut u64, new: NewUser<'_>) -> Result<CommandOutput, MetaError> {
    validate_user_name("userName", new.user_name)?;
    if find_user(t, new.user_name).is_some() {
        return Err(MetaError::exists("user", new.user_name));
    }
    let privileges = checked_privileges(new.privileges)?;
    checked_hash(new.password_hash)?;
    let orphan = match find_archive(t, new.user_name) {
        None => None,
        Some(id) => match t.archives.get(&id) {
            Some(a) if a.owner.is_none() => Some(id),
            _ => return Err(MetaError::exists("archive", new.user_name)),
        },
    };
    // Validation done; from here on nothing can fail.
    let user_id = alloc_id(next_id);
    let archive_id = match orphan {
        Some(id) => {
            if let Some(a) = t.archives.get_mut(&id) {
                a.owner = Some(user_id);
            }
            id
        }
        None => {
            let id = alloc_id(next_id);
            t.archives.insert(
                id,
                Archive {
                    id,
                    name: new.user_name.to_string(),
                    owner: Some(user_id),
                    folders: BTreeMap::new(),
                },
            );
            id
        }
    };
    t.users.insert(
        user_id,
        User {
            id: user_id,
            name: new.user_name.to_string(),
            full_name: new.full_name.clone(),
            authentication: new.authentication,
            password_hash: new.password_hash.clone(),
            privileges,
            distinguished_name: new.distinguished_name.clone(),
            email_addresses: new.email_addresses.to_vec(),
            pop3_user_names: Vec::new(),
            archive: archive_id,
        },
    );
    t.grants
        .entry(user_id)
        .or_default()
        .insert(archive_id, BTreeSet::from([FolderPrivilege::Read, FolderPrivilege::Write]));
    Ok(CommandOutput::Created(user_id))
}

/// `DeleteUser`: the archive stays (orphaned), the user's grants go; never the last usable admin.
fn delete_user(t: &mut Tenant, user_name: &str) -> Result<CommandOutput, MetaError> {
    let id = find_user(t, user_name).ok_or_else(|| MetaError::not_found("user", user_name))?;
    let user = t.users.get(&id).ok_or_else(|| MetaError::not_found("user", user_name))?;
    guard_last_admin(t, user, None)?;
    for archive in t.archives.values_mut().filter(|a| a.owner == Some(id)) {
        archive.owner = None;
    }
    t.grants.remove(&id);
    t.users.remove(&id);
    Ok(CommandOutput::Done)
}

/// `RenameUser`: only the user record's name changes; the archive keeps its name.
fn rename_user(t: &mut Tenant, old: &str, new: &str) -> Result<CommandOutput, MetaError> {
    let id = find_user(t, old).ok_or_else(|| MetaError::not_found("user", old))?;
    validate_user_name("newUserName", new)?;
    if t.users.values().any(|u| u.id != id && same_name(&u.name, new)) {
        return Err(MetaError::exists("user", new));
    }
    let user = t.users.get_mut(&id).ok_or_else(|| MetaError::not_found("user", old))?;
    user.name = new.to_string();
    Ok(CommandOutput::Done)
}

/// `UpdateUser`: one property change, validated on a copy first.
fn update_user(t: &mut Tenant, user_name: &str, change: &UserChange) -> Result<CommandOutput, MetaError> {
    let id = find_user(t, user_name).ok_or_else(|| MetaError::not_found("user", user_name))?;
    let before = t.users.get(&id).ok_or_else(|| MetaError::not_found("user", user_name))?;
    let mut after = before.clone();
    match change {
        UserChange::PasswordHash(hash) => {
            let hash = Some(hash.clone());
            checked_hash(&hash)?;
            after.password_hash = hash;
        }
        UserChange::Privileges(p) => {
            after.privileges = checked_privileges(p)?;
            if after.is_admin()
                && let Some(archive) = read_grants_on_others(t, &after).next()
            {
                return Err(archive_access_blocked(&after.name, archive));
            }
        }
        UserChange::EmailAddresses(a) => after.email_addresses = a.clone(),
        UserChange::FullName(n) => after.full_name = n.clone(),
        UserChange::Authentication(a) => after.authentication = *a,
        UserChange::DistinguishedName(d) => after.distinguished_name = d.clone(),
        UserChange::Pop3UserNames(n) => after.pop3_user_names = n.clone(),
    }
    guard_last_admin(t, before, Some(&after))?;
    t.users.insert(id, after);
    Ok(CommandOutput::Done)
}

/// Names of the archives other than its own that `user` holds `read` on, while the tenant blocks
/// administrators' archive access (CMP-01); nothing when access is not blocked.
fn read_grants_on_others<'a>(t: &'a Tenant, user: &'a User) -> impl Iterator<Item = &'a str> + 'a {
    let blocked = !t.compliance.admin_email_preview_enabled;
    t.grants
        .get(&user.id)
        .into_iter()
        .flatten()
        .filter(move |(id, p)| blocked && **id != user.archive && p.contains(&FolderPrivilege::Read))
        .filter_map(move |(id, _)| t.archives.get(id).map(|a| a.name.as_str()))
}

/// The refusal of content access for an administrator while archive access is blocked (CMP-01).
fn archive_access_blocked(user: &str, archive: &str) -> MetaError {
    MetaError::Refused(format!(
        "CMP-01: archive access is blocked, so administrator '{user}' cannot hold 'read' on archive \
         '{archive}' (unblock it with SetComplianceConfiguration adminEmailPreviewEnabled=true first)"
    ))
}

/// `SetFolderPrivileges`: replaces the user's set on one archive; an empty set removes the entry.
fn set_folder_privileges(
    t: &mut Tenant,
    user_name: &str,
    folder: &str,
    privileges: &BTreeSet<FolderPrivilege>,
) -> Result<CommandOutput, MetaError> {
    let user = find_user(t, user_name).ok_or_else(|| MetaError::not_found("user", user_name))?;
    let archive = top_level_archive(t, "folder", folder)?;
    let set: BTreeSet<FolderPrivilege> =
        privileges.iter().copied().filter(|p| *p != FolderPrivilege::None).collect();
    if let (Some(u), Some(a)) = (t.users.get(&user), t.archives.get(&archive))
        && u.is_admin()
        && a.owner != Some(user)
        && set.contains(&FolderPrivilege::Read)
        && !t.compliance.admin_email_preview_enabled
    {
        return Err(archive_access_blocked(&u.name, &a.name));
    }
    if set.is_empty() {
        if let Some(per_user) = t.grants.get_mut(&user) {
            per_user.remove(&archive);
            if per_user.is_empty() {
                t.grants.remove(&user);
            }
        }
    } else {
        t.grants.entry(user).or_default().insert(archive, set);
    }
    Ok(CommandOutput::Done)
}

/// `CreateFolder`: `archive/a/b`, missing parents included (each with a fresh key); the archive must
/// exist and stay within [`MAX_FOLDERS_PER_ARCHIVE`].
fn create_folder(t: &mut Tenant, path: &str) -> Result<CommandOutput, MetaError> {
    validate_folder_name("folder", path)?;
    let (top, rest) = split_top(path);
    let Some(rest) = rest else {
        return Err(MetaError::invalid(
            "folder",
            format!("'{path}' is a top-level folder; user archives are created with their user (CreateUser)"),
        ));
    };
    let id = find_archive(t, top).ok_or_else(|| MetaError::not_found("folder", top))?;
    let archive = t.archives.get_mut(&id).ok_or_else(|| MetaError::not_found("folder", top))?;
    if archive.folders.contains_key(rest) {
        return Err(MetaError::exists("folder", path));
    }
    add_with_parents(archive, "folder", rest)?;
    Ok(CommandOutput::Done)
}

/// Adds `rest` and its missing parents to the tree, each with a key no other folder of the archive
/// holds; refused (changing nothing) when the tree would exceed [`MAX_FOLDERS_PER_ARCHIVE`].
fn add_with_parents(archive: &mut Archive, field: &str, rest: &str) -> Result<(), MetaError> {
    let missing: Vec<String> =
        with_parents(rest).into_iter().filter(|p| !archive.folders.contains_key(p)).collect();
    let total = archive.folders.len() + missing.len();
    if total > MAX_FOLDERS_PER_ARCHIVE {
        return Err(MetaError::invalid(
            field,
            format!(
                "archive '{}' would hold {total} folders; at most {MAX_FOLDERS_PER_ARCHIVE} are allowed (MAX_FOLDERS_PER_ARCHIVE)",
                archive.name
            ),
        ));
    }
    let mut used: std::collections::HashSet<String> = archive.folders.values().cloned().collect();
    for path in missing {
        let key = fresh_key(&used, &path);
        used.insert(key.clone());
        archive.folders.insert(path, key);
    }
    Ok(())
}

/// The key for a new folder at `path`: the path itself, or `<path>#<n>` when a folder (moved there
/// from that path) already holds it, so new mail never mixes with the moved folder's.
fn fresh_key(used: &std::collections::HashSet<String>, path: &str) -> String {
    let mut key = path.to_string();
    let mut n = 2u64;
    while used.contains(&key) {
        key = format!("{path}#{n}");
        n += 1;
    }
    key
}

/// `MoveFolder`: a top-level folder is renamed (the archive); a subfolder moves with its subtree
/// within its archive. Only the tree changes: every folder keeps its key, so its mail (filed under
/// the key) moves with it at a cost of O(folders moved), whatever the number of messages.
fn move_folder(t: &mut Tenant, from: &str, to: &str) -> Result<CommandOutput, MetaError> {
    validate_folder_name("fromFolder", from)?;
    validate_folder_name("toFolder", to)?;
    let (from_top, from_rest) = split_top(from);
    let (to_top, to_rest) = split_top(to);
    let from_id = find_archive(t, from_top).ok_or_else(|| MetaError::not_found("folder", from_top))?;
    let Some(from_rest) = from_rest else {
        // Renaming an archive.
        if to_rest.is_some() {
            return Err(MetaError::invalid(
                "toFolder",
                "a top-level folder (user archive) can only be renamed, not moved below another folder",
            ));
        }
        validate_user_name("toFolder", to)?;
        if from == to {
            return Err(MetaError::invalid("toFolder", "is the same folder as fromFolder"));
        }
        if t.archives.values().any(|a| a.id != from_id && same_name(&a.name, to)) {
            return Err(MetaError::exists("folder", to));
        }
        let archive = t.archives.get_mut(&from_id).ok_or_else(|| MetaError::not_found("folder", from))?;
        archive.name = to.to_string();
        return Ok(CommandOutput::Done);
    };
    let Some(to_rest) = to_rest else {
        return Err(MetaError::invalid(
            "toFolder",
            "a subfolder cannot become a top-level folder (user archives are created with their user)",
        ));
    };
    let from_archive = t.archives.get(&from_id).ok_or_else(|| MetaError::not_found("folder", from))?;
    if !from_archive.folders.contains_key(from_rest) {
        return Err(MetaError::not_found("folder", from));
    }
    let to_id = find_archive(t, to_top).ok_or_else(|| MetaError::not_found("folder", to_top))?;
    if to_id != from_id {
        return Err(MetaError::invalid(
            "toFolder",
            format!(
                "a subfolder moves within its archive only: its mail belongs to archive '{}' (moving it to another archive is not supported)",
                from_archive.name
            ),
        ));
    }
    if is_in_subtree(to_rest, from_rest) {
        return Err(MetaError::invalid(
            "toFolder",
            "a folder cannot be moved into itself or one of its subfolders",
        ));
    }
    if from_archive.folders.contains_key(to_rest) {
        return Err(MetaError::exists("folder", to));
    }
    // Every moved path must obey the rule at its new place (depth and length grow with the move).
    let subtree: Vec<(String, String)> = from_archive
        .folders
        .iter()
        .filter(|(f, _)| is_in_subtree(f, from_rest))
        .map(|(f, k)| (format!("{to_rest}{}", &f[from_rest.len()..]), k.clone()))
        .collect();
    for (path, _) in &subtree {
        validate_folder_name("toFolder", &format!("{to_top}/{path}"))?;
    }
    let mut archive = from_archive.clone();
    archive.folders.retain(|f, _| !is_in_subtree(f, from_rest));
    if let Some((parent, _)) = to_rest.rsplit_once('/') {
        add_with_parents(&mut archive, "toFolder", parent)?;
    }
    archive.folders.extend(subtree);
    t.archives.insert(from_id, archive);
    Ok(CommandOutput::Done)
}

/// `DeleteFolder`: a subfolder and everything below it; top-level folders are refused.
fn delete_folder(t: &mut Tenant, path: &str) -> Result<CommandOutput, MetaError> {
    validate_folder_name("folder", path)?;
    let (top, rest) = split_top(path);
    let Some(rest) = rest else {
        return Err(MetaError::invalid(
            "folder",
            format!("'{path}' is a top-level folder (user archive) and cannot be deleted as a folder"),
        ));
    };
    let id = find_archive(t, top).ok_or_else(|| MetaError::not_found("folder", top))?;
    let archive = t.archives.get_mut(&id).ok_or_else(|| MetaError::not_found("folder", top))?;
    if !archive.folders.contains_key(rest) {
        return Err(MetaError::not_found("folder", path));
    }
    archive.folders.retain(|f, _| !is_in_subtree(f, rest));
    Ok(CommandOutput::Done)
}

/// Makes `id` the tenant's only current shard.
fn make_current(t: &mut Tenant, id: ShardId) {
    for shard in t.shards.values_mut() {
        if shard.id == id {
            shard.state = ShardState::Current;
        } else if shard.state == ShardState::Current {
            shard.state = ShardState::Normal;
        }
    }
}

/// Checks a store name: user name rules, unique per tenant (case-insensitive) apart from `except`.
fn check_shard_name(t: &Tenant, name: &str, except: Option<ShardId>) -> Result<(), MetaError> {
    validate_user_name("name", name)?;
    if t.shards.values().any(|s| Some(s.id) != except && same_name(&s.name, name)) {
        return Err(MetaError::exists("store", name));
    }
    Ok(())
}

/// `CreateShard`: a new shard; `current` (or the tenant having no current shard) makes it current.
fn create_shard(
    t: &mut Tenant,
    next_id: &mut u64,
    name: &str,
    state: ShardState,
) -> Result<CommandOutput, MetaError> {
    check_shard_name(t, name, None)?;
    let id = alloc_id(next_id);
    let has_current = t.shards.values().any(|s| s.state == ShardState::Current);
    t.shards.insert(
        id,
        Shard {
            id,
            name: name.to_string(),
            state,
            owner_node: None,
            epoch: 0,
            manifest: None,
            manifest_sequence: 0,
            message_count: 0,
            byte_count: 0,
            wrapped_key: None,
        },
    );
    if state == ShardState::Current || !has_current {
        make_current(t, id);
    }
    Ok(CommandOutput::Created(id))
}

/// `SetShardState`: `current` demotes the previous current shard; the current one cannot step down alone.
fn set_shard_state(t: &mut Tenant, id: ShardId, state: ShardState) -> Result<CommandOutput, MetaError> {
    let shard = t.shards.get(&id).ok_or_else(|| MetaError::not_found("store", id.to_string()))?;
    if state == ShardState::Current {
        make_current(t, id);
        return Ok(CommandOutput::Done);
    }
    if shard.state == ShardState::Current {
        return Err(MetaError::Refused(format!(
            "store {id} ('{}') is the current store; make another store current first",
            shard.name
        )));
    }
    if let Some(shard) = t.shards.get_mut(&id) {
        shard.state = state;
    }
    Ok(CommandOutput::Done)
}

/// `RenameShard`: a new unique name.
fn rename_shard(t: &mut Tenant, id: ShardId, name: &str) -> Result<CommandOutput, MetaError> {
    if !t.shards.contains_key(&id) {
        return Err(MetaError::not_found("store", id.to_string()));
    }
    check_shard_name(t, name, Some(id))?;
    if let Some(shard) = t.shards.get_mut(&id) {
        shard.name = name.to_string();
    }
    Ok(CommandOutput::Done)
}

/// `AssignShard`: a new serving node and a higher epoch.
fn assign_shard(t: &mut Tenant, id: ShardId, node: NodeId) -> Result<CommandOutput, MetaError> {
    let shard = t.shards.get_mut(&id).ok_or_else(|| MetaError::not_found("store", id.to_string()))?;
    shard.owner_node = Some(node);
    shard.epoch += 1;
    Ok(CommandOutput::Epoch(shard.epoch))
}

/// `ClaimShard`: `AssignShard` as a compare-and-set on the epoch and the owner's lease counter.
fn claim_shard(
    t: &mut Tenant,
    leases: &BTreeMap<NodeId, u64>,
    id: ShardId,
    node: NodeId,
    expected_epoch: u64,
    owner_renewals: Option<u64>,
) -> Result<CommandOutput, MetaError> {
    let shard = t.shards.get_mut(&id).ok_or_else(|| MetaError::not_found("store", id.to_string()))?;
    if shard.epoch != expected_epoch {
        return Err(MetaError::ClaimLost {
            store: id,
            reason: format!("its epoch is {}, not {expected_epoch}", shard.epoch),
        });
    }
    if let (Some(expected), Some(owner)) = (owner_renewals, shard.owner_node) {
        let now = leases.get(&owner).copied().unwrap_or(0);
        if now != expected {
            return Err(MetaError::ClaimLost {
                store: id,
                reason: format!("its owner, node {owner}, renewed its lease (renewal {now}, not {expected})"),
            });
        }
    }
    shard.owner_node = Some(node);
    shard.epoch += 1;
    Ok(CommandOutput::Epoch(shard.epoch))
}

/// `MoveShard`: a new serving node and a higher epoch, only while the epoch is still `epoch`.
fn move_shard(t: &mut Tenant, id: ShardId, node: NodeId, epoch: u64) -> Result<CommandOutput, MetaError> {
    let shard = t.shards.get_mut(&id).ok_or_else(|| MetaError::not_found("store", id.to_string()))?;
    if shard.state == ShardState::Disabled {
        return Err(MetaError::Refused(format!(
            "store {id} ('{}') is disabled: a disabled store is not served, so it is not moved",
            shard.name
        )));
    }
    if shard.epoch != epoch {
        return Err(MetaError::Refused(format!(
            "store {id}: its epoch is {} now, not {epoch}: another node took it over or moved it meanwhile; nothing was changed",
            shard.epoch
        )));
    }
    if shard.owner_node == Some(node) {
        return Err(MetaError::Refused(format!("store {id} is served by node {node} already")));
    }
    shard.owner_node = Some(node);
    shard.epoch += 1;
    Ok(CommandOutput::Epoch(shard.epoch))
}

/// The arguments of one `CommitManifest`.
struct ManifestCommit<'a> {
    epoch: u64,
    sequence: u64,
    manifest: &'a str,
    message_count: u64,
    byte_count: u64,
}

/// `CommitManifest`: fenced by epoch, ordered by sequence.
fn commit_manifest(t: &mut Tenant, id: ShardId, c: ManifestCommit<'_>) -> Result<CommandOutput, MetaError> {
    let shard = t.shards.get_mut(&id).ok_or_else(|| MetaError::not_found("store", id.to_string()))?;
    if c.epoch != shard.epoch {
        return Err(MetaError::Refused(format!(
            "store {id}: writer epoch {} is stale (current epoch {}); another node serves this store now",
            c.epoch, shard.epoch
        )));
    }
    if c.sequence != shard.manifest_sequence + 1 {
        return Err(MetaError::Refused(format!(
            "store {id}: manifest sequence {} does not follow the committed {}",
            c.sequence, shard.manifest_sequence
        )));
    }
    if matches!(shard.state, ShardState::Disabled) {
        return Err(MetaError::Refused(format!("store {id} is disabled")));
    }
    // Only the current store takes new mail (STO-02/03), so that once a store stops being current its
    // identities are final and the new current store's writer sees every one of them (invariant 3).
    // Commits that add no message (an index rebuild) are allowed in any state but disabled.
    if c.message_count > shard.message_count && shard.state != ShardState::Current {
        return Err(MetaError::Refused(format!(
            "store {id} ('{}') is {}: only the current store accepts new mail",
            shard.name,
            shard.state.as_str()
        )));
    }
    shard.manifest = Some(c.manifest.to_string());
    shard.manifest_sequence = c.sequence;
    shard.message_count = c.message_count;
    shard.byte_count = c.byte_count;
    Ok(CommandOutput::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "default";

    #[test]
    fn stale_epoch_cannot_publish_a_manifest() {
        let mut s = MetaState::default();
        s.apply("t", &Command::CreateTenant { name: T.into() }).expect("tenant");
        let id = match s.apply(
            "s",
            &Command::CreateShard {
                tenant: T.into(),
                name: "2026-11".into(),
                state: ShardState::Current,
                wrapped_key: None,
            },
        ) {
            Ok(CommandOutput::Created(id)) => id,
            other => panic!("{other:?}"),
        };
        let assign = |s: &mut MetaState, rid: &str, node| {
            s.apply(rid, &Command::AssignShard { tenant: T.into(), id, node })
        };
        assert_eq!(assign(&mut s, "a1", 7), Ok(CommandOutput::Epoch(1)));
        let commit = |epoch, sequence| Command::CommitManifest {
            tenant: T.into(),
            id,
            epoch,
            sequence,
            manifest: format!("m-{epoch}-{sequence}"),
            message_count: sequence,
            byte_count: 0,
        };
        assert_eq!(s.apply("c1", &commit(1, 1)), Ok(CommandOutput::Done));
        assert_eq!(assign(&mut s, "a2", 8), Ok(CommandOutput::Epoch(2)));
        assert!(
            matches!(s.apply("c2", &commit(1, 2)), Err(MetaError::Refused(_))),
            "the old writer is fenced"
        );
        assert!(matches!(s.apply("c3", &commit(2, 3)), Err(MetaError::Refused(_))), "sequence must follow");
        assert_eq!(s.apply("c4", &commit(2, 2)), Ok(CommandOutput::Done));
        let shard = &s.tenant(T).expect("tenant").shards[&id];
        assert_eq!(
            (shard.owner_node, shard.manifest.as_deref(), shard.manifest_sequence),
            (Some(8), Some("m-2-2"), 2)
        );
    }

    fn state() -> MetaState {
        let mut s = MetaState::default();
        s.apply("t", &Command::CreateTenant { name: T.into() }).expect("tenant");
        s
    }

    fn create_user_cmd(name: &str, privileges: &[Privilege], hash: Option<&str>) -> Command {
        Command::CreateUser {
            tenant: T.into(),
            user_name: name.into(),
            full_name: None,
            authentication: Authentication::Integrated,
            password_hash: hash.map(str::to_string),
            privileges: privileges.iter().copied().collect(),
            distinguished_name: None,
            email_addresses: vec![],
        }
    }

    fn ok(s: &mut MetaState, cmd: Command) -> CommandOutput {
        let answer = s.apply_command(&cmd);
        answer.unwrap_or_else(|e| panic!("{cmd:?} refused: {e}"))
    }

    fn err(s: &mut MetaState, cmd: Command) -> MetaError {
        let before = s.clone();
        let e = s.apply_command(&cmd).expect_err("must be refused");
        assert_eq!(*s, before, "refused {cmd:?} changed the state");
        e
    }

    fn add_user(s: &mut MetaState, name: &str) -> UserId {
        match ok(s, create_user_cmd(name, &[Privilege::Login], Some("$argon2id$x"))) {
            CommandOutput::Created(id) => id,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn add_admin(s: &mut MetaState, name: &str) -> UserId {
        match ok(s, create_user_cmd(name, &[Privilege::Admin], Some("$argon2id$x"))) {
            CommandOutput::Created(id) => id,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn field(e: &MetaError) -> &str {
        match e {
            MetaError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn is_exists(e: &MetaError) -> bool {
        matches!(e, MetaError::AlreadyExists { .. })
    }

    fn is_not_found(e: &MetaError) -> bool {
        matches!(e, MetaError::NotFound { .. })
    }

    fn folder(path: &str) -> Command {
        Command::CreateFolder { tenant: T.into(), path: path.into() }
    }

    fn mv(from: &str, to: &str) -> Command {
        Command::MoveFolder { tenant: T.into(), from: from.into(), to: to.into() }
    }

    fn grant(user: &str, folder: &str, privileges: &[FolderPrivilege]) -> Command {
        Command::SetFolderPrivileges {
            tenant: T.into(),
            user_name: user.into(),
            folder: folder.into(),
            privileges: privileges.iter().copied().collect(),
        }
    }

    fn shard(name: &str, state: ShardState) -> Command {
        Command::CreateShard { tenant: T.into(), name: name.into(), state, wrapped_key: None }
    }

    fn shard_states(s: &MetaState) -> Vec<(String, ShardState)> {
        s.tenant(T).expect("tenant").shards.values().map(|sh| (sh.name.clone(), sh.state)).collect()
    }

    fn rw() -> BTreeSet<FolderPrivilege> {
        BTreeSet::from([FolderPrivilege::Read, FolderPrivilege::Write])
    }

    #[test]
    fn ids_come_from_one_counter_starting_at_one() {
        let mut s = MetaState::default();
        assert_eq!(s.apply("a", &Command::CreateTenant { name: T.into() }), Ok(CommandOutput::Created(1)));
        let bob = add_user(&mut s, "bob");
        assert_eq!(bob, 2);
        assert_eq!(s.user(T, "bob").expect("bob").archive, 3, "the archive id follows the user id");
        assert_eq!(ok(&mut s, shard("2024-01", ShardState::Normal)), CommandOutput::Created(4));
        assert_eq!(s.next_id, 5);
    }

    #[test]
    fn tenant_names_are_validated_and_unique_case_insensitively() {
        let mut s = state();
        assert!(is_exists(&err(&mut s, Command::CreateTenant { name: "default".into() })));
        assert_eq!(field(&err(&mut s, Command::CreateTenant { name: "DEFAULT".into() })), "name");
        assert_eq!(field(&err(&mut s, Command::CreateTenant { name: " x".into() })), "name");
        assert_eq!(field(&err(&mut s, Command::CreateTenant { name: "a/b".into() })), "name");
        ok(&mut s, Command::CreateTenant { name: "acme".into() });
        assert_eq!(s.tenant("ACME").expect("found case-insensitively").name, "acme");
        assert!(is_not_found(&s.tenant("nobody").expect_err("missing")));
        let missing = Command::DeleteUser { tenant: "nobody".into(), user_name: "x".into() };
        assert!(is_not_found(&err(&mut s, missing)));
    }

    #[test]
    fn a_tenant_is_created_with_its_administrator_in_one_step() {
        let mut s = state();
        let create = |name: &str, admin: &str| Command::CreateTenantWithAdmin {
            name: name.into(),
            admin_name: admin.into(),
            password_hash: "$argon2id$x".into(),
        };
        let before = s.clone();
        assert_eq!(field(&err(&mut s, create("acme", "a/b"))), "adminName");
        assert_eq!(field(&err(&mut s, create("Acme", "admin"))), "name");
        assert!(is_exists(&err(&mut s, create("default", "admin"))));
        assert_eq!(
            (s.tenants.clone(), s.next_id),
            (before.tenants.clone(), before.next_id),
            "nothing changed"
        );
        ok(&mut s, create("acme", "boss"));
        let boss = s.user("acme", "boss").expect("admin").clone();
        assert!(boss.is_admin());
        assert_eq!(s.archive_by_name("acme", "boss").expect("archive").id, boss.archive);
        assert!(s.user(T, "boss").is_err(), "not in another tenant");
    }

    #[test]
    fn tenants_are_disabled_and_deleted_but_never_the_operator_tenant() {
        let mut s = state();
        let disable =
            |name: &str| Command::SetTenantState { name: name.into(), state: TenantState::Disabled };
        assert!(matches!(err(&mut s, disable(T)), MetaError::Refused(_)));
        assert!(matches!(
            err(&mut s, Command::DeleteTenant { name: T.into(), force: true }),
            MetaError::Refused(_)
        ));
        ok(
            &mut s,
            Command::CreateTenantWithAdmin {
                name: "acme".into(),
                admin_name: "admin".into(),
                password_hash: "$argon2id$x".into(),
            },
        );
        ok(&mut s, disable("ACME"));
        assert_eq!(s.tenant("acme").expect("acme").state, TenantState::Disabled);
        let refused = err(&mut s, Command::DeleteTenant { name: "acme".into(), force: false });
        assert!(refused.to_string().contains("force=true"), "{refused}");
        let mut store = shard("2024-01", ShardState::Current);
        if let Command::CreateShard { tenant, .. } = &mut store {
            *tenant = "acme".into();
        }
        ok(&mut s, store);
        let refused = err(&mut s, Command::DeleteTenant { name: "acme".into(), force: true });
        assert!(refused.to_string().contains("not available yet"), "{refused}");
        ok(
            &mut s,
            Command::CreateTenantWithAdmin {
                name: "beta".into(),
                admin_name: "admin".into(),
                password_hash: "$argon2id$x".into(),
            },
        );
        ok(&mut s, Command::DeleteTenant { name: "beta".into(), force: true });
        assert!(is_not_found(&s.tenant("beta").expect_err("deleted")));
    }

    #[test]
    fn tenants_are_separate() {
        let mut s = state();
        ok(&mut s, Command::CreateTenant { name: "other".into() });
        add_user(&mut s, "bob");
        let mut cmd = create_user_cmd("bob", &[], None);
        if let Command::CreateUser { tenant, .. } = &mut cmd {
            *tenant = "other".into();
        }
        ok(&mut s, cmd);
        assert_ne!(s.user(T, "bob").expect("bob").id, s.user("other", "bob").expect("bob").id);
        assert_eq!(s.child_folders("other", None, None).expect("tree"), vec!["bob".to_string()]);
    }

    #[test]
    fn create_user_creates_archive_with_read_write_grant() {
        let mut s = state();
        let id = add_user(&mut s, "Max Mustermann");
        let user = s.user(T, "max mustermann").expect("case-insensitive lookup").clone();
        assert_eq!(user.name, "Max Mustermann", "stored as entered");
        assert_eq!(user.privileges, BTreeSet::from([Privilege::Login]));
        let archive = s.archive_by_name(T, "MAX MUSTERMANN").expect("archive");
        assert_eq!(
            (archive.id, archive.owner, archive.name.as_str()),
            (user.archive, Some(id), "Max Mustermann")
        );
        assert_eq!(s.folder_grants_of(T, id), vec![("Max Mustermann".to_string(), rw())]);
    }

    #[test]
    fn user_names_are_unique_case_insensitively() {
        let mut s = state();
        add_user(&mut s, "Bob");
        let e = err(&mut s, create_user_cmd("BOB", &[], None));
        assert_eq!(e, MetaError::exists("user", "BOB"));
    }

    #[test]
    fn invalid_user_names_name_the_field() {
        let mut s = state();
        let long = "x".repeat(129);
        for name in ["", " bob", "bob ", "a/b", "tab\t", long.as_str()] {
            assert_eq!(field(&err(&mut s, create_user_cmd(name, &[], None))), "userName", "{name:?}");
        }
        assert!(s.tenant(T).expect("tenant").users.is_empty());
    }

    #[test]
    fn none_and_admin_privileges_stand_alone() {
        let mut s = state();
        let e = err(&mut s, create_user_cmd("x", &[Privilege::Admin, Privilege::Login], None));
        assert_eq!(field(&e), "privileges");
        let e = err(&mut s, create_user_cmd("x", &[Privilege::None, Privilege::Login], None));
        assert_eq!(field(&e), "privileges");
        add_user(&mut s, "y");
        let set = Command::UpdateUser {
            tenant: T.into(),
            user_name: "y".into(),
            change: UserChange::Privileges(BTreeSet::from([Privilege::Admin, Privilege::Export])),
        };
        assert_eq!(field(&err(&mut s, set)), "privileges");
        ok(&mut s, create_user_cmd("z", &[Privilege::None], None));
        assert!(s.user(T, "z").expect("z").privileges.is_empty(), "none is stored as the empty set");
    }

    #[test]
    fn deleted_users_archive_stays_orphaned_and_is_relinked_on_recreate() {
        let mut s = state();
        let bob = add_user(&mut s, "bob");
        let alice = add_user(&mut s, "alice");
        ok(&mut s, folder("bob/Inbox"));
        ok(&mut s, grant("alice", "bob", &[FolderPrivilege::Read]));
        let archive = s.user(T, "bob").expect("bob").archive;

        ok(&mut s, Command::DeleteUser { tenant: T.into(), user_name: "BOB".into() });
        assert!(is_not_found(&s.user(T, "bob").expect_err("gone")));
        let orphan = s.archive_by_name(T, "bob").expect("archive stays");
        assert_eq!(orphan.owner, None);
        assert!(orphan.folders.contains_key("Inbox"));
        assert!(!s.tenant(T).expect("t").grants.contains_key(&bob), "bob's grants are gone");
        assert_eq!(
            s.folder_grants_of(T, alice),
            vec![("alice".to_string(), rw()), ("bob".to_string(), BTreeSet::from([FolderPrivilege::Read]))],
            "grants others hold on the orphaned archive stay"
        );

        let new_bob = add_user(&mut s, "Bob");
        assert_ne!(new_bob, bob, "user ids are never reused");
        let relinked = s.archive_by_name(T, "bob").expect("archive");
        assert_eq!((relinked.id, relinked.owner), (archive, Some(new_bob)));
        assert_eq!(relinked.name, "bob", "the archive keeps its name");
        assert_eq!(s.tenant(T).expect("t").archives.len(), 2, "no second archive");
        assert_eq!(s.folder_grants_of(T, new_bob), vec![("bob".to_string(), rw())]);
    }

    #[test]
    fn delete_user_removes_grants_on_other_archives() {
        let mut s = state();
        add_user(&mut s, "bob");
        let alice = add_user(&mut s, "alice");
        ok(&mut s, grant("alice", "bob", &[FolderPrivilege::Read]));
        ok(&mut s, Command::DeleteUser { tenant: T.into(), user_name: "alice".into() });
        assert!(s.folder_grants_of(T, alice).is_empty());
        assert_eq!(s.archive_by_name(T, "bob").expect("bob").owner, Some(s.user(T, "bob").expect("bob").id));
    }

    #[test]
    fn create_user_is_refused_when_the_archive_name_belongs_to_another_user() {
        let mut s = state();
        add_user(&mut s, "bob");
        ok(
            &mut s,
            Command::RenameUser {
                tenant: T.into(),
                old_user_name: "bob".into(),
                new_user_name: "robert".into(),
            },
        );
        let e = err(&mut s, create_user_cmd("BOB", &[], None));
        assert_eq!(e, MetaError::exists("archive", "BOB"));
    }

    #[test]
    fn rename_keeps_archive_name() {
        let mut s = state();
        let id = add_user(&mut s, "bob");
        ok(
            &mut s,
            Command::RenameUser {
                tenant: T.into(),
                old_user_name: "Bob".into(),
                new_user_name: "Robert".into(),
            },
        );
        assert_eq!(s.user(T, "robert").expect("new name").id, id);
        assert!(is_not_found(&s.user(T, "bob").expect_err("old name")));
        assert_eq!(s.child_folders(T, None, None).expect("tree"), vec!["bob".to_string()]);
        assert_eq!(s.folder_grants_of(T, id), vec![("bob".to_string(), rw())], "grants follow the id");
    }

    #[test]
    fn rename_to_a_taken_or_invalid_name_is_refused_but_case_changes_are_fine() {
        let mut s = state();
        add_user(&mut s, "bob");
        add_user(&mut s, "alice");
        let rename = |old: &str, new: &str| Command::RenameUser {
            tenant: T.into(),
            old_user_name: old.into(),
            new_user_name: new.into(),
        };
        assert!(is_exists(&err(&mut s, rename("bob", "ALICE"))));
        assert_eq!(field(&err(&mut s, rename("bob", "a/b"))), "newUserName");
        assert!(is_not_found(&err(&mut s, rename("carol", "dave"))));
        ok(&mut s, rename("bob", "Bob"));
        assert_eq!(s.user(T, "bob").expect("bob").name, "Bob");
    }

    #[test]
    fn update_user_changes_one_property() {
        let mut s = state();
        add_user(&mut s, "bob");
        let update = |change| Command::UpdateUser { tenant: T.into(), user_name: "bob".into(), change };
        ok(&mut s, update(UserChange::PasswordHash("$argon2id$new".into())));
        ok(&mut s, update(UserChange::EmailAddresses(vec!["b@x".into(), "c@x".into()])));
        ok(&mut s, update(UserChange::FullName(Some("Bob B".into()))));
        ok(&mut s, update(UserChange::Authentication(Authentication::DirectoryServices)));
        ok(&mut s, update(UserChange::DistinguishedName(Some("cn=bob".into()))));
        ok(&mut s, update(UserChange::Pop3UserNames(vec!["bobpop".into()])));
        ok(&mut s, update(UserChange::Privileges(BTreeSet::from([Privilege::Export, Privilege::Login]))));
        let u = s.user(T, "bob").expect("bob");
        assert_eq!(u.password_hash.as_deref(), Some("$argon2id$new"));
        assert_eq!(u.email_addresses, vec!["b@x".to_string(), "c@x".to_string()]);
        assert_eq!(u.full_name.as_deref(), Some("Bob B"));
        assert_eq!(u.authentication, Authentication::DirectoryServices);
        assert_eq!(u.distinguished_name.as_deref(), Some("cn=bob"));
        assert_eq!(u.pop3_user_names, vec!["bobpop".to_string()]);
        assert_eq!(u.privileges, BTreeSet::from([Privilege::Login, Privilege::Export]));
        assert_eq!(field(&err(&mut s, update(UserChange::PasswordHash(String::new())))), "password");
    }

    #[test]
    fn last_usable_admin_cannot_be_deleted_or_demoted() {
        let mut s = state();
        add_admin(&mut s, "admin");
        let delete = |name: &str| Command::DeleteUser { tenant: T.into(), user_name: name.into() };
        let demote = |name: &str| Command::UpdateUser {
            tenant: T.into(),
            user_name: name.into(),
            change: UserChange::Privileges(BTreeSet::from([Privilege::Login])),
        };
        assert!(
            matches!(err(&mut s, delete("admin")), MetaError::Refused(m) if m.contains("last administrator"))
        );
        assert!(matches!(err(&mut s, demote("ADMIN")), MetaError::Refused(_)));

        // An admin without a password cannot log in, so it does not count.
        ok(&mut s, create_user_cmd("nopass", &[Privilege::Admin], None));
        assert!(matches!(err(&mut s, delete("admin")), MetaError::Refused(_)));
        ok(&mut s, delete("nopass"));

        add_admin(&mut s, "second");
        ok(&mut s, demote("admin"));
        assert!(matches!(err(&mut s, delete("second")), MetaError::Refused(_)));
        ok(&mut s, delete("admin"));
    }

    #[test]
    fn administrators_get_no_read_on_other_archives_while_archive_access_is_blocked() {
        let mut s = state();
        add_admin(&mut s, "admin");
        add_admin(&mut s, "second");
        add_user(&mut s, "alice");
        let refused = err(&mut s, grant("admin", "alice", &[FolderPrivilege::Read]));
        assert!(matches!(&refused, MetaError::Refused(m) if m.contains("CMP-01") && m.contains("alice")));
        let refused = err(&mut s, grant("second", "alice", &[FolderPrivilege::Read, FolderPrivilege::Write]));
        assert!(matches!(&refused, MetaError::Refused(m) if m.contains("CMP-01")), "{refused}");
        ok(&mut s, grant("admin", "admin", &[FolderPrivilege::Read, FolderPrivilege::Write]));
        ok(&mut s, grant("admin", "alice", &[FolderPrivilege::Write]));
        // A reader of alice's archive cannot be made an administrator while access is blocked.
        add_user(&mut s, "bob");
        ok(&mut s, grant("bob", "alice", &[FolderPrivilege::Read]));
        let promote = Command::UpdateUser {
            tenant: T.into(),
            user_name: "bob".into(),
            change: UserChange::Privileges(BTreeSet::from([Privilege::Admin])),
        };
        assert!(matches!(err(&mut s, promote.clone()), MetaError::Refused(m) if m.contains("CMP-01")));
        let unblock = Command::SetCompliance {
            tenant: T.into(),
            compliance: arca_types::records::Compliance { admin_email_preview_enabled: true },
        };
        ok(&mut s, unblock);
        ok(&mut s, grant("admin", "alice", &[FolderPrivilege::Read]));
        ok(&mut s, promote);
    }

    #[test]
    fn set_folder_privileges_replaces_the_set_and_empty_removes_it() {
        let mut s = state();
        let bob = add_user(&mut s, "bob");
        add_user(&mut s, "alice");
        ok(&mut s, grant("bob", "ALICE", &[FolderPrivilege::Read, FolderPrivilege::Delete]));
        ok(&mut s, grant("bob", "alice", &[FolderPrivilege::Read]));
        ok(
            &mut s,
            grant("bob", "bob", &[FolderPrivilege::Read, FolderPrivilege::Write, FolderPrivilege::Delete]),
        );
        assert_eq!(
            s.folder_grants_of(T, bob),
            vec![
                ("alice".to_string(), BTreeSet::from([FolderPrivilege::Read])),
                (
                    "bob".to_string(),
                    BTreeSet::from([FolderPrivilege::Read, FolderPrivilege::Write, FolderPrivilege::Delete])
                ),
            ]
        );
        ok(&mut s, grant("bob", "alice", &[]));
        ok(&mut s, grant("bob", "bob", &[FolderPrivilege::None]));
        assert!(s.folder_grants_of(T, bob).is_empty());
        assert!(!s.tenant(T).expect("t").grants.contains_key(&bob), "no empty entries are kept");
    }

    #[test]
    fn set_folder_privileges_accepts_only_existing_top_level_folders() {
        let mut s = state();
        add_user(&mut s, "bob");
        ok(&mut s, folder("bob/Inbox"));
        assert_eq!(field(&err(&mut s, grant("bob", "bob/Inbox", &[FolderPrivilege::Read]))), "folder");
        assert!(is_not_found(&err(&mut s, grant("bob", "nobody", &[FolderPrivilege::Read]))));
        assert!(is_not_found(&err(&mut s, grant("nobody", "bob", &[FolderPrivilege::Read]))));
        assert_eq!(field(&s.archive_by_name(T, "bob/Inbox").expect_err("subfolder")), "folder");
    }

    #[test]
    fn clear_folder_privileges_removes_all_including_the_own_archive() {
        let mut s = state();
        let bob = add_user(&mut s, "bob");
        add_user(&mut s, "alice");
        ok(&mut s, grant("bob", "alice", &[FolderPrivilege::Read]));
        ok(&mut s, Command::ClearFolderPrivileges { tenant: T.into(), user_name: "Bob".into() });
        assert!(s.folder_grants_of(T, bob).is_empty());
        let missing = Command::ClearFolderPrivileges { tenant: T.into(), user_name: "x".into() };
        assert!(is_not_found(&err(&mut s, missing)));
    }

    #[test]
    fn create_folder_creates_missing_parents() {
        let mut s = state();
        add_user(&mut s, "bob");
        ok(&mut s, folder("BOB/Mailbox/Inbox/2024"));
        assert_eq!(
            s.child_folders(T, Some("bob"), None).expect("tree"),
            vec!["bob/Mailbox", "bob/Mailbox/Inbox", "bob/Mailbox/Inbox/2024"]
        );
        assert!(is_exists(&err(&mut s, folder("bob/Mailbox/Inbox"))));
        ok(&mut s, folder("bob/Mailbox/inbox"));
        assert!(is_not_found(&err(&mut s, folder("nobody/Inbox"))));
        assert_eq!(field(&err(&mut s, folder("bob"))), "folder");
        assert_eq!(field(&err(&mut s, folder("bob//x"))), "folder");
        assert_eq!(field(&err(&mut s, folder("bob/.."))), "folder");
    }

    #[test]
    fn move_subfolder_moves_its_subtree() {
        let mut s = state();
        add_user(&mut s, "bob");
        ok(&mut s, folder("bob/Inbox/A/B"));
        ok(&mut s, folder("bob/Inbox2"));
        ok(&mut s, mv("bob/Inbox", "bob/Archive/2024/Inbox"));
        assert_eq!(
            s.child_folders(T, Some("bob"), None).expect("tree"),
            vec![
                "bob/Archive",
                "bob/Archive/2024",
                "bob/Archive/2024/Inbox",
                "bob/Archive/2024/Inbox/A",
                "bob/Archive/2024/Inbox/A/B",
                "bob/Inbox2",
            ],
            "Inbox2 is not part of the Inbox subtree"
        );
    }

    #[test]
    fn move_subfolder_to_another_archive_is_refused() {
        let mut s = state();
        add_user(&mut s, "bob");
        add_user(&mut s, "alice");
        ok(&mut s, folder("bob/Inbox/Sub"));
        assert_eq!(field(&err(&mut s, mv("bob/Inbox", "alice/FromBob"))), "toFolder");
        assert_eq!(s.child_folders(T, Some("bob"), None).expect("bob"), vec!["bob/Inbox", "bob/Inbox/Sub"]);
        assert!(s.child_folders(T, Some("alice"), None).expect("alice").is_empty());
    }

    fn keys(s: &MetaState, archive: &str) -> BTreeMap<String, String> {
        s.archive_by_name(T, archive).expect("archive").folders.clone()
    }

    #[test]
    fn moving_a_folder_keeps_the_keys_its_mail_is_filed_under() {
        let mut s = state();
        add_user(&mut s, "bob");
        ok(&mut s, folder("bob/Inbox/Sub"));
        ok(&mut s, mv("bob/Inbox", "bob/Old/Inbox"));
        let tree = keys(&s, "bob");
        assert_eq!(tree.get("Old/Inbox").map(String::as_str), Some("Inbox"));
        assert_eq!(tree.get("Old/Inbox/Sub").map(String::as_str), Some("Inbox/Sub"));
        assert_eq!(tree.get("Old").map(String::as_str), Some("Old"));
        // A new folder at the old path must not show the moved folder's mail: it gets a fresh key.
        ok(&mut s, folder("bob/Inbox/Sub"));
        let tree = keys(&s, "bob");
        assert_eq!(tree.get("Inbox").map(String::as_str), Some("Inbox#2"));
        assert_eq!(tree.get("Inbox/Sub").map(String::as_str), Some("Inbox/Sub#2"));
        // Moving it back over the old path is refused; moving the new one away keeps its key.
        assert!(is_exists(&err(&mut s, mv("bob/Old/Inbox", "bob/Inbox"))));
        ok(&mut s, mv("bob/Inbox", "bob/New"));
        assert_eq!(keys(&s, "bob").get("New").map(String::as_str), Some("Inbox#2"));
    }

    #[test]
    fn folder_trees_are_bounded_per_archive() {
        let mut s = state();
        add_user(&mut s, "bob");
        let id = s.archive_by_name(T, "bob").expect("bob").id;
        let archive = s.tenant_mut(T).expect("t").archives.get_mut(&id).expect("archive");
        for i in 0..MAX_FOLDERS_PER_ARCHIVE - 1 {
            archive.folders.insert(format!("f{i}"), format!("f{i}"));
        }
        let e = err(&mut s, folder("bob/x/y"));
        assert!(e.to_string().contains("MAX_FOLDERS_PER_ARCHIVE"), "{e}");
        ok(&mut s, folder("bob/x"));
        assert!(err(&mut s, folder("bob/z")).to_string().contains("MAX_FOLDERS_PER_ARCHIVE"));
        let e = s.child_folders(T, None, None).expect_err("listing over the cap");
        assert!(e.to_string().contains("MAX_FOLDER_LISTING"), "{e}");
    }

    #[test]
    fn a_move_that_would_exceed_the_depth_limit_is_refused() {
        let mut s = state();
        add_user(&mut s, "bob");
        let deep = vec!["d"; arca_types::names::MAX_FOLDER_DEPTH - 1].join("/");
        ok(&mut s, folder(&format!("bob/{deep}")));
        ok(&mut s, folder("bob/Inbox/Sub"));
        // `bob/` + 30 levels + `/Inbox` is allowed itself, but its subfolder would be one level too deep.
        let target = format!("bob/{}/Inbox", vec!["d"; arca_types::names::MAX_FOLDER_DEPTH - 2].join("/"));
        let e = err(&mut s, mv("bob/Inbox", &target));
        assert!(e.to_string().contains("MAX_FOLDER_DEPTH"), "{e}");
        assert!(keys(&s, "bob").contains_key("Inbox/Sub"), "a refused move changes nothing");
        assert_eq!(field(&err(&mut s, folder(&format!("bob/{deep}/x")))), "folder");
    }

    #[test]
    fn move_folder_refusals() {
        let mut s = state();
        add_user(&mut s, "bob");
        add_user(&mut s, "alice");
        ok(&mut s, folder("bob/Inbox/Sub"));
        ok(&mut s, folder("bob/Sent"));
        assert_eq!(field(&err(&mut s, mv("bob/Inbox", "bob/Inbox/Sub/X"))), "toFolder");
        assert_eq!(field(&err(&mut s, mv("bob/Inbox", "bob/Inbox"))), "toFolder");
        assert!(is_exists(&err(&mut s, mv("bob/Inbox", "bob/Sent"))));
        assert!(is_not_found(&err(&mut s, mv("bob/Nothing", "bob/X"))));
        assert!(is_not_found(&err(&mut s, mv("bob/Inbox", "nobody/X"))));
        assert_eq!(field(&err(&mut s, mv("bob/Inbox", "carol"))), "toFolder");
        assert_eq!(field(&err(&mut s, mv("bob", "alice/bob"))), "toFolder");
        assert_eq!(field(&err(&mut s, mv("bob/", "bob/X"))), "fromFolder");
        assert_eq!(field(&err(&mut s, mv("bob", "bob"))), "toFolder");
    }

    #[test]
    fn moving_a_top_level_folder_renames_the_archive() {
        let mut s = state();
        let bob = add_user(&mut s, "bob");
        add_user(&mut s, "alice");
        ok(&mut s, folder("bob/Inbox"));
        assert!(is_exists(&err(&mut s, mv("bob", "ALICE"))));
        ok(&mut s, mv("bob", "Robert"));
        assert_eq!(s.child_folders(T, None, None).expect("tree"), vec!["Robert", "Robert/Inbox", "alice"]);
        assert_eq!(
            s.user(T, "bob").expect("user unchanged").archive,
            s.archive_by_name(T, "robert").expect("a").id
        );
        assert_eq!(s.folder_grants_of(T, bob), vec![("Robert".to_string(), rw())]);
        ok(&mut s, mv("Robert", "robert"));
        assert_eq!(s.archive_by_name(T, "ROBERT").expect("a").name, "robert", "case-only rename");
    }

    #[test]
    fn delete_folder_removes_the_subtree_but_never_an_archive() {
        let mut s = state();
        add_user(&mut s, "bob");
        ok(&mut s, folder("bob/Inbox/A"));
        ok(&mut s, folder("bob/InboxOld"));
        let delete = |path: &str| Command::DeleteFolder { tenant: T.into(), path: path.into() };
        assert_eq!(field(&err(&mut s, delete("bob"))), "folder");
        assert!(is_not_found(&err(&mut s, delete("bob/Nothing"))));
        ok(&mut s, delete("bob/Inbox"));
        assert_eq!(s.child_folders(T, Some("bob"), None).expect("tree"), vec!["bob/InboxOld"]);
    }

    #[test]
    fn child_folders_respect_start_and_max_levels() {
        let mut s = state();
        add_user(&mut s, "bob");
        add_user(&mut s, "alice");
        ok(&mut s, folder("bob/A/B/C"));
        ok(&mut s, folder("alice/X"));
        assert_eq!(s.child_folders(T, None, Some(1)).expect("top"), vec!["alice", "bob"]);
        assert_eq!(s.child_folders(T, None, Some(2)).expect("2"), vec!["alice", "alice/X", "bob", "bob/A"]);
        assert_eq!(s.child_folders(T, Some(""), Some(1)).expect("empty = all"), vec!["alice", "bob"]);
        assert_eq!(s.child_folders(T, Some("bob"), Some(1)).expect("bob"), vec!["bob/A"]);
        assert_eq!(s.child_folders(T, Some("BOB/A"), Some(1)).expect("A"), vec!["bob/A/B"]);
        assert_eq!(s.child_folders(T, Some("bob/A"), None).expect("A"), vec!["bob/A/B", "bob/A/B/C"]);
        assert!(s.child_folders(T, Some("bob"), Some(0)).expect("0").is_empty());
        assert!(is_not_found(&s.child_folders(T, Some("bob/Z"), None).expect_err("missing")));
        assert!(is_not_found(&s.child_folders(T, Some("zed"), None).expect_err("missing")));
    }

    #[test]
    fn first_shard_becomes_current_and_there_is_exactly_one_current() {
        let mut s = state();
        assert!(s.current_shard(T).is_none());
        ok(&mut s, shard("one", ShardState::Normal));
        assert_eq!(s.current_shard(T).expect("current").name, "one");
        ok(&mut s, shard("two", ShardState::Normal));
        ok(&mut s, shard("three", ShardState::Current));
        assert_eq!(
            shard_states(&s),
            vec![
                ("one".to_string(), ShardState::Normal),
                ("two".to_string(), ShardState::Normal),
                ("three".to_string(), ShardState::Current),
            ]
        );
        assert!(is_exists(&err(&mut s, shard("ONE", ShardState::Normal))));
        assert_eq!(field(&err(&mut s, shard("", ShardState::Normal))), "name");
    }

    #[test]
    fn setting_a_shard_current_demotes_the_previous_one() {
        let mut s = state();
        ok(&mut s, shard("one", ShardState::Current));
        let two = match ok(&mut s, shard("two", ShardState::WriteProtected)) {
            CommandOutput::Created(id) => id,
            other => panic!("{other:?}"),
        };
        ok(&mut s, Command::SetShardState { tenant: T.into(), id: two, state: ShardState::Current });
        assert_eq!(
            shard_states(&s),
            vec![("one".to_string(), ShardState::Normal), ("two".to_string(), ShardState::Current)]
        );
        ok(&mut s, Command::SetShardState { tenant: T.into(), id: two, state: ShardState::Current });
        assert_eq!(s.current_shard(T).expect("current").id, two);
    }

    #[test]
    fn the_current_shard_cannot_step_down_alone() {
        let mut s = state();
        ok(&mut s, shard("one", ShardState::Normal));
        let one = s.current_shard(T).expect("current").id;
        ok(&mut s, shard("two", ShardState::Normal));
        let e =
            err(&mut s, Command::SetShardState { tenant: T.into(), id: one, state: ShardState::Disabled });
        assert!(matches!(&e, MetaError::Refused(m) if m.contains("another store current first")), "{e}");
        let two = s.tenant(T).expect("t").shards.values().find(|x| x.name == "two").expect("two").id;
        ok(&mut s, Command::SetShardState { tenant: T.into(), id: two, state: ShardState::Disabled });
        assert!(is_not_found(&err(
            &mut s,
            Command::SetShardState { tenant: T.into(), id: 999, state: ShardState::Normal }
        )));
    }

    #[test]
    fn rename_shard_keeps_names_unique() {
        let mut s = state();
        ok(&mut s, shard("one", ShardState::Normal));
        ok(&mut s, shard("two", ShardState::Normal));
        let one = s.current_shard(T).expect("current").id;
        let rename = |name: &str| Command::RenameShard { tenant: T.into(), id: one, name: name.into() };
        assert!(is_exists(&err(&mut s, rename("TWO"))));
        assert_eq!(field(&err(&mut s, rename(" "))), "name");
        ok(&mut s, rename("One"));
        ok(&mut s, rename("first"));
        assert_eq!(s.current_shard(T).expect("current").name, "first");
        let missing = Command::RenameShard { tenant: T.into(), id: 999, name: "x".into() };
        assert!(is_not_found(&err(&mut s, missing)));
    }

    #[test]
    fn a_claim_wins_only_while_the_epoch_and_the_owners_lease_counter_are_unchanged() {
        let mut s = MetaState::default();
        s.apply("t", &Command::CreateTenant { name: T.into() }).expect("tenant");
        for node in [1, 2, 3] {
            s.apply("", &Command::RegisterNode { id: node, info: NodeInfo::default() }).expect("node");
        }
        let create = Command::CreateShard {
            tenant: T.into(),
            name: "2026-12".into(),
            state: ShardState::Current,
            wrapped_key: None,
        };
        let Ok(CommandOutput::Created(id)) = s.apply("s", &create) else { panic!("shard") };
        s.apply("a", &Command::AssignShard { tenant: T.into(), id, node: 1 }).expect("assign");
        assert_eq!(s.apply("", &Command::RenewLease { node: 1 }), Ok(CommandOutput::Renewed(1)));
        assert_eq!(s.apply("", &Command::RenewLease { node: 1 }), Ok(CommandOutput::Renewed(2)));
        assert!(matches!(s.apply("", &Command::RenewLease { node: 9 }), Err(MetaError::NotFound { .. })));
        let claim = |node, expected_epoch, owner_renewals| Command::ClaimShard {
            tenant: T.into(),
            id,
            node,
            expected_epoch,
            owner_renewals,
        };
        // Node 2 judged node 1 dead at renewal 1: node 1 renewed since, so the claim loses.
        assert!(matches!(s.apply("", &claim(2, 1, Some(1))), Err(MetaError::ClaimLost { .. })));
        // A claim on a stale epoch loses too.
        assert!(matches!(s.apply("", &claim(2, 0, Some(2))), Err(MetaError::ClaimLost { .. })));
        assert_eq!(s.apply("", &claim(2, 1, Some(2))), Ok(CommandOutput::Epoch(2)));
        // Node 3 looked at the same moment: the epoch moved on, so exactly one node took it over.
        assert!(matches!(s.apply("", &claim(3, 1, Some(2))), Err(MetaError::ClaimLost { .. })));
        let shard = &s.tenant(T).expect("tenant").shards[&id];
        assert_eq!((shard.owner_node, shard.epoch), (Some(2), 2));
        s.apply("", &Command::ForgetNode { id: 1 }).expect("forget");
        assert!(!s.leases.contains_key(&1), "a forgotten node's lease goes with it");
    }

    #[test]
    fn nodes_are_upserted_and_forgotten() {
        let mut s = MetaState::default();
        let info = |a: &str| NodeInfo { cluster_addr: a.into(), api_addr: "api".into(), version: "1".into() };
        ok(&mut s, Command::RegisterNode { id: 7, info: info("a:1") });
        ok(&mut s, Command::RegisterNode { id: 7, info: info("b:1") });
        assert_eq!(s.nodes.get(&7).map(|n| n.cluster_addr.as_str()), Some("b:1"));
        ok(&mut s, Command::ForgetNode { id: 7 });
        ok(&mut s, Command::ForgetNode { id: 7 });
        assert!(s.nodes.is_empty());
        assert_eq!(s.next_id, 0, "nodes take no ids from the counter");
    }

    #[test]
    fn a_move_is_a_compare_and_set_on_the_epoch_and_refuses_draining_unknown_and_disabled() {
        let mut s = state();
        let info = NodeInfo { cluster_addr: "c".into(), api_addr: "a".into(), version: "1".into() };
        for node in [1, 2, 3] {
            ok(&mut s, Command::RegisterNode { id: node, info: info.clone() });
        }
        let id = match ok(
            &mut s,
            Command::CreateShard {
                tenant: T.into(),
                name: "s".into(),
                state: ShardState::Normal,
                wrapped_key: None,
            },
        ) {
            CommandOutput::Created(id) => id,
            other => panic!("{other:?}"),
        };
        ok(&mut s, Command::AssignShard { tenant: T.into(), id, node: 1 });
        let mv = |node, epoch| Command::MoveShard { tenant: T.into(), id, node, epoch };
        assert!(matches!(err(&mut s, mv(2, 0)), MetaError::Refused(_)), "stale epoch");
        assert!(is_not_found(&err(&mut s, mv(9, 1))), "unknown node");
        assert!(matches!(err(&mut s, mv(1, 1)), MetaError::Refused(_)), "already there");
        ok(&mut s, Command::SetNodeDraining { id: 2, draining: true });
        assert!(matches!(err(&mut s, mv(2, 1)), MetaError::Refused(_)), "draining target");
        assert!(is_not_found(&err(&mut s, Command::SetNodeDraining { id: 9, draining: true })));
        assert_eq!(ok(&mut s, mv(3, 1)), CommandOutput::Epoch(2));
        let shard = s.tenant(T).expect("t").shards[&id].clone();
        assert_eq!((shard.owner_node, shard.epoch), (Some(3), 2));
        ok(&mut s, Command::SetNodeDraining { id: 2, draining: false });
        assert!(s.draining.is_empty());
        let other = Command::CreateShard {
            tenant: T.into(),
            name: "next".into(),
            state: ShardState::Current,
            wrapped_key: None,
        };
        ok(&mut s, other);
        ok(&mut s, Command::SetShardState { tenant: T.into(), id, state: ShardState::Disabled });
        assert!(matches!(err(&mut s, mv(2, 2)), MetaError::Refused(_)), "disabled store");
        ok(&mut s, Command::SetNodeDraining { id: 3, draining: true });
        ok(&mut s, Command::ForgetNode { id: 3 });
        assert!(s.draining.is_empty(), "a forgotten node is no longer draining");
    }

    #[test]
    fn retried_request_id_applies_once() {
        let mut s = state();
        let first = s.apply("req-1", &create_user_cmd("bob", &[], None));
        let again = s.apply("req-1", &create_user_cmd("bob", &[], None));
        assert_eq!(first, again, "the recorded answer, not AlreadyExists");
        assert_eq!(s.tenant(T).expect("t").users.len(), 1);
        // A refusal is remembered too, even when the state would now allow the command.
        let refused = s.apply("req-2", &folder("alice/Inbox"));
        assert!(refused.is_err());
        add_user(&mut s, "alice");
        assert_eq!(s.apply("req-2", &folder("alice/Inbox")), refused);
        assert!(s.child_folders(T, Some("alice"), None).expect("alice").is_empty());
        // A new id applies again.
        assert!(is_exists(&s.apply("req-3", &create_user_cmd("bob", &[], None)).expect_err("dup")));
        // No id, no deduplication.
        assert_eq!(s.apply("", &Command::ForgetNode { id: 1 }), Ok(CommandOutput::Done));
        assert!(!s.applied_requests.contains_key(""));
    }

    #[test]
    fn a_request_id_reused_with_another_command_is_refused_and_changes_nothing() {
        let mut s = state();
        add_user(&mut s, "dora");
        let password = |hash: &str| Command::UpdateUser {
            tenant: T.into(),
            user_name: "dora".into(),
            change: UserChange::PasswordHash(hash.into()),
        };
        assert_eq!(s.apply("key-1", &password("first")), Ok(CommandOutput::Done));
        assert_eq!(s.apply("key-1", &password("first")), Ok(CommandOutput::Done), "a retry");
        let reused = s.apply("key-1", &password("second")).expect_err("other arguments");
        assert!(matches!(&reused, MetaError::RequestIdReused { id } if id == "key-1"), "{reused:?}");
        assert!(reused.to_string().contains("Idempotency-Key"), "{reused}");
        let user = s.user(T, "dora").expect("dora");
        assert_eq!(user.password_hash.as_deref(), Some("first"), "the first password stays, and says so");
        // A retried CreateShard wraps a fresh data key: still the same request.
        let store = |key: &str| Command::CreateShard {
            tenant: T.into(),
            name: "2026-12".into(),
            state: ShardState::Current,
            wrapped_key: Some(key.into()),
        };
        let created = s.apply("key-2", &store("k1"));
        assert_eq!(s.apply("key-2", &store("k2")), created);
    }

    #[test]
    fn a_store_that_is_not_current_takes_no_new_mail_but_may_commit_a_rebuilt_index() {
        let mut s = state();
        let create = |name: &str| Command::CreateShard {
            tenant: T.into(),
            name: name.into(),
            state: ShardState::Current,
            wrapped_key: None,
        };
        let first = match s.apply("s1", &create("one")) {
            Ok(CommandOutput::Created(id)) => id,
            other => panic!("{other:?}"),
        };
        s.apply("a1", &Command::AssignShard { tenant: T.into(), id: first, node: 1 }).expect("assign");
        let commit = |sequence, message_count| Command::CommitManifest {
            tenant: T.into(),
            id: first,
            epoch: 1,
            sequence,
            manifest: format!("m-{sequence}"),
            message_count,
            byte_count: 0,
        };
        assert_eq!(s.apply("c1", &commit(1, 10)), Ok(CommandOutput::Done));
        s.apply("s2", &create("two")).expect("second store becomes current");
        let late = s.apply("c2", &commit(2, 11)).expect_err("a late write to the old store");
        assert!(matches!(&late, MetaError::Refused(m) if m.contains("only the current store")), "{late}");
        assert_eq!(s.apply("c3", &commit(2, 10)), Ok(CommandOutput::Done), "an index rebuild adds nothing");
    }

    #[test]
    fn remembered_request_ids_are_bounded_oldest_first() {
        let mut s = MetaState::default();
        for i in 0..MAX_REMEMBERED_REQUESTS + 3 {
            s.apply(&format!("r{i}"), &Command::ForgetNode { id: 1 }).expect("forget");
        }
        assert_eq!(s.applied_requests.len(), MAX_REMEMBERED_REQUESTS);
        assert_eq!(s.request_order.len(), MAX_REMEMBERED_REQUESTS);
        assert!(!s.applied_requests.contains_key("r2"));
        assert!(s.applied_requests.contains_key("r3"));
        assert_eq!(s.request_order.front().map(String::as_str), Some("r3"));
    }

    #[test]
    fn refused_command_changes_nothing() {
        let mut s = state();
        add_admin(&mut s, "admin");
        add_user(&mut s, "bob");
        ok(&mut s, folder("bob/Inbox"));
        ok(&mut s, shard("one", ShardState::Normal));
        let one = s.current_shard(T).expect("current").id;
        let refused = vec![
            Command::CreateTenant { name: "default".into() },
            create_user_cmd("BOB", &[], None),
            create_user_cmd("carol", &[Privilege::Admin, Privilege::Login], None),
            Command::DeleteUser { tenant: T.into(), user_name: "admin".into() },
            Command::DeleteUser { tenant: T.into(), user_name: "nobody".into() },
            Command::RenameUser {
                tenant: T.into(),
                old_user_name: "bob".into(),
                new_user_name: "Admin".into(),
            },
            Command::UpdateUser {
                tenant: T.into(),
                user_name: "admin".into(),
                change: UserChange::Privileges(BTreeSet::new()),
            },
            grant("bob", "bob/Inbox", &[FolderPrivilege::Read]),
            folder("bob/Inbox"),
            mv("bob/Inbox", "bob/Inbox/X"),
            mv("bob", "admin"),
            Command::DeleteFolder { tenant: T.into(), path: "bob".into() },
            shard("ONE", ShardState::Current),
            Command::SetShardState { tenant: T.into(), id: one, state: ShardState::Normal },
            Command::RenameShard { tenant: T.into(), id: one + 100, name: "x".into() },
            Command::CreateFolder { tenant: "nowhere".into(), path: "bob/x".into() },
        ];
        for cmd in refused {
            err(&mut s, cmd);
        }
    }

    #[test]
    fn replicas_applying_the_same_log_agree_and_snapshots_round_trip() {
        let log = [
            Command::CreateTenant { name: T.into() },
            create_user_cmd("admin", &[Privilege::Admin], Some("$h")),
            create_user_cmd("bob", &[Privilege::Login], None),
            folder("bob/Inbox/2024"),
            grant("admin", "bob", &[FolderPrivilege::Read]),
            shard("2024-01", ShardState::Normal),
            Command::RegisterNode { id: 42, info: NodeInfo::default() },
            Command::DeleteUser { tenant: T.into(), user_name: "bob".into() },
        ];
        let mut a = MetaState::default();
        let mut b = MetaState::default();
        for (i, cmd) in log.iter().enumerate() {
            let id = format!("r{i}");
            assert_eq!(a.apply(&id, cmd), b.apply(&id, cmd));
        }
        assert_eq!(a, b);
        assert_eq!(a.state_hash(), b.state_hash());
        assert_eq!(a.state_hash().len(), 64);

        let json = serde_json::to_string(&a).expect("serialize");
        let restored: MetaState = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(restored, a);
        assert_eq!(restored.state_hash(), a.state_hash());

        b.apply("r-more", &folder("bob/Other")).expect("orphaned archives take folders");
        assert_ne!(a.state_hash(), b.state_hash());
    }
}
