//! Raw message bytes to the index document ([`MessageDoc`]), within the [`Limits`].
//!
//! The only error is a refusal over a limit. Anything else — no header fields, broken MIME, unknown
//! charsets, a structure too costly to parse — still yields a document (at least the size and the
//! warnings), because such a message is archived as raw bytes (DESIGN invariant 7).
//!
//! Order of work: the size check; bare-CR line ends read as LF (a copy, for parsing only); the
//! pre-parse [`scan`](crate::scan) that enforces the structural limits; then mail-parser; then a walk
//! over its result, without recursion, into the document (see [`arca_types::document`] for the rules);
//! then mail-parser's tree is dismantled iteratively, since its own drop recurses per enclosed level.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use arca_types::document::{Address, MessageDoc};
use arca_types::query::priority_from_headers;
use encoding_rs::WINDOWS_1252;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Addr, Encoding, Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};

use crate::charset::{is_bare_utf16_label, is_known_label, is_utf8_label, sniff_utf16, utf8_or_windows_1252};
use crate::date::parse_date_lenient;
use crate::html::html_to_text;
use crate::limits::{Limits, Refused};
use crate::scan::scan;

/// Most distinct warnings kept per message; further ones are only counted.
const MAX_WARNINGS: usize = 32;
/// A raw body is indexed as text only when its first bytes hold no NUL (i.e. it does not look binary).
const TEXT_SNIFF_BYTES: usize = 4096;

/// Parses `raw` once into its index document, or refuses it over a limit (see the module docs).
pub fn parse_message(raw: &[u8], limits: &Limits) -> Result<MessageDoc, Refused> {
    let size = raw.len() as u64;
    if size > limits.max_message_bytes {
        return Err(Refused::message_bytes(size, false, limits.max_message_bytes));
    }
    let mut b = Builder::new(size, limits);
    let normalized: Vec<u8>;
    let data: &[u8] = if memchr::memchr(b'\n', raw).is_none() && memchr::memchr(b'\r', raw).is_some() {
        normalized = raw.iter().map(|&c| if c == b'\r' { b'\n' } else { c }).collect();
        b.warn("line ends are bare CR; read as LF for parsing".to_string());
        &normalized
    } else {
        raw
    };

    let report = scan(data, limits)?;
    let parser = MessageParser::default();
    if report.too_costly {
        b.warn(format!(
            "MIME structure too costly to parse (boundary searches over {}x the message size); \
             indexed by its header fields and raw text",
            limits.parse_work_factor
        ));
        b.headers_and_raw_text(&parser, data);
        return Ok(b.finish());
    }
    // mail-parser asserts some of its internal states with `debug_assert!` (panics in debug builds
    // only, on messages the scan lets through); such a message is indexed by its headers instead.
    match std::panic::catch_unwind(|| parser.parse(data)) {
        Ok(Some(message)) => {
            b.message(&message);
            drop_iteratively(message);
        }
        Ok(None) => {
            b.warn("no header fields found: not parsed as a message; raw text indexed".to_string());
            b.raw_text(data);
        }
        Err(_) => {
            b.warn("MIME parser failed an internal check; indexed by header fields and raw text".to_string());
            b.headers_and_raw_text(&parser, data);
        }
    }
    Ok(b.finish())
}

/// Where a piece of text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Body,
    Attachment,
}

/// A text-like attachment type (SRCH-06 default: TXT, CSV, HTM/HTML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    Plain,
    Html,
}

/// The document under construction, with the text caps and the warnings (also used by the message
/// view, `view.rs`, so that both read header fields and bodies the same way).
pub(crate) struct Builder<'l> {
    doc: MessageDoc,
    limits: &'l Limits,
    body_cut: bool,
    attachment_cut: bool,
    warnings: BTreeMap<String, usize>,
    order: Vec<String>,
    encoding_problems: usize,
}

impl<'l> Builder<'l> {
    pub(crate) fn new(size: u64, limits: &'l Limits) -> Self {
        Builder {
            doc: MessageDoc::empty(size),
            limits,
            body_cut: false,
            attachment_cut: false,
            warnings: BTreeMap::new(),
            order: Vec::new(),
            encoding_problems: 0,
        }
    }

    pub(crate) fn warn(&mut self, warning: String) {
        let count = self.warnings.entry(warning.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.order.push(warning);
        }
    }

