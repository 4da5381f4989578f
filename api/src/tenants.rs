//! Tenant management (CLU-04, CLU-05): the Arca functions `CreateTenant`, `GetTenants`, `GetTenant`,
//! `SetTenantState` and `DeleteTenant`, which only a cluster operator may call (an administrator of the
//! operator tenant `default`, see [`crate::auth::Caller::is_operator`]).

use rand::Rng;
use serde_json::{Value, json};

use crate::ApiContext;
use crate::args::Args;
use crate::auth::{Caller, hash_password, hash_password_seeded, operator_only};
use crate::envelope::ApiError;
use arca_types::password::{check_password_policy, describe_violations};
use arca_types::records::{DEFAULT_TENANT, Tenant};
use arca_types::values::TenantState;
use arca_types::{Command, MetaError};

/// The names of the tenant functions, as the catalogue lists them.
pub const FUNCTIONS: [&str; 5] =
    ["CreateTenant", "DeleteTenant", "GetTenant", "GetTenants", "SetTenantState"];

/// The administrator a new tenant gets when `adminName` is not given.
pub const DEFAULT_TENANT_ADMIN: &str = "admin";

/// Runs one tenant function for `caller`, refusing anyone but a cluster operator first.
pub async fn run(
    ctx: &ApiContext,
    caller: &Caller,
    name: &str,
    args: &Args,
    request_id: Option<String>,
) -> Result<Value, ApiError> {
    operator_only(caller).map_err(|d| ApiError::new(d.to_string()))?;
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
        "CreateTenant" => {
            let tenant = args.str("name")?.to_string();
            arca_types::names::validate_tenant_name("name", &tenant)?;
            let admin = args.opt_str("adminName").unwrap_or(DEFAULT_TENANT_ADMIN).to_string();
            let (password, generated) = match args.opt_str("adminPassword") {
                Some(p) => (p.to_string(), false),
                None => (generated_password(&admin), true),
            };
            if let Err(violations) = check_password_policy(&admin, &password) {
                return Err(MetaError::invalid("adminPassword", describe_violations(&violations)).into());
            }
            let hash = match request_id.as_deref() {
                Some(seed) => hash_password_seeded(&password, seed),
                None => hash_password(&password),
            }
            .map_err(|e| ApiError::new(e.to_string()))?;
            write(Command::CreateTenantWithAdmin {
                name: tenant.clone(),
                admin_name: admin.clone(),
                password_hash: hash,
            })
            .await?;
            tracing::info!(tenant = %tenant, operator = %crate::auth::loggable_name(&caller.user.name), "tenant created");
            Ok(json!({
                "name": tenant,
                "state": TenantState::Enabled.as_str(),
                "adminName": admin,
                "login": format!("{tenant}/{admin}"),
                // Shown once, only when Arca chose it; never stored in clear.
                "adminPassword": generated.then_some(password),
            }))
        }
        "GetTenants" => {
            ctx.meta.linearizable().await?;
            Ok(Value::Array(ctx.meta.with_state(|s| s.tenants.values().map(summary).collect())))
        }
        "GetTenant" => {
            ctx.meta.linearizable().await?;
            let wanted = args.str("name")?;
            ctx.meta
                .with_state(|s| {
                    let t = s.tenant(wanted)?;
                    let mut shown = summary(t);
                    let mut admins: Vec<&str> =
                        t.users.values().filter(|u| u.is_admin()).map(|u| u.name.as_str()).collect();
                    admins.sort_by_key(|n| n.to_lowercase());
                    shown["administrators"] = json!(admins);
                    shown["stores"] = Value::Array(
                        t.shards
                            .values()
                            .map(|sh| {
                                json!({
                                    "id": sh.id,
                                    "name": sh.name,
                                    "requestedState": sh.state.as_str(),
                                    "messageCount": sh.message_count,
                                    "size": sh.byte_count,
                                })
                            })
                            .collect(),
                    );
                    Ok::<_, MetaError>(shown)
                })
                .map_err(ApiError::from)
        }
        "SetTenantState" => {
            let tenant = args.str("name")?.to_string();
            let state: TenantState =
                args.str("state")?.parse().map_err(|e: String| MetaError::invalid("state", e))?;
            write(Command::SetTenantState { name: tenant.clone(), state }).await?;
            tracing::info!(tenant = %tenant, state = %state, operator = %crate::auth::loggable_name(&caller.user.name), "tenant state changed");
            Ok(Value::Null)
        }
        "DeleteTenant" => {
            let tenant = args.str("name")?.to_string();
            let force = args.opt_bool("force").unwrap_or(false);
            write(Command::DeleteTenant { name: tenant.clone(), force }).await?;
            tracing::info!(tenant = %tenant, force, operator = %crate::auth::loggable_name(&caller.user.name), "tenant deleted");
            Ok(Value::Null)
        }
        other => Err(crate::functions::not_available(other)),
    }
}

/// What `GetTenants` shows of a tenant: its state and counts from the catalogue.
fn summary(t: &Tenant) -> Value {
    json!({
        "name": t.name,
        "state": t.state.as_str(),
        "operatorTenant": t.name == DEFAULT_TENANT,
        "users": t.users.len(),
        "archives": t.archives.len(),
        "stores": t.shards.len(),
        "messageCount": t.shards.values().map(|s| s.message_count).sum::<u64>(),
        "size": t.shards.values().map(|s| s.byte_count).sum::<u64>(),
    })
}

/// A random password that meets the policy (ADM-02) for `user`: 20 characters of letters, digits and
/// `-`, drawn again in the unlikely case it breaks a rule.
fn generated_password(user: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-";
    let mut rng = rand::thread_rng();
    loop {
        let candidate: String = (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
        if check_password_policy(user, &candidate).is_ok() {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_meet_the_policy_and_differ() {
        let a = generated_password("admin");
        let b = generated_password("admin");
        assert!(check_password_policy("admin", &a).is_ok(), "{a}");
        assert_eq!(a.chars().count(), 20);
        assert_ne!(a, b);
    }
}
