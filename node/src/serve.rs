//! `arca serve`: start a node on its configuration — storage, the metadata cluster (new or joined), the
//! API and web listeners — and keep it running until SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arca_api::ApiContext;
use arca_api::auth::{DEFAULT_ADMIN, hash_password};
use arca_raft::{MetaNode, NodeOptions, RaftNodeError};
use arca_types::config::Config;
use arca_types::records::{DEFAULT_TENANT, NodeInfo};
use arca_types::values::{Authentication, Privilege};
use arca_types::{Command, MetaError};

use crate::certs;
use crate::data_lock::DataDirLock;

/// The settings an unusable object store points at, for the start-up error.
const STORAGE_SETTINGS: &str = "the object store does not answer as configured (settings storage.url, \
     storage.endpoint, storage.region, storage.access_key_id, storage.secret_access_key_file, storage.allow_http)";

/// Version reported by `GetServerInfo` and at start-up.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn bind(setting: &str, env: &str, addr: &str) -> Result<TcpListener> {
    let parsed: SocketAddr = addr.parse().with_context(|| {
        format!("setting {setting} ({env}): '{addr}' is not an address of the form ip:port")
    })?;
    TcpListener::bind(parsed).with_context(|| format!("cannot listen on {addr} (setting {setting}, {env})"))
}

fn advertised(configured: &str, bound: SocketAddr) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    let ip = if bound.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { bound.ip() };
    SocketAddr::new(ip, bound.port()).to_string()
}

