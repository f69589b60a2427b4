//! A job is never stuck: leases, fencing, the sweeper, and hand-back at shutdown.

use crate::helpers::*;
use jobcast::job::{Change, JobId, Rejection};
use jobcast::store::{JobStore, StoreError, WorkQueue};
use serde_json::{Value, json};
use std::time::Duration;

fn sweeping_config(redis: &TestRedis) -> jobcast::Config {
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    config.lease_secs = 1;
    config.sweep_interval_ms = 100;
    config
}

/// Claims and starts the job as a worker would, reports some progress, then "dies".
async fn start_and_abandon(app: &TestApp, progress: u8) -> (JobId, u32) {
    let store = &app.state.store;
    let id = store
        .claim(Duration::from_secs(1))
        .await
        .unwrap()
        .expect("a queued job");
    let job = store
        .apply(
            id,
            Change::Start {
                step: "Starting".into(),
            },
        )
        .await
        .unwrap();
    let change = Change::Progress {
        progress,
        step: Some("Halfway".into()),
        fence: Some(job.attempt),
    };
    store.apply(id, change).await.unwrap();
    (id, job.attempt)
}

async fn wait_for_status(app: &TestApp, id: &str, status: &str) -> Value {
    eventually(&format!("job {id} never {status}"), || async {
        let job = app.job(id).await;
        (job["status"] == status).then_some(job)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_job_is_requeued_with_its_progress_and_resumed_by_another_worker() {
    let redis = TestRedis::start().await;
    let api = spawn_app_with(sweeping_config(&redis)).await;
    let ingredients = json!(["water", "sugar", "aspartame", "caffeine", "citric acid"]);
    let id = api.start_research("Resumed", ingredients.clone()).await;
    let mut watcher = SseStream::connect(&api.url(&format!("/api/v4/job/{id}/events")), None).await;
    let (job_id, stale_attempt) = start_and_abandon(&api, 30).await;

    let requeued = wait_for_status(&api, &id, "pending").await;
    assert_eq!(
        (requeued["progress"].as_u64(), requeued["attempt"].as_u64()),
        (Some(30), Some(1))
    );
    assert!(
        requeued["current_step"]
            .as_str()
            .unwrap()
            .starts_with("Interrupted"),
        "{requeued}"
    );
    let late = Change::Progress {
        progress: 40,
        step: None,
        fence: Some(stale_attempt),
    };
    let refused = api.state.store.apply(job_id, late).await.unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::Rejected(Rejection::StaleAttempt { .. })
        ),
        "{refused:?}"
    );

    let mut config = test_config(&redis.url());
    config.worker_concurrency = 1;
    let worker = spawn_app_with(config).await;
    let resumed = worker.wait_until_finished(&id).await;
    let events = watcher.collect_until_end().await;

    assert_eq!(
        (resumed["status"].as_str(), resumed["attempt"].as_u64()),
        (Some("completed"), Some(2))
    );
    assert_progress_never_decreases(&events, "the resumed job");
    let fresh = worker.start_research("Resumed", ingredients).await;
    let uninterrupted = worker.wait_until_finished(&fresh).await;
    assert_eq!(
        resumed["result"], uninterrupted["result"],
        "the same report as an uninterrupted run"
    );
}

#[tokio::test]
async fn after_max_attempts_an_interrupted_job_fails_saying_so() {
    let redis = TestRedis::start().await;
    let mut config = sweeping_config(&redis);
    config.max_attempts = 1;
    let app = spawn_app_with(config).await;
    let id = app.start_research("Doomed", json!(["water"])).await;
    start_and_abandon(&app, 20).await;

    let failed = wait_for_status(&app, &id, "failed").await;

    assert!(
        failed["error"].as_str().unwrap().starts_with("Interrupted"),
        "{failed}"
    );
    let leases: usize = redis.command(&["ZCARD", LEASES_KEY]).await;
    assert_eq!(leases, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_hands_running_jobs_back_at_once() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 1;
    config.deep_research_step_ms = 200;
    config.lease_secs = 60; // a hand-back must not wait for expiry
    let first = spawn_app_with(config.clone()).await;
    let id = first
        .start_research("Handed back", json!(["water", "sugar", "salt"]))
        .await;
    wait_for_status(&first, &id, "processing").await;

    first.stop().await;

    let stored: String = redis.command(&["GET", &job_key(&id)]).await;
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["status"], "pending", "{stored}");
    let queued: Vec<String> = redis.command(&["ZRANGE", QUEUE_KEY, "0", "-1"]).await;
    assert_eq!(queued, vec![id.clone()]);
    let leases: usize = redis.command(&["ZCARD", LEASES_KEY]).await;
    assert_eq!(leases, 0);

    config.deep_research_step_ms = 0;
    let second = spawn_app_with(config).await;
    let job = second.wait_until_finished(&id).await;
    assert_eq!(
        (job["status"].as_str(), job["attempt"].as_u64()),
        (Some("completed"), Some(2))
    );
}
