//! `arca import`, `arca search`, `arca fetch`: getting mail in and out through a node's data API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::client::{Client, ClientOptions};
use arca_ingest::{
    EmlOptions, EmlReader, MaildirOptions, MaildirReader, MboxOptions, MboxTree, ReadError, SourceItem,
    SourceMessage, check_mail,
};

/// Formats `arca import` reads.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Mbox,
    Eml,
    Maildir,
}

/// Arguments of `arca import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    pub format: Format,
    /// Files or directories to read.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The archive (user) to archive into; with --reimport, only for messages without X-Arca lines.
    #[arg(
        long = "user",
        id = "archive_user",
        required_unless_present_any = ["route_by_address", "reimport"],
        conflicts_with = "route_by_address"
    )]
    pub archive_user: Option<String>,
    /// Route each message to every user whose e-mail address is its sender or a recipient.
    #[arg(long)]
    pub route_by_address: bool,
    /// Re-import an Arca export: each message goes back to the archive and folder its X-Arca-* lines
    /// name (created when missing; administrators only), after its SHA-256 is checked.
    #[arg(long, conflicts_with = "route_by_address")]
    pub reimport: bool,
    /// With --route-by-address: what to do with messages of no known address: skip, fail, user:<name>.
    #[arg(long, default_value = "skip", requires = "route_by_address")]
    pub unknown: String,
    /// Folder below the archive's top-level folder; source folders go below it.
    #[arg(long, default_value = "")]
    pub folder: String,
    /// Attempts per batch upload before the import gives up; after a failure the next attempt waits
    /// (2, 6, 18, then 30 s) and goes to the next node given with --h.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub attempts: u32,
}

/// One message to upload: its source (for the summary), folder and bytes.
pub(crate) type Upload = (String, String, Vec<u8>);

/// Messages per upload request, and bytes.
pub(crate) const BATCH_MESSAGES: usize = 1000;
pub(crate) const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Longest wait between two attempts of a batch upload.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The wait after failed attempt `attempt` (from 1): 2, 6, 18, then 30 s, so that the default 5
/// attempts span about a minute (a node restarting, a store taken over).
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(2u64.saturating_mul(3u64.saturating_pow(attempt.saturating_sub(1)))).min(MAX_BACKOFF)
}

/// `base/sub…` without empty segments.
pub(crate) fn join_folder(base: &str, sub: &[String]) -> String {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    parts.extend(sub.iter().map(String::as_str).filter(|p| !p.is_empty()));
    parts.join("/")
}

/// What an import has done so far, and its progress line.
pub(crate) struct Summary {
    archived: u64,
    duplicates: u64,
    /// Messages (or files) refused with a reason: over a limit, not mail, not an MBOX, … .
    refused: Vec<Value>,
    /// Messages `--route-by-address --unknown skip` left out, as asked.
    skipped: Vec<Value>,
    /// Messages whose upload failed after every attempt, and paths that could not be read or held no
    /// mail: nothing of them is known to be archived.
    failed: Vec<Value>,
    /// Batch uploads attempted again after a failure.
    retries: u64,
    /// The import stopped early (a batch failed for good): sources after it were not read.
    stopped: bool,
    bytes: u64,
    /// Messages read from the sources so far (uploaded or waiting to be).
    pub(crate) read: u64,
    started: Instant,
    /// Progress is shown (stderr is a terminal and the output is not JSON).
    interactive: bool,
    last_progress: Option<Instant>,
}

/// Least time between two progress lines.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

impl Summary {
    pub(crate) fn new(opts: &ClientOptions) -> Summary {
        Summary {
            archived: 0,
            duplicates: 0,
            refused: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
            retries: 0,
            stopped: false,
            bytes: 0,
            read: 0,
            started: Instant::now(),
            interactive: std::io::IsTerminal::is_terminal(&std::io::stderr()) && !opts.json,
            last_progress: None,
        }
    }

    /// Rewrites the progress line on the terminal (messages/s and MB/s), at most every
    /// [`PROGRESS_EVERY`] unless `force`; silent when stderr is not a terminal.
    pub(crate) fn progress(&mut self, force: bool) {
        if !self.interactive || (!force && self.last_progress.is_some_and(|t| t.elapsed() < PROGRESS_EVERY)) {
            return;
        }
        self.last_progress = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let done = self.archived + self.duplicates + self.refused.len() as u64;
        eprint!(
            "\r{} read, {done} done ({} archived, {} already present, {} refused, {} failed), {:.0} messages/s, {:.1} MB/s   ",
            self.read.max(done),
            self.archived,
            self.duplicates,
            self.refused.len(),
            self.failed.len(),
            done as f64 / secs,
            self.bytes as f64 / secs / 1e6
        );
    }

