//! Checking a whole pack (STO-05 `VerifyStore`) and recovering its readable records
//! (`RecreateRecoveryRecords`, `RecoverStore`).
//!
//! With an intact footer, every block is opened at the place the footer names, every record in the
//! blocks is compared with its footer entry, and every message is hashed. With a damaged trailer or
//! footer the whole pack is affected: the blocks are then found by their frame magic, opened, and their
//! records listed, so that the caller can tell readable messages from lost ones and copy them out.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::Serialize;

use super::reader::{PackFooter, Trailer, open_expected};
use super::records::{RecordParser, ScannedRecord};
use super::{FRAME_MAGIC, FrameHeader, PackError, PackId, open_frame};
use crate::keys::DataKey;

/// A damaged block, or with a damaged footer an unreadable stretch of the block region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedBlock {
    /// The (first) block affected.
    pub index: u32,
    /// The damaged bytes of the pack.
    pub bytes: Range<u64>,
    /// What is wrong.
    pub reason: String,
    /// Messages with bytes in it (from the footer; empty when the footer is damaged too).
    pub messages: Vec<u64>,
}

/// A message whose blocks are intact but whose record or bytes do not match the footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorruptMessage {
    /// The message number.
    pub number: u64,
    /// What is wrong.
    pub reason: String,
}

/// The result of checking a whole pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The pack checked.
    pub pack_id: PackId,
    /// Why the trailer or footer is unusable; then the whole pack is affected and only
    /// `intact_messages` (found by scanning the blocks) are known good.
    pub footer_damage: Option<String>,
    /// Messages the footer lists (`None` when it is damaged).
    pub listed_messages: Option<usize>,
    /// Damaged blocks, each with the messages it affects.
    pub damaged_blocks: Vec<DamagedBlock>,
    /// Messages in intact blocks that still fail their checks.
    pub corrupt_messages: Vec<CorruptMessage>,
    /// Messages whose bytes were read back and match their SHA-256, in increasing order.
    pub intact_messages: Vec<u64>,
}

impl VerifyReport {
    /// True when nothing at all is wrong.
    pub fn is_intact(&self) -> bool {
        self.footer_damage.is_none() && self.damaged_blocks.is_empty() && self.corrupt_messages.is_empty()
    }

    /// True when the trailer or footer is damaged: every message not in `intact_messages` is affected,
    /// and the pack should be rewritten from its readable records.
    pub fn whole_pack_affected(&self) -> bool {
        self.footer_damage.is_some()
    }

    /// The messages known to be affected, sorted (with a damaged footer, see [`Self::whole_pack_affected`]).
    pub fn affected_messages(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .damaged_blocks
            .iter()
            .flat_map(|b| b.messages.iter().copied())
            .chain(self.corrupt_messages.iter().map(|m| m.number))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_intact() {
            return write!(f, "pack {}: intact, {} messages", self.pack_id, self.intact_messages.len());
        }
        write!(f, "pack {}: damaged", self.pack_id)?;
        if let Some(reason) = &self.footer_damage {
            write!(
                f,
                "; footer unusable ({reason}), whole pack affected, {} messages readable",
                self.intact_messages.len()
            )?;
        }
        for b in &self.damaged_blocks {
            write!(f, "; block {} (bytes {}..{}): {}", b.index, b.bytes.start, b.bytes.end, b.reason)?;
            if !b.messages.is_empty() {
                write!(f, ", messages {:?}", b.messages)?;
            }
        }
        for m in &self.corrupt_messages {
            write!(f, "; message {}: {}", m.number, m.reason)?;
        }
        Ok(())
    }
}

/// A readable record copied out of a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredRecord {
    /// The message number.
    pub number: u64,
    /// The metadata blob stored with it.
    pub meta: Vec<u8>,
    /// The message bytes, checked against their SHA-256.
    pub message: Vec<u8>,
}

/// The readable records of a pack and the report of what is not readable.
#[derive(Debug, Clone)]
pub struct RecoveredPack {
    /// Records whose bytes match their SHA-256, in pack order.
    pub records: Vec<RecoveredRecord>,
    /// The verification report of the pack.
    pub report: VerifyReport,
}

