//! The key hierarchy of DESIGN.md "Keys" and STO-04: master key -> tenant keys -> shard data keys, and a
//! recovery key that also wraps the master key.
//!
//! Every key is a random AES-256 key. A key is stored only wrapped (sealed with AES-256-GCM) by the key
//! above it, as a [`WrappedKey`] that names the kind and [`KeyId`] of both keys; the associated data of
//! the seal binds those names, so a wrapped tenant key cannot be unwrapped as a data key or be claimed by
//! another wrapping key. The master key itself lives in a key file of its own on every node
//! ([`MasterKey::expose_secret`] gives its bytes for that file) and, wrapped by the recovery key, in Raft.
//!
//! A [`KeyId`] is the first 8 bytes of `SHA-256("arca/key-id/v1\0" || kind || "\0" || key)`: it tells
//! keys apart and names them in errors and logs without revealing anything usable about the key.
//! `Debug` of a key prints its kind and id only; keys never appear in errors.
//!
//! # Recovery key
//!
//! A recovery key is typed by a person, so it is 40 characters of Crockford base32
//! (`0-9 A-Z` without `I L O U`) in 8 groups of 5, e.g. `7KQ2M-...-X4T9C`. The first 35 characters are
//! random (175 bits); the last 5 are a check: the first 25 bits of
//! `SHA-256("arca/recovery-key/check/v1\0" || the 35 characters)`, so a mistyped key is reported as such
//! instead of as a wrong key. Parsing ignores case, blanks and dashes and reads `O` as `0` and `I`/`L`
//! as `1`. The wrapping key is `SHA-256("arca/recovery-key/v1\0" || the 35 characters, upper case)`.
//! A plain hash suffices (no password KDF) because the input is 175 random bits, not a chosen password.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::crypto::KEY_LEN;
use crate::crypto::{self, NONCE_LEN};

/// What a key is for; part of its [`KeyId`] and of the associated data of every wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyKind {
    /// The cluster master key: wraps tenant keys.
    Master,
    /// A tenant key: wraps the data keys of the tenant's shards.
    Tenant,
    /// A shard's data key: seals the blocks and footers of its packs.
    Data,
    /// The recovery key, derived from its printed text: wraps the master key.
    Recovery,
}

impl KeyKind {
    /// The stable lower-case name, as in ids, associated data and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Master => "master",
            KeyKind::Tenant => "tenant",
            KeyKind::Data => "data",
            KeyKind::Recovery => "recovery",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public identifier of a key (8 bytes of a domain-separated SHA-256), shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(#[serde(with = "hex::serde")] [u8; 8]);

impl KeyId {
    /// The identifier of the key `bytes` of kind `kind`.
    fn of(kind: KeyKind, bytes: &[u8; KEY_LEN]) -> KeyId {
        let digest = Sha256::new()
            .chain_update(b"arca/key-id/v1\0")
            .chain_update(kind.as_str().as_bytes())
            .chain_update(b"\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// A key id from its 8 bytes (as stored in a pack trailer).
    pub fn from_bytes(bytes: [u8; 8]) -> KeyId {
        KeyId(bytes)
    }

    /// The 8 bytes of the id.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(s, &mut id)
            .map_err(|e| KeyError::InvalidKeyId { reason: format!("expected 16 hex digits: {e}") })?;
        Ok(KeyId(id))
    }
}

/// Why a key could not be wrapped, unwrapped or parsed. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The wrapped key names another wrapping key than the one given.
    #[error(
        "the {kind} key {id} is wrapped by the {wrapper_kind} key {wrapped_by}, not by the given key {given}"
    )]
    WrongKey { kind: KeyKind, id: KeyId, wrapper_kind: KeyKind, wrapped_by: KeyId, given: KeyId },
    /// The wrapped key is of another kind than asked for.
    #[error("expected a wrapped {expected} key, found the wrapped {found} key {id}")]
    KindMismatch { expected: KeyKind, found: KeyKind, id: KeyId },
    /// The wrapped key failed authentication or has the wrong shape: damaged or altered.
    #[error("the wrapped {kind} key {id} is damaged or was altered: {reason}")]
    Damaged { kind: KeyKind, id: KeyId, reason: &'static str },
    /// AES-GCM refused to seal (cannot happen for 32-byte keys; reported rather than panicking).
    #[error("could not wrap the {kind} key {id}")]
    SealFailed { kind: KeyKind, id: KeyId },
    /// The text given as a recovery key is not one.
    #[error("invalid recovery key: {reason}")]
    InvalidRecoveryKey { reason: String },
    /// The text given as a key id is not one.
    #[error("invalid key id: {reason}")]
    InvalidKeyId { reason: String },
}

/// A key wrapped (AES-256-GCM sealed) by another key; stored in Raft. Serializes with hex byte strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrappedKey {
    /// The kind of the wrapped key.
    pub kind: KeyKind,
    /// The id of the wrapped key, checked after unwrapping.
    pub id: KeyId,
    /// The kind of the key that wrapped it.
    pub wrapper_kind: KeyKind,
    /// The id of the key that wrapped it.
    pub wrapped_by: KeyId,
    /// The GCM nonce, random per wrap.
    #[serde(with = "hex::serde")]
    pub nonce: [u8; NONCE_LEN],
    /// The sealed key: 32 bytes of ciphertext and the 16-byte tag.
    #[serde(with = "hex::serde")]
    pub ciphertext: Vec<u8>,
}

