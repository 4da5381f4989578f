//! Legacy charsets that mail-parser leaves undecoded or decodes badly, handled with encoding_rs.
//!
//! - Raw 8-bit header bytes (undeclared): valid UTF-8 is read as UTF-8 (RFC 6532), anything else as
//!   Windows-1252 (the WHATWG reading of Latin-1, which also gives every byte a character).
//! - Text parts whose charset is missing, UTF-8 or unknown but whose bytes are not valid UTF-8: read as
//!   Windows-1252 instead of with replacement characters.
//! - Text parts declared `utf-16` without a byte order mark: mail-parser (like WHATWG) reads them as
//!   little-endian; RFC 2781 says big-endian. The byte order is sniffed from where the zero bytes of
//!   ASCII characters stand, big-endian when undecided.
//! - Charset labels mail-parser does not know are reported as warnings (the text is then read as
//!   UTF-8, else Windows-1252).

use std::borrow::Cow;

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};
use mail_parser::decoders::charsets::map::charset_decoder;

/// Bytes of an undeclared header or body: UTF-8 when valid, else Windows-1252.
pub fn utf8_or_windows_1252(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// True when `label` names UTF-8 (or its plain-ASCII subset) in one of the spellings seen in mail.
pub fn is_utf8_label(label: &str) -> bool {
    let l = label.trim().to_ascii_lowercase();
    matches!(l.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii")
}

/// True when mail-parser has a decoder for `label`.
pub fn is_known_label(label: &str) -> bool {
    charset_decoder(label.trim().as_bytes()).is_some()
}

/// True when `label` is `utf-16` without an explicit byte order.
pub fn is_bare_utf16_label(label: &str) -> bool {
    let l = label.trim().to_ascii_lowercase();
    l == "utf-16" || l == "utf16"
}

/// Decodes UTF-16 without a BOM, big- or little-endian by where the zero bytes stand; `None` when the
/// bytes carry a BOM (mail-parser then decodes them correctly already).
pub fn sniff_utf16(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(&[0xfe, 0xff]) || bytes.starts_with(&[0xff, 0xfe]) {
        return None;
    }
    let sample = &bytes[..bytes.len().min(4096) & !1];
    let zeros_even = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let zeros_odd = sample.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    let encoding = if zeros_odd > zeros_even { UTF_16LE } else { UTF_16BE };
    Some(encoding.decode_without_bom_handling(bytes).0.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_are_utf8_when_valid_else_windows_1252() {
        assert_eq!(utf8_or_windows_1252("Köln".as_bytes()), "Köln");
        assert_eq!(utf8_or_windows_1252(b"K\xf6ln \x80"), "Köln €");
    }

    #[test]
    fn utf16_without_bom_is_sniffed() {
        let be: Vec<u8> = "Glühwürmchen".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let le: Vec<u8> = "Maulwürfe".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(sniff_utf16(&be).as_deref(), Some("Glühwürmchen"));
        assert_eq!(sniff_utf16(&le).as_deref(), Some("Maulwürfe"));
        assert_eq!(sniff_utf16(&[0xff, 0xfe, b'a', 0]), None);
    }

    #[test]
    fn labels_are_classified() {
        assert!(is_utf8_label(" UTF8 "));
        assert!(is_known_label("koi8-r"));
        assert!(is_known_label("ks_c_5601-1987"));
        assert!(!is_known_label("x-no-such-charset"));
        assert!(is_bare_utf16_label("UTF-16"));
    }
}
