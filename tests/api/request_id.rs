//! Request tracing: every answer carries `x-request-id` (the client's, when usable, else a new
//! one), on the axum routes and on both direct stream paths, and the request's log lines have it.

use crate::helpers::*;
use jobcast::cors::CorsOrigins;
use jobcast::request_id::MAX_REQUEST_ID_CHARS;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn is_uuid(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

/// Sends `request`; the answer's status and `x-request-id`.
async fn status_and_id(request: reqwest::RequestBuilder) -> (reqwest::StatusCode, String) {
    let response = request.send().await.unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .expect("the answer carries x-request-id");
    (response.status(), id.to_str().unwrap().to_owned())
}

/// `GET path` on a fresh connection with `x-request-id: sent` (when given); the answer's id.
async fn answered_id(
    app: &TestApp,
    path: &str,
    sent: Option<&str>,
) -> (reqwest::StatusCode, String) {
    let mut request = reqwest::Client::new().get(app.url(path));
    if let Some(sent) = sent {
        request = request.header("x-request-id", sent);
    }
    status_and_id(request).await
}

/// A raw request head written on a fresh connection; the answer's status and `x-request-id`.
async fn raw_answer(app: &TestApp, head: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 1024];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the answer ended before its head did");
        answer.extend_from_slice(&chunk[..read]);
    }
    let head = String::from_utf8_lossy(&answer).to_lowercase();
    let status = head
        .strip_prefix("http/1.1 ")
        .and_then(|rest| rest.get(..3)?.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP/1.1 status line: {head}"));
    let id = head
        .lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("the answer carries x-request-id: {head}"));
    (status, id.to_owned())
}

#[tokio::test]
async fn every_rest_answer_carries_a_new_request_id_or_the_clients_usable_one() {
    let app = spawn_app_without_redis().await;
    let (status, new) = answered_id(&app, "/health", None).await;
    assert_eq!(status, 200);
    assert!(is_uuid(&new), "{new}");
    assert_ne!(
        answered_id(&app, "/health", None).await.1,
        new,
        "ids are not reused"
    );

    let kept = "01HZXK-trace:4bf92f3577b34da6";
    assert_eq!(answered_id(&app, "/health", Some(kept)).await.1, kept);
    let too_long = "a".repeat(MAX_REQUEST_ID_CHARS + 1);
    for unusable in ["two words", "<script>", too_long.as_str()] {
        let (_, replaced) = answered_id(&app, "/health", Some(unusable)).await;
        assert!(
            is_uuid(&replaced),
            "{unusable:?} was answered with {replaced:?}"
        );
    }
    // Errors too: an unknown route, an unknown job, a refused body.
    assert_eq!(
        answered_id(&app, "/nowhere", Some(kept)).await,
        (404.try_into().unwrap(), kept.to_owned())
    );
    let unknown_job = format!("/api/v4/job/{}", uuid::Uuid::new_v4());
    assert_eq!(answered_id(&app, &unknown_job, Some(kept)).await.1, kept);
    let refused = reqwest::Client::new()
        .post(app.url("/api/v4/deep-research"))
        .header("x-request-id", kept)
        .json(&json!({"product_name": 7}));
    let (status, id) = status_and_id(refused).await;
    assert_eq!(status, 422);
    assert_eq!(id, kept);
    app.stop().await;
}

#[tokio::test]
async fn a_cors_preflight_carries_a_request_id() {
    let mut config = test_config("redis+unix:///nonexistent/none.sock");
    config.cors_allowed_origins = CorsOrigins::parse("http://dash.example").unwrap();
    let app = spawn_app_with(config).await;
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/api/v4/deep-research"))
        .header("origin", "http://dash.example")
        .header("access-control-request-method", "POST")
        .header("x-request-id", "preflight-1");
    let (status, id) = status_and_id(preflight).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(id, "preflight-1");
    app.stop().await;
}

#[tokio::test]
async fn both_direct_stream_paths_answer_with_the_request_id() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    // A connection whose first request is a stream is answered straight from the socket.
    let events =
        format!("GET /api/v4/job/{id}/events HTTP/1.1\r\nHost: x\r\nx-request-id: sse-1\r\n\r\n");
    assert_eq!(raw_answer(&app, &events).await, (200, "sse-1".to_owned()));
    let missing = uuid::Uuid::new_v4();
    let unknown = format!("GET /api/v4/job/{missing}/events HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, new) = raw_answer(&app, &unknown).await;
    assert_eq!(status, 404);
    assert!(
        is_uuid(&new),
        "a 404 of the direct path carries a new id: {new}"
    );

    let mut upgrade = format!("ws://{}/api/v4/job/{id}/ws", app.addr)
        .into_client_request()
        .unwrap();
    upgrade
        .headers_mut()
        .insert("x-request-id", "ws-1".parse().unwrap());
    let (_socket, handshake) = tokio_tungstenite::connect_async(upgrade).await.unwrap();
    assert_eq!(handshake.headers()["x-request-id"], "ws-1");
    app.stop().await;
}

/// The JSON log lines of `server` that name request `id`, in their fields or their span.
fn lines_of_request(server: &ServerProcess, id: &str) -> Vec<Value> {
    server
        .logs()
        .into_iter()
        .filter(|line| line["fields"]["request_id"] == id || line["span"]["request_id"] == id)
        .collect()
}

#[tokio::test]
async fn the_log_lines_of_a_request_name_its_id() {
    let server = ServerProcess::start(&[
        ("REDIS_URL", "redis+unix:///nonexistent/none.sock"),
        ("RUST_LOG", "info,tower_http=debug,jobcast=debug"),
        ("ADMIN_TOKEN", "t"),
    ])
    .await;
    let client = reqwest::Client::new();
    let created = client
        .post(server.url("/api/v4/jobs"))
        .bearer_auth("t")
        .header("x-request-id", "create-1")
        .json(&json!({"kind": "external"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A new client: the stream is its connection's first request, served from the socket.
    let stream = reqwest::Client::new()
        .get(server.url(&format!("/api/v4/job/{id}/events")))
        .header("x-request-id", "stream-1")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    // The handler's own line and tower-http's, both in the request's span.
    eventually("the create request's lines", || async {
        let lines = lines_of_request(&server, "create-1");
        let handler = lines.iter().any(|line| {
            line["fields"]["message"] == "job created" && line["fields"]["job_id"] == id.as_str()
        });
        // At debug, the span names the method and path too.
        let finished = lines.iter().any(|line| {
            line["fields"]["message"] == "finished processing request"
                && line["span"]["method"] == "POST"
                && line["span"]["path"] == "/api/v4/jobs"
        });
        (handler && finished).then_some(())
    })
    .await;
    eventually("the stream's opening line", || async {
        let lines = lines_of_request(&server, "stream-1");
        lines
            .iter()
            .any(|line| line["fields"]["message"] == "event stream opened")
            .then_some(())
    })
    .await;
    drop(stream);
    server.terminate().await;
}
