//! Folders end to end (issue 12, findings 3 and 9): one rule for valid folder paths, applied before
//! anything is stored (a refused folder refuses its message, naming the rule, and the others of a batch
//! proceed); moving a subfolder moves its mail (browse, search, message view and export show it at the
//! new path, nothing at the old one) without writing anything per message; an export reports a message
//! it cannot write and goes on, failing at the end.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

const ERIKA_PW: &str = "Sommer2024!x";

/// Percent-encodes a query value.
fn q(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Bert <bert@example.com>\nTo: Erika <erika@example.com>\nSubject: {subject}\n\
         Date: Sat, 2 Mar 2024 09:00:00 +0000\nMessage-ID: <{subject}@example.com>\n\nbody of {subject}\n"
    )
    .into_bytes()
}

/// A cluster of one node with user `erika` (own archive) whose archive the admin may read.
async fn cluster_with_erika() -> Result<(Cluster, ApiClient, ApiClient)> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "erika"), ("privileges", "login,archive"), ("password", ERIKA_PW)])
        .await?;
    // Administrators read other archives only while archive access is unblocked (CMP-01).
    api.ok(
        "SetComplianceConfiguration",
        &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
    )
    .await?;
    let erika = api.with_login("erika", ERIKA_PW);
    Ok((cluster, api, erika))
}

/// Uploads one message into `folder` of erika's archive; answers the HTTP status and JSON.
async fn upload(erika: &ApiClient, folder: &str, raw: Vec<u8>) -> Result<(u16, Value)> {
    let path = format!("/api/data/archives/erika/messages?folder={}", q(folder));
    let r = erika.request(reqwest::Method::POST, &path, Some("message/rfc822"), raw).await?;
    Ok((r.status, r.json()))
}

/// Sends `(folder, message)` records to erika's batch route (`folder length u32 LE, folder, message
/// length u32 LE, message` each).
async fn upload_batch(erika: &ApiClient, records: &[(&str, Vec<u8>)]) -> Result<arca_tests::api::Reply> {
    let mut body = Vec::new();
    for (folder, raw) in records {
        body.extend((folder.len() as u32).to_le_bytes());
        body.extend(folder.as_bytes());
        body.extend((raw.len() as u32).to_le_bytes());
        body.extend(raw);
    }
    erika
        .request(
            reqwest::Method::POST,
            "/api/data/archives/erika/batch",
            Some("application/octet-stream"),
            body,
        )
        .await
}

/// Uploads one message that must be archived; answers its id.
async fn archived(erika: &ApiClient, folder: &str, subject: &str) -> Result<String> {
    let (status, v) = upload(erika, folder, message(subject)).await?;
    ensure!(status == 200 && v["status"] == "archived", "upload into '{folder}': {status} {v}");
    Ok(v["id"].as_str().context("id")?.to_string())
}

async fn get_json(client: &ApiClient, path: &str) -> Result<Value> {
    let r = client.get_as(path).await?;
    ensure!(r.status == 200, "GET {path}: HTTP {} {}", r.status, r.text());
    Ok(r.json())
}

/// (folder, subject) of every hit of a page.
fn places(page: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = page["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h["folder"].as_str().unwrap_or("?").to_string(),
                h["subject"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every file below `dir`, recursively.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The object store directory of node 0 (`<data>/objects`).
fn objects_dir(cluster: &Cluster) -> Result<PathBuf> {
    let mut stack = vec![cluster.nodes[0].dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let path = e.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "objects") {
                    return Ok(path);
                }
                stack.push(path);
            }
        }
    }
    anyhow::bail!("no objects directory below {}", cluster.nodes[0].dir.display())
}

