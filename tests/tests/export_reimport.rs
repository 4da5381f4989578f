//! Export and re-import through the CLI (EXP-02, ING-12): messages of the public corpus in two archives
//! with folders are exported as EML and MBOX with X-Arca-* lines, and re-imported into fresh clusters,
//! where every message returns to its archive and folder byte for byte; importing again adds nothing;
//! a tampered file is refused naming it; plain exports are the original bytes. And the store commands
//! (CLU-05): list, verify (a flipped pack byte names the messages), rebuild-index.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn json_of(out: &Output, what: &str) -> Result<Value> {
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{what}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Every message the admin may read as (archive, folder, SHA-256 of its downloaded bytes).
async fn inventory(api: &ApiClient) -> Result<BTreeSet<(String, String, String)>> {
    let mut out = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let body = json!({"q": "", "limit": 1000, "cursor": cursor}).to_string();
        let answer = api.post_json("/api/data/search", &body).await?;
        assert_eq!(answer["missingShards"], json!([]), "{answer}");
        for h in answer["hits"].as_array().context("hits")? {
            let id = h["id"].as_str().context("id")?;
            let raw = api.get_authed(&format!("/api/data/messages/{id}/raw")).await?;
            out.insert((
                h["archive"].as_str().context("archive")?.to_string(),
                h["folder"].as_str().context("folder")?.to_string(),
                sha256_hex(&raw),
            ));
        }
        match answer["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(out),
        }
    }
}

/// Files below `dir` (recursively) with the given extension.
fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let path = e?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the first `n` files of `from` (name order) into `to`.
fn copy_first(from: &Path, to: &Path, n: usize) -> Result<()> {
    std::fs::create_dir_all(to)?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(from)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for p in names.into_iter().take(n) {
        std::fs::copy(&p, to.join(p.file_name().context("name")?))?;
    }
    Ok(())
}

/// Messages that stress the formats: no final line break, CR-only, `From ` lines, CRLF.
fn hostile_fixture(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let messages: [&[u8]; 4] = [
        b"From: a@example.com\nSubject: no final line break\n\nlast line",
        b"From: b@example.com\rSubject: old mac line ends\r\rbody\rFrom here\r",
        b"From: c@example.com\nSubject: quoting\n\nFrom the start\n>From quoted\n>>From twice\n\n",
        b"From: d@example.com\r\nSubject: crlf\r\n\r\nFrom x\r\n.\r\n",
    ];
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(dir.join(format!("h{i}.eml")), m)?;
    }
    Ok(())
}

