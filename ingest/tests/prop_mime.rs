//! Property tests of the MIME layer ([`parse_message`], [`render_message`], [`view::attachment`]): no
//! input panics it; its only error is a refusal whose reason names the limit (the configuration field)
//! it breaks, and a message within every limit is never refused; the work per message is bounded.
//!
//! The case count is small by default (seconds); run longer with
//! `PROPTEST_CASES=100000 cargo nextest run -p arca-ingest prop_`.

use std::time::{Duration, Instant};

use arca_ingest::{LimitKind, Limits, ViewOptions, parse_message, render_message, view};
use proptest::prelude::*;

/// Generous bound on parsing and rendering one message (of at most a few KiB), so that only runaway
/// work fails it.
const MAX_WORK_TIME: Duration = Duration::from_secs(10);

/// One MIME entity to generate.
#[derive(Debug, Clone)]
enum Entity {
    Leaf { content_type: &'static str, encoding: &'static str, charset: &'static str, body: Vec<u8> },
    Multipart { subtype: &'static str, parts: Vec<Entity> },
    Enclosed(Box<Entity>),
}

/// Upper bounds of what the scan counts (`limits.rs` gives the definitions): an enclosed message is
/// counted as two entities and two levels, so a message within these is within the limits.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    parts: usize,
    depth: usize,
    fields: usize,
}

impl Entity {
    fn counts(&self) -> Counts {
        match self {
            Entity::Leaf { .. } => Counts { parts: 1, depth: 0, fields: 3 },
            Entity::Multipart { parts, .. } => {
                let mut c = Counts { parts: 1, depth: 0, fields: 1 };
                for p in parts {
                    let pc = p.counts();
                    c.parts += pc.parts;
                    c.depth = c.depth.max(pc.depth);
                    c.fields += pc.fields;
                }
                c.depth += 1;
                c
            }
            Entity::Enclosed(inner) => {
                let ic = inner.counts();
                Counts { parts: ic.parts + 2, depth: ic.depth + 2, fields: ic.fields + 3 }
            }
        }
    }

    /// Writes the entity's header fields and body; `n` numbers boundaries uniquely.
    fn write(&self, out: &mut Vec<u8>, n: &mut usize) {
        match self {
            Entity::Leaf { content_type, encoding, charset, body } => {
                out.extend(format!("Content-Type: {content_type}; charset={charset}\r\n").as_bytes());
                out.extend(format!("Content-Transfer-Encoding: {encoding}\r\n").as_bytes());
                out.extend(b"Content-Disposition: attachment; filename=\"a.bin\"\r\n\r\n");
                out.extend(body);
                out.extend(b"\r\n");
            }
            Entity::Multipart { subtype, parts } => {
                *n += 1;
                let boundary = format!("=_b{n}_");
                out.extend(
                    format!("Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n\r\n").as_bytes(),
                );
                for p in parts {
                    out.extend(format!("--{boundary}\r\n").as_bytes());
                    p.write(out, n);
                }
                out.extend(format!("--{boundary}--\r\n").as_bytes());
            }
            Entity::Enclosed(inner) => {
                out.extend(b"Content-Type: message/rfc822\r\n\r\n");
                out.extend(b"Subject: enclosed\r\nFrom: b@example.com\r\n");
                inner.write(out, n);
            }
        }
    }
}

/// Body bytes: text, 8-bit bytes, line ends and encoding-like characters, never a `-` (so no body
/// line is a boundary delimiter).
fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range('a', 'z').prop_map(|c| c as u8),
            1 => Just(b' '),
            1 => Just(b'='),
            1 => Just(b'\r'),
            1 => Just(b'\n'),
            1 => 0x80u8..=0xff,
            1 => Just(0u8),
        ],
        0..200,
    )
}

