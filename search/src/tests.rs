//! Behaviour tests of the whole search path: parse → compile → index → search → merge, on small
//! hand-written fixtures. Expected hits are written by hand from the requirement texts.

use std::collections::BTreeSet;

use arca_types::document::{Address, MessageDoc};
use arca_types::query::{
    CivilDate, DatePreset, Field, Filters, FolderFilter, Pattern, Priority, Query, SizeRange, Sort, SortKey,
    Term, TextTargets, WildcardToken,
};

use crate::compile::{ResolvedFilters, Scope};
use crate::index::{IndexEntry, ShardIndex};
use crate::merge::{MergedCursor, merge};
use crate::parse::parse_query;
use crate::search::{Highlight, HighlightField, ShardCursor, ShardQuery};

const ARCHIVE: u64 = 1;
const BASE_TIME: i64 = 1_760_000_000;

fn mailbox(text: &str) -> Address {
    match text.split_once('<') {
        Some((name, rest)) => Address {
            name: Some(name.trim().to_string()),
            address: Some(rest.trim_end_matches('>').trim().to_string()),
        },
        None => Address { name: None, address: Some(text.to_string()) },
    }
}

/// Chainable fixture setters on a message document.
trait Fixture {
    fn subject(self, s: &str) -> Self;
    fn from(self, a: &str) -> Self;
    fn to(self, a: &str) -> Self;
    fn cc(self, a: &str) -> Self;
    fn bcc(self, a: &str) -> Self;
    fn body(self, s: &str) -> Self;
    fn attachment(self, name: &str, text: &str) -> Self;
    fn dated(self, unix: i64) -> Self;
    fn sized(self, size: u64) -> Self;
    fn priority(self, p: Priority) -> Self;
}

impl Fixture for MessageDoc {
    fn subject(mut self, s: &str) -> Self {
        self.subject = Some(s.into());
        self
    }
    fn from(mut self, a: &str) -> Self {
        self.from.push(mailbox(a));
        self
    }
    fn to(mut self, a: &str) -> Self {
        self.to.push(mailbox(a));
        self
    }
    fn cc(mut self, a: &str) -> Self {
        self.cc.push(mailbox(a));
        self
    }
    fn bcc(mut self, a: &str) -> Self {
        self.bcc.push(mailbox(a));
        self
    }
    fn body(mut self, s: &str) -> Self {
        self.body_text = s.into();
        self
    }
    fn attachment(mut self, name: &str, text: &str) -> Self {
        self.has_attachments = true;
        self.attachment_names.push(name.into());
        self.attachment_text.push_str(text);
        self
    }
    fn dated(mut self, unix: i64) -> Self {
        self.date = Some(unix);
        self
    }
    fn sized(mut self, size: u64) -> Self {
        self.size = size;
        self
    }
    fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }
}

fn m() -> MessageDoc {
    MessageDoc::empty(1000)
}

fn entry(number: u64) -> IndexEntry {
    IndexEntry {
        number,
        archive: ARCHIVE,
        folder: "Posteingang".into(),
        archived_at: BASE_TIME + number as i64,
        sent: false,
    }
}

/// An index of messages numbered 1, 2, … in archive 1, folder `Posteingang`.
fn index(docs: Vec<MessageDoc>) -> ShardIndex {
    let idx = ShardIndex::in_ram().expect("index");
    for (i, doc) in docs.iter().enumerate() {
        idx.add(&entry(i as u64 + 1), doc).expect("add");
    }
    idx.commit().expect("commit");
    idx
}

fn shard_query(query: Query, filters: ResolvedFilters) -> ShardQuery {
    ShardQuery {
        query,
        filters,
        scopes: vec![Scope::archive(ARCHIVE)],
        sort: Sort { key: SortKey::Date, ascending: true },
        limit: 1000,
        after: None,
        bounds: Default::default(),
    }
}

fn numbers_of(idx: &ShardIndex, q: &ShardQuery) -> Vec<u64> {
    let page = idx.search(q).expect("search");
    assert_eq!(page.total as usize, page.hits.len(), "all hits fit one page");
    let mut n: Vec<u64> = page.hits.iter().map(|h| h.number).collect();
    n.sort();
    n
}

/// Numbers of the messages a quick-search text finds, ascending.
fn find(idx: &ShardIndex, text: &str) -> Vec<u64> {
    let query = parse_query(text).expect("query parses");
    numbers_of(idx, &shard_query(query, ResolvedFilters::default()))
}

fn find_filtered(idx: &ShardIndex, text: &str, filters: &Filters) -> Vec<u64> {
    let today = CivilDate::new(2026, 11, 27).expect("date");
    let query = parse_query(text).expect("query parses");
    numbers_of(idx, &shard_query(query, ResolvedFilters::resolve(filters, today, 0)))
}

// ---- SRCH-01: wildcards -------------------------------------------------------------------------------

#[test]
fn trailing_wildcard_finds_every_word_starting_with_the_prefix() {
    let idx = index(vec![
        m().subject("Autoreparatur morgen"),
        m().subject("Automatisch erzeugt"),
        m().subject("Das Auto ist fertig"),
        m().subject("Autos im Angebot"),
        m().subject("Ein Fahrzeug"),
        m().body("Kein Gebrauchtauto"),
    ]);
    assert_eq!(find(&idx, "Auto*"), vec![1, 2, 3, 4]);
    // No stemming: Auto does not find Autos.
    assert_eq!(find(&idx, "Auto"), vec![3]);
}

#[test]
fn leading_wildcard_is_a_pure_suffix_match_on_addresses_and_domains() {
    let idx = index(vec![
        m().from("anna@example.com"),
        m().body("besuchen Sie www.example.com heute"),
        m().to("info@myexample.com"),
        m().body("Die Domain example.com ist registriert"),
        m().from("bob@example.org"),
        m().body("example.company und example"),
    ]);
    assert_eq!(find(&idx, "*example.com"), vec![1, 2, 3, 4]);
}

