//! The read routes of the data API (SRCH-05, ACC-01, ACC-02): the caller's archives, an archive's
//! folder tree, a folder's messages as a sorted page, one message rendered, one attachment.
//! Every route authenticates through the gate and sees only archives the caller may read; a hidden
//! archive answers like one that does not exist (403, as search), a hidden message like one that does
//! not exist (404, as the raw download).

use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiContext;
use crate::auth::ArchiveAccess;
use crate::data::{
    archive_service, caller, denied, error, page_json, refused, search_failed, search_turn, sort_key,
};
use crate::listener::PeerAddr;
use arca_ingest::view::{ViewOptions, attachment, content_disposition, render_message, safe_file_name};
use arca_search::{MergedCursor, Scope, parse_query};
use arca_shard::manifest::Entry;
use arca_types::query::{FolderFilter, SearchRequest, Sort};
use arca_types::values::FolderPrivilege;

type Ctx = State<Arc<ApiContext>>;

/// Parses a URL query into `T`; an unknown or malformed argument is a 400 naming it.
fn query_args<T: serde::de::DeserializeOwned>(raw: Option<String>) -> Result<T, Response> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("query arguments: {e}")))
}

/// The archives the caller may read, with the caller's privileges on each.
fn readable(ctx: &ApiContext, caller: &crate::auth::Caller) -> Vec<ArchiveAccess> {
    ctx.gate
        .archives(&ctx.meta, caller)
        .into_iter()
        .filter(|a| a.privileges.contains(&FolderPrivilege::Read))
        .collect()
}

/// `GET /api/data/archives`: the archives the caller may read (ACC-01), own archive first.
pub async fn archives(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&ctx, &headers, addr).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut list: Vec<Value> = ctx.meta.with_state(|s| {
        let Ok(t) = s.tenant(&caller.tenant) else { return Vec::new() };
        readable(&ctx, &caller)
            .into_iter()
            .filter_map(|access| {
                let archive = t.archives.get(&access.id)?;
                let owner = archive.owner.and_then(|o| t.users.get(&o));
                Some(json!({
                    "name": archive.name,
                    "own": archive.owner == Some(caller.user.id),
                    "owner": owner.map(|u| u.name.clone()),
                    "ownerFullName": owner.and_then(|u| u.full_name.clone()),
                    "privileges": access.privileges.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                    "folderCount": archive.folders.len(),
                }))
            })
            .collect()
    });
    list.sort_by_key(|a| (a["own"] != true, a["name"].as_str().unwrap_or_default().to_lowercase()));
    axum::Json(json!({ "archives": list })).into_response()
}

/// The caller and the archive they may read: what the archive routes need first.
async fn reader(
    ctx: &ApiContext,
    headers: &HeaderMap,
    addr: std::net::SocketAddr,
    archive: &str,
) -> Result<(crate::auth::Caller, ArchiveAccess), Response> {
    let caller = caller(ctx, headers, addr).await?;
    let access = ctx.gate.archive_for(&ctx.meta, &caller, archive, FolderPrivilege::Read).map_err(denied)?;
    Ok((caller, access))
}

/// `GET /api/data/archives/{archive}/folders`: the folder tree below the archive's top-level folder.
pub async fn folders(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path(archive): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (caller, access) = match reader(&ctx, &headers, addr, &archive).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // The same tree `GetChildFolders` answers, read after the gate's linearizable read.
    let paths = match ctx.meta.with_state(|s| s.child_folders(&caller.tenant, Some(&access.name), None)) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let prefix = format!("{}/", access.name);
    let folders: Vec<Value> = paths
        .iter()
        .filter_map(|p| p.strip_prefix(&prefix))
        .map(|path| {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            json!({ "path": path, "name": name, "parent": parent, "depth": path.split('/').count() })
        })
        .collect();
    axum::Json(json!({ "archive": access.name, "folders": folders })).into_response()
}

