//! The tantivy schema of a shard's index (one index per shard, the archive as a field; SRCH-07) and the
//! derived values stored in it (sort keys, display strings, folder paths).
//!
//! - **Text fields** (`subject`, `body`, `attachment_names`, `attachment_text`, and per party
//!   `<party>_name` and `<party>_addr`) use the SRCH-02 tokenizer with positions and no field norms
//!   (results are sorted, never scored).
//! - **Parties** (from, to, cc, bcc) have three fields each: display names (`_name`, full text), addresses
//!   (`_addr`, full text: every part and the whole address) and whole lower-cased addresses (`_raw`, one
//!   term per address). The split exists for SRCH-01's exclusion rule: an unqualified exclusion looks at
//!   display names and whole addresses (`_name`, `_raw`) but never at the parts of an address (`_addr`);
//!   and an address term with `@` matches `_raw` only.
//! - **Reversed companions** (`<field>_rev` for every text field and every party field): the same
//!   tokens with their characters reversed (`_raw_rev`: the reversed whole address), doc ids only (no
//!   positions, frequencies or norms), not stored. A leading-wildcard pattern (`*example.com`) runs as a
//!   prefix walk on them (`moc.elpmaxe.*`) instead of scanning the whole term dictionary (see `compile`).
//! - **Folders**: `folder` holds the folder's key (`records::Archive::folders`; the path at the folder's
//!   creation, kept when the folder moves) as `/` + key (`/` for the archive's top-level folder). A
//!   folder filter matches the set of keys Raft resolves the folder (and its subfolders) to, so moving a
//!   folder rewrites no document. `folder_tree` holds the key and every ancestor (`/`, `/Posteingang`,
//!   `/Posteingang/Projekte`): it serves filters never resolved to keys. Keys compare exactly.
//! - **Date**: the `Date` header; a message without a readable one takes its archive time, so it sorts and
//!   filters by when it was archived.
//! - **Has attachments** and **priority** come from [`MessageDoc`] (its rules), stored as 0/1 and
//!   0 = Low, 1 = Normal, 2 = High.
//! - **Sort keys** (fast string columns, at most [`MAX_SORT_KEY_BYTES`]): `sort_party` is the other party
//!   (SRCH-05) — the sender of a received message, the first recipient (To, else Cc, else Bcc) of a sent
//!   one — as its lower-cased display name, or its lower-cased address when it has no name;
//!   `sort_subject` is the lower-cased subject with reply and forward prefixes (`Re:`, `Fwd:`, `Fw:`,
//!   `AW:`, `WG:`, `SV:`, `VS:`, `Antw:`, `Re[2]:`, repeated) and leading blanks stripped, so a thread
//!   sorts together. Both keys drop diacritics like the tokenizer (`Émile` sorts as `emile`, `Ärger` as
//!   `arger`) and compare by UTF-8 bytes, i.e. by code point: no locale collation. An empty key is not
//!   written; an absent key sorts as the empty string (first).
//! - **Stored for the result list** (no pack read needed): number, archive, folder, date, archive date,
//!   size, has attachments, priority, sent, subject, and display strings of the sender and of the
//!   recipients (To, Cc, Bcc in that order, at most [`MAX_DISPLAY_RECIPIENTS`]), all NFC-normalized.

use arca_types::document::{Address, MessageDoc};
use arca_types::query::Priority;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};

use crate::tokenizer::{REVERSED_TOKENIZER_NAME, TOKENIZER_NAME, fold, nfc};

/// Sort keys are cut to this many UTF-8 bytes (at a character boundary).
pub const MAX_SORT_KEY_BYTES: usize = 200;

/// At most this many recipients are kept in the stored recipients display string.
pub const MAX_DISPLAY_RECIPIENTS: usize = 20;

/// The three fields of one party header.
#[derive(Debug, Clone, Copy)]
pub struct PartyFields {
    /// Display names, full text.
    pub name: Field,
    /// Addresses, full text (parts and whole).
    pub addr: Field,
    /// Whole lower-cased addresses, one term each.
    pub raw: Field,
    /// Reversed tokens of `name` (leading-wildcard queries, see the module docs).
    pub name_rev: Field,
    /// Reversed tokens of `addr`.
    pub addr_rev: Field,
    /// Reversed whole addresses of `raw`.
    pub raw_rev: Field,
}

/// Handles of every field of the shard schema.
#[derive(Debug, Clone)]
pub struct Fields {
    pub number: Field,
    pub archive: Field,
    pub folder: Field,
    pub folder_tree: Field,
    pub subject: Field,
    pub from: PartyFields,
    pub to: PartyFields,
    pub cc: PartyFields,
    pub bcc: PartyFields,
    pub body: Field,
    pub attachment_names: Field,
    pub attachment_text: Field,
    /// Reversed-token companions of the text fields (leading-wildcard queries, see the module docs).
    pub subject_rev: Field,
    pub body_rev: Field,
    pub attachment_names_rev: Field,
    pub attachment_text_rev: Field,
    pub date: Field,
    pub archived: Field,
    pub size: Field,
    pub has_attachments: Field,
    pub priority: Field,
    pub sent: Field,
    pub sort_party: Field,
    pub sort_subject: Field,
    pub display_from: Field,
    pub display_recipients: Field,
}

