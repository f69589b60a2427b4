//! The store the server uses: Redis while it answers, the memory store while it does not.
//!
//! Every Redis result is mirrored in memory, so when Redis goes away mid-run the instance keeps
//! serving the jobs it knows, from memory, with no 5xx; a job it never saw answers "unavailable"
//! (it may exist in Redis), not "not found". A recovery task retries Redis with capped
//! exponential backoff; when it answers, jobs changed meanwhile are merged into what Redis holds
//! ([`crate::job::Job::merged_with`]: what any instance acknowledged is kept, whatever order the
//! instances come back in), or every known job if Redis's data epoch shows it lost its data, and
//! the queue and leases held in memory move to Redis. Then the instance switches back.

mod resync;
mod routing;
mod sessions;

use super::redis::{RedisHealth, is_refusal};
use super::{BackendKind, CleanupReport, JobStore, MemoryStore, RedisStore, StoreError, WorkQueue};
use crate::job::{Change, Job, JobEvent, JobId};
use crate::metrics::Metrics;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// First wait before retrying Redis; doubled after each failure up to [`RECOVERY_MAX_BACKOFF`].
pub const RECOVERY_MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to reach Redis again.
pub const RECOVERY_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A cheap, clonable handle to the failover store.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    redis: RedisStore,
    memory: MemoryStore,
    /// True while requests go to the memory store because Redis does not answer.
    degraded: AtomicBool,
    /// True while a recovery task runs, so there is only ever one.
    recovering: AtomicBool,
    /// Jobs changed in memory while degraded, to write back.
    dirty: Mutex<HashSet<JobId>>,
    /// Redis's data epoch as last seen; another one after an outage means Redis lost its data.
    epoch: Mutex<Option<String>>,
    /// Held for reading by every request served from memory, and for writing by the last step
    /// of a switch back, so no change lands in memory after the final write-back.
    switch_gate: tokio::sync::RwLock<()>,
    /// The lease given to running jobs whose leases move from memory to Redis.
    lease: Duration,
    shutdown: CancellationToken,
    /// Signed-out sessions this instance knows of (see `sessions`).
    revoked: sessions::Revoked,
    /// Outages, write-backs and the jobs that reach a final state here are counted in it.
    metrics: Metrics,
}

/// Whether an error means Redis cannot be reached (rather than refusing this one request).
fn is_outage(error: &StoreError) -> bool {
    match error {
        StoreError::Redis(e) if is_refusal(e) => false,
        StoreError::Redis(e) => {
            e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || matches!(e.code(), Some("LOADING" | "MASTERDOWN" | "READONLY"))
        }
        _ => false,
    }
}

impl Store {
    /// A store on `redis`, falling back to `memory`; checks Redis at once and, if it does not
    /// answer, starts degraded and keeps trying in the background. Fails when Redis refuses
    /// (see [`is_refusal`]).
    pub async fn start(
        redis: RedisStore,
        memory: MemoryStore,
        lease: Duration,
        shutdown: CancellationToken,
        metrics: Metrics,
    ) -> Result<Self, StoreError> {
        let shared = Shared {
            redis,
            memory,
            degraded: AtomicBool::new(false),
            recovering: AtomicBool::new(false),
            dirty: Mutex::default(),
            epoch: Mutex::default(),
            switch_gate: tokio::sync::RwLock::new(()),
            lease,
            shutdown,
            revoked: sessions::Revoked::default(),
            metrics,
        };
        let store = Self {
            shared: Arc::new(shared),
        };
        match store.shared.redis.epoch().await {
            Ok(epoch) => {
                *store.shared.epoch.lock().expect("epoch lock") = Some(epoch);
                store.shared.redis.check_eviction_policy().await;
            }
            Err(StoreError::Redis(error)) if is_refusal(&error) => {
                return Err(StoreError::Redis(error));
            }
            Err(error) => store.enter_degraded(&error),
        }
        Ok(store)
    }

    /// Which backend serves requests right now.
    pub fn kind(&self) -> BackendKind {
        if self.is_degraded() {
            BackendKind::Memory
        } else {
            BackendKind::Redis
        }
    }

    /// True while Redis is unreachable and the memory store serves.
    pub fn is_degraded(&self) -> bool {
        self.shared.degraded.load(Ordering::Acquire)
    }

    /// Purges expired jobs and stale queue and lease entries.
    pub async fn cleanup(&self) -> Result<CleanupReport, StoreError> {
        let purged_jobs = self.shared.memory.purge_expired();
        let pruned_index = match self.is_degraded() {
            true => 0, // the memory store's index went with the jobs it purged
            false => self.shared.redis.prune_index().await?,
        };
        Ok(CleanupReport {
            purged_jobs,
            purged_index_entries: self.purge_orphans().await? + pruned_index,
        })
    }

