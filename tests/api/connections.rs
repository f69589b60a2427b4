//! One client cannot lock everyone out: deadlines on request heads and idle connections, a cap
//! on a head's size, and a cap on connections, driven over raw sockets.

use crate::helpers::{
    PATIENCE, ServerProcess, TestApp, TestRedis, open_stalled_stream, spawn_app_with, test_config,
};
use jobcast::Config;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server with short connection deadlines (300 ms), then `adjust`ed.
async fn spawn_with_deadlines(redis: &TestRedis, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(&redis.url());
    config.header_read_timeout_ms = 300;
    config.keepalive_timeout_ms = 300;
    adjust(&mut config);
    spawn_app_with(config).await
}

/// Reads until the server closes the connection (EOF or reset), returning what it sent; fails
/// the test when the server still holds it after [`PATIENCE`].
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let closing = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, closing)
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads one whole response with a `content-length` body, leaving the connection open.
async fn one_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .map_or(0, |length| length.trim().parse().expect("a length"));
            if body.len() >= length {
                return text;
            }
        }
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
            .await
            .expect("a response")
            .expect("readable");
        assert!(read > 0, "closed before the whole response: {text:?}");
        received.extend_from_slice(&buffer[..read]);
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connects")
}

fn health_request(addr: SocketAddr) -> String {
    format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n")
}

#[tokio::test]
async fn a_silent_connection_and_one_that_sends_one_byte_are_closed_after_the_header_timeout() {
    let redis = TestRedis::start().await;
    let app = spawn_with_deadlines(&redis, |_| {}).await;
    let mut silent = connect(app.addr).await;
    let mut one_byte = connect(app.addr).await;
    one_byte.write_all(b"G").await.unwrap();
    assert_eq!(until_closed(&mut silent).await, "");
    assert_eq!(until_closed(&mut one_byte).await, "");
    app.stop().await;
}

