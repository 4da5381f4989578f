//! Crashes at random moments of a running import (DESIGN invariant 1): after every `kill -9` and restart
//! the store opens, every acknowledged message comes back byte for byte, none is listed twice, and the
//! import resumes; on one node and on the serving node of a three-node cluster. A store that cannot be
//! opened is retried after a back-off, without raising its epoch on every request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Kill and restart rounds per test.
const ROUNDS: usize = 50;
/// Messages per uploaded batch.
const BATCH: usize = 2;
/// Distinct base messages; the import sends them in passes, each pass a new variant of every message
/// (an `X-Crash-Pass` header line in front), so that every batch archives new mail.
const MESSAGES: usize = 300;

/// Message number `k` of the import: pass `k / MESSAGES` of base message `k % MESSAGES`.
fn message(base: &[Vec<u8>], k: usize) -> Vec<u8> {
    let (pass, i) = (k / base.len(), k % base.len());
    if pass == 0 {
        return base[i].clone();
    }
    let mut raw = format!("X-Crash-Pass: {pass}\r\n").into_bytes();
    raw.extend(&base[i]);
    raw
}

/// `MESSAGES` distinct messages: the first of the public corpus, or generated ones without it.
fn messages(root: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    if let Some(shared) = arca_tests::shared_dir("corpus/public/index.tsv") {
        let unpacked = root.join("corpus");
        let status = std::process::Command::new("python3")
            .arg(shared.join("corpus/unpack"))
            .arg(&unpacked)
            .args(["--format", "files", "--limit", &(MESSAGES * 2).to_string()])
            .status()?;
        if !status.success() {
            bail!("unpacking the corpus failed");
        }
        let mut files = Vec::new();
        let mut stack = vec![unpacked];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)?.flatten() {
                let p = entry.path();
                if p.is_dir() { stack.push(p) } else { files.push(p) }
            }
        }
        files.sort();
        for f in files {
            let raw = std::fs::read(&f)?;
            if out.len() < MESSAGES && seen.insert(raw.clone()) {
                out.push(raw);
            }
        }
    }
    let mut i = 0;
    while out.len() < MESSAGES {
        let raw = format!(
            "From: s{i}@example.com\r\nTo: t@example.com\r\nSubject: crash loop {i}\r\n\r\nbody {i}\r\n"
        )
        .into_bytes();
        if seen.insert(raw.clone()) {
            out.push(raw);
        }
        i += 1;
    }
    Ok(out)
}

/// A batch body: records of `folder length u32 LE, folder, message length u32 LE, message`.
fn batch_body(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for raw in messages {
        body.extend(5u32.to_le_bytes());
        body.extend(b"crash");
        body.extend((raw.len() as u32).to_le_bytes());
        body.extend(raw);
    }
    body
}

/// What the running import has been told.
#[derive(Default)]
struct Acknowledged {
    /// Message number -> id, for every message an answer acknowledged (archived or present).
    ids: BTreeMap<usize, String>,
    /// A message acknowledged under two ids (a double), if any.
    doubled: Vec<String>,
}

