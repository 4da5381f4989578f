//! `arca export`: every message a search finds, written as EML files or MBOX, with the `X-Arca-*`
//! lines that let `arca import --reimport` put each back into its archive and folder (EXP-02).
//!
//! Layout (documented in the README):
//! - EML: one file per message named `<sha256>.eml`, where `<sha256>` is the SHA-256 of the file's
//!   exact bytes (with `--plain`, the original message's hash; else the hash of the X-Arca lines plus
//!   the original). `sha256sum` of a file thus equals its name; an existing file of that name is
//!   skipped (update semantics), everything else is written through a temporary file and renamed.
//! - MBOX (mboxrd): `arca-export.mbox`, or with `--keep-structure` one file per folder,
//!   `<archive>.mbox` for the top level and `<archive>/<folder path>.mbox` below it. MBOX files are
//!   written whole on every run (temporary file, then rename).
//! - With `--keep-structure`, EML files go to `<archive>/<folder path>/`. Directory and file names are
//!   the folder names with control characters, `%`, `/`, `\` and a leading `.` percent-encoded, and
//!   names over 200 bytes shortened with a hash suffix.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::client::{Client, ClientOptions};
use arca_ingest::arca_headers::{header_lines, sha256};

/// File formats of `arca export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Eml,
    Mbox,
}

/// Arguments of `arca export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The quick-search query choosing the messages ('' = every message the user may read).
    pub query: String,
    /// Target directory (created when missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Only this archive.
    #[arg(long)]
    pub archive: Option<String>,
    #[arg(long, value_enum, default_value = "eml")]
    pub format: ExportFormat,
    /// Write the original bytes only, without the X-Arca-* lines (not re-importable into its folders).
    #[arg(long)]
    pub plain: bool,
    /// One subdirectory per archive and folder (MBOX: one file per folder).
    #[arg(long)]
    pub keep_structure: bool,
    /// Export what the answering stores hold when some stores do not answer (default: fail).
    #[arg(long)]
    pub allow_partial: bool,
}

/// One message to export, as the search listed it.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    archive: String,
    folder: String,
    date: i64,
}

/// Hits per search page.
const PAGE: u32 = 1000;
/// Downloads in flight at once.
const IN_FLIGHT: usize = 8;

/// Every hit of the query, paging with the cursor; the stores that did not answer.
async fn all_hits(client: &Client, args: &ExportArgs) -> Result<(Vec<Hit>, Vec<Value>)> {
    let mut hits = Vec::new();
    let mut missing = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let body = json!({"q": args.query, "archive": args.archive, "sort": "date", "asc": true, "limit": PAGE, "cursor": cursor, "export": true});
        let answer = client.request_json("/api/data/search", &body).await?;
        for m in answer["missingShards"].as_array().into_iter().flatten() {
            if !missing.contains(m) {
                missing.push(m.clone());
            }
        }
        for h in answer["hits"].as_array().context("the search answer has no hits")? {
            let id = h["id"].as_str().context("a hit without id")?.to_string();
            let archive = h["archive"].as_str().with_context(|| format!("hit {id} names no archive"))?;
            hits.push(Hit {
                archive: archive.to_string(),
                folder: h["folder"].as_str().unwrap_or("").to_string(),
                date: h["date"].as_i64().unwrap_or(0),
                id,
            });
        }
        match answer["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok((hits, missing)),
        }
    }
}

/// A folder or archive name as one file-system name (see the module docs).
pub fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.char_indices() {
        let escape = c.is_control() || matches!(c, '%' | '/' | '\\') || (i == 0 && c == '.');
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        return "%00".into();
    }
    if out.len() > 200 {
        let mut cut = 180;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        let hash = hex::encode(&sha256(name.as_bytes())[..8]);
        out = format!("{}~{hash}", &out[..cut]);
    }
    out
}

/// The directory of a folder below `root` with keep-structure: `<archive>/<folder segments>`.
fn folder_dir(root: &Path, archive: &str, folder: &str) -> PathBuf {
    let mut dir = root.join(path_segment(archive));
    for segment in folder.split('/').filter(|s| !s.is_empty()) {
        dir.push(path_segment(segment));
    }
    dir
}

