//! The gate under abuse (issue 12), end to end against real `arca` processes: the default-password rule
//! on every route, cross-site requests, login throttling per user and address, the bound on password
//! verifications, CMP-01 archive access, and the `archive` and `export` privileges.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::cluster::Kind;
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

/// A password that satisfies the policy (ADM-02 example).
const GOOD_PASSWORD: &str = "Sommer2024!x";
const ALICE_PW: &str = "Garten-2024!pw";

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: {subject}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
         Message-ID: <{subject}@example.com>\r\n\r\nbody of {subject}\r\n"
    )
    .into_bytes()
}

fn http() -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(60))
        .build()?)
}

fn error_text(env: &Value) -> String {
    format!(
        "{} | {}",
        env["error"]["message"].as_str().unwrap_or(""),
        env["error"]["details"].as_str().unwrap_or("")
    )
}

/// An address of this machine that is not loopback (the route to a public address says which).
fn non_loopback_ip() -> Result<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    socket
        .connect("192.0.2.1:9")
        .or_else(|_| socket.connect("8.8.8.8:53"))
        .context("no route off this host")?;
    let ip = socket.local_addr()?.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        bail!("this machine has no non-loopback address to call the API from ({ip})");
    }
    Ok(ip)
}

/// Uploads one message into `archive` as `client`; the answer's status and body.
async fn upload(client: &ApiClient, archive: &str, subject: &str) -> Result<(u16, String)> {
    let r = client
        .request(
            reqwest::Method::POST,
            &format!("/api/data/archives/{archive}/messages?folder=Inbox%2FSecret"),
            Some("message/rfc822"),
            message(subject),
        )
        .await?;
    Ok((r.status, r.text()))
}

