//! Archiving on a three-node cluster: any node accepts imports, searches, lists, shows and fetches; the
//! node serving a shard does the work and the others forward to it.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use arca_tests::Cluster;
use serde_json::json;

fn fixture(dir: &std::path::Path, tag: &str, n: usize) -> Result<Vec<Vec<u8>>> {
    std::fs::create_dir_all(dir)?;
    let mut all = Vec::new();
    for i in 0..n {
        let raw = format!(
            "From: Sender {i} <s{i}@example.com>\r\nTo: team@example.com\r\nSubject: {tag} message {i}\r\nDate: Tue, 2 Jan 2024 10:{:02}:00 +0000\r\n\r\nHello {tag} {i}\r\n",
            i % 60
        )
        .into_bytes();
        std::fs::write(dir.join(format!("{i:03}.eml")), &raw)?;
        all.push(raw);
    }
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_node_imports_searches_and_fetches_through_the_serving_node() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let first = fixture(&cluster.root().join("first"), "alpha", 60)?;
    let out = cluster.cli(
        1,
        &["import", "eml", &cluster.root().join("first").display().to_string(), "--user", "admin", "--json"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = fixture(&cluster.root().join("second"), "beta", 40)?;
    let out = cluster.cli(
        2,
        &["import", "eml", &cluster.root().join("second").display().to_string(), "--user", "admin", "--json"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(summary["archived"], 40, "{summary}");

    let expected: BTreeSet<Vec<u8>> = first.into_iter().chain(second).collect();
    for i in 0..3 {
        let api = cluster.api(i);
        let answer = api.post_json("/api/data/search", &json!({"q": "", "limit": 1000}).to_string()).await?;
        assert_eq!(answer["total"], 100, "node {i}: {answer}");
        assert_eq!(answer["missingShards"], json!([]));
        let beta = api.post_json("/api/data/search", &json!({"q": "subject:beta"}).to_string()).await?;
        assert_eq!(beta["total"], 40, "node {i}");
        let mut got = BTreeSet::new();
        for hit in answer["hits"].as_array().context("hits")? {
            let id = hit["id"].as_str().context("id")?;
            got.insert(api.get_authed(&format!("/api/data/messages/{id}/raw")).await?);
        }
        assert_eq!(got, expected, "node {i} serves every message byte for byte");
        // The browsing routes answer on every node too: the archive's listing and a rendered message.
        let listed: serde_json::Value = serde_json::from_slice(
            &api.get_authed(
                "/api/data/archives/admin/messages?subfolders=true&sort=subject&asc=true&limit=1000",
            )
            .await?,
        )?;
        assert_eq!(listed["total"], 100, "node {i}: {listed}");
        let first = &listed["hits"][0];
        assert_eq!(first["subject"], "alpha message 0", "node {i}");
        let id = first["id"].as_str().context("id")?;
        let view: serde_json::Value =
            serde_json::from_slice(&api.get_authed(&format!("/api/data/messages/{id}")).await?)?;
        assert_eq!(view["subject"], "alpha message 0", "node {i}: {view}");
        assert_eq!(view["text"], "Hello alpha 0", "node {i}");
    }
    let stores = cluster.api(0).ok("GetStores", &[]).await?;
    assert_eq!(stores.as_array().map(Vec::len), Some(1), "one shard, served by one node: {stores}");
    assert_eq!(stores[0]["epoch"], 1, "no node took the shard over from another: {stores}");
    Ok(())
}
