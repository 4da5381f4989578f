//! Plans of shard moves (`arca node drain`, `arca shard rebalance`): which shard goes to which node,
//! with as few moves as possible. Pure: the caller lists the shards and the nodes that may take them.

use std::collections::BTreeMap;

use arca_types::{NodeId, ShardId};
use serde::Serialize;

/// A shard as a plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub id: ShardId,
    pub tenant: String,
    pub name: String,
    /// Its serving node (`None`: never assigned).
    pub owner: Option<NodeId>,
    /// A current (write) shard.
    pub current: bool,
}

/// One move of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMove {
    pub id: ShardId,
    pub tenant: String,
    pub name: String,
    pub from: Option<NodeId>,
    pub to: NodeId,
    pub current: bool,
}

/// Shards per node (and current shards per node) after a plan.
pub type Counts = BTreeMap<NodeId, (usize, usize)>;

/// Where shards are now and where they go.
struct Assignment<'a> {
    shards: &'a [Placed],
    /// Planned node of each shard (`None`: stays where it is, on a node that is not eligible).
    to: Vec<Option<NodeId>>,
    eligible: Vec<NodeId>,
}

impl<'a> Assignment<'a> {
    fn new(shards: &'a [Placed], eligible: &[NodeId]) -> Assignment<'a> {
        let to = shards.iter().map(|s| s.owner.filter(|o| eligible.contains(o))).collect();
        let mut eligible = eligible.to_vec();
        eligible.sort_unstable();
        eligible.dedup();
        Assignment { shards, to, eligible }
    }

    /// (shards, current shards) planned on `node`.
    fn load(&self, node: NodeId) -> (usize, usize) {
        self.to
            .iter()
            .zip(self.shards)
            .filter(|(t, _)| **t == Some(node))
            .fold((0, 0), |(n, c), (_, s)| (n + 1, c + usize::from(s.current)))
    }

    /// The eligible node with the fewest current shards (for a current shard) or the fewest shards.
    fn lightest(&self, current: bool) -> Option<NodeId> {
        self.eligible.iter().copied().min_by_key(|n| {
            let (total, cur) = self.load(*n);
            if current { (cur, total, *n) } else { (total, cur, *n) }
        })
    }

    /// Moves one shard planned on `from` to `to`, choosing among those that satisfy `pick`, preferring
    /// one that moves anyway (so that no shard moves twice). False when none qualifies.
    fn shift(&mut self, from: NodeId, to: NodeId, pick: impl Fn(&Placed) -> bool) -> bool {
        let candidates: Vec<usize> =
            (0..self.shards.len()).filter(|i| self.to[*i] == Some(from) && pick(&self.shards[*i])).collect();
        let chosen = candidates
            .iter()
            .copied()
            .find(|i| self.shards[*i].owner != Some(from))
            .or_else(|| candidates.iter().copied().max_by_key(|i| self.shards[*i].id));
        match chosen {
            Some(i) => {
                self.to[i] = Some(to);
                true
            }
            None => false,
        }
    }

    fn moves(&self) -> Vec<PlannedMove> {
        self.shards
            .iter()
            .zip(&self.to)
            .filter_map(|(s, to)| match to {
                Some(to) if s.owner != Some(*to) => Some(PlannedMove {
                    id: s.id,
                    tenant: s.tenant.clone(),
                    name: s.name.clone(),
                    from: s.owner,
                    to: *to,
                    current: s.current,
                }),
                _ => None,
            })
            .collect()
    }

    fn counts(&self) -> Counts {
        self.eligible.iter().map(|n| (*n, self.load(*n))).collect()
    }
}

/// Shards per eligible node now: (shards, current shards).
pub fn counts_now(shards: &[Placed], eligible: &[NodeId]) -> Counts {
    Assignment::new(shards, eligible).counts()
}

/// Moves every shard of `node` to the eligible node with the fewest shards (current shards to the one
/// with the fewest current shards), one after another. `None` when there is no eligible node.
pub fn drain(shards: &[Placed], node: NodeId, eligible: &[NodeId]) -> Option<Vec<PlannedMove>> {
    let eligible: Vec<NodeId> = eligible.iter().copied().filter(|n| *n != node).collect();
    let mut a = Assignment::new(shards, &eligible);
    let mut order: Vec<usize> = (0..shards.len()).filter(|i| shards[*i].owner == Some(node)).collect();
    order.sort_by_key(|i| (!shards[*i].current, shards[*i].id));
    for i in order {
        a.to[i] = Some(a.lightest(shards[i].current)?);
    }
    Some(a.moves())
}

/// Evens shard counts and current-shard counts over the eligible nodes (within one of each other) with
/// the fewest moves: shards on no eligible node are placed first, then current shards, then the rest.
pub fn rebalance(shards: &[Placed], eligible: &[NodeId]) -> (Vec<PlannedMove>, Counts) {
    let mut a = Assignment::new(shards, eligible);
    if a.eligible.is_empty() {
        return (Vec::new(), a.counts());
    }
    let mut order: Vec<usize> = (0..shards.len()).filter(|i| a.to[*i].is_none()).collect();
    order.sort_by_key(|i| (!shards[*i].current, shards[*i].id));
    for i in order {
        a.to[i] = a.lightest(shards[i].current);
    }
    let extremes = |a: &Assignment<'_>, by: fn((usize, usize)) -> usize| {
        let max = a.eligible.iter().copied().max_by_key(|n| (by(a.load(*n)), std::cmp::Reverse(*n)));
        let min = a.eligible.iter().copied().min_by_key(|n| (by(a.load(*n)), *n));
        max.zip(min).map(|(max, min)| (max, by(a.load(max)), min, by(a.load(min))))
    };
    // Current shards first, so that write load spreads; each step narrows the spread.
    while let Some((max, hi, min, lo)) = extremes(&a, |(_, c)| c) {
        if hi <= lo + 1 || !a.shift(max, min, |s| s.current) {
            break;
        }
    }
    while let Some((max, hi, min, lo)) = extremes(&a, |(t, _)| t) {
        if hi <= lo + 1 {
            break;
        }
        let (cur_max, cur_min) = (a.load(max).1, a.load(min).1);
        // Another shard first; a current one only when that keeps current shards even.
        let moved =
            a.shift(max, min, |s| !s.current) || (cur_max > cur_min && a.shift(max, min, |s| s.current));
        if !moved {
            break;
        }
    }
    let counts = a.counts();
    (a.moves(), counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: ShardId, owner: Option<NodeId>, current: bool) -> Placed {
        Placed { id, tenant: "default".into(), name: format!("s{id}"), owner, current }
    }

