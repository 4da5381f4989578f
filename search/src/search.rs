//! Searching one shard: top-k in the requested sort with search-after, the total hit count, and the
//! stored columns of each hit with highlight ranges (SRCH-05).
//!
//! - **Order**: the sort value (date, party key or subject key, see [`crate::schema`]), then the message
//!   number, then the archive (the same message may be filed in two archives of a shard), all in the
//!   requested direction. So the order is total and paging never skips or repeats a hit.
//! - **Search-after**: [`ShardCursor`] is a sort value and a [`Tie`]: the page holds hits strictly after
//!   (value, tie) in the requested order. `Tie::At` is a hit's (number, archive); `Tie::First`/`Tie::Last`
//!   sort before/after every hit of the value and let [`crate::merge`](mod@crate::merge) continue across
//!   shards.
//! - **Collection** reads fast columns only: per segment, string sort keys are compared by term ordinal
//!   (ordinals follow byte order within a segment) and turned into strings only for the segment's top k.
//!   Cost: one pass over the matching documents, memory O(k) per segment.
//! - **Highlights** are byte ranges `[start, end)` into the returned `subject`, `from` and `recipients`
//!   strings (UTF-8; the API layer converts if it needs UTF-16 or characters). They mark where included
//!   terms match: words and phrases where their units stand in order, the whole joined word, wildcard
//!   matches on whole words and parts. Excluded terms are never highlighted.

use std::cmp::Ordering;

use arca_types::ArchiveId;
use arca_types::query::{Field, Pattern, Priority, Query, Sort, SortKey, WildcardToken};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::EnableScoring;
use tantivy::schema::Value;
use tantivy::{DocAddress, DocId, DocSet, Score, SegmentOrdinal, SegmentReader, TERMINATED, TantivyDocument};

use crate::compile::{ResolvedFilters, Scope, compile};
use crate::error::{SearchError, tantivy_err};
use crate::index::ShardIndex;
use crate::limits::{Budget, ShardBounds};
use crate::schema::{names, priority_from_code};
use crate::tokenizer::{Unit, analyze, analyze_query_word, fold, nfc};

/// A sort value: the message date (Unix seconds) or a lower-cased string key (party, subject).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum SortValue {
    Date(i64),
    Text(String),
}

/// The cursor's place among hits of its sort value, compared with a hit's (number, archive) in natural
/// order; the requested direction then applies to (value, tie) as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Tie {
    /// Before every (number, archive): ascending, every hit of the value follows; descending, none.
    First,
    /// At this (number, archive): hits after it in the requested direction follow.
    At { number: u64, archive: ArchiveId },
    /// After every (number, archive): ascending, no hit of the value follows; descending, all do.
    Last,
}

/// A search-after position within one shard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardCursor {
    pub value: SortValue,
    pub tie: Tie,
}

/// A search of one shard.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShardQuery {
    pub query: Query,
    pub filters: ResolvedFilters,
    /// What the caller may read; empty = nothing.
    pub scopes: Vec<Scope>,
    pub sort: Sort,
    /// Hits per page.
    pub limit: usize,
    /// Hits strictly after this position; `None` = first page.
    pub after: Option<ShardCursor>,
    /// Time and wildcard expansion this search may use on the store.
    #[serde(default)]
    pub bounds: ShardBounds,
}

/// Which stored string a highlight range refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum HighlightField {
    Subject,
    From,
    Recipients,
}

/// A matched term in a stored string: byte range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Highlight {
    pub field: HighlightField,
    pub start: usize,
    pub end: usize,
}

/// One hit with what the result list shows (SRCH-05), read from the index alone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardHit {
    pub number: u64,
    pub archive: ArchiveId,
    /// The folder's key as indexed (empty = top level); the API shows the folder's current path.
    pub folder: String,
    /// Message date (archive time when the message has no readable `Date`), Unix seconds.
    pub date: i64,
    pub archived_at: i64,
    pub size: u64,
    pub has_attachments: bool,
    pub priority: Priority,
    /// Archived as sent: the other party is the recipient.
    pub sent: bool,
    pub subject: String,
    /// The sender as `Name <address>`.
    pub from: String,
    /// To, Cc, Bcc as `Name <address>, …` (at most [`crate::schema::MAX_DISPLAY_RECIPIENTS`]).
    pub recipients: String,
    /// The hit's value of the requested sort key.
    pub sort_value: SortValue,
    pub highlights: Vec<Highlight>,
}