/// Field names that the search code reads as fast columns.
pub mod names {
    pub const NUMBER: &str = "number";
    pub const ARCHIVE: &str = "archive";
    pub const DATE: &str = "date";
    pub const SORT_PARTY: &str = "sort_party";
    pub const SORT_SUBJECT: &str = "sort_subject";
}

fn text_options(stored: bool) -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER_NAME)
        .set_fieldnorms(false)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let options = TextOptions::default().set_indexing_options(indexing);
    if stored { options.set_stored() } else { options }
}

/// A reversed-term companion: `tokenizer` emits reversed tokens; doc ids only, no positions, not stored.
fn reversed_options(tokenizer: &str) -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(tokenizer)
        .set_fieldnorms(false)
        .set_index_option(IndexRecordOption::Basic);
    TextOptions::default().set_indexing_options(indexing)
}

fn raw_options(stored: bool) -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_fieldnorms(false)
        .set_index_option(IndexRecordOption::Basic);
    let options = TextOptions::default().set_indexing_options(indexing);
    if stored { options.set_stored() } else { options }
}

impl Fields {
    /// The schema of a shard index and its field handles.
    pub fn build() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let party = |b: &mut tantivy::schema::SchemaBuilder, p: &str| PartyFields {
            name: b.add_text_field(&format!("{p}_name"), text_options(false)),
            addr: b.add_text_field(&format!("{p}_addr"), text_options(false)),
            raw: b.add_text_field(&format!("{p}_raw"), raw_options(false)),
            name_rev: b.add_text_field(&format!("{p}_name_rev"), reversed_options(REVERSED_TOKENIZER_NAME)),
            addr_rev: b.add_text_field(&format!("{p}_addr_rev"), reversed_options(REVERSED_TOKENIZER_NAME)),
            raw_rev: b.add_text_field(&format!("{p}_raw_rev"), reversed_options("raw")),
        };
        let fields = Fields {
            number: b.add_u64_field(names::NUMBER, INDEXED | FAST | STORED),
            archive: b.add_u64_field(names::ARCHIVE, INDEXED | FAST | STORED),
            folder: b.add_text_field("folder", raw_options(true)),
            folder_tree: b.add_text_field("folder_tree", raw_options(false)),
            subject: b.add_text_field("subject", text_options(true)),
            from: party(&mut b, "from"),
            to: party(&mut b, "to"),
            cc: party(&mut b, "cc"),
            bcc: party(&mut b, "bcc"),
            body: b.add_text_field("body", text_options(false)),
            attachment_names: b.add_text_field("attachment_names", text_options(false)),
            attachment_text: b.add_text_field("attachment_text", text_options(false)),
            subject_rev: b.add_text_field("subject_rev", reversed_options(REVERSED_TOKENIZER_NAME)),
            body_rev: b.add_text_field("body_rev", reversed_options(REVERSED_TOKENIZER_NAME)),
            attachment_names_rev: b
                .add_text_field("attachment_names_rev", reversed_options(REVERSED_TOKENIZER_NAME)),
            attachment_text_rev: b
                .add_text_field("attachment_text_rev", reversed_options(REVERSED_TOKENIZER_NAME)),
            date: b.add_i64_field(names::DATE, INDEXED | FAST | STORED),
            archived: b.add_i64_field("archived", INDEXED | FAST | STORED),
            size: b.add_u64_field("size", INDEXED | FAST | STORED),
            has_attachments: b.add_u64_field("has_attachments", INDEXED | FAST | STORED),
            priority: b.add_u64_field("priority", INDEXED | FAST | STORED),
            sent: b.add_u64_field("sent", FAST | STORED),
            sort_party: b.add_text_field(names::SORT_PARTY, TextOptions::default().set_fast("raw")),
            sort_subject: b.add_text_field(names::SORT_SUBJECT, TextOptions::default().set_fast("raw")),
            display_from: b.add_text_field("display_from", TextOptions::default().set_stored()),
            display_recipients: b.add_text_field("display_recipients", TextOptions::default().set_stored()),
        };
        (b.build(), fields)
    }
}

/// The stored number of a priority: 0 = Low, 1 = Normal, 2 = High.
pub fn priority_code(p: Priority) -> u64 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
    }
}

/// The priority of a stored number (unknown numbers are Normal).
pub fn priority_from_code(code: u64) -> Priority {
    match code {
        0 => Priority::Low,
        2 => Priority::High,
        _ => Priority::Normal,
    }
}

