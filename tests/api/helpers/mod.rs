//! Test fixtures: private Redis servers, the server in-process or as a real process, stream clients.

mod app;
mod browser;
mod job_shape;
mod keys;
mod metrics;
mod nginx;
mod process;
mod receiver;
mod redis;
mod sse;
mod websocket;

pub use app::*;
pub use browser::*;
pub use job_shape::*;
pub use keys::*;
pub use metrics::*;
pub use nginx::*;
pub use process::*;
pub use receiver::*;
pub use redis::*;
pub use sse::*;
pub use websocket::*;

use std::time::Duration;

/// How long a test waits for something that should happen quickly.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `probe` until it yields a value, failing the test with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
