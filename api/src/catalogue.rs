//! Catalogue of the Administration API functions (OPS-01, OPS-02).
//!
//! `POST /api/get-metadata` returns [`listed`] serialized as a list of
//! `{name, args: [{name, type, nullable}], description}`; the invoke dispatcher
//! looks functions up with [`find`] and validates the submitted arguments against
//! [`FunctionSpec::args`]. Argument names are case-sensitive and keep the
//! reference's quirks (`timeZoneID` and `profileID` in `GetWorkerResults`,
//! `DeleteJob`'s `id` as a string).
//!
//! [`FUNCTIONS`] holds the 77 functions of the reference, alphabetically.
//! Arca extensions that exist only in test builds live in a separate
//! `TEST_FUNCTIONS` list and are visible only while the environment variable
//! `ARCA_ENABLE_TEST_FUNCTIONS` is `1`.

use self::Availability::{Implemented, NotYet};

/// The type of one API argument, as get-metadata reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgType {
    /// Taken as given (UTF-8).
    String,
    /// A decimal integer.
    Number,
    /// `true` or `false`.
    Bool,
    /// A JSON text in the form field.
    Json,
}

/// One argument of an API function.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ArgSpec {
    /// Exact, case-sensitive argument name.
    pub name: &'static str,
    /// Wire type of the argument.
    #[serde(rename = "type")]
    pub ty: ArgType,
    /// `true` = optional: omitted or empty means "not given".
    pub nullable: bool,
}

/// Whether Arca implements a function yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// The function is implemented.
    Implemented,
    /// The function answers an error saying it is not implemented yet.
    NotYet,
}

/// One function of the Administration API.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct FunctionSpec {
    /// Exact, case-sensitive function name (`/api/invoke/<name>`).
    pub name: &'static str,
    /// Arguments in the reference's order.
    pub args: &'static [ArgSpec],
    /// Short English description, with Arca's mapping where it differs.
    pub description: &'static str,
    /// Whether Arca implements the function yet (not reported by get-metadata).
    #[serde(skip)]
    pub availability: Availability,
}

impl FunctionSpec {
    /// The argument with exactly this name, if the function has one.
    pub fn arg(&self, name: &str) -> Option<&'static ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }

    /// Whether the function is implemented in this build.
    pub fn is_implemented(&self) -> bool {
        self.availability == Availability::Implemented
    }
}

const fn arg(name: &'static str, ty: ArgType, nullable: bool) -> ArgSpec {
    ArgSpec { name, ty, nullable }
}
/// Mandatory string.
const fn s(name: &'static str) -> ArgSpec {
    arg(name, ArgType::String, false)
}
/// Optional string.
const fn so(name: &'static str) -> ArgSpec {
    arg(name, ArgType::String, true)
}
/// Mandatory number.
const fn n(name: &'static str) -> ArgSpec {
    arg(name, ArgType::Number, false)
}
/// Optional number.
const fn no(name: &'static str) -> ArgSpec {
    arg(name, ArgType::Number, true)
}
/// Mandatory bool.
const fn b(name: &'static str) -> ArgSpec {
    arg(name, ArgType::Bool, false)
}
/// Optional bool.
const fn bo(name: &'static str) -> ArgSpec {
    arg(name, ArgType::Bool, true)
}
/// Mandatory JSON.
const fn j(name: &'static str) -> ArgSpec {
    arg(name, ArgType::Json, false)
}
/// Optional JSON.
#[allow(dead_code)]
const fn jo(name: &'static str) -> ArgSpec {
    arg(name, ArgType::Json, true)
}

const fn f(
    name: &'static str,
    args: &'static [ArgSpec],
    description: &'static str,
    availability: Availability,
) -> FunctionSpec {
    FunctionSpec { name, args, description, availability }
}

