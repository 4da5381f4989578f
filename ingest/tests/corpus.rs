//! Corpus tests: the hostile corpus (no panic, bounded time, the expected verdict, search terms
//! present), byte-exact round trips of the public corpus through every reader, and parse throughput
//! over an unpacked public corpus. Each skips with a printed reason when its input is absent.
//!
//! Inputs: the shared folder at `$ARCA_SHARED_DIR` or `<workspace>/../shared`; `ARCA_CORPUS_LIMIT`
//! (default 2000, 0 = all) for the round trips; `ARCA_CORPUS_DIR` (an `unpack --format files` output)
//! for the throughput test.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arca_ingest::{
    EmlOptions, EmlReader, Limits, MaildirOptions, MaildirReader, MboxOptions, MboxTree, SourceItem,
    SourceMessage, parse_message,
};
use arca_types::document::MessageDoc;
use sha2::{Digest, Sha256};

/// Upper bound for one message of the hostile corpus (unoptimised test build; a quadratic or
/// exponential path takes minutes).
const MAX_PARSE_TIME: Duration = Duration::from_secs(5);

/// `archive` cases whose search term is not in the document, and why that is acceptable.
const KNOWN_MISSES: &[(&str, &str)] = &[
    // NFD "Müller": the search layer normalises index and query alike (SRCH-02); the text holds u + U+0308.
    ("charset-mueller-decomposed.eml", "normalisation is the tokenizer's"),
];

fn shared_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("ARCA_SHARED_DIR").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")),
    ];
    candidates.into_iter().flatten().find(|p| p.join("corpus").is_dir())
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Every text of a document that search looks at, lower-cased.
fn searchable(doc: &MessageDoc) -> String {
    let mut s = String::new();
    s.push_str(doc.subject.as_deref().unwrap_or_default());
    for a in doc.from.iter().chain(&doc.to).chain(&doc.cc).chain(&doc.bcc) {
        s.push(' ');
        s.push_str(a.name.as_deref().unwrap_or_default());
        s.push(' ');
        s.push_str(a.address.as_deref().unwrap_or_default());
    }
    for part in [&doc.body_text, &doc.attachment_text] {
        s.push(' ');
        s.push_str(part);
    }
    for name in &doc.attachment_names {
        s.push(' ');
        s.push_str(name);
    }
    s.to_lowercase()
}

#[test]
fn hostile_files_never_panic_parse_in_bounded_time_and_get_their_verdict() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: no shared corpus (set ARCA_SHARED_DIR)");
        return;
    };
    let hostile = shared.join("corpus/hostile");
    let table = std::fs::read_to_string(hostile.join("cases.tsv")).expect("cases.tsv");
    let cases: HashMap<String, (String, String)> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 5).then(|| (f[0].to_string(), (f[3].to_string(), f[4].to_string())))
        })
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(hostile.join("files"))
        .expect("hostile files")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    assert!(files.len() > 200, "expected the hostile files, found {}", files.len());

    let limits = Limits::default();
    let mut misses = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for path in &files {
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        let raw = std::fs::read(path).expect("read");
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| parse_message(&raw, &limits));
        let elapsed = started.elapsed();
        let Ok(result) = result else { panic!("{name}: parse_message panicked") };
        assert!(elapsed < MAX_PARSE_TIME, "{name}: took {elapsed:?}");
        if elapsed > slowest.0 {
            slowest = (elapsed, name.clone());
        }
        let (expected, term) = cases.get(&name).cloned().unwrap_or_default();
        match (expected.as_str(), result) {
            ("refuse", Err(refused)) => eprintln!("{name}: refused: {refused}"),
            ("refuse", Ok(_)) => panic!("{name}: expected a refusal"),
            (_, Err(refused)) => panic!("{name}: refused ({refused}), expected {expected}"),
            ("archive", Ok(doc)) if !term.is_empty() => {
                if !searchable(&doc).contains(&term.to_lowercase()) {
                    misses.push(name.clone());
                }
            }
            (_, Ok(_)) => {}
        }
    }
    eprintln!(
        "{} hostile files; slowest {} in {:?}; search-term misses: {misses:?}",
        files.len(),
        slowest.1,
        slowest.0
    );
    let unexpected: Vec<_> = misses.iter().filter(|m| !KNOWN_MISSES.iter().any(|(k, _)| k == m)).collect();
    assert!(unexpected.is_empty(), "search terms missing from the documents of {unexpected:?}");
}

