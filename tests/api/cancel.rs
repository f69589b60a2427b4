//! Cancellation: `POST /api/v4/job/{id}/cancel` by the admin or the job's creator (its control
//! token), on Redis and in memory, reaching the worker on another instance.

use crate::helpers::*;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const ADMIN: &str = "admin-secret";

async fn spawn_app_with_admin(redis_url: &str, workers: u16) -> TestApp {
    let mut config = test_config(redis_url);
    config.admin_token = Some(jobcast::config::Secret::parse(ADMIN).unwrap());
    config.worker_concurrency = workers;
    spawn_app_with(config).await
}

/// Sends a create request: the new job's id and its control token.
async fn create(request: reqwest::RequestBuilder) -> (String, String) {
    let created: Value = request.send().await.unwrap().json().await.unwrap();
    let token = created["control_token"].as_str().expect("control_token");
    (
        created["job_id"].as_str().unwrap().to_owned(),
        token.to_owned(),
    )
}

/// `POST /api/v4/jobs` (as the admin) for a kind no worker runs.
async fn create_external(app: &TestApp) -> (String, String) {
    let request = reqwest::Client::new().post(app.url("/api/v4/jobs"));
    create(
        request
            .bearer_auth(ADMIN)
            .json(&json!({"kind": "external"})),
    )
    .await
}

/// `POST /api/v4/deep-research`, as any client.
async fn create_research(url: &str) -> (String, String) {
    let body = json!({"product_name": "Diet Cola", "ingredients": ["aspartame", "caramel color"]});
    let request = reqwest::Client::new().post(format!("{url}/api/v4/deep-research"));
    create(request.json(&body)).await
}

