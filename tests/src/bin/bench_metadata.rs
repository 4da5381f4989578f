//! Metadata write benchmark: `CreateUser` calls through the Administration API against one node and
//! against three processes (calls spread over all nodes), printing writes/s and p50/p99 latency.
//!
//! Run with `scripts/bench-metadata.sh` (release build). Options: `--writes N` (default 2000),
//! `--concurrency C` (default 16).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use arca_tests::{ApiClient, Cluster};
use tokio::sync::Mutex;

struct Row {
    setup: String,
    concurrency: usize,
    writes: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

async fn run(nodes: usize, writes: usize, concurrency: usize) -> Result<Row> {
    let cluster = Cluster::start(
        nodes,
        &[("ARCA_CLUSTER_HEARTBEAT_MS", "250"), ("ARCA_CLUSTER_ELECTION_TIMEOUT_MS", "1000")],
    )
    .await?;
    let apis: Vec<ApiClient> = (0..nodes).map(|i| cluster.api(i)).collect();
    // Warm up connections and the password cache on every node.
    for api in &apis {
        api.ok("GetServerInfo", &[]).await?;
        api.ok("GetUsers", &[]).await?;
    }
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(writes)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (apis, latencies, next) = (apis.clone(), latencies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= writes {
                    return Ok::<(), anyhow::Error>(());
                }
                let api = &apis[i % apis.len()];
                let t = Instant::now();
                let env = api
                    .invoke("CreateUser", &[("userName", &format!("bench{i}")), ("privileges", "login")])
                    .await?;
                if env["statusCode"] != "succeeded" {
                    bail!("CreateUser failed: {env}");
                }
                latencies.lock().await.push(t.elapsed());
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = start.elapsed();
    let mut l = latencies.lock().await.clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    Ok(Row {
        setup: if nodes == 1 { "1 node".into() } else { format!("{nodes} processes") },
        concurrency,
        writes,
        per_sec: writes as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let writes = arg("--writes", 2000);
    let concurrency = arg("--concurrency", 16);
    let mut rows = Vec::new();
    for (nodes, c) in [(1, 1), (1, concurrency), (3, 1), (3, concurrency)] {
        eprintln!("running {writes} writes on {nodes} node(s) with concurrency {c} ...");
        rows.push(run(nodes, writes, c).await?);
    }
    let base = rows
        .iter()
        .find(|r| r.setup == "1 node" && r.concurrency == concurrency)
        .map(|r| r.per_sec)
        .unwrap_or(1.0);
    println!(
        "{:<12} {:>5} {:>7} {:>10} {:>10} {:>10} {:>14}",
        "setup", "conc", "writes", "writes/s", "p50 ms", "p99 ms", "vs 1 node"
    );
    for r in &rows {
        println!(
            "{:<12} {:>5} {:>7} {:>10.0} {:>10.2} {:>10.2} {:>13.2}x",
            r.setup,
            r.concurrency,
            r.writes,
            r.per_sec,
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0,
            r.per_sec / base
        );
    }
    Ok(())
}
