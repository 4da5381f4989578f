//! What a reader sees of an archived message (ACC-02): the header fields, the text body, the HTML body
//! sanitised, the attachment list; and one attachment's bytes. Raw bytes in, a [`MessageView`] out.
//!
//! Like [`crate::parse_message`], every input answers and nothing panics: a message over a limit, or
//! too costly to parse, shows its top-level header fields and its raw text with a warning saying why;
//! one without header fields shows its text. Header fields and body text are read by the same code as
//! the index document (`parse.rs`: charset repairs, HTML to text, the text cap).
//!
//! The HTML body goes through ammonia with an allow-list: no `script` or `style` element (their
//! contents dropped too), no event-handler attribute, no form, frame or object; links only with the
//! schemes ammonia allows (`javascript:` and `data:` are not among them) and never relative (they would
//! resolve against the API's own origin); inline styles only with properties that cannot load
//! anything. No external resource is loaded unless [`ViewOptions::remote_content`] asks for it (images
//! from `http`/`https`; the number removed is reported); `cid:` images point at the message's own
//! attachments when the caller gives their URL pattern.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arca_types::document::Address;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde::Serialize;

use crate::limits::{Limits, Refused};
use crate::parse::{
    Builder, Target, drop_iteratively, header_end, is_report_text, is_signature, transfer_decoded, unfolded,
};
use crate::scan::scan;

/// Largest HTML body sanitised for a view; a longer one is cut (with a warning) before sanitising.
pub const MAX_HTML_BYTES: usize = 8 * 1024 * 1024;
/// Most work the HTML parser may face, estimated by [`nesting_work`]: its cost grows with the number
/// of elements times their nesting depth, so a deeply nested body is shown as text instead.
const MAX_NESTING_WORK: u64 = 20_000_000;
/// Longest file name kept of an attachment, in characters.
const MAX_FILE_NAME_CHARS: usize = 200;

/// Inline style properties kept: layout, colours and fonts, none of which can load a resource.
const SAFE_STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "white-space",
    "vertical-align",
    "direction",
    "display",
    "width",
    "height",
    "max-width",
    "min-width",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
];

/// How the HTML body is rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewOptions {
    /// Keep images from `http`/`https` URLs (the reader asked to load external content); off by default.
    pub remote_content: bool,
    /// URL of an attachment with `{n}` standing for its index, for the `cid:` images of the HTML body;
    /// `None` drops such images.
    pub attachment_url: Option<String>,
}

/// One top-level header field as written (unfolded; encoded words left as they are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderField {
    pub name: String,
    pub value: String,
}

/// An attachment of the top-level message: every MIME leaf or enclosed message that is not part of
/// the body, except signatures (as in the index document's `has_attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    /// Position in the list, from 0: the `n` of the attachment route.
    pub index: usize,
    /// The file name as the message gives it (not sanitised; see [`safe_file_name`]).
    pub file_name: Option<String>,
    /// `type/subtype`, lower case; `application/octet-stream` when the message's is unusable.
    pub content_type: String,
    /// Bytes after the transfer encoding is undone.
    pub size: u64,
    /// The `Content-ID`, without angle brackets.
    pub content_id: Option<String>,
    /// Shown within the HTML body (a `cid:` reference) or an inline part without a name.
    pub inline: bool,
}

/// What a reader sees of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub subject: Option<String>,
    pub from: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    /// The `Date` header as Unix seconds.
    pub date: Option<i64>,
    /// The `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// Every top-level header field, in order.
    pub headers: Vec<HeaderField>,
    /// The text body (HTML converted when there is no text part), at most `max_text_bytes`.
    pub text: String,
    /// The HTML body, sanitised; `None` when the message has none.
    pub html: Option<String>,
    /// External resources removed from the HTML because remote content was not asked for.
    pub blocked_remote_content: usize,
    pub attachments: Vec<AttachmentInfo>,
    /// What could not be read as declared, or why the body is shown as raw text.
    pub warnings: Vec<String>,
}

/// One attachment's bytes with its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub info: AttachmentInfo,
    /// The `charset` parameter of a text attachment, when it is a plain token.
    pub charset: Option<String>,
    pub bytes: Vec<u8>,
}

