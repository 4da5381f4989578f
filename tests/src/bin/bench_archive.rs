//! Archive benchmark: the public corpus on one Arca node against `notmuch` and `mu` on the same messages
//! as a Maildir, in one run on this machine.
//!
//! Arca: every message is imported with `arca import eml … --json` (the CLI returns only when every batch
//! is acknowledged durable, invariant 1) and timed end to end; stored pack and index bytes are summed from
//! the node's object directory 12 s after the import; PUTs are the node's `arca_object_puts_total` (split by kind
//! by watching that directory during the import);
//! GETs per message fetch are counted by tracing the node's opens of pack objects (`strace`); search
//! latency is measured over `POST /api/data/search` for a fixed set of queries of every kind (one warm-up
//! round, then `--rounds` measured rounds). The peers index the same messages as a Maildir (`notmuch new`,
//! `mu init` + `mu index`) and run the same queries translated to their syntax, one process per query.
//!
//! Run with `scripts/bench-archive.sh` (release build). Options: `--shared DIR` (default
//! `$ARCA_SHARED_DIR` or `../shared` next to the workspace), `--rounds N` (default 3), `--peer-timeout
//! SECS` (default 600, for each peer's indexing), `--limit N` (first N messages only, for a quick try),
//! `--no-peers`.
//!
//! `--stores 8` runs the cross-store comparison instead: the corpus imported in 8 parts into a tenant with
//! one store, then into a tenant whose every part goes to a new current store (so the later parts are
//! checked against up to 7 older stores), then re-imported whole (every message already archived),
//! and the query set searched; both runs print in one table with their ratio.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::{ApiClient, Cluster, arca_bin};
use serde_json::{Value, json};

const MIB: f64 = 1024.0 * 1024.0;

// ----------------------------------------------------------------------------------------------------
// Options

struct Opts {
    shared: PathBuf,
    rounds: usize,
    peer_timeout: Duration,
    limit: Option<usize>,
    peers: bool,
    node_log: Option<PathBuf>,
    /// `--stores N`: compare 1 store with N stores holding the corpus (the cross-store dedupe cost).
    stores: Option<usize>,
}

fn opts() -> Result<Opts> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let shared = value("--shared")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("ARCA_SHARED_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    if !shared.join("corpus/public/index.tsv").exists() {
        bail!("no corpus at {} (pass --shared DIR or set ARCA_SHARED_DIR)", shared.display());
    }
    let num = |name: &str, default: usize| -> Result<usize> {
        match value(name) {
            Some(v) => v.parse().with_context(|| format!("{name} {v}")),
            None => Ok(default),
        }
    };
    Ok(Opts {
        shared,
        rounds: num("--rounds", 3)?.max(1),
        peer_timeout: Duration::from_secs(num("--peer-timeout", 600)? as u64),
        limit: value("--limit").map(|v| v.parse()).transpose().context("--limit")?,
        peers: !args.iter().any(|a| a == "--no-peers"),
        node_log: value("--node-log").map(PathBuf::from),
        stores: value("--stores").map(|v| v.parse()).transpose().context("--stores")?,
    })
}

// ----------------------------------------------------------------------------------------------------
// The query set

#[derive(Clone, Copy)]
struct Query {
    kind: &'static str,
    /// Arca quick-search text.
    arca: &'static str,
    /// Message date range (first, last), both inclusive, for Arca's advanced filter.
    dates: Option<(&'static str, &'static str)>,
    /// Oldest first instead of newest first.
    asc: bool,
    notmuch: &'static str,
    mu: &'static str,
    /// The peers' translation is only approximate (they have no leading wildcard: subject regex instead).
    approx: bool,
}

const fn q(kind: &'static str, arca: &'static str, notmuch: &'static str, mu: &'static str) -> Query {
    Query { kind, arca, dates: None, asc: false, notmuch, mu, approx: false }
}

const fn dated(
    arca: &'static str,
    dates: (&'static str, &'static str),
    notmuch: &'static str,
    mu: &'static str,
) -> Query {
    Query { kind: "date range", arca, dates: Some(dates), asc: false, notmuch, mu, approx: false }
}

const fn oldest(arca: &'static str, notmuch: &'static str, mu: &'static str) -> Query {
    Query { kind: "sort by date", arca, dates: None, asc: true, notmuch, mu, approx: false }
}

const fn lead(arca: &'static str, notmuch: &'static str, mu: &'static str) -> Query {
    Query { kind: "leading wildcard", arca, dates: None, asc: false, notmuch, mu, approx: true }
}

/// 36 queries: word, phrase, prefix, leading wildcard, field, exclusion, date range, sort by date.
const QUERIES: &[Query] = &[
    q("word", "linux", "linux", "linux"),
    q("word", "kernel", "kernel", "kernel"),
    q("word", "iscsi", "iscsi", "iscsi"),
    q("word", "viagra", "viagra", "viagra"),
    q("word", "money", "money", "money"),
    q("word", "usrp", "usrp", "usrp"),
    q("phrase", "\"mailing list\"", "\"mailing list\"", "\"mailing list\""),
    q("phrase", "\"click here\"", "\"click here\"", "\"click here\""),
    q("phrase", "\"free software\"", "\"free software\"", "\"free software\""),
    q("phrase", "\"system call\"", "\"system call\"", "\"system call\""),
    q(
        "phrase",
        "\"delivery status notification\"",
        "\"delivery status notification\"",
        "\"delivery status notification\"",
    ),
    q("prefix", "kern*", "kern*", "kern*"),
    q("prefix", "spam*", "spam*", "spam*"),
    q("prefix", "unsubscrib*", "unsubscrib*", "unsubscrib*"),
    q("prefix", "iscs*", "iscs*", "iscs*"),
    q("prefix", "micro*", "micro*", "micro*"),
    lead("*ware", "subject:/ware$/", "subject:/ware$/"),
    lead("*mail", "subject:/mail$/", "subject:/mail$/"),
    lead("*scsi", "subject:/scsi$/", "subject:/scsi$/"),
    lead("*script", "subject:/script$/", "subject:/script$/"),
    q("field", "subject:patch", "subject:patch", "subject:patch"),
    q("field", "from:gmail.com", "from:gmail.com", "from:gmail.com"),
    q(
        "field",
        "to:linux-api@vger.kernel.org",
        "to:linux-api@vger.kernel.org",
        "to:linux-api@vger.kernel.org",
    ),
    q(
        "field",
        "cc:linux-kernel@vger.kernel.org",
        "cc:linux-kernel@vger.kernel.org",
        "cc:linux-kernel@vger.kernel.org",
    ),
    q("field", "subject:money", "subject:money", "subject:money"),
    q("exclusion", "linux -kernel", "linux and not kernel", "linux AND NOT kernel"),
    q("exclusion", "patch -subject:re", "patch and not subject:re", "patch AND NOT subject:re"),
    q("exclusion", "money -viagra", "money and not viagra", "money AND NOT viagra"),
    q("exclusion", "usrp -ettus", "usrp and not ettus", "usrp AND NOT ettus"),
    dated("", ("2002-08-01", "2002-08-31"), "date:2002-08-01..2002-08-31", "date:20020801..20020831"),
    dated(
        "linux",
        ("2020-01-01", "2020-12-31"),
        "linux and date:2020-01-01..2020-12-31",
        "linux AND date:20200101..20201231",
    ),
    dated(
        "patch",
        ("2023-01-01", "2024-12-31"),
        "patch and date:2023-01-01..2024-12-31",
        "patch AND date:20230101..20241231",
    ),
    dated(
        "money",
        ("2002-01-01", "2002-12-31"),
        "money and date:2002-01-01..2002-12-31",
        "money AND date:20020101..20021231",
    ),
    oldest("", "*", ""),
    oldest("linux", "linux", "linux"),
    oldest("subject:patch", "subject:patch", "subject:patch"),
];

