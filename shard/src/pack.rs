//! The pack format of DESIGN.md "Write" and "Read": sealed, compressed blocks of messages and a sealed
//! footer that locates each message, so that one ranged GET of the tail and one of the blocks fetch a
//! message. The byte layout is documented in the crate root.
//!
//! Writing is [`PackWriter`]; reading a message is [`Trailer`] / [`PackFooter::parse`], then
//! [`PackFooter::locate`] and [`read_message`]; checking a whole pack is [`verify_pack`]; copying the
//! readable records out of a damaged pack (STO-05 `RecreateRecoveryRecords`) is [`recover_records`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::crypto::{self, SEAL_OVERHEAD};
use crate::keys::KeyId;

mod reader;
mod records;
#[cfg(test)]
mod tests;
mod verify;
mod writer;

pub use reader::{BlockInfo, FooterEntry, MessageLocation, PackFooter, Trailer, read_message};
pub use verify::{CorruptMessage, DamagedBlock, RecoveredPack, RecoveredRecord, VerifyReport};
pub use verify::{recover_records, verify_pack};
pub use writer::{PackConfig, PackWriter, SealedPack};

/// The format version written into every trailer.
pub const FORMAT_VERSION: u16 = 1;
/// The magic that ends every pack.
pub const TRAILER_MAGIC: [u8; 8] = *b"ARCAPACK";
/// The magic that starts every block frame.
pub const FRAME_MAGIC: [u8; 4] = *b"ARCB";
/// Length of the fixed trailer at the end of a pack.
pub const TRAILER_LEN: usize = 36;
/// Length of the clear (but authenticated) header of a block frame.
pub const FRAME_HEADER_LEN: usize = 20;
/// Length of the header of a record inside a block's plaintext.
pub const RECORD_HEADER_LEN: usize = 48;
/// Length of one message entry in the footer.
pub const FOOTER_ENTRY_LEN: usize = 52;
/// Length of one block entry in the footer.
pub const FOOTER_BLOCK_LEN: usize = 8;
/// Length of the fixed part of the footer plaintext (pack id and two counts).
pub const FOOTER_FIXED_LEN: usize = 24;

/// Largest decompressed block; a reader never allocates more for one block.
pub const MAX_BLOCK_RAW: usize = 16 * 1024 * 1024;
/// Largest block frame on disk: header, seal, and zstd's worst case for an incompressible block.
pub const MAX_FRAME_LEN: usize =
    FRAME_HEADER_LEN + SEAL_OVERHEAD + MAX_BLOCK_RAW + MAX_BLOCK_RAW / 128 + 65_536;
/// Largest sealed footer; a reader never allocates more for a footer.
pub const MAX_FOOTER_LEN: usize = 16 * 1024 * 1024;
/// Most messages in one pack (keeps the footer below [`MAX_FOOTER_LEN`]).
pub const MAX_PACK_MESSAGES: usize = 200_000;
/// Most blocks in one pack (keeps the footer below [`MAX_FOOTER_LEN`]).
pub const MAX_PACK_BLOCKS: usize = 200_000;
/// Largest per-message metadata blob stored in the message's record.
pub const MAX_META_LEN: usize = 64 * 1024;
/// Smallest block target a writer accepts.
pub const MIN_BLOCK_TARGET: usize = 1024;
/// Default raw size at which a block is closed: 1 MiB, the top of DESIGN's range, stores the public corpus
/// in 32.1% of its raw bytes against 33.3% with 512 KiB blocks (zstd level 3), for one ranged GET of
/// about 330 KB per fetch.
pub const DEFAULT_BLOCK_TARGET: usize = 1024 * 1024;
/// Default zstd level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// A suffix length that holds the footer of a typical pack, so one ranged GET usually suffices.
pub const TAIL_GUESS: usize = 64 * 1024;
/// `first_record` of a block in which no record starts (a block inside one large message).
pub const NO_RECORD: u32 = u32::MAX;

/// The name of a pack: 128 random bits, shown as 32 hex digits (the object key's last part).
///
/// Random rather than sequential, so that two writers of different epochs can never write the same
/// object name, and a stale writer can never overwrite a published pack.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackId(#[serde(with = "hex::serde")] [u8; 16]);

impl PackId {
    /// A fresh random pack id.
    pub fn random() -> PackId {
        let mut id = [0u8; 16];
        crypto::random_bytes(&mut id);
        PackId(id)
    }

    /// The pack id with these bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> PackId {
        PackId(bytes)
    }

    /// The 16 bytes of the id.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Display for PackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackId({self})")
    }
}

/// The text given as a pack id is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pack id '{text}': expected 32 hex digits")]
pub struct InvalidPackId {
    /// The rejected text (at most 64 characters of it).
    pub text: String,
}

impl FromStr for PackId {
    type Err = InvalidPackId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).map_err(|_| InvalidPackId { text: s.chars().take(64).collect() })?;
        Ok(PackId(id))
    }
}

