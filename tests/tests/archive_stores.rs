//! Archive stores through the Administration API: statistics, verification that names damaged messages,
//! and an index deleted and rebuilt from the packs answering exactly as before.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

/// Writes `n` small distinct messages as EML files.
fn fixture(dir: &Path, n: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..n {
        let who = [
            "Anna Meier <anna@example.com>",
            "Bernd Meyer <bernd@firma.de>",
            "Carla Maier <carla@example.org>",
        ][i % 3];
        let subject = ["Rechnung März", "Daily Update", "Microsoft Windows news", "Auto repair"][i % 4];
        let text = format!(
            "From: {who}\r\nTo: team@example.com\r\nSubject: {subject} {i}\r\nDate: Mon, {} Jan 2024 10:00:00 +0000\r\nMessage-ID: <m{i}@example.com>\r\n\r\nBody number {i} mentions vorname.nachname and ZDNet.\r\n",
            1 + i % 28
        );
        std::fs::write(dir.join(format!("{i:04}.eml")), text)?;
    }
    Ok(())
}

async fn ids(api: &ApiClient, q: &str) -> Result<Vec<String>> {
    let answer = api
        .post_json(
            "/api/data/search",
            &json!({"q": q, "limit": 1000, "sort": "subject", "asc": true}).to_string(),
        )
        .await?;
    Ok(answer["hits"]
        .as_array()
        .context("hits")?
        .iter()
        .filter_map(|h| h["id"].as_str().map(str::to_string))
        .collect())
}

const QUERIES: &[&str] = &[
    "",
    "Rechnung",
    "\"Daily Update\"",
    "Auto*",
    "*example.com",
    "Me?er",
    "from:anna@example.com",
    "ZDNet -Windows",
    "subject:news",
];

async fn answers(api: &ApiClient) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for q in QUERIES {
        out.push(ids(api, q).await?);
    }
    Ok(out)
}

