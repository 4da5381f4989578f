//! The search request that travels from the receiving node to the shards (SRCH-01..03, SRCH-05):
//! the quick-search AST, the advanced-search filters, sort and paging.
//!
//! Query text is parsed into [`Query`] by `arca_search::parse_query`; shards never see query text.
//! Every word in the AST is already lower-cased (diacritics kept as typed; folding is the tokenizer's job).
//!
//! Dates are calendar dates ([`CivilDate`], serialized as `"YYYY-MM-DD"`); relative presets (This week,
//! Last month, …) travel unresolved and are resolved with [`DatePreset::resolve`] at run time against
//! "today" in the user's time zone, so a saved search evaluates them when it runs (SRCH-04).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ArchiveId, MetaError, ShardId};

/// Where a term is searched: a quick-search field prefix (SRCH-01) or an advanced text target (SRCH-03).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    /// `subject:` — the subject.
    Subject,
    /// `from:` — sender address and display name.
    From,
    /// `to:` — To addresses and display names (not Cc, not Bcc).
    To,
    /// `cc:` — Cc addresses and display names.
    Cc,
    /// `bcc:` — Bcc addresses and display names.
    Bcc,
    /// `bcontent:` — the text part, or the HTML part as text when there is no text part.
    Body,
    /// Attachment file names. No quick-search prefix (the manual has none); reached by [`Field::Any`] and
    /// the advanced target "Attachment file names".
    AttachmentName,
    /// `acontent:` — attachment contents, as far as the index settings allow (SRCH-07).
    AttachmentContent,
    /// No prefix: every field above. An *excluded* `Any` term matches display names and whole addresses
    /// but not the parts of an address (SRCH-01 exclusion rule); included and qualified terms do.
    Any,
}

impl Field {
    /// Every concrete field (all but [`Field::Any`]), in the order of the manual.
    pub const CONCRETE: [Field; 8] = [
        Field::Subject,
        Field::From,
        Field::To,
        Field::Cc,
        Field::Bcc,
        Field::Body,
        Field::AttachmentName,
        Field::AttachmentContent,
    ];

    /// The quick-search prefix without the colon, if the field has one.
    pub fn prefix(self) -> Option<&'static str> {
        match self {
            Field::Subject => Some("subject"),
            Field::From => Some("from"),
            Field::To => Some("to"),
            Field::Cc => Some("cc"),
            Field::Bcc => Some("bcc"),
            Field::Body => Some("bcontent"),
            Field::AttachmentContent => Some("acontent"),
            Field::AttachmentName | Field::Any => None,
        }
    }

    /// The field of a quick-search prefix (without the colon), ASCII case-insensitive; `None` if unknown.
    pub fn from_prefix(name: &str) -> Option<Field> {
        Field::CONCRETE.into_iter().find(|f| f.prefix().is_some_and(|p| p.eq_ignore_ascii_case(name)))
    }

    /// True for the address fields From, To, Cc and Bcc.
    pub fn is_address(self) -> bool {
        matches!(self, Field::From | Field::To | Field::Cc | Field::Bcc)
    }
}

/// One piece of a [`Pattern::Wildcard`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WildcardToken {
    /// Lower-cased literal text (never empty).
    Literal(String),
    /// `*`: zero or more characters.
    AnyChars,
    /// `?`: exactly one character.
    OneChar,
}

/// What a term looks for. All text is lower-cased. A word may contain the SRCH-02 separators
/// (`. , ; - _ @ / \` and NUL), e.g. `download-tipp` or `john@example.com`: the shard matches its parts
/// adjacent and in order (in address fields a word with `@` matches whole addresses only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Pattern {
    /// One word without wildcards.
    Word(String),
    /// One word with at least one wildcard, normalized: no two adjacent literals, no two adjacent
    /// `AnyChars`. Matched against whole words and against single parts (SRCH-02).
    Wildcard(Vec<WildcardToken>),
    /// Two or more words without wildcards that must stand next to each other in this order.
    /// Wildcards inside a phrase are a syntax error of the parser, never dropped.
    Phrase(Vec<String>),
}

impl Pattern {
    /// A lower-cased word; `*` and `?` in it become wildcard tokens. Checks no placement rules.
    pub fn word(text: &str) -> Pattern {
        let text = text.to_lowercase();
        if !text.contains(['*', '?']) {
            return Pattern::Word(text);
        }
        let mut tokens: Vec<WildcardToken> = Vec::new();
        for c in text.chars() {
            match c {
                '*' if tokens.last() == Some(&WildcardToken::AnyChars) => {}
                '*' => tokens.push(WildcardToken::AnyChars),
                '?' => tokens.push(WildcardToken::OneChar),
                c => match tokens.last_mut() {
                    Some(WildcardToken::Literal(s)) => s.push(c),
                    _ => tokens.push(WildcardToken::Literal(c.to_string())),
                },
            }
        }
        Pattern::Wildcard(tokens)
    }