/// One row of the public corpus index.
struct Row {
    path: String,
    sha256: String,
    source: String,
    folder: String,
    message_id: String,
}

fn index_rows(shared: &Path, limit: usize) -> Vec<Row> {
    let text = std::fs::read_to_string(shared.join("corpus/public/index.tsv")).expect("index.tsv");
    let rows = text.lines().skip(1).filter_map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (f.len() >= 6).then(|| Row {
            path: f[0].to_string(),
            sha256: f[1].to_string(),
            source: f[3].to_string(),
            folder: f[4].to_string(),
            message_id: f[5].to_string(),
        })
    });
    if limit == 0 { rows.collect() } else { rows.take(limit).collect() }
}

fn unpack(shared: &Path, dest: &Path, format: &str, limit: usize) -> bool {
    let mut cmd = Command::new(shared.join("corpus/unpack"));
    cmd.arg(dest).arg("--format").arg(format);
    if limit > 0 {
        cmd.arg("--limit").arg(limit.to_string());
    }
    match cmd.output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!("unpack {format} failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            eprintln!("skipped: cannot run the corpus unpacker ({e})");
            false
        }
    }
}

fn messages(items: impl Iterator<Item = Result<SourceItem, arca_ingest::ReadError>>) -> Vec<SourceMessage> {
    items
        .map(|i| match i.expect("readable") {
            SourceItem::Message(m) => m,
            SourceItem::Refused { source, refused, .. } => panic!("{source} refused: {refused}"),
        })
        .collect()
}

#[test]
fn public_corpus_round_trips_byte_exact_through_every_reader() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: no shared corpus (set ARCA_SHARED_DIR)");
        return;
    };
    let limit = std::env::var("ARCA_CORPUS_LIMIT").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rows = index_rows(&shared, limit);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut by_folder: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for row in &rows {
        by_folder.entry(format!("{}/{}", row.source, row.folder)).or_default().push(&row.sha256);
    }

    // EML files: exact bytes, matched by path.
    let files = tmp.path().join("files");
    if !unpack(&shared, &files, "files", limit) {
        return;
    }
    let by_path: HashMap<&str, &str> = rows.iter().map(|r| (r.path.as_str(), r.sha256.as_str())).collect();
    let read = messages(EmlReader::new(&files, EmlOptions::default()));
    assert_eq!(read.len(), rows.len());
    for m in &read {
        let rel =
            Path::new(&m.source).strip_prefix(&files).expect("below root").to_string_lossy().into_owned();
        assert_eq!(by_path.get(rel.as_str()).copied(), Some(sha256_hex(&m.raw).as_str()), "{rel}");
        assert_eq!(m.folder.join("/"), rel.rsplit_once('/').expect("folder").0);
    }

    // Maildir: exact bytes; file names do not keep the order, so each folder is compared as a multiset.
    let maildir = tmp.path().join("maildir");
    assert!(unpack(&shared, &maildir, "maildir", limit));
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in messages(MaildirReader::new(&maildir, MaildirOptions::default())) {
        got.entry(m.folder.join("/")).or_default().push(sha256_hex(&m.raw));
    }
    for (folder, expected) in &by_folder {
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        let mut actual = got.remove(folder).unwrap_or_default();
        actual.sort();
        assert_eq!(actual, expected, "maildir folder {folder}");
    }
    assert!(got.is_empty(), "unexpected maildir folders {:?}", got.keys());

    // mboxrd: exact bytes in order, except messages without a final line break, which come back with
    // one LF (the corpus README's documented exception).
    let mbox = tmp.path().join("mbox");
    assert!(unpack(&shared, &mbox, "mbox", limit));
    let mut got: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for m in messages(MboxTree::new(&mbox, MboxOptions::default())) {
        got.entry(m.folder.join("/")).or_default().push(m.raw);
    }
    let mut final_newline_exceptions = 0;
    for (folder, expected) in &by_folder {
        let actual = got.remove(folder).unwrap_or_default();
        assert_eq!(actual.len(), expected.len(), "mbox folder {folder}");
        for (n, (raw, sha)) in actual.iter().zip(expected).enumerate() {
            if sha256_hex(raw) == *sha {
                continue;
            }
            let without_lf = raw.strip_suffix(b"\n").map(sha256_hex);
            assert_eq!(without_lf.as_deref(), Some(*sha), "mbox folder {folder} message {}", n + 1);
            final_newline_exceptions += 1;
        }
    }
    assert!(got.is_empty(), "unexpected mbox folders {:?}", got.keys());
    eprintln!(
        "{} messages round-tripped; {final_newline_exceptions} mbox final-newline exceptions",
        rows.len()
    );
}