/// Re-imports `dir` in `format` into a fresh cluster and returns it with the import summary.
async fn reimport_fresh(format: &str, dir: &Path) -> Result<(Cluster, Value)> {
    let cluster = Cluster::start(1, &[]).await?;
    let out = cluster.cli(0, &["import", format, &dir.display().to_string(), "--reimport", "--json"]);
    let summary = json_of(&out, "reimport")?;
    let api = cluster.api(0);
    // Administrators read other archives only while archive access is unblocked (CMP-01).
    api.ok(
        "SetComplianceConfiguration",
        &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
    )
    .await?;
    Ok((cluster, summary))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exported_corpus_reimports_into_a_fresh_cluster_into_the_same_archives_and_folders() -> Result<()> {
    let Some(shared) = arca_tests::shared_dir("corpus/public/index.tsv") else {
        eprintln!("skipped: the shared corpus is not there (set ARCA_SHARED_DIR)");
        return Ok(());
    };
    let cluster = Cluster::start(1, &[]).await?;
    let root = cluster.root().to_path_buf();
    let unpacked = root.join("corpus");
    // The first 3755 messages in index order: csdmc2010 and jfs-discussion.
    let status = Command::new("python3")
        .arg(shared.join("corpus/unpack"))
        .arg(&unpacked)
        .args(["--format", "files", "--limit", "3755"])
        .status()?;
    assert!(status.success(), "unpacking the corpus failed");

    let api = cluster.api(0);
    for user in ["alpha", "beta"] {
        api.ok("CreateUser", &[("userName", user), ("privileges", "login")]).await?;
        // Administrators read other archives only while archive access is unblocked (CMP-01).
        api.ok(
            "SetComplianceConfiguration",
            &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
        )
        .await?;
    }
    let staging = root.join("staging");
    copy_first(&unpacked.join("csdmc2010/spam"), &staging.join("spam"), 120)?;
    hostile_fixture(&staging.join("hostile"))?;
    let jfs = |year: &str| unpacked.join("jfs-discussion").join(year);
    let imports: Vec<(PathBuf, &str, &str)> = vec![
        (jfs("2019"), "alpha", "Lists/jfs/2019"),
        (jfs("2020"), "alpha", "Lists/jfs/2020"),
        (jfs("2021"), "alpha", "Lists/jfs/2021"),
        (staging.join("spam"), "beta", "Entwürfe 2024"),
        (staging.join("hostile"), "beta", "100% odd/.hidden"),
        // The same content in a second archive is a message of its own there.
        (jfs("2019"), "beta", ""),
    ];
    for (dir, user, folder) in &imports {
        let out = cluster.cli(
            0,
            &["import", "eml", &dir.display().to_string(), "--user", user, "--folder", folder, "--json"],
        );
        let summary = json_of(&out, "import")?;
        assert_eq!(summary["refused"], json!([]), "{summary}");
    }
    let original = inventory(&api).await?;
    assert!(original.len() > 300, "a few hundred messages: {}", original.len());
    let folders: BTreeSet<(&str, &str)> = original.iter().map(|(a, f, _)| (a.as_str(), f.as_str())).collect();
    assert_eq!(folders.len(), 6, "two archives with several folders: {folders:?}");

    // Export: EML with folders, MBOX with folders, MBOX flat, plain EML.
    let export = |args: &[&str]| -> Result<Value> {
        let mut all = vec!["export", ""];
        all.extend_from_slice(args);
        all.push("--json");
        json_of(&cluster.cli(0, &all), "export")
    };
    let eml_dir = root.join("export-eml");
    let eml = export(&["--dir", &eml_dir.display().to_string(), "--keep-structure"])?;
    assert_eq!(eml["exported"], original.len(), "{eml}");
    let again = export(&["--dir", &eml_dir.display().to_string(), "--keep-structure"])?;
    assert_eq!(
        (again["exported"].as_u64(), again["alreadyPresent"].as_u64()),
        (Some(0), Some(original.len() as u64)),
        "an update writes only missing files: {again}"
    );
    let eml_files = files(&eml_dir, "eml")?;
    assert_eq!(eml_files.len(), original.len());
    for f in &eml_files {
        let bytes = std::fs::read(f)?;
        assert_eq!(
            f.file_stem().and_then(|s| s.to_str()),
            Some(sha256_hex(&bytes).as_str()),
            "{} is named by its hash",
            f.display()
        );
        assert!(bytes.starts_with(b"X-Arca-Archive: "), "{}", f.display());
    }
    assert!(eml_dir.join("beta/Entwürfe 2024").is_dir(), "one directory per archive and folder");
    assert!(eml_dir.join("beta/100%25 odd/%2Ehidden").is_dir(), "unsafe names are percent-encoded");
    let mbox_dir = root.join("export-mbox");
    let mbox = export(&["--dir", &mbox_dir.display().to_string(), "--keep-structure", "--format", "mbox"])?;
    assert_eq!(
        (mbox["exported"].as_u64(), mbox["files"].as_u64()),
        (Some(original.len() as u64), Some(6)),
        "{mbox}"
    );
    assert!(mbox_dir.join("beta.mbox").is_file() && mbox_dir.join("alpha/Lists/jfs/2019.mbox").is_file());
    let flat_dir = root.join("export-flat");
    let flat = export(&["--dir", &flat_dir.display().to_string(), "--format", "mbox", "--archive", "alpha"])?;
    assert_eq!(flat["files"], 1, "{flat}");
    let plain_dir = root.join("export-plain");
    export(&["--dir", &plain_dir.display().to_string(), "--plain"])?;
    let plain: BTreeSet<String> = files(&plain_dir, "eml")?
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).expect("readable");
            let hash = sha256_hex(&bytes);
            assert_eq!(
                f.file_stem().and_then(|s| s.to_str()),
                Some(hash.as_str()),
                "plain files are the original bytes"
            );
            hash
        })
        .collect();
    let hashes: BTreeSet<String> = original.iter().map(|(_, _, h)| h.clone()).collect();
    assert_eq!(plain, hashes, "plain export: every message once, byte-identical to the original");
    // The corpus's own hashes: what was exported is what index.tsv lists.
    let index = std::fs::read_to_string(shared.join("corpus/public/index.tsv"))?;
    let corpus: BTreeSet<&str> = index.lines().filter_map(|l| l.split('\t').nth(1)).collect();
    let from_corpus = hashes.iter().filter(|h| corpus.contains(h.as_str())).count();
    assert_eq!(from_corpus, hashes.len() - 4, "every message but the 4 synthetic ones matches index.tsv");

    // EML re-import into a fresh cluster: every message back in its archive and folder, byte for byte.
    let (fresh, summary) = reimport_fresh("eml", &eml_dir).await?;
    assert_eq!(
        (summary["archived"].as_u64(), summary["refused"].clone()),
        (Some(original.len() as u64), json!([])),
        "{summary}"
    );
    let fresh_api = fresh.api(0);
    assert_eq!(inventory(&fresh_api).await?, original, "EML re-import restores archives, folders and bytes");
    let tree = fresh_api.ok("GetChildFolders", &[]).await?;
    for f in ["alpha/Lists/jfs/2019", "beta/Entwürfe 2024"] {
        assert!(tree.as_array().is_some_and(|t| t.contains(&json!(f))), "folder {f} created: {tree}");
    }
    let out = fresh.cli(0, &["import", "eml", &eml_dir.display().to_string(), "--reimport", "--json"]);
    let twice = json_of(&out, "second reimport")?;
    assert_eq!(
        (twice["archived"].as_u64(), twice["duplicates"].as_u64()),
        (Some(0), Some(original.len() as u64)),
        "{twice}"
    );

    // A tampered file is refused, naming it; a message without X-Arca lines needs --user.
    let tampered_dir = root.join("tampered");
    std::fs::create_dir_all(&tampered_dir)?;
    let victim = tampered_dir.join("victim.eml");
    let mut bytes = std::fs::read(&eml_files[0])?;
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&victim, &bytes)?;
    std::fs::copy(staging.join("hostile/h0.eml"), tampered_dir.join("untagged.eml"))?;
    let out = fresh.cli(0, &["import", "eml", &tampered_dir.display().to_string(), "--reimport", "--json"]);
    assert_eq!(out.status.code(), Some(1), "refusals make the re-import exit 1");
    let refused: Value =
        serde_json::from_slice(&out.stdout).context("the summary is printed all the same")?;
    assert_eq!(refused["archived"], 0, "{refused}");
    let reasons = refused["refused"].as_array().context("refused")?;
    assert_eq!(reasons.len(), 2, "{refused}");
    let named = |name: &str| {
        reasons.iter().find(|r| r["source"].as_str().is_some_and(|s| s.ends_with(name))).cloned()
    };
    let victim_reason = named("victim.eml").context("the tampered file is named")?;
    assert!(victim_reason["reason"].as_str().is_some_and(|r| r.contains("altered")), "{victim_reason}");
    let untagged = named("untagged.eml").context("the untagged file is named")?;
    assert!(untagged["reason"].as_str().is_some_and(|r| r.contains("X-Arca")), "{untagged}");
    drop(fresh);

    // MBOX re-import into another fresh cluster: the same.
    let (fresh, summary) = reimport_fresh("mbox", &mbox_dir).await?;
    assert_eq!(
        (summary["archived"].as_u64(), summary["refused"].clone()),
        (Some(original.len() as u64), json!([])),
        "{summary}"
    );
    assert_eq!(
        inventory(&fresh.api(0)).await?,
        original,
        "MBOX re-import restores archives, folders and bytes"
    );
    Ok(())
}

