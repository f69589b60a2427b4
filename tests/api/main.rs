//! jobcast's integration tests: the real server, real Redis processes, real HTTP clients.

mod atomicity;
mod auth;
mod bad_input;
mod config;
mod fallback;
mod helpers;
mod redis_connection;
mod seed_api;
mod workers;
