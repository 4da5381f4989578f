//! Client side of every `arca` subcommand that talks to a node: connection options, certificate
//! pinning, and calls that return the Administration API envelope.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;

use crate::certs::{fingerprint, generated_paths, normalise_fingerprint};

/// Connection options shared by all client subcommands (stable names: scripts rely on them).
#[derive(Debug, Clone, Args)]
pub struct ClientOptions {
    /// API listener of a node, host:port; several (repeated or comma-separated) let `import` go on
    /// through another node when one fails.
    #[arg(
        long = "h",
        env = "ARCA_HOST",
        default_value = "127.0.0.1:8463",
        value_delimiter = ',',
        global = true
    )]
    pub hosts: Vec<String>,
    /// User name: `user` (tenant `default`) or `tenant/user` (an administrator for cluster commands).
    #[arg(long = "u", env = "ARCA_USER", default_value = "admin", global = true)]
    pub user: String,
    /// Password; prompted for when absent and a terminal is attached.
    #[arg(long = "p", env = "ARCA_PASSWORD", global = true, hide_env_values = true)]
    pub password: Option<String>,
    /// SHA-256 fingerprint of the server certificate to pin (printed by `arca serve`).
    #[arg(long = "fingerprint", alias = "pkv3", env = "ARCA_FINGERPRINT", global = true)]
    pub fingerprint: Option<String>,
    /// Accept any server certificate (prints a warning).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug)]
struct Pinned {
    fingerprint: Option<String>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.fingerprint {
            None => Ok(ServerCertVerified::assertion()),
            Some(expected) if *expected == fingerprint(end_entity) => Ok(ServerCertVerified::assertion()),
            Some(expected) => Err(rustls::Error::General(format!(
                "the server certificate has fingerprint {} but {} was expected (--fingerprint / ARCA_FINGERPRINT)",
                fingerprint(end_entity),
                expected
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A client for the API listeners of the nodes given (`--h`); requests go to the current one, and
/// [`Client::fail_over`] moves on to the next.
pub struct Client {
    http: reqwest::Client,
    bases: Vec<String>,
    /// Index into `bases` of the node requests go to.
    current: AtomicUsize,
    user: String,
    password: String,
}

/// Why a data API request failed; [`RequestError::retryable`] tells whether another attempt (on this
/// or another node) may succeed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No answer: connection refused or reset, TLS failure, timeout.
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The node answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Status { url: String, status: reqwest::StatusCode, message: String },
    /// The node answered, but the body could not be read as expected.
    #[error("{url}: {what}: {detail}")]
    Answer { url: String, what: &'static str, detail: String },
}

impl RequestError {
    /// True for failures another attempt may not meet: no answer, the answer cut off, or a node that
    /// cannot do the work now (5xx, 429). Refusals of the request itself (other 4xx) are final.
    pub fn retryable(&self) -> bool {
        match self {
            RequestError::Unreachable { .. } => true,
            RequestError::Status { status, .. } => {
                status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            RequestError::Answer { what, .. } => *what == READING,
        }
    }
}

/// [`RequestError::Answer`] while the body was being received (the connection broke: retryable).
const READING: &str = "reading the answer";

/// The fingerprint of the certificate a local `arca serve` generated, when there is one.
fn local_fingerprint() -> Option<String> {
    let dir =
        std::env::var_os("ARCA_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("./arca-data"));
    let (cert, _) = generated_paths(&dir);
    let pem = std::fs::read(cert).ok()?;
    let der = rustls_pemfile::certs(&mut pem.as_slice()).next()?.ok()?;
    Some(fingerprint(&der))
}

impl Client {
    /// Builds a client from the options: pins `--fingerprint`, else the certificate of a local data
    /// directory, else refuses unless `--insecure`.
    pub fn new(opts: &ClientOptions) -> Result<Client> {
        let pinned = match (&opts.fingerprint, opts.insecure) {
            (Some(f), _) => Some(normalise_fingerprint(f)),
            (None, true) => {
                eprintln!("warning: --insecure: the server certificate is not checked");
                None
            }
            (None, false) => Some(local_fingerprint().context(
                "no certificate to trust: pass --fingerprint <sha256> (printed by `arca serve` at start) or --insecure",
            )?),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { fingerprint: pinned, provider }))
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("cannot build the HTTPS client")?;
        let password = match &opts.password {
            Some(p) => p.clone(),
            None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                rpassword::prompt_password(format!("Password for {}@{}: ", opts.user, opts.hosts.join(",")))
                    .context("cannot read the password")?
            }
            None => bail!("no password given: use --p or ARCA_PASSWORD"),
        };
        let bases: Vec<String> = opts
            .hosts
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| format!("https://{}", h.trim()))
            .collect();
        if bases.is_empty() {
            bail!("no node given: --h <host:port>[,<host:port>…]");
        }
        Ok(Client { http, bases, current: AtomicUsize::new(0), user: opts.user.clone(), password })
    }

    /// The node requests go to now, as an index for [`Client::fail_over`] and its base URL.
    fn base(&self) -> (usize, &str) {
        let i = self.current.load(Ordering::Relaxed) % self.bases.len();
        (i, &self.bases[i])
    }

    /// After a request to node `failed` failed: the next requests go to the next node given (once,
    /// however many requests to `failed` fail at the same time).
    pub fn fail_over(&self, failed: usize) {
        let next = (failed + 1) % self.bases.len();
        let _ = self.current.compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// POSTs url-encoded `args` to `path` and returns the envelope; an envelope error becomes `Err`.
    pub async fn call(&self, path: &str, args: &[(&str, String)]) -> Result<Value> {
        let url = format!("{}{}", self.base().1, path);
        let response = self
            .http
            .post(&url)
            .basic_auth(&self.user, Some(&self.password))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded_pairs(args))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {url}: {}", error_chain(&e)))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading the answer of {url}"))?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("{url}: login refused (HTTP 401): check --u and --p");
        }
        let envelope: Value = serde_json::from_str(&text)
            .with_context(|| format!("{url} answered HTTP {status} with something that is not JSON"))?;
        if let Some(err) = envelope.get("error").filter(|e| !e.is_null()) {
            let message = err.get("message").and_then(Value::as_str).unwrap_or("error");
            bail!("{message}");
        }
        Ok(envelope)
    }
}

impl Client {
    async fn data_answer(url: &str, response: reqwest::Response) -> Result<reqwest::Response, RequestError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        Err(RequestError::Status { url: url.to_string(), status, message })
    }

