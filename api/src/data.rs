//! The data API (JSON over HTTPS, next to the Administration API): archive messages, search, fetch.
//! Every route authenticates through the gate and sees only archives the caller may read or write.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiContext;
use crate::archive::{Archived, NewMessage};
use crate::auth::{Caller, Denied};
use crate::listener::PeerAddr;
use arca_search::{Scope, parse_query};
use arca_types::query::{SearchRequest, Sort, SortKey};
use arca_types::values::FolderPrivilege;

/// Largest request body of an upload (a batch of messages).
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

type Ctx = State<Arc<ApiContext>>;

/// The data API routes.
pub fn router() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/api/data/archives", get(crate::browse::archives))
        .route("/api/data/archives/{archive}/folders", get(crate::browse::folders))
        .route("/api/data/archives/{archive}/messages", post(upload).get(crate::browse::messages))
        .route("/api/data/archives/{archive}/batch", post(upload_batch))
        .route("/api/data/archives/{archive}/folders", post(create_folder))
        .route("/api/data/routed", post(upload_routed))
        .route("/api/data/search", post(search))
        .route("/api/data/openapi.json", get(openapi))
        .route("/api/data/messages/{id}", get(crate::browse::message))
        .route("/api/data/messages/{id}/raw", get(raw))
        .route("/api/data/messages/{id}/attachments/{n}", get(crate::browse::attachment_bytes))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
}

/// The OpenAPI document of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

pub(crate) fn denied(d: Denied) -> Response {
    match d {
        Denied::Unauthenticated(why) => {
            let mut r = error(StatusCode::UNAUTHORIZED, why);
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"Arca\""));
            r
        }
        Denied::Throttled { retry_after, .. } => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, d.to_string());
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after.as_secs().max(1)));
            r
        }
        Denied::Busy { .. } => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, d.to_string());
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
        Denied::Forbidden(m) => error(StatusCode::FORBIDDEN, m),
        Denied::TenantDisabled { .. } => error(StatusCode::FORBIDDEN, d.to_string()),
        Denied::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

pub(crate) async fn caller(
    ctx: &ApiContext,
    headers: &HeaderMap,
    addr: std::net::SocketAddr,
) -> Result<Caller, Response> {
    ctx.gate.user(&ctx.meta, headers, addr).await.map_err(denied)
}

/// The caller, the archive they may write, and the archive service: what both upload routes need.
async fn writer<'a>(
    ctx: &'a ApiContext,
    headers: &HeaderMap,
    addr: std::net::SocketAddr,
    archive: &str,
) -> Result<(Caller, crate::auth::ArchiveAccess, &'a crate::archive::ArchiveService), Response> {
    let caller = caller(ctx, headers, addr).await?;
    let access = ctx.gate.archive_for(&ctx.meta, &caller, archive, FolderPrivilege::Write).map_err(denied)?;
    let service = archive_service(ctx)?;
    Ok((caller, access, service))
}

pub(crate) fn archive_service(ctx: &ApiContext) -> Result<&crate::archive::ArchiveService, Response> {
    ctx.archive
        .as_deref()
        .ok_or_else(|| error(StatusCode::SERVICE_UNAVAILABLE, "archiving is not configured on this node"))
}

#[derive(Debug, Deserialize)]
struct FolderArg {
    #[serde(default)]
    folder: String,
}

/// What an upload route does with input that is not mail at all ([`arca_ingest::check_mail`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum NotMailPolicy {
    /// Refuse it, naming why (the default: the server never archives a picture or a text file).
    #[default]
    Refuse,
    /// Archive it as raw bytes: its source names it as a message (a `.eml` file, a Maildir file, a
    /// message of an MBOX file), so it is a message that cannot be parsed (DESIGN invariant 7).
    Archive,
}

/// The `notMail` query argument of the upload routes.
#[derive(Debug, Deserialize)]
struct NotMailArg {
    #[serde(default, rename = "notMail")]
    not_mail: NotMailPolicy,
}