impl ShardHit {
    /// The cursor that continues after this hit.
    pub fn cursor(&self) -> ShardCursor {
        ShardCursor {
            value: self.sort_value.clone(),
            tie: Tie::At { number: self.number, archive: self.archive },
        }
    }
}

/// One page of a shard's hits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardPage {
    pub hits: Vec<ShardHit>,
    /// Hits of the query in the shard, regardless of the cursor.
    pub total: u64,
    /// Hits after the cursor (this page included).
    pub remaining: u64,
}

impl ShardPage {
    /// The cursor of the next page, if there are more hits.
    pub fn next_cursor(&self) -> Option<ShardCursor> {
        if self.remaining > self.hits.len() as u64 { self.hits.last().map(ShardHit::cursor) } else { None }
    }
}

impl ShardIndex {
    /// Runs a search on the last committed state of the index, within its bounds: a search that
    /// breaks one (time, wildcard expansion) fails with [`SearchError::Limit`].
    pub fn search(&self, q: &ShardQuery) -> Result<ShardPage, SearchError> {
        let budget = Budget::start(q.bounds);
        self.search_within(q, &budget).map_err(|e| match budget.broken() {
            Some(limit) => SearchError::Limit(limit),
            None => e,
        })
    }

    fn search_within(
        &self,
        q: &ShardQuery,
        budget: &std::sync::Arc<Budget>,
    ) -> Result<ShardPage, SearchError> {
        let fields = self.fields();
        let query = compile(fields, &q.query, &q.filters, &q.scopes, budget)?;
        if let Some(after) = &q.after {
            let ok = matches!(
                (&after.value, q.sort.key),
                (SortValue::Date(_), SortKey::Date) | (SortValue::Text(_), SortKey::Party | SortKey::Subject)
            );
            if !ok {
                return Err(SearchError::BadCursor("the cursor belongs to another sort key".into()));
            }
        }
        let searcher = self.reader().searcher();
        let collector = TopCollector { sort: q.sort, limit: q.limit, after: q.after.clone() };
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(&searcher))
            .map_err(tantivy_err("prepare search"))?;
        let mut fruits = Vec::new();
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            budget.check_time()?;
            let fruit = collect_segment(&collector, weight.as_ref(), ord as SegmentOrdinal, reader, budget)
                .map_err(tantivy_err("search segment"))?;
            fruits.push(fruit);
        }
        let fruit = collector.merge_fruits(fruits).map_err(tantivy_err("merge segment results"))?;
        let matcher = HighlightMatcher::new(&q.query, &q.filters);
        let mut hits = Vec::with_capacity(fruit.top.len());
        for (value, _, _, address) in fruit.top {
            let doc: TantivyDocument = searcher.doc(address).map_err(tantivy_err("read stored fields"))?;
            let u = |f| doc.get_first(f).and_then(|v| v.as_u64()).unwrap_or(0);
            let i = |f| doc.get_first(f).and_then(|v| v.as_i64()).unwrap_or(0);
            let s = |f| doc.get_first(f).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let folder = s(fields.folder);
            let subject = s(fields.subject);
            let from = s(fields.display_from);
            let recipients = s(fields.display_recipients);
            let highlights = matcher.highlights(&subject, &from, &recipients);
            hits.push(ShardHit {
                number: u(fields.number),
                archive: u(fields.archive),
                folder: folder.strip_prefix('/').unwrap_or(&folder).to_string(),
                date: i(fields.date),
                archived_at: i(fields.archived),
                size: u(fields.size),
                has_attachments: u(fields.has_attachments) != 0,
                priority: priority_from_code(u(fields.priority)),
                sent: u(fields.sent) != 0,
                subject,
                from,
                recipients,
                sort_value: value,
                highlights,
            });
        }
        Ok(ShardPage { hits, total: fruit.total, remaining: fruit.remaining })
    }
}

/// Documents collected between two looks at the clock.
const CLOCK_EVERY: u32 = 4096;

/// Collects one segment's matches, looking at the search's deadline as it goes.
fn collect_segment(
    collector: &TopCollector,
    weight: &dyn tantivy::query::Weight,
    ord: SegmentOrdinal,
    reader: &SegmentReader,
    budget: &Budget,
) -> tantivy::Result<Fruit> {
    let mut segment = collector.for_segment(ord, reader)?;
    let mut scorer = weight.scorer(reader, 1.0)?;
    let alive = reader.alive_bitset();
    let mut doc = scorer.doc();
    let mut seen = 0u32;
    while doc != TERMINATED {
        if alive.is_none_or(|a| a.is_alive(doc)) {
            segment.collect(doc, 0.0);
        }
        seen = seen.wrapping_add(1);
        if seen.is_multiple_of(CLOCK_EVERY) {
            budget.check_time().map_err(|e| tantivy::TantivyError::InvalidArgument(e.to_string()))?;
        }
        doc = scorer.advance();
    }
    Ok(segment.harvest())
}

