//! The embedded in-memory backend: same semantics as Redis, under one lock.
//!
//! It serves on its own when Redis is unreachable, and while Redis serves it mirrors every job
//! this instance reads or writes, so an outage can continue from the last states seen here.
//!
//! Its memory is bounded (`MEMORY_STORE_MAX_BYTES`): past the bound, the mirrored copies touched
//! least recently are dropped first (Redis has them). What only this store holds — jobs created
//! or changed here during an outage, not yet written back — is never dropped; once that alone
//! fills the bound, new jobs are refused (`503`) until Redis is back.

mod history;
mod queue;
mod ready;
mod search;
mod stats;
#[cfg(test)]
mod tests;
mod webhooks;

use super::listing::{Cursor, JobPage, ListQuery, collect_page};
use super::{JobStore, Publisher, StoreError, WebhookRouting};
use crate::idempotency::{Creation, IdempotencyKey};
use crate::job::{
    Change, HistoryRecord, Job, JobEvent, JobId, JobStatus, Outcome, Priority, Timestamp,
};
use crate::search::{Search, job_words};
use crate::stats::tally;
use bytes::Bytes;
use ready::Ready;
use std::collections::{BTreeSet, HashMap, HashSet};
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
    /// Where changes made here are published (mirrored states are published by Redis instead).
    publisher: Arc<dyn Publisher>,
    /// How long a job lives after its last change.
    ttl: Duration,
    /// The most the jobs held here may take, by [`footprint`].
    max_bytes: usize,
    /// Whether finishing a job keeps its history record (`HISTORY_RETENTION_DAYS` above 0).
    keeps_history: bool,
    /// Where webhook deliveries go; none are queued while its retention is 0.
    webhooks: WebhookRouting,
}

/// What a job costs here beyond its text: the record, its map, expiry, index and recency entries.
pub const JOB_OVERHEAD_BYTES: usize = 512;

/// About how much memory `job` takes here.
fn footprint(job: &Job) -> usize {
    let superseded: usize = job
        .superseded
        .iter()
        .map(|s| s.error.as_ref().map_or(0, String::len) + s.result.as_ref().map_or(0, String::len))
        .sum();
    JOB_OVERHEAD_BYTES
        + job.kind.len()
        + job.current_step.len()
        + job.error.as_ref().map_or(0, String::len)
        + job.input.get().len()
        + job.result.as_ref().map_or(0, |r| r.get().len())
        + superseded
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, StoredJob>,
    /// Jobs ordered by expiry, so purging touches only what has expired.
    expirations: BTreeSet<(Instant, JobId)>,
    /// Jobs ordered by creation, for listing newest first.
    index: BTreeSet<Cursor>,
    queue: Ready,
    /// Running jobs and when their lease runs out.
    leases: HashMap<JobId, Instant>,
    /// Mirrored copies by when they were last touched, oldest first: what goes when full.
    evictable: BTreeSet<(u64, JobId)>,
    /// The clock of `evictable`.
    touches: u64,
    /// The sum of the [`footprint`]s of `jobs`.
    bytes: usize,
    /// Idempotency records (see [`IdempotencyKey`]): what each holds, and when it expires.
    idempotency: HashMap<String, (String, Instant)>,
    /// The history: records of finished jobs, in order of when they finished.
    history: history::Records,
    /// The words each job (live or in the history) is found by.
    search: search::Words,
    /// Webhook deliveries and their attempts.
    webhooks: webhooks::Deliveries,
    /// The analytics: the counters of each hour, as Redis keeps them.
    stats: stats::Hours,
}

struct StoredJob {
    doc: Doc,
    /// The state's `seq`, readable without parsing `doc`.
    seq: u64,
    /// Its index entry (creation never changes).
    cursor: Cursor,
    /// Its [`footprint`], as added to `State::bytes`.
    bytes: usize,
    expires: Instant,
    /// When this copy of a state Redis holds was last touched; `None` for a state only this
    /// store holds (made here during an outage), which is never evicted.
    mirrored: Option<u64>,
}

/// A job as held here: parsed, or a mirrored state as Redis serialised it, parsed on first use.
enum Doc {
    Job(Job),
    Json { json: Bytes, seq: u64, id: JobId },
}

