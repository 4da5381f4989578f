//! A small HTTPS client for the API listener, as tests use it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Client of one node's API listener with fixed credentials.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    pub base: String,
    pub user: String,
    pub password: String,
}

/// What came back: HTTP status, headers and the JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Status, headers and raw body of an answer, whatever the status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
}

/// A batch upload body: records of `folder length u32 LE, folder, message length u32 LE, message`.
pub fn batch_body(folder: &str, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for raw in messages {
        body.extend((folder.len() as u32).to_le_bytes());
        body.extend(folder.as_bytes());
        body.extend((raw.len() as u32).to_le_bytes());
        body.extend(raw);
    }
    body
}

impl ApiClient {
    /// Uploads `messages` into `folder` of `archive` in one batch; answers their ids (`<shard>:<n>`),
    /// failing when any was not archived.
    pub async fn upload_batch(
        &self,
        archive: &str,
        folder: &str,
        messages: &[Vec<u8>],
    ) -> Result<Vec<String>> {
        let path = format!("/api/data/archives/{archive}/batch");
        let a = self
            .request(
                reqwest::Method::POST,
                &path,
                Some("application/octet-stream"),
                batch_body(folder, messages),
            )
            .await?;
        if a.status != 200 {
            bail!("upload: HTTP {}: {}", a.status, a.text());
        }
        let results = a.json()["results"].as_array().cloned().unwrap_or_default();
        results
            .iter()
            .map(|r| r["id"].as_str().map(str::to_string).with_context(|| format!("not archived: {r}")))
            .collect()
    }

    /// Sends `method path` with credentials, an optional content type and a body; answers whatever
    /// came back (any status).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path))
            .basic_auth(&self.user, Some(&self.password));
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let resp =
            req.body(body).send().await.with_context(|| format!("{method} {path} as {}", self.user))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Ok(Reply { status, headers, body: resp.bytes().await?.to_vec() })
    }

    /// GETs `path` with credentials; answers whatever came back.
    pub async fn get_as(&self, path: &str) -> Result<Reply> {
        self.request(reqwest::Method::GET, path, None, Vec::new()).await
    }

    /// A client for `addr` (host:port) logging in as `user`.
    pub fn new(addr: &str, user: &str, password: &str) -> ApiClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(90))
            .build()
            .expect("http client");
        ApiClient { http, base: format!("https://{addr}"), user: user.into(), password: password.into() }
    }

    /// The same node with other credentials.
    pub fn with_login(&self, user: &str, password: &str) -> ApiClient {
        ApiClient { user: user.into(), password: password.into(), ..self.clone() }
    }

    /// POSTs url-encoded `args` to `path` with optional extra headers; returns whatever came back.
    pub async fn post_raw(
        &self,
        path: &str,
        args: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Answer> {
        let mut req =
            self.http.post(format!("{}{}", self.base, path)).basic_auth(&self.user, Some(&self.password));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = serde_urlencode(args);
        let resp = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {path} on {}", self.base))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await?;
        Ok(Answer { status, headers, body })
    }

    /// POSTs a JSON text to a data API path and returns the JSON answer (HTTP 200 required).
    pub async fn post_json(&self, path: &str, body: &str) -> Result<Value> {
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .basic_auth(&self.user, Some(&self.password))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("HTTP {status} from {path}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// GETs `path` with credentials and returns the body bytes (HTTP 200 required).
    pub async fn get_authed(&self, path: &str) -> Result<Vec<u8>> {
        let resp = self
            .http
            .get(format!("{}{}", self.base, path))
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await?.to_vec();
        if !status.is_success() {
            bail!("HTTP {status} from {path}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }

    /// Every message id in `archive`, by paging through an empty search.
    pub async fn all_ids(&self, archive: &str) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let body =
                serde_json::json!({"q": "", "archive": archive, "limit": 1000, "cursor": cursor}).to_string();
            let answer = self.post_json("/api/data/search", &body).await?;
            for h in answer["hits"].as_array().ok_or_else(|| anyhow::anyhow!("no hits in {answer}"))? {
                ids.push(h["id"].as_str().ok_or_else(|| anyhow::anyhow!("hit without id"))?.to_string());
            }
            match answer["next"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(ids),
            }
        }
    }

    /// GETs `path` without credentials.
    pub async fn get(&self, path: &str) -> Result<Answer> {
        let resp = self.http.get(format!("{}{}", self.base, path)).send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Ok(Answer { status, headers, body: resp.text().await? })
    }

    /// Invokes an Administration API function and returns the envelope (HTTP 200 required).
    pub async fn invoke(&self, function: &str, args: &[(&str, &str)]) -> Result<Value> {
        self.envelope(&format!("/api/invoke/{function}"), args).await
    }

    /// POSTs to an API path and returns the envelope (HTTP 200 required).
    pub async fn envelope(&self, path: &str, args: &[(&str, &str)]) -> Result<Value> {
        let a = self.post_raw(path, args, &[]).await?;
        if a.status != 200 {
            bail!("HTTP {} from {path}: {}", a.status, a.body);
        }
        Ok(a.json())
    }

    /// Invokes a function that must succeed and returns its `result`.
    pub async fn ok(&self, function: &str, args: &[(&str, &str)]) -> Result<Value> {
        let env = self.invoke(function, args).await?;
        if !env["error"].is_null() || env["statusCode"] != "succeeded" {
            bail!("{function} failed: {env}");
        }
        Ok(env["result"].clone())
    }
}

fn serde_urlencode(args: &[(&str, &str)]) -> String {
    args.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
