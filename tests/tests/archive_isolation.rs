//! One gate (DESIGN invariant 6) on the data API: a reader sees no other archive through any data
//! route — search, raw fetch, upload, batch upload, the archive list, folder tree, folder listing,
//! message view and attachment download — until granted; a grant of `read` shows it (but allows no
//! upload), revoking hides it again; answers never tell a hidden message or archive from a
//! nonexistent one; wrong credentials are 401 everywhere and a user without `login` is 403.

use anyhow::{Context, Result};
use arca_tests::Cluster;
use serde_json::{Value, json};

const ALICE_PW: &str = "Sommer2024!x";
const BOB_PW: &str = "Herbst2024!y";
const CAROL_PW: &str = "Winter2024!z";

/// A data API client that reports every status instead of failing on non-2xx answers.
struct Data {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
}

/// Status and body of an answer.
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
    fn new(cluster: &Cluster, user: &str, password: &str) -> Data {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("http client");
        Data {
            http,
            base: format!("https://{}", cluster.nodes[0].api_addr()),
            user: user.into(),
            password: password.into(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> Result<Reply> {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
            .body(body)
            .send()
            .await
            .with_context(|| format!("{path} as {}", self.user))?;
        let status = resp.status().as_u16();
        Ok(Reply { status, body: resp.bytes().await?.to_vec() })
    }

    async fn upload(&self, archive: &str, raw: &[u8]) -> Result<Reply> {
        self.send(
            reqwest::Method::POST,
            &format!("/api/data/archives/{archive}/messages?folder=Inbox"),
            raw.to_vec(),
        )
        .await
    }

    async fn batch(&self, archive: &str, raw: &[u8]) -> Result<Reply> {
        let mut body = Vec::new();
        body.extend(5u32.to_le_bytes());
        body.extend(b"Inbox");
        body.extend((raw.len() as u32).to_le_bytes());
        body.extend(raw);
        self.send(reqwest::Method::POST, &format!("/api/data/archives/{archive}/batch"), body).await
    }

    async fn search(&self, q: &str, archive: Option<&str>) -> Result<Reply> {
        let body = json!({"q": q, "archive": archive, "limit": 1000}).to_string();
        self.send(reqwest::Method::POST, "/api/data/search", body.into_bytes()).await
    }

    async fn raw(&self, id: &str) -> Result<Reply> {
        self.send(reqwest::Method::GET, &format!("/api/data/messages/{id}/raw"), Vec::new()).await
    }

    async fn get(&self, path: &str) -> Result<Reply> {
        self.send(reqwest::Method::GET, path, Vec::new()).await
    }

    async fn archives(&self) -> Result<Reply> {
        self.get("/api/data/archives").await
    }

    async fn folders(&self, archive: &str) -> Result<Reply> {
        self.get(&format!("/api/data/archives/{archive}/folders")).await
    }

    async fn list(&self, archive: &str) -> Result<Reply> {
        self.get(&format!("/api/data/archives/{archive}/messages?folder=Inbox&limit=1000")).await
    }

    async fn view(&self, id: &str) -> Result<Reply> {
        self.get(&format!("/api/data/messages/{id}")).await
    }

    async fn attachment(&self, id: &str) -> Result<Reply> {
        self.get(&format!("/api/data/messages/{id}/attachments/0")).await
    }

    /// Names of the archives the archive list shows.
    async fn archive_names(&self) -> Result<Vec<String>> {
        let r = self.archives().await?;
        anyhow::ensure!(r.status == 200, "archives as {}: HTTP {} {}", self.user, r.status, r.text());
        Ok(r.json()["archives"]
            .as_array()
            .context("archives")?
            .iter()
            .filter_map(|a| a["name"].as_str().map(str::to_string))
            .collect())
    }

    /// Ids of a successful search.
    async fn ids(&self, q: &str, archive: Option<&str>) -> Result<Vec<String>> {
        let r = self.search(q, archive).await?;
        anyhow::ensure!(
            r.status == 200,
            "search '{q}' in {archive:?} as {}: HTTP {} {}",
            self.user,
            r.status,
            r.text()
        );
        Ok(r.json()["hits"]
            .as_array()
            .context("hits")?
            .iter()
            .filter_map(|h| h["id"].as_str().map(str::to_string))
            .collect())
    }
}

/// A message with one attachment, `hxnote.txt` holding `hxattached`.
fn with_attachment(subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.com>\r\nTo: someone@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.com>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nsee the note\r\n--b\r\n\
         Content-Type: text/plain; name=hxnote.txt\r\nContent-Disposition: attachment; filename=hxnote.txt\r\n\r\n\
         hxattached\r\n--b--\r\n"
    )
    .into_bytes()
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.com>\r\nTo: someone@example.com\r\nSubject: {subject}\r\n\
         Date: Mon, 4 Mar 2024 10:00:00 +0100\r\nMessage-ID: <{subject}@example.com>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Uploads `raw` into `archive` as `client` and returns the new message id.
async fn archive_one(client: &Data, archive: &str, raw: &[u8]) -> Result<String> {
    let r = client.upload(archive, raw).await?;
    anyhow::ensure!(
        r.status == 200,
        "upload into {archive} as {}: HTTP {} {}",
        client.user,
        r.status,
        r.text()
    );
    let v = r.json();
    anyhow::ensure!(v["status"] == "archived", "upload into {archive}: {v}");
    Ok(v["id"].as_str().context("id")?.to_string())
}

/// The body of a refusal with `name` replaced, to compare answers about different names.
fn masked(r: &Reply, name: &str) -> String {
    r.text().replace(name, "<name>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_sees_no_other_archive_through_any_data_route_unless_granted() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    for (user, pw, privileges) in
        [("alice", ALICE_PW, "login"), ("bob", BOB_PW, "login,archive"), ("carol", CAROL_PW, "none")]
    {
        api.ok("CreateUser", &[("userName", user), ("privileges", privileges), ("password", pw)]).await?;
    }
    let admin = Data::new(&cluster, "admin", "admin");
    let alice = Data::new(&cluster, "alice", ALICE_PW);
    let bob = Data::new(&cluster, "bob", BOB_PW);

    // The administrator archives into any archive (ADM-03); alice and bob each get mail, and one
    // message is in both archives.
    let secret_raw = message("hxalicesecret", "the alice body hxalicebody");
    let shared_raw = message("hxshared", "in both archives");
    let alice_secret = archive_one(&admin, "alice", &secret_raw).await?;
    let alice_other = archive_one(&admin, "alice", &message("hxaliceother", "second alice message")).await?;
    let alice_shared = archive_one(&admin, "alice", &shared_raw).await?;
    let bob_note = archive_one(&admin, "bob", &message("hxbobnote", "bob's own")).await?;
    let bob_shared = archive_one(&bob, "bob", &shared_raw).await?;
    assert_ne!(alice_shared, bob_shared, "the same bytes in two archives are two listings");
    let alice_attached = archive_one(&admin, "alice", &with_attachment("hxaliceattached")).await?;
    let alice_ids = [alice_secret.clone(), alice_other.clone(), alice_shared.clone(), alice_attached.clone()];

    // Alice sees her own mail (and the administrator, not granted, sees none of it: CMP-01).
    let mut own = alice.ids("", None).await?;
    own.sort();
    let mut expected = alice_ids.to_vec();
    expected.sort();
    assert_eq!(own, expected, "alice lists exactly her archive");
    assert!(admin.ids("hxalicesecret", None).await?.is_empty(), "admin reads nothing without a grant");
    assert_eq!(admin.raw(&alice_secret).await?.status, 404, "admin fetches nothing without a grant");
    assert_eq!(admin.view(&alice_secret).await?.status, 404, "admin opens nothing without a grant");
    assert_eq!(
        admin.attachment(&alice_attached).await?.status,
        404,
        "admin downloads nothing without a grant"
    );
    assert_eq!(admin.list("alice").await?.status, 403, "admin lists nothing without a grant");
    assert_eq!(alice.archive_names().await?, ["alice"], "alice's archive list");

    // Bob sees only his own archive.
    assert_hidden("before any grant", &bob, &alice_ids, &[bob_note.clone(), bob_shared.clone()]).await?;

    // Uploads into alice's archive are refused, like uploads into an archive that does not exist;
    // bob may upload into his own.
    let intruder = message("hxintruder", "bob writing into alice");
    for archive in ["alice", "nosuchuser"] {
        let single = bob.upload(archive, &intruder).await?;
        let batch = bob.batch(archive, &intruder).await?;
        assert_eq!(single.status, 403, "upload into {archive} as bob: {}", single.text());
        assert_eq!(batch.status, 403, "batch into {archive} as bob: {}", batch.text());
    }
    let a = bob.upload("alice", &intruder).await?;
    let n = bob.upload("nosuchuser", &intruder).await?;
    assert_eq!(
        masked(&a, "alice"),
        masked(&n, "nosuchuser"),
        "a foreign archive answers like a nonexistent one"
    );
    assert!(alice.ids("hxintruder", None).await?.is_empty(), "nothing of bob's reached alice's archive");
    let bob_own = bob.batch("bob", &message("hxbobbatch", "batch into own archive")).await?;
    assert_eq!(bob_own.status, 200, "bob batches into his own archive: {}", bob_own.text());

    // Grant bob `read` on alice: he finds and fetches her mail, but still may not write there.
    api.ok("SetUserPrivilegesOnFolder", &[("userName", "bob"), ("folder", "alice"), ("privileges", "read")])
        .await?;
    assert_eq!(bob.ids("hxalicesecret", None).await?, vec![alice_secret.clone()], "granted: found");
    assert_eq!(
        bob.ids("hxalicesecret", Some("alice")).await?,
        vec![alice_secret.clone()],
        "granted: found in alice"
    );
    let mut in_alice = bob.ids("", Some("alice")).await?;
    in_alice.sort();
    assert_eq!(in_alice, expected, "granted: all of alice's archive, nothing else");
    let mut shared = bob.ids("hxshared", None).await?;
    shared.sort();
    let mut both = vec![alice_shared.clone(), bob_shared.clone()];
    both.sort();
    assert_eq!(shared, both, "granted: both copies of the shared message");
    let fetched = bob.raw(&alice_secret).await?;
    assert_eq!(fetched.status, 200, "granted: fetch: {}", fetched.text());
    assert_eq!(fetched.body, secret_raw, "granted: byte for byte");
    // … and sees it through every read route.
    assert_eq!(bob.archive_names().await?, ["bob", "alice"], "granted: own archive first, then alice's");
    let tree = bob.folders("alice").await?;
    assert_eq!(tree.status, 200, "granted: folders: {}", tree.text());
    assert_eq!(
        tree.json(),
        json!({"archive": "alice", "folders": [{"path": "Inbox", "name": "Inbox", "parent": "", "depth": 1}]})
    );
    let listed = bob.list("alice").await?;
    assert_eq!(listed.status, 200, "granted: list: {}", listed.text());
    let mut in_inbox: Vec<String> = listed.json()["hits"]
        .as_array()
        .context("hits")?
        .iter()
        .filter_map(|h| h["id"].as_str().map(str::to_string))
        .collect();
    in_inbox.sort();
    assert_eq!(in_inbox, expected, "granted: alice's Inbox lists her messages");
    let view = bob.view(&alice_secret).await?;
    assert_eq!(view.status, 200, "granted: view: {}", view.text());
    assert_eq!(view.json()["subject"], "hxalicesecret");
    assert_eq!(view.json()["text"], "the alice body hxalicebody");
    let attached = bob.view(&alice_attached).await?;
    assert_eq!(attached.json()["attachments"][0]["fileName"], "hxnote.txt", "{}", attached.text());
    let download = bob.attachment(&alice_attached).await?;
    assert_eq!(download.status, 200, "granted: attachment: {}", download.text());
    assert_eq!(download.body, b"hxattached");
    let single = bob.upload("alice", &intruder).await?;
    let batch = bob.batch("alice", &intruder).await?;
    assert_eq!(single.status, 403, "read grants no upload: {}", single.text());
    assert_eq!(batch.status, 403, "read grants no batch upload: {}", batch.text());
    assert!(alice.ids("hxintruder", None).await?.is_empty(), "still nothing of bob's in alice's archive");

    // Revoke: hidden again.
    api.ok("SetUserPrivilegesOnFolder", &[("userName", "bob"), ("folder", "alice"), ("privileges", "none")])
        .await?;
    let mut bob_ids = vec![bob_note.clone(), bob_shared.clone()];
    bob_ids.extend(bob.ids("hxbobbatch", None).await?);
    assert_hidden("after the revoke", &bob, &alice_ids, &bob_ids).await?;

    // Wrong password, unknown user, no credentials: 401 on every data route (seven failures for bob from
    // this address, below the throttle of ten per user and address).
    let wrong = Data::new(&cluster, "bob", "Falsch2024!q");
    let unknown = Data::new(&cluster, "mallory", BOB_PW);
    let checks: [(&str, Reply); 8] = [
        ("search", wrong.search("", None).await?),
        ("raw", wrong.raw(&bob_note).await?),
        ("upload", wrong.upload("bob", &intruder).await?),
        ("batch", wrong.batch("bob", &intruder).await?),
        ("archives", wrong.archives().await?),
        ("list", wrong.list("bob").await?),
        ("view", wrong.view(&bob_note).await?),
        ("search as unknown user", unknown.search("", None).await?),
    ];
    for (route, r) in &checks {
        assert_eq!(r.status, 401, "{route} with wrong credentials: {}", r.text());
    }
    let anonymous = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
    let r = anonymous
        .post(format!("https://{}/api/data/search", cluster.nodes[0].api_addr()))
        .body("{}")
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401, "search without credentials");
    // Without credentials (no failed login: the throttle is not involved) on every read route.
    for path in [
        "/api/data/archives".to_string(),
        "/api/data/archives/bob/folders".to_string(),
        "/api/data/archives/bob/messages".to_string(),
        format!("/api/data/messages/{bob_note}"),
        format!("/api/data/messages/{bob_note}/attachments/0"),
    ] {
        let r = anonymous.get(format!("https://{}{path}", cluster.nodes[0].api_addr())).send().await?;
        assert_eq!(r.status().as_u16(), 401, "{path} without credentials");
    }

    // A user without the privilege `login` is refused (403) on every data route, own archive included.
    let carol = Data::new(&cluster, "carol", CAROL_PW);
    let checks: [(&str, Reply); 9] = [
        ("search", carol.search("", None).await?),
        ("raw", carol.raw(&bob_note).await?),
        ("upload", carol.upload("carol", &intruder).await?),
        ("batch", carol.batch("carol", &intruder).await?),
        ("archives", carol.archives().await?),
        ("folders", carol.folders("carol").await?),
        ("list", carol.list("carol").await?),
        ("view", carol.view(&bob_note).await?),
        ("attachment", carol.attachment(&bob_note).await?),
    ];
    for (route, r) in &checks {
        assert_eq!(r.status, 403, "{route} without login: {}", r.text());
        assert!(r.text().contains("login"), "{route}: the refusal names the missing privilege: {}", r.text());
    }
    Ok(())
}

/// Bob lists exactly `bob_ids`; nothing of alice's shows through search or raw fetch, and every
/// answer about alice's archive or messages equals the answer about a nonexistent one.
async fn assert_hidden(when: &str, bob: &Data, alice_ids: &[String], bob_ids: &[String]) -> Result<()> {
    let mut all = bob.ids("", None).await?;
    all.sort();
    let mut want = bob_ids.to_vec();
    want.sort();
    assert_eq!(all, want, "{when}: bob lists exactly his own archive");
    for q in ["hxalicesecret", "hxalicebody", "hxaliceother", "hxshared", "alice", "sender@example.com"] {
        let ids = bob.ids(q, None).await?;
        assert!(
            ids.iter().all(|id| !alice_ids.contains(id)),
            "{when}: search '{q}' shows alice's mail: {ids:?}"
        );
    }
    assert_eq!(bob.ids("hxshared", None).await?, vec![bob_ids[1].clone()], "{when}: only bob's copy");
    // Naming alice's archive is refused exactly like naming one that does not exist.
    for q in ["", "hxalicesecret"] {
        let named = bob.search(q, Some("alice")).await?;
        let nowhere = bob.search(q, Some("nosuchuser")).await?;
        assert_eq!(named.status, 403, "{when}: search '{q}' in alice as bob: {}", named.text());
        assert_eq!(
            (named.status, masked(&named, "alice")),
            (nowhere.status, masked(&nowhere, "nosuchuser")),
            "{when}: a hidden archive answers like a nonexistent one"
        );
    }
    // The archive list shows only bob's; alice's folder tree and folder listing answer exactly like
    // those of an archive that does not exist.
    assert_eq!(bob.archive_names().await?, ["bob"], "{when}: bob's archive list");
    for (route, named, nowhere) in [
        ("folders", bob.folders("alice").await?, bob.folders("nosuchuser").await?),
        ("list", bob.list("alice").await?, bob.list("nosuchuser").await?),
    ] {
        assert_eq!(named.status, 403, "{when}: {route} of alice as bob: {}", named.text());
        assert_eq!(
            (named.status, masked(&named, "alice")),
            (nowhere.status, masked(&nowhere, "nosuchuser")),
            "{when}: {route}: a hidden archive answers like a nonexistent one"
        );
    }
    // Raw fetch, view and attachment: alice's ids are 404, exactly as ids that do not exist.
    let (shard, _) = alice_ids[0].split_once(':').context("id")?;
    let missing_number = format!("{shard}:999999");
    let reference = bob.raw(&missing_number).await?;
    assert_eq!(reference.status, 404, "{when}: nonexistent number: {}", reference.text());
    let view_reference = bob.view(&missing_number).await?;
    let attachment_reference = bob.attachment(&missing_number).await?;
    assert_eq!(view_reference.status, 404, "{when}: nonexistent number: {}", view_reference.text());
    assert_eq!(attachment_reference.status, 404, "{when}: {}", attachment_reference.text());
    for id in alice_ids.iter().chain(&["999999:1".to_string()]) {
        for (route, r, reference) in [
            ("raw", bob.raw(id).await?, &reference),
            ("view", bob.view(id).await?, &view_reference),
            ("attachment", bob.attachment(id).await?, &attachment_reference),
        ] {
            assert_eq!(r.status, 404, "{when}: bob's {route} of {id}: {}", r.text());
            assert_eq!(masked(&r, id), masked(reference, &missing_number), "{when}: {route} answer for {id}");
        }
    }
    // A malformed id is a 400 naming it, whoever asks.
    for r in [bob.raw("not-an-id").await?, bob.view("not-an-id").await?, bob.attachment("not-an-id").await?] {
        assert_eq!(r.status, 400, "{when}: malformed id: {}", r.text());
        assert!(r.text().contains("id: 'not-an-id'"), "{when}: {}", r.text());
    }
    Ok(())
}