/// Writes `n` small distinct messages as EML files.
fn fixture(dir: &Path, n: usize, tag: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..n {
        let text = format!(
            "From: a@example.com\r\nTo: b@example.com\r\nSubject: {tag} {i}\r\nDate: Mon, {} Jan 2024 10:00:00 +0000\r\n\r\nBody {tag} {i}\r\n",
            1 + i % 28
        );
        std::fs::write(dir.join(format!("{i:04}.eml")), text)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_commands_list_verify_and_rebuild_and_verify_names_a_damaged_packs_messages() -> Result<()> {
    let mut cluster = Cluster::start(1, &[]).await?;
    for part in ["a", "b"] {
        let dir = cluster.root().join(part);
        fixture(&dir, 30, part)?;
        let out = cluster.cli(0, &["import", "eml", &dir.display().to_string(), "--user", "admin", "--json"]);
        json_of(&out, "import")?;
    }
    let list = json_of(&cluster.cli(0, &["store", "list", "--json"]), "store list")?;
    let store = &list.as_array().context("stores")?[0];
    assert_eq!(store["messageCount"], 60, "{list}");
    let id = store["id"].as_u64().context("id")?.to_string();
    let table = cluster.cli(0, &["store", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("MESSAGES") && table.lines().nth(1).is_some_and(|l| l.contains("60")), "{table}");

    let ok = cluster.cli(0, &["store", "verify", &id]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact"));

    // A store without its index: the export refuses to be incomplete unless --allow-partial.
    cluster.stop(0).await?;
    std::fs::remove_dir_all(cluster.nodes[0].dir.join(format!("data/shards/{id}/index")))?;
    std::fs::remove_dir_all(
        cluster.nodes[0].dir.join(format!("data/objects/tenants/default/shards/{id}/index")),
    )?;
    cluster.restart(0).await?;
    let dir = cluster.root().join("export");
    let dir_arg = dir.display().to_string();
    let refused = cluster.cli(0, &["export", "", "--dir", &dir_arg]);
    assert!(!refused.status.success(), "a partial search fails the export");
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains(&id) && why.contains("--allow-partial"), "{why}");
    let partial = json_of(
        &cluster.cli(0, &["export", "", "--dir", &dir_arg, "--allow-partial", "--json"]),
        "partial export",
    )?;
    assert_eq!(
        (partial["exported"].clone(), partial["missingShards"].clone()),
        (json!(0), json!([store["id"]])),
        "{partial}"
    );

    let rebuilt = json_of(&cluster.cli(0, &["shard", "rebuild-index", &id, "--json"]), "rebuild-index")?;
    assert_eq!(rebuilt["messages"], 60, "{rebuilt}");
    let full = json_of(&cluster.cli(0, &["export", "", "--dir", &dir_arg, "--json"]), "export")?;
    assert_eq!(full["exported"], 60, "after the rebuild every message is exported: {full}");

    let packs_dir = cluster.nodes[0].dir.join(format!("data/objects/tenants/default/shards/{id}/packs"));
    let mut packs: Vec<PathBuf> =
        std::fs::read_dir(&packs_dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    packs.sort();
    let mut bytes = std::fs::read(&packs[0])?;
    bytes[100] ^= 0x20;
    std::fs::write(&packs[0], &bytes)?;
    let damaged = cluster.cli(0, &["store", "verify", &id]);
    assert!(!damaged.status.success(), "damage makes verify fail");
    let report = String::from_utf8_lossy(&damaged.stdout);
    assert!(report.contains("DAMAGED"), "{report}");
    assert!(
        report.lines().any(|l| l.trim().starts_with(&format!("{id}:"))),
        "affected messages are named: {report}"
    );
    let as_json = cluster.cli(0, &["store", "verify", &id, "--json"]);
    assert!(!as_json.status.success());
    let report: Value = serde_json::from_slice(&as_json.stdout)?;
    assert_eq!(report["intact"], false, "{report}");
    Ok(())
}
