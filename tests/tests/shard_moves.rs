//! Operator shard moves (CLU-02, CLU-05): `arca shard move` is a lease handover in which nothing is
//! copied through the old node and searches are answered throughout; `arca node drain` empties a node;
//! `arca shard rebalance` evens stores over nodes; refusals name their reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::api::batch_body;
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

/// Tiny distinct messages `from..to`.
fn mail(from: usize, to: usize) -> Vec<Vec<u8>> {
    (from..to)
        .map(|i| {
            format!("From: a{}@example.com\r\nSubject: note {i}\r\n\r\nbody {i}\r\n", i % 97).into_bytes()
        })
        .collect()
}

/// Uploads `count` tiny messages into the admin archive through `api`, in batches of 5,000.
async fn upload(api: &ApiClient, from: usize, count: usize) -> Result<()> {
    let mut next = from;
    while next < from + count {
        let end = (next + 5_000).min(from + count);
        let a = api
            .request(
                reqwest::Method::POST,
                "/api/data/archives/admin/batch",
                Some("application/octet-stream"),
                batch_body("inbox", &mail(next, end)),
            )
            .await?;
        if a.status != 200 {
            bail!("upload: HTTP {}: {}", a.status, a.text());
        }
        next = end;
    }
    Ok(())
}

/// A cluster of `n` nodes sharing one object store (a directory), as nodes of a real cluster share a
/// bucket: a store moves between nodes through it.
async fn start(n: usize) -> Result<(Cluster, tempfile::TempDir)> {
    let objects = tempfile::tempdir()?;
    let url = format!("file://{}", objects.path().display());
    let cluster = Cluster::start(n, &[("ARCA_STORAGE_URL", &url)]).await?;
    Ok((cluster, objects))
}

/// The node id of each node of the cluster, by index.
async fn node_ids(cluster: &Cluster, n: usize) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(cluster.local_state(i).await?["id"].as_u64().context("node id")?);
    }
    Ok(ids)
}

async fn stores(api: &ApiClient) -> Result<Vec<Value>> {
    Ok(api.ok("GetStores", &[]).await?.as_array().cloned().unwrap_or_default())
}

