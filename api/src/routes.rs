//! The HTTP routes of the API listener: Administration API, cluster routes for the CLI, health, metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiContext;
use crate::args::Args;
use crate::auth::{Caller, Denied};
use crate::envelope::{ApiError, Envelope, no_cache_headers};
use crate::functions;
use crate::listener::PeerAddr;
use crate::{calls, catalogue};

/// Request counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    invokes: AtomicU64,
    failures: AtomicU64,
    denied: AtomicU64,
}

type Ctx = State<Arc<ApiContext>>;

/// The router of the API listener.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    Router::new()
        .route("/api/invoke/{function}", post(invoke))
        .route("/api/get-status", post(get_status))
        .route("/api/cancel-async", post(cancel_async))
        .route("/api/get-metadata", post(get_metadata))
        .route("/api/cluster/status", post(cluster_status))
        .route("/api/cluster/local-state", post(local_state))
        .route("/api/cluster/promote", post(cluster_promote))
        .route("/api/cluster/remove", post(cluster_remove))
        .route("/api/log-level", post(log_level))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::data::router())
        .layer(axum::middleware::from_fn(crate::cross_site::guard))
        .with_state(ctx)
}

fn denied(ctx: &ApiContext, d: Denied) -> Response {
    ctx.metrics.denied.fetch_add(1, Ordering::Relaxed);
    match d {
        Denied::Unauthenticated(why) => {
            let mut headers = no_cache_headers();
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Arca\""));
            (
                StatusCode::UNAUTHORIZED,
                headers,
                Envelope::failure(ApiError::new(why)).into_response().into_body(),
            )
                .into_response()
        }
        Denied::Throttled { retry_after, .. } => {
            let mut headers = no_cache_headers();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            let body = Envelope::failure(ApiError::new(d.to_string())).into_response().into_body();
            (StatusCode::TOO_MANY_REQUESTS, headers, body).into_response()
        }
        Denied::Busy { .. } => {
            let mut headers = no_cache_headers();
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            let body = Envelope::failure(ApiError::new(d.to_string())).into_response().into_body();
            (StatusCode::SERVICE_UNAVAILABLE, headers, body).into_response()
        }
        Denied::TenantDisabled { .. } => {
            let body = Envelope::failure(ApiError::new(d.to_string())).into_response().into_body();
            (StatusCode::FORBIDDEN, no_cache_headers(), body).into_response()
        }
        Denied::Forbidden(_) | Denied::Unavailable(_) => {
            Envelope::failure(ApiError::new(d.to_string())).into_response()
        }
    }
}

async fn admin(ctx: &ApiContext, headers: &HeaderMap, addr: SocketAddr) -> Result<Caller, Response> {
    ctx.gate.admin(&ctx.meta, headers, addr).await.map_err(|d| denied(ctx, d))
}

/// A cluster operator (an administrator of the operator tenant): cluster routes change or show the
/// whole cluster, which no tenant's administrator may (CLU-04).
async fn operator(ctx: &ApiContext, headers: &HeaderMap, addr: SocketAddr) -> Result<Caller, Response> {
    ctx.gate.operator(&ctx.meta, headers, addr).await.map_err(|d| denied(ctx, d))
}

/// The body of an Administration API request, within `api.max_request_bytes`; over it, 413 naming the
/// setting (in the envelope).
async fn admin_body(ctx: &ApiContext, body: Body) -> Result<axum::body::Bytes, Response> {
    crate::body::read(body, ctx.api.max_request_bytes, "api.max_request_bytes").await.map_err(|e| {
        let status = match e {
            crate::body::BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            crate::body::BodyError::Read(_) => StatusCode::BAD_REQUEST,
        };
        let envelope = Envelope::failure(ApiError::new(e.to_string())).into_response().into_body();
        (status, no_cache_headers(), envelope).into_response()
    })
}

fn form(body: &[u8]) -> Result<Vec<(String, String)>, Response> {
    serde_urlencoded::from_bytes(body).map_err(|e| {
        Envelope::failure(ApiError::new(format!("the request body is not url-encoded form data: {e}")))
            .into_response()
    })
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn number_field(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, Response> {
    match field(pairs, name) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            Envelope::failure(ApiError::new(format!(
                "argument '{name}' must be a decimal integer, not '{v}'"
            )))
            .into_response()
        }),
    }
}

