//! Behaviour tests of the pack format: writer, ranged reader and verifier together.

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::*;
use crate::keys::DataKey;

const TARGET: usize = 4096;

fn config(block_target: usize) -> PackConfig {
    PackConfig { block_target, ..PackConfig::default() }
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// A mail-like message: headers and a body of repetitive text with a few varying words.
fn mail(i: u64) -> Vec<u8> {
    let mut m = format!(
        "Return-Path: <sender{}@example.com>\r\nFrom: Sender {} <sender{}@example.com>\r\n\
         To: Team <team@example.org>\r\nSubject: Weekly report {i}\r\nDate: Mon, {} Jan 2024 10:00:00 +0000\r\n\
         Message-ID: <{i}.report@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        i % 7,
        i % 7,
        i % 7,
        1 + i % 28
    );
    for line in 0..30 {
        m.push_str(&format!(
            "Line {line}: the quarterly figures for region {} were reviewed and approved by the board.\r\n",
            (i + line) % 5
        ));
    }
    m.into_bytes()
}

/// Messages of mixed sizes: empty, one byte, binary, mail text, and one larger than several blocks.
fn mixed_messages() -> Vec<(u64, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut out = Vec::new();
    let mut number = 10;
    let mut add = |bytes: Vec<u8>| {
        out.push((number, bytes));
        number += 1 + (number % 3);
    };
    add(Vec::new());
    add(vec![0]);
    add((0..=255u8).collect());
    for i in 0..20 {
        add(mail(i));
    }
    add(random_bytes(&mut rng, 3 * TARGET + 123));
    add(Vec::new());
    for _ in 0..30 {
        let len = rng.gen_range(0..TARGET / 2);
        add(random_bytes(&mut rng, len));
    }
    add(random_bytes(&mut rng, TARGET - RECORD_HEADER_LEN));
    add(Vec::new());
    out
}

fn write_pack(key: &DataKey, id: PackId, cfg: PackConfig, messages: &[(u64, Vec<u8>)]) -> SealedPack {
    let mut w = PackWriter::new(key, id, cfg).unwrap();
    for (n, m) in messages {
        w.push(*n, m).unwrap();
    }
    w.finish().unwrap()
}

/// Reads one message the way the object-store layer will: tail, then one range.
fn fetch(key: &DataKey, id: PackId, pack: &[u8], number: u64) -> Result<Vec<u8>, PackError> {
    let footer = PackFooter::parse(id, key, pack)?;
    let loc = footer.locate(number)?;
    read_message(key, &footer, &pack[loc.range.start as usize..loc.range.end as usize], number)
}

#[test]
fn mixed_messages_round_trip_byte_for_byte() {
    let key = DataKey::generate();
    let id = PackId::random();
    let messages = mixed_messages();
    let sealed = write_pack(&key, id, config(TARGET), &messages);
    assert!(sealed.footer.blocks().len() > 5, "{:?}", sealed.footer);
    let parsed = PackFooter::parse(id, &key, &sealed.bytes).unwrap();
    assert_eq!(parsed, sealed.footer);
    assert_eq!(parsed.pack_len(), sealed.bytes.len() as u64);
    assert_eq!(parsed.entries().len(), messages.len());
    for (n, m) in &messages {
        assert_eq!(&fetch(&key, id, &sealed.bytes, *n).unwrap(), m, "message {n}");
    }
    let big = messages.iter().find(|(_, m)| m.len() > TARGET).unwrap();
    let loc = parsed.locate(big.0).unwrap();
    assert!(loc.blocks.len() >= 3, "a message larger than a block spans blocks: {loc:?}");
    assert!(verify_pack(&key, id, &sealed.bytes).unwrap().is_intact());
    assert!(matches!(fetch(&key, id, &sealed.bytes, 11), Err(PackError::NoSuchMessage { number: 11, .. })));
}

#[test]
fn default_config_packs_many_messages_into_few_blocks() {
    let key = DataKey::generate();
    let id = PackId::random();
    let messages: Vec<(u64, Vec<u8>)> = (0..300).map(|i| (i, mail(i))).collect();
    let sealed = write_pack(&key, id, PackConfig::default(), &messages);
    let raw: usize = messages.iter().map(|(_, m)| m.len()).sum();
    assert!(sealed.footer.blocks().len() <= raw.div_ceil(DEFAULT_BLOCK_TARGET) + 1, "{:?}", sealed.footer);
    for (n, m) in messages.iter().step_by(37) {
        assert_eq!(&fetch(&key, id, &sealed.bytes, *n).unwrap(), m);
    }
}

#[test]
fn repetitive_mail_compresses_to_a_fraction_of_raw() {
    let key = DataKey::generate();
    let messages: Vec<(u64, Vec<u8>)> = (0..400).map(|i| (i, mail(i))).collect();
    let sealed = write_pack(&key, PackId::random(), PackConfig::default(), &messages);
    let raw: usize = messages.iter().map(|(_, m)| m.len()).sum();
    assert!(sealed.bytes.len() * 10 < raw, "pack {} bytes for {raw} raw bytes", sealed.bytes.len());
}

#[test]
fn footer_is_read_from_the_tail_alone() {
    let key = DataKey::generate();
    let id = PackId::random();
    let messages = mixed_messages();
    let pack = write_pack(&key, id, config(TARGET), &messages).bytes;
    // First GET: a suffix too short on purpose; the error names the length to fetch.
    let needed = match PackFooter::parse(id, &key, &pack[pack.len() - TRAILER_LEN..]) {
        Err(PackError::TailTooShort { needed, .. }) => needed,
        r => panic!("expected TailTooShort, got {r:?}"),
    };
    let trailer = Trailer::parse(id, &pack[pack.len() - TRAILER_LEN..]).unwrap();
    assert_eq!(trailer.tail_len(), needed);
    assert_eq!(trailer.pack_len(), pack.len() as u64);
    let tail = pack[pack.len() - needed..].to_vec();
    let footer = PackFooter::parse(id, &key, &tail).unwrap();
    // The usual case: one suffix GET of TAIL_GUESS bytes holds the footer of a pack this size.
    assert!(needed <= TAIL_GUESS);
    // Then one GET per message: exactly the range named.
    let (number, message) = &messages[20];
    let loc = footer.locate(*number).unwrap();
    let range = pack[loc.range.start as usize..loc.range.end as usize].to_vec();
    assert_eq!(&read_message(&key, &footer, &range, *number).unwrap(), message);
    // A short or long range is refused, not sliced.
    let err = read_message(&key, &footer, &range[1..], *number).unwrap_err();
    assert!(matches!(err, PackError::RangeMismatch { .. }), "{err}");
}

#[test]
fn flipped_byte_in_block_k_reports_exactly_the_messages_of_block_k() {
    let key = DataKey::generate();
    let id = PackId::random();
    let messages: Vec<(u64, Vec<u8>)> = (0..40).map(|i| (100 + i, mail(i)[..900].to_vec())).collect();
    let sealed = write_pack(&key, id, config(TARGET), &messages);
    let footer = &sealed.footer;
    let k = 3u32;
    let expected: Vec<u64> = footer.entries().iter().filter(|e| e.block == k).map(|e| e.number).collect();
    assert!(expected.len() >= 3, "{expected:?}");

    for place in ["ciphertext", "header", "tag"] {
        let info = footer.blocks()[k as usize];
        let at = info.offset as usize
            + match place {
                "ciphertext" => info.frame_len as usize / 2,
                "header" => 13, // decompressed length
                _ => info.frame_len as usize - 1,
            };
        let mut pack = sealed.bytes.clone();
        pack[at] ^= 0x20;
        let report = verify_pack(&key, id, &pack).unwrap();
        assert!(!report.is_intact() && !report.whole_pack_affected(), "{report}");
        assert_eq!(report.damaged_blocks.len(), 1, "{report}");
        assert_eq!(report.damaged_blocks[0].index, k);
        assert_eq!(report.damaged_blocks[0].messages, expected, "{place}: {report}");
        assert_eq!(report.affected_messages(), expected);
        assert!(report.corrupt_messages.is_empty(), "{report}");
        assert_eq!(report.intact_messages.len(), messages.len() - expected.len());
        // The reader refuses the damaged messages and still serves the others.
        let err = fetch(&key, id, &pack, expected[0]).unwrap_err();
        assert!(matches!(err, PackError::Block { block, .. } if block == k), "{err}");
        assert_eq!(fetch(&key, id, &pack, 100).unwrap(), messages[0].1);
    }
}

#[test]
fn damaged_block_inside_a_large_message_affects_that_message() {
    let key = DataKey::generate();
    let id = PackId::random();
    let messages = mixed_messages();
    let sealed = write_pack(&key, id, config(TARGET), &messages);
    let big = messages.iter().find(|(_, m)| m.len() > TARGET).unwrap().0;
    let loc = sealed.footer.locate(big).unwrap();
    let middle = sealed.footer.blocks()[loc.blocks.start as usize + 1];
    let mut pack = sealed.bytes.clone();
    pack[middle.offset as usize + 40] ^= 1;
    let report = verify_pack(&key, id, &pack).unwrap();
    assert_eq!(report.affected_messages(), vec![big], "{report}");
    assert!(report.corrupt_messages.is_empty(), "{report}");
    assert_eq!(report.intact_messages.len(), messages.len() - 1);
}

#[test]
fn flipped_byte_in_footer_or_trailer_marks_the_whole_pack_and_records_stay_recoverable() {
    let key = DataKey::generate();
    let id = PackId::random();
    let messages = mixed_messages();
    let sealed = write_pack(&key, id, config(TARGET), &messages);
    let footer_start = sealed.bytes.len() - sealed.footer.tail_len();
    let trailer_start = sealed.bytes.len() - TRAILER_LEN;
    let numbers: Vec<u64> = messages.iter().map(|(n, _)| *n).collect();
    for (at, expect_trailer) in [
        (footer_start + 5, false),      // nonce
        (footer_start + 200, false),    // entries
        (trailer_start - 3, false),     // tag
        (trailer_start + 1, true),      // footer offset
        (trailer_start + 9, true),      // footer length
        (trailer_start + 14, true),     // key id
        (trailer_start + 25, true),     // checksum
        (sealed.bytes.len() - 1, true), // magic
    ] {
        let mut pack = sealed.bytes.clone();
        pack[at] ^= 0x04;
        let err = PackFooter::parse(id, &key, &pack).unwrap_err();
        match (&err, expect_trailer) {
            (PackError::Trailer { .. }, true) | (PackError::Footer { .. }, false) => {}
            _ => panic!("byte {at}: unexpected {err}"),
        }
        let report = verify_pack(&key, id, &pack).unwrap();
        assert!(report.whole_pack_affected(), "{report}");
        assert!(report.damaged_blocks.is_empty(), "byte {at}: {report}");
        assert_eq!(report.intact_messages, numbers, "byte {at}: every record is still readable");
        let recovered = recover_records(&key, id, &pack).unwrap();
        assert_eq!(recovered.records.len(), messages.len());
        for (r, (n, m)) in recovered.records.iter().zip(&messages) {
            assert_eq!((&r.number, &r.message), (n, m));
        }
    }
}

#[test]
fn recovered_records_carry_their_metadata_into_a_new_pack() {
    let key = DataKey::generate();
    let id = PackId::random();
    let mut w = PackWriter::new(&key, id, config(TARGET)).unwrap();
    for i in 0..30u64 {
        w.push_with_meta(i, &mail(i), format!("{{\"archive\":{},\"folder\":\"Inbox\"}}", i % 3).as_bytes())
            .unwrap();
    }
    let sealed = w.finish().unwrap();
    let mut pack = sealed.bytes.clone();
    let len = pack.len();
    pack[len - TRAILER_LEN - 20] ^= 0xFF; // footer damaged
    let k = 2usize;
    let info = sealed.footer.blocks()[k];
    pack[info.offset as usize + 30] ^= 0xFF; // and block k
    let lost: Vec<u64> = sealed
        .footer
        .entries()
        .iter()
        .filter(|e| sealed.footer.span(e).contains(&(k as u32)))
        .map(|e| e.number)
        .collect();

    let recovered = recover_records(&key, id, &pack).unwrap();
    assert!(recovered.report.whole_pack_affected());
    assert_eq!(recovered.report.damaged_blocks.len(), 1, "{}", recovered.report);
    assert_eq!(recovered.report.damaged_blocks[0].index, k as u32);
    let numbers: Vec<u64> = recovered.records.iter().map(|r| r.number).collect();
    let expected: Vec<u64> = (0..30).filter(|n| !lost.contains(n)).collect();
    assert_eq!(numbers, expected);

    let new_id = PackId::random();
    let mut w = PackWriter::new(&key, new_id, config(TARGET)).unwrap();
    for r in &recovered.records {
        assert_eq!(r.meta, format!("{{\"archive\":{},\"folder\":\"Inbox\"}}", r.number % 3).into_bytes());
        w.push_with_meta(r.number, &r.message, &r.meta).unwrap();
    }
    let rewritten = w.finish().unwrap();
    assert!(verify_pack(&key, new_id, &rewritten.bytes).unwrap().is_intact());
    assert_eq!(fetch(&key, new_id, &rewritten.bytes, 0).unwrap(), mail(0));
}

#[test]
fn truncated_pack_is_detected() {
    let key = DataKey::generate();
    let id = PackId::random();
    let messages = mixed_messages();
    let sealed = write_pack(&key, id, config(TARGET), &messages);
    let pack = &sealed.bytes;
    for cut in [1, TRAILER_LEN, sealed.footer.tail_len(), pack.len() / 2] {
        let short = &pack[..pack.len() - cut];
        let err = PackFooter::parse(id, &key, short).unwrap_err();
        assert!(matches!(err, PackError::Trailer { .. }), "cut {cut}: {err}");
        let report = verify_pack(&key, id, short).unwrap();
        assert!(report.whole_pack_affected() && !report.is_intact(), "cut {cut}: {report}");
        assert!(report.intact_messages.len() <= messages.len());
    }
    // Cut in the middle of a block: the block where the cut falls is reported, earlier ones are readable.
    let mid = &pack[..pack.len() / 2];
    let report = verify_pack(&key, id, mid).unwrap();
    assert_eq!(report.damaged_blocks.len(), 1, "{report}");
    let readable_blocks = report.damaged_blocks[0].index;
    let expected: Vec<u64> = sealed
        .footer
        .entries()
        .iter()
        .filter(|e| sealed.footer.span(e).end <= readable_blocks)
        .map(|e| e.number)
        .collect();
    assert_eq!(report.intact_messages, expected);
    // A pack with bytes appended is not taken for intact either.
    let mut longer = pack.clone();
    longer.extend_from_slice(&pack[pack.len() - TRAILER_LEN..]);
    assert!(verify_pack(&key, id, &longer).unwrap().whole_pack_affected());
}

#[test]
fn wrong_data_key_fails_with_a_typed_error() {
    let key = DataKey::generate();
    let other = DataKey::generate();
    let id = PackId::random();
    let messages = mixed_messages();
    let sealed = write_pack(&key, id, config(TARGET), &messages);
    let err = PackFooter::parse(id, &other, &sealed.bytes).unwrap_err();
    assert_eq!(err, PackError::WrongKey { pack: id, sealed_with: key.id(), given: other.id() });
    assert!(matches!(verify_pack(&other, id, &sealed.bytes), Err(PackError::WrongKey { .. })));
    let loc = sealed.footer.locate(messages[3].0).unwrap();
    let range = &sealed.bytes[loc.range.start as usize..loc.range.end as usize];
    let err = read_message(&other, &sealed.footer, range, messages[3].0).unwrap_err();
    assert!(matches!(err, PackError::WrongKey { .. }), "{err}");
    // A different key with the same id cannot exist; a pack claiming the wrong id fails authentication.
    let mut forged = sealed.bytes.clone();
    let t = forged.len() - TRAILER_LEN;
    forged[t + 12..t + 20].copy_from_slice(&other.id().to_bytes());
    let crc = crc32fast::hash(&forged[t..t + 24]);
    forged[t + 24..t + 28].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(PackFooter::parse(id, &other, &forged), Err(PackError::Footer { .. })));
}

