//! Test fixtures: private Redis servers, the server in-process or as a real process, stream clients.

mod app;
mod browser;
mod process;
mod redis;
mod sse;

pub use app::*;
pub use browser::*;
pub use process::*;
pub use redis::*;
pub use sse::*;

use std::time::Duration;

/// How long a test waits for something that should happen quickly.
pub const PATIENCE: Duration = Duration::from_secs(20);
