//! Pre-parse scan: counts a message's structure exactly as mail-parser will walk it, without building it.
//!
//! mail-parser follows unencoded `message/rfc822` nesting without limit (and drops the result
//! recursively), costs far more memory per field and part than their bytes, and searches to the end of
//! the message for each multipart boundary that never comes. So before it runs, this scan walks the
//! same way — mail-parser's own header parser and stream primitives, one header block at a time, with
//! an explicit stack instead of recursion — and stops at the first limit exceeded ([`Refused`]).
//! Every header block is first measured on its raw lines, so a block of a million fields or a 10 MiB
//! line is refused before anything is parsed from it.
//!
//! Boundary searches use `memchr::memmem` and are charged to a work budget (bytes read, plus an upper
//! bound for mail-parser's compares at each `--`); a message that would cost more than
//! `parse_work_factor` times its size (plus 16 MiB) is reported as too costly to parse, not refused.

use mail_parser::parsers::MessageStream;
use mail_parser::{GetHeader, Header, HeaderName, HeaderValue, MessageParser};
use memchr::memmem;

use crate::limits::{Limits, Refused};

/// How many levels of *encoded* enclosed messages mail-parser opens (its `MAX_NESTED_ENCODED`).
const MAX_NESTED_ENCODED: usize = 3;
/// Work every message may spend on boundary searches regardless of its size.
const BASE_WORK: u64 = 16 * 1024 * 1024;
/// Granularity of the index that bounds how many `--` pairs a searched range holds.
const DASH_BLOCK: usize = 4096;

/// What the scan found in a message within the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// MIME entities, the root, containers and enclosed messages included.
    pub parts: usize,
    /// Header fields in the whole message.
    pub header_fields: usize,
    /// Deepest MIME nesting (containers on the path to the deepest entity).
    pub depth: usize,
    /// True when parsing the body would exceed the work budget; the counts then cover only the part
    /// of the message scanned before that.
    pub too_costly: bool,
}

/// Why a walk stopped early.
enum Stop {
    Refused(Refused),
    TooCostly,
}

impl From<Refused> for Stop {
    fn from(r: Refused) -> Self {
        Stop::Refused(r)
    }
}

/// Checks `raw` against `limits` (all but the size, which the caller checks) the way mail-parser will
/// parse it.
pub fn scan(raw: &[u8], limits: &Limits) -> Result<ScanReport, Refused> {
    let len = raw.len() as u64;
    let budget = limits.parse_work_factor.saturating_mul(len).saturating_add(BASE_WORK);
    let mut scanner = Scanner {
        limits,
        parser: MessageParser::default(),
        parts: 0,
        header_fields: 0,
        depth: 0,
        work: 0,
        budget,
    };
    let too_costly = match scanner.walk(raw, 0, MAX_NESTED_ENCODED) {
        Ok(()) => false,
        Err(Stop::TooCostly) => true,
        Err(Stop::Refused(r)) => return Err(r),
    };
    Ok(ScanReport {
        parts: scanner.parts,
        header_fields: scanner.header_fields,
        depth: scanner.depth,
        too_costly,
    })
}

/// The kind of a container on the walk's stack, as mail-parser tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The root or an enclosed message.
    Message,
    Multipart {
        digest: bool,
    },
}

/// One open container: its kind and the boundary that ends its parts (inherited by enclosed messages).
struct Frame {
    kind: Kind,
    boundary: Option<Vec<u8>>,
}

/// What an entity is, from its Content-Type (mail-parser's `mime_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Multipart { digest: bool },
    Message,
    Leaf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    None,
    Base64,
    QuotedPrintable,
}

struct Scanner<'l> {
    limits: &'l Limits,
    parser: MessageParser,
    parts: usize,
    header_fields: usize,
    depth: usize,
    work: u64,
    budget: u64,
}