    pub(crate) fn refuse(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        self.refused.push(json!({"source": source.into(), "reason": reason.into()}));
    }

    /// Records a message or path of which nothing is known to be archived.
    pub(crate) fn fail(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        self.failed.push(json!({"source": source.into(), "reason": reason.into()}));
    }

    /// True once a batch failed for good: the import reads no further source.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Records the messages of a batch never sent because the import stopped.
    pub(crate) fn not_sent(&mut self, batch: Vec<Upload>) {
        for (source, _, _) in batch {
            self.fail(source, "not uploaded: the import stopped after a batch failed");
        }
    }

    /// Prints the final summary, also after a failure (`--json`: `{"archived","duplicates","refused",
    /// "skipped","failed":[{source,reason}],"retries","complete"}`).
    pub(crate) fn print(&mut self, json_output: bool) {
        if self.interactive {
            self.progress(true);
            eprintln!();
        }
        if json_output {
            println!(
                "{}",
                json!({"archived": self.archived, "duplicates": self.duplicates, "refused": self.refused,
                    "skipped": self.skipped, "failed": self.failed, "retries": self.retries,
                    "complete": !self.stopped})
            );
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        println!(
            "archived {}, already present {}, refused {}, failed {}, skipped {} in {:.1} s ({:.0} messages/s)",
            self.archived,
            self.duplicates,
            self.refused.len(),
            self.failed.len(),
            self.skipped.len(),
            secs,
            (self.archived + self.duplicates) as f64 / secs
        );
        for (what, list) in [("refused", &self.refused), ("failed", &self.failed), ("skipped", &self.skipped)]
        {
            for r in list {
                println!(
                    "  {what} {}: {}",
                    r["source"].as_str().unwrap_or("?"),
                    r["reason"].as_str().unwrap_or("?")
                );
            }
        }
        if self.stopped {
            println!("  the import stopped after a batch failed: sources after it were not read");
        }
    }

    /// `Ok` when everything read was archived or already present (or skipped as asked); else an error
    /// saying what was not, so that the command exits non-zero.
    pub(crate) fn outcome(&self) -> Result<()> {
        if self.refused.is_empty() && self.failed.is_empty() {
            return Ok(());
        }
        let first = self.failed.first().or(self.refused.first()).map_or(String::new(), |r| {
            format!(
                "; first: {}: {}",
                r["source"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or("?")
            )
        });
        bail!(
            "import incomplete: {} refused, {} failed{}{first}",
            self.refused.len(),
            self.failed.len(),
            if self.stopped { ", stopped early" } else { "" }
        )
    }
}

/// One batch upload's result: its sources and bytes, the server's per-message answers or why it
/// failed after every attempt, and how many attempts were repeated.
pub(crate) struct Sent {
    sources: Vec<String>,
    bytes: u64,
    retries: u64,
    outcome: Result<Vec<Value>, String>,
}

/// Uploads one batch, retrying failures that another attempt may not meet up to `attempts` times
/// with [`backoff`], through the next node given after each (dedupe makes a repeated batch safe:
/// what the failed attempt archived comes back as present).
async fn send(client: Arc<Client>, route: String, batch: Vec<Upload>, attempts: u32) -> Sent {
    let mut body = Vec::new();
    let mut bytes = 0u64;
    let mut sources = Vec::with_capacity(batch.len());
    for (source, folder, raw) in batch {
        body.extend((folder.len() as u32).to_le_bytes());
        body.extend(folder.as_bytes());
        body.extend((raw.len() as u32).to_le_bytes());
        body.extend(&raw);
        bytes += raw.len() as u64;
        sources.push(source);
    }
    let mut attempt = 1;
    let outcome = loop {
        match client.request_bytes(&route, body.clone()).await {
            Ok(answer) => {
                break match answer["results"].as_array() {
                    Some(results) if results.len() == sources.len() => Ok(results.clone()),
                    Some(results) => Err(format!(
                        "the server answered {} results for {} messages",
                        results.len(),
                        sources.len()
                    )),
                    None => Err("the server's answer lists no results".to_string()),
                };
            }
            Err(e) if e.retryable() && attempt < attempts => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => break Err(format!("{e} (attempt {attempt} of {attempts})")),
        }
    };
    Sent { sources, bytes, retries: u64::from(attempt - 1), outcome }
}

impl Summary {
    fn account(&mut self, sent: Sent) {
        self.bytes += sent.bytes;
        self.retries += sent.retries;
        let results = match sent.outcome {
            Ok(results) => results,
            Err(reason) => {
                for source in sent.sources {
                    self.fail(source, reason.clone());
                }
                self.stopped = true;
                return;
            }
        };
        for (source, r) in sent.sources.into_iter().zip(results) {
            match r["status"].as_str() {
                Some("archived") => self.archived += 1,
                Some("present") => self.duplicates += 1,
                Some("skipped") => self.skipped.push(json!({"source": source, "reason": r["reason"]})),
                _ => {
                    // A routed message names its reasons per copy.
                    let reason = match &r["reason"] {
                        Value::Null => r["copies"]
                            .as_array()
                            .and_then(|c| c.iter().find_map(|x| x["reason"].as_str()))
                            .map_or(Value::Null, |x| Value::String(x.to_string())),
                        reason => reason.clone(),
                    };
                    self.refused.push(json!({"source": source, "reason": reason}))
                }
            }
        }
    }
}

/// Batches uploaded at the same time, so that the server can group them into fewer, larger flushes
/// (up to its 32 MiB flush size while it publishes the previous group).
const IN_FLIGHT: usize = 12;

/// Uploads in flight, at most [`IN_FLIGHT`]; results are accounted as they come back.
pub(crate) type InFlight = tokio::task::JoinSet<Sent>;

/// Starts one batch upload, first waiting for one to finish when [`IN_FLIGHT`] are under way.
pub(crate) async fn submit(
    in_flight: &mut InFlight,
    s: &mut Summary,
    client: &Arc<Client>,
    route: String,
    batch: Vec<Upload>,
    attempts: u32,
) -> Result<()> {
    if in_flight.len() >= IN_FLIGHT
        && let Some(done) = in_flight.join_next().await
    {
        s.account(done.context("an upload task failed")?);
        s.progress(false);
    }
    in_flight.spawn(send(client.clone(), route, batch, attempts));
    Ok(())
}

/// Waits for every upload in flight.
pub(crate) async fn drain(in_flight: &mut InFlight, s: &mut Summary) -> Result<()> {
    while let Some(done) = in_flight.join_next().await {
        s.account(done.context("an upload task failed")?);
        s.progress(false);
    }
    Ok(())
}

/// The messages below `path` in `format`.
pub(crate) fn read_items(
    format: Format,
    path: &std::path::Path,
) -> Box<dyn Iterator<Item = Result<SourceItem, arca_ingest::ReadError>>> {
    match format {
        Format::Eml => Box::new(EmlReader::new(path, EmlOptions::default())),
        Format::Maildir => Box::new(MaildirReader::new(path, MaildirOptions::default())),
        Format::Mbox => Box::new(MboxTree::new(path, MboxOptions::default())),
    }
}

/// True when the source names what it holds as messages: every source but a file given by name to
/// `import eml` without a message extension (a `README.md`, a `picture.png`), whose content must then
/// start like mail ([`arca_ingest::check_mail`]). What a source names as a message is archived even
/// when it cannot be parsed (as raw bytes, DESIGN invariant 7).
pub(crate) fn named_as_mail(format: Format, path: &Path) -> bool {
    let extensions = EmlOptions::default().extensions;
    !matches!(format, Format::Eml)
        || !path.is_file()
        || path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(&e.to_string_lossy())))
}