/// Stores served per node id.
async fn per_node(api: &ApiClient) -> Result<std::collections::BTreeMap<u64, usize>> {
    let mut counts = std::collections::BTreeMap::new();
    for s in stores(api).await? {
        if let Some(n) = s["servingNode"].as_u64() {
            *counts.entry(n).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Runs a function that may be long-running to its end; answers the final envelope.
async fn finished(api: &ApiClient, function: &str, args: &[(&str, &str)]) -> Result<Value> {
    let mut env = api.invoke(function, args).await?;
    for _ in 0..600 {
        if env["statusCode"] != "running" {
            return Ok(env);
        }
        let token = env["token"].as_str().context("token")?.to_string();
        let version = env["statusVersion"].as_u64().unwrap_or(0).to_string();
        env = api
            .envelope(
                "/api/get-status",
                &[("token", &token), ("lastKnownStatusVersion", &version), ("millisecondsTimeout", "1000")],
            )
            .await?;
    }
    bail!("{function} did not finish: {env}")
}

async fn unblock_reading(api: &ApiClient) -> Result<()> {
    let config = json!({"adminEmailPreviewEnabled": true}).to_string();
    api.ok("SetComplianceConfiguration", &[("config", &config), ("password", "admin")]).await?;
    Ok(())
}

/// What the searches running during a move saw.
#[derive(Default)]
struct SearchLoop {
    answered: AtomicU64,
    failed: AtomicU64,
    partial: AtomicU64,
    wrong_total: AtomicU64,
    stop: AtomicBool,
}

/// Searches through `api` until stopped, counting answers that are partial or count fewer than `total`
/// hits (imports go on meanwhile, so there may be more).
fn search_loop(api: ApiClient, total: u64, seen: Arc<SearchLoop>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !seen.stop.load(Ordering::Relaxed) {
            let body = json!({"q": "", "limit": 1}).to_string();
            match api.post_json("/api/data/search", &body).await {
                Ok(a) if a["missingShards"] != json!([]) => {
                    eprintln!("partial answer: {a}");
                    seen.partial.fetch_add(1, Ordering::Relaxed);
                }
                Ok(a) if a["total"].as_u64().is_none_or(|t| t < total) => {
                    eprintln!("wrong total: {a}");
                    seen.wrong_total.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {
                    seen.answered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    eprintln!("search failed: {e:#}");
                    seen.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// Builds a store of `count` messages on node 0, moves it to node 1 with `arca shard move` while
/// searches run through both nodes, and checks the move time and that every search was answered whole.
async fn move_with_searches(count: usize) -> Result<()> {
    let (cluster, _objects) = start(2).await?;
    let ids = node_ids(&cluster, 2).await?;
    let api = cluster.api(0);
    unblock_reading(&api).await?;
    let built = Instant::now();
    upload(&api, 0, count).await?;
    eprintln!("{count} messages archived in {:?}", built.elapsed());
    let store = stores(&api).await?.into_iter().next().context("a store")?;
    let id = store["id"].as_u64().context("id")?;
    assert_eq!(store["servingNode"], ids[0], "node 0 archived, so it serves the store: {store}");
    let epoch = store["epoch"].as_u64().context("epoch")?;

    // Imports go on through the old node during the move: its writer is fenced, and the batches it
    // held are archived on the new node instead (dedupe makes the resend safe).
    let importing = Arc::new(AtomicBool::new(true));
    let importer = {
        let (api, importing) = (cluster.api(0), importing.clone());
        tokio::spawn(async move {
            let (mut sent, mut failed) = (0usize, 0usize);
            while importing.load(Ordering::Relaxed) {
                match upload(&api, count + 10 + sent, 100).await {
                    Ok(()) => sent += 100,
                    Err(e) => {
                        eprintln!("import failed: {e:#}");
                        failed += 1;
                    }
                }
            }
            (sent, failed)
        })
    };
    let seen = Arc::new(SearchLoop::default());
    let loops: Vec<_> = (0..2).map(|i| search_loop(cluster.api(i), count as u64, seen.clone())).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_move = seen.answered.load(Ordering::Relaxed);

    // The CLI as `Cluster::cli` runs it, on a blocking thread so that the searches go on meanwhile.
    let mut command = std::process::Command::new(arca_tests::arca_bin());
    command
        .args(["shard", "--json", "move", &id.to_string(), &ids[1].to_string(), "--insecure"])
        .env("ARCA_HOST", cluster.nodes[0].api_addr())
        .env("ARCA_USER", "admin")
        .env("ARCA_PASSWORD", "admin")
        .stdin(std::process::Stdio::null());
    let (out, wall) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        (command.output(), started.elapsed())
    })
    .await?;
    let out = out?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    seen.stop.store(true, Ordering::Relaxed);
    importing.store(false, Ordering::Relaxed);
    let (imported, import_failures) = importer.await?;
    for l in loops {
        l.await?;
    }
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "arca shard move failed: {stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).with_context(|| format!("JSON: {stdout}"))?;
    let moved = &report["moves"][0];
    let total_ms = moved["totalMs"].as_u64().context("totalMs")?;
    eprintln!(
        "moved a store of {count} messages in {total_ms} ms (prepare {} ms, switch {} ms; CLI wall time {wall:?}); \
         {} searches answered during the run",
        moved["prepareMs"],
        moved["switchMs"],
        seen.answered.load(Ordering::Relaxed)
    );
    assert!(total_ms < 5_000, "the move took {total_ms} ms: {report}");
    assert_eq!(moved["status"], "moved", "{report}");
    assert!(stderr.contains("restores its index"), "progress is printed: {stderr}");
    assert_eq!(seen.failed.load(Ordering::Relaxed), 0, "no search failed");
    assert_eq!(seen.partial.load(Ordering::Relaxed), 0, "no search missed the store");
    assert_eq!(seen.wrong_total.load(Ordering::Relaxed), 0, "every search counted every message");
    assert!(seen.answered.load(Ordering::Relaxed) > before_move, "searches ran during the move");
    assert_eq!(import_failures, 0, "every import batch was acknowledged ({imported} messages)");
    assert!(imported > 0, "imports ran during the move");

    let after = stores(&api).await?.into_iter().find(|s| s["id"] == id).context("the store")?;
    assert_eq!(after["servingNode"], ids[1], "{after}");
    assert!(after["epoch"].as_u64() > Some(epoch), "a new epoch fences the old writer: {after}");
    // The old node dropped its copy as soon as it applied the change.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cluster.nodes[0].log().contains("another node serves this store now") {
        if Instant::now() > deadline {
            bail!("node 0 did not drop its copy of the store");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // New mail through the old node reaches the store on its new node; both nodes find everything.
    upload(&api, count, 5).await?;
    for i in 0..2 {
        let a =
            cluster.api(i).post_json("/api/data/search", &json!({"q": "", "limit": 1}).to_string()).await?;
        assert_eq!(a["missingShards"], json!([]), "{a}");
        assert_eq!(
            a["total"],
            (count + 5 + imported) as u64,
            "node {i}: every acknowledged message once: {a}"
        );
    }
    let again = stores(&api).await?.into_iter().find(|s| s["id"] == id).context("the store")?;
    assert_eq!(again["servingNode"], ids[1], "writing through the old node did not move it back: {again}");
    Ok(())
}

/// 100,000 tiny messages build in about 15 s on 2 cores, so this runs with every test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shard_move_of_100k_messages_takes_under_5s_with_searches_answered_throughout() -> Result<()> {
    move_with_searches(100_000).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_drain_empties_the_node() -> Result<()> {
    let (cluster, _objects) = start(3).await?;
    let ids = node_ids(&cluster, 3).await?;
    let api = cluster.api(0);
    unblock_reading(&api).await?;
    upload(&api, 0, 50).await?;
    // Three more stores, all moved onto node 0, which serves the current one already.
    for name in ["old-1", "old-2", "old-3"] {
        let created = api.ok("CreateStore", &[("name", name)]).await?;
        let id = created["id"].as_u64().context("id")?.to_string();
        let env = finished(&api, "MoveStore", &[("id", &id), ("node", &ids[0].to_string())]).await?;
        assert_eq!(env["statusCode"], "succeeded", "{env}");
    }
    assert_eq!(per_node(&api).await?.get(&ids[0]), Some(&4));

    let out = cluster.cli(1, &["node", "drain", &ids[0].to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "drain failed: {stdout}\n{stderr}");
    assert!(stdout.contains("4 moved, 0 failed"), "ends with a table: {stdout}");
    assert!(stdout.contains("can be removed"), "{stdout}");
    assert!(stderr.contains("[4/4]"), "progress: {stderr}");
    let counts = per_node(&api).await?;
    assert_eq!(counts.get(&ids[0]), None, "node 0 serves nothing: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 4);
    assert!(counts.values().all(|n| *n == 2), "spread over the other two: {counts:?}");

    // Nothing moves onto a draining node; undrain lifts that.
    let store = stores(&api).await?[0]["id"].as_u64().context("id")?.to_string();
    let refused = finished(&api, "MoveStore", &[("id", &store), ("node", &ids[0].to_string())]).await?;
    assert!(refused["error"].to_string().contains("draining"), "{refused}");
    let out = cluster.cli(2, &["node", "undrain", &ids[0].to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let env = finished(&api, "MoveStore", &[("id", &store), ("node", &ids[0].to_string())]).await?;
    assert_eq!(env["statusCode"], "succeeded", "{env}");

    // Everything is still found, through every node.
    for i in 0..3 {
        let a =
            cluster.api(i).post_json("/api/data/search", &json!({"q": "", "limit": 1}).to_string()).await?;
        assert_eq!((a["total"].clone(), a["missingShards"].clone()), (json!(50), json!([])), "node {i}: {a}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_evens_12_shards_over_3_nodes() -> Result<()> {
    let (cluster, _objects) = start(3).await?;
    let ids = node_ids(&cluster, 3).await?;
    let api = cluster.api(0);
    for i in 0..12 {
        let state = if i == 11 { "current" } else { "normal" };
        let created = api.ok("CreateStore", &[("name", &format!("s{i}")), ("requestedState", state)]).await?;
        let id = created["id"].as_u64().context("id")?.to_string();
        let env = finished(&api, "MoveStore", &[("id", &id), ("node", &ids[1].to_string())]).await?;
        assert_eq!(env["statusCode"], "succeeded", "{env}");
    }
    let before: Vec<(Value, Value)> =
        stores(&api).await?.iter().map(|s| (s["id"].clone(), s["servingNode"].clone())).collect();
    assert_eq!(per_node(&api).await?.get(&ids[1]), Some(&12));

    let out = cluster.cli(0, &["shard", "rebalance", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("dry run: nothing was moved"), "{stdout}");
    assert_eq!(stdout.matches(" planned").count(), 8, "8 planned moves: {stdout}");
    let unchanged: Vec<(Value, Value)> =
        stores(&api).await?.iter().map(|s| (s["id"].clone(), s["servingNode"].clone())).collect();
    assert_eq!(unchanged, before, "a dry run changes nothing");

    let out = cluster.cli(2, &["shard", "--json", "rebalance"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&stdout).with_context(|| format!("JSON: {stdout}"))?;
    assert_eq!((report["moved"].clone(), report["failed"].clone()), (json!(8), json!(0)), "{report}");
    let counts = per_node(&api).await?;
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![4, 4, 4], "{counts:?}");
    // Balanced: a second run plans nothing.
    let out = cluster.cli(1, &["shard", "--json", "rebalance", "--dry-run"]);
    let plan: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(plan["moves"], json!([]), "{plan}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moves_that_cannot_be_done_are_refused_naming_the_reason() -> Result<()> {
    let (cluster, _objects) = start(2).await?;
    let ids = node_ids(&cluster, 2).await?;
    let api = cluster.api(0);
    upload(&api, 0, 10).await?;
    let store = stores(&api).await?[0].clone();
    let id = store["id"].as_u64().context("id")?.to_string();
    let owner = store["servingNode"].as_u64().context("owner")?.to_string();
    let other = if owner == ids[0].to_string() { ids[1] } else { ids[0] }.to_string();
    let refusal = |env: &Value| env["error"]["message"].as_str().unwrap_or_default().to_string();

    let env = finished(&api, "MoveStore", &[("id", &id), ("node", "999")]).await?;
    assert!(refusal(&env).contains("node 999 is not a node of this cluster"), "{env}");
    let env = finished(&api, "MoveStore", &[("id", "424242"), ("node", &other)]).await?;
    assert!(refusal(&env).contains("store 424242 does not exist"), "{env}");
    let env = finished(&api, "MoveStore", &[("id", &id), ("node", &owner)]).await?;
    assert!(refusal(&env).contains("served by node") && refusal(&env).contains("already"), "{env}");
    api.ok("SetNodeDraining", &[("id", &other)]).await?;
    let env = finished(&api, "MoveStore", &[("id", &id), ("node", &other)]).await?;
    assert!(refusal(&env).contains("draining"), "{env}");
    api.ok("SetNodeDraining", &[("id", &other), ("draining", "false")]).await?;
    let spare = api.ok("CreateStore", &[("name", "spare")]).await?["id"].to_string();
    api.ok("SetStoreRequestedState", &[("id", &spare), ("requestedState", "disabled")]).await?;
    let env = finished(&api, "MoveStore", &[("id", &spare), ("node", &other)]).await?;
    assert!(refusal(&env).contains("disabled"), "{env}");
    let env = finished(&api, "PlanStoreMoves", &[("purpose", "sideways")]).await?;
    assert!(refusal(&env).contains("purpose"), "{env}");

    // The CLI exits non-zero and says why; nothing moved.
    let out = cluster.cli(1, &["shard", "move", &id, "999"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not moved"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("node 999 is not a node"), "the table names it");
    let now = stores(&api)
        .await?
        .into_iter()
        .find(|s| s["id"].as_u64().map(|n| n.to_string()) == Some(id.clone()))
        .context("store")?;
    assert_eq!(
        (now["servingNode"].clone(), now["epoch"].clone()),
        (store["servingNode"].clone(), store["epoch"].clone())
    );
    Ok(())
}
