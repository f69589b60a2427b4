//! A small Server-Sent Events client over reqwest, parsing the stream as a browser would.

use super::PATIENCE;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::StatusCode;
use serde_json::Value;

/// One dispatched event.
#[derive(Clone, Debug, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }

    pub fn seq(&self) -> u64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .expect("numeric id")
    }

    pub fn kind(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// An open event stream.
pub struct SseStream {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseStream {
    /// `GET url` on a new connection, with `Last-Event-ID` when given.
    pub async fn connect(url: &str, last_event_id: Option<u64>) -> Self {
        Self::connect_with(&reqwest::Client::new(), url, last_event_id).await
    }

    /// `GET url` through `client`, which may reuse a kept-alive connection.
    pub async fn connect_with(
        client: &reqwest::Client,
        url: &str,
        last_event_id: Option<u64>,
    ) -> Self {
        let mut request = client.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.expect("request sent");
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event with data (comments, keep-alives and retry-only blocks are skipped);
    /// `None` at the end of the stream. Panics when nothing arrives within [`PATIENCE`].
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let block = self.next_block().await?;
            if !block.data.is_empty() {
                return Some(block);
            }
        }
    }

    /// The next block, including a retry-only one; `None` at the end of the stream.
    pub async fn next_block(&mut self) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("an SSE event in time")?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("body readable")));
        }
    }

    /// Every remaining event until the server ends the stream.
    pub async fn collect_until_end(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            events.push(event);
        }
        events
    }
}

/// Parses one block; `None` for a comment-only block (a keep-alive).
fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent::default();
    let mut data_lines = Vec::new();
    let mut any = false;
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line
            .split_once(':')
            .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        any = true;
        match field {
            "id" => event.id = Some(value.to_owned()),
            "event" => event.event = Some(value.to_owned()),
            "data" => data_lines.push(value.to_owned()),
            "retry" => event.retry = value.parse().ok(),
            _ => {}
        }
    }
    event.data = data_lines.join("\n");
    any.then_some(event)
}

/// Asserts that the `progress` of the events' jobs never goes down, in the order received.
pub fn assert_progress_never_decreases<'a>(
    events: impl IntoIterator<Item = &'a SseEvent>,
    what: &str,
) {
    let progress: Vec<u64> = events
        .into_iter()
        .map(|e| e.json()["progress"].as_u64().unwrap())
        .collect();
    assert!(
        progress.windows(2).all(|p| p[0] <= p[1]),
        "{what} went backwards: {progress:?}"
    );
}

/// Opens an SSE request for `path` on a raw socket with a tiny receive buffer, for a client that
/// stops reading: whatever the caller does not read stays in the socket.
pub async fn open_stalled_stream(addr: std::net::SocketAddr, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Reads `stalled` until its snapshot (`id: 1`) has arrived: the stream has started, so later
/// changes are the server's to hold back. What was read.
pub async fn read_until_snapshot(stalled: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("id: 1\n") {
        let read = tokio::time::timeout(super::PATIENCE, stalled.read_buf(&mut received)).await;
        assert!(
            read.unwrap().unwrap() > 0,
            "the stream ended before its snapshot"
        );
    }
    received
}