impl NotMailArg {
    /// The refusal answer for `raw` when it is not mail and the policy refuses it.
    fn refusal(&self, raw: &[u8]) -> Option<Value> {
        if self.not_mail == NotMailPolicy::Archive {
            return None;
        }
        arca_ingest::check_mail(raw).err().map(|e| json!({"status": "refused", "reason": e.to_string()}))
    }
}

fn archived_json(a: &Archived) -> Value {
    match a {
        Archived::New { shard, number } => json!({"status": "archived", "id": format!("{shard}:{number}")}),
        Archived::Present { shard, number } => {
            json!({"status": "present", "id": format!("{shard}:{number}")})
        }
        Archived::Refused { reason } => json!({"status": "refused", "reason": reason}),
    }
}

/// `POST /api/data/archives/{archive}/messages?folder=…&notMail=…`: one raw RFC 822 message; input
/// that is not mail is refused unless `notMail=archive` (see [`NotMailPolicy`]).
async fn upload(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path(archive): Path<String>,
    UrlQuery(arg): UrlQuery<FolderArg>,
    UrlQuery(not_mail): UrlQuery<NotMailArg>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (caller, access, service) = match writer(&ctx, &headers, addr, &archive).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(refusal) = not_mail.refusal(&body) {
        return axum::Json(refusal).into_response();
    }
    // A folder the rule or the tree refuses is the caller's error (4xx naming the rule); in a batch
    // it refuses that message only.
    match service.folder_key(&caller.tenant, access.id, &arg.folder).await {
        Ok(Ok(_)) => {}
        Ok(Err(refused)) => return error(StatusCode::BAD_REQUEST, crate::archive::folder_refusal(&refused)),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
    let message = NewMessage { folder: arg.folder, raw: body.to_vec(), sent: false };
    match service.archive(&caller.tenant, access.id, vec![message]).await {
        Ok(results) => axum::Json(results.first().map(archived_json).unwrap_or(Value::Null)).into_response(),
        Err(e) => error(e.http_status(), e.to_string()),
    }
}

/// Splits a batch body: records of `folder length u32 LE, folder UTF-8, message length u32 LE, message`.
pub fn parse_batch(body: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = pos
            .checked_add(n)
            .filter(|&e| e <= body.len())
            .ok_or_else(|| format!("batch record at byte {} is cut short ({} bytes announced)", *pos, n))?;
        let slice = &body[*pos..end];
        *pos = end;
        Ok(slice)
    };
    while pos < body.len() {
        let len = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let folder_len = len(take(&mut pos, 4)?);
        let folder = String::from_utf8(take(&mut pos, folder_len)?.to_vec())
            .map_err(|_| format!("folder name before byte {pos} is not UTF-8"))?;
        let raw_len = len(take(&mut pos, 4)?);
        let raw = take(&mut pos, raw_len)?.to_vec();
        out.push((folder, raw));
    }
    Ok(out)
}

/// True when the request body is an MBOX stream (`Content-Type: application/mbox`).
fn is_mbox(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/mbox"))
}

/// Splits an MBOX body (mboxrd) into messages, all filed in `folder`; a message over the size limit
/// is an answer of its own (its slot), not an error of the batch.
fn split_mbox(
    body: &[u8],
    folder: &str,
    max_message_bytes: u64,
) -> Result<Vec<Result<NewMessage, String>>, String> {
    let options = arca_ingest::MboxOptions { max_message_bytes, ..Default::default() };
    let reader = arca_ingest::MboxReader::new(
        std::io::Cursor::new(body),
        std::path::Path::new("body"),
        Vec::new(),
        options,
    );
    let mut out = Vec::new();
    for item in reader {
        match item.map_err(|e| format!("MBOX body: {e}"))? {
            arca_ingest::SourceItem::Message(m) => {
                out.push(Ok(NewMessage { folder: folder.to_string(), raw: m.raw, sent: false }))
            }
            arca_ingest::SourceItem::Refused { refused, .. } => out.push(Err(refused.reason)),
        }
    }
    Ok(out)
}

