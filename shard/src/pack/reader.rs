//! Reading a pack by ranges: the trailer and footer from its tail, then one message from its blocks.

use std::fmt;
use std::ops::Range;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    FOOTER_BLOCK_LEN, FOOTER_ENTRY_LEN, FOOTER_FIXED_LEN, FORMAT_VERSION, FrameHeader, MAX_BLOCK_RAW,
    MAX_FOOTER_LEN, MAX_FRAME_LEN, PackError, PackId, TRAILER_LEN, TRAILER_MAGIC, footer_aad, le_u32, le_u64,
    min_frame_len, open_frame,
};
use crate::crypto::{self, SEAL_OVERHEAD};
use crate::keys::{DataKey, KeyId};

/// The fixed-size end of a pack: where the footer is and which data key sealed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Where the sealed footer starts (= total length of the block frames).
    pub footer_offset: u64,
    /// Length of the sealed footer.
    pub footer_len: u32,
    /// The data key the pack is sealed with.
    pub key_id: KeyId,
}

impl Trailer {
    /// Parses the trailer from the last [`TRAILER_LEN`] bytes of `tail` (the end of pack `pack`).
    pub fn parse(pack: PackId, tail: &[u8]) -> Result<Trailer, PackError> {
        let damaged = |reason: String| PackError::Trailer { pack, reason };
        let Some(start) = tail.len().checked_sub(TRAILER_LEN) else {
            return Err(PackError::TailTooShort { pack, have: tail.len(), needed: TRAILER_LEN });
        };
        let t = &tail[start..];
        if t[28..36] != TRAILER_MAGIC {
            return Err(damaged("the pack magic is missing: truncated, or not an Arca pack".into()));
        }
        if crc32fast::hash(&t[..24]) != le_u32(&t[24..28]) {
            return Err(damaged("trailer checksum mismatch".into()));
        }
        let version = u16::from_le_bytes([t[20], t[21]]);
        if version != FORMAT_VERSION || t[22..24] != [0, 0] {
            return Err(damaged(format!("unsupported pack format version {version}")));
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&t[12..20]);
        let trailer = Trailer {
            footer_offset: le_u64(&t[0..8]),
            footer_len: le_u32(&t[8..12]),
            key_id: KeyId::from_bytes(key_id),
        };
        let footer_len = trailer.footer_len as usize;
        let min = FOOTER_FIXED_LEN + SEAL_OVERHEAD;
        if !(min..=MAX_FOOTER_LEN).contains(&footer_len) {
            return Err(damaged(format!("footer length {footer_len} is outside {min}..={MAX_FOOTER_LEN}")));
        }
        if trailer.footer_offset.checked_add(trailer.tail_len() as u64).is_none() {
            return Err(damaged(format!("footer offset {} is impossible", trailer.footer_offset)));
        }
        Ok(trailer)
    }

    /// Bytes from the start of the footer to the end of the pack (footer and trailer).
    pub fn tail_len(&self) -> usize {
        self.footer_len as usize + TRAILER_LEN
    }

    /// The whole pack's length according to the trailer.
    pub fn pack_len(&self) -> u64 {
        self.footer_offset + self.tail_len() as u64
    }
}

/// Where one block is and how large it is decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlockInfo {
    /// Offset of the block frame in the pack.
    pub offset: u64,
    /// Length of the frame (header, nonce, ciphertext, tag).
    pub frame_len: u32,
    /// Length of the decompressed block.
    pub raw_len: u32,
}

/// One message of the footer: where its bytes start and its SHA-256.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FooterEntry {
    /// The message number within the shard.
    pub number: u64,
    /// The block in which the message's bytes start.
    pub block: u32,
    /// Offset of the first byte in that block's decompressed bytes.
    pub pos: u32,
    /// Length of the message; it continues into the following blocks when longer than the rest.
    pub len: u32,
    /// SHA-256 of the message bytes.
    pub sha256: [u8; 32],
}

