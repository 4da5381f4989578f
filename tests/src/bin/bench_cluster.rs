//! Cluster benchmark on real `arca` release processes (the test harness): search fan-out latency over
//! 1 and 16 shards on 1 and 3 nodes, import throughput and CPU per message, failover times after
//! kill -9, and the time of a shard move; one table with every target marked PASS or MISS.
//!
//!   arca-bench-cluster [--searches N] [--store-messages N] [--import-messages N] [--kills N]
//!                      [--move-messages N] [--only search,import,failover,move]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Bound of one request (a killed node never answers).
const REQUEST: Duration = Duration::from_secs(10);

struct Options {
    searches: usize,
    store_messages: usize,
    import_messages: usize,
    kills: usize,
    move_messages: usize,
    only: Vec<String>,
}

impl Options {
    fn parse() -> Result<Options> {
        let args: Vec<String> = std::env::args().collect();
        let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
        let number = |name: &str, default: usize| -> Result<usize> {
            match value(name) {
                Some(v) => v.parse().with_context(|| format!("{name} {v}")),
                None => Ok(default),
            }
        };
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!(
                "arca-bench-cluster [--searches N (200)] [--store-messages N per store (50)] \
                 [--import-messages N (20000)] [--kills N (3)] [--move-messages N (100000)] \
                 [--only search,import,failover,move]"
            );
            std::process::exit(0);
        }
        Ok(Options {
            searches: number("--searches", 200)?,
            store_messages: number("--store-messages", 50)?,
            import_messages: number("--import-messages", 20_000)?,
            kills: number("--kills", 3)?,
            move_messages: number("--move-messages", 100_000)?,
            only: value("--only")
                .map(|v| v.split(',').map(str::to_string).collect())
                .unwrap_or_else(|| ["search", "import", "failover", "move"].map(str::to_string).to_vec()),
        })
    }

    fn runs(&self, part: &str) -> bool {
        self.only.iter().any(|p| p == part)
    }
}

/// One row of the table.
struct Row {
    measurement: String,
    value: String,
    target: String,
    verdict: String,
}

#[derive(Default)]
struct Table(Vec<Row>);

impl Table {
    fn info(&mut self, measurement: impl Into<String>, value: impl Into<String>) {
        self.0.push(Row {
            measurement: measurement.into(),
            value: value.into(),
            target: "-".into(),
            verdict: "-".into(),
        });
    }

    fn check(&mut self, measurement: impl Into<String>, value: impl Into<String>, target: &str, pass: bool) {
        self.0.push(Row {
            measurement: measurement.into(),
            value: value.into(),
            target: target.into(),
            verdict: if pass { "PASS" } else { "MISS" }.into(),
        });
    }

    fn print(&self) {
        let w0 = self.0.iter().map(|r| r.measurement.len()).max().unwrap_or(0).max(11);
        let w1 = self.0.iter().map(|r| r.value.len()).max().unwrap_or(0).max(5);
        let w2 = self.0.iter().map(|r| r.target.len()).max().unwrap_or(0).max(6);
        println!("{:<w0$} | {:>w1$} | {:<w2$} | PASS/MISS", "measurement", "value", "target");
        println!("{}-+-{}-+-{}-+-{}", "-".repeat(w0), "-".repeat(w1), "-".repeat(w2), "-".repeat(9));
        for r in &self.0 {
            println!("{:<w0$} | {:>w1$} | {:<w2$} | {}", r.measurement, r.value, r.target, r.verdict);
        }
    }
}

/// `n` small messages tagged `tag`, every one holding the word "fanout".
fn mail(tag: &str, from: usize, n: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| {
            format!("From: a{}@example.com\r\nSubject: {tag} {i}\r\n\r\nfanout body {tag} {i}\r\n", i % 97)
                .into_bytes()
        })
        .collect()
}

/// Uploads `messages` into the admin archive through `api` in one bounded request.
async fn upload(api: &ApiClient, messages: &[Vec<u8>], timeout: Duration) -> Result<()> {
    let send = api.request(
        reqwest::Method::POST,
        "/api/data/archives/admin/batch",
        Some("application/octet-stream"),
        arca_tests::api::batch_body("inbox", messages),
    );
    let a = tokio::time::timeout(timeout, send).await.context("upload timed out")??;
    if a.status != 200 {
        bail!("upload: HTTP {}: {}", a.status, a.text());
    }
    let results = a.json()["results"].as_array().cloned().unwrap_or_default();
    if results.len() != messages.len() || results.iter().any(|r| r["id"].as_str().is_none()) {
        bail!("upload: not every message archived");
    }
    Ok(())
}

