//! jobcast's integration tests: the real server, real Redis processes, real HTTP clients.

mod atomicity;
mod auth;
mod bad_input;
mod config;
mod fallback;
mod helpers;
mod long_poll;
mod processes;
mod redis_connection;
mod seed_api;
mod sse;
mod websocket;
mod workers;