/// The message as far as it could be parsed within the limits.
enum Parsed<'x> {
    /// The whole MIME structure.
    Full(Message<'x>),
    /// Only the top-level header block (the reason is a warning); the body is raw text.
    HeadersOnly(String),
    /// No header fields: the whole input is raw text.
    NoHeaders,
}

/// Parses `data` as `parse_message` does: the structural scan first, then mail-parser.
fn parse_within_limits<'x>(data: &'x [u8], limits: &Limits, parser: &MessageParser) -> Parsed<'x> {
    match scan(data, limits) {
        Err(refused) => return Parsed::HeadersOnly(format!("{refused}: shown as raw text")),
        Ok(report) if report.too_costly => {
            return Parsed::HeadersOnly(format!(
                "MIME structure too costly to parse (boundary searches over {}x the message size): \
                 shown as raw text",
                limits.parse_work_factor
            ));
        }
        Ok(_) => {}
    }
    match std::panic::catch_unwind(|| parser.parse(data)) {
        Ok(Some(message)) => Parsed::Full(message),
        Ok(None) => Parsed::NoHeaders,
        Err(_) => Parsed::HeadersOnly("MIME parser failed an internal check: shown as raw text".into()),
    }
}

/// The input with bare-CR line ends read as LF (as `parse_message` does).
fn line_ends<'r>(raw: &'r [u8], b: &mut Builder<'_>) -> Cow<'r, [u8]> {
    if memchr::memchr(b'\n', raw).is_none() && memchr::memchr(b'\r', raw).is_some() {
        b.warn("line ends are bare CR; read as LF for parsing".to_string());
        Cow::Owned(raw.iter().map(|&c| if c == b'\r' { b'\n' } else { c }).collect())
    } else {
        Cow::Borrowed(raw)
    }
}

/// Renders `raw` for a reader (see the module docs); never fails.
pub fn render_message(raw: &[u8], limits: &Limits, options: &ViewOptions) -> MessageView {
    let mut b = Builder::new(raw.len() as u64, limits);
    let mut view = MessageView::default();
    let size = raw.len() as u64;
    if size > limits.max_message_bytes {
        let refused = Refused::message_bytes(size, false, limits.max_message_bytes);
        b.warn(format!("{refused}: shown as raw text"));
        b.raw_text(raw);
        return finish(view, b);
    }
    let data = line_ends(raw, &mut b);
    let parser = MessageParser::default();
    match parse_within_limits(&data, limits, &parser) {
        Parsed::Full(message) => {
            b.header_fields(&message);
            view.headers = header_list(&message);
            b.body_text(&message, Target::Body);
            let (listed, inline_text) = attachment_list(&message);
            for id in inline_text {
                if let Some(part) = message.parts.get(id) {
                    b.part_text(&message, id, part, Target::Body);
                }
            }
            let mut extra = Builder::new(0, limits);
            if let Some(source) = html_source(&message, &mut extra) {
                for (info, _) in &listed {
                    if let Some(cid) = &info.content_id
                        && source.contains(&format!("cid:{cid}"))
                    {
                        view.attachments.push(AttachmentInfo { inline: true, ..info.clone() });
                    } else {
                        view.attachments.push(info.clone());
                    }
                }
                let work = nesting_work(&source);
                if work > MAX_NESTING_WORK {
                    extra.warn(format!(
                        "HTML body too deeply nested to render (work estimate {work} over {MAX_NESTING_WORK}): \
                         shown as text only"
                    ));
                } else {
                    let (html, blocked) = sanitize(&source, options, &view.attachments);
                    view.html = Some(html);
                    view.blocked_remote_content = blocked;
                }
            } else {
                view.attachments = listed.into_iter().map(|(info, _)| info).collect();
            }
            // Warnings of the HTML pass that the text pass did not already give.
            let more = extra.finish().parse_warnings;
            drop_iteratively(message);
            let mut view = finish(view, b);
            for w in more {
                if !view.warnings.contains(&w) {
                    view.warnings.push(w);
                }
            }
            return view;
        }
        Parsed::HeadersOnly(why) => {
            b.warn(why);
            let body_start = match parser.parse_headers(&data) {
                Some(message) => {
                    b.header_fields(&message);
                    view.headers = header_list(&message);
                    header_end(&data)
                }
                None => 0,
            };
            b.raw_text(&data[body_start..]);
        }
        Parsed::NoHeaders => {
            b.warn("no header fields found: shown as raw text".to_string());
            b.raw_text(&data);
        }
    }
    finish(view, b)
}

