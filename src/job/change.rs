//! The state machine: which change is legal from which state, and what it does to a job.
//!
//! The memory store applies these rules directly; `store/transition.lua` applies the same rules
//! inside Redis. The integration tests run one suite against both so the two cannot drift.

use super::{Job, JobStatus, Priority, Timestamp};
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
    /// The job was cancelled (by the admin or its creator): `pending | processing → cancelled`,
    /// with `reason` as its error. Its worker, wherever it runs, is refused its next change.
    Cancel { reason: String },
    /// A pending job moves to `priority` in the queue, keeping its arrival within the priority;
    /// refused once the job has started.
    Prioritise { priority: Priority },
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
            Change::Start { .. } | Change::Cancel { .. } | Change::Prioritise { .. } => None,
            Change::Progress { fence, .. }
            | Change::Complete { fence, .. }
            | Change::Fail { fence, .. }
            | Change::Requeue { fence, .. } => *fence,
        }
    }

    /// Applies this change to `job` at `now`, renewing its expiry to `ttl_secs` from `now`.
    pub fn apply(self, job: &Job, now: Timestamp, ttl_secs: u64) -> Result<Outcome, Rejection> {
        self.admit(job)?;
        let mut next = job.clone();
        if !self.rewrite(job, &mut next, now)? {
            return Ok(Outcome::Unchanged);
        }
        next.seq += 1;
        next.updated_at = now;
        next.expires_at = now.plus_secs(ttl_secs);
        Ok(Outcome::Applied(Box::new(next)))
    }

    /// Refuses any change to a terminal job, and a fenced change from an attempt that no longer
    /// holds the job.
    fn admit(&self, job: &Job) -> Result<(), Rejection> {
        if job.status.is_terminal() {
            return Err(Rejection::Terminal(job.status.as_str()));
        }
        match self.fence() {
            Some(fence) if fence != job.attempt || job.status != JobStatus::Processing => {
                Err(Rejection::StaleAttempt {
                    fence,
                    current: job.attempt,
                })
            }
            _ => Ok(()),
        }
    }

    /// Writes this change into `next`, a copy of `job`; `false` when it would change nothing.
    fn rewrite(self, job: &Job, next: &mut Job, now: Timestamp) -> Result<bool, Rejection> {
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
                return progress_to(job, next, progress, step);
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
            Change::Cancel { reason } => {
                next.status = JobStatus::Cancelled;
                next.error = Some(reason);
                next.completed_at = Some(now);
            }
            Change::Prioritise { priority } => {
                if job.status != JobStatus::Pending {
                    return Err(Rejection::AlreadyStarted);
                }
                if job.priority == priority {
                    return Ok(false);
                }
                next.priority = priority;
            }
            Change::Requeue {
                reason,
                max_attempts,
                ..
            } => requeue(job, next, &reason, max_attempts, now)?,
        }
        Ok(true)
    }
}

/// Moves `next` to `progress` (and `step`, or the current step); never backwards. `false` when
/// a processing job is already there.
fn progress_to(
    job: &Job,
    next: &mut Job,
    progress: u8,
    step: Option<String>,
) -> Result<bool, Rejection> {
    let step = step.unwrap_or_else(|| job.current_step.clone());
    if progress < job.progress {
        return Err(Rejection::Backwards {
            current: job.progress,
            requested: progress,
        });
    }
    if progress == job.progress && step == job.current_step && job.status == JobStatus::Processing {
        return Ok(false);
    }
    next.status = JobStatus::Processing;
    next.progress = progress;
    next.current_step = step;
    Ok(true)
}

/// Hands a processing job back to the queue, or fails it once it has had `max_attempts`.
fn requeue(
    job: &Job,
    next: &mut Job,
    reason: &str,
    max_attempts: u32,
    now: Timestamp,
) -> Result<(), Rejection> {
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
    Ok(())
}