    /// Removes expired jobs from memory and prunes the Redis job index; how many jobs.
    pub async fn purge_expired(&self) -> usize {
        if !self.is_degraded()
            && let Err(error) = self.shared.redis.prune_index().await
        {
            tracing::debug!(%error, "pruning the Redis job index failed");
        }
        // Redis expires its keys by itself; the memory store (and mirror) needs purging always.
        self.shared.memory.purge_expired()
    }

    /// Takes jobs created before `before_ms` out of the Redis search index, walking `words`
    /// words of its vocabulary on; how many entries went. (The memory store's index follows the
    /// jobs and records it holds.)
    pub async fn prune_search(&self, before_ms: i64, words: usize) -> Result<usize, StoreError> {
        match self.is_degraded() {
            true => Ok(0),
            false => self.shared.redis.prune_search(before_ms, words).await,
        }
    }

    /// Applies `change` as [`JobStore::apply`] does; the job's new state as an event whose JSON
    /// is serialised once: as Redis stored and published it, or here from the memory store.
    pub async fn apply_event(&self, id: JobId, change: Change) -> Result<JobEvent, StoreError> {
        let memory = &self.shared.memory;
        let retry = change.clone();
        self.route(
            async |redis| {
                let event = redis.apply_event(id, change).await?;
                memory.mirror_event(&event);
                Ok(event)
            },
            async |_| Ok(JobEvent::from(&self.apply_in_memory(id, retry).await?)),
        )
        .await
        .inspect(|event| self.count_event_if_final(event))
    }

    /// [`Store::count_if_final`] for an event: parsed into a job only when it is final.
    fn count_event_if_final(&self, event: &JobEvent) {
        if event.status.is_terminal()
            && let Ok(job) = serde_json::from_slice::<Job>(&event.json)
        {
            self.count_if_final(&job);
        }
    }

    /// Counts a job that a change has just made final (a final job refuses every change, so
    /// each is counted once, by the instance that finished it).
    pub(super) fn count_if_final(&self, job: &Job) {
        if !job.status.is_terminal() {
            return;
        }
        let finished = job.completed_at.unwrap_or(job.updated_at);
        let took = (finished.0 - job.created_at.0).to_std().unwrap_or_default();
        self.shared
            .metrics
            .jobs()
            .finished(&job.kind, job.status, took);
    }

    /// Redis's `used_memory` and `maxmemory`, unless Redis is away.
    pub async fn redis_memory(&self) -> Option<(u64, u64)> {
        if self.is_degraded() {
            return None;
        }
        self.shared.redis.memory().await.ok()
    }

    /// This store's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Applies `change` to the memory store while Redis is away, to be written back.
    async fn apply_in_memory(&self, id: JobId, change: Change) -> Result<Job, StoreError> {
        let job = match self.shared.memory.apply(id, change).await {
            Err(StoreError::NotFound) => Err(StoreError::Unreachable),
            other => other,
        }?;
        self.mark_dirty(id);
        Ok(job)
    }

    /// Whether Redis answers a PING right now.
    pub async fn redis_connected(&self) -> bool {
        matches!(self.shared.redis.health().await, RedisHealth::Up)
    }

    /// What a PING to Redis says right now.
    pub async fn redis_health(&self) -> RedisHealth {
        self.shared.redis.health().await
    }

    /// Switches to the memory store and starts the recovery task, once per outage.
    fn enter_degraded(&self, error: &StoreError) {
        if !self.shared.degraded.swap(true, Ordering::AcqRel) {
            self.shared.metrics.store().outages.increment(1);
            warn!(error = %error, cause = ?error, "Redis is unreachable: serving from the in-memory store until it is back");
        }
        if !self.shared.recovering.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().recover());
        }
    }

    fn mark_dirty(&self, id: JobId) {
        self.shared.dirty.lock().expect("dirty lock").insert(id);
    }

    /// Runs `on_redis` unless degraded; on an outage, degrades and runs `on_memory` instead.
    async fn route<T>(
        &self,
        on_redis: impl AsyncFnOnce(&RedisStore) -> Result<T, StoreError>,
        on_memory: impl AsyncFnOnce(&MemoryStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut failed = None;
        let on_redis = if self.is_degraded() {
            Some(on_redis)
        } else {
            match on_redis(&self.shared.redis).await {
                Err(error) if is_outage(&error) => {
                    self.enter_degraded(&error);
                    failed = Some(error);
                    None
                }
                other => return other,
            }
        };
        let _gate = self.shared.switch_gate.read().await;
        if !self.is_degraded() {
            // Switched back while this request waited at the gate: Redis has everything now.
            return match (on_redis, failed) {
                (Some(on_redis), _) => on_redis(&self.shared.redis).await,
                // Redis failed this request and came back before it could fall back: a write to
                // memory now would never be written back, so let the client retry.
                (None, error) => Err(error.expect("a failed request has its error")),
            };
        }
        on_memory(&self.shared.memory).await
    }
}
