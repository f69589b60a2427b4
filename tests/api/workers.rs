//! Work is queued, so any instance can run any job, and each job runs once.

use crate::helpers::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_run_each_job_exactly_once() {
    let redis = TestRedis::start().await;
    let first = spawn_app(&redis).await;
    let second = spawn_app(&redis).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let app = if n % 2 == 0 { &first } else { &second };
        ids.push(
            app.start_research(&format!("Product {n}"), json!(["water", "salt", "sugar"]))
                .await,
        );
    }

    for id in &ids {
        let job = first.wait_until_finished(id).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["attempt"], 1, "started once: {job}");
    }
    let mut connection = redis.connection().await.unwrap();
    let leases: usize = redis::cmd("ZCARD")
        .arg(LEASES_KEY)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(leases, 0, "every lease handed back");
}

#[tokio::test]
async fn an_instance_without_workers_leaves_jobs_to_one_that_has_them() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let api_only = spawn_app_with(config).await;
    let id = api_only.start_research("Cola", json!(["water"])).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(api_only.job(&id).await["status"], "pending");

    let worker = spawn_app(&redis).await;
    let job = worker.wait_until_finished(&id).await;
    assert_eq!(job["status"], "completed");
}
