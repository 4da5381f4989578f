//! `arca import … --reimport` (ING-12, EXP-02): messages of an Arca export go back to the archive and
//! folder their `X-Arca-*` lines name, as their original bytes, after the SHA-256 is checked. Missing
//! archives are created (as a user of that name with no privileges and no password, who cannot log in;
//! this needs an administrator), missing folders by archiving into them. Messages without the lines go to `--user`/`--folder`
//! when given, else are refused with the reason.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::client::{Client, ClientOptions, urlencode};
use crate::data_cmd::{
    BATCH_BYTES, BATCH_MESSAGES, ImportArgs, InFlight, Summary, Upload, drain, join_folder, named_as_mail,
    no_mail, read_items, submit, take_message,
};
use arca_ingest::arca_headers::{strip, verify};

/// The archives the cluster has, learnt once and kept up to date as they are created. Folders need
/// no step of their own: archiving into a folder the tree lacks creates it (and refuses a folder path
/// the folder rule refuses, naming the rule, for that message only).
struct Tree {
    /// Archive names, lower-case (archive names compare without case).
    archives: HashSet<String>,
}

impl Tree {
    async fn load(client: &Client) -> Result<Tree> {
        let envelope = client
            .call("/api/invoke/GetChildFolders", &[("maxLevels", "1".to_string())])
            .await
            .context("re-import needs an administrator (listing archives)")?;
        let archives = envelope["result"].as_array().into_iter().flatten().filter_map(Value::as_str);
        Ok(Tree { archives: archives.map(str::to_lowercase).collect() })
    }

    /// Creates the archive when missing; an archive that cannot be created is an error.
    async fn ensure(&mut self, client: &Client, archive: &str) -> Result<(), String> {
        let key = archive.to_lowercase();
        if !self.archives.contains(&key) {
            client
                .call(
                    "/api/invoke/CreateUser",
                    &[("userName", archive.to_string()), ("privileges", "none".to_string())],
                )
                .await
                .map_err(|e| format!("archive '{archive}' does not exist and cannot be created: {e:#}"))?;
            self.archives.insert(key);
        }
        Ok(())
    }
}

/// Where one message goes, or why it does not.
fn target(args: &ImportArgs, folder: &[String], raw: Vec<u8>) -> Result<(String, String, Vec<u8>), String> {
    match strip(&raw) {
        Ok(Some((origin, original))) => {
            verify(&origin, original).map_err(|e| e.to_string())?;
            let original = original.to_vec();
            Ok((origin.archive, origin.folder, original))
        }
        Ok(None) => match &args.archive_user {
            Some(user) => Ok((user.clone(), join_folder(&args.folder, folder), raw)),
            None => Err("no X-Arca-* lines: not an Arca export (give --user to import such messages)".into()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `arca import --reimport`; exits non-zero when anything was refused or failed, after printing
/// the summary.
pub async fn run(opts: &ClientOptions, args: ImportArgs) -> Result<()> {
    let client = Arc::new(Client::new(opts)?);
    let mut tree = Tree::load(&client).await?;
    let mut s = Summary::new(opts);
    let mut in_flight = InFlight::new();
    // Per archive: the batch being filled and its size in bytes.
    let mut batches: BTreeMap<String, (Vec<Upload>, usize)> = BTreeMap::new();
    'paths: for path in &args.paths {
        let named = named_as_mail(args.format, path);
        let mut found = false;
        for item in read_items(args.format, path) {
            found = true;
            let Some(m) = take_message(&mut s, path, named, item) else { continue };
            let (archive, folder, raw) = match target(&args, &m.folder, m.raw) {
                Ok(t) => t,
                Err(reason) => {
                    s.refuse(m.source, reason);
                    continue;
                }
            };
            if let Err(reason) = tree.ensure(&client, &archive).await {
                s.refuse(m.source, reason);
                continue;
            }
            let (batch, bytes) = batches.entry(archive.clone()).or_default();
            *bytes += raw.len();
            batch.push((m.source, folder, raw));
            if batch.len() >= BATCH_MESSAGES || *bytes >= BATCH_BYTES {
                let full = std::mem::take(batch);
                *bytes = 0;
                submit(&mut in_flight, &mut s, &client, route(&archive), full, args.attempts).await?;
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
    for (archive, (batch, _)) in batches {
        if s.stopped() {
            s.not_sent(batch);
        } else if !batch.is_empty() {
            submit(&mut in_flight, &mut s, &client, route(&archive), batch, args.attempts).await?;
        }
    }
    drain(&mut in_flight, &mut s).await?;
    s.print(opts.json);
    s.outcome()
}

/// The batch route of `archive`; what the readers yield is named as mail by its source (see
/// [`named_as_mail`]), so what cannot be parsed is archived as raw bytes.
fn route(archive: &str) -> String {
    format!("/api/data/archives/{}/batch?notMail=archive", urlencode(archive))
}
