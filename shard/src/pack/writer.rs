//! Writing a pack: records appended to blocks, each block compressed and sealed when full, then the
//! sealed footer and the trailer.

use std::fmt;

use sha2::{Digest, Sha256};

use super::reader::{BlockInfo, FooterEntry, PackFooter};
use super::records::RecordHeader;
use super::{
    DEFAULT_BLOCK_TARGET, DEFAULT_ZSTD_LEVEL, FOOTER_BLOCK_LEN, FOOTER_ENTRY_LEN, FOOTER_FIXED_LEN,
    FORMAT_VERSION, FRAME_HEADER_LEN, FrameHeader, MAX_BLOCK_RAW, MAX_FRAME_LEN, MAX_META_LEN,
    MAX_PACK_BLOCKS, MAX_PACK_MESSAGES, MIN_BLOCK_TARGET, NO_RECORD, PackError, PackId, RECORD_HEADER_LEN,
    TRAILER_LEN, TRAILER_MAGIC, block_aad, footer_aad,
};
use crate::crypto::{self, NONCE_LEN, TAG_LEN};
use crate::keys::DataKey;

/// How a writer forms blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackConfig {
    /// Raw bytes at which a block is closed ([`MIN_BLOCK_TARGET`]..=[`MAX_BLOCK_RAW`]). A record that
    /// does not fit in the open block starts a new one; a record larger than this spans blocks.
    pub block_target: usize,
    /// The zstd compression level (within zstd's range; 3 is zstd's default).
    pub zstd_level: i32,
}

impl Default for PackConfig {
    fn default() -> Self {
        PackConfig { block_target: DEFAULT_BLOCK_TARGET, zstd_level: DEFAULT_ZSTD_LEVEL }
    }
}

impl PackConfig {
    /// Checks that the values are in range.
    pub fn validate(&self) -> Result<(), PackError> {
        if !(MIN_BLOCK_TARGET..=MAX_BLOCK_RAW).contains(&self.block_target) {
            return Err(PackError::Config {
                reason: format!(
                    "block target {} is outside {MIN_BLOCK_TARGET}..={MAX_BLOCK_RAW} bytes",
                    self.block_target
                ),
            });
        }
        let levels = zstd::compression_level_range();
        if !levels.contains(&self.zstd_level) {
            return Err(PackError::Config {
                reason: format!(
                    "zstd level {} is outside {}..={}",
                    self.zstd_level,
                    levels.start(),
                    levels.end()
                ),
            });
        }
        Ok(())
    }
}

/// A finished pack: the bytes to PUT and its parsed footer.
#[derive(Debug, Clone)]
pub struct SealedPack {
    /// The pack's id (its object name).
    pub id: PackId,
    /// The whole pack.
    pub bytes: Vec<u8>,
    /// The footer the bytes end with, as a reader would parse it.
    pub footer: PackFooter,
}

/// Builds one pack in memory from messages given in increasing number order.
pub struct PackWriter {
    key: DataKey,
    id: PackId,
    config: PackConfig,
    /// Sealed frames so far.
    out: Vec<u8>,
    /// Raw bytes of the open block.
    cur: Vec<u8>,
    /// Where the first record starting in the open block starts.
    cur_first_record: Option<u32>,
    blocks: Vec<BlockInfo>,
    entries: Vec<FooterEntry>,
    raw_len: u64,
}

impl fmt::Debug for PackWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackWriter")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("config", &self.config)
            .field("messages", &self.entries.len())
            .field("blocks", &self.blocks.len())
            .field("sealed_len", &self.out.len())
            .finish()
    }
}

impl PackWriter {
    /// A writer for pack `id`, sealing under `key`.
    pub fn new(key: &DataKey, id: PackId, config: PackConfig) -> Result<PackWriter, PackError> {
        config.validate()?;
        Ok(PackWriter {
            key: key.clone(),
            id,
            config,
            out: Vec::new(),
            cur: Vec::with_capacity(config.block_target),
            cur_first_record: None,
            blocks: Vec::new(),
            entries: Vec::new(),
            raw_len: 0,
        })
    }

    /// The pack's id.
    pub fn id(&self) -> PackId {
        self.id
    }

    /// Messages pushed so far.
    pub fn message_count(&self) -> usize {
        self.entries.len()
    }

    /// Raw message bytes pushed so far.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// Bytes the pack would have now, roughly: sealed blocks plus the open block's raw bytes.
    pub fn approx_len(&self) -> usize {
        self.out.len() + self.cur.len()
    }

    /// Appends message `number` (greater than every number before); returns its SHA-256.
    pub fn push(&mut self, number: u64, message: &[u8]) -> Result<[u8; 32], PackError> {
        self.push_with_meta(number, message, &[])
    }