    /// A phrase of lower-cased words; a single word gives [`Pattern::Word`]. Checks no wildcard rules.
    pub fn phrase<S: AsRef<str>>(words: &[S]) -> Pattern {
        let mut words: Vec<String> = words.iter().map(|w| w.as_ref().to_lowercase()).collect();
        if words.len() == 1 {
            return Pattern::Word(words.remove(0));
        }
        Pattern::Phrase(words)
    }

    /// For a wildcard of the form `literal*`, the literal (a prefix query).
    pub fn as_prefix(&self) -> Option<&str> {
        match self {
            Pattern::Wildcard(t) => match t.as_slice() {
                [WildcardToken::Literal(p), WildcardToken::AnyChars] => Some(p),
                _ => None,
            },
            _ => None,
        }
    }

    /// For a wildcard of the form `*literal`, the literal (a suffix query).
    pub fn as_suffix(&self) -> Option<&str> {
        match self {
            Pattern::Wildcard(t) => match t.as_slice() {
                [WildcardToken::AnyChars, WildcardToken::Literal(s)] => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// For a wildcard, a regular expression (Rust `regex` syntax, no anchors) meant to match a whole
    /// indexed term, as tantivy's `RegexQuery` does; `*` is `.*`, `?` is `.`, literals are escaped.
    pub fn to_regex(&self) -> Option<String> {
        let Pattern::Wildcard(tokens) = self else { return None };
        let mut re = String::new();
        for token in tokens {
            match token {
                WildcardToken::AnyChars => re.push_str(".*"),
                WildcardToken::OneChar => re.push('.'),
                WildcardToken::Literal(s) => {
                    for c in s.chars() {
                        if "\\.+*?()|[]{}^$#&-~".contains(c) {
                            re.push('\\');
                            re.push(c);
                        } else if c.is_control() {
                            re.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
                        } else {
                            re.push(c);
                        }
                    }
                }
            }
        }
        Some(re)
    }
}

/// Why a quick-search text does not parse (SRCH-01); answered to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("syntax error at character {}: {}", .position + 1, .reason)]
pub struct QuerySyntaxError {
    /// 0-based offset in Unicode characters (not bytes) of the offending place; the message counts from 1.
    pub position: usize,
    pub reason: String,
}

/// A search over one of the bounds of the `[search]` settings: a query error (answered 4xx, naming the
/// setting), never a missing store. Patterns are never quoted whole (they may be huge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
pub enum QueryLimitError {
    /// The request body is larger than `search.max_request_bytes`.
    #[error("the search request has more than {limit} bytes (setting search.max_request_bytes)")]
    RequestBytes { limit: u64 },
    /// More words than `search.max_terms`.
    #[error("the search has {count} words; at most {limit} are allowed (setting search.max_terms)")]
    Terms { count: usize, limit: u32 },
    /// More wildcard terms than `search.max_wildcards`.
    #[error(
        "the search has {count} wildcard terms; at most {limit} are allowed (setting search.max_wildcards)"
    )]
    Wildcards { count: usize, limit: u32 },
    /// A wildcard term longer than `search.max_wildcard_chars`.
    #[error(
        "wildcard term {term} has {chars} characters; at most {limit} are allowed (setting search.max_wildcard_chars)"
    )]
    WildcardChars {
        /// 1-based number of the wildcard term in the search.
        term: usize,
        chars: usize,
        limit: u32,
    },
    /// A wildcard term whose automaton is larger than the index allows (too many `?` after a `*`).
    #[error(
        "wildcard term {term} is too complex to run ({reason}); use fewer '?' after a '*' or a shorter \
         pattern (setting search.max_wildcard_chars)"
    )]
    WildcardComplexity { term: usize, reason: String },
    /// A wildcard term that matches more distinct words than `search.max_wildcard_expansion`.
    #[error(
        "a wildcard term matches more than {limit} distinct words in one index segment (setting \
         search.max_wildcard_expansion); make it more specific"
    )]
    WildcardExpansion { limit: u64 },
    /// A page larger than `search.max_results`.
    #[error("limit {requested} is over the largest page of {limit} hits (setting search.max_results)")]
    Results { requested: u32, limit: u32 },
    /// The search took longer than `search.timeout_ms` on a store.
    #[error("the search took longer than {limit_ms} ms (setting search.timeout_ms); narrow it")]
    Timeout { limit_ms: u64 },
}

impl QueryLimitError {
    /// The setting whose bound was exceeded, e.g. `search.max_terms` (for logs and metrics).
    pub fn setting(&self) -> &'static str {
        match self {
            QueryLimitError::RequestBytes { .. } => "search.max_request_bytes",
            QueryLimitError::Terms { .. } => "search.max_terms",
            QueryLimitError::Wildcards { .. } => "search.max_wildcards",
            QueryLimitError::WildcardChars { .. } => "search.max_wildcard_chars",
            QueryLimitError::WildcardComplexity { .. } => "search.max_wildcard_chars",
            QueryLimitError::WildcardExpansion { .. } => "search.max_wildcard_expansion",
            QueryLimitError::Results { .. } => "search.max_results",
            QueryLimitError::Timeout { .. } => "search.timeout_ms",
        }
    }
}

