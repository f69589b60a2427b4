//! One client cannot lock everyone out: a flood of creates or stream opens from one address is
//! refused with 429 and `Retry-After`, while another address keeps its own allowance.

use crate::helpers::*;
use jobcast::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A client whose connections come from `local` (any address in 127.0.0.0/8 is loopback).
fn client_from(local: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(local))
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// How many responses were accepted and how many were 429 (each with `Retry-After` and detail).
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    accepted: u32,
    limited: u32,
}

impl Tally {
    fn count(&mut self, status: u16, accepted: u16, retry_after: Option<u64>, body: &str) {
        if status == accepted {
            self.accepted += 1;
            return;
        }
        assert_eq!(status, 429, "{body}");
        let retry_after = retry_after.expect("a 429 says when to retry");
        assert!(
            (1..=60).contains(&retry_after),
            "Retry-After: {retry_after}"
        );
        let detail: Value = serde_json::from_str(body).expect("a JSON body");
        assert!(
            detail["detail"].as_str().unwrap().contains("Too many"),
            "{body}"
        );
        self.limited += 1;
    }
}

async fn create_research(client: &reqwest::Client, app: &TestApp, tally: &mut Tally) -> Value {
    let body = json!({"product_name": "Cola", "ingredients": ["water"]});
    let response = client.post(app.url("/api/v4/deep-research")).json(&body);
    let response = response.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after");
    let retry_after = retry_after.and_then(|v| v.to_str().ok()?.parse().ok());
    let text = response.text().await.unwrap();
    tally.count(status, 200, retry_after, &text);
    serde_json::from_str(&text).unwrap_or_default()
}