    #[test]
    fn twelve_shards_on_one_node_even_out_over_three_with_eight_moves() {
        let shards: Vec<Placed> = (1..=12).map(|i| shard(i, Some(1), i == 12)).collect();
        let (moves, counts) = rebalance(&shards, &[1, 2, 3]);
        assert_eq!(moves.len(), 8);
        assert!(counts.values().all(|(n, _)| *n == 4), "{counts:?}");
        assert_eq!(counts.values().map(|(_, c)| c).sum::<usize>(), 1);
    }

    #[test]
    fn a_balanced_cluster_needs_no_move_and_unassigned_shards_are_placed() {
        let shards: Vec<Placed> = (1..=6).map(|i| shard(i, Some(1 + i % 3), false)).collect();
        assert!(rebalance(&shards, &[1, 2, 3]).0.is_empty());
        let mut more = shards.clone();
        more.extend((7..=9).map(|i| shard(i, None, false)));
        let (moves, counts) = rebalance(&more, &[1, 2, 3]);
        assert_eq!(moves.len(), 3, "only the unassigned ones move: {moves:?}");
        assert!(counts.values().all(|(n, _)| *n == 3));
    }

    #[test]
    fn current_shards_spread_over_nodes() {
        let shards: Vec<Placed> = (1..=6).map(|i| shard(i, Some(1), i <= 3)).collect();
        let (_, counts) = rebalance(&shards, &[1, 2, 3]);
        assert!(counts.values().all(|(n, c)| *n == 2 && *c == 1), "{counts:?}");
    }

    #[test]
    fn a_drain_moves_every_shard_of_the_node_to_the_lightest_others() {
        let mut shards: Vec<Placed> = (1..=4).map(|i| shard(i, Some(1), i == 1)).collect();
        shards.push(shard(5, Some(2), false));
        let moves = drain(&shards, 1, &[1, 2, 3]).expect("plan");
        assert_eq!(moves.len(), 4);
        assert!(moves.iter().all(|m| m.to != 1 && m.from == Some(1)));
        let to3 = moves.iter().filter(|m| m.to == 3).count();
        assert_eq!(to3, 2, "node 3 had none, node 2 had one; the current shard goes first: {moves:?}");
        assert_eq!(moves[0].to, 3, "the current shard goes to a node with no current shard");
        assert!(drain(&shards, 1, &[1]).is_none(), "no node to take them");
    }
}