#[test]
fn unpacked_public_corpus_parses_fast_and_without_refusal() {
    let Some(dir) = std::env::var_os("ARCA_CORPUS_DIR").map(PathBuf::from) else {
        eprintln!("skipped: set ARCA_CORPUS_DIR to an `unpack --format files` output to run");
        return;
    };
    let ids: HashMap<String, String> = shared_dir()
        .map(|s| index_rows(&s, 0).into_iter().map(|r| (r.path, r.message_id)).collect())
        .unwrap_or_default();
    let limits = Limits::default();
    let (mut count, mut bytes, mut total) = (0usize, 0u64, Duration::ZERO);
    let mut slowest = (Duration::ZERO, String::new());
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    let mut id_mismatches = Vec::new();
    let (mut with_attachments, mut with_body) = (0usize, 0usize);
    for m in messages(EmlReader::new(&dir, EmlOptions::default())) {
        let started = Instant::now();
        let doc = parse_message(&m.raw, &limits).unwrap_or_else(|r| panic!("{}: refused: {r}", m.source));
        let elapsed = started.elapsed();
        total += elapsed;
        count += 1;
        bytes += m.raw.len() as u64;
        if elapsed > slowest.0 {
            slowest = (elapsed, m.source.clone());
        }
        with_attachments += usize::from(doc.has_attachments);
        with_body += usize::from(!doc.body_text.is_empty());
        for w in &doc.parse_warnings {
            if w.contains("internal check") || w.contains("too costly") {
                eprintln!("{}: {w}", m.source);
            }
            // Group warnings by their wording without part numbers and names.
            let kind: String = w.split([':', '\'', '(']).next().unwrap_or_default().to_string();
            *warnings.entry(kind).or_default() += 1;
        }
        let rel = Path::new(&m.source).strip_prefix(&dir).map(|p| p.to_string_lossy().into_owned());
        if let Some(expected) = rel.ok().and_then(|r| ids.get(&r)) {
            let expected = expected.trim().trim_start_matches('<').trim_end_matches('>').trim();
            let actual = doc.message_id.as_deref().unwrap_or_default();
            if !expected.is_empty() && expected != actual {
                id_mismatches.push(format!("{}: index {expected:?}, parsed {actual:?}", m.source));
            }
        }
        assert!(elapsed < Duration::from_secs(2), "{}: took {elapsed:?}", m.source);
    }
    let secs = total.as_secs_f64().max(1e-9);
    eprintln!(
        "{count} messages, {bytes} bytes in {secs:.2} s: {:.0} messages/s, {:.1} MB/s; slowest {} in {:?}",
        count as f64 / secs,
        bytes as f64 / secs / 1e6,
        slowest.1,
        slowest.0
    );
    eprintln!("with attachments: {with_attachments}; with body text: {with_body}");
    eprintln!("warnings by kind: {warnings:#?}");
    eprintln!("Message-ID differences from index.tsv: {}", id_mismatches.len());
    for line in id_mismatches.iter().take(20) {
        eprintln!("  {line}");
    }
    assert!(count > 0, "no messages below {}", dir.display());
}