/// One quick-search term: a pattern in a field, or its exclusion (leading `-`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Term {
    pub field: Field,
    pub pattern: Pattern,
    /// True: a message matching the pattern in the field is left out.
    #[serde(default)]
    pub exclude: bool,
}

impl Term {
    /// An including term.
    pub fn new(field: Field, pattern: Pattern) -> Term {
        Term { field, pattern, exclude: false }
    }

    /// The same term, excluding.
    pub fn excluded(self) -> Term {
        Term { exclude: true, ..self }
    }
}

/// A parsed quick query: every term must hold (AND). No terms = every readable message; only
/// exclusions = every readable message except those.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Query {
    #[serde(default)]
    pub terms: Vec<Term>,
}

impl Query {
    /// True when the query has no terms (matches every readable message).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Where the advanced "Search for" text looks (SRCH-03); all five by default. It scopes only the
/// unqualified ([`Field::Any`]) terms of the text query; a term with a field prefix keeps its field.
/// With no target set, an unqualified included term matches nothing and an excluded one excludes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TextTargets {
    pub subject: bool,
    /// Sender/Recipient: From, To, Cc, Bcc.
    pub parties: bool,
    /// Message content (text part, or the HTML part when there is no text part).
    pub body: bool,
    pub attachment_names: bool,
    pub attachment_contents: bool,
}

impl Default for TextTargets {
    fn default() -> Self {
        TextTargets::ALL
    }
}

impl TextTargets {
    /// All five targets: the same as an unqualified quick search.
    pub const ALL: TextTargets = TextTargets {
        subject: true,
        parties: true,
        body: true,
        attachment_names: true,
        attachment_contents: true,
    };

    /// The concrete fields an unqualified term is searched in.
    pub fn fields(&self) -> Vec<Field> {
        let mut fields = Vec::new();
        if self.subject {
            fields.push(Field::Subject);
        }
        if self.parties {
            fields.extend([Field::From, Field::To, Field::Cc, Field::Bcc]);
        }
        if self.body {
            fields.push(Field::Body);
        }
        if self.attachment_names {
            fields.push(Field::AttachmentName);
        }
        if self.attachment_contents {
            fields.push(Field::AttachmentContent);
        }
        fields
    }
}

/// The advanced "Folder" criterion: one folder of one archive, optionally with its descendants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderFilter {
    pub archive: ArchiveId,
    /// `/`-separated path below the archive's top-level folder (e.g. `Posteingang/Projekte 2017`);
    /// empty = the top-level folder itself.
    #[serde(default)]
    pub path: String,
    /// True (the default): the folder and all folders below it; false: only that folder.
    #[serde(default = "yes")]
    pub include_subfolders: bool,
    /// The folder keys (see `records::Archive::folders`) the receiving node resolved `path` to in
    /// Raft: the folder's and, with subfolders, those below it. Shards match these exactly; `None`
    /// (never resolved) falls back to matching the path. Set by the node, never taken from a caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
}

impl FolderFilter {
    /// True when a message in `path` of `archive` lies within this filter.
    pub fn matches(&self, archive: ArchiveId, path: &str) -> bool {
        if archive != self.archive {
            return false;
        }
        if path == self.path {
            return true;
        }
        self.include_subfolders
            && (self.path.is_empty()
                || path.strip_prefix(self.path.as_str()).is_some_and(|rest| rest.starts_with('/')))
    }
}

/// A calendar date of the proleptic Gregorian calendar, years 1–9999; serialized as `"YYYY-MM-DD"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CivilDate {
    year: u16,
    month: u8,
    day: u8,
}

/// Days from 0000-03-01 to 1970-01-01 in the era arithmetic of `days_from_civil`.
const EPOCH_SHIFT: i64 = 719_468;

impl CivilDate {
    /// The earliest date, 0001-01-01.
    pub const MIN: CivilDate = CivilDate { year: 1, month: 1, day: 1 };
    /// The latest date, 9999-12-31.
    pub const MAX: CivilDate = CivilDate { year: 9999, month: 12, day: 31 };

