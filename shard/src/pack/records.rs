//! Records inside the decompressed block stream, and a parser that reads them back without the footer.
//!
//! A record is `number u64 | len u32 | meta_len u32 | sha256 [32] | meta | message`, all little-endian.
//! The blocks of a pack, decompressed and concatenated, are the records back to back; a record may
//! continue into the next blocks. The parser is fed one decompressed block at a time; after a damaged
//! block it resynchronises at the next block's `first_record`.

use sha2::{Digest, Sha256};

use super::{MAX_META_LEN, NO_RECORD, RECORD_HEADER_LEN, le_u32, le_u64};

/// The fixed header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub number: u64,
    pub len: u32,
    pub meta_len: u32,
    pub sha256: [u8; 32],
}

impl RecordHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut out = [0u8; RECORD_HEADER_LEN];
        out[0..8].copy_from_slice(&self.number.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out[12..16].copy_from_slice(&self.meta_len.to_le_bytes());
        out[16..48].copy_from_slice(&self.sha256);
        out
    }

    /// Decodes exactly [`RECORD_HEADER_LEN`] bytes.
    fn decode(b: &[u8]) -> RecordHeader {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&b[16..48]);
        RecordHeader {
            number: le_u64(&b[0..8]),
            len: le_u32(&b[8..12]),
            meta_len: le_u32(&b[12..16]),
            sha256,
        }
    }
}

/// A record read back from the blocks.
#[derive(Debug, Clone)]
pub(crate) struct ScannedRecord {
    pub header: RecordHeader,
    /// Block and offset in it where the message bytes start (as the footer would say).
    pub block: u32,
    pub pos: u32,
    /// SHA-256 of the bytes actually read.
    pub actual_sha256: [u8; 32],
    pub meta: Vec<u8>,
    /// The message bytes, when the parser keeps them.
    pub message: Option<Vec<u8>>,
}

#[derive(Default)]
enum State {
    /// Between records, or not synchronised.
    #[default]
    Lost,
    Header(Vec<u8>),
    Meta(RecordHeader, Vec<u8>),
    Body {
        header: RecordHeader,
        meta: Vec<u8>,
        start: Option<(u32, u32)>,
        hasher: Sha256,
        got: u64,
        kept: Vec<u8>,
    },
}

/// Reads records out of consecutive decompressed blocks.
pub(crate) struct RecordParser {
    state: State,
    keep_messages: bool,
    /// Records read completely.
    pub records: Vec<ScannedRecord>,
    /// Blocks fed while a record was half read and the stream then broke (their record is lost).
    pub lost_records: usize,
}

impl RecordParser {
    /// A parser at the start of a pack; `keep_messages` keeps message bytes, not only their hashes.
    pub fn new(keep_messages: bool) -> RecordParser {
        RecordParser { state: State::Header(Vec::new()), keep_messages, records: Vec::new(), lost_records: 0 }
    }

    /// The stream broke (a damaged or missing block): drop the half-read record, wait for a block
    /// that says where its first record starts.
    pub fn lose_sync(&mut self) {
        let partial = match &self.state {
            State::Lost => false,
            State::Header(b) => !b.is_empty(),
            _ => true,
        };
        if partial {
            self.lost_records += 1;
        }
        self.state = State::Lost;
    }

    /// Feeds decompressed block `block`, whose header says its first record starts at `first_record`.
    pub fn feed(&mut self, block: u32, raw: &[u8], first_record: u32) {
        let mut i = 0usize;
        if let State::Lost = self.state {
            if first_record == NO_RECORD || first_record as usize >= raw.len() {
                return;
            }
            i = first_record as usize;
            self.state = State::Header(Vec::new());
        }
        loop {
            let state = std::mem::take(&mut self.state);
            self.state = match state {
                State::Lost => State::Lost,
                State::Header(mut buf) => {
                    let take = (RECORD_HEADER_LEN - buf.len()).min(raw.len() - i);
                    buf.extend_from_slice(&raw[i..i + take]);
                    i += take;
                    if buf.len() < RECORD_HEADER_LEN {
                        self.state = State::Header(buf);
                        return;
                    }
                    let header = RecordHeader::decode(&buf);
                    if header.meta_len as usize > MAX_META_LEN {
                        self.state = State::Header(buf);
                        self.lose_sync();
                        return;
                    }
                    State::Meta(header, Vec::new())
                }
                State::Meta(header, mut buf) => {
                    let take = (header.meta_len as usize - buf.len()).min(raw.len() - i);
                    buf.extend_from_slice(&raw[i..i + take]);
                    i += take;
                    if buf.len() < header.meta_len as usize {
                        self.state = State::Meta(header, buf);
                        return;
                    }
                    State::Body {
                        header,
                        meta: buf,
                        start: None,
                        hasher: Sha256::new(),
                        got: 0,
                        kept: Vec::new(),
                    }
                }
                State::Body { header, meta, mut start, mut hasher, mut got, mut kept } => {
                    let want = u64::from(header.len) - got;
                    // A message's start is where its first byte is; an empty one is where its meta ends.
                    if start.is_none() && (i < raw.len() || want == 0) {
                        start = Some((block, i as u32));
                    }
                    let take = want.min((raw.len() - i) as u64) as usize;
                    let bytes = &raw[i..i + take];
                    hasher.update(bytes);
                    if self.keep_messages {
                        kept.extend_from_slice(bytes);
                    }
                    got += take as u64;
                    i += take;
                    if got < u64::from(header.len) {
                        self.state = State::Body { header, meta, start, hasher, got, kept };
                        return;
                    }
                    let (block, pos) = start.unwrap_or((block, i as u32));
                    self.records.push(ScannedRecord {
                        header,
                        block,
                        pos,
                        actual_sha256: hasher.finalize().into(),
                        meta,
                        message: self.keep_messages.then_some(kept),
                    });
                    State::Header(Vec::new())
                }
            };
            if i == raw.len() && matches!(&self.state, State::Header(b) if b.is_empty()) {
                return;
            }
        }
    }
}
