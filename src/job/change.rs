//! The state machine: which change is legal from which state, and what it does to a job.
//!
//! The memory store applies these rules directly; `store/transition.lua` applies the same rules
//! inside Redis. The integration tests run one suite against both so the two cannot drift.

use super::{Job, JobStatus, Timestamp};
use serde_json::value::RawValue;

/// One requested change of a job's state.
///
/// `fence` is the attempt number of the worker making the change. A fenced change is accepted
/// only while that attempt holds the job (status `processing`, same attempt), so a worker that
/// lost its lease cannot overwrite the job. Changes from reporting backends carry no fence.
#[derive(Clone, Debug)]
pub enum Change {
    /// A worker starts (or resumes) the job: `pending → processing`, `attempt` goes up by one.
    Start { step: String },
    /// Progress report; `step: None` keeps the current step text. A `pending` job moves to
    /// `processing` on its first (unfenced) report.
    Progress {
        progress: u8,
        step: Option<String>,
        fence: Option<u32>,
    },
    /// The job succeeded with `result`: `processing → completed`, progress 100.
    Complete {
        result: Box<RawValue>,
        step: String,
        fence: Option<u32>,
    },
    /// The job failed: `pending | processing → failed`.
    Fail { error: String, fence: Option<u32> },
    /// The attempt running the job ended without finishing it (lease expired, or handed back at
    /// shutdown): `processing → pending`, keeping its progress, so another attempt resumes it.
    /// Once `attempt` has reached `max_attempts` the job fails instead, with `reason` in its error.
    Requeue {
        reason: String,
        max_attempts: u32,
        fence: Option<u32>,
    },
}

/// Why a change was refused (answered with 409 Conflict).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("job is already {0} and cannot change")]
    Terminal(&'static str),
    #[error("job has not started yet (status pending)")]
    NotStarted,
    #[error("job is already processing")]
    AlreadyStarted,
    #[error("progress cannot go backwards (current {current}, requested {requested})")]
    Backwards { current: u8, requested: u8 },
    #[error("attempt {fence} no longer holds this job (current attempt {current})")]
    StaleAttempt { fence: u32, current: u32 },
}

/// What applying a change did.
#[derive(Debug)]
pub enum Outcome {
    /// The job changed: `seq` was bumped and the new state must be stored and published.
    Applied(Box<Job>),
    /// The change repeated the current state exactly; nothing is written or published.
    Unchanged,
}

impl Change {
    fn fence(&self) -> Option<u32> {
        match self {
            Change::Start { .. } => None,
            Change::Progress { fence, .. }
            | Change::Complete { fence, .. }
            | Change::Fail { fence, .. }
            | Change::Requeue { fence, .. } => *fence,
        }
    }

    /// Applies this change to `job` at `now`, renewing its expiry to `ttl_secs` from `now`.
    pub fn apply(self, job: &Job, now: Timestamp, ttl_secs: u64) -> Result<Outcome, Rejection> {
        if job.status.is_terminal() {
            return Err(Rejection::Terminal(job.status.as_str()));
        }
        if let Some(fence) = self.fence()
            && (fence != job.attempt || job.status != JobStatus::Processing)
        {
            return Err(Rejection::StaleAttempt {
                fence,
                current: job.attempt,
            });
        }
        let mut next = job.clone();
        match self {
            Change::Start { step } => {
                if job.status != JobStatus::Pending {
                    return Err(Rejection::AlreadyStarted);
                }
                next.status = JobStatus::Processing;
                next.attempt += 1;
                next.current_step = step;
            }
            Change::Progress { progress, step, .. } => {
                let step = step.unwrap_or_else(|| job.current_step.clone());
                if progress < job.progress {
                    return Err(Rejection::Backwards {
                        current: job.progress,
                        requested: progress,
                    });
                }
                if progress == job.progress
                    && step == job.current_step
                    && job.status == JobStatus::Processing
                {
                    return Ok(Outcome::Unchanged);
                }
                next.status = JobStatus::Processing;
                next.progress = progress;
                next.current_step = step;
            }
            Change::Complete { result, step, .. } => {
                if job.status == JobStatus::Pending {
                    return Err(Rejection::NotStarted);
                }
                next.status = JobStatus::Completed;
                next.progress = 100;
                next.current_step = step;
                next.result = Some(result);
                next.completed_at = Some(now);
            }
            Change::Fail { error, .. } => {
                next.status = JobStatus::Failed;
                next.error = Some(error);
                next.completed_at = Some(now);
            }
            Change::Requeue {
                reason,
                max_attempts,
                ..
            } => {
                if job.status != JobStatus::Processing {
                    return Err(Rejection::NotStarted);
                }
                if job.attempt >= max_attempts {
                    next.status = JobStatus::Failed;
                    next.error = Some(format!(
                        "Interrupted: {reason}; gave up after {} attempts",
                        job.attempt
                    ));
                    next.completed_at = Some(now);
                } else {
                    next.status = JobStatus::Pending;
                    next.current_step = format!("Interrupted ({reason}); waiting to resume");
                }
            }
        }
        next.seq += 1;
        next.updated_at = now;
        next.expires_at = now.plus_secs(ttl_secs);
        Ok(Outcome::Applied(Box::new(next)))
    }
}
