//! A finished job's compact record, kept for `HISTORY_RETENTION_DAYS` after the job itself
//! expires: what it was, how it ended, and how long it took.
//!
//! Redis writes it in `transition.lua`, in the step that makes the job terminal; the memory store
//! builds it with [`HistoryRecord::of`]. Both write the same fields.

use super::{Job, JobId, JobStatus, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One finished job, as `GET /api/v4/history` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryRecord {
    pub job_id: JobId,
    pub kind: String,
    pub status: JobStatus,
    /// The input's `product_name`, when it has one (every deep-research job does).
    #[schema(required = true)]
    pub product_name: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Timestamp,
    /// From creation to the end, in milliseconds.
    #[serde(default)]
    pub duration_ms: i64,
    /// A deep-research report's overall risk level; `null` for other results and other ends.
    #[schema(required = true)]
    pub overall_risk: Option<String>,
    /// Why the job failed or was cancelled; `null` when it completed.
    #[schema(required = true)]
    pub error: Option<String>,
    /// How many times a worker started it.
    pub attempts: u32,
    #[serde(default)]
    pub priority: super::Priority,
}

impl HistoryRecord {
    /// The record of `job`, if it has finished.
    pub fn of(job: &Job) -> Option<Self> {
        if !job.status.is_terminal() {
            return None;
        }
        let input: Option<serde_json::Value> = serde_json::from_str(job.input.get()).ok();
        let product_name = input
            .as_ref()
            .and_then(|input| input.get("product_name")?.as_str().map(str::to_owned));
        let result: Option<serde_json::Value> = job
            .result
            .as_ref()
            .and_then(|result| serde_json::from_str(result.get()).ok());
        let overall_risk = result
            .as_ref()
            .and_then(|result| result.get("overall_risk")?.get("level")?.as_str())
            .map(str::to_owned);
        let finished_at = job.completed_at.unwrap_or(job.updated_at);
        Some(
            Self {
                job_id: job.job_id,
                kind: job.kind.clone(),
                status: job.status,
                product_name,
                created_at: job.created_at,
                finished_at,
                duration_ms: 0,
                overall_risk,
                error: job.error.clone(),
                attempts: job.attempt,
                priority: job.priority,
            }
            .timed(),
        )
    }

    /// This record with its `duration_ms` worked out from its times as served, in whole
    /// milliseconds (Redis stores only the times).
    pub fn timed(mut self) -> Self {
        self.duration_ms = self.finished_ms() - self.created_at.0.timestamp_millis();
        self
    }

    /// Where the record sorts in the history: when the job finished, in ms since the epoch.
    pub fn finished_ms(&self) -> i64 {
        self.finished_at.0.timestamp_millis()
    }
}
