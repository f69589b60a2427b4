//! Where jobs live: the `JobStore` trait, its Redis and in-memory backends, and the choice between them.

mod memory;
mod redis;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

use crate::job::{Change, Job, JobId, Rejection};
use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// Why a store operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job not found")]
    NotFound,
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("redis is unavailable")]
    Redis(#[from] ::redis::RedisError),
    #[error("stored job is not valid JSON")]
    Corrupt(#[from] serde_json::Error),
}

/// What `DELETE /api/v4/admin/cleanup-jobs` did.
#[derive(Debug, Default, Serialize)]
pub struct CleanupReport {
    /// Expired jobs removed from the store (Redis expires its keys by itself: 0 there).
    pub purged_jobs: usize,
    /// Queue and lease entries removed because their job no longer exists.
    pub purged_index_entries: usize,
}

/// Which backend serves jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Redis,
    Memory,
}

/// The operations every backend provides, with the same semantics.
///
/// Every change is one atomic step: the transition is checked, `seq` bumped, the expiry renewed
/// and the new state published, with no read-modify-write across calls.
pub trait JobStore {
    /// Stores a new job and publishes it.
    fn create(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The job, unless it does not exist or has expired.
    fn get(&self, id: JobId) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;
    /// Applies `change` atomically; returns the job as it now is.
    fn apply(
        &self,
        id: JobId,
        change: Change,
    ) -> impl Future<Output = Result<Job, StoreError>> + Send;
    /// Puts a job on the work queue.
    fn enqueue(&self, id: JobId) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes the oldest queued job, leased to the caller for `lease`.
    fn claim(
        &self,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<JobId>, StoreError>> + Send;
    /// Gives up the lease on a job that has finished.
    fn release(&self, id: JobId) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes expired jobs and index entries that point at jobs that no longer exist.
    fn cleanup(&self) -> impl Future<Output = Result<CleanupReport, StoreError>> + Send;
}

/// The backend chosen at startup: Redis when it answers, the embedded memory store otherwise.
#[derive(Clone)]
pub enum Store {
    Redis(RedisStore),
    Memory(MemoryStore),
}

impl Store {
    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self {
            Store::Redis(_) => BackendKind::Redis,
            Store::Memory(_) => BackendKind::Memory,
        }
    }

    /// Whether Redis answers a PING right now (always false on the memory store).
    pub async fn redis_connected(&self) -> bool {
        match self {
            Store::Redis(store) => store.ping().await,
            Store::Memory(_) => false,
        }
    }
}

/// Forwards a call to whichever backend is in use.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Redis($store) => $call.await,
            Store::Memory($store) => $call.await,
        }
    };
}

impl JobStore for Store {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        delegate!(self, store => store.create(job))
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        delegate!(self, store => store.get(id))
    }

    async fn apply(&self, id: JobId, change: Change) -> Result<Job, StoreError> {
        delegate!(self, store => store.apply(id, change))
    }

    async fn enqueue(&self, id: JobId) -> Result<(), StoreError> {
        delegate!(self, store => store.enqueue(id))
    }

    async fn claim(&self, lease: Duration) -> Result<Option<JobId>, StoreError> {
        delegate!(self, store => store.claim(lease))
    }

    async fn release(&self, id: JobId) -> Result<(), StoreError> {
        delegate!(self, store => store.release(id))
    }

    async fn cleanup(&self) -> Result<CleanupReport, StoreError> {
        delegate!(self, store => store.cleanup())
    }
}