/// The associated data of a wrap: both kinds and both ids.
fn wrap_aad(kind: KeyKind, id: KeyId, wrapper_kind: KeyKind, wrapper_id: KeyId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(b"arca/wrap/v1\0");
    aad.extend_from_slice(kind.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(&id.0);
    aad.extend_from_slice(wrapper_kind.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(&wrapper_id.0);
    aad
}

/// The secret and id shared by every key type.
#[derive(Clone)]
struct Secret {
    bytes: [u8; KEY_LEN],
    id: KeyId,
}

impl Secret {
    fn new(kind: KeyKind, bytes: [u8; KEY_LEN]) -> Secret {
        Secret { id: KeyId::of(kind, &bytes), bytes }
    }

    fn random(kind: KeyKind) -> Secret {
        let mut bytes = [0u8; KEY_LEN];
        crypto::random_bytes(&mut bytes);
        Secret::new(kind, bytes)
    }

    /// Wraps `inner` (of kind `kind`) under this secret (of kind `own`).
    fn wrap(&self, own: KeyKind, kind: KeyKind, inner: &Secret) -> Result<WrappedKey, KeyError> {
        let aad = wrap_aad(kind, inner.id, own, self.id);
        let mut sealed = Vec::with_capacity(KEY_LEN + crypto::SEAL_OVERHEAD);
        crypto::seal_into(&self.bytes, &aad, inner.bytes.to_vec(), &mut sealed)
            .map_err(|_| KeyError::SealFailed { kind, id: inner.id })?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[..NONCE_LEN]);
        Ok(WrappedKey {
            kind,
            id: inner.id,
            wrapper_kind: own,
            wrapped_by: self.id,
            nonce,
            ciphertext: sealed[NONCE_LEN..].to_vec(),
        })
    }

    /// Unwraps `wrapped`, which must be a key of kind `kind` wrapped by this secret (of kind `own`).
    fn unwrap(&self, own: KeyKind, kind: KeyKind, wrapped: &WrappedKey) -> Result<Secret, KeyError> {
        if wrapped.kind != kind {
            return Err(KeyError::KindMismatch { expected: kind, found: wrapped.kind, id: wrapped.id });
        }
        if wrapped.wrapped_by != self.id || wrapped.wrapper_kind != own {
            return Err(KeyError::WrongKey {
                kind,
                id: wrapped.id,
                wrapper_kind: wrapped.wrapper_kind,
                wrapped_by: wrapped.wrapped_by,
                given: self.id,
            });
        }
        let damaged = |reason| KeyError::Damaged { kind, id: wrapped.id, reason };
        let aad = wrap_aad(kind, wrapped.id, own, self.id);
        let mut sealed = Vec::with_capacity(NONCE_LEN + wrapped.ciphertext.len());
        sealed.extend_from_slice(&wrapped.nonce);
        sealed.extend_from_slice(&wrapped.ciphertext);
        let plain = crypto::open(&self.bytes, &aad, &sealed).map_err(|_| damaged("authentication failed"))?;
        let bytes: [u8; KEY_LEN] = plain.try_into().map_err(|_| damaged("not a 32-byte key"))?;
        let secret = Secret::new(kind, bytes);
        if secret.id != wrapped.id {
            return Err(damaged("key id does not match"));
        }
        Ok(secret)
    }
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Secret);

        impl $name {
            /// A fresh random key from the operating system's random source.
            pub fn generate() -> Self {
                $name(Secret::random($kind))
            }

            /// The key with these 32 bytes.
            pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
                $name(Secret::new($kind, bytes))
            }

            /// The key's public identifier.
            pub fn id(&self) -> KeyId {
                self.0.id
            }

            /// The raw key, for sealing inside this crate.
            #[allow(dead_code)]
            pub(crate) fn secret(&self) -> &[u8; KEY_LEN] {
                &self.0.bytes
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.id)
            }
        }
    };
}

