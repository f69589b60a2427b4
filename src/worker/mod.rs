//! The workers inside the server: claim queued jobs and run them, `WORKER_CONCURRENCY` at a time,
//! holding a lease on each; and the sweeper that requeues jobs whose lease ran out.

mod deep_research;
pub mod reconcile;
mod requeue;
mod running;
mod sweeper;
mod webhooks;

pub use running::RunningJobs;
pub use sweeper::spawn_sweeper;
pub use webhooks::spawn_deliverer;

use crate::job::{Change, DEEP_RESEARCH_KIND, Job, JobId, JobStatus, Rejection};
use crate::state::AppState;
use crate::store::{JobStore, StoreError, WorkQueue};
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

/// How long a worker waits after a store error before it tries again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// How many times a worker retries a change the store could not take (Redis briefly away).
const STORE_RETRIES: u32 = 10;
/// How long a worker waits before retrying such a change.
const CHANGE_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Applies a worker's change, retrying while the store is briefly unavailable, so a job does not
/// stall until its lease expires because of one failed round trip.
async fn apply_retrying(
    state: &AppState,
    job_id: JobId,
    change: Change,
) -> Result<Job, StoreError> {
    let mut retries = 0;
    loop {
        match state.store.apply(job_id, change.clone()).await {
            Err(StoreError::Redis(error))
                if retries < STORE_RETRIES && !state.shutdown.is_cancelled() =>
            {
                retries += 1;
                tracing::debug!(%error, retries, "store unavailable; retrying the change");
                tokio::time::sleep(CHANGE_RETRY_PAUSE).await;
            }
            other => return other,
        }
    }
}

/// How a run of a job ended.
pub enum RunEnd {
    /// The job reached a terminal state.
    Finished,
    /// The server is stopping; the job stopped at a checkpoint and must be handed back.
    Interrupted,
}

/// The running worker tasks.
pub struct Workers {
    tasks: JoinSet<()>,
    running: RunningJobs,
    state: AppState,
}

/// Starts `WORKER_CONCURRENCY` workers; they stop claiming when `state.shutdown` is cancelled.
pub fn spawn_workers(state: &AppState) -> Workers {
    let running = RunningJobs::default();
    let mut tasks = JoinSet::new();
    for number in 0..state.config.worker_concurrency {
        let worker = Worker {
            state: state.clone(),
            running: running.clone(),
        };
        tasks.spawn(worker.run().instrument(info_span!("worker", number)));
    }
    Workers {
        tasks,
        running,
        state: state.clone(),
    }
}

impl Workers {
    /// After shutdown was signalled: gives running jobs `grace` to reach a checkpoint (they hand
    /// themselves back), then aborts the rest and hands their jobs back.
    pub async fn stop(mut self, grace: Duration) {
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            warn!("workers did not reach a checkpoint in time; handing their jobs back");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        for (job_id, attempt) in self.running.take_all() {
            hand_back(&self.state, job_id, attempt).await;
        }
    }
}

/// Requeues a job this instance was running, so another instance resumes it at once.
async fn hand_back(state: &AppState, job_id: JobId, attempt: u32) {
    let change = Change::Requeue {
        reason: "the server running it was stopped".into(),
        max_attempts: u32::MAX,
        fence: Some(attempt),
    };
    let handed_back = async {
        let job = state.store.apply(job_id, change).await?;
        state.store.enqueue(job_id, job.priority).await?;
        state.store.release(job_id).await
    };
    match handed_back.await {
        Ok(()) => info!(%job_id, "job handed back"),
        Err(error) => warn!(%job_id, %error, "handing a job back failed; its lease will expire"),
    }
}

struct Worker {
    state: AppState,
    running: RunningJobs,
}

impl Worker {
    async fn run(self) {
        let poll = Duration::from_millis(self.state.config.queue_poll_ms);
        let shutdown = &self.state.shutdown;
        while !shutdown.is_cancelled() {
            let idle_for = match self.state.store.claim(self.state.config.lease()).await {
                Ok(Some(job_id)) => {
                    let span = info_span!("job", %job_id);
                    self.run_claimed(job_id).instrument(span).await;
                    continue;
                }
                Ok(None) => poll,
                Err(error) => {
                    warn!(%error, "claiming a job failed");
                    RETRY_AFTER_ERROR
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.state.work_queued.notified() => {}
                _ = tokio::time::sleep(idle_for) => {}
            }
        }
    }

    /// Starts a claimed job unless it is not this worker's to run, then runs it.
    async fn run_claimed(&self, job_id: JobId) {
        let store = &self.state.store;
        let job = match store.get(job_id).await {
            Ok(Some(job)) if job.status == JobStatus::Pending => job,
            // Processing: a duplicate queue entry of a job another attempt holds; leave its lease.
            Ok(Some(job)) if job.status == JobStatus::Processing => return,
            Ok(_) => return self.release(job_id).await, // finished, or expired while queued
            Err(error) => {
                return warn!(%error, "reading a claimed job failed; its lease will expire");
            }
        };
        if job.kind != DEEP_RESEARCH_KIND {
            warn!(kind = %job.kind, "no built-in worker for this kind");
            return self.release(job_id).await;
        }
        let start = Change::Start {
            step: "Preparing comprehensive analysis...".into(),
        };
        let waited = job.updated_at;
        let job = match store.apply(job_id, start).await {
            Ok(job) => job,
            Err(StoreError::Rejected(Rejection::AlreadyStarted)) => return,
            Err(error) => return warn!(%error, "starting a job failed; its lease will expire"),
        };
        let waited = (job.updated_at.0 - waited.0).to_std().unwrap_or_default();
        self.state.metrics.jobs().started(&job.kind, waited);
        self.run_started(job).await;
    }

    async fn run_started(&self, job: Job) {
        let (job_id, attempt) = (job.job_id, job.attempt);
        self.running.insert(job_id, attempt);
        let heartbeat = running::keep_lease(&self.state, job_id);
        let running = &self.state.metrics.jobs().running;
        running.increment(1);
        let end = deep_research::run(&self.state, job).await;
        running.decrement(1);
        drop(heartbeat);
        match end {
            Ok(RunEnd::Finished) => self.release(job_id).await,
            Ok(RunEnd::Interrupted) => hand_back(&self.state, job_id, attempt).await,
            // Cancelled (through any instance) while it ran: its next step was refused.
            Err(StoreError::Rejected(rejection @ Rejection::Terminal(_))) => {
                info!(%rejection, "the job ended elsewhere; stopping its run");
                self.release(job_id).await;
            }
            Err(StoreError::Rejected(rejection)) => {
                info!(%rejection, "another attempt holds the job now")
            }
            Err(error) => {
                warn!(%error, "job run stopped; its lease will expire and it will be resumed")
            }
        }
        self.running.remove(job_id);
    }

    async fn release(&self, job_id: JobId) {
        if let Err(error) = self.state.store.release(job_id).await {
            warn!(%job_id, %error, "releasing a lease failed");
        }
    }
}