    pub(crate) fn finish(mut self) -> MessageDoc {
        if self.encoding_problems > 0 {
            self.warn(format!(
                "{} MIME part(s) could not be decoded as declared and were read as raw text",
                self.encoding_problems
            ));
        }
        if self.body_cut {
            self.warn(format!("body text cut at {} bytes", self.limits.max_text_bytes));
        }
        if self.attachment_cut {
            self.warn(format!("attachment text cut at {} bytes", self.limits.max_text_bytes));
        }
        let extra = self.order.len().saturating_sub(MAX_WARNINGS);
        for w in self.order.into_iter().take(MAX_WARNINGS) {
            let n = self.warnings.get(&w).copied().unwrap_or(1);
            self.doc.parse_warnings.push(if n > 1 { format!("{w} ({n} times)") } else { w });
        }
        if extra > 0 {
            self.doc.parse_warnings.push(format!("{extra} more distinct warnings not listed"));
        }
        self.doc
    }

    /// Appends `text` to the body or attachment text, a line break between pieces, within the cap.
    fn push_text(&mut self, target: Target, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let max = self.limits.max_text_bytes;
        let (field, cut) = match target {
            Target::Body => (&mut self.doc.body_text, &mut self.body_cut),
            Target::Attachment => (&mut self.doc.attachment_text, &mut self.attachment_cut),
        };
        if *cut {
            return;
        }
        if !field.is_empty() {
            if field.len() + 1 > max {
                *cut = true;
                return;
            }
            field.push('\n');
        }
        let room = max - field.len();
        if text.len() <= room {
            field.push_str(text);
        } else {
            let mut end = room;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            field.push_str(&text[..end]);
            *cut = true;
        }
    }

    /// The bytes of text a target holds.
    fn used(&self, target: Target) -> usize {
        match target {
            Target::Body => self.doc.body_text.len(),
            Target::Attachment => self.doc.attachment_text.len(),
        }
    }

    /// The room left in a target, for converters that stop early.
    fn room(&self, target: Target) -> usize {
        self.limits.max_text_bytes.saturating_sub(self.used(target))
    }

    /// Indexes bytes that could not be parsed as MIME as body text, when they do not look binary.
    pub(crate) fn raw_text(&mut self, bytes: &[u8]) {
        if bytes[..bytes.len().min(TEXT_SNIFF_BYTES)].contains(&0) {
            return;
        }
        let prefix = &bytes[..bytes.len().min(self.limits.max_text_bytes)];
        let text = match std::str::from_utf8(prefix) {
            Ok(s) => Cow::Borrowed(s),
            // Cut inside a character at the end: keep the valid part.
            Err(e) if e.error_len().is_none() => {
                Cow::Borrowed(std::str::from_utf8(&prefix[..e.valid_up_to()]).unwrap_or_default())
            }
            Err(_) => WINDOWS_1252.decode_without_bom_handling(prefix).0,
        };
        self.push_text(Target::Body, &text);
        if bytes.len() > prefix.len() {
            self.body_cut = true;
        }
    }

    /// The fallback for a body that is not parsed: the top-level header fields, then the rest as text.
    fn headers_and_raw_text(&mut self, parser: &MessageParser, data: &[u8]) {
        let body_start = match parser.parse_headers(data) {
            Some(message) => {
                self.header_fields(&message);
                header_end(data)
            }
            None => 0,
        };
        self.raw_text(&data[body_start..]);
    }