/// The 77 functions of the Administration API, alphabetically (byte order).
#[rustfmt::skip]
pub static FUNCTIONS: &[FunctionSpec] = &[
    f("AttachStore", &[s("name"), s("type"), so("databaseName"), so("databasePath"), so("contentPath"), so("indexPath"), so("serverName"), so("userName"), so("password"), so("requestedState")], "Attach an existing archive store. type: FileSystemInternal (SQLServer and PostgreSQL are refused: store type not supported); requestedState: current, normal, writeProtected, disabled. Arca: attaches an existing shard from its object-store location (databasePath/contentPath/indexPath name object-store locations; the SQL arguments are meaningless).", NotYet),
    f("CancelJobAsync", &[n("id")], "Cancel a running job asynchronously.", NotYet),
    f("ClearUserPrivilegesOnFolders", &[s("userName")], "Remove all privileges of a user on all archive folders.", Implemented),
    f("CompactMasterDatabase", &[], "Compact the master database. Arca: compacts the metadata store (Raft snapshot and log truncation).", NotYet),
    f("CompactStore", &[n("id")], "Compact an archive store. Arca: rewrites the shard's packs without deleted messages (new manifest, delayed delete).", NotYet),
    f("CreateBackup", &[s("path"), bo("excludeSearchIndexes")], "Back up the entire archive to path (target directory); the first run copies everything, later runs only changes. A restore without search indexes must rebuild them. Arca: Raft snapshot plus all objects, to a directory or object-store URL; the archive stays available meanwhile.", NotYet),
    f("CreateJob", &[so("name"), so("action"), so("owner"), so("timeZoneId"), so("date"), no("interval"), so("time"), so("dayOfWeek"), so("dayOfMonth")], "Create a job that runs a Management-API command on a schedule (date = run once; time alone = daily; dayOfWeek/dayOfMonth need time; interval in minutes). Arca: action is required; name defaults to the action's function, owner (an administrator) to the caller, timeZoneId to $Local.", NotYet),
    f("CreateProfile", &[j("properties"), b("raw")], "Create an archiving or export profile. properties: the JSON GetProfiles returns for that profile type, without id and version, with password filled in; raw accepts only true.", NotYet),
    f("CreateStore", &[s("name"), so("type"), so("databaseName"), so("databasePath"), so("contentPath"), so("indexPath"), so("serverName"), so("userName"), so("password"), so("requestedState")], "Create and attach a new archive store. Arca: a new shard; type FileSystemInternal only (SQLServer and PostgreSQL are refused); databaseName, databasePath, contentPath, indexPath, serverName, userName and password are refused, naming the argument (every shard lives at <storage>/tenants/<tenant>/shards/<id>).", Implemented),
    f("CreateUser", &[s("userName"), s("privileges"), so("fullName"), so("distinguishedName"), so("authentication"), so("password")], "Create a user. privileges: comma-separated none, admin, login, changePassword, archive, modifyArchiveProfiles, export, modifyExportProfiles, delete (none and admin only alone); authentication: integrated or directoryServices. Arca: the user gets read,write on the own archive.", Implemented),
    f("DeleteEmptyFolders", &[so("folder")], "Remove folders without messages, below folder (entry point in the tree) or everywhere.", NotYet),
    f("DeleteJob", &[s("id")], "Delete a job. id is a string here (reference quirk); Arca accepts digits either way.", NotYet),
    f("DeleteMessage", &[s("id"), s("reason")], "Delete one message. id = <store_id>:<message_num> (Arca: <shard>:<number>); reason is written to the audit log. Subject to legal hold and retention.", NotYet),
    f("DeleteProfile", &[n("id")], "Delete a profile.", NotYet),
    f("DeleteUser", &[s("userName")], "Delete a user; the user's archive and messages stay.", Implemented),
    f("DetachStore", &[n("id")], "Detach an archive store. Arca: the shard is no longer served; its objects stay.", NotYet),
    f("GetActiveSessions", &[], "List current user sessions.", NotYet),
    f("GetChildFolders", &[so("folder"), no("maxLevels")], "Child folders of a folder (omitted = all archives and folders), up to maxLevels deep; depending on compliance settings only the first level.", Implemented),
    f("GetComplianceConfiguration", &[], "Current compliance settings: {adminEmailPreviewEnabled} (false = archive access blocked, the default). Arca: the other keys of the manual are not supported yet.", Implemented),
    f("GetDirectoryServicesConfiguration", &[], "Current directory-services settings. Arca: secrets masked.", NotYet),
    f("GetFolderStatistics", &[], "Folder (archive) statistics.", Implemented),
    f("GetJobResults", &[s("fromIncluding"), s("toExcluding"), s("timeZoneId"), no("jobId")], "Finished job runs in the range [fromIncluding, toExcluding) (local times YYYY-MM-DDThh:mm:ss in timeZoneId).", NotYet),
    f("GetJobs", &[], "List jobs.", NotYet),
    f("GetMessages", &[so("folder")], "Messages of a folder; compliance settings apply.", Implemented),
    f("GetProfiles", &[b("raw")], "Archiving and export profiles; raw accepts only true.", NotYet),
    f("GetRetentionPolicies", &[], "The retention policies (JSON array).", NotYet),
    f("GetServerInfo", &[], "Version and machine name: {version, machineName}. Arca: its own version and node name, and the whole cluster (OPS-07): nodes[] with id, machineName, version, apiAddr, clusterAddr, role (leader, follower, learner), reachable, healthy, health (ok, silent, unreachable), lastHeardMs (since the leader last heard from it), lag, shards and shardIds (the caller's tenant's stores it serves), counters (searches, shardSearches, batchesArchived, messagesArchived); leader, term, mixedVersions, shardsWithoutLiveOwner.", Implemented),
    f("GetServiceConfiguration", &[], "Master-database path, audit-log location, debug-log switches, endpoint configuration. Arca: the node's service configuration.", NotYet),
    f("GetSmtpSettings", &[], "Current SMTP settings.", NotYet),
    f("GetStoreIndexes", &[no("id")], "Full-text indexes, of one store or all.", Implemented),
    f("GetStores", &[bo("includeSize")], "Archive stores (Arca: shards); includeSize defaults to true and may be slow.", Implemented),
    f("GetTimeZones", &[], "Available time zones (id and name); $Local = the server's zone. Arca: $Local = the tenant's configured zone (default UTC), other ids are IANA names.", NotYet),
    f("GetUserInfo", &[s("userName")], "Details of one user: {userName, fullName, distinguishedName, authentication, emailAddresses, pop3UserNames, privileges, privilegesOnFolders: [{folder, privileges}]}.", Implemented),
    f("GetUsers", &[], "List users: [{userName, fullName, distinguishedName}].", Implemented),
    f("GetWorkerResults", &[s("fromIncluding"), s("toExcluding"), s("timeZoneID"), no("profileID"), so("userName")], "Results of profile runs in the range [fromIncluding, toExcluding) (local times in timeZoneID; note the capital ID).", NotYet),
    f("MaintainFileSystemDatabases", &[], "Database maintenance of all file-system stores. Arca: index and cache checks of all shards, reporting what was done.", NotYet),
    f("MergeStore", &[n("id"), n("sourceId")], "Merge archive store sourceId into store id.", NotYet),
    f("MoveFolder", &[s("fromFolder"), s("toFolder")], "Move or rename a folder from fromFolder (old name) to toFolder (new name); a subfolder moves with its subtree and mail, within its archive.", Implemented),
    f("ProcessRetentionPolicies", &[], "Process the retention policies now.", NotYet),
    f("RebuildSelectedStoreIndexes", &[], "Rebuild all indexes selected for rebuild.", Implemented),
    f("RebuildStoreIndex", &[n("id"), s("folder")], "Rebuild the search index of one folder in store id.", Implemented),
    f("RecoverStore", &[n("id"), bo("recoverDeletedMessages")], "Rebuild a broken store database from recovery records (store upgraded, records intact, state disabled or error). Arca: rebuilds manifest and metadata from the shard's self-describing packs; deleted records come back only while not yet compacted.", NotYet),
    f("RecreateRecoveryRecords", &[n("id")], "Recreate broken recovery records (check with VerifyStore). Arca: copies the readable records of a pack with a damaged trailer into a new pack under a new manifest.", NotYet),
    f("RefreshAllStoreStatistics", &[], "Refresh the statistics of all stores. Arca: store statistics are counted with every committed flush (GetStores), so there is nothing to recount yet; answers not available.", NotYet),
    f("RenameJob", &[no("id"), so("name")], "Rename a job.", NotYet),
    f("RenameStore", &[n("id"), s("name")], "Rename a store.", Implemented),
    f("RenameUser", &[s("oldUserName"), s("newUserName")], "Rename a user; the archive is not renamed.", Implemented),
    f("RenewMasterKey", &[], "Renew the master key that encrypts the encryption keys. Arca: re-wraps shard keys under a new tenant key without rewriting packs.", NotYet),
    f("RepairStoreDatabase", &[n("id")], "Fix certain store-database problems (e.g. missing database indexes). Arca: re-checks the manifest and rebuilds derived metadata.", NotYet),
    f("RetryOpenStores", &[], "Retry stores that failed to open. Arca: reassigns shards in error to a serving node.", NotYet),
    f("RunJobAsync", &[n("id")], "Run a job now.", NotYet),
    f("RunProfile", &[n("id")], "Run an existing server-side profile.", NotYet),
    f("RunTemporaryProfile", &[j("properties"), b("raw")], "Run a server-side profile that is not stored; raw accepts only true.", NotYet),
    f("SelectAllStoreIndexesForRebuild", &[], "Mark all indexes for rebuild.", Implemented),
    f("SendStatusReport", &[s("timespan"), s("timeZoneId"), s("recipients")], "Send a status report. timespan: today, yesterday, thisweek, lastweek, thismonth, lastmonth; recipients comma-separated.", NotYet),
    f("SetComplianceConfiguration", &[j("config"), so("reason"), so("password")], "Set compliance settings (keys as GetComplianceConfiguration returns; get current values first; other keys are refused naming them). Changing adminEmailPreviewEnabled needs the administrator's own password again: Arca: optional password, verified (without it the request's Basic-auth password counts, CMP-06); optional reason, stored with the audit event.", Implemented),
    f("SetDirectoryServicesConfiguration", &[j("config")], "Set directory-services settings (shape as GetDirectoryServicesConfiguration returns).", NotYet),
    f("SetJobEnabled", &[no("id"), bo("enabled")], "Enable or disable a job.", NotYet),
    f("SetJobSchedule", &[n("id"), s("timeZoneId"), so("date"), no("interval"), so("time"), so("dayOfWeek"), so("dayOfMonth")], "Change a job's schedule. Arca: interval 260 is accepted as an alias of 240 (every 4 hours) and reported as 240.", NotYet),
    f("SetRetentionPolicies", &[j("config")], "Replace the retention policies (JSON array of policy objects).", NotYet),
    f("SetSmtpSettings", &[j("settings")], "Set SMTP settings.", NotYet),
    f("SetStoreProperties", &[n("id"), so("type"), so("databaseName"), so("databasePath"), so("contentPath"), so("indexPath"), so("serverName"), so("userName"), so("password")], "Set properties of an archive store. Arca: type FileSystemInternal only; the SQL arguments are meaningless.", NotYet),
    f("SetStoreRequestedState", &[n("id"), so("requestedState")], "Set a store's state: current, normal, writeProtected, disabled. Arca: exactly one current store per tenant; setting a new one makes the old one normal.", Implemented),
    f("SetUserAuthentication", &[s("userName"), s("authentication")], "Set a user's authentication: integrated or directoryServices.", Implemented),
    f("SetUserDistinguishedName", &[s("userName"), so("distinguishedName")], "Set a user's LDAP distinguished name; omitted removes it.", Implemented),
    f("SetUserEmailAddresses", &[s("userName"), so("emailAddresses")], "Set a user's e-mail addresses (comma-separated, first = primary); omitted removes all.", Implemented),
    f("SetUserFullName", &[s("userName"), so("fullName")], "Set a user's full name; omitted removes it.", Implemented),
    f("SetUserPassword", &[s("userName"), s("password")], "Set a user's password (password policy applies).", Implemented),
    f("SetUserPop3UserNames", &[s("userName"), so("pop3UserNames")], "Set a user's POP3 user names (comma-separated); omitted removes all.", Implemented),
    f("SetUserPrivileges", &[s("userName"), s("privileges")], "Set a user's global privileges: comma-separated none, admin, login, changePassword, archive, modifyArchiveProfiles, export, modifyExportProfiles, delete (none and admin only alone).", Implemented),
    f("SetUserPrivilegesOnFolder", &[s("userName"), s("folder"), s("privileges")], "Set a user's privileges on a top-level folder (archive): comma-separated read, write, delete, or none alone to remove all.", Implemented),
    f("SyncUsersWithDirectoryServices", &[bo("dryRun")], "Synchronise users with the directory service; dryRun only simulates.", NotYet),
    f("TestSmtpSettings", &[], "Send a test mail with the current SMTP settings.", NotYet),
    f("UnlockStore", &[n("id"), s("passphrase")], "Unlock a store attached from another installation. Arca: passphrase = the other cluster's recovery key.", NotYet),
    f("UpgradeStore", &[n("id")], "Upgrade a store from an older format. Arca: upgrades an older Arca shard format; with nothing to upgrade it succeeds only if the shard is already current.", NotYet),
    f("VerifyStore", &[n("id"), bo("includeIndexes")], "Verify one store's consistency (includeIndexes defaults to false: the manual's own example sends only id). Arca: every record's checksum and manifest entry; with includeIndexes=true also that the index holds every committed message exactly once and nothing else (result `index`). Long-running.", Implemented),
    f("VerifyStores", &[bo("includeIndexes")], "Verify all stores. Long-running.", Implemented),
];

