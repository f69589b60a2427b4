//! No job stuck forever: jobs that no lease will ever bring back — created but never queued, or
//! processing with their lease lost — are found by the reconciliation pass and finish.

use crate::helpers::*;
use chrono::{TimeDelta, Utc};
use jobcast::job::{Job, JobStatus, Timestamp};
use serde_json::value::RawValue;
use std::time::Duration;

/// Reconciles at every sweep, ten times a second, with a short lease.
fn reconciling_config(redis: &TestRedis, workers: u16) -> jobcast::Config {
    let mut config = test_config(&redis.url());
    config.worker_concurrency = workers;
    config.lease_secs = 1;
    config.sweep_interval_ms = 100;
    config.reconcile_every_sweeps = 1;
    config
}

/// Writes a deep-research job straight into Redis, indexed, last changed `ago` — what a crash
/// (or a Redis that lost its queue and leases) leaves behind. Nothing is queued or leased.
async fn plant(redis: &TestRedis, status: JobStatus, ago: TimeDelta) -> String {
    let input = r#"{"product_name":"Cola","ingredients":["water","sugar","caffeine"]}"#;
    let input = RawValue::from_string(input.to_owned()).unwrap();
    let mut job = Job::new("deep-research", input, Timestamp(Utc::now() - ago), 600);
    if status == JobStatus::Processing {
        job.status = status;
        job.attempt = 1;
        job.progress = 20;
        job.seq = 3;
        job.current_step = "Analysing".into();
    }
    let id = job.job_id.to_string();
    let key = job.job_id.key();
    let _: () = redis
        .command(&["SET", &key, &job.to_json(), "EX", "600"])
        .await;
    let score = job.created_at.0.timestamp_millis().to_string();
    let _: () = redis.command(&["ZADD", INDEX_KEY, &score, &id]).await;
    id
}

async fn queued(redis: &TestRedis) -> Vec<String> {
    redis.command(&["ZRANGE", QUEUE_KEY, "0", "-1"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_job_that_never_reached_the_queue_is_requeued_and_finishes() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(reconciling_config(&redis, 1)).await;
    // A corrupt record indexed first (oldest) does not stop the pass.
    let corrupt = uuid::Uuid::new_v4().to_string();
    let key = job_key(&corrupt);
    let _: () = redis
        .command(&["SET", &key, "{\"status\":", "EX", "600"])
        .await;
    let _: () = redis.command(&["ZADD", INDEX_KEY, "1", &corrupt]).await;

    let id = plant(&redis, JobStatus::Pending, TimeDelta::minutes(1)).await;

    let finished = app.wait_until_finished(&id).await;
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["attempt"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_job_whose_lease_vanished_is_requeued_and_finishes_for_its_watchers() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(reconciling_config(&redis, 0)).await;
    let id = plant(&redis, JobStatus::Processing, TimeDelta::minutes(1)).await;
    let url = app.url(&format!("/api/v4/job/{id}/events"));
    let mut watcher = SseStream::connect(&url, None).await;

    let worker = spawn_app_with(reconciling_config(&redis, 1)).await;
    let finished = worker.wait_until_finished(&id).await;
    let events = watcher.collect_until_end().await;

    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["attempt"], 2, "resumed by a second attempt");
    let requeued = events.iter().any(|event| {
        let job = event.json();
        job["status"] == "pending"
            && job["current_step"]
                .as_str()
                .unwrap()
                .contains("lease was lost")
    });
    assert!(requeued, "the watcher saw the requeue");
    assert_eq!(events.last().unwrap().json()["status"], "completed");
    assert_progress_never_decreases(&events, "the reconciled job");
}

#[tokio::test]
async fn a_processing_job_without_a_lease_fails_once_it_used_up_its_attempts() {
    let redis = TestRedis::start().await;
    let mut config = reconciling_config(&redis, 1);
    config.max_attempts = 1;
    let app = spawn_app_with(config).await;

    let id = plant(&redis, JobStatus::Processing, TimeDelta::minutes(1)).await;

    let finished = app.wait_until_finished(&id).await;
    assert_eq!(finished["status"], "failed", "{finished}");
    assert!(
        finished["error"]
            .as_str()
            .unwrap()
            .contains("lease was lost"),
        "{finished}"
    );
}

#[tokio::test]
async fn a_job_between_its_creation_and_its_enqueue_is_not_queued_twice() {
    let redis = TestRedis::start().await;
    let mut config = reconciling_config(&redis, 0);
    config.reconcile_grace_ms = 1_000;
    let _app = spawn_app_with(config).await;
    let creating = plant(&redis, JobStatus::Pending, TimeDelta::zero()).await;
    let stranded = plant(&redis, JobStatus::Pending, TimeDelta::minutes(1)).await;

    eventually("the stranded job was never requeued", || async {
        queued(&redis).await.contains(&stranded).then_some(())
    })
    .await;
    assert!(
        !queued(&redis).await.contains(&creating),
        "queued within its grace"
    );
    // The creator finishes its enqueue; later passes, with the job past its grace, see it queued.
    let _: () = redis.command(&["ZADD", QUEUE_KEY, "1", &creating]).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let _: () = redis.command(&["ZREM", QUEUE_KEY, &stranded]).await;
    eventually("no pass ran after the grace", || async {
        queued(&redis).await.contains(&stranded).then_some(())
    })
    .await;

    let queue = queued(&redis).await;
    assert_eq!(
        queue.iter().filter(|id| **id == creating).count(),
        1,
        "{queue:?}"
    );
}
