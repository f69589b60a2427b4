//! The memory store's webhook queue: the same deliveries, claims and attempts as Redis keeps,
//! queued in the same critical section as the change that ends a job.

use super::MemoryStore;
use crate::job::{Job, JobId, Timestamp};
use crate::store::{StoreError, Webhooks};
use crate::webhook::delivery::{
    Attempt, Claimed, Delivery, DeliveryStatus, Moved, Next, event_body, message_id,
};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The deliveries, and which are due when.
#[derive(Default)]
pub struct Deliveries {
    held: HashMap<String, Held>,
    /// (due in ms, id) of every pending delivery; a claimed one's is when its lease runs out.
    due: BTreeSet<(i64, String)>,
    of_job: HashMap<JobId, Vec<String>>,
}

struct Held {
    delivery: Delivery,
    body: String,
    claims: u64,
    /// Its entry in `due`, while it is pending.
    due_ms: Option<i64>,
    /// When it goes, in ms: `retention` after its last change.
    expires_ms: i64,
}

fn now_ms() -> i64 {
    Timestamp::now().0.timestamp_millis()
}

impl Deliveries {
    /// Queues the deliveries of `job`'s change (just made, as `job_json`) to `urls`.
    pub fn enqueue(&mut self, job: &Job, job_json: &str, urls: &[String], retention: Duration) {
        let event = format!("job.{}", job.status.as_str());
        let body = event_body(&event, job.updated_at, job_json);
        let now = now_ms();
        for (n, url) in urls.iter().enumerate() {
            let id = message_id(job.job_id, job.seq, n);
            let delivery = Delivery {
                id: id.clone(),
                job_id: job.job_id,
                url: url.clone(),
                event: event.clone(),
                status: DeliveryStatus::Pending,
                created_at: job.updated_at,
                next_attempt_at: Some(job.updated_at),
                attempts: Vec::new(),
            };
            let held = Held {
                delivery,
                body: body.clone(),
                claims: 0,
                due_ms: Some(now),
                expires_ms: now + retention.as_millis() as i64,
            };
            self.held.insert(id.clone(), held);
            self.due.insert((now, id.clone()));
            self.of_job.entry(job.job_id).or_default().push(id);
        }
    }

    /// Drops the deliveries past their retention.
    pub fn purge(&mut self) {
        let now = now_ms();
        let gone: Vec<String> = self
            .held
            .iter()
            .filter(|(_, held)| held.expires_ms <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.set_due(&id, None);
            let held = self.held.remove(&id).expect("listed");
            if let Some(ids) = self.of_job.get_mut(&held.delivery.job_id) {
                ids.retain(|other| *other != id);
                if ids.is_empty() {
                    self.of_job.remove(&held.delivery.job_id);
                }
            }
        }
    }

    /// Every delivery held here, to move to Redis.
    pub fn all(&self) -> Vec<Moved> {
        self.held
            .values()
            .map(|held| Moved {
                delivery: held.delivery.clone(),
                body: held.body.clone(),
            })
            .collect()
    }

    /// Drops the deliveries `ids` (moved to Redis).
    pub fn forget(&mut self, ids: &[String]) {
        for id in ids {
            self.set_due(id, None);
            if let Some(held) = self.held.remove(id) {
                let job = held.delivery.job_id;
                if let Some(of_job) = self.of_job.get_mut(&job) {
                    of_job.retain(|other| other != id);
                    if of_job.is_empty() {
                        self.of_job.remove(&job);
                    }
                }
            }
        }
    }

    /// Moves delivery `id`'s entry in `due` to `at` (none: it is due no more).
    fn set_due(&mut self, id: &str, at: Option<i64>) {
        let Some(held) = self.held.get_mut(id) else {
            return;
        };
        if let Some(old) = std::mem::replace(&mut held.due_ms, at) {
            self.due.remove(&(old, id.to_owned()));
        }
        if let Some(at) = at {
            self.due.insert((at, id.to_owned()));
        }
    }
}

impl MemoryStore {
    /// Every webhook delivery held here, with its attempts: to move to Redis after an outage.
    pub fn deliveries(&self) -> Vec<Moved> {
        self.lock().webhooks.all()
    }

    /// Drops the webhook deliveries `ids`, once Redis holds them.
    pub fn forget_deliveries(&self, ids: &[String]) {
        self.lock().webhooks.forget(ids);
    }
}

impl Webhooks for MemoryStore {
    async fn claim_deliveries(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut state = self.lock();
        let deliveries = &mut state.webhooks;
        let now = now_ms();
        let due: Vec<String> = deliveries
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            let held = deliveries
                .held
                .get_mut(&id)
                .expect("due deliveries are held");
            held.claims += 1;
            claimed.push(Claimed {
                id: id.clone(),
                claim: held.claims,
                url: held.delivery.url.clone(),
                body: held.body.clone(),
                attempts_made: held.delivery.attempts.len(),
            });
            deliveries.set_due(&id, Some(now + lease.as_millis() as i64));
        }
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        claimed: &Claimed,
        attempt: Option<&Attempt>,
        next: Next,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let retention = self.shared.webhooks.retention_secs as i64 * 1000;
        let deliveries = &mut state.webhooks;
        let Some(held) = deliveries.held.get_mut(&claimed.id) else {
            return Ok(false);
        };
        if held.claims != claimed.claim {
            return Ok(false);
        }
        held.delivery.attempts.extend(attempt.cloned());
        held.expires_ms = now_ms() + retention;
        let due = match next {
            Next::Succeeded | Next::Failed => {
                held.delivery.status = match next {
                    Next::Succeeded => DeliveryStatus::Succeeded,
                    _ => DeliveryStatus::Failed,
                };
                held.delivery.next_attempt_at = None;
                None
            }
            Next::RetryAt(ms) => {
                held.delivery.next_attempt_at =
                    chrono::DateTime::from_timestamp_millis(ms).map(Timestamp);
                Some(ms)
            }
        };
        deliveries.set_due(&claimed.id, due);
        Ok(true)
    }

    async fn job_deliveries(&self, job: JobId) -> Result<Vec<Delivery>, StoreError> {
        let state = self.lock();
        let deliveries = &state.webhooks;
        let ids = deliveries.of_job.get(&job).map_or(&[][..], Vec::as_slice);
        Ok(ids
            .iter()
            .filter_map(|id| deliveries.held.get(id))
            .map(|held| held.delivery.clone())
            .collect())
    }

    async fn retry_delivery(&self, job: JobId, id: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let deliveries = &mut state.webhooks;
        let Some(held) = deliveries
            .held
            .get_mut(id)
            .filter(|h| h.delivery.job_id == job)
        else {
            return Ok(false);
        };
        let now = Timestamp::now();
        held.delivery.status = DeliveryStatus::Pending;
        held.delivery.next_attempt_at = Some(now);
        deliveries.set_due(id, Some(now.0.timestamp_millis()));
        Ok(true)
    }
}
