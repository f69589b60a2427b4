//! Putting a job whose attempt ended without finishing back on the queue (or failing it after
//! `MAX_ATTEMPTS`): the one path the sweeper and the reconciler share.

use crate::job::{Change, JobId, JobStatus, Rejection};
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
            true
        }
        Ok(job) => {
            warn!(%job_id, attempt = job.attempt, "job failed: interrupted too many times");
            state.metrics.jobs().requeued(false);
            false
        }
        // Already pending: it may have been lost from the queue between requeue and push.
        Err(StoreError::Rejected(Rejection::NotStarted)) => true,
        // Corrupt: logged by the store; nothing can run it, so its lease is dropped too.
        Err(StoreError::NotFound | StoreError::Rejected(_) | StoreError::Corrupt(_)) => false,
        Err(error) => return Err(error),
    };
    if requeue {
        state.store.enqueue(job_id).await?;
        state.work_queued.notify_one();
    }
    state.store.release(job_id).await
}
