//! Accepting connections. A connection whose first request is for a job's events or its
//! WebSocket is served straight from the socket ([`direct`], [`websocket`]); every other connection
//! goes to the router over hyper's HTTP/1 ([`http`]), its first bytes replayed ([`rewind`]).
//!
//! Every connection has a deadline for each request head (`HEADER_READ_TIMEOUT_MS`, on both
//! paths) and for idling between requests (`KEEPALIVE_TIMEOUT_MS`, [`deadline`]), a cap on a
//! head's size (`MAX_HEADER_BYTES`), and a slot under `MAX_CONNECTIONS` ([`limit`]) for as long
//! as it is open.
//!
//! Streams are most of what this server holds open, and through hyper each one cost 24 KiB of
//! buffers and several layers of polling per delivery (see BENCHMARKS.md). A request the
//! sniffer does not take — a stream on a reused keep-alive connection included — is answered by
//! the axum route with the same semantics.

mod deadline;
mod direct;
mod http;
mod limit;
mod rewind;
pub mod sniff;
mod websocket;

use crate::state::AppState;
use axum::Router;
use bytes::BytesMut;
use deadline::HeadClock;
use http::Http;
use limit::{ConnectionLimit, ConnectionSlot};
use rewind::Rewound;
use sniff::Direct;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

/// How much of a connection's first bytes the sniffer reads (a request head for a stream is
/// far smaller; a larger head is handed to HTTP whole anyway, which caps it).
pub const SNIFF_BUFFER_BYTES: usize = 2 * 1024;
// The sniffer never holds more of a head than `MAX_HEADER_BYTES` allows.
const _: () = assert!(SNIFF_BUFFER_BYTES <= *crate::config::HEADER_BYTES_RANGE.start() as usize);
/// How long accepting pauses after an error such as running out of file descriptors.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The connections being served, for shutdown to wait on.
#[derive(Clone, Default)]
pub struct Connections {
    /// Direct streams (SSE, WebSocket); shutdown gives them a grace period to write their end.
    pub streams: TaskTracker,
    /// HTTP connections; at shutdown each closes once idle.
    pub http: TaskTracker,
}

/// Starts accepting on `listener` until shutdown, serving what is not a direct stream with
/// `router`.
pub fn spawn(listener: TcpListener, state: AppState, router: Router) -> Connections {
    let connections = Connections::default();
    let http = Http::new(router, &state.config);
    let limit = ConnectionLimit::new(state.config.max_connections);
    tracing::debug!(max_connections = limit.cap(), "connection limit");
    tokio::spawn(accept(listener, state, http, limit, connections.clone()));
    connections
}

async fn accept(
    listener: TcpListener,
    state: AppState,
    http: Http,
    mut limit: ConnectionLimit,
    connections: Connections,
) {
    loop {
        let accepted = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(slot) = limit.admit(&stream) else {
                    continue; // answered 503; dropping it closes it
                };
                let _ = stream.set_nodelay(true);
                drop_when_stalled(&stream, state.config.stalled_client_timeout());
                let (state, http) = (state.clone(), http.clone());
                tokio::spawn(route(stream, peer, slot, state, http, connections.clone()));
            }
            Err(error) if is_per_connection(&error) => {}
            Err(error) => {
                tracing::warn!(%error, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Reads the connection's first bytes (within `HEADER_READ_TIMEOUT_MS`), then serves it
/// directly or hands it to HTTP, holding its `slot` until it closes.
///
/// Only a direct stream is tracked (shutdown waits for it to write its end); a connection that
/// is still silent when shutdown begins is closed, as is a stream requested after that (its
/// client reconnects, to an instance that is not stopping).
async fn route(
    mut stream: TcpStream,
    peer: SocketAddr,
    slot: ConnectionSlot,
    state: AppState,
    http: Http,
    connections: Connections,
) {
    let accepted_at = tokio::time::Instant::now();
    let mut head = BytesMut::with_capacity(SNIFF_BUFFER_BYTES);
    let first_bytes = tokio::time::timeout_at(
        accepted_at + state.config.header_read_timeout(),
        stream.read_buf(&mut head),
    );
    tokio::select! {
        _ = state.shutdown.cancelled() => return,
        read = first_bytes => match read {
            Ok(Ok(read)) if read > 0 => {}
            _ => return, // closed, failed or silent
        },
    }
    match sniff::sniff(&head) {
        Some(_) if state.shutdown.is_cancelled() => {}
        Some(Direct::Events(request)) => {
            drop(head);
            let serving = direct::serve_events(stream, peer, request, state);
            connections.streams.track_future(serving).await;
        }
        Some(Direct::WebSocket(request)) => {
            drop(head);
            let serving = websocket::serve_websocket(stream, peer, request, state);
            connections.streams.track_future(serving).await;
        }
        None => {
            // The first head's deadline runs on from the accept, through the sniffer's read.
            let clock = HeadClock::new(accepted_at);
            let io = Rewound::new(head.freeze(), stream, slot, clock.clone());
            let serving = http.serve(io, clock, peer, &state.shutdown);
            connections.http.track_future(serving).await;
        }
    }
}

/// Has the kernel drop the connection when what was sent stays unacknowledged for `timeout`
/// (`TCP_USER_TIMEOUT`, which also bounds a zero receive window): a client that stopped reading,
/// or vanished, does not keep its socket and its stream's task forever.
fn drop_when_stalled(stream: &TcpStream, timeout: Option<Duration>) {
    #[cfg(target_os = "linux")]
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_user_timeout(timeout) {
        tracing::debug!(%error, "TCP_USER_TIMEOUT not set");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (stream, timeout);
}

/// Errors that concern one connection only (the peer gave up before it was accepted).
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