impl Doc {
    fn seq(&self) -> u64 {
        match self {
            Self::Job(job) => job.seq,
            Self::Json { seq, .. } => *seq,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Job(job) => footprint(job),
            Self::Json { json, .. } => JOB_OVERHEAD_BYTES + json.len(),
        }
    }

    /// The job; `None` (and a warning) if the JSON is not one.
    fn parse(&self) -> Option<Job> {
        match self {
            Self::Job(job) => Some(job.clone()),
            Self::Json { json, id, .. } => match serde_json::from_slice(json) {
                Ok(job) => Some(job),
                Err(error) => {
                    tracing::warn!(job_id = %id, %error, "a mirrored job does not parse; dropped");
                    None
                }
            },
        }
    }
}

/// The instant a job stored with `expires_at` expires.
fn expiry(expires_at: Timestamp) -> Instant {
    let left = (expires_at.0 - Timestamp::now().0)
        .to_std()
        .unwrap_or_default();
    Instant::now() + left
}

impl MemoryStore {
    /// An empty store whose jobs expire `ttl_secs` after their last change, holding at most
    /// about `max_bytes` of them.
    pub fn new(publisher: Arc<dyn Publisher>, ttl_secs: u64, max_bytes: usize) -> Self {
        let shared = Shared {
            state: Mutex::default(),
            publisher,
            ttl: Duration::from_secs(ttl_secs),
            max_bytes,
            keeps_history: true,
            webhooks: WebhookRouting::default(),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// This store, queueing webhook deliveries as `routing` says; only before it is shared.
    pub fn with_webhooks(mut self, routing: WebhookRouting) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("set before the store is shared")
            .webhooks = routing;
        self
    }

    /// This store, keeping history records or not; only before it is shared.
    pub fn keeping_history(mut self, keep: bool) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("set before the store is shared")
            .keeps_history = keep;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .expect("memory store lock poisoned")
    }

    /// Keeps a copy of a state that Redis holds (and has published), unless a newer one is here.
    pub fn mirror(&self, job: &Job) {
        let mut state = self.lock();
        let newer_here = state
            .jobs
            .get(&job.job_id)
            .is_some_and(|stored| stored.seq > job.seq);
        if !newer_here {
            state.insert(job.clone(), expiry(job.expires_at), true);
            state.evict_down_to(self.shared.max_bytes);
        }
    }

    /// [`MemoryStore::mirror`] for the state a write-back left in Redis, unless the copy here
    /// changed since it was read for the write-back (its `seq` is no longer `read_seq`): that
    /// change was acknowledged and must not be overwritten by a state of the same `seq`.
    pub fn mirror_unless_changed(&self, read_seq: u64, job: &Job) {
        let mut state = self.lock();
        let changed = state
            .jobs
            .get(&job.job_id)
            .is_some_and(|stored| stored.seq != read_seq);
        if !changed {
            state.insert(job.clone(), expiry(job.expires_at), true);
            state.evict_down_to(self.shared.max_bytes);
        }
    }

    /// [`MemoryStore::mirror`] for a state Redis stored, as its serialised event: kept as the
    /// JSON it is, read only if an outage needs it (every progress report passes here).
    pub fn mirror_event(&self, event: &JobEvent) {
        let mut state = self.lock();
        let newer_here = state
            .jobs
            .get(&event.job_id)
            .is_some_and(|stored| stored.seq > event.seq);
        if newer_here {
            return;
        }
        let doc = Doc::Json {
            json: event.json.clone(),
            seq: event.seq,
            id: event.job_id,
        };
        let expires = expiry(event.expires_at);
        match state.jobs.get(&event.job_id).map(|stored| stored.cursor) {
            Some(cursor) => state.put(doc, cursor, expires, true),
            // New here: its index entry needs its creation time.
            None => {
                if let Some(job) = doc.parse() {
                    state.insert(job, expires, true);
                }
            }
        }
        state.evict_down_to(self.shared.max_bytes);
    }

