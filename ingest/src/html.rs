//! HTML to plain text for indexing: one forward pass, no recursion, no DOM, bounded output.
//!
//! Tags are dropped (block-level ones become a line break, table cells a space, inline ones nothing,
//! so `W<b>or</b>d` stays one word); the contents of `script` and `style` are dropped; comments,
//! doctypes and processing instructions are dropped; CDATA sections are kept as text; character
//! references are decoded (decimal, hex, the HTML 4 Latin-1 names and the common punctuation and
//! symbol names, with or without the final `;`); runs of whitespace become one blank. Every byte is
//! looked at a bounded number of times, so the time is linear in the input whatever its nesting, and
//! the output stops at `max_bytes`.

use memchr::memmem;

/// Converts `html` to text of at most `max_bytes` UTF-8 bytes; the flag tells whether it was cut.
pub fn html_to_text(html: &str, max_bytes: usize) -> (String, bool) {
    let b = html.as_bytes();
    let mut out = Out {
        text: String::with_capacity(b.len().min(max_bytes) / 2),
        pending: Gap::None,
        max_bytes,
        cut: false,
    };
    let mut i = 0;
    while i < b.len() {
        if out.text.len() >= out.max_bytes {
            return (out.text, true);
        }
        match b[i] {
            b'<' => i = tag(html, i, &mut out),
            b'&' => {
                let (decoded, next) = entity(b, i);
                match decoded {
                    Some(c) if c == '\u{a0}' || c.is_whitespace() => out.gap(Gap::Space),
                    Some(c) => out.push_char(c),
                    None => out.push_char('&'),
                }
                i = next;
            }
            c if c.is_ascii_whitespace() || c == 0 => {
                out.gap(Gap::Space);
                i += 1;
            }
            _ => {
                // A run of ordinary text up to the next byte with a meaning (all ASCII, so the run
                // ends on a character boundary).
                let run = b[i..]
                    .iter()
                    .position(|&c| c == b'<' || c == b'&' || c == 0 || c.is_ascii_whitespace())
                    .map_or(b.len(), |p| i + p);
                out.push_str(&html[i..run]);
                i = run;
            }
        }
    }
    (out.text, out.cut)
}

/// Whitespace owed before the next text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    Space,
    Line,
}

struct Out {
    text: String,
    pending: Gap,
    max_bytes: usize,
    cut: bool,
}

impl Out {
    fn gap(&mut self, gap: Gap) {
        self.pending = self.pending.max(gap);
    }

    fn flush(&mut self) {
        if !self.text.is_empty() && self.text.len() < self.max_bytes {
            match self.pending {
                Gap::None => {}
                Gap::Space => self.text.push(' '),
                Gap::Line => self.text.push('\n'),
            }
        }
        self.pending = Gap::None;
    }

    /// Appends `s`, as much of it as fits (cut on a character boundary; the caller sees the text full).
    fn push_str(&mut self, s: &str) {
        self.flush();
        let room = self.max_bytes.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            // Mark the text as full even when the cut left a few bytes of room.
            self.max_bytes = self.text.len();
            self.cut = true;
        }
    }

    fn push_char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.push_str(c.encode_utf8(&mut buf));
    }
}

/// Handles the markup starting with `<` at `i`; returns where the text goes on.
fn tag(html: &str, i: usize, out: &mut Out) -> usize {
    let b = html.as_bytes();
    let rest = &b[i..];
    if rest.starts_with(b"<!--") {
        return memmem::find(&b[i + 4..], b"-->").map_or(b.len(), |p| i + 4 + p + 3);
    }
    if starts_with_ignore_case(rest, b"<![cdata[") {
        let start = i + 9;
        let end = memmem::find(&b[start..], b"]]>").map_or(b.len(), |p| start + p);
        // CDATA holds text only; drop any markup-looking bytes by treating them as text.
        out.push_str(&html[start..end]);
        return (end + 3).min(b.len());
    }
    if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
        return memchr::memchr(b'>', &b[i..]).map_or(b.len(), |p| i + p + 1);
    }
    let closing = rest.get(1) == Some(&b'/');
    let name_start = if closing { i + 2 } else { i + 1 };
    if !b.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
        if closing {
            // `</` + non-letter is a bogus comment up to `>`.
            return memchr::memchr(b'>', &b[i..]).map_or(b.len(), |p| i + p + 1);
        }
        out.push_char('<');
        return i + 1;
    }
    let name_end = b[name_start..]
        .iter()
        .position(|c| !c.is_ascii_alphanumeric() && *c != b'-' && *c != b':')
        .map_or(b.len(), |p| name_start + p);
    let name = &b[name_start..name_end];
    let end = tag_end(b, name_end);
    let kind = element_kind(name);
    match kind {
        Element::Block => out.gap(Gap::Line),
        Element::Cell => out.gap(Gap::Space),
        Element::Inline => {}
        Element::RawText if closing => {}
        Element::RawText => return raw_text_end(b, end, name),
    }
    end
}

