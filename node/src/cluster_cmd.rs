//! `arca cluster …` and `arca node …`: membership commands through a node's API listener.

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::Value;

use crate::client::{Client, ClientOptions};
use crate::status_cmd;

/// Subcommands of `arca cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Leader, term, and every node with its role, health, lag, shards and counters.
    Status,
    /// Promote a learner to voter.
    Promote { node_id: u64 },
    /// Remove a node (voter or learner) from the cluster.
    Remove { node_id: u64 },
}

/// Subcommands of `arca node`.
#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// List the nodes of the cluster: role, health, shards, counters.
    List,
    /// Mark a node draining and move every store it serves to the other nodes; then it can be removed.
    Drain { node_id: u64 },
    /// Clear a node's draining mark: stores may be moved onto it again.
    Undrain { node_id: u64 },
    /// Remove a node from the cluster (same as `arca cluster remove`).
    Remove { node_id: u64 },
}

fn print_status(result: &Value, info: &Value) {
    let leader = result.get("leader").and_then(Value::as_u64);
    println!(
        "leader {}   term {}   last log index {}",
        leader.map_or("none".to_string(), |l| l.to_string()),
        result.get("term").and_then(Value::as_u64).unwrap_or(0),
        result.get("lastLogIndex").and_then(Value::as_u64).map_or("-".to_string(), |i| i.to_string()),
    );
    status_cmd::print_nodes(info);
}

async fn membership(opts: &ClientOptions, path: &str, id: u64, verb: &str) -> Result<()> {
    let client = Client::new(opts)?;
    client.call(path, &[("id", id.to_string())]).await.with_context(|| format!("cannot {verb} node {id}"))?;
    if opts.json {
        println!("{}", serde_json::json!({ "node": id, "done": verb }));
    } else {
        println!("node {id}: {verb}d");
    }
    Ok(())
}

/// Runs one `arca cluster` subcommand.
pub async fn run(opts: &ClientOptions, cmd: ClusterCmd) -> Result<()> {
    match cmd {
        ClusterCmd::Status => {
            let client = Client::new(opts)?;
            let envelope = client.call("/api/cluster/status", &[]).await?;
            let mut result = envelope.get("result").cloned().unwrap_or(Value::Null);
            let info = status_cmd::server_info(&client).await?;
            if opts.json {
                // The Raft view (leader, term, members with lag) and the nodes of GetServerInfo.
                if let Some(fields) = result.as_object_mut() {
                    fields.insert("nodes".into(), info["nodes"].clone());
                    fields.insert("mixedVersions".into(), info["mixedVersions"].clone());
                }
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print_status(&result, &info);
            }
            Ok(())
        }
        ClusterCmd::Promote { node_id } => membership(opts, "/api/cluster/promote", node_id, "promote").await,
        ClusterCmd::Remove { node_id } => membership(opts, "/api/cluster/remove", node_id, "remove").await,
    }
}

/// Runs one `arca node` subcommand.
pub async fn run_node(opts: &ClientOptions, cmd: NodeCmd) -> Result<()> {
    match cmd {
        NodeCmd::List => {
            let info = status_cmd::server_info(&Client::new(opts)?).await?;
            if opts.json {
                println!("{}", serde_json::to_string_pretty(&info["nodes"])?);
            } else {
                status_cmd::print_nodes(&info);
            }
            Ok(())
        }
        NodeCmd::Remove { node_id } => run(opts, ClusterCmd::Remove { node_id }).await,
        NodeCmd::Drain { node_id } => crate::shard_ops_cmd::drain(opts, node_id).await,
        NodeCmd::Undrain { node_id } => crate::shard_ops_cmd::undrain(opts, node_id).await,
    }
}
