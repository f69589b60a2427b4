//! The memory store's work queue and leases, under the same lock as its jobs.

use super::{MemoryStore, State};
use crate::job::{JobId, Priority};
use crate::store::listing::{Cursor, HeadPage, JobHead};
use crate::store::{StoreError, WorkQueue};
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;

impl WorkQueue for MemoryStore {
    async fn enqueue(&self, id: JobId, priority: Priority) -> Result<(), StoreError> {
        self.lock().queue.push(id, priority);
        Ok(())
    }

    async fn claim(&self, lease: Duration) -> Result<Option<JobId>, StoreError> {
        let mut state = self.lock();
        let claimed = state.queue.pop();
        if let Some(id) = claimed {
            state.leases.insert(id, Instant::now() + lease);
        }
        Ok(claimed)
    }

    async fn renew(&self, id: JobId, lease: Duration) -> Result<(), StoreError> {
        if let Some(deadline) = self.lock().leases.get_mut(&id) {
            *deadline = Instant::now() + lease;
        }
        Ok(())
    }

    async fn release(&self, id: JobId) -> Result<(), StoreError> {
        self.lock().leases.remove(&id);
        Ok(())
    }

    async fn expired_leases(&self, limit: usize) -> Result<Vec<JobId>, StoreError> {
        let now = Instant::now();
        let state = self.lock();
        let expired = state
            .leases
            .iter()
            .filter(|(_, deadline)| **deadline <= now);
        Ok(expired.map(|(id, _)| *id).take(limit).collect())
    }

    async fn try_sweep_lock(&self, _hold: Duration) -> Result<bool, StoreError> {
        Ok(true) // one process: nobody to share the sweep with
    }

    async fn purge_orphans(&self) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let before = state.queue.len() + state.leases.len();
        let State {
            jobs,
            queue,
            leases,
            ..
        } = &mut *state;
        queue.retain(|id| jobs.contains_key(id));
        leases.retain(|id, _| jobs.contains_key(id));
        Ok(before - state.queue.len() - state.leases.len())
    }

    async fn queued_len(&self) -> Result<usize, StoreError> {
        Ok(self.lock().queue.len())
    }

    async fn work_in_hand(&self) -> Result<HashSet<JobId>, StoreError> {
        let state = self.lock();
        let leased = state.leases.keys();
        Ok(state.queue.iter().chain(leased).copied().collect())
    }

    async fn index_heads(&self, start: usize, count: usize) -> Result<HeadPage, StoreError> {
        let mut state = self.lock();
        let entries: Vec<Cursor> = state
            .index
            .iter()
            .skip(start)
            .take(count)
            .copied()
            .collect();
        let next = (entries.len() == count).then_some(start + count);
        let heads = entries
            .iter()
            .filter_map(|cursor| state.live_job(cursor.job_id).map(JobHead::from))
            .collect();
        Ok(HeadPage { heads, next })
    }

    async fn try_reconcile_lock(&self, _hold: Duration) -> Result<bool, StoreError> {
        Ok(true) // one process: nobody to share the pass with
    }
}