/// The offset after the `>` that ends a tag whose name ends at `from`; a quoted attribute value (a
/// quote after `=`) may hold `>`. A tag that never ends runs to the end of the input.
fn tag_end(b: &[u8], from: usize) -> usize {
    let mut j = from;
    let mut last = 0u8;
    while j < b.len() {
        match b[j] {
            b'>' => return j + 1,
            q @ (b'"' | b'\'') if last == b'=' => {
                j = memchr::memchr(q, &b[j + 1..]).map_or(b.len(), |p| j + 1 + p + 1);
                last = q;
            }
            c => {
                if !c.is_ascii_whitespace() {
                    last = c;
                }
                j += 1;
            }
        }
    }
    b.len()
}

/// The offset after the end tag `</name…>` of a raw-text element whose content starts at `from`, or
/// the end of the input when it never comes.
fn raw_text_end(b: &[u8], from: usize, name: &[u8]) -> usize {
    let mut j = from;
    while let Some(p) = memchr::memchr(b'<', &b[j..]) {
        let at = j + p;
        let rest = &b[at..];
        if rest.get(1) == Some(&b'/')
            && rest.len() >= 2 + name.len()
            && rest[2..2 + name.len()].eq_ignore_ascii_case(name)
            && !rest.get(2 + name.len()).is_some_and(u8::is_ascii_alphanumeric)
        {
            return tag_end(b, at + 2 + name.len());
        }
        j = at + 1;
    }
    b.len()
}

fn starts_with_ignore_case(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    /// Ends a line of text.
    Block,
    /// Table cell: separates words.
    Cell,
    /// Text flows through it.
    Inline,
    /// Its content is not text (`script`, `style`).
    RawText,
}

fn element_kind(name: &[u8]) -> Element {
    const BLOCK: &[&str] = &[
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "option",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "title",
        "tr",
        "ul",
    ];
    if name.eq_ignore_ascii_case(b"script") || name.eq_ignore_ascii_case(b"style") {
        return Element::RawText;
    }
    if name.eq_ignore_ascii_case(b"td") || name.eq_ignore_ascii_case(b"th") {
        return Element::Cell;
    }
    if BLOCK.iter().any(|t| name.eq_ignore_ascii_case(t.as_bytes())) {
        Element::Block
    } else {
        Element::Inline
    }
}

/// Named character references for code points 160..=255, in order.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf", "laquo",
    "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot",
    "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",
    "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute",
    "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash",
    "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde",
    "auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc",
    "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave",
    "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
];

