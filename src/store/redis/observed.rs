//! The store's Redis connection, timed: every command, script and pipeline it sends is one
//! sample of the command latency, and every failure is counted by kind.

use super::is_refusal;
use crate::metrics::{Metrics, RedisErrorKind};
use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::future::Future;
use std::time::Instant;

/// A connection manager whose commands are timed and whose failures are counted.
#[derive(Clone)]
pub struct Observed {
    inner: ConnectionManager,
    metrics: Metrics,
}

impl Observed {
    pub fn new(inner: ConnectionManager, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

/// Awaits `sent`, recording how long it took and how it failed, if it did.
pub async fn timed<T>(
    metrics: &Metrics,
    sent: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    let started = Instant::now();
    let result = sent.await;
    let failure = result.as_ref().err().and_then(error_kind);
    metrics.store().command(started.elapsed(), failure);
    result
}

/// How `error` counts: `None` for the one that is part of the protocol (a script not yet loaded
/// after a Redis restart: the client loads it and retries).
fn error_kind(error: &RedisError) -> Option<RedisErrorKind> {
    if error.code() == Some("NOSCRIPT") {
        return None;
    }
    let unreachable = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal();
    Some(match () {
        () if is_refusal(error) => RedisErrorKind::Refused,
        () if unreachable => RedisErrorKind::Connection,
        () => RedisErrorKind::Reply,
    })
}

impl ConnectionLike for Observed {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let Self { inner, metrics } = self;
        Box::pin(timed(metrics, inner.req_packed_command(cmd)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let Self { inner, metrics } = self;
        Box::pin(timed(
            metrics,
            inner.req_packed_commands(pipeline, offset, count),
        ))
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
