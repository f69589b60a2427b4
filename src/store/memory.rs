//! The embedded in-memory backend: same semantics as Redis, under one lock, for running without it.

use super::{CleanupReport, JobStore, StoreError};
use crate::hub::{Hub, JobEvent};
use crate::job::{Change, Job, JobId, Outcome, Timestamp};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A cheap, clonable handle to the in-memory jobs, queue and leases.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// A std mutex: every operation is a short, synchronous critical section with no `.await`.
    state: Mutex<State>,
    /// Where changes are published; subscribers on this instance are the only ones there are.
    hub: Hub,
    /// How long a job lives after its last change.
    ttl: Duration,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, StoredJob>,
    /// Jobs ordered by expiry, so purging touches only what has expired.
    expirations: BTreeSet<(Instant, JobId)>,
    queue: VecDeque<JobId>,
    /// Claimed jobs and when their lease runs out.
    leases: HashMap<JobId, Instant>,
}

struct StoredJob {
    job: Job,
    expires: Instant,
}

impl MemoryStore {
    /// An empty store whose jobs expire `ttl_secs` after their last change.
    pub fn new(hub: Hub, ttl_secs: u64) -> Self {
        let shared = Shared {
            state: Mutex::default(),
            hub,
            ttl: Duration::from_secs(ttl_secs),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .expect("memory store lock poisoned")
    }

    fn ttl_secs(&self) -> u64 {
        self.shared.ttl.as_secs()
    }

    fn store_and_publish(&self, state: &mut State, job: Job) {
        let expires = Instant::now() + self.shared.ttl;
        let id = job.job_id;
        self.shared.hub.publish(JobEvent::from(&job));
        if let Some(old) = state.jobs.insert(id, StoredJob { job, expires }) {
            state.expirations.remove(&(old.expires, id));
        }
        state.expirations.insert((expires, id));
    }
}

impl State {
    fn live_job(&self, id: JobId) -> Option<&Job> {
        let stored = self.jobs.get(&id)?;
        (stored.expires > Instant::now()).then_some(&stored.job)
    }

    fn purge_expired(&mut self) -> usize {
        let now = Instant::now();
        let mut purged = 0;
        while let Some(&(expires, id)) = self.expirations.first() {
            if expires > now {
                break;
            }
            self.expirations.pop_first();
            self.jobs.remove(&id);
            purged += 1;
        }
        purged
    }

    fn purge_orphaned_entries(&mut self) -> usize {
        let before = self.queue.len() + self.leases.len();
        let jobs = &self.jobs;
        self.queue.retain(|id| jobs.contains_key(id));
        self.leases.retain(|id, _| jobs.contains_key(id));
        before - self.queue.len() - self.leases.len()
    }
}

impl JobStore for MemoryStore {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let mut state = self.lock();
        self.store_and_publish(&mut state, job.clone());
        Ok(())
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().live_job(id).cloned())
    }

    async fn apply(&self, id: JobId, change: Change) -> Result<Job, StoreError> {
        let mut state = self.lock();
        let current = state.live_job(id).ok_or(StoreError::NotFound)?;
        match change.apply(current, Timestamp::now(), self.ttl_secs())? {
            Outcome::Unchanged => Ok(current.clone()),
            Outcome::Applied(next) => {
                self.store_and_publish(&mut state, next.clone());
                Ok(next)
            }
        }
    }

    async fn enqueue(&self, id: JobId) -> Result<(), StoreError> {
        self.lock().queue.push_back(id);
        Ok(())
    }

    async fn claim(&self, lease: Duration) -> Result<Option<JobId>, StoreError> {
        let mut state = self.lock();
        let claimed = state.queue.pop_front();
        if let Some(id) = claimed {
            state.leases.insert(id, Instant::now() + lease);
        }
        Ok(claimed)
    }

    async fn release(&self, id: JobId) -> Result<(), StoreError> {
        self.lock().leases.remove(&id);
        Ok(())
    }

    async fn cleanup(&self) -> Result<CleanupReport, StoreError> {
        let mut state = self.lock();
        let purged_jobs = state.purge_expired();
        let purged_index_entries = state.purge_orphaned_entries();
        Ok(CleanupReport {
            purged_jobs,
            purged_index_entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;
    use std::collections::HashSet;

    fn pending_job(ttl_secs: u64) -> Job {
        let input = RawValue::from_string("{}".to_owned()).unwrap();
        Job::new("test", input, Timestamp::now(), ttl_secs)
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_expires_after_its_ttl_and_cleanup_purges_it() {
        let store = MemoryStore::new(Hub::default(), 60);
        let job = pending_job(60);
        store.create(&job).await.unwrap();
        store.enqueue(job.job_id).await.unwrap();

        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(store.get(job.job_id).await.unwrap().is_some());

        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(store.get(job.job_id).await.unwrap().is_none());
        let report = store.cleanup().await.unwrap();
        assert_eq!(report.purged_jobs, 1);
        assert_eq!(report.purged_index_entries, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn every_change_renews_the_ttl() {
        let store = MemoryStore::new(Hub::default(), 60);
        let job = pending_job(60);
        store.create(&job).await.unwrap();
        tokio::time::advance(Duration::from_secs(50)).await;
        let step = "Working".to_owned();
        let change = Change::Progress {
            progress: 10,
            step: Some(step),
            fence: None,
        };
        store.apply(job.job_id, change).await.unwrap();
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(store.get(job.job_id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn each_queued_job_is_claimed_once() {
        let store = MemoryStore::new(Hub::default(), 60);
        for _ in 0..10 {
            store.enqueue(JobId::new()).await.unwrap();
        }
        let lease = Duration::from_secs(30);
        let mut claimed = Vec::new();
        while let Some(id) = store.claim(lease).await.unwrap() {
            claimed.push(id);
        }
        assert_eq!(claimed.len(), 10);
        assert_eq!(claimed.iter().collect::<HashSet<_>>().len(), 10);
    }
}