/// Checks every block and every message of the whole pack `pack`. Damage is reported, not returned as
/// an error; only a pack sealed under another data key is an error.
pub fn verify_pack(key: &DataKey, pack_id: PackId, pack: &[u8]) -> Result<VerifyReport, PackError> {
    inspect(key, pack_id, pack, false).map(|(report, _)| report)
}

/// Copies out every readable record of the whole pack `pack`, with the report of what was lost: the
/// input for rewriting a damaged pack into a new one (objects never change in place).
pub fn recover_records(key: &DataKey, pack_id: PackId, pack: &[u8]) -> Result<RecoveredPack, PackError> {
    let (report, records) = inspect(key, pack_id, pack, true)?;
    let records = records
        .into_iter()
        .filter(|r| report.intact_messages.binary_search(&r.header.number).is_ok())
        .map(|r| RecoveredRecord {
            number: r.header.number,
            meta: r.meta,
            message: r.message.unwrap_or_default(),
        })
        .collect();
    Ok(RecoveredPack { records, report })
}

fn inspect(
    key: &DataKey,
    pack_id: PackId,
    pack: &[u8],
    keep: bool,
) -> Result<(VerifyReport, Vec<ScannedRecord>), PackError> {
    let (footer_damage, blocks_end) = match PackFooter::parse(pack_id, key, pack) {
        Ok(footer) if footer.pack_len() == pack.len() as u64 => {
            return Ok(with_footer(key, &footer, pack, keep));
        }
        Ok(footer) => {
            (format!("the pack is {} bytes, its trailer describes {}", pack.len(), footer.pack_len()), None)
        }
        Err(e @ PackError::WrongKey { .. }) => return Err(e),
        Err(e) => {
            // A usable trailer still tells where the blocks end.
            let end = Trailer::parse(pack_id, pack)
                .ok()
                .filter(|t| t.pack_len() == pack.len() as u64)
                .map(|t| t.footer_offset as usize);
            let reason = match e {
                PackError::Trailer { reason, .. } => format!("trailer: {reason}"),
                PackError::Footer { reason, .. } => format!("footer: {reason}"),
                other => other.to_string(),
            };
            (reason, end)
        }
    };
    Ok(without_footer(key, pack_id, pack, keep, footer_damage, blocks_end))
}

/// Verification guided by an intact footer.
fn with_footer(
    key: &DataKey,
    footer: &PackFooter,
    pack: &[u8],
    keep: bool,
) -> (VerifyReport, Vec<ScannedRecord>) {
    let pack_id = footer.pack_id();
    let mut parser = RecordParser::new(keep);
    let mut damaged: Vec<DamagedBlock> = Vec::new();
    let mut damaged_index: HashMap<u32, usize> = HashMap::new();
    for (i, info) in footer.blocks().iter().enumerate() {
        let index = i as u32;
        let start = info.offset as usize;
        let frame = &pack[start..start + info.frame_len as usize];
        match open_expected(key, pack_id, index, info, frame) {
            Ok((header, raw)) => parser.feed(index, &raw, header.first_record),
            Err(reason) => {
                parser.lose_sync();
                damaged_index.insert(index, damaged.len());
                damaged.push(DamagedBlock {
                    index,
                    bytes: info.offset..info.offset + u64::from(info.frame_len),
                    reason,
                    messages: Vec::new(),
                });
            }
        }
    }

    let by_number: HashMap<u64, usize> =
        parser.records.iter().enumerate().map(|(i, r)| (r.header.number, i)).collect();
    let mut corrupt = Vec::new();
    let mut intact = Vec::new();
    for entry in footer.entries() {
        let span = footer.span(entry);
        let mut in_damaged_block = false;
        for b in span {
            if let Some(&d) = damaged_index.get(&b) {
                damaged[d].messages.push(entry.number);
                in_damaged_block = true;
            }
        }
        if in_damaged_block {
            continue;
        }
        let problem = match by_number.get(&entry.number).map(|&i| &parser.records[i]) {
            None => Some("its record is missing from the blocks (its header lies in a damaged block?)"),
            Some(r) if r.actual_sha256 != entry.sha256 => Some("SHA-256 mismatch"),
            Some(r)
                if r.header.sha256 != entry.sha256
                    || r.header.len != entry.len
                    || (r.block, r.pos) != (entry.block, entry.pos) =>
            {
                Some("its record disagrees with the footer")
            }
            Some(_) => None,
        };
        match problem {
            Some(reason) => corrupt.push(CorruptMessage { number: entry.number, reason: reason.into() }),
            None => intact.push(entry.number),
        }
    }
    for r in &parser.records {
        if footer.entry(r.header.number).is_none() {
            corrupt.push(CorruptMessage {
                number: r.header.number,
                reason: format!("a record in block {} is not listed in the footer", r.block),
            });
        }
    }
    let report = VerifyReport {
        pack_id,
        footer_damage: None,
        listed_messages: Some(footer.entries().len()),
        damaged_blocks: damaged,
        corrupt_messages: corrupt,
        intact_messages: intact,
    };
    (report, parser.records)
}

