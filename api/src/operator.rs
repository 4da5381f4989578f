//! The cluster operator's functions of the Administration API (Arca extensions, CLU-05): `MoveStore`,
//! `SetNodeDraining` and `PlanStoreMoves`. They act on the stores of every tenant, so only an
//! administrator of the cluster's own tenant (`default`) may call them. `arca shard move`,
//! `arca shard rebalance` and `arca node drain|undrain` are built on them.

use serde_json::{Value, json};

use crate::ApiContext;
use crate::args::Args;
use crate::auth::Caller;
use crate::calls::Progress;
use crate::envelope::ApiError;
use crate::shard_move::{self, ShardMoveError};
use crate::shard_plan::{self, Placed};
use arca_types::records::DEFAULT_TENANT;
use arca_types::values::ShardState;
use arca_types::{Command, MetaError, NodeId};

/// The functions of this module.
pub const NAMES: [&str; 3] = ["MoveStore", "PlanStoreMoves", "SetNodeDraining"];

impl From<ShardMoveError> for ApiError {
    fn from(e: ShardMoveError) -> ApiError {
        ApiError { message: format!("the store was not moved: {e}"), details: e.to_string() }
    }
}

/// Refuses callers that are not administrators of the cluster's own tenant.
fn require_operator(caller: &Caller, name: &str) -> Result<(), ApiError> {
    if caller.tenant == DEFAULT_TENANT && caller.user.is_admin() {
        return Ok(());
    }
    Err(ApiError::new(format!(
        "{name} acts on the whole cluster: only an administrator of tenant '{DEFAULT_TENANT}' may call it"
    )))
}

fn number(args: &Args, name: &str) -> Result<Option<u64>, ApiError> {
    match args.opt_i64(name) {
        None => Ok(None),
        Some(v) => {
            u64::try_from(v).map(Some).map_err(|_| MetaError::invalid(name, "must not be negative").into())
        }
    }
}

fn required(args: &Args, name: &str) -> Result<u64, ApiError> {
    number(args, name)?.ok_or_else(|| ApiError::new(format!("missing mandatory argument '{name}'")))
}

fn counts_json(counts: &shard_plan::Counts) -> Value {
    Value::Array(
        counts
            .iter()
            .map(|(node, (n, c))| json!({ "node": node, "stores": n, "currentStores": c }))
            .collect(),
    )
}

/// Runs one of [`NAMES`] for `caller`.
pub async fn run(
    ctx: &ApiContext,
    caller: &Caller,
    name: &str,
    args: &Args,
    progress: &Progress,
) -> Result<Value, ApiError> {
    require_operator(caller, name)?;
    let service =
        ctx.archive.as_deref().ok_or_else(|| ApiError::new("archiving is not configured on this node"))?;
    match name {
        "MoveStore" => {
            let id = required(args, "id")?;
            let node = number(args, "node")?;
            let moved = shard_move::move_shard(service, id, node, |line| progress.log(line)).await?;
            Ok(serde_json::to_value(moved).map_err(|e| ApiError::new(e.to_string()))?)
        }
        "SetNodeDraining" => {
            let id = required(args, "id")?;
            let draining = args.opt_bool("draining").unwrap_or(true);
            ctx.meta.write(Command::SetNodeDraining { id, draining }).await?;
            Ok(json!({ "node": id, "draining": draining }))
        }
        "PlanStoreMoves" => {
            ctx.meta.linearizable().await?;
            let shards: Vec<Placed> = shard_move::all_shards(&ctx.meta)
                .into_iter()
                .filter(|r| r.shard.state != ShardState::Disabled)
                .map(|r| Placed {
                    id: r.shard.id,
                    name: r.shard.name.clone(),
                    owner: r.shard.owner_node,
                    current: r.shard.state == ShardState::Current,
                    tenant: r.tenant,
                })
                .collect();
            let eligible = shard_move::eligible_nodes(&ctx.meta);
            let draining: Vec<NodeId> = ctx.meta.with_state(|s| s.draining.iter().copied().collect());
            let before = shard_plan::counts_now(&shards, &eligible);
            let (moves, after) = match args.str("purpose")? {
                "rebalance" => shard_plan::rebalance(&shards, &eligible),
                "drain" => {
                    let node = required(args, "node")?;
                    let known = ctx.meta.with_state(|s| s.nodes.contains_key(&node));
                    if !known {
                        return Err(ShardMoveError::UnknownNode(node).into());
                    }
                    let moves = shard_plan::drain(&shards, node, &eligible).ok_or_else(|| {
                        ApiError::new(format!(
                            "no node can take the stores of node {node}: every other node is draining or not a member"
                        ))
                    })?;
                    let mut after = before.clone();
                    for m in &moves {
                        let e = after.entry(m.to).or_default();
                        e.0 += 1;
                        e.1 += usize::from(m.current);
                    }
                    (moves, after)
                }
                other => {
                    return Err(MetaError::invalid(
                        "purpose",
                        format!("'{other}': expected rebalance or drain"),
                    )
                    .into());
                }
            };
            let stays_disabled = ctx.meta.with_state(|s| {
                s.tenants
                    .values()
                    .flat_map(|t| t.shards.values())
                    .filter(|sh| sh.state == ShardState::Disabled)
                    .count()
            });
            Ok(json!({
                "moves": moves,
                "before": counts_json(&before),
                "after": counts_json(&after),
                "eligibleNodes": eligible,
                "drainingNodes": draining,
                "disabledStoresNotMoved": stays_disabled,
            }))
        }
        other => Err(crate::functions::not_available(other)),
    }
}
