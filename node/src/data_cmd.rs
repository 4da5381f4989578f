//! `arca import`, `arca search`, `arca fetch`: getting mail in and out through a node's data API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::client::{Client, ClientOptions};
use arca_ingest::{EmlOptions, EmlReader, MaildirOptions, MaildirReader, MboxOptions, MboxTree, SourceItem};

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
}

/// One message to upload: its source (for the summary), folder and bytes.
pub(crate) type Upload = (String, String, Vec<u8>);

/// Messages per upload request, and bytes.
pub(crate) const BATCH_MESSAGES: usize = 1000;
pub(crate) const BATCH_BYTES: usize = 16 * 1024 * 1024;

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
    refused: Vec<Value>,
    bytes: u64,
    /// Messages read from the sources so far (uploaded or waiting to be).
    pub(crate) read: u64,
    started: Instant,
    /// Progress is shown (stderr is a terminal and the output is not JSON).
    interactive: bool,
    last_progress: Option<Instant>,
}

/// Least time between two progress lines.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl Summary {
    pub(crate) fn new(opts: &ClientOptions) -> Summary {
        Summary {
            archived: 0,
            duplicates: 0,
            refused: Vec::new(),
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
            "\r{} read, {done} done ({} archived, {} already present, {} refused), {:.0} messages/s, {:.1} MB/s   ",
            self.read.max(done),
            self.archived,
            self.duplicates,
            self.refused.len(),
            done as f64 / secs,
            self.bytes as f64 / secs / 1e6
        );
    }

    pub(crate) fn refuse(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        self.refused.push(json!({"source": source.into(), "reason": reason.into()}));
    }

    /// Prints the final summary (`--json`: `{"archived","duplicates","refused":[{source,reason}]}`).
    pub(crate) fn print(&mut self, json_output: bool) {
        if self.interactive {
            self.progress(true);
            eprintln!();
        }
        if json_output {
            println!(
                "{}",
                json!({"archived": self.archived, "duplicates": self.duplicates, "refused": self.refused})
            );
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        println!(
            "archived {}, already present {}, refused {} in {:.1} s ({:.0} messages/s)",
            self.archived,
            self.duplicates,
            self.refused.len(),
            secs,
            (self.archived + self.duplicates) as f64 / secs
        );
        for r in &self.refused {
            println!(
                "  refused {}: {}",
                r["source"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or("?")
            );
        }
    }
}

/// Uploads one batch; answers the sources with the server's per-message results.
async fn send(
    client: Arc<Client>,
    route: String,
    batch: Vec<(String, String, Vec<u8>)>,
) -> Result<(Vec<String>, Vec<Value>, u64)> {
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
    let answer = client.request_bytes(&route, body).await?;
    let results = answer["results"].as_array().cloned().context("the server's answer lists no results")?;
    if results.len() != sources.len() {
        bail!("the server answered {} results for {} messages", results.len(), sources.len());
    }
    Ok((sources, results, bytes))
}

impl Summary {
    fn account(&mut self, sources: Vec<String>, results: Vec<Value>, bytes: u64) {
        self.bytes += bytes;
        for (source, r) in sources.into_iter().zip(results) {
            match r["status"].as_str() {
                Some("archived") => self.archived += 1,
                Some("present") => self.duplicates += 1,
                _ => self.refused.push(json!({"source": source, "reason": r["reason"]})),
            }
        }
    }
}

/// Batches uploaded at the same time, so that the server can group them into fewer, larger flushes
/// (up to its 32 MiB flush size while it publishes the previous group).
const IN_FLIGHT: usize = 12;

/// Uploads in flight, at most [`IN_FLIGHT`]; results are accounted as they come back.
pub(crate) type InFlight = tokio::task::JoinSet<Result<(Vec<String>, Vec<Value>, u64)>>;

/// Starts one batch upload, first waiting for one to finish when [`IN_FLIGHT`] are under way.
pub(crate) async fn submit(
    in_flight: &mut InFlight,
    s: &mut Summary,
    client: &Arc<Client>,
    route: String,
    batch: Vec<(String, String, Vec<u8>)>,
) -> Result<()> {
    if in_flight.len() >= IN_FLIGHT
        && let Some(done) = in_flight.join_next().await
    {
        let (sources, results, bytes) = done??;
        s.account(sources, results, bytes);
        s.progress(false);
    }
    in_flight.spawn(send(client.clone(), route, batch));
    Ok(())
}

/// Waits for every upload in flight.
pub(crate) async fn drain(in_flight: &mut InFlight, s: &mut Summary) -> Result<()> {
    while let Some(done) = in_flight.join_next().await {
        let (sources, results, bytes) = done??;
        s.account(sources, results, bytes);
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

/// Runs `arca import`.
pub async fn import(opts: &ClientOptions, args: ImportArgs) -> Result<()> {
    if args.reimport {
        return crate::reimport::run(opts, args).await;
    }
    let client = Arc::new(Client::new(opts)?);
    let route = match &args.archive_user {
        Some(user) => format!("/api/data/archives/{}/batch", crate::client::urlencode(user)),
        None => format!("/api/data/routed?unknown={}", crate::client::urlencode(&args.unknown)),
    };
    let mut s = Summary::new(opts);
    let mut batch: Vec<(String, String, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut in_flight = InFlight::new();
    for path in &args.paths {
        for item in read_items(args.format, path) {
            match item {
                Ok(SourceItem::Message(m)) => {
                    s.read += 1;
                    batch_bytes += m.raw.len();
                    batch.push((m.source, join_folder(&args.folder, &m.folder), m.raw));
                }
                Ok(SourceItem::Refused { source, refused, .. }) => s.refuse(source, refused.reason),
                Err(e) => s.refuse(path.display().to_string(), e.to_string()),
            }
            if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
                submit(&mut in_flight, &mut s, &client, route.clone(), std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            s.progress(false);
        }
    }
    if !batch.is_empty() {
        submit(&mut in_flight, &mut s, &client, route.clone(), batch).await?;
    }
    drain(&mut in_flight, &mut s).await?;
    s.print(opts.json);
    Ok(())
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
