//! `arca import` as scripts and cron see it (issue 12, findings 5 and 14): what is not mail is refused
//! with the file and the reason, the exit code says whether everything was archived, and an import goes
//! on through another node (or the restarted one) when a node dies under it, with a `--json` summary of
//! what was acknowledged, refused and failed even when it cannot finish.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use arca_tests::{ApiClient, Cluster, arca_bin};
use serde_json::{Value, json};

/// Writes `n` distinct messages of about `body_bytes` each as `dir/NNNNN.eml`; answers their subjects.
fn fixture(dir: &Path, n: usize, body_bytes: usize) -> Result<BTreeSet<String>> {
    std::fs::create_dir_all(dir)?;
    let filler = "lorem ipsum dolor sit amet ".repeat(body_bytes / 27 + 1);
    let mut subjects = BTreeSet::new();
    for i in 0..n {
        let subject = format!("import message {i:05}");
        let text = format!(
            "From: a@example.com\r\nTo: b@example.com\r\nSubject: {subject}\r\n\
             Date: Mon, 6 Jan 2025 10:00:00 +0000\r\n\r\n{i} {filler}\r\n"
        );
        std::fs::write(dir.join(format!("{i:05}.eml")), text)?;
        subjects.insert(subject);
    }
    Ok(subjects)
}

/// The summary a `--json` import printed (also when it failed).
fn summary(out: &Output) -> Result<Value> {
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "no JSON summary ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The entry of a summary list whose source ends with `name`.
fn entry<'a>(summary: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    summary[list].as_array()?.iter().find(|r| r["source"].as_str().is_some_and(|s| s.ends_with(name)))
}