#[tokio::test]
async fn a_client_flooding_creates_gets_429s_while_another_client_still_gets_its_job() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    (config.create_rate_per_min, config.create_burst) = (1, 5);
    let app = spawn_app_with(config).await;
    let flooder = client_from([127, 0, 0, 1]);

    let mut flood = Tally::default();
    for _ in 0..20 {
        create_research(&flooder, &app, &mut flood).await;
    }
    let custom = flooder.post(app.url("/api/v4/jobs"));
    let custom = custom
        .json(&json!({"kind": "external"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        custom.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "both create routes count"
    );
    let mut other = Tally::default();
    let job = create_research(&client_from([127, 0, 0, 2]), &app, &mut other).await;

    println!(
        "create flood from 127.0.0.1: {} accepted, {} answered 429",
        flood.accepted, flood.limited
    );
    assert_eq!(
        flood,
        Tally {
            accepted: 5,
            limited: 15
        }
    );
    assert_eq!(
        other,
        Tally {
            accepted: 1,
            limited: 0
        }
    );
    let finished = app
        .wait_until_finished(job["job_id"].as_str().unwrap())
        .await;
    assert_eq!(finished["status"], "completed");
}

#[tokio::test]
async fn the_admin_bearer_token_is_not_counted_against_the_create_limit() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.admin_token = Some(Secret::parse("limit-token").unwrap());
    (config.create_rate_per_min, config.create_burst) = (1, 2);
    let app = spawn_app_with(config).await;

    for _ in 0..10 {
        let request = app
            .client
            .post(app.url("/api/v4/jobs"))
            .bearer_auth("limit-token");
        let response = request
            .json(&json!({"kind": "external"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let mut anonymous = Tally::default();
    for _ in 0..4 {
        create_research(&app.client, &app, &mut anonymous).await;
    }
    assert_eq!(
        anonymous,
        Tally {
            accepted: 2,
            limited: 2
        }
    );
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Sse,
    WebSocket,
}

async fn connect_from(local: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((IpAddr::from(local), 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// One response's status, head (lowercase) and body, the body only when it has a length.
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut bytes = Vec::new();
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the server closed before a whole head");
        bytes.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:")?.trim().parse().ok());
    let mut body = bytes[head_end..].to_vec();
    while let Some(length) = length.filter(|&l: &usize| body.len() < l) {
        let mut chunk = vec![0u8; length - body.len()];
        let read = stream.read(&mut chunk).await.unwrap();
        body.extend_from_slice(&chunk[..read]);
    }
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// Opens `kind` of stream on job `id` from `local`: as its connection's first request (the
/// direct socket path, which always answers `connection: close`), or after another request on
/// the connection (`reused`: axum answers, keeping the connection alive).
async fn open_stream(
    app: &TestApp,
    local: [u8; 4],
    id: &str,
    kind: Kind,
    reused: bool,
    tally: &mut Tally,
) {
    let mut stream = connect_from(local, app.addr).await;
    if reused {
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: jobcast\r\n\r\n")
            .await
            .unwrap();
        read_response(&mut stream).await;
    }
    let (path, extra, accepted) = match kind {
        Kind::Sse => ("events", "", 200),
        Kind::WebSocket => (
            "ws",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            101,
        ),
    };
    let request = format!("GET /api/v4/job/{id}/{path} HTTP/1.1\r\nHost: jobcast\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut stream).await;
    if status == 429 {
        assert_eq!(
            head.contains("connection: close"),
            !reused,
            "served by the path asked for: {head}"
        );
    }
    let retry_after = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after:")?.trim().parse().ok());
    tally.count(status, accepted, retry_after, &body);
}

#[tokio::test]
async fn a_client_flooding_stream_opens_gets_429s_on_both_paths_while_another_client_still_streams()
{
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    (config.stream_rate_per_min, config.stream_burst) = (1, 4);
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;

    let ways = [
        (Kind::Sse, false),
        (Kind::Sse, true),
        (Kind::WebSocket, false),
        (Kind::WebSocket, true),
    ];
    for (n, (kind, reused)) in ways.into_iter().enumerate() {
        let (flooder, other) = ([127, 0, 1, n as u8], [127, 0, 2, n as u8]);
        let mut flood = Tally::default();
        for _ in 0..10 {
            open_stream(&app, flooder, &id, kind, reused, &mut flood).await;
        }
        let mut bystander = Tally::default();
        open_stream(&app, other, &id, kind, reused, &mut bystander).await;
        let path = if reused {
            "axum, reused connection"
        } else {
            "direct, fresh connection"
        };
        println!(
            "{kind:?} flood ({path}): {} accepted, {} answered 429",
            flood.accepted, flood.limited
        );
        assert_eq!(
            flood,
            Tally {
                accepted: 4,
                limited: 6
            },
            "{kind:?} reused: {reused}"
        );
        assert_eq!(
            bystander,
            Tally {
                accepted: 1,
                limited: 0
            },
            "{kind:?} reused: {reused}"
        );
    }
}

#[tokio::test]
async fn long_polls_count_as_streams() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    (config.stream_rate_per_min, config.stream_burst) = (1, 3);
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    let poll = |client: reqwest::Client| {
        let url = app.url(&format!("/api/v4/job/{id}?wait_for_change=1&timeout=0"));
        async move { client.get(url).send().await.unwrap() }
    };

    let mut flood = Tally::default();
    for _ in 0..6 {
        let response = poll(client_from([127, 0, 3, 1])).await;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        flood.count(status, 200, retry_after, &response.text().await.unwrap());
    }
    let plain = client_from([127, 0, 3, 1])
        .get(app.url(&format!("/api/v4/job/{id}")))
        .send()
        .await
        .unwrap();

    println!(
        "long-poll flood: {} accepted, {} answered 429",
        flood.accepted, flood.limited
    );
    assert_eq!(
        flood,
        Tally {
            accepted: 3,
            limited: 3
        }
    );
    assert_eq!(
        plain.status(),
        StatusCode::OK,
        "a plain read is not a stream"
    );
    assert_eq!(
        poll(client_from([127, 0, 3, 2])).await.status(),
        StatusCode::OK
    );
}