key_type!(
    /// The cluster master key: kept in a key file on every node; wraps tenant keys.
    MasterKey,
    KeyKind::Master
);
key_type!(
    /// A tenant's key: wrapped by the master key; wraps the data keys of the tenant's shards.
    TenantKey,
    KeyKind::Tenant
);
key_type!(
    /// A shard's data key: wrapped by its tenant key; seals the blocks and footers of the shard's packs.
    DataKey,
    KeyKind::Data
);

impl MasterKey {
    /// The key's 32 bytes, only for writing the node's key file (mode 0600). Never log them.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0.bytes
    }

    /// Wraps a tenant key under this master key.
    pub fn wrap_tenant_key(&self, key: &TenantKey) -> Result<WrappedKey, KeyError> {
        self.0.wrap(KeyKind::Master, KeyKind::Tenant, &key.0)
    }

    /// Unwraps a tenant key wrapped by this master key.
    pub fn unwrap_tenant_key(&self, wrapped: &WrappedKey) -> Result<TenantKey, KeyError> {
        self.0.unwrap(KeyKind::Master, KeyKind::Tenant, wrapped).map(TenantKey)
    }
}

impl TenantKey {
    /// Wraps a shard's data key under this tenant key.
    pub fn wrap_data_key(&self, key: &DataKey) -> Result<WrappedKey, KeyError> {
        self.0.wrap(KeyKind::Tenant, KeyKind::Data, &key.0)
    }

    /// Unwraps a shard's data key wrapped by this tenant key.
    pub fn unwrap_data_key(&self, wrapped: &WrappedKey) -> Result<DataKey, KeyError> {
        self.0.unwrap(KeyKind::Tenant, KeyKind::Data, wrapped).map(DataKey)
    }
}

/// Crockford base32 alphabet: digits and upper-case letters without I, L, O, U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random characters of a recovery key.
const RECOVERY_DATA_CHARS: usize = 35;
/// Check characters of a recovery key.
const RECOVERY_CHECK_CHARS: usize = 5;
/// Characters per printed group.
const RECOVERY_GROUP: usize = 5;

/// The check characters for the 35 data characters `data` (upper-case ASCII).
fn recovery_check(data: &[u8]) -> [u8; RECOVERY_CHECK_CHARS] {
    let digest = Sha256::new().chain_update(b"arca/recovery-key/check/v1\0").chain_update(data).finalize();
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let mut out = [0u8; RECOVERY_CHECK_CHARS];
    for (i, c) in out.iter_mut().enumerate() {
        *c = ALPHABET[((bits >> (27 - 5 * i)) & 31) as usize];
    }
    out
}

/// The cluster recovery key (STO-04, OPS-09): printed once, never stored; wraps the master key.
#[derive(Clone)]
pub struct RecoveryKey {
    /// The 40 canonical characters (data and check), without dashes.
    text: String,
    secret: Secret,
}

impl RecoveryKey {
    /// A fresh random recovery key.
    pub fn generate() -> RecoveryKey {
        let mut random = [0u8; RECOVERY_DATA_CHARS];
        crypto::random_bytes(&mut random);
        // 256 is a multiple of 32, so the low five bits of a random byte are uniform.
        let data: Vec<u8> = random.iter().map(|b| ALPHABET[(b & 31) as usize]).collect();
        RecoveryKey::from_data(&data)
    }