/// Why a path yielded nothing to import.
pub(crate) fn no_mail(format: Format) -> &'static str {
    match format {
        Format::Eml => "holds no mail: no .eml file found",
        Format::Mbox => "holds no mail: no MBOX file (.mbox, .mbx) or no message in it",
        Format::Maildir => "holds no mail: no message file in a cur/ or new/ directory",
    }
}

/// Sorts one item a reader yielded: a message to upload is returned; a refusal, a file that is not an
/// MBOX or not mail, and an unreadable path are recorded in the summary.
pub(crate) fn take_message(
    s: &mut Summary,
    path: &Path,
    named_as_mail: bool,
    item: Result<SourceItem, ReadError>,
) -> Option<SourceMessage> {
    match item {
        Ok(SourceItem::Message(m)) => {
            if !named_as_mail && let Err(e) = check_mail(&m.raw) {
                s.refuse(m.source, e.to_string());
                return None;
            }
            s.read += 1;
            Some(m)
        }
        Ok(SourceItem::Refused { source, refused, .. }) => {
            s.refuse(source, refused.reason);
            None
        }
        Err(e @ ReadError::NotMbox { .. }) => {
            s.refuse(path.display().to_string(), e.to_string());
            None
        }
        Err(e @ ReadError::Io { .. }) => {
            s.fail(path.display().to_string(), e.to_string());
            None
        }
    }
}