fn read_or_create_secret(config: &Config, joining: bool) -> Result<String> {
    let path = config.secret_file();
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 16 => Ok(s.trim().to_string()),
        Ok(_) => {
            bail!("cluster secret file {} is empty or too short (at least 16 characters)", path.display())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !joining => {
            let secret = arca_raft::tls::new_secret();
            certs::write_private(&path, secret.as_bytes())?;
            println!("created cluster secret file {} (give it to nodes that join)", path.display());
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "joining needs the cluster secret: copy {} from a member, or set cluster.secret_file / ARCA_CLUSTER_SECRET_FILE",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot read cluster secret file {}", path.display())),
    }
}

/// Creates tenant `default` and user `admin`/`admin` when the cluster has none (first start). Fixed
/// request ids make this safe to run on every node and after a crash halfway.
async fn bootstrap(meta: &MetaNode) -> Result<(), RaftNodeError> {
    meta.linearizable().await?;
    let (has_tenant, has_users) = meta.with_state(|s| match s.tenant(DEFAULT_TENANT) {
        Ok(t) => (true, !t.users.is_empty()),
        Err(_) => (false, false),
    });
    if !has_tenant {
        let cmd = Command::CreateTenant { name: DEFAULT_TENANT.into() };
        match meta.write_with_id("bootstrap-tenant-default".into(), cmd).await {
            Ok(_) | Err(RaftNodeError::Meta(MetaError::AlreadyExists { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    if !has_users {
        let (name, password) = DEFAULT_ADMIN;
        let hash = hash_password(password).map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
        let cmd = Command::CreateUser {
            tenant: DEFAULT_TENANT.into(),
            user_name: name.into(),
            full_name: Some("Administrator".into()),
            authentication: Authentication::Integrated,
            password_hash: Some(hash),
            privileges: [Privilege::Admin].into(),
            distinguished_name: None,
            email_addresses: Vec::new(),
        };
        match meta.write_with_id("bootstrap-user-admin".into(), cmd).await {
            Ok(_) | Err(RaftNodeError::Meta(MetaError::AlreadyExists { .. })) => {}
            Err(e) => return Err(e),
        }
        println!(
            "created tenant '{DEFAULT_TENANT}' with administrator 'admin' (password 'admin': change it)"
        );
    }
    Ok(())
}

/// The cluster master key of this node: `<data>/master.key` (mode 0600). The first node creates it;
/// a joining node receives it from a member over the authenticated cluster channel.
async fn load_master_key(
    meta: &MetaNode,
    data: &std::path::Path,
    joining: bool,
) -> Result<arca_shard::MasterKey> {
    let path = data.join("master.key");
    let parse = |text: &str| -> Result<arca_shard::MasterKey> {
        let bytes = hex::decode(text.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
        bytes
            .map(arca_shard::MasterKey::from_bytes)
            .with_context(|| format!("master key file {} is damaged", path.display()))
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return parse(&text),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot read master key file {}", path.display()));
        }
        Err(_) => {}
    }
    let has_peers = meta.raft().metrics().borrow().membership_config.membership().nodes().count() > 1;
    let key = if joining || has_peers {
        let mut fetched = None;
        for _ in 0..100 {
            let leader = meta.raft().metrics().borrow().current_leader;
            if let Some(leader) = leader.filter(|l| *l != meta.id()) {
                match meta
                    .call_node(leader, arca_api::routes::KEYS_SERVICE, Vec::new(), Duration::from_secs(5))
                    .await
                {
                    Ok(v) => {
                        fetched = String::from_utf8(v).ok();
                        break;
                    }
                    Err(e) => tracing::warn!("waiting for the master key from the leader: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        parse(&fetched.context("could not obtain the cluster master key from the leader")?)?
    } else {
        arca_shard::MasterKey::generate()
    };
    certs::write_private(&path, hex::encode(key.expose_secret()).as_bytes())?;
    Ok(key)
}

fn machine_name(id: u64) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    if host.is_empty() { format!("arca-{id}") } else { format!("{host}/{id}") }
}

/// Runs a node until SIGINT or SIGTERM.
pub async fn run(config: Config, join: Option<String>) -> Result<()> {
    let stop = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    run_until(config, join, stop).await
}

/// Runs a node until `stop` completes (in-process nodes of the test harness use this).
pub async fn run_until(
    config: Config,
    join: Option<String>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let data = config.data.dir.clone();
    // One process per data directory: an existing directory is locked before anything else happens.
    let mut lock = if data.is_dir() { Some(DataDirLock::acquire(&data)?) } else { None };
    // Every listener is bound before anything is created, so that a busy port leaves a new data
    // directory untouched.
    let cluster_listener = bind("listen.cluster", "ARCA_LISTEN_CLUSTER", &config.listen.cluster)?;
    let api_listener = bind("listen.api", "ARCA_LISTEN_API", &config.listen.api)?;
    let web_listener = match config.listen.web.as_str() {
        "" => None,
        addr => Some(bind("listen.web", "ARCA_LISTEN_WEB", addr)?),
    };
    for (setting, env, value) in [
        ("listen.http", "ARCA_LISTEN_HTTP", &config.listen.http),
        ("listen.imap", "ARCA_LISTEN_IMAP", &config.listen.imap),
        ("listen.imaps", "ARCA_LISTEN_IMAPS", &config.listen.imaps),
    ] {
        if !value.is_empty() {
            bail!(
                "setting {setting} ({env}): this listener is not available yet in this version of Arca; leave it empty"
            );
        }
    }
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create data directory {}", data.display()))?;
    if lock.is_none() {
        lock = Some(DataDirLock::acquire(&data)?);
    }
    let _lock = lock;
    let secret = read_or_create_secret(&config, join.is_some())?;
    let cert = certs::load_or_generate(&config.tls.cert_file, &config.tls.key_file, &data)?;
    let tls = certs::server_config(&cert)?;

    let info = NodeInfo {
        cluster_addr: advertised(&config.cluster.advertise, cluster_listener.local_addr()?),
        api_addr: advertised(&config.cluster.advertise_api, api_listener.local_addr()?),
        version: VERSION.to_string(),
    };
    let source_address = match config.cluster.source_address.as_str() {
        "" => None,
        ip => Some(ip.parse::<IpAddr>().with_context(|| {
            format!(
                "setting cluster.source_address (ARCA_CLUSTER_SOURCE_ADDRESS): '{ip}' is not an IP address"
            )
        })?),
    };
    // The object store first: a node that cannot reach it must not join or initialise a cluster.
    let objects = arca_shard::objects::Objects::from_config(&config.storage, &data)
        .context("cannot open the object store (setting storage.url, ARCA_STORAGE_URL)")?;
    objects.check().await.context(STORAGE_SETTINGS)?;
    let api_addr = api_listener.local_addr()?;
    let meta = MetaNode::start(NodeOptions {
        data_dir: data.clone(),
        secret,
        listener: cluster_listener,
        info: info.clone(),
        source_address,
        join: join.clone(),
        join_timeout: Duration::from_millis(config.cluster.join_timeout_ms),
        max_voters: config.cluster.max_voters,
        heartbeat_ms: config.cluster.heartbeat_ms,
        election_timeout_ms: config.cluster.election_timeout_ms,
        snapshot_after_logs: config.cluster.snapshot_after_logs,
        max_call_bytes: arca_api::archive::max_forward_bytes(&arca_ingest::Limits::default()),
        lease: Duration::from_millis(config.cluster.lease_ms),
    })
    .await
    .context("cannot start the metadata node")?;

    println!("Arca {VERSION}, node {}", meta.id());
    println!("  data directory  {}", data.display());
    println!("  cluster         {} (advertised as {})", config.listen.cluster, info.cluster_addr);
    println!("  api             https://{api_addr}");
    if let Some(web) = &web_listener {
        println!("  web             https://{}", web.local_addr()?);
    }
    println!("  certificate     {} (SHA-256 fingerprint {})", cert.cert_path.display(), cert.fingerprint);

    let register = {
        let meta = meta.clone();
        let info = info.clone();
        async move {
            loop {
                match bootstrap(&meta).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!("waiting for the metadata cluster to set up the default tenant: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            let id = meta.id();
            while let Err(e) = meta.write(Command::RegisterNode { id, info: info.clone() }).await {
                tracing::warn!("cannot register this node in the catalogue yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let gate = arca_api::auth::Gate::default();
            if gate.default_admin_password_in_use(&meta, DEFAULT_TENANT) {
                println!(
                    "WARNING: user 'admin' still has the default password 'admin'; API calls from other hosts are \
                     refused until it is changed (SetUserPassword)"
                );
            }
            println!("ready");
        }
    };
    let register = tokio::spawn(register);

    let master = load_master_key(&meta, &data, join.is_some()).await?;
    println!("  object store    {}", objects.location());
    let archive = Arc::new(
        arca_api::archive::ArchiveService::new(meta.clone(), objects, master, data.clone())
            .with_identity_cache_entries(config.storage.identity_cache_entries),
    );
    let failover = arca_api::failover::spawn(archive.clone());
    arca_api::shard_move::spawn_release_watcher(&archive);
    let ctx = ApiContext::new(
        meta.clone(),
        VERSION.to_string(),
        machine_name(meta.id()),
        Duration::from_millis(config.api.invoke_wait_ms),
        Some(archive),
        arca_api::auth::Gate::new(&config.api),
        (config.api.clone(), config.search.clone()),
    );
    api_listener.set_nonblocking(true)?;
    let api_tcp = tokio::net::TcpListener::from_std(api_listener)?;
    let api = tokio::spawn(arca_api::listener::serve(api_tcp, tls.clone(), arca_api::routes::router(ctx)));
    let web = match web_listener {
        Some(web) => {
            web.set_nonblocking(true)?;
            let web_tcp = tokio::net::TcpListener::from_std(web)?;
            Some(tokio::spawn(arca_api::listener::serve(web_tcp, tls, arca_api::routes::web_placeholder())))
        }
        None => None,
    };

    let api_abort = api.abort_handle();
    tokio::select! {
        _ = stop => {}
        r = api => {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("API listener failed: {e}"),
                Err(e) => tracing::error!("API listener task failed: {e}"),
            }
        }
    }
    println!("stopping");
    api_abort.abort();
    register.abort();
    failover.abort();
    if let Some(web) = web {
        web.abort();
    }
    meta.shutdown().await;
    Ok(())
}