/// Other named character references that mail commonly uses.
const OTHER: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("euro", '€'),
    ("trade", '™'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bdquo", '„'),
    ("hellip", '…'),
    ("bull", '•'),
    ("dagger", '†'),
    ("Dagger", '‡'),
    ("permil", '‰'),
    ("lsaquo", '‹'),
    ("rsaquo", '›'),
    ("OElig", 'Œ'),
    ("oelig", 'œ'),
    ("Scaron", 'Š'),
    ("scaron", 'š'),
    ("Yuml", 'Ÿ'),
    ("fnof", 'ƒ'),
    ("circ", 'ˆ'),
    ("tilde", '˜'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("thinsp", '\u{2009}'),
    ("zwnj", '\u{200c}'),
    ("zwj", '\u{200d}'),
    ("lrm", '\u{200e}'),
    ("rlm", '\u{200f}'),
];

/// Decodes the character reference at `i` (which holds `&`); returns the character, if it is one,
/// and where the text goes on.
fn entity(b: &[u8], i: usize) -> (Option<char>, usize) {
    let start = i + 1;
    if b.get(start) == Some(&b'#') {
        let (hex, digits_start) = match b.get(start + 1) {
            Some(b'x' | b'X') => (true, start + 2),
            _ => (false, start + 1),
        };
        let digits_end = b[digits_start.min(b.len())..]
            .iter()
            .position(|c| if hex { !c.is_ascii_hexdigit() } else { !c.is_ascii_digit() })
            .map_or(b.len(), |p| digits_start + p);
        if digits_end == digits_start {
            return (None, start);
        }
        let digits = &b[digits_start..digits_end];
        let value = std::str::from_utf8(digits)
            .ok()
            .filter(|d| d.len() <= 8)
            .and_then(|d| u32::from_str_radix(d, if hex { 16 } else { 10 }).ok());
        let next = if b.get(digits_end) == Some(&b';') { digits_end + 1 } else { digits_end };
        return (Some(numeric_char(value)), next);
    }
    let name_end = b[start..]
        .iter()
        .take(8)
        .position(|c| !c.is_ascii_alphanumeric())
        .map_or(b.len().min(start + 8), |p| start + p);
    // `&` + up to 8 name characters; an unknown or over-long name leaves the `&` as text.
    let name = std::str::from_utf8(&b[start..name_end]).unwrap_or_default();
    let found = LATIN1
        .iter()
        .position(|n| *n == name)
        .and_then(|k| char::from_u32(160 + k as u32))
        .or_else(|| OTHER.iter().find(|(n, _)| *n == name).map(|(_, c)| *c));
    match found {
        Some(c) => (Some(c), if b.get(name_end) == Some(&b';') { name_end + 1 } else { name_end }),
        None => (None, start),
    }
}

/// The character of a numeric reference, as HTML reads it: 0x80–0x9F as Windows-1252, invalid
/// values as U+FFFD.
fn numeric_char(value: Option<u32>) -> char {
    match value {
        Some(v @ 0x80..=0x9f) => {
            let byte = [v as u8];
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(&byte)
                .0
                .chars()
                .next()
                .unwrap_or('\u{fffd}')
        }
        Some(0) | None => '\u{fffd}',
        Some(v) => char::from_u32(v).unwrap_or('\u{fffd}'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        html_to_text(html, usize::MAX).0
    }

    #[test]
    fn tags_are_dropped_and_blocks_separate_words() {
        assert_eq!(text("<p>Hello<br>W<b>or</b>ld</p><div>again</div>"), "Hello\nWorld\nagain");
        assert_eq!(text("<table><tr><td>a</td><td>b</td></tr></table>"), "a b");
    }

    #[test]
    fn script_style_and_comments_are_dropped() {
        let html = "<html><head><style>p{color:red}</style><script>alert('x<p>')</script></head>\
                    <body><!-- hidden --><p>shown</p><SCRIPT type=x>evil()</SCRIPT >after</body></html>";
        assert_eq!(text(html), "shown\nafter");
    }

    #[test]
    fn character_references_are_decoded() {
        assert_eq!(
            text("M&uuml;ller &amp; S&ouml;hne&nbsp;GmbH &#8364; &#x41; &#150; &bogus; &"),
            "Müller & Söhne GmbH € A – &bogus; &"
        );
        assert_eq!(text("&#0;&#xD800;&#99999999999;"), "\u{fffd}\u{fffd}\u{fffd}");
    }

    #[test]
    fn quoted_attributes_may_hold_angle_brackets() {
        assert_eq!(text(r#"<a title="a > b" href='x'>link</a> text"#), "link text");
    }

    #[test]
    fn unclosed_markup_runs_to_the_end_without_panicking() {
        assert_eq!(text("before<script>never closed"), "before");
        assert_eq!(text("before<!-- never closed"), "before");
        assert_eq!(text("before<a href=\"never closed>x"), "before");
        assert_eq!(text("a < b and 3<4"), "a < b and 3<4");
        for s in ["<", "&", "&#", "&#x", "</", "<!", "<![CDATA[", "&amp", "<p", "\u{fc}<\u{fc}>"] {
            let _ = text(s);
        }
    }

    #[test]
    fn deep_nesting_is_linear() {
        let mut html = String::new();
        for _ in 0..100_000 {
            html.push_str("<div><span>");
        }
        html.push_str("deep");
        let started = std::time::Instant::now();
        assert_eq!(text(&html), "deep");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let unclosed = "<script>".repeat(50_000) + "x";
        assert_eq!(text(&unclosed), "");
    }

    #[test]
    fn output_is_cut_at_the_limit_on_a_character_boundary() {
        let (t, cut) = html_to_text(&"ü".repeat(100), 11);
        assert!(cut);
        assert_eq!(t, "ü".repeat(5));
        let (t, cut) = html_to_text("short", 11);
        assert!(!cut);
        assert_eq!(t, "short");
    }
}
