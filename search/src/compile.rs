//! Compiles the query AST, the resolved advanced-search filters and the caller's readable scopes into one
//! tantivy query (SRCH-01, SRCH-02, SRCH-03).
//!
//! - **Words** are cut by the index tokenizer ([`analyze_query_word`]): one unit is a term query; several
//!   units (`download-tipp`, `vorname.nachname`, CJK bigrams) are a phrase of the units, or the whole
//!   joined word as one term. A single character of a space-less script matches every bigram containing
//!   it (regex `.?X.?`). In address fields a word containing `@` is one term on the whole-address field:
//!   `from:john@example.com` does not match `xjohn@example.com`.
//! - **Wildcards** are regex queries on the term dictionary of each field (whole words and parts are both
//!   terms, so both are matched). `auto*` walks only the terms under the prefix. A pattern of one leading
//!   `*` and a literal (`*example.com`) runs as a prefix walk (`moc\.elpmaxe.*`) on the reversed-term
//!   companion of each field (see [`crate::schema`]), same matches. Other patterns with a wildcard or `?`
//!   near the start (`*exam*`, `?ample`) scan the field's whole term dictionary in every segment: linear
//!   in distinct terms. In address fields wildcards also run on the whole-address field
//!   (`from:*@example.com`, `john*` matching `john+tag@example.com`).
//! - **Phrases** are phrase queries over the units of all their words.
//! - **Fields**: [`Field::Any`] means the fields of the advanced text targets (all by default). Address
//!   fields are display names, addresses (parts and whole) and whole addresses; an **unqualified
//!   exclusion** looks at display names and whole addresses only (SRCH-01's rule), while included and
//!   qualified terms match address parts too.
//! - **Filters**: folder (exact or with subfolders), message date and archive date as Unix ranges
//!   `[start, end)` (inclusive calendar ends resolved by [`ResolvedFilters::resolve`]), size (inclusive
//!   bounds), with/without attachments, priorities, the From box (unqualified terms = sender) and the
//!   To/Cc/Bcc box (unqualified terms = any recipient field).
//! - **Scopes**: the (archive, folder subtree) pairs the caller may read; nothing outside them matches, and
//!   no scope means no hit. An empty query is every message in scope.

use std::collections::BTreeSet;
use std::ops::Bound;

use arca_types::ArchiveId;
use arca_types::query::{
    CivilDate, Field, Filters, FolderFilter, Pattern, Priority, Query, SizeRange, TextTargets, WildcardToken,
};
use std::sync::Arc;
use tantivy::Term;

use tantivy::query::{
    BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query as TQuery, RangeQuery, RegexQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{Field as TField, IndexRecordOption};

use crate::error::SearchError;
use crate::limits::{self, Budget};
use crate::schema::{Fields, PartyFields, folder_term, priority_code};
use crate::tokenizer::{Unit, analyze_query_word, nfc};
use crate::wildcard::BoundedRegexQuery;

/// The advanced-search filters with dates resolved to Unix ranges; what a shard runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedFilters {
    pub targets: TextTargets,
    pub folder: Option<FolderFilter>,
    pub from: Query,
    pub recipients: Query,
    /// Message date as Unix seconds `[start, end)`.
    pub message_date: Option<(i64, i64)>,
    /// Archive date as Unix seconds `[start, end)`.
    pub archive_date: Option<(i64, i64)>,
    pub with_attachments: bool,
    pub without_attachments: bool,
    pub size: SizeRange,
    /// Empty = any.
    pub priorities: BTreeSet<Priority>,
}

impl Default for ResolvedFilters {
    fn default() -> Self {
        ResolvedFilters::resolve(&Filters::default(), CivilDate::MIN, 0)
    }
}

impl ResolvedFilters {
    /// Resolves date presets against the user's `today` at a fixed UTC offset (seconds east of UTC);
    /// the shard set is the caller's business.
    pub fn resolve(filters: &Filters, today: CivilDate, utc_offset_seconds: i64) -> ResolvedFilters {
        let range = |p: &Option<arca_types::query::DatePreset>| {
            p.as_ref().map(|p| p.resolve(today).unix_range(utc_offset_seconds))
        };
        ResolvedFilters {
            targets: filters.targets,
            folder: filters.folder.clone(),
            from: filters.from.clone(),
            recipients: filters.recipients.clone(),
            message_date: range(&filters.message_date),
            archive_date: range(&filters.archive_date),
            with_attachments: filters.with_attachments,
            without_attachments: filters.without_attachments,
            size: filters.size,
            priorities: filters.priorities.clone(),
        }
    }
}

/// A part of the shard the caller may read: a whole archive, or one folder and everything below it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    pub archive: ArchiveId,
    /// `None` = the whole archive; `Some(path)` = that folder and its descendants.
    pub folder: Option<String>,
}