fn leaf() -> impl Strategy<Value = Entity> {
    (
        prop::sample::select(vec!["text/plain", "text/html", "application/octet-stream", "image/png"]),
        prop::sample::select(vec!["7bit", "8bit", "base64", "quoted-printable", "x-unknown"]),
        prop::sample::select(vec!["utf-8", "iso-8859-1", "utf-16", "koi8-r", "x-none"]),
        body(),
    )
        .prop_map(|(content_type, encoding, charset, body)| Entity::Leaf {
            content_type,
            encoding,
            charset,
            body,
        })
}

fn entity() -> impl Strategy<Value = Entity> {
    leaf().prop_recursive(8, 48, 6, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec!["mixed", "alternative", "related", "digest"]),
                // At least one part: mail-parser reads the entity after an empty multipart as nested in
                // it (and the scan counts as mail-parser walks), so the bounds of `Counts` would not hold.
                proptest::collection::vec(inner.clone(), 1..6)
            )
                .prop_map(|(subtype, parts)| Entity::Multipart { subtype, parts }),
            inner.prop_map(|e| Entity::Enclosed(Box::new(e))),
        ]
    })
}

/// A whole message: top-level fields, then the root entity.
fn message(root: &Entity) -> Vec<u8> {
    let mut out =
        b"From: a@example.com\r\nSubject: generated\r\nDate: Mon, 6 Jan 2025 10:00:00 +0000\r\n".to_vec();
    root.write(&mut out, &mut 0);
    out
}

fn small_limits() -> impl Strategy<Value = Limits> {
    (1usize..40, 0usize..8, 4usize..120).prop_map(|(max_parts, max_nesting_depth, max_header_fields)| {
        Limits { max_parts, max_nesting_depth, max_header_fields, ..Limits::default() }
    })
}

/// Parses and renders `raw` (and its first attachments) within `limits`, checking the time taken;
/// answers the refusal, if any, after checking that its reason names its limit.
fn parse_and_render(raw: &[u8], limits: &Limits) -> Result<Option<LimitKind>, TestCaseError> {
    let started = Instant::now();
    let parsed = parse_message(raw, limits);
    let view = render_message(raw, limits, &ViewOptions::default());
    for n in 0..view.attachments.len().min(3) {
        let _ = view::attachment(raw, limits, n);
    }
    prop_assert!(started.elapsed() < MAX_WORK_TIME, "took {:?}", started.elapsed());
    match parsed {
        Ok(doc) => {
            prop_assert_eq!(doc.size, raw.len() as u64);
            Ok(None)
        }
        Err(refused) => {
            prop_assert!(
                refused.reason.contains(refused.limit.name()),
                "the reason names the limit: {}",
                refused.reason
            );
            Ok(Some(refused.limit))
        }
    }
}

proptest! {
    #[test]
    fn prop_mime_any_bytes_parse_and_render_without_panic(
        raw in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..4096),
            (entity(), proptest::collection::vec(any::<u8>(), 0..64), any::<prop::sample::Index>())
                .prop_map(|(root, noise, at)| {
                    // A generated message with arbitrary bytes spliced in somewhere.
                    let mut raw = message(&root);
                    let at = at.index(raw.len() + 1);
                    raw.splice(at..at, noise);
                    raw
                }),
        ],
        limits in small_limits(),
    ) {
        parse_and_render(&raw, &limits)?;
    }

    #[test]
    fn prop_mime_refuses_exactly_over_a_limit_naming_it(root in entity(), limits in small_limits()) {
        let raw = message(&root);
        let c = root.counts();
        // The top-level From, Subject and Date come on top of the entities' own fields.
        let counts = Counts { fields: c.fields + 3, ..c };
        match parse_and_render(&raw, &limits)? {
            None => {}
            Some(LimitKind::Parts) => prop_assert!(counts.parts > limits.max_parts, "{counts:?}"),
            Some(LimitKind::NestingDepth) => {
                prop_assert!(counts.depth > limits.max_nesting_depth, "{counts:?}")
            }
            Some(LimitKind::HeaderFields) => {
                prop_assert!(counts.fields > limits.max_header_fields, "{counts:?}")
            }
            Some(other) => prop_assert!(false, "refused over {other} by a small generated message"),
        }
    }
}
