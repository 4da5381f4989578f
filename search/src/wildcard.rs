//! A wildcard term on one field, bounded: like tantivy's `RegexQuery` (walk the term dictionary with the
//! pattern's automaton, collect the matching words' documents in a bit set), but the walk stops with a
//! query error when the pattern matches more words than `search.max_wildcard_expansion` or the search's
//! deadline passes ([`Budget`]). The automaton is compiled once per search and shared by every field.

use std::sync::Arc;

use tantivy::query::{BitSetDocSet, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, Score, SegmentReader, TantivyError};

use crate::limits::Budget;

/// Words walked between two looks at the clock.
const CLOCK_EVERY: u64 = 256;

/// A wildcard (regex) query on one field within a search's [`Budget`].
#[derive(Debug, Clone)]
pub struct BoundedRegexQuery {
    field: Field,
    automaton: Arc<tantivy_fst::Regex>,
    budget: Arc<Budget>,
}

impl BoundedRegexQuery {
    /// The query of `automaton` on `field`.
    pub fn new(field: Field, automaton: Arc<tantivy_fst::Regex>, budget: Arc<Budget>) -> BoundedRegexQuery {
        BoundedRegexQuery { field, automaton, budget }
    }
}

impl Query for BoundedRegexQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

/// The error tantivy carries up when a bound broke; the cause itself is in the [`Budget`].
fn stopped(e: arca_types::query::QueryLimitError) -> TantivyError {
    TantivyError::InvalidArgument(e.to_string())
}

impl Weight for BoundedRegexQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut docs = BitSet::with_max_value(reader.max_doc());
        let inverted = reader.inverted_index(self.field)?;
        let mut words = inverted.terms().search(self.automaton.as_ref()).without_keys().into_stream()?;
        let mut count = 0u64;
        while words.advance() {
            count += 1;
            self.budget.check_expansion(count).map_err(stopped)?;
            if count.is_multiple_of(CLOCK_EVERY) {
                self.budget.check_time().map_err(stopped)?;
            }
            let mut postings =
                inverted.read_block_postings_from_terminfo(words.value(), IndexRecordOption::Basic)?;
            loop {
                let block = postings.docs();
                if block.is_empty() {
                    break;
                }
                for &doc in block {
                    docs.insert(doc);
                }
                postings.advance();
            }
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("BoundedRegexQuery", 1.0))
        } else {
            Err(TantivyError::InvalidArgument(format!("document {doc} does not match")))
        }
    }
}