/// Packs where every block holds one incompressible record of the same size, so frames can be swapped.
fn uniform_pack(key: &DataKey, id: PackId, seed: u64) -> (SealedPack, Vec<(u64, Vec<u8>)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let messages: Vec<(u64, Vec<u8>)> =
        (0..4).map(|i| (i, random_bytes(&mut rng, TARGET - RECORD_HEADER_LEN))).collect();
    let sealed = write_pack(key, id, config(TARGET), &messages);
    let lens: Vec<u32> = sealed.footer.blocks().iter().map(|b| b.frame_len).collect();
    assert!(lens.len() == 4 && lens.iter().all(|&l| l == lens[0]), "{lens:?}");
    (sealed, messages)
}

#[test]
fn blocks_cannot_be_swapped_between_positions() {
    let key = DataKey::generate();
    let id = PackId::random();
    let (sealed, messages) = uniform_pack(&key, id, 1);
    let [b0, b1] = [sealed.footer.blocks()[0], sealed.footer.blocks()[1]];
    let len = b0.frame_len as usize;
    let mut pack = sealed.bytes.clone();
    pack.copy_within(b1.offset as usize..b1.offset as usize + len, b0.offset as usize);
    pack[b1.offset as usize..b1.offset as usize + len]
        .copy_from_slice(&sealed.bytes[b0.offset as usize..b0.offset as usize + len]);
    assert!(matches!(fetch(&key, id, &pack, 0), Err(PackError::Block { block: 0, .. })));
    // Rewriting the clear block index too does not help: the index is bound into the seal.
    pack[b0.offset as usize + 4..b0.offset as usize + 8].copy_from_slice(&0u32.to_le_bytes());
    let err = fetch(&key, id, &pack, 0).unwrap_err();
    assert!(
        matches!(&err, PackError::Block { block: 0, reason, .. } if reason.contains("authentication")),
        "{err}"
    );
    let report = verify_pack(&key, id, &pack).unwrap();
    assert_eq!(report.affected_messages(), vec![0, 1]);
    assert_eq!(fetch(&key, id, &pack, 2).unwrap(), messages[2].1);
}