/// Hits asked for per query (a result page).
const PAGE: usize = 50;

fn arca_label(q: &Query) -> String {
    let mut s = if q.arca.is_empty() { "(all)".to_string() } else { q.arca.to_string() };
    if let Some((a, b)) = q.dates {
        s.push_str(&format!(" date {a}..{b}"));
    }
    if q.asc {
        s.push_str(" oldest first");
    }
    s
}

// ----------------------------------------------------------------------------------------------------
// Small helpers

/// Percentile by rank (nearest rank) of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Total size of the regular files below `dir` (recursively).
fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn tool_present(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Runs `cmd` with a time limit; answers its wall time and output (killed and an error on timeout).
async fn run_timed(
    mut cmd: tokio::process::Command,
    limit: Duration,
) -> Result<(Duration, std::process::Output)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(out) => Ok((start.elapsed(), out?)),
        Err(_) => bail!("still running after {limit:?} (killed)"),
    }
}

fn stderr_tail(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let text = text.trim();
    let start = text.len().saturating_sub(400);
    text.get(start..).unwrap_or(text).replace('\n', " | ")
}

// ----------------------------------------------------------------------------------------------------
// The corpus

struct Corpus {
    messages: usize,
    raw_bytes: u64,
}

fn corpus(shared: &Path, limit: Option<usize>) -> Result<Corpus> {
    let text = std::fs::read_to_string(shared.join("corpus/public/index.tsv"))?;
    let header: Vec<&str> = text.lines().next().context("empty index.tsv")?.split('\t').collect();
    let col = header.iter().position(|h| *h == "bytes").context("index.tsv has no bytes column")?;
    let mut messages = 0;
    let mut raw_bytes = 0u64;
    for line in text.lines().skip(1).take(limit.unwrap_or(usize::MAX)) {
        let bytes: u64 = line.split('\t').nth(col).and_then(|b| b.parse().ok()).context("bytes column")?;
        messages += 1;
        raw_bytes += bytes;
    }
    Ok(Corpus { messages, raw_bytes })
}

fn unpack(shared: &Path, dest: &Path, format: &str, limit: Option<usize>) -> Result<()> {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(shared.join("corpus/unpack")).arg(dest).args(["--format", format]);
    if let Some(n) = limit {
        cmd.args(["--limit", &n.to_string()]);
    }
    let out = cmd.output().context("running python3 corpus/unpack")?;
    if !out.status.success() {
        bail!("unpacking the corpus as {format} failed: {}", stderr_tail(&out));
    }
    eprintln!("  {}", String::from_utf8_lossy(&out.stdout).trim());
    Ok(())
}

// ----------------------------------------------------------------------------------------------------
// Arca's object directory

#[derive(Default, Clone)]
struct ObjectKinds {
    packs: Vec<u64>,
    index: Vec<u64>,
    manifest: Vec<u64>,
}

/// Every object under `<objects>/tenants/*/shards/*/{packs,index,manifest}` with its size and identity
/// (path, inode, mtime): a rewritten key (the index's `meta.json`) is a new file, hence a new identity.
fn scan_objects(objects: &Path) -> Vec<(String, u64, (PathBuf, u64, i64))> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let list = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default()
    };
    for tenant in list(&objects.join("tenants")) {
        for shard in list(&tenant.join("shards")) {
            for kind in ["packs", "index", "manifest"] {
                let mut stack = vec![shard.join(kind)];
                while let Some(dir) = stack.pop() {
                    for path in list(&dir) {
                        let Ok(m) = std::fs::metadata(&path) else { continue };
                        if m.is_dir() {
                            stack.push(path);
                            continue;
                        }
                        // object_store's local backend writes `<key>#<n>` and renames it into place.
                        if path.file_name().is_some_and(|n| n.to_string_lossy().contains('#')) {
                            continue;
                        }
                        let id = (path.clone(), m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000);
                        out.push((kind.to_string(), m.len(), id));
                    }
                }
            }
        }
    }
    out
}

fn kinds(scan: &[(String, u64, (PathBuf, u64, i64))]) -> ObjectKinds {
    let mut k = ObjectKinds::default();
    for (kind, size, _) in scan {
        match kind.as_str() {
            "packs" => k.packs.push(*size),
            "index" => k.index.push(*size),
            _ => k.manifest.push(*size),
        }
    }
    k
}