/// Moves the document's fields into the view.
fn finish(mut view: MessageView, b: Builder<'_>) -> MessageView {
    let doc = b.finish();
    view.subject = doc.subject;
    view.from = doc.from;
    view.to = doc.to;
    view.cc = doc.cc;
    view.bcc = doc.bcc;
    view.date = doc.date;
    view.message_id = doc.message_id;
    view.text = doc.body_text;
    view.warnings = doc.parse_warnings;
    view
}

/// Attachment `index` of `raw` (numbered as in [`MessageView::attachments`]); `None` when there is no
/// such attachment, or the message is not parsed within the limits (its view lists none).
pub fn attachment(raw: &[u8], limits: &Limits, index: usize) -> Option<Attachment> {
    if raw.len() as u64 > limits.max_message_bytes {
        return None;
    }
    let mut b = Builder::new(raw.len() as u64, limits);
    let data = line_ends(raw, &mut b);
    let parser = MessageParser::default();
    let Parsed::Full(message) = parse_within_limits(&data, limits, &parser) else { return None };
    let found = attachment_list(&message).0.into_iter().nth(index).and_then(|(info, id)| {
        let part = message.parts.get(id)?;
        let charset = part
            .content_type()
            .filter(|ct| ct.ctype().eq_ignore_ascii_case("text"))
            .and_then(|ct| ct.attribute("charset"))
            .filter(|c| is_token(c))
            .map(|c| c.to_ascii_lowercase());
        Some(Attachment { bytes: part_bytes(&message, id), info, charset })
    });
    drop_iteratively(message);
    found
}

/// Every top-level header field, unfolded.
fn header_list(message: &Message<'_>) -> Vec<HeaderField> {
    let Some(root) = message.parts.first() else { return Vec::new() };
    let raw = message.raw_message();
    root.headers
        .iter()
        .map(|h| HeaderField { name: h.name.as_str().to_string(), value: unfolded(raw, h) })
        .collect()
}

/// The attachments of the top-level message with their part ids (see [`AttachmentInfo`]), and the
/// ids of inline text parts outside the body (a part after a broken boundary, a delivery report),
/// which belong to the text as in the index document.
fn attachment_list(message: &Message<'_>) -> (Vec<(AttachmentInfo, usize)>, Vec<usize>) {
    let mut out = Vec::new();
    let mut inline_text = Vec::new();
    for &id in &message.attachments {
        let id = id as usize;
        let Some(part) = message.parts.get(id) else { continue };
        if matches!(part.body, PartType::Multipart(_)) || is_signature(part) {
            continue;
        }
        let file_name = part.attachment_name().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
        let disposed = part.content_disposition().is_some_and(|d| d.is_attachment());
        if file_name.is_none() && !disposed && is_report_text(part) {
            inline_text.push(id);
            continue;
        }
        let content_id = part
            .content_id()
            .map(|c| c.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string())
            .filter(|c| !c.is_empty());
        let info = AttachmentInfo {
            index: out.len(),
            inline: !disposed && file_name.is_none() && matches!(part.body, PartType::InlineBinary(_)),
            file_name,
            content_type: content_type(part),
            size: part_bytes(message, id).len() as u64,
            content_id,
        };
        out.push((info, id));
    }
    (out, inline_text)
}

/// A part's `type/subtype` when it is made of tokens, else one by the kind of body.
fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    let declared = part.content_type().and_then(|ct| {
        let (t, s) = (ct.ctype(), ct.subtype()?);
        (is_token(t) && is_token(s)).then(|| format!("{t}/{s}").to_ascii_lowercase())
    });
    declared.unwrap_or_else(|| {
        match part.body {
            PartType::Text(_) => "text/plain",
            PartType::Html(_) => "text/html",
            PartType::Message(_) => "message/rfc822",
            _ => "application/octet-stream",
        }
        .to_string()
    })
}

/// An RFC 2045 token (what a MIME type, subtype or charset may be made of).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 127
        && s.bytes().all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&c))
}