fn shard_dir(cluster: &Cluster, id: u64) -> PathBuf {
    cluster.nodes[0].dir.join(format!("data/objects/tenants/default/shards/{id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_index_is_rebuilt_from_packs_with_the_same_answers() -> Result<()> {
    let mut cluster = Cluster::start(1, &[]).await?;
    let source = cluster.root().join("fixture");
    fixture(&source, 300)?;
    let out = cluster.cli(0, &["import", "eml", &source.display().to_string(), "--user", "admin", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let api = cluster.api(0);
    let before = answers(&api).await?;
    assert_eq!(before[0].len(), 300);
    assert!(before.iter().all(|ids| !ids.is_empty()), "every query of the set has hits");
    assert!(before.iter().any(|ids| ids.len() < 300), "and they do not all match everything");

    let stores = api.ok("GetStores", &[]).await?;
    assert_eq!(stores.as_array().map(Vec::len), Some(1), "{stores}");
    assert_eq!(stores[0]["messageCount"], 300);
    assert_eq!(stores[0]["requestedState"], "current");
    let id = stores[0]["id"].as_u64().context("id")?;
    let indexes = api.ok("GetStoreIndexes", &[]).await?;
    assert_eq!(indexes[0]["documents"], 300, "{indexes}");

    cluster.stop(0).await?;
    std::fs::remove_dir_all(cluster.nodes[0].dir.join(format!("data/shards/{id}/index")))?;
    std::fs::remove_dir_all(shard_dir(&cluster, id).join("index"))?;
    cluster.restart(0).await?;
    let api = cluster.api(0);
    let partial = api.post_json("/api/data/search", &json!({"q": "Rechnung"}).to_string()).await?;
    assert_eq!(
        partial["missingShards"],
        json!([id]),
        "a store without its index is named, not hidden: {partial}"
    );

    let rebuilt = api.ok("RebuildStoreIndex", &[("id", &id.to_string()), ("folder", "admin")]).await;
    let rebuilt = match rebuilt {
        Ok(r) => r,
        Err(_) => {
            // Longer than invoke_wait: poll the token until it finishes.
            let env =
                api.invoke("RebuildStoreIndex", &[("id", &id.to_string()), ("folder", "admin")]).await?;
            wait_done(&api, env).await?
        }
    };
    assert_eq!(rebuilt["messages"], 300, "{rebuilt}");
    assert_eq!(answers(&api).await?, before, "the rebuilt index answers every query as before");
    Ok(())
}

async fn wait_done(api: &ApiClient, mut env: Value) -> Result<Value> {
    for _ in 0..120 {
        if env["statusCode"] != "running" {
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
    anyhow::bail!("call did not finish: {env}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_store_names_the_messages_of_a_flipped_byte_and_of_a_missing_pack() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    let source = cluster.root().join("fixture");
    for (part, n) in [("a", 40), ("b", 20)] {
        let dir = source.join(part);
        fixture(&dir, n)?;
        // Distinct content per part, so the second import makes a pack of its own.
        for f in std::fs::read_dir(&dir)? {
            let path = f?.path();
            let text = std::fs::read_to_string(&path)?.replace("Body number", &format!("Part {part} body"));
            std::fs::write(&path, text)?;
        }
        let out = cluster.cli(0, &["import", "eml", &dir.display().to_string(), "--user", "admin", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stores = api.ok("GetStores", &[]).await?;
    let id = stores[0]["id"].as_u64().context("id")?;
    let intact = api.ok("VerifyStore", &[("id", &id.to_string())]).await?;
    assert_eq!(intact["intact"], true, "{intact}");

    let mut packs: Vec<PathBuf> = std::fs::read_dir(shard_dir(&cluster, id).join("packs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    packs.sort_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
    assert!(packs.len() >= 2, "two imports make two packs: {packs:?}");
    let mut bytes = std::fs::read(&packs[1])?;
    bytes[100] ^= 0x20;
    std::fs::write(&packs[1], &bytes)?;
    std::fs::remove_file(&packs[0])?;

    let env = api.invoke("VerifyStore", &[("id", &id.to_string()), ("includeIndexes", "false")]).await?;
    let report = wait_done(&api, env).await?;
    assert_eq!(report["intact"], false, "{report}");
    let damaged = report["damaged"].as_array().context("damaged")?;
    assert_eq!(damaged.len(), 2, "{report}");
    let affected: usize = damaged.iter().map(|d| d["messages"].as_array().map(Vec::len).unwrap_or(0)).sum();
    assert!(affected >= 20, "the messages of the damaged block and of the missing pack are named: {report}");
    let missing = damaged
        .iter()
        .find(|d| d["reason"].as_str().is_some_and(|r| r.contains("cannot read")))
        .context("missing pack")?;
    let one = missing["messages"][0].as_str().context("an id")?;
    let fetch = api.get_authed(&format!("/api/data/messages/{one}/raw")).await;
    assert!(fetch.is_err(), "a message whose pack is gone is reported, never served");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_routed_by_address_files_each_message_in_every_known_users_archive() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    for (user, address) in [("anna", "anna@example.com"), ("bernd", "bernd@firma.de"), ("catchall", "")] {
        api.ok("CreateUser", &[("userName", user), ("privileges", "login")]).await?;
        if !address.is_empty() {
            api.ok("SetUserEmailAddresses", &[("userName", user), ("emailAddresses", address)]).await?;
        }
        // Administrators read other archives only while archive access is unblocked (CMP-01).
        api.ok(
            "SetComplianceConfiguration",
            &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
        )
        .await?;
    }
    let dir = cluster.root().join("routed");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("1.eml"),
        "From: Anna <Anna@Example.com>\r\nTo: bernd@firma.de\r\nSubject: one\r\n\r\nx\r\n",
    )?;
    std::fs::write(
        dir.join("2.eml"),
        "From: stranger@elsewhere.net\r\nTo: nobody@elsewhere.net\r\nSubject: two\r\n\r\ny\r\n",
    )?;
    let dir_arg = dir.display().to_string();
    let out = cluster.cli(0, &["import", "eml", &dir_arg, "--route-by-address", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(summary["archived"], 1, "{summary}");
    assert_eq!(
        summary["skipped"].as_array().map(Vec::len),
        Some(1),
        "the unknown one is reported as skipped (as asked: not a failure): {summary}"
    );
    let count = |archive: &'static str| {
        let api = api.clone();
        async move {
            let r =
                api.post_json("/api/data/search", &json!({"q": "", "archive": archive}).to_string()).await?;
            Ok::<u64, anyhow::Error>(r["total"].as_u64().unwrap_or(0))
        }
    };
    assert_eq!((count("anna").await?, count("bernd").await?, count("catchall").await?), (1, 1, 0));
    let out = cluster
        .cli(0, &["import", "eml", &dir_arg, "--route-by-address", "--unknown", "user:catchall", "--json"]);
    let summary: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        (summary["archived"].as_u64(), summary["duplicates"].as_u64()),
        (Some(1), Some(1)),
        "{summary}"
    );
    assert_eq!(count("catchall").await?, 1);
    Ok(())
}

/// Imports the EML files of `dir` into `user`'s archive; answers (archived, duplicates).
fn import(cluster: &Cluster, dir: &Path, user: &str) -> Result<(u64, u64)> {
    let out = cluster.cli(0, &["import", "eml", &dir.display().to_string(), "--user", user, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).context("import summary")?;
    Ok((
        summary["archived"].as_u64().context("archived")?,
        summary["duplicates"].as_u64().context("duplicates")?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reimport_after_a_second_and_a_third_store_became_current_adds_nothing() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "bob"), ("privileges", "login")]).await?;
    // Administrators read other archives only while archive access is unblocked (CMP-01).
    api.ok(
        "SetComplianceConfiguration",
        &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", "admin")],
    )
    .await?;
    let all = cluster.root().join("all");
    fixture(&all, 120)?;
    // The first 80 go into the first store.
    let first = cluster.root().join("first");
    std::fs::create_dir_all(&first)?;
    for i in 0..80 {
        std::fs::copy(all.join(format!("{i:04}.eml")), first.join(format!("{i:04}.eml")))?;
    }
    assert_eq!(import(&cluster, &first, "admin")?, (80, 0));
    let second = api.ok("CreateStore", &[("name", "second"), ("requestedState", "current")]).await?;
    assert_eq!(import(&cluster, &first, "admin")?, (0, 80), "the second store dedupes against the first");
    // 40 new ones land in the second store.
    assert_eq!(import(&cluster, &all, "admin")?, (40, 80));
    api.ok("CreateStore", &[("name", "third"), ("requestedState", "current")]).await?;
    assert_eq!(import(&cluster, &all, "admin")?, (0, 120), "the third store dedupes against both");
    // The same messages in another archive are that archive's own, once.
    assert_eq!(import(&cluster, &all, "bob")?, (120, 0));
    assert_eq!(import(&cluster, &all, "bob")?, (0, 120));

    let count = |archive: &'static str| {
        let api = api.clone();
        async move {
            let r = api
                .post_json(
                    "/api/data/search",
                    &json!({"q": "", "archive": archive, "limit": 1000}).to_string(),
                )
                .await?;
            Ok::<u64, anyhow::Error>(r["total"].as_u64().unwrap_or(0))
        }
    };
    assert_eq!((count("admin").await?, count("bob").await?), (120, 120));
    let stores = api.ok("GetStores", &[]).await?;
    let counts: Vec<(String, u64)> = stores
        .as_array()
        .context("stores")?
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or("").to_string(), s["messageCount"].as_u64().unwrap_or(0)))
        .collect();
    let second_id = second["id"].as_u64().context("id")?;
    let of = |name: &str| counts.iter().find(|(n, _)| n == name).map(|(_, c)| *c);
    assert_eq!((of("second"), of("third")), (Some(40), Some(120)), "{counts:?} (second is {second_id})");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_states_are_enforced_and_unsupported_store_arguments_are_refused() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    let dir = cluster.root().join("mail");
    fixture(&dir, 5)?;
    assert_eq!(import(&cluster, &dir, "admin")?.0, 5);
    for (name, value) in [
        ("databasePath", "/srv/arca/db"),
        ("contentPath", "/srv/c"),
        ("serverName", "sql1"),
        ("password", "x"),
    ] {
        let env = api.invoke("CreateStore", &[("name", "elsewhere"), (name, value)]).await?;
        let text = env["error"].to_string();
        assert_eq!(env["statusCode"], "failed", "{env}");
        assert!(text.contains(&format!("'{name}'")), "the refusal names {name}: {text}");
    }
    let stores = api.ok("GetStores", &[]).await?;
    assert_eq!(stores.as_array().map(Vec::len), Some(1), "nothing was created: {stores}");

    let old = api.ok("CreateStore", &[("name", "old"), ("requestedState", "normal")]).await?;
    let old = old["id"].as_u64().context("id")?.to_string();
    api.ok("SetStoreRequestedState", &[("id", &old), ("requestedState", "disabled")]).await?;
    let more = cluster.root().join("more");
    std::fs::create_dir_all(&more)?;
    std::fs::write(more.join("x.eml"), "From: a@example.com\r\nSubject: new\r\n\r\nnew\r\n")?;
    let refused = api
        .request(
            reqwest::Method::POST,
            "/api/data/archives/admin/messages?folder=Inbox",
            Some("message/rfc822"),
            b"From: a@example.com\r\nSubject: new\r\n\r\nnew\r\n".to_vec(),
        )
        .await?;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.text().contains("disabled") && refused.text().contains("'old'"), "{}", refused.text());
    api.ok("SetStoreRequestedState", &[("id", &old), ("requestedState", "normal")]).await?;
    assert_eq!(import(&cluster, &more, "admin")?.0, 1, "imports run again once no store is disabled");

    let refresh = api.invoke("RefreshAllStoreStatistics", &[]).await?;
    assert_eq!(refresh["statusCode"], "failed", "no success without the work: {refresh}");
    assert!(refresh["error"].to_string().contains("not available"), "{refresh}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_store_with_indexes_reports_an_index_that_does_not_cover_the_store() -> Result<()> {
    let mut cluster = Cluster::start(1, &[]).await?;
    let source = cluster.root().join("fixture");
    fixture(&source, 50)?;
    assert_eq!(import(&cluster, &source, "admin")?.0, 50);
    let api = cluster.api(0);
    let id = api.ok("GetStores", &[]).await?[0]["id"].as_u64().context("id")?;
    let args = [("id", id.to_string()), ("includeIndexes", "true".to_string())];
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = api.invoke("VerifyStore", &args).await?;
    let report = wait_done(&api, env).await?;
    assert_eq!(
        (report["intact"].clone(), report["index"]["documents"].clone()),
        (json!(true), json!(50)),
        "{report}"
    );

    cluster.stop(0).await?;
    std::fs::remove_dir_all(cluster.nodes[0].dir.join(format!("data/shards/{id}/index")))?;
    std::fs::remove_dir_all(shard_dir(&cluster, id).join("index"))?;
    cluster.restart(0).await?;
    let api = cluster.api(0);
    let env = api.invoke("VerifyStore", &args).await?;
    let report = wait_done(&api, env).await?;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["index"]["intact"], false, "{report}");
    assert_eq!(report["index"]["notIndexed"].as_array().map(Vec::len), Some(50), "{report}");
    assert!(report["damaged"].as_array().is_some_and(Vec::is_empty), "the packs are fine: {report}");
    let env = api.invoke("VerifyStore", &[("id", &id.to_string())]).await?;
    assert_eq!(wait_done(&api, env).await?["intact"], true, "without includeIndexes the packs alone count");
    Ok(())
}
