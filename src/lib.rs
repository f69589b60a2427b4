//! jobcast: a real-time job-progress server.
//!
//! Jobs live in Redis under `job:<uuid>` with a TTL (or in an embedded memory store when Redis
//! does not answer); every change is one atomic server-side step that also publishes the job's
//! new state. Built-in workers claim queued jobs, so any number of instances can share one Redis.
//!
//! # Layout
//! - [`config`], [`telemetry`], [`startup`], [`shutdown`]: the process around the server.
//! - [`routes`] with [`extract`], [`auth`] and [`error`]: the HTTP surface.
//! - [`job`]: the job record and its state machine.
//! - [`store`]: the `JobStore` trait and its Redis and memory backends.
//! - [`hub`]: local fan-out of job changes to this instance's subscribers, fed by [`pubsub`]
//!   from Redis; [`watch`]: the race-free start and frame sequence every stream uses.
//! - [`cache`]: polled jobs served from memory, kept exact by the pub/sub stream.
//! - [`worker`] and [`research`]: running the built-in deep-research job.

pub mod auth;
pub mod cache;
pub mod client_addr;
pub mod config;
pub mod error;
pub mod extract;
pub mod hub;
pub mod job;
pub mod pubsub;
pub mod rate_limit;
pub mod research;
pub mod routes;
pub mod serve;
pub mod shutdown;
pub mod sink;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod watch;
pub mod worker;

pub use config::Config;
pub use startup::App;
