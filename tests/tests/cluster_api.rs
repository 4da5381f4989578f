//! The Administration API behind a load balancer: any node answers for calls started on another.

use std::time::Duration;

use anyhow::Result;
use arca_tests::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_running_call_is_polled_and_cancelled_through_other_nodes() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let started =
        cluster.api(0).invoke("ArcaTestSleep", &[("milliseconds", "20000"), ("steps", "40")]).await?;
    assert_eq!(started["statusCode"], "running", "{started}");
    let token = started["token"].as_str().expect("token").to_string();

    let polled = cluster
        .api(1)
        .envelope(
            "/api/get-status",
            &[("token", &token), ("lastKnownStatusVersion", "1"), ("millisecondsTimeout", "3000")],
        )
        .await?;
    assert!(polled["error"].is_null(), "{polled}");
    assert_eq!(polled["token"], token.as_str());
    assert!(polled["statusVersion"].as_u64() > Some(1), "{polled}");
    assert!(polled["logOutput"].as_str().is_some_and(|l| l.contains("step 1 of 40")), "{polled}");

    let cancelled = cluster.api(2).envelope("/api/cancel-async", &[("token", &token)]).await?;
    assert_eq!(cancelled["statusCode"], "cancelled", "{cancelled}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = cluster
        .api(0)
        .envelope("/api/get-status", &[("token", &token), ("millisecondsTimeout", "0")])
        .await?;
    assert_eq!(after["statusCode"], "cancelled", "the call really stopped on the node running it: {after}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_readiness_and_metrics_answer_on_every_node() -> Result<()> {
    let cluster = Cluster::start(2, &[]).await?;
    for i in 0..2 {
        let api = cluster.api(i);
        assert_eq!(api.get("/healthz").await?.status, 200);
        assert_eq!(api.get("/readyz").await?.status, 200);
        let metrics = api.get("/metrics").await?;
        assert_eq!(metrics.status, 200);
        assert!(metrics.body.contains("arca_raft_term "), "{}", metrics.body);
        assert!(metrics.body.contains("# TYPE arca_raft_applied_index gauge"), "{}", metrics.body);
    }
    let leaders: u32 = count_leaders(&cluster).await?;
    assert_eq!(leaders, 1, "exactly one node reports itself leader");
    Ok(())
}

async fn count_leaders(cluster: &Cluster) -> Result<u32> {
    let mut leaders = 0;
    for i in 0..2 {
        let body = cluster.api(i).get("/metrics").await?.body;
        leaders += u32::from(body.lines().any(|l| l == "arca_raft_is_leader 1"));
    }
    Ok(leaders)
}