/// The MBOX file a hit goes to.
fn mbox_path(root: &Path, keep_structure: bool, hit: &Hit) -> PathBuf {
    if !keep_structure {
        return root.join("arca-export.mbox");
    }
    let dir = folder_dir(root, &hit.archive, &hit.folder);
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".mbox");
    dir.with_file_name(name)
}

/// A message that could not be exported: its id, the file it was meant for, and why.
#[derive(Debug)]
struct Failure {
    id: String,
    file: PathBuf,
    reason: String,
}

/// The messages that could not be exported, each reported on stderr as it happens; the export goes on.
#[derive(Debug, Default)]
struct Failures(Vec<Failure>);

impl Failures {
    fn report(&mut self, id: &str, file: PathBuf, reason: String) {
        eprintln!("error: message {id} not exported to {}: {reason}", file.display());
        self.0.push(Failure { id: id.to_string(), file, reason });
    }

    fn json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|f| json!({"id": f.id, "file": f.file.display().to_string(), "reason": f.reason}))
                .collect(),
        )
    }
}

/// Downloads the hits' raw bytes, `IN_FLIGHT` at a time, handing them to `each` in hit order. A
/// message that cannot be downloaded, or that `each` cannot write, is reported in `failures` with
/// the file `file_of` names for it; the others go on.
async fn download<F>(
    client: Arc<Client>,
    hits: &[Hit],
    failures: &mut Failures,
    file_of: impl Fn(&Hit) -> PathBuf,
    mut each: F,
) -> Result<()>
where
    F: FnMut(&Hit, Vec<u8>) -> Result<()>,
{
    let mut pending = VecDeque::new();
    let mut next = 0;
    while next < hits.len() || !pending.is_empty() {
        while next < hits.len() && pending.len() < IN_FLIGHT {
            let client = client.clone();
            let path = format!("/api/data/messages/{}/raw", hits[next].id);
            pending.push_back((next, tokio::spawn(async move { client.get_bytes(&path).await })));
            next += 1;
        }
        let Some((i, task)) = pending.pop_front() else { break };
        let hit = &hits[i];
        let done = match task.await.context("download task")? {
            Ok(raw) => each(hit, raw),
            Err(e) => Err(e.context(format!("downloading {}", hit.id))),
        };
        if let Err(e) = done {
            failures.report(&hit.id, file_of(hit), format!("{e:#}"));
        }
    }
    Ok(())
}

/// The bytes written for one message: the X-Arca lines (unless plain) and the original.
fn exported_bytes(plain: bool, hit: &Hit, raw: Vec<u8>) -> Vec<u8> {
    if plain {
        return raw;
    }
    let mut out = header_lines(&hit.archive, &hit.folder, &raw);
    out.extend_from_slice(&raw);
    out
}

/// Writes `bytes` to `path` through a temporary file in the same directory, then renames it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a file without a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("arca-tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// An MBOX file being written (to a temporary name until finished), with the messages written to it.
struct MboxOut {
    path: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    ids: Vec<String>,
}

impl MboxOut {
    fn create(path: PathBuf) -> Result<MboxOut> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = path.with_extension("mbox.arca-tmp");
        let file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(MboxOut { path, tmp, file: std::io::BufWriter::new(file), ids: Vec::new() })
    }

    fn finish(mut self) -> Result<()> {
        self.file.flush().with_context(|| format!("cannot write {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot rename {} to {}", self.tmp.display(), self.path.display()))
    }

    /// Finishes the file; when that fails, every message written to it is reported and uncounted.
    fn close(self, written: &mut u64, failures: &mut Failures) {
        let (path, ids) = (self.path.clone(), self.ids.clone());
        if let Err(e) = self.finish() {
            *written -= ids.len() as u64;
            for id in ids {
                failures.report(&id, path.clone(), format!("{e:#}"));
            }
        }
    }
}