/// Scans for block frames when the footer cannot be used; `blocks_end` is where the footer starts, if
/// the trailer still says so.
fn without_footer(
    key: &DataKey,
    pack_id: PackId,
    pack: &[u8],
    keep: bool,
    footer_damage: String,
    blocks_end: Option<usize>,
) -> (VerifyReport, Vec<ScannedRecord>) {
    let end = blocks_end.unwrap_or(pack.len()).min(pack.len());
    let mut parser = RecordParser::new(keep);
    let mut damaged = Vec::new();
    let mut off = 0usize;
    let mut next_index = 0u32;
    let mut bad_from: Option<usize> = None;
    let report_gap =
        |damaged: &mut Vec<DamagedBlock>, from: usize, to: usize, next: u32, found: Option<u32>| {
            let reason = match found {
                Some(found) if found > next + 1 => format!("blocks {next}..={} are unreadable", found - 1),
                Some(_) => format!("block {next} is unreadable"),
                None => format!("block {next} and any after it are unreadable"),
            };
            damaged.push(DamagedBlock {
                index: next,
                bytes: from as u64..to as u64,
                reason,
                messages: Vec::new(),
            });
        };
    while off < end {
        let frame = &pack[off..end];
        let opened = FrameHeader::parse(frame)
            .and_then(|h| if h.index < next_index { Err("block index goes backwards".into()) } else { Ok(h) })
            .and_then(|h| open_frame(key, pack_id, &h, frame).map(|raw| (h, raw)));
        match opened {
            Ok((h, raw)) => {
                if bad_from.is_some() || h.index > next_index {
                    report_gap(&mut damaged, bad_from.unwrap_or(off), off, next_index, Some(h.index));
                    parser.lose_sync();
                    bad_from = None;
                }
                parser.feed(h.index, &raw, h.first_record);
                next_index = h.index + 1;
                off += h.frame_len();
            }
            Err(_) => {
                bad_from.get_or_insert(off);
                off = find_magic(pack, off + 1, end).unwrap_or(end);
            }
        }
    }
    if let Some(from) = bad_from {
        // Past the last good block: with a usable trailer this is block damage; without one it may be
        // the footer itself, so it is reported only when a block frame visibly started there.
        if blocks_end.is_some() || pack[from..].starts_with(&FRAME_MAGIC) {
            report_gap(&mut damaged, from, end, next_index, None);
        }
        parser.lose_sync();
    }
    let mut intact: Vec<u64> = parser
        .records
        .iter()
        .filter(|r| r.actual_sha256 == r.header.sha256)
        .map(|r| r.header.number)
        .collect();
    intact.sort_unstable();
    intact.dedup();
    let corrupt = parser
        .records
        .iter()
        .filter(|r| r.actual_sha256 != r.header.sha256)
        .map(|r| CorruptMessage { number: r.header.number, reason: "SHA-256 mismatch".into() })
        .collect();
    let report = VerifyReport {
        pack_id,
        footer_damage: Some(footer_damage),
        listed_messages: None,
        damaged_blocks: damaged,
        corrupt_messages: corrupt,
        intact_messages: intact,
    };
    (report, parser.records)
}

/// The next offset in `from..end` where a block frame magic starts.
fn find_magic(pack: &[u8], from: usize, end: usize) -> Option<usize> {
    if from >= end {
        return None;
    }
    pack[from..end].windows(FRAME_MAGIC.len()).position(|w| w == FRAME_MAGIC).map(|p| from + p)
}