#[test]
fn blocks_cannot_be_moved_between_packs() {
    let key = DataKey::generate();
    let (a_id, b_id) = (PackId::random(), PackId::random());
    let (a, _) = uniform_pack(&key, a_id, 2);
    let (b, _) = uniform_pack(&key, b_id, 3);
    let info = a.footer.blocks()[1];
    let range = info.offset as usize..info.offset as usize + info.frame_len as usize;
    let mut spliced = a.bytes.clone();
    spliced[range.clone()].copy_from_slice(&b.bytes[range]);
    let err = fetch(&key, a_id, &spliced, 1).unwrap_err();
    assert!(
        matches!(&err, PackError::Block { block: 1, reason, .. } if reason.contains("authentication")),
        "{err}"
    );
    assert_eq!(verify_pack(&key, a_id, &spliced).unwrap().affected_messages(), vec![1]);
    // Nor is a whole pack valid under another pack's name.
    assert!(matches!(PackFooter::parse(b_id, &key, &a.bytes), Err(PackError::Footer { .. })));
}

#[test]
fn hostile_footer_length_is_an_error_without_allocation() {
    let key = DataKey::generate();
    let id = PackId::random();
    let pack = write_pack(&key, id, config(TARGET), &mixed_messages()).bytes;
    let t = pack.len() - TRAILER_LEN;
    for (field, value) in [(8..12, u32::MAX as u64), (0..8, u64::MAX), (0..8, u64::MAX - 100)] {
        let mut tail = pack[t..].to_vec();
        let bytes = value.to_le_bytes();
        let width = field.len();
        tail[field].copy_from_slice(&bytes[..width]);
        let crc = crc32fast::hash(&tail[..24]);
        tail[24..28].copy_from_slice(&crc.to_le_bytes());
        let err = Trailer::parse(id, &tail).unwrap_err();
        assert!(matches!(err, PackError::Trailer { .. }), "{err}");
        assert!(PackFooter::parse(id, &key, &tail).is_err());
    }
    // A plausible footer length larger than the object: the reader asks for more, it does not allocate.
    let mut tail = pack[t..].to_vec();
    tail[8..12].copy_from_slice(&(MAX_FOOTER_LEN as u32).to_le_bytes());
    let crc = crc32fast::hash(&tail[..24]);
    tail[24..28].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(PackFooter::parse(id, &key, &tail), Err(PackError::TailTooShort { .. })));
}

