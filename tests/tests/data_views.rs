//! The data API's read routes end to end (SRCH-05, ACC-01, ACC-02): a user's archives, the folder tree
//! (folders created by archiving into them), a folder's messages sorted and paged by cursor, one
//! message rendered (header fields, decoded text, sanitised HTML, attachments), attachment downloads
//! with safe headers, an MBOX upload into a folder; broken messages still render, bad arguments are
//! named. With the hostile corpus present, every `html` case renders with nothing executable or
//! remote left in its HTML, and its attachments download as attachments.

use anyhow::{Context, Result, ensure};
use arca_tests::api::Reply;
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

fn plain(subject: &str, from: &str, date: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: Erika <erika@example.com>\nSubject: {subject}\nDate: {date}\n\
         Message-ID: <{}@example.com>\n\n{body}\n",
        subject.replace(' ', "-")
    )
}

/// The multipart message of the view checks: related HTML with a cid: image, a Latin-1 CSV with a
/// path in its name, a PDF, an enclosed message and a signature (not an attachment).
const RICH: &[u8] = b"From: \"Erika Mustermann\" <erika@example.com>\r\n\
    To: Max <max@example.com>, moritz@example.com\r\nCc: c@example.com\r\n\
    Subject: Rechnung\r\nDate: Mon, 06 Jan 2025 10:00:00 +0100\r\nMessage-ID: <r-1@example.com>\r\n\
    Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
    Content-Type: multipart/related; boundary=r\r\n\r\n--r\r\n\
    Content-Type: text/html; charset=utf-8\r\n\r\n<p onclick=\"x()\">Siehe <img src=\"cid:logo@x\" alt=logo>\
    <img src=\"http://127.0.0.1:9/pixel.gif\"><script>alert(1)</script></p>\r\n--r\r\n\
    Content-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--r--\r\n\
    --b\r\nContent-Type: text/csv; charset=iso-8859-1\r\n\
    Content-Disposition: attachment; filename=\"../../etc/Rechnung.csv\"\r\n\
    Content-Transfer-Encoding: quoted-printable\r\n\r\nBetrag;M=FCnze\r\n\
    --b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n\
    --b\r\nContent-Type: message/rfc822\r\n\r\nSubject: original\r\nFrom: o@example.com\r\n\r\noriginal body\r\n\
    --b\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\nSIG\r\n--b--\r\n";

/// Uploads one message into `folder` of `archive` and answers its id.
async fn upload(client: &ApiClient, archive: &str, folder: &str, raw: &[u8]) -> Result<String> {
    let r = client
        .request(
            reqwest::Method::POST,
            &format!("/api/data/archives/{archive}/messages?folder={}", q(folder)),
            Some("message/rfc822"),
            raw.to_vec(),
        )
        .await?;
    ensure!(r.status == 200, "upload: HTTP {} {}", r.status, r.text());
    let v = r.json();
    ensure!(v["status"] == "archived", "upload: {v}");
    Ok(v["id"].as_str().context("id")?.to_string())
}

/// A successful JSON answer of `GET path`.
async fn get_json(client: &ApiClient, path: &str) -> Result<Value> {
    let r = client.get_as(path).await?;
    ensure!(r.status == 200, "GET {path}: HTTP {} {}", r.status, r.text());
    Ok(r.json())
}