/// The same pattern with its leading `*` doubled: one matching set, but not a plain `*literal`, so it
/// keeps the regex scan of the fields themselves.
fn scanned_twin(query: &Query) -> Query {
    let mut twin = query.clone();
    for term in &mut twin.terms {
        if let Pattern::Wildcard(tokens) = &mut term.pattern {
            tokens.insert(0, WildcardToken::AnyChars);
        }
    }
    twin
}

#[test]
fn leading_wildcard_runs_on_the_reversed_fields_with_the_results_of_the_regex_scan() {
    let idx = index(vec![
        m().from("Anna Software <anna@example.com>").subject("Hardware und Firmware"),
        m().to("info@myexample.com").body("Die Middleware läuft, www.example.com"),
        m().cc("Ware Bötticher <ware@firma.de>").attachment("treiber-iscsi.pdf", "Open-iSCSI Initiator"),
        m().bcc("x@ex.example.com").attachment("Ware.txt", "nichts"),
        m().subject("Über Müller und Straße").body("vorname.nachname@example.com"),
        m().from("bob@example.org").body("example.company warehouse"),
        m().to("software@firma.de"),
    ]);
    let fields = idx.fields();
    let compiled = |q: &Query| {
        let budget = crate::limits::Budget::start(Default::default());
        let scopes = [Scope::archive(ARCHIVE)];
        let c = crate::compile::compile(fields, q, &ResolvedFilters::default(), &scopes, &budget)
            .expect("compile");
        format!("{c:?}")
    };
    let reversed = [
        fields.subject_rev,
        fields.body_rev,
        fields.attachment_names_rev,
        fields.attachment_text_rev,
        fields.from.name_rev,
        fields.from.addr_rev,
        fields.from.raw_rev,
        fields.bcc.raw_rev,
    ];
    let forward = [fields.subject, fields.body, fields.from.name, fields.from.addr, fields.from.raw];
    let queries = [
        "*ware",
        "*example.com",
        "*scsi",
        "*MÜLLER",
        "*ller",
        "*straße",
        "*@example.com",
        "*.com",
        "*nachname@example.com",
        "subject:*ware",
        "from:*example.com",
        "to:*example.com",
        "cc:*firma.de",
        "acontent:*scsi",
        "bcontent:*ware",
        "*.txt",
        "-*ware",
        "-*example.com",
        "-from:*example.com",
        "*ware -*@example.org",
    ];
    for text in queries {
        let query = parse_query(text).expect("query parses");
        let debug = compiled(&query);
        let twin = scanned_twin(&query);
        let twin_debug = compiled(&twin);
        if !text.contains(':') && !text.contains('-') {
            // Unqualified: every field of Field::Any, each through its reversed companion.
            for f in reversed {
                assert!(debug.contains(&format!("field: {f:?}")), "{text}: {f:?} not in {debug}");
            }
            for f in forward {
                assert!(!debug.contains(&format!("field: {f:?}")), "{text}: forward {f:?} in {debug}");
                assert!(twin_debug.contains(&format!("field: {f:?}")), "{text}: twin lacks {f:?}");
            }
        }
        let served = find(&idx, text);
        let scanned = numbers_of(&idx, &shard_query(twin, ResolvedFilters::default()));
        assert_eq!(served, scanned, "{text}: reversed-field result differs from the regex scan");
    }
    assert_eq!(find(&idx, "*ware"), vec![1, 2, 3, 4, 7]);
    assert_eq!(find(&idx, "*scsi"), vec![3]);
    assert_eq!(find(&idx, "*example.com"), vec![1, 2, 4, 5]);
    // An unqualified exclusion never looks at address parts: message 7 matches `*ware` only through the
    // part `software` of its address, so `-*ware` keeps it.
    assert_eq!(find(&idx, "-*ware"), vec![5, 6, 7]);
    assert_eq!(find(&idx, "-*example.com"), vec![3, 6, 7]);
}

#[test]
fn wildcard_after_a_joined_word_finds_addresses_starting_with_it() {
    let idx = index(vec![
        m().from("vorname.nachname@example.com"),
        m().to("vorname.nachname@firma.de"),
        m().body("vorname nachname getrennt"),
        m().from("anders.nachname@example.com"),
    ]);
    assert_eq!(find(&idx, "vorname.nachname*"), vec![1, 2]);
    // Without the wildcard the parts match adjacent and in order, whatever stands between them.
    assert_eq!(find(&idx, "vorname.nachname"), vec![1, 2, 3]);
}

#[test]
fn question_mark_stands_for_exactly_one_character() {
    let idx =
        index(vec![m().subject("Meier"), m().body("Herr Meyer"), m().body("Frau Maier"), m().body("Meer")]);
    assert_eq!(find(&idx, "Me?er"), vec![1, 2]);
}

// ---- SRCH-01: phrases and fields ----------------------------------------------------------------------

#[test]
fn phrase_matches_adjacent_words_in_order_only() {
    let idx = index(vec![
        m().body("Microsoft Windows ist installiert"),
        m().body("Microsoft Works läuft"),
        m().body("Windows 95 startet"),
        m().body("Windows und Microsoft"),
        m().subject("microsoft   WINDOWS"),
    ]);
    assert_eq!(find(&idx, "\"Microsoft Windows\""), vec![1, 5]);
    assert_eq!(find(&idx, "subject:\"Microsoft Windows\""), vec![5]);
}

