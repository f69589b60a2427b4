//! The lease sweeper: every instance runs one, one acts per interval, and it runs at boot too.
//!
//! A job whose lease ran out was left by a worker that died or hung. It goes back to the queue
//! (its progress kept, so the next attempt resumes it), or, after `MAX_ATTEMPTS`, ends `failed`
//! saying it was interrupted. Either way its watchers are told, as for any change.
//!
//! At boot and every `RECONCILE_EVERY_SWEEPS` sweeps it also runs a reconciliation pass (see
//! [`super::reconcile`]) for the jobs that hold no lease at all.

use super::{reconcile, requeue::recover_job};
use crate::job::Timestamp;
use crate::state::AppState;
use crate::store::{History, WorkQueue};
use tracing::{info, warn};

/// The most expired leases handled per sweep; the rest wait for the next one.
pub const SWEEP_BATCH: usize = 100;
/// The most history records pruned per sweep.
pub const HISTORY_PRUNE_BATCH: usize = 1_000;
/// How many words of the search vocabulary each sweep prunes, walking on from the last.
pub const SEARCH_PRUNE_WORDS: usize = 200;

/// Starts the sweeper; it stops with `state.shutdown`.
pub fn spawn_sweeper(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let interval = state.config.sweep_interval();
        let every = state.config.reconcile_every_sweeps;
        let mut ticks = tokio::time::interval(interval);
        let mut sweeps: u32 = 0;
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            // Every instance prunes (cheap, idempotent), in memory during an outage too.
            prune_history(&state).await;
            prune_search(&state).await;
            if state.store.is_degraded() {
                continue; // leases live in Redis; nothing to sweep until it is back
            }
            match state.store.try_sweep_lock(interval).await {
                Ok(true) => sweep(&state).await,
                Ok(false) => {}
                Err(error) => warn!(%error, "sweeper could not take its lock"),
            }
            if sweeps.is_multiple_of(every) {
                reconcile::reconcile_if_due(&state, interval * every).await;
            }
            sweeps = sweeps.wrapping_add(1) % every;
        }
    });
}

/// Drops history records older than `HISTORY_RETENTION_DAYS` (in Redis and in memory).
async fn prune_history(state: &AppState) {
    let days = state.config.history_retention_days; // at most 3650 (see Config)
    let cutoff = Timestamp::now().0 - chrono::TimeDelta::days(days as i64);
    match state
        .store
        .prune_history(cutoff.timestamp_millis(), HISTORY_PRUNE_BATCH)
        .await
    {
        Ok(0) => {}
        Ok(pruned) => info!(pruned, "pruned history records past their retention"),
        Err(error) => warn!(%error, "pruning the history failed"),
    }
}

/// Takes jobs out of the search index once neither they nor their history records can be found
/// any more: created longer ago than `JOB_TTL_SECS` plus `HISTORY_RETENTION_DAYS`.
async fn prune_search(state: &AppState) {
    let kept = chrono::TimeDelta::days(state.config.history_retention_days as i64)
        + chrono::TimeDelta::seconds(state.config.job_ttl_secs as i64);
    let cutoff = Timestamp::now().0 - kept;
    match state
        .store
        .prune_search(cutoff.timestamp_millis(), SEARCH_PRUNE_WORDS)
        .await
    {
        Ok(0) => {}
        Ok(pruned) => info!(pruned, "pruned search entries past their retention"),
        Err(error) => warn!(%error, "pruning the search index failed"),
    }
}

async fn sweep(state: &AppState) {
    let expired = match state.store.expired_leases(SWEEP_BATCH).await {
        Ok(expired) => expired,
        Err(error) => return warn!(%error, "listing expired leases failed"),
    };
    for job_id in expired {
        let reason = "its worker stopped renewing its lease";
        if let Err(error) = recover_job(state, job_id, reason).await {
            warn!(%job_id, %error, "recovering a job with an expired lease failed");
        }
    }
}
