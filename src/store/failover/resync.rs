//! Coming back from an outage: retry Redis, write back what changed, move work, switch back.

use super::{RECOVERY_MAX_BACKOFF, RECOVERY_MIN_BACKOFF, Store};
use crate::job::{DEEP_RESEARCH_KIND, HistoryRecord, Job, JobId, JobStatus};
use crate::store::StoreError;
use crate::store::redis::{Restored, is_refusal};
use std::sync::atomic::Ordering;
use tracing::{info, warn};

impl Store {
    /// Retries Redis until it answers, writes back, then switches back.
    pub(super) async fn recover(self) {
        let mut backoff = RECOVERY_MIN_BACKOFF;
        loop {
            tokio::select! {
                _ = self.shared.shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            match self.resync().await {
                Ok(restored) => {
                    info!(
                        restored,
                        "Redis is back: switched back from the in-memory store"
                    );
                    break;
                }
                Err(StoreError::Redis(error)) if is_refusal(&error) => {
                    let retry_in_ms = backoff.as_millis() as u64;
                    warn!(%error, retry_in_ms, "Redis answers but refuses this server (check REDIS_URL's password and the TLS settings); still serving from memory");
                    backoff = (backoff * 2).min(RECOVERY_MAX_BACKOFF);
                }
                Err(error) => {
                    tracing::debug!(%error, retry_in_ms = backoff.as_millis() as u64, "Redis still unreachable");
                    backoff = (backoff * 2).min(RECOVERY_MAX_BACKOFF);
                }
            }
        }
        self.shared.recovering.store(false, Ordering::Release);
    }

    /// Writes back what changed while degraded, moves queue and leases, and switches to Redis.
    /// Returns how many jobs Redis did not have in the state written back.
    async fn resync(&self) -> Result<usize, StoreError> {
        self.shared.redis.reconnect().await?;
        let epoch = self.shared.redis.epoch().await?;
        let previous = self
            .shared
            .epoch
            .lock()
            .expect("epoch lock")
            .replace(epoch.clone());
        let data_lost = previous.is_some_and(|previous| previous != epoch);
        if data_lost {
            warn!(
                "Redis lost its data (its epoch changed): restoring every job this instance knows"
            );
        }
        // The bulk of the work while requests still go to memory...
        let mut restored = self.write_back(data_lost).await?;
        // ...then, with memory writes held for a moment, what changed meanwhile, and the switch.
        let _gate = self.shared.switch_gate.write().await;
        restored += self.write_back(false).await?;
        let mut queued = self.shared.memory.take_queue();
        if data_lost {
            // Redis's queue went with its data: queue again every pending job a worker would run.
            let pending =
                self.shared.memory.jobs(None).into_iter().filter(|job| {
                    job.status == JobStatus::Pending && job.kind == DEEP_RESEARCH_KIND
                });
            queued.extend(pending.map(|job| (job.job_id, job.priority)));
        }
        let leased = self.shared.memory.leased();
        self.shared
            .redis
            .restore_work(&queued, &leased, self.shared.lease)
            .await?;
        // Webhook deliveries queued here during the outage: Redis's deliverers take them on.
        let deliveries = self.shared.memory.deliveries();
        self.shared.redis.restore_deliveries(&deliveries).await?;
        let moved: Vec<String> = deliveries.into_iter().map(|d| d.delivery.id).collect();
        self.shared.memory.forget_deliveries(&moved);
        self.shared.degraded.store(false, Ordering::Release);
        Ok(restored)
    }

    /// Indexes a job written back and, when the write-back changed it to a finished state, keeps
    /// that state's history record (the transition that finished it ran in memory).
    async fn index_and_record(
        &self,
        job: &Job,
        outcome: Restored,
        now: &Job,
    ) -> Result<(), StoreError> {
        self.shared.redis.index(job).await?;
        match HistoryRecord::of(now) {
            Some(record) if outcome != Restored::Kept => {
                self.shared.redis.keep_history(&record).await
            }
            _ => Ok(()),
        }
    }

    /// Writes back the dirty jobs (or every known job), each merged with what Redis holds, and
    /// keeps the merge in memory too.
    async fn write_back(&self, everything: bool) -> Result<usize, StoreError> {
        let dirty: Vec<JobId> = std::mem::take(&mut *self.shared.dirty.lock().expect("dirty lock"))
            .into_iter()
            .collect();
        let jobs = self
            .shared
            .memory
            .jobs((!everything).then_some(dirty.as_slice()));
        let mut restored = 0;
        for (done, job) in jobs.iter().enumerate() {
            let written = match self.shared.redis.restore(job).await {
                Ok((outcome, now)) => self
                    .index_and_record(job, outcome, &now)
                    .await
                    .map(|()| (outcome, now)),
                Err(error) => Err(error),
            };
            match written {
                Ok((outcome, now)) => {
                    if now.superseded.len() > job.superseded.len() {
                        warn!(job_id = %job.job_id, kept = now.status.as_str(), superseded = ?now.superseded,
                            "two instances acknowledged different outcomes of a job during the outage; the first stands, the other is kept in `superseded`");
                    }
                    // Unless a change was made here meanwhile (it is dirty again and goes
                    // with the next pass, merged with what Redis now holds).
                    self.shared.memory.mirror_unless_changed(job.seq, &now);
                    self.shared.metrics.store().write_backs.increment(1);
                    restored += usize::from(outcome != Restored::Kept);
                }
                Err(error) => {
                    // Keep what is not written back yet for the next attempt.
                    self.shared
                        .dirty
                        .lock()
                        .expect("dirty lock")
                        .extend(jobs[done..].iter().map(|j| j.job_id));
                    return Err(error);
                }
            }
        }
        Ok(restored)
    }
}
