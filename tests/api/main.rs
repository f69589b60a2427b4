//! jobcast's integration tests: the real server, real Redis processes, real HTTP clients.

mod atomicity;
mod auth;
mod bad_input;
mod browser;
mod chaos;
mod config;
mod dashboard;
mod fallback;
mod helpers;
mod leases;
mod long_poll;
mod memory_bound;
mod outages;
mod poll_cache;
mod processes;
mod proxies;
mod rate_limits;
mod redis_connection;
mod seed_api;
mod sessions;
mod sse;
mod stalls;
mod websocket;
mod workers;
