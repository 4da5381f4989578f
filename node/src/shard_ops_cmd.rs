//! `arca shard move|rebalance` and `arca node drain|undrain` (CLU-05): shard moves through the
//! Administration API's operator functions (`MoveStore`, `PlanStoreMoves`, `SetNodeDraining`). Each
//! prints its progress on stderr, ends with a table (or JSON with `--json`) on stdout, and fails when
//! any move failed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::client::{Client, ClientOptions};

/// How long one move is waited for before the command gives up (the move goes on in the cluster).
const MOVE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Invokes `function`, prints the log lines it reports while it runs, and answers its result; an
/// error answer is an `Err` carrying its message.
async fn invoke_logged(client: &Client, function: &str, args: &[(&str, String)]) -> Result<Value> {
    let started = Instant::now();
    let mut envelope = client.call(&format!("/api/invoke/{function}"), args).await?;
    loop {
        if let Some(lines) = envelope["logOutput"].as_str() {
            for line in lines.split("\r\n").filter(|l| !l.is_empty()) {
                eprintln!("  {line}");
            }
        }
        if envelope["statusCode"] != "running" {
            break;
        }
        if started.elapsed() > MOVE_TIMEOUT {
            bail!(
                "{function} is still running after {} s; it goes on in the cluster",
                MOVE_TIMEOUT.as_secs()
            );
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
    match envelope["statusCode"].as_str() {
        Some("succeeded") => Ok(envelope["result"].clone()),
        other => bail!("{function} ended {}", other.unwrap_or("without a status")),
    }
}

fn node_text(v: &Value) -> String {
    v.as_u64().map_or("-".to_string(), |n| n.to_string())
}

/// One row of a move table: the plan's store and nodes, and what happened.
#[derive(Debug, Clone)]
struct Row {
    planned: Value,
    /// `MoveStore`'s result, or the reason the move failed.
    outcome: Result<Value, String>,
}

impl Row {
    fn json(&self) -> Value {
        let mut v = self.planned.clone();
        match &self.outcome {
            Ok(moved) => {
                v["status"] = json!("moved");
                for key in ["epoch", "prepareMs", "switchMs", "totalMs", "to", "from"] {
                    if !moved[key].is_null() {
                        v[key] = moved[key].clone();
                    }
                }
            }
            Err(e) => {
                v["status"] = json!("failed");
                v["error"] = json!(e);
            }
        }
        v
    }
}

fn print_moves(rows: &[Value]) {
    println!(
        "{:>6} {:<24} {:>6} {:>6} {:>7} {:>10} {:>9} {:>9}  STATUS",
        "STORE", "NAME", "FROM", "TO", "EPOCH", "PREPARE", "SWITCH", "TOTAL"
    );
    for r in rows {
        let ms = |k: &str| r[k].as_u64().map_or("-".to_string(), |v| format!("{v} ms"));
        let status = match r["status"].as_str() {
            Some("failed") => format!("failed: {}", r["error"].as_str().unwrap_or("?")),
            Some(s) => s.to_string(),
            None => "planned".to_string(),
        };
        let name =
            format!("{}{}", r["name"].as_str().unwrap_or("?"), if r["current"] == true { " *" } else { "" });
        println!(
            "{:>6} {:<24} {:>6} {:>6} {:>7} {:>10} {:>9} {:>9}  {}",
            node_text(&r["id"]),
            name,
            node_text(&r["from"]),
            node_text(&r["to"]),
            node_text(&r["epoch"]),
            ms("prepareMs"),
            ms("switchMs"),
            ms("totalMs"),
            status
        );
    }
    if rows.iter().any(|r| r["current"] == true) {
        println!("(* current store: takes new mail)");
    }
}

fn print_counts(title: &str, counts: &Value) {
    println!("{title}");
    println!("{:>6} {:>8} {:>9}", "NODE", "STORES", "CURRENT");
    for c in counts.as_array().into_iter().flatten() {
        println!(
            "{:>6} {:>8} {:>9}",
            node_text(&c["node"]),
            node_text(&c["stores"]),
            node_text(&c["currentStores"])
        );
    }
}

/// Runs the planned moves one after another, printing progress; answers a row per move.
async fn run_moves(client: &Client, planned: &[Value]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, m) in planned.iter().enumerate() {
        let id = m["id"].as_u64().unwrap_or(0);
        let to = m["to"].as_u64().unwrap_or(0);
        eprintln!(
            "[{}/{}] moving store {id} ('{}') from node {} to node {to}...",
            i + 1,
            planned.len(),
            m["name"].as_str().unwrap_or("?"),
            node_text(&m["from"])
        );
        let outcome = invoke_logged(client, "MoveStore", &[("id", id.to_string()), ("node", to.to_string())])
            .await
            .map_err(|e| format!("{e:#}"));
        match &outcome {
            Ok(moved) => eprintln!(
                "[{}/{}] store {id}: done in {} ms",
                i + 1,
                planned.len(),
                node_text(&moved["totalMs"])
            ),
            Err(e) => eprintln!("[{}/{}] store {id}: FAILED: {e}", i + 1, planned.len()),
        }
        rows.push(Row { planned: m.clone(), outcome });
    }
    rows
}

/// Prints the rows (table or JSON with `extra` fields) and fails when any move failed.
fn finish(opts: &ClientOptions, rows: &[Row], extra: Value, what: &str) -> Result<()> {
    let table: Vec<Value> = rows.iter().map(Row::json).collect();
    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    if opts.json {
        let mut out = json!({ "moves": table, "moved": rows.len() - failed, "failed": failed });
        if let (Some(out), Some(extra)) = (out.as_object_mut(), extra.as_object()) {
            out.extend(extra.clone());
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_moves(&table);
        println!("{} moved, {failed} failed", rows.len() - failed);
    }
    if failed > 0 {
        bail!("{what}: {failed} of {} moves failed (see the table)", rows.len());
    }
    Ok(())
}

/// `arca shard move <id> <node>`.
pub async fn move_store(opts: &ClientOptions, id: u64, node: u64) -> Result<()> {
    let client = Client::new(opts)?;
    let planned = json!({ "id": id, "to": node });
    eprintln!("moving store {id} to node {node}...");
    let outcome = invoke_logged(&client, "MoveStore", &[("id", id.to_string()), ("node", node.to_string())])
        .await
        .map_err(|e| format!("{e:#}"));
    let planned = match &outcome {
        Ok(moved) => json!({ "id": id, "name": moved["name"], "from": moved["from"], "to": node }),
        Err(_) => planned,
    };
    finish(opts, &[Row { planned, outcome }], json!({}), &format!("store {id} was not moved"))
}

/// `arca shard rebalance [--dry-run]`.
pub async fn rebalance(opts: &ClientOptions, dry_run: bool) -> Result<()> {
    let client = Client::new(opts)?;
    let plan = invoke_logged(&client, "PlanStoreMoves", &[("purpose", "rebalance".to_string())]).await?;
    let moves = plan["moves"].as_array().cloned().unwrap_or_default();
    eprintln!(
        "plan: {} moves over nodes {}",
        moves.len(),
        plan["eligibleNodes"].as_array().map_or(String::new(), |n| n
            .iter()
            .map(node_text)
            .collect::<Vec<_>>()
            .join(", "))
    );
    if dry_run {
        if opts.json {
            let mut out = plan.clone();
            out["dryRun"] = json!(true);
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            print_moves(&moves);
            print_counts("stores per node now:", &plan["before"]);
            print_counts("stores per node after these moves:", &plan["after"]);
            println!("dry run: nothing was moved");
        }
        return Ok(());
    }
    let rows = run_moves(&client, &moves).await;
    if !opts.json {
        print_counts("stores per node planned:", &plan["after"]);
    }
    finish(opts, &rows, json!({ "dryRun": false, "after": plan["after"] }), "rebalance")
}

/// `arca node drain <id>`: marks the node draining and moves every store away from it.
pub async fn drain(opts: &ClientOptions, node: u64) -> Result<()> {
    let client = Client::new(opts)?;
    invoke_logged(&client, "SetNodeDraining", &[("id", node.to_string()), ("draining", "true".to_string())])
        .await
        .with_context(|| format!("cannot mark node {node} draining"))?;
    eprintln!("node {node} is draining: no store is moved onto it");
    let plan = invoke_logged(
        &client,
        "PlanStoreMoves",
        &[("purpose", "drain".to_string()), ("node", node.to_string())],
    )
    .await?;
    let moves = plan["moves"].as_array().cloned().unwrap_or_default();
    eprintln!("{} stores to move away from node {node}", moves.len());
    let rows = run_moves(&client, &moves).await;
    // What is still on the node (moves that failed, or stores placed there meanwhile).
    let again = invoke_logged(
        &client,
        "PlanStoreMoves",
        &[("purpose", "drain".to_string()), ("node", node.to_string())],
    )
    .await?;
    let remaining = again["moves"].as_array().map_or(0, Vec::len);
    if !opts.json {
        if remaining == 0 {
            println!("node {node} serves no store now: it can be removed (arca node remove {node})");
        } else {
            println!("node {node} still serves {remaining} stores");
        }
    }
    finish(
        opts,
        &rows,
        json!({ "node": node, "draining": true, "remaining": remaining }),
        &format!("drain of node {node}"),
    )?;
    if remaining > 0 {
        bail!("node {node} still serves {remaining} stores; run arca node drain {node} again");
    }
    Ok(())
}

/// `arca node undrain <id>`: stores may be moved onto the node again.
pub async fn undrain(opts: &ClientOptions, node: u64) -> Result<()> {
    let client = Client::new(opts)?;
    invoke_logged(&client, "SetNodeDraining", &[("id", node.to_string()), ("draining", "false".to_string())])
        .await
        .with_context(|| format!("cannot clear the draining mark of node {node}"))?;
    if opts.json {
        println!("{}", json!({ "node": node, "draining": false }));
    } else {
        println!("{:>6} {:>9}", "NODE", "DRAINING");
        println!("{node:>6} {:>9}", "no");
    }
    Ok(())
}