fn subjects(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .map(|h| h.iter().map(|x| x["subject"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

/// A refusal with its status, whose JSON error names `argument`.
fn assert_refused(r: &Reply, status: u16, argument: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    let error = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(error.starts_with(&format!("{argument}:")), "{what}: the error names '{argument}': {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_browses_folders_pages_messages_and_opens_a_message_with_its_attachments() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok(
        "CreateUser",
        &[
            ("userName", "erika"),
            ("privileges", "login,archive"),
            ("password", ERIKA_PW),
            ("fullName", "Erika M."),
        ],
    )
    .await?;
    let erika = api.with_login("erika", ERIKA_PW);

    // An MBOX stream into a nested folder (mboxrd: the quoted '>From ' line comes back unquoted).
    // Each message is followed by the blank line mbox writers add (the reader removes it).
    let mbox = format!(
        "From bert@example.com Sat Mar  2 09:00:00 2024\n{}\nFrom carla@example.com Sun Mar  3 09:00:00 2024\n{}\n\
         From anna@example.com Fri Mar  1 09:00:00 2024\n{}\n",
        plain("Bestellung Beta", "Bert <bert@example.com>", "Sat, 2 Mar 2024 09:00:00 +0000", "zwei"),
        plain(
            "Charlie Rechnung",
            "Carla <carla@example.com>",
            "Sun, 3 Mar 2024 09:00:00 +0000",
            ">From the start"
        ),
        plain("Angebot Alpha", "Anna <anna@example.com>", "Fri, 1 Mar 2024 09:00:00 +0000", "eins"),
    );
    let r = erika
        .request(
            reqwest::Method::POST,
            &format!("/api/data/archives/erika/batch?folder={}", q("Projekte/2024")),
            Some("application/mbox"),
            mbox.into_bytes(),
        )
        .await?;
    assert_eq!(r.status, 200, "mbox upload: {}", r.text());
    let results = r.json()["results"].as_array().context("results")?.clone();
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results.iter().all(|x| x["status"] == "archived"), "{results:?}");
    let charlie = results[1]["id"].as_str().context("id")?.to_string();
    let raw = erika.get_authed(&format!("/api/data/messages/{charlie}/raw")).await?;
    assert_eq!(
        String::from_utf8(raw)?,
        plain(
            "Charlie Rechnung",
            "Carla <carla@example.com>",
            "Sun, 3 Mar 2024 09:00:00 +0000",
            "From the start"
        ),
        "the mbox message byte for byte, unquoted"
    );

    let rich = upload(&erika, "erika", "Inbox", RICH).await?;
    let koi8 = upload(
        &erika,
        "erika",
        "Inbox",
        b"Subject: =?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=\nFrom: =?utf-8?b?SsO8cmdlbg==?= <j@example.com>\n\
          Date: Tue, 7 Jan 2025 08:00:00 +0000\nContent-Type: text/plain; charset=koi8-r\n\n\
          \xe2\xc1\xcc\xc1\xcc\xc1\xca\xcb\xc1\n",
    )
    .await?;
    let broken = upload(
        &erika,
        "erika",
        "Inbox",
        b"Subject: kaputt\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\n\
          the only part, never closed",
    )
    .await?;
    // Not mail at all unless the uploader names it as a message (`notMail=archive`): then it is a
    // message that cannot be parsed, archived as raw bytes.
    let r = erika
        .request(
            reqwest::Method::POST,
            "/api/data/archives/erika/messages?notMail=archive",
            Some("message/rfc822"),
            b"no header fields at all\nsecond line\n".to_vec(),
        )
        .await?;
    ensure!(r.json()["status"] == "archived", "headerless upload: {}", r.text());
    let headerless = r.json()["id"].as_str().context("id")?.to_string();

    // Archives: her own, with her name.
    let archives = get_json(&erika, "/api/data/archives").await?;
    assert_eq!(
        archives,
        json!({"archives": [{"name": "erika", "own": true, "owner": "erika", "ownerFullName": "Erika M.",
            "privileges": ["read", "write"], "folderCount": 3}]})
    );

    // The folder tree: the folders mail was archived into, parents included.
    let tree = get_json(&erika, "/api/data/archives/erika/folders").await?;
    assert_eq!(
        tree,
        json!({"archive": "erika", "folders": [
            {"path": "Inbox", "name": "Inbox", "parent": "", "depth": 1},
            {"path": "Projekte", "name": "Projekte", "parent": "", "depth": 1},
            {"path": "Projekte/2024", "name": "2024", "parent": "Projekte", "depth": 2},
        ]})
    );

    // A folder's messages: sorted by subject, paged by cursor; by date newest first.
    let base = format!("/api/data/archives/erika/messages?folder={}", q("Projekte/2024"));
    let first = get_json(&erika, &format!("{base}&sort=subject&asc=true&limit=2")).await?;
    assert_eq!(subjects(&first), ["Angebot Alpha", "Bestellung Beta"]);
    assert_eq!(first["total"], 3);
    assert_eq!(first["missingShards"], json!([]));
    assert_eq!(first["hits"][0]["from"], "Anna <anna@example.com>");
    assert_eq!(first["hits"][0]["folder"], "Projekte/2024");
    assert_eq!(first["hits"][0]["archive"], "erika");
    let next = first["next"].as_str().context("a next page")?;
    let second =
        get_json(&erika, &format!("{base}&sort=subject&asc=true&limit=2&cursor={}", q(next))).await?;
    assert_eq!(subjects(&second), ["Charlie Rechnung"]);
    assert_eq!(second["next"], Value::Null);
    let by_date = get_json(&erika, &base).await?;
    assert_eq!(subjects(&by_date), ["Charlie Rechnung", "Bestellung Beta", "Angebot Alpha"]);
    let by_party = get_json(&erika, &format!("{base}&sort=party&asc=false")).await?;
    assert_eq!(subjects(&by_party), ["Charlie Rechnung", "Bestellung Beta", "Angebot Alpha"]);
    let parent = "/api/data/archives/erika/messages?folder=Projekte".to_string();
    assert_eq!(get_json(&erika, &parent).await?["total"], 0, "only the folder itself");
    assert_eq!(get_json(&erika, &format!("{parent}&subfolders=true")).await?["total"], 3);
    let inbox =
        get_json(&erika, "/api/data/archives/erika/messages?folder=Inbox&sort=subject&asc=true").await?;
    assert_eq!(subjects(&inbox), ["Grüße aus Köln", "kaputt", "Rechnung"]);
    let top = get_json(&erika, "/api/data/archives/erika/messages").await?;
    assert_eq!(top["hits"].as_array().map(Vec::len), Some(1), "the top-level folder: {top}");
    assert_eq!(top["hits"][0]["id"], headerless.as_str());

    // Bad arguments are named.
    let r = erika.get_as("/api/data/archives/erika/messages?folder=Nope").await?;
    assert_refused(&r, 404, "folder", "unknown folder");
    let r = erika.get_as("/api/data/archives/erika/messages?sort=size").await?;
    assert_refused(&r, 400, "sort", "unknown sort key");
    let r = erika.get_as("/api/data/archives/erika/messages?cursor=garbage").await?;
    assert_refused(&r, 400, "cursor", "bad cursor");
    let r = erika.get_as("/api/data/archives/erika/messages?limt=2").await?;
    assert_eq!(r.status, 400, "misspelt argument: {}", r.text());
    assert!(r.text().contains("limt"), "the error names it: {}", r.text());

    // One message: header fields, text, sanitised HTML (cid: image pointing at its attachment, the
    // remote pixel and the script gone), the attachments.
    let v = get_json(&erika, &format!("/api/data/messages/{rich}")).await?;
    assert_eq!(v["id"], rich.as_str());
    assert_eq!(v["archive"], "erika");
    assert_eq!(v["folder"], "Inbox");
    assert_eq!(v["size"], RICH.len());
    assert_eq!(v["subject"], "Rechnung");
    assert_eq!(v["from"], json!([{"name": "Erika Mustermann", "address": "erika@example.com"}]));
    assert_eq!(
        v["to"],
        json!([{"name": "Max", "address": "max@example.com"}, {"name": null, "address": "moritz@example.com"}])
    );
    assert_eq!(v["cc"], json!([{"name": null, "address": "c@example.com"}]));
    assert_eq!(v["bcc"], json!([]));
    assert_eq!(v["date"], 1_736_154_000);
    assert_eq!(v["messageId"], "r-1@example.com");
    assert_eq!(v["headers"].as_array().map(Vec::len), Some(7));
    assert_eq!(v["headers"][1], json!({"name": "To", "value": "Max <max@example.com>, moritz@example.com"}));
    assert_eq!(v["text"], "Siehe");
    let attachment_0 = format!("/api/data/messages/{rich}/attachments/0");
    assert_eq!(v["html"], format!("<p>Siehe <img src=\"{attachment_0}\" alt=\"logo\"><img></p>"));
    assert_eq!(v["blockedRemoteContent"], 1);
    assert_eq!(
        v["attachments"],
        json!([
            {"index": 0, "fileName": null, "contentType": "image/png", "size": 4, "contentId": "logo@x", "inline": true},
            {"index": 1, "fileName": "../../etc/Rechnung.csv", "contentType": "text/csv", "size": 12, "contentId": null, "inline": false},
            {"index": 2, "fileName": "a.pdf", "contentType": "application/pdf", "size": 5, "contentId": null, "inline": false},
            {"index": 3, "fileName": null, "contentType": "message/rfc822", "size": 55, "contentId": null, "inline": false},
        ])
    );
    assert_eq!(v["warnings"], json!([]));
    let remote = get_json(&erika, &format!("/api/data/messages/{rich}?remoteContent=true")).await?;
    assert_eq!(
        remote["html"],
        format!(
            "<p>Siehe <img src=\"{attachment_0}\" alt=\"logo\"><img src=\"http://127.0.0.1:9/pixel.gif\"></p>"
        )
    );

    // Attachments: decoded bytes, safe headers, the file name without its path.
    let png = erika.get_as(&attachment_0).await?;
    assert_eq!(png.status, 200);
    assert_eq!(png.body, b"\x89PNG");
    assert_eq!(png.header("content-type"), "image/png");
    assert_eq!(
        png.header("content-disposition"),
        "attachment; filename=\"attachment-0\"; filename*=UTF-8''attachment-0"
    );
    let csv = erika.get_as(&format!("/api/data/messages/{rich}/attachments/1")).await?;
    assert_eq!(csv.body, b"Betrag;M\xfcnze", "the original charset, transfer encoding undone");
    assert_eq!(csv.header("content-type"), "text/csv; charset=iso-8859-1");
    assert_eq!(
        csv.header("content-disposition"),
        "attachment; filename=\"Rechnung.csv\"; filename*=UTF-8''Rechnung.csv"
    );
    assert_eq!(csv.header("x-content-type-options"), "nosniff");
    assert_eq!(csv.header("content-security-policy"), "default-src 'none'; sandbox");
    let eml = erika.get_as(&format!("/api/data/messages/{rich}/attachments/3")).await?;
    assert_eq!(eml.body, b"Subject: original\r\nFrom: o@example.com\r\n\r\noriginal body");
    assert_eq!(eml.header("content-type"), "message/rfc822");
    assert_eq!(
        eml.header("content-disposition"),
        "attachment; filename=\"attachment-3.eml\"; filename*=UTF-8''attachment-3.eml"
    );
    let r = erika.get_as(&format!("/api/data/messages/{rich}/attachments/4")).await?;
    assert_refused(&r, 404, "n", "no fifth attachment (the signature is none)");
    let r = erika.get_as(&format!("/api/data/messages/{rich}/attachments/first")).await?;
    assert_refused(&r, 400, "n", "a name is no attachment number");

    // Charsets decode; broken messages still answer.
    let v = get_json(&erika, &format!("/api/data/messages/{koi8}")).await?;
    assert_eq!(v["subject"], "Grüße aus Köln");
    assert_eq!(v["from"], json!([{"name": "Jürgen", "address": "j@example.com"}]));
    assert_eq!(v["text"], "Балалайка");
    assert_eq!(v["html"], Value::Null);
    let v = get_json(&erika, &format!("/api/data/messages/{broken}")).await?;
    assert_eq!(v["subject"], "kaputt");
    assert_eq!(v["text"], "the only part, never closed");
    let v = get_json(&erika, &format!("/api/data/messages/{headerless}")).await?;
    assert_eq!(v["headers"], json!([]));
    assert_eq!(v["subject"], Value::Null);
    assert_eq!(v["text"], "no header fields at all\nsecond line");
    assert!(!v["warnings"].as_array().context("warnings")?.is_empty());

    // Ids: malformed is 400, unknown is 404, both naming `id`.
    for route in ["", "/raw", "/attachments/0"] {
        let r = erika.get_as(&format!("/api/data/messages/not-an-id{route}")).await?;
        assert_refused(&r, 400, "id", &format!("malformed id on '{route}'"));
        let r = erika.get_as(&format!("/api/data/messages/999999:1{route}")).await?;
        assert_refused(&r, 404, "id", &format!("unknown id on '{route}'"));
    }
    Ok(())
}

/// Tags the sanitised HTML may hold (ammonia's defaults plus `font`).
const ALLOWED_TAGS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "area",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "map",
    "mark",
    "nav",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
    "font",
];

/// Every (tag, attribute, value) of serialised HTML (html5ever's output: every `<` opens a tag).
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(p) = rest.find('<') {
        rest = &rest[p + 1..];
        if rest.starts_with('/') {
            continue;
        }
        let end = rest.find('>').unwrap_or(rest.len());
        let inside = &rest[..end];
        let name_end = inside.find([' ', '/']).unwrap_or(inside.len());
        let name = inside[..name_end].to_lowercase();
        let mut attrs = Vec::new();
        let mut a = &inside[name_end..];
        while let Some(eq) = a.find("=\"") {
            let attr = a[..eq].trim().to_lowercase();
            let value_end = a[eq + 2..].find('"').map_or(a.len(), |v| eq + 2 + v);
            attrs.push((attr, a[eq + 2..value_end].to_string()));
            a = &a[(value_end + 1).min(a.len())..];
        }
        out.push((name, attrs));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_html_cases_render_with_nothing_executable_or_remote_and_attachments_download() -> Result<()>
{
    let Some(shared) = arca_tests::shared_dir("corpus/hostile/cases.tsv") else {
        eprintln!("shared/corpus/hostile is not there: skipped");
        return Ok(());
    };
    let dir = shared.join("corpus/hostile/files");
    let cases = std::fs::read_to_string(shared.join("corpus/hostile/cases.tsv"))?;
    let files: Vec<String> = cases
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(1) == Some(&"html") || cols.get(3) == Some(&"no-exec")).then(|| cols[0].to_string())
        })
        .collect();
    assert!(files.len() >= 44, "the html cases: {}", files.len());
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "erika"), ("privileges", "login,archive"), ("password", ERIKA_PW)])
        .await?;
    let erika = api.with_login("erika", ERIKA_PW);
    let mut ids = std::collections::HashMap::new();
    let (mut with_html, mut downloads) = (0, 0);
    for file in &files {
        let raw = std::fs::read(dir.join(file)).with_context(|| file.clone())?;
        let id = upload(&erika, "erika", "html", &raw).await.with_context(|| file.clone())?;
        let v = get_json(&erika, &format!("/api/data/messages/{id}")).await.with_context(|| file.clone())?;
        let html = v["html"].as_str().unwrap_or_default();
        with_html += usize::from(v["html"].is_string());
        let attachment_prefix = format!("/api/data/messages/{id}/attachments/");
        for (tag, attrs) in tags(html) {
            assert!(ALLOWED_TAGS.contains(&tag.as_str()), "{file}: element <{tag}> in {html}");
            for (attr, value) in attrs {
                assert!(!attr.starts_with("on"), "{file}: handler {attr} on <{tag}>");
                let lower = value.to_lowercase();
                for banned in
                    ["javascript:", "vbscript:", "livescript:", "mocha:", "url(", "expression(", "import"]
                {
                    assert!(!lower.contains(banned), "{file}: '{banned}' in <{tag} {attr}=\"{value}\">");
                }
                match attr.as_str() {
                    "href" => {
                        let scheme = value.split(':').next().unwrap_or_default().to_lowercase();
                        assert!(
                            value.contains(':')
                                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
                                && !["javascript", "vbscript", "livescript", "mocha", "data", "file"]
                                    .contains(&scheme.as_str()),
                            "{file}: link {value}"
                        )
                    }
                    "src" => {
                        assert!(value.starts_with(&attachment_prefix), "{file}: <{tag} src={value}> loads")
                    }
                    "style" => {
                        assert!(!value.contains("url") && !value.contains('\\'), "{file}: style {value}")
                    }
                    "srcset" | "background" | "poster" | "action" | "formaction" | "data" | "srcdoc" => {
                        panic!("{file}: <{tag} {attr}={value}>")
                    }
                    _ => {}
                }
            }
        }
        for a in v["attachments"].as_array().context("attachments")? {
            let n = a["index"].as_u64().context("index")?;
            let r = erika.get_as(&format!("/api/data/messages/{id}/attachments/{n}")).await?;
            assert_eq!(r.status, 200, "{file} attachment {n}: {}", r.text());
            assert_eq!(r.body.len() as u64, a["size"].as_u64().context("size")?, "{file} attachment {n}");
            let disposition = r.header("content-disposition");
            assert!(disposition.starts_with("attachment; filename=\""), "{file}: {disposition}");
            let name = disposition.split('"').nth(1).unwrap_or_default();
            assert!(
                !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.'),
                "{file}: download name {name:?}"
            );
            assert_eq!(r.header("x-content-type-options"), "nosniff", "{file}");
            assert!(r.header("content-security-policy").contains("sandbox"), "{file}");
            downloads += 1;
        }
        ids.insert(file.clone(), id);
    }
    assert_eq!(ids.len(), files.len());
    // 30 of the 44 have an HTML body; the others are attachment, file name and header cases.
    assert!(with_html >= 28, "the cases with an HTML body to check: {with_html}");
    assert!(downloads >= 20, "attachments downloaded: {downloads}");

    // A text/plain body that is HTML stays text: no HTML view, the markup as literal text.
    let id = ids.get("html-text-plain-with-html.eml").context("that case is listed")?;
    let v = get_json(&erika, &format!("/api/data/messages/{id}")).await?;
    assert_eq!(v["html"], Value::Null, "{v}");
    assert!(v["text"].as_str().unwrap_or_default().contains("<script"), "{v}");
    Ok(())
}