    /// The date, if it exists and the year is 1–9999.
    pub fn new(year: i32, month: u32, day: u32) -> Option<CivilDate> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(CivilDate { year: year as u16, month: month as u8, day: day as u8 })
    }

    /// The year.
    pub fn year(self) -> i32 {
        i32::from(self.year)
    }

    /// The month, 1–12.
    pub fn month(self) -> u32 {
        u32::from(self.month)
    }

    /// The day of the month, 1–31.
    pub fn day(self) -> u32 {
        u32::from(self.day)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - EPOCH_SHIFT
    }

    /// The date `days` after 1970-01-01, saturating at [`CivilDate::MIN`] and [`CivilDate::MAX`].
    pub fn from_days_since_epoch(days: i64) -> CivilDate {
        if days < CivilDate::MIN.days_since_epoch() {
            return CivilDate::MIN;
        }
        if days > CivilDate::MAX.days_since_epoch() {
            return CivilDate::MAX;
        }
        let z = days + EPOCH_SHIFT;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // In range by the checks above, so the narrowing casts are exact.
        CivilDate { year: year as u16, month: month as u8, day: day as u8 }
    }

    /// The date `days` later (earlier when negative), saturating at the ends of the range.
    pub fn add_days(self, days: i64) -> CivilDate {
        CivilDate::from_days_since_epoch(self.days_since_epoch().saturating_add(days))
    }

    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub fn iso_weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (4).
        (self.days_since_epoch() + 3).rem_euclid(7) as u32 + 1
    }

    /// The local calendar date of a Unix time at a fixed offset from UTC (seconds east of UTC).
    pub fn from_unix_seconds(unix: i64, utc_offset_seconds: i64) -> CivilDate {
        CivilDate::from_days_since_epoch(unix.saturating_add(utc_offset_seconds).div_euclid(86_400))
    }

    /// The Unix time of this date's local midnight at a fixed offset from UTC (seconds east of UTC).
    pub fn unix_midnight(self, utc_offset_seconds: i64) -> i64 {
        self.days_since_epoch() * 86_400 - utc_offset_seconds
    }

    /// A valid date from components known to be valid except for the year, clamped to the range.
    fn clamped(year: i32, month: u32, day: u32) -> CivilDate {
        if year < 1 {
            CivilDate::MIN
        } else if year > 9999 {
            CivilDate::MAX
        } else {
            CivilDate { year: year as u16, month: month as u8, day: day as u8 }
        }
    }
}

/// True for leap years of the Gregorian calendar.
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in a month (1–12) of a year; 0 for an invalid month.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for CivilDate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid date '{s}' (expected an existing date as YYYY-MM-DD)");
        let parts: Vec<&str> = s.split('-').collect();
        let [y, m, d] = parts[..] else { return Err(bad()) };
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
            return Err(bad());
        }
        let (Ok(y), Ok(m), Ok(d)) = (y.parse(), m.parse(), d.parse()) else { return Err(bad()) };
        CivilDate::new(y, m, d).ok_or_else(bad)
    }
}

impl TryFrom<String> for CivilDate {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<CivilDate> for String {
    fn from(d: CivilDate) -> String {
        d.to_string()
    }
}

/// An inclusive range of calendar dates; empty when `first > last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateSpan {
    pub first: CivilDate,
    pub last: CivilDate,
}

impl DateSpan {
    /// True when `date` lies in the span (both ends inclusive).
    pub fn contains(&self, date: CivilDate) -> bool {
        self.first <= date && date <= self.last
    }

    /// Unix seconds `[start, end)` covering the span at a fixed offset from UTC (seconds east of UTC):
    /// local midnight of `first` up to, excluding, local midnight after `last`.
    pub fn unix_range(&self, utc_offset_seconds: i64) -> (i64, i64) {
        let end = (self.last.days_since_epoch() + 1) * 86_400 - utc_offset_seconds;
        (self.first.unix_midnight(utc_offset_seconds), end)
    }
}

/// A date criterion of the advanced search (message date or archive date), SRCH-03. Weeks are ISO weeks
/// (Monday to Sunday); a preset covers its whole period (This week ends on Sunday, even in the future).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DatePreset {
    Today,
    Yesterday,
    ThisWeek,
    LastWeek,
    ThisMonth,
    LastMonth,
    ThisYear,
    LastYear,
    /// Fixed dates, both inclusive; an absent end is open (earliest / latest date).
    #[serde(rename_all = "camelCase")]
    Custom {
        #[serde(default)]
        first: Option<CivilDate>,
        #[serde(default)]
        last: Option<CivilDate>,
    },
}

impl DatePreset {
    /// The inclusive date range of this criterion when `today` is the user's current local date.
    /// Saturates at 0001-01-01 and 9999-12-31.
    pub fn resolve(&self, today: CivilDate) -> DateSpan {
        let span = |first, last| DateSpan { first, last };
        let (y, m) = (today.year(), today.month());
        let month_span =
            |y: i32, m: u32| span(CivilDate::clamped(y, m, 1), CivilDate::clamped(y, m, days_in_month(y, m)));
        let year_span = |y: i32| span(CivilDate::clamped(y, 1, 1), CivilDate::clamped(y, 12, 31));
        let monday = today.add_days(1 - i64::from(today.iso_weekday()));
        match *self {
            DatePreset::Today => span(today, today),
            DatePreset::Yesterday => span(today.add_days(-1), today.add_days(-1)),
            DatePreset::ThisWeek => span(monday, monday.add_days(6)),
            DatePreset::LastWeek => span(monday.add_days(-7), monday.add_days(-1)),
            DatePreset::ThisMonth => month_span(y, m),
            DatePreset::LastMonth if m == 1 => month_span(y - 1, 12),
            DatePreset::LastMonth => month_span(y, m - 1),
            DatePreset::ThisYear => year_span(y),
            DatePreset::LastYear => year_span(y - 1),
            DatePreset::Custom { first, last } => {
                span(first.unwrap_or(CivilDate::MIN), last.unwrap_or(CivilDate::MAX))
            }
        }
    }
}