/// The bytes of part `id` with the transfer encoding undone: original charset for text, the enclosed
/// message's raw bytes for `message/*`.
fn part_bytes(message: &Message<'_>, id: usize) -> Vec<u8> {
    let Some(part) = message.parts.get(id) else { return Vec::new() };
    match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        PartType::Text(_) | PartType::Html(_) | PartType::Message(_) => {
            transfer_decoded(message, part).unwrap_or_else(|| part.contents().to_vec())
        }
        PartType::Multipart(_) => Vec::new(),
    }
}

/// The HTML body before sanitising: the HTML parts of the body (text parts among them as `<pre>`);
/// `None` when the body has no HTML part.
fn html_source(message: &Message<'_>, b: &mut Builder<'_>) -> Option<String> {
    let part = |id: &u32| message.parts.get(*id as usize);
    if !message.html_body.iter().filter_map(part).any(|p| matches!(p.body, PartType::Html(_))) {
        return None;
    }
    let mut out = String::new();
    for &id in &message.html_body {
        let Some(p) = message.parts.get(id as usize) else { continue };
        match &p.body {
            PartType::Html(s) => out.push_str(&b.repair_charset(message, id as usize, p, s)),
            PartType::Text(s) => {
                out.push_str("<pre>");
                out.push_str(&escape_html(&b.repair_charset(message, id as usize, p, s)));
                out.push_str("</pre>");
            }
            _ => {}
        }
        if out.len() > MAX_HTML_BYTES {
            let mut end = MAX_HTML_BYTES;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            b.warn(format!("HTML body cut at {MAX_HTML_BYTES} bytes"));
            break;
        }
    }
    Some(out)
}

