//! A minimal HTTP/1.1 keep-alive client and stream readers: cheap enough that the load generator
//! stays on one core and does not allocate per request or per event.

use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

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
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n",
        crate::ADMIN_TOKEN
    );
    if let Some(body) = body {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        text.push_str("\r\n");
    }
    text.into_bytes()
}

/// Opens an SSE stream with a small receive buffer (many of these are open at once).
pub async fn open_stream(addr: SocketAddr, path: &str) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(16 * 1024)?;
    let mut stream = socket.connect(addr).await?;
    stream.write_all(&request("GET", path, None)).await?;
    Ok(stream)
}

/// Reads an SSE stream, calling `on_id` with each event's `id:` and the time it arrived, until
/// `until` returns true or the stream ends.
pub async fn read_event_ids(mut stream: TcpStream, mut on_id: impl FnMut(u64, Instant) -> bool) {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut carried = 0;
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
                if let Some(id) = line.strip_prefix(b"id: ") {
                    let id = std::str::from_utf8(id)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                    if let Some(id) = id
                        && on_id(id, now)
                    {
                        return;
                    }
                }
                line_start = i + 1;
            }
        }
        buffer.copy_within(line_start..filled, 0);
        carried = filled - line_start;
        if carried == buffer.len() {
            carried = 0; // a line longer than the buffer carries no id we need
        }
    }
}