/// Uploads `count` messages tagged `tag` through `apis` round-robin, in batches of `batch`.
async fn upload_many(apis: &[ApiClient], tag: &str, count: usize, batch: usize) -> Result<()> {
    let mut next = 0;
    let mut k = 0;
    while next < count {
        let n = batch.min(count - next);
        upload(&apis[k % apis.len()], &mail(tag, next, n), Duration::from_secs(300)).await?;
        next += n;
        k += 1;
    }
    Ok(())
}

async fn search(api: &ApiClient, q: &str, limit: usize) -> Result<Value> {
    let body = json!({"q": q, "archive": "admin", "limit": limit}).to_string();
    tokio::time::timeout(REQUEST, api.post_json("/api/data/search", &body))
        .await
        .context("search timed out")?
}

fn complete(r: &Value) -> bool {
    r["missingShards"] == json!([])
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// utime + stime of a process, in seconds (from /proc/<pid>/stat).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn cluster_cpu(cluster: &Cluster) -> f64 {
    cluster.nodes.iter().filter_map(|n| n.pid()).filter_map(cpu_seconds).sum()
}

/// A cluster of `n` nodes sharing one object store directory, with extra environment.
async fn start(n: usize, extra: &[(&str, &str)]) -> Result<(Cluster, tempfile::TempDir)> {
    let objects = tempfile::tempdir()?;
    let url = format!("file://{}", objects.path().display());
    let mut env = vec![("ARCA_STORAGE_URL", url.as_str())];
    env.extend_from_slice(extra);
    let cluster = Cluster::start(n, &env).await?;
    Ok((cluster, objects))
}

/// Searches `count` times through `apis` round-robin; answers the sorted latencies (every answer must
/// be complete and count `total` hits).
async fn search_latencies(apis: &[ApiClient], count: usize, total: u64) -> Result<Vec<Duration>> {
    // Warm-up: the first searches open stores and links.
    for api in apis {
        let r = search(api, "fanout", 50).await?;
        if !complete(&r) || r["total"].as_u64() != Some(total) {
            bail!("warm-up search incomplete: total {} missing {}", r["total"], r["missingShards"]);
        }
    }
    let mut took = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        let r = search(&apis[i % apis.len()], "fanout", 50).await?;
        took.push(started.elapsed());
        if !complete(&r) || r["total"].as_u64() != Some(total) {
            bail!("search {i} incomplete: total {} missing {}", r["total"], r["missingShards"]);
        }
    }
    took.sort();
    Ok(took)
}

