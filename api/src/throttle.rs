//! Login throttling: failed logins counted per (user, address), per user and per address, each with a
//! doubling backoff once its threshold is reached, so that guessing is slowed from one address and from
//! many, while one noisy address (or a load balancer's) cannot lock other users out.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arca_types::config::ApiConfig;

/// Entries kept per counter map; beyond it, expired entries are dropped and new keys are not tracked
/// (the other two counters still are), so memory stays bounded (about 100 bytes per entry).
const MAX_TRACKED: usize = 100_000;
/// Addresses remembered per user as ones it logged in from successfully.
const MAX_GOOD_ADDRESSES: usize = 16;
/// The first wait after a threshold is reached; it doubles with every further failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The thresholds and times of [`Throttle`], from `[api]` of the configuration.
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    pub per_account_address: u32,
    pub per_account: u32,
    pub per_address: u32,
    pub backoff_max: Duration,
    pub memory: Duration,
}

impl From<&ApiConfig> for ThrottleSettings {
    fn from(c: &ApiConfig) -> Self {
        ThrottleSettings {
            per_account_address: c.login_failures_per_account_address.max(1),
            per_account: c.login_failures_per_account.max(1),
            per_address: c.login_failures_per_address.max(1),
            backoff_max: Duration::from_millis(c.login_backoff_max_ms),
            memory: Duration::from_millis(c.login_failure_memory_ms),
        }
    }
}

/// Why an attempt is refused before its password is looked at: the setting whose threshold was
/// reached and how long until the next attempt is considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// The configuration key of the threshold, e.g. `api.login_failures_per_account_address`.
    pub limit: &'static str,
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    last: Instant,
}

impl Counter {
    /// The remaining wait once `threshold` failures are reached, if any.
    fn wait(&self, threshold: u32, max: Duration, now: Instant) -> Option<Duration> {
        if self.failures < threshold {
            return None;
        }
        let doublings = (self.failures - threshold).min(20);
        let delay = FIRST_BACKOFF.saturating_mul(1 << doublings).min(max);
        (self.last + delay).checked_duration_since(now).filter(|d| !d.is_zero())
    }
}

#[derive(Debug, Default)]
struct Account {
    counter: Option<Counter>,
    /// Addresses this user logged in from successfully, with the time of the last success.
    good: Vec<(IpAddr, Instant)>,
}

#[derive(Debug, Default)]
struct State {
    pairs: HashMap<(String, IpAddr), Counter>,
    accounts: HashMap<String, Account>,
    addresses: HashMap<IpAddr, Counter>,
}

/// Failed-login bookkeeping of one node.
#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    state: Mutex<State>,
}

/// The key of a user name: compared case-insensitively, bounded in length like user names.
fn account_key(name: &str) -> String {
    name.chars().take(128).collect::<String>().to_lowercase()
}

fn bump<K: Eq + Hash>(map: &mut HashMap<K, Counter>, key: K, now: Instant, memory: Duration) {
    if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
        map.retain(|_, c| now.duration_since(c.last) < memory);
        if map.len() >= MAX_TRACKED {
            return;
        }
    }
    let c = map.entry(key).or_insert(Counter { failures: 0, last: now });
    if now.duration_since(c.last) >= memory {
        c.failures = 0;
    }
    c.failures = c.failures.saturating_add(1);
    c.last = now;
}

impl Throttle {
    /// A throttle with `settings` and nothing counted yet.
    pub fn new(settings: ThrottleSettings) -> Throttle {
        Throttle { settings, state: Mutex::new(State::default()) }
    }

    fn live(&self, c: Option<&Counter>, now: Instant) -> Option<Counter> {
        c.copied().filter(|c| now.duration_since(c.last) < self.settings.memory)
    }

    /// Whether an attempt of `user` from `ip` may be verified now; refused attempts count nothing.
    pub fn check(&self, user: &str, ip: IpAddr, now: Instant) -> Result<(), Backoff> {
        let s = &self.settings;
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = account_key(user);
        let refuse = |limit, retry_after| Err(Backoff { limit, retry_after });
        let pair = self.live(state.pairs.get(&(key.clone(), ip)), now);
        if let Some(wait) = pair.and_then(|c| c.wait(s.per_account_address, s.backoff_max, now)) {
            return refuse("api.login_failures_per_account_address", wait);
        }
        if let Some(account) = state.accounts.get(&key) {
            let known_address =
                account.good.iter().any(|(a, t)| *a == ip && now.duration_since(*t) < s.memory);
            let counter = self.live(account.counter.as_ref(), now);
            if !known_address
                && let Some(wait) = counter.and_then(|c| c.wait(s.per_account, s.backoff_max, now))
            {
                return refuse("api.login_failures_per_account", wait);
            }
        }
        let address = self.live(state.addresses.get(&ip), now);
        if let Some(wait) = address.and_then(|c| c.wait(s.per_address, s.backoff_max, now)) {
            return refuse("api.login_failures_per_address", wait);
        }
        Ok(())
    }