impl fmt::Debug for FooterEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FooterEntry")
            .field("number", &self.number)
            .field("block", &self.block)
            .field("pos", &self.pos)
            .field("len", &self.len)
            .field("sha256", &hex::encode(self.sha256))
            .finish()
    }
}

/// What to fetch for one message: a contiguous byte range of the pack covering its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLocation {
    /// The message number.
    pub number: u64,
    /// First and last block holding its bytes.
    pub blocks: Range<u32>,
    /// The byte range of the pack to GET (whole frames of those blocks).
    pub range: Range<u64>,
    /// Length of the message.
    pub len: u32,
}

/// A parsed, authenticated and validated footer: the index of a pack.
#[derive(Clone, PartialEq, Eq)]
pub struct PackFooter {
    pack_id: PackId,
    key_id: KeyId,
    footer_offset: u64,
    footer_len: u32,
    blocks: Vec<BlockInfo>,
    entries: Vec<FooterEntry>,
}

impl fmt::Debug for PackFooter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackFooter")
            .field("pack_id", &self.pack_id)
            .field("key_id", &self.key_id)
            .field("blocks", &self.blocks.len())
            .field("messages", &self.entries.len())
            .field("pack_len", &self.pack_len())
            .finish()
    }
}

impl PackFooter {
    /// The footer a writer has just produced.
    pub(crate) fn from_parts(
        pack_id: PackId,
        key_id: KeyId,
        footer_offset: u64,
        footer_len: u32,
        blocks: Vec<BlockInfo>,
        entries: Vec<FooterEntry>,
    ) -> PackFooter {
        PackFooter { pack_id, key_id, footer_offset, footer_len, blocks, entries }
    }

    /// Parses the footer of pack `pack` from `tail`, the last bytes of the pack (at least
    /// [`Trailer::tail_len`]; [`super::TAIL_GUESS`] bytes usually suffice). A shorter tail yields
    /// [`PackError::TailTooShort`] with the length to fetch. Never allocates more than the footer's real
    /// length, which is capped at [`MAX_FOOTER_LEN`].
    ///
    /// The tail alone cannot show a pack cut or extended in front of its footer: a caller that knows the
    /// object's size compares it with [`PackFooter::pack_len`] ([`super::verify_pack`] does).
    pub fn parse(pack: PackId, key: &DataKey, tail: &[u8]) -> Result<PackFooter, PackError> {
        let trailer = Trailer::parse(pack, tail)?;
        let needed = trailer.tail_len();
        let Some(start) = tail.len().checked_sub(needed) else {
            return Err(PackError::TailTooShort { pack, have: tail.len(), needed });
        };
        if trailer.key_id != key.id() {
            return Err(PackError::WrongKey { pack, sealed_with: trailer.key_id, given: key.id() });
        }
        let sealed = &tail[start..tail.len() - TRAILER_LEN];
        let plain =
            crypto::open(key.secret(), &footer_aad(pack, trailer.footer_offset), sealed).map_err(|_| {
                PackError::Footer {
                    pack,
                    reason: "authentication failed (damaged, or not this pack's footer)".into(),
                }
            })?;
        decode_footer(pack, &trailer, &plain).map_err(|reason| PackError::Footer { pack, reason })
    }

    /// The pack's id.
    pub fn pack_id(&self) -> PackId {
        self.pack_id
    }

    /// The data key the pack is sealed with.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Length of the whole pack.
    pub fn pack_len(&self) -> u64 {
        self.footer_offset + self.footer_len as u64 + TRAILER_LEN as u64
    }

    /// Bytes from the footer's start to the end of the pack.
    pub fn tail_len(&self) -> usize {
        self.footer_len as usize + TRAILER_LEN
    }

    /// The blocks, in pack order.
    pub fn blocks(&self) -> &[BlockInfo] {
        &self.blocks
    }