/// An upper estimate of the HTML parser's work: the sum over start tags of the nesting depth at that
/// tag (elements that close themselves or whose end tag is optional do not deepen it). One pass.
fn nesting_work(html: &str) -> u64 {
    const FLAT: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
        "p", "li", "dt", "dd", "tr", "td", "th", "option", "tbody", "thead", "tfoot", "colgroup", "rp", "rt",
        "html", "head", "body",
    ];
    let b = html.as_bytes();
    let (mut depth, mut work) = (0u64, 0u64);
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'<', &b[i..]) {
        i += p + 1;
        let closing = b.get(i) == Some(&b'/');
        let start = if closing { i + 1 } else { i };
        let len = b[start..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        if len == 0 || !b[start].is_ascii_alphabetic() {
            continue;
        }
        let name = html[start..start + len].to_ascii_lowercase();
        if FLAT.contains(&name.as_str()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            work = work.saturating_add(depth);
        }
    }
    work
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Attributes whose value is a URL (as ammonia decides).
fn is_url_attribute(element: &str, attribute: &str) -> bool {
    matches!(attribute, "href" | "src" | "xlink:href" | "action" | "formaction" | "ping" | "poster")
        || (element == "object" && attribute == "data")
}

/// The declarations of an inline style that can neither load nor run anything: no CSS escapes or
/// comments (which hide keywords), no `url`, `expression`, `image-set`, `behavior`, `binding` or
/// `import`, and no function but colours and `calc`; `None` when nothing is left. (The property names
/// are checked by ammonia's allow-list as well.)
fn safe_style(value: &str) -> Option<String> {
    const BANNED: &[&str] =
        &["\\", "/*", "url", "expression", "image", "behavior", "binding", "import", "script"];
    const FUNCTIONS: &[&str] = &["rgb", "rgba", "hsl", "hsla", "calc"];
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let lower = d.to_ascii_lowercase();
            if BANNED.iter().any(|b| lower.contains(b)) {
                return false;
            }
            lower.match_indices('(').all(|(at, _)| {
                let name: String = lower[..at]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                FUNCTIONS.contains(&name.as_str())
            })
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Gives a closure the signature ammonia's attribute filter needs (the answer may borrow the value).
fn url_filter<F>(f: F) -> F
where
    F: for<'u> Fn(&str, &str, &'u str) -> Option<Cow<'u, str>>,
{
    f
}

/// Sanitises `html` (see the module docs); answers the HTML and the number of external resources
/// removed.
fn sanitize(html: &str, options: &ViewOptions, attachments: &[AttachmentInfo]) -> (String, usize) {
    let blocked = Arc::new(AtomicUsize::new(0));
    let counter = blocked.clone();
    let remote = options.remote_content;
    let url = options.attachment_url.clone();
    let cids: HashMap<String, usize> =
        attachments.iter().filter_map(|a| a.content_id.clone().map(|c| (c, a.index))).collect();
    let filter = url_filter(move |element, attribute, value| {
        if attribute == "style" {
            return safe_style(value).map(Cow::Owned);
        }
        if !is_url_attribute(element, attribute) {
            return Some(Cow::Borrowed(value));
        }
        let parsed = url::Url::parse(value.trim());
        if parsed == Err(url::ParseError::RelativeUrlWithoutBase) {
            return None;
        }
        let scheme = parsed.as_ref().map(|u| u.scheme().to_ascii_lowercase()).unwrap_or_default();
        if scheme == "cid" {
            let cid = value.trim().get(4..).unwrap_or_default().trim_start_matches('<').trim_end_matches('>');
            let index = cids.get(cid)?;
            return Some(Cow::Owned(url.as_ref()?.replace("{n}", &index.to_string())));
        }
        if attribute == "href" {
            return Some(Cow::Borrowed(value));
        }
        // Anything else loads a resource from elsewhere. Only images are counted: the other elements
        // with such attributes (iframe, form, video…) are removed whole by the allow-list anyway.
        if remote && (scheme == "http" || scheme == "https") {
            Some(Cow::Borrowed(value))
        } else {
            if element == "img" {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            None
        }
    });
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(["font"])
        .add_generic_attributes(["style", "align", "valign", "width", "height", "bgcolor", "dir"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes("table", ["border", "cellpadding", "cellspacing"])
        .add_tag_attributes("td", ["colspan", "rowspan", "nowrap"])
        .add_tag_attributes("th", ["colspan", "rowspan", "nowrap"])
        .filter_style_properties(SAFE_STYLE_PROPERTIES.iter().copied().collect())
        .add_url_schemes(["cid"])
        // Relative URLs are removed by the filter; those left are the rewritten `cid:` images.
        .url_relative(ammonia::UrlRelative::PassThrough)
        .strip_comments(true)
        .attribute_filter(filter);
    let clean = builder.clean(html).to_string();
    (clean, blocked.load(Ordering::Relaxed))
}

/// A file name safe for a `Content-Disposition` header and a file system: no directory, no control
/// character, no quote or backslash, no leading dot, at most 200 characters; `attachment-<n>` (with
/// `.eml` for an enclosed message) when nothing is left.
pub fn safe_file_name(info: &AttachmentInfo) -> String {
    let name = info.file_name.as_deref().unwrap_or_default();
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '"' | '\\' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}')
        })
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if !cleaned.is_empty() {
        return cleaned;
    }
    if info.content_type == "message/rfc822" {
        format!("attachment-{}.eml", info.index)
    } else {
        format!("attachment-{}", info.index)
    }
}

/// The `Content-Disposition` value that downloads a file named `name` (a [`safe_file_name`]): an
/// ASCII fallback and the exact name as RFC 5987 UTF-8.
pub fn content_disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '_' }).collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(raw: &[u8]) -> MessageView {
        render_message(raw, &Limits::default(), &ViewOptions::default())
    }

    const HOSTILE_HTML: &[u8] = b"From: a@example.com\r\nSubject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <html><head><style>body{background:url(http://track.example/s.png)}</style>\
        <script>alert(1)</script></head><body onload=\"steal()\">\
        <p style=\"color: red; background-image: url(http://track.example/b.png)\">Hallo <b>Welt</b></p>\
        <img src=\"x\" onerror=\"alert(2)\" alt=\"broken\">\
        <img src=\"http://track.example/pixel.gif\" alt=\"pixel\">\
        <a href=\"javascript:alert(3)\">click</a> <a href=\"JaVa&#x09;script:alert(4)\">tab</a>\
        <a href=\"https://example.com/ok\">ok</a> <a href=\"/api/data/search\">relative</a>\
        <iframe src=\"https://evil.example/\"></iframe><form action=\"https://evil.example/\"><input name=p></form>\
        <svg><image href=\"http://track.example/svg.png\"/></svg>\
        <img src=\"data:image/png;base64,AAAA\"></body></html>\r\n";

    #[test]
    fn html_is_sanitised_of_scripts_handlers_javascript_and_remote_content() {
        let v = view(HOSTILE_HTML);
        let html = v.html.expect("an HTML body");
        let lower = html.to_lowercase();
        for banned in [
            "<script",
            "alert(",
            "onerror",
            "onload",
            "javascript:",
            "track.example",
            "<iframe",
            "<form",
            "<input",
            "<style",
            "data:",
            "/api/data/search",
            "background-image",
        ] {
            assert!(!lower.contains(banned), "'{banned}' survived: {html}");
        }
        assert!(html.starts_with("<p style=\"color:red\">Hallo <b>Welt</b></p>"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.com/ok\" rel=\"noopener noreferrer\">ok</a>"),
            "{html}"
        );
        assert!(html.contains("alt=\"pixel\""), "the image stays without its source: {html}");
        assert_eq!(
            html,
            "<p style=\"color:red\">Hallo <b>Welt</b></p><img alt=\"broken\"><img alt=\"pixel\">\
             <a rel=\"noopener noreferrer\">click</a> <a rel=\"noopener noreferrer\">tab</a>\
             <a href=\"https://example.com/ok\" rel=\"noopener noreferrer\">ok</a> \
             <a rel=\"noopener noreferrer\">relative</a><img>\n"
        );
        // Only the pixel is counted: a relative source is no remote content, ammonia itself drops
        // data: URLs, and the iframe, form and svg go whole.
        assert_eq!(v.blocked_remote_content, 1, "{html}");
        assert_eq!(v.text, "Hallo Welt\nclick tabok relative", "text of an HTML-only message");
        assert_eq!(v.subject.as_deref(), Some("html"));
    }

    #[test]
    fn inline_styles_keep_only_declarations_that_load_and_run_nothing() {
        assert_eq!(
            safe_style("color: rgb(1, 2, 3); width: calc(100% - 2px)").as_deref(),
            Some("color: rgb(1, 2, 3); width: calc(100% - 2px)")
        );
        assert_eq!(safe_style("width:expression(alert()); color: red").as_deref(), Some("color: red"));
        assert_eq!(safe_style("background: u\\72l(http://x)"), None);
        assert_eq!(safe_style("width: 1px /* */; height: attr(x)"), None);
        let v =
            view(b"Content-Type: text/html\n\n<div style=\"width:expression(alert()); color:red\">x</div>");
        assert_eq!(v.html.as_deref(), Some("<div style=\"color:red\">x</div>"));
    }

    #[test]
    fn remote_images_load_only_when_asked() {
        let raw = b"Content-Type: text/html\n\n<img src=\"https://images.example/logo.png\" alt=l>";
        let v = view(raw);
        assert_eq!(v.html.as_deref(), Some("<img alt=\"l\">"));
        assert_eq!(v.blocked_remote_content, 1);
        let asked = render_message(
            raw,
            &Limits::default(),
            &ViewOptions { remote_content: true, attachment_url: None },
        );
        assert_eq!(asked.html.as_deref(), Some("<img src=\"https://images.example/logo.png\" alt=\"l\">"));
        assert_eq!(asked.blocked_remote_content, 0);
    }

    const WITH_ATTACHMENTS: &[u8] = b"From: \"Erika Mustermann\" <erika@example.com>\r\n\
        To: Max <max@example.com>, moritz@example.com\r\nCc: c@example.com\r\nBcc: b@example.com\r\n\
        Subject: Rechnung\r\nDate: Mon, 06 Jan 2025 10:00:00 +0100\r\nMessage-ID: <r-1@example.com>\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Type: multipart/related; boundary=r\r\n\r\n--r\r\n\
        Content-Type: text/html; charset=utf-8\r\n\r\n<p>Siehe <img src=\"cid:logo@x\" alt=logo></p>\r\n--r\r\n\
        Content-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--r--\r\n\
        --b\r\nContent-Type: text/csv; charset=iso-8859-1; name=\"R\xfcckgabe.csv\"\r\n\
        Content-Disposition: attachment; filename=\"../../etc/Rechnung.csv\"\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\nBetrag;M=FCnze\r\n\
        --b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n\
        --b\r\nContent-Type: message/rfc822\r\n\r\nSubject: original\r\nFrom: o@example.com\r\n\r\noriginal body\r\n\
        --b\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\nSIG\r\n--b--\r\n";

    #[test]
    fn headers_and_attachments_are_listed_with_names_types_and_sizes() {
        let options = ViewOptions {
            remote_content: false,
            attachment_url: Some("/api/data/messages/4:7/attachments/{n}".into()),
        };
        let v = render_message(WITH_ATTACHMENTS, &Limits::default(), &options);
        assert_eq!(v.subject.as_deref(), Some("Rechnung"));
        assert_eq!(v.from[0].name.as_deref(), Some("Erika Mustermann"));
        assert_eq!(v.from[0].address.as_deref(), Some("erika@example.com"));
        let addresses = |l: &[Address]| l.iter().filter_map(|a| a.address.clone()).collect::<Vec<_>>();
        assert_eq!(addresses(&v.to), ["max@example.com", "moritz@example.com"]);
        assert_eq!(addresses(&v.cc), ["c@example.com"]);
        assert_eq!(addresses(&v.bcc), ["b@example.com"]);
        assert_eq!(v.date, Some(1_736_154_000));
        assert_eq!(v.message_id.as_deref(), Some("r-1@example.com"));
        let names: Vec<&str> = v.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "Content-Type"]);
        assert_eq!(v.headers[6].value, "<r-1@example.com>");
        assert_eq!(v.headers[7].value, "multipart/mixed; boundary=b");

        let listed: Vec<(usize, Option<&str>, &str, u64, bool)> = v
            .attachments
            .iter()
            .map(|a| (a.index, a.file_name.as_deref(), a.content_type.as_str(), a.size, a.inline))
            .collect();
        assert_eq!(
            listed,
            [
                (0, None, "image/png", 4, true),
                (1, Some("../../etc/Rechnung.csv"), "text/csv", 12, false),
                (2, Some("a.pdf"), "application/pdf", 5, false),
                (3, None, "message/rfc822", 55, false),
            ]
        );
        assert_eq!(v.attachments[0].content_id.as_deref(), Some("logo@x"));
        assert_eq!(
            v.html.as_deref(),
            Some("<p>Siehe <img src=\"/api/data/messages/4:7/attachments/0\" alt=\"logo\"></p>")
        );
        assert_eq!(v.text, "Siehe");

        let csv = attachment(WITH_ATTACHMENTS, &Limits::default(), 1).expect("attachment 1");
        assert_eq!(csv.bytes, b"Betrag;M\xfcnze", "original charset, transfer encoding undone");
        assert_eq!(csv.charset.as_deref(), Some("iso-8859-1"));
        assert_eq!(safe_file_name(&csv.info), "Rechnung.csv");
        let pdf = attachment(WITH_ATTACHMENTS, &Limits::default(), 2).expect("attachment 2");
        assert_eq!(pdf.bytes, b"%PDF-");
        let eml = attachment(WITH_ATTACHMENTS, &Limits::default(), 3).expect("attachment 3");
        assert_eq!(eml.bytes, b"Subject: original\r\nFrom: o@example.com\r\n\r\noriginal body");
        assert_eq!(safe_file_name(&eml.info), "attachment-3.eml");
        assert!(attachment(WITH_ATTACHMENTS, &Limits::default(), 4).is_none(), "the signature is not one");
    }

    #[test]
    fn charset_encoded_message_decodes() {
        let v = view(
            b"Subject: =?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=\nFrom: =?utf-8?b?SsO8cmdlbg==?= <j@example.com>\n\
              Content-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n\n\
              \xe2\xc1\xcc\xc1\xcc\xc1\xca\xcb\xc1\n",
        );
        assert_eq!(v.subject.as_deref(), Some("Grüße aus Köln"));
        assert_eq!(v.from[0].name.as_deref(), Some("Jürgen"));
        assert_eq!(v.text, "Балалайка");
        assert_eq!(v.html, None);
        assert!(v.attachments.is_empty());
        assert!(v.warnings.is_empty(), "{:?}", v.warnings);
        let latin = view(b"Content-Type: text/plain; charset=utf-8\n\nL\xfcgendetektor\n");
        assert_eq!(latin.text, "Lügendetektor", "invalid UTF-8 read as Windows-1252");
        assert!(latin.warnings.iter().any(|w| w.contains("Windows-1252")), "{:?}", latin.warnings);
    }

    #[test]
    fn broken_messages_still_render() {
        let headerless = view(b"just text without header fields\nsecond line\n");
        assert!(headerless.headers.is_empty());
        assert_eq!(headerless.text, "just text without header fields\nsecond line");
        assert!(
            headerless.warnings.iter().any(|w| w.contains("no header fields")),
            "{:?}",
            headerless.warnings
        );

        let cut = view(
            b"Subject: cut\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\n\
              the only part, never closed",
        );
        assert_eq!(cut.subject.as_deref(), Some("cut"));
        assert_eq!(cut.text, "the only part, never closed");

        let bad_base64 = view(b"Subject: b64\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n");
        assert_eq!(bad_base64.subject.as_deref(), Some("b64"));

        assert_eq!(view(b"").text, "");
        let binary = view(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        assert!(binary.text.is_empty());

        // Over a structural limit (it would have been refused at archive time with other limits):
        // the header fields and the raw text, with the reason.
        let mut deep = b"Subject: deep\n".to_vec();
        for _ in 0..70 {
            deep.extend_from_slice(b"Content-Type: message/rfc822\n\n");
        }
        deep.extend_from_slice(b"Subject: x\n\nbottom\n");
        let v = view(&deep);
        assert_eq!(v.subject.as_deref(), Some("deep"));
        assert!(v.warnings.iter().any(|w| w.contains("max_nesting_depth")), "{:?}", v.warnings);
        assert!(v.text.contains("bottom"));
        assert!(attachment(&deep, &Limits::default(), 0).is_none());

        let small = Limits { max_message_bytes: 10, ..Limits::default() };
        let v = render_message(b"Subject: too long\n\nbody\n", &small, &ViewOptions::default());
        assert!(v.warnings.iter().any(|w| w.contains("max_message_bytes")), "{:?}", v.warnings);
        assert_eq!(v.text, "Subject: too long\n\nbody");
    }

    #[test]
    fn deeply_nested_html_is_shown_as_text_and_moderate_nesting_renders_quickly() {
        let nested = |n: usize| {
            let mut raw = b"Content-Type: text/html\n\n".to_vec();
            for _ in 0..n {
                raw.extend_from_slice(b"<div><span>");
            }
            raw.extend_from_slice(b"deep");
            raw
        };
        let start = std::time::Instant::now();
        let v = view(&nested(100_000));
        assert_eq!(v.html, None);
        assert_eq!(v.text, "deep");
        assert!(v.warnings.iter().any(|w| w.contains("too deeply nested")), "{:?}", v.warnings);
        // Just under the work limit (depth 2n, work about 2n^2): rendered, on a small stack.
        let raw = nested(3_000);
        assert!(nesting_work(std::str::from_utf8(&raw).expect("ascii")) < MAX_NESTING_WORK);
        let handle =
            std::thread::Builder::new().stack_size(256 * 1024).spawn(move || view(&raw)).expect("thread");
        let v = handle.join().expect("no overflow");
        assert!(v.html.expect("html").contains("deep"));
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "took {:?}", start.elapsed());
    }

    #[test]
    fn file_names_are_made_safe_for_a_download() {
        let info = |name: &str| AttachmentInfo {
            index: 2,
            file_name: Some(name.into()),
            content_type: "application/pdf".into(),
            size: 1,
            content_id: None,
            inline: false,
        };
        assert_eq!(safe_file_name(&info("C:\\Users\\x\\Rechnung März.pdf")), "Rechnung März.pdf");
        assert_eq!(safe_file_name(&info("a\"b\r\nc.pdf")), "abc.pdf");
        assert_eq!(safe_file_name(&info("..")), "attachment-2");
        assert_eq!(safe_file_name(&info("evil\u{202e}fdp.exe")), "evilfdp.exe");
        assert_eq!(
            content_disposition("Rechnung März.pdf"),
            "attachment; filename=\"Rechnung M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
        );
    }
}
