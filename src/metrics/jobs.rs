//! Jobs' lives: created, completed, failed and cancelled by kind, how long they took and waited, the ones
//! running here, the ones requeued, and the requests refused by a rate limit.

use super::Registry;
use crate::job::JobStatus;
use metrics::{Counter, Gauge};
use std::time::Duration;

pub(super) const CREATED: &str = "jobcast_jobs_created_total";
pub(super) const COMPLETED: &str = "jobcast_jobs_completed_total";
pub(super) const FAILED: &str = "jobcast_jobs_failed_total";
pub(super) const CANCELLED: &str = "jobcast_jobs_cancelled_total";
pub(super) const DURATION: &str = "jobcast_job_duration_seconds";
pub(super) const QUEUE_WAIT: &str = "jobcast_job_queue_wait_seconds";
pub(super) const RUNNING: &str = "jobcast_jobs_running";
pub(super) const REQUEUES: &str = "jobcast_sweeper_requeues_total";
pub(super) const RATE_LIMITED: &str = "jobcast_rate_limited_total";

/// Per-kind figures are registered when a kind is first seen (`kind` is validated: at most 64
/// letters, digits, `-`, `_` or `.`, and only the admin may name one other than deep-research).
pub struct Jobs {
    registry: Registry,
    /// Jobs this instance's workers run now.
    pub running: Gauge,
    requeued: [Counter; 2],
    rate_limited: [Counter; 2],
}

/// What a per-client limit counts, as a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitLabel {
    Create = 0,
    Stream = 1,
}

impl Jobs {
    pub(super) fn new(registry: &Registry) -> Self {
        Self {
            registry: registry.clone(),
            running: registry.gauge(RUNNING, &[]),
            requeued: [("outcome", "requeued"), ("outcome", "failed")]
                .map(|label| registry.counter(REQUEUES, &[label])),
            rate_limited: [("limit", "create"), ("limit", "stream")]
                .map(|label| registry.counter(RATE_LIMITED, &[label])),
        }
    }

    /// Counts a job of `kind` created.
    pub fn created(&self, kind: &str) {
        self.registry
            .counter(CREATED, &[("kind", kind)])
            .increment(1);
    }

    /// Counts a job of `kind` that reached its final `status`, `took` after it was created.
    pub fn finished(&self, kind: &str, status: JobStatus, took: Duration) {
        let name = match status {
            JobStatus::Completed => COMPLETED,
            JobStatus::Cancelled => CANCELLED,
            _ => FAILED,
        };
        let status = status.as_str();
        self.registry.counter(name, &[("kind", kind)]).increment(1);
        let labels = [("kind", kind), ("status", status)];
        self.registry
            .histogram(DURATION, &labels)
            .record(took.as_secs_f64());
    }

    /// Records that a job of `kind` was started by a worker after waiting `waited` on the queue.
    pub fn started(&self, kind: &str, waited: Duration) {
        self.registry
            .histogram(QUEUE_WAIT, &[("kind", kind)])
            .record(waited.as_secs_f64());
    }

    /// Counts a job whose attempt ended unfinished: requeued, or failed after its last attempt.
    pub fn requeued(&self, requeued: bool) {
        self.requeued[usize::from(!requeued)].increment(1);
    }

    /// Counts a request refused by the `limit` per-client limit (a 429).
    pub fn rate_limited(&self, limit: LimitLabel) {
        self.rate_limited[limit as usize].increment(1);
    }
}
