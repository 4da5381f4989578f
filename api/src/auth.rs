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
use arca_types::records::{DEFAULT_TENANT, User};
use arca_types::values::Authentication;

/// Name and password of the administrator created on first start (OPS-06).
pub const DEFAULT_ADMIN: (&str, &str) = ("admin", "admin");
/// Failed logins from one address within [`THROTTLE_WINDOW`] before further attempts are refused.
const THROTTLE_FAILURES: u32 = 10;
const THROTTLE_WINDOW: Duration = Duration::from_secs(60);
/// How long a verified password stays verified (it is re-checked whenever the stored hash changes).
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// A caller whose credentials were checked.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    pub user: User,
    pub addr: SocketAddr,
}

/// Why a request was not let through.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// No or wrong credentials: HTTP 401 with a Basic challenge.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Too many failed logins from this address: HTTP 429.
    #[error("too many failed logins from {0}; try again in a minute")]
    Throttled(IpAddr),
    /// Authenticated, but not allowed: an error envelope.
    #[error("{0}")]
    Forbidden(String),
    /// The metadata cluster could not answer.
    #[error("{0}")]
    Unavailable(String),
}

/// State of the gate: throttling counters and the cache of verified passwords.
#[derive(Debug, Default)]
pub struct Gate {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

/// Hashes a password with argon2id for storage.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Hashes a password with argon2id under a salt derived from `seed` (a client's `Idempotency-Key`), so
/// that a retried request carries the same hash and is recognised as the same request, while the same
/// key with another password is a different one.
pub fn hash_password_seeded(password: &str, seed: &str) -> Result<String, String> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("arca/password-salt/v1\0{seed}").as_bytes());
    let salt = SaltString::encode_b64(&digest[..16]).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
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

impl Gate {
    fn throttled(&self, ip: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .get(&ip)
            .is_some_and(|(n, since)| *n >= THROTTLE_FAILURES && since.elapsed() < THROTTLE_WINDOW)
    }

    fn record_failure(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= THROTTLE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Checks `password` against `phc`, remembering a success for a while (argon2 is deliberately slow).
    fn password_matches(&self, user: &str, password: &str, phc: &str) -> bool {
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(phc.as_bytes())
            .finalize()
            .into();
        {
            let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.get(&key).is_some_and(|t| t.elapsed() < VERIFIED_TTL) {
                return true;
            }
        }
        let ok = verify(password, phc);
        if ok {
            let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.len() > 10_000 {
                verified.retain(|_, t| t.elapsed() < VERIFIED_TTL);
            }
            verified.insert(key, Instant::now());
        }
        ok
    }

    /// Authenticates the caller of a request (linearizable read of the user record).
    pub async fn authenticate(
        &self,
        meta: &MetaNode,
        headers: &HeaderMap,
        addr: SocketAddr,
    ) -> Result<Caller, Denied> {
        if self.throttled(addr.ip()) {
            return Err(Denied::Throttled(addr.ip()));
        }
        let Some((name, password)) = basic_credentials(headers) else {
            return Err(Denied::Unauthenticated("HTTP Basic credentials are required".into()));
        };
        meta.linearizable().await.map_err(|e| Denied::Unavailable(e.to_string()))?;
        let tenant = DEFAULT_TENANT.to_string();
        let user = meta.with_state(|s| s.user(&tenant, &name).ok().cloned());
        let ok = match &user {
            Some(u) if u.authentication == Authentication::Integrated => {
                u.password_hash.as_deref().is_some_and(|phc| self.password_matches(&u.name, &password, phc))
            }
            _ => false,
        };
        match (ok, user) {
            (true, Some(user)) => Ok(Caller { tenant, user, addr }),
            _ => {
                self.record_failure(addr.ip());
                Err(Denied::Unauthenticated("unknown user or wrong password".into()))
            }
        }
    }

    /// Authenticates an administrator and applies the default-password rule for non-loopback callers.
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
        if let Some(refusal) =
            remote_refusal(addr.ip(), || self.default_admin_password_in_use(meta, &caller.tenant))
        {
            return Err(refusal);
        }
        Ok(caller)
    }

    /// True while the user `admin` can still log in with the password `admin`.
    pub fn default_admin_password_in_use(&self, meta: &MetaNode, tenant: &str) -> bool {
        let (name, password) = DEFAULT_ADMIN;
        let hash = meta.with_state(|s| s.user(tenant, name).ok().and_then(|u| u.password_hash.clone()));
        hash.is_some_and(|phc| self.password_matches(name, password, &phc))
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

    /// The archives `caller` holds folder privileges on (ADM-04); read after [`Gate::authenticate`],
    /// whose linearizable read this relies on.
    pub fn archives(&self, meta: &MetaNode, caller: &Caller) -> Vec<ArchiveAccess> {
        meta.with_state(|s| {
            let Ok(t) = s.tenant(&caller.tenant) else { return Vec::new() };
            t.grants
                .get(&caller.user.id)
                .into_iter()
                .flatten()
                .filter_map(|(id, privileges)| {
                    t.archives.get(id).map(|a| ArchiveAccess {
                        id: *id,
                        name: a.name.clone(),
                        privileges: privileges.clone(),
                    })
                })
                .collect()
        })
    }

    /// The archive named `name` if `caller` may `want` in it; administrators may archive into any
    /// archive (ADM-03) but read only where granted (CMP-01: archive access blocked by default).
    pub fn archive_for(
        &self,
        meta: &MetaNode,
        caller: &Caller,
        name: &str,
        want: arca_types::values::FolderPrivilege,
    ) -> Result<ArchiveAccess, Denied> {
        let granted = self.archives(meta, caller).into_iter().find(|a| a.name.eq_ignore_ascii_case(name));
        match granted {
            Some(a) if a.privileges.contains(&want) => return Ok(a),
            _ => {}
        }
        if want == arca_types::values::FolderPrivilege::Write && caller.user.is_admin() {
            let archive =
                meta.with_state(|s| s.archive_by_name(&caller.tenant, name).map(|a| (a.id, a.name.clone())));
            if let Ok((id, name)) = archive {
                return Ok(ArchiveAccess { id, name, privileges: [want].into() });
            }
        }
        // Same answer whether the archive does not exist or is not granted: nothing leaks (invariant 6).
        Err(Denied::Forbidden(format!("no archive '{name}' that user '{}' may {want} in", caller.user.name)))
    }
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
    fn repeated_failed_logins_from_one_address_are_throttled() {
        let gate = Gate::default();
        let ip: IpAddr = "127.0.0.9".parse().expect("ip");
        for _ in 0..THROTTLE_FAILURES - 1 {
            gate.record_failure(ip);
        }
        assert!(!gate.throttled(ip));
        gate.record_failure(ip);
        assert!(gate.throttled(ip));
        assert!(!gate.throttled("127.0.0.8".parse().expect("ip")), "other addresses are not affected");
    }

    #[test]
    fn hashed_password_verifies_and_wrong_one_does_not() {
        let phc = hash_password("Sommer2024!x").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        let gate = Gate::default();
        assert!(gate.password_matches("u", "Sommer2024!x", &phc));
        assert!(!gate.password_matches("u", "sommer2024!x", &phc));
    }
}
