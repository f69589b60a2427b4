//! An instance-local cache of polled jobs, kept exact by the pub/sub stream, so a poll needs no
//! Redis round trip.
//!
//! A job is cached only once this instance's relay is subscribed to its channel, and it was read
//! from the store after that: every later change then reaches the entry's subscription, and a
//! read takes the newest one. While the subscription is not relayed (the pub/sub connection is
//! down) entries are not trusted and reads go to the store. Entries idle for [`CACHE_IDLE`] are
//! dropped, which also ends their subscriptions.

use crate::hub::Subscription;
use crate::job::{JobEvent, JobId, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// The most jobs cached at once; past it, polls of other jobs go to the store.
pub const CACHE_MAX_JOBS: usize = 10_000;
/// How long a poll waits for the job's channel to be subscribed before it reads the store; past
/// it the poll is answered from the store without caching.
pub const CACHE_SUBSCRIBE_WAIT: Duration = Duration::from_millis(50);
/// How long a cached job stays without being read.
pub const CACHE_IDLE: Duration = Duration::from_secs(30);

/// A cheap, clonable handle to the cache.
#[derive(Clone, Default)]
pub struct JobCache {
    /// A std mutex: every operation is a short map access, never held across an `.await`.
    entries: Arc<Mutex<HashMap<JobId, Entry>>>,
}

struct Entry {
    event: JobEvent,
    /// Keeps the job's channel subscribed and receives its changes.
    subscription: Subscription,
    last_read: Instant,
}

impl JobCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Entry>> {
        self.entries.lock().expect("cache lock poisoned")
    }

    /// The job's current state, if it is cached and can be trusted.
    pub fn get(&self, job_id: JobId) -> Option<JobEvent> {
        let mut entries = self.lock();
        let entry = entries.get_mut(&job_id)?;
        if !entry.subscription.is_relayed() {
            entries.remove(&job_id);
            return None;
        }
        if let Some(newer) = entry.subscription.newest()
            && newer.seq > entry.event.seq
        {
            entry.event = newer;
        }
        if entry.event.expires_at <= Timestamp::now() {
            entries.remove(&job_id);
            return None;
        }
        entry.last_read = Instant::now();
        Some(entry.event.clone())
    }

    /// Caches `event`, read from the store after `subscription` was relayed.
    pub fn insert(&self, subscription: Subscription, event: JobEvent) {
        let mut entries = self.lock();
        if entries.len() >= CACHE_MAX_JOBS {
            return;
        }
        let entry = Entry {
            event,
            subscription,
            last_read: Instant::now(),
        };
        entries.insert(entry.event.job_id, entry);
    }

    /// A state this instance has just written, so its own next read sees it at once.
    pub fn offer(&self, event: &JobEvent) {
        if let Some(entry) = self.lock().get_mut(&event.job_id)
            && event.seq > entry.event.seq
        {
            entry.event = event.clone();
        }
    }

    /// Drops entries not read for [`CACHE_IDLE`]; how many are left.
    pub fn evict_idle(&self) -> usize {
        let mut entries = self.lock();
        entries.retain(|_, entry| entry.last_read.elapsed() < CACHE_IDLE);
        entries.len()
    }
}
