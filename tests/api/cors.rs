//! Cross-origin dashboards: `CORS_ALLOWED_ORIGINS` on REST, both SSE paths, the long-poll and
//! both WebSocket paths.

use crate::helpers::*;
use jobcast::cors::CorsOrigins;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ALLOWED: &str = "http://dash.example:8081";
const FOREIGN: &str = "http://evil.example";

async fn spawn_app_allowing(redis: &TestRedis, origins: &str) -> TestApp {
    let mut config = test_config(&redis.url());
    config.cors_allowed_origins = CorsOrigins::parse(origins).unwrap();
    spawn_app_with(config).await
}

/// Reads one response head (through the blank line), lowercased.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "the head ended early"
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

/// `GET /health` on `stream`, its answer read whole: the connection is now a reused one, which
/// the direct path never takes.
async fn reuse_for_health(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(stream).await;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .expect("a length")
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
}

/// The head of the answer to a job's event stream requested from `origin`.
async fn events_head(app: &TestApp, id: &str, origin: &str, reused: bool) -> String {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    if reused {
        reuse_for_health(&mut stream).await;
    }
    let request = format!(
        "GET /api/v4/job/{id}/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nOrigin: {origin}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_head(&mut stream).await
}

fn allows(head: &str, origin: &str) -> bool {
    head.contains(&format!("access-control-allow-origin: {origin}\r\n"))
        && head.contains("access-control-allow-credentials: true\r\n")
}

fn any_cors(head: &str) -> bool {
    head.contains("access-control-allow-origin")
}

async fn head_of(response: reqwest::Response) -> String {
    let mut head = format!("{}\r\n", response.status());
    for (name, value) in response.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_preflights_and_requests_are_answered_for_an_allowed_origin_only() {
    let redis = TestRedis::start().await;
    let app = spawn_app_allowing(&redis, ALLOWED).await;
    let id = app.create_external_job().await;
    for (origin, allowed) in [(ALLOWED, true), (FOREIGN, false)] {
        let preflight = app
            .client
            .request(
                reqwest::Method::OPTIONS,
                app.url(&format!("/api/v4/job/{id}/progress")),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        let head = head_of(preflight).await;
        assert_eq!(allows(&head, origin), allowed, "{head}");
        assert_eq!(any_cors(&head), allowed, "{head}");
        if allowed {
            assert!(head.contains("access-control-allow-methods:"), "{head}");
        }
        for path in [
            format!("/api/v4/job/{id}"),
            format!("/api/v4/job/{id}?wait_for_change=0&timeout=0.1"),
        ] {
            let get = app.client.get(app.url(&path)).header("origin", origin);
            let head = head_of(get.send().await.unwrap()).await;
            assert!(head.starts_with("200"), "{head}");
            assert_eq!(allows(&head, origin), allowed, "{path}: {head}");
            assert_eq!(any_cors(&head), allowed, "{path}: {head}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_event_stream_paths_answer_an_allowed_origin_with_its_headers_and_a_foreign_one_without()
 {
    let redis = TestRedis::start().await;
    let app = spawn_app_allowing(&redis, ALLOWED).await;
    let id = app.create_external_job().await;
    for reused in [false, true] {
        let head = events_head(&app, &id, ALLOWED, reused).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(allows(&head, ALLOWED), "reused {reused}: {head}");
        let head = events_head(&app, &id, FOREIGN, reused).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!any_cors(&head), "reused {reused}: {head}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_no_cors_header_is_sent_anywhere() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    for reused in [false, true] {
        assert!(!any_cors(&events_head(&app, &id, ALLOWED, reused).await));
    }
    let get = app.client.get(app.url(&format!("/api/v4/job/{id}")));
    assert!(!any_cors(
        &head_of(get.header("origin", ALLOWED).send().await.unwrap()).await
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_star_lets_any_origin_read_without_credentials() {
    let redis = TestRedis::start().await;
    let app = spawn_app_allowing(&redis, "*").await;
    let id = app.create_external_job().await;
    for reused in [false, true] {
        let head = events_head(&app, &id, FOREIGN, reused).await;
        assert!(
            head.contains("access-control-allow-origin: *\r\n"),
            "{head}"
        );
        assert!(!head.contains("access-control-allow-credentials"), "{head}");
    }
}

/// The status of a WebSocket upgrade from `origin` (`None`: no `Origin` header), on a fresh
/// connection (the direct path) or a reused one (axum).
async fn upgrade_status(app: &TestApp, id: &str, origin: Option<&str>, reused: bool) -> u16 {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    if reused {
        reuse_for_health(&mut stream).await;
    }
    let url = format!("ws://{}/api/v4/job/{id}/ws", app.addr);
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let body = String::from_utf8_lossy(body);
            if response.status() == 403 {
                assert!(body.contains("\"detail\""), "{body}");
            }
            response.status().as_u16()
        }
        Err(error) => panic!("{error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_from_a_foreign_origin_are_refused_on_both_paths() {
    let redis = TestRedis::start().await;
    let app = spawn_app_allowing(&redis, ALLOWED).await;
    let id = app.create_external_job().await;
    let own = format!("http://{}", app.addr);
    for reused in [false, true] {
        let status = |origin| upgrade_status(&app, &id, origin, reused);
        assert_eq!(status(Some(FOREIGN)).await, 403, "reused {reused}");
        assert_eq!(status(Some(ALLOWED)).await, 101, "reused {reused}");
        assert_eq!(status(Some(&own)).await, 101, "reused {reused}");
        assert_eq!(status(None).await, 101, "reused {reused}");
    }
}

/// A dashboard on another origin: watches `?job=` on the server at `?api=` over SSE (with
/// credentials), WebSocket and a fetch, writing what each got into the page.
const DASHBOARD: &str = r#"<!doctype html>
<html><body>
<p>sse: <span id="sse">waiting</span></p>
<p>ws: <span id="ws">waiting</span></p>
<p>poll: <span id="poll">waiting</span></p>
<script>
const params = new URLSearchParams(location.search);
const api = params.get("api"), job = params.get("job");
const show = (id, text) => { document.getElementById(id).textContent = text; };
const events = new EventSource(`${api}/api/v4/job/${job}/events`, {withCredentials: true});
events.addEventListener("snapshot", (e) => show("sse", "snapshot " + JSON.parse(e.data).status));
events.onerror = () => { if (events.readyState === EventSource.CLOSED) show("sse", "failed"); };
const socket = new WebSocket(`${api.replace("http", "ws")}/api/v4/job/${job}/ws`);
socket.onmessage = (e) => show("ws", "message " + JSON.parse(e.data).event);
socket.onerror = () => show("ws", "failed");
fetch(`${api}/api/v4/job/${job}`)
  .then((r) => r.json())
  .then((j) => show("poll", "status " + j.status))
  .catch((e) => show("poll", "failed " + e.name));
</script>
</body></html>"#;

/// Serves [`DASHBOARD`] on a port of its own (another origin); its address.
async fn serve_dashboard() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    #[allow(clippy::disallowed_methods)] // the test's own route, not one the application serves
    let page = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::response::Html(DASHBOARD) }),
    );
    tokio::spawn(async move { axum::serve(listener, page).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_an_allowed_origin_watches_a_job_and_one_on_another_origin_cannot() {
    let redis = TestRedis::start().await;
    let dashboard = serve_dashboard().await;
    let allowing = spawn_app_allowing(&redis, &format!("http://{dashboard}")).await;
    let refusing = spawn_app_allowing(&redis, ALLOWED).await;
    let browser = Browser::start().await;
    for (app, allowed) in [(&allowing, true), (&refusing, false)] {
        let id = app.create_external_job().await;
        let api = format!("http://{}", app.addr);
        browser
            .goto(&format!("http://{dashboard}/?api={api}&job={id}"))
            .await;
        if allowed {
            browser.wait_for_text("#sse", "snapshot pending").await;
            browser.wait_for_text("#ws", "message snapshot").await;
            browser.wait_for_text("#poll", "status pending").await;
        } else {
            browser.wait_for_text("#sse", "failed").await;
            browser.wait_for_text("#ws", "failed").await;
            browser.wait_for_text("#poll", "failed TypeError").await;
        }
    }
}

#[test]
fn an_origin_that_is_not_one_stops_startup_naming_the_variable() {
    for value in [
        "dash.example",
        "https://dash.example/app",
        "*,https://dash.example",
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_jobcast"))
            .env("CORS_ALLOWED_ORIGINS", value)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("binary runs");
        assert!(!output.status.success(), "{value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("CORS_ALLOWED_ORIGINS"), "{value}: {stderr}");
    }
}
