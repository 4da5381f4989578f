//! Where a store is served (DESIGN "Ownership", invariant 5): reads and administration on any node go to
//! the node serving the store and never move it; forwarding carries anything the API accepts.

use anyhow::{Context, Result, bail};
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

fn mail(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!("From: a{i}@example.com\r\nSubject: {tag} {i}\r\n\r\n{tag} body {i}\r\n").into_bytes()
        })
        .collect()
}

/// Runs a function that may be long-running to its end and answers its result.
async fn finished(api: &ApiClient, function: &str, args: &[(&str, &str)]) -> Result<Value> {
    let mut env = api.invoke(function, args).await?;
    for _ in 0..300 {
        if env["statusCode"] != "running" {
            if !env["error"].is_null() || env["statusCode"] != "succeeded" {
                bail!("{function} failed: {env}");
            }
            return Ok(env["result"].clone());
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

/// (serving node, epoch) of the only store.
async fn owner(api: &ApiClient) -> Result<(Value, Value)> {
    let stores = api.ok("GetStores", &[]).await?;
    Ok((stores[0]["servingNode"].clone(), stores[0]["epoch"].clone()))
}

async fn search_total(api: &ApiClient) -> Result<Value> {
    let a = api.post_json("/api/data/search", &json!({"q": "", "limit": 1}).to_string()).await?;
    assert_eq!(a["missingShards"], json!([]), "{a}");
    Ok(a["total"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_and_administration_on_other_nodes_never_move_a_store() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let ids = cluster.api(0).upload_batch("admin", "inbox", &mail("first", 20)).await?;
    let before = owner(&cluster.api(0)).await?;
    let store = ids[0].split(':').next().context("store id")?.to_string();
    for i in [1, 2] {
        let api = cluster.api(i);
        let verified = finished(&api, "VerifyStore", &[("id", &store)]).await?;
        assert!(verified.to_string().contains("20"), "node {i}: {verified}");
        let rebuilt = finished(&api, "RebuildStoreIndex", &[("id", &store), ("folder", "admin")]).await?;
        assert_eq!(rebuilt["messages"], 20, "node {i}: {rebuilt}");
        let indexes = finished(&api, "GetStoreIndexes", &[("id", &store)]).await?;
        assert!(!indexes.to_string().is_empty());
        finished(&api, "GetMessages", &[("folder", "admin")]).await?;
        assert_eq!(
            api.get_authed(&format!("/api/data/messages/{}/raw", ids[3])).await?,
            mail("first", 20)[3]
        );
        assert_eq!(search_total(&api).await?, 20, "node {i}");
        assert_eq!(owner(&api).await?, before, "node {i} took the store over by reading it");
    }
    // The serving node keeps writing, and every node's searches see what it wrote (no stale copy).
    cluster.api(0).upload_batch("admin", "inbox", &mail("second", 5)).await?;
    for i in 0..3 {
        assert_eq!(search_total(&cluster.api(i)).await?, 25, "node {i} answers from the live index");
    }
    assert_eq!(owner(&cluster.api(2)).await?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_of_the_largest_accepted_size_is_forwarded_between_nodes() -> Result<()> {
    let cluster = Cluster::start(2, &[]).await?;
    cluster.api(0).upload_batch("admin", "inbox", &mail("small", 1)).await?;
    let (serving, _) = owner(&cluster.api(0)).await?;
    let limit = arca_ingest::Limits::default().max_message_bytes as usize;
    // One message of exactly the size limit: a base64 attachment of pseudo-random bytes.
    let mut raw = b"From: big@example.com\r\nSubject: the largest message\r\nMIME-Version: 1.0\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x: u32 = 7;
    while raw.len() < limit {
        for _ in 0..76 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            raw.push(alphabet[(x >> 16) as usize % 64]);
        }
        raw.extend(b"\r\n");
    }
    raw.truncate(limit - 2);
    raw.extend(b"\r\n");
    assert_eq!(raw.len(), limit);
    let ids = cluster.api(1).upload_batch("admin", "big", std::slice::from_ref(&raw)).await?;
    assert_eq!(owner(&cluster.api(1)).await?.0, serving, "node 1 forwarded to the serving node");
    let fetched = cluster.api(1).get_authed(&format!("/api/data/messages/{}/raw", ids[0])).await?;
    assert!(fetched == raw, "the forwarded fetch returns the message byte for byte");
    Ok(())
}
