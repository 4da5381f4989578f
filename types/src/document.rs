//! The index document of one message: everything the search index and the message list need, produced by
//! parsing the raw bytes once (DESIGN "Write"). The raw bytes themselves are kept apart, unchanged.
//!
//! Rules fixed here, so that every producer and consumer agrees:
//! - **Size** is the raw RFC 822 size in bytes (SRCH-03; 1 KB = 1024 bytes where shown).
//! - **Date** is the `Date` header in Unix seconds; `None` when it is missing or cannot be read (the
//!   caller then falls back, e.g. to the archive time).
//! - **Body text** is the text/plain body part(s), or the HTML body converted to text when the message
//!   has no text part (SRCH-03 "Message content").
//! - **Has attachments**: a MIME part counts as an attachment when it is not a multipart container, not
//!   one of the message's body parts (text or HTML alternative), not the signature of a signed message
//!   (`application/pgp-signature`, `application/pkcs7-signature`, `application/x-pkcs7-signature`), and
//!   it has a file name (`Content-Disposition: …; filename=` or `Content-Type: …; name=`), or
//!   `Content-Disposition: attachment`, or it is an enclosed message (`message/rfc822`,
//!   `message/global`). Parts inside enclosed messages count too. So an inline image without a name
//!   (a `cid:` picture of an HTML mail) does not count; a named one does (the imprecision the manual
//!   warns about).
//! - **Attachment text** holds the contents of text-like attachments (TXT, CSV, HTM/HTML by type or file
//!   extension, SRCH-06's default) and, for enclosed messages, their subject, sender, recipients and body
//!   text. Body text and attachment text are each capped at [`MAX_INDEXED_TEXT_BYTES`]; what is cut is
//!   named in `parse_warnings`.

use serde::{Deserialize, Serialize};

use crate::query::Priority;

/// Upper bound, in UTF-8 bytes, of [`MessageDoc::body_text`] and of [`MessageDoc::attachment_text`]
/// (each): 1 MiB. Longer text is cut at a character boundary with a warning.
pub const MAX_INDEXED_TEXT_BYTES: usize = 1024 * 1024;

/// One mailbox of an address header; either part may be missing in real mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Display name, decoded (RFC 2047, legacy charsets).
    pub name: Option<String>,
    /// The address `local@domain` as written (no IDN conversion).
    pub address: Option<String>,
}

/// Everything the index and the message list need of one message (see the module docs for the rules).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageDoc {
    /// Decoded `Subject`; `None` when the message has none.
    pub subject: Option<String>,
    pub from: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    /// The `Date` header in Unix seconds.
    pub date: Option<i64>,
    /// Raw size in bytes.
    pub size: u64,
    pub has_attachments: bool,
    /// Sender's priority from `X-Priority`, `Importance`, `Priority`, `X-MSMail-Priority`.
    pub priority: Priority,
    /// Body text (text part, else HTML converted to text), at most [`MAX_INDEXED_TEXT_BYTES`].
    pub body_text: String,
    /// File names of the attachments, decoded, in MIME order.
    pub attachment_names: Vec<String>,
    /// Text of text-like attachments and enclosed messages, at most [`MAX_INDEXED_TEXT_BYTES`].
    pub attachment_text: String,
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// The first id of `In-Reply-To`, without angle brackets.
    pub in_reply_to: Option<String>,
    /// Non-fatal problems met while parsing (undecodable charset, cut text, unparsable structure).
    pub parse_warnings: Vec<String>,
}

impl MessageDoc {
    /// A document with nothing but the size: the start of every parse, and all that an unparsable
    /// message yields besides its warnings.
    pub fn empty(size: u64) -> Self {
        MessageDoc {
            subject: None,
            from: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            date: None,
            size,
            has_attachments: false,
            priority: Priority::Normal,
            body_text: String::new(),
            attachment_names: Vec::new(),
            attachment_text: String::new(),
            message_id: None,
            in_reply_to: None,
            parse_warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_round_trips_through_json() {
        let mut doc = MessageDoc::empty(42);
        doc.subject = Some("Grüße".into());
        doc.from.push(Address { name: Some("A".into()), address: Some("a@example.com".into()) });
        doc.priority = Priority::High;
        let json = serde_json::to_string(&doc).expect("serialize");
        let back: MessageDoc = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, doc);
    }
}