impl Scanner<'_> {
    /// Walks one message (the root, or the decoded bytes of an encoded enclosed message) whose root
    /// sits at nesting depth `base`; `encoded_levels` is how many encoded enclosed levels remain.
    fn walk(&mut self, data: &[u8], base: usize, encoded_levels: usize) -> Result<(), Stop> {
        let dashes = DashIndex::new(data);
        let mut stream = MessageStream::new(data);
        let mut state = Frame { kind: Kind::Message, boundary: None };
        let mut stack: Vec<Frame> = Vec::new();
        let mut headers: Vec<Header<'_>> = Vec::new();

        'outer: loop {
            let raw_fields = self.measure_header_block(data, stream.offset())?;
            headers.clear();
            let complete = stream.parse_headers(&self.parser, &mut headers);
            self.count_fields(raw_fields.max(headers.len()))?;
            if !complete {
                if !headers.is_empty() {
                    self.count_part()?;
                }
                break;
            }
            self.count_part()?;

            let content_type =
                headers.header_value(&HeaderName::ContentType).and_then(|v| v.as_content_type());
            let mut entity = match content_type {
                Some(ct) => match ct.ctype() {
                    "multipart" => Entity::Multipart { digest: ct.subtype() == Some("digest") },
                    "message" if matches!(ct.subtype(), Some("rfc822") | Some("global")) => Entity::Message,
                    _ => Entity::Leaf,
                },
                None if state.kind == (Kind::Multipart { digest: true }) => Entity::Message,
                None => Entity::Leaf,
            };

            if let Entity::Multipart { digest } = entity {
                let boundary = content_type.and_then(|ct| ct.attribute("boundary")).map(|b| b.as_bytes());
                if let Some(boundary) = boundary {
                    if !boundary.is_empty()
                        && let Some(after) = self.find(data, &dashes, stream.offset(), boundary)?
                    {
                        let boundary = boundary.to_vec();
                        advance_to(&mut stream, after);
                        stack.push(std::mem::replace(
                            &mut state,
                            Frame { kind: Kind::Multipart { digest }, boundary: Some(boundary) },
                        ));
                        self.check_depth(base + stack.len())?;
                        stream.skip_crlf();
                        continue;
                    }
                    entity = Entity::Leaf;
                } else {
                    entity = Entity::Leaf;
                }
            }

            let transfer = match headers.header_value(&HeaderName::ContentTransferEncoding) {
                Some(HeaderValue::Text(t)) if t.eq_ignore_ascii_case("base64") => Transfer::Base64,
                Some(HeaderValue::Text(t)) if t.eq_ignore_ascii_case("quoted-printable") => {
                    Transfer::QuotedPrintable
                }
                _ => Transfer::None,
            };

            if entity == Entity::Message && transfer == Transfer::None {
                let boundary = state.boundary.take();
                stack.push(std::mem::replace(&mut state, Frame { kind: Kind::Message, boundary }));
                self.check_depth(base + stack.len())?;
                continue;
            }

            let start = stream.offset();
            let mut leaf_done = false;
            if entity == Entity::Message {
                // An encoded enclosed message: mail-parser decodes it and parses the result (3 levels).
                let boundary = state.boundary.clone().unwrap_or_default();
                let (end, decoded) = match transfer {
                    Transfer::Base64 => stream.decode_base64_mime(&boundary),
                    _ => stream.decode_quoted_printable_mime(&boundary),
                };
                if end != usize::MAX {
                    self.charge((stream.offset() - start) as u64)?;
                    leaf_done = true;
                    if encoded_levels > 0 {
                        let depth = base + stack.len() + 1;
                        self.check_depth(depth)?;
                        self.walk(&decoded, depth, encoded_levels - 1)?;
                    }
                }
            }
            if !leaf_done {
                match state.boundary.as_deref() {
                    None => stream.seek_end(),
                    Some(boundary) => match self.find(data, &dashes, start, boundary)? {
                        Some(after) => advance_to(&mut stream, after),
                        None => {
                            // mail-parser reads to the end twice (part, then recovery) and forgets it.
                            self.charge((data.len() - start) as u64)?;
                            stream.seek_end();
                            state.boundary = None;
                        }
                    },
                }
            }

            if state.boundary.is_some() {
                loop {
                    if state.kind == Kind::Message {
                        // The part ended an enclosed message: back to its container, boundary and all.
                        let Some(mut parent) = stack.pop() else { break 'outer };
                        parent.boundary = state.boundary.take();
                        state = parent;
                    }
                    if !stream.is_multipart_end() {
                        break;
                    }
                    let Some(parent) = stack.pop() else { break 'outer };
                    state = parent;
                    let Some(boundary) = state.boundary.as_deref() else { break 'outer };
                    match self.find(data, &dashes, stream.offset(), boundary)? {
                        Some(after) => advance_to(&mut stream, after),
                        None => break 'outer,
                    }
                }
            } else if stream.offset() >= data.len() {
                break;
            }
        }
        Ok(())
    }

    /// Measures the header block at `start` on its raw lines, as mail-parser will read it: a line
    /// with only whitespace ends it; a line that starts with a blank continues the field before; any
    /// other line is a field when it has a colon after a name (else mail-parser skips it). Refuses a
    /// field over the size limit; returns the number of fields.
    fn measure_header_block(&mut self, data: &[u8], start: usize) -> Result<usize, Stop> {
        let limit = self.limits.max_header_bytes;
        let mut fields = 0usize;
        let mut current: Option<usize> = None;
        let mut pos = start;
        while pos < data.len() {
            let end = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i + 1);
            let line = &data[pos..end];
            pos = end;
            if line.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            match current.as_mut() {
                Some(size) if line[0] == b' ' || line[0] == b'\t' => *size += line.len(),
                _ if is_field_line(line) => {
                    fields += 1;
                    if self.header_fields.saturating_add(fields) > self.limits.max_header_fields {
                        return Err(Refused::header_fields(self.limits.max_header_fields).into());
                    }
                    current = Some(line.len());
                }
                _ => current = None,
            }
            if let Some(size) = current
                && size > limit
            {
                return Err(Refused::header_bytes(size, limit).into());
            }
        }
        Ok(fields)
    }

    fn count_fields(&mut self, fields: usize) -> Result<(), Stop> {
        self.header_fields = self.header_fields.saturating_add(fields);
        if self.header_fields > self.limits.max_header_fields {
            return Err(Refused::header_fields(self.limits.max_header_fields).into());
        }
        Ok(())
    }

    fn count_part(&mut self) -> Result<(), Stop> {
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            return Err(Refused::parts(self.limits.max_parts).into());
        }
        Ok(())
    }

    fn check_depth(&mut self, depth: usize) -> Result<(), Stop> {
        self.depth = self.depth.max(depth);
        if depth > self.limits.max_nesting_depth {
            return Err(Refused::nesting_depth(depth, self.limits.max_nesting_depth).into());
        }
        Ok(())
    }

    fn charge(&mut self, work: u64) -> Result<(), Stop> {
        self.work = self.work.saturating_add(work);
        if self.work > self.budget { Err(Stop::TooCostly) } else { Ok(()) }
    }

    /// Finds `--boundary` anywhere from `from` on (mail-parser matches it even inside a line) and
    /// returns the offset just after it; charges the bytes read and the compares mail-parser makes.
    fn find(
        &mut self,
        data: &[u8],
        dashes: &DashIndex,
        from: usize,
        boundary: &[u8],
    ) -> Result<Option<usize>, Stop> {
        let mut needle = Vec::with_capacity(boundary.len() + 2);
        needle.extend_from_slice(b"--");
        needle.extend_from_slice(boundary);
        let hay = data.get(from..).unwrap_or_default();
        let found = memmem::find(hay, &needle).map(|i| from + i + needle.len());
        let end = found.unwrap_or(data.len());
        let compares = dashes.pairs(from, end).saturating_mul(boundary.len() as u64);
        self.charge(((end - from) as u64).saturating_add(compares))?;
        Ok(found)
    }
}

