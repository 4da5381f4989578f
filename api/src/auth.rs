//! The one gate (invariant 6): who is calling, from where, and what they may do. Every API route asks it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use base64::Engine;
use sha2::{Digest, Sha256};

use arca_raft::MetaNode;
use arca_types::config::ApiConfig;
use arca_types::records::{DEFAULT_TENANT, User};
use arca_types::values::{Authentication, FolderPrivilege, Privilege, TenantState};

use crate::throttle::{Throttle, ThrottleSettings};

/// Name and password of the administrator created on first start (OPS-06).
pub const DEFAULT_ADMIN: (&str, &str) = ("admin", "admin");
/// How long a verified password stays verified (it is re-checked whenever the stored hash changes).
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// Entries of the verified-password cache before expired ones are dropped.
const VERIFIED_MAX: usize = 10_000;
/// Hashes of `admin` users remembered by the default-password rule (one per tenant is typical).
const DEFAULT_CHECKS_MAX: usize = 10_000;

/// Refuses a caller who is not a cluster operator, naming who is.
pub fn operator_only(caller: &Caller) -> Result<(), Denied> {
    if caller.is_operator() {
        return Ok(());
    }
    Err(Denied::Forbidden(format!(
        "user '{}' of tenant '{}' is not a cluster operator: managing tenants and the cluster needs an administrator of tenant '{DEFAULT_TENANT}'",
        caller.user.name, caller.tenant
    )))
}

/// A caller whose credentials were checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's tenant, as the catalogue spells it: every request acts within it only (CLU-04).
    pub tenant: String,
    pub user: User,
    pub addr: SocketAddr,
}

impl Caller {
    /// `tenant/user`: who owns this caller's long-running calls (tokens of one tenant's user are not
    /// another tenant's user's of the same name).
    pub fn owner(&self) -> String {
        format!("{}/{}", self.tenant, self.user.name)
    }

    /// True for a cluster operator: an administrator of the operator tenant `default` (CLU-04).
    pub fn is_operator(&self) -> bool {
        self.tenant == DEFAULT_TENANT && self.user.is_admin()
    }
}

/// Why a request was not let through.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// No or wrong credentials: HTTP 401 with a Basic challenge.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Too many failed logins (per user and address, per user, or per address): HTTP 429.
    #[error("too many failed logins ({limit} reached); try again in {} s", .retry_after.as_secs().max(1))]
    Throttled { limit: &'static str, retry_after: Duration },
    /// Every password-verification slot stayed busy for the configured wait: HTTP 503.
    #[error("too many logins being verified at once ({limit} = {max}); try again shortly")]
    Busy { limit: &'static str, max: usize },
    /// Authenticated, but not allowed: an error envelope.
    #[error("{0}")]
    Forbidden(String),
    /// The caller's tenant is disabled: HTTP 403 on every route (CLU-04).
    #[error(
        "tenant '{tenant}' is disabled: its users cannot log in or use any route until a cluster operator enables it (arca tenant enable {tenant})"
    )]
    TenantDisabled { tenant: String },
    /// The metadata cluster could not answer.
    #[error("{0}")]
    Unavailable(String),
}

/// State of the gate: throttling counters, the bound on concurrent password verifications and the
/// cache of verified passwords.
#[derive(Debug)]
pub struct Gate {
    throttle: Throttle,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    /// Verification slots (`api.max_password_checks`): argon2 costs ~20 ms of CPU, so unauthenticated
    /// callers must not be able to run an unbounded number at once.
    checks: tokio::sync::Semaphore,
    max_checks: usize,
    check_wait: Duration,
    /// Stored hashes of `admin` users (one per tenant) and whether each is the hash of the default
    /// password, so that the default-password rule costs one verification per password change, not
    /// one per call.
    default_check: Mutex<HashMap<String, bool>>,
    /// A hash unknown users are verified against, so that they cost what a wrong password costs
    /// (made once, with the parameters of stored hashes).
    dummy: Option<String>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new(&ApiConfig::default())
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// Hashes a password with argon2id for storage.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Hashes a password with argon2id under a salt derived from `seed` (a client's `Idempotency-Key`), so
/// that a retried request carries the same hash and is recognised as the same request, while the same
/// key with another password is a different one.
pub fn hash_password_seeded(password: &str, seed: &str) -> Result<String, HashError> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("arca/password-salt/v1\0{seed}").as_bytes());
    let salt = SaltString::encode_b64(&digest[..16]).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// True for loopback addresses (`127.0.0.0/8`, `::1`, and IPv4-mapped loopback).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Refuses callers from other hosts while `admin` still has its default password (OPS-01).