/// Part 1: search p50/p99 over 1 shard on 1 node, 16 shards on 1 node, 16 shards on 3 nodes.
async fn bench_search(o: &Options, t: &mut Table) -> Result<()> {
    let per = o.store_messages;
    let total = (16 * per) as u64;
    // 1 shard on 1 node, holding as many messages as the 16 shards together.
    let p99_one = {
        let (cluster, _objects) = start(1, &[]).await?;
        let api = cluster.api(0);
        upload_many(std::slice::from_ref(&api), "one", 16 * per, 1000).await?;
        let took = search_latencies(std::slice::from_ref(&api), o.searches, total).await?;
        let (p50, p99) = (percentile(&took, 0.5), percentile(&took, 0.99));
        t.info(format!("search p50, 1 shard on 1 node ({total} msgs, limit 50)"), ms(p50));
        t.info("search p99, 1 shard on 1 node", ms(p99));
        p99
    };
    // 16 shards on 1 node.
    {
        let (cluster, _objects) = start(1, &[]).await?;
        let api = cluster.api(0);
        for k in 0..16 {
            api.ok("CreateStore", &[("name", &format!("s{k}")), ("requestedState", "current")]).await?;
            upload_many(std::slice::from_ref(&api), &format!("s{k}"), per, 1000).await?;
        }
        let took = search_latencies(std::slice::from_ref(&api), o.searches, total).await?;
        t.info(format!("search p50, 16 shards on 1 node ({per} msgs each)"), ms(percentile(&took, 0.5)));
        t.info("search p99, 16 shards on 1 node", ms(percentile(&took, 0.99)));
    }
    // 16 shards on 3 nodes: store k served by node k % 3 (the node that first archives into a store
    // with no live owner takes it); a long lease keeps them where they are.
    {
        let (cluster, _objects) = start(3, &[("ARCA_CLUSTER_LEASE_MS", "30000")]).await?;
        let apis: Vec<ApiClient> = (0..3).map(|i| cluster.api(i)).collect();
        for k in 0..16 {
            let api = &apis[k % 3];
            api.ok("CreateStore", &[("name", &format!("s{k}")), ("requestedState", "current")]).await?;
            upload_many(std::slice::from_ref(api), &format!("s{k}"), per, 1000).await?;
        }
        let stores = apis[0].ok("GetStores", &[]).await?;
        let mut nodes: Vec<u64> =
            stores.as_array().into_iter().flatten().filter_map(|s| s["servingNode"].as_u64()).collect();
        nodes.sort();
        nodes.dedup();
        let took = search_latencies(&apis, o.searches, total).await?;
        let (p50, p99) = (percentile(&took, 0.5), percentile(&took, 0.99));
        t.info(
            format!("search p50, 16 shards on 3 nodes (served by {} nodes, round-robin entry)", nodes.len()),
            ms(p50),
        );
        t.info("search p99, 16 shards on 3 nodes", ms(p99));
        let ratio = p99.as_secs_f64() / p99_one.as_secs_f64().max(1e-9);
        t.check("ratio p99 16 shards/3 nodes : 1 shard", format!("{ratio:.2}"), "<= 2.0", ratio <= 2.0);
    }
    Ok(())
}

/// Part 2: import msgs/s and CPU per message.
async fn bench_import(o: &Options, t: &mut Table) -> Result<()> {
    let n = o.import_messages;
    for nodes in [1usize, 3] {
        let (cluster, _objects) = start(nodes, &[("ARCA_CLUSTER_LEASE_MS", "30000")]).await?;
        let apis: Vec<ApiClient> = (0..nodes).map(|i| cluster.api(i)).collect();
        // The first batch creates the write store; not timed.
        upload(&apis[0], &mail("warm", 0, 10), Duration::from_secs(60)).await?;
        let cpu0 = cluster_cpu(&cluster);
        let started = Instant::now();
        upload_many(&apis, "imp", n, 1000).await?;
        let wall = started.elapsed();
        let cpu = cluster_cpu(&cluster) - cpu0;
        let rate = n as f64 / wall.as_secs_f64();
        let label = if nodes == 1 {
            "import, one node, one write shard".to_string()
        } else {
            "import, 3 nodes round-robin entry, one write shard".to_string()
        };
        t.info(format!("{label} ({n} msgs, batches of 1000)"), format!("{rate:.0} msg/s"));
        t.info(
            format!("{label}: CPU per message (all arca processes)"),
            format!("{:.1} us", cpu * 1e6 / n as f64),
        );
    }
    t.info("import, one node, 4 write shards", "not available yet (one write shard per tenant)");
    Ok(())
}