/// Moves the stream forward to `offset`.
fn advance_to(stream: &mut MessageStream<'_>, offset: usize) {
    let here = stream.offset();
    if offset > here {
        stream.skip_bytes(offset - here);
    }
}

/// True when mail-parser reads `line` as a header field: a colon after at least one name character.
fn is_field_line(line: &[u8]) -> bool {
    line.iter()
        .position(|&c| !c.is_ascii_whitespace() && c != b':')
        .is_some_and(|i| line[i..].iter().take_while(|&&c| c != b'\n').any(|&c| c == b':'))
}

/// Counts of `--` pairs per block of the message, to bound mail-parser's boundary compares cheaply.
struct DashIndex {
    /// `prefix[k]` = pairs starting in blocks before block `k`.
    prefix: Vec<u64>,
}

impl DashIndex {
    fn new(data: &[u8]) -> Self {
        let mut prefix = Vec::with_capacity(data.len() / DASH_BLOCK + 2);
        prefix.push(0);
        let mut total = 0u64;
        for (k, block) in data.chunks(DASH_BLOCK).enumerate() {
            let start = k * DASH_BLOCK;
            for i in memchr::memchr_iter(b'-', block) {
                if data.get(start + i + 1) == Some(&b'-') {
                    total += 1;
                }
            }
            prefix.push(total);
        }
        DashIndex { prefix }
    }

    /// An upper bound of the pairs starting in `from..to`.
    fn pairs(&self, from: usize, to: usize) -> u64 {
        if to <= from || self.prefix.len() < 2 {
            return 0;
        }
        let last = self.prefix.len() - 1;
        let first_block = (from / DASH_BLOCK).min(last);
        let end_block = to.div_ceil(DASH_BLOCK).min(last);
        self.prefix[end_block] - self.prefix[first_block]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::LimitKind;

    fn nested_multiparts(levels: usize) -> Vec<u8> {
        let mut m = b"Subject: deep\n".to_vec();
        for i in 0..levels {
            m.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n").as_bytes(),
            );
        }
        m.extend_from_slice(b"Content-Type: text/plain\n\ninnermost\n");
        for i in (0..levels).rev() {
            m.extend_from_slice(format!("--b{i}--\n").as_bytes());
        }
        m
    }