fn remote_refusal(ip: IpAddr, default_password_in_use: impl FnOnce() -> bool) -> Option<Denied> {
    (!is_loopback(ip) && default_password_in_use()).then(|| {
        Denied::Forbidden(
            "the user 'admin' still has the default password 'admin': change it (SetUserPassword) before calling \
             the API from another host than this one"
                .into(),
        )
    })
}

/// A user name as it may appear in a log line: control characters escaped, at most 64 characters.
pub fn loggable_name(name: &str) -> String {
    let mut out: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// Extracts `user:password` from an HTTP Basic `Authorization` header.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The cache key of a verified password: user, password and the stored hash it matched.
fn cache_key(user: &str, password: &str, phc: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(user.as_bytes())
        .chain_update([0])
        .chain_update(password.as_bytes())
        .chain_update([0])
        .chain_update(phc.as_bytes())
        .finalize()
        .into()
}

impl Gate {
    /// A gate with the throttling and verification bounds of `config`.
    pub fn new(config: &ApiConfig) -> Gate {
        let max_checks = config.max_password_checks.max(1);
        Gate {
            throttle: Throttle::new(ThrottleSettings::from(config)),
            verified: Mutex::default(),
            checks: tokio::sync::Semaphore::new(max_checks),
            max_checks,
            check_wait: Duration::from_millis(config.password_check_wait_ms),
            default_check: Mutex::default(),
            dummy: hash_password("no such user: equal work for every login").ok(),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        verified.get(key).is_some_and(|t| t.elapsed() < VERIFIED_TTL)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_MAX {
            verified.retain(|_, t| t.elapsed() < VERIFIED_TTL);
            if verified.len() >= VERIFIED_MAX {
                return;
            }
        }
        verified.insert(key, Instant::now());
    }

    /// Checks `password` against `phc` in one of the bounded verification slots, on a blocking
    /// thread; a success is remembered for a while (argon2 is deliberately slow).
    async fn password_matches(&self, user: &str, password: &str, phc: &str) -> Result<bool, Denied> {
        let key = cache_key(user, password, phc);
        if self.cached(&key) {
            return Ok(true);
        }
        let busy = || Denied::Busy { limit: "api.max_password_checks", max: self.max_checks };
        let _permit = tokio::time::timeout(self.check_wait, self.checks.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let (password, phc) = (password.to_string(), phc.to_string());
        let ok = tokio::task::spawn_blocking(move || verify(&password, &phc))
            .await
            .map_err(|e| Denied::Unavailable(format!("password verification failed: {e}")))?;
        if ok {
            self.remember(key);
        }
        Ok(ok)
    }

    /// Authenticates the caller of a request (linearizable read of the user record). Unknown users
    /// cost one verification like known ones; failures are counted, throttled and logged; callers from
    /// other hosts are refused while `admin` has its default password (OPS-01), on every route.
    pub async fn authenticate(
        &self,
        meta: &MetaNode,
        headers: &HeaderMap,
        addr: SocketAddr,
    ) -> Result<Caller, Denied> {
        let Some((login, password)) = basic_credentials(headers) else {
            return Err(Denied::Unauthenticated("HTTP Basic credentials are required".into()));
        };
        let header = match headers.get(crate::login_name::TENANT_HEADER).map(|v| v.to_str()) {
            None => None,
            Some(Ok(text)) => Some(text),
            Some(Err(_)) => {
                return Err(Denied::Unauthenticated("the X-Arca-Tenant header is not a tenant name".into()));
            }
        };
        let parsed =
            crate::login_name::parse(&login, header).map_err(|e| Denied::Unauthenticated(e.to_string()))?;
        // Throttling counts `tenant/user`, however the tenant was given.
        let name = format!("{}/{}", parsed.tenant, parsed.user);
        let ip = addr.ip();
        if let Err(b) = self.throttle.check(&name, ip, Instant::now()) {
            tracing::debug!(user = %loggable_name(&name), address = %ip, limit = b.limit, "login refused by backoff");
            return Err(Denied::Throttled { limit: b.limit, retry_after: b.retry_after });
        }
        meta.linearizable().await.map_err(|e| Denied::Unavailable(e.to_string()))?;
        // An unknown tenant is an unknown user: the same work and the same answer (nothing leaks).
        let (tenant, state, user) = meta.with_state(|s| match s.tenant(&parsed.tenant) {
            Ok(t) => (t.name.clone(), t.state, s.user(&t.name, parsed.user).ok().cloned()),
            Err(_) => (parsed.tenant.clone(), TenantState::Enabled, None),
        });
        let phc = user
            .as_ref()
            .filter(|u| u.authentication == Authentication::Integrated)
            .and_then(|u| u.password_hash.clone());
        let (ok, reason) = match (&user, phc) {
            (Some(u), Some(phc)) => (
                self.password_matches(&format!("{tenant}/{}", u.name), &password, &phc).await?,
                "wrong password",
            ),
            (found, _) => {
                // Equal work for unknown users and users without a password login.
                if let Some(dummy) = self.dummy.as_deref() {
                    let _ = self.password_matches("", &password, dummy).await?;
                }
                (false, if found.is_some() { "no password login for this user" } else { "unknown user" })
            }
        };
        let user = match (ok, user) {
            (true, Some(user)) => user,
            _ => {
                self.throttle.failure(&name, ip, Instant::now());
                tracing::warn!(user = %loggable_name(&name), address = %ip, reason, "failed login");
                return Err(Denied::Unauthenticated("unknown user or wrong password".into()));
            }
        };
        self.throttle.success(&name, ip, Instant::now());
        if state == TenantState::Disabled {
            tracing::info!(user = %loggable_name(&name), address = %ip, "login refused: the tenant is disabled");
            return Err(Denied::TenantDisabled { tenant });
        }
        if let Some(refusal) = remote_refusal(ip, || self.default_admin_password_in_use(meta, &tenant)) {
            return Err(refusal);
        }
        Ok(Caller { tenant, user, addr })
    }

    /// Authenticates an administrator.
    pub async fn admin(
        &self,
        meta: &MetaNode,
        headers: &HeaderMap,
        addr: SocketAddr,
    ) -> Result<Caller, Denied> {
        let caller = self.authenticate(meta, headers, addr).await?;
        if !caller.user.is_admin() {
            return Err(Denied::Forbidden(format!(
                "user '{}' is not an administrator; the Administration API needs the privilege 'admin'",
                caller.user.name
            )));
        }
        Ok(caller)
    }

    /// Authenticates a cluster operator: an administrator of the operator tenant `default` (CLU-04).
    /// Tenant management and cluster membership need one; administrators of other tenants manage
    /// their own tenant only.
    pub async fn operator(
        &self,
        meta: &MetaNode,
        headers: &HeaderMap,
        addr: SocketAddr,
    ) -> Result<Caller, Denied> {
        let caller = self.admin(meta, headers, addr).await?;
        operator_only(&caller)?;
        Ok(caller)
    }

    /// True while the user `admin` can still log in with the password `admin`. Verifies once per
    /// stored hash: the answer is remembered until `admin`'s hash changes.
    pub fn default_admin_password_in_use(&self, meta: &MetaNode, tenant: &str) -> bool {
        let name = DEFAULT_ADMIN.0;
        let hash = meta.with_state(|s| s.user(tenant, name).ok().and_then(|u| u.password_hash.clone()));
        hash.is_some_and(|phc| self.is_default_hash(phc))
    }

    /// True when `phc` is a hash of the default password; remembered per hash (at most
    /// [`DEFAULT_CHECKS_MAX`], then forgotten all at once).
    fn is_default_hash(&self, phc: String) -> bool {
        if let Some(known) = self.default_check.lock().unwrap_or_else(|p| p.into_inner()).get(&phc) {
            return *known;
        }
        let is_default = verify(DEFAULT_ADMIN.1, &phc);
        let mut known = self.default_check.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= DEFAULT_CHECKS_MAX {
            known.clear();
        }
        known.insert(phc, is_default);
        is_default
    }

    /// Checks `password` as `caller`'s own password again (CMP-01: changing archive access needs it),
    /// always with argon2 (not from the cache); a wrong one counts as a failed login.
    pub async fn confirm_password(&self, caller: &Caller, password: &str) -> Result<(), Denied> {
        let wrong = || Denied::Forbidden(format!("the password given for '{}' is wrong", caller.user.name));
        let Some(phc) = caller.user.password_hash.clone() else { return Err(wrong()) };
        let busy = || Denied::Busy { limit: "api.max_password_checks", max: self.max_checks };
        let _permit = tokio::time::timeout(self.check_wait, self.checks.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let given = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify(&given, &phc))
            .await
            .map_err(|e| Denied::Unavailable(format!("password verification failed: {e}")))?;
        if !ok {
            let ip = caller.addr.ip();
            self.throttle.failure(&caller.owner(), ip, Instant::now());
            tracing::warn!(user = %loggable_name(&caller.user.name), address = %ip, reason = "wrong confirmation password", "failed login");
            return Err(wrong());
        }
        Ok(())
    }
}

/// An archive a caller may use, with the caller's privileges on it.
#[derive(Debug, Clone)]
pub struct ArchiveAccess {
    pub id: arca_types::ArchiveId,
    pub name: String,
    pub privileges: std::collections::BTreeSet<arca_types::values::FolderPrivilege>,
}

impl Gate {
    /// Authenticates a user who may log on (privilege `login`, or an administrator).
    pub async fn user(
        &self,
        meta: &MetaNode,
        headers: &HeaderMap,
        addr: SocketAddr,
    ) -> Result<Caller, Denied> {
        let caller = self.authenticate(meta, headers, addr).await?;
        let p = &caller.user.privileges;
        if !p.contains(&arca_types::values::Privilege::Login) && !caller.user.is_admin() {
            return Err(Denied::Forbidden(format!("user '{}' has no privilege 'login'", caller.user.name)));
        }
        Ok(caller)
    }

    /// The archives `caller` may use with its privileges on each (ADM-04, CMP-01); read after
    /// [`Gate::authenticate`], whose linearizable read this relies on.
    pub fn archives(&self, meta: &MetaNode, caller: &Caller) -> Vec<ArchiveAccess> {
        meta.with_state(|s| {
            s.tenant(&caller.tenant).map(|t| archives_of(t, &caller.user)).unwrap_or_default()
        })
    }

    /// True when `caller` may read the content of the archive `id` (messages, folders, sizes).
    pub fn may_read(&self, meta: &MetaNode, caller: &Caller, id: arca_types::ArchiveId) -> bool {
        self.archives(meta, caller)
            .iter()
            .any(|a| a.id == id && a.privileges.contains(&FolderPrivilege::Read))
    }

    /// Refuses a bulk export to a caller without the privilege `export` (ADM-03, EXP-06); single
    /// messages need no special right. Administrators export what they may read (CMP-01).
    pub fn may_export(&self, caller: &Caller) -> Result<(), Denied> {
        if caller.user.is_admin() || caller.user.privileges.contains(&Privilege::Export) {
            return Ok(());
        }
        Err(Denied::Forbidden(format!(
            "user '{}' has no privilege 'export', which exporting several messages at once needs (EXP-06)",
            caller.user.name
        )))
    }

    /// The archive named `name` if `caller` may `want` in it. Administrators may archive into any
    /// archive (ADM-03) and read as CMP-01 allows; other users archive only with the global privilege
    /// `archive` and `write` on the archive (ADM-03, ADM-04).
    pub fn archive_for(
        &self,
        meta: &MetaNode,
        caller: &Caller,
        name: &str,
        want: FolderPrivilege,
    ) -> Result<ArchiveAccess, Denied> {
        let granted = self.archives(meta, caller).into_iter().find(|a| a.name.eq_ignore_ascii_case(name));
        let user = &caller.user;
        match granted {
            Some(a) if a.privileges.contains(&want) => {
                if want == FolderPrivilege::Write
                    && !user.is_admin()
                    && !user.privileges.contains(&Privilege::Archive)
                {
                    return Err(Denied::Forbidden(format!(
                        "user '{}' has no privilege 'archive', which archiving into '{}' needs besides 'write' (ADM-03)",
                        user.name, a.name
                    )));
                }
                return Ok(a);
            }
            _ => {}
        }
        if want == FolderPrivilege::Write && user.is_admin() {
            let archive =
                meta.with_state(|s| s.archive_by_name(&caller.tenant, name).map(|a| (a.id, a.name.clone())));
            if let Ok((id, name)) = archive {
                return Ok(ArchiveAccess { id, name, privileges: [want].into() });
            }
        }
        // Same answer whether the archive does not exist or is not granted: nothing leaks (invariant 6).
        Err(Denied::Forbidden(format!("no archive '{name}' that user '{}' may {want} in", user.name)))
    }
}

/// The one rule of archive access (ADM-04, CMP-01): users have their folder grants; administrators
/// have their grants on their own archive and, only while archive access is not blocked, `read` and
/// `write` on every archive of the tenant. Grants an administrator holds on other archives count for
/// nothing while access is blocked.
pub fn archives_of(t: &arca_types::records::Tenant, user: &User) -> Vec<ArchiveAccess> {
    let grants = t.grants.get(&user.id);
    let granted = |id: &arca_types::ArchiveId| grants.and_then(|g| g.get(id)).cloned().unwrap_or_default();
    let access = |a: &arca_types::records::Archive, privileges| ArchiveAccess {
        id: a.id,
        name: a.name.clone(),
        privileges,
    };
    if !user.is_admin() {
        return t
            .archives
            .values()
            .filter(|a| !granted(&a.id).is_empty())
            .map(|a| access(a, granted(&a.id)))
            .collect();
    }
    if t.compliance.admin_email_preview_enabled {
        return t
            .archives
            .values()
            .map(|a| {
                let mut p = granted(&a.id);
                p.extend([FolderPrivilege::Read, FolderPrivilege::Write]);
                access(a, p)
            })
            .collect();
    }
    t.archives
        .values()
        .filter(|a| a.id == user.archive && !granted(&a.id).is_empty())
        .map(|a| access(a, granted(&a.id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parses_and_loopback_is_recognised() {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, "Basic YWRtaW46UGFzc3cwcmQ=".parse().expect("header"));
        assert_eq!(basic_credentials(&h), Some(("admin".into(), "Passw0rd".into())));
        assert!(is_loopback("127.9.9.9".parse().expect("ip")));
        assert!(is_loopback("::1".parse().expect("ip")));
        assert!(is_loopback("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!is_loopback("10.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn other_hosts_are_refused_only_while_the_default_password_holds() {
        let remote: IpAddr = "192.0.2.7".parse().expect("ip");
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        let refusal = remote_refusal(remote, || true).expect("refused").to_string();
        assert!(refusal.contains("default password"), "{refusal}");
        assert!(remote_refusal(remote, || false).is_none());
        assert!(remote_refusal(local, || true).is_none());
    }

    #[test]
    fn hashed_password_verifies_and_wrong_one_does_not() {
        let phc = hash_password("Sommer2024!x").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("Sommer2024!x", &phc));
        assert!(!verify("sommer2024!x", &phc));
    }

    #[tokio::test]
    async fn verifications_beyond_the_bound_wait_then_are_refused_naming_the_limit() {
        let config = ApiConfig { max_password_checks: 1, password_check_wait_ms: 50, ..ApiConfig::default() };
        let gate = Gate::new(&config);
        let phc = hash_password("Sommer2024!x").expect("hash");
        assert!(gate.password_matches("u", "Sommer2024!x", &phc).await.expect("verified"));
        let held = gate.checks.acquire().await.expect("slot");
        let started = Instant::now();
        match gate.password_matches("u", "wrong password", &phc).await {
            Err(Denied::Busy { limit, max }) => assert_eq!((limit, max), ("api.max_password_checks", 1)),
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(50), "it waited for a slot first");
        let fast = Instant::now();
        assert!(
            gate.password_matches("u", "Sommer2024!x", &phc).await.expect("cached"),
            "a verified password needs no slot"
        );
        assert!(fast.elapsed() < Duration::from_millis(5), "{:?}", fast.elapsed());
        drop(held);
        assert!(!gate.password_matches("u", "wrong password", &phc).await.expect("a slot is free again"));
    }

    #[test]
    fn the_default_password_check_verifies_once_per_stored_hash() {
        let gate = Gate::default();
        let changed = hash_password("Sommer2024!x").expect("hash");
        let default = hash_password("admin").expect("hash");
        assert!(!gate.is_default_hash(changed.clone()));
        let again = Instant::now();
        for _ in 0..100 {
            assert!(!gate.is_default_hash(changed.clone()));
        }
        // 100 argon2 verifications would take seconds; remembered answers take microseconds.
        assert!(again.elapsed() < Duration::from_millis(100), "{:?}", again.elapsed());
        assert!(gate.is_default_hash(default), "a new hash is verified again");
    }

    #[test]
    fn log_lines_get_user_names_without_control_characters_and_bounded() {
        assert_eq!(loggable_name("eve\nINFO forged"), "eve\\nINFO forged");
        assert_eq!(loggable_name(&"x".repeat(100)), format!("{}...", "x".repeat(64)));
    }

    fn tenant_with(preview: bool) -> (arca_types::records::Tenant, User, User) {
        use arca_types::records::{Archive, Compliance, Tenant};
        let user = |id: u64, name: &str, privileges: &[Privilege], archive: u64| User {
            id,
            name: name.into(),
            full_name: None,
            authentication: Authentication::Integrated,
            password_hash: None,
            privileges: privileges.iter().copied().collect(),
            distinguished_name: None,
            email_addresses: vec![],
            pop3_user_names: vec![],
            archive,
        };
        let admin = user(1, "admin", &[Privilege::Admin], 10);
        let alice = user(2, "alice", &[Privilege::Login], 20);
        let mut t =
            Tenant { compliance: Compliance { admin_email_preview_enabled: preview }, ..Tenant::default() };
        for (id, name, owner) in [(10, "admin", 1), (20, "alice", 2)] {
            t.archives.insert(
                id,
                Archive { id, name: name.into(), owner: Some(owner), folders: Default::default() },
            );
        }
        let rw: std::collections::BTreeSet<_> = [FolderPrivilege::Read, FolderPrivilege::Write].into();
        t.grants.entry(1).or_default().insert(10, rw.clone());
        // A grant made while access was unblocked, or before this rule existed.
        t.grants.entry(1).or_default().insert(20, [FolderPrivilege::Read].into());
        t.grants.entry(2).or_default().insert(20, rw);
        (t, admin, alice)
    }

    #[test]
    fn administrators_read_only_their_own_archive_while_archive_access_is_blocked() {
        let (t, admin, alice) = tenant_with(false);
        let names = |list: Vec<ArchiveAccess>| list.into_iter().map(|a| a.name).collect::<Vec<_>>();
        assert_eq!(names(archives_of(&t, &admin)), ["admin"], "alice's archive is hidden despite a grant");
        assert_eq!(names(archives_of(&t, &alice)), ["alice"]);
        let (t, admin, _) = tenant_with(true);
        let all = archives_of(&t, &admin);
        assert_eq!(names(all.clone()), ["admin", "alice"]);
        assert!(all.iter().all(|a| a.privileges.contains(&FolderPrivilege::Read)));
    }
}