async fn invoke(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = match admin(&ctx, &headers, addr).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match admin_body(&ctx, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    ctx.metrics.invokes.fetch_add(1, Ordering::Relaxed);
    let Some(spec) = catalogue::find(&function) else {
        ctx.metrics.failures.fetch_add(1, Ordering::Relaxed);
        return Envelope::failure(ApiError::new(format!(
            "unknown function '{function}' (names are case-sensitive; get-metadata lists them)"
        )))
        .into_response();
    };
    // Arguments are checked first, also for functions not implemented yet, so that a wrong argument name
    // (e.g. `timeZoneId` for `GetWorkerResults`) is reported as such (OPS-01).
    let args = match Args::parse(spec, &body, ctx.api.max_argument_bytes) {
        Ok(a) => a,
        Err(e) => {
            ctx.metrics.failures.fetch_add(1, Ordering::Relaxed);
            return Envelope::failure(e.into()).into_response();
        }
    };
    if !spec.is_implemented() {
        ctx.metrics.failures.fetch_add(1, Ordering::Relaxed);
        return Envelope::failure(functions::not_available(spec.name)).into_response();
    }
    let request_id = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .map(|k| format!("{}/{}/{}:{}", caller.tenant, caller.user.id, spec.name, k));
    let owner = caller.owner();
    let work_ctx = ctx.clone();
    let envelope = ctx
        .calls
        .start(&owner, ctx.invoke_wait, move |progress| {
            functions::run(work_ctx, caller, spec, args, request_id, progress)
        })
        .await;
    if envelope.error.is_some() {
        ctx.metrics.failures.fetch_add(1, Ordering::Relaxed);
    }
    envelope.into_response()
}

/// The caller, the form and its `token` of a `get-status` or `cancel-async` request.
async fn token_request(
    ctx: &ApiContext,
    headers: &HeaderMap,
    addr: SocketAddr,
    body: Body,
) -> Result<(Caller, Vec<(String, String)>, String), Response> {
    let caller = admin(ctx, headers, addr).await?;
    let pairs = form(&admin_body(ctx, body).await?)?;
    let Some(token) = field(&pairs, "token").map(str::to_string) else {
        return Err(Envelope::failure(ApiError::new("missing mandatory argument 'token'")).into_response());
    };
    Ok((caller, pairs, token))
}

async fn get_status(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (caller, pairs, token) = match token_request(&ctx, &headers, addr, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (known, timeout) =
        match (number_field(&pairs, "lastKnownStatusVersion"), number_field(&pairs, "millisecondsTimeout")) {
            (Ok(k), Ok(t)) => (k.unwrap_or(0), t.unwrap_or(0)),
            (Err(r), _) | (_, Err(r)) => return r,
        };
    let request = CallRequest::Status { owner: caller.owner(), token, known, timeout_ms: timeout };
    call_request(&ctx, request).await.into_response()
}

async fn cancel_async(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (caller, _, token) = match token_request(&ctx, &headers, addr, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    call_request(&ctx, CallRequest::Cancel { owner: caller.owner(), token }).await.into_response()
}

/// `get-status` or `cancel-async` for a call of this node or, forwarded, of another one.
#[derive(Debug, Serialize, Deserialize)]
enum CallRequest {
    Status { owner: String, token: String, known: u64, timeout_ms: u64 },
    Cancel { owner: String, token: String },
}

impl CallRequest {
    fn token(&self) -> &str {
        match self {
            CallRequest::Status { token, .. } | CallRequest::Cancel { token, .. } => token,
        }
    }

    async fn serve_here(self, calls: &crate::calls::Calls) -> Envelope {
        let answer = match self {
            CallRequest::Status { owner, token, known, timeout_ms } => {
                calls.status(&owner, &token, known, Duration::from_millis(timeout_ms)).await
            }
            CallRequest::Cancel { owner, token } => calls.cancel(&owner, &token),
        };
        answer.unwrap_or_else(|e| Envelope::failure(ApiError::new(e.to_string())))
    }
}

/// The service name under which nodes forward [`CallRequest`]s to each other.
const CALLS_SERVICE: &str = "api.calls";
/// The service a joining node asks for the cluster master key (only over the mutual-TLS cluster channel).
pub const KEYS_SERVICE: &str = "keys.master";

async fn call_request(ctx: &ApiContext, request: CallRequest) -> Envelope {
    let node = crate::calls::token_node(request.token());
    match node {
        Some(node) if node != ctx.meta.id() => {
            let wait = match &request {
                CallRequest::Status { timeout_ms, .. } => {
                    Duration::from_millis((*timeout_ms).min(calls::MAX_POLL_MS))
                }
                CallRequest::Cancel { .. } => Duration::ZERO,
            };
            let payload = match serde_json::to_vec(&request) {
                Ok(p) => p,
                Err(e) => return Envelope::failure(ApiError::new(e.to_string())),
            };
            match ctx.meta.call_node(node, CALLS_SERVICE, payload, wait + Duration::from_secs(10)).await {
                Ok(answer) => serde_json::from_slice(&answer).unwrap_or_else(|e| {
                    Envelope::failure(ApiError::new(format!("undecodable forwarded status: {e}")))
                }),
                Err(e) => Envelope::failure(ApiError {
                    message: format!(
                        "the node running this call cannot be reached (token '{}')",
                        request.token()
                    ),
                    details: e.to_string(),
                }),
            }
        }
        _ => request.serve_here(&ctx.calls).await,
    }
}

/// Serves other nodes' forwarded requests (the [`arca_raft::AppHandler`] of the API).
pub struct Forwarded(pub std::sync::Weak<ApiContext>);

impl arca_raft::AppHandler for Forwarded {
    fn handle(
        &self,
        service: String,
        payload: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>> + Send>> {
        let ctx = self.0.upgrade();
        Box::pin(async move {
            let ctx = ctx.ok_or("the API of this node is shutting down")?;
            if service == crate::archive::ARCHIVE_SERVICE {
                let archive = ctx.archive.clone().ok_or("this node has no archive service")?;
                return Ok(archive.handle_remote(&payload).await);
            }
            if service == crate::server_info::NODE_INFO_SERVICE {
                return serde_json::to_vec(&crate::server_info::local_report(&ctx))
                    .map_err(|e| e.to_string());
            }
            if service == crate::shard_move::SHARD_MOVE_SERVICE {
                let archive = ctx.archive.clone().ok_or("this node has no archive service")?;
                return crate::shard_move::handle(&archive, &payload).await;
            }
            if service == KEYS_SERVICE {
                let archive = ctx.archive.as_ref().ok_or("this node has no archive service")?;
                return Ok(archive.master_key_hex().into_bytes());
            }
            if service != CALLS_SERVICE {
                return Err(format!("unknown service '{service}'"));
            }
            let request: CallRequest = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
            serde_json::to_vec(&request.serve_here(&ctx.calls).await).map_err(|e| e.to_string())
        })
    }
}

async fn get_metadata(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admin(&ctx, &headers, addr).await {
        return r;
    }
    let list: Vec<Value> = catalogue::listed().map(|f| json!(f)).collect();
    Envelope::success(Value::Array(list)).into_response()
}

async fn cluster_status(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = operator(&ctx, &headers, addr).await {
        return r;
    }
    match ctx.meta.status().await {
        Ok(s) => Envelope::success(json!(s)).into_response(),
        Err(e) => Envelope::failure(e.into()).into_response(),
    }
}

async fn local_state(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = operator(&ctx, &headers, addr).await {
        return r;
    }
    Envelope::success(json!(ctx.meta.local_state())).into_response()
}

async fn membership(
    ctx: &ApiContext,
    addr: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    promote: bool,
) -> Response {
    if let Err(r) = operator(ctx, headers, addr).await {
        return r;
    }
    let body = match admin_body(ctx, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pairs = match form(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = match number_field(&pairs, "id") {
        Ok(Some(id)) => id,
        Ok(None) => {
            return Envelope::failure(ApiError::new("missing mandatory argument 'id'")).into_response();
        }
        Err(r) => return r,
    };
    let result = if promote { ctx.meta.promote(id).await } else { ctx.meta.remove(id).await };
    match result {
        Ok(()) => Envelope::success(Value::Null).into_response(),
        Err(e) => Envelope::failure(ApiError::new(e.to_string())).into_response(),
    }
}

async fn cluster_promote(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    membership(&ctx, addr, &headers, body, true).await
}

async fn cluster_remove(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    membership(&ctx, addr, &headers, body, false).await
}

/// `POST /api/log-level` (administrators; form argument `level`, optional): sets this node's log filter
/// at run time (OPS-10) and answers the filter in force. Without `level` it only answers it.
async fn log_level(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = operator(&ctx, &headers, addr).await {
        return r;
    }
    let pairs = match admin_body(&ctx, body).await {
        Ok(b) => match form(&b) {
            Ok(p) => p,
            Err(r) => return r,
        },
        Err(r) => return r,
    };
    if let Some((name, _)) = pairs.iter().find(|(k, _)| k != "level") {
        return Envelope::failure(ApiError::new(format!("unknown argument '{name}' (only 'level')")))
            .into_response();
    }
    if let Some(level) = field(&pairs, "level") {
        if let Err(e) = crate::log_level::set(level) {
            return Envelope::failure(ApiError::new(e.to_string())).into_response();
        }
        tracing::info!(level = ?level, "log level changed through the API");
    }
    match crate::log_level::current() {
        Some(level) => Envelope::success(json!({ "level": level })).into_response(),
        None => Envelope::failure(ApiError::new(crate::log_level::LogLevelError::Unavailable.to_string()))
            .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ctx): Ctx) -> Response {
    let m = ctx.meta.raft().metrics().borrow().clone();
    // Ready means: a leader is known and the first start has created the default tenant's users.
    let set_up = ctx.meta.with_state(|s| {
        s.tenant(arca_types::records::DEFAULT_TENANT).map(|t| !t.users.is_empty()).unwrap_or(false)
    });
    match m.current_leader {
        Some(_) if !set_up => {
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: the default tenant is being set up\n")
                .into_response()
        }
        Some(leader) => {
            (StatusCode::OK, format!("ready: leader {leader}, term {}\n", m.current_term)).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready: no metadata leader known\n").into_response(),
    }
}

async fn metrics(State(ctx): Ctx) -> Response {
    let m = ctx.meta.raft().metrics().borrow().clone();
    let is_leader = u8::from(m.current_leader == Some(m.id));
    let text = format!(
        "# HELP arca_raft_term Current Raft term of this node.\n# TYPE arca_raft_term gauge\narca_raft_term {}\n\
         # HELP arca_raft_is_leader 1 when this node leads the metadata cluster.\n# TYPE arca_raft_is_leader gauge\narca_raft_is_leader {}\n\
         # HELP arca_raft_last_log_index Last Raft log index on this node.\n# TYPE arca_raft_last_log_index gauge\narca_raft_last_log_index {}\n\
         # HELP arca_raft_applied_index Last Raft log index applied to the metadata state.\n# TYPE arca_raft_applied_index gauge\narca_raft_applied_index {}\n\
         # HELP arca_api_invocations_total Administration API invocations.\n# TYPE arca_api_invocations_total counter\narca_api_invocations_total {}\n\
         # HELP arca_api_failures_total Administration API invocations that failed.\n# TYPE arca_api_failures_total counter\narca_api_failures_total {}\n\
         # HELP arca_api_denied_total Requests refused by authentication or authorization.\n# TYPE arca_api_denied_total counter\narca_api_denied_total {}\n",
        m.current_term,
        is_leader,
        m.last_log_index.unwrap_or(0),
        m.last_applied.map(|l| l.index).unwrap_or(0),
        ctx.metrics.invokes.load(Ordering::Relaxed),
        ctx.metrics.failures.load(Ordering::Relaxed),
        ctx.metrics.denied.load(Ordering::Relaxed),
    );
    let mut text = text;
    if let Some(archive) = ctx.archive.as_deref() {
        let c = &archive.objects().counters;
        text.push_str(&format!(
            "# HELP arca_object_puts_total Objects written to the object store by this node.\n# TYPE arca_object_puts_total counter\narca_object_puts_total {}\n\
             # HELP arca_object_gets_total Object reads (whole or ranged) by this node.\n# TYPE arca_object_gets_total counter\narca_object_gets_total {}\n",
            c.puts.load(Ordering::Relaxed),
            c.gets.load(Ordering::Relaxed),
        ));
        let served = archive.counters.snapshot();
        text.push_str(&format!(
            "# HELP arca_searches_total Searches this node answered to clients.\n# TYPE arca_searches_total counter\narca_searches_total {}\n\
             # HELP arca_shard_searches_total Shard searches run on this node.\n# TYPE arca_shard_searches_total counter\narca_shard_searches_total {}\n\
             # HELP arca_batches_archived_total Batches archived into shards this node serves.\n# TYPE arca_batches_archived_total counter\narca_batches_archived_total {}\n",
            served.searches, served.shard_searches, served.batches_archived,
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The router of the web listener until Web Access exists: every page says so.
pub fn web_placeholder() -> Router {
    Router::new().fallback(|| async {
        (StatusCode::SERVICE_UNAVAILABLE, "Arca Web Access is not available yet in this version.\n")
    })
}
