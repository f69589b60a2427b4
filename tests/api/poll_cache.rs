//! Polls are served from an instance-local cache that the pub/sub stream keeps exact.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

async fn seq_on(app: &TestApp, id: &str) -> u64 {
    app.job(id).await["seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_poll_sees_a_change_made_on_another_instance() {
    let redis = TestRedis::start().await;
    let polled = spawn_app(&redis).await;
    let writer = spawn_app(&redis).await;
    let id = writer.create_external_job().await;
    for _ in 0..3 {
        assert_eq!(seq_on(&polled, &id).await, 1); // now cached on `polled`
    }

    writer
        .report(&id, "progress", &json!({"progress": 10}))
        .await;
    writer
        .report(&id, "progress", &json!({"progress": 20}))
        .await;

    eventually(
        "the cached job never saw the other instance's change",
        || async { (seq_on(&polled, &id).await == 3).then_some(()) },
    )
    .await;
    assert_eq!(polled.job(&id).await["progress"], 20);
}

#[tokio::test]
async fn a_poll_right_after_this_instances_own_write_sees_it() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    assert_eq!(seq_on(&app, &id).await, 1);

    for progress in 1..=20u64 {
        app.report(&id, "progress", &json!({"progress": progress}))
            .await;
        assert_eq!(seq_on(&app, &id).await, progress + 1, "read your own write");
    }
}

#[tokio::test]
async fn an_expired_job_is_not_served_from_the_cache() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.job_ttl_secs = 1;
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    assert_eq!(seq_on(&app, &id).await, 1);

    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let response = app.get(&format!("/api/v4/job/{id}")).await;
    assert_eq!(
        detail_of(response, StatusCode::NOT_FOUND).await,
        "Job not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_pubsub_connection_was_down_is_not_hidden_by_the_cache() {
    let redis = TestRedis::start().await;
    let polled = spawn_app(&redis).await;
    let writer = spawn_app(&redis).await;
    let id = writer.create_external_job().await;
    assert_eq!(seq_on(&polled, &id).await, 1);

    let _: i64 = redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    writer
        .report(&id, "progress", &json!({"progress": 50}))
        .await;

    eventually("the change made meanwhile never showed", || async {
        (seq_on(&polled, &id).await == 2).then_some(())
    })
    .await;
}

/// How many GET commands Redis has served.
async fn redis_gets(redis: &TestRedis) -> u64 {
    let info: String = redis.command(&["INFO", "commandstats"]).await;
    let line = info
        .lines()
        .find(|line| line.starts_with("cmdstat_get:"))
        .unwrap_or("calls=0,");
    line.split("calls=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn repeated_polls_of_a_cached_job_cost_redis_nothing() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    seq_on(&app, &id).await;
    let before = redis_gets(&redis).await;

    for _ in 0..50 {
        seq_on(&app, &id).await;
    }

    assert_eq!(redis_gets(&redis).await, before);
}
