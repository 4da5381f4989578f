//! Arca on a real S3-compatible server (s3s-fs, signatures checked): every pack, index file and manifest
//! delta lands in the bucket and nothing in the node's local object directory; a second node takes a
//! shard over from the bucket alone after the serving node is killed and its disk wiped; a wrong key, a
//! missing bucket or an unreachable endpoint stops start-up naming the storage settings; imports during an
//! outage fail in bounded time and land exactly once afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::cluster::Kind;
use arca_tests::{ApiClient, Cluster, S3Server};
use serde_json::{Value, json};

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The first `n` rows of the corpus index, in index order: path -> SHA-256.
fn corpus_head(shared: &std::path::Path, n: usize) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(shared.join("corpus/public/index.tsv"))?;
    Ok(text
        .lines()
        .skip(1)
        .take(n)
        .filter_map(|l| {
            let mut cols = l.split('\t');
            Some((cols.next()?.to_string(), cols.next()?.to_string()))
        })
        .collect())
}

fn import(cluster: &Cluster, via: usize, dir: &std::path::Path, user: &str) -> Result<Value> {
    let out = cluster.cli(
        via,
        &["import", "eml", &dir.display().to_string(), "--user", user, "--folder", "inbox", "--json"],
    );
    if !out.status.success() {
        bail!("import failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// SHA-256 of the raw download of every message of `archive`, through `api`.
async fn downloaded_hashes(api: &ApiClient, archive: &str) -> Result<Vec<String>> {
    let mut hashes = Vec::new();
    for id in api.all_ids(archive).await? {
        hashes.push(sha256_hex(&api.get_authed(&format!("/api/data/messages/{id}/raw")).await?));
    }
    Ok(hashes)
}

/// Every file below `dir` (none when it does not exist).
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out
}

/// Object keys below `tenants/<t>/shards/<id>/` grouped by their kind (`packs`, `index`, `manifest`).
fn by_kind(objects: &[(String, u64)]) -> Result<BTreeMap<String, Vec<(String, u64)>>> {
    let mut kinds: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for (key, size) in objects {
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["tenants", _, "shards", _, kind, _, ..] => {
                kinds.entry(kind.to_string()).or_default().push((key.clone(), *size))
            }
            _ => bail!("object {key} is outside the design's layout"),
        }
    }
    Ok(kinds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_on_s3_keeps_packs_index_and_manifests_in_the_bucket_and_serves_the_corpus_byte_identical()
-> Result<()> {
    let s3 = S3Server::start()?;
    let Some(shared) = arca_tests::shared_dir("corpus/public/index.tsv") else {
        eprintln!("skipped: the shared corpus is not there (set ARCA_SHARED_DIR)");
        return Ok(());
    };
    let rows = corpus_head(&shared, 300)?;
    let cluster = Cluster::start(1, &refs(&s3.node_env("arca"))).await?;
    let unpacked = cluster.root().join("corpus");
    let status = Command::new("python3")
        .arg(shared.join("corpus/unpack"))
        .arg(&unpacked)
        .args(["--format", "files", "--limit", &rows.len().to_string()])
        .status()?;
    assert!(status.success(), "unpacking the corpus failed");

    let api = cluster.api(0);
    let sources: BTreeSet<&str> = rows.iter().filter_map(|(p, _)| p.split('/').next()).collect();
    let mut expected_all = BTreeSet::new();
    for source in &sources {
        api.ok("CreateUser", &[("userName", source), ("privileges", "login")]).await?;
        // Administrators read other archives only while archive access is unblocked (CMP-01).
        api.ok(
            "SetComplianceConfiguration",
            &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
        )
        .await?;
        let summary = import(&cluster, 0, &unpacked.join(source), source)?;
        assert_eq!(summary["refused"], json!([]), "{source}: {summary}");
        let expected: BTreeSet<String> = rows
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("{source}/")))
            .map(|(_, h)| h.clone())
            .collect();
        let got = downloaded_hashes(&api, source).await?;
        assert_eq!(got.len(), expected.len(), "{source}: each distinct message listed once");
        assert_eq!(
            got.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "{source}: downloads are byte-identical to the corpus"
        );
        expected_all.extend(expected);
    }

    // A full-text search finds a message by a word of its subject, and serves that very message.
    let (path, hash) = &rows[0];
    let raw = std::fs::read(unpacked.join(path))?;
    let text = String::from_utf8_lossy(&raw);
    let subject = text
        .lines()
        .find_map(|l| l.strip_prefix("Subject:"))
        .context("the first corpus message has a subject")?;
    let word = subject
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .max_by_key(|w| w.len())
        .context("a word in the subject")?;
    let answer =
        api.post_json("/api/data/search", &json!({"q": format!("subject:{word}")}).to_string()).await?;
    assert_eq!(answer["missingShards"], json!([]), "{answer}");
    let mut found = false;
    for hit in answer["hits"].as_array().context("hits")? {
        let id = hit["id"].as_str().context("id")?;
        found |= sha256_hex(&api.get_authed(&format!("/api/data/messages/{id}/raw")).await?) == *hash;
    }
    assert!(found, "searching subject:{word} finds {path}: {answer}");

    // The objects are in the bucket, below the configured prefix, in the design's layout.
    let objects = s3.list("arca").await?;
    let kinds = by_kind(&objects)?;
    for kind in ["packs", "index", "manifest"] {
        assert!(kinds.contains_key(kind), "no {kind}/ objects in the bucket: {objects:?}");
    }
    assert_eq!(kinds.len(), 3, "only packs, index and manifest objects: {:?}", kinds.keys());
    let pack_bytes: u64 = kinds["packs"].iter().map(|(_, size)| size).sum();
    let raw_bytes: u64 = rows
        .iter()
        .map(|(p, _)| std::fs::metadata(unpacked.join(p)).map(|m| m.len()))
        .sum::<Result<u64, _>>()?;
    assert!(pack_bytes > raw_bytes / 20, "packs hold the messages: {pack_bytes} bytes for {raw_bytes} raw");
    let stores = api.ok("GetStores", &[]).await?;
    let shard = stores[0]["id"].as_u64().context("store id")?;
    assert!(
        objects.iter().all(|(k, _)| k.starts_with(&format!("tenants/default/shards/{shard}/"))),
        "every object belongs to the one shard {shard}: {objects:?}"
    );
    assert_eq!(stores[0]["messageCount"].as_u64(), Some(expected_all.len() as u64), "{stores}");

    eprintln!(
        "bucket: {} packs ({pack_bytes} bytes for {raw_bytes} raw), {} index files, {} manifest deltas",
        kinds["packs"].len(),
        kinds["index"].len(),
        kinds["manifest"].len()
    );

    // Nothing was written to the node's default local object directory.
    let local = cluster.nodes[0].dir.join("data/objects");
    assert_eq!(files_below(&local), Vec::<std::path::PathBuf>::new(), "local objects in {}", local.display());
    Ok(())
}

fn fixture(dir: &std::path::Path, tag: &str, n: usize) -> Result<BTreeSet<String>> {
    std::fs::create_dir_all(dir)?;
    let mut hashes = BTreeSet::new();
    for i in 0..n {
        let raw = format!(
            "From: Sender {i} <s{i}@example.com>\r\nTo: team@example.com\r\nSubject: {tag} message {i}\r\n\
             Date: Tue, 2 Jan 2024 10:{:02}:00 +0000\r\nMessage-ID: <{tag}-{i}@example.com>\r\n\r\n\
             Hello {tag} {i}\r\n",
            i % 60
        );
        std::fs::write(dir.join(format!("{i:03}.eml")), &raw)?;
        hashes.insert(sha256_hex(raw.as_bytes()));
    }
    Ok(hashes)
}

/// The harness index of the node with cluster id `id`, as node `via` lists the members.
async fn index_of(cluster: &Cluster, via: usize, id: u64) -> Result<usize> {
    let status = cluster.status(via).await?;
    let addr = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"].as_u64() == Some(id))
        .and_then(|m| m["apiAddr"].as_str())
        .with_context(|| format!("node {id} is not a member: {status}"))?
        .to_string();
    cluster.nodes.iter().position(|n| n.api_addr() == addr).context("no such harness node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shard_taken_over_from_the_bucket_alone_after_its_node_is_killed_and_its_disk_wiped() -> Result<()> {
    let s3 = S3Server::start()?;
    let mut cluster = Cluster::start(3, &refs(&s3.node_env("shared-prefix"))).await?;
    let alpha = fixture(&cluster.root().join("alpha"), "alpha", 80)?;
    let summary = import(&cluster, 1, &cluster.root().join("alpha"), "admin")?;
    assert_eq!(summary["archived"], 80, "{summary}");

    let stores = cluster.api(0).ok("GetStores", &[]).await?;
    let serving_id = stores[0]["servingNode"].as_u64().with_context(|| format!("served: {stores}"))?;
    let serving = index_of(&cluster, 0, serving_id).await?;
    let survivors: Vec<usize> = (0..3).filter(|i| *i != serving).collect();
    let via = survivors[0];

    // kill -9 the serving node, drop it from the cluster and wipe its disk: nothing of it remains.
    cluster.kill(serving);
    let out = cluster.cli(via, &["cluster", "remove", &serving_id.to_string()]);
    assert!(out.status.success(), "remove: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(cluster.nodes[serving].dir.join("data"))?;

    for &i in &survivors {
        let api = cluster.api(i);
        let answer = api.post_json("/api/data/search", &json!({"q": "subject:alpha"}).to_string()).await?;
        assert_eq!(answer["missingShards"], json!([]), "node {i}: {answer}");
        assert_eq!(answer["total"], 80, "node {i}: {answer}");
        let got: BTreeSet<String> = downloaded_hashes(&api, "admin").await?.into_iter().collect();
        assert_eq!(got, alpha, "node {i} serves every message byte for byte after the takeover");
    }
    let stores = cluster.api(via).ok("GetStores", &[]).await?;
    let new_owner = stores[0]["servingNode"].as_u64().context("served after takeover")?;
    assert_ne!(new_owner, serving_id, "{stores}");
    assert_eq!(stores[0]["epoch"], 2, "taken over once, with a new epoch: {stores}");

    // The new serving node also writes: a second import lands next to the first.
    let beta = fixture(&cluster.root().join("beta"), "beta", 20)?;
    let other = survivors[1];
    let summary = import(&cluster, other, &cluster.root().join("beta"), "admin")?;
    assert_eq!(summary["archived"], 20, "{summary}");
    let got: BTreeSet<String> = downloaded_hashes(&cluster.api(other), "admin").await?.into_iter().collect();
    assert_eq!(got, alpha.union(&beta).cloned().collect(), "both imports served after the takeover");
    for &i in &survivors {
        let local = cluster.nodes[i].dir.join("data/objects");
        assert!(files_below(&local).is_empty(), "node {i} wrote local objects in {}", local.display());
    }
    Ok(())
}

/// Starts a node with `env` added and expects it to stop on its own, in bounded time, with an error
/// naming the storage settings; returns the node's log.
async fn refused_start(cluster: &mut Cluster, env: &[(&str, &str)]) -> Result<String> {
    let index = cluster.place_node(Kind::Process, env).await?;
    let started = Instant::now();
    cluster.launch(index)?;
    let status = cluster.wait_exit(index, Duration::from_secs(60)).await?;
    let log = cluster.nodes[index].log();
    assert!(!status.success(), "the node started on an unusable store:\n{log}");
    assert!(started.elapsed() < Duration::from_secs(45), "refused only after {:?}", started.elapsed());
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("storage.url") && log.contains("storage.endpoint"), "names the settings:\n{log}");
    assert!(!cluster.nodes[index].dir.join("data/raft-log.wal").exists(), "no cluster state was created");
    Ok(log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_key_missing_bucket_or_unreachable_endpoint_stops_start_up_naming_the_storage_settings()
-> Result<()> {
    let s3 = S3Server::start()?;
    let mut cluster = Cluster::new(&refs(&s3.node_env("arca")))?;
    // The right settings start a node (the first, which the refused ones would join).
    cluster.add_node(Kind::Process).await?;

    let wrong = cluster.root().join("wrong.secret");
    std::fs::write(&wrong, "not-the-secret-key")?;
    let log =
        refused_start(&mut cluster, &[("ARCA_STORAGE_SECRET_ACCESS_KEY_FILE", &wrong.display().to_string())])
            .await?;
    assert!(log.contains("SignatureDoesNotMatch") || log.contains("403"), "the server's refusal:\n{log}");

    let log = refused_start(&mut cluster, &[("ARCA_STORAGE_ACCESS_KEY_ID", "AKUNKNOWN")]).await?;
    assert!(log.contains("403") || log.contains("InvalidAccessKeyId"), "the server's refusal:\n{log}");

    let log = refused_start(&mut cluster, &[("ARCA_STORAGE_URL", "s3://no-such-bucket/arca")]).await?;
    assert!(log.contains("NoSuchBucket"), "the missing bucket:\n{log}");

    let closed = format!("http://127.0.0.1:{}", arca_tests::free_port());
    let log = refused_start(&mut cluster, &[("ARCA_STORAGE_ENDPOINT", &closed)]).await?;
    assert!(log.contains(&closed) || log.contains("connect"), "the unreachable endpoint:\n{log}");

    let log = refused_start(&mut cluster, &[("ARCA_STORAGE_ALLOW_HTTP", "false")]).await?;
    assert!(log.contains("storage.allow_http"), "plain HTTP needs storage.allow_http:\n{log}");

    assert!(cluster.nodes[0].is_running(), "the node on the right settings kept running");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imports_fail_in_bounded_time_while_s3_is_down_and_land_once_when_it_is_back() -> Result<()> {
    let mut s3 = S3Server::start()?;
    let cluster = Cluster::start(1, &refs(&s3.node_env("arca"))).await?;
    let first = fixture(&cluster.root().join("first"), "first", 20)?;
    let summary = import(&cluster, 0, &cluster.root().join("first"), "admin")?;
    assert_eq!(summary["archived"], 20, "{summary}");

    s3.stop();
    let second = fixture(&cluster.root().join("second"), "second", 20)?;
    let started = Instant::now();
    let out = cluster.cli(
        0,
        // One attempt: this is about the error naming the object, not about the CLI's retries.
        &[
            "import",
            "eml",
            &cluster.root().join("second").display().to_string(),
            "--user",
            "admin",
            "--json",
            "--attempts",
            "1",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an import without object storage succeeded: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(90), "failed only after {:?}", started.elapsed());
    assert!(
        stderr.contains("flush failed")
            && stderr.contains("object 'tenants/")
            && stderr.contains(&s3.endpoint),
        "the error names the object and the endpoint: {stderr}"
    );
    assert!(!stderr.contains("metadata cluster refused"), "not blamed on the metadata cluster: {stderr}");
    assert!(!cluster.nodes[0].log().contains("panicked"), "{}", cluster.nodes[0].log());

    s3.restart()?;
    let summary = import(&cluster, 0, &cluster.root().join("second"), "admin")?;
    let seen = summary["archived"].as_u64().unwrap_or(0) + summary["duplicates"].as_u64().unwrap_or(0);
    assert_eq!(seen, 20, "{summary}");
    let api = cluster.api(0);
    let got = downloaded_hashes(&api, "admin").await?;
    assert_eq!(got.len(), 40, "every message listed exactly once");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), first.union(&second).cloned().collect());
    let answer = api.post_json("/api/data/search", &json!({"q": "subject:second"}).to_string()).await?;
    assert_eq!(answer["total"], 20, "{answer}");
    Ok(())
}
