//! Node leases (invariant 2, CLU-02): one lease per node covers every store it owns, renewed through
//! Raft (`Command::RenewLease`, which raises the node's renewal counter) every quarter of `lease`.
//!
//! No clocks are compared across nodes; each side measures with its own monotonic clock:
//! - **Holder.** A node holds its lease until `sent + lease - margin`, where `sent` is when it *sent* its
//!   latest renewal that committed and that its own state machine has applied (so that every takeover
//!   committed before the renewal is visible to it). It answers from its stores only while it holds it.
//! - **Observers.** Every node notes when it saw each node's counter change in its applied state; a
//!   node whose counter has not advanced for `lease + margin` is dead. The observation comes after the
//!   commit, which comes after the holder sent it, so the observer's expiry is later than the holder's
//!   by at least `2 * margin`. A takeover (`Command::ClaimShard`) carries the counter it judged by and
//!   loses when the owner renewed since.
//! - A node that does not hold its own lease judges nobody: it restarts every observation, so that
//!   after an election (when nobody could renew) every node gets a whole lease to renew again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arca_types::{Command, CommandOutput, NodeId};

use crate::node::MetaNode;

/// Pause before the next attempt after a renewal got no answer (e.g. during an election).
const RETRY_AFTER: Duration = Duration::from_millis(50);
/// Pause before the next attempt after a renewal was refused (this node is not registered yet).
const RETRY_REFUSED: Duration = Duration::from_millis(200);
/// How often observations of the applied counters are refreshed.
const OBSERVE_EVERY: Duration = Duration::from_millis(100);

/// This node's lease and its observations of every other node's.
#[derive(Debug)]
pub struct Leases {
    lease: Duration,
    /// Until when this node holds its own lease.
    valid_until: Mutex<Option<Instant>>,
    /// Per node: the last renewal counter seen, and when it was first seen at that value.
    seen: Mutex<HashMap<NodeId, (u64, Instant)>>,
}

impl Leases {
    /// Leases of `lease` (at least 40 ms).
    pub fn new(lease: Duration) -> Leases {
        Leases {
            lease: lease.max(Duration::from_millis(40)),
            valid_until: Mutex::new(None),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The configured lease (`cluster.lease_ms`).
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How often a node renews its lease: a quarter of it.
    pub fn renew_every(&self) -> Duration {
        self.lease / 4
    }

    /// Safety margin on both sides: the holder stops this much before the lease ends, observers wait
    /// this much after it.
    pub fn margin(&self) -> Duration {
        self.lease / 4
    }

    /// True while this node holds its own lease (its latest applied renewal was sent less than
    /// `lease - margin` ago).
    pub fn holding(&self) -> bool {
        let until = *self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|u| Instant::now() < u)
    }

    /// Waits until this node holds its lease, at most `timeout`; answers whether it does.
    pub async fn wait_holding(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.holding() {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Notes a renewal sent at `sent` that committed and is applied here.
    fn renewed(&self, sent: Instant) {
        let until = sent + self.lease - self.margin();
        let mut v = self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        if v.is_none_or(|old| old < until) {
            *v = Some(until);
        }
    }

    /// Notes the counters of the applied state: a changed counter was renewed now. While this node does
    /// not hold its own lease, every observation restarts now (it judges nobody).
    pub fn observe(&self, counters: &BTreeMap<NodeId, u64>) {
        let now = Instant::now();
        let forgive = !self.holding();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (node, counter) in counters {
            let entry = seen.entry(*node).or_insert((*counter, now));
            if entry.0 != *counter {
                *entry = (*counter, now);
            }
        }
        if forgive {
            for entry in seen.values_mut() {
                entry.1 = now;
            }
        }
    }

    /// `Some(counter)` when `node` is dead by this node's observations: its renewal counter (as in
    /// `counters`, the applied state; 0 when it never renewed) has not advanced for `lease + margin`.
    /// A node seen for the first time is given a whole lease from now.
    pub fn dead(&self, node: NodeId, counters: &BTreeMap<NodeId, u64>) -> Option<u64> {
        self.observe(counters);
        if !self.holding() {
            return None;
        }
        let counter = counters.get(&node).copied().unwrap_or(0);
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let entry = seen.entry(node).or_insert((counter, now));
        (now.duration_since(entry.1) > self.lease + self.margin()).then_some(counter)
    }

    /// How long ago this node saw `node`'s renewal counter advance (`None` before it saw it at all).
    pub fn lease_age(&self, node: NodeId) -> Option<Duration> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&node).map(|(_, at)| at.elapsed())
    }
}

/// Renews this node's lease every quarter of it until shutdown, and refreshes the observations of
/// the other nodes' counters.
pub(crate) fn spawn(node: MetaNode, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let observer = node.clone();
    let mut stop_observing = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let counters = observer.with_state(|s| s.leases.clone());
            observer.leases().observe(&counters);
            tokio::select! {
                _ = tokio::time::sleep(OBSERVE_EVERY) => {}
                _ = stop_observing.wait_for(|s| *s) => return,
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let pause = renew_once(&node).await.min(node.leases().renew_every());
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    });
}

