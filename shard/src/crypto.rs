//! AES-256-GCM sealing shared by key wrapping and pack blocks: `nonce (12) || ciphertext || tag (16)`.
//!
//! Nonces are 96 random bits from the operating system for every seal. A data key seals a few million
//! blocks over a shard's life, far below the 2^32 seals per key at which random nonces start to risk a
//! collision (NIST SP 800-38D, 8.3).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use rand::RngCore;
use rand::rngs::OsRng;

/// Length of an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Length of a GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of a GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes a seal adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Sealing failed; AES-GCM only refuses plaintexts beyond 64 GiB, which nothing here produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealFailed;

/// Opening failed: wrong key, wrong associated data, or damaged bytes (GCM cannot tell which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFailed;

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

/// Fills `buf` from the operating system's random source.
pub fn random_bytes(buf: &mut [u8]) {
    OsRng.fill_bytes(buf);
}

/// Seals `plaintext` (consumed, encrypted in place) and appends `nonce || ciphertext || tag` to `out`.
pub fn seal_into(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    mut plaintext: Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), SealFailed> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce);
    let tag = cipher(key)
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut plaintext)
        .map_err(|_| SealFailed)?;
    out.reserve(SEAL_OVERHEAD + plaintext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&plaintext);
    out.extend_from_slice(&tag);
    Ok(())
}

/// Opens `nonce || ciphertext || tag`; allocates exactly the ciphertext's length.
pub fn open(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenFailed> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(OpenFailed);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut buf = ciphertext.to_vec();
    cipher(key)
        .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut buf, Tag::from_slice(tag))
        .map_err(|_| OpenFailed)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_only_with_the_same_key_and_associated_data() {
        let key = [7u8; KEY_LEN];
        let mut sealed = Vec::new();
        seal_into(&key, b"aad", b"hello".to_vec(), &mut sealed).unwrap();
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(open(&key, b"aad", &sealed).unwrap(), b"hello");
        assert_eq!(open(&key, b"other", &sealed), Err(OpenFailed));
        assert_eq!(open(&[8u8; KEY_LEN], b"aad", &sealed), Err(OpenFailed));
        assert_eq!(open(&key, b"aad", &sealed[..10]), Err(OpenFailed));
    }
}