    /// POSTs raw bytes to a data API route of the current node and returns its JSON answer; after a
    /// retryable failure the next request goes to the next node given.
    pub async fn request_bytes(&self, path: &str, body: Vec<u8>) -> Result<Value, RequestError> {
        let (node, base) = self.base();
        let result = self.post_bytes(&format!("{base}{path}"), body).await;
        if result.as_ref().is_err_and(RequestError::retryable) {
            self.fail_over(node);
        }
        result
    }

    async fn post_bytes(&self, url: &str, body: Vec<u8>) -> Result<Value, RequestError> {
        let response = self
            .http
            .post(url)
            .basic_auth(&self.user, Some(&self.password))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| RequestError::Unreachable { url: url.to_string(), detail: error_chain(&e) })?;
        let response = Self::data_answer(url, response).await?;
        let bytes = response.bytes().await.map_err(|e| RequestError::Answer {
            url: url.to_string(),
            what: READING,
            detail: error_chain(&e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| RequestError::Answer {
            url: url.to_string(),
            what: "the answer is not JSON",
            detail: e.to_string(),
        })
    }

    /// POSTs JSON to a data API route and returns its JSON answer.
    pub async fn request_json(&self, path: &str, body: &Value) -> Result<Value> {
        Ok(self.request_bytes(path, serde_json::to_vec(body)?).await?)
    }

    /// GETs bytes from a data API route.
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let url = format!("{}{}", self.base().1, path);
        let response = self
            .http
            .get(&url)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {url}: {}", error_chain(&e)))?;
        let response = Self::data_answer(&url, response).await?;
        Ok(response.bytes().await.with_context(|| format!("reading {url}"))?.to_vec())
    }
}

fn serde_urlencoded_pairs(args: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in args.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&urlencode(k));
        out.push('=');
        out.push_str(&urlencode(v));
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
