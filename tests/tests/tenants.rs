//! Tenants (CLU-04, CLU-05): two tenants with users and archives of the same names, each with its own
//! mail, see nothing of each other through any data route or Administration API function (every
//! function of the catalogue is called naming the other tenant's user, archive, folder and store);
//! their statistics count only their own; a disabled tenant is refused (403 naming its state); only a
//! cluster operator (an administrator of tenant `default`) manages tenants; `arca tenant … --json`.

use anyhow::{Context, Result};
use arca_tests::Cluster;
use arca_tests::api::ApiClient;
use serde_json::{Value, json};

const ACME_ADMIN_PW: &str = "Acme-Root-2024!x";
const BETA_ADMIN_PW: &str = "Beta-Root-2024!y";
const ACME_ALICE_PW: &str = "Sommer2024!acme";
const BETA_ALICE_PW: &str = "Herbst2024!beta";
const CAROL_PW: &str = "Winter2024!zzq";

/// A data API client that reports every status.
struct Data {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
    tenant_header: Option<String>,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Data {
    fn new(cluster: &Cluster, node: usize, user: &str, password: &str) -> Data {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("http client");
        Data {
            http,
            base: format!("https://{}", cluster.nodes[node].api_addr()),
            user: user.into(),
            password: password.into(),
            tenant_header: None,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> Result<Reply> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
            .body(body);
        if let Some(t) = &self.tenant_header {
            req = req.header("X-Arca-Tenant", t);
        }
        let resp = req.send().await.with_context(|| format!("{path} as {}", self.user))?;
        let status = resp.status().as_u16();
        Ok(Reply { status, body: resp.bytes().await?.to_vec() })
    }

    async fn get(&self, path: &str) -> Result<Reply> {
        self.send(reqwest::Method::GET, path, Vec::new()).await
    }

    async fn upload(&self, archive: &str, folder: &str, raw: &[u8]) -> Result<String> {
        let r = self
            .send(
                reqwest::Method::POST,
                &format!("/api/data/archives/{archive}/messages?folder={folder}"),
                raw.to_vec(),
            )
            .await?;
        anyhow::ensure!(r.status == 200, "upload as {}: HTTP {} {}", self.user, r.status, r.text());
        Ok(r.json()["id"].as_str().context("id")?.to_string())
    }

    async fn search(&self, body: Value) -> Result<Reply> {
        self.send(reqwest::Method::POST, "/api/data/search", body.to_string().into_bytes()).await
    }

    /// Ids a search finds (HTTP 200 required).
    async fn ids(&self, q: &str) -> Result<Vec<String>> {
        let r = self.search(json!({"q": q, "limit": 1000})).await?;
        anyhow::ensure!(r.status == 200, "search '{q}' as {}: HTTP {} {}", self.user, r.status, r.text());
        let mut ids: Vec<String> = r.json()["hits"]
            .as_array()
            .context("hits")?
            .iter()
            .filter_map(|h| h["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.com>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Date: Mon, 4 Mar 2024 10:00:00 +0100\r\nMessage-ID: <{subject}@example.com>\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nbody of {subject}\r\n--b\r\n\
         Content-Type: text/plain; name=note.txt\r\nContent-Disposition: attachment; filename=note.txt\r\n\r\n\
         attached {subject}\r\n--b--\r\n"
    )
    .into_bytes()
}

/// Invokes `function` and answers the envelope's text (whatever the status), after waiting for a
/// long-running call to finish.
async fn invoke_text(api: &ApiClient, function: &str, args: &[(&str, &str)]) -> Result<String> {
    let a = api.post_raw(&format!("/api/invoke/{function}"), args, &[]).await?;
    let mut text = a.body.clone();
    let mut envelope = a.json();
    while envelope["statusCode"] == "running" {
        let token = envelope["token"].as_str().context("token")?.to_string();
        let polled = api
            .post_raw(
                "/api/get-status",
                &[("token", &token), ("lastKnownStatusVersion", "0"), ("millisecondsTimeout", "5000")],
                &[],
            )
            .await?;
        text = polled.body.clone();
        envelope = polled.json();
    }
    Ok(text)
}

/// The ids of a tenant's stores, from `GetStores`, with their message counts.
async fn stores(api: &ApiClient) -> Result<Vec<(u64, u64)>> {
    let list = api.ok("GetStores", &[]).await?;
    Ok(list
        .as_array()
        .context("stores")?
        .iter()
        .map(|s| (s["id"].as_u64().unwrap_or(0), s["messageCount"].as_u64().unwrap_or(0)))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_tenants_with_the_same_names_see_nothing_of_each_other_on_any_route() -> Result<()> {
    let cluster = Cluster::start(2, &[]).await?;
    let operator = cluster.api(0);
    for (tenant, pw) in [("acme", ACME_ADMIN_PW), ("beta", BETA_ADMIN_PW)] {
        let created = operator.ok("CreateTenant", &[("name", tenant), ("adminPassword", pw)]).await?;
        assert_eq!(created["login"], format!("{tenant}/admin"), "{created}");
        assert!(created["adminPassword"].is_null(), "a given password is not echoed: {created}");
    }
    // Each tenant: its own admin `admin`, a user `alice` with her archive `alice`; beta also has carol.
    let acme_admin = cluster.api(0).with_login("acme/admin", ACME_ADMIN_PW);
    let beta_admin = cluster.api(1).with_login("beta/admin", BETA_ADMIN_PW);
    acme_admin
        .ok(
            "CreateUser",
            &[("userName", "alice"), ("privileges", "login,archive"), ("password", ACME_ALICE_PW)],
        )
        .await?;
    beta_admin
        .ok(
            "CreateUser",
            &[("userName", "alice"), ("privileges", "login,archive"), ("password", BETA_ALICE_PW)],
        )
        .await?;
    beta_admin
        .ok(
            "CreateUser",
            &[
                ("userName", "carol"),
                ("privileges", "login"),
                ("password", CAROL_PW),
                ("fullName", "hxbeta carol"),
            ],
        )
        .await?;
    for (admin, pw) in [(&acme_admin, ACME_ADMIN_PW), (&beta_admin, BETA_ADMIN_PW)] {
        admin
            .ok(
                "SetComplianceConfiguration",
                &[("config", r#"{"adminEmailPreviewEnabled": true}"#), ("password", pw)],
            )
            .await?;
    }

    // Different mail in archives of the same name; beta's through node 1 (its store may be served
    // there, so that reads through node 0 are forwarded).
    let acme_alice = Data::new(&cluster, 0, "acme/alice", ACME_ALICE_PW);
    let beta_alice = Data::new(&cluster, 1, "beta/alice", BETA_ALICE_PW);
    let mut acme_ids = Vec::new();
    for subject in ["hxacmeone", "hxacmetwo"] {
        acme_ids.push(acme_alice.upload("alice", "Inbox/acme-only", &message(subject)).await?);
    }
    let mut beta_ids = Vec::new();
    for subject in ["hxbetaone", "hxbetatwo", "hxbetathree"] {
        beta_ids.push(beta_alice.upload("alice", "Inbox/beta-only", &message(subject)).await?);
    }
    acme_ids.sort();
    beta_ids.sort();
    let acme_store = stores(&acme_admin).await?;
    let beta_store = stores(&beta_admin).await?;
    assert_eq!(acme_store.iter().map(|s| s.1).sum::<u64>(), 2, "acme counts its own: {acme_store:?}");
    assert_eq!(beta_store.iter().map(|s| s.1).sum::<u64>(), 3, "beta counts its own: {beta_store:?}");
    let beta_store_id = beta_store[0].0.to_string();
    assert!(acme_store.iter().all(|s| s.0 != beta_store[0].0), "stores are the tenant's own");

    // Search, through both nodes: each alice finds exactly her tenant's mail.
    for node in [0, 1] {
        let a = Data::new(&cluster, node, "acme/alice", ACME_ALICE_PW);
        let b = Data::new(&cluster, node, "beta/alice", BETA_ALICE_PW);
        assert_eq!(a.ids("").await?, acme_ids, "acme/alice via node {node}");
        assert_eq!(b.ids("").await?, beta_ids, "beta/alice via node {node}");
        assert!(a.ids("hxbetaone").await?.is_empty());
        assert!(a.ids("sender@example.com").await?.iter().all(|id| acme_ids.contains(id)));
        // The X-Arca-Tenant header picks the tenant of a bare user name.
        let mut by_header = Data::new(&cluster, node, "alice", ACME_ALICE_PW);
        by_header.tenant_header = Some("acme".into());
        assert_eq!(by_header.ids("").await?, acme_ids, "X-Arca-Tenant: acme via node {node}");
    }
    // A search naming beta's store finds nothing of it (and the shards filter does not leak).
    let r = acme_alice.search(json!({"q": "", "filters": {"shards": [beta_store[0].0]}})).await?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["hits"], json!([]), "{}", r.text());
    let r = acme_alice.search(json!({"q": "", "export": true})).await?;
    assert!(!r.text().contains("hxbeta"), "export search: {}", r.text());

    // Login: each alice's password is her tenant's only; a bare `alice` is tenant default's (none).
    for (user, pw) in [("acme/alice", BETA_ALICE_PW), ("beta/alice", ACME_ALICE_PW), ("alice", ACME_ALICE_PW)]
    {
        let r = Data::new(&cluster, 0, user, pw).get("/api/data/archives").await?;
        assert_eq!(r.status, 401, "{user} with the other tenant's password: {}", r.text());
    }
    let r = Data::new(&cluster, 0, "nosuchtenant/alice", ACME_ALICE_PW).get("/api/data/archives").await?;
    assert_eq!(r.status, 401, "an unknown tenant is an unknown user: {}", r.text());

    // Beta's store is served somewhere under an epoch; acme naming it must not move or reopen it.
    let epoch_before = beta_admin.ok("GetStores", &[]).await?[0]["epoch"].clone();

    // Message routes: beta's ids are 404 for acme, exactly like ids that do not exist.
    let missing = format!("{}:999999", beta_store[0].0);
    for id in beta_ids.iter().chain([&missing]) {
        for path in [
            format!("/api/data/messages/{id}/raw"),
            format!("/api/data/messages/{id}"),
            format!("/api/data/messages/{id}/attachments/0"),
        ] {
            for node in [0, 1] {
                let r = Data::new(&cluster, node, "acme/alice", ACME_ALICE_PW).get(&path).await?;
                assert_eq!(r.status, 404, "{path} as acme/alice via node {node}: {}", r.text());
                assert!(!r.text().contains("hxbeta"), "{}", r.text());
            }
        }
    }
    let own = acme_alice.get(&format!("/api/data/messages/{}/raw", acme_ids[0])).await?;
    assert_eq!(own.status, 200, "own message: {}", own.text());

    // Archive list, folder tree and folder listing of the archive `alice` are the tenant's own.
    let archives = acme_alice.get("/api/data/archives").await?;
    assert_eq!(archives.status, 200, "{}", archives.text());
    let folders = acme_alice.get("/api/data/archives/alice/folders").await?;
    assert!(
        folders.text().contains("acme-only") && !folders.text().contains("beta-only"),
        "{}",
        folders.text()
    );
    let listed =
        acme_alice.get("/api/data/archives/alice/messages?folder=Inbox&subfolders=true&limit=1000").await?;
    assert!(!listed.text().contains("hxbeta"), "{}", listed.text());
    for id in &beta_ids {
        assert!(!listed.text().contains(id.as_str()), "{id} listed for acme: {}", listed.text());
    }

    // Administration API: users are the tenant's own.
    let users = acme_admin.ok("GetUsers", &[]).await?;
    let names: Vec<&str> =
        users.as_array().context("users")?.iter().filter_map(|u| u["userName"].as_str()).collect();
    assert_eq!(names, ["admin", "alice"], "acme's users");
    let info = acme_admin.invoke("GetUserInfo", &[("userName", "carol")]).await?;
    assert!(info["error"].to_string().contains("does not exist"), "{info}");
    let deleted = acme_admin.invoke("DeleteUser", &[("userName", "carol")]).await?;
    assert!(!deleted["error"].is_null(), "acme cannot delete beta's carol: {deleted}");
    let stats = acme_admin.ok("GetFolderStatistics", &[]).await?;
    let count: u64 =
        stats.as_array().context("stats")?.iter().map(|r| r["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(count, 2, "acme's statistics count its own: {stats}");
    let messages = acme_admin.ok("GetMessages", &[("folder", "alice")]).await?;
    assert_eq!(messages.as_array().map(Vec::len), Some(2), "{messages}");
    for (function, args) in [
        ("VerifyStore", vec![("id", beta_store_id.as_str())]),
        ("RebuildStoreIndex", vec![("id", beta_store_id.as_str()), ("folder", "")]),
        ("RenameStore", vec![("id", beta_store_id.as_str()), ("name", "stolen")]),
        ("SetStoreRequestedState", vec![("id", beta_store_id.as_str()), ("requestedState", "disabled")]),
    ] {
        let text = invoke_text(&acme_admin, function, &args).await?;
        let envelope: Value = serde_json::from_str(&text)?;
        assert!(!envelope["error"].is_null(), "{function} of beta's store as acme: {text}");
        assert!(text.contains("does not exist"), "{function}: not found, as any unknown store: {text}");
    }
    let indexes = acme_admin.ok("GetStoreIndexes", &[("id", &beta_store_id)]).await?;
    assert_eq!(indexes, json!([]), "GetStoreIndexes of beta's store as acme");

    // Every function of the catalogue, called by acme's administrator naming beta's things, shows
    // nothing of beta and changes nothing of beta.
    let catalogue = acme_admin.envelope("/api/get-metadata", &[]).await?;
    let functions = catalogue["result"].as_array().context("functions")?.clone();
    assert!(functions.len() >= 77, "{}", functions.len());
    // (The arguments' own values may be echoed in refusals: the markers are what no argument holds.)
    let markers = ["hxbeta", &format!("\"{}:", beta_store[0].0)];
    for f in &functions {
        let name = f["name"].as_str().context("name")?;
        let args: Vec<(String, String)> = f["args"]
            .as_array()
            .context("args")?
            .iter()
            .filter(|a| {
                a["nullable"] == false
                    || ["folder", "id", "userName"].contains(&a["name"].as_str().unwrap_or(""))
            })
            .map(|a| {
                let arg = a["name"].as_str().unwrap_or("").to_string();
                let value = match (arg.as_str(), a["type"].as_str().unwrap_or("")) {
                    ("id", _) | ("storeId", _) => beta_store_id.clone(),
                    ("userName" | "oldUserName", _) => "carol".to_string(),
                    ("newUserName", _) => "carol2".to_string(),
                    ("folder" | "fromFolder", _) => "alice/Inbox/beta-only".to_string(),
                    ("toFolder", _) => "alice/Inbox/moved".to_string(),
                    ("name", _) => "beta".to_string(),
                    ("password" | "adminPassword", _) => "Frost2024!xyz".to_string(),
                    ("privileges", _) => "none".to_string(),
                    (_, "number") => "1".to_string(),
                    (_, "bool") => "false".to_string(),
                    (_, "json") => "{}".to_string(),
                    _ => "x".to_string(),
                };
                (arg, value)
            })
            .collect();
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let text = invoke_text(&acme_admin, name, &args).await?;
        for marker in markers {
            assert!(!text.contains(marker), "{name}{args:?} as acme/admin shows beta's '{marker}': {text}");
        }
    }
    // Beta is untouched: carol logs in, its store keeps its state and mail, its folder is where it was.
    let carol = Data::new(&cluster, 1, "beta/carol", CAROL_PW);
    assert_eq!(carol.get("/api/data/archives").await?.status, 200, "beta's carol still logs in");
    assert_eq!(beta_alice.ids("").await?, beta_ids, "beta's mail is all there");
    let beta_stores = beta_admin.ok("GetStores", &[]).await?;
    assert_eq!(beta_stores[0]["requestedState"], "current", "{beta_stores}");
    assert_ne!(beta_stores[0]["name"], "stolen", "{beta_stores}");
    assert_eq!(
        beta_stores[0]["epoch"], epoch_before,
        "no request of acme's reopened beta's store: {beta_stores}"
    );
    let beta_folders = beta_alice.get("/api/data/archives/alice/folders").await?;
    assert!(beta_folders.text().contains("beta-only"), "{}", beta_folders.text());

    // Tenant management is the cluster operator's only.
    for (function, args) in [
        ("GetTenants", vec![]),
        ("CreateTenant", vec![("name", "gamma")]),
        ("SetTenantState", vec![("name", "beta"), ("state", "disabled")]),
        ("DeleteTenant", vec![("name", "beta"), ("force", "true")]),
    ] {
        let env = acme_admin.invoke(function, &args).await?;
        assert!(
            env["error"].to_string().contains("not a cluster operator"),
            "{function} as acme/admin: {env}"
        );
    }
    let status = acme_admin.post_raw("/api/cluster/status", &[], &[]).await?;
    assert!(status.body.contains("not a cluster operator"), "cluster status as acme/admin: {}", status.body);
    let tenants = operator.ok("GetTenants", &[]).await?;
    let count_of = |name: &str| {
        tenants
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["name"] == name)
            .map(|t| t["messageCount"].clone())
    };
    assert_eq!((count_of("acme"), count_of("beta")), (Some(json!(2)), Some(json!(3))), "{tenants}");

    // A disabled tenant is refused on every route (403 naming its state); the other one is not.
    operator.ok("SetTenantState", &[("name", "beta"), ("state", "disabled")]).await?;
    let search = beta_alice.search(json!({"q": ""})).await?;
    assert_eq!(search.status, 403, "{}", search.text());
    assert!(search.text().contains("tenant 'beta' is disabled"), "{}", search.text());
    let raw = beta_alice.get(&format!("/api/data/messages/{}/raw", beta_ids[0])).await?;
    assert_eq!(raw.status, 403, "{}", raw.text());
    let admin_call = beta_admin.post_raw("/api/invoke/GetUsers", &[], &[]).await?;
    assert_eq!(admin_call.status, 403, "{}", admin_call.body);
    assert!(admin_call.body.contains("disabled"), "{}", admin_call.body);
    let wrong = Data::new(&cluster, 0, "beta/alice", "Falsch2024!q").get("/api/data/archives").await?;
    assert_eq!(wrong.status, 401, "a wrong password learns nothing of the state: {}", wrong.text());
    assert_eq!(acme_alice.ids("").await?, acme_ids, "acme is not affected");
    operator.ok("SetTenantState", &[("name", "beta"), ("state", "enabled")]).await?;
    assert_eq!(beta_alice.ids("").await?, beta_ids, "enabled again");
    Ok(())
}

/// Runs `arca …` as the operator of node 0 and answers (success, stdout, stderr).
fn cli(cluster: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = cluster.cli(0, args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_manage_tenants_with_the_cli_in_json() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    // create: the generated password is printed once and logs in.
    let (ok, out, err) = cli(&cluster, &["tenant", "create", "gamma", "--json"]);
    assert!(ok, "create: {out} {err}");
    let created: Value = serde_json::from_str(&out).with_context(|| out.clone())?;
    assert_eq!((created["name"].clone(), created["login"].clone()), (json!("gamma"), json!("gamma/admin")));
    let password = created["adminPassword"].as_str().context("generated password")?.to_string();
    let gamma = cluster.api(0).with_login("gamma/admin", &password);
    assert_eq!(gamma.ok("GetUsers", &[]).await?[0]["userName"], "admin");
    let (ok, out, err) = cli(
        &cluster,
        &["tenant", "create", "delta", "--admin", "boss", "--admin-password", "Delta-Chef-2024!", "--json"],
    );
    assert!(ok, "create delta: {out} {err}");
    assert!(serde_json::from_str::<Value>(&out)?["adminPassword"].is_null(), "{out}");
    let (ok, _, err) = cli(&cluster, &["tenant", "create", "Bad/Name", "--json"]);
    assert!(!ok && err.contains("name"), "a bad name is refused naming it: {err}");
    let (ok, _, err) = cli(&cluster, &["tenant", "create", "gamma", "--json"]);
    assert!(!ok && err.contains("already exists"), "{err}");

    // list and show.
    let (ok, out, err) = cli(&cluster, &["tenant", "list", "--json"]);
    assert!(ok, "list: {err}");
    let list: Value = serde_json::from_str(&out)?;
    let names: Vec<&str> =
        list.as_array().context("list")?.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["default", "delta", "gamma"], "{out}");
    let (ok, out, err) = cli(&cluster, &["tenant", "show", "delta", "--json"]);
    assert!(ok, "show: {err}");
    let shown: Value = serde_json::from_str(&out)?;
    assert_eq!(
        (shown["state"].clone(), shown["administrators"].clone()),
        (json!("enabled"), json!(["boss"])),
        "{out}"
    );
    let (ok, out, _) = cli(&cluster, &["tenant", "list"]);
    assert!(ok && out.contains("gamma") && out.contains("default (operator)"), "table: {out}");

    // disable and enable.
    let (ok, out, err) = cli(&cluster, &["tenant", "disable", "gamma", "--json"]);
    assert!(ok, "disable: {err}");
    assert_eq!(serde_json::from_str::<Value>(&out)?, json!({"name": "gamma", "state": "disabled"}));
    let refused = gamma.post_raw("/api/invoke/GetUsers", &[], &[]).await?;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let (ok, _, err) = cli(&cluster, &["tenant", "disable", "default", "--json"]);
    assert!(!ok && err.contains("operator tenant"), "{err}");
    let (ok, _, err) = cli(&cluster, &["tenant", "enable", "gamma", "--json"]);
    assert!(ok, "enable: {err}");
    assert_eq!(gamma.ok("GetUsers", &[]).await?[0]["userName"], "admin");

    // delete: refused while it has users unless --force; refused while it has stores; never default.
    let (ok, _, err) = cli(&cluster, &["tenant", "delete", "delta", "--json"]);
    assert!(!ok && err.contains("force"), "{err}");
    let (ok, out, err) = cli(&cluster, &["tenant", "delete", "delta", "--force", "--json"]);
    assert!(ok, "delete --force: {err}");
    assert_eq!(serde_json::from_str::<Value>(&out)?, json!({"name": "delta", "deleted": true}));
    gamma
        .ok(
            "CreateUser",
            &[("userName", "ann"), ("privileges", "login,archive"), ("password", "Sommer2024!xyq")],
        )
        .await?;
    Data::new(&cluster, 0, "gamma/ann", "Sommer2024!xyq").upload("ann", "Inbox", &message("hxgamma")).await?;
    let (ok, _, err) = cli(&cluster, &["tenant", "delete", "gamma", "--force", "--json"]);
    assert!(!ok && err.contains("not available yet"), "a tenant with stores: {err}");
    let (ok, _, err) = cli(&cluster, &["tenant", "delete", "default", "--force", "--json"]);
    assert!(!ok && err.contains("operator tenant"), "{err}");
    // A tenant's administrator is no operator, also not through the CLI.
    let out = std::process::Command::new(arca_tests::arca_bin())
        .args(["tenant", "list", "--json", "--insecure"])
        .env("ARCA_HOST", cluster.nodes[0].api_addr())
        .env("ARCA_USER", "gamma/admin")
        .env("ARCA_PASSWORD", &password)
        .stdin(std::process::Stdio::null())
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not a cluster operator"), "{err}");
    Ok(())
}
