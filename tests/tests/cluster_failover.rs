//! Three real `arca` processes: leader killed mid-write, partitions, snapshots for new members.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use arca_tests::{ApiClient, Cluster};
use serde_json::Value;
use tokio::sync::Mutex;

/// Creates `name` through `api`, retrying with the same idempotency key; `Ok(true)` once it succeeded.
async fn create_user(apis: &[ApiClient], first: usize, name: &str) -> Result<()> {
    let key = format!("create-{name}");
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let api = &apis[(first + attempt) % apis.len()];
        attempt += 1;
        let answer = api
            .post_raw(
                "/api/invoke/CreateUser",
                &[("userName", name), ("privileges", "login")],
                &[("Idempotency-Key", key.as_str())],
            )
            .await;
        match answer {
            Ok(a) if a.status == 200 => {
                let env = a.json();
                if env["statusCode"] == "succeeded" {
                    return Ok(());
                }
                // The cluster may be electing a leader: retry elsewhere with the same key.
            }
            _ => {}
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("CreateUser {name} did not succeed within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn user_names(api: &ApiClient) -> Result<Vec<String>> {
    let users = api.ok("GetUsers", &[]).await?;
    Ok(users
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["userName"].as_str().map(str::to_string))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_mid_write_loses_nothing_and_applies_nothing_twice() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    let status = cluster.status(0).await?;
    let voters =
        status["members"].as_array().into_iter().flatten().filter(|m| m["role"] != "learner").count();
    assert_eq!(voters, 3, "three voters: {status}");
    let leader = cluster.leader().await?;

    let apis: Vec<ApiClient> = (0..3).map(|i| cluster.api(i)).collect();
    let done = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..12 {
        let (apis, done, next, acknowledged) =
            (apis.clone(), done.clone(), next.clone(), acknowledged.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= 1000 {
                    return Ok::<(), anyhow::Error>(());
                }
                let name = format!("user{i:04}");
                create_user(&apis, i + w, &name).await?;
                acknowledged.lock().await.push(name);
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    while done.load(Ordering::SeqCst) < 400 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_kill = done.load(Ordering::SeqCst);
    cluster.kill(leader);
    let killed_at = Instant::now();
    // Writes resume through the survivors within 10 s.
    while done.load(Ordering::SeqCst) < at_kill + 20 {
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "writes did not resume within 10 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("writes resumed {:?} after killing the leader", killed_at.elapsed());
    for w in workers {
        w.await??;
    }
    cluster.restart(leader).await?;
    let states = cluster.wait_converged(Duration::from_secs(60)).await?;
    eprintln!("converged: {states:?}");

    let acknowledged: BTreeSet<String> = acknowledged.lock().await.iter().cloned().collect();
    assert_eq!(acknowledged.len(), 1000);
    for i in 0..3 {
        let names = user_names(&cluster.api(i)).await?;
        let set: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(set.len(), names.len(), "node {i} lists a user twice");
        assert_eq!(names.len(), 1001, "node {i}: 1000 users plus admin");
        assert!(acknowledged.is_subset(&set), "node {i} lost an acknowledged user");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_off_leader_stops_writing_and_follows_after_healing() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    let old = cluster.leader().await?;
    let api_old = cluster.api(old);
    api_old.ok("CreateUser", &[("userName", "before"), ("privileges", "login")]).await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;

    cluster.partition.cut(old);
    let refused =
        api_old.invoke("CreateUser", &[("userName", "on-the-island"), ("privileges", "login")]).await?;
    assert_ne!(
        refused["statusCode"], "succeeded",
        "an isolated leader must not acknowledge writes: {refused}"
    );

    let other = (old + 1) % 3;
    let start = Instant::now();
    loop {
        let env = cluster
            .api(other)
            .invoke("CreateUser", &[("userName", "after"), ("privileges", "login")])
            .await?;
        if env["statusCode"] == "succeeded" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the majority did not accept writes: {env}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new_leader = cluster.status(other).await?["leader"].clone();
    cluster.partition.heal(old);
    cluster.wait_converged(Duration::from_secs(30)).await?;
    let status = cluster.status(old).await?;
    assert_eq!(status["leader"], new_leader, "the old leader follows the new one");
    for i in 0..3 {
        let names = user_names(&cluster.api(i)).await?;
        assert!(
            names.contains(&"before".to_string()) && names.contains(&"after".to_string()),
            "node {i}: {names:?}"
        );
        assert!(
            !names.contains(&"on-the-island".to_string()),
            "an unacknowledged island write must not survive"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fourth_node_joins_from_snapshot_as_learner_then_is_promoted_and_removed() -> Result<()> {
    let mut cluster = Cluster::start(3, &[("ARCA_CLUSTER_SNAPSHOT_AFTER_LOGS", "40")]).await?;
    let api = cluster.api(0);
    for i in 0..120 {
        api.ok("CreateUser", &[("userName", &format!("s{i}")), ("privileges", "login")]).await?;
    }
    let index = cluster.add_node(arca_tests::cluster::Kind::Process).await?;
    let status = cluster.wait_members(4, Duration::from_secs(30)).await?;
    let fourth = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["apiAddr"].as_str() == Some(cluster.nodes[index].api_addr().as_str()))
        .cloned()
        .expect("fourth member listed");
    assert_eq!(fourth["role"], "learner", "{status}");
    cluster.wait_converged(Duration::from_secs(30)).await?;
    let snapshot = cluster.nodes[index].dir.join("data/raft/raft-snapshot.bin");
    assert!(snapshot.exists(), "the learner was brought up to date by a snapshot ({})", snapshot.display());
    let names = user_names(&cluster.api(index)).await?;
    assert_eq!(names.len(), 121);

    let id_num = fourth["id"].as_u64().expect("id");
    let id = id_num.to_string();
    let out = cluster.cli(0, &["cluster", "promote", &id]);
    assert!(out.status.success(), "promote: {}", String::from_utf8_lossy(&out.stderr));
    let status = cluster.status(0).await?;
    let role = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"].as_u64() == Some(id_num))
        .map(|m| m["role"].clone());
    assert_eq!(role, Some(Value::from("voter")), "{status}");

    let out = cluster.cli(1, &["cluster", "remove", &id]);
    assert!(out.status.success(), "remove: {}", String::from_utf8_lossy(&out.stderr));
    let status = cluster.wait_members(3, Duration::from_secs(20)).await?;
    assert!(status["members"].as_array().into_iter().flatten().all(|m| m["id"].as_u64() != Some(id_num)));
    let out = cluster.cli(2, &["cluster", "status", "--json"]);
    assert!(out.status.success());
    let parsed: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(parsed["members"].as_array().map(Vec::len), Some(3));
    Ok(())
}