#[test]
fn subject_prefix_searches_the_subject_only() {
    let idx = index(vec![m().subject("Nachrichten des Tages"), m().body("Nachrichten im Text")]);
    assert_eq!(find(&idx, "subject:Nachrichten"), vec![1]);
    assert_eq!(find(&idx, "SUBJECT:nachrichten"), vec![1]);
    assert_eq!(find(&idx, "Nachrichten"), vec![1, 2]);
}

#[test]
fn address_prefixes_search_only_their_own_header() {
    let idx = index(vec![
        m().from("john@example.com"),
        m().from("xjohn@example.com"),
        m().to("john@example.com"),
        m().to("michael@example.com"),
        m().cc("michael@example.com"),
        m().bcc("michael@example.com"),
        m().from("michael@example.com"),
        m().cc("lisa@example.com"),
        m().bcc("customers@example.com"),
        m().to("lisa@example.com"),
    ]);
    // A term with @ matches whole addresses only.
    assert_eq!(find(&idx, "from:john@example.com"), vec![1]);
    assert_eq!(find(&idx, "to:michael@example.com"), vec![4]);
    assert_eq!(find(&idx, "cc:michael@example.com"), vec![5]);
    assert_eq!(find(&idx, "bcc:michael@example.com"), vec![6]);
    assert_eq!(find(&idx, "cc:lisa@example.com"), vec![8]);
    assert_eq!(find(&idx, "bcc:customers@example.com"), vec![9]);
    // The manual's other spelling of the examples: no such messages here.
    assert_eq!(find(&idx, "from:john@mailstore.com"), Vec::<u64>::new());
    // Without a prefix, every address field.
    assert_eq!(find(&idx, "michael@example.com"), vec![4, 5, 6, 7]);
    // Parts of addresses match positive terms.
    assert_eq!(find(&idx, "from:john"), vec![1]);
}

#[test]
fn body_and_attachment_prefixes_search_only_their_content() {
    let idx = index(vec![
        m().body("Rechnung anbei"),
        m().attachment("anlage.txt", "Rechnung Nr. 5"),
        m().subject("Rechnung"),
        m().attachment("Rechnung.pdf", ""),
    ]);
    assert_eq!(find(&idx, "bcontent:Rechnung"), vec![1]);
    assert_eq!(find(&idx, "acontent:Rechnung"), vec![2]);
    assert_eq!(find(&idx, "Rechnung"), vec![1, 2, 3, 4]);
}

#[test]
fn case_never_matters() {
    let idx = index(vec![m().subject("ZDNet heute"), m().body("zdnet morgen")]);
    for q in ["ZDNet", "ZDNET", "zdnet"] {
        assert_eq!(find(&idx, q), vec![1, 2], "{q}");
    }
}

// ---- SRCH-01: exclusions and combinations --------------------------------------------------------------

#[test]
fn exclusion_of_a_hyphenated_word_leaves_other_zdnet_messages() {
    let idx = index(vec![
        m().subject("ZDNet Download-Tipp der Woche"),
        m().subject("ZDNet Daily Update"),
        m().from("ZDNet <news@zdnet.de>").subject("Sonstiges"),
        m().body("Download-Tipp ohne Absender"),
        m().subject("ZDNet").body("Download Tipp getrennt"),
    ]);
    assert_eq!(find(&idx, "ZDNet -Download-Tipp"), vec![2, 3]);
}

#[test]
fn excluded_phrase_is_not_in_any_field() {
    let idx = index(vec![
        m().subject("ZDNet Daily Update"),
        m().subject("ZDNet Download-Tipp"),
        m().subject("ZDNet").body("Update daily"),
        m().subject("ZDNet").attachment("daily update.txt", ""),
    ]);
    assert_eq!(find(&idx, "ZDNET -\"Daily Update\""), vec![2, 3]);
}

#[test]
fn sender_and_body_terms_combine() {
    let idx = index(vec![
        m().from("ZDNet <news@zdnet.de>").body("Neues von MailStore und Herrn Mustermann"),
        m().from("ZDNet <news@zdnet.de>").body("anderes"),
        m().from("other@example.com").body("MailStore"),
        m().to("zdnet@example.com").body("MailStore"),
        m().from("newsletter@zdnet.de").body("MailStore"),
    ]);
    assert_eq!(find(&idx, "from:ZDNET bcontent:MailStore"), vec![1, 5]);
    assert_eq!(find(&idx, "from:ZDNET bcontent:Mustermann"), vec![1]);
}

#[test]
fn sender_and_attachment_terms_combine() {
    let idx = index(vec![
        m().from("versand@example.com").attachment("r.txt", "Rechnung"),
        m().from("versand@example.com").body("Rechnung"),
        m().from("other@example.com").attachment("r.txt", "Rechnung"),
    ]);
    assert_eq!(find(&idx, "from:versand@example.com acontent:Rechnung"), vec![1]);
}

#[test]
fn unqualified_exclusion_does_not_match_address_parts() {
    let idx = index(vec![
        m().to("bewerbung@example.com").subject("Meine Unterlagen"),
        m().to("bewerbung@example.com").subject("Bewerbung als Entwickler"),
        m().to("jobs@example.com").subject("Meine Unterlagen"),
        m().to("Bewerbung <bewerbung@example.com>").subject("Lebenslauf"),
        m().to("bewerbung@example.com").attachment("bewerbung.pdf", ""),
    ]);
    assert_eq!(find(&idx, "to:bewerbung@example.com -Bewerbung"), vec![1]);
    // A whole address does exclude, and a qualified exclusion matches parts.
    assert_eq!(find(&idx, "Unterlagen -bewerbung@example.com"), vec![3]);
    assert_eq!(find(&idx, "Unterlagen -to:bewerbung"), vec![3]);
}