    /// Builds the key from its 35 validated data characters.
    fn from_data(data: &[u8]) -> RecoveryKey {
        let digest = Sha256::new().chain_update(b"arca/recovery-key/v1\0").chain_update(data).finalize();
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&digest);
        let mut text: String = data.iter().map(|&b| b as char).collect();
        text.extend(recovery_check(data).iter().map(|&b| b as char));
        RecoveryKey { text, secret: Secret::new(KeyKind::Recovery, bytes) }
    }

    /// Parses a recovery key as a person types it: case, blanks and dashes do not matter, `O` reads as
    /// `0`, `I` and `L` as `1`. A mistyped key fails its check group.
    pub fn parse(input: &str) -> Result<RecoveryKey, KeyError> {
        let invalid = |reason: String| KeyError::InvalidRecoveryKey { reason };
        let mut chars = Vec::with_capacity(RECOVERY_DATA_CHARS + RECOVERY_CHECK_CHARS);
        for (pos, c) in input.chars().enumerate() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(invalid(format!("character {} is not a recovery-key character", pos + 1)));
            }
            if chars.len() == RECOVERY_DATA_CHARS + RECOVERY_CHECK_CHARS {
                return Err(invalid("it has more than 40 characters".into()));
            }
            chars.push(c as u8);
        }
        if chars.len() != RECOVERY_DATA_CHARS + RECOVERY_CHECK_CHARS {
            return Err(invalid(format!("it has {} characters, expected 40", chars.len())));
        }
        let (data, check) = chars.split_at(RECOVERY_DATA_CHARS);
        if recovery_check(data) != check {
            return Err(invalid("the check group does not match: a character is mistyped".into()));
        }
        Ok(RecoveryKey::from_data(data))
    }

    /// The identifier shown whenever the key is asked for.
    pub fn id(&self) -> KeyId {
        self.secret.id
    }

    /// The key as printed once for the operator: 8 groups of 5 characters joined by dashes.
    pub fn reveal(&self) -> String {
        let chars: Vec<char> = self.text.chars().collect();
        let groups: Vec<String> = chars.chunks(RECOVERY_GROUP).map(|g| g.iter().collect()).collect();
        groups.join("-")
    }

    /// Wraps the master key under this recovery key.
    pub fn wrap_master_key(&self, key: &MasterKey) -> Result<WrappedKey, KeyError> {
        self.secret.wrap(KeyKind::Recovery, KeyKind::Master, &key.0)
    }

    /// Unwraps a master key wrapped by this recovery key.
    pub fn unwrap_master_key(&self, wrapped: &WrappedKey) -> Result<MasterKey, KeyError> {
        self.secret.unwrap(KeyKind::Recovery, KeyKind::Master, wrapped).map(MasterKey)
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryKey({})", self.secret.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_round_trips_through_serialized_wrapped_keys() {
        let master = MasterKey::generate();
        let tenant = TenantKey::generate();
        let data = DataKey::generate();
        let wrapped_tenant = master.wrap_tenant_key(&tenant).unwrap();
        let wrapped_data = tenant.wrap_data_key(&data).unwrap();
        let json = serde_json::to_string(&wrapped_data).unwrap();
        let back: WrappedKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, wrapped_data);

        let tenant2 = master.unwrap_tenant_key(&wrapped_tenant).unwrap();
        let data2 = tenant2.unwrap_data_key(&back).unwrap();
        assert_eq!(tenant2.id(), tenant.id());
        assert_eq!(data2.secret(), data.secret());
        assert_eq!(wrapped_data.wrapped_by, tenant.id());
        assert_eq!(wrapped_data.id, data.id());
    }

    #[test]
    fn wrapped_key_serializes_as_hex_without_key_bytes() {
        let tenant = TenantKey::from_bytes([0xAB; KEY_LEN]);
        let data = DataKey::from_bytes([0xCD; KEY_LEN]);
        let wrapped = tenant.wrap_data_key(&data).unwrap();
        let json = serde_json::to_value(&wrapped).unwrap();
        assert_eq!(json["kind"], "data");
        assert_eq!(json["wrapperKind"], "tenant");
        assert_eq!(json["wrappedBy"], tenant.id().to_string());
        assert_eq!(json["nonce"].as_str().unwrap().len(), 24);
        assert_eq!(json["ciphertext"].as_str().unwrap().len(), 96);
        assert!(!json.to_string().contains(&"cd".repeat(8)));
    }

    #[test]
    fn wrong_wrapping_key_fails_with_a_typed_error() {
        let master = MasterKey::generate();
        let other = MasterKey::generate();
        let wrapped = master.wrap_tenant_key(&TenantKey::generate()).unwrap();
        match other.unwrap_tenant_key(&wrapped) {
            Err(KeyError::WrongKey { wrapped_by, given, .. }) => {
                assert_eq!(wrapped_by, master.id());
                assert_eq!(given, other.id());
            }
            r => panic!("expected WrongKey, got {r:?}"),
        }
        // Claiming the other key's id does not help: the seal does not open.
        let mut forged = wrapped.clone();
        forged.wrapped_by = other.id();
        assert!(matches!(other.unwrap_tenant_key(&forged), Err(KeyError::Damaged { .. })));
    }

    #[test]
    fn altered_wrapped_key_is_reported_damaged() {
        let tenant = TenantKey::generate();
        let mut wrapped = tenant.wrap_data_key(&DataKey::generate()).unwrap();
        wrapped.ciphertext[3] ^= 1;
        let err = tenant.unwrap_data_key(&wrapped).unwrap_err();
        assert!(matches!(err, KeyError::Damaged { kind: KeyKind::Data, .. }), "{err}");
        let mut short = tenant.wrap_data_key(&DataKey::generate()).unwrap();
        short.ciphertext.truncate(5);
        assert!(matches!(tenant.unwrap_data_key(&short), Err(KeyError::Damaged { .. })));
    }

    #[test]
    fn wrapped_key_of_another_kind_is_refused() {
        let master = MasterKey::generate();
        let recovery = RecoveryKey::generate();
        let wrapped_master = recovery.wrap_master_key(&master).unwrap();
        let tenant = TenantKey::generate();
        let err = tenant.unwrap_data_key(&wrapped_master).unwrap_err();
        assert!(matches!(
            err,
            KeyError::KindMismatch { expected: KeyKind::Data, found: KeyKind::Master, .. }
        ));
        // Relabelling the kind does not help either: the kind is bound into the seal.
        let mut relabelled = master.wrap_tenant_key(&tenant).unwrap();
        relabelled.kind = KeyKind::Data;
        relabelled.wrapper_kind = KeyKind::Tenant;
        let as_tenant = TenantKey::from_bytes(*master.expose_secret());
        relabelled.wrapped_by = as_tenant.id();
        assert!(matches!(as_tenant.unwrap_data_key(&relabelled), Err(KeyError::Damaged { .. })));
    }

    #[test]
    fn debug_shows_kind_and_id_but_no_key_bytes() {
        let bytes = [0x5A; KEY_LEN];
        let master = MasterKey::from_bytes(bytes);
        let tenant = TenantKey::from_bytes(bytes);
        let data = DataKey::from_bytes(bytes);
        let recovery = RecoveryKey::generate();
        for (debug, expected) in [
            (format!("{master:?}"), format!("MasterKey({})", master.id())),
            (format!("{tenant:?}"), format!("TenantKey({})", tenant.id())),
            (format!("{data:?}"), format!("DataKey({})", data.id())),
            (format!("{recovery:?}"), format!("RecoveryKey({})", recovery.id())),
        ] {
            assert_eq!(debug, expected);
        }
        assert!(!format!("{recovery:?}").contains(&recovery.reveal()[..5]));
        // The same bytes as different kinds have different ids.
        assert_ne!(master.id(), tenant.id());
    }

    #[test]
    fn recovery_key_round_trips_through_its_printed_form() {
        let recovery = RecoveryKey::generate();
        let printed = recovery.reveal();
        assert_eq!(printed.len(), 47);
        assert_eq!(printed.split('-').count(), 8);
        assert!(printed.split('-').all(|g| g.len() == 5));
        let typed = format!("  {} ", printed.to_lowercase().replace('-', " "));
        let parsed = RecoveryKey::parse(&typed).unwrap();
        assert_eq!(parsed.id(), recovery.id());
        assert_eq!(parsed.reveal(), printed);

        let master = MasterKey::generate();
        let wrapped = recovery.wrap_master_key(&master).unwrap();
        assert_eq!(parsed.unwrap_master_key(&wrapped).unwrap().expose_secret(), master.expose_secret());
        let err = RecoveryKey::generate().unwrap_master_key(&wrapped).unwrap_err();
        assert!(matches!(err, KeyError::WrongKey { kind: KeyKind::Master, .. }), "{err}");
    }

    #[test]
    fn recovery_key_reads_confusable_letters_and_rejects_typos() {
        let recovery = RecoveryKey::generate();
        let printed = recovery.reveal();
        let confused = printed.replace('0', "O").replace('1', "l");
        assert_eq!(RecoveryKey::parse(&confused).unwrap().id(), recovery.id());

        let mut chars: Vec<char> = printed.chars().collect();
        chars[2] = if chars[2] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.iter().collect();
        let err = RecoveryKey::parse(&typo).unwrap_err();
        assert!(err.to_string().contains("mistyped"), "{err}");
        assert!(!err.to_string().contains(&typo[..5]), "errors never echo the key: {err}");

        assert!(RecoveryKey::parse(&printed[..40]).is_err());
        assert!(RecoveryKey::parse(&format!("{printed}A")).is_err());
        assert!(RecoveryKey::parse(&printed.replacen(&printed[..1], "U", 1)).is_err());
    }

    #[test]
    fn key_id_parses_its_display_form() {
        let id = DataKey::generate().id();
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        assert!("xyz".parse::<KeyId>().is_err());
    }
}