/// `POST /api/data/archives/{archive}/batch`: many messages, each with its folder (see [`parse_batch`]),
/// or with `Content-Type: application/mbox` an MBOX stream whose messages all go to `?folder=`.
async fn upload_batch(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path(archive): Path<String>,
    UrlQuery(arg): UrlQuery<FolderArg>,
    UrlQuery(not_mail): UrlQuery<NotMailArg>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (caller, access, service) = match writer(&ctx, &headers, addr, &archive).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let items: Vec<Result<NewMessage, Value>> = if is_mbox(&headers) {
        match split_mbox(&body, &arg.folder, service.limits().max_message_bytes) {
            Ok(items) => items
                .into_iter()
                .map(|item| item.map_err(|reason| json!({"status": "refused", "reason": reason})))
                .collect(),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    } else {
        match parse_batch(&body) {
            Ok(m) => m.into_iter().map(|(folder, raw)| Ok(NewMessage { folder, raw, sent: false })).collect(),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    };
    let items = items.into_iter().map(|item| match item {
        Ok(m) => not_mail.refusal(&m.raw).map_or(Ok(m), Err),
        refused => refused,
    });
    let mut results: Vec<Value> = Vec::with_capacity(items.len());
    let mut slots = Vec::new();
    let mut messages = Vec::new();
    for item in items {
        match item {
            Ok(m) => {
                slots.push(results.len());
                results.push(Value::Null);
                messages.push(m);
            }
            Err(refusal) => results.push(refusal),
        }
    }
    if !messages.is_empty() {
        match service.archive(&caller.tenant, access.id, messages).await {
            Ok(outcomes) => {
                for (slot, outcome) in slots.into_iter().zip(outcomes) {
                    results[slot] = archived_json(&outcome);
                }
            }
            Err(e) => return error(e.http_status(), e.to_string()),
        }
    }
    axum::Json(json!({ "results": results })).into_response()
}

/// Body of `POST /api/data/archives/{archive}/folders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FolderBody {
    /// Folder path below the archive's top-level folder, `/`-separated.
    path: String,
}

/// `POST /api/data/archives/{archive}/folders` (administrators): creates a folder and its missing
/// parents in an archive's folder tree, as a re-import does for the folders an export names (ING-12).
/// Answers `{"created": false}` when it exists already.
async fn create_folder(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path(archive): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match ctx.gate.admin(&ctx.meta, &headers, addr).await {
        Ok(c) => c,
        Err(d) => return denied(d),
    };
    let body: FolderBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("folder request: {e}")),
    };
    let command = arca_types::command::Command::CreateFolder {
        tenant: caller.tenant.clone(),
        path: format!("{archive}/{}", body.path),
    };
    match ctx.meta.write(command).await {
        Ok(_) => axum::Json(json!({"created": true})).into_response(),
        Err(arca_raft::RaftNodeError::Meta(arca_types::MetaError::AlreadyExists { .. })) => {
            axum::Json(json!({"created": false})).into_response()
        }
        Err(arca_raft::RaftNodeError::Meta(e @ arca_types::MetaError::NotFound { .. })) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(arca_raft::RaftNodeError::Meta(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct UnknownArg {
    #[serde(default)]
    unknown: Option<String>,
}

/// `POST /api/data/routed?unknown=skip|fail|user:<name>` (administrators): a batch whose messages go
/// to every user whose e-mail address is the sender or a recipient (ING-12, many users). A message of
/// the user's own address as sender is archived as sent.
async fn upload_routed(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    UrlQuery(arg): UrlQuery<UnknownArg>,
    UrlQuery(not_mail): UrlQuery<NotMailArg>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match ctx.gate.admin(&ctx.meta, &headers, addr).await {
        Ok(c) => c,
        Err(d) => return denied(d),
    };
    let policy = arg.unknown.unwrap_or_else(|| "skip".into());
    let catch_all = match policy.as_str() {
        "skip" | "fail" => None,
        other => match other.strip_prefix("user:") {
            Some(name) => match ctx.meta.with_state(|s| s.user(&caller.tenant, name).map(|u| u.archive)) {
                Ok(archive) => Some(archive),
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("unknown: {e}")),
            },
            None => return error(StatusCode::BAD_REQUEST, "unknown: expected skip, fail or user:<name>"),
        },
    };
    let messages = match parse_batch(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let service = match archive_service(&ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // address -> archive of the user who has it
    let by_address: std::collections::HashMap<String, u64> = ctx.meta.with_state(|s| {
        s.tenant(&caller.tenant)
            .map(|t| {
                t.users
                    .values()
                    .flat_map(|u| u.email_addresses.iter().map(move |a| (a.to_lowercase(), u.archive)))
                    .collect()
            })
            .unwrap_or_default()
    });
    let mut per_archive: std::collections::BTreeMap<u64, Vec<(usize, NewMessage)>> = Default::default();
    let mut results: Vec<Value> = vec![Value::Null; messages.len()];
    for (i, (folder, raw)) in messages.into_iter().enumerate() {
        if let Some(refusal) = not_mail.refusal(&raw) {
            results[i] = refusal;
            continue;
        }
        let (senders, recipients) = service.parties(&raw);
        let mut targets: std::collections::BTreeMap<u64, bool> = Default::default();
        for a in &senders {
            if let Some(archive) = by_address.get(a) {
                targets.insert(*archive, true);
            }
        }
        for a in &recipients {
            if let Some(archive) = by_address.get(a) {
                targets.entry(*archive).or_insert(false);
            }
        }
        if targets.is_empty() {
            match (catch_all, policy.as_str()) {
                (Some(archive), _) => {
                    targets.insert(archive, false);
                }
                (None, "fail") => {
                    results[i] = json!({"status": "refused", "reason": "no known user has the sender or a recipient address"});
                    continue;
                }
                _ => {
                    results[i] = json!({"status": "skipped", "reason": "no known user has the sender or a recipient address"});
                    continue;
                }
            }
        }
        for (archive, sent) in targets {
            per_archive
                .entry(archive)
                .or_default()
                .push((i, NewMessage { folder: folder.clone(), raw: raw.clone(), sent }));
        }
    }
    for (archive, list) in per_archive {
        let (slots, batch): (Vec<usize>, Vec<NewMessage>) = list.into_iter().unzip();
        match service.archive(&caller.tenant, archive, batch).await {
            Ok(outcomes) => {
                for (slot, outcome) in slots.into_iter().zip(outcomes) {
                    let entry = archived_json(&outcome);
                    match &mut results[slot] {
                        Value::Array(list) => list.push(entry),
                        other => *other = Value::Array(vec![entry]),
                    }
                }
            }
            Err(e) => return error(e.http_status(), e.to_string()),
        }
    }
    // One summary per message: archived if any archive got it new, else present, else the reason.
    let summary: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Value::Array(list) => {
                let status = if list.iter().any(|x| x["status"] == "archived") {
                    "archived"
                } else if list.iter().all(|x| x["status"] == "present") {
                    "present"
                } else {
                    "refused"
                };
                json!({"status": status, "copies": list})
            }
            other => other,
        })
        .collect();
    axum::Json(json!({ "results": summary })).into_response()
}

/// Body of `POST /api/data/search`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SearchBody {
    #[serde(default)]
    q: String,
    /// Limit the search to one archive (by name).
    archive: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    asc: bool,
    limit: Option<u32>,
    cursor: Option<String>,
    /// Advanced criteria (SRCH-03) as the query AST's `Filters`.
    #[serde(default)]
    filters: Option<arca_types::query::Filters>,
    /// The pages are read to export the hits in bulk (`arca export`): needs the privilege `export`.
    #[serde(default)]
    export: bool,
}

/// The answer to a search over a `[search]` bound: 413 for the body, 400 for the rest; names the setting.
pub(crate) fn refused(e: &arca_types::query::QueryLimitError) -> Response {
    let status = match e {
        arca_types::query::QueryLimitError::RequestBytes { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut r = error(status, e.to_string());
    if let Ok(v) = header::HeaderValue::from_str(e.setting()) {
        r.headers_mut().insert("x-arca-limit", v);
    }
    r
}

/// A turn to run a search (`search.max_concurrent` at once); waits up to `search.timeout_ms`.
pub(crate) async fn search_turn(ctx: &ApiContext) -> Result<tokio::sync::SemaphorePermit<'_>, Response> {
    let wait = std::time::Duration::from_millis(ctx.search.timeout_ms);
    match tokio::time::timeout(wait, ctx.searches.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this node is running {} searches (setting search.max_concurrent); try again",
                ctx.search.max_concurrent
            ),
        )),
    }
}