#[test]
fn full_combination_with_excluded_subject() {
    let idx = index(vec![
        m().from("versand@example.com")
            .to("meineadresse@company.tld")
            .subject("Ihre Rechnung")
            .attachment("r.txt", "Rechnung 4711"),
        m().from("versand@example.com")
            .to("meineadresse@company.tld")
            .subject("Mahnung")
            .attachment("r.txt", "Rechnung 4711"),
        m().from("versand@example.com")
            .to("andere@company.tld")
            .subject("Ihre Rechnung")
            .attachment("r.txt", "Rechnung 4711"),
        m().from("versand@example.com").to("meineadresse@company.tld").subject("Ihre Rechnung"),
        m().from("versand@example.com")
            .to("meineadresse@company.tld")
            .subject("Ihre Rechnung")
            .body("Mahnung im Text")
            .attachment("r.txt", "Rechnung"),
    ]);
    assert_eq!(
        find(&idx, "from:versand@example.com to:meineadresse@company.tld acontent:Rechnung -subject:Mahnung"),
        vec![1, 5]
    );
}

#[test]
fn wildcard_after_a_field_prefix_matches_whole_addresses() {
    let idx = index(vec![
        m().from("a@example.com"),
        m().from("b@example.org"),
        m().to("c@example.com"),
        m().from("x@sub.example.com"),
        m().from("Example Com <y@other.net>"),
    ]);
    assert_eq!(find(&idx, "from:*@example.com"), vec![1]);
    assert_eq!(find(&idx, "from:*example.com"), vec![1, 4]);
}

#[test]
fn empty_query_and_exclusions_only_cover_all_readable_messages() {
    let idx = index(vec![m().subject("eins"), m().subject("zwei"), m().subject("drei")]);
    assert_eq!(find(&idx, ""), vec![1, 2, 3]);
    assert_eq!(find(&idx, "-zwei"), vec![1, 3]);
    // Nothing readable: no hit.
    let mut q = shard_query(Query::default(), ResolvedFilters::default());
    q.scopes.clear();
    assert_eq!(numbers_of(&idx, &q), Vec::<u64>::new());
}

// ---- SRCH-02 ---------------------------------------------------------------------------------------------

#[test]
fn each_separator_joins_parts_that_are_found_alone_and_together() {
    for sep in crate::words::SEPARATORS {
        let idx =
            index(vec![m().body(&format!("Kontakt vorname{sep}nachname Ende")), m().body("vorname allein")]);
        assert_eq!(find(&idx, "nachname"), vec![1], "{sep:?}");
        assert_eq!(find(&idx, "vorname"), vec![1, 2], "{sep:?}");
        let whole =
            Query { terms: vec![Term::new(Field::Any, Pattern::word(&format!("vorname{sep}nachname")))] };
        assert_eq!(numbers_of(&idx, &shard_query(whole, ResolvedFilters::default())), vec![1], "{sep:?}");
        assert_eq!(find(&idx, "vorname.nachname"), vec![1], "{sep:?}");
    }
}

#[test]
fn other_punctuation_ends_words() {
    let idx = index(vec![m().body("C++ und O'Neil um 10:30"), m().body("a+b")]);
    assert_eq!(find(&idx, "neil"), vec![1]);
    assert_eq!(find(&idx, "o'neil"), vec![1]);
    assert_eq!(find(&idx, "30"), vec![1]);
    assert_eq!(find(&idx, "b"), vec![2]);
}

#[test]
fn diacritics_are_found_with_and_without_marks() {
    let idx =
        index(vec![m().subject("Herr Müller"), m().subject("Herr Muller"), m().subject("Herr Mueller")]);
    assert_eq!(find(&idx, "müller"), vec![1]);
    assert_eq!(find(&idx, "MÜLLER"), vec![1]);
    assert_eq!(find(&idx, "Muller"), vec![1, 2]);
    assert_eq!(find(&idx, "Mu\u{308}ller"), vec![1]);
    assert_eq!(find(&idx, "Mül*"), vec![1]);
    assert_eq!(find(&idx, "Mul*"), vec![1, 2]);
}

#[test]
fn chinese_and_japanese_words_are_found_inside_sentences() {
    let idx = index(vec![
        m().body("私は東京に住んでいます"),
        m().body("北京欢迎你"),
        m().subject("京都大学の案内"),
        m().body("Windows版をダウンロード"),
    ]);
    assert_eq!(find(&idx, "東京"), vec![1]);
    assert_eq!(find(&idx, "住んで"), vec![1]);
    assert_eq!(find(&idx, "欢迎"), vec![2]);
    assert_eq!(find(&idx, "京都大学"), vec![3]);
    assert_eq!(find(&idx, "京"), vec![1, 2, 3]);
    assert_eq!(find(&idx, "ダウンロード"), vec![4]);
    assert_eq!(find(&idx, "東京大学"), Vec::<u64>::new());
}

// ---- SRCH-03 ---------------------------------------------------------------------------------------------

#[test]
fn size_bounds_are_inclusive() {
    let kb = 1024;
    let idx = index(vec![
        m().sized(1000),
        m().sized(400 * kb),
        m().sized(500 * kb),
        m().sized(600 * kb),
        m().sized(600 * kb + 1),
        m().sized(400 * kb - 1),
    ]);
    let f = |min, max| Filters { size: SizeRange { min, max }, ..Filters::default() };
    assert_eq!(find_filtered(&idx, "", &f(Some(400 * kb), Some(600 * kb))), vec![2, 3, 4]);
    assert_eq!(find_filtered(&idx, "", &f(Some(500 * kb), None)), vec![3, 4, 5]);
    assert_eq!(find_filtered(&idx, "", &f(None, Some(1000))), vec![1]);
}

