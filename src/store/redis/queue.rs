//! The Redis work queue and leases: every key under the `{jobcast}` hash tag (one Cluster slot).

use super::RedisStore;
use crate::job::{JobId, Priority};
use crate::store::listing::HeadPage;
use crate::store::{StoreError, WorkQueue};
use redis::AsyncCommands;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

/// The work queue: a sorted set of job ids scored by priority band plus arrival (see
/// [`Priority::band`]), claimed lowest score first.
pub const QUEUE_KEY: &str = "{jobcast}:queued";
/// The list versions before priorities queued on (oldest at the right); claims drain it.
pub const LEGACY_QUEUE_KEY: &str = "{jobcast}:queue";
/// The counter that numbers arrivals on the queue, for first come first served in a priority.
pub const ARRIVALS_KEY: &str = "{jobcast}:arrivals";
/// Running jobs, scored by lease deadline in milliseconds since the epoch (Redis's clock).
pub const LEASES_KEY: &str = "{jobcast}:leases";
/// Held by the instance that sweeps expired leases this interval.
pub const SWEEP_LOCK_KEY: &str = "{jobcast}:sweeper";
/// Held by the instance that reconciles the index with the queue and leases this period.
pub const RECONCILE_LOCK_KEY: &str = "{jobcast}:reconciler";

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl WorkQueue for RedisStore {
    async fn enqueue(&self, id: JobId, priority: Priority) -> Result<(), StoreError> {
        let _: i64 = self
            .scripts
            .enqueue
            .key(QUEUE_KEY)
            .key(ARRIVALS_KEY)
            .arg(id.to_string())
            .arg(priority.band())
            .invoke_async(&mut self.connection())
            .await?;
        Ok(())
    }

    async fn claim(&self, lease: Duration) -> Result<Option<JobId>, StoreError> {
        let claimed: Option<String> = self
            .scripts
            .claim
            .key(QUEUE_KEY)
            .key(LEASES_KEY)
            .key(LEGACY_QUEUE_KEY)
            .key(ARRIVALS_KEY)
            .arg(millis(lease))
            .arg(Priority::default().band())
            .invoke_async(&mut self.connection())
            .await?;
        // An entry that is not a job id was not put there by us; drop it rather than loop on it.
        Ok(claimed.and_then(|id| id.parse().ok()))
    }

    async fn renew(&self, id: JobId, lease: Duration) -> Result<(), StoreError> {
        let _: i64 = self
            .scripts
            .renew
            .key(LEASES_KEY)
            .arg(id.to_string())
            .arg(millis(lease))
            .invoke_async(&mut self.connection())
            .await?;
        Ok(())
    }

    async fn release(&self, id: JobId) -> Result<(), StoreError> {
        let _: () = self.connection().zrem(LEASES_KEY, id.to_string()).await?;
        Ok(())
    }

    async fn expired_leases(&self, limit: usize) -> Result<Vec<JobId>, StoreError> {
        let ids: Vec<String> = self
            .scripts
            .expired
            .key(LEASES_KEY)
            .arg(limit)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
    }

    async fn try_sweep_lock(&self, hold: Duration) -> Result<bool, StoreError> {
        self.try_lock(SWEEP_LOCK_KEY, hold).await
    }

    async fn queued_len(&self) -> Result<usize, StoreError> {
        Ok(self.connection().zcard(QUEUE_KEY).await?)
    }

    async fn work_in_hand(&self) -> Result<HashSet<JobId>, StoreError> {
        let mut connection = self.connection();
        // An older version's list first: a claim moves its jobs to the queue, then the leases.
        let legacy: Vec<String> = connection.lrange(LEGACY_QUEUE_KEY, 0, -1).await?;
        let queued: Vec<String> = connection.zrange(QUEUE_KEY, 0, -1).await?;
        let leased: Vec<String> = connection.zrange(LEASES_KEY, 0, -1).await?;
        let ids = legacy.iter().chain(&queued).chain(&leased);
        Ok(ids.filter_map(|id| id.parse().ok()).collect())
    }

    async fn index_heads(&self, start: usize, count: usize) -> Result<HeadPage, StoreError> {
        self.read_heads(start, count).await
    }

    async fn try_reconcile_lock(&self, hold: Duration) -> Result<bool, StoreError> {
        self.try_lock(RECONCILE_LOCK_KEY, hold).await
    }

    async fn purge_orphans(&self) -> Result<usize, StoreError> {
        let orphans = self.orphaned_entries().await?;
        if orphans.is_empty() {
            return Ok(0);
        }
        let mut pipeline = redis::pipe();
        for id in &orphans {
            pipeline.zrem(QUEUE_KEY, id).zrem(LEASES_KEY, id);
        }
        let removed: Vec<usize> = pipeline.query_async(&mut self.connection()).await?;
        Ok(removed.iter().sum())
    }
}

impl RedisStore {
    /// Takes `key` for `hold` unless another instance holds it.
    async fn try_lock(&self, key: &str, hold: Duration) -> Result<bool, StoreError> {
        let acquired: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(std::process::id())
            .arg("NX")
            .arg("PX")
            .arg(millis(hold))
            .query_async(&mut self.connection())
            .await?;
        Ok(acquired.is_some())
    }

    /// Queue and lease entries whose job key no longer exists.
    async fn orphaned_entries(&self) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection();
        let queued: Vec<String> = connection.zrange(QUEUE_KEY, 0, -1).await?;
        let leased: Vec<String> = connection.zrange(LEASES_KEY, 0, -1).await?;
        let ids: Vec<String> = queued
            .into_iter()
            .chain(leased)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(ids);
        }
        let mut pipeline = redis::pipe();
        for id in &ids {
            pipeline.exists(JobId::key_of(id));
        }
        let exists: Vec<bool> = pipeline.query_async(&mut connection).await?;
        Ok(ids
            .into_iter()
            .zip(exists)
            .filter(|(_, exists)| !exists)
            .map(|(id, _)| id)
            .collect())
    }
}
