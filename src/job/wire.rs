//! The bytes of the two stream protocols that both the axum routes and the direct socket path
//! send: SSE's retry hint and keep-alive, the event-stream headers, HTTP/1.1 chunks, WebSocket
//! frames on the wire, and the limits of what a WebSocket client may send.

use bytes::{Bytes, BytesMut};
use tungstenite::protocol::frame::Frame as WireFrame;

/// The reconnect delay suggested to clients, before jitter, in milliseconds.
pub const SSE_RETRY_BASE_MS: u64 = 1_000;
/// Up to this much random delay is added per stream, so a restart's reconnects are spread out.
pub const SSE_RETRY_JITTER_MS: u64 = 2_000;

/// The comment sent on a stream that has been quiet for `SSE_KEEPALIVE_SECS`.
pub const KEEP_ALIVE_COMMENT: &[u8] = b":\n\n";

/// The response headers of every event stream, whichever way it is served.
pub const EVENT_STREAM_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
];

/// The largest frame a client may send (it has nothing to say; this bounds what it can make us read).
pub const WS_MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// The reason of the close frame sent to a WebSocket peer that did not answer a ping in time.
pub const NO_PONG: &str = "no pong";

/// The `retry:` field every stream starts with: the reconnect delay, jittered per stream.
pub fn retry_hint() -> Bytes {
    let retry = SSE_RETRY_BASE_MS + fastrand::u64(0..=SSE_RETRY_JITTER_MS);
    Bytes::from(format!("retry: {retry}\n\n"))
}

/// A WebSocket frame as the server sends it (unmasked).
pub fn on_the_wire(frame: WireFrame) -> Vec<u8> {
    let mut wire = Vec::with_capacity(frame.len());
    frame
        .format(&mut wire)
        .expect("writing to a Vec cannot fail");
    wire
}

/// `data` as one HTTP/1.1 chunk: its size in hex, CRLF, the data, CRLF.
pub fn http_chunk(data: &[u8]) -> Bytes {
    let mut chunk = BytesMut::with_capacity(data.len() + 12);
    chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(b"\r\n");
    chunk.freeze()
}