    /// The messages, in increasing number order.
    pub fn entries(&self) -> &[FooterEntry] {
        &self.entries
    }

    /// The entry of message `number`, if the pack holds it.
    pub fn entry(&self, number: u64) -> Option<&FooterEntry> {
        self.entries.binary_search_by_key(&number, |e| e.number).ok().map(|i| &self.entries[i])
    }

    /// The blocks holding the bytes of `entry` (validated on parse, so always within the pack).
    pub(crate) fn span(&self, entry: &FooterEntry) -> Range<u32> {
        let mut block = entry.block as usize;
        let mut remaining = u64::from(entry.len);
        let mut avail = u64::from(self.blocks[block].raw_len) - u64::from(entry.pos);
        while remaining > avail && block + 1 < self.blocks.len() {
            remaining -= avail;
            block += 1;
            avail = u64::from(self.blocks[block].raw_len);
        }
        entry.block..block as u32 + 1
    }

    /// Where message `number` is: the blocks and the one byte range of the pack to fetch.
    pub fn locate(&self, number: u64) -> Result<MessageLocation, PackError> {
        let entry = self.entry(number).ok_or(PackError::NoSuchMessage { pack: self.pack_id, number })?;
        let blocks = self.span(entry);
        let first = &self.blocks[blocks.start as usize];
        let last = &self.blocks[blocks.end as usize - 1];
        Ok(MessageLocation {
            number,
            blocks,
            range: first.offset..last.offset + u64::from(last.frame_len),
            len: entry.len,
        })
    }
}

/// Decodes and validates the footer plaintext against the trailer; every count is checked against the
/// real byte length before anything is allocated.
fn decode_footer(pack: PackId, trailer: &Trailer, plain: &[u8]) -> Result<PackFooter, String> {
    if plain.len() < FOOTER_FIXED_LEN {
        return Err(format!("{} bytes are too short for a footer", plain.len()));
    }
    if plain[..16] != pack.to_bytes() {
        return Err("the footer names another pack".into());
    }
    let block_count = le_u32(&plain[16..20]) as u64;
    let message_count = le_u32(&plain[20..24]) as u64;
    let expected = FOOTER_FIXED_LEN as u64
        + block_count * FOOTER_BLOCK_LEN as u64
        + message_count * FOOTER_ENTRY_LEN as u64;
    if expected != plain.len() as u64 {
        return Err(format!(
            "{block_count} blocks and {message_count} messages need {expected} bytes, the footer has {}",
            plain.len()
        ));
    }
    let (block_bytes, entry_bytes) =
        plain[FOOTER_FIXED_LEN..].split_at(block_count as usize * FOOTER_BLOCK_LEN);

    let mut blocks = Vec::with_capacity(block_count as usize);
    let mut offset = 0u64;
    for (i, b) in block_bytes.chunks_exact(FOOTER_BLOCK_LEN).enumerate() {
        let frame_len = le_u32(&b[0..4]);
        let raw_len = le_u32(&b[4..8]);
        if !(min_frame_len()..=MAX_FRAME_LEN).contains(&(frame_len as usize)) {
            return Err(format!("block {i} has impossible length {frame_len}"));
        }
        if raw_len == 0 || raw_len as usize > MAX_BLOCK_RAW {
            return Err(format!("block {i} has impossible decompressed length {raw_len}"));
        }
        blocks.push(BlockInfo { offset, frame_len, raw_len });
        offset += u64::from(frame_len);
    }
    if offset != trailer.footer_offset {
        return Err(format!(
            "blocks end at byte {offset}, but the footer starts at {}",
            trailer.footer_offset
        ));
    }
    // Raw bytes from each block to the end, to check that every message fits in the blocks.
    let mut raw_from = vec![0u64; blocks.len() + 1];
    for i in (0..blocks.len()).rev() {
        raw_from[i] = raw_from[i + 1] + u64::from(blocks[i].raw_len);
    }

    let mut entries = Vec::with_capacity(message_count as usize);
    let mut previous: Option<u64> = None;
    for e in entry_bytes.chunks_exact(FOOTER_ENTRY_LEN) {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&e[20..52]);
        let entry = FooterEntry {
            number: le_u64(&e[0..8]),
            block: le_u32(&e[8..12]),
            pos: le_u32(&e[12..16]),
            len: le_u32(&e[16..20]),
            sha256,
        };
        let n = entry.number;
        if previous.is_some_and(|p| n <= p) {
            return Err(format!("message numbers do not increase at message {n}"));
        }
        previous = Some(n);
        let Some(block) = blocks.get(entry.block as usize) else {
            return Err(format!("message {n} starts in block {}, which does not exist", entry.block));
        };
        if entry.pos > block.raw_len {
            return Err(format!("message {n} starts past the end of block {}", entry.block));
        }
        if u64::from(entry.len) > raw_from[entry.block as usize] - u64::from(entry.pos) {
            return Err(format!("message {n} runs past the last block"));
        }
        entries.push(entry);
    }
    Ok(PackFooter {
        pack_id: pack,
        key_id: trailer.key_id,
        footer_offset: trailer.footer_offset,
        footer_len: trailer.footer_len,
        blocks,
        entries,
    })
}