/// Runs `arca export`. A message that cannot be downloaded or written is reported (message, file,
/// reason) and the export goes on; the command fails at the end when any message was not exported.
pub async fn export(opts: &ClientOptions, args: ExportArgs) -> Result<()> {
    let client = Arc::new(Client::new(opts)?);
    let (mut hits, missing) = all_hits(&client, &args).await?;
    if !missing.is_empty() && !args.allow_partial {
        bail!(
            "stores {} did not answer the search, so the export would be incomplete; nothing was written (--allow-partial exports the rest)",
            Value::Array(missing.clone())
        );
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !opts.json;
    let total = hits.len();
    let (mut written, mut present, mut files) = (0u64, 0u64, 0u64);
    let mut done = 0usize;
    let mut failures = Failures::default();
    match args.format {
        ExportFormat::Eml => {
            let dir_of = |hit: &Hit| {
                if args.keep_structure {
                    folder_dir(&args.dir, &hit.archive, &hit.folder)
                } else {
                    args.dir.clone()
                }
            };
            download(client.clone(), &hits, &mut failures, dir_of, |hit, raw| {
                let bytes = exported_bytes(args.plain, hit, raw);
                let path = dir_of(hit).join(format!("{}.eml", hex::encode(sha256(&bytes))));
                done += 1;
                if interactive && done.is_multiple_of(100) {
                    eprint!("\r{done} of {total} messages exported   ");
                }
                if path.exists() {
                    present += 1;
                } else {
                    write_atomically(&path, &bytes)?;
                    written += 1;
                    files += 1;
                }
                Ok(())
            })
            .await?;
        }
        ExportFormat::Mbox => {
            // One file at a time: hits grouped by their file, in date order within it.
            hits.sort_by_cached_key(|h| mbox_path(&args.dir, args.keep_structure, h));
            let mut current: Option<MboxOut> = None;
            let mut closing = Failures::default();
            let file_of = |hit: &Hit| mbox_path(&args.dir, args.keep_structure, hit);
            download(client.clone(), &hits, &mut failures, file_of, |hit, raw| {
                let path = mbox_path(&args.dir, args.keep_structure, hit);
                done += 1;
                if interactive && done.is_multiple_of(100) {
                    eprint!("\r{done} of {total} messages exported   ");
                }
                if current.as_ref().is_none_or(|c| c.path != path) {
                    if let Some(previous) = current.take() {
                        previous.close(&mut written, &mut closing);
                    }
                    current = Some(MboxOut::create(path)?);
                    files += 1;
                }
                let out = current.as_mut().context("an open mbox file")?;
                let bytes = exported_bytes(args.plain, hit, raw);
                arca_ingest::write_mboxrd(&mut out.file, hit.date, &bytes)
                    .with_context(|| format!("cannot write {}", out.tmp.display()))?;
                out.ids.push(hit.id.clone());
                written += 1;
                Ok(())
            })
            .await?;
            if let Some(last) = current.take() {
                last.close(&mut written, &mut closing);
            }
            failures.0.extend(closing.0);
        }
    }
    if interactive && total >= 100 {
        eprintln!();
    }
    if opts.json {
        println!(
            "{}",
            json!({"exported": written, "alreadyPresent": present, "files": files, "missingShards": missing, "failed": failures.json()})
        );
    } else {
        println!(
            "exported {written} messages to {} ({present} already present, {files} files written)",
            args.dir.display()
        );
        if !missing.is_empty() {
            println!("warning: stores {} did not answer: the export is incomplete", Value::Array(missing));
        }
    }
    if !failures.0.is_empty() {
        bail!("{} of {total} messages could not be exported (listed above)", failures.0.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_safe_file_names() {
        assert_eq!(path_segment("Inbox"), "Inbox");
        assert_eq!(path_segment("Entwürfe 2024"), "Entwürfe 2024");
        assert_eq!(path_segment(".."), "%2E.");
        assert_eq!(path_segment("a/b\\c%d\u{1}"), "a%2Fb%5Cc%25d%01");
        assert_eq!(path_segment(""), "%00");
        let long = path_segment(&"ü".repeat(200));
        assert!(long.len() <= 200 && long.contains('~'), "{long}");
    }

    #[test]
    fn mbox_files_follow_the_folder_tree() {
        let hit =
            |folder: &str| Hit { id: "1:1".into(), archive: "alice".into(), folder: folder.into(), date: 0 };
        let root = Path::new("/x");
        assert_eq!(mbox_path(root, true, &hit("")), Path::new("/x/alice.mbox"));
        assert_eq!(mbox_path(root, true, &hit("Inbox/Sub")), Path::new("/x/alice/Inbox/Sub.mbox"));
        assert_eq!(mbox_path(root, false, &hit("Inbox")), Path::new("/x/arca-export.mbox"));
    }
}
