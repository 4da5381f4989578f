//! Automatic failover (issue 13 item 2, invariant 2, CLU-02/CLU-06): three real `arca` processes with
//! short leases. When the node serving the write store dies or freezes, another node takes the store
//! over by itself (no operator command); a node whose lease lapsed answers nothing from its old copy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::api::batch_body;
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Three nodes with short leases (renewed every 500 ms, dead after 2.5 s without a renewal) on one
/// object store that all of them reach (a directory here, S3 in production).
async fn start() -> Result<(Cluster, tempfile::TempDir)> {
    let objects = tempfile::tempdir()?;
    let url = format!("file://{}", objects.path().display());
    let cluster =
        Cluster::start(3, &[("ARCA_CLUSTER_LEASE_MS", "2000"), ("ARCA_STORAGE_URL", url.as_str())]).await?;
    Ok((cluster, objects))
}
/// Bound of one request in these tests (a frozen node never answers).
const REQUEST: Duration = Duration::from_secs(10);

/// `n` distinct messages whose subjects carry `tag`.
fn mail(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!("From: a{i}@example.com\r\nSubject: {tag} {i}\r\n\r\n{tag} body {i}\r\n").into_bytes()
        })
        .collect()
}

/// Uploads `messages` into the admin archive through `api` (one attempt, bounded); answers their ids.
async fn upload(api: &ApiClient, messages: &[Vec<u8>]) -> Result<Vec<String>> {
    let send = api.request(
        reqwest::Method::POST,
        "/api/data/archives/admin/batch",
        Some("application/octet-stream"),
        batch_body("inbox", messages),
    );
    let a = tokio::time::timeout(REQUEST, send).await.context("upload timed out")??;
    if a.status != 200 {
        bail!("upload: HTTP {}: {}", a.status, a.text());
    }
    let results = a.json()["results"].as_array().cloned().unwrap_or_default();
    if results.len() != messages.len() {
        bail!("upload: {} results for {} messages", results.len(), messages.len());
    }
    results
        .iter()
        .map(|r| r["id"].as_str().map(str::to_string).with_context(|| format!("not archived: {r}")))
        .collect()
}

