//! Reconciliation: walks the job index and requeues deep-research jobs nothing would ever run.
//!
//! Two faults leave a job stuck with no lease to expire: a crash between creating a job and
//! queueing it (`pending`, on no queue), and Redis losing its data while the instance running a
//! job died too (`processing`, no lease). At boot and every `RECONCILE_EVERY_SWEEPS` sweeps, one
//! instance (holding a Redis lock) walks `{jobcast}:index` oldest first, [`RECONCILE_BATCH`]
//! entries at a time, and requeues such jobs: a pending one by pushing it on the queue, a
//! processing one through `Change::Requeue` as the sweeper does, so `MAX_ATTEMPTS` and watchers
//! behave the same.
//!
//! Cost of a pass: one LRANGE of the queue (about `MAX_QUEUED_JOBS` ids at most) and one ZRANGE of
//! the leases, kept as one set for the pass, rather than an LPOS per job (each O(queue)); then per
//! index entry one GETRANGE of at most `HEAD_BYTES` (the fields up to `updated_at`, never the
//! payloads), pipelined a batch at a time. Never a SCAN over keys. Measured on a debug build with
//! 100,000 indexed jobs (50,000 queued) holding 8 KB inputs: 4.2 s and 58 MB read from Redis.
//!
//! Races: a job is touched only when it has not changed for `RECONCILE_GRACE_MS` before the pass
//! began — a processing job for at least a lease too, the time in which a live worker's heartbeat
//! puts a lost lease back — and when it was neither queued nor leased, the queue read first (a
//! job being claimed moves from the queue to the leases, so it is seen in one of them). A worker
//! whose lease entry vanished while it sits in one step longer than a lease would be requeued
//! before its heartbeat restores the entry; fencing then refuses its late writes and the next
//! attempt resumes from its progress.

use super::requeue;
use crate::config::Config;
use crate::job::{DEEP_RESEARCH_KIND, JobId, JobStatus, Timestamp};
use crate::state::AppState;
use crate::store::listing::JobHead;
use crate::store::{StoreError, WorkQueue};
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;
use tracing::{info, warn};

/// Index entries read per round trip of a pass.
pub const RECONCILE_BATCH: usize = 500;

/// What one pass did.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Live jobs whose head was read.
    pub examined: usize,
    /// Pending jobs that were on no queue, pushed on it.
    pub requeued_pending: usize,
    /// Processing jobs that held no lease, requeued (or failed after `MAX_ATTEMPTS`).
    pub recovered_processing: usize,
}

/// Runs a pass unless another instance ran one within the last `period`.
pub async fn reconcile_if_due(state: &AppState, period: Duration) {
    match state.store.try_reconcile_lock(period).await {
        Ok(true) => match reconcile(state).await {
            Ok(done) if done.requeued_pending + done.recovered_processing > 0 => {
                info!(?done, "reconciliation requeued stuck jobs")
            }
            Ok(done) => tracing::debug!(?done, "reconciliation found nothing stuck"),
            Err(error) => warn!(%error, "reconciliation stopped"),
        },
        Ok(false) => {}
        Err(error) => warn!(%error, "reconciler could not take its lock"),
    }
}

/// One walk of the whole index.
pub async fn reconcile(state: &AppState) -> Result<Reconciled, StoreError> {
    let cutoffs = Cutoffs::now(&state.config);
    let in_hand = state.store.work_in_hand().await?;
    let mut done = Reconciled::default();
    let mut position = Some(0);
    while let Some(start) = position {
        // Degraded mid-pass: the snapshot is Redis's, the index now the memory store's; stop.
        if state.shutdown.is_cancelled() || state.store.is_degraded() {
            break;
        }
        let page = state.store.index_heads(start, RECONCILE_BATCH).await?;
        for head in page.heads {
            done.examined += 1;
            if !in_hand.contains(&head.job_id) && cutoffs.is_stranded(&head) {
                rescue(state, &head, &mut done).await;
            }
        }
        position = page.next;
    }
    Ok(done)
}

/// Jobs unchanged since before these instants may be stuck.
struct Cutoffs {
    pending: Timestamp,
    processing: Timestamp,
}

impl Cutoffs {
    fn now(config: &Config) -> Self {
        let now = Utc::now();
        let before = |wait: Duration| {
            let wait = TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
            Timestamp(
                now.checked_sub_signed(wait)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            )
        };
        let grace = config.reconcile_grace();
        Self {
            pending: before(grace),
            processing: before(grace.max(config.lease())),
        }
    }

    /// Whether a job that is neither queued nor leased is one nothing will run.
    fn is_stranded(&self, head: &JobHead) -> bool {
        // Other kinds are run by outside reporters: they are never queued nor leased.
        head.kind == DEEP_RESEARCH_KIND
            && match head.status {
                JobStatus::Pending => head.updated_at < self.pending,
                JobStatus::Processing => head.updated_at < self.processing,
                JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled => false,
            }
    }
}

async fn rescue(state: &AppState, head: &JobHead, done: &mut Reconciled) {
    let job_id = head.job_id;
    let rescued = match head.status {
        JobStatus::Pending => requeue_pending(state, job_id).await,
        _ => requeue::recover_job(state, job_id, "its lease was lost").await,
    };
    match (rescued, head.status) {
        (Ok(()), JobStatus::Pending) => done.requeued_pending += 1,
        (Ok(()), _) => done.recovered_processing += 1,
        (Err(error), _) => warn!(%job_id, %error, "reconciling a stuck job failed"),
    }
}

async fn requeue_pending(state: &AppState, job_id: JobId) -> Result<(), StoreError> {
    let Some(priority) = requeue::pending_priority(state, job_id).await? else {
        return Ok(()); // it started or ended meanwhile
    };
    state.store.enqueue(job_id, priority).await?;
    state.work_queued.notify_one();
    info!(%job_id, "requeued a pending job that was on no queue");
    Ok(())
}
