//! The workers inside the server: claim queued jobs and run them, `WORKER_CONCURRENCY` at a time.

mod deep_research;

use crate::job::{DEEP_RESEARCH_KIND, JobId};
use crate::state::AppState;
use crate::store::{JobStore, StoreError};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

/// How long a worker waits after a store error before it tries again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// Starts `WORKER_CONCURRENCY` workers; they stop claiming when `shutdown` is cancelled.
pub fn spawn_workers(state: &AppState, shutdown: &CancellationToken) -> JoinSet<()> {
    let mut workers = JoinSet::new();
    for number in 0..state.config.worker_concurrency {
        let worker = Worker {
            state: state.clone(),
            shutdown: shutdown.clone(),
        };
        workers.spawn(worker.run().instrument(info_span!("worker", number)));
    }
    workers
}

struct Worker {
    state: AppState,
    shutdown: CancellationToken,
}

impl Worker {
    async fn run(self) {
        let poll = Duration::from_millis(self.state.config.queue_poll_ms);
        while !self.shutdown.is_cancelled() {
            let idle_for = match self.state.store.claim(self.state.config.lease()).await {
                Ok(Some(job_id)) => {
                    self.run_job(job_id).await;
                    continue;
                }
                Ok(None) => poll,
                Err(error) => {
                    warn!(error = %error, "claiming a job failed");
                    RETRY_AFTER_ERROR
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => {}
                _ = self.state.work_queued.notified() => {}
                _ = tokio::time::sleep(idle_for) => {}
            }
        }
    }

    async fn run_job(&self, job_id: JobId) {
        let outcome = async {
            let Some(job) = self.state.store.get(job_id).await? else {
                return Ok(()); // expired while queued: nothing left to run
            };
            match job.kind.as_str() {
                DEEP_RESEARCH_KIND => deep_research::run(&self.state, job, &self.shutdown).await,
                other => {
                    warn!(kind = other, "no built-in worker for this kind; leaving it");
                    Ok(())
                }
            }
        }
        .instrument(info_span!("job", job_id = %job_id))
        .await;
        if let Err(error) = outcome {
            warn!(job_id = %job_id, error = %error, "job run stopped");
        }
        if let Err(error) = self.state.store.release(job_id).await {
            warn!(job_id = %job_id, error = %error, "releasing the lease failed");
        }
    }
}

/// What a run can stop on: a store error, or a refused change (another attempt holds the job).
type RunResult = Result<(), StoreError>;