#[test]
fn priorities_filter_by_the_senders_priority() {
    let idx = index(vec![m().priority(Priority::Low), m(), m().priority(Priority::High)]);
    let f = |ps: &[Priority]| Filters { priorities: ps.iter().copied().collect(), ..Filters::default() };
    assert_eq!(find_filtered(&idx, "", &f(&[Priority::High])), vec![3]);
    assert_eq!(find_filtered(&idx, "", &f(&[Priority::Normal])), vec![2]);
    assert_eq!(find_filtered(&idx, "", &f(&[Priority::Low, Priority::High])), vec![1, 3]);
    assert_eq!(find_filtered(&idx, "", &f(&[])), vec![1, 2, 3]);
}

fn day(y: i32, mo: u32, d: u32) -> CivilDate {
    CivilDate::new(y, mo, d).expect("date")
}

#[test]
fn message_date_range_includes_both_end_days() {
    let jan10 = day(2026, 1, 10).unix_midnight(0);
    let idx = index(vec![
        m().dated(jan10 - 1),
        m().dated(jan10),
        m().dated(jan10 + 3 * 86_400 - 1),
        m().dated(jan10 + 3 * 86_400),
    ]);
    let custom = DatePreset::Custom { first: Some(day(2026, 1, 10)), last: Some(day(2026, 1, 12)) };
    let f = Filters { message_date: Some(custom), ..Filters::default() };
    assert_eq!(find_filtered(&idx, "", &f), vec![2, 3]);
    let open = DatePreset::Custom { first: Some(day(2026, 1, 10)), last: None };
    assert_eq!(
        find_filtered(&idx, "", &Filters { message_date: Some(open), ..Filters::default() }),
        vec![2, 3, 4]
    );
}

#[test]
fn archive_date_range_includes_both_end_days_and_missing_dates_use_it() {
    let jan10 = day(2026, 1, 10).unix_midnight(0);
    let idx = ShardIndex::in_ram().expect("index");
    for (n, at) in [(1, jan10 - 1), (2, jan10), (3, jan10 + 86_400 - 1), (4, jan10 + 86_400)] {
        let e = IndexEntry { archived_at: at, ..entry(n) };
        idx.add(&e, &m()).expect("add");
    }
    idx.commit().expect("commit");
    let custom = DatePreset::Custom { first: Some(day(2026, 1, 10)), last: Some(day(2026, 1, 10)) };
    let f = Filters { archive_date: Some(custom), ..Filters::default() };
    assert_eq!(find_filtered(&idx, "", &f), vec![2, 3]);
    // Without a Date header the message date is the archive date.
    assert_eq!(
        find_filtered(&idx, "", &Filters { message_date: Some(custom), ..Filters::default() }),
        vec![2, 3]
    );
}

#[test]
fn relative_presets_resolve_against_today() {
    let today = day(2026, 11, 27);
    let idx =
        index(vec![m().dated(today.unix_midnight(0) + 3600), m().dated(today.add_days(-1).unix_midnight(0))]);
    let f = |p| Filters { message_date: Some(p), ..Filters::default() };
    assert_eq!(find_filtered(&idx, "", &f(DatePreset::Today)), vec![1]);
    assert_eq!(find_filtered(&idx, "", &f(DatePreset::Yesterday)), vec![2]);
    assert_eq!(find_filtered(&idx, "", &f(DatePreset::ThisMonth)), vec![1, 2]);
    assert_eq!(find_filtered(&idx, "", &f(DatePreset::LastYear)), Vec::<u64>::new());
}

#[test]
fn attachment_checkboxes_leave_out_messages_with_or_without_attachments() {
    let idx = index(vec![m().attachment("a.txt", "x"), m()]);
    let f = |with, without| Filters {
        with_attachments: with,
        without_attachments: without,
        ..Filters::default()
    };
    assert_eq!(find_filtered(&idx, "", &f(true, true)), vec![1, 2]);
    assert_eq!(find_filtered(&idx, "", &f(true, false)), vec![1]);
    assert_eq!(find_filtered(&idx, "", &f(false, true)), vec![2]);
    assert_eq!(find_filtered(&idx, "", &f(false, false)), Vec::<u64>::new());
}

fn folder_index() -> ShardIndex {
    let idx = ShardIndex::in_ram().expect("index");
    let places = [
        (1, ARCHIVE, "Posteingang"),
        (2, ARCHIVE, "Posteingang/Projekte 2017/Gewinnoptimierung"),
        (3, ARCHIVE, "Posteingang2"),
        (4, ARCHIVE, "Gesendet"),
        (5, 2, "Posteingang"),
        (6, ARCHIVE, ""),
    ];
    for (n, archive, folder) in places {
        let e = IndexEntry { archive, folder: folder.into(), ..entry(n) };
        idx.add(&e, &m().subject("Projekt")).expect("add");
    }
    idx.commit().expect("commit");
    idx
}

#[test]
fn folder_filter_covers_subfolders_only_when_asked() {
    let idx = folder_index();
    let f = |path: &str, sub| Filters {
        folder: Some(FolderFilter {
            archive: ARCHIVE,
            path: path.into(),
            include_subfolders: sub,
            keys: None,
        }),
        ..Filters::default()
    };
    assert_eq!(find_filtered(&idx, "Projekt", &f("Posteingang", true)), vec![1, 2]);
    assert_eq!(find_filtered(&idx, "Projekt", &f("Posteingang", false)), vec![1]);
    assert_eq!(find_filtered(&idx, "", &f("", true)), vec![1, 2, 3, 4, 6]);
    assert_eq!(find_filtered(&idx, "", &f("", false)), vec![6]);
}