#[tokio::test]
async fn a_head_never_finished_is_closed_on_a_fresh_connection_and_as_a_second_request() {
    let redis = TestRedis::start().await;
    let app = spawn_with_deadlines(&redis, |c| c.keepalive_timeout_ms = 60_000).await;
    let unfinished = format!("GET /health HTTP/1.1\r\nHost: {}\r\nX-Pad: ", app.addr);
    let mut fresh = connect(app.addr).await;
    fresh.write_all(unfinished.as_bytes()).await.unwrap();

    let mut kept_alive = connect(app.addr).await;
    kept_alive
        .write_all(health_request(app.addr).as_bytes())
        .await
        .unwrap();
    assert!(
        one_response(&mut kept_alive)
            .await
            .starts_with("HTTP/1.1 200")
    );
    kept_alive.write_all(unfinished.as_bytes()).await.unwrap();

    // A client that keeps sending a byte now and then is not let off either.
    let mut dribbling = connect(app.addr).await;
    dribbling.write_all(unfinished.as_bytes()).await.unwrap();
    let dribble = async {
        while dribbling.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, dribble)
        .await
        .expect("the dribbling client is cut off");

    assert_eq!(until_closed(&mut fresh).await, "");
    assert_eq!(until_closed(&mut kept_alive).await, "");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let redis = TestRedis::start().await;
    let app = spawn_with_deadlines(&redis, |c| c.header_read_timeout_ms = 60_000).await;
    let mut idle = connect(app.addr).await;
    for _ in 0..2 {
        idle.write_all(health_request(app.addr).as_bytes())
            .await
            .unwrap();
        assert!(one_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    }
    assert_eq!(until_closed(&mut idle).await, "");
    app.stop().await;
}

/// Sends a head with a 100 KiB header for `path` and returns what the server answered.
async fn answer_to_a_huge_head(addr: SocketAddr, path: &str) -> String {
    let mut stream = connect(addr).await;
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let (mut reader, mut writer) = stream.split();
    let writing = async {
        let _ = writer.write_all(head.as_bytes()).await; // cut short by the server
    };
    let mut answer = Vec::new();
    let reading = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut answer));
    let (_, read) = tokio::join!(writing, reading);
    let read = read.expect("the server answers and closes");
    assert!(read.is_ok() || !answer.is_empty(), "{read:?}");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_100_kib_request_head_gets_431_on_both_paths() {
    let redis = TestRedis::start().await;
    let app = spawn_with_deadlines(&redis, |_| {}).await;
    let id = app.create_external_job().await;
    for path in ["/health".to_owned(), format!("/api/v4/job/{id}/events")] {
        let answer = answer_to_a_huge_head(app.addr, &path).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
            "{path}: {answer:?}"
        );
    }
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn over_max_connections_a_client_is_refused_at_once_and_served_once_others_leave() {
    let redis = TestRedis::start().await;
    let app = spawn_with_deadlines(&redis, |config| {
        config.max_connections = 50;
        config.header_read_timeout_ms = 60_000;
    })
    .await;
    let events = format!("/api/v4/job/{}/events", app.create_external_job().await);
    // Half of the slots go to direct event streams, half to silent connections.
    let mut held = Vec::new();
    for _ in 0..25 {
        let mut stream = open_stalled_stream(app.addr, &events).await;
        let mut opening = [0u8; 64];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut opening)).await;
        assert!(matches!(read, Ok(Ok(n)) if n > 0), "the stream is open");
        held.push(stream);
    }
    for _ in 0..25 {
        held.push(connect(app.addr).await);
    }
    // Accepted in order: the 51st finds every slot taken, and silent clients never time out here.
    let mut refused = connect(app.addr).await;
    let answer = until_closed(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer:?}");
    assert!(answer.contains(r#"{"detail":"#), "{answer:?}");

    drop(held);
    crate::helpers::eventually("a request succeeds once slots are free", || async {
        let mut stream = connect(app.addr).await;
        stream
            .write_all(health_request(app.addr).as_bytes())
            .await
            .ok()?;
        let answer = until_closed_or_response(&mut stream).await;
        answer.starts_with("HTTP/1.1 200").then_some(())
    })
    .await;
    app.stop().await;
}

/// The first response on `stream`, or what it got before being closed.
async fn until_closed_or_response(stream: &mut TcpStream) -> String {
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await;
    match read {
        Ok(Ok(read)) => String::from_utf8_lossy(&buffer[..read]).into_owned(),
        _ => String::new(),
    }
}

/// The server's open file descriptors (its sockets, mostly).
fn open_files(server: &ServerProcess) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_silent_connections_and_three_hundred_huge_unfinished_heads_lock_nobody_out() {
    const SILENT: usize = 600;
    const HEADS: usize = 300;
    const HEAD_BYTES: usize = 390 * 1024;
    let redis = TestRedis::start().await;
    let server = ServerProcess::start(&[
        ("REDIS_URL", &redis.url()),
        ("WORKER_CONCURRENCY", "0"),
        ("HEADER_READ_TIMEOUT_MS", "3000"),
    ])
    .await;
    let (rss_before, files_before) = (server.rss_kib(), open_files(&server));

    let mut held = Vec::with_capacity(SILENT + HEADS);
    for _ in 0..SILENT {
        held.push(connect(server.addr).await);
    }
    let unfinished = format!(
        "POST /api/v4/jobs HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
        "a".repeat(HEAD_BYTES)
    );
    let mut writers = Vec::with_capacity(HEADS);
    for _ in 0..HEADS {
        let mut stream = connect(server.addr).await;
        let head = unfinished.clone();
        writers.push(tokio::spawn(async move {
            let _ = stream.write_all(head.as_bytes()).await; // the server stops reading at the cap
            stream
        }));
    }
    for writer in writers {
        held.push(writer.await.unwrap());
    }
    let files_during = open_files(&server);
    let rss_during = server.rss_kib();
    println!(
        "held {} attacking connections: server files {files_before} -> {files_during}, \
         RSS {rss_before} KiB -> {rss_during} KiB",
        held.len()
    );
    // 300 heads of 390 KB held whole would be 116 MB; capped at MAX_HEADER_BYTES it is ~10 MB.
    let growth_kib = rss_during.saturating_sub(rss_before);
    assert!(
        growth_kib < 32 * 1024,
        "server RSS grew by {growth_kib} KiB"
    );
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let health = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "a normal client is answered");

    let (mut closed, mut answered_431) = (0, 0);
    for stream in &mut held {
        let answer = until_closed(stream).await;
        closed += 1;
        answered_431 += usize::from(answer.starts_with("HTTP/1.1 431"));
    }
    let files_after = open_files(&server);
    println!(
        "all {closed} closed by the server ({answered_431} heads answered 431); then server \
         files {files_after}, RSS {} KiB",
        server.rss_kib()
    );
    assert!(
        files_after < files_before + 50,
        "{files_after} files still open"
    );
}
