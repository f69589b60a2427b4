//! Where jobs live: the `JobStore` and `WorkQueue` traits, their Redis and memory backends, and
//! the failover [`Store`] in front of both.

mod failover;
pub mod listing;
mod memory;
mod redis;

pub use self::failover::Store;
pub use self::memory::MemoryStore;
pub use self::redis::{
    ARRIVALS_KEY, HISTORY_KEY, HISTORY_RECORDS_KEY, INDEX_KEY, LEASES_KEY, LEGACY_QUEUE_KEY,
    MAX_INTERSECTED, QUEUE_KEY, REVOKED_SESSION_PREFIX, RedisHealth, RedisStore,
    SEARCH_WORD_PREFIX, SEARCH_WORDS_KEY, WEBHOOKS_DUE_KEY, job_endpoint_key,
};

use crate::idempotency::{Creation, IdempotencyKey};
use crate::job::{Change, HistoryRecord, Job, JobId, Priority, Rejection};
use crate::stats::Counters;
use crate::webhook::delivery::{Attempt, Claimed, Delivery, Next};
use listing::{HeadPage, HistoryPage, HistoryQuery, JobPage, ListQuery};
use serde::Serialize;
use std::collections::HashSet;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

/// Where the memory store's own changes go: this instance's local fan-out (the hub implements
/// it). Redis publishes the changes it stores itself.
pub trait Publisher: Send + Sync {
    /// Delivers `job`'s new state to this instance's watchers of it.
    fn publish_job(&self, job: &Job);
}

/// Why a store operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job not found")]
    NotFound,
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("stored job is not valid JSON")]
    Corrupt(#[from] serde_json::Error),
    /// Redis does not answer and this instance holds no copy of the job: it may well exist.
    #[error("the job store is unreachable and this instance has no copy of the job")]
    Unreachable,
    /// The memory store holds as much as `MEMORY_STORE_MAX_BYTES` allows of jobs only it has.
    #[error("the in-memory store is full")]
    Full,
    /// A write-back kept meeting newer changes of the job (it is retried with the next attempt).
    #[error("the job kept changing while it was written back")]
    Contended,
}

/// What `DELETE /api/v4/admin/cleanup-jobs` did.
#[derive(Debug, Default, Serialize)]
pub struct CleanupReport {
    /// Expired jobs removed from the in-memory store (Redis expires its keys by itself).
    pub purged_jobs: usize,
    /// Queue, lease and job-index entries removed because their job no longer exists.
    pub purged_index_entries: usize,
}

/// Which backend serves jobs right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Redis,
    Memory,
}

