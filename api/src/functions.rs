//! The Administration API functions Arca implements so far; every other catalogue entry answers
//! "not available yet". Results use the manual's camelCase shapes (OPS-02).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::ApiContext;
use crate::args::Args;
use crate::auth::{Caller, hash_password};
use crate::calls::Progress;
use crate::catalogue::FunctionSpec;
use crate::envelope::ApiError;
use arca_raft::RaftNodeError;
use arca_types::command::UserChange;
use arca_types::password::{check_password_policy, describe_violations};
use arca_types::records::User;
use arca_types::values::{Authentication, parse_folder_privileges, parse_privileges, split_list};
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

/// Checks the password policy (ADM-02) and hashes the password.
fn policy_hash(user_name: &str, password: &str) -> Result<String, ApiError> {
    if let Err(violations) = check_password_policy(user_name, password) {
        return Err(MetaError::invalid("password", describe_violations(&violations)).into());
    }
    hash_password(password).map_err(|e| ApiError::new(format!("cannot hash the password: {e}")))
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
        "GetServerInfo" => Ok(json!({ "version": ctx.version, "machineName": ctx.machine_name })),
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
                Some(p) => Some(policy_hash(&user_name, p)?),
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
            let hash = policy_hash(args.str("userName")?, args.str("password")?)?;
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
            let folders =
                ctx.meta.with_state(|s| s.child_folders(&tenant, args.opt_str("folder"), max_levels))?;
            Ok(json!(folders))
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
        other => Err(not_available(other)),
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
