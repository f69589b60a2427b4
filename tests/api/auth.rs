//! Admin and progress-reporting endpoints: a bearer token when ADMIN_TOKEN is set, loopback otherwise.

use crate::helpers::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode as HttpStatus};
use jobcast::config::Secret;
use reqwest::StatusCode;
use serde_json::json;
use std::net::SocketAddr;
use tower::ServiceExt;

#[tokio::test]
async fn with_admin_token_set_reporting_needs_that_bearer_token() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.admin_token = Some(Secret::parse("s3cret-token").unwrap());
    config.worker_concurrency = 0;
    let app = spawn_app_with(config).await;
    let id = app.start_research("Cola", json!(["water"])).await;
    let path = app.url(&format!("/api/v4/job/{id}/fail"));
    let body = json!({"error": "stop"});

    let anonymous = app.client.post(&path).json(&body).send().await.unwrap();
    assert!(anonymous.headers().contains_key("www-authenticate"));
    detail_of(anonymous, StatusCode::UNAUTHORIZED).await;
    let wrong = app
        .client
        .post(&path)
        .bearer_auth("s3cret-tokeX")
        .json(&body)
        .send()
        .await
        .unwrap();
    detail_of(wrong, StatusCode::UNAUTHORIZED).await;
    let cleanup = app
        .client
        .delete(app.url("/api/v4/admin/cleanup-jobs"))
        .send()
        .await
        .unwrap();
    detail_of(cleanup, StatusCode::UNAUTHORIZED).await;

    let right = app
        .client
        .post(&path)
        .bearer_auth("s3cret-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    let job = app.job(&id).await; // reading by id stays open
    assert_eq!(job["status"], "failed");
}

#[tokio::test]
async fn without_admin_token_only_loopback_clients_may_report() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let router = jobcast::routes::router(app.state.clone());
    let remote: SocketAddr = ([203, 0, 113, 7], 40_000).into();
    let request = Request::builder()
        .method(Method::DELETE)
        .uri("/api/v4/admin/cleanup-jobs")
        .extension(ConnectInfo(remote))
        .body(Body::empty())
        .unwrap();

    let response = router.oneshot(request).await.unwrap();

    assert_eq!(response.status(), HttpStatus::FORBIDDEN);
    let loopback = app
        .client
        .delete(app.url("/api/v4/admin/cleanup-jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(loopback.status(), StatusCode::OK);
}