/// The harness index of the node with Raft id `id`.
async fn index_of(cluster: &Cluster, via: usize, id: u64) -> Result<usize> {
    let status = cluster.status(via).await?;
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

/// Part 3: failover after kill -9 of the node serving the write store.
async fn bench_failover(o: &Options, t: &mut Table) -> Result<()> {
    let (mut cluster, _objects) = start(3, &[("ARCA_CLUSTER_LEASE_MS", "2000")]).await?;
    let apis: Vec<ApiClient> = (0..3).map(|i| cluster.api(i)).collect();
    upload(&apis[0], &mail("first", 0, 10), Duration::from_secs(60)).await?;
    let (mut to_import, mut to_search) = (Vec::new(), Vec::new());
    let mut sent = 10usize;
    for round in 0..o.kills {
        // The node serving the write store, asked through a node that runs.
        let via = (0..3).find(|&i| cluster.nodes[i].is_running()).context("no node runs")?;
        let stores = tokio::time::timeout(REQUEST, apis[via].ok("GetStores", &[])).await??;
        let owner = stores[0]["servingNode"].as_u64().with_context(|| format!("no owner: {stores}"))?;
        let victim = index_of(&cluster, via, owner).await?;
        let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
        // An import loop through the survivors, recording when each acknowledged batch started and ended.
        let acked: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let importer = {
            let (acked, stop) = (acked.clone(), stop.clone());
            let apis: Vec<ApiClient> = survivors.iter().map(|&i| apis[i].clone()).collect();
            let from = sent;
            tokio::spawn(async move {
                let mut k = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let batch = mail(&format!("fo{round}"), from + k * 10, 10);
                    if upload(&apis[k % apis.len()], &batch, REQUEST).await.is_ok() {
                        acked.lock().await.push((started, Instant::now()));
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    k += 1;
                }
                k
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.kill(victim);
        let killed = Instant::now();
        let import_took = loop {
            if let Some(a) = acked.lock().await.iter().filter(|a| a.0 > killed).map(|a| a.1).min() {
                break a.duration_since(killed);
            }
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("round {round}: no import acknowledged within 60 s of the kill");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut k = 0;
        let search_took = loop {
            let api = &apis[survivors[k % 2]];
            k += 1;
            if let Ok(r) = search(api, "", 1).await
                && complete(&r)
            {
                break killed.elapsed();
            }
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("round {round}: searches still incomplete 60 s after the kill");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        sent += importer.await? * 10 + 10;
        eprintln!(
            "failover round {}: killed node {victim}; first acknowledged import {} ms, complete search {} ms",
            round + 1,
            import_took.as_millis(),
            search_took.as_millis()
        );
        to_import.push(import_took);
        to_search.push(search_took);
        cluster.restart(victim).await?;
        cluster.wait_converged(Duration::from_secs(60)).await?;
    }
    to_import.sort();
    to_search.sort();
    let kills = o.kills;
    let median = |v: &[Duration]| v[v.len() / 2];
    let max = |v: &[Duration]| v[v.len() - 1];
    t.info(
        format!("failover (lease 2000 ms, {kills} kills): kill -> first acked import, median"),
        ms(median(&to_import)),
    );
    t.info("failover: kill -> first acked import, max", ms(max(&to_import)));
    t.info("failover: kill -> first complete search (no missingShards), median", ms(median(&to_search)));
    t.info("failover: kill -> first complete search, max", ms(max(&to_search)));
    Ok(())
}

/// Part 4: `arca shard move` of a store of `--move-messages` tiny messages.
async fn bench_move(o: &Options, t: &mut Table) -> Result<()> {
    let n = o.move_messages;
    let (cluster, _objects) = start(2, &[]).await?;
    let api = cluster.api(0);
    let built = Instant::now();
    upload_many(std::slice::from_ref(&api), "mv", n, 5000).await?;
    eprintln!("{n} messages archived for the move in {:?}", built.elapsed());
    let target = cluster.local_state(1).await?["id"].as_u64().context("node id")?;
    let stores = api.ok("GetStores", &[]).await?;
    let id = stores[0]["id"].as_u64().context("store id")?;
    let started = Instant::now();
    let out = cluster.cli(0, &["shard", "--json", "move", &id.to_string(), &target.to_string()]);
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("arca shard move failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let report: Value = serde_json::from_str(&stdout).with_context(|| format!("JSON: {stdout}"))?;
    let moved = &report["moves"][0];
    let total_ms = moved["totalMs"].as_u64().context("totalMs")?;
    if moved["status"] != "moved" {
        bail!("the store did not move: {report}");
    }
    t.check(
        format!("shard move, {n} msgs (arca shard move, totalMs)"),
        format!("{total_ms} ms"),
        "< 5000 ms",
        total_ms < 5000,
    );
    t.info(
        "shard move: prepare / switch / CLI wall",
        format!("{} / {} / {} ms", moved["prepareMs"], moved["switchMs"], wall.as_millis()),
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    let o = Options::parse()?;
    let mut t = Table::default();
    let started = Instant::now();
    if o.runs("search") {
        eprintln!("search ...");
        bench_search(&o, &mut t).await?;
    }
    if o.runs("import") {
        eprintln!("import ...");
        bench_import(&o, &mut t).await?;
    }
    if o.runs("failover") {
        eprintln!("failover ...");
        bench_failover(&o, &mut t).await?;
    }
    if o.runs("move") {
        eprintln!("move ...");
        bench_move(&o, &mut t).await?;
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("arca-bench-cluster: {cores} cores, run took {:.0} s", started.elapsed().as_secs_f64());
    t.print();
    Ok(())
}