    /// Fills the document from a parsed message: header fields, then every part, enclosed messages
    /// breadth-first.
    fn message(&mut self, root: &Message<'_>) {
        self.header_fields(root);
        let mut queue: VecDeque<(&Message<'_>, Target)> = VecDeque::new();
        queue.push_back((root, Target::Body));
        while let Some((message, target)) = queue.pop_front() {
            if target == Target::Attachment {
                let summary = enclosed_summary(message);
                self.push_text(Target::Attachment, &summary);
            }
            self.body_text(message, target);
            let mut in_body = vec![false; message.parts.len()];
            for &id in message.text_body.iter().chain(&message.html_body) {
                if let Some(flag) = in_body.get_mut(id as usize) {
                    *flag = true;
                }
            }
            for (id, part) in message.parts.iter().enumerate() {
                if part.is_encoding_problem {
                    self.encoding_problems += 1;
                }
                let is_text = matches!(part.body, PartType::Text(_) | PartType::Html(_));
                if matches!(part.body, PartType::Multipart(_))
                    || (is_text && in_body[id])
                    || is_signature(part)
                {
                    continue;
                }
                let name = part.attachment_name().map(str::trim).filter(|n| !n.is_empty());
                let disposed = part.content_disposition().is_some_and(|d| d.is_attachment());
                if let PartType::Message(enclosed) = &part.body {
                    self.doc.has_attachments = true;
                    if let Some(name) = name {
                        self.doc.attachment_names.push(name.to_string());
                    }
                    queue.push_back((enclosed, Target::Attachment));
                } else if name.is_some() || disposed {
                    self.doc.has_attachments = true;
                    if let Some(name) = name {
                        self.doc.attachment_names.push(name.to_string());
                    }
                    if let Some(kind) = text_kind(part, name) {
                        self.attachment_text(message, id, part, kind);
                    }
                } else if is_report_text(part) {
                    // Inline text that is neither body nor attachment (a patch, returned headers,
                    // a delivery report) belongs to its message's text.
                    self.part_text(message, id, part, target);
                }
            }
        }
    }

    /// Adds the text of a message's body: the text parts; the HTML parts when there are none or they
    /// hold only blanks.
    pub(crate) fn body_text(&mut self, message: &Message<'_>, target: Target) {
        let before = self.used(target);
        for &id in &message.text_body {
            if let Some(part) = message.parts.get(id as usize) {
                self.part_text(message, id as usize, part, target);
            }
        }
        if self.used(target) == before && message.html_body != message.text_body {
            for &id in &message.html_body {
                if let Some(part) = message.parts.get(id as usize) {
                    self.part_text(message, id as usize, part, target);
                }
            }
        }
    }

    /// Subject, addresses, date, ids and priority from the root part's header fields.
    pub(crate) fn header_fields(&mut self, message: &Message<'_>) {
        let Some(root) = message.parts.first() else { return };
        let raw = message.raw_message();
        let (mut x_priority, mut importance, mut priority, mut ms_priority) = (None, None, None, None);
        let mut date_seen = false;
        for header in &root.headers {
            match &header.name {
                HeaderName::Subject if self.doc.subject.is_none() => {
                    let value = self.header_value(raw, header);
                    self.doc.subject = value.as_text().map(str::to_string);
                }
                HeaderName::From | HeaderName::To | HeaderName::Cc | HeaderName::Bcc => {
                    let value = self.header_value(raw, header);
                    let list = match header.name {
                        HeaderName::From => &mut self.doc.from,
                        HeaderName::To => &mut self.doc.to,
                        HeaderName::Cc => &mut self.doc.cc,
                        _ => &mut self.doc.bcc,
                    };
                    push_addresses(list, &value);
                }
                HeaderName::Date if !date_seen => {
                    date_seen = true;
                    self.doc.date = match header.value.as_datetime() {
                        Some(dt) if dt.is_valid() => Some(dt.to_timestamp()),
                        _ => parse_date_lenient(&unfolded(raw, header)),
                    };
                    if self.doc.date.is_none() {
                        self.warn("Date header cannot be read".to_string());
                    }
                }
                HeaderName::MessageId if self.doc.message_id.is_none() => {
                    self.doc.message_id =
                        first_id(&header.value).or_else(|| clean_id(&unfolded(raw, header)));
                }
                HeaderName::InReplyTo if self.doc.in_reply_to.is_none() => {
                    self.doc.in_reply_to =
                        first_id(&header.value).or_else(|| clean_id(&unfolded(raw, header)));
                }
                name => {
                    let slot = match name.as_str().to_ascii_lowercase().as_str() {
                        "x-priority" => &mut x_priority,
                        "importance" => &mut importance,
                        "priority" => &mut priority,
                        "x-msmail-priority" => &mut ms_priority,
                        _ => continue,
                    };
                    if slot.is_none() {
                        *slot = Some(unfolded(raw, header));
                    }
                }
            }
        }
        self.doc.priority = priority_from_headers(
            x_priority.as_deref(),
            importance.as_deref(),
            priority.as_deref(),
            ms_priority.as_deref(),
        );
    }

    /// The value of a header field; raw 8-bit bytes that are not UTF-8 are read as Windows-1252 and
    /// parsed again.
    fn header_value<'h>(&mut self, raw: &[u8], header: &'h Header<'_>) -> Cow<'h, HeaderValue<'h>> {
        let Some(bytes) = raw.get(header.offset_start as usize..header.offset_end as usize) else {
            return Cow::Borrowed(&header.value);
        };
        if std::str::from_utf8(bytes).is_ok() {
            return Cow::Borrowed(&header.value);
        }
        self.warn(format!(
            "{}: raw 8-bit bytes that are not UTF-8, read as Windows-1252",
            header.name.as_str()
        ));
        let text = WINDOWS_1252.decode_without_bom_handling(bytes).0;
        let mut stream = MessageStream::new(text.as_bytes());
        let value = match header.name {
            HeaderName::Subject => stream.parse_unstructured(),
            _ => stream.parse_address(),
        };
        Cow::Owned(value.into_owned())
    }

