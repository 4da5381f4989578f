//! Property tests of the MBOX splitter ([`MboxReader`], [`write_mboxrd`]): no input panics it, every
//! error names the byte offset and every refusal the message number and the limit, its work is bounded
//! by the input, and what the writer writes reads back byte for byte.
//!
//! The case count is small by default (seconds); run longer with
//! `PROPTEST_CASES=100000 cargo nextest run -p arca-ingest prop_`.

use std::path::Path;
use std::time::{Duration, Instant};

use arca_ingest::{MboxOptions, MboxReader, MboxVariant, ReadError, SourceItem, write_mboxrd};
use proptest::prelude::*;

/// Generous bound on one split (of at most a few KiB), so that only runaway work fails it.
const MAX_SPLIT_TIME: Duration = Duration::from_secs(5);

/// Byte strings that look like MBOX often: separator lines, quoted `From ` lines, blank lines, line
/// ends of every kind, and arbitrary bytes in between.
fn mboxish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"From a@example.com Mon Jan  6 10:00:00 2025\n".to_vec()),
        Just(b"From \n".to_vec()),
        Just(b">From quoted\n".to_vec()),
        Just(b">>From deeper\n".to_vec()),
        Just(b"Subject: x\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b" \t\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    proptest::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
}

fn options(max_message_bytes: u64, mboxo: bool) -> MboxOptions {
    let variant = if mboxo { MboxVariant::Mboxo } else { MboxVariant::Mboxrd };
    MboxOptions { variant, max_message_bytes, ..MboxOptions::default() }
}

proptest! {
    #[test]
    fn prop_mbox_any_input_splits_without_panic_naming_positions(
        input in prop_oneof![mboxish(), proptest::collection::vec(any::<u8>(), 0..2048)],
        max in 1u64..512,
        mboxo in any::<bool>(),
    ) {
        let started = Instant::now();
        let items: Vec<_> =
            MboxReader::new(&input[..], Path::new("x.mbox"), Vec::new(), options(max, mboxo)).collect();
        prop_assert!(started.elapsed() < MAX_SPLIT_TIME, "split took {:?}", started.elapsed());
        let separators = 1 + input.windows(6).filter(|w| w[0] == b'\n' && &w[1..] == b"From ").count();
        prop_assert!(items.len() <= separators, "{} items for {separators} separator lines", items.len());
        let mut kept = 0usize;
        for (i, item) in items.iter().enumerate() {
            match item {
                Ok(SourceItem::Message(m)) => {
                    prop_assert_eq!(&m.source, &format!("x.mbox#{}", i + 1));
                    prop_assert!(m.raw.len() as u64 <= max, "a message over the limit was kept");
                    kept += m.raw.len();
                }
                Ok(SourceItem::Refused { source, size, refused, .. }) => {
                    prop_assert_eq!(source, &format!("x.mbox#{}", i + 1));
                    prop_assert!(*size > max);
                    prop_assert!(refused.reason.contains("max_message_bytes"), "{}", refused.reason);
                }
                Err(e @ ReadError::NotMbox { offset, .. }) => {
                    prop_assert_eq!(i, 0, "only the file's start can make it not an MBOX");
                    prop_assert_eq!(items.len(), 1, "nothing is read after it");
                    prop_assert!((*offset as usize) < input.len());
                    prop_assert!(input[..*offset as usize].iter().all(u8::is_ascii_whitespace));
                    let text = e.to_string();
                    prop_assert!(text.contains(&format!("byte {offset}")), "{}", text);
                    prop_assert!(!text.contains('\n') && !text.contains('\r'), "escaped: {}", text);
                }
                Err(e) => prop_assert!(false, "in-memory reads do not fail: {e}"),
            }
        }
        prop_assert!(kept <= input.len(), "more message bytes ({kept}) than input ({})", input.len());
    }

    #[test]
    fn prop_mbox_written_messages_read_back_byte_for_byte(
        messages in proptest::collection::vec(mboxish(), 0..12),
    ) {
        // The one documented exception of write_mboxrd: a message ending in CR LF CR.
        let messages: Vec<Vec<u8>> = messages.into_iter().filter(|m| !m.ends_with(b"\r\n\r")).collect();
        let mut file = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            write_mboxrd(&mut file, i as i64 * 86_400, m).expect("writing to memory");
        }
        let read: Vec<Vec<u8>> =
            MboxReader::new(&file[..], Path::new("x.mbox"), Vec::new(), MboxOptions::default())
                .map(|item| match item {
                    Ok(SourceItem::Message(m)) => Ok(m.raw),
                    other => Err(format!("{other:?}")),
                })
                .collect::<Result<_, _>>()
                .map_err(TestCaseError::fail)?;
        prop_assert_eq!(read, messages);
    }
}
