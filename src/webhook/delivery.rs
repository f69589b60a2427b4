//! A delivery: one event of one job, bound for one endpoint, and the attempts made to deliver it.

use crate::job::{JobId, Timestamp};
use serde::{Deserialize, Serialize};

/// The events a webhook is sent for: a job ending, each way.
pub const EVENTS: [(&str, &str); 3] = [
    ("completed", "job.completed"),
    ("failed", "job.failed"),
    ("cancelled", "job.cancelled"),
];

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt, or being attempted.
    Pending,
    /// An attempt got a 2xx.
    Succeeded,
    /// The last attempt of the schedule failed, or the endpoint answered `410 Gone`.
    Failed,
}

/// One attempt, as `GET /api/v4/job/{id}/webhooks` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// When it was made.
    pub at: Timestamp,
    /// The endpoint's status code; `null` when it did not answer.
    #[schema(required = true)]
    pub status_code: Option<u16>,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// Why it failed; `null` when it succeeded.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// A delivery and its attempts.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// The `webhook-id` every attempt carries (stable, so receivers can deduplicate).
    pub id: String,
    pub job_id: JobId,
    /// The endpoint.
    pub url: String,
    /// `job.completed`, `job.failed` or `job.cancelled`.
    pub event: String,
    pub status: DeliveryStatus,
    pub created_at: Timestamp,
    /// When the next attempt is due; `null` once it succeeded or failed.
    #[schema(required = true)]
    pub next_attempt_at: Option<Timestamp>,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

/// A delivery claimed for an attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    pub id: String,
    /// Which claim of the delivery this is: a later claim (after this one's lease ran out)
    /// supersedes it, and its attempt is not recorded.
    pub claim: u64,
    pub url: String,
    pub body: String,
    /// How many attempts were made before this one.
    pub attempts_made: usize,
}

/// A delivery moved from the memory store to Redis when an outage ends, with what an attempt
/// needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Moved {
    pub delivery: Delivery,
    pub body: String,
}

/// What follows an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    Failed,
    /// Attempt again at this instant (ms since the epoch).
    RetryAt(i64),
}

/// The `webhook-id` of the `n`-th endpoint's delivery of a job's change `seq`.
pub fn message_id(job_id: JobId, seq: u64, n: usize) -> String {
    format!("msg_{}_{seq}_{n}", job_id.simple())
}

/// The body of an event: `{"type", "timestamp", "data": <the job>}`.
pub fn event_body(event: &str, timestamp: Timestamp, job_json: &str) -> String {
    format!(r#"{{"type":"{event}","timestamp":"{timestamp}","data":{job_json}}}"#)
}