impl Scope {
    /// A whole archive.
    pub fn archive(archive: ArchiveId) -> Scope {
        Scope { archive, folder: None }
    }
}

type Q = Box<dyn TQuery>;

/// How a term looks at a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Included, or excluded with a field prefix: address parts match.
    Full,
    /// Excluded without a field prefix: display names and whole addresses, never address parts.
    ExcludedAny,
}

/// Compiles a search of one shard into a tantivy query whose wildcard terms run within `budget`.
pub fn compile(
    fields: &Fields,
    query: &Query,
    filters: &ResolvedFilters,
    scopes: &[Scope],
    budget: &Arc<Budget>,
) -> Result<Q, SearchError> {
    let mut wild = Wildcards { budget, numbered: 0 };
    let mut clauses: Vec<(Occur, Q)> = vec![(Occur::Must, scope_query(fields, scopes))];
    let any = filters.targets.fields();
    for term in &query.terms {
        let targets = if term.field == Field::Any { any.clone() } else { vec![term.field] };
        let mode = if term.exclude && term.field == Field::Any { Mode::ExcludedAny } else { Mode::Full };
        push_term(&mut clauses, fields, &mut wild, &targets, &term.pattern, mode, term.exclude)?;
    }
    let boxes =
        [(&filters.from, vec![Field::From]), (&filters.recipients, vec![Field::To, Field::Cc, Field::Bcc])];
    for (q, box_fields) in boxes {
        for term in &q.terms {
            let targets = if term.field == Field::Any { box_fields.clone() } else { vec![term.field] };
            push_term(&mut clauses, fields, &mut wild, &targets, &term.pattern, Mode::Full, term.exclude)?;
        }
    }
    push_filters(&mut clauses, fields, filters);
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// The budget wildcard terms run within, and how many were compiled (they are numbered in errors in the
/// order [`crate::limits::check_queries`] counts them).
struct Wildcards<'a> {
    budget: &'a Arc<Budget>,
    numbered: usize,
}

impl Wildcards<'_> {
    /// The automaton of the next wildcard term (and of its reversed form, for `*suffix`).
    fn next(&mut self, tokens: &[WildcardToken]) -> Result<Automata, SearchError> {
        self.numbered += 1;
        if let Some(re) = reversed_prefix_regex(tokens) {
            return Ok(Automata::Reversed(limits::regex(&re, self.numbered)?));
        }
        Ok(Automata::Forward(limits::wildcard_automaton(tokens, self.numbered)?))
    }

    /// A bounded wildcard query of `automaton` on `field`.
    fn query(&self, field: TField, automaton: &Arc<tantivy_fst::Regex>) -> Q {
        Box::new(BoundedRegexQuery::new(field, automaton.clone(), self.budget.clone()))
    }
}

/// The compiled automaton of a wildcard term: on the fields, or on their reversed-term companions.
enum Automata {
    Forward(Arc<tantivy_fst::Regex>),
    Reversed(Arc<tantivy_fst::Regex>),
}

fn push_term(
    clauses: &mut Vec<(Occur, Q)>,
    fields: &Fields,
    wild: &mut Wildcards<'_>,
    targets: &[Field],
    pattern: &Pattern,
    mode: Mode,
    exclude: bool,
) -> Result<(), SearchError> {
    if targets.is_empty() {
        // No text target ticked: an included term matches nothing, an excluded one excludes nothing.
        if !exclude {
            clauses.push((Occur::Must, Box::new(EmptyQuery)));
        }
        return Ok(());
    }
    let q = pattern_query(fields, wild, targets, pattern, mode)?;
    clauses.push((if exclude { Occur::MustNot } else { Occur::Must }, q));
    Ok(())
}

fn party(fields: &Fields, field: Field) -> Option<&PartyFields> {
    match field {
        Field::From => Some(&fields.from),
        Field::To => Some(&fields.to),
        Field::Cc => Some(&fields.cc),
        Field::Bcc => Some(&fields.bcc),
        _ => None,
    }
}

/// A field and its reversed-term companion.
type FieldPair = (TField, TField);

/// A non-address text field and its reversed-term companion.
fn text_field(fields: &Fields, field: Field) -> Option<FieldPair> {
    match field {
        Field::Subject => Some((fields.subject, fields.subject_rev)),
        Field::Body => Some((fields.body, fields.body_rev)),
        Field::AttachmentName => Some((fields.attachment_names, fields.attachment_names_rev)),
        Field::AttachmentContent => Some((fields.attachment_text, fields.attachment_text_rev)),
        _ => None,
    }
}