#[test]
fn hostile_counts_and_lengths_in_a_sealed_footer_are_errors() {
    // Only a holder of the data key can seal a footer, but a buggy writer must not crash a reader.
    let key = DataKey::generate();
    let id = PackId::random();
    let seal_footer = |plain: Vec<u8>, footer_offset: u64, blocks: &[u8]| {
        let mut pack = blocks.to_vec();
        crate::crypto::seal_into(key.secret(), &footer_aad(id, footer_offset), plain, &mut pack).unwrap();
        let footer_len = (pack.len() - blocks.len()) as u32;
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[0..8].copy_from_slice(&footer_offset.to_le_bytes());
        trailer[8..12].copy_from_slice(&footer_len.to_le_bytes());
        trailer[12..20].copy_from_slice(&key.id().to_bytes());
        trailer[20..22].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&trailer[..24]);
        trailer[24..28].copy_from_slice(&crc.to_le_bytes());
        trailer[28..].copy_from_slice(&TRAILER_MAGIC);
        pack.extend_from_slice(&trailer);
        PackFooter::parse(id, &key, &pack)
    };
    let fixed = |blocks: u32, messages: u32| {
        let mut p = id.to_bytes().to_vec();
        p.extend_from_slice(&blocks.to_le_bytes());
        p.extend_from_slice(&messages.to_le_bytes());
        p
    };
    let err = seal_footer(fixed(u32::MAX, u32::MAX), 0, &[]).unwrap_err();
    assert!(err.to_string().contains("need"), "{err}");
    // One block claiming a 4 GiB decompressed length.
    let mut p = fixed(1, 0);
    p.extend_from_slice(&100u32.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = seal_footer(p, 100, &[0u8; 100]).unwrap_err();
    assert!(err.to_string().contains("impossible decompressed length"), "{err}");
    // A message claiming more bytes than its blocks hold.
    let mut p = fixed(1, 1);
    p.extend_from_slice(&100u32.to_le_bytes());
    p.extend_from_slice(&10u32.to_le_bytes());
    p.extend_from_slice(&7u64.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&5u32.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    p.extend_from_slice(&[0u8; 32]);
    let err = seal_footer(p, 100, &[0u8; 100]).unwrap_err();
    assert!(err.to_string().contains("runs past"), "{err}");
}

#[test]
fn hostile_block_header_lengths_are_errors() {
    let mut header =
        FrameHeader { index: 0, body_len: u32::MAX, raw_len: 10, first_record: 0 }.encode().to_vec();
    header.extend_from_slice(&[0u8; 64]);
    assert!(FrameHeader::parse(&header).unwrap_err().contains("outside"));
    let header = FrameHeader { index: 0, body_len: 40, raw_len: u32::MAX, first_record: 0 }.encode();
    let mut frame = header.to_vec();
    frame.extend_from_slice(&[0u8; 40]);
    assert!(FrameHeader::parse(&frame).unwrap_err().contains("decompressed length"));
    let header = FrameHeader { index: 0, body_len: 1000, raw_len: 10, first_record: 0 }.encode();
    assert!(FrameHeader::parse(&header).unwrap_err().contains("runs past"));
}

#[test]
fn writer_refuses_bad_input_and_stays_usable() {
    let key = DataKey::generate();
    let mut w = PackWriter::new(&key, PackId::random(), config(TARGET)).unwrap();
    w.push(5, b"five").unwrap();
    assert!(matches!(w.push(5, b"again"), Err(PackError::Refused { number: 5, .. })));
    assert!(matches!(w.push(4, b"four"), Err(PackError::Refused { number: 4, .. })));
    let meta = vec![0u8; MAX_META_LEN + 1];
    assert!(matches!(w.push_with_meta(6, b"six", &meta), Err(PackError::Refused { number: 6, .. })));
    w.push(6, b"six").unwrap();
    assert_eq!(w.message_count(), 2);
    let sealed = w.finish().unwrap();
    assert_eq!(sealed.footer.entries().iter().map(|e| e.number).collect::<Vec<_>>(), vec![5, 6]);

    for bad in [
        PackConfig { block_target: 10, ..PackConfig::default() },
        PackConfig { zstd_level: 99, ..PackConfig::default() },
    ] {
        assert!(matches!(PackWriter::new(&key, PackId::random(), bad), Err(PackError::Config { .. })));
    }
}

#[test]
fn empty_pack_is_valid() {
    let key = DataKey::generate();
    let id = PackId::random();
    let sealed = PackWriter::new(&key, id, PackConfig::default()).unwrap().finish().unwrap();
    let footer = PackFooter::parse(id, &key, &sealed.bytes).unwrap();
    assert!(footer.entries().is_empty() && footer.blocks().is_empty());
    assert!(verify_pack(&key, id, &sealed.bytes).unwrap().is_intact());
}

#[test]
fn pack_id_round_trips_through_text() {
    let id = PackId::random();
    assert_eq!(id.to_string().parse::<PackId>().unwrap(), id);
    assert!("not-hex".parse::<PackId>().is_err());
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, format!("\"{id}\""));
}