    /// Adds the text of a text or HTML part (charset repaired, HTML converted) to `target`.
    pub(crate) fn part_text(
        &mut self,
        message: &Message<'_>,
        id: usize,
        part: &MessagePart<'_>,
        target: Target,
    ) {
        let (text, html) = match &part.body {
            PartType::Text(s) => (s.as_ref(), false),
            PartType::Html(s) => (s.as_ref(), true),
            // Delivery reports (see `is_report_text`); inline media in the body list are not text.
            PartType::Binary(b) | PartType::InlineBinary(b) if is_report_text(part) => {
                let text = utf8_or_windows_1252(b).into_owned();
                self.push_text(target, &text);
                return;
            }
            _ => return,
        };
        let text = self.repair_charset(message, id, part, text);
        if html {
            let (converted, _) = html_to_text(&text, self.room(target));
            self.push_text(target, &converted);
        } else {
            self.push_text(target, &text);
        }
    }

    /// Adds the contents of a text-like attachment to the attachment text.
    fn attachment_text(&mut self, message: &Message<'_>, id: usize, part: &MessagePart<'_>, kind: TextKind) {
        let decoded: Cow<'_, str> = match &part.body {
            PartType::Text(s) | PartType::Html(s) => self.repair_charset(message, id, part, s),
            PartType::Binary(b) | PartType::InlineBinary(b) => utf8_or_windows_1252(b),
            _ => return,
        };
        if kind == TextKind::Html || matches!(part.body, PartType::Html(_)) {
            let (converted, _) = html_to_text(&decoded, self.room(Target::Attachment));
            self.push_text(Target::Attachment, &converted);
        } else {
            self.push_text(Target::Attachment, &decoded);
        }
    }

    /// Re-decodes a text part where mail-parser's decoding is known to go wrong (see `charset.rs`).
    pub(crate) fn repair_charset<'t>(
        &mut self,
        message: &Message<'_>,
        id: usize,
        part: &MessagePart<'_>,
        text: &'t str,
    ) -> Cow<'t, str> {
        let label = part.content_type().and_then(|ct| ct.attribute("charset")).map(str::to_string);
        if let Some(label) = &label {
            if is_bare_utf16_label(label) {
                if let Some(fixed) = transfer_decoded(message, part).and_then(|b| sniff_utf16(&b)) {
                    return Cow::Owned(fixed);
                }
                return Cow::Borrowed(text);
            }
            if !is_utf8_label(label) && !is_known_label(label) {
                self.warn(format!("part {id}: unknown charset '{label}', read as UTF-8 (else Windows-1252)"));
            }
        }
        let utf8_expected = label.as_deref().is_none_or(|l| is_utf8_label(l) || !is_known_label(l));
        if utf8_expected
            && text.contains('\u{fffd}')
            && let Some(bytes) = transfer_decoded(message, part)
            && std::str::from_utf8(&bytes).is_err()
        {
            self.warn(format!("part {id}: text is not valid UTF-8, read as Windows-1252"));
            return Cow::Owned(WINDOWS_1252.decode_without_bom_handling(&bytes).0.into_owned());
        }
        Cow::Borrowed(text)
    }
}

/// The body bytes of a part with the transfer encoding undone (for re-decoding its charset).
pub(crate) fn transfer_decoded(message: &Message<'_>, part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let body = message.raw_message().get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        Encoding::Base64 => base64_decode(body),
        Encoding::QuotedPrintable => quoted_printable_decode(body),
        Encoding::None => Some(body.to_vec()),
    }
}