/// Jobs: every change is one atomic step — the transition is checked, `seq` bumped, the expiry
/// renewed and the new state published — with no read-modify-write across calls.
pub trait JobStore {
    /// Stores a new job and publishes it.
    fn create(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// [`JobStore::create`] unless a create with `key` came first: then nothing is stored, and
    /// the answer says which job that create made (or that it asked for something else). The
    /// key's record is stored in the same atomic step as the job.
    fn create_once(
        &self,
        job: &Job,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Creation, StoreError>> + Send;
    /// The job, unless it does not exist or has expired.
    fn get(&self, id: JobId) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;
    /// Applies `change` atomically; returns the job as it now is.
    fn apply(
        &self,
        id: JobId,
        change: Change,
    ) -> impl Future<Output = Result<Job, StoreError>> + Send;
    /// A page of jobs, newest first.
    fn list(&self, query: &ListQuery) -> impl Future<Output = Result<JobPage, StoreError>> + Send;
}

/// Finished jobs' compact records, kept for `HISTORY_RETENTION_DAYS` after the jobs expire.
/// They are written by the change that finishes a job, in the same atomic step.
pub trait History {
    /// The record of job `id`, if it finished within the retention.
    fn history_record(
        &self,
        id: JobId,
    ) -> impl Future<Output = Result<Option<HistoryRecord>, StoreError>> + Send;
    /// A page of records, newest first.
    fn history_page(
        &self,
        query: &HistoryQuery,
    ) -> impl Future<Output = Result<HistoryPage, StoreError>> + Send;
    /// Removes up to `limit` records of jobs that finished before `before_ms`; how many.
    fn prune_history(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// Where webhook deliveries go: every store queues them as the change that ends a job is made.
#[derive(Clone, Debug, Default)]
pub struct WebhookRouting {
    /// `WEBHOOK_URLS`: endpoints that get every job's events (after the job's own, if any).
    pub urls: Vec<String>,
    /// How long a delivery and its attempts are kept after their last change, in seconds; none
    /// are queued while it is 0 (webhooks off).
    pub retention_secs: u64,
}

/// Webhook deliveries: queued by the change that ends a job (in the same atomic step), claimed
/// for one attempt at a time by any instance, with every attempt recorded.
pub trait Webhooks {
    /// Up to `limit` deliveries due now, each claimed for `lease`: if its attempt is not
    /// recorded by then, the delivery is claimed again.
    fn claim_deliveries(
        &self,
        lease: Duration,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Claimed>, StoreError>> + Send;
    /// Records `attempt` of a claimed delivery (none: it was put off) and what follows; `false`
    /// when a later claim superseded this one, which then writes nothing.
    fn record_attempt(
        &self,
        claimed: &Claimed,
        attempt: Option<&Attempt>,
        next: Next,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The deliveries of job `job`, oldest first.
    fn job_deliveries(
        &self,
        job: JobId,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;
    /// Makes delivery `id` of job `job` due now again; `false` when there is no such delivery.
    fn retry_delivery(
        &self,
        job: JobId,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Analytics: counters of each hour (see [`crate::stats`]), added to by the creation or change
/// they count, in the same atomic step, and kept a little past 30 days.
pub trait Stats {
    /// The counters of each hour of `hours` (hours since the epoch), in that order; an hour
    /// nothing was counted in (or that has expired) is empty. Shared, so that the memory store
    /// hands them out without copying them under its lock.
    fn stats_hours(
        &self,
        hours: RangeInclusive<i64>,
    ) -> impl Future<Output = Result<Vec<Arc<Counters>>, StoreError>> + Send;
}

/// The work queue and the leases of running jobs.
pub trait WorkQueue {
    /// Queues a job at `priority`, behind the jobs of that priority already queued; a job
    /// already queued keeps its place.
    fn enqueue(
        &self,
        id: JobId,
        priority: Priority,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes the first queued job (highest priority, then earliest), leased to the caller for
    /// `lease`.
    fn claim(
        &self,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<JobId>, StoreError>> + Send;
    /// Extends a running job's lease to `lease` from now.
    fn renew(
        &self,
        id: JobId,
        lease: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Drops a job's lease.
    fn release(&self, id: JobId) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` jobs whose lease has run out.
    fn expired_leases(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<JobId>, StoreError>> + Send;
    /// Whether this instance may sweep for the next `hold` (one sweeper acts per interval).
    fn try_sweep_lock(
        &self,
        hold: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Removes queue and lease entries whose job no longer exists; how many.
    fn purge_orphans(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;
    /// How many jobs wait on the queue.
    fn queued_len(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;
    /// Every job on the queue or holding a lease: the queue is read first, so a job claimed
    /// between the two reads (moved from the queue to the leases) is in one of them.
    fn work_in_hand(&self) -> impl Future<Output = Result<HashSet<JobId>, StoreError>> + Send;
    /// The heads of the indexed jobs from position `start` (oldest first), `count` index entries
    /// at most; expired and corrupt records are left out (corrupt ones logged).
    fn index_heads(
        &self,
        start: usize,
        count: usize,
    ) -> impl Future<Output = Result<HeadPage, StoreError>> + Send;
    /// Whether this instance may reconcile for the next `hold` (one reconciler acts per period).
    fn try_reconcile_lock(
        &self,
        hold: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
