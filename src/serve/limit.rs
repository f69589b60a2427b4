//! The cap on the connections an instance holds at once, and the answer to one over it.
//!
//! Every accepted connection takes a slot that lives as long as its socket (a direct stream, an
//! HTTP connection, a WebSocket it was upgraded to). Over the cap, a connection is answered a
//! 503 in one non-blocking write and closed at once, so the accept loop never waits on it.

use super::direct::{Body, response_head};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// File descriptors kept free of connections: Redis, its relay, the listener, io_uring, logs.
pub const RESERVED_FILE_DESCRIPTORS: u64 = 128;
/// At most one warning about refused connections per this interval.
pub const REFUSED_WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// What a refused connection is told.
const REFUSED_BODY: &str = r#"{"detail":"too many connections; retry shortly"}"#;

/// One connection's place under the cap, given back when dropped.
pub type ConnectionSlot = OwnedSemaphorePermit;

/// The slots, and the count of refusals since the last warning. Owned by the accept loop.
pub struct ConnectionLimit {
    slots: Arc<Semaphore>,
    /// The cap in force (the configured one, lowered to fit the open-files limit).
    cap: usize,
    refused: u64,
    last_warned: Option<Instant>,
}

impl ConnectionLimit {
    /// A cap of `configured` connections, lowered when the process may not open that many files.
    pub fn new(configured: u32) -> Self {
        let cap = fitting_file_limit(u64::from(configured));
        Self {
            slots: Arc::new(Semaphore::new(cap)),
            cap,
            refused: 0,
            last_warned: None,
        }
    }

    /// The cap in force.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// A slot for `stream`, or `None` after answering it 503 (the caller drops it, closing it).
    pub fn admit(&mut self, stream: &TcpStream) -> Option<ConnectionSlot> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Some(slot);
        }
        // A fresh socket's send buffer is empty: this write is whole or the client is gone. It is
        // made on the socket itself: tokio has not seen the new socket writable yet.
        let _ = socket2::SockRef::from(stream).send(&refusal());
        self.refused += 1;
        let now = Instant::now();
        if self
            .last_warned
            .is_none_or(|at| now.duration_since(at) >= REFUSED_WARNING_INTERVAL)
        {
            tracing::warn!(
                refused = self.refused,
                max_connections = self.cap,
                "connection limit reached; refusing connections"
            );
            self.refused = 0;
            self.last_warned = Some(now);
        }
        None
    }
}

/// The 503 a connection over the cap gets.
fn refusal() -> Vec<u8> {
    let mut headers = HeaderMap::new();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    let json = HeaderValue::from_static("application/json");
    headers.insert(header::CONTENT_TYPE, json);
    let mut response = response_head(
        StatusCode::SERVICE_UNAVAILABLE,
        &headers,
        Body::Length(REFUSED_BODY.len()),
    );
    response.extend_from_slice(REFUSED_BODY.as_bytes());
    response
}

/// `configured`, or fewer when the open-files limit leaves less room (with a warning).
fn fitting_file_limit(configured: u64) -> usize {
    let room = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) => soft.saturating_sub(RESERVED_FILE_DESCRIPTORS).max(1),
        Err(_) => configured,
    };
    if room < configured {
        tracing::warn!(
            max_connections = configured,
            lowered_to = room,
            "MAX_CONNECTIONS is above what the open-files limit allows; lowered"
        );
    }
    usize::try_from(configured.min(room)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_never_exceeds_the_open_files_limit() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert!(fitting_file_limit(u64::MAX) as u64 <= soft.max(RESERVED_FILE_DESCRIPTORS + 1));
        assert_eq!(fitting_file_limit(5), 5);
    }

    #[test]
    fn a_refusal_is_a_complete_503_with_retry_after() {
        let text = String::from_utf8(refusal()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("retry-after: 1\r\n"), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        assert!(text.ends_with(REFUSED_BODY), "{text}");
    }
}