/// The answer to a failed search: a bound it broke is the caller's error (4xx), anything else 503.
pub(crate) fn search_failed(e: crate::archive::ArchiveError) -> Response {
    match e {
        crate::archive::ArchiveError::QueryLimit(limit) => refused(&limit),
        e @ crate::archive::ArchiveError::Search(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        e => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn search(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let caller = match caller(&ctx, &headers, addr).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let limit = ctx.search.max_request_bytes;
    let body = match crate::body::read(body, limit, "search.max_request_bytes").await {
        Ok(b) => b,
        Err(crate::body::BodyError::TooLarge { .. }) => {
            return refused(&arca_types::query::QueryLimitError::RequestBytes { limit });
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let body: SearchBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("search request: {e}")),
    };
    if body.export
        && let Err(d) = ctx.gate.may_export(&caller)
    {
        return denied(d);
    }
    let query = match parse_query(&body.q) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let key = match sort_key(body.sort.as_deref()) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let readable: Vec<_> = ctx
        .gate
        .archives(&ctx.meta, &caller)
        .into_iter()
        .filter(|a| a.privileges.contains(&FolderPrivilege::Read))
        .filter(|a| body.archive.as_deref().is_none_or(|n| a.name.eq_ignore_ascii_case(n)))
        .collect();
    if let Some(name) = &body.archive
        && readable.is_empty()
    {
        return error(
            StatusCode::FORBIDDEN,
            format!("no archive '{name}' that user '{}' may read", caller.user.name),
        );
    }
    let scopes: Vec<Scope> = readable.iter().map(|a| Scope::archive(a.id)).collect();
    let request = SearchRequest {
        query,
        filters: body.filters.unwrap_or_default(),
        sort: Sort { key, ascending: body.asc },
        limit: body.limit.unwrap_or(arca_types::query::DEFAULT_SEARCH_LIMIT),
        cursor: body.cursor,
    };
    let service = match archive_service(&ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(e) = arca_search::check_request(&request, &ctx.search) {
        return refused(&e);
    }
    if scopes.is_empty() {
        return axum::Json(json!({"total": 0, "hits": [], "next": null, "missingShards": []}))
            .into_response();
    }
    let _turn = match search_turn(&ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match service.search(&caller.tenant, scopes, &request, &ctx.search).await {
        Ok((page, missing)) => {
            let names: std::collections::HashMap<u64, String> =
                readable.iter().map(|a| (a.id, a.name.clone())).collect();
            axum::Json(page_json(&page, &missing, &names)).into_response()
        }
        Err(e) => search_failed(e),
    }
}

/// The sort key named by a `sort` argument (default: date).
pub(crate) fn sort_key(name: Option<&str>) -> Result<SortKey, Response> {
    match name {
        None | Some("date") => Ok(SortKey::Date),
        Some("party") => Ok(SortKey::Party),
        Some("subject") => Ok(SortKey::Subject),
        Some(other) => {
            Err(error(StatusCode::BAD_REQUEST, format!("sort: unknown key '{other}' (date, party, subject)")))
        }
    }
}

/// A merged page of hits as the result list shows it (SRCH-05); `missingShards` names stores that
/// did not answer (invariant 5).
pub(crate) fn page_json(
    page: &arca_search::MergedPage,
    missing: &[u64],
    names: &std::collections::HashMap<u64, String>,
) -> Value {
    let hits: Vec<Value> = page
        .hits
        .iter()
        .map(|h| {
            json!({
                "id": format!("{}:{}", h.shard, h.hit.number),
                "archive": names.get(&h.hit.archive),
                "folder": h.hit.folder,
                "subject": h.hit.subject,
                "from": h.hit.from,
                "recipients": h.hit.recipients,
                "sent": h.hit.sent,
                "date": h.hit.date,
                "size": h.hit.size,
                "hasAttachments": h.hit.has_attachments,
                "highlights": h.hit.highlights.iter().map(|x| json!({
                    "field": format!("{:?}", x.field).to_lowercase(), "start": x.start, "end": x.end
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"total": page.total, "hits": hits, "next": page.next, "missingShards": missing})
}

/// `GET /api/data/messages/{shard}:{number}/raw`: the exact original bytes.
async fn raw(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match crate::browse::fetch_readable(&ctx, &headers, addr, &id).await {
        Ok((_, bytes, _)) => ([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_document_is_valid_json_and_lists_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        for path in [
            "/api/data/archives/{archive}/messages",
            "/api/data/archives/{archive}/batch",
            "/api/data/archives/{archive}/folders",
            "/api/data/routed",
            "/api/data/search",
            "/api/data/messages/{id}/raw",
            "/api/data/archives",
            "/api/data/archives/{archive}/folders",
            "/api/data/messages/{id}",
            "/api/data/messages/{id}/attachments/{n}",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is documented");
        }
        for method in ["get", "post"] {
            let path = "/api/data/archives/{archive}/messages";
            assert!(doc["paths"][path].get(method).is_some(), "{method} {path} is documented");
        }
    }

    #[test]
    fn mbox_bodies_split_into_messages_of_one_folder_and_oversized_ones_are_refused() {
        let body = b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\n>From here\n\n\
                     From b@example.com Mon Jan  1 00:00:00 2024\nSubject: two, and far too long\n\nxxxxxxxx\n\n";
        let items = split_mbox(body, "Archiv/2024", 40).expect("readable");
        assert_eq!(items.len(), 2);
        let first = items[0].as_ref().expect("within the limit");
        assert_eq!(first.folder, "Archiv/2024");
        assert_eq!(first.raw, b"Subject: one\n\nFrom here\n");
        let refused = items[1].as_ref().expect_err("over the limit");
        assert!(refused.contains("max_message_bytes"), "{refused}");
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/mbox; charset=binary".parse().expect("value"));
        assert!(is_mbox(&headers));
        headers.insert(header::CONTENT_TYPE, "application/octet-stream".parse().expect("value"));
        assert!(!is_mbox(&headers));
    }

    #[test]
    fn batches_split_into_folder_and_message_and_cut_records_are_named() {
        let mut body = Vec::new();
        for (folder, raw) in [("Inbox", &b"a"[..]), ("", &b"bc"[..])] {
            body.extend((folder.len() as u32).to_le_bytes());
            body.extend(folder.as_bytes());
            body.extend((raw.len() as u32).to_le_bytes());
            body.extend(raw);
        }
        let parsed = parse_batch(&body).expect("valid");
        assert_eq!(parsed, vec![("Inbox".to_string(), b"a".to_vec()), (String::new(), b"bc".to_vec())]);
        let err = parse_batch(&body[..body.len() - 1]).unwrap_err();
        assert!(err.contains("cut short"), "{err}");
        assert!(
            parse_batch(&[0xff, 0xff, 0xff, 0xff]).is_err(),
            "a hostile length is an error, not an allocation"
        );
    }
}