    #[test]
    fn nesting_at_the_limit_passes_and_one_more_is_refused() {
        let limits = Limits::default();
        let ok = scan(&nested_multiparts(64), &limits).expect("64 levels are allowed");
        assert_eq!(ok.depth, 64);
        assert!(!ok.too_costly);
        let err = scan(&nested_multiparts(65), &limits).expect_err("65 levels are refused");
        assert_eq!(err.limit, LimitKind::NestingDepth);
    }

    #[test]
    fn unencoded_enclosed_messages_count_as_levels_without_recursion() {
        let mut m = Vec::new();
        for _ in 0..100_000 {
            m.extend_from_slice(b"Content-Type: message/rfc822\n\n");
        }
        m.extend_from_slice(b"Subject: bottom\n\nbody\n");
        let err = scan(&m, &Limits::default()).expect_err("refused");
        assert_eq!(err.limit, LimitKind::NestingDepth);
    }

    #[test]
    fn parts_are_counted_with_the_root() {
        let mut m = b"Content-Type: multipart/mixed; boundary=x\n\n".to_vec();
        for _ in 0..9_999 {
            m.extend_from_slice(b"--x\n\nleaf\n");
        }
        m.extend_from_slice(b"--x--\n");
        let report = scan(&m, &Limits::default()).expect("10,000 entities are allowed");
        assert_eq!(report.parts, 10_000);
        let limits = Limits { max_parts: 9_999, ..Limits::default() };
        assert_eq!(scan(&m, &limits).expect_err("over").limit, LimitKind::Parts);
    }

    #[test]
    fn a_long_header_field_is_refused_before_it_is_parsed() {
        let mut m = b"Subject: ".to_vec();
        m.resize(2 * 1024 * 1024, b'a');
        m.extend_from_slice(b"\n\nbody\n");
        assert_eq!(scan(&m, &Limits::default()).expect_err("over").limit, LimitKind::HeaderBytes);
        let mut folded = b"Subject: start\n".to_vec();
        for _ in 0..30_000 {
            folded.extend_from_slice(b" folded continuation line of the same field\n");
        }
        folded.extend_from_slice(b"\nbody\n");
        assert_eq!(scan(&folded, &Limits::default()).expect_err("over").limit, LimitKind::HeaderBytes);
    }

    #[test]
    fn header_fields_are_counted_across_parts_and_lines_without_colon_are_not_fields() {
        let mut m = b"Content-Type: multipart/mixed; boundary=x\n\n--x\n".to_vec();
        for i in 0..6_000 {
            m.extend_from_slice(format!("X-A{i}: v\nnot a field\n").as_bytes());
        }
        m.extend_from_slice(b"\nleaf\n--x\n");
        for i in 0..4_000 {
            m.extend_from_slice(format!("X-B{i}: v\n").as_bytes());
        }
        m.extend_from_slice(b"\nleaf\n--x--\n");
        // 1 + 6,000 + 4,000 fields.
        assert_eq!(scan(&m, &Limits::default()).expect_err("over").limit, LimitKind::HeaderFields);
        let limits = Limits { max_header_fields: 10_001, ..Limits::default() };
        assert_eq!(scan(&m, &limits).expect("at the limit").header_fields, 10_001);
    }

    #[test]
    fn boundaries_that_never_come_exhaust_the_work_budget_instead_of_the_cpu() {
        let mut m = b"Content-Type: multipart/mixed; boundary=outer\n\n".to_vec();
        for i in 0..9_000 {
            m.extend_from_slice(
                format!("--outer\nContent-Type: multipart/mixed; boundary=\"never{i:05}\"\n\nfiller {i}\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(b"--outer--\n");
        let started = std::time::Instant::now();
        let report = scan(&m, &Limits::default()).expect("never refused");
        assert!(report.too_costly);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    #[test]
    fn ordinary_messages_are_not_too_costly() {
        let m = b"From: a@example.com\nContent-Type: multipart/alternative; boundary=\"=_b\"\n\n\
            --=_b\nContent-Type: text/plain\n\nhello\n--=_b\nContent-Type: text/html\n\n<p>hello</p>\n--=_b--\n";
        let report = scan(m, &Limits::default()).expect("fine");
        assert_eq!(report.parts, 3);
        assert_eq!(report.depth, 1);
        assert_eq!(report.header_fields, 4);
        assert!(!report.too_costly);
    }
}