fn export_json(out: &std::process::Output) -> Result<Value> {
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!("export: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_a_subfolder_moves_its_mail_for_browsing_search_and_export_without_rewriting_it() -> Result<()>
{
    let (cluster, api, erika) = cluster_with_erika().await?;
    for subject in ["p1", "p2", "p3"] {
        archived(&erika, "Projekte/2024", subject).await?;
    }
    let q1 = archived(&erika, "Projekte/2024/Q1", "q1").await?;
    archived(&erika, "Inbox", "i1").await?;

    // The move writes no object and rewrites no message: only the folder tree in Raft changes.
    let objects = objects_dir(&cluster)?;
    let before = files_below(&objects);
    let stores_before = api.ok("GetStores", &[]).await?;
    api.ok("MoveFolder", &[("fromFolder", "erika/Projekte"), ("toFolder", "erika/Archiv/Alt")]).await?;
    assert_eq!(files_below(&objects), before, "moving a folder writes no object");
    assert_eq!(api.ok("GetStores", &[]).await?, stores_before, "no manifest was committed for the move");

    // Browsing: the tree and the folder lists show the mail at its new place only.
    let tree = get_json(&erika, "/api/data/archives/erika/folders").await?;
    let paths: Vec<&str> =
        tree["folders"].as_array().context("folders")?.iter().filter_map(|f| f["path"].as_str()).collect();
    assert_eq!(paths, ["Archiv", "Archiv/Alt", "Archiv/Alt/2024", "Archiv/Alt/2024/Q1", "Inbox"]);
    let list = |folder: &str, sub: bool| {
        format!("/api/data/archives/erika/messages?folder={}&subfolders={sub}", q(folder))
    };
    let moved = get_json(&erika, &list("Archiv/Alt/2024", false)).await?;
    let p = |s: &str| ("Archiv/Alt/2024".to_string(), s.to_string());
    assert_eq!(places(&moved), [p("p1"), p("p2"), p("p3")]);
    let with_sub = get_json(&erika, &list("Archiv", true)).await?;
    assert_eq!(with_sub["total"], 4, "{with_sub}");
    assert!(places(&with_sub).contains(&("Archiv/Alt/2024/Q1".into(), "q1".into())));
    let old = erika.get_as(&list("Projekte/2024", false)).await?;
    assert_eq!(old.status, 404, "the old folder is gone: {}", old.text());
    let view = get_json(&erika, &format!("/api/data/messages/{q1}")).await?;
    assert_eq!(view["folder"], "Archiv/Alt/2024/Q1");

    // Search: a folder filter on the new path finds them; no hit anywhere names the old path.
    let search = |body: Value| {
        let erika = erika.clone();
        async move { erika.post_json("/api/data/search", &body.to_string()).await }
    };
    let all = search(json!({"q": "", "limit": 100})).await?;
    let every = places(&all);
    assert_eq!(every.len(), 5, "{all}");
    assert!(every.iter().all(|(f, _)| !f.starts_with("Projekte")), "{every:?}");
    let words = search(json!({"q": "body q1"})).await?;
    assert_eq!(places(&words), [("Archiv/Alt/2024/Q1".to_string(), "q1".to_string())]);

    // Export with the folder structure: the files sit below the new path, none below the old one.
    let dir = cluster.root().join("export");
    let out =
        cluster.cli(0, &["export", "", "--dir", &dir.display().to_string(), "--keep-structure", "--json"]);
    assert!(out.status.success(), "export: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(export_json(&out)?["exported"], 5);
    let eml =
        |d: &Path| files_below(d).into_iter().filter(|f| f.extension().is_some_and(|e| e == "eml")).count();
    assert_eq!(eml(&dir.join("erika/Archiv/Alt/2024")), 4, "3 in the folder, 1 in its subfolder");
    assert!(!dir.join("erika/Projekte").exists(), "nothing under the old path");
    let header = std::fs::read(files_below(&dir.join("erika/Archiv/Alt/2024/Q1"))[0].clone())?;
    let folder_line = format!("X-Arca-Folder: {}", "Archiv/Alt/2024/Q1");
    assert!(
        String::from_utf8_lossy(&header).lines().any(|l| l.starts_with("X-Arca-Folder:") && l.contains("Q1")),
        "the X-Arca lines name the new folder ({folder_line})"
    );

    // A new folder at the old path starts empty: the moved mail does not come back there.
    archived(&erika, "Projekte/2024", "new").await?;
    let fresh = get_json(&erika, &list("Projekte/2024", false)).await?;
    assert_eq!(places(&fresh), [("Projekte/2024".to_string(), "new".to_string())]);
    assert_eq!(get_json(&erika, &list("Archiv/Alt/2024", false)).await?["total"], 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folders_the_rule_refuses_refuse_their_message_naming_the_rule_and_the_others_proceed() -> Result<()>
{
    let (_cluster, api, erika) = cluster_with_erika().await?;
    let too_deep = vec!["d"; 40].join("/");
    let lossy = String::from_utf8_lossy(b"caf\xe9").into_owned();
    let folders: Vec<(&str, &str)> = vec![
        ("Inbox", ""),
        ("a//b", "empty folder name"),
        ("x/../y", "'..'"),
        ("bad\u{1}name", "control characters"),
        (too_deep.as_str(), "MAX_FOLDER_DEPTH"),
        (lossy.as_str(), "U+FFFD"),
        ("Sent", ""),
    ];
    let records: Vec<(&str, Vec<u8>)> =
        folders.iter().enumerate().map(|(i, (folder, _))| (*folder, message(&format!("m{i}")))).collect();
    let r = upload_batch(&erika, &records).await?;
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().context("results")?.clone();
    assert_eq!(results.len(), folders.len(), "{results:?}");
    for ((folder, rule), result) in folders.iter().zip(&results) {
        if rule.is_empty() {
            assert_eq!(result["status"], "archived", "{folder:?}: {result}");
        } else {
            assert_eq!(result["status"], "refused", "{folder:?}: {result}");
            let reason = result["reason"].as_str().unwrap_or_default();
            assert!(reason.starts_with("folder:") && reason.contains(rule), "{folder:?}: {reason}");
        }
    }
    let tree = get_json(&erika, "/api/data/archives/erika/folders").await?;
    let paths: Vec<&str> =
        tree["folders"].as_array().context("folders")?.iter().filter_map(|f| f["path"].as_str()).collect();
    assert_eq!(paths, ["Inbox", "Sent"], "nothing of a refused folder is recorded");
    assert_eq!(erika.all_ids("erika").await?.len(), 2, "refused messages are not archived");

    // The single upload answers 400 naming the rule; a 15,000-level path is refused at once.
    for (folder, rule) in [("a//b", "empty folder name"), (too_deep.as_str(), "MAX_FOLDER_DEPTH")] {
        let (status, v) = upload(&erika, folder, message("single")).await?;
        assert_eq!(status, 400, "{folder:?}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(rule)), "{folder:?}: {v}");
    }
    let bomb = "a/".repeat(15_000) + "a";
    let started = std::time::Instant::now();
    let (status, v) = upload(&erika, &bomb, message("bomb")).await?;
    assert_eq!(status, 400, "{v}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "refused quickly");

    // Depth 100,000 (200 KB, too long for a URL) in a batch record: refused in under a second naming
    // a limit, with nothing recorded (the tree is checked below).
    let abyss = "a/".repeat(100_000) + "a";
    let started = std::time::Instant::now();
    let r = upload_batch(&erika, &[(abyss.as_str(), message("abyss"))]).await?;
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "depth 100,000 refused within a second");
    assert_eq!(r.status, 200, "{}", r.text());
    let result = &r.json()["results"][0];
    assert_eq!(result["status"], "refused", "{result}");
    // The path length bound (MAX_FOLDER_PATH_CHARS) is met before the depth bound: either names a limit.
    let reason = result["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("MAX_FOLDER_PATH_CHARS") || reason.contains("MAX_FOLDER_DEPTH"), "{result}");
    assert_eq!(
        api.ok("GetChildFolders", &[("folder", "erika")]).await?,
        json!(["erika/Inbox", "erika/Sent"])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_reports_a_message_it_cannot_write_and_goes_on_exiting_non_zero() -> Result<()> {
    let (cluster, _api, erika) = cluster_with_erika().await?;
    archived(&erika, "Inbox", "i1").await?;
    archived(&erika, "Inbox", "i2").await?;
    let blocked = archived(&erika, "Blocked", "b1").await?;

    // EML: a file where the folder's directory should be.
    let dir = cluster.root().join("eml");
    std::fs::create_dir_all(dir.join("erika"))?;
    std::fs::write(dir.join("erika/Blocked"), b"in the way")?;
    let out =
        cluster.cli(0, &["export", "", "--dir", &dir.display().to_string(), "--keep-structure", "--json"]);
    assert!(!out.status.success(), "a message not written fails the export");
    let summary = export_json(&out)?;
    assert_eq!(summary["exported"], 2, "the others are written: {summary}");
    let failed = summary["failed"].as_array().context("failed")?;
    assert_eq!(failed.len(), 1, "{summary}");
    assert_eq!(failed[0]["id"], json!(blocked));
    assert!(failed[0]["file"].as_str().is_some_and(|f| f.ends_with("erika/Blocked")), "{summary}");
    assert!(failed[0]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{summary}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&blocked), "reported on stderr");
    assert_eq!(files_below(&dir.join("erika/Inbox")).len(), 2);

    // MBOX: a directory where the folder's file should be.
    let dir = cluster.root().join("mbox");
    std::fs::create_dir_all(dir.join("erika/Blocked.mbox/x"))?;
    let out = cluster.cli(
        0,
        &[
            "export",
            "",
            "--dir",
            &dir.display().to_string(),
            "--keep-structure",
            "--format",
            "mbox",
            "--json",
        ],
    );
    assert!(!out.status.success());
    let summary = export_json(&out)?;
    assert_eq!(summary["exported"], 2, "{summary}");
    assert_eq!(summary["failed"][0]["id"], json!(blocked), "{summary}");
    assert!(dir.join("erika/Inbox.mbox").is_file());
    Ok(())
}