    /// Counts a failed login of `user` from `ip`.
    pub fn failure(&self, user: &str, ip: IpAddr, now: Instant) {
        let memory = self.settings.memory;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = account_key(user);
        bump(&mut state.pairs, (key.clone(), ip), now, memory);
        bump(&mut state.addresses, ip, now, memory);
        if state.accounts.len() >= MAX_TRACKED && !state.accounts.contains_key(&key) {
            state.accounts.retain(|_, a| {
                a.counter.is_some_and(|c| now.duration_since(c.last) < memory)
                    || a.good.iter().any(|(_, t)| now.duration_since(*t) < memory)
            });
            if state.accounts.len() >= MAX_TRACKED {
                return;
            }
        }
        let account = state.accounts.entry(key).or_default();
        let mut c = account
            .counter
            .filter(|c| now.duration_since(c.last) < memory)
            .unwrap_or(Counter { failures: 0, last: now });
        c.failures = c.failures.saturating_add(1);
        c.last = now;
        account.counter = Some(c);
    }

    /// Records a successful login: the (user, address) pair starts afresh and the address becomes one
    /// the user's own backoff does not apply to.
    pub fn success(&self, user: &str, ip: IpAddr, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = account_key(user);
        state.pairs.remove(&(key.clone(), ip));
        if state.accounts.len() >= MAX_TRACKED && !state.accounts.contains_key(&key) {
            return;
        }
        let account = state.accounts.entry(key).or_default();
        account.good.retain(|(a, _)| *a != ip);
        if account.good.len() >= MAX_GOOD_ADDRESSES {
            account.good.remove(0);
        }
        account.good.push((ip, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleSettings {
            per_account_address: 3,
            per_account: 6,
            per_address: 10,
            backoff_max: Duration::from_secs(60),
            memory: Duration::from_secs(900),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn failures_from_a_shared_address_slow_only_that_user_there() {
        let t = throttle();
        let balancer = ip("10.0.0.1");
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.check("mallory", balancer, now).is_ok());
            t.failure("mallory", balancer, now);
        }
        let refused = t.check("Mallory", balancer, now).expect_err("the pair is slowed");
        assert_eq!(refused.limit, "api.login_failures_per_account_address");
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert!(t.check("alice", balancer, now).is_ok(), "other users behind the same address log in");
        assert!(t.check("mallory", ip("10.0.0.2"), now).is_ok(), "the user from elsewhere is not locked");
        assert!(t.check("mallory", balancer, now + Duration::from_secs(1)).is_ok(), "the wait ends");
    }

    #[test]
    fn backoff_doubles_with_every_further_failure_up_to_the_maximum() {
        let t = throttle();
        let a = ip("192.0.2.9");
        let mut now = Instant::now();
        for _ in 0..3 {
            t.failure("bob", a, now);
        }
        for expected in [1u64, 2, 4, 8] {
            let wait = t.check("bob", a, now).expect_err("slowed").retry_after;
            assert_eq!(wait, Duration::from_secs(expected));
            now += wait;
            assert!(t.check("bob", a, now).is_ok());
            t.failure("bob", a, now);
        }
        for _ in 0..30 {
            t.failure("bob", a, now);
        }
        assert_eq!(t.check("bob", a, now).expect_err("slowed").retry_after, Duration::from_secs(60));
    }

    #[test]
    fn guesses_from_many_addresses_slow_the_user_but_not_its_known_addresses() {
        let t = throttle();
        let now = Instant::now();
        t.success("carol", ip("198.51.100.1"), now);
        for i in 0..6 {
            t.failure("carol", ip(&format!("203.0.113.{i}")), now);
        }
        let refused = t.check("carol", ip("203.0.113.200"), now).expect_err("a new address is slowed");
        assert_eq!(refused.limit, "api.login_failures_per_account");
        assert!(t.check("carol", ip("198.51.100.1"), now).is_ok(), "carol's own address is not");
    }

    #[test]
    fn spraying_many_users_from_one_address_slows_the_address() {
        let t = throttle();
        let a = ip("203.0.113.77");
        let now = Instant::now();
        for i in 0..10 {
            t.failure(&format!("user{i}"), a, now);
        }
        assert_eq!(t.check("someone", a, now).expect_err("slowed").limit, "api.login_failures_per_address");
        assert!(t.check("someone", ip("203.0.113.78"), now).is_ok());
        let later = now + Duration::from_secs(901);
        assert!(t.check("someone", a, later).is_ok(), "failures are forgotten");
    }
}
