//! The memory store's history: records of finished jobs, in order of when they finished.

use super::MemoryStore;
use crate::job::{HistoryRecord, JobId};
use crate::store::listing::{Cursor, HistoryPage, HistoryQuery, collect_history};
use crate::store::{History, StoreError};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The records, and their order (a [`Cursor`] whose `created_ms` is when the job finished).
#[derive(Default)]
pub struct Records {
    order: BTreeSet<Cursor>,
    records: HashMap<JobId, HistoryRecord>,
}

impl Records {
    pub fn insert(&mut self, record: HistoryRecord) {
        let cursor = place(&record);
        if let Some(old) = self.records.insert(record.job_id, record) {
            self.order.remove(&place(&old));
        }
        self.order.insert(cursor);
    }

    /// Whether job `id` has a record here.
    pub fn holds(&self, id: JobId) -> bool {
        self.records.contains_key(&id)
    }
}

fn place(record: &HistoryRecord) -> Cursor {
    Cursor {
        created_ms: record.finished_ms(),
        job_id: record.job_id,
    }
}

impl History for MemoryStore {
    async fn history_record(&self, id: JobId) -> Result<Option<HistoryRecord>, StoreError> {
        Ok(self.lock().history.records.get(&id).cloned())
    }

    async fn history_page(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let found = self.found(query.search.as_ref());
        collect_history(query, |after, count| {
            std::future::ready(Ok(self.read_history(query, found.as_ref(), after, count)))
        })
        .await
    }

    async fn prune_history(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let mut pruned = 0;
        while pruned < limit
            && let Some(oldest) = state.history.order.first().copied()
            && oldest.created_ms < before_ms
        {
            state.history.order.remove(&oldest);
            state.history.records.remove(&oldest.job_id);
            state.forget_if_gone(oldest.job_id);
            pruned += 1;
        }
        Ok(pruned)
    }
}

impl MemoryStore {
    /// Up to `count` entries strictly after `after` (newest first), up to `until_ms`, of the
    /// jobs `found` holds (all when `None`).
    fn read_history(
        &self,
        query: &HistoryQuery,
        found: Option<&HashSet<JobId>>,
        after: Option<Cursor>,
        count: usize,
    ) -> Vec<(Cursor, Option<HistoryRecord>)> {
        let state = self.lock();
        let history = &state.history;
        let until = query.until_ms.map(|ms| Cursor {
            created_ms: ms,
            job_id: JobId::max(),
        });
        let end = match (after, until) {
            (Some(after), Some(until)) => Some(after.min(until)),
            (after, until) => after.or(until),
        };
        let entries: Box<dyn Iterator<Item = &Cursor>> = match end {
            Some(end) if Some(end) == after => Box::new(history.order.range(..end).rev()),
            Some(end) => Box::new(history.order.range(..=end).rev()),
            None => Box::new(history.order.iter().rev()),
        };
        entries
            .filter(|cursor| found.is_none_or(|found| found.contains(&cursor.job_id)))
            .take(count)
            .map(|cursor| (*cursor, history.records.get(&cursor.job_id).cloned()))
            .collect()
    }
}