/// The query of one pattern over a set of concrete fields (any of them may match).
fn pattern_query(
    fields: &Fields,
    wild: &mut Wildcards<'_>,
    targets: &[Field],
    pattern: &Pattern,
    mode: Mode,
) -> Result<Q, SearchError> {
    let automata = match pattern {
        Pattern::Wildcard(tokens) => Some(wild.next(tokens)?),
        Pattern::Word(_) | Pattern::Phrase(_) => None,
    };
    let mut any: Vec<(Occur, Q)> = Vec::new();
    for &target in targets {
        // Each concrete field with its reversed-term companion.
        let (pairs, raw_pair): (Vec<FieldPair>, Option<FieldPair>) = match (party(fields, target), mode) {
            (Some(p), Mode::Full) => {
                (vec![(p.name, p.name_rev), (p.addr, p.addr_rev)], Some((p.raw, p.raw_rev)))
            }
            (Some(p), Mode::ExcludedAny) => (vec![(p.name, p.name_rev)], Some((p.raw, p.raw_rev))),
            (None, _) => (text_field(fields, target).into_iter().collect(), None),
        };
        let texts: Vec<TField> = pairs.iter().map(|(f, _)| *f).collect();
        let raw: Option<TField> = raw_pair.map(|(f, _)| f);
        match pattern {
            Pattern::Word(word) => {
                if let Some(raw) = raw {
                    any.push((Occur::Should, raw_term(raw, word)));
                }
                // A word with `@` in an address field matches whole addresses only.
                if raw.is_none() || !word.contains('@') {
                    for f in &texts {
                        any.push((Occur::Should, word_query(*f, word)?));
                    }
                }
            }
            Pattern::Wildcard(_) => match &automata {
                // `*suffix`: a prefix walk on the reversed terms instead of a whole-dictionary scan.
                Some(Automata::Reversed(a)) => {
                    for (_, rev) in pairs.iter().chain(raw_pair.iter()) {
                        any.push((Occur::Should, wild.query(*rev, a)));
                    }
                }
                Some(Automata::Forward(a)) => {
                    for f in texts.iter().chain(raw.iter()) {
                        any.push((Occur::Should, wild.query(*f, a)));
                    }
                }
                None => {}
            },
            Pattern::Phrase(words) => {
                let units: Vec<Unit> = words.iter().flat_map(|w| analyze_query_word(w).units).collect();
                for f in &texts {
                    any.push((Occur::Should, units_query(*f, &units, None)?));
                }
            }
        }
    }
    Ok(match any.len() {
        0 => Box::new(EmptyQuery),
        1 => any.remove(0).1,
        _ => Box::new(BooleanQuery::new(any)),
    })
}

fn raw_term(field: TField, word: &str) -> Q {
    let term = Term::from_field_text(field, &nfc(word).to_lowercase());
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn text_term(field: TField, text: &str) -> Q {
    Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic))
}

/// A plain word in a full-text field.
fn word_query(field: TField, word: &str) -> Result<Q, SearchError> {
    let qw = analyze_query_word(word);
    units_query(field, &qw.units, qw.whole.as_deref())
}

/// Units that must stand next to each other in order (or the whole joined word).
fn units_query(field: TField, units: &[Unit], whole: Option<&str>) -> Result<Q, SearchError> {
    let main: Q = match units {
        [] => Box::new(EmptyQuery),
        [u] if u.single_cjk => {
            let re = format!(".?{}.?", escape_regex(&u.text));
            Box::new(
                RegexQuery::from_pattern(&re, field)
                    .map_err(|e| SearchError::Query(format!("character '{}': {e}", u.text)))?,
            )
        }
        [u] => text_term(field, &u.text),
        _ => {
            let terms: Vec<(usize, Term)> =
                units.iter().enumerate().map(|(i, u)| (i, Term::from_field_text(field, &u.text))).collect();
            Box::new(PhraseQuery::new_with_offset(terms))
        }
    };
    Ok(match whole {
        Some(w) => {
            Box::new(BooleanQuery::new(vec![(Occur::Should, main), (Occur::Should, text_term(field, w))]))
        }
        None => main,
    })
}

/// Escapes a literal for tantivy's regex syntax.
fn escape_regex(text: &str) -> String {
    let mut re = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            re.push('\\');
            re.push(c);
        } else if c.is_control() {
            re.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
        } else {
            re.push(c);
        }
    }
    re
}

/// The regex of a wildcard pattern, literals NFC-normalized and lower-cased.
pub(crate) fn wildcard_regex(tokens: &[WildcardToken]) -> String {
    let mut re = String::new();
    for t in tokens {
        match t {
            WildcardToken::AnyChars => re.push_str(".*"),
            WildcardToken::OneChar => re.push('.'),
            WildcardToken::Literal(s) => re.push_str(&escape_regex(&nfc(s).to_lowercase())),
        }
    }
    re
}

