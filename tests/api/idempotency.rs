//! Safe retries of creation: an `Idempotency-Key` makes a retried create answer the job the
//! first one made, per client, for `IDEMPOTENCY_TTL_SECS`, atomically across instances.

use crate::helpers::*;
use jobcast::client_addr::TrustedProxies;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn research(product: &str) -> Value {
    json!({"product_name": product, "ingredients": ["water", "aspartame"]})
}

/// A create through `url` with `key`, optionally as the client at `forwarded_for` (behind the
/// trusted proxy on loopback): its status, its headers' replay mark, and its job.
async fn create(
    url: &str,
    path: &str,
    key: &str,
    body: &Value,
    forwarded_for: Option<&str>,
) -> (StatusCode, bool, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("Idempotency-Key", key)
        .json(body);
    if let Some(address) = forwarded_for {
        request = request.header("X-Forwarded-For", address);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, replayed, response.json().await.unwrap())
}

async fn indexed_jobs(redis: &TestRedis) -> usize {
    redis.command(&["ZCARD", INDEX_KEY]).await
}

#[tokio::test]
async fn a_retried_create_answers_the_first_job_with_the_same_status_on_both_endpoints() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let app = spawn_app_with(config).await;
    let url = app.url("");
    let external = json!({"kind": "external", "input": {"order": 17}});

    for (path, body, status) in [
        (
            "/api/v4/deep-research",
            research("Diet cola"),
            StatusCode::OK,
        ),
        ("/api/v4/jobs", external, StatusCode::CREATED),
    ] {
        let key = format!("retry {path}").replace(' ', "-");
        let first = create(&url, path, &key, &body, None).await;
        let retry = create(&url, path, &key, &body, None).await;

        assert_eq!((first.0, first.1), (status, false), "{path}");
        assert_eq!((retry.0, retry.1), (status, true), "{path}");
        assert_eq!(retry.2["job_id"], first.2["job_id"]);
        assert_eq!(retry.2["control_token"], first.2["control_token"]);
    }
    assert_eq!(
        indexed_jobs(&redis).await,
        2,
        "one job per key and endpoint"
    );
    let queued: usize = redis.command(&["ZCARD", QUEUE_KEY]).await;
    assert_eq!(queued, 1, "the deep-research job is queued once");
}

#[tokio::test]
async fn the_same_key_for_another_request_answers_422_and_stores_nothing() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let url = app.url("");
    let first = create(
        &url,
        "/api/v4/deep-research",
        "k-1",
        &research("Cola"),
        None,
    )
    .await;
    assert_eq!(first.0, StatusCode::OK);

    let other_body = create(&url, "/api/v4/deep-research", "k-1", &research("Tea"), None).await;
    let with_priority =
        json!({"product_name": "Cola", "ingredients": ["water", "aspartame"], "priority": 3});
    let other_priority = create(&url, "/api/v4/deep-research", "k-1", &with_priority, None).await;
    let as_generic = json!({"kind": "deep-research", "input": research("Cola")});
    let other_endpoint = create(&url, "/api/v4/jobs", "k-1", &as_generic, None).await;

    for (status, _, answer) in [other_body, other_priority, other_endpoint] {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key was used for a different request"),
            "{answer}"
        );
    }
    assert_eq!(indexed_jobs(&redis).await, 1);
}

#[tokio::test]
async fn keys_belong_to_their_client() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    let app = spawn_app_with(config).await;
    let url = app.url("");
    let body = research("Cola");

    let as_client = |address| create(&url, "/api/v4/deep-research", "1", &body, Some(address));

    let alice = as_client("198.51.100.7").await;
    let bob = as_client("203.0.113.9").await;
    let alice_again = as_client("198.51.100.7").await;

    assert_ne!(alice.2["job_id"], bob.2["job_id"]);
    assert!(!bob.1, "another client's key is not a retry");
    assert_eq!(alice_again.2["job_id"], alice.2["job_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_one_key_make_one_job() {
    let redis = TestRedis::start().await;
    let first = spawn_app(&redis).await;
    let second = spawn_app(&redis).await;
    let body = research("Raced");
    let requests = (0..20).map(|i| {
        let url = if i % 2 == 0 {
            first.url("")
        } else {
            second.url("")
        };
        let body = body.clone();
        async move { create(&url, "/api/v4/deep-research", "race", &body, None).await }
    });

    let answers = futures::future::join_all(requests).await;

    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(status, _, job)| {
            assert_eq!(*status, StatusCode::OK, "{job}");
            job["job_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1
    );
    assert_eq!(indexed_jobs(&redis).await, 1);
}

#[tokio::test]
async fn a_key_names_its_job_for_idempotency_ttl_secs_on_redis_and_in_memory() {
    let redis = TestRedis::start().await;
    let mut on_redis = test_config(&redis.url());
    on_redis.idempotency_ttl_secs = 1;
    let nowhere = std::env::temp_dir().join(format!("{}.sock", uuid::Uuid::new_v4()));
    let mut without_redis = test_config(&format!("redis+unix://{}", nowhere.display()));
    without_redis.idempotency_ttl_secs = 1;
    for config in [on_redis, without_redis] {
        let app = spawn_app_with(config).await;
        let url = app.url("");
        let body = research("Cola");
        let first = create(&url, "/api/v4/deep-research", "daily", &body, None).await;
        let retry = create(&url, "/api/v4/deep-research", "daily", &body, None).await;
        assert_eq!(retry.2["job_id"], first.2["job_id"]);

        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let later = create(&url, "/api/v4/deep-research", "daily", &body, None).await;

        assert_eq!((later.0, later.1), (StatusCode::OK, false));
        assert_ne!(
            later.2["job_id"], first.2["job_id"],
            "a new job once the key expired"
        );
    }
}

#[tokio::test]
async fn an_unusable_key_answers_400() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let long = "x".repeat(256);
    for key in ["", "two words", long.as_str()] {
        let (status, _, answer) = create(
            &app.url(""),
            "/api/v4/deep-research",
            key,
            &research("Cola"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key:?}: {answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .starts_with("Idempotency-Key must be")
        );
    }
    assert_eq!(indexed_jobs(&redis).await, 0);
}