/// Arca extensions of the Administration API (not in the reference), always listed after its functions:
/// tenant management (CLU-04) and store moves (CLU-05), for cluster operators only (administrators of the
/// operator tenant `default`).
#[rustfmt::skip]
pub static ARCA_FUNCTIONS: &[FunctionSpec] = &[
    f("CreateTenant", &[s("name"), so("adminName"), so("adminPassword")], "Arca extension (CLU-04, cluster operators only): create a tenant (name: a-z, 0-9 and '-', at most 63 characters) with its first administrator adminName (default admin) and adminPassword (password policy applies; omitted: generated and answered once as adminPassword). Its users log in as <tenant>/<user>. Result {name, state, adminName, login, adminPassword}.", Implemented),
    f("DeleteTenant", &[s("name"), bo("force")], "Arca extension (CLU-04, cluster operators only): delete a tenant. Refused for tenant 'default' and, as deleting stores and their objects is not available yet, while the tenant has archive stores; its users and archives go with it only with force=true.", Implemented),
    f("GetTenant", &[s("name")], "Arca extension (CLU-04, cluster operators only): one tenant {name, state, operatorTenant, users, archives, stores, messageCount, size, administrators, stores: [{id, name, requestedState, messageCount, size}]}.", Implemented),
    f("GetTenants", &[], "Arca extension (CLU-04, cluster operators only): every tenant [{name, state, operatorTenant, users, archives, stores, messageCount, size}].", Implemented),
    f("SetTenantState", &[s("name"), s("state")], "Arca extension (CLU-04, cluster operators only): state enabled or disabled; a disabled tenant's users cannot log in or use any route (HTTP 403 naming the tenant). Tenant 'default' cannot be disabled.", Implemented),
    f("MoveStore", &[n("id"), no("node")], "Arca extension (cluster operator): moves store id to node (omitted: the non-draining member with the fewest stores). The target restores the store's index from object storage while the old node serves it, then takes it over with a new epoch; nothing is copied through the old node and searches are answered throughout. Refused for an unknown, draining or non-member node, a disabled store, or the node serving it already. Long-running.", Implemented),
    f("PlanStoreMoves", &[s("purpose"), no("node")], "Arca extension (cluster operator): the moves that would drain node (purpose=drain) or even out stores and current stores over the non-draining members (purpose=rebalance), with stores per node before and after. Changes nothing.", Implemented),
    f("SetNodeDraining", &[n("id"), bo("draining")], "Arca extension (cluster operator): marks node id draining (draining omitted or true; no store is moved onto it) or clears the mark (false).", Implemented),
];