/// The value of the `folder` field for a path below the archive's top-level folder.
pub fn folder_term(path: &str) -> String {
    format!("/{}", path.trim_matches('/'))
}

/// The `folder_tree` values of a path: `/` and every ancestor path down to the path itself.
pub fn folder_ancestors(path: &str) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let mut acc = String::new();
    for piece in path.split('/').filter(|p| !p.is_empty()) {
        acc.push('/');
        acc.push_str(piece);
        out.push(acc.clone());
    }
    out
}

/// Cuts a string to at most `max` bytes at a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The lower-cased, NFC address of a mailbox, if it has one.
pub fn raw_address(a: &Address) -> Option<String> {
    a.address.as_deref().map(|s| nfc(s.trim()).to_lowercase()).filter(|s| !s.is_empty())
}

/// A mailbox as shown in the list: `Name <address>`, or the one that exists.
pub fn display_address(a: &Address) -> String {
    let name = a.name.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let addr = a.address.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let shown = match (name, addr) {
        (Some(n), Some(a)) => format!("{n} <{a}>"),
        (Some(n), None) => n.to_string(),
        (None, Some(a)) => a.to_string(),
        (None, None) => String::new(),
    };
    nfc(&shown).into_owned()
}

/// The stored recipients display string: To, Cc, Bcc, comma-separated, at most
/// [`MAX_DISPLAY_RECIPIENTS`].
pub fn display_recipients(doc: &MessageDoc) -> String {
    let shown: Vec<String> = doc
        .to
        .iter()
        .chain(&doc.cc)
        .chain(&doc.bcc)
        .map(display_address)
        .filter(|s| !s.is_empty())
        .take(MAX_DISPLAY_RECIPIENTS)
        .collect();
    shown.join(", ")
}

/// The party sort key (see the module docs).
pub fn party_sort_key(doc: &MessageDoc, sent: bool) -> String {
    let party = if sent { doc.to.iter().chain(&doc.cc).chain(&doc.bcc).next() } else { doc.from.first() };
    let Some(a) = party else { return String::new() };
    let name = a.name.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let key = match name {
        Some(n) => nfc(n).to_lowercase(),
        None => raw_address(a).unwrap_or_default(),
    };
    let key = fold(&key).unwrap_or(key);
    truncate_bytes(&key, MAX_SORT_KEY_BYTES).to_string()
}

/// Reply and forward prefixes stripped from the subject sort key (lower case, without the colon).
const SUBJECT_PREFIXES: [&str; 8] = ["re", "fwd", "fw", "aw", "wg", "sv", "vs", "antw"];

/// The subject sort key (see the module docs).
pub fn subject_sort_key(subject: &str) -> String {
    let lower = nfc(subject).to_lowercase();
    let lower = fold(&lower).unwrap_or(lower);
    let mut rest = lower.trim_start();
    loop {
        let before = rest;
        for p in SUBJECT_PREFIXES {
            if let Some(after) = rest.strip_prefix(p) {
                // Optional counter such as `Re[2]:` or `Re(2):`.
                let after = match after.strip_prefix(['[', '(']) {
                    Some(a) => {
                        let close = a.find([']', ')']);
                        match close {
                            Some(i) if a[..i].chars().all(|c| c.is_ascii_digit()) => &a[i + 1..],
                            _ => after,
                        }
                    }
                    None => after,
                };
                if let Some(after) = after.trim_start().strip_prefix(':') {
                    rest = after.trim_start();
                    break;
                }
            }
        }
        if rest == before {
            break;
        }
    }
    truncate_bytes(rest, MAX_SORT_KEY_BYTES).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_key_strips_reply_and_forward_prefixes() {
        assert_eq!(subject_sort_key("Re: AW: Fwd:  Angebot"), "angebot");
        assert_eq!(subject_sort_key("RE[2]: Angebot"), "angebot");
        assert_eq!(subject_sort_key("Reise"), "reise");
        assert_eq!(subject_sort_key("Re Angebot"), "re angebot");
    }

    #[test]
    fn folder_paths_list_every_ancestor() {
        assert_eq!(folder_term(""), "/");
        assert_eq!(folder_term("Posteingang/Projekte"), "/Posteingang/Projekte");
        assert_eq!(
            folder_ancestors("Posteingang/Projekte"),
            vec!["/", "/Posteingang", "/Posteingang/Projekte"]
        );
        assert_eq!(folder_ancestors(""), vec!["/"]);
    }

    #[test]
    fn party_key_is_the_other_correspondent() {
        let mut doc = MessageDoc::empty(1);
        doc.from.push(Address { name: Some("Zoë Zeller".into()), address: Some("z@example.com".into()) });
        doc.to.push(Address { name: None, address: Some("Anna@Example.com".into()) });
        assert_eq!(party_sort_key(&doc, false), "zoe zeller");
        assert_eq!(party_sort_key(&doc, true), "anna@example.com");
    }
}
