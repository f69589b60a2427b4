//! Accepting connections. A connection whose first request is for a job's events or its
//! WebSocket is served straight from the socket ([`direct`], [`socket`]); every other connection
//! goes to axum, its first bytes replayed ([`rewind`]).
//!
//! Streams are most of what this server holds open, and through hyper each one cost 24 KiB of
//! buffers and several layers of polling per delivery (see BENCHMARKS.md). A request the
//! sniffer does not take — a stream on a reused keep-alive connection included — is answered by
//! the axum route with the same semantics.

mod direct;
mod rewind;
pub mod sniff;
mod socket;

use crate::state::AppState;
use bytes::BytesMut;
use rewind::Rewound;
use sniff::Direct;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// How much of a connection's first bytes the sniffer reads (a request head for a stream is
/// far smaller; a larger head is handed to axum whole anyway).
pub const SNIFF_BUFFER_BYTES: usize = 2 * 1024;
/// How long a new connection may stay silent before it is closed.
pub const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections sniffed and waiting for axum to take them.
pub const HANDOFF_QUEUE: usize = 1024;
/// How long accepting pauses after an error such as running out of file descriptors.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The listener axum serves: the connections that are not direct event streams.
pub struct Listener {
    connections: mpsc::Receiver<(Rewound, SocketAddr)>,
    local_addr: SocketAddr,
}

impl Listener {
    /// Starts accepting on `listener` until shutdown. Direct streams are tracked by `streams`,
    /// so the caller can wait for them to finish.
    pub fn spawn(listener: TcpListener, state: AppState, streams: TaskTracker) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (handoff, connections) = mpsc::channel(HANDOFF_QUEUE);
        tokio::spawn(accept(listener, state, handoff, streams));
        Ok(Self {
            connections,
            local_addr,
        })
    }
}

impl axum::serve::Listener for Listener {
    type Io = Rewound;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // Accepting stopped at shutdown; axum stops asking then too.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept(
    listener: TcpListener,
    state: AppState,
    handoff: mpsc::Sender<(Rewound, SocketAddr)>,
    streams: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                drop_when_stalled(&stream, state.config.stalled_client_timeout());
                let (state, handoff) = (state.clone(), handoff.clone());
                tokio::spawn(route(stream, peer, state, handoff, streams.clone()));
            }
            Err(error) if is_per_connection(&error) => {}
            Err(error) => {
                tracing::warn!(%error, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Reads the connection's first bytes, then serves it directly or hands it to axum.
///
/// Only a direct stream is tracked (shutdown waits for it to write its end); a connection that
/// is still silent when shutdown begins is closed, as is a stream requested after that (its
/// client reconnects, to an instance that is not stopping).
async fn route(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: AppState,
    handoff: mpsc::Sender<(Rewound, SocketAddr)>,
    streams: TaskTracker,
) {
    let mut head = BytesMut::with_capacity(SNIFF_BUFFER_BYTES);
    let first_bytes = tokio::time::timeout(FIRST_BYTES_TIMEOUT, stream.read_buf(&mut head));
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
            streams.track_future(serving).await;
        }
        Some(Direct::Socket(request)) => {
            drop(head);
            let serving = socket::serve_socket(stream, peer, request, state);
            streams.track_future(serving).await;
        }
        None => {
            let _ = handoff
                .send((Rewound::new(head.freeze(), stream), peer))
                .await;
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