/// Arca extensions that exist only for tests; visible only while
/// `ARCA_ENABLE_TEST_FUNCTIONS=1`.
#[rustfmt::skip]
static TEST_FUNCTIONS: &[FunctionSpec] = &[
    f("ArcaTestSleep", &[n("milliseconds"), no("steps")], "Arca extension (test builds only): sleeps for milliseconds as a long-running call, reporting progress in steps (default 1) and honouring cancel-async.", Implemented),
];

/// Name of the environment variable that exposes the test-only extensions.
pub const TEST_FUNCTIONS_ENV: &str = "ARCA_ENABLE_TEST_FUNCTIONS";

/// Whether the test-only functions are enabled (read at call time).
pub fn test_functions_enabled() -> bool {
    std::env::var(TEST_FUNCTIONS_ENV).as_deref() == Ok("1")
}

/// The functions get-metadata lists: all of [`FUNCTIONS`], the Arca extensions, plus the test-only
/// extensions when [`test_functions_enabled`].
pub fn listed() -> impl Iterator<Item = &'static FunctionSpec> {
    listed_with(test_functions_enabled())
}

/// The function with exactly this name (case-sensitive); test-only extensions
/// only when [`test_functions_enabled`].
pub fn find(name: &str) -> Option<&'static FunctionSpec> {
    find_with(name, test_functions_enabled())
}