/// Uploads through `apis` (starting at `first`, moving on after each failure) until acknowledged.
async fn upload_until_acknowledged(
    apis: &[ApiClient],
    first: usize,
    messages: &[Vec<u8>],
    within: Duration,
) -> Result<Vec<String>> {
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        match upload(&apis[(first + attempt) % apis.len()], messages).await {
            Ok(ids) => return Ok(ids),
            Err(e) if start.elapsed() > within => bail!("not acknowledged within {within:?}: {e}"),
            Err(_) => {}
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An empty-query search through `api` (bounded): the whole answer.
async fn search(api: &ApiClient, q: &str) -> Result<Value> {
    let body = json!({"q": q, "limit": 1}).to_string();
    tokio::time::timeout(REQUEST, api.post_json("/api/data/search", &body))
        .await
        .context("search timed out")?
}

/// (serving node, epoch) of the only store.
async fn owner(api: &ApiClient) -> Result<(u64, u64)> {
    let stores = tokio::time::timeout(REQUEST, api.ok("GetStores", &[])).await.context("GetStores")??;
    let node = stores[0]["servingNode"].as_u64().with_context(|| format!("no serving node: {stores}"))?;
    Ok((node, stores[0]["epoch"].as_u64().unwrap_or(0)))
}

/// The harness index of the node with Raft id `id`.
async fn index_of(cluster: &Cluster, id: u64) -> Result<usize> {
    let status = cluster.status(0).await?;
    let addr = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"].as_u64() == Some(id))
        .and_then(|m| m["apiAddr"].as_str())
        .with_context(|| format!("node {id} not in {status}"))?
        .to_string();
    cluster.nodes.iter().position(|n| n.api_addr() == addr).with_context(|| format!("no node at {addr}"))
}

/// Every message id of the admin archive through `api`; fails on duplicates.
async fn distinct_ids(api: &ApiClient) -> Result<BTreeSet<String>> {
    let ids = api.all_ids("admin").await?;
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    if set.len() != ids.len() {
        bail!("{} hits but {} distinct ids: a message is listed twice", ids.len(), set.len());
    }
    Ok(set)
}

/// Sends a signal to a process node.
fn signal(cluster: &Cluster, index: usize, sig: &str) -> Result<()> {
    let pid = cluster.nodes[index].pid().context("node is not a running process")?;
    let status = std::process::Command::new("kill").arg(sig).arg(pid.to_string()).status()?;
    if !status.success() {
        bail!("kill {sig} {pid} failed");
    }
    Ok(())
}

/// One acknowledged batch: when its successful attempt started and ended, and its ids.
struct Acked {
    started: Instant,
    ended: Instant,
    ids: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owner_killed_imports_and_searches_recover_without_operator() -> Result<()> {
    let (mut cluster, _objects) = start().await?;
    let apis: Vec<ApiClient> = (0..3).map(|i| cluster.api(i)).collect();
    let first = upload(&apis[0], &mail("first", 10)).await?;
    let (owner_id, epoch) = owner(&apis[0]).await?;
    let victim = index_of(&cluster, owner_id).await?;

    // The import: batches round-robin over all three nodes, each retried through the next node until
    // acknowledged (as `arca import` does), recording what was acknowledged and when.
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let importer = {
        let (apis, acked, stop) = (apis.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut batch = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let messages = mail(&format!("batch{batch}"), 10);
                let mut attempt = 0usize;
                loop {
                    let started = Instant::now();
                    match upload(&apis[(batch + attempt) % apis.len()], &messages).await {
                        Ok(ids) => {
                            acked.lock().await.push(Acked { started, ended: Instant::now(), ids });
                            break;
                        }
                        Err(_) if attempt > 600 => {
                            return Err(anyhow::anyhow!("batch {batch} never acknowledged"));
                        }
                        Err(_) => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                batch += 1;
            }
            Ok::<(), anyhow::Error>(())
        })
    };
    while acked.lock().await.len() < 5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.kill(victim);
    let killed = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();

    // Imports resume through the survivors: the first batch sent after the kill is acknowledged.
    let import_back = loop {
        if let Some(a) = acked.lock().await.iter().filter(|a| a.started > killed).map(|a| a.ended).min() {
            break a.duration_since(killed);
        }
        if killed.elapsed() > Duration::from_secs(15) {
            bail!("no import acknowledged within 15 s of killing the serving node");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Searches are complete again: no store missing.
    let search_back = loop {
        let mut complete = true;
        for i in &survivors {
            match search(&apis[*i], "").await {
                Ok(a) if a["missingShards"] == json!([]) => {}
                _ => complete = false,
            }
        }
        if complete {
            break killed.elapsed();
        }
        if killed.elapsed() > Duration::from_secs(20) {
            bail!("searches still incomplete 20 s after killing the serving node");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "FAILOVER: lease 2000 ms; kill -> first acknowledged import {} ms; kill -> complete search {} ms",
        import_back.as_millis(),
        search_back.as_millis()
    );
    // A few more batches after the takeover, then stop (the running batch finishes).
    let settled = acked.lock().await.len();
    while acked.lock().await.len() < settled + 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    importer.await??;

    let (new_owner, new_epoch) = owner(&apis[survivors[0]]).await?;
    assert_ne!(new_owner, owner_id, "a survivor serves the store");
    assert!(new_epoch > epoch, "the takeover raised the epoch ({epoch} -> {new_epoch})");

    // Every acknowledged message is there exactly once.
    let mut acknowledged: BTreeSet<String> = first.into_iter().collect();
    for a in acked.lock().await.iter() {
        acknowledged.extend(a.ids.iter().cloned());
    }
    for i in &survivors {
        let found = distinct_ids(&apis[*i]).await?;
        let missing: Vec<&String> = acknowledged.difference(&found).collect();
        assert!(missing.is_empty(), "node {i}: acknowledged but not found: {missing:?}");
        let total = search(&apis[*i], "").await?;
        assert_eq!(total["total"], json!(acknowledged.len()), "node {i}: {total}");
        assert_eq!(found.len(), acknowledged.len(), "node {i}: nothing unacknowledged or doubled");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_owner_restarted_serves_nothing_stale() -> Result<()> {
    let (mut cluster, _objects) = start().await?;
    let apis: Vec<ApiClient> = (0..3).map(|i| cluster.api(i)).collect();
    upload(&apis[0], &mail("before", 10)).await?;
    let (owner_id, _) = owner(&apis[0]).await?;
    let victim = index_of(&cluster, owner_id).await?;
    let survivor = (victim + 1) % 3;
    cluster.kill(victim);
    let after =
        upload_until_acknowledged(&apis, survivor, &mail("after", 5), Duration::from_secs(15)).await?;
    let (new_owner, _) = owner(&apis[survivor]).await?;
    assert_ne!(new_owner, owner_id);

    cluster.restart(victim).await?;
    // At once and for a while: the restarted node answers from the new owner's data or refuses.
    let api = &apis[victim];
    let until = Instant::now() + Duration::from_secs(5);
    let mut answered = 0;
    while Instant::now() < until {
        if let Ok(a) = search(api, "").await {
            assert_eq!(a["total"], json!(15), "the restarted node answers a stale count: {a}");
            answered += 1;
        }
        if let Ok(Ok(raw)) =
            tokio::time::timeout(REQUEST, api.get_authed(&format!("/api/data/messages/{}/raw", after[0])))
                .await
        {
            assert_eq!(raw, mail("after", 5)[0], "the restarted node fetches the new owner's message");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(answered > 0, "the restarted node answered no search within 5 s");
    assert_eq!(owner(api).await?.0, new_owner, "restarting did not take the store back");
    let found = distinct_ids(api).await?;
    assert_eq!(found.len(), 15);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frozen_owner_past_its_lease_answers_nothing_from_the_shard() -> Result<()> {
    let (cluster, _objects) = start().await?;
    let apis: Vec<ApiClient> = (0..3).map(|i| cluster.api(i)).collect();
    let before = upload(&apis[0], &mail("before", 20)).await?;
    let (owner_id, epoch) = owner(&apis[0]).await?;
    let frozen = index_of(&cluster, owner_id).await?;
    let survivor = (frozen + 1) % 3;

    // A batch in flight on the owner as it freezes: its writer resumes later under a stale epoch.
    let inflight = {
        let api = apis[frozen].clone();
        tokio::spawn(async move {
            let send = api.request(
                reqwest::Method::POST,
                "/api/data/archives/admin/batch",
                Some("application/octet-stream"),
                batch_body("inbox", &mail("inflight", 10)),
            );
            tokio::time::timeout(Duration::from_secs(60), send).await
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    signal(&cluster, frozen, "-STOP")?;
    let stopped = Instant::now();

    // Another node takes the store over by itself.
    let (new_owner, new_epoch) = loop {
        if let Ok((node, e)) = owner(&apis[survivor]).await
            && node != owner_id
        {
            break (node, e);
        }
        if stopped.elapsed() > Duration::from_secs(20) {
            bail!("nobody took the store of the frozen node over within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("FAILOVER: frozen owner's store taken over after {} ms", stopped.elapsed().as_millis());
    assert!(new_epoch > epoch);
    let later = upload_until_acknowledged(
        &[apis[survivor].clone(), apis[3 - frozen - survivor].clone()],
        0,
        &mail("later", 10),
        Duration::from_secs(20),
    )
    .await?;

    // Requests queued at the frozen node before it resumes are the first it handles.
    let queued: Vec<_> = (0..3)
        .map(|k| {
            let api = apis[frozen].clone();
            let id = later[0].clone();
            tokio::spawn(async move {
                match k {
                    0 => search(&api, "").await.map(|a| (a, Vec::new())),
                    1 => search(&api, "later").await.map(|a| (a, Vec::new())),
                    _ => {
                        tokio::time::timeout(REQUEST, api.get_authed(&format!("/api/data/messages/{id}/raw")))
                            .await
                            .context("fetch timed out")?
                            .map(|raw| (Value::Null, raw))
                    }
                }
            })
        })
        .collect();
    // What the new owner holds at this moment (nothing is written until the queued requests are answered).
    let truth = search(&apis[survivor], "").await?;
    assert_eq!(truth["missingShards"], json!([]), "{truth}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&cluster, frozen, "-CONT")?;

    let inflight_ids: Vec<String> = match inflight.await? {
        Ok(Ok(a)) if a.status == 200 => a.json()["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    // Whether or not the in-flight batch was acknowledged, send it once more: it is there exactly once
    // afterwards, under the ids acknowledged first (an acknowledgement by the fenced writer that the
    // new owner does not have would show up as a different id here).
    let again =
        upload_until_acknowledged(&apis, survivor, &mail("inflight", 10), Duration::from_secs(20)).await?;
    if !inflight_ids.is_empty() {
        assert_eq!(
            inflight_ids, again,
            "the in-flight batch acknowledged by the old owner is the new owner's"
        );
    }
    let expected = 20 + 10 + 10;
    let mut answers = BTreeMap::new();
    for (k, q) in queued.into_iter().enumerate() {
        answers.insert(k, q.await?);
    }
    // Each answer comes from the new owner's data (it has the later mail) or is a refusal.
    if let Ok((a, _)) = &answers[&0]
        && a["missingShards"] == json!([])
    {
        assert_eq!(a["total"], truth["total"], "stale search answer from the resumed node: {a}");
    }
    if let Ok((a, _)) = &answers[&1]
        && a["missingShards"] == json!([])
    {
        assert_eq!(a["total"], json!(10), "stale search answer from the resumed node: {a}");
    }
    if let Ok((_, raw)) = &answers[&2] {
        assert_eq!(raw, &mail("later", 10)[0]);
    }
    eprintln!(
        "resumed node's queued answers: search {}, search later {}, fetch {}",
        answers[&0].is_ok(),
        answers[&1].is_ok(),
        answers[&2].is_ok()
    );

    // Afterwards the resumed node forwards to the new owner, which keeps the store (the old writer's
    // epoch is stale: nothing it acknowledged is lost, nothing is listed twice).
    let late = upload_until_acknowledged(&apis, frozen, &mail("late", 5), Duration::from_secs(20)).await?;
    assert_eq!(owner(&apis[frozen]).await?.0, new_owner, "the resumed node did not take the store back");
    for (i, api) in apis.iter().enumerate() {
        let found = distinct_ids(api).await?;
        for id in before.iter().chain(&later).chain(&late).chain(&again) {
            assert!(found.contains(id), "node {i}: acknowledged message {id} not found");
        }
        assert_eq!(found.len(), expected + 5, "node {i}: only the acknowledged messages, once each");
        let a = search(api, "").await?;
        assert_eq!(a["total"], json!(expected + 5), "node {i}: {a}");
    }
    Ok(())
}