/// Peak resident memory of this process in KiB (Linux), for the reports of the big-file test.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn big_hostile_files_are_refused_unread_or_parsed_in_bounded_time() {
    let Some(dir) = std::env::var_os("ARCA_HOSTILE_BIG_DIR").map(PathBuf::from) else {
        eprintln!(
            "skipped: set ARCA_HOSTILE_BIG_DIR to the output of `hostile/generate DIR --big --only 'big-*'`"
        );
        return;
    };
    let table = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv beside the big files");
    let expected: HashMap<String, String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 4).then(|| (f[0].to_string(), f[3].to_string()))
        })
        .collect();
    let limits = Limits::default();
    for item in EmlReader::new(&dir, EmlOptions::default()) {
        let started = Instant::now();
        let (name, verdict) = match item.expect("readable") {
            SourceItem::Refused { source, refused, .. } => (source, format!("refuse ({refused})")),
            SourceItem::Message(m) => {
                let verdict = match parse_message(&m.raw, &limits) {
                    Ok(doc) => format!("archive ({} warnings)", doc.parse_warnings.len()),
                    Err(refused) => format!("refuse ({refused})"),
                };
                (m.source, verdict)
            }
        };
        let elapsed = started.elapsed();
        let file = Path::new(&name).file_name().expect("name").to_string_lossy().into_owned();
        let want = expected.get(&file).map(String::as_str).unwrap_or("?");
        eprintln!("{file}: {verdict} in {elapsed:?}; peak RSS {:?} KiB", peak_rss_kib());
        assert!(verdict.starts_with(want), "{file}: expected {want}, got {verdict}");
        assert!(elapsed < Duration::from_secs(20), "{file}: took {elapsed:?}");
    }
}

/// MIME entities of a parsed message tree, enclosed messages included (counted without recursion).
fn tree_parts(message: &mail_parser::Message<'_>) -> usize {
    let mut count = 0;
    let mut pending = vec![message];
    while let Some(m) = pending.pop() {
        count += m.parts.len();
        for part in &m.parts {
            if let mail_parser::PartType::Message(inner) = &part.body {
                pending.push(inner);
            }
        }
    }
    count
}

/// The pre-parse scan must see the structure exactly as mail-parser builds it, or its limits would
/// not protect the parser: compare its part count with mail-parser's tree on every file it admits.
fn scan_agrees_with_mail_parser(files: &[PathBuf]) -> (usize, Vec<String>) {
    let limits = Limits::default();
    let parser = mail_parser::MessageParser::default();
    let mut checked = 0;
    let mut differ = Vec::new();
    for path in files {
        let raw = std::fs::read(path).expect("read");
        let Ok(report) = arca_ingest::scan::scan(&raw, &limits) else { continue };
        if report.too_costly {
            continue;
        }
        let Ok(parsed) = std::panic::catch_unwind(|| parser.parse(&raw)) else { continue };
        let built = parsed.as_ref().map_or(0, tree_parts);
        checked += 1;
        // The scan also counts a part whose header block the end of the input cuts short, which
        // mail-parser drops.
        if built != report.parts && built + 1 != report.parts {
            differ.push(format!("{}: scan {} parts, mail-parser {built}", path.display(), report.parts));
        }
    }
    (checked, differ)
}

#[test]
fn scan_counts_the_parts_mail_parser_builds() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: no shared corpus (set ARCA_SHARED_DIR)");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("corpus/hostile/files"))
        .expect("hostile files")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    if let Some(dir) = std::env::var_os("ARCA_CORPUS_DIR") {
        files.extend(
            messages(EmlReader::new(PathBuf::from(dir), EmlOptions::default()))
                .into_iter()
                .map(|m| PathBuf::from(m.source)),
        );
    }
    let (checked, differ) = scan_agrees_with_mail_parser(&files);
    eprintln!("{checked} files compared; {} differ", differ.len());
    for d in differ.iter().take(20) {
        eprintln!("  {d}");
    }
    assert!(differ.is_empty());
}