/// Message ids `client` finds for `q`.
async fn found(client: &ApiClient, q: &str) -> Result<Vec<String>> {
    let answer = client.post_json("/api/data/search", &json!({"q": q}).to_string()).await?;
    Ok(answer["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["id"].as_str().map(str::to_string))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_password_gate_refuses_every_route_from_other_hosts() -> Result<()> {
    let remote_ip = non_loopback_ip()?;
    let mut cluster = Cluster::new(&[])?;
    let index = cluster.place_node(Kind::Process, &[]).await?;
    let port = cluster.nodes[index].api_port;
    cluster.nodes[index].env.push(("ARCA_LISTEN_API".into(), format!("0.0.0.0:{port}")));
    cluster.launch(index)?;
    cluster.wait_api(index, Duration::from_secs(60)).await?;
    let local = cluster.api(0);
    let remote = ApiClient::new(&format!("{remote_ip}:{port}"), "admin", "admin");

    // While admin has the password admin: the data API refuses other hosts too (it accepted uploads).
    let (status, text) = upload(&remote, "admin", "hxremote").await?;
    assert_eq!(status, 403, "remote upload with the default password: {text}");
    assert!(text.contains("default password"), "{text}");
    let r = remote
        .request(reqwest::Method::POST, "/api/data/search", Some("application/json"), b"{}".to_vec())
        .await?;
    assert_eq!(r.status, 403, "remote search: {}", r.text());
    let env = remote.post_raw("/api/invoke/GetServerInfo", &[], &[]).await?.json();
    assert!(error_text(&env).contains("default password"), "{env}");
    assert!(found(&local, "hxremote").await?.is_empty(), "nothing was archived");

    // From this host everything works; once the password is changed, other hosts may call too.
    assert_eq!(upload(&local, "admin", "hxlocal").await?.0, 200);
    local.ok("SetUserPassword", &[("userName", "admin"), ("password", GOOD_PASSWORD)]).await?;
    let remote = remote.with_login("admin", GOOD_PASSWORD);
    let (status, text) = upload(&remote, "admin", "hxremote2").await?;
    assert_eq!(status, 200, "remote upload after the change: {text}");
    remote.ok("GetServerInfo", &[]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_are_refused_and_scripts_without_origin_still_work() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    let addr = cluster.nodes[0].api_addr();
    let http = http()?;
    let post = |path: &str, content_type: &str, body: &[u8], headers: &[(&str, &str)]| {
        let mut req = http
            .post(format!("https://{addr}{path}"))
            .basic_auth("admin", Some("admin"))
            .header("content-type", content_type)
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let form = b"userName=csrf&privileges=admin&password=Sommer2024%21x";

    // A page on another site: refused, nothing created or archived.
    let evil = [("origin", "https://evil.example")];
    let r = post("/api/invoke/CreateUser", "application/x-www-form-urlencoded", form, &evil).await?;
    assert_eq!(r.status().as_u16(), 403);
    let text = r.text().await?;
    assert!(text.contains("evil.example") && text.contains("Origin"), "{text}");
    let r = post("/api/data/archives/admin/messages", "text/plain", &message("hxplanted"), &evil).await?;
    assert_eq!(r.status().as_u16(), 403, "planting mail cross-site");
    let fetch = [("sec-fetch-site", "cross-site")];
    let r = post("/api/invoke/CreateUser", "application/x-www-form-urlencoded", form, &fetch).await?;
    assert_eq!(r.status().as_u16(), 403, "Sec-Fetch-Site: cross-site");
    // A browser request with the node's own origin still may not use a form content type to change state.
    let own = format!("https://{addr}");
    let r = post(
        "/api/invoke/CreateUser",
        "application/x-www-form-urlencoded",
        form,
        &[("origin", own.as_str())],
    )
    .await?;
    assert_eq!(r.status().as_u16(), 403, "form POST from a browser");
    assert!(r.text().await?.contains("application/x-www-form-urlencoded"));
    let users = api.ok("GetUsers", &[]).await?;
    assert!(!users.to_string().contains("csrf"), "no cross-site call created a user: {users}");
    assert!(found(&api, "hxplanted").await?.is_empty(), "no mail was planted");

    // Scripts send no Origin: `curl -d` (form data) and text/plain uploads keep working.
    let r = post("/api/invoke/CreateUser", "application/x-www-form-urlencoded", form, &[]).await?;
    assert_eq!(r.status().as_u16(), 200);
    let env: Value = r.json().await?;
    assert_eq!(env["statusCode"], "succeeded", "{env}");
    let r = post("/api/data/archives/admin/messages", "text/plain", &message("hxscript"), &[]).await?;
    assert_eq!(r.status().as_u16(), 200, "script upload");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_the_guessed_user_not_others_and_are_logged() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "alice"), ("privileges", "login"), ("password", ALICE_PW)]).await?;

    // Ten wrong passwords for one user from this address: that user is slowed down here (429 naming
    // the limit) ...
    let mallory = api.with_login("alice", "Wrong-2024!pw");
    for i in 0..10 {
        let a = mallory.post_raw("/api/data/search", &[], &[]).await?;
        assert_eq!(a.status, 401, "attempt {i}: {}", a.body);
    }
    let a = mallory.post_raw("/api/data/search", &[], &[]).await?;
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.body.contains("api.login_failures_per_account_address"), "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    // ... while every other user behind the same address (a load balancer's) still logs in.
    api.ok("GetServerInfo", &[]).await?;
    let bob_client = api.with_login("nobody-else", "x");
    assert_eq!(bob_client.post_raw("/api/invoke/GetServerInfo", &[], &[]).await?.status, 401);

    // Unknown users cost a password verification like known ones (no fast answer reveals who exists).
    let mut slowest_unknown = Duration::ZERO;
    for i in 0..3 {
        let ghost = api.with_login(&format!("ghost{i}"), "Wrong-2024!pw");
        let started = Instant::now();
        assert_eq!(ghost.post_raw("/api/invoke/GetServerInfo", &[], &[]).await?.status, 401);
        slowest_unknown = slowest_unknown.max(started.elapsed());
    }
    assert!(
        slowest_unknown >= Duration::from_millis(5),
        "unknown users answer too fast: {slowest_unknown:?}"
    );

    // Failed logins are logged with the (sanitised) name and the address.
    let forger = api.with_login("eve\nINFO forged line", "x");
    assert_eq!(forger.post_raw("/api/invoke/GetServerInfo", &[], &[]).await?.status, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = cluster.nodes[0].log();
    let failures: Vec<&str> = log.lines().filter(|l| l.contains("failed login")).collect();
    assert!(failures.iter().any(|l| l.contains("alice") && l.contains("127.0.0.1")), "{log}");
    assert!(failures.iter().any(|l| l.contains("eve\\nINFO forged line")), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("INFO forged line")), "a user name forged a log line");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_are_bounded_and_a_verified_caller_stays_fast() -> Result<()> {
    let cluster = Cluster::start(
        1,
        &[("ARCA_API_MAX_PASSWORD_CHECKS", "1"), ("ARCA_API_PASSWORD_CHECK_WAIT_MS", "100")],
    )
    .await?;
    let api = cluster.api(0);
    api.ok("GetServerInfo", &[]).await?; // verified once: cached from now on
    let mut attackers = Vec::new();
    for i in 0..40 {
        let client = api.with_login(&format!("guess{i}"), "Wrong-2024!pw");
        attackers
            .push(tokio::spawn(async move { client.post_raw("/api/invoke/GetServerInfo", &[], &[]).await }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    api.ok("GetServerInfo", &[]).await?;
    let legit = started.elapsed();
    let mut busy = 0;
    for a in attackers {
        let a = a.await??;
        match a.status {
            401 => {}
            503 => {
                assert!(a.body.contains("api.max_password_checks"), "{}", a.body);
                busy += 1;
            }
            other => bail!("unexpected {other}: {}", a.body),
        }
    }
    assert!(busy > 0, "40 concurrent verifications with one slot and 100 ms of wait: some must be refused");
    assert!(legit < Duration::from_millis(1500), "a verified caller waited {legit:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_only_archive_names_while_archive_access_is_blocked() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "alice"), ("privileges", "login"), ("password", ALICE_PW)]).await?;
    api.ok("CreateUser", &[("userName", "root2"), ("privileges", "admin"), ("password", GOOD_PASSWORD)])
        .await?;
    let (status, text) = upload(&api, "alice", "hxcmpsecret").await?;
    assert_eq!(status, 200, "{text}");
    let alice_id = found(&api.with_login("alice", ALICE_PW), "hxcmpsecret").await?;
    assert_eq!(alice_id.len(), 1);

    assert_eq!(api.ok("GetComplianceConfiguration", &[]).await?, json!({"adminEmailPreviewEnabled": false}));
    // No administrator can grant itself or another administrator content access.
    for admin in ["admin", "root2"] {
        let env = api
            .invoke(
                "SetUserPrivilegesOnFolder",
                &[("userName", admin), ("folder", "alice"), ("privileges", "read")],
            )
            .await?;
        assert!(error_text(&env).contains("CMP-01"), "{admin}: {env}");
    }
    // Administrator functions show archive names and statistics only.
    let env = api.invoke("GetMessages", &[("folder", "alice")]).await?;
    assert!(error_text(&env).contains("CMP-01"), "{env}");
    let folders = api.ok("GetChildFolders", &[]).await?;
    assert!(folders.as_array().is_some_and(|f| f.contains(&json!("alice"))), "{folders}");
    assert!(!folders.to_string().contains("alice/"), "no folders of alice's archive: {folders}");
    assert_eq!(api.ok("GetChildFolders", &[("folder", "alice")]).await?, json!([]), "nothing below alice");
    let stats = api.ok("GetFolderStatistics", &[]).await?;
    assert!(stats.to_string().contains("alice"), "statistics stay visible: {stats}");
    assert!(found(&api, "hxcmpsecret").await?.is_empty(), "no search hits");

    // Changing it needs the administrator's own password again; unsupported settings are named.
    let unblock = json!({"adminEmailPreviewEnabled": true}).to_string();
    let env = api
        .invoke("SetComplianceConfiguration", &[("config", &unblock), ("password", "not-my-password")])
        .await?;
    assert!(error_text(&env).contains("password"), "{env}");
    let env =
        api.invoke("SetComplianceConfiguration", &[("config", r#"{"legalHoldEnabled": true}"#)]).await?;
    assert!(error_text(&env).contains("legalHoldEnabled"), "{env}");
    assert_eq!(api.ok("GetComplianceConfiguration", &[]).await?["adminEmailPreviewEnabled"], false);
    api.ok(
        "SetComplianceConfiguration",
        &[("config", &unblock), ("password", "admin"), ("reason", "audit 2024")],
    )
    .await?;
    assert_eq!(api.ok("GetComplianceConfiguration", &[]).await?["adminEmailPreviewEnabled"], true);
    assert_eq!(found(&api, "hxcmpsecret").await?, alice_id, "unblocked: administrators read every archive");
    let messages = api.ok("GetMessages", &[("folder", "alice")]).await?;
    assert_eq!(messages.as_array().map(Vec::len), Some(1), "{messages}");
    assert!(api.ok("GetChildFolders", &[]).await?.to_string().contains("alice/Inbox/Secret"));

    // Blocked again: back to names only.
    let block = json!({"adminEmailPreviewEnabled": false}).to_string();
    api.ok("SetComplianceConfiguration", &[("config", &block), ("password", "admin")]).await?;
    assert!(found(&api, "hxcmpsecret").await?.is_empty());
    assert!(error_text(&api.invoke("GetMessages", &[("folder", "alice")]).await?).contains("CMP-01"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_needs_the_archive_privilege_and_bulk_export_the_export_privilege() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "alice"), ("privileges", "login"), ("password", ALICE_PW)]).await?;
    let alice = api.with_login("alice", ALICE_PW);

    // `write` on the own archive without the global `archive`: refused naming it (ADM-03, ADM-04).
    let (status, text) = upload(&alice, "alice", "hxnoarchive").await?;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("'archive'"), "{text}");
    api.ok("SetUserPrivileges", &[("userName", "alice"), ("privileges", "login,archive")]).await?;
    let (status, text) = upload(&alice, "alice", "hxwitharchive").await?;
    assert_eq!(status, 200, "{text}");

    // Searching and opening single messages need no special right; a bulk export needs `export`.
    assert_eq!(found(&alice, "hxwitharchive").await?.len(), 1);
    let export = json!({"q": "", "export": true}).to_string();
    let r = alice
        .request(
            reqwest::Method::POST,
            "/api/data/search",
            Some("application/json"),
            export.clone().into_bytes(),
        )
        .await?;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("'export'"), "{}", r.text());
    api.ok("SetUserPrivileges", &[("userName", "alice"), ("privileges", "login,archive,export")]).await?;
    let r = alice
        .request(reqwest::Method::POST, "/api/data/search", Some("application/json"), export.into_bytes())
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());
    Ok(())
}