async fn cancel(
    url: &str,
    id: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(format!("{url}/api/v4/job/{id}/cancel"));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn job_at(url: &str, id: &str) -> Value {
    reqwest::get(format!("{url}/api/v4/job/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn only_the_admin_and_the_creator_may_cancel_and_a_finished_job_answers_409(app: &TestApp) {
    let (id, token) = create_external(app).await;
    let (_, other_token) = create_external(app).await;
    let url = app.url("");
    assert_eq!(
        cancel(&url, &id, None, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = cancel(&url, &id, Some(&other_token), None).await;
    assert_eq!(
        wrong.status(),
        StatusCode::UNAUTHORIZED,
        "another job's token"
    );
    let refused = cancel(&url, &id, Some(&token), Some(json!({"reason": 7}))).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let long = "x".repeat(jobcast::routes::MAX_CANCEL_REASON_CHARS + 1);
    let refused = cancel(&url, &id, Some(&token), Some(json!({"reason": long}))).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.job(&id).await["status"],
        "pending",
        "refused cancels change nothing"
    );

    let cancelled = cancel(
        &url,
        &id,
        Some(&token),
        Some(json!({"reason": "changed my mind"})),
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let job: Value = cancelled.json().await.unwrap();
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["error"], "Cancelled: changed my mind");
    assert!(job["completed_at"].is_string());
    assert_eq!(app.job(&id).await, job);

    // A finished job never changes: a second cancel, and the reporter's next report, are 409s.
    let again = cancel(&url, &id, Some(ADMIN), None).await;
    assert!(
        detail_of(again, StatusCode::CONFLICT)
            .await
            .contains("cancelled")
    );
    let report = reqwest::Client::new()
        .post(app.url(&format!("/api/v4/job/{id}/progress")))
        .bearer_auth(ADMIN)
        .json(&json!({"progress": 50}))
        .send()
        .await
        .unwrap();
    assert!(
        detail_of(report, StatusCode::CONFLICT)
            .await
            .contains("cancelled")
    );

    // The admin may cancel any job; no body gives the plain reason.
    let (admins, _) = create_external(app).await;
    let cancelled: Value = cancel(&url, &admins, Some(ADMIN), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["error"].as_str()),
        (Some("cancelled"), Some("Cancelled"))
    );
}

#[tokio::test]
async fn on_redis_only_the_admin_and_the_creator_may_cancel_and_a_finished_job_answers_409() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with_admin(&redis.url(), 0).await;
    only_the_admin_and_the_creator_may_cancel_and_a_finished_job_answers_409(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn in_memory_only_the_admin_and_the_creator_may_cancel_and_a_finished_job_answers_409() {
    let app = spawn_app_with_admin("redis+unix:///nonexistent/none.sock", 0).await;
    only_the_admin_and_the_creator_may_cancel_and_a_finished_job_answers_409(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_pending_job_is_never_started_by_any_instance() {
    let redis = TestRedis::start().await;
    let no_workers = spawn_app_with_admin(&redis.url(), 0).await;
    let (id, token) = create_research(&no_workers.url("")).await;
    let cancelled = cancel(&no_workers.url(""), &id, Some(&token), None).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    // A second instance's one worker claims the queue in order: the cancelled job, then this one.
    let (next, _) = create_research(&no_workers.url("")).await;
    let worker = spawn_app_with_admin(&redis.url(), 1).await;
    assert_eq!(
        worker.wait_until_finished(&next).await["status"],
        "completed"
    );
    let job = worker.job(&id).await;
    assert_eq!(
        (job["status"].as_str(), job["attempt"].as_u64()),
        (Some("cancelled"), Some(0))
    );
    worker.stop().await;
    no_workers.stop().await;
}

#[tokio::test]
async fn a_cancelled_job_ends_its_streams_with_a_cancelled_event_and_a_normal_close() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with_admin(&redis.url(), 0).await;
    let (id, token) = create_external(&app).await;
    let mut sse = SseStream::connect(&app.url(&format!("/api/v4/job/{id}/events")), None).await;
    assert_eq!(sse.next_event().await.unwrap().kind(), "snapshot");
    let (mut socket, _) = websocket_on(&app, &id, false).await;
    let snapshot = socket.next().await.unwrap().unwrap();
    assert!(snapshot.to_text().unwrap().contains("\"snapshot\""));

    assert_eq!(
        cancel(&app.url(""), &id, Some(&token), None).await.status(),
        StatusCode::OK
    );
    let rest = sse.collect_until_end().await;
    let kinds: Vec<&str> = rest.iter().map(|event| event.kind()).collect();
    assert_eq!(kinds, ["cancelled"]);
    assert_eq!(rest[0].json()["status"], "cancelled");
    let message = socket.next().await.unwrap().unwrap();
    let message: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
    assert_eq!(message["event"], "cancelled");
    match socket.next().await {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1000);
        }
        other => panic!("expected a normal close, got {other:?}"),
    }
    app.stop().await;
}

#[tokio::test]
async fn a_running_job_cancelled_through_another_process_stops_at_its_next_step() {
    const STEP_MS: u64 = 300;
    let redis = TestRedis::start().await;
    let step = STEP_MS.to_string();
    let shared = [
        ("REDIS_URL", redis.url()),
        ("ADMIN_TOKEN", ADMIN.to_owned()),
    ];
    let mut runner_vars: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    runner_vars.extend([
        ("DEEP_RESEARCH_STEP_MS", step.as_str()),
        ("WORKER_CONCURRENCY", "1"),
    ]);
    let runner = ServerProcess::start(&runner_vars).await;
    let mut other_vars: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    other_vars.push(("WORKER_CONCURRENCY", "0"));
    let other = ServerProcess::start(&other_vars).await;

    let (id, token) = create_research(&runner.url("")).await;
    let mut watcher =
        SseStream::connect(&other.url(&format!("/api/v4/job/{id}/events")), None).await;
    let running = eventually("the job runs on the first process", || async {
        let job = job_at(&other.url(""), &id).await;
        (job["status"] == "processing" && job["progress"].as_u64() > Some(0)).then_some(job)
    })
    .await;
    let cancelled = cancel(
        &other.url(""),
        &id,
        Some(&token),
        Some(json!({"reason": "stop"})),
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert!(
        cancelled["progress"].as_u64() < Some(100),
        "{running} -> {cancelled}"
    );

    let rest = watcher.collect_until_end().await;
    assert_eq!(rest.last().unwrap().kind(), "cancelled");
    eventually("the worker stops at its next step", || async {
        runner.logged("the job ended elsewhere").then_some(())
    })
    .await;
    // Its later writes were refused: the job stays as the cancel left it, lease released.
    tokio::time::sleep(Duration::from_millis(3 * STEP_MS)).await;
    assert_eq!(job_at(&runner.url(""), &id).await, cancelled);
    let scrape = reqwest::Client::new()
        .get(other.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        scrape.contains("jobcast_jobs_cancelled_total{kind=\"deep-research\"} 1"),
        "{scrape}"
    );
    drop(other);
    runner.terminate().await;
}