/// Returns message `number` from `bytes`, the pack range [`PackFooter::locate`] named: opens and
/// decompresses its blocks, slices the message out and checks its SHA-256 (invariant 4: corrupt bytes are
/// an error, never returned). Allocates at most one block and the message.
pub fn read_message(
    key: &DataKey,
    footer: &PackFooter,
    bytes: &[u8],
    number: u64,
) -> Result<Vec<u8>, PackError> {
    let pack = footer.pack_id;
    if key.id() != footer.key_id {
        return Err(PackError::WrongKey { pack, sealed_with: footer.key_id, given: key.id() });
    }
    let loc = footer.locate(number)?;
    if bytes.len() as u64 != loc.range.end - loc.range.start {
        return Err(PackError::RangeMismatch {
            pack,
            number,
            start: loc.range.start,
            end: loc.range.end,
            got: bytes.len(),
        });
    }
    let Some(entry) = footer.entry(number) else {
        return Err(PackError::NoSuchMessage { pack, number });
    };
    let mut out = Vec::with_capacity(entry.len as usize);
    let mut skip = entry.pos as usize;
    for index in loc.blocks.clone() {
        let info = &footer.blocks[index as usize];
        let start = (info.offset - loc.range.start) as usize;
        let frame = &bytes[start..start + info.frame_len as usize];
        let (_, raw) = open_expected(key, pack, index, info, frame).map_err(|reason| PackError::Block {
            pack,
            block: index,
            offset: info.offset,
            reason,
        })?;
        let take = (entry.len as usize - out.len()).min(raw.len() - skip);
        out.extend_from_slice(&raw[skip..skip + take]);
        skip = 0;
    }
    let actual: [u8; 32] = Sha256::digest(&out).into();
    if out.len() != entry.len as usize || actual != entry.sha256 {
        return Err(PackError::Message { pack, number, reason: "SHA-256 mismatch".into() });
    }
    Ok(out)
}

/// Opens block `index` whose frame the footer describes as `info`; the frame header must agree.
/// Returns the header and the decompressed block.
pub(crate) fn open_expected(
    key: &DataKey,
    pack: PackId,
    index: u32,
    info: &BlockInfo,
    frame: &[u8],
) -> Result<(FrameHeader, Vec<u8>), String> {
    let header = FrameHeader::parse(frame)?;
    if header.index != index {
        return Err(format!("the frame says it is block {}, expected block {index}", header.index));
    }
    if header.frame_len() != info.frame_len as usize || header.raw_len != info.raw_len {
        return Err("the frame header disagrees with the footer".into());
    }
    open_frame(key, pack, &header, frame).map(|raw| (header, raw))
}
