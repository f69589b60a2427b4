//! Putting a job whose attempt ended without finishing back on the queue (or failing it after
//! `MAX_ATTEMPTS`): the one path the sweeper and the reconciler share.

use crate::job::{Change, JobId, JobStatus, Priority, Rejection};
use crate::state::AppState;
use crate::store::{JobStore, StoreError, WorkQueue};
use tracing::{info, warn};

/// Requeues (or fails) one job whose attempt ended for `reason`, then drops its lease.
pub async fn recover_job(state: &AppState, job_id: JobId, reason: &str) -> Result<(), StoreError> {
    let change = Change::Requeue {
        reason: reason.into(),
        max_attempts: state.config.max_attempts,
        fence: None,
    };
    let requeue = match state.store.apply(job_id, change).await {
        Ok(job) if job.status == JobStatus::Pending => {
            info!(%job_id, attempt = job.attempt, reason, "job requeued");
            state.metrics.jobs().requeued(true);
            Some(job.priority)
        }
        Ok(job) => {
            warn!(%job_id, attempt = job.attempt, "job failed: interrupted too many times");
            state.metrics.jobs().requeued(false);
            None
        }
        // Already pending: it may have been lost from the queue between requeue and push.
        Err(StoreError::Rejected(Rejection::NotStarted)) => pending_priority(state, job_id).await?,
        // Corrupt: logged by the store; nothing can run it, so its lease is dropped too.
        Err(StoreError::NotFound | StoreError::Rejected(_) | StoreError::Corrupt(_)) => None,
        Err(error) => return Err(error),
    };
    if let Some(priority) = requeue {
        state.store.enqueue(job_id, priority).await?;
        state.work_queued.notify_one();
    }
    state.store.release(job_id).await
}

/// The priority of a job that is still pending (to queue it again); `None` when it is not.
pub async fn pending_priority(
    state: &AppState,
    job_id: JobId,
) -> Result<Option<Priority>, StoreError> {
    let job = match state.store.get(job_id).await {
        Ok(job) => job,
        Err(StoreError::Corrupt(_)) => None, // logged by the store
        Err(error) => return Err(error),
    };
    Ok(job
        .filter(|job| job.status == JobStatus::Pending)
        .map(|job| job.priority))
}