    /// About how much memory the jobs held here take, by [`footprint`].
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The live jobs among `ids`, or all live jobs when `ids` is `None`.
    pub fn jobs(&self, ids: Option<&[JobId]>) -> Vec<Job> {
        let mut state = self.lock();
        let ids = match ids {
            Some(ids) => ids.to_vec(),
            None => state.jobs.keys().copied().collect(),
        };
        ids.into_iter()
            .filter_map(|id| state.live_job(id).cloned())
            .collect()
    }

    /// Empties the queue, returning what was on it (with priorities, in claim order), to hand
    /// it to Redis.
    pub fn take_queue(&self) -> Vec<(JobId, Priority)> {
        self.lock().queue.drain()
    }

    /// The jobs that hold a lease here.
    pub fn leased(&self) -> Vec<JobId> {
        self.lock().leases.keys().copied().collect()
    }

    /// Stores a new job, room permitting (see [`MemoryStore::new`]).
    fn create_locked(&self, state: &mut State, job: &Job) -> Result<(), StoreError> {
        state.evict_down_to(self.shared.max_bytes.saturating_sub(footprint(job)));
        if state.bytes + footprint(job) > self.shared.max_bytes {
            return Err(StoreError::Full);
        }
        self.store_and_publish(state, job.clone());
        state.stats.add(tally::of_creation(job));
        Ok(())
    }

    /// Queues the webhook deliveries of `job`'s change, if it ended the job.
    fn queue_webhooks(&self, state: &mut State, job: &Job) {
        let routing = &self.shared.webhooks;
        if routing.retention_secs == 0 || !job.status.is_terminal() {
            return;
        }
        let urls: Vec<String> = job
            .webhook_url
            .iter()
            .chain(&routing.urls)
            .cloned()
            .collect();
        let retention = Duration::from_secs(routing.retention_secs);
        state
            .webhooks
            .enqueue(job, &job.to_json(), &urls, retention);
    }

    fn store_and_publish(&self, state: &mut State, job: Job) {
        self.shared.publisher.publish_job(&job);
        state.insert(job, Instant::now() + self.shared.ttl, false);
        state.evict_down_to(self.shared.max_bytes);
    }
}

impl State {
    /// Stores `job`, as a copy of what Redis holds when `mirrored`.
    fn insert(&mut self, job: Job, expires: Instant, mirrored: bool) {
        let cursor = Cursor::of(&job);
        if !self.search.holds(job.job_id) {
            self.search.add(job.job_id, job_words(&job.input));
        }
        self.put(Doc::Job(job), cursor, expires, mirrored);
    }

    /// Stores `doc`, indexed at `cursor`, replacing what was here of the job.
    fn put(&mut self, doc: Doc, cursor: Cursor, expires: Instant, mirrored: bool) {
        let id = cursor.job_id;
        self.remove(id);
        self.index.insert(cursor);
        self.expirations.insert((expires, id));
        let bytes = doc.bytes();
        self.bytes += bytes;
        let mirrored = mirrored.then(|| {
            self.touches += 1;
            self.evictable.insert((self.touches, id));
            self.touches
        });
        let stored = StoredJob {
            seq: doc.seq(),
            doc,
            cursor,
            bytes,
            expires,
            mirrored,
        };
        self.jobs.insert(id, stored);
    }

    fn remove(&mut self, id: JobId) -> Option<StoredJob> {
        let old = self.jobs.remove(&id)?;
        self.expirations.remove(&(old.expires, id));
        self.index.remove(&old.cursor);
        if let Some(touched) = old.mirrored {
            self.evictable.remove(&(touched, id));
        }
        self.bytes -= old.bytes;
        Some(old)
    }

    /// Drops the least recently touched mirrored copies until the jobs fit in `max_bytes`.
    fn evict_down_to(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            let Some(&(_, id)) = self.evictable.first() else {
                return; // what is left only this store holds
            };
            self.remove(id);
            self.forget_if_gone(id);
        }
    }

    /// Takes job `id` out of the search index unless it or its history record is still here.
    fn forget_if_gone(&mut self, id: JobId) {
        if !self.jobs.contains_key(&id) && !self.history.holds(id) {
            self.search.forget(id);
        }
    }

    /// The job, if it is here and has not expired; a JSON copy is parsed now, once.
    fn live_job(&mut self, id: JobId) -> Option<&Job> {
        let stored = self.jobs.get_mut(&id)?;
        if stored.expires <= Instant::now() {
            return None;
        }
        if let Doc::Json { .. } = stored.doc {
            match stored.doc.parse() {
                Some(job) => stored.doc = Doc::Job(job),
                None => {
                    self.remove(id);
                    return None;
                }
            }
        }
        match &self.jobs.get(&id)?.doc {
            Doc::Job(job) => Some(job),
            Doc::Json { .. } => None,
        }
    }
}

