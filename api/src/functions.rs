//! The Administration API functions Arca implements so far; every other catalogue entry answers
//! "not available yet". Results use the manual's camelCase shapes (OPS-02).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::ApiContext;
use crate::args::Args;
use crate::auth::{Caller, hash_password, hash_password_seeded};
use crate::calls::Progress;
use crate::catalogue::FunctionSpec;
use crate::envelope::ApiError;
use arca_raft::RaftNodeError;
use arca_types::command::UserChange;
use arca_types::password::{check_password_policy, describe_violations};
use arca_types::records::User;
use arca_types::values::{
    Authentication, FolderPrivilege, parse_folder_privileges, parse_privileges, split_list,
};
use arca_types::{Command, MetaError};

impl From<RaftNodeError> for ApiError {
    fn from(e: RaftNodeError) -> ApiError {
        match e {
            RaftNodeError::Meta(m) => m.into(),
            other => ApiError {
                message: "the metadata cluster could not complete the call".into(),
                details: other.to_string(),
            },
        }
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> ApiError {
        ApiError::new(e.to_string())
    }
}

impl From<crate::args::ArgError> for ApiError {
    fn from(e: crate::args::ArgError) -> ApiError {
        ApiError::new(e.to_string())
    }
}

fn parse_authentication(field: &str, text: Option<&str>) -> Result<Authentication, ApiError> {
    match text {
        None => Ok(Authentication::Integrated),
        Some(t) => t.parse().map_err(|e: String| MetaError::invalid(field, e).into()),
    }
}

/// Checks the password policy (ADM-02) and hashes the password; under a client's request id the salt
/// derives from it, so that a retry sends the same command (and a reused key with another password is
/// recognised as a conflict).
fn policy_hash(user_name: &str, password: &str, request_id: Option<&str>) -> Result<String, ApiError> {
    if let Err(violations) = check_password_policy(user_name, password) {
        return Err(MetaError::invalid("password", describe_violations(&violations)).into());
    }
    match request_id {
        Some(seed) => hash_password_seeded(password, seed),
        None => hash_password(password),
    }
    .map_err(|e| ApiError::new(e.to_string()))
}

fn user_info(ctx: &ApiContext, tenant: &str, user: &User) -> Value {
    let grants = ctx.meta.with_state(|s| s.folder_grants_of(tenant, user.id));
    json!({
        "userName": user.name,
        "fullName": user.full_name,
        "distinguishedName": user.distinguished_name,
        "authentication": user.authentication.as_str(),
        "emailAddresses": user.email_addresses,
        "pop3UserNames": user.pop3_user_names,
        "privileges": if user.privileges.is_empty() { vec!["none"] } else { user.privileges.iter().map(|p| p.as_str()).collect() },
        "privilegesOnFolders": grants.iter().map(|(folder, privs)| json!({
            "folder": folder,
            "privileges": privs.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Runs one implemented function for `caller`. A client's `Idempotency-Key` arrives as `request_id`, so
/// that a retried call applies its write once.
pub async fn run(
    ctx: Arc<ApiContext>,
    caller: Caller,
    spec: &'static FunctionSpec,
    args: Args,
    request_id: Option<String>,
    progress: Progress,
) -> Result<Value, ApiError> {
    let tenant = caller.tenant.clone();
    let write = |command: Command| {
        let ctx = ctx.clone();
        let request_id = request_id.clone();
        async move {
            let written = match request_id {
                Some(id) => ctx.meta.write_with_id(id, command).await,
                None => ctx.meta.write(command).await,
            };
            written.map(|_| Value::Null).map_err(ApiError::from)
        }
    };
    let update = |change: UserChange| -> Result<Command, ApiError> {
        Ok(Command::UpdateUser {
            tenant: tenant.clone(),
            user_name: args.str("userName")?.to_string(),
            change,
        })
    };
    match spec.name {
        "GetServerInfo" => Ok(crate::server_info::server_info(&ctx, &tenant).await),
        "GetUsers" => {
            ctx.meta.linearizable().await?;
            let users = ctx.meta.with_state(|s| {
                s.tenant(&tenant).map(|t| {
                    let mut list: Vec<&User> = t.users.values().collect();
                    list.sort_by_key(|u| u.name.to_lowercase());
                    list.iter()
                        .map(|u| json!({"userName": u.name, "fullName": u.full_name, "distinguishedName": u.distinguished_name}))
                        .collect::<Vec<_>>()
                })
            })?;
            Ok(Value::Array(users))
        }
        "GetUserInfo" => {
            ctx.meta.linearizable().await?;
            let name = args.str("userName")?;
            let user = ctx.meta.with_state(|s| s.user(&tenant, name).cloned())?;
            Ok(user_info(&ctx, &tenant, &user))
        }
        "CreateUser" => {
            let user_name = args.str("userName")?.to_string();
            let privileges = parse_privileges("privileges", args.str("privileges")?)?;
            let authentication = parse_authentication("authentication", args.opt_str("authentication"))?;
            let password_hash = match args.opt_str("password") {
                Some(p) => Some(policy_hash(&user_name, p, request_id.as_deref())?),
                None => None,
            };
            write(Command::CreateUser {
                tenant: tenant.clone(),
                user_name,
                full_name: args.opt_str("fullName").map(str::to_string),
                authentication,
                password_hash,
                privileges,
                distinguished_name: args.opt_str("distinguishedName").map(str::to_string),
                email_addresses: Vec::new(),
            })
            .await
        }
        "DeleteUser" => {
            write(Command::DeleteUser { tenant: tenant.clone(), user_name: args.str("userName")?.into() })
                .await
        }
        "RenameUser" => {
            write(Command::RenameUser {
                tenant: tenant.clone(),
                old_user_name: args.str("oldUserName")?.into(),
                new_user_name: args.str("newUserName")?.into(),
            })
            .await
        }
        "SetUserPassword" => {
            let hash = policy_hash(args.str("userName")?, args.str("password")?, request_id.as_deref())?;
            write(update(UserChange::PasswordHash(hash))?).await
        }
        "SetUserPrivileges" => {
            write(update(UserChange::Privileges(parse_privileges("privileges", args.str("privileges")?)?))?)
                .await
        }
        "SetUserEmailAddresses" => {
            let list = args.opt_str("emailAddresses").map(split_list).unwrap_or_default();
            write(update(UserChange::EmailAddresses(list))?).await
        }
        "SetUserPop3UserNames" => {
            let list = args.opt_str("pop3UserNames").map(split_list).unwrap_or_default();
            write(update(UserChange::Pop3UserNames(list))?).await
        }
        "SetUserFullName" => {
            write(update(UserChange::FullName(args.opt_str("fullName").map(str::to_string)))?).await
        }
        "SetUserDistinguishedName" => {
            write(update(UserChange::DistinguishedName(
                args.opt_str("distinguishedName").map(str::to_string),
            ))?)
            .await
        }
        "SetUserAuthentication" => {
            let a = parse_authentication("authentication", Some(args.str("authentication")?))?;
            write(update(UserChange::Authentication(a))?).await
        }
        "SetUserPrivilegesOnFolder" => {
            write(Command::SetFolderPrivileges {
                tenant: tenant.clone(),
                user_name: args.str("userName")?.into(),
                folder: args.str("folder")?.into(),
                privileges: parse_folder_privileges("privileges", args.str("privileges")?)?,
            })
            .await
        }
        "ClearUserPrivilegesOnFolders" => {
            write(Command::ClearFolderPrivileges {
                tenant: tenant.clone(),
                user_name: args.str("userName")?.into(),
            })
            .await
        }
        "GetChildFolders" => {
            ctx.meta.linearizable().await?;
            let max_levels = match args.opt_i64("maxLevels") {
                Some(n) if n < 0 => {
                    return Err(MetaError::invalid("maxLevels", "must not be negative").into());
                }
                Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
                None => None,
            };
            let start = args.opt_str("folder").filter(|f| !f.is_empty());
            let folders = ctx.meta.with_state(|s| s.child_folders(&tenant, start, max_levels))?;
            // CMP-01: of archives the caller may not read, only the names (first level) are shown; their
            // folders are left out (an empty list below such an archive).
            let readable: std::collections::HashSet<String> = ctx
                .gate
                .archives(&ctx.meta, &caller)
                .into_iter()
                .filter(|a| a.privileges.contains(&FolderPrivilege::Read))
                .map(|a| a.name.to_lowercase())
                .collect();
            let shown = |path: &str| match path.split_once('/') {
                None => true,
                Some((top, _)) => readable.contains(&top.to_lowercase()),
            };
            Ok(json!(folders.into_iter().filter(|p| shown(p.as_str())).collect::<Vec<_>>()))
        }
        "GetComplianceConfiguration" => {
            ctx.meta.linearizable().await?;
            let c = ctx.meta.with_state(|s| s.tenant(&tenant).map(|t| t.compliance))?;
            Ok(json!({ "adminEmailPreviewEnabled": c.admin_email_preview_enabled }))
        }
        "SetComplianceConfiguration" => {
            let config = args
                .opt_json("config")
                .ok_or_else(|| ApiError::new("missing mandatory argument 'config'"))?;
            let Some(keys) = config.as_object() else {
                return Err(MetaError::invalid("config", "must be a JSON object of settings").into());
            };
            ctx.meta.linearizable().await?;
            let mut next = ctx.meta.with_state(|s| s.tenant(&tenant).map(|t| t.compliance))?;
            for (key, value) in keys {
                match (key.as_str(), value) {
                    ("adminEmailPreviewEnabled", Value::Bool(b)) => next.admin_email_preview_enabled = *b,
                    ("adminEmailPreviewEnabled", other) => {
                        return Err(MetaError::invalid(
                            "config",
                            format!("adminEmailPreviewEnabled must be true or false, not {other}"),
                        )
                        .into());
                    }
                    (other, _) => {
                        return Err(MetaError::invalid("config", format!("setting '{other}' is not supported by this version of Arca (supported: adminEmailPreviewEnabled)")).into());
                    }
                }
            }
            let current = ctx.meta.with_state(|s| s.tenant(&tenant).map(|t| t.compliance))?;
            if next.admin_email_preview_enabled != current.admin_email_preview_enabled
                && let Some(password) = args.opt_str("password")
            {
                // CMP-01: changing archive access needs the administrator's own password again.
                ctx.gate
                    .confirm_password(&caller, password)
                    .await
                    .map_err(|d| ApiError::new(d.to_string()))?;
            }
            let reason = args.opt_str("reason").unwrap_or("");
            tracing::info!(
                user = %crate::auth::loggable_name(&caller.user.name),
                adminEmailPreviewEnabled = next.admin_email_preview_enabled,
                reason = %crate::auth::loggable_name(reason),
                "compliance settings changed"
            );
            write(Command::SetCompliance { tenant: tenant.clone(), compliance: next }).await
        }
        "MoveFolder" => {
            write(Command::MoveFolder {
                tenant: tenant.clone(),
                from: args.str("fromFolder")?.into(),
                to: args.str("toFolder")?.into(),
            })
            .await
        }
        "ArcaTestSleep" => {
            let total = args.opt_i64("milliseconds").unwrap_or(0).clamp(0, 600_000) as u64;
            let steps = args.opt_i64("steps").unwrap_or(1).clamp(1, 1000) as u64;
            for step in 1..=steps {
                tokio::time::sleep(Duration::from_millis(total / steps)).await;
                progress.log(format!("  step {step} of {steps} done..."));
                progress.percent(((step * 100) / steps) as u8, Some(format!("step {step} of {steps}")));
            }
            Ok(json!({ "steps": steps }))
        }
        name if crate::tenants::FUNCTIONS.contains(&name) => {
            crate::tenants::run(&ctx, &caller, name, &args, request_id).await
        }
        op if crate::operator::NAMES.contains(&op) => {
            crate::operator::run(&ctx, &caller, op, &args, &progress).await
        }
        other => stores::run(&ctx, &caller, other, &args, request_id, &progress).await,
    }
}

/// The archive-store (shard) functions of OPS-02.
mod stores {
    use super::*;
    use crate::archive::ArchiveService;
    use arca_types::values::ShardState;

    fn service(ctx: &ApiContext) -> Result<&ArchiveService, ApiError> {
        ctx.archive.as_deref().ok_or_else(|| ApiError::new("archiving is not configured on this node"))
    }

    fn archive_error(e: crate::archive::ArchiveError) -> ApiError {
        ApiError { message: "the archive store operation failed".into(), details: e.to_string() }
    }

    fn store_id(args: &Args) -> Result<u64, ApiError> {
        let id = args.opt_i64("id").ok_or_else(|| ApiError::new("missing mandatory argument 'id'"))?;
        u64::try_from(id).map_err(|_| MetaError::invalid("id", "must not be negative").into())
    }

    fn parse_state(text: Option<&str>, default: ShardState) -> Result<ShardState, ApiError> {
        match text {
            None => Ok(default),
            Some(t) => t.parse().map_err(|e: String| MetaError::invalid("requestedState", e).into()),
        }
    }

    /// The arguments of `CreateStore` that choose where or how a store lives, which Arca cannot honour:
    /// every store is a shard at `<storage>/tenants/<tenant>/shards/<id>` (STO-02), and the SQL server
    /// arguments have no meaning.
    const UNSUPPORTED_STORE_ARGUMENTS: &[(&str, &str)] = &[
        ("databaseName", "Arca stores have no SQL database"),
        (
            "databasePath",
            "every store lives at <storage url>/tenants/<tenant>/shards/<id> (GetStores shows it)",
        ),
        ("contentPath", "every store keeps its packs at <storage url>/tenants/<tenant>/shards/<id>/packs"),
        ("indexPath", "every store keeps its index at <storage url>/tenants/<tenant>/shards/<id>/index"),
        ("serverName", "Arca stores have no SQL server"),
        ("userName", "Arca stores have no SQL server login"),
        ("password", "Arca stores have no SQL server login"),
    ];

    /// Refuses the first argument of [`UNSUPPORTED_STORE_ARGUMENTS`] that was given, naming it.
    fn refuse_unsupported(args: &Args) -> Result<(), ApiError> {
        for (name, why) in UNSUPPORTED_STORE_ARGUMENTS {
            if args.opt_str(name).is_some() {
                return Err(MetaError::invalid(
                    name,
                    format!("not supported by Arca: {why}; nothing was created"),
                )
                .into());
            }
        }
        Ok(())
    }

    /// Verifies one store, logging progress; damage is reported in the result, not as a failure.
    async fn verify(
        ctx: &ApiContext,
        tenant: &str,
        id: u64,
        include_indexes: bool,
        progress: &Progress,
    ) -> Result<Value, ApiError> {
        let service = service(ctx)?;
        progress.log(format!("Verifying store #{id}..."));
        let (report, index) = service
            .verify_store(tenant, id, include_indexes, |line| progress.log(line))
            .await
            .map_err(archive_error)?;
        let damaged: Vec<Value> = report
            .damaged
            .iter()
            .map(|d| {
                json!({
                    "pack": d.pack,
                    "reason": d.reason,
                    "messages": d.messages.iter().map(|n| format!("{id}:{n}")).collect::<Vec<_>>(),
                })
            })
            .collect();
        let affected: usize = report.damaged.iter().map(|d| d.messages.len()).sum();
        progress.log(format!(
            "store #{id}: {} packs, {} messages, {affected} affected by damage",
            report.packs, report.messages
        ));
        let index_intact = index.as_ref().is_none_or(|c| c.is_intact());
        let index = index.map(|c| {
            let ids = |list: &[u64]| list.iter().map(|n| format!("{id}:{n}")).collect::<Vec<_>>();
            json!({
                "intact": c.is_intact(),
                "documents": c.documents,
                "notIndexed": ids(&c.missing),
                "indexedMoreThanOnce": ids(&c.duplicated),
                "unknown": ids(&c.unknown),
                "reason": c.unusable,
            })
        });
        Ok(json!({
            "id": id,
            "packs": report.packs,
            "messages": report.messages,
            "intact": report.damaged.is_empty() && index_intact,
            "damaged": damaged,
            "index": index,
        }))
    }

    pub(super) async fn run(
        ctx: &ApiContext,
        caller: &Caller,
        name: &str,
        args: &Args,
        request_id: Option<String>,
        progress: &Progress,
    ) -> Result<Value, ApiError> {
        let tenant = caller.tenant.as_str();
        let write = |command: Command| {
            let request_id = request_id.clone();
            async move {
                match request_id {
                    Some(id) => ctx.meta.write_with_id(id, command).await,
                    None => ctx.meta.write(command).await,
                }
            }
        };
        match name {
            "GetStores" => {
                let include_size = args.opt_bool("includeSize").unwrap_or(true);
                let location = service(ctx)?.objects().location().to_string();
                let stores = service(ctx)?.stores(tenant).await.map_err(archive_error)?;
                Ok(Value::Array(
                    stores
                        .iter()
                        .map(|s| {
                            json!({
                                "id": s.id,
                                "name": s.name,
                                "type": "FileSystemInternal",
                                "requestedState": s.state.as_str(),
                                "databaseName": null,
                                "databasePath": format!("{location}/tenants/{tenant}/shards/{}", s.id),
                                "contentPath": format!("{location}/tenants/{tenant}/shards/{}/packs", s.id),
                                "indexPath": format!("{location}/tenants/{tenant}/shards/{}/index", s.id),
                                "messageCount": s.message_count,
                                "size": if include_size { Some(s.byte_count) } else { None },
                                "servingNode": s.owner_node,
                                "epoch": s.epoch,
                            })
                        })
                        .collect(),
                ))
            }
            "CreateStore" => {
                if let Some(t) = args.opt_str("type").filter(|t| *t != "FileSystemInternal") {
                    return Err(MetaError::invalid("type", format!("store type not supported: '{t}' (Arca stores are FileSystemInternal shards on the object store)")).into());
                }
                refuse_unsupported(args)?;
                let state = parse_state(args.opt_str("requestedState"), ShardState::Normal)?;
                let id = service(ctx)?
                    .create_store_once(tenant, args.str("name")?, state, request_id.clone())
                    .await
                    .map_err(archive_error)?;
                Ok(json!({ "id": id }))
            }
            "SetStoreRequestedState" => {
                let state = parse_state(args.opt_str("requestedState"), ShardState::Normal)?;
                write(Command::SetShardState { tenant: tenant.into(), id: store_id(args)?, state }).await?;
                Ok(Value::Null)
            }
            "RenameStore" => {
                let cmd = Command::RenameShard {
                    tenant: tenant.into(),
                    id: store_id(args)?,
                    name: args.str("name")?.into(),
                };
                write(cmd).await?;
                Ok(Value::Null)
            }
            "VerifyStore" => {
                let include_indexes = args.opt_bool("includeIndexes").unwrap_or(false);
                verify(ctx, tenant, store_id(args)?, include_indexes, progress).await
            }
            "VerifyStores" => {
                let stores = service(ctx)?.stores(tenant).await.map_err(archive_error)?;
                let mut results = Vec::new();
                for s in stores.iter().filter(|s| s.manifest.is_some() && s.state != ShardState::Disabled) {
                    let include_indexes = args.opt_bool("includeIndexes").unwrap_or(false);
                    results.push(verify(ctx, tenant, s.id, include_indexes, progress).await?);
                }
                Ok(Value::Array(results))
            }
            "RebuildStoreIndex" => {
                let id = store_id(args)?;
                progress.log(format!("Rebuilding the index of store #{id} from its packs (Arca indexes whole stores; folder '{}' is covered)...", args.opt_str("folder").unwrap_or("")));
                let n = service(ctx)?.rebuild_index(tenant, id).await.map_err(archive_error)?;
                progress.log(format!("{n} messages indexed"));
                Ok(json!({ "id": id, "messages": n }))
            }
            "SelectAllStoreIndexesForRebuild" => {
                let stores = service(ctx)?.stores(tenant).await.map_err(archive_error)?;
                let mut selected =
                    service(ctx)?.selected_for_rebuild.lock().unwrap_or_else(|p| p.into_inner());
                selected.extend(stores.iter().filter(|s| s.manifest.is_some()).map(|s| s.id));
                Ok(Value::Null)
            }
            "RebuildSelectedStoreIndexes" => {
                // The selection is the node's; take only this tenant's stores out of it (CLU-04).
                let mine: std::collections::BTreeSet<u64> =
                    service(ctx)?.stores(tenant).await.map_err(archive_error)?.iter().map(|s| s.id).collect();
                let selected: Vec<u64> = {
                    let mut set =
                        service(ctx)?.selected_for_rebuild.lock().unwrap_or_else(|p| p.into_inner());
                    let taken: Vec<u64> = set.intersection(&mine).copied().collect();
                    set.retain(|id| !mine.contains(id));
                    taken
                };
                let mut done = Vec::new();
                for id in selected {
                    progress.log(format!("Rebuilding the index of store #{id}..."));
                    let n = service(ctx)?.rebuild_index(tenant, id).await.map_err(archive_error)?;
                    done.push(json!({ "id": id, "messages": n }));
                }
                Ok(Value::Array(done))
            }
            "GetStoreIndexes" => {
                let stores = service(ctx)?.stores(tenant).await.map_err(archive_error)?;
                let wanted = args.opt_i64("id").map(|i| i as u64);
                let mut out = Vec::new();
                for s in stores
                    .iter()
                    .filter(|s| wanted.is_none_or(|w| w == s.id))
                    .filter(|s| s.manifest.is_some())
                {
                    let (docs, files) =
                        service(ctx)?.index_info(tenant, s.id).await.map_err(archive_error)?;
                    out.push(json!({
                        "storeId": s.id,
                        "documents": docs,
                        "files": files.len(),
                        "size": files.iter().map(|(_, n)| n).sum::<u64>(),
                        "selectedForRebuild": service(ctx)?.selected_for_rebuild.lock().unwrap_or_else(|p| p.into_inner()).contains(&s.id),
                    }));
                }
                Ok(Value::Array(out))
            }
            "GetFolderStatistics" => {
                let entries = service(ctx)?.entries(tenant).await.map_err(archive_error)?;
                let archives: Vec<(u64, String)> = ctx.meta.with_state(|s| {
                    s.tenant(tenant).map(|t| t.archives.values().map(|a| (a.id, a.name.clone())).collect())
                })?;
                let total: u64 = entries.iter().map(|(_, e)| e.size).sum();
                let rows: Vec<Value> = archives
                    .iter()
                    .map(|(id, name)| {
                        let (count, bytes) = entries
                            .iter()
                            .filter(|(_, e)| e.archive == *id)
                            .fold((0u64, 0u64), |(c, b), (_, e)| (c + 1, b + e.size));
                        json!({
                            "folder": name,
                            "count": count,
                            "size": bytes,
                            "sizeMB": (bytes as f64) / 1_048_576.0,
                            "percentOfTotalSize": if total == 0 { 0.0 } else { bytes as f64 * 100.0 / total as f64 },
                        })
                    })
                    .collect();
                Ok(Value::Array(rows))
            }
            "GetMessages" => {
                let folder = args.opt_str("folder").unwrap_or("");
                let (archive, sub) = folder.split_once('/').unwrap_or((folder, ""));
                // Entries carry folder keys: the folder's key selects, the current path is shown.
                let (archive_id, key, paths) = ctx.meta.with_state(|s| {
                    s.archive_by_name(tenant, archive).map(|a| {
                        let paths: std::collections::HashMap<String, String> = a
                            .paths_by_key()
                            .into_iter()
                            .map(|(k, p)| (k.to_string(), p.to_string()))
                            .collect();
                        (a.id, a.folder_key(sub).map(str::to_string), paths)
                    })
                })?;
                if !ctx.gate.may_read(&ctx.meta, caller, archive_id) {
                    return Err(compliance_refusal(archive));
                }
                let key = key.ok_or_else(|| MetaError::not_found("folder", folder))?;
                let entries = service(ctx)?.entries(tenant).await.map_err(archive_error)?;
                Ok(Value::Array(
                    entries
                        .iter()
                        .filter(|(_, e)| e.archive == archive_id && (sub.is_empty() || e.folder == key))
                        .map(|(shard, e)| json!({"id": format!("{shard}:{}", e.number), "folder": paths.get(&e.folder).unwrap_or(&e.folder), "size": e.size, "archivedAt": e.archived_at}))
                        .collect(),
                ))
            }
            other => Err(not_available(other)),
        }
    }
}

/// The refusal of an administrator function that would show the content of an archive the caller
/// may not read (CMP-01: archive access blocked).
fn compliance_refusal(archive: &str) -> ApiError {
    ApiError {
        message: format!(
            "CMP-01: archive access is blocked, so the folders and messages of archive '{archive}' are not shown"
        ),
        details: "administrators see archive names and statistics only while archive access is blocked \
                  (SetComplianceConfiguration adminEmailPreviewEnabled=true unblocks it)"
            .into(),
    }
}

/// The answer of a catalogue function Arca does not implement yet.
pub fn not_available(name: &str) -> ApiError {
    ApiError {
        message: format!("{name} is not available yet in this version of Arca"),
        details: format!(
            "function '{name}' is listed by get-metadata but not implemented yet; nothing was changed"
        ),
    }
}
