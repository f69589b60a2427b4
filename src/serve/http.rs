//! Serving a handed-off connection with hyper's HTTP/1 and the router, as `axum::serve` would,
//! plus what it does not expose: a deadline on every request head, a cap on its size.
//!
//! The router sees the client's address as `ConnectInfo<SocketAddr>`; upgrades (WebSockets)
//! are kept; at shutdown an idle connection closes and a busy one after its response.

use super::deadline::{HeadClock, HeadTimer};
use super::rewind::Rewound;
use crate::config::Config;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

/// The router and the HTTP/1 settings every connection is served with.
#[derive(Clone)]
pub struct Http {
    router: Router,
    builder: http1::Builder,
    header_read: Duration,
    keep_alive: Duration,
}

impl Http {
    /// `router` behind HTTP/1 with `HEADER_READ_TIMEOUT_MS`, `KEEPALIVE_TIMEOUT_MS` and
    /// `MAX_HEADER_BYTES` applied.
    pub fn new(router: Router, config: &Config) -> Self {
        let max_head = usize::try_from(config.max_header_bytes).unwrap_or(usize::MAX);
        let mut builder = http1::Builder::new();
        builder
            // hyper starts this clock whenever it begins to wait for a head, on the first
            // request and each time a kept-alive connection goes idle; the connection's
            // `HeadTimer` sets when it ends (the value here only switches it on).
            .header_read_timeout(config.keepalive_timeout())
            .max_header_size(max_head)
            // The read buffer is where a head accumulates: never more than the cap.
            .max_buf_size(max_head);
        Self {
            router,
            builder,
            header_read: config.header_read_timeout(),
            keep_alive: config.keepalive_timeout(),
        }
    }

    /// hyper's timer for the connection whose reads tell `clock`.
    fn timer(&self, clock: Arc<HeadClock>) -> HeadTimer {
        HeadTimer::new(clock, self.header_read, self.keep_alive)
    }

    /// Serves `io` until the client closes it, a deadline passes, or shutdown closes it.
    pub async fn serve(
        &self,
        io: Rewound,
        clock: Arc<HeadClock>,
        peer: SocketAddr,
        shutdown: &CancellationToken,
    ) {
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request)
        });
        let mut builder = self.builder.clone();
        builder.timer(self.timer(clock));
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut connection = pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, %peer, "connection ended");
        }
    }
}