#[test]
fn folder_filter_with_resolved_keys_matches_exactly_those_keys() {
    let idx = folder_index();
    // A folder moved to `Archiv/Alt` keeps the key its mail carries.
    let f = |path: &str, keys: &[&str]| Filters {
        folder: Some(FolderFilter {
            archive: ARCHIVE,
            path: path.into(),
            include_subfolders: true,
            keys: Some(keys.iter().map(|k| k.to_string()).collect()),
        }),
        ..Filters::default()
    };
    assert_eq!(
        find_filtered(&idx, "", &f("Archiv/Alt", &["Posteingang/Projekte 2017/Gewinnoptimierung"])),
        vec![2]
    );
    assert_eq!(
        find_filtered(
            &idx,
            "",
            &f("Archiv", &["Archiv", "Posteingang/Projekte 2017/Gewinnoptimierung", "Gesendet"])
        ),
        vec![2, 4]
    );
    assert_eq!(find_filtered(&idx, "", &f("Nirgends", &[])), Vec::<u64>::new());
}

#[test]
fn only_readable_scopes_are_searched() {
    let idx = folder_index();
    let mut q = shard_query(Query::default(), ResolvedFilters::default());
    assert_eq!(numbers_of(&idx, &q), vec![1, 2, 3, 4, 6]);
    q.scopes = vec![Scope { archive: ARCHIVE, folder: Some("Posteingang".into()) }, Scope::archive(2)];
    assert_eq!(numbers_of(&idx, &q), vec![1, 2, 5]);
}

#[test]
fn sender_and_recipient_boxes_and_text_targets_narrow_fields() {
    let idx = index(vec![
        m().from("ZDNet <news@zdnet.de>").to("anna@example.com"),
        m().to("zdnet@example.com").from("anna@example.com"),
        m().subject("zdnet").body("anna"),
        m().cc("Anna <a@x.de>"),
    ]);
    let from_box = Filters { from: parse_query("zdnet").expect("parse"), ..Filters::default() };
    assert_eq!(find_filtered(&idx, "", &from_box), vec![1]);
    let rcpt_box = Filters { recipients: parse_query("anna").expect("parse"), ..Filters::default() };
    assert_eq!(find_filtered(&idx, "", &rcpt_box), vec![1, 4]);
    let subject_only = Filters {
        targets: TextTargets { subject: true, ..TextTargets::default().none() },
        ..Filters::default()
    };
    assert_eq!(find_filtered(&idx, "zdnet", &subject_only), vec![3]);
    let nothing = Filters { targets: TextTargets::default().none(), ..Filters::default() };
    assert_eq!(find_filtered(&idx, "zdnet", &nothing), Vec::<u64>::new());
    assert_eq!(find_filtered(&idx, "-zdnet", &nothing), vec![1, 2, 3, 4]);
}

trait NoTargets {
    fn none(self) -> Self;
}

impl NoTargets for TextTargets {
    fn none(self) -> Self {
        TextTargets {
            subject: false,
            parties: false,
            body: false,
            attachment_names: false,
            attachment_contents: false,
        }
    }
}

// ---- SRCH-05: sorting, paging, merging, highlights --------------------------------------------------------

/// Twelve messages with ties in every key, missing names and reply prefixes.
fn sort_docs() -> Vec<(MessageDoc, bool)> {
    let d = |k: i64| BASE_TIME + k * 3600;
    vec![
        (m().dated(d(5)).subject("Re: Angebot").from("Zoe <zoe@example.com>"), false),
        (m().dated(d(1)).subject("Bericht").from("anna@example.com"), false),
        (m().dated(d(5)).subject("angebot").from("Bert <b@example.com>"), false),
        (m().dated(d(3)).subject("Zahlung").from("Carl <c@example.com>").to("Anna <x@example.com>"), true),
        (m().dated(d(2)).subject("").from("Bert <b2@example.com>"), false),
        (m().dated(d(9)).subject("AW: Zahlung").from("dora@example.com"), false),
        (m().dated(d(5)).subject("Bericht").from("Émile <e@example.com>"), false),
        (m().dated(d(0)).subject("Fwd: Re: angebot"), false),
        (m().dated(d(7)).subject("Mahnung").from("Zoe <z2@example.com>"), false),
        (m().dated(d(3)).subject("Ärger").from("Carl <c@example.com>").to("bert@example.com"), true),
        (m().dated(d(8)).subject("Bericht").from("Anna <anna@example.com>"), false),
        (m().dated(d(6)).subject("Mahnung").from("zoe@example.com"), false),
    ]
}

fn sort_index(docs: &[(MessageDoc, bool)], numbers: impl Iterator<Item = u64>) -> ShardIndex {
    let idx = ShardIndex::in_ram().expect("index");
    for ((doc, sent), n) in docs.iter().zip(numbers) {
        idx.add(&IndexEntry { sent: *sent, ..entry(n) }, doc).expect("add");
        // Several segments, so that ordinals of different segments meet.
        if n % 4 == 0 {
            idx.commit().expect("commit");
        }
    }
    idx.commit().expect("commit");
    idx
}

