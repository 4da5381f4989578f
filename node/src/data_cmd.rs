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
    /// The archive (user) to archive into.
    #[arg(
        long = "user",
        id = "archive_user",
        required_unless_present = "route_by_address",
        conflicts_with = "route_by_address"
    )]
    pub archive_user: Option<String>,
    /// Route each message to every user whose e-mail address is its sender or a recipient.
    #[arg(long)]
    pub route_by_address: bool,
    /// With --route-by-address: what to do with messages of no known address: skip, fail, user:<name>.
    #[arg(long, default_value = "skip", requires = "route_by_address")]
    pub unknown: String,
    /// Folder below the archive's top-level folder; source folders go below it.
    #[arg(long, default_value = "")]
    pub folder: String,
}

/// Messages per upload request, and bytes.
const BATCH_MESSAGES: usize = 1000;
const BATCH_BYTES: usize = 16 * 1024 * 1024;

fn join_folder(base: &str, sub: &[String]) -> String {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    parts.extend(sub.iter().map(String::as_str).filter(|p| !p.is_empty()));
    parts.join("/")
}

struct Summary {
    archived: u64,
    duplicates: u64,
    refused: Vec<Value>,
    bytes: u64,
    started: Instant,
}

impl Summary {
    fn progress(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let done = self.archived + self.duplicates + self.refused.len() as u64;
        eprint!(
            "\r{done} messages ({} archived, {} already present, {} refused), {:.0} messages/s, {:.1} MB/s   ",
            self.archived,
            self.duplicates,
            self.refused.len(),
            done as f64 / secs,
            self.bytes as f64 / secs / 1e6
        );
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

/// Batches uploaded at the same time, so that the server can group them into fewer, larger flushes.
const IN_FLIGHT: usize = 6;

/// Runs `arca import`.
pub async fn import(opts: &ClientOptions, args: ImportArgs) -> Result<()> {
    let client = Arc::new(Client::new(opts)?);
    let route = match &args.archive_user {
        Some(user) => format!("/api/data/archives/{}/batch", crate::client::urlencode(user)),
        None => format!("/api/data/routed?unknown={}", crate::client::urlencode(&args.unknown)),
    };
    let mut s =
        Summary { archived: 0, duplicates: 0, refused: Vec::new(), bytes: 0, started: Instant::now() };
    let mut batch: Vec<(String, String, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0usize;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !opts.json;
    let mut in_flight = tokio::task::JoinSet::new();
    for path in &args.paths {
        let items: Box<dyn Iterator<Item = Result<SourceItem, arca_ingest::ReadError>>> = match args.format {
            Format::Eml => Box::new(EmlReader::new(path, EmlOptions::default())),
            Format::Maildir => Box::new(MaildirReader::new(path, MaildirOptions::default())),
            Format::Mbox => Box::new(MboxTree::new(path, MboxOptions::default())),
        };
        for item in items {
            match item {
                Ok(SourceItem::Message(m)) => {
                    batch_bytes += m.raw.len();
                    batch.push((m.source, join_folder(&args.folder, &m.folder), m.raw));
                }
                Ok(SourceItem::Refused { source, refused, .. }) => {
                    s.refused.push(json!({"source": source, "reason": refused.reason}));
                }
                Err(e) => {
                    s.refused.push(json!({"source": path.display().to_string(), "reason": e.to_string()}))
                }
            }
            if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
                if in_flight.len() >= IN_FLIGHT
                    && let Some(done) = in_flight.join_next().await
                {
                    let (sources, results, bytes) = done??;
                    s.account(sources, results, bytes);
                    if interactive {
                        s.progress();
                    }
                }
                in_flight.spawn(send(client.clone(), route.clone(), std::mem::take(&mut batch)));
                batch_bytes = 0;
            }
        }
    }
    if !batch.is_empty() {
        in_flight.spawn(send(client.clone(), route.clone(), batch));
    }
    while let Some(done) = in_flight.join_next().await {
        let (sources, results, bytes) = done??;
        s.account(sources, results, bytes);
    }
    if interactive {
        s.progress();
        eprintln!();
    }
    if opts.json {
        println!("{}", json!({"archived": s.archived, "duplicates": s.duplicates, "refused": s.refused}));
    } else {
        let secs = s.started.elapsed().as_secs_f64().max(0.001);
        println!(
            "archived {}, already present {}, refused {} in {:.1} s ({:.0} messages/s)",
            s.archived,
            s.duplicates,
            s.refused.len(),
            secs,
            (s.archived + s.duplicates) as f64 / secs
        );
        for r in &s.refused {
            println!(
                "  refused {}: {}",
                r["source"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or("?")
            );
        }
    }
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
