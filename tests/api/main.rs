//! jobcast's integration tests: the real server, real Redis processes, real HTTP clients.

mod atomicity;
mod auth;
mod bad_input;
mod batch;
mod browser;
mod cancel;
mod chaos;
mod config;
mod connections;
mod cors;
mod dashboard;
mod fallback;
mod helpers;
mod history;
mod idempotency;
mod leases;
mod long_poll;
mod memory_bound;
mod metrics;
mod openapi;
mod outages;
mod poll_cache;
mod priority;
mod processes;
mod proxies;
mod queue_cap;
mod rate_limits;
mod reconcile;
mod redis_connection;
mod request_id;
mod search;
mod seed_api;
mod sessions;
mod sse;
mod stalls;
mod stats;
mod stored_data;
mod webhooks;
mod websocket;
mod workers;

/// The TLS provider the server installs at startup, installed before any test runs: reqwest
/// (the tests' HTTP client, and the server's webhook client) is built without one of its own.
#[ctor::ctor(unsafe)]
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