/// Compares two (value, number, archive) keys in the requested direction.
fn order(sort: Sort, a: (&SortValue, u64, u64), b: (&SortValue, u64, u64)) -> Ordering {
    let o = a.cmp(&b);
    if sort.ascending { o } else { o.reverse() }
}

struct TopCollector {
    sort: Sort,
    limit: usize,
    after: Option<ShardCursor>,
}

struct Fruit {
    total: u64,
    remaining: u64,
    top: Vec<(SortValue, u64, u64, DocAddress)>,
}

/// The sort column of a segment.
enum KeyColumn {
    Date(Column<i64>),
    /// `None` when no document of the segment has the key.
    Text(Option<StrColumn>),
}

struct TopSegment {
    segment: SegmentOrdinal,
    sort: Sort,
    limit: usize,
    number: Column<u64>,
    archive: Column<u64>,
    key: KeyColumn,
    /// The cursor in this segment's key space (see `segment_key`).
    after: Option<(u128, Tie)>,
    total: u64,
    remaining: u64,
    top: Vec<(u128, u64, u64, DocId)>,
}

/// Order-preserving key of a date.
fn date_key(v: i64) -> u128 {
    u128::from((v as u64) ^ (1 << 63))
}

/// Key of a string ordinal: 0 for no value, 2·(ord+1) for ord; odd keys lie between two ordinals.
fn ord_key(ord: Option<u64>) -> u128 {
    ord.map_or(0, |o| 2 * (u128::from(o) + 1))
}

impl TopSegment {
    fn key(&self, doc: DocId) -> u128 {
        match &self.key {
            KeyColumn::Date(c) => date_key(c.first(doc).unwrap_or(0)),
            KeyColumn::Text(Some(c)) => ord_key(c.ords().first(doc)),
            KeyColumn::Text(None) => 0,
        }
    }

    fn cmp(&self, a: (u128, Tie), b: (u128, Tie)) -> Ordering {
        let o = a.cmp(&b);
        if self.sort.ascending { o } else { o.reverse() }
    }

    fn compact(&mut self) {
        let asc = self.sort.ascending;
        self.top.sort_by(|a, b| {
            let o = (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2));
            if asc { o } else { o.reverse() }
        });
        self.top.truncate(self.limit);
    }
}

/// The cursor's position in a segment's key space.
fn segment_cursor(key: &KeyColumn, value: &SortValue) -> std::io::Result<u128> {
    Ok(match (key, value) {
        (KeyColumn::Date(_), SortValue::Date(v)) => date_key(*v),
        (_, SortValue::Text(s)) if s.is_empty() => 0,
        (KeyColumn::Text(None), SortValue::Text(_)) => 1,
        (KeyColumn::Text(Some(c)), SortValue::Text(s)) => {
            // Lowest ordinal whose term is >= s, by binary search over the sorted dictionary.
            let (mut lo, mut hi) = (0u64, c.num_terms() as u64);
            let mut buf = String::new();
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                buf.clear();
                c.ord_to_str(mid, &mut buf)?;
                if buf.as_str() < s.as_str() { lo = mid + 1 } else { hi = mid }
            }
            buf.clear();
            let exact = lo < c.num_terms() as u64 && c.ord_to_str(lo, &mut buf)? && buf == *s;
            if exact { ord_key(Some(lo)) } else { ord_key(Some(lo)) - 1 }
        }
        // A cursor of another sort key is refused before the search.
        (KeyColumn::Date(_), SortValue::Text(_)) | (KeyColumn::Text(_), SortValue::Date(_)) => 0,
    })
}

