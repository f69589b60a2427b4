//! The jobs this instance is running, and the heartbeat that keeps each one's lease.

use crate::job::JobId;
use crate::state::AppState;
use crate::store::WorkQueue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Job id → the attempt this instance runs, for handing jobs back at shutdown.
#[derive(Clone, Default)]
pub struct RunningJobs(Arc<Mutex<HashMap<JobId, u32>>>);

impl RunningJobs {
    pub fn insert(&self, job_id: JobId, attempt: u32) {
        self.0.lock().expect("running lock").insert(job_id, attempt);
    }

    pub fn remove(&self, job_id: JobId) {
        self.0.lock().expect("running lock").remove(&job_id);
    }

    /// Every running job, leaving none.
    pub fn take_all(&self) -> Vec<(JobId, u32)> {
        self.0.lock().expect("running lock").drain().collect()
    }
}

/// Aborts its task when dropped.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the job's lease three times per lease period until the returned guard is dropped.
pub fn keep_lease(state: &AppState, job_id: JobId) -> Heartbeat {
    let store = state.store.clone();
    let lease = state.config.lease();
    Heartbeat(tokio::spawn(async move {
        let mut beat = tokio::time::interval(lease / 3);
        beat.tick().await; // the claim has just set the lease
        loop {
            beat.tick().await;
            if let Err(error) = store.renew(job_id, lease).await {
                tracing::warn!(%job_id, %error, "renewing a lease failed");
            }
        }
    }))
}
