//! Priorities: queued jobs run highest priority first, first come first served within one; the
//! admin gives priorities and moves pending jobs; requeues and upgrades keep every job.

use crate::helpers::*;
use jobcast::job::{ARRIVALS_PER_BAND, Change, Priority};
use jobcast::store::{JobStore, LEGACY_QUEUE_KEY, WorkQueue};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const ADMIN: &str = "admin-secret";

fn idle_config(redis: &TestRedis) -> jobcast::Config {
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    config
}

async fn create_research(app: &TestApp, product: &str, priority: u8) -> String {
    let body = json!({"product_name": product, "ingredients": ["water"], "priority": priority});
    let response = app.post("/api/v4/deep-research", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["priority"], priority);
    job["job_id"].as_str().unwrap().to_owned()
}

async fn prioritise(url: &str, id: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/api/v4/job/{id}/priority"))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_worker_a_hundred_queued_jobs_run_by_priority_and_first_come_first_within_one() {
    let redis = TestRedis::start().await;
    let creator = spawn_app_with(idle_config(&redis)).await;
    let mut jobs = Vec::new(); // (id, priority), in order of arrival
    for i in 0..100u8 {
        let priority = (u32::from(i) * 7 % 10) as u8;
        let id = if i % 2 == 0 {
            create_research(&creator, &format!("Product {i}"), priority).await
        } else {
            let input = json!({"product_name": format!("Product {i}"), "ingredients": ["water"]});
            let body = json!({"kind": "deep-research", "input": input, "priority": priority});
            let job: Value = creator
                .post("/api/v4/jobs", &body)
                .await
                .json()
                .await
                .unwrap();
            job["job_id"].as_str().unwrap().to_owned()
        };
        jobs.push((id, priority));
    }
    // Three late arrivals move to the top: among the 9s they keep their arrival order.
    for index in [95, 40, 61] {
        let moved = prioritise(&creator.url(""), &jobs[index].0, &json!({"priority": 9})).await;
        assert_eq!(moved.status(), StatusCode::OK);
        jobs[index].1 = 9;
    }
    let mut expected: Vec<(usize, &(String, u8))> = jobs.iter().enumerate().collect();
    expected.sort_by_key(|(arrival, (_, priority))| (std::cmp::Reverse(*priority), *arrival));

    let mut config = test_config(&redis.url());
    config.worker_concurrency = 1;
    config.deep_research_step_ms = 1;
    let worker = spawn_app_with(config).await;
    let mut finished = Vec::new();
    for (id, _) in &jobs {
        let job = worker.wait_until_finished(id).await;
        assert_eq!(job["status"], "completed", "{job}");
        finished.push((timestamp(&job, "completed_at"), id.clone()));
    }
    finished.sort();

    let ran: Vec<&String> = finished.iter().map(|(_, id)| id).collect();
    let expected: Vec<&String> = expected.iter().map(|(_, (id, _))| id).collect();
    assert_eq!(ran, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_requeues_an_abandoned_job_at_its_priority() {
    let redis = TestRedis::start().await;
    let mut config = idle_config(&redis);
    config.lease_secs = 1;
    config.sweep_interval_ms = 100;
    let app = spawn_app_with(config).await;
    let ordinary = create_research(&app, "Ordinary", 0).await;
    let urgent = create_research(&app, "Urgent", 7).await;
    let store = &app.state.store;
    let claimed = store.claim(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(
        claimed.to_string(),
        urgent,
        "the higher priority is claimed first"
    );
    let start = Change::Start {
        step: "Starting".into(),
    };
    store.apply(claimed, start).await.unwrap(); // ...and its worker dies

    eventually("the abandoned job was never requeued", || async {
        (app.job(&urgent).await["status"] == "pending").then_some(())
    })
    .await;
    let score: f64 = redis.command(&["ZSCORE", QUEUE_KEY, &urgent]).await;
    let band = Priority::new(7).unwrap().band() as f64;
    assert!(
        (band..band + ARRIVALS_PER_BAND as f64).contains(&score),
        "score {score} outside priority 7's band"
    );
    let next = store.claim(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(next.to_string(), urgent, "still ahead of {ordinary}");
}

#[tokio::test]
async fn a_pending_job_can_be_reprioritised_until_it_starts_on_redis_and_in_memory() {
    let redis = TestRedis::start().await;
    // Without Redis an unknown job may exist where this instance cannot see: 503, not 404.
    for (app, unknown_answer) in [
        (spawn_app(&redis).await, StatusCode::NOT_FOUND),
        (
            spawn_app_without_redis().await,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ] {
        let id = app.create_external_job().await;
        let url = app.url("");

        let moved = prioritise(&url, &id, &json!({"priority": 6})).await;
        assert_eq!(moved.status(), StatusCode::OK);
        let job: Value = moved.json().await.unwrap();
        assert_eq!(
            (job["priority"].as_u64(), job["seq"].as_u64()),
            (Some(6), Some(2))
        );
        assert_eq!(app.job(&id).await["priority"], 6);
        for bad in [
            json!({"priority": 10}),
            json!({"priority": -1}),
            json!({"priority": "high"}),
        ] {
            let refused = prioritise(&url, &id, &bad).await;
            assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }

        app.report(&id, "progress", &json!({"progress": 10})).await;
        let late = prioritise(&url, &id, &json!({"priority": 1})).await;
        assert_eq!(
            detail_of(late, StatusCode::CONFLICT).await,
            "Illegal transition: job is already processing"
        );
        let unknown = uuid::Uuid::new_v4().to_string();
        let unknown = prioritise(&url, &unknown, &json!({"priority": 1})).await;
        assert_eq!(unknown.status(), unknown_answer);
    }
}

#[tokio::test]
async fn only_the_admin_may_ask_the_public_endpoint_for_a_priority_above_the_default() {
    let redis = TestRedis::start().await;
    let mut config = idle_config(&redis);
    config.admin_token = Some(jobcast::config::Secret::parse(ADMIN).unwrap());
    let app = spawn_app_with(config).await;
    let create = |priority: Value| {
        let body = json!({"product_name": "Cola", "ingredients": ["water"], "priority": priority});
        reqwest::Client::new()
            .post(app.url("/api/v4/deep-research"))
            .json(&body)
    };

    let anonymous = create(json!(5)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let ordinary: Value = create(json!(0)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ordinary["priority"], 0);
    let premium = create(json!(5)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(premium.status(), StatusCode::OK);
    let premium: Value = premium.json().await.unwrap();
    assert_eq!(premium["priority"], 5);
    for bad in [json!(12), json!("5"), json!(2.5)] {
        let refused = create(bad.clone()).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(
            detail_of(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
            "priority must be an integer from 0 to 9",
            "{bad}"
        );
    }
    let queued: Vec<String> = redis.command(&["ZRANGE", QUEUE_KEY, "0", "-1"]).await;
    assert_eq!(
        queued,
        [
            premium["job_id"].as_str().unwrap(),
            ordinary["job_id"].as_str().unwrap()
        ],
        "claim order"
    );
}

#[tokio::test]
async fn jobs_an_older_version_queued_on_its_list_still_run() {
    let redis = TestRedis::start().await;
    let creator = spawn_app_with(idle_config(&redis)).await;
    let old = create_research(&creator, "Queued by the old version", 0).await;
    let _: () = redis.command(&["ZREM", QUEUE_KEY, &old]).await;
    let _: () = redis.command(&["LPUSH", LEGACY_QUEUE_KEY, &old]).await;
    let new = create_research(&creator, "Queued by this version", 3).await;

    let worker = spawn_app(&redis).await;

    for id in [&old, &new] {
        assert_eq!(worker.wait_until_finished(id).await["status"], "completed");
    }
    let left: usize = redis.command(&["LLEN", LEGACY_QUEUE_KEY]).await;
    assert_eq!(left, 0);
    assert_eq!(worker.state.store.queued_len().await.unwrap(), 0);
}