/// Signature parts of signed messages, which are not attachments to the user.
pub(crate) fn is_signature(part: &MessagePart<'_>) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("application")
            && ct.subtype().is_some_and(|s| {
                ["pgp-signature", "pkcs7-signature", "x-pkcs7-signature"]
                    .iter()
                    .any(|t| s.eq_ignore_ascii_case(t))
            })
    })
}

/// Inline parts whose text is indexed with their message: text/* and delivery reports.
pub(crate) fn is_report_text(part: &MessagePart<'_>) -> bool {
    match &part.body {
        PartType::Text(_) | PartType::Html(_) => true,
        PartType::Binary(_) | PartType::InlineBinary(_) => part.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct.subtype().is_some_and(|s| {
                    ["delivery-status", "disposition-notification", "feedback-report"]
                        .iter()
                        .any(|t| s.eq_ignore_ascii_case(t))
                })
        }),
        _ => false,
    }
}

/// Whether an attachment's contents are indexed, by type or else by file extension.
fn text_kind(part: &MessagePart<'_>, name: Option<&str>) -> Option<TextKind> {
    if let Some(ct) = part.content_type()
        && ct.ctype().eq_ignore_ascii_case("text")
    {
        let sub = ct.subtype().unwrap_or_default().to_ascii_lowercase();
        match sub.as_str() {
            "plain" | "csv" | "comma-separated-values" => return Some(TextKind::Plain),
            "html" => return Some(TextKind::Html),
            _ => {}
        }
    }
    let ext = name?.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "txt" | "csv" => Some(TextKind::Plain),
        "htm" | "html" => Some(TextKind::Html),
        _ => None,
    }
}

/// Subject, sender and recipients of an enclosed message, as lines of text.
fn enclosed_summary(message: &Message<'_>) -> String {
    let mut lines = Vec::new();
    let Some(root) = message.parts.first() else { return String::new() };
    for header in &root.headers {
        let label = match header.name {
            HeaderName::Subject => "Subject",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::Cc => "Cc",
            _ => continue,
        };
        let value = match &header.value {
            HeaderValue::Text(t) => t.to_string(),
            value => {
                let mut list = Vec::new();
                push_addresses(&mut list, value);
                list.iter()
                    .map(|a| match (&a.name, &a.address) {
                        (Some(n), Some(a)) => format!("{n} <{a}>"),
                        (Some(n), None) => n.clone(),
                        (None, Some(a)) => a.clone(),
                        (None, None) => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        lines.push(format!("{label}: {value}"));
    }
    lines.join("\n")
}

/// Appends the mailboxes of an address header value (group members flattened).
fn push_addresses(list: &mut Vec<Address>, value: &HeaderValue<'_>) {
    let convert = |a: &Addr<'_>| Address {
        name: a.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string),
        address: a.address.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string),
    };
    if let HeaderValue::Address(address) = value {
        match address {
            mail_parser::Address::List(addrs) => list.extend(addrs.iter().map(convert)),
            mail_parser::Address::Group(groups) => {
                list.extend(groups.iter().flat_map(|g| g.addresses.iter()).map(convert))
            }
        }
    }
}

/// The first message id of an id header value, whitespace runs (folding) made single blanks.
fn first_id(value: &HeaderValue<'_>) -> Option<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id),
        HeaderValue::TextList(ids) => ids.first().and_then(|id| clean_id(id)),
        _ => None,
    }
}

/// An id without angle brackets and surrounding blanks, inner whitespace runs made single blanks.
fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let id = id.split_whitespace().collect::<Vec<_>>().join(" ");
    (!id.is_empty()).then_some(id)
}

/// A header field's raw value, unfolded (line breaks become blanks).
pub(crate) fn unfolded(raw: &[u8], header: &Header<'_>) -> String {
    let bytes = raw.get(header.offset_start as usize..header.offset_end as usize).unwrap_or_default();
    utf8_or_windows_1252(bytes).replace(['\r', '\n'], " ").trim().to_string()
}

/// The offset after the blank line that ends the top-level header block (or the end).
pub(crate) fn header_end(data: &[u8]) -> usize {
    let lf = memchr::memmem::find(data, b"\n\n").map(|p| p + 2);
    let crlf = memchr::memmem::find(data, b"\n\r\n").map(|p| p + 3);
    match (lf, crlf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(data.len()),
    }
}

