//! One node's life: first start on the embedded default, restarts, damaged files, wrong secrets, ports.

use std::time::Duration;

use anyhow::Result;
use arca_raft::network::{ClusterRequest, PeerClients};
use arca_tests::Cluster;
use arca_tests::cluster::Kind;
use serde_json::Value;

fn flip_byte_in_middle(path: &std::path::Path) -> Result<()> {
    let mut bytes = std::fs::read(path)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(path, bytes)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_creates_default_tenant_admin_and_a_reused_certificate() -> Result<()> {
    let mut cluster = Cluster::new(&[])?;
    let index = cluster.place_node(Kind::Process, &[]).await?;
    cluster.launch(index)?;
    cluster.wait_api(index, Duration::from_secs(30)).await?;
    let api = cluster.api(index);
    let info = api.ok("GetUserInfo", &[("userName", "admin")]).await?;
    assert_eq!(info["privileges"], serde_json::json!(["admin"]));
    cluster.stop(index).await?;
    let log = cluster.nodes[index].log();
    let fingerprint = |log: &str, nth: usize| {
        log.lines().filter(|l| l.contains("SHA-256 fingerprint")).nth(nth).map(str::to_string)
    };
    assert!(fingerprint(&log, 0).is_some(), "the fingerprint is printed at start:\n{log}");
    assert!(
        log.contains("still has the default password"),
        "the default-password warning is printed:\n{log}"
    );
    cluster.restart(index).await?;
    cluster.stop(index).await?;
    let log = cluster.nodes[index].log();
    let (first, second) = (fingerprint(&log, 0), fingerprint(&log, 1));
    assert!(second.is_some());
    assert_eq!(first, second, "the self-signed certificate is generated once and reused");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_with_sigkill_keeps_every_user_folder_and_privilege() -> Result<()> {
    let mut cluster = Cluster::start(1, &[("ARCA_CLUSTER_SNAPSHOT_AFTER_LOGS", "20")]).await?;
    let api = cluster.api(0);
    for i in 0..30 {
        api.ok("CreateUser", &[("userName", &format!("k{i}")), ("privileges", "login")]).await?;
    }
    api.ok("SetUserPrivilegesOnFolder", &[("userName", "k1"), ("folder", "k2"), ("privileges", "read")])
        .await?;
    api.ok("MoveFolder", &[("fromFolder", "k3"), ("toFolder", "k3-archive")]).await?;
    let before_info = api.ok("GetUserInfo", &[("userName", "k1")]).await?;
    let before_folders = api.ok("GetChildFolders", &[]).await?;
    let before_users = api.ok("GetUsers", &[]).await?;
    cluster.kill(0);
    cluster.restart(0).await?;
    let api = cluster.api(0);
    assert_eq!(api.ok("GetUserInfo", &[("userName", "k1")]).await?, before_info);
    assert_eq!(api.ok("GetChildFolders", &[]).await?, before_folders);
    assert_eq!(api.ok("GetUsers", &[]).await?, before_users);
    Ok(())
}

async fn assert_refuses_start_naming(file: &str, env: &[(&str, &str)], users: usize) -> Result<()> {
    let mut cluster = Cluster::start(1, env).await?;
    let api = cluster.api(0);
    for i in 0..users {
        api.ok("CreateUser", &[("userName", &format!("c{i}")), ("privileges", "login")]).await?;
    }
    cluster.stop(0).await?;
    let path = cluster.nodes[0].dir.join("data/raft").join(file);
    assert!(path.exists(), "{} exists", path.display());
    flip_byte_in_middle(&path)?;
    cluster.launch(0)?;
    let status = cluster.wait_exit(0, Duration::from_secs(30)).await?;
    assert!(!status.success(), "a node with a damaged {file} must not start");
    let log = cluster.nodes[0].log();
    assert!(log.contains(file) && log.contains("corrupted"), "the error names the file:\n{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_log_file_refuses_start_with_an_error_naming_it() -> Result<()> {
    assert_refuses_start_naming("raft-log.wal", &[], 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_snapshot_file_refuses_start_with_an_error_naming_it() -> Result<()> {
    assert_refuses_start_naming("raft-snapshot.bin", &[("ARCA_CLUSTER_SNAPSHOT_AFTER_LOGS", "10")], 30).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_wrong_cluster_secret_can_neither_join_nor_read() -> Result<()> {
    let mut cluster = Cluster::start(1, &[]).await?;
    let wrong = cluster.root().join("wrong.secret");
    std::fs::write(&wrong, arca_raft::tls::new_secret())?;
    let wrong_path = wrong.display().to_string();
    let index = cluster
        .place_node(
            Kind::Process,
            &[("ARCA_CLUSTER_SECRET_FILE", &wrong_path), ("ARCA_CLUSTER_JOIN_TIMEOUT_MS", "4000")],
        )
        .await?;
    cluster.launch(index)?;
    let status = cluster.wait_exit(index, Duration::from_secs(30)).await?;
    assert!(!status.success());
    assert!(cluster.nodes[index].log().contains("could not join"), "{}", cluster.nodes[index].log());
    let members = cluster.status(0).await?["members"].as_array().map(Vec::len);
    assert_eq!(members, Some(1), "the intruder is not a member");

    // Reading directly from the cluster listener with certificates from another secret fails too.
    let identity = arca_raft::tls::cluster_identity(&arca_raft::tls::new_secret())?;
    let clients = PeerClients::new(identity);
    let addr = format!("127.0.0.1:{}", cluster.nodes[0].cluster_port);
    let answer: Result<Value, _> =
        clients.call(&addr, &ClusterRequest::LocalState, Duration::from_secs(5)).await;
    assert!(answer.is_err(), "a stranger read cluster state: {answer:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_in_use_stops_startup_naming_the_setting() -> Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port().to_string();
    let mut cluster = Cluster::new(&[])?;
    let addr = format!("127.0.0.1:{port}");
    let index = cluster.place_node(Kind::Process, &[("ARCA_LISTEN_API", &addr)]).await?;
    cluster.launch(index)?;
    let status = cluster.wait_exit(index, Duration::from_secs(30)).await?;
    assert!(!status.success());
    let log = cluster.nodes[index].log();
    assert!(log.contains("listen.api") && log.contains("ARCA_LISTEN_API"), "{log}");
    let data = cluster.nodes[index].dir.join("data");
    assert!(!data.exists(), "nothing is created in a new data directory whose port is busy");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_data_directory_are_refused() -> Result<()> {
    let mut cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "before"), ("privileges", "login")]).await?;
    let data = cluster.nodes[0].dir.join("data").display().to_string();
    let pid = cluster.nodes[0].pid().expect("a process node");
    // A second server with its own ports on the same data directory.
    let second = cluster.place_node(Kind::Process, &[("ARCA_DATA_DIR", &data)]).await?;
    cluster.nodes[second].env.push(("ARCA_CLUSTER_JOIN_TIMEOUT_MS".into(), "2000".into()));
    cluster.launch(second)?;
    let status = cluster.wait_exit(second, Duration::from_secs(30)).await?;
    assert!(!status.success(), "the second server must not start");
    let log = cluster.nodes[second].log();
    assert!(
        log.contains(&data) && log.contains(&format!("process id {pid}")),
        "the error names the directory and the process holding it:\n{log}"
    );
    // The first server is undisturbed and its directory starts again.
    api.ok("CreateUser", &[("userName", "after"), ("privileges", "login")]).await?;
    cluster.stop(0).await?;
    cluster.restart(0).await?;
    let info = cluster.api(0).ok("GetUserInfo", &[("userName", "after")]).await?;
    assert_eq!(info["userName"], "after");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_process_and_process_nodes_form_one_cluster() -> Result<()> {
    let mut cluster = Cluster::new(&[])?;
    cluster.add_node(Kind::InProcess).await?;
    cluster.add_node(Kind::Process).await?;
    cluster.wait_members(2, Duration::from_secs(30)).await?;
    cluster.api(1).ok("CreateUser", &[("userName", "both"), ("privileges", "login")]).await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;
    let info = cluster.api(0).ok("GetUserInfo", &[("userName", "both")]).await?;
    assert_eq!(info["userName"], "both");
    cluster.stop(0).await?;
    Ok(())
}
