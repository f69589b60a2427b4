//! No stored data crashes a handler: payloads no client could read are refused at the door, a
//! corrupt record in Redis is skipped in listings and answered with a clear error, and a panic
//! becomes a 500 with a `detail` on a connection that stays open.

use crate::helpers::*;
use jobcast::job::{Job, JobStatus, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn listed_ids(app: &TestApp) -> Vec<String> {
    let response = app.get("/api/v4/jobs?limit=100").await;
    assert_eq!(response.status(), StatusCode::OK);
    job_ids(&response.json().await.unwrap())
}

/// Writes `document` under `job:<id>` and indexes it, as an older version or a hand might have.
async fn plant(redis: &TestRedis, id: &str, document: &str) {
    let key = job_key(id);
    let _: () = redis.command(&["SET", &key, document, "EX", "600"]).await;
    let score = Timestamp::now().0.timestamp_millis().to_string();
    let _: () = redis.command(&["ZADD", INDEX_KEY, &score, id]).await;
}

#[tokio::test]
async fn an_input_with_a_lone_surrogate_or_a_number_beyond_f64_is_422_and_not_stored() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    for input in [r#""\ud800""#, "1e400", r#"{"deep":["\udfff"]}"#, "[-1e999]"] {
        let body = format!(r#"{{"kind": "external", "input": {input}}}"#);
        let response = app.post_raw("/api/v4/jobs", body).await;
        let detail = detail_of(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(detail.contains("input"), "{input}: {detail}");
    }

    let indexed: usize = redis.command(&["ZCARD", INDEX_KEY]).await;
    assert_eq!(indexed, 0, "no job was stored");
    assert!(listed_ids(&app).await.is_empty());
}

#[tokio::test]
async fn a_result_beyond_f64_is_422_and_the_job_stays_listable() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    app.report(&id, "progress", &serde_json::json!({"progress": 10}))
        .await;

    let path = format!("/api/v4/job/{id}/complete");
    let response = app.post_raw(&path, r#"{"result": 1e999}"#.to_owned()).await;
    let detail = detail_of(response, StatusCode::UNPROCESSABLE_ENTITY).await;

    assert!(detail.contains("result"), "{detail}");
    assert_eq!(app.job(&id).await["status"], "processing");
    assert_eq!(listed_ids(&app).await, vec![id]);
}

#[tokio::test]
async fn corrupt_records_in_redis_are_skipped_in_the_listing_and_answered_with_a_clear_500() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let good = app.create_external_job().await;
    let not_json = uuid::Uuid::new_v4().to_string();
    plant(&redis, &not_json, "{\"job_id\": ").await;
    let wrong_shape = uuid::Uuid::new_v4().to_string();
    plant(&redis, &wrong_shape, r#"{"hello": "world"}"#).await;
    let lone_surrogate = RawValue::from_string(r#"{"name":"\ud800"}"#.to_owned()).unwrap();
    let mut old = Job::new("external", lone_surrogate, Timestamp::now(), 600);
    old.status = JobStatus::Processing;
    let old_id = old.job_id.to_string();
    plant(&redis, &old_id, &old.to_json()).await;

    assert_eq!(listed_ids(&app).await, vec![good.clone()]);
    let processing = app.get("/api/v4/jobs?status=processing").await;
    assert_eq!(processing.status(), StatusCode::OK);
    for id in [&not_json, &wrong_shape, &old_id] {
        let response = app.get(&format!("/api/v4/job/{id}")).await;
        let detail = detail_of(response, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert!(detail.contains("damaged"), "{id}: {detail}");
    }
    let fresh = reqwest::Client::new(); // a fresh connection: the direct stream path
    let events = app.url(&format!("/api/v4/job/{not_json}/events"));
    let response = fresh.get(events).send().await.unwrap();
    let detail = detail_of(response, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert!(detail.contains("damaged"), "events: {detail}");
    let socket = format!("ws://{}/api/v4/job/{not_json}/ws", app.addr);
    match tokio_tungstenite::connect_async(socket).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 500)
        }
        other => panic!("expected an HTTP 500 before the upgrade, got {other:?}"),
    }
    for id in [&not_json, &wrong_shape] {
        let progress = serde_json::json!({"progress": 50});
        let response = app.report(id, "progress", &progress).await;
        let detail = detail_of(response, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert!(detail.contains("damaged"), "{id}: {detail}");
    }
    assert_eq!(app.job(&good).await["status"], "pending");
}

/// Sends `GET path` on `stream` and reads the whole response (it has a Content-Length).
async fn exchange(stream: &mut tokio::net::TcpStream, path: &str) -> (u16, Value) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: jobcast\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(read > 0, "the server closed the connection");
        bytes.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("a Content-Length");
        if body.len() >= length {
            let status = head[9..12].parse().unwrap();
            return (status, serde_json::from_str(&body[..length]).unwrap());
        }
    }
}

async fn buggy_handler() -> &'static str {
    panic!("a bug in a handler")
}

#[tokio::test]
async fn a_handler_that_panics_answers_500_with_a_detail_and_the_connection_stays_open() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    #[allow(clippy::disallowed_methods)] // the test's own route, not one the application serves
    let panicking = axum::Router::new().route("/boom", axum::routing::get(buggy_handler));
    let router = jobcast::routes::with_layers(panicking, app.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let first = exchange(&mut stream, "/boom").await;
    let second = exchange(&mut stream, "/boom").await;

    for (status, body) in [first, second] {
        assert_eq!(status, 500);
        assert_eq!(body["detail"], "Internal server error");
    }
}