/// Sends one renewal; once it committed and this node applied it, the lease runs from when it was sent.
/// Answers how long to pause before the next one (shorter after a failure); an attempt is abandoned once
/// it could no longer extend the lease.
async fn renew_once(node: &MetaNode) -> Duration {
    let leases = node.leases();
    let sent = Instant::now();
    let me = node.id();
    // No request id: renewals are not remembered for deduplication (a repeated one only counts twice).
    let write = node.write_with_id(String::new(), Command::RenewLease { node: me });
    let useful_for = leases.lease() - leases.margin();
    let counter = match tokio::time::timeout(useful_for, write).await {
        Ok(Ok(CommandOutput::Renewed(counter))) => counter,
        Ok(Ok(other)) => {
            tracing::warn!("unexpected answer renewing this node's lease: {other:?}");
            return RETRY_REFUSED;
        }
        Ok(Err(crate::RaftNodeError::Meta(e))) => {
            // Before the node is registered (startup) and after it was removed, renewals are refused;
            // it holds no lease then.
            tracing::debug!("this node's lease renewal was refused: {e}");
            return RETRY_REFUSED;
        }
        Ok(Err(e)) => {
            tracing::debug!("cannot renew this node's lease: {e}");
            return RETRY_AFTER;
        }
        Err(_) => {
            tracing::warn!(lease = ?leases.lease(), "renewing this node's lease timed out");
            return RETRY_AFTER;
        }
    };
    let deadline = sent + useful_for;
    loop {
        if node.with_state(|s| s.leases.get(&me).copied().unwrap_or(0)) >= counter {
            leases.renewed(sent);
            return leases.renew_every();
        }
        if Instant::now() >= deadline {
            return RETRY_AFTER;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(200);

    #[test]
    fn the_holder_holds_its_lease_for_three_quarters_of_it_from_sending_the_renewal() {
        let l = Leases::new(LEASE);
        assert!(!l.holding(), "no lease before the first renewal");
        let sent = Instant::now();
        l.renewed(sent);
        assert!(l.holding());
        std::thread::sleep(LEASE * 3 / 4);
        assert!(!l.holding(), "lapsed {:?} after sending", sent.elapsed());
        l.renewed(sent);
        assert!(!l.holding(), "an old renewal extends nothing");
    }

    #[test]
    fn a_node_is_dead_once_its_counter_stood_still_for_five_quarters_of_the_lease() {
        let l = Leases::new(LEASE);
        let counters = BTreeMap::from([(1, 5), (2, 9)]);
        l.renewed(Instant::now());
        assert_eq!(l.dead(1, &counters), None, "first seen now");
        std::thread::sleep(LEASE);
        l.renewed(Instant::now());
        let moved = BTreeMap::from([(1, 5), (2, 10)]);
        assert_eq!(l.dead(1, &moved), None, "not yet: {:?}", l.lease_age(1));
        std::thread::sleep(LEASE / 2);
        l.renewed(Instant::now());
        assert_eq!(l.dead(1, &moved), Some(5), "stood still for {:?}", l.lease_age(1));
        assert_eq!(l.dead(2, &moved), None, "node 2 renewed half a lease ago");
        assert_eq!(l.dead(3, &moved), None, "a node never seen gets a whole lease from now");
    }

    #[test]
    fn a_node_without_its_own_lease_judges_nobody_and_restarts_its_observations() {
        let l = Leases::new(LEASE);
        let counters = BTreeMap::from([(1, 5)]);
        l.observe(&counters);
        std::thread::sleep(LEASE * 3 / 2);
        assert_eq!(l.dead(1, &counters), None, "no own lease: no judgment");
        l.renewed(Instant::now());
        assert_eq!(l.dead(1, &counters), None, "the observation restarted while it held no lease");
    }
}