/// A size criterion in bytes of the raw RFC 822 message (the MIME size), both bounds inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SizeRange {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl SizeRange {
    /// True when `size` lies within the bounds.
    pub fn contains(&self, size: u64) -> bool {
        self.min.is_none_or(|min| size >= min) && self.max.is_none_or(|max| size <= max)
    }
}

/// Parses a size such as `5 MB`, `400 KB`, `1,5 MB` or `1024`: a decimal number (`.` or `,` as the
/// decimal mark) and an optional unit, case-insensitive, blanks optional. Units are binary:
/// `B`/`byte`/`bytes` (or none) = 1, `K`/`KB`/`KiB` = 1024, `M`/`MB`/`MiB` = 1024², `G`/`GB`/`GiB` = 1024³,
/// `T`/`TB`/`TiB` = 1024⁴. A fraction of a byte is rounded down. `field` names the API argument in errors.
pub fn parse_size(field: &str, text: &str) -> Result<u64, MetaError> {
    let bad = |why: &str| MetaError::invalid(field, format!("'{text}' is not a size: {why}"));
    let text_t = text.trim();
    let split = text_t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ',')).unwrap_or(text_t.len());
    let (number, unit) = text_t.split_at(split);
    let multiplier: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad("unknown unit (use B, KB, MB, GB or TB; 1 KB = 1024 bytes)")),
    };
    let (whole, fraction) = number.split_once(['.', ',']).unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad("a number is missing"));
    }
    if fraction.contains(['.', ',']) || fraction.len() > 18 {
        return Err(bad("malformed number"));
    }
    let too_large = || bad("too large");
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 =
        if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| bad("malformed"))? };
    let bytes = whole
        .checked_mul(multiplier)
        .and_then(|b| b.checked_add(fraction * multiplier / scale))
        .ok_or_else(too_large)?;
    u64::try_from(bytes).map_err(|_| too_large())
}

/// Message priority as set by the sender (SRCH-03); a message without priority information is Normal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

/// The priority of a message from its header values (raw, unfolded, any case).
///
/// The first of the four headers, in parameter order, whose value is recognized decides; an
/// unrecognized value is ignored; none recognized = Normal.
/// - `X-Priority`: leading number 1–2 = High, 3 = Normal, 4–5 = Low (`2 (High)` works); other numbers
///   are unrecognized; a word is read as below.
/// - `Importance` (RFC 2156: `high`, `normal`, `low`), `Priority` (RFC 2156: `urgent`, `normal`,
///   `non-urgent`) and `X-MSMail-Priority` (`High`, `Normal`, `Low`): the first word, where
///   `high`, `highest`, `urgent` = High; `normal`, `medium` = Normal; `low`, `lowest`, `non-urgent` = Low.
pub fn priority_from_headers(
    x_priority: Option<&str>,
    importance: Option<&str>,
    priority: Option<&str>,
    x_msmail_priority: Option<&str>,
) -> Priority {
    x_priority
        .and_then(|v| x_priority_value(v).or_else(|| priority_word(v)))
        .or_else(|| importance.and_then(priority_word))
        .or_else(|| priority.and_then(priority_word))
        .or_else(|| x_msmail_priority.and_then(priority_word))
        .unwrap_or(Priority::Normal)
}

/// The numeric `X-Priority` scale.
fn x_priority_value(value: &str) -> Option<Priority> {
    let value = value.trim();
    let digits = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    match value[..digits].parse::<u32>().ok()? {
        1 | 2 => Some(Priority::High),
        3 => Some(Priority::Normal),
        4 | 5 => Some(Priority::Low),
        _ => None,
    }
}

/// The first word of a priority header value.
fn priority_word(value: &str) -> Option<Priority> {
    let word = value.trim().split(|c: char| c.is_whitespace() || c == '(' || c == ';').next()?;
    match word.to_ascii_lowercase().as_str() {
        "high" | "highest" | "urgent" => Some(Priority::High),
        "normal" | "medium" => Some(Priority::Normal),
        "low" | "lowest" | "non-urgent" => Some(Priority::Low),
        _ => None,
    }
}

/// The advanced-search criteria beside the text query (SRCH-03); all set criteria are ANDed.
/// The default restricts nothing (the caller's readable folders only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Filters {
    /// Where the unqualified terms of the text query look.
    pub targets: TextTargets,
    /// One folder (of a readable archive); `None` = all readable folders.
    pub folder: Option<FolderFilter>,
    /// The "From" box, full quick syntax; its unqualified terms search the sender only.
    pub from: Query,
    /// The "To/Cc/Bcc" box, full quick syntax; its unqualified terms search To, Cc and Bcc.
    pub recipients: Query,
    /// Message date (the `Date` header); `None` = any.
    pub message_date: Option<DatePreset>,
    /// Archive date (when the message was archived); `None` = any.
    pub archive_date: Option<DatePreset>,
    /// Archive stores (shards) to search; empty = all.
    pub shards: BTreeSet<ShardId>,
    /// Include messages with attachments (default true).
    pub with_attachments: bool,
    /// Include messages without attachments (default true); both false = no message.
    pub without_attachments: bool,
    /// Raw message size in bytes.
    pub size: SizeRange,
    /// Priorities to include; empty = any.
    pub priorities: BTreeSet<Priority>,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            targets: TextTargets::ALL,
            folder: None,
            from: Query::default(),
            recipients: Query::default(),
            message_date: None,
            archive_date: None,
            shards: BTreeSet::new(),
            with_attachments: true,
            without_attachments: true,
            size: SizeRange::default(),
            priorities: BTreeSet::new(),
        }
    }
}

