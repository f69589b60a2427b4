//! `POST /api/v4/jobs/progress`: many reports in one request, each its own atomic change.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn report_many(app: &TestApp, reports: Value) -> (StatusCode, Value) {
    let response = app.post("/api/v4/jobs/progress", &reports).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn one_batch_moves_several_jobs_and_their_watchers_see_each_change() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let (a, b) = (
        app.create_external_job().await,
        app.create_external_job().await,
    );
    let mut watching_b =
        SseStream::connect(&app.url(&format!("/api/v4/job/{b}/events")), None).await;
    assert_eq!(watching_b.next_event().await.unwrap().kind(), "snapshot");

    let (status, results) = report_many(
        &app,
        json!([
            {"job_id": a, "progress": 30, "current_step": "reading"},
            {"job_id": b, "progress": 70, "current_step": "writing"},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(results[0], json!({"job_id": a, "status": 200, "seq": 2}));
    assert_eq!(results[1], json!({"job_id": b, "status": 200, "seq": 2}));
    assert_eq!(app.job(&a).await["progress"], 30);
    let seen = watching_b.next_event().await.unwrap();
    assert_eq!(
        (seen.kind(), seen.json()["current_step"].clone()),
        ("progress", json!("writing"))
    );
}

#[tokio::test]
async fn reports_of_one_job_apply_in_order_and_a_refused_one_does_not_stop_the_others() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, results) = report_many(
        &app,
        json!([
            {"job_id": id, "progress": 50},
            {"job_id": unknown, "progress": 10},
            {"job_id": id, "progress": 60},
            {"job_id": id, "progress": 40},
            {"job_id": id, "progress": 101},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 404, 200, 409, 422]);
    assert_eq!(results[2]["seq"], 3, "applied after the first");
    assert!(
        results[3]["detail"].as_str().unwrap().contains("backwards"),
        "{results}"
    );
    assert_eq!(app.job(&id).await["progress"], 60);
}

#[tokio::test]
async fn an_empty_or_oversized_batch_is_refused_with_a_detail() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.batch_max_updates = 2;
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    let (status, body) = report_many(&app, json!([])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("BATCH_MAX_UPDATES")
    );
    let three = json!([{"job_id": id, "progress": 1}, {"job_id": id, "progress": 2}, {"job_id": id, "progress": 3}]);
    assert_eq!(
        report_many(&app, three).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(app.job(&id).await["seq"], 1, "nothing applied");
    let not_a_list = app
        .post("/api/v4/jobs/progress", &json!({"job_id": id}))
        .await;
    assert_eq!(not_a_list.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_batch_needs_the_admin_token_like_a_single_report() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.admin_token = Some(jobcast::config::Secret::parse("secret").unwrap());
    let app = spawn_app_with(config).await;
    let response = app.post("/api/v4/jobs/progress", &json!([])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
