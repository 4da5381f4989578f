//! `arca tenant …` (CLU-04, CLU-05): tenants through the Administration API's tenant functions, which
//! only a cluster operator (an administrator of tenant `default`) may call. Every command takes `--json`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use crate::client::{Client, ClientOptions};
use crate::store_cmd::invoke_and_wait;

/// Subcommands of `arca tenant`.
#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    /// Create a tenant with its first administrator; its users log in as `<tenant>/<user>`.
    Create {
        /// Tenant name: a-z, 0-9 and '-', at most 63 characters.
        name: String,
        /// The administrator's user name.
        #[arg(long, default_value = "admin")]
        admin: String,
        /// The administrator's password (password policy applies); omitted: generated and printed once.
        #[arg(long, env = "ARCA_TENANT_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
    /// List the tenants with state, users, stores and messages.
    List,
    /// Show one tenant: counts, administrators and stores.
    Show {
        /// Tenant name.
        name: String,
    },
    /// Disable a tenant: its users cannot log in or use any route (HTTP 403) until it is enabled.
    Disable {
        /// Tenant name.
        name: String,
    },
    /// Enable a disabled tenant.
    Enable {
        /// Tenant name.
        name: String,
    },
    /// Delete a tenant without archive stores (deleting stores is not available yet).
    Delete {
        /// Tenant name.
        name: String,
        /// Delete its users and archives with it (else it must have none).
        #[arg(long)]
        force: bool,
    },
}

fn print_tenants(tenants: &[Value]) {
    println!(
        "{:<24} {:<9} {:>6} {:>9} {:>7} {:>10}",
        "NAME", "STATE", "USERS", "ARCHIVES", "STORES", "MESSAGES"
    );
    for t in tenants {
        let name = t["name"].as_str().unwrap_or("?");
        let marked =
            if t["operatorTenant"] == true { format!("{name} (operator)") } else { name.to_string() };
        println!(
            "{:<24} {:<9} {:>6} {:>9} {:>7} {:>10}",
            marked,
            t["state"].as_str().unwrap_or("?"),
            t["users"].as_u64().unwrap_or(0),
            t["archives"].as_u64().unwrap_or(0),
            t["stores"].as_array().map_or_else(|| t["stores"].as_u64().unwrap_or(0), |s| s.len() as u64),
            t["messageCount"].as_u64().unwrap_or(0),
        );
    }
}

/// Prints `value` as JSON (`--json`) or runs `human` for the terminal.
fn output(opts: &ClientOptions, value: &Value, human: impl FnOnce()) -> Result<()> {
    if opts.json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human();
    }
    Ok(())
}

/// Runs one `arca tenant` subcommand.
pub async fn run(opts: &ClientOptions, cmd: TenantCmd) -> Result<()> {
    let client = Client::new(opts)?;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !opts.json;
    let call = |function: &'static str, args: Vec<(&'static str, String)>| {
        let client = &client;
        async move { invoke_and_wait(client, function, &args, interactive).await }
    };
    match cmd {
        TenantCmd::Create { name, admin, admin_password } => {
            let mut args = vec![("name", name), ("adminName", admin)];
            if let Some(p) = admin_password {
                args.push(("adminPassword", p));
            }
            let created = call("CreateTenant", args).await?;
            output(opts, &created, || {
                println!(
                    "created tenant '{}'; its administrator logs in as '{}'",
                    created["name"].as_str().unwrap_or("?"),
                    created["login"].as_str().unwrap_or("?")
                );
                if let Some(p) = created["adminPassword"].as_str() {
                    println!("generated password (shown once, note it now): {p}");
                }
            })
        }
        TenantCmd::List => {
            let list = call("GetTenants", vec![]).await?;
            output(opts, &list, || print_tenants(list.as_array().map(Vec::as_slice).unwrap_or_default()))
        }
        TenantCmd::Show { name } => {
            let t = call("GetTenant", vec![("name", name)]).await?;
            output(opts, &t, || {
                print_tenants(std::slice::from_ref(&t));
                let admins: Vec<&str> =
                    t["administrators"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                println!("administrators: {}", admins.join(", "));
                for s in t["stores"].as_array().into_iter().flatten() {
                    println!(
                        "store {} '{}': {}, {} messages",
                        s["id"].as_u64().unwrap_or(0),
                        s["name"].as_str().unwrap_or("?"),
                        s["requestedState"].as_str().unwrap_or("?"),
                        s["messageCount"].as_u64().unwrap_or(0)
                    );
                }
            })
        }
        TenantCmd::Disable { name } => {
            call("SetTenantState", vec![("name", name.clone()), ("state", "disabled".into())]).await?;
            set_state(opts, &name, "disabled")
        }
        TenantCmd::Enable { name } => {
            call("SetTenantState", vec![("name", name.clone()), ("state", "enabled".into())]).await?;
            set_state(opts, &name, "enabled")
        }
        TenantCmd::Delete { name, force } => {
            let mut args = vec![("name", name.clone())];
            if force {
                args.push(("force", "true".into()));
            }
            call("DeleteTenant", args).await?;
            let done = serde_json::json!({ "name": name, "deleted": true });
            output(opts, &done, || println!("deleted tenant '{name}'"))
        }
    }
}

/// Prints the outcome of `SetTenantState`.
fn set_state(opts: &ClientOptions, name: &str, state: &str) -> Result<()> {
    let done = serde_json::json!({ "name": name, "state": state });
    output(opts, &done, || println!("tenant '{name}' is {state}"))
}