/// Drops mail-parser's tree level by level: its own drop recurses once per enclosed message.
pub(crate) fn drop_iteratively(root: Message<'_>) {
    let mut pending = vec![root];
    while let Some(mut message) = pending.pop() {
        for part in &mut message.parts {
            if matches!(part.body, PartType::Message(_))
                && let PartType::Message(inner) = std::mem::take(&mut part.body)
            {
                pending.push(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::LimitKind;
    use arca_types::query::Priority;

    fn parse(raw: &[u8]) -> MessageDoc {
        parse_message(raw, &Limits::default()).expect("within the limits")
    }

    #[test]
    fn plain_message_yields_headers_and_body() {
        let doc = parse(
            b"From: \"Erika Mustermann\" <erika@example.com>\r\nTo: a@example.com, B <b@example.com>\r\n\
              Cc: team: c@example.com, d@example.com;\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
              Date: Mon, 06 Jan 2025 10:00:00 +0100\r\nMessage-ID: <id-1@example.com>\r\n\
              In-Reply-To: <id-0@example.com> <other@example.com>\r\nX-Priority: 1 (Highest)\r\n\r\nHello world\r\n",
        );
        assert_eq!(doc.subject.as_deref(), Some("Grüße"));
        assert_eq!(
            doc.from,
            vec![Address {
                name: Some("Erika Mustermann".into()),
                address: Some("erika@example.com".into())
            }]
        );
        assert_eq!(doc.to.len(), 2);
        assert_eq!(
            doc.cc.iter().filter_map(|a| a.address.as_deref()).collect::<Vec<_>>(),
            ["c@example.com", "d@example.com"]
        );
        assert_eq!(doc.date, Some(1_736_154_000));
        assert_eq!(doc.message_id.as_deref(), Some("id-1@example.com"));
        assert_eq!(doc.in_reply_to.as_deref(), Some("id-0@example.com"));
        assert_eq!(doc.priority, Priority::High);
        assert_eq!(doc.body_text, "Hello world");
        assert!(!doc.has_attachments);
        assert!(doc.parse_warnings.is_empty(), "{:?}", doc.parse_warnings);
        assert_eq!(doc.size, 327);
    }

    #[test]
    fn html_only_body_is_converted_and_alternative_prefers_text() {
        let doc =
            parse(b"Subject: h\nContent-Type: text/html\n\n<p>Hallo <b>Welt</b></p><script>x()</script>");
        assert_eq!(doc.body_text, "Hallo Welt");
        let doc = parse(
            b"Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain words\n\
              --b\nContent-Type: text/html\n\n<p>html words</p>\n--b--\n",
        );
        assert_eq!(doc.body_text, "plain words");
        assert!(!doc.has_attachments);
        let doc = parse(
            b"Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n \n\n\
              --b\nContent-Type: text/html\n\n<p>only html has words</p>\n--b--\n",
        );
        assert_eq!(doc.body_text, "only html has words", "an empty text part counts as none");
    }

    #[test]
    fn attachments_follow_the_documented_rule() {
        let doc = parse(
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n\
              --b\nContent-Type: text/csv; name=\"Rechnung.csv\"\nContent-Disposition: attachment; filename=\"Rechnung.csv\"\n\n\
              Betrag;Rechnung\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=notes.txt\n\
              Content-Transfer-Encoding: base64\n\nSGFsbG8gTm90aXo=\n--b\nContent-Type: image/png\nContent-ID: <logo>\n\nPNG\n\
              --b\nContent-Type: application/pdf; name=a.pdf\n\n%PDF\n--b--\n",
        );
        assert!(doc.has_attachments);
        assert_eq!(doc.attachment_names, ["Rechnung.csv", "notes.txt", "a.pdf"]);
        assert_eq!(doc.attachment_text, "Betrag;Rechnung\nHallo Notiz");
        assert_eq!(doc.body_text, "see attached");

        let signed = parse(
            b"Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\n\n--s\n\
              Content-Type: text/plain\n\nsigned text\n--s\nContent-Type: application/pgp-signature; name=signature.asc\n\n\
              -----BEGIN PGP SIGNATURE-----\n--s--\n",
        );
        assert!(!signed.has_attachments, "a signature is not an attachment");
        assert!(signed.attachment_names.is_empty());
    }

    #[test]
    fn enclosed_message_is_an_attachment_with_its_text() {
        let doc = parse(
            b"Subject: Fwd\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nforwarded\n\
              --b\nContent-Type: message/rfc822\n\nSubject: original subject\nFrom: o@example.com\n\noriginal body\n--b--\n",
        );
        assert!(doc.has_attachments);
        assert_eq!(doc.body_text, "forwarded");
        assert!(doc.attachment_text.contains("Subject: original subject"), "{}", doc.attachment_text);
        assert!(doc.attachment_text.contains("original body"), "{}", doc.attachment_text);
        assert!(doc.attachment_text.contains("o@example.com"));
    }

    #[test]
    fn legacy_charsets_are_decoded() {
        let doc = parse(b"Subject: K\xf6ln\nFrom: J\xfcrgen <j@example.com>\n\nbody\n");
        assert_eq!(doc.subject.as_deref(), Some("Köln"));
        assert_eq!(doc.from[0].name.as_deref(), Some("Jürgen"));
        assert!(doc.parse_warnings.iter().any(|w| w.contains("Windows-1252")), "{:?}", doc.parse_warnings);

        let doc =
            parse(b"Content-Type: text/plain; charset=koi8-r\n\n\xe2\xc1\xcc\xc1\xcc\xc1\xca\xcb\xc1\n");
        assert_eq!(doc.body_text, "Балалайка");

        let doc = parse(b"Content-Type: text/plain; charset=utf-8\n\nL\xfcgendetektor\n");
        assert_eq!(doc.body_text, "Lügendetektor");

        let doc = parse(b"Content-Type: text/plain; charset=x-no-such-charset\n\nPhantasmagorie\n");
        assert_eq!(doc.body_text, "Phantasmagorie");
        assert!(doc.parse_warnings.iter().any(|w| w.contains("unknown charset 'x-no-such-charset'")));
    }

    #[test]
    fn limits_refuse_with_the_limit_named() {
        let limits = Limits { max_message_bytes: 10, ..Limits::default() };
        let err = parse_message(b"Subject: too long\n\n", &limits).expect_err("over");
        assert_eq!(err.limit, LimitKind::MessageBytes);
        assert!(err.reason.contains("max_message_bytes"), "{}", err.reason);
        let mut deep = Vec::new();
        for _ in 0..65 {
            deep.extend_from_slice(b"Content-Type: message/rfc822\n\n");
        }
        deep.extend_from_slice(b"Subject: x\n\ny\n");
        assert_eq!(
            parse_message(&deep, &Limits::default()).expect_err("deep").limit,
            LimitKind::NestingDepth
        );
    }

    #[test]
    fn deep_enclosed_messages_within_the_limit_parse_and_drop_without_recursion() {
        let mut m = Vec::new();
        for _ in 0..64 {
            m.extend_from_slice(b"Content-Type: message/rfc822\n\n");
        }
        m.extend_from_slice(b"Subject: bottom\n\nhxbottom\n");
        let doc = parse(&m);
        assert!(doc.attachment_text.contains("hxbottom"), "{}", doc.attachment_text);
    }

    #[test]
    fn unparsable_input_still_yields_a_document() {
        let doc = parse(b"just some text without any header\nhxbodyonly\n");
        assert_eq!(doc.size, 45);
        assert!(doc.body_text.contains("hxbodyonly"));
        assert!(!doc.parse_warnings.is_empty());
        let empty = parse(b"");
        assert_eq!(empty.size, 0);
        let binary = parse(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        assert!(binary.body_text.is_empty());
    }

    #[test]
    fn bare_cr_line_ends_are_read_as_lf() {
        let doc = parse(b"Subject: cr only\rFrom: a@example.com\r\rbody text\r");
        assert_eq!(doc.subject.as_deref(), Some("cr only"));
        assert_eq!(doc.body_text, "body text");
        assert!(doc.parse_warnings.iter().any(|w| w.contains("bare CR")));
    }

    #[test]
    fn indexed_text_is_capped_with_a_warning() {
        let limits = Limits { max_text_bytes: 10, ..Limits::default() };
        let doc = parse_message(b"Subject: s\n\n0123456789abcdef\n", &limits).expect("fine");
        assert_eq!(doc.body_text, "0123456789");
        assert!(doc.parse_warnings.iter().any(|w| w.contains("body text cut at 10 bytes")));
    }

    #[test]
    fn unreadable_date_is_none_with_a_warning() {
        let doc = parse(b"Date: yesterday-ish\nSubject: d\n\nx\n");
        assert_eq!(doc.date, None);
        assert!(doc.parse_warnings.iter().any(|w| w.contains("Date")));
    }
}
