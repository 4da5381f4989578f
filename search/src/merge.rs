//! Merging the pages of several shards into one page, and the cursor that pages across shards.
//!
//! The global order is (sort value, shard id, message number, archive), in the requested direction. The
//! cursor text is `v1.<k><d>.<value>.<shard>.<number>.<archive>`: `k` is the sort key (`d` date, `p` party,
//! `s` subject), `d` the direction (`a` ascending, `d` descending), the value is the date in decimal Unix
//! seconds or the key string hex-encoded as UTF-8, the rest decimal. A cursor is refused when its key or
//! direction differs from the request's. Each shard receives [`MergedCursor::for_shard`]: hits strictly
//! after the cursor in the global order, so no hit is repeated or skipped while the index is unchanged.

use std::cmp::Ordering;

use arca_types::ShardId;
use arca_types::query::{Sort, SortKey};

use crate::error::SearchError;
use crate::search::{ShardCursor, ShardHit, ShardPage, SortValue, Tie};

/// A search-after position across shards: the last hit of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedCursor {
    pub value: SortValue,
    pub shard: ShardId,
    pub number: u64,
    pub archive: u64,
}

/// A hit and the shard it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedHit {
    pub shard: ShardId,
    pub hit: ShardHit,
}

/// One page of the merged result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedPage {
    pub hits: Vec<MergedHit>,
    /// Hits of the query over all answering shards.
    pub total: u64,
    /// The cursor of the next page (encoded), `None` on the last page.
    pub next: Option<String>,
}

fn key_letter(key: SortKey) -> char {
    match key {
        SortKey::Date => 'd',
        SortKey::Party => 'p',
        SortKey::Subject => 's',
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

impl MergedCursor {
    /// The cursor after a hit of a shard.
    pub fn after(shard: ShardId, hit: &ShardHit) -> MergedCursor {
        MergedCursor { value: hit.sort_value.clone(), shard, number: hit.number, archive: hit.archive }
    }

    /// The opaque cursor text for a sort.
    pub fn encode(&self, sort: Sort) -> String {
        let value = match &self.value {
            SortValue::Date(v) => v.to_string(),
            SortValue::Text(s) => hex(s),
        };
        let dir = if sort.ascending { 'a' } else { 'd' };
        format!("v1.{}{dir}.{value}.{}.{}.{}", key_letter(sort.key), self.shard, self.number, self.archive)
    }

    /// Reads a cursor text produced by [`MergedCursor::encode`] for the same sort.
    pub fn decode(text: &str, sort: Sort) -> Result<MergedCursor, SearchError> {
        let bad = |why: &str| SearchError::BadCursor(format!("'{text}': {why}"));
        let parts: Vec<&str> = text.split('.').collect();
        let ["v1", kd, value, shard, number, archive] = parts[..] else {
            return Err(bad("malformed"));
        };
        let dir = if sort.ascending { 'a' } else { 'd' };
        if kd != format!("{}{dir}", key_letter(sort.key)) {
            return Err(bad("it belongs to another sort order; start again from the first page"));
        }
        let value = match sort.key {
            SortKey::Date => SortValue::Date(value.parse().map_err(|_| bad("malformed date"))?),
            SortKey::Party | SortKey::Subject => {
                SortValue::Text(unhex(value).ok_or_else(|| bad("malformed key"))?)
            }
        };
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad("malformed number"));
        Ok(MergedCursor { value, shard: num(shard)?, number: num(number)?, archive: num(archive)? })
    }

    /// The search-after position to send to one shard.
    pub fn for_shard(&self, shard: ShardId) -> ShardCursor {
        // Global order: (value, shard, number, archive) in the requested direction. Among hits of the
        // cursor's value, a shard with a larger id sorts after the cursor's shard when ascending (all its
        // hits of the value follow) and before it when descending (none follow): exactly `Tie::First`,
        // since a tie compares in natural order and the direction flips the comparison. Likewise `Last`.
        let tie = match shard.cmp(&self.shard) {
            Ordering::Equal => Tie::At { number: self.number, archive: self.archive },
            Ordering::Greater => Tie::First,
            Ordering::Less => Tie::Last,
        };
        ShardCursor { value: self.value.clone(), tie }
    }
}

/// Merges the pages that shards answered for the same search and cursor into one page of at most `limit`
/// hits. Shards that failed are the caller's to list (invariant 5).
pub fn merge(pages: Vec<(ShardId, ShardPage)>, sort: Sort, limit: usize) -> MergedPage {
    let mut total = 0;
    let mut remaining = 0;
    let mut hits = Vec::new();
    for (shard, page) in pages {
        total += page.total;
        remaining += page.remaining;
        hits.extend(page.hits.into_iter().map(|hit| MergedHit { shard, hit }));
    }
    hits.sort_by(|a, b| {
        let ka = (&a.hit.sort_value, a.shard, a.hit.number, a.hit.archive);
        let kb = (&b.hit.sort_value, b.shard, b.hit.number, b.hit.archive);
        if sort.ascending { ka.cmp(&kb) } else { kb.cmp(&ka) }
    });
    hits.truncate(limit);
    let next = if remaining > hits.len() as u64 {
        hits.last().map(|h| MergedCursor::after(h.shard, &h.hit).encode(sort))
    } else {
        None
    };
    MergedPage { hits, total, next }
}
