//! Bad input gets a clear 4xx with a `{"detail": ...}` body, never a 500.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

async fn app() -> (TestRedis, TestApp) {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let app = spawn_app_with(config).await;
    (redis, app)
}

#[tokio::test]
async fn malformed_json_is_400_with_a_detail() {
    let (_redis, app) = app().await;
    let response = app
        .post_raw("/api/v4/deep-research", "{\"product_name\": ")
        .await;
    let detail = detail_of(response, StatusCode::BAD_REQUEST).await;
    assert!(detail.contains("JSON"), "{detail}");
}

#[tokio::test]
async fn missing_fields_are_422_naming_the_field() {
    let (_redis, app) = app().await;
    let response = app
        .post("/api/v4/deep-research", &json!({"ingredients": ["water"]}))
        .await;
    let detail = detail_of(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.contains("product_name"), "{detail}");
    let response = app
        .post("/api/v4/deep-research", &json!({"product_name": "Cola"}))
        .await;
    let detail = detail_of(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(detail.contains("ingredients"), "{detail}");
}

#[tokio::test]
async fn wrong_types_are_422_with_a_detail() {
    let (_redis, app) = app().await;
    for body in [
        json!({"product_name": 5, "ingredients": ["water"]}),
        json!({"product_name": "Cola", "ingredients": [1, 2]}),
        json!({"product_name": "Cola", "ingredients": {"a": 1}}),
        json!(["not", "an", "object"]),
    ] {
        let response = app.post("/api/v4/deep-research", &body).await;
        let detail = detail_of(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(!detail.is_empty(), "{body}");
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let (_redis, app) = app().await;
    let huge = "x".repeat(70 * 1024);
    let body = json!({"product_name": "Cola", "ingredients": [huge]});
    let response = app.post("/api/v4/deep-research", &body).await;
    detail_of(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let (_redis, app) = app().await;
    let response = app
        .client
        .post(app.url("/api/v4/deep-research"))
        .body("product_name=Cola")
        .send()
        .await
        .unwrap();
    detail_of(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn a_malformed_job_id_is_400_saying_so() {
    let (_redis, app) = app().await;
    let detail = detail_of(
        app.get("/api/v4/job/not-a-uuid").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(detail.contains("UUID"), "{detail}");
    let response = app.report("123", "progress", &json!({"progress": 1})).await;
    detail_of(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn out_of_range_progress_is_422() {
    let (_redis, app) = app().await;
    let id = app.create_external_job().await;
    for progress in [json!(101), json!(-1), json!(50.5), json!("50")] {
        let response = app
            .report(&id, "progress", &json!({"progress": progress}))
            .await;
        detail_of(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test]
async fn an_invalid_kind_or_empty_error_is_422() {
    let (_redis, app) = app().await;
    let response = app
        .post("/api/v4/jobs", &json!({"kind": "no spaces allowed"}))
        .await;
    detail_of(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let id = app.create_external_job().await;
    let response = app.report(&id, "fail", &json!({"error": "  "})).await;
    detail_of(response, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_detail_shape() {
    let (_redis, app) = app().await;
    detail_of(app.get("/api/v4/nothing-here").await, StatusCode::NOT_FOUND).await;
    let response = app
        .client
        .put(app.url("/api/v4/deep-research"))
        .send()
        .await
        .unwrap();
    detail_of(response, StatusCode::METHOD_NOT_ALLOWED).await;
}
