//! Arca's HTTPS API: the MailStore-compatible Administration API (`/api/invoke/<Function>`, long-running
//! calls with tokens, `get-metadata`), cluster routes for the CLI, health and metrics.
//!
//! Map: [`routes`] builds the router; [`auth`] is the one gate every call passes ([`throttle`] counts
//! failed logins, [`cross_site`] refuses requests of other sites' pages); [`args`] parses
//! url-encoded arguments against [`catalogue`]; [`functions`] implements the functions; [`calls`] tracks
//! long-running calls; [`envelope`] is the JSON answer shape; [`listener`] serves the router over TLS;
//! [`server_info`] describes the cluster for `GetServerInfo` with each node's [`counters`].
//! Tenants (CLU-04): [`login_name`] picks a request's tenant from its login name, [`tenants`] holds the
//! cluster operator's tenant functions, and `tenant_scope` keeps store ids within the caller's tenant.
//! [`failover`] takes over the stores of nodes whose lease lapsed.

pub mod archive;
pub mod args;
pub mod auth;
pub mod body;
pub mod browse;
pub mod calls;
pub mod catalogue;
pub mod counters;
pub mod cross_site;
pub mod data;
pub mod envelope;
pub mod failover;
pub mod functions;
pub mod index_check;
pub mod listener;
pub mod log_level;
pub mod login_name;
mod older_shards;
pub mod operator;
pub mod routes;
pub mod server_info;
pub mod shard_move;
pub mod shard_plan;
mod tenant_scope;
pub mod tenants;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use arca_raft::MetaNode;
use arca_types::config::{ApiConfig, SearchConfig};

/// Everything a request handler needs; shared by all connections of a node.
#[derive(Debug)]
pub struct ApiContext {
    pub meta: MetaNode,
    /// Version of this binary, as `GetServerInfo` reports it.
    pub version: String,
    /// Name of this node, as `GetServerInfo` reports it (`machineName`).
    pub machine_name: String,
    /// How long `invoke` waits before answering `running` with a token.
    pub invoke_wait: Duration,
    pub calls: calls::Calls,
    /// The archive service; `None` on a node started without storage (some tests).
    pub archive: Option<Arc<archive::ArchiveService>>,
    pub gate: auth::Gate,
    pub metrics: routes::Metrics,
    /// Request bounds of the Administration API (`[api]`).
    pub api: ApiConfig,
    /// Bounds of one search (`[search]`).
    pub search: SearchConfig,
    /// Turns for searches: `search.max_concurrent` run at once.
    pub searches: tokio::sync::Semaphore,
}

impl ApiContext {
    /// A context for `meta`, registered with it to serve requests other nodes forward here.
    pub fn new(
        meta: MetaNode,
        version: String,
        machine_name: String,
        invoke_wait: Duration,
        archive: Option<Arc<archive::ArchiveService>>,
        gate: auth::Gate,
        (api, search): (ApiConfig, SearchConfig),
    ) -> Arc<ApiContext> {
        let ctx = Arc::new(ApiContext {
            searches: tokio::sync::Semaphore::new(search.max_concurrent.max(1) as usize),
            api,
            search,
            calls: calls::Calls::new(meta.id()),
            archive,
            meta,
            version,
            machine_name,
            invoke_wait,
            gate,
            metrics: routes::Metrics::default(),
        });
        ctx.meta.set_app_handler(Arc::new(routes::Forwarded(Arc::downgrade(&ctx))));
        ctx
    }
}
