//! jobcast's integration tests: the real server, real Redis processes, real HTTP clients.

mod atomicity;
mod auth;
mod bad_input;
mod browser;
mod chaos;
mod config;
mod connections;
mod dashboard;
mod fallback;
mod helpers;
mod leases;
mod long_poll;
mod outages;
mod poll_cache;
mod processes;
mod redis_connection;
mod seed_api;
mod sse;
mod websocket;
mod workers;
