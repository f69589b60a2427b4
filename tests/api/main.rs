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
mod outages;
mod poll_cache;
mod processes;
mod queue_cap;
mod reconcile;
mod redis_connection;
mod seed_api;
mod sse;
mod stored_data;
mod websocket;
mod workers;