/// Pages through all hits with `limit` per page; returns the numbers in order.
fn page_through(idx: &ShardIndex, sort: Sort, limit: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut after: Option<ShardCursor> = None;
    for _ in 0..100 {
        let q = ShardQuery {
            sort,
            limit,
            after: after.clone(),
            ..shard_query(Query::default(), ResolvedFilters::default())
        };
        let page = idx.search(&q).expect("search");
        assert!(page.hits.len() <= limit);
        out.extend(page.hits.iter().map(|h| h.number));
        match page.next_cursor() {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
    panic!("paging does not end");
}

#[test]
fn every_sort_key_pages_through_all_hits_in_both_directions() {
    let idx = sort_index(&sort_docs(), 1..);
    // Expected orders written by hand from the fixture (ties by number).
    // Dates: 8(0) 2(1) 5(2) 4(3) 10(3) 1(5) 3(5) 7(5) 12(6) 9(7) 11(8) 6(9).
    let date_asc = vec![8, 2, 5, 4, 10, 1, 3, 7, 12, 9, 11, 6];
    // Party: received = sender name or address, sent = first recipient.
    // 8 "" ; 2 "anna@example.com"; 11 "anna"; 4 "anna" (sent to Anna); 10 "bert@example.com" (sent);
    // 3 "bert"; 5 "bert"; 6 "dora@example.com"; 7 "emile" (folded); 1 "zoe"; 9 "zoe"; 12 "zoe@example.com".
    let party_asc = vec![8, 4, 11, 2, 3, 5, 10, 6, 7, 1, 9, 12];
    // Subject without prefixes and diacritics: 5 ""; 1 3 8 "angebot"; 10 "arger"; 2 7 11 "bericht";
    // 9 12 "mahnung"; 4 6 "zahlung".
    let subject_asc = vec![5, 1, 3, 8, 10, 2, 7, 11, 9, 12, 4, 6];
    for (key, asc) in
        [(SortKey::Date, date_asc), (SortKey::Party, party_asc), (SortKey::Subject, subject_asc)]
    {
        for limit in [1, 3, 5, 12, 50] {
            let up = page_through(&idx, Sort { key, ascending: true }, limit);
            assert_eq!(up, asc, "{key:?} ascending, {limit} per page");
            let down = page_through(&idx, Sort { key, ascending: false }, limit);
            let mut desc = asc.clone();
            desc.reverse();
            assert_eq!(down, desc, "{key:?} descending, {limit} per page");
        }
    }
}

#[test]
fn total_counts_every_hit_and_remaining_counts_after_the_cursor() {
    let idx = sort_index(&sort_docs(), 1..);
    let q = ShardQuery {
        limit: 5,
        ..shard_query(parse_query("bericht").expect("parse"), ResolvedFilters::default())
    };
    let page = idx.search(&q).expect("search");
    assert_eq!((page.total, page.remaining, page.hits.len()), (3, 3, 3));
    let q2 = ShardQuery { limit: 1, ..q };
    let first = idx.search(&q2).expect("search");
    let second = idx.search(&ShardQuery { after: first.next_cursor(), ..q2 }).expect("search");
    assert_eq!((second.total, second.remaining), (3, 2));
}

#[test]
fn merged_pages_continue_across_shards_without_gaps_or_repeats() {
    let docs = sort_docs();
    let (a, b) = docs.split_at(6);
    // Shard 7 holds messages 1–6, shard 3 holds 7–12 under numbers 1–6 as well (numbers are per shard).
    let shards = [(7u64, sort_index(a, 1..)), (3u64, sort_index(b, 1..))];
    for key in [SortKey::Date, SortKey::Party, SortKey::Subject] {
        for ascending in [true, false] {
            let sort = Sort { key, ascending };
            // The expected order: everything on one page, merged.
            let all: Vec<(u64, u64)> = {
                let pages = shards
                    .iter()
                    .map(|(id, idx)| {
                        let q =
                            ShardQuery { sort, ..shard_query(Query::default(), ResolvedFilters::default()) };
                        (*id, idx.search(&q).expect("search"))
                    })
                    .collect();
                merge(pages, sort, 100).hits.iter().map(|h| (h.shard, h.hit.number)).collect()
            };
            assert_eq!(all.len(), 12);
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let pages = shards
                    .iter()
                    .map(|(id, idx)| {
                        let after = cursor
                            .as_ref()
                            .map(|c| MergedCursor::decode(c, sort).expect("own cursor").for_shard(*id));
                        let q = ShardQuery {
                            sort,
                            limit: 5,
                            after,
                            ..shard_query(Query::default(), ResolvedFilters::default())
                        };
                        (*id, idx.search(&q).expect("search"))
                    })
                    .collect();
                let page = merge(pages, sort, 5);
                assert_eq!(page.total, 12);
                seen.extend(page.hits.iter().map(|h| (h.shard, h.hit.number)));
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen, all, "{sort:?}");
            let unique: BTreeSet<_> = seen.iter().collect();
            assert_eq!(unique.len(), 12);
        }
    }
}

#[test]
fn cursors_of_another_sort_are_refused() {
    let c = MergedCursor { value: crate::search::SortValue::Date(5), shard: 1, number: 2, archive: 1 };
    let date_desc = Sort { key: SortKey::Date, ascending: false };
    let text = c.encode(date_desc);
    assert_eq!(MergedCursor::decode(&text, date_desc).expect("decode"), c);
    assert!(MergedCursor::decode(&text, Sort { key: SortKey::Subject, ascending: false }).is_err());
    assert!(MergedCursor::decode(&text, Sort { key: SortKey::Date, ascending: true }).is_err());
    assert!(MergedCursor::decode("garbage", date_desc).is_err());
    let s = MergedCursor { value: crate::search::SortValue::Text("Grüße.x".into()), ..c };
    let subject = Sort { key: SortKey::Subject, ascending: true };
    assert_eq!(MergedCursor::decode(&s.encode(subject), subject).expect("decode"), s);
}

#[test]
fn highlights_mark_matched_terms_in_subject_sender_and_recipients() {
    let idx = index(vec![
        m().subject("ZDNet Daily Update: Müller")
            .from("ZDNet <newsletter@zdnet.de>")
            .to("Anna <anna@example.com>"),
    ]);
    let q = parse_query("zdnet \"daily update\" muller to:anna -nothing").expect("parse");
    let page = idx.search(&shard_query(q, ResolvedFilters::default())).expect("search");
    let hit = &page.hits[0];
    assert_eq!(hit.subject, "ZDNet Daily Update: Müller");
    assert_eq!(hit.from, "ZDNet <newsletter@zdnet.de>");
    assert_eq!(hit.recipients, "Anna <anna@example.com>");
    let h = |field, start, end| Highlight { field, start, end };
    assert_eq!(
        hit.highlights,
        vec![
            h(HighlightField::Subject, 0, 5),
            h(HighlightField::Subject, 6, 18),
            h(HighlightField::Subject, 20, 27),
            h(HighlightField::From, 0, 5),
            h(HighlightField::From, 18, 23),
            h(HighlightField::Recipients, 0, 4),
            h(HighlightField::Recipients, 6, 10),
        ]
    );
    assert_eq!(&hit.subject[20..27], "Müller");
    // Wildcards highlight whole words and parts.
    let q = parse_query("from:*@zdnet.de").expect("parse");
    let page = idx.search(&shard_query(q, ResolvedFilters::default())).expect("search");
    assert_eq!(page.hits[0].highlights, vec![h(HighlightField::From, 7, 26)]);
}

#[test]
fn hits_carry_the_columns_of_the_result_list() {
    let idx = ShardIndex::in_ram().expect("index");
    let doc = m()
        .subject("Angebot")
        .from("Anna <anna@example.com>")
        .dated(BASE_TIME)
        .sized(4096)
        .priority(Priority::High);
    let e = IndexEntry { folder: "Gesendet/2026".into(), sent: true, ..entry(42) };
    idx.add(&e, &doc.attachment("x.txt", "")).expect("add");
    idx.commit().expect("commit");
    let page = idx.search(&shard_query(Query::default(), ResolvedFilters::default())).expect("search");
    let hit = &page.hits[0];
    assert_eq!(
        (hit.number, hit.archive, hit.folder.as_str(), hit.date, hit.archived_at, hit.size),
        (42, ARCHIVE, "Gesendet/2026", BASE_TIME, BASE_TIME + 42, 4096)
    );
    assert!(hit.has_attachments && hit.sent);
    assert_eq!(hit.priority, Priority::High);
}

// ---- SRCH-07: rebuild and files ---------------------------------------------------------------------------

#[test]
fn rebuilding_from_the_same_documents_gives_the_same_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = sort_docs();
    let queries = ["bericht", "*example.com", "-zahlung", "from:zoe", ""];
    let run = |idx: &ShardIndex| -> Vec<Vec<u64>> { queries.iter().map(|q| find(idx, q)).collect() };
    let idx = ShardIndex::open_or_create_in_dir(dir.path()).expect("create");
    for (i, (doc, sent)) in docs.iter().enumerate() {
        idx.add(&IndexEntry { sent: *sent, ..entry(i as u64 + 1) }, doc).expect("add");
    }
    idx.commit().expect("commit");
    let before = run(&idx);
    let files = idx.segment_files().expect("files");
    assert!(files.iter().any(|f| f.to_string_lossy() == "meta.json"));
    assert!(files.iter().any(|f| f.to_string_lossy().ends_with(".store")));
    for f in &files {
        assert!(dir.path().join(f).exists(), "{}", f.display());
    }
    idx.delete_all().expect("delete");
    idx.commit().expect("commit");
    assert_eq!(idx.num_docs(), 0);
    for (i, (doc, sent)) in docs.iter().enumerate() {
        idx.add(&IndexEntry { sent: *sent, ..entry(i as u64 + 1) }, doc).expect("add");
    }
    idx.commit().expect("commit");
    drop(idx);
    let reopened = ShardIndex::open_or_create_in_dir(dir.path()).expect("open");
    assert_eq!(run(&reopened), before);
}

