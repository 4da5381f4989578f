//! One Arca archive store (shard): its key hierarchy and its pack format. This is the pure core, with no
//! I/O: packs are byte vectors here, and the object-store layer puts and ranges them.
//!
//! # Keys ([`keys`])
//!
//! Master key -> tenant key -> shard data key, each wrapped by the one above with AES-256-GCM; a recovery
//! key (40 typed characters) also wraps the master key. See the module for derivations and ids.
//!
//! # Packs ([`pack`])
//!
//! A pack is one object, written once: consecutive messages as records, grouped into blocks of about
//! [`pack::DEFAULT_BLOCK_TARGET`] raw bytes, each block zstd-compressed as a whole and sealed with
//! AES-256-GCM under the shard's data key; then a sealed footer that maps each message number to its
//! place, then a fixed trailer. All integers are little-endian.
//!
//! | bytes | field |
//! |---|---|
//! | block frame 0, 1, … | each: header (20, clear, authenticated) + `nonce (12) \|\| ciphertext \|\| tag (16)` |
//! | sealed footer | `nonce (12) \|\| ciphertext \|\| tag (16)` |
//! | trailer (36) | see below |
//!
//! Block frame header (20 bytes): `"ARCB"`, block index u32, body length u32 (nonce + ciphertext + tag),
//! decompressed length u32 (at most [`pack::MAX_BLOCK_RAW`], 16 MiB), offset of the first record that
//! starts in the block u32 (`u32::MAX`: none, the block lies inside one large message). The ciphertext
//! is the zstd frame of the block's raw bytes; the associated data is
//! `"arca/pack/v1/block\0" || pack id (16) || header bytes 4..20`, so a block cannot be moved to another
//! position or pack, nor its header altered.
//!
//! Block plaintext (decompressed; the blocks concatenated form one stream of records):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | message number u64 |
//! | 4 | message length u32 |
//! | 4 | metadata length u32 (at most 64 KiB) |
//! | 32 | SHA-256 of the message |
//! | meta | opaque metadata of the caller (the STO-05 recovery record) |
//! | len | the message, byte for byte |
//!
//! A record that does not fit the open block starts a new block, so small messages never straddle
//! blocks; a record larger than a block continues in the next blocks, which are contiguous in the pack.
//!
//! Footer plaintext, sealed with associated data `"arca/pack/v1/footer\0" || pack id || footer offset u64`:
//!
//! | bytes | field |
//! |---|---|
//! | 16 | pack id |
//! | 4 | block count u32 |
//! | 4 | message count u32 |
//! | 8 per block | frame length u32, decompressed length u32 (offsets are the running sum from 0) |
//! | 52 per message | number u64, first block u32, offset of the message in that block's plaintext u32, length u32, SHA-256 (32) |
//!
//! Trailer (36 bytes): footer offset u64 (= end of the blocks), footer length u32 (at most 16 MiB), data
//! key id (8), format version u16 = 1, reserved u16 = 0, CRC-32 of bytes 0..24 u32, magic `"ARCAPACK"`.
//!
//! Reading a message: one suffix GET of [`pack::TAIL_GUESS`] bytes (or the trailer's `tail_len` when the
//! footer is larger) gives trailer and footer ([`pack::PackFooter::parse`]); [`pack::PackFooter::locate`]
//! names one contiguous byte range; [`pack::read_message`] opens those blocks, slices the message out and
//! checks its SHA-256 before returning it.
//!
//! The footer is sealed, not only checksummed: message sizes and SHA-256s would otherwise let anyone
//! with read access to the bucket confirm that a known message is archived. The trailer is only
//! checksummed; it reveals the footer's size and the data key's id. Because records carry their own
//! number, hash and metadata, a pack whose footer or trailer is damaged can still be read block by block
//! ([`pack::recover_records`]).

mod crypto;
pub mod identities;
pub mod index_files;
pub mod keys;
pub mod manifest;
pub mod objects;
pub mod pack;
pub mod shard;
pub mod staging;

pub use keys::{DataKey, KeyError, KeyId, KeyKind, MasterKey, RecoveryKey, TenantKey, WrappedKey};
pub use pack::{
    PackConfig, PackError, PackFooter, PackId, PackWriter, SealedPack, Trailer, VerifyReport, read_message,
    recover_records, verify_pack,
};