impl Collector for TopCollector {
    type Fruit = Fruit;
    type Child = TopSegment;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<TopSegment> {
        let ff = reader.fast_fields();
        let key = match self.sort.key {
            SortKey::Date => KeyColumn::Date(ff.i64(names::DATE)?),
            SortKey::Party => KeyColumn::Text(ff.str(names::SORT_PARTY)?),
            SortKey::Subject => KeyColumn::Text(ff.str(names::SORT_SUBJECT)?),
        };
        let after = match &self.after {
            Some(c) => Some((segment_cursor(&key, &c.value)?, c.tie)),
            None => None,
        };
        Ok(TopSegment {
            segment,
            sort: self.sort,
            limit: self.limit,
            number: ff.u64(names::NUMBER)?,
            archive: ff.u64(names::ARCHIVE)?,
            key,
            after,
            total: 0,
            remaining: 0,
            top: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Fruit>) -> tantivy::Result<Fruit> {
        let mut all = Fruit { total: 0, remaining: 0, top: Vec::new() };
        for f in fruits {
            all.total += f.total;
            all.remaining += f.remaining;
            all.top.extend(f.top);
        }
        all.top.sort_by(|a, b| order(self.sort, (&a.0, a.1, a.2), (&b.0, b.1, b.2)));
        all.top.truncate(self.limit);
        Ok(all)
    }
}

impl SegmentCollector for TopSegment {
    type Fruit = Fruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        let key = self.key(doc);
        let number = self.number.first(doc).unwrap_or(0);
        let archive = self.archive.first(doc).unwrap_or(0);
        if let Some(after) = self.after
            && self.cmp((key, Tie::At { number, archive }), after) != Ordering::Greater
        {
            return;
        }
        self.remaining += 1;
        if self.limit == 0 {
            return;
        }
        self.top.push((key, number, archive, doc));
        if self.top.len() >= self.limit.saturating_mul(2).saturating_add(64) {
            self.compact();
        }
    }

    fn harvest(mut self) -> Fruit {
        self.compact();
        let mut top = Vec::with_capacity(self.top.len());
        let mut buf = String::new();
        for &(key, number, archive, doc) in &self.top {
            let value = match &self.key {
                KeyColumn::Date(c) => SortValue::Date(c.first(doc).unwrap_or(0)),
                KeyColumn::Text(Some(c)) => {
                    buf.clear();
                    if key > 0 {
                        // An unreadable ordinal leaves the key empty; it still sorts by its ordinal here.
                        let _ = c.ord_to_str(((key / 2) - 1) as u64, &mut buf);
                    }
                    SortValue::Text(buf.clone())
                }
                KeyColumn::Text(None) => SortValue::Text(String::new()),
            };
            top.push((value, number, archive, DocAddress::new(self.segment, doc)));
        }
        Fruit { total: self.total, remaining: self.remaining, top }
    }
}

/// Which stored strings a term may highlight.
#[derive(Debug, Clone, Copy, Default)]
struct Places {
    subject: bool,
    from: bool,
    recipients: bool,
}

fn places(field: Field, any: Places) -> Places {
    match field {
        Field::Subject => Places { subject: true, ..Places::default() },
        Field::From => Places { from: true, ..Places::default() },
        Field::To | Field::Cc | Field::Bcc => Places { recipients: true, ..Places::default() },
        Field::Any => any,
        Field::Body | Field::AttachmentName | Field::AttachmentContent => Places::default(),
    }
}

enum Matcher {
    /// Units that must stand in order, and the whole joined word.
    Units(Vec<Unit>, Option<String>),
    Wildcard(Vec<WildcardToken>),
}

/// Finds where the included terms of a search match the stored subject, sender and recipients.
struct HighlightMatcher {
    terms: Vec<(Places, Matcher)>,
}

impl HighlightMatcher {
    fn new(query: &Query, filters: &ResolvedFilters) -> HighlightMatcher {
        let t = filters.targets;
        let any = Places { subject: t.subject, from: t.parties, recipients: t.parties };
        let mut terms = Vec::new();
        let from_box = Places { from: true, ..Places::default() };
        let rcpt_box = Places { recipients: true, ..Places::default() };
        let sources = [(query, any), (&filters.from, from_box), (&filters.recipients, rcpt_box)];
        for (q, unqualified) in sources {
            for term in q.terms.iter().filter(|t| !t.exclude) {
                let p = places(term.field, unqualified);
                let m = match &term.pattern {
                    Pattern::Word(w) => {
                        let qw = analyze_query_word(w);
                        Matcher::Units(qw.units, qw.whole)
                    }
                    Pattern::Phrase(words) => {
                        Matcher::Units(words.iter().flat_map(|w| analyze_query_word(w).units).collect(), None)
                    }
                    Pattern::Wildcard(tokens) => Matcher::Wildcard(
                        tokens
                            .iter()
                            .map(|t| match t {
                                WildcardToken::Literal(s) => WildcardToken::Literal(nfc(s).to_lowercase()),
                                other => other.clone(),
                            })
                            .collect(),
                    ),
                };
                terms.push((p, m));
            }
        }
        HighlightMatcher { terms }
    }