#[test]
fn deleting_an_archive_removes_only_its_messages() {
    let idx = folder_index();
    idx.delete_archive(2).expect("delete");
    idx.commit().expect("commit");
    let mut q = shard_query(Query::default(), ResolvedFilters::default());
    q.scopes.push(Scope::archive(2));
    assert_eq!(numbers_of(&idx, &q), vec![1, 2, 3, 4, 6]);
}

// ---- Invariant 7: a search is bounded on the store --------------------------------------------------------

#[test]
fn a_wildcard_matching_more_words_than_allowed_is_a_query_error() {
    let idx = index(vec![m().subject("alpha beta gamma delta epsilon"), m().body("zeta theta iota kappa")]);
    let bounds = crate::limits::ShardBounds { max_wildcard_expansion: 3, ..Default::default() };
    let wide =
        ShardQuery { bounds, ..shard_query(parse_query("*a").expect("parses"), ResolvedFilters::default()) };
    match idx.search(&wide) {
        Err(crate::SearchError::Limit(e)) => {
            assert_eq!(e, arca_types::query::QueryLimitError::WildcardExpansion { limit: 3 });
            assert!(e.to_string().contains("search.max_wildcard_expansion"), "{e}");
        }
        other => panic!("expected the expansion limit, got {other:?}"),
    }
    let narrow = ShardQuery {
        bounds,
        ..shard_query(parse_query("alp*").expect("parses"), ResolvedFilters::default())
    };
    assert_eq!(idx.search(&narrow).expect("within the bound").total, 1);
}

#[test]
fn a_search_past_its_deadline_is_a_query_error() {
    let idx = index(vec![m().subject("alpha")]);
    let bounds = crate::limits::ShardBounds { timeout_ms: 0, ..Default::default() };
    let q = ShardQuery { bounds, ..shard_query(Query::default(), ResolvedFilters::default()) };
    match idx.search(&q) {
        Err(crate::SearchError::Limit(e)) => assert!(e.to_string().contains("search.timeout_ms"), "{e}"),
        other => panic!("expected the time limit, got {other:?}"),
    }
}