fn listed_with(test_enabled: bool) -> impl Iterator<Item = &'static FunctionSpec> {
    let test: &'static [FunctionSpec] = if test_enabled { TEST_FUNCTIONS } else { &[] };
    FUNCTIONS.iter().chain(ARCA_FUNCTIONS.iter()).chain(test.iter())
}

fn find_with(name: &str, test_enabled: bool) -> Option<&'static FunctionSpec> {
    listed_with(test_enabled).find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const IMPLEMENTED: [&str; 31] = [
        "GetServerInfo",
        "CreateUser",
        "GetUsers",
        "GetUserInfo",
        "DeleteUser",
        "RenameUser",
        "SetUserPassword",
        "SetUserPrivileges",
        "SetUserEmailAddresses",
        "SetUserFullName",
        "SetUserPrivilegesOnFolder",
        "GetChildFolders",
        "SetUserAuthentication",
        "SetUserDistinguishedName",
        "SetUserPop3UserNames",
        "ClearUserPrivilegesOnFolders",
        "MoveFolder",
        "GetStores",
        "CreateStore",
        "SetStoreRequestedState",
        "RenameStore",
        "VerifyStore",
        "VerifyStores",
        "RebuildStoreIndex",
        "GetStoreIndexes",
        "GetFolderStatistics",
        "GetMessages",
        "SelectAllStoreIndexesForRebuild",
        "RebuildSelectedStoreIndexes",
        "GetComplianceConfiguration",
        "SetComplianceConfiguration",
    ];

    #[test]
    fn exactly_77_functions() {
        assert_eq!(FUNCTIONS.len(), 77);
    }

    #[test]
    fn names_strictly_alphabetical_and_unique() {
        for pair in FUNCTIONS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} !< {}", pair[0].name, pair[1].name);
            assert!(
                pair[0].name.to_lowercase() < pair[1].name.to_lowercase(),
                "{} !< {} (case-insensitive)",
                pair[0].name,
                pair[1].name
            );
        }
        let names: HashSet<&str> =
            FUNCTIONS.iter().chain(ARCA_FUNCTIONS).chain(TEST_FUNCTIONS).map(|f| f.name).collect();
        assert_eq!(names.len(), FUNCTIONS.len() + ARCA_FUNCTIONS.len() + TEST_FUNCTIONS.len());
    }

    #[test]
    fn argument_names_unique_per_function() {
        for spec in FUNCTIONS.iter().chain(TEST_FUNCTIONS) {
            let mut seen = HashSet::new();
            for a in spec.args {
                assert!(seen.insert(a.name), "{}: duplicate argument {}", spec.name, a.name);
            }
        }
    }

    #[test]
    fn descriptions_non_empty() {
        for spec in FUNCTIONS.iter().chain(TEST_FUNCTIONS) {
            assert!(!spec.description.trim().is_empty(), "{}", spec.name);
        }
    }

    #[test]
    fn arca_extensions_are_the_tenant_and_operator_functions_all_implemented() {
        let names: Vec<&str> = ARCA_FUNCTIONS.iter().map(|f| f.name).collect();
        let expected: Vec<&str> =
            crate::tenants::FUNCTIONS.iter().chain(crate::operator::NAMES.iter()).copied().collect();
        assert_eq!(names, expected);
        assert!(ARCA_FUNCTIONS.iter().all(|f| f.is_implemented()));
        assert!(ARCA_FUNCTIONS.iter().all(|f| FUNCTIONS.iter().all(|g| g.name != f.name)));
    }

    #[test]
    fn implemented_set_is_exact() {
        let want: HashSet<&str> = IMPLEMENTED.into_iter().collect();
        let got: HashSet<&str> = FUNCTIONS.iter().filter(|f| f.is_implemented()).map(|f| f.name).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn get_worker_results_quirks() {
        let spec = FUNCTIONS.iter().find(|f| f.name == "GetWorkerResults").expect("present");
        let tz = spec.arg("timeZoneID").expect("timeZoneID");
        assert_eq!((tz.ty, tz.nullable), (ArgType::String, false));
        let p = spec.arg("profileID").expect("profileID");
        assert_eq!((p.ty, p.nullable), (ArgType::Number, true));
        assert!(spec.arg("timeZoneId").is_none());
        assert!(spec.arg("profileId").is_none());
    }

    #[test]
    fn create_user_mandatory_args() {
        let spec = FUNCTIONS.iter().find(|f| f.name == "CreateUser").expect("present");
        for (a, name) in spec.args.iter().zip(["userName", "privileges"]) {
            assert_eq!(a.name, name);
            assert_eq!(a.ty, ArgType::String);
            assert!(!a.nullable);
        }
        assert!(spec.args[2..].iter().all(|a| a.nullable));
    }

    #[test]
    fn verify_store_args() {
        let spec = FUNCTIONS.iter().find(|f| f.name == "VerifyStore").expect("present");
        let id = spec.arg("id").expect("id");
        assert_eq!((id.ty, id.nullable), (ArgType::Number, false));
        let ix = spec.arg("includeIndexes").expect("includeIndexes");
        assert_eq!((ix.ty, ix.nullable), (ArgType::Bool, true), "manual example 2 sends only id");
    }

    #[test]
    fn delete_job_id_is_string() {
        let spec = FUNCTIONS.iter().find(|f| f.name == "DeleteJob").expect("present");
        assert_eq!(spec.arg("id").map(|a| a.ty), Some(ArgType::String));
    }

    #[test]
    fn find_is_exact_and_case_sensitive() {
        assert_eq!(find("CreateUser").map(|f| f.name), Some("CreateUser"));
        assert!(find("createuser").is_none());
        assert!(find("CreateUser ").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn serialization_shape() {
        let spec = FUNCTIONS.iter().find(|f| f.name == "DeleteUser").expect("present");
        let v = serde_json::to_value(spec).expect("serialize");
        assert_eq!(
            v,
            serde_json::json!({
                "name": "DeleteUser",
                "args": [{"name": "userName", "type": "string", "nullable": false}],
                "description": spec.description,
            })
        );
        let text = serde_json::to_string(spec).expect("serialize");
        assert!(text.starts_with(r#"{"name":"DeleteUser","args":[{"name":"userName","type":"string","nullable":false}],"description":"#));
        let tys: Vec<serde_json::Value> = [ArgType::String, ArgType::Number, ArgType::Bool, ArgType::Json]
            .iter()
            .map(|t| serde_json::to_value(t).expect("serialize"))
            .collect();
        assert_eq!(tys, ["string", "number", "bool", "json"]);
    }

    /// The environment itself is not modified here (`unsafe_code` is forbidden
    /// in the workspace, and `set_var` is unsafe); the switch is tested through
    /// the inner functions, and the public ones must agree with the real env.
    #[test]
    fn test_functions_follow_switch() {
        let spec = &TEST_FUNCTIONS[0];
        assert_eq!(spec.name, "ArcaTestSleep");
        assert!(spec.description.starts_with("Arca extension (test builds only): sleeps"));
        assert!(spec.description.contains("reporting progress"));
        assert_eq!(spec.arg("milliseconds").map(|a| (a.ty, a.nullable)), Some((ArgType::Number, false)));
        assert_eq!(spec.arg("steps").map(|a| (a.ty, a.nullable)), Some((ArgType::Number, true)));

        assert!(find_with("ArcaTestSleep", false).is_none());
        assert_eq!(listed_with(false).count(), 77 + ARCA_FUNCTIONS.len());
        assert!(listed_with(false).all(|f| f.name != "ArcaTestSleep"));

        assert_eq!(find_with("ArcaTestSleep", true).map(|f| f.name), Some("ArcaTestSleep"));
        assert_eq!(listed_with(true).count(), 78 + ARCA_FUNCTIONS.len());
        assert!(listed_with(true).any(|f| f.name == "ArcaTestSleep"));
        assert_eq!(find_with("CreateUser", true).map(|f| f.name), Some("CreateUser"));

        let enabled = std::env::var("ARCA_ENABLE_TEST_FUNCTIONS").as_deref() == Ok("1");
        assert_eq!(test_functions_enabled(), enabled);
        assert_eq!(find("ArcaTestSleep").is_some(), enabled);
        assert_eq!(listed().count(), ARCA_FUNCTIONS.len() + if enabled { 78 } else { 77 });
    }
}