/// Arguments of the message list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    /// Folder path below the top-level folder; empty = the top-level folder itself.
    #[serde(default)]
    folder: String,
    /// Also the folders below it.
    #[serde(default)]
    subfolders: bool,
    sort: Option<String>,
    #[serde(default)]
    asc: bool,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/data/archives/{archive}/messages?folder=&subfolders=&sort=&asc=&limit=&cursor=`: one
/// folder's messages, sorted and paged like search hits (an empty query narrowed to the folder).
pub async fn messages(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path(archive): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (caller, access) = match reader(&ctx, &headers, addr, &archive).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let args: ListArgs = match query_args(raw_query) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let folder = args.folder.trim_matches('/').to_string();
    let known = folder.is_empty()
        || ctx.meta.with_state(|s| {
            s.tenant(&caller.tenant)
                .ok()
                .and_then(|t| t.archives.get(&access.id))
                .is_some_and(|a| a.folders.contains_key(&folder))
        });
    if !known {
        return error(
            StatusCode::NOT_FOUND,
            format!("folder: archive '{}' has no folder '{folder}'", access.name),
        );
    }
    let sort = match sort_key(args.sort.as_deref()) {
        Ok(key) => Sort { key, ascending: args.asc },
        Err(r) => return r,
    };
    if let Some(c) = &args.cursor
        && let Err(e) = MergedCursor::decode(c, sort)
    {
        return error(StatusCode::BAD_REQUEST, format!("cursor: {e}"));
    }
    let Ok(query) = parse_query("") else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the empty query does not parse");
    };
    let request = SearchRequest {
        query,
        filters: arca_types::query::Filters {
            folder: Some(FolderFilter {
                archive: access.id,
                path: folder.clone(),
                include_subfolders: args.subfolders,
                keys: None,
            }),
            ..Default::default()
        },
        sort,
        limit: args.limit.unwrap_or(arca_types::query::DEFAULT_SEARCH_LIMIT),
        cursor: args.cursor,
    };
    let service = match archive_service(&ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(e) = arca_search::check_request(&request, &ctx.search) {
        return refused(&e);
    }
    let _turn = match search_turn(&ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match service.search(&caller.tenant, vec![Scope::archive(access.id)], &request, &ctx.search).await {
        Ok((page, missing)) => {
            let names = [(access.id, access.name.clone())].into_iter().collect();
            let mut answer = page_json(&page, &missing, &names);
            answer["archive"] = json!(access.name);
            answer["folder"] = json!(folder);
            axum::Json(answer).into_response()
        }
        Err(e) => search_failed(e),
    }
}

/// A message id of the path, `<store>:<number>`; a malformed one is a 400 naming `id`.
fn message_id(id: &str) -> Result<(u64, u64), Response> {
    let parsed = id.split_once(':').and_then(|(s, n)| Some((s.parse().ok()?, n.parse().ok()?)));
    parsed.ok_or_else(|| {
        error(StatusCode::BAD_REQUEST, format!("id: '{id}' is not a message id (<store>:<number>)"))
    })
}

/// The listing entry (its folder the current path) and bytes of message `id` if the caller may read
/// it, with its archive's name.
/// A message that does not exist and one the caller may not read give the same 404.
pub(crate) async fn fetch_readable(
    ctx: &ApiContext,
    headers: &HeaderMap,
    addr: std::net::SocketAddr,
    id: &str,
) -> Result<(Entry, Vec<u8>, String), Response> {
    let caller = caller(ctx, headers, addr).await?;
    let (shard, number) = message_id(id)?;
    let service = archive_service(ctx)?;
    let readable = readable(ctx, &caller);
    let ids: Vec<u64> = readable.iter().map(|a| a.id).collect();
    let not_found = || error(StatusCode::NOT_FOUND, format!("id: no message '{id}' that you may read"));
    match service.fetch(&caller.tenant, shard, number, &ids).await {
        Ok((mut entry, bytes)) => {
            // The entry carries the folder's key; the reader sees the folder's current path.
            entry.folder = service.folder_path(&caller.tenant, entry.archive, &entry.folder);
            let name = readable.iter().find(|a| a.id == entry.archive).map(|a| a.name.clone());
            Ok((entry, bytes, name.unwrap_or_default()))
        }
        Err(crate::archive::ArchiveError::Shard(arca_shard::shard::ShardError::NoSuchMessage { .. })) => {
            Err(not_found())
        }
        // A store id that does not exist is a message that does not exist: the same 404, not a 503
        // telling which stores exist.
        Err(crate::archive::ArchiveError::Meta(arca_raft::RaftNodeError::Meta(
            arca_types::MetaError::NotFound { .. },
        ))) => Err(not_found()),
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// Arguments of the message view.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ViewArgs {
    /// Load external images (the reader asked for them); default false.
    #[serde(default)]
    remote_content: bool,
}

/// `GET /api/data/messages/{id}?remoteContent=false`: the message as a reader sees it (ACC-02).
pub async fn message(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path(id): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let args: ViewArgs = match query_args(raw_query) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (entry, raw, archive) = match fetch_readable(&ctx, &headers, addr, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(service) = archive_service(&ctx) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "archiving is not configured on this node");
    };
    let limits = service.limits();
    // `id` parsed as two numbers above, so it is safe inside a URL path.
    let options = ViewOptions {
        remote_content: args.remote_content,
        attachment_url: Some(format!("/api/data/messages/{id}/attachments/{{n}}")),
    };
    let view = match tokio::task::spawn_blocking(move || render_message(&raw, &limits, &options)).await {
        Ok(v) => v,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("rendering message '{id}': {e}")),
    };
    let mut answer = match serde_json::to_value(&view) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("message '{id}': {e}")),
    };
    answer["id"] = json!(id);
    answer["archive"] = json!(archive);
    answer["folder"] = json!(entry.folder);
    answer["archivedAt"] = json!(entry.archived_at);
    answer["size"] = json!(entry.size);
    answer["sent"] = json!(entry.direction == arca_shard::manifest::Direction::Sent);
    axum::Json(answer).into_response()
}

/// `GET /api/data/messages/{id}/attachments/{n}`: attachment `n` of the message view, decoded, as a
/// download (never rendered by the browser: `attachment` disposition, `nosniff`, a sandbox policy).
pub async fn attachment_bytes(
    State(ctx): Ctx,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    Path((id, n)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, raw, _) = match fetch_readable(&ctx, &headers, addr, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(index) = n.parse::<usize>() else {
        return error(StatusCode::BAD_REQUEST, format!("n: '{n}' is not an attachment number (0, 1, …)"));
    };
    let Ok(service) = archive_service(&ctx) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "archiving is not configured on this node");
    };
    let limits = service.limits();
    let found = match tokio::task::spawn_blocking(move || attachment(&raw, &limits, index)).await {
        Ok(a) => a,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("message '{id}': {e}")),
    };
    let Some(found) = found else {
        return error(StatusCode::NOT_FOUND, format!("n: message '{id}' has no attachment {index}"));
    };
    let mut content_type = found.info.content_type.clone();
    if let Some(charset) = &found.charset {
        content_type.push_str(&format!("; charset={charset}"));
    }
    let disposition = content_disposition(&safe_file_name(&found.info));
    let mut response = found.bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    response
}
