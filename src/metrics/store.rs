//! The store's figures: the backend in use, outages and write-backs, Redis's command latency,
//! errors and memory, and the queue's depth.

use super::Registry;
use metrics::{Counter, Gauge, Histogram};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) const QUEUE_DEPTH: &str = "jobcast_queue_depth";
pub(super) const BACKEND: &str = "jobcast_backend";
pub(super) const DEGRADED: &str = "jobcast_degraded";
pub(super) const DEGRADED_SECONDS: &str = "jobcast_degraded_seconds_total";
pub(super) const OUTAGES: &str = "jobcast_outages_total";
pub(super) const WRITE_BACKS: &str = "jobcast_write_backs_total";
pub(super) const COMMAND_DURATION: &str = "jobcast_redis_command_duration_seconds";
pub(super) const COMMAND_ERRORS: &str = "jobcast_redis_command_errors_total";
pub(super) const USED_MEMORY: &str = "jobcast_redis_used_memory_bytes";
pub(super) const MAX_MEMORY: &str = "jobcast_redis_maxmemory_bytes";

/// Why a Redis command failed, as a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisErrorKind {
    /// Redis could not be reached, or did not answer in time.
    Connection = 0,
    /// It answered but refused this server (credentials, permissions, TLS).
    Refused = 1,
    /// It answered with an error.
    Reply = 2,
}

/// The store's handles, registered once.
pub struct StoreMetrics {
    /// Jobs on the work queue, sampled.
    pub queue_depth: Gauge,
    backend: [Gauge; 2],
    degraded: Gauge,
    degraded_seconds: Counter,
    /// When the backend was last sampled, and the time found degraded so far (a std mutex:
    /// taken by the sampler and by scrapes only).
    degraded_clock: Mutex<(Instant, Duration)>,
    /// Falls back to memory.
    pub outages: Counter,
    /// Jobs written back to Redis after an outage.
    pub write_backs: Counter,
    command_duration: Histogram,
    command_errors: [Counter; 3],
    /// `used_memory` from `INFO memory`, sampled.
    pub used_memory: Gauge,
    /// `maxmemory` from `INFO memory`, sampled.
    pub max_memory: Gauge,
}

impl StoreMetrics {
    pub(super) fn new(registry: &Registry) -> Self {
        let errors = ["connection", "refused", "reply"];
        Self {
            queue_depth: registry.gauge(QUEUE_DEPTH, &[]),
            backend: ["redis", "memory"].map(|name| registry.gauge(BACKEND, &[("backend", name)])),
            degraded: registry.gauge(DEGRADED, &[]),
            degraded_seconds: registry.counter(DEGRADED_SECONDS, &[]),
            degraded_clock: Mutex::new((Instant::now(), Duration::ZERO)),
            outages: registry.counter(OUTAGES, &[]),
            write_backs: registry.counter(WRITE_BACKS, &[]),
            command_duration: registry.histogram(COMMAND_DURATION, &[]),
            command_errors: errors.map(|kind| registry.counter(COMMAND_ERRORS, &[("kind", kind)])),
            used_memory: registry.gauge(USED_MEMORY, &[]),
            max_memory: registry.gauge(MAX_MEMORY, &[]),
        }
    }

    /// Records which backend serves (memory while `degraded`); the time since the last sample
    /// counts as degraded when it is now.
    pub fn sample_backend(&self, degraded: bool) {
        let [redis, memory] = &self.backend;
        redis.set(f64::from(u8::from(!degraded)));
        memory.set(f64::from(u8::from(degraded)));
        self.degraded.set(f64::from(u8::from(degraded)));
        let mut clock = self.degraded_clock.lock().expect("degraded clock lock");
        let (last, total) = &mut *clock;
        let now = Instant::now();
        if degraded {
            *total += now - *last;
        }
        *last = now;
        self.degraded_seconds.absolute(total.as_secs());
    }

    /// Records one Redis command that took `took` and failed with `error`, if it did.
    pub fn command(&self, took: Duration, error: Option<RedisErrorKind>) {
        self.command_duration.record(took.as_secs_f64());
        if let Some(kind) = error {
            self.command_errors[kind as usize].increment(1);
        }
    }
}