    fn highlights(&self, subject: &str, from: &str, recipients: &str) -> Vec<Highlight> {
        let mut out = Vec::new();
        for (field, text) in [
            (HighlightField::Subject, subject),
            (HighlightField::From, from),
            (HighlightField::Recipients, recipients),
        ] {
            let mut ranges: Vec<(usize, usize)> = Vec::new();
            let words = analyze(text);
            let units: Vec<&Unit> = words.iter().flat_map(|w| w.units.iter()).collect();
            for (p, m) in &self.terms {
                let applies = match field {
                    HighlightField::Subject => p.subject,
                    HighlightField::From => p.from,
                    HighlightField::Recipients => p.recipients,
                };
                if !applies {
                    continue;
                }
                match m {
                    Matcher::Units(q, whole) => {
                        if let Some(whole) = whole {
                            for w in &words {
                                if w.whole.as_deref() == Some(whole)
                                    || w.whole_folded.as_deref() == Some(whole)
                                {
                                    ranges.push((w.start, w.end));
                                }
                            }
                        }
                        if !q.is_empty() && units.len() >= q.len() {
                            for i in 0..=units.len() - q.len() {
                                if q.iter().zip(&units[i..]).all(|(q, u)| unit_matches(u, q)) {
                                    ranges.push((units[i].start, units[i + q.len() - 1].end));
                                }
                            }
                        }
                    }
                    Matcher::Wildcard(tokens) => {
                        for w in &words {
                            let text = text[w.start..w.end].to_lowercase();
                            if glob(tokens, &text) || fold(&text).is_some_and(|f| glob(tokens, &f)) {
                                ranges.push((w.start, w.end));
                            }
                            for u in &w.units {
                                if glob(tokens, &u.text)
                                    || u.folded.as_deref().is_some_and(|f| glob(tokens, f))
                                {
                                    ranges.push((u.start, u.end));
                                }
                            }
                        }
                    }
                }
            }
            ranges.sort();
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for (s, e) in ranges {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            out.extend(merged.into_iter().map(|(start, end)| Highlight { field, start, end }));
        }
        out
    }
}

fn unit_matches(stored: &Unit, query: &Unit) -> bool {
    if query.single_cjk {
        return stored.text.contains(query.text.as_str());
    }
    stored.text == query.text || stored.folded.as_deref() == Some(query.text.as_str())
}

/// Matches a whole string against wildcard tokens (`*` any run, `?` one character).
fn glob(tokens: &[WildcardToken], text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    // Expand into a per-character pattern: Some(c) literal, None = '?', and '*' markers.
    enum P {
        C(char),
        One,
        Any,
    }
    let mut pat = Vec::new();
    for t in tokens {
        match t {
            WildcardToken::Literal(s) => pat.extend(s.chars().map(P::C)),
            WildcardToken::OneChar => pat.push(P::One),
            WildcardToken::AnyChars => pat.push(P::Any),
        }
    }
    // Classic linear-space dynamic programme over the pattern.
    let mut row = vec![false; chars.len() + 1];
    row[0] = true;
    for p in &pat {
        let mut next = vec![false; chars.len() + 1];
        match p {
            P::Any => {
                let mut seen = false;
                for j in 0..=chars.len() {
                    seen |= row[j];
                    next[j] = seen;
                }
            }
            P::One => next[1..].copy_from_slice(&row[..chars.len()]),
            P::C(c) => {
                for j in 1..=chars.len() {
                    next[j] = row[j - 1] && chars[j - 1] == *c;
                }
            }
        }
        row = next;
    }
    row[chars.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::query::Pattern;

    fn tokens(p: &str) -> Vec<WildcardToken> {
        match Pattern::word(p) {
            Pattern::Wildcard(t) => t,
            other => panic!("not a wildcard: {other:?}"),
        }
    }

    #[test]
    fn glob_matches_whole_strings() {
        assert!(glob(&tokens("me?er"), "meier"));
        assert!(!glob(&tokens("me?er"), "maier"));
        assert!(glob(&tokens("*example.com"), "myexample.com"));
        assert!(glob(&tokens("auto*"), "auto"));
        assert!(!glob(&tokens("auto*"), "xauto"));
    }
}
