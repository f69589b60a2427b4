//! Every store call of the failover store, sent to Redis, or to memory while Redis is away.

use super::Store;
use crate::idempotency::{Creation, IdempotencyKey};
use crate::job::{Change, HistoryRecord, Job, JobId, Priority};
use crate::stats::Counters;
use crate::store::listing::{HeadPage, HistoryPage, HistoryQuery, JobPage, ListQuery};
use crate::store::{History, JobStore, Stats, StoreError, Webhooks, WorkQueue};
use crate::webhook::delivery::{Attempt, Claimed, Delivery, Next};
use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

impl JobStore for Store {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let memory = &self.shared.memory;
        self.route(
            async |redis| {
                redis.create(job).await?;
                memory.mirror(job);
                Ok(())
            },
            async |memory| {
                memory.create(job).await?;
                self.mark_dirty(job.job_id);
                Ok(())
            },
        )
        .await
    }

    async fn create_once(&self, job: &Job, key: &IdempotencyKey) -> Result<Creation, StoreError> {
        let memory = &self.shared.memory;
        self.route(
            async |redis| {
                let creation = redis.create_once(job, key).await?;
                if creation == Creation::Created {
                    memory.mirror(job);
                }
                Ok(creation)
            },
            async |memory| {
                let creation = memory.create_once(job, key).await?;
                if creation == Creation::Created {
                    self.mark_dirty(job.job_id);
                }
                Ok(creation)
            },
        )
        .await
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let memory = &self.shared.memory;
        self.route(
            async |redis| {
                let job = redis.get(id).await?;
                if let Some(job) = &job {
                    memory.mirror(job);
                }
                Ok(job)
            },
            // A job this instance never saw may exist in Redis: not "not found", but unavailable.
            async |memory| match memory.get(id).await? {
                Some(job) => Ok(Some(job)),
                None => Err(StoreError::Unreachable),
            },
        )
        .await
    }

    async fn apply(&self, id: JobId, change: Change) -> Result<Job, StoreError> {
        let memory = &self.shared.memory;
        let retry = change.clone();
        self.route(
            async |redis| {
                let job = redis.apply(id, change).await?;
                memory.mirror(&job);
                Ok(job)
            },
            async |_| self.apply_in_memory(id, retry).await,
        )
        .await
        .inspect(|job| self.count_if_final(job))
    }

    async fn list(&self, query: &ListQuery) -> Result<JobPage, StoreError> {
        self.route(
            async |redis| redis.list(query).await,
            async |memory| memory.list(query).await,
        )
        .await
    }
}

impl WorkQueue for Store {
    async fn enqueue(&self, id: JobId, priority: Priority) -> Result<(), StoreError> {
        self.route(
            async |redis| redis.enqueue(id, priority).await,
            async |memory| memory.enqueue(id, priority).await,
        )
        .await
    }

    async fn claim(&self, lease: Duration) -> Result<Option<JobId>, StoreError> {
        self.route(
            async |redis| redis.claim(lease).await,
            async |memory| memory.claim(lease).await,
        )
        .await
    }

    async fn renew(&self, id: JobId, lease: Duration) -> Result<(), StoreError> {
        self.route(
            async |redis| redis.renew(id, lease).await,
            async |memory| memory.renew(id, lease).await,
        )
        .await
    }

    async fn release(&self, id: JobId) -> Result<(), StoreError> {
        // A lease may sit in either place (taken in memory during an outage): drop both.
        self.shared.memory.release(id).await?;
        self.route(async |redis| redis.release(id).await, async |_| Ok(()))
            .await
    }

    async fn expired_leases(&self, limit: usize) -> Result<Vec<JobId>, StoreError> {
        self.route(
            async |redis| redis.expired_leases(limit).await,
            async |memory| memory.expired_leases(limit).await,
        )
        .await
    }

    async fn try_sweep_lock(&self, hold: Duration) -> Result<bool, StoreError> {
        self.route(
            async |redis| redis.try_sweep_lock(hold).await,
            async |memory| memory.try_sweep_lock(hold).await,
        )
        .await
    }

    async fn purge_orphans(&self) -> Result<usize, StoreError> {
        self.route(
            async |redis| redis.purge_orphans().await,
            async |memory| memory.purge_orphans().await,
        )
        .await
    }

    async fn queued_len(&self) -> Result<usize, StoreError> {
        self.route(
            async |redis| redis.queued_len().await,
            async |memory| memory.queued_len().await,
        )
        .await
    }

    async fn work_in_hand(&self) -> Result<HashSet<JobId>, StoreError> {
        self.route(
            async |redis| redis.work_in_hand().await,
            async |memory| memory.work_in_hand().await,
        )
        .await
    }

    async fn index_heads(&self, start: usize, count: usize) -> Result<HeadPage, StoreError> {
        self.route(
            async |redis| redis.index_heads(start, count).await,
            async |memory| memory.index_heads(start, count).await,
        )
        .await
    }

    async fn try_reconcile_lock(&self, hold: Duration) -> Result<bool, StoreError> {
        self.route(
            async |redis| redis.try_reconcile_lock(hold).await,
            async |memory| memory.try_reconcile_lock(hold).await,
        )
        .await
    }
}

impl History for Store {
    async fn history_record(&self, id: JobId) -> Result<Option<HistoryRecord>, StoreError> {
        self.route(
            async |redis| redis.history_record(id).await,
            async |memory| memory.history_record(id).await,
        )
        .await
    }

    async fn history_page(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.route(
            async |redis| redis.history_page(query).await,
            async |memory| memory.history_page(query).await,
        )
        .await
    }

    async fn prune_history(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let in_memory = self.shared.memory.prune_history(before_ms, limit).await?;
        let in_redis = self
            .route(
                async |redis| redis.prune_history(before_ms, limit).await,
                async |_| Ok(0),
            )
            .await?;
        Ok(in_memory + in_redis)
    }
}

impl Webhooks for Store {
    async fn claim_deliveries(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.route(
            async |redis| redis.claim_deliveries(lease, limit).await,
            async |memory| memory.claim_deliveries(lease, limit).await,
        )
        .await
    }

    async fn record_attempt(
        &self,
        claimed: &Claimed,
        attempt: Option<&Attempt>,
        next: Next,
    ) -> Result<bool, StoreError> {
        self.route(
            async |redis| redis.record_attempt(claimed, attempt, next).await,
            async |memory| memory.record_attempt(claimed, attempt, next).await,
        )
        .await
    }

    async fn job_deliveries(&self, job: JobId) -> Result<Vec<Delivery>, StoreError> {
        self.route(
            async |redis| redis.job_deliveries(job).await,
            async |memory| memory.job_deliveries(job).await,
        )
        .await
    }

    async fn retry_delivery(&self, job: JobId, id: &str) -> Result<bool, StoreError> {
        self.route(
            async |redis| redis.retry_delivery(job, id).await,
            async |memory| memory.retry_delivery(job, id).await,
        )
        .await
    }
}

impl Stats for Store {
    async fn stats_hours(
        &self,
        hours: RangeInclusive<i64>,
    ) -> Result<Vec<Arc<Counters>>, StoreError> {
        let again = hours.clone();
        self.route(
            async |redis| redis.stats_hours(hours).await,
            async |memory| memory.stats_hours(again).await,
        )
        .await
    }
}