/// Starts `arca import eml <dir> --user admin --json` against `hosts` (comma-separated) in the background.
fn spawn_import(hosts: &str, dir: &Path, extra: &[&str]) -> Result<std::process::Child> {
    Ok(Command::new(arca_bin())
        .args(["import", "eml", &dir.display().to_string(), "--user", "admin", "--json", "--insecure"])
        .args(extra)
        .env("ARCA_HOST", hosts)
        .env("ARCA_USER", "admin")
        .env("ARCA_PASSWORD", "admin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// Messages of archive `admin` the node answers for.
async fn total(api: &ApiClient) -> Result<u64> {
    let answer = api
        .post_json("/api/data/search", &json!({"q": "", "archive": "admin", "limit": 1}).to_string())
        .await?;
    answer["total"].as_u64().context("total")
}

/// Waits until archive `admin` holds more than `above` messages (an upload was acknowledged).
async fn wait_for_more_than(api: &ApiClient, above: u64, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while total(api).await.unwrap_or(0) <= above {
        ensure!(start.elapsed() < timeout, "nothing was archived within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Every subject in archive `admin`, one entry per message (repeats kept).
async fn subjects(api: &ApiClient) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let body = json!({"q": "", "archive": "admin", "limit": 1000, "cursor": cursor}).to_string();
        let answer = api.post_json("/api/data/search", &body).await?;
        for h in answer["hits"].as_array().context("hits")? {
            out.push(h["subject"].as_str().unwrap_or_default().to_string());
        }
        match answer["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(out),
        }
    }
}

/// Asserts that archive `admin` holds each of `expected` exactly once, plus `others` other messages.
async fn assert_exactly_once(api: &ApiClient, expected: &BTreeSet<String>, others: usize) -> Result<()> {
    let all = subjects(api).await?;
    let listed: Vec<&String> = all.iter().filter(|s| expected.contains(*s)).collect();
    let distinct: BTreeSet<&String> = listed.iter().copied().collect();
    ensure!(distinct.len() == expected.len(), "{} of {} messages are there", distinct.len(), expected.len());
    ensure!(listed.len() == expected.len(), "{} messages are listed twice", listed.len() - distinct.len());
    ensure!(
        all.len() == expected.len() + others,
        "{} messages in all, expected {}",
        all.len(),
        expected.len() + others
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_refuses_what_is_not_mail_and_exits_non_zero_when_anything_was_not_archived() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    let root = cluster.root().to_path_buf();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde".to_vec();
    std::fs::write(root.join("picture.png"), &png)?;
    std::fs::write(root.join("README.md"), "# Arca\n\nA distributed e-mail archive.\n")?;
    let random: Vec<u8> = (0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(root.join("random.bin"), &random)?;

    // A picture as an MBOX, a README and random bytes as EML: each refused naming the file, exit 1.
    for (format, file, reason) in [
        ("mbox", "picture.png", "not an MBOX file: byte 0"),
        ("eml", "README.md", "not mail: no RFC 5322 header field at byte 0"),
        ("eml", "random.bin", "not mail: no RFC 5322 header field at byte 0"),
    ] {
        let path = root.join(file).display().to_string();
        let out = cluster.cli(0, &["import", format, &path, "--user", "admin", "--json"]);
        let s = summary(&out)?;
        assert_eq!(out.status.code(), Some(1), "import {format} {file}: {s}");
        assert_eq!((s["archived"].as_u64(), s["duplicates"].as_u64()), (Some(0), Some(0)), "{file}: {s}");
        let refused = entry(&s, "refused", file).with_context(|| format!("{file} is named: {s}"))?;
        assert!(refused["reason"].as_str().is_some_and(|r| r.contains(reason)), "{file}: {refused}");
        let text = cluster.cli(0, &["import", format, &path, "--user", "admin"]);
        assert_eq!(text.status.code(), Some(1), "without --json too");
        let stderr = String::from_utf8_lossy(&text.stderr);
        assert!(stderr.contains("import incomplete: 1 refused") && stderr.contains(file), "{stderr}");
    }

    // A missing path is an error naming it; a directory without mail says so. Both exit 1.
    let missing = root.join("no-such-dir").display().to_string();
    let out = cluster.cli(0, &["import", "eml", &missing, "--user", "admin", "--json"]);
    let s = summary(&out)?;
    assert_eq!(out.status.code(), Some(1), "{s}");
    let failed = entry(&s, "failed", "no-such-dir").with_context(|| format!("the path is named: {s}"))?;
    assert!(failed["reason"].as_str().is_some_and(|r| r.contains("No such file")), "{failed}");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty)?;
    std::fs::write(empty.join("notes.txt"), "not a message file")?;
    let out = cluster.cli(0, &["import", "eml", &empty.display().to_string(), "--user", "admin", "--json"]);
    let s = summary(&out)?;
    assert_eq!(out.status.code(), Some(1), "{s}");
    let failed = entry(&s, "failed", "empty").with_context(|| format!("the path is named: {s}"))?;
    assert_eq!(failed["reason"], "holds no mail: no .eml file found", "{s}");

    // The upload routes refuse what is not mail too, unless the uploader names it as a message.
    let single = api
        .request(
            reqwest::Method::POST,
            "/api/data/archives/admin/messages",
            Some("message/rfc822"),
            random.clone(),
        )
        .await?;
    assert_eq!(single.status, 200, "{}", single.text());
    assert_eq!(single.json()["status"], "refused", "{}", single.text());
    assert!(
        single.json()["reason"].as_str().is_some_and(|r| r.starts_with("not mail: ")),
        "{}",
        single.text()
    );
    let mut batch = Vec::new();
    for raw in [&png, &b"Subject: real mail\r\n\r\nhello\r\n".to_vec()] {
        batch.extend(0u32.to_le_bytes());
        batch.extend((raw.len() as u32).to_le_bytes());
        batch.extend(raw.iter());
    }
    let r = api.request(reqwest::Method::POST, "/api/data/archives/admin/batch", None, batch.clone()).await?;
    let results = r.json()["results"].clone();
    assert_eq!(results[0]["status"], "refused", "the PNG: {results}");
    assert_eq!(results[1]["status"], "archived", "the message beside it: {results}");
    let r = api
        .request(
            reqwest::Method::POST,
            "/api/data/archives/admin/batch",
            Some("application/mbox"),
            png.clone(),
        )
        .await?;
    assert_eq!(r.status, 400, "a PNG posted as MBOX: {}", r.text());
    assert!(r.text().contains("not an MBOX file: byte 0"), "{}", r.text());
    assert_eq!(total(&api).await?, 1, "only the real message was archived");

    // Files a directory names as messages (.eml) are archived even when they cannot be parsed (raw
    // bytes, invariant 7); the import exits 0 when everything was archived.
    let named = root.join("named");
    std::fs::create_dir_all(&named)?;
    std::fs::write(named.join("photo.eml"), &png)?;
    std::fs::write(named.join("mail.eml"), "Subject: fine\r\n\r\nbody\r\n")?;
    let out = cluster.cli(0, &["import", "eml", &named.display().to_string(), "--user", "admin", "--json"]);
    let s = summary(&out)?;
    assert!(out.status.success(), "{s}");
    assert_eq!(
        (s["archived"].as_u64(), s["refused"].clone(), s["failed"].clone()),
        (Some(2), json!([]), json!([]))
    );
    let out = cluster.cli(0, &["import", "eml", &named.display().to_string(), "--user", "admin", "--json"]);
    assert!(out.status.success(), "importing again (all present) succeeds: {}", summary(&out)?);
    assert_eq!(total(&api).await?, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_goes_on_through_another_node_when_one_is_killed_mid_import() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    // Node 1 serves the tenant's store (it archives the first message), so killing node 0 takes away
    // the node the import talks to, and the Raft leader it started with, but not the store.
    let seed = cluster.api(1);
    let r = seed
        .request(
            reqwest::Method::POST,
            "/api/data/archives/admin/messages",
            Some("message/rfc822"),
            b"Subject: seed\r\n\r\nfirst\r\n".to_vec(),
        )
        .await?;
    ensure!(r.json()["status"] == "archived", "seed: {}", r.text());
    let dir = cluster.root().join("mail");
    let expected = fixture(&dir, 12_000, 4096)?;
    let hosts = format!("{},{}", cluster.nodes[0].api_addr(), cluster.nodes[1].api_addr());
    let child = spawn_import(&hosts, &dir, &[])?;
    wait_for_more_than(&seed, 1, Duration::from_secs(120)).await?;
    cluster.kill(0);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let s = summary(&out)?;
    assert!(
        out.status.success(),
        "the import finished through node 1: {s}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        (s["refused"].clone(), s["failed"].clone(), s["complete"].clone()),
        (json!([]), json!([]), json!(true)),
        "{s}"
    );
    let acknowledged = s["archived"].as_u64().unwrap_or(0) + s["duplicates"].as_u64().unwrap_or(0);
    assert_eq!(acknowledged, expected.len() as u64, "every message acknowledged: {s}");
    ensure!(
        s["retries"].as_u64().unwrap_or(0) > 0,
        "node 0 died while batches were in flight (else the kill came too late): {s}"
    );
    assert_exactly_once(&seed, &expected, 1).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_that_cannot_finish_exits_1_with_a_summary_of_what_was_acknowledged() -> Result<()> {
    let mut cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    let dir = cluster.root().join("mail");
    let expected = fixture(&dir, 12_000, 4096)?;
    let child = spawn_import(&cluster.nodes[0].api_addr(), &dir, &["--attempts", "2"])?;
    wait_for_more_than(&api, 0, Duration::from_secs(120)).await?;
    cluster.kill(0);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let s = summary(&out)?;
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up after {:?} (2 attempts)",
        started.elapsed()
    );
    assert_eq!(s["complete"], false, "{s}");
    let failed = s["failed"].as_array().context("failed")?;
    ensure!(!failed.is_empty(), "the batches in flight are listed as failed: {s}");
    ensure!(
        failed.iter().all(|f| f["source"].as_str().is_some_and(|x| x.ends_with(".eml"))),
        "each failed message is named: {s}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("import incomplete") && stderr.contains("attempt 2 of 2"), "{stderr}");
    let archived = s["archived"].as_u64().context("archived")?;
    ensure!(archived + failed.len() as u64 <= expected.len() as u64, "{s}");

    // Acknowledged means durable: after a restart at least what was acknowledged is there; running the
    // import again completes it, every message exactly once.
    cluster.restart(0).await?;
    let after = total(&api).await?;
    ensure!(after >= archived, "{archived} acknowledged but only {after} after the restart");
    let out = cluster.cli(0, &["import", "eml", &dir.display().to_string(), "--user", "admin", "--json"]);
    let again = summary(&out)?;
    assert!(out.status.success(), "{again}");
    let seen = again["archived"].as_u64().unwrap_or(0) + again["duplicates"].as_u64().unwrap_or(0);
    assert_eq!(seen, expected.len() as u64, "{again}");
    assert_exactly_once(&api, &expected, 0).await?;
    Ok(())
}
