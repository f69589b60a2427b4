//! jobcast: a real-time job-progress server.
//!
//! Jobs live in Redis under `job:<uuid>` with a TTL (or in an embedded memory store when Redis
//! does not answer); every change is one atomic server-side step that also publishes the job's
//! new state. Built-in workers claim queued jobs, so any number of instances can share one Redis.
//!
//! # Layout, bottom to top (each module uses only the ones above it in this list)
//! - [`job`]: the job record, its state machine, and the vocabulary of a change — the event,
//!   its frames per encoding, and the SSE and WebSocket bytes ([`job::event`], [`job::wire`]).
//! - [`stats`]: the analytics' vocabulary: per-hour counters, histogram buckets, percentiles and
//!   the report of a window (pure; the stores keep the counters).
//! - [`research`]: the built-in deep-research job: its input, steps and report.
//! - [`client_addr`]: who the client is behind trusted proxies; [`rate_limit`]: per-client limits.
//! - [`request_id`]: the `x-request-id` of every response and the span of its log lines.
//! - [`cors`]: which browser origins may read the answers (`CORS_ALLOWED_ORIGINS`).
//! - [`config`]: every setting and its value enums; [`telemetry`]: structured logs.
//! - [`control_token`]: what a job's creator presents to cancel it; [`idempotency`]: the
//!   `Idempotency-Key` that makes a create safe to retry.
//! - [`metrics`]: the figures operators watch (`GET /metrics`), one registry per application.
//! - [`store`]: the `JobStore` and `WorkQueue` traits, their Redis and memory backends, failover.
//! - [`sink`]: a direct stream's socket, written by the publisher of a change (io_uring or send).
//! - [`hub`]: local fan-out of each change to this instance's subscribers and sinks.
//! - [`pubsub`]: the Redis relay feeding the hub with the changes of the jobs watched here.
//! - [`cache`]: polled jobs served from memory, kept exact by their subscriptions.
//! - [`follow`]: the race-free start (subscribe, wait for the relay, read) and frame sequence
//!   every stream, long-poll and cache entry uses.
//! - [`error`]: `ApiError`, every failure mapped once to a status and `{"detail"}`.
//! - [`state`]: `AppState`, the cheap handles to all of the above.
//! - [`extract`], [`auth`]: request extractors and who may call what.
//! - [`routes`]: the HTTP surface (axum); [`serve`]: accepting connections, and serving the
//!   streams whose first request asks for one straight on the socket, without axum.
//! - [`worker`]: the queue's consumers, which run the built-in deep-research job.
//! - [`startup`], [`shutdown`]: building the application and running it until told to stop.
//!
//! Most streams never reach axum: `serve` sniffs a connection's first request and answers a
//! job's events or WebSocket itself. One update travels strictly downward: `POST
//! /api/v4/job/{id}/progress` (`routes::jobs`) applies the change in the store, whose Lua script
//! publishes the new job JSON on the job's Redis channel; `pubsub` hands it to `hub::publish`,
//! which sends it to the job's subscribers (axum streams, followed through `follow`) and writes
//! its frame (`job::event`, built once per encoding) to every idle direct stream's socket
//! through `sink` — with the memory store, the store hands the job to the hub itself
//! (`store::Publisher`).

pub mod auth;
pub mod cache;
pub mod client_addr;
pub mod config;
pub mod control_token;
pub mod cors;
pub mod error;
pub mod extract;
pub mod follow;
pub mod hub;
pub mod idempotency;
pub mod job;
pub mod metrics;
pub mod pubsub;
pub mod rate_limit;
pub mod request_id;
pub mod research;
pub mod routes;
pub mod search;
pub mod serve;
pub mod shutdown;
pub mod sink;
pub mod startup;
pub mod state;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod webhook;
pub mod worker;

pub use config::Config;
pub use startup::App;