impl JobStore for MemoryStore {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        self.create_locked(&mut self.lock(), job)
    }

    async fn create_once(&self, job: &Job, key: &IdempotencyKey) -> Result<Creation, StoreError> {
        let mut state = self.lock();
        let now = Instant::now();
        if let Some((held, _)) = state
            .idempotency
            .get(&key.record)
            .filter(|(_, expires)| *expires > now)
        {
            return Ok(key.replay(held));
        }
        self.create_locked(&mut state, job)?;
        let expires = now + Duration::from_secs(key.ttl_secs);
        let record = (key.record_value(job.job_id), expires);
        state.idempotency.insert(key.record.clone(), record);
        Ok(Creation::Created)
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().live_job(id).cloned())
    }

    async fn apply(&self, id: JobId, change: Change) -> Result<Job, StoreError> {
        let mut state = self.lock();
        let current = state.live_job(id).ok_or(StoreError::NotFound)?;
        let ttl_secs = self.shared.ttl.as_secs();
        match change.apply(current, Timestamp::now(), ttl_secs)? {
            Outcome::Unchanged => Ok(current.clone()),
            Outcome::Applied(next) => {
                let counted = tally::of_change(current, &next);
                if next.status == JobStatus::Pending {
                    state.queue.reprioritise(id, next.priority);
                }
                if self.shared.keeps_history
                    && let Some(record) = HistoryRecord::of(&next)
                {
                    state.history.insert(record);
                }
                self.queue_webhooks(&mut state, &next);
                if let Some(counted) = counted {
                    state.stats.add(counted);
                }
                self.store_and_publish(&mut state, (*next).clone());
                Ok(*next)
            }
        }
    }

    async fn list(&self, query: &ListQuery) -> Result<JobPage, StoreError> {
        let found = self.found(query.search.as_ref());
        collect_page(query, |after, count| {
            std::future::ready(Ok(self.read_index(found.as_ref(), after, count)))
        })
        .await
    }
}

impl MemoryStore {
    /// Removes jobs whose TTL has run out (and their index entries); how many.
    pub fn purge_expired(&self) -> usize {
        let mut state = self.lock();
        let now = Instant::now();
        let mut purged = 0;
        while let Some(&(expires, id)) = state.expirations.first() {
            if expires > now {
                break;
            }
            state.remove(id);
            state.forget_if_gone(id);
            purged += 1;
        }
        state.idempotency.retain(|_, (_, expires)| *expires > now);
        state.webhooks.purge();
        purged
    }

    /// The jobs `search` finds; `None` (every job) without one.
    fn found(&self, search: Option<&Search>) -> Option<HashSet<JobId>> {
        search.map(|search| self.lock().search.found(search))
    }

    /// Up to `count` index entries strictly after `after` (newest first) of the jobs `found`
    /// holds (all when `None`), with their live jobs.
    fn read_index(
        &self,
        found: Option<&HashSet<JobId>>,
        after: Option<Cursor>,
        count: usize,
    ) -> Vec<(Cursor, Option<Job>)> {
        let mut state = self.lock();
        let entries: Box<dyn Iterator<Item = &Cursor>> = match after {
            Some(after) => Box::new(state.index.range(..after).rev()),
            None => Box::new(state.index.iter().rev()),
        };
        let cursors: Vec<Cursor> = entries
            .filter(|cursor| found.is_none_or(|found| found.contains(&cursor.job_id)))
            .take(count)
            .copied()
            .collect();
        cursors
            .into_iter()
            .map(|cursor| (cursor, state.live_job(cursor.job_id).cloned()))
            .collect()
    }
}
