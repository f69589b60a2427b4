//! `MAX_QUEUED_JOBS`: a full queue refuses new deep-research jobs with 503 and Retry-After,
//! stores nothing, and takes jobs again once workers have drained it.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_until_a_worker_drains_it() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    config.max_queued_jobs = 5;
    let api = spawn_app_with(config).await;
    let body = json!({"product_name": "Cola", "ingredients": ["water"]});
    for _ in 0..5 {
        api.start_research("Cola", json!(["water"])).await;
    }

    let refused = api.post("/api/v4/deep-research", &body).await;
    let retry_after = refused.headers().get("retry-after").cloned();
    let detail = detail_of(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    let generic = json!({"kind": "deep-research", "input": body});
    let also_refused = api.post("/api/v4/jobs", &generic).await;

    let retry_after: u64 = retry_after
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert!(detail.contains("queue is full"), "{detail}");
    assert_eq!(also_refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stored: usize = redis.command(&["ZCARD", INDEX_KEY]).await;
    assert_eq!(stored, 5, "a refused job is not stored");
    let external = api.post("/api/v4/jobs", &json!({"kind": "external"})).await;
    assert_eq!(
        external.status(),
        StatusCode::CREATED,
        "only queued kinds count"
    );

    let worker = spawn_app(&redis).await;
    eventually("the worker never drained the queue", || async {
        let queued: usize = redis.command(&["ZCARD", QUEUE_KEY]).await;
        (queued == 0).then_some(())
    })
    .await;
    let id = api.start_research("Cola", json!(["water"])).await;
    assert_eq!(worker.wait_until_finished(&id).await["status"], "completed");
}
