//! `arca shard …` (alias `arca store …`, CLU-05): archive stores through the Administration API's store
//! functions, waiting for long-running calls by polling `get-status` with their token.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::Value;

use crate::client::{Client, ClientOptions};
use crate::status_cmd;

/// Subcommands of `arca shard` / `arca store`.
#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// List the archive stores with state, message count, size, owner node, epoch and how long ago
    /// the leader last heard from the owner.
    List,
    /// Check every record of a store (all stores without an id); exits 1 when any is damaged and names
    /// the affected messages.
    Verify {
        /// Store id (see `arca store list`); omitted: every store.
        id: Option<u64>,
    },
    /// Rebuild a store's search index from its packs.
    RebuildIndex {
        /// Store id.
        id: u64,
        /// The folder argument of `RebuildStoreIndex` (Arca rebuilds the whole store's index).
        #[arg(long, default_value = "")]
        folder: String,
    },
    /// Move a store to another node: the node restores its index from object storage while the old
    /// node serves it, then takes it over (nothing is copied through the old node).
    Move {
        /// Store id.
        id: u64,
        /// Node id (see `arca cluster status`).
        node: u64,
    },
    /// Even out stores and current stores over the non-draining nodes with the fewest moves.
    Rebalance {
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// How long a long-running store call is waited for before the command gives up (it keeps running).
const CALL_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Invokes `function` and, while it answers `running`, polls `get-status` until it finishes; returns
/// the final `result`. Progress text goes to stderr on a terminal.
pub async fn invoke_and_wait(
    client: &Client,
    function: &str,
    args: &[(&str, String)],
    interactive: bool,
) -> Result<Value> {
    let mut envelope = client.call(&format!("/api/invoke/{function}"), args).await?;
    let started = Instant::now();
    while envelope["statusCode"] == "running" {
        if started.elapsed() > CALL_TIMEOUT {
            bail!(
                "{function} is still running after {} s; it goes on in the cluster",
                CALL_TIMEOUT.as_secs()
            );
        }
        if interactive && let Some(text) = envelope["statusText"].as_str() {
            eprint!("\r{function}: {text}   ");
        }
        let token = envelope["token"].as_str().context("a running call without a token")?.to_string();
        let version = envelope["statusVersion"].as_u64().unwrap_or(0);
        envelope = client
            .call(
                "/api/get-status",
                &[
                    ("token", token),
                    ("lastKnownStatusVersion", version.to_string()),
                    ("millisecondsTimeout", "5000".to_string()),
                ],
            )
            .await
            .with_context(|| format!("waiting for {function}"))?;
    }
    if interactive && started.elapsed() > Duration::from_secs(1) {
        eprintln!();
    }
    match envelope["statusCode"].as_str() {
        Some("succeeded") => Ok(envelope["result"].clone()),
        other => bail!("{function} ended {}", other.unwrap_or("without a status")),
    }
}

fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}

fn print_stores(stores: &[Value]) {
    println!(
        "{:>6} {:<24} {:<10} {:>10} {:>11} {:>14} {:>6} {:>11} {:>10} {:<12}",
        "ID",
        "NAME",
        "STATE",
        "MESSAGES",
        "SIZE",
        "OWNER",
        "EPOCH",
        "OWNER SEEN",
        "LEASE AGE",
        "OWNER HEALTH"
    );
    for s in stores {
        println!(
            "{:>6} {:<24} {:<10} {:>10} {:>11} {:>14} {:>6} {:>11} {:>10} {:<12}",
            s["id"].as_u64().unwrap_or(0),
            s["name"].as_str().unwrap_or("?"),
            s["requestedState"].as_str().unwrap_or("?"),
            s["messageCount"].as_u64().unwrap_or(0),
            s["size"].as_u64().map_or("-".to_string(), human_size),
            s["servingNode"].as_u64().map_or("-".to_string(), |n| n.to_string()),
            s["epoch"].as_u64().map_or("-".to_string(), |n| n.to_string()),
            if s["servingNode"].is_null() {
                "-".to_string()
            } else {
                status_cmd::ago(s["ownerSeenMs"].as_u64())
            },
            if s["servingNode"].is_null() {
                "-".to_string()
            } else {
                status_cmd::ago(s["ownerLeaseAgeMs"].as_u64())
            },
            s["ownerHealth"].as_str().unwrap_or("-"),
        );
    }
}

/// Prints one `VerifyStore` report; answers whether the store is intact.
fn print_report(report: &Value) -> bool {
    let id = report["id"].as_u64().unwrap_or(0);
    let intact = report["intact"].as_bool().unwrap_or(false);
    println!(
        "store {id}: {} packs, {} messages, {}",
        report["packs"].as_u64().unwrap_or(0),
        report["messages"].as_u64().unwrap_or(0),
        if intact { "intact" } else { "DAMAGED" }
    );
    for d in report["damaged"].as_array().into_iter().flatten() {
        let messages: Vec<&str> =
            d["messages"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!(
            "  pack {}: {} ({} messages affected)",
            d["pack"].as_str().map_or_else(|| d["pack"].to_string(), str::to_string),
            d["reason"].as_str().unwrap_or("?"),
            messages.len()
        );
        for m in messages {
            println!("    {m}");
        }
    }
    intact
}

/// Runs one `arca shard` / `arca store` subcommand; `Ok(false)` when a verified store is damaged.
pub async fn run(opts: &ClientOptions, cmd: StoreCmd) -> Result<bool> {
    let client = Client::new(opts)?;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !opts.json;
    match cmd {
        StoreCmd::List => {
            let mut stores = invoke_and_wait(&client, "GetStores", &[], interactive).await?;
            let info = status_cmd::server_info(&client).await?;
            if let Some(list) = stores.as_array_mut() {
                status_cmd::annotate_stores(list, &info);
            }
            if opts.json {
                println!("{}", serde_json::to_string_pretty(&stores)?);
            } else {
                print_stores(stores.as_array().map(Vec::as_slice).unwrap_or_default());
            }
            Ok(true)
        }
        StoreCmd::Verify { id } => {
            let reports = match id {
                Some(id) => {
                    vec![
                        invoke_and_wait(&client, "VerifyStore", &[("id", id.to_string())], interactive)
                            .await?,
                    ]
                }
                None => {
                    let all = invoke_and_wait(&client, "VerifyStores", &[], interactive).await?;
                    all.as_array().cloned().unwrap_or_default()
                }
            };
            let intact = reports.iter().all(|r| r["intact"].as_bool() == Some(true));
            if opts.json {
                let out = if id.is_some() { reports[0].clone() } else { Value::Array(reports) };
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for r in &reports {
                    print_report(r);
                }
                if reports.is_empty() {
                    println!("no stores with messages to verify");
                }
            }
            Ok(intact)
        }
        StoreCmd::Move { id, node } => crate::shard_ops_cmd::move_store(opts, id, node).await.map(|()| true),
        StoreCmd::Rebalance { dry_run } => {
            crate::shard_ops_cmd::rebalance(opts, dry_run).await.map(|()| true)
        }
        StoreCmd::RebuildIndex { id, folder } => {
            let result = invoke_and_wait(
                &client,
                "RebuildStoreIndex",
                &[("id", id.to_string()), ("folder", folder)],
                interactive,
            )
            .await?;
            if opts.json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                println!(
                    "store {id}: index rebuilt, {} messages indexed",
                    result["messages"].as_u64().unwrap_or(0)
                );
            }
            Ok(true)
        }
    }
}