/// Watches the object directory every 25 ms until stopped; answers every object version seen, by kind.
fn watch_objects(
    objects: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<BTreeMap<String, usize>> {
    std::thread::spawn(move || {
        let mut seen: HashSet<(PathBuf, u64, i64)> = HashSet::new();
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        loop {
            let last = stop.load(Ordering::SeqCst);
            for (kind, _, id) in scan_objects(&objects) {
                if seen.insert(id) {
                    *by_kind.entry(kind).or_default() += 1;
                }
            }
            if last {
                return by_kind;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    })
}

// ----------------------------------------------------------------------------------------------------
// The node process: pid, CPU time, log

/// The pid of the `arca serve` process whose data directory is `data_dir`.
fn node_pid(data_dir: &Path) -> Option<u32> {
    let needle = format!("ARCA_DATA_DIR={}", data_dir.display());
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        if !cmdline.split(|b| *b == 0).any(|a| a == b"serve") {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        if env.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is field 3, utime 14, stime 15 (1-based over the whole line).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A `Duration` as `{:?}` prints it (`1.5s`, `12.3ms`, `4µs`, `7ns`).
fn parse_debug_duration(v: &str) -> Option<f64> {
    for (suffix, scale) in [("ms", 1e-3), ("µs", 1e-6), ("us", 1e-6), ("ns", 1e-9), ("s", 1.0)] {
        if let Some(num) = v.strip_suffix(suffix) {
            return num.parse::<f64>().ok().map(|n| n * scale);
        }
    }
    None
}

/// The node's object PUT counter from `/metrics`.
async fn object_puts(api: &ApiClient) -> Option<u64> {
    let answer = api.get("/metrics").await.ok()?;
    answer
        .body
        .lines()
        .find_map(|l| l.strip_prefix("arca_object_puts_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// Flush timings from the node log (`arca_shard=debug` prints a `packed` and a `published` line per flush).
struct Flushes {
    count: usize,
    messages: Vec<u64>,
    /// Phase name → total seconds, in order of first appearance.
    phases: Vec<(String, f64)>,
}

fn flush_timings(log: &str) -> Flushes {
    let mut f = Flushes { count: 0, messages: Vec::new(), phases: Vec::new() };
    for line in log.lines() {
        let line = strip_ansi(line);
        let packed = line.contains(" packed");
        if !(packed || line.contains(" published")) || !line.contains("arca_shard") {
            continue;
        }
        if packed {
            f.count += 1;
        }
        for token in line.split_whitespace() {
            let Some((k, v)) = token.split_once('=') else { continue };
            if k == "messages" {
                f.messages.push(v.parse().unwrap_or(0));
            } else if let Some(secs) = parse_debug_duration(v) {
                match f.phases.iter_mut().find(|(name, _)| name == k) {
                    Some((_, total)) => *total += secs,
                    None => f.phases.push((k.to_string(), secs)),
                }
            }
        }
    }
    f
}

// ----------------------------------------------------------------------------------------------------
// Arca

struct SearchStats {
    /// Every measured latency, sorted.
    all: Vec<Duration>,
    /// Per query: total hits and median latency.
    per_query: Vec<Option<(String, Duration)>>,
    /// Per query: every measured latency, sorted.
    samples: Vec<Vec<Duration>>,
    failures: Vec<String>,
}

impl SearchStats {
    fn p(&self, p: f64) -> Duration {
        pct(&self.all, p)
    }

    /// Percentile `p` over the queries of one kind.
    fn kind_p(&self, kind: &str, p: f64) -> Option<Duration> {
        let mut l: Vec<Duration> = QUERIES
            .iter()
            .zip(&self.samples)
            .filter(|(q, _)| q.kind == kind)
            .flat_map(|(_, s)| s.iter().copied())
            .collect();
        l.sort();
        (!l.is_empty()).then(|| pct(&l, p))
    }
}

async fn arca_search(api: &ApiClient, q: &Query) -> Result<(Duration, u64)> {
    let mut body = json!({"q": q.arca, "sort": "date", "asc": q.asc, "limit": PAGE});
    if let Some((first, last)) = q.dates {
        body["filters"] = json!({"messageDate": {"custom": {"first": first, "last": last}}});
    }
    let body = body.to_string();
    let start = Instant::now();
    let answer = api.post_json("/api/data/search", &body).await?;
    let took = start.elapsed();
    let hits = answer["hits"].as_array().map(Vec::len).unwrap_or(0);
    if hits > PAGE {
        bail!("{} hits for a limit of {PAGE}", hits);
    }
    Ok((took, answer["total"].as_u64().unwrap_or(hits as u64)))
}

async fn measure_arca_search(api: &ApiClient, rounds: usize) -> SearchStats {
    let mut per: Vec<Vec<Duration>> = vec![Vec::new(); QUERIES.len()];
    let mut totals: Vec<Option<u64>> = vec![None; QUERIES.len()];
    let mut failures = Vec::new();
    for round in 0..=rounds {
        for (i, q) in QUERIES.iter().enumerate() {
            match arca_search(api, q).await {
                Ok((took, total)) => {
                    totals[i] = Some(total);
                    if round > 0 {
                        per[i].push(took);
                    }
                }
                Err(e) => {
                    if round == 0 {
                        failures.push(format!("{}: {e:#}", arca_label(q)));
                    }
                }
            }
        }
    }
    summarize(per, totals.into_iter().map(|t| t.map(|t| t.to_string())).collect(), failures)
}

fn summarize(mut per: Vec<Vec<Duration>>, totals: Vec<Option<String>>, failures: Vec<String>) -> SearchStats {
    let mut all: Vec<Duration> = per.iter().flatten().copied().collect();
    all.sort();
    per.iter_mut().for_each(|l| l.sort());
    let samples = per.clone();
    let per_query = per
        .into_iter()
        .zip(totals)
        .map(|(mut l, t)| {
            l.sort();
            (!l.is_empty()).then(|| (t.unwrap_or_else(|| "?".into()), pct(&l, 0.5)))
        })
        .collect();
    SearchStats { all, per_query, samples, failures }
}

/// GETs of pack objects per message fetch, counted by tracing the node's `openat` calls (the local
/// object store opens the object file once per GET or ranged GET).
struct FetchGets {
    fetches: usize,
    first_pass: usize,
    second_pass: usize,
    other_objects: usize,
}

async fn measure_fetch_gets(api: &ApiClient, pid: u32, objects: &Path) -> Result<FetchGets> {
    if !tool_present("strace") {
        bail!("strace is not installed");
    }
    // Message ids spread over the archive (and so over its packs): every 5th of the oldest 1,000.
    let body = json!({"q": "", "sort": "date", "asc": true, "limit": 1000}).to_string();
    let answer = api.post_json("/api/data/search", &body).await?;
    let ids: Vec<String> = answer["hits"]
        .as_array()
        .context("hits")?
        .iter()
        .filter_map(|h| h["id"].as_str().map(str::to_string))
        .step_by(5)
        .collect();
    if ids.is_empty() {
        bail!("no messages to fetch");
    }
    let first = traced_fetches(api, pid, objects, &ids, 1).await?;
    let second = traced_fetches(api, pid, objects, &ids, 2).await?;
    Ok(FetchGets {
        fetches: ids.len(),
        first_pass: first.0,
        second_pass: second.0,
        other_objects: first.1 + second.1,
    })
}

/// Fetches `ids` while `strace` watches the node; answers the opens of pack objects and of other objects.
async fn traced_fetches(
    api: &ApiClient,
    pid: u32,
    objects: &Path,
    ids: &[String],
    pass: usize,
) -> Result<(usize, usize)> {
    let trace = std::env::temp_dir().join(format!("arca-bench-strace-{}-{pass}.txt", std::process::id()));
    let mut st = tokio::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat", "-o"])
        .arg(&trace)
        .args(["-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawning strace")?;
    let strace_pid = st.id().context("strace pid")?;
    // Wait until every thread of the node is traced.
    let start = Instant::now();
    loop {
        let traced = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|rd| {
                rd.flatten().all(|t| {
                    std::fs::read_to_string(t.path().join("status"))
                        .map(|s| {
                            s.lines().any(|l| {
                                l.starts_with("TracerPid:") && l.split_whitespace().nth(1) != Some("0")
                            })
                        })
                        .unwrap_or(true)
                })
            })
            .unwrap_or(false);
        if traced {
            break;
        }
        if let Ok(Some(status)) = st.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = st.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            bail!("strace exited ({status}): {}", err.trim());
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("strace did not attach to every thread of the node in 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fetched: Result<()> = async {
        for id in ids {
            api.get_authed(&format!("/api/data/messages/{id}/raw")).await?;
        }
        Ok(())
    }
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = std::process::Command::new("kill").args(["-INT", &strace_pid.to_string()]).status();
    let _ = tokio::time::timeout(Duration::from_secs(10), st.wait()).await;
    fetched?;
    let text = std::fs::read(&trace).unwrap_or_default();
    let _ = std::fs::remove_file(&trace);
    let text = String::from_utf8_lossy(&text);
    let objects = objects.display().to_string();
    let count = |what: &str| {
        text.lines()
            .filter(|l| l.contains("openat(") && l.contains(&objects) && l.contains(what) && !l.contains('#'))
            .count()
    };
    Ok((count("/packs/"), count("/index/") + count("/manifest/")))
}

// ----------------------------------------------------------------------------------------------------
// Peers

struct Peer {
    name: &'static str,
    index_time: Option<Duration>,
    index_bytes: u64,
    search: Option<SearchStats>,
    problem: Option<String>,
}

async fn peer_queries<F>(rounds: usize, mut make: F) -> SearchStats
where
    F: FnMut(&Query, bool) -> tokio::process::Command,
{
    let mut per: Vec<Vec<Duration>> = vec![Vec::new(); QUERIES.len()];
    let mut totals: Vec<Option<String>> = vec![None; QUERIES.len()];
    let mut failures = Vec::new();
    for round in 0..=rounds {
        for (i, q) in QUERIES.iter().enumerate() {
            match run_timed(make(q, false), Duration::from_secs(60)).await {
                Ok((took, out)) if out.status.success() || out.status.code() == Some(4) => {
                    if round > 0 {
                        per[i].push(took);
                    }
                }
                Ok((_, out)) => {
                    if round == 0 {
                        failures.push(format!(
                            "{}: exit {} {}",
                            arca_label(q),
                            out.status,
                            stderr_tail(&out)
                        ));
                    }
                }
                Err(e) => {
                    if round == 0 {
                        failures.push(format!("{}: {e:#}", arca_label(q)));
                    }
                }
            }
        }
    }
    // Totals (not timed): the same query counting every match.
    for (i, q) in QUERIES.iter().enumerate() {
        if let Ok((_, out)) = run_timed(make(q, true), Duration::from_secs(60)).await {
            let text = String::from_utf8_lossy(&out.stdout);
            totals[i] = Some(match text.trim().parse::<u64>() {
                Ok(n) => n.to_string(),
                Err(_) => text.lines().filter(|l| !l.trim().is_empty()).count().to_string(),
            });
        }
    }
    summarize(per, totals, failures)
}

async fn run_notmuch(root: &Path, maildir: &Path, rounds: usize, limit: Duration) -> Peer {
    let mut peer = Peer { name: "notmuch", index_time: None, index_bytes: 0, search: None, problem: None };
    if !tool_present("notmuch") {
        peer.problem = Some("notmuch is not installed (Debian package notmuch)".into());
        return peer;
    }
    let config = root.join("notmuch-config");
    let text = format!(
        "[database]\npath={md}\nmail_root={md}\n[user]\nname=Bench\nprimary_email=bench@example.invalid\n\
         [new]\ntags=\nignore=\n[search]\nexclude_tags=\n[maildir]\nsynchronize_flags=false\n",
        md = maildir.display()
    );
    if let Err(e) = std::fs::write(&config, text) {
        peer.problem = Some(format!("writing the notmuch config: {e}"));
        return peer;
    }
    let cmd = |args: &[&str]| {
        let mut c = tokio::process::Command::new("notmuch");
        c.env("NOTMUCH_CONFIG", &config).env_remove("NOTMUCH_PROFILE").args(args);
        c
    };
    eprintln!("notmuch new (limit {limit:?}) ...");
    match run_timed(cmd(&["new", "--quiet"]), limit).await {
        Ok((took, out)) if out.status.success() => peer.index_time = Some(took),
        Ok((_, out)) => {
            peer.problem = Some(format!("notmuch new failed ({}): {}", out.status, stderr_tail(&out)));
            return peer;
        }
        Err(e) => {
            peer.problem = Some(format!("notmuch new: {e:#}"));
            return peer;
        }
    }
    peer.index_bytes = du(&maildir.join(".notmuch"));
    eprintln!("notmuch searches ...");
    peer.search = Some(
        peer_queries(rounds, |q, count| {
            if count {
                cmd(&["count", q.notmuch])
            } else {
                let sort = if q.asc { "--sort=oldest-first" } else { "--sort=newest-first" };
                cmd(&["search", &format!("--limit={PAGE}"), sort, q.notmuch])
            }
        })
        .await,
    );
    peer
}

async fn run_mu(root: &Path, maildir: &Path, rounds: usize, limit: Duration) -> Peer {
    let mut peer = Peer { name: "mu", index_time: None, index_bytes: 0, search: None, problem: None };
    if !tool_present("mu") {
        peer.problem = Some("mu is not installed (Debian package maildir-utils)".into());
        return peer;
    }
    let home = root.join("muhome");
    let home_arg = format!("--muhome={}", home.display());
    let cmd = |args: &[&str]| {
        let mut c = tokio::process::Command::new("mu");
        c.args(args).arg(&home_arg);
        c
    };
    eprintln!("mu init + mu index (limit {limit:?}) ...");
    let start = Instant::now();
    let init = run_timed(cmd(&["init", &format!("--maildir={}", maildir.display())]), limit).await;
    match init {
        Ok((_, out)) if out.status.success() => {}
        Ok((_, out)) => {
            peer.problem = Some(format!("mu init failed ({}): {}", out.status, stderr_tail(&out)));
            return peer;
        }
        Err(e) => {
            peer.problem = Some(format!("mu init: {e:#}"));
            return peer;
        }
    }
    match run_timed(cmd(&["index", "--quiet"]), limit.saturating_sub(start.elapsed())).await {
        Ok((_, out)) if out.status.success() => peer.index_time = Some(start.elapsed()),
        Ok((_, out)) => {
            peer.problem = Some(format!("mu index failed ({}): {}", out.status, stderr_tail(&out)));
            return peer;
        }
        Err(e) => {
            peer.problem = Some(format!("mu index: {e:#}"));
            return peer;
        }
    }
    peer.index_bytes = du(&home);
    eprintln!("mu searches ...");
    peer.search = Some(
        peer_queries(rounds, |q, count| {
            if count {
                cmd(&["find", "--fields=i", q.mu])
            } else {
                let mut c = cmd(&["find", &format!("--maxnum={PAGE}"), "--sortfield=date"]);
                if !q.asc {
                    c.arg("--reverse");
                }
                c.arg(q.mu);
                c
            }
        })
        .await,
    );
    peer
}

// ----------------------------------------------------------------------------------------------------
// Main

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let opts = opts()?;
    let corpus = corpus(&opts.shared, opts.limit)?;
    if let Some(stores) = opts.stores {
        return compare_stores(&opts, &corpus, stores.max(2)).await;
    }
    let load_start = loadavg();
    eprintln!(
        "corpus: {} messages, {} bytes; arca binary {}",
        corpus.messages,
        corpus.raw_bytes,
        arca_bin().display()
    );

    let cluster = Cluster::start(
        1,
        &[("RUST_LOG", "info,arca_shard=debug,openraft=warn,h2=warn,tower=warn,hyper=warn,rustls=warn")],
    )
    .await?;
    let root = cluster.root().to_path_buf();
    let data_dir = cluster.nodes[0].dir.join("data");
    let objects = data_dir.join("objects");
    let api = cluster.api(0);

    eprintln!("unpacking the corpus (files for Arca, Maildir for the peers) ...");
    let files = root.join("files");
    let maildir = root.join("maildir");
    unpack(&opts.shared, &files, "files", opts.limit)?;
    if opts.peers {
        unpack(&opts.shared, &maildir, "maildir", opts.limit)?;
    }
    let _ = std::process::Command::new("sync").status();

    api.ok("CreateUser", &[("userName", "bench"), ("privileges", "login")]).await?;
    // Administrators read other archives only while archive access is unblocked (CMP-01).
    api.ok(
        "SetComplianceConfiguration",
        &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
    )
    .await?;
    // The import's first concurrent batches create the tenant's current store themselves.

    // ---- import
    eprintln!("arca import eml ({} messages) ...", corpus.messages);
    let pid = node_pid(&data_dir);
    let cpu_before = pid.and_then(cpu_seconds);
    let puts_before = object_puts(&api).await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_objects(objects.clone(), stop.clone());
    let mut import = tokio::process::Command::new(arca_bin());
    import
        .args(["import", "eml"])
        .arg(&files)
        .args(["--user", "bench", "--json", "--insecure"])
        .env("ARCA_HOST", cluster.nodes[0].api_addr())
        .env("ARCA_USER", "admin")
        .env("ARCA_PASSWORD", "admin");
    let (import_time, out) = run_timed(import, Duration::from_secs(3600)).await?;
    let cpu_after = pid.and_then(cpu_seconds);
    if !out.status.success() {
        bail!("arca import failed ({}): {}", out.status, stderr_tail(&out));
    }
    let summary: Value = serde_json::from_slice(&out.stdout).context("arca import --json output")?;
    let archived = summary["archived"].as_u64().unwrap_or(0);
    let duplicates = summary["duplicates"].as_u64().unwrap_or(0);
    let refused = summary["refused"].as_array().map(Vec::len).unwrap_or(0);
    let puts = match (puts_before, object_puts(&api).await) {
        (Some(a), Some(b)) => Some((b - a) as usize),
        _ => None,
    };
    // Let the last scan see everything the import left behind.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let written = watcher.join().unwrap_or_default();
    // Index bundles that segment merges emptied are deleted 10 s after the manifest that drops them;
    // storage is measured after that, as it stays.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let stored = kinds(&scan_objects(&objects));
    eprintln!("  {archived} archived, {duplicates} already present, {refused} refused in {import_time:.2?}");

    // ---- search
    eprintln!("arca searches ({} queries, 1 warm-up + {} rounds) ...", QUERIES.len(), opts.rounds);
    let arca = measure_arca_search(&api, opts.rounds).await;

    // ---- GETs per fetch
    eprintln!("counting object GETs per message fetch (strace) ...");
    let gets = match pid {
        Some(pid) => measure_fetch_gets(&api, pid, &objects).await,
        None => Err(anyhow::anyhow!("the node process was not found")),
    };
    let flushes = flush_timings(&cluster.nodes[0].log());
    // The live index is the node's local index directory: tantivy deletes merged-away segment files there,
    // while the object store keeps every segment file ever uploaded.
    let live_index: u64 = std::fs::read_dir(data_dir.join("shards"))
        .map(|rd| rd.flatten().map(|e| du(&e.path().join("index"))).sum())
        .unwrap_or(0);
    if let Some(path) = &opts.node_log {
        std::fs::write(path, cluster.nodes[0].log())
            .with_context(|| format!("writing {}", path.display()))?;
    }

    // ---- peers
    let (notmuch, mu) = if opts.peers {
        let n = run_notmuch(&root, &maildir, opts.rounds, opts.peer_timeout).await;
        let m = run_mu(&root, &maildir, opts.rounds, opts.peer_timeout).await;
        (Some(n), Some(m))
    } else {
        (None, None)
    };
    let load_end = loadavg();

    // ---- report
    let n = corpus.messages as f64;
    let mb = corpus.raw_bytes as f64 / 1e6;
    let arca_rate = n / import_time.as_secs_f64();
    let peers: Vec<&Peer> = [notmuch.as_ref(), mu.as_ref()].into_iter().flatten().collect();

    println!();
    println!(
        "Arca archive benchmark — public corpus: {} messages, {:.1} MB raw ({} bytes); {} CPU cores; \
         load average {load_start} at start, {load_end} at end",
        corpus.messages,
        mb,
        corpus.raw_bytes,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!();
    println!("Search queries (page of {PAGE}, newest first unless noted; median of {} rounds):", opts.rounds);
    println!(
        "  {:<17} {:<48} {:>7} {:>8} {:>7} {:>8} {:>7} {:>8}",
        "kind", "Arca query", "Arca n", "Arca ms", "nm n", "nm ms", "mu n", "mu ms"
    );
    let cell = |s: Option<&SearchStats>, i: usize| -> (String, String) {
        match s.and_then(|s| s.per_query[i].as_ref()) {
            Some((total, med)) => (total.clone(), format!("{:.1}", ms(*med))),
            None => ("-".into(), "-".into()),
        }
    };
    for (i, q) in QUERIES.iter().enumerate() {
        let (an, am) = cell(Some(&arca), i);
        let (nn, nmm) = cell(notmuch.as_ref().and_then(|p| p.search.as_ref()), i);
        let (un, um) = cell(mu.as_ref().and_then(|p| p.search.as_ref()), i);
        let mark = if q.approx { "≈" } else { " " };
        println!(
            "  {:<17} {:<48} {:>7} {:>8} {:>7}{mark}{:>7} {:>7}{mark}{:>7}",
            q.kind,
            arca_label(q),
            an,
            am,
            nn,
            nmm,
            un,
            um
        );
    }
    println!("  p99 by kind (ms):{}", {
        let mut kinds: Vec<&str> = Vec::new();
        for q in QUERIES {
            if !kinds.contains(&q.kind) {
                kinds.push(q.kind);
            }
        }
        let sys: Vec<(&str, Option<&SearchStats>)> = vec![
            ("Arca", Some(&arca)),
            ("notmuch", notmuch.as_ref().and_then(|p| p.search.as_ref())),
            ("mu", mu.as_ref().and_then(|p| p.search.as_ref())),
        ];
        kinds
            .iter()
            .map(|k| {
                let cells: Vec<String> = sys
                    .iter()
                    .filter_map(|(name, s)| {
                        s.map(|s| {
                            let v = s.kind_p(k, 0.99).map(|d| format!("{:.1}", ms(d))).unwrap_or("-".into());
                            format!("{name} {v}")
                        })
                    })
                    .collect();
                format!("\n    {k:<17} {}", cells.join(", "))
            })
            .collect::<String>()
    });
    println!(
        "  ≈ notmuch and mu have no leading wildcard: they run a regex on the subject instead ({}).",
        QUERIES.iter().filter(|q| q.approx).map(|q| q.notmuch).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  Arca: POST /api/data/search over HTTPS (keep-alive) from this process. Peers: one process per query \
         (`notmuch search --limit={PAGE} --sort=…`, `mu find --maxnum={PAGE} --sortfield=date [--reverse]`), \
         process start included; n = all matches (notmuch count / mu find line count)."
    );
    for s in [Some(("Arca", &arca))]
        .into_iter()
        .chain(peers.iter().map(|p| p.search.as_ref().map(|s| (p.name, s))))
        .flatten()
    {
        for f in &s.1.failures {
            println!("  {} query failed: {f}", s.0);
        }
    }

    println!();
    println!(
        "{:<9} {:>11} {:>8} {:>10} {:>10} {:>13} {:>13} {:>13}",
        "system", "import msg/s", "MB/s", "search p50", "search p99", "import ×", "p99 ÷", "index bytes"
    );
    println!(
        "{:<9} {:>11.0} {:>8.2} {:>8.2}ms {:>8.2}ms {:>13} {:>13} {:>12.1}%",
        "Arca",
        arca_rate,
        mb / import_time.as_secs_f64(),
        ms(arca.p(0.5)),
        ms(arca.p(0.99)),
        "",
        "",
        100.0 * stored.index.iter().sum::<u64>() as f64 / corpus.raw_bytes as f64
    );
    for p in &peers {
        match (p.index_time, &p.search) {
            (Some(t), Some(s)) => {
                let rate = n / t.as_secs_f64();
                println!(
                    "{:<9} {:>11.0} {:>8.2} {:>8.2}ms {:>8.2}ms {:>12.1}× {:>12.2}× {:>12.1}%",
                    p.name,
                    rate,
                    mb / t.as_secs_f64(),
                    ms(s.p(0.5)),
                    ms(s.p(0.99)),
                    arca_rate / rate,
                    ms(arca.p(0.99)) / ms(s.p(0.99)).max(1e-9),
                    100.0 * p.index_bytes as f64 / corpus.raw_bytes as f64
                );
            }
            _ => println!("{:<9} MISS: {}", p.name, p.problem.as_deref().unwrap_or("no result")),
        }
    }
    println!(
        "  import × = Arca msg/s ÷ peer msg/s (higher is better for Arca); p99 ÷ = Arca p99 ÷ peer p99 (below 1 \
         is better for Arca). Index bytes as a share of raw bytes (peers keep the Maildir too)."
    );

    println!();
    println!(
        "Import: {archived} archived, {duplicates} already present, {refused} refused in {:.2} s end to end \
         (`arca import eml … --json`; the CLI returns when every message is acknowledged durable, invariant 1).",
        import_time.as_secs_f64()
    );
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        println!(
            "  node CPU during the import: {:.1} s ({:.2} cores busy on average; the CLI and this process share \
             the same cores).",
            b - a,
            (b - a) / import_time.as_secs_f64()
        );
    }
    if flushes.count > 0 {
        let msgs: u64 = flushes.messages.iter().sum();
        let phases: Vec<String> = flushes
            .phases
            .iter()
            .map(|(k, v)| format!("{k} {v:.2} s ({:.0} ms/flush)", 1000.0 * v / flushes.count as f64))
            .collect();
        let phase = |k: &str| flushes.phases.iter().find(|(n, _)| n == k).map_or(0.0, |(_, v)| *v);
        let packer = phase("staging") + phase("pack");
        println!(
            "  shard flushes: {} ({:.0} messages each on average, {} at most); {}; the packer (staging + pack) \
             was busy {:.0}% and the publisher (index, commit, upload, manifest, Raft) {:.0}% of the import's wall \
             time, overlapping",
            flushes.count,
            msgs as f64 / flushes.count as f64,
            flushes.messages.iter().max().copied().unwrap_or(0),
            phases.join(", "),
            100.0 * packer / import_time.as_secs_f64(),
            100.0 * phase("publish") / import_time.as_secs_f64()
        );
    }
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    let (packs_b, index_b, manifest_b) = (sum(&stored.packs), sum(&stored.index), sum(&stored.manifest));
    let share = |b: u64| 100.0 * b as f64 / corpus.raw_bytes as f64;
    let mut pack_sizes = stored.packs.clone();
    pack_sizes.sort();
    let median_pack = pack_sizes.get(pack_sizes.len() / 2).copied().unwrap_or(0);
    let smallest_full =
        if pack_sizes.len() > 1 { pack_sizes[1] } else { pack_sizes.first().copied().unwrap_or(0) };
    println!(
        "Storage: packs {} bytes ({:.1}% of raw), index {} bytes ({:.1}%), packs + index {:.1}% of raw; \
         manifests {} bytes ({:.2}%).",
        packs_b,
        share(packs_b),
        index_b,
        share(index_b),
        share(packs_b + index_b),
        manifest_b,
        share(manifest_b)
    );
    println!(
        "  index: {} objects in the object store; the live index (the node's local index directory, after \
         segment merges) is {} bytes ({:.1}% of raw); measured 12 s after the import, when bundles that merges \
         emptied have been deleted.",
        stored.index.len(),
        live_index,
        share(live_index)
    );
    println!(
        "  {} packs: smallest {:.1} MiB, median {:.1} MiB, largest {:.1} MiB.",
        pack_sizes.len(),
        pack_sizes.first().copied().unwrap_or(0) as f64 / MIB,
        median_pack as f64 / MIB,
        pack_sizes.last().copied().unwrap_or(0) as f64 / MIB
    );
    let w = |k: &str| written.get(k).copied().unwrap_or(0);
    let seen = w("packs") + w("index") + w("manifest");
    // The node's own PUT counter (`arca_object_puts_total` on /metrics); the object directory watch, polled
    // every 25 ms, only splits it by kind.
    let total_written = puts.unwrap_or(seen);
    let per_k = |c: usize| 1000.0 * c as f64 / n;
    println!(
        "Object PUTs during the import ({}): {total_written}; per 1,000 messages: {:.2} (packs alone {:.2}); \
         by kind, as seen in the object directory: {} packs + {} index bundles + {} manifests; one object per \
         message would be 1,000.",
        if puts.is_some() {
            "the node's arca_object_puts_total"
        } else {
            "objects seen in the object directory"
        },
        per_k(total_written),
        per_k(w("packs")),
        w("packs"),
        w("index"),
        w("manifest"),
    );
    let gets_line = match &gets {
        Ok(g) => format!(
            "GETs per message fetch (counted with strace as the node's opens of pack objects, {} fetches of \
             messages spread over the archive, twice): {:.2} on the first pass (footers not yet cached), \
             {:.2} on the second (footer cached); index/manifest objects opened meanwhile: {}.",
            g.fetches,
            g.first_pass as f64 / g.fetches as f64,
            g.second_pass as f64 / g.fetches as f64,
            g.other_objects
        ),
        Err(e) => format!(
            "GETs per message fetch: not measured ({e:#}); 1 ranged GET when the pack footer is cached \
             (verified by a unit test in shard/src/shard.rs)."
        ),
    };
    println!("{gets_line}");

    // ---- targets
    println!();
    println!("Targets:");
    let target = |ok: Option<bool>, what: String| {
        let v = match ok {
            Some(ok) => verdict(ok),
            None => "MISS",
        };
        println!("  {v}  {what}");
    };
    for (p, factor) in peers.iter().zip([20.0, 10.0]) {
        match p.index_time {
            Some(t) => {
                let ratio = arca_rate / (n / t.as_secs_f64());
                target(
                    Some(ratio >= factor),
                    format!("import ≥ {factor:.0}× {}'s msg/s: {ratio:.1}×", p.name),
                );
            }
            None => target(
                None,
                format!(
                    "import ≥ {factor:.0}× {}'s msg/s: {} failed",
                    p.name,
                    p.problem.as_deref().unwrap_or("")
                ),
            ),
        }
    }
    let p99 = ms(arca.p(0.99));
    target(Some(p99 <= 50.0 && arca.failures.is_empty()), format!("search p99 ≤ 50 ms warm: {p99:.2} ms"));
    for p in &peers {
        match &p.search {
            Some(s) => {
                let theirs = ms(s.p(0.99));
                target(
                    Some(p99 < theirs),
                    format!("search p99 below {}'s: {p99:.2} ms vs {theirs:.2} ms", p.name),
                );
            }
            None => target(
                None,
                format!("search p99 below {}'s: {} failed", p.name, p.problem.as_deref().unwrap_or("")),
            ),
        }
    }
    let share_pi = share(packs_b + index_b);
    target(Some(share_pi <= 45.0), format!("packs + index ≤ 45% of raw bytes: {share_pi:.1}%"));
    target(
        Some(smallest_full as f64 >= 8.0 * MIB),
        format!(
            "packs of at least 8 MiB (all but the last, smallest, pack): second smallest {:.1} MiB",
            smallest_full as f64 / MIB
        ),
    );
    target(
        Some(per_k(total_written) <= 1.0),
        format!(
            "≥ 1,000× fewer PUTs than one object per message (≤ 1 per 1,000 messages): {:.2} objects per 1,000 \
             messages ({:.2} counting packs only)",
            per_k(total_written),
            per_k(w("packs"))
        ),
    );
    match &gets {
        Ok(g) => target(
            Some(g.second_pass == g.fetches),
            format!(
                "one ranged GET to read one message: {:.2} per fetch with the footer cached",
                g.second_pass as f64 / g.fetches as f64
            ),
        ),
        Err(_) => target(None, "one ranged GET to read one message: not measured".to_string()),
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------------------
// Cross-store dedupe: 1 store against N stores holding the corpus

/// Every regular file below `dir`, relative to it, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Splits the files below `files` into `n` consecutive parts (hard links below `dest/part<k>`).
fn split_parts(files: &Path, dest: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let all = files_below(files);
    let per = all.len().div_ceil(n).max(1);
    let mut parts = Vec::new();
    for (k, chunk) in all.chunks(per).enumerate() {
        let part = dest.join(format!("part{k}"));
        for rel in chunk {
            let target = part.join(rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::hard_link(files.join(rel), &target)
                .or_else(|_| std::fs::copy(files.join(rel), &target).map(|_| ()))?;
        }
        parts.push(part);
    }
    Ok(parts)
}

/// One import through the CLI; answers its wall time and (archived, duplicates).
async fn timed_import(cluster: &Cluster, dir: &Path) -> Result<(Duration, u64, u64)> {
    let mut import = tokio::process::Command::new(arca_bin());
    import
        .args(["import", "eml"])
        .arg(dir)
        .args(["--user", "bench", "--json", "--insecure"])
        .env("ARCA_HOST", cluster.nodes[0].api_addr())
        .env("ARCA_USER", "admin")
        .env("ARCA_PASSWORD", "admin");
    let (took, out) = run_timed(import, Duration::from_secs(3600)).await?;
    if !out.status.success() {
        bail!("arca import failed ({}): {}", out.status, stderr_tail(&out));
    }
    let summary: Value = serde_json::from_slice(&out.stdout).context("arca import --json output")?;
    Ok((took, summary["archived"].as_u64().unwrap_or(0), summary["duplicates"].as_u64().unwrap_or(0)))
}

/// What one configuration measured.
struct StoresRun {
    stores: usize,
    import: Duration,
    archived: u64,
    reimport: Duration,
    reimport_duplicates: u64,
    search: SearchStats,
}

/// Imports the parts into a fresh node, each part into a new current store when `one_store_per_part`;
/// then re-imports everything and measures the query set.
async fn stores_run(
    opts: &Opts,
    parts: &[PathBuf],
    all: &Path,
    one_store_per_part: bool,
) -> Result<StoresRun> {
    let cluster = Cluster::start(1, &[("RUST_LOG", "warn")]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "bench"), ("privileges", "login")]).await?;
    api.ok(
        "SetUserPrivilegesOnFolder",
        &[("userName", "admin"), ("folder", "bench"), ("privileges", "read")],
    )
    .await?;
    let mut import = Duration::ZERO;
    let mut archived = 0;
    for (k, part) in parts.iter().enumerate() {
        if one_store_per_part && k > 0 {
            api.ok("CreateStore", &[("name", &format!("part-{k}")), ("requestedState", "current")]).await?;
        }
        let (took, new, _) = timed_import(&cluster, part).await?;
        import += took;
        archived += new;
    }
    let (reimport, again, duplicates) = timed_import(&cluster, all).await?;
    if again != 0 {
        bail!("the re-import archived {again} messages a second time");
    }
    let stores = api.ok("GetStores", &[]).await?.as_array().map(Vec::len).unwrap_or(0);
    let search = measure_arca_search(&api, opts.rounds).await;
    Ok(StoresRun { stores, import, archived, reimport, reimport_duplicates: duplicates, search })
}

async fn compare_stores(opts: &Opts, corpus: &Corpus, n: usize) -> Result<()> {
    let root = tempfile::tempdir()?;
    let files = root.path().join("files");
    eprintln!("unpacking the corpus ...");
    unpack(&opts.shared, &files, "files", opts.limit)?;
    let parts = split_parts(&files, &root.path().join("parts"), n)?;
    eprintln!("1 store: {} parts ...", parts.len());
    let one = stores_run(opts, &parts, &files, false).await?;
    eprintln!("{n} stores: one new current store per part ...");
    let many = stores_run(opts, &parts, &files, true).await?;
    let rate = |r: &StoresRun| corpus.messages as f64 / r.import.as_secs_f64();
    let rerate = |r: &StoresRun| corpus.messages as f64 / r.reimport.as_secs_f64();
    println!();
    println!(
        "Cross-store dedupe — public corpus: {} messages, {:.1} MB raw, imported in {} parts; {} CPU cores; load {}",
        corpus.messages,
        corpus.raw_bytes as f64 / 1e6,
        parts.len(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        loadavg()
    );
    println!(
        "  {:<10} {:>8} {:>9} {:>10} {:>12} {:>12} {:>11} {:>11}",
        "stores",
        "archived",
        "import s",
        "import/s",
        "re-import s",
        "re-import/s",
        "search p50",
        "search p99"
    );
    for r in [&one, &many] {
        println!(
            "  {:<10} {:>8} {:>9.2} {:>10.0} {:>12.2} {:>12.0} {:>8.2} ms {:>8.2} ms",
            r.stores,
            r.archived,
            r.import.as_secs_f64(),
            rate(r),
            r.reimport.as_secs_f64(),
            rerate(r),
            ms(r.search.p(0.5)),
            ms(r.search.p(0.99))
        );
    }
    println!(
        "  {:<10} {:>8} {:>9} {:>9.3}x {:>12} {:>11.3}x {:>10.3}x {:>10.3}x",
        format!("{}/{}", many.stores, one.stores),
        "",
        "",
        rate(&many) / rate(&one),
        "",
        rerate(&many) / rerate(&one),
        ms(many.search.p(0.5)) / ms(one.search.p(0.5)).max(1e-9),
        ms(many.search.p(0.99)) / ms(one.search.p(0.99)).max(1e-9)
    );
    println!(
        "  re-import: {} and {} already present (0 archived a second time); search failures: {} and {}",
        one.reimport_duplicates,
        many.reimport_duplicates,
        one.search.failures.len(),
        many.search.failures.len()
    );
    let import_ok = rate(&many) >= 0.95 * rate(&one);
    println!(
        "Target: import with {} stores within 5% of 1 store: {} ({:+.1}%)",
        many.stores,
        verdict(import_ok),
        (rate(&many) / rate(&one) - 1.0) * 100.0
    );
    Ok(())
}