    /// Appends message `number` with an opaque metadata blob kept in its record (the STO-05 recovery
    /// record: whatever the caller needs to rebuild its metadata from the pack alone).
    ///
    /// A refusal ([`PackError::Refused`]) changes nothing; any other error leaves the writer unusable.
    pub fn push_with_meta(
        &mut self,
        number: u64,
        message: &[u8],
        meta: &[u8],
    ) -> Result<[u8; 32], PackError> {
        let refuse = |reason: String| PackError::Refused { pack: self.id, number, reason };
        if let Some(last) = self.entries.last()
            && number <= last.number
        {
            return Err(refuse(format!("numbers must increase; {} came before", last.number)));
        }
        let len = u32::try_from(message.len())
            .map_err(|_| refuse(format!("{} bytes exceed the format's 4 GiB limit", message.len())))?;
        if meta.len() > MAX_META_LEN {
            return Err(refuse(format!("metadata of {} bytes exceeds {MAX_META_LEN}", meta.len())));
        }
        if self.entries.len() >= MAX_PACK_MESSAGES {
            return Err(refuse(format!("the pack is full ({MAX_PACK_MESSAGES} messages)")));
        }
        let record_len = RECORD_HEADER_LEN + meta.len() + message.len();
        let target = self.config.block_target;
        if self.blocks.len() + (self.cur.len() + record_len).div_ceil(target) + 1 > MAX_PACK_BLOCKS {
            return Err(refuse(format!("the pack is full ({MAX_PACK_BLOCKS} blocks)")));
        }

        let sha256: [u8; 32] = Sha256::digest(message).into();
        // A record that does not fit the open block starts a new one, so that small messages never
        // straddle blocks; a record larger than a block spans consecutive blocks.
        if !self.cur.is_empty() && self.cur.len() + record_len > target {
            self.seal_block()?;
        }
        if self.cur.len() == target {
            self.seal_block()?;
        }
        if self.cur_first_record.is_none() {
            self.cur_first_record = Some(self.cur.len() as u32);
        }
        let header = RecordHeader { number, len, meta_len: meta.len() as u32, sha256 };
        self.write(&header.encode())?;
        self.write(meta)?;
        if !message.is_empty() && self.cur.len() == target {
            self.seal_block()?;
        }
        let (block, pos) = (self.blocks.len() as u32, self.cur.len() as u32);
        self.write(message)?;
        self.entries.push(FooterEntry { number, block, pos, len, sha256 });
        self.raw_len += message.len() as u64;
        Ok(sha256)
    }

    /// Appends bytes to the open block, sealing it whenever it is full and more bytes follow.
    fn write(&mut self, mut bytes: &[u8]) -> Result<(), PackError> {
        while !bytes.is_empty() {
            if self.cur.len() == self.config.block_target {
                self.seal_block()?;
            }
            let take = (self.config.block_target - self.cur.len()).min(bytes.len());
            self.cur.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// Compresses and seals the open block and appends its frame.
    fn seal_block(&mut self) -> Result<(), PackError> {
        let fail = |reason: String| PackError::Write { pack: self.id, reason };
        let index = self.blocks.len() as u32;
        let compressed = zstd::bulk::compress(&self.cur, self.config.zstd_level)
            .map_err(|e| fail(format!("compressing block {index}: {e}")))?;
        let body_len = NONCE_LEN + compressed.len() + TAG_LEN;
        if FRAME_HEADER_LEN + body_len > MAX_FRAME_LEN {
            return Err(fail(format!("block {index} compressed to {body_len} bytes, over the limit")));
        }
        let header = FrameHeader {
            index,
            body_len: body_len as u32,
            raw_len: self.cur.len() as u32,
            first_record: self.cur_first_record.take().unwrap_or(NO_RECORD),
        };
        let encoded = header.encode();
        let offset = self.out.len() as u64;
        self.out.extend_from_slice(&encoded);
        crypto::seal_into(self.key.secret(), &block_aad(self.id, &encoded), compressed, &mut self.out)
            .map_err(|_| fail(format!("sealing block {index}")))?;
        self.blocks.push(BlockInfo { offset, frame_len: header.frame_len() as u32, raw_len: header.raw_len });
        self.cur.clear();
        Ok(())
    }

    /// Seals the last block, appends the sealed footer and the trailer, and returns the pack.
    pub fn finish(mut self) -> Result<SealedPack, PackError> {
        if !self.cur.is_empty() {
            self.seal_block()?;
        }
        let footer_offset = self.out.len() as u64;
        let mut plain = Vec::with_capacity(
            FOOTER_FIXED_LEN + self.blocks.len() * FOOTER_BLOCK_LEN + self.entries.len() * FOOTER_ENTRY_LEN,
        );
        plain.extend_from_slice(&self.id.to_bytes());
        plain.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        plain.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for b in &self.blocks {
            plain.extend_from_slice(&b.frame_len.to_le_bytes());
            plain.extend_from_slice(&b.raw_len.to_le_bytes());
        }
        for e in &self.entries {
            plain.extend_from_slice(&e.number.to_le_bytes());
            plain.extend_from_slice(&e.block.to_le_bytes());
            plain.extend_from_slice(&e.pos.to_le_bytes());
            plain.extend_from_slice(&e.len.to_le_bytes());
            plain.extend_from_slice(&e.sha256);
        }
        crypto::seal_into(self.key.secret(), &footer_aad(self.id, footer_offset), plain, &mut self.out)
            .map_err(|_| PackError::Write { pack: self.id, reason: "sealing the footer".into() })?;
        let footer_len = (self.out.len() as u64 - footer_offset) as u32;

        let mut trailer = [0u8; TRAILER_LEN];
        trailer[0..8].copy_from_slice(&footer_offset.to_le_bytes());
        trailer[8..12].copy_from_slice(&footer_len.to_le_bytes());
        trailer[12..20].copy_from_slice(&self.key.id().to_bytes());
        trailer[20..22].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&trailer[..24]);
        trailer[24..28].copy_from_slice(&crc.to_le_bytes());
        trailer[28..36].copy_from_slice(&TRAILER_MAGIC);
        self.out.extend_from_slice(&trailer);

        let footer = PackFooter::from_parts(
            self.id,
            self.key.id(),
            footer_offset,
            footer_len,
            self.blocks,
            self.entries,
        );
        Ok(SealedPack { id: self.id, bytes: self.out, footer })
    }
}