/// For a pattern of one leading `*` followed only by literal text (`*example.com`): the regex of the
/// reversed literal as a prefix (`moc\.elpmaxe.*`), to run on a reversed-term companion field. It matches
/// exactly the reversed terms of those that [`wildcard_regex`] matches on the field itself. `None` for
/// every other pattern (they keep the regex on the field).
pub(crate) fn reversed_prefix_regex(tokens: &[WildcardToken]) -> Option<String> {
    let (WildcardToken::AnyChars, rest) = tokens.split_first()? else { return None };
    let mut literal = String::new();
    for t in rest {
        match t {
            WildcardToken::Literal(s) => literal.push_str(&nfc(s).to_lowercase()),
            WildcardToken::AnyChars | WildcardToken::OneChar => return None,
        }
    }
    if literal.is_empty() {
        return None;
    }
    let reversed: String = literal.chars().rev().collect();
    Some(format!("{}.*", escape_regex(&reversed)))
}

/// Every message in one of the scopes.
fn scope_query(fields: &Fields, scopes: &[Scope]) -> Q {
    let mut any: Vec<(Occur, Q)> = Vec::new();
    for s in scopes {
        let archive: Q = Box::new(TermQuery::new(
            Term::from_field_u64(fields.archive, s.archive),
            IndexRecordOption::Basic,
        ));
        let q: Q = match &s.folder {
            None => archive,
            Some(path) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, archive),
                (Occur::Must, text_term(fields.folder_tree, &folder_term(path))),
            ])),
        };
        any.push((Occur::Should, q));
    }
    if any.is_empty() { Box::new(EmptyQuery) } else { Box::new(BooleanQuery::new(any)) }
}

fn range_i64(field: TField, (start, end): (i64, i64)) -> Q {
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_i64(field, start)),
        Bound::Excluded(Term::from_field_i64(field, end)),
    ))
}

/// Where in the archive a folder filter looks: the folder keys Raft resolved (exact `folder` terms),
/// or, for a filter never resolved, the path itself (`folder`, or `folder_tree` with subfolders).
/// `None` for the whole archive (the top-level folder with subfolders).
fn folder_place(fields: &Fields, folder: &FolderFilter) -> Option<Q> {
    if folder.path.is_empty() && folder.include_subfolders {
        return None;
    }
    Some(match &folder.keys {
        Some(keys) => {
            let terms = keys.iter().map(|k| Term::from_field_text(fields.folder, &folder_term(k)));
            Box::new(TermSetQuery::new(terms))
        }
        None if folder.include_subfolders => text_term(fields.folder_tree, &folder_term(&folder.path)),
        None => text_term(fields.folder, &folder_term(&folder.path)),
    })
}

fn push_filters(clauses: &mut Vec<(Occur, Q)>, fields: &Fields, filters: &ResolvedFilters) {
    if let Some(folder) = &filters.folder {
        let archive: Q = Box::new(TermQuery::new(
            Term::from_field_u64(fields.archive, folder.archive),
            IndexRecordOption::Basic,
        ));
        clauses.push((Occur::Must, archive));
        if let Some(place) = folder_place(fields, folder) {
            clauses.push((Occur::Must, place));
        }
    }
    if let Some(range) = filters.message_date {
        clauses.push((Occur::Must, range_i64(fields.date, range)));
    }
    if let Some(range) = filters.archive_date {
        clauses.push((Occur::Must, range_i64(fields.archived, range)));
    }
    let size = filters.size;
    if size.min.is_some() || size.max.is_some() {
        let bound = |b: Option<u64>| match b {
            Some(v) => Bound::Included(Term::from_field_u64(fields.size, v)),
            None => Bound::Unbounded,
        };
        clauses.push((Occur::Must, Box::new(RangeQuery::new(bound(size.min), bound(size.max)))));
    }
    let has = |v: u64| -> Q {
        Box::new(TermQuery::new(Term::from_field_u64(fields.has_attachments, v), IndexRecordOption::Basic))
    };
    match (filters.with_attachments, filters.without_attachments) {
        (true, true) => {}
        (true, false) => clauses.push((Occur::Must, has(1))),
        (false, true) => clauses.push((Occur::Must, has(0))),
        (false, false) => clauses.push((Occur::Must, Box::new(EmptyQuery))),
    }
    if !filters.priorities.is_empty() {
        let any: Vec<(Occur, Q)> = filters
            .priorities
            .iter()
            .map(|p| {
                let term = Term::from_field_u64(fields.priority, priority_code(*p));
                (Occur::Should, Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Q)
            })
            .collect();
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
    }
}