/// Sort keys of the result list (SRCH-05).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SortKey {
    /// Message date.
    #[default]
    Date,
    /// The other party: sender of received messages, recipient of sent messages.
    Party,
    Subject,
}

/// Sort order of the result list; the default is newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sort {
    pub key: SortKey,
    pub ascending: bool,
}

/// Hits per page when a request names no limit.
pub const DEFAULT_SEARCH_LIMIT: u32 = 50;

/// A search as it travels inside the cluster and through the data API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    pub query: Query,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub sort: Sort,
    /// Hits per page.
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Opaque search-after cursor from the previous page; `None` = first page.
    #[serde(default)]
    pub cursor: Option<String>,
}

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            query: Query::default(),
            filters: Filters::default(),
            sort: Sort::default(),
            limit: DEFAULT_SEARCH_LIMIT,
            cursor: None,
        }
    }
}

fn default_limit() -> u32 {
    DEFAULT_SEARCH_LIMIT
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> CivilDate {
        s.parse().expect("valid date")
    }

    fn span(first: &str, last: &str) -> DateSpan {
        DateSpan { first: date(first), last: date(last) }
    }

    #[test]
    fn field_prefixes_are_case_insensitive_and_attachment_names_have_none() {
        assert_eq!(Field::from_prefix("SUBJECT"), Some(Field::Subject));
        assert_eq!(Field::from_prefix("bContent"), Some(Field::Body));
        assert_eq!(Field::from_prefix("acontent"), Some(Field::AttachmentContent));
        assert_eq!(Field::from_prefix("aname"), None);
        assert_eq!(Field::from_prefix("any"), None);
        for f in Field::CONCRETE {
            if let Some(p) = f.prefix() {
                assert_eq!(Field::from_prefix(p), Some(f));
            }
        }
    }

    #[test]
    fn wildcard_words_become_normalized_tokens() {
        use WildcardToken::*;
        assert_eq!(Pattern::word("Auto"), Pattern::Word("auto".into()));
        assert_eq!(
            Pattern::word("Me?er**"),
            Pattern::Wildcard(vec![Literal("me".into()), OneChar, Literal("er".into()), AnyChars])
        );
        assert_eq!(Pattern::word("Auto*").as_prefix(), Some("auto"));
        assert_eq!(Pattern::word("*Example.com").as_suffix(), Some("example.com"));
        assert_eq!(Pattern::word("*a*").as_prefix(), None);
        assert_eq!(Pattern::word("auto").to_regex(), None);
        assert_eq!(Pattern::word("*@ex-a.com?x").to_regex().as_deref(), Some(r".*@ex\-a\.com.x"));
        assert_eq!(Pattern::phrase(&["Daily"]), Pattern::Word("daily".into()));
    }

    #[test]
    fn civil_dates_round_trip_through_day_numbers() {
        assert_eq!(date("1970-01-01").days_since_epoch(), 0);
        assert_eq!(date("2000-03-01").days_since_epoch(), 11_017);
        assert_eq!(date("1969-12-31").days_since_epoch(), -1);
        for d in [CivilDate::MIN, CivilDate::MAX, date("2024-02-29"), date("1900-02-28"), date("2000-12-31")]
        {
            assert_eq!(CivilDate::from_days_since_epoch(d.days_since_epoch()), d);
        }
        let mut d = date("1899-12-25");
        for _ in 0..200_000 {
            let next = d.add_days(1);
            assert_eq!(next.days_since_epoch(), d.days_since_epoch() + 1);
            assert!(next > d);
            d = next;
        }
        assert_eq!(CivilDate::MAX.add_days(1), CivilDate::MAX);
        assert_eq!(CivilDate::MIN.add_days(-1), CivilDate::MIN);
    }

    #[test]
    fn civil_dates_parse_only_existing_dates() {
        assert_eq!(date("2024-02-29").to_string(), "2024-02-29");
        for bad in
            ["2023-02-29", "1900-02-29", "2026-13-01", "2026-04-31", "0000-01-01", "26-1-1", "2026-1-01"]
        {
            assert!(bad.parse::<CivilDate>().is_err(), "{bad}");
        }
        assert!(date("2000-02-29").year() == 2000);
        assert_eq!(date("2026-11-25").iso_weekday(), 3);
        assert_eq!(date("1970-01-01").iso_weekday(), 4);
        assert_eq!(date("2026-11-29").iso_weekday(), 7);
    }

    #[test]
    fn this_week_runs_monday_to_sunday() {
        let wed = date("2026-11-25");
        assert_eq!(DatePreset::ThisWeek.resolve(wed), span("2026-11-23", "2026-11-29"));
        assert_eq!(DatePreset::LastWeek.resolve(wed), span("2026-11-16", "2026-11-22"));
        // Monday and Sunday belong to their own week.
        assert_eq!(DatePreset::ThisWeek.resolve(date("2026-11-23")), span("2026-11-23", "2026-11-29"));
        assert_eq!(DatePreset::ThisWeek.resolve(date("2026-11-29")), span("2026-11-23", "2026-11-29"));
        // An ISO week across the turn of the year.
        assert_eq!(DatePreset::ThisWeek.resolve(date("2027-01-01")), span("2026-12-28", "2027-01-03"));
        assert_eq!(DatePreset::LastWeek.resolve(date("2027-01-04")), span("2026-12-28", "2027-01-03"));
    }

    #[test]
    fn day_month_and_year_presets_cross_boundaries() {
        let jan1 = date("2027-01-01");
        assert_eq!(DatePreset::Today.resolve(jan1), span("2027-01-01", "2027-01-01"));
        assert_eq!(DatePreset::Yesterday.resolve(jan1), span("2026-12-31", "2026-12-31"));
        assert_eq!(DatePreset::LastMonth.resolve(date("2027-01-15")), span("2026-12-01", "2026-12-31"));
        assert_eq!(DatePreset::ThisMonth.resolve(date("2026-11-25")), span("2026-11-01", "2026-11-30"));
        assert_eq!(DatePreset::ThisYear.resolve(date("2026-11-25")), span("2026-01-01", "2026-12-31"));
        assert_eq!(DatePreset::LastYear.resolve(date("2026-11-25")), span("2025-01-01", "2025-12-31"));
    }

    #[test]
    fn february_follows_leap_years() {
        assert_eq!(DatePreset::ThisMonth.resolve(date("2024-02-10")), span("2024-02-01", "2024-02-29"));
        assert_eq!(DatePreset::LastMonth.resolve(date("2024-03-31")), span("2024-02-01", "2024-02-29"));
        assert_eq!(DatePreset::LastMonth.resolve(date("2023-03-01")), span("2023-02-01", "2023-02-28"));
        assert_eq!(DatePreset::ThisMonth.resolve(date("2100-02-01")), span("2100-02-01", "2100-02-28"));
        assert_eq!(DatePreset::ThisMonth.resolve(date("2000-02-01")), span("2000-02-01", "2000-02-29"));
        assert_eq!(DatePreset::Yesterday.resolve(date("2024-03-01")), span("2024-02-29", "2024-02-29"));
    }

    #[test]
    fn custom_ranges_are_inclusive_and_may_be_open() {
        let custom = DatePreset::Custom { first: Some(date("2026-01-10")), last: None };
        let s = custom.resolve(date("2026-11-25"));
        assert_eq!(s, DateSpan { first: date("2026-01-10"), last: CivilDate::MAX });
        let closed = span("2026-01-10", "2026-01-12");
        assert!(closed.contains(date("2026-01-10")) && closed.contains(date("2026-01-12")));
        assert!(!closed.contains(date("2026-01-13")));
        // Local midnight at UTC+1 is 23:00 UTC the day before; the end is exclusive.
        let (start, end) = span("1970-01-02", "1970-01-02").unix_range(3600);
        assert_eq!((start, end), (86_400 - 3600, 2 * 86_400 - 3600));
        assert_eq!(CivilDate::from_unix_seconds(86_400 - 3600, 3600), date("1970-01-02"));
        assert_eq!(CivilDate::from_unix_seconds(86_400 - 3601, 3600), date("1970-01-01"));
    }

    #[test]
    fn sizes_use_binary_units() {
        let size = |t: &str| parse_size("size", t);
        assert_eq!(size("5 MB"), Ok(5 * 1024 * 1024));
        assert_eq!(size("400 KB"), Ok(400 * 1024));
        assert_eq!(size("600kb"), Ok(600 * 1024));
        assert_eq!(size("1,5 MB"), Ok(1536 * 1024));
        assert_eq!(size("1.5k"), Ok(1536));
        assert_eq!(size("0.1 KB"), Ok(102));
        assert_eq!(size(" 1024 "), Ok(1024));
        assert_eq!(size("7 bytes"), Ok(7));
        assert_eq!(size("2 GiB"), Ok(2 << 30));
        for bad in ["", "MB", "5 XB", "-5 MB", "1.2.3 KB", "99999999999999999999 TB", "5 MB x"] {
            let err = size(bad).expect_err(bad);
            assert!(matches!(&err, MetaError::Invalid { field, .. } if field == "size"), "{bad}: {err}");
        }
        let range = SizeRange { min: Some(400 * 1024), max: Some(600 * 1024) };
        assert!(range.contains(400 * 1024) && range.contains(600 * 1024));
        assert!(!range.contains(600 * 1024 + 1) && !range.contains(400 * 1024 - 1));
        assert!(SizeRange::default().contains(0));
    }

    #[test]
    fn priority_follows_the_documented_header_mapping() {
        let x = |v| priority_from_headers(Some(v), None, None, None);
        assert_eq!(x("1"), Priority::High);
        assert_eq!(x("2 (High)"), Priority::High);
        assert_eq!(x("3 (Normal)"), Priority::Normal);
        assert_eq!(x("4"), Priority::Low);
        assert_eq!(x(" 5 (Lowest)"), Priority::Low);
        assert_eq!(x("High"), Priority::High);
        assert_eq!(x("9"), Priority::Normal);
        assert_eq!(priority_from_headers(None, Some("HIGH"), None, None), Priority::High);
        assert_eq!(priority_from_headers(None, Some("low"), None, None), Priority::Low);
        assert_eq!(priority_from_headers(None, None, Some("urgent"), None), Priority::High);
        assert_eq!(priority_from_headers(None, None, Some("non-urgent"), None), Priority::Low);
        assert_eq!(priority_from_headers(None, None, Some("normal"), None), Priority::Normal);
        assert_eq!(priority_from_headers(None, None, None, Some("Low")), Priority::Low);
        assert_eq!(priority_from_headers(None, None, None, None), Priority::Normal);
        // The first recognized header wins; unrecognized values fall through.
        assert_eq!(priority_from_headers(Some("5"), Some("high"), None, None), Priority::Low);
        assert_eq!(priority_from_headers(Some("x"), Some("high"), None, Some("low")), Priority::High);
        assert!(Priority::Low < Priority::Normal && Priority::Normal < Priority::High);
    }

    #[test]
    fn folder_filter_includes_descendants_only_when_asked() {
        let mut f =
            FolderFilter { archive: 7, path: "Posteingang".into(), include_subfolders: true, keys: None };
        assert!(f.matches(7, "Posteingang"));
        assert!(f.matches(7, "Posteingang/Projekte 2017/Gewinnoptimierung"));
        assert!(!f.matches(7, "Posteingang2"));
        assert!(!f.matches(8, "Posteingang"));
        f.include_subfolders = false;
        assert!(f.matches(7, "Posteingang"));
        assert!(!f.matches(7, "Posteingang/Projekte 2017"));
        let root = FolderFilter { archive: 7, path: String::new(), include_subfolders: true, keys: None };
        assert!(root.matches(7, "") && root.matches(7, "Inbox/x"));
    }

    #[test]
    fn text_targets_default_to_all_fields() {
        assert_eq!(TextTargets::default().fields(), Field::CONCRETE.to_vec());
        let only = TextTargets { subject: false, parties: true, body: false, ..TextTargets::ALL };
        assert_eq!(
            only.fields(),
            vec![
                Field::From,
                Field::To,
                Field::Cc,
                Field::Bcc,
                Field::AttachmentName,
                Field::AttachmentContent
            ]
        );
    }

    #[test]
    fn search_request_round_trips_through_json() {
        let request = SearchRequest {
            query: Query {
                terms: vec![
                    Term::new(Field::From, Pattern::word("*@example.com")),
                    Term::new(Field::Any, Pattern::phrase(&["daily", "update"])).excluded(),
                ],
            },
            filters: Filters {
                targets: TextTargets { attachment_contents: false, ..TextTargets::ALL },
                folder: Some(FolderFilter {
                    archive: 3,
                    path: "Inbox".into(),
                    include_subfolders: false,
                    keys: None,
                }),
                from: Query { terms: vec![Term::new(Field::Any, Pattern::word("zdnet"))] },
                message_date: Some(DatePreset::LastMonth),
                archive_date: Some(DatePreset::Custom { first: Some(date("2026-01-01")), last: None }),
                shards: BTreeSet::from([1, 4]),
                without_attachments: false,
                size: SizeRange { min: Some(5 << 20), max: None },
                priorities: BTreeSet::from([Priority::High]),
                ..Filters::default()
            },
            sort: Sort { key: SortKey::Party, ascending: true },
            limit: 20,
            cursor: Some("abc".into()),
        };
        let json = serde_json::to_string(&request).expect("serialize");
        assert!(json.contains(r#""first":"2026-01-01""#), "{json}");
        assert!(json.contains(r#""messageDate":"lastMonth""#), "{json}");
        let back: SearchRequest = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, request);
    }

    #[test]
    fn omitted_request_fields_take_their_defaults() {
        let request: SearchRequest = serde_json::from_str("{}").expect("deserialize");
        assert_eq!(request, SearchRequest::default());
        assert!(request.filters.with_attachments && request.filters.without_attachments);
        assert_eq!(request.sort, Sort { key: SortKey::Date, ascending: false });
        let folder: FolderFilter = serde_json::from_str(r#"{"archive":1}"#).expect("deserialize");
        assert!(folder.include_subfolders && folder.path.is_empty());
        assert!(serde_json::from_str::<CivilDate>(r#""2026-02-30""#).is_err());
    }
}
