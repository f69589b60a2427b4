//! Local fan-out: one broadcast channel per watched job, created lazily and pruned when empty.

use crate::job::{Job, JobId, JobStatus};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it skips ahead to newer ones.
///
/// Progress is latest-wins, so a small buffer loses nothing a subscriber needs: the newest state
/// repairs any gap.
pub const SUBSCRIBER_BUFFER: usize = 16;

/// One change of one job, serialised once and shared by every subscriber.
#[derive(Clone, Debug)]
pub struct JobEvent {
    pub job_id: JobId,
    pub seq: u64,
    pub status: JobStatus,
    /// The full job JSON, as served by `GET /api/v4/job/{id}`.
    pub json: Bytes,
}

impl From<&Job> for JobEvent {
    fn from(job: &Job) -> Self {
        Self {
            job_id: job.job_id,
            seq: job.seq,
            status: job.status,
            json: Bytes::from(job.to_json()),
        }
    }
}

/// A cheap, clonable handle to this instance's fan-out map.
#[derive(Clone, Default)]
pub struct Hub {
    /// A std mutex: it is held only to look up or insert a sender, never across an `.await`.
    channels: Arc<Mutex<HashMap<JobId, broadcast::Sender<JobEvent>>>>,
}

impl Hub {
    /// Delivers `event` to this instance's subscribers of its job, if there are any.
    pub fn publish(&self, event: JobEvent) {
        let channels = self.channels.lock().expect("hub lock poisoned");
        if let Some(sender) = channels.get(&event.job_id) {
            // An error only means every receiver has just gone; the last one's Drop prunes.
            let _ = sender.send(event);
        }
    }

    /// Starts receiving the events of `job_id`.
    pub fn subscribe(&self, job_id: JobId) -> Subscription {
        let mut channels = self.channels.lock().expect("hub lock poisoned");
        let receiver = channels
            .entry(job_id)
            .or_insert_with(|| broadcast::channel(SUBSCRIBER_BUFFER).0)
            .subscribe();
        Subscription {
            hub: self.clone(),
            job_id,
            receiver,
        }
    }

    /// How many jobs have at least one local subscriber.
    pub fn watched_jobs(&self) -> usize {
        self.channels.lock().expect("hub lock poisoned").len()
    }
}

/// A subscriber's end of one job's channel; the channel is removed when the last one drops.
pub struct Subscription {
    hub: Hub,
    job_id: JobId,
    receiver: broadcast::Receiver<JobEvent>,
}

impl Subscription {
    /// The next event, skipping ahead past any the subscriber was too slow to receive.
    /// `None` once the hub side is gone.
    pub async fn next(&mut self) -> Option<JobEvent> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.hub.channels.lock().expect("hub lock poisoned");
        let last = channels
            .get(&self.job_id)
            .is_some_and(|sender| sender.receiver_count() <= 1);
        if last {
            channels.remove(&self.job_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(job_id: JobId, seq: u64) -> JobEvent {
        JobEvent {
            job_id,
            seq,
            status: JobStatus::Processing,
            json: Bytes::from_static(b"{}"),
        }
    }

    #[tokio::test]
    async fn a_subscriber_receives_what_is_published_and_the_channel_is_pruned_after() {
        let hub = Hub::default();
        let id = JobId::new();
        let mut subscription = hub.subscribe(id);
        hub.publish(event(id, 2));
        assert_eq!(subscription.next().await.unwrap().seq, 2);
        assert_eq!(hub.watched_jobs(), 1);
        drop(subscription);
        assert_eq!(hub.watched_jobs(), 0);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_skips_to_newer_events() {
        let hub = Hub::default();
        let id = JobId::new();
        let mut subscription = hub.subscribe(id);
        let total = SUBSCRIBER_BUFFER as u64 * 3;
        for seq in 1..=total {
            hub.publish(event(id, seq));
        }
        let first = subscription.next().await.unwrap().seq;
        assert!(first > total - SUBSCRIBER_BUFFER as u64);
    }
}
