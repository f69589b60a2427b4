//! A minimal HTTP/1.1 keep-alive client and stream readers: cheap enough that the load generator
//! stays on one core and does not allocate per request or per event.

use futures::StreamExt;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Where the last response's body starts in `buffer`.
    body_start: usize,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
            body_start: 0,
        })
    }

    /// Sends a prepared request and reads the whole response; returns its status code.
    pub async fn exchange(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).unwrap_or("");
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length = content_length(head);
        while self.buffer.len() < head_end + length {
            self.fill().await?;
        }
        self.body_start = head_end;
        Ok(status)
    }

    /// The body of the last response.
    pub fn body(&self) -> &[u8] {
        &self.buffer[self.body_start..]
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let start = self.buffer.len();
        self.buffer.resize(start + 16 * 1024, 0);
        let read = self.stream.read(&mut self.buffer[start..]).await?;
        self.buffer.truncate(start + read);
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// The `Content-Length` of a request or response head; 0 when it has none.
pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|value| value.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A request as bytes, built once and sent many times.
pub fn request(method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    write_request(
        &mut out,
        method,
        format_args!("{path}"),
        body.map(str::as_bytes),
    );
    out
}

/// Writes a request into `out` (cleared first), so a loop can reuse one buffer for all of them.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    path: std::fmt::Arguments,
    body: Option<&[u8]>,
) {
    out.clear();
    let token = crate::ADMIN_TOKEN;
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
    );
    match body {
        Some(body) => {
            let length = body.len();
            let _ = write!(
                out,
                "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
            );
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(b"\r\n"),
    }
}

/// Opens an SSE stream with a small receive buffer (many of these are open at once).
pub async fn open_stream(addr: SocketAddr, path: &str) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(16 * 1024)?;
    let mut stream = socket.connect(addr).await?;
    // Accept is what an EventSource sends: Nchan's event-source subscriber refuses requests without it.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        crate::ADMIN_TOKEN
    );
    stream.write_all(request.as_bytes()).await?;
    Ok(stream)
}

/// A WebSocket client on `path`.
pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket with a small read buffer: tungstenite zero-fills its read buffer before
/// each read, and its 128 KiB default would make the generator, not the server, the bottleneck.
pub async fn open_websocket(addr: SocketAddr, path: &str) -> WebSocket {
    let url = format!("ws://{addr}{path}");
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .unwrap();
    socket
}

/// Reads an SSE stream, calling `on_seq` with each event's seq and the time it arrived, until
/// `on_seq` returns true or the stream ends. The seq is the event's `id:` when that is a number
/// (jobcast, the floors), else the `"seq":` field of its data (Nchan, whose ids are its own).
pub async fn read_event_seqs(mut stream: TcpStream, mut on_seq: impl FnMut(u64, Instant) -> bool) {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut carried = 0;
    let mut seq = None;
    loop {
        let read = match stream.read(&mut buffer[carried..]).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let now = Instant::now();
        let filled = carried + read;
        let mut line_start = 0;
        for i in 0..filled {
            if buffer[i] == b'\n' {
                let line = &buffer[line_start..i];
                if line.is_empty() {
                    if let Some(seq) = seq.take()
                        && on_seq(seq, now)
                    {
                        return;
                    }
                } else if let Some(id) = line.strip_prefix(b"id: ") {
                    seq = std::str::from_utf8(id)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                } else if seq.is_none()
                    && let Some(data) = line.strip_prefix(b"data: ")
                {
                    seq = seq_field(data);
                }
                line_start = i + 1;
            }
        }
        buffer.copy_within(line_start..filled, 0);
        carried = filled - line_start;
        if carried == buffer.len() {
            carried = 0; // a line longer than the buffer carries no seq we need
        }
    }
}

/// Reads a WebSocket's text frames, calling `on_seq` with each frame's `"seq":` and the time it
/// arrived, until `on_seq` returns true or the socket closes.
pub async fn read_ws_seqs(mut socket: WebSocket, mut on_seq: impl FnMut(u64, Instant) -> bool) {
    while let Some(Ok(message)) = socket.next().await {
        let now = Instant::now();
        if let Message::Text(text) = message
            && let Some(seq) = seq_field(text.as_bytes())
            && on_seq(seq, now)
        {
            return;
        }
    }
}

/// The number after the first `"seq":` in `json`.
pub fn seq_field(json: &[u8]) -> Option<u64> {
    let at = find(json, b"\"seq\":")? + 6;
    let digits = json[at..].trim_ascii_start();
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}
