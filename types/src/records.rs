//! Metadata records held in the Raft state machine: tenants, users, archives, shards, nodes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{ArchiveId, NodeId, ShardId, UserId};
use crate::values::{Authentication, FolderPrivilege, Privilege, ShardState, TenantState};

/// The tenant every single-node installation starts with (OPS-06). It is also the cluster operator
/// tenant: its administrators manage tenants and cluster membership (CLU-04, CLU-05); it can be
/// neither disabled nor deleted. A login name without a tenant (`alice`, not `acme/alice`) means it.
pub const DEFAULT_TENANT: &str = "default";

/// One tenant: it owns its users, archives, grants and shards; nothing crosses tenants (CLU-04).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub users: BTreeMap<UserId, User>,
    pub archives: BTreeMap<ArchiveId, Archive>,
    /// Folder privileges: user -> archive -> privileges (ADM-04). Absent means none.
    pub grants: BTreeMap<UserId, BTreeMap<ArchiveId, BTreeSet<FolderPrivilege>>>,
    pub shards: BTreeMap<ShardId, Shard>,
    /// The tenant key wrapped by the cluster master key (JSON); set when the first shard is created.
    #[serde(default)]
    pub wrapped_key: Option<String>,
    /// The tenant's compliance settings (CMP-01).
    #[serde(default)]
    pub compliance: Compliance,
    /// Enabled, or disabled by a cluster operator: then nobody of the tenant logs in (CLU-04).
    #[serde(default)]
    pub state: TenantState,
}

/// Compliance settings of a tenant (CMP-01); the default blocks administrators' archive access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compliance {
    /// Archive access not blocked: administrators may read every archive of the tenant
    /// (`adminEmailPreviewEnabled`). While false they see archive names and statistics only.
    #[serde(default)]
    pub admin_email_preview_enabled: bool,
}

/// A user record (ADM-01). The password is kept only as an argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub full_name: Option<String>,
    pub authentication: Authentication,
    pub password_hash: Option<String>,
    pub privileges: BTreeSet<Privilege>,
    pub distinguished_name: Option<String>,
    /// The first address is the primary one.
    pub email_addresses: Vec<String>,
    pub pop3_user_names: Vec<String>,
    /// The user's own archive, created with the user.
    pub archive: ArchiveId,
}

impl User {
    /// True when the user holds the global `admin` privilege.
    pub fn is_admin(&self) -> bool {
        self.privileges.contains(&Privilege::Admin)
    }
}

/// A user archive: a top-level folder and the folder tree below it. It stays when its user is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archive {
    pub id: ArchiveId,
    /// The top-level folder name; it carries the user name at creation and is not changed by a rename.
    pub name: String,
    /// The owning user; `None` for an orphaned archive.
    pub owner: Option<UserId>,
    /// The folder tree: each path below the top-level folder, `/`-separated (e.g. `Inbox/Projects`),
    /// with the folder's key. Mail is filed (staging log, manifest entry, index document) under the
    /// key, never the path, so moving or renaming a folder changes this map only (O(folders), not
    /// O(messages)). A folder's key is its path at creation unless another folder holds that key
    /// (then `<path>#<n>`); folders recorded before keys existed (a list of paths) keep key = path,
    /// which is what their mail carries, so older data needs no migration.
    #[serde(deserialize_with = "folder_tree")]
    pub folders: BTreeMap<String, String>,
}

impl Archive {
    /// The key mail of folder `path` is filed under; `""` (the top-level folder) is its own key.
    pub fn folder_key(&self, path: &str) -> Option<&str> {
        if path.is_empty() {
            return Some("");
        }
        self.folders.get(path).map(String::as_str)
    }

    /// The keys of folder `path` and, when `subfolders`, of every folder below it; `None` when the
    /// archive has no such folder.
    pub fn folder_keys(&self, path: &str, subfolders: bool) -> Option<Vec<String>> {
        let own = self.folder_key(path)?.to_string();
        let mut keys = vec![own];
        if subfolders {
            let prefix = format!("{path}/");
            let below = self.folders.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix));
            keys.extend(below.map(|(_, k)| k.clone()));
            if path.is_empty() {
                keys.extend(self.folders.values().cloned());
            }
        }
        Some(keys)
    }

    /// Key -> current path of every folder (the top-level folder's key `""` included), to show
    /// where mail filed under a key is now.
    pub fn paths_by_key(&self) -> std::collections::HashMap<&str, &str> {
        let mut map: std::collections::HashMap<&str, &str> =
            self.folders.iter().map(|(p, k)| (k.as_str(), p.as_str())).collect();
        map.insert("", "");
        map
    }
}

/// Reads the folder tree as a map path -> key, or as the list of paths older states held (key = path).
fn folder_tree<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tree {
        Keyed(BTreeMap<String, String>),
        Paths(BTreeSet<String>),
    }
    Ok(match Tree::deserialize(d)? {
        Tree::Keyed(map) => map,
        Tree::Paths(paths) => paths.into_iter().map(|p| (p.clone(), p)).collect(),
    })
}

/// An archive store (shard) in the catalogue (STO-01..03, CLU-02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub id: ShardId,
    pub name: String,
    pub state: ShardState,
    /// The node that serves (writes and searches) this shard.
    pub owner_node: Option<NodeId>,
    /// Fencing epoch: raised whenever the serving node changes (invariant 2).
    pub epoch: u64,
    /// Object key of the latest committed manifest.
    pub manifest: Option<String>,
    /// Sequence number of the latest committed manifest (0 before the first).
    #[serde(default)]
    pub manifest_sequence: u64,
    pub message_count: u64,
    pub byte_count: u64,
    /// The shard's data key wrapped by the tenant key (JSON).
    #[serde(default)]
    pub wrapped_key: Option<String>,
}

/// A cluster node as the catalogue knows it: where to reach it and what it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Address of the cluster listener (Raft and inter-node RPC), `host:port`.
    pub cluster_addr: String,
    /// Address of the API listener, `host:port`.
    pub api_addr: String,
    /// Version of the `arca` binary.
    pub version: String,
}

impl std::fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster={} api={}", self.cluster_addr, self.api_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_trees_of_older_states_read_with_path_keys() {
        let old = r#"{"id":3,"name":"alice","owner":null,"folders":["Inbox","Inbox/Sub"]}"#;
        let archive: Archive = serde_json::from_str(old).expect("old tree");
        assert_eq!(archive.folder_key("Inbox/Sub"), Some("Inbox/Sub"));
        let again: Archive =
            serde_json::from_str(&serde_json::to_string(&archive).expect("json")).expect("new tree");
        assert_eq!(again, archive);
    }

    #[test]
    fn folder_keys_cover_the_subtree_only() {
        let folders = [("In", "In"), ("In/Sub", "k2"), ("In/Sub/x", "k3"), ("Inbox", "Inbox")];
        let archive = Archive {
            id: 1,
            name: "alice".into(),
            owner: None,
            folders: folders.iter().map(|(p, k)| (p.to_string(), k.to_string())).collect(),
        };
        assert_eq!(archive.folder_keys("In", true), Some(vec!["In".into(), "k2".into(), "k3".into()]));
        assert_eq!(archive.folder_keys("In", false), Some(vec!["In".into()]));
        assert_eq!(archive.folder_keys("Out", true), None);
        assert_eq!(archive.paths_by_key().get("k3"), Some(&"In/Sub/x"));
    }
}