/// Runs `arca import`; exits non-zero (an `Err`) when anything was refused or failed, after printing
/// the summary.
pub async fn import(opts: &ClientOptions, args: ImportArgs) -> Result<()> {
    if args.reimport {
        return crate::reimport::run(opts, args).await;
    }
    let client = Arc::new(Client::new(opts)?);
    // Every message the readers yield is named as mail by its source; files that are not were checked
    // here (`named_as_mail`), so the server archives what it cannot parse as raw bytes.
    let route = match &args.archive_user {
        Some(user) => format!("/api/data/archives/{}/batch?notMail=archive", crate::client::urlencode(user)),
        None => {
            format!("/api/data/routed?unknown={}&notMail=archive", crate::client::urlencode(&args.unknown))
        }
    };
    let mut s = Summary::new(opts);
    let mut batch: Vec<Upload> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut in_flight = InFlight::new();
    'paths: for path in &args.paths {
        let named = named_as_mail(args.format, path);
        let mut found = false;
        for item in read_items(args.format, path) {
            found = true;
            if let Some(m) = take_message(&mut s, path, named, item) {
                batch_bytes += m.raw.len();
                batch.push((m.source, join_folder(&args.folder, &m.folder), m.raw));
            }
            if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
                let full = std::mem::take(&mut batch);
                submit(&mut in_flight, &mut s, &client, route.clone(), full, args.attempts).await?;
                batch_bytes = 0;
            }
            s.progress(false);
            if s.stopped() {
                break 'paths;
            }
        }
        if !found {
            s.fail(path.display().to_string(), no_mail(args.format));
        }
    }
    if s.stopped() {
        s.not_sent(batch);
    } else if !batch.is_empty() {
        submit(&mut in_flight, &mut s, &client, route.clone(), batch, args.attempts).await?;
    }
    drain(&mut in_flight, &mut s).await?;
    s.print(opts.json);
    s.outcome()
}

/// Arguments of `arca search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The quick-search query (empty: every message).
    #[arg(default_value = "")]
    pub query: String,
    #[arg(long)]
    pub archive: Option<String>,
    #[arg(long, value_parser = ["date", "party", "subject"], default_value = "date")]
    pub sort: String,
    #[arg(long)]
    pub asc: bool,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// Runs `arca search`.
pub async fn search(opts: &ClientOptions, args: SearchArgs) -> Result<()> {
    let client = Client::new(opts)?;
    let body = json!({"q": args.query, "archive": args.archive, "sort": args.sort, "asc": args.asc, "limit": args.limit});
    let answer = client.request_json("/api/data/search", &body).await?;
    if opts.json {
        let hits: Vec<Value> = answer["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| json!({"id": h["id"], "messageId": Value::Null, "subject": h["subject"], "from": h["from"], "date": h["date"]}))
            .collect();
        println!(
            "{}",
            json!({"total": answer["total"], "hits": hits, "missingShards": answer["missingShards"]})
        );
        return Ok(());
    }
    println!("{} messages", answer["total"]);
    for h in answer["hits"].as_array().into_iter().flatten() {
        println!(
            "{:<14} {:<30} {}",
            h["id"].as_str().unwrap_or(""),
            h["from"].as_str().unwrap_or("").chars().take(30).collect::<String>(),
            h["subject"].as_str().unwrap_or("")
        );
    }
    if let Some(missing) = answer["missingShards"].as_array().filter(|m| !m.is_empty()) {
        println!("warning: these stores did not answer, results may be incomplete: {missing:?}");
    }
    Ok(())
}

/// Arguments of `arca fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Message id `<store>:<number>`.
    pub id: String,
    /// Print the exact original bytes.
    #[arg(long)]
    pub raw: bool,
}

/// Runs `arca fetch`.
pub async fn fetch(opts: &ClientOptions, args: FetchArgs) -> Result<()> {
    let client = Client::new(opts)?;
    let bytes = client.get_bytes(&format!("/api/data/messages/{}/raw", args.id)).await?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if args.raw {
        out.write_all(&bytes)?;
    } else {
        out.write_all(String::from_utf8_lossy(&bytes).as_bytes())?;
    }
    Ok(())
}