/// Why a pack could not be written or read. Each variant names the pack; none contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// The writer's configuration is out of range.
    #[error("invalid pack configuration: {reason}")]
    Config { reason: String },
    /// A message was refused before anything was written; the writer stays usable.
    #[error("pack {pack}: message {number} refused: {reason}")]
    Refused { pack: PackId, number: u64, reason: String },
    /// Compressing or sealing failed while writing; the writer must be discarded.
    #[error("pack {pack}: writing failed: {reason}")]
    Write { pack: PackId, reason: String },
    /// The tail given to the reader is shorter than the trailer says the footer needs.
    #[error("pack {pack}: the last {have} bytes do not hold the footer; fetch the last {needed} bytes")]
    TailTooShort { pack: PackId, have: usize, needed: usize },
    /// The pack was sealed under another data key than the one given.
    #[error("pack {pack} is sealed with data key {sealed_with}, not with the given key {given}")]
    WrongKey { pack: PackId, sealed_with: KeyId, given: KeyId },
    /// The trailer is damaged or missing (truncated pack, or not a pack): the whole pack is affected.
    #[error("pack {pack}: trailer is damaged: {reason}")]
    Trailer { pack: PackId, reason: String },
    /// The footer is damaged: the whole pack is affected until its records are recovered.
    #[error("pack {pack}: footer is damaged: {reason}")]
    Footer { pack: PackId, reason: String },
    /// A block is damaged: every message with bytes in it is affected.
    #[error("pack {pack}: block {block} at byte {offset} is damaged: {reason}")]
    Block { pack: PackId, block: u32, offset: u64, reason: String },
    /// A message's bytes do not match its SHA-256; they are never returned.
    #[error("pack {pack}: message {number} is corrupt: {reason}")]
    Message { pack: PackId, number: u64, reason: String },
    /// The footer does not list that message.
    #[error("pack {pack} holds no message {number}")]
    NoSuchMessage { pack: PackId, number: u64 },
    /// The bytes given for a message's blocks are not the range the footer names.
    #[error("pack {pack}: message {number} needs bytes {start}..{end} ({} bytes), got {got} bytes", end - start)]
    RangeMismatch { pack: PackId, number: u64, start: u64, end: u64, got: usize },
}

/// The clear header of a block frame: `magic, index, body_len, raw_len, first_record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Position of the block in its pack, from 0.
    pub index: u32,
    /// Length of `nonce || ciphertext || tag`.
    pub body_len: u32,
    /// Length of the decompressed block.
    pub raw_len: u32,
    /// Offset in the decompressed block where the first record starts, or [`NO_RECORD`].
    pub first_record: u32,
}

impl FrameHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[..4].copy_from_slice(&FRAME_MAGIC);
        out[4..8].copy_from_slice(&self.index.to_le_bytes());
        out[8..12].copy_from_slice(&self.body_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.first_record.to_le_bytes());
        out
    }

    /// Parses and bounds-checks the header at the start of `bytes` (a frame and whatever follows it).
    pub fn parse(bytes: &[u8]) -> Result<FrameHeader, String> {
        if bytes.len() < FRAME_HEADER_LEN {
            return Err(format!("{} bytes are too short for a block header", bytes.len()));
        }
        if bytes[..4] != FRAME_MAGIC {
            return Err("block magic is missing".into());
        }
        let h = FrameHeader {
            index: le_u32(&bytes[4..8]),
            body_len: le_u32(&bytes[8..12]),
            raw_len: le_u32(&bytes[12..16]),
            first_record: le_u32(&bytes[16..20]),
        };
        let frame_len = h.frame_len();
        if (h.body_len as usize) < SEAL_OVERHEAD || frame_len > MAX_FRAME_LEN {
            return Err(format!("block length {frame_len} is outside {}..={MAX_FRAME_LEN}", min_frame_len()));
        }
        if frame_len > bytes.len() {
            return Err(format!("block length {frame_len} runs past the {} bytes available", bytes.len()));
        }
        if h.raw_len == 0 || h.raw_len as usize > MAX_BLOCK_RAW {
            return Err(format!("decompressed length {} is outside 1..={MAX_BLOCK_RAW}", h.raw_len));
        }
        if h.first_record != NO_RECORD && h.first_record >= h.raw_len {
            return Err(format!(
                "first record at {} lies past the block's {} bytes",
                h.first_record, h.raw_len
            ));
        }
        Ok(h)
    }

    /// Length of the whole frame.
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.body_len as usize
    }
}

/// Smallest possible frame: a header and an empty seal.
pub(crate) fn min_frame_len() -> usize {
    FRAME_HEADER_LEN + SEAL_OVERHEAD
}

/// Associated data of a block seal: binds pack id, block index, lengths and first record.
pub(crate) fn block_aad(pack: PackId, header: &[u8; FRAME_HEADER_LEN]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(56);
    aad.extend_from_slice(b"arca/pack/v1/block\0");
    aad.extend_from_slice(&pack.0);
    aad.extend_from_slice(&header[4..]);
    aad
}

/// Associated data of the footer seal: binds pack id and the footer's position.
pub(crate) fn footer_aad(pack: PackId, footer_offset: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(48);
    aad.extend_from_slice(b"arca/pack/v1/footer\0");
    aad.extend_from_slice(&pack.0);
    aad.extend_from_slice(&footer_offset.to_le_bytes());
    aad
}

/// Opens a frame whose header was parsed, and decompresses it into exactly `raw_len` bytes.
pub(crate) fn open_frame(
    key: &crate::keys::DataKey,
    pack: PackId,
    header: &FrameHeader,
    frame: &[u8],
) -> Result<Vec<u8>, String> {
    let frame = frame.get(..header.frame_len()).ok_or("block is cut short")?;
    let aad = block_aad(pack, &header.encode());
    let compressed = crypto::open(key.secret(), &aad, &frame[FRAME_HEADER_LEN..])
        .map_err(|_| "authentication failed (damaged, moved, or from another pack)".to_string())?;
    let raw = zstd::bulk::decompress(&compressed, header.raw_len as usize)
        .map_err(|e| format!("decompression failed: {e}"))?;
    if raw.len() != header.raw_len as usize {
        return Err(format!("decompressed to {} bytes, expected {}", raw.len(), header.raw_len));
    }
    Ok(raw)
}

/// Reads a little-endian u32 from exactly four bytes.
pub(crate) fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Reads a little-endian u64 from exactly eight bytes.
pub(crate) fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}