/// The running import: uploads batches in order through `api` and records acknowledgements; a batch
/// that fails (the node is down) is sent again until it is acknowledged.
struct Import {
    acked: Arc<Mutex<Acknowledged>>,
    batches: Arc<AtomicUsize>,
    /// Messages numbered below this were sent at least once.
    sent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Import {
    fn start(api: ApiClient, messages: Arc<Vec<Vec<u8>>>) -> Import {
        let acked = Arc::new(Mutex::new(Acknowledged::default()));
        let batches = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (acked, batches, sent, stop) = (acked.clone(), batches.clone(), sent.clone(), stop.clone());
            async move {
                let mut next = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let indexes: Vec<usize> = (next..next + BATCH).collect();
                    let chosen: Vec<Vec<u8>> = indexes.iter().map(|&k| message(&messages, k)).collect();
                    sent.fetch_max(next + BATCH, Ordering::SeqCst);
                    let answer = api
                        .request(
                            reqwest::Method::POST,
                            "/api/data/archives/admin/batch",
                            Some("application/octet-stream"),
                            batch_body(&chosen),
                        )
                        .await;
                    let results = match answer {
                        Ok(a) if a.status == 200 => {
                            a.json()["results"].as_array().cloned().unwrap_or_default()
                        }
                        _ => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let mut acked = acked.lock().await;
                    for (&i, r) in indexes.iter().zip(&results) {
                        let Some(id) = r["id"].as_str() else { continue };
                        if let Some(before) = acked.ids.insert(i, id.to_string())
                            && before != id
                        {
                            acked.doubled.push(format!("message {i} acknowledged as {before} and as {id}"));
                        }
                    }
                    drop(acked);
                    if results.len() == indexes.len() && results.iter().all(|r| r["id"].is_string()) {
                        next += BATCH;
                        batches.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        Import { acked, batches, sent, stop, task }
    }

    /// Waits until at least one more batch than `since` was acknowledged (the import resumed).
    async fn resumed(&self, since: usize) -> Result<()> {
        let start = Instant::now();
        while self.batches.load(Ordering::SeqCst) <= since {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("the import did not resume within 60 s of the restart");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

/// Every acknowledged message comes back byte for byte through `api`, no message was acknowledged under
/// two ids, and the archive lists each message once.
async fn check_acknowledged(
    api: &ApiClient,
    import: &Import,
    messages: &[Vec<u8>],
    round: usize,
) -> Result<()> {
    let (ids, doubled) = {
        let a = import.acked.lock().await;
        (a.ids.clone(), a.doubled.clone())
    };
    if !doubled.is_empty() {
        bail!("round {round}: {doubled:?}");
    }
    let distinct: BTreeSet<&String> = ids.values().collect();
    if distinct.len() != ids.len() {
        bail!("round {round}: two messages share an id");
    }
    let list: Vec<(usize, String)> = ids.into_iter().collect();
    for chunk in list.chunks(32) {
        let mut fetches = Vec::new();
        for (i, id) in chunk {
            let api = api.clone();
            let path = format!("/api/data/messages/{id}/raw");
            let (i, id) = (*i, id.clone());
            fetches.push(tokio::spawn(async move { (i, id, fetch_retrying(&api, &path).await) }));
        }
        for f in fetches {
            let (i, id, raw) = f.await?;
            let raw = raw.with_context(|| format!("round {round}: acknowledged message {id}"))?;
            if raw != message(messages, i) {
                bail!("round {round}: message {id} is not byte-identical to what was acknowledged");
            }
        }
    }
    let total = search_total(api).await?;
    let sent = import.sent.load(Ordering::SeqCst) as u64 + 1;
    if total > sent {
        bail!("round {round}: the archive lists {total} messages, more than the {sent} distinct ones sent");
    }
    Ok(())
}

/// GETs `path`, retrying while the cluster settles after a restart (elections, the store reopening).
async fn fetch_retrying(api: &ApiClient, path: &str) -> Result<Vec<u8>> {
    let start = Instant::now();
    loop {
        match api.get_authed(path).await {
            Ok(raw) => return Ok(raw),
            Err(e) if start.elapsed() > Duration::from_secs(30) => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Messages the archive lists (an empty search), with every store answering.
async fn search_total(api: &ApiClient) -> Result<u64> {
    let start = Instant::now();
    loop {
        let answer = api
            .post_json("/api/data/search", &json!({"q": "", "archive": "admin", "limit": 1}).to_string())
            .await;
        match answer {
            Ok(a) if a["missingShards"] == json!([]) => return a["total"].as_u64().context("total"),
            other if start.elapsed() > Duration::from_secs(30) => {
                bail!("search did not answer completely: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A random delay of 0–1.5 s (the moment of the kill within a running import).
fn kill_delay() -> Duration {
    Duration::from_millis(rand::random::<u64>() % 1500)
}

/// The index of the node serving the admin archive's store, per `GetStores`.
async fn serving_node(cluster: &Cluster, via: usize) -> Result<usize> {
    let stores = cluster.api(via).ok("GetStores", &[]).await?;
    let node = stores[0]["servingNode"].as_u64().context("a store with a serving node")?;
    let status = cluster.status(via).await?;
    let addr = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"].as_u64() == Some(node))
        .and_then(|m| m["apiAddr"].as_str().map(str::to_string))
        .context("the serving node is a member")?;
    cluster.nodes.iter().position(|n| n.api_addr() == addr).context("the serving node is one of ours")
}

async fn crash_loop(nodes: usize) -> Result<()> {
    let mut cluster = Cluster::start(nodes, &[]).await?;
    let messages = Arc::new(messages(cluster.root())?);
    // Node 0 serves the store (it archives first); on a cluster the import goes through another node.
    let warm_up = b"Subject: warm-up\r\n\r\nfirst\r\n".to_vec();
    let a = cluster
        .api(0)
        .request(
            reqwest::Method::POST,
            "/api/data/archives/admin/batch",
            Some("application/octet-stream"),
            batch_body(&[warm_up]),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text());
    let via = nodes - 1;
    let target = serving_node(&cluster, via).await?;
    assert_eq!(target, 0, "node 0 serves the store");
    let import = Import::start(cluster.api(via), messages.clone());
    import.resumed(0).await?;
    let started = Instant::now();
    for round in 0..ROUNDS {
        tokio::time::sleep(kill_delay()).await;
        let at_kill = import.batches.load(Ordering::SeqCst);
        cluster.kill(target);
        cluster.restart(target).await?;
        import.resumed(at_kill).await.with_context(|| format!("round {round}"))?;
        check_acknowledged(&cluster.api(via), &import, &messages, round).await?;
    }
    let batches = import.batches.load(Ordering::SeqCst);
    let sent = import.sent.load(Ordering::SeqCst);
    let acked = std::mem::take(&mut import.acked.lock().await.ids);
    import.finish().await;
    eprintln!(
        "{ROUNDS} rounds on {nodes} node(s) in {:?}, {batches} batches acknowledged",
        started.elapsed()
    );
    // Finish the import: every message sent is archived once, under the id it was acknowledged with.
    let api = cluster.api(via);
    for start in (0..sent).step_by(50) {
        let numbers: Vec<usize> = (start..sent.min(start + 50)).collect();
        let chunk: Vec<Vec<u8>> = numbers.iter().map(|&k| message(&messages, k)).collect();
        let a = api
            .request(
                reqwest::Method::POST,
                "/api/data/archives/admin/batch",
                Some("application/octet-stream"),
                batch_body(&chunk),
            )
            .await?;
        assert_eq!(a.status, 200, "the import completes: {}", a.text());
        let results: Value = a.json();
        for (k, r) in numbers.iter().zip(results["results"].as_array().context("results")?) {
            let id = r["id"].as_str().with_context(|| format!("message {k} is archived: {r}"))?;
            if let Some(before) = acked.get(k) {
                assert_eq!(before, id, "message {k} keeps the id it was acknowledged with");
            }
        }
    }
    let total = search_total(&api).await?;
    assert_eq!(total, sent as u64 + 1, "every message sent (and the warm-up) is listed exactly once");
    let stores = api.ok("GetStores", &[]).await?;
    assert_eq!(stores.as_array().map(Vec::len), Some(1), "{stores}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_kills_of_a_single_node_during_an_import_lose_and_double_nothing() -> Result<()> {
    crash_loop(1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_kills_of_the_serving_node_of_three_during_an_import_lose_and_double_nothing() -> Result<()> {
    crash_loop(3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_cannot_be_opened_is_retried_without_raising_its_epoch_per_request() -> Result<()> {
    let mut cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    let a = api
        .request(
            reqwest::Method::POST,
            "/api/data/archives/admin/batch",
            Some("application/octet-stream"),
            batch_body(&[b"Subject: kept\r\n\r\nkept\r\n".to_vec()]),
        )
        .await?;
    let id = a.json()["results"][0]["id"].as_str().context("archived")?.to_string();
    cluster.stop(0).await?;
    // Every manifest object of the store is damaged: the store cannot be opened.
    let manifests: Vec<std::path::PathBuf> = walk(&cluster.nodes[0].dir.join("data/objects"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/manifest/"))
        .collect();
    assert!(!manifests.is_empty(), "the store has manifest objects");
    let originals: Vec<Vec<u8>> = manifests.iter().map(std::fs::read).collect::<std::io::Result<_>>()?;
    for (path, bytes) in manifests.iter().zip(&originals) {
        let mut damaged = bytes.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x5a;
        std::fs::write(path, damaged)?;
    }
    cluster.restart(0).await?;
    let api = cluster.api(0);
    let epoch = |stores: &Value| stores[0]["epoch"].as_u64().unwrap_or_default();
    let before = epoch(&api.ok("GetStores", &[]).await?);
    for _ in 0..12 {
        let answer = api.get_as(&format!("/api/data/messages/{id}/raw")).await?;
        assert_ne!(answer.status, 200, "a store with a damaged manifest cannot serve");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = epoch(&api.ok("GetStores", &[]).await?);
    assert!(after <= before + 1, "12 failing requests raised the epoch from {before} to {after}");

    // Repaired, the store opens at the next attempt after the back-off, still without a new epoch.
    for (path, bytes) in manifests.iter().zip(&originals) {
        std::fs::write(path, bytes)?;
    }
    let raw = fetch_retrying(&api, &format!("/api/data/messages/{id}/raw")).await?;
    assert_eq!(raw, b"Subject: kept\r\n\r\nkept\r\n");
    let repaired = epoch(&api.ok("GetStores", &[]).await?);
    assert!(repaired <= before + 1, "the retry raised the epoch again: {before} -> {repaired}");
    Ok(())
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}
