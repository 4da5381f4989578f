//! The public corpus through the whole stack: import with the CLI (several users, several folders),
//! every message fetched back byte for byte, re-import adds nothing (also after a second and a third store
//! became current), an import killed halfway and rerun leaves every message exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use arca_tests::{Cluster, arca_bin};
use serde_json::{Value, json};

/// path -> sha256 from the corpus index.
fn corpus_index(shared: &std::path::Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(shared.join("corpus/public/index.tsv"))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split('\t');
            Some((cols.next()?.to_string(), cols.next()?.to_string()))
        })
        .collect())
}

fn import(cluster: &Cluster, source: &std::path::Path, user: &str) -> Result<Value> {
    let out = cluster.cli(
        0,
        &["import", "eml", &source.display().to_string(), "--user", user, "--folder", "corpus", "--json"],
    );
    if !out.status.success() {
        bail!("import failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn public_corpus_imports_and_every_message_comes_back_byte_identical() -> Result<()> {
    let Some(shared) = arca_tests::shared_dir("corpus/public/index.tsv") else {
        eprintln!("skipped: the shared corpus is not there (set ARCA_SHARED_DIR)");
        return Ok(());
    };
    let index = corpus_index(&shared)?;
    let cluster = Cluster::start(1, &[]).await?;
    let unpacked = cluster.root().join("corpus");
    let status = Command::new("python3")
        .arg(shared.join("corpus/unpack"))
        .arg(&unpacked)
        .args(["--format", "files"])
        .status()?;
    assert!(status.success(), "unpacking the corpus failed");

    let api = cluster.api(0);
    let mut sources: BTreeSet<String> = BTreeSet::new();
    for path in index.keys() {
        sources.insert(path.split('/').next().unwrap_or_default().to_string());
    }
    let mut archived = 0;
    let mut duplicates = 0;
    for source in &sources {
        api.ok("CreateUser", &[("userName", source.as_str()), ("privileges", "login")]).await?;
        // Administrators read other archives only while archive access is unblocked (CMP-01).
        api.ok(
            "SetComplianceConfiguration",
            &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
        )
        .await?;
        let summary = import(&cluster, &unpacked.join(source), source)?;
        assert_eq!(summary["refused"], json!([]), "{source}: {summary}");
        archived += summary["archived"].as_u64().unwrap_or(0);
        duplicates += summary["duplicates"].as_u64().unwrap_or(0);
    }
    let unique_per_source: usize = sources
        .iter()
        .map(|s| {
            index
                .iter()
                .filter(|(p, _)| p.starts_with(&format!("{s}/")))
                .map(|(_, h)| h)
                .collect::<BTreeSet<_>>()
                .len()
        })
        .sum();
    assert_eq!(archived as usize, unique_per_source, "each distinct message of a source archived once");
    assert_eq!((archived + duplicates) as usize, index.len(), "every file was read");

    // Every message back, byte for byte: compare the SHA-256 of each download with the corpus index.
    for source in &sources {
        let expected: BTreeSet<&String> =
            index.iter().filter(|(p, _)| p.starts_with(&format!("{source}/"))).map(|(_, h)| h).collect();
        let ids = api.all_ids(source).await?;
        assert_eq!(ids.len(), expected.len(), "{source}: listed once each");
        let mut got = BTreeSet::new();
        for chunk in ids.chunks(16) {
            let paths: Vec<String> = chunk.iter().map(|id| format!("/api/data/messages/{id}/raw")).collect();
            let fetches = paths.iter().map(|p| api.get_authed(p));
            for bytes in futures_join(fetches).await? {
                got.insert(sha256_hex(&bytes));
            }
        }
        let expected: BTreeSet<String> = expected.into_iter().cloned().collect();
        assert_eq!(got, expected, "{source}: downloads are byte-identical to the corpus");
    }

    // Importing again adds nothing.
    let again = import(&cluster, &unpacked.join("jfs-discussion"), "jfs-discussion")?;
    assert_eq!(again["archived"], 0, "{again}");

    // Exactly once across stores: after a second and then a third store became current, re-importing
    // the whole corpus adds nothing (each message is found in the store that holds it).
    for store in ["corpus-second", "corpus-third"] {
        api.ok("CreateStore", &[("name", store), ("requestedState", "current")]).await?;
        for source in &sources {
            let again = import(&cluster, &unpacked.join(source), source)?;
            assert_eq!(again["archived"], 0, "{store}, {source}: {again}");
        }
    }

    // An import killed halfway and rerun ends with every message present exactly once.
    api.ok("CreateUser", &[("userName", "killed"), ("privileges", "login")]).await?;
    // Administrators read other archives only while archive access is unblocked (CMP-01).
    api.ok(
        "SetComplianceConfiguration",
        &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
    )
    .await?;
    let source = unpacked.join("spamassassin");
    let mut child = Command::new(arca_bin())
        .args(["import", "eml", &source.display().to_string(), "--user", "killed", "--insecure", "--json"])
        .env("ARCA_HOST", cluster.nodes[0].api_addr())
        .env("ARCA_PASSWORD", "admin")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    child.kill()?;
    child.wait()?;
    let partial = api.all_ids("killed").await?.len();
    let rerun = import(&cluster, &source, "killed")?;
    let expected = index
        .iter()
        .filter(|(p, _)| p.starts_with("spamassassin/"))
        .map(|(_, h)| h)
        .collect::<BTreeSet<_>>()
        .len();
    let ids = api.all_ids("killed").await?;
    assert_eq!(
        ids.len(),
        expected,
        "after the rerun every message is there exactly once (partial run had {partial})"
    );
    // Batches in flight when the client died may still have committed: the rerun finds them present.
    let seen = rerun["archived"].as_u64().unwrap_or(0) + rerun["duplicates"].as_u64().unwrap_or(0);
    assert_eq!(
        seen as usize,
        index.iter().filter(|(p, _)| p.starts_with("spamassassin/")).count(),
        "{rerun}"
    );
    assert!(rerun["duplicates"].as_u64().unwrap_or(0) as usize >= partial, "{rerun}");
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

async fn futures_join<F: std::future::Future<Output = Result<Vec<u8>>>>(
    fetches: impl Iterator<Item = F>,
) -> Result<Vec<Vec<u8>>> {
    let handles: Vec<F> = fetches.collect();
    let mut out = Vec::new();
    for r in futures::future::join_all(handles).await {
        out.push(r?);
    }
    Ok(out)
}
