//! Local fan-out: one broadcast channel per watched job, created lazily and pruned when empty.
//!
//! With Redis, the hub also tells the pub/sub relay (`pubsub.rs`) which job channels this instance
//! needs: a job's channel is subscribed when its first local watcher arrives and unsubscribed when
//! the last one leaves, so each instance receives only the updates its own clients watch.

use crate::config::FanoutWrites;
use crate::job::{Frame, Job, JobEvent, JobId};
use crate::sink::Sink;
use crate::store::Publisher;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// How many events one subscriber may fall behind before it skips to the newest.
///
/// Progress is latest-wins: every event carries the job's full state, so skipping loses nothing a
/// subscriber needs, and a client that stops reading costs at most this many shared events.
pub const SUBSCRIBER_BUFFER: usize = 16;

/// How many events a watcher of every job may fall behind before it skips ahead.
pub const ALL_JOBS_BUFFER: usize = 256;

/// What the hub asks of the relay that feeds it from Redis.
#[derive(Debug, PartialEq, Eq)]
pub enum Interest {
    /// The first local watcher of this job arrived: subscribe to its channel.
    Watch(JobId),
    /// The last local watcher left: unsubscribe.
    Unwatch(JobId),
    /// The first watcher of every job arrived: subscribe to all job channels.
    WatchAll,
    /// The last watcher of every job left.
    UnwatchAll,
}

/// A cheap, clonable handle to this instance's fan-out map.
#[derive(Clone, Default)]
pub struct Hub {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// A std mutex: held only to look up, insert or remove a topic, never across an `.await`.
    topics: Mutex<HashMap<JobId, Topic>>,
    /// Set once when a relay feeds this hub from Redis; unset on the memory store, where every
    /// event is published locally and topics are live from the start.
    relay: OnceLock<mpsc::UnboundedSender<Interest>>,
    /// Every job's events, for dashboards; `None` while nobody watches them all.
    all: Mutex<Option<Topic>>,
    /// Set by [`Hub::close`]: no topic is kept from then on.
    closed: AtomicBool,
    /// How changes are written to the sockets of direct streams.
    writes: FanoutWrites,
}

struct Topic {
    sender: broadcast::Sender<JobEvent>,
    /// Direct streams of this job, written by the publisher itself ([`Sink`]).
    sinks: Arc<Mutex<Vec<Arc<Sink>>>>,
    /// Whether the relay's Redis subscription for this job is active (always true without relay).
    relayed: watch::Sender<bool>,
}

impl Topic {
    /// A topic buffering `buffer` events; the relay, if any, is told of `interest`.
    fn open(
        buffer: usize,
        relay: Option<&mpsc::UnboundedSender<Interest>>,
        interest: Interest,
    ) -> Self {
        if let Some(relay) = relay {
            let _ = relay.send(interest);
        }
        Self {
            sender: broadcast::channel(buffer).0,
            sinks: Arc::default(),
            relayed: watch::channel(relay.is_none()).0,
        }
    }
}

impl Hub {
    /// A hub whose publishers write direct streams' sockets the `writes` way.
    pub fn new(writes: FanoutWrites) -> Self {
        Self {
            shared: Arc::new(Shared {
                writes,
                ..Shared::default()
            }),
        }
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<JobId, Topic>> {
        self.shared.topics.lock().expect("hub lock poisoned")
    }

    /// Delivers `event` to this instance's subscribers of its job, if there are any: through
    /// the broadcast channel, and written straight to the sockets of direct streams.
    pub fn publish(&self, event: JobEvent) {
        let sinks = {
            let topics = self.topics();
            let Some(topic) = topics.get(&event.job_id) else {
                return;
            };
            // An error only means every receiver has just gone; the last one's Drop prunes.
            let _ = topic.sender.send(event.clone());
            topic.sinks.clone()
        };
        let sinks = sinks.lock().expect("hub lock poisoned");
        crate::sink::write_to_all(&sinks, &Frame::change(event), self.shared.writes);
    }

    /// Lets publishers of `job_id` write to `sink` until the guard drops. `None` when the job has
    /// no subscription here (the caller must hold one) or the hub is closed.
    ///
    /// The topics lock is not held while waiting for the sinks (a publisher may be writing to
    /// all of them). A change published meanwhile is in the caller's subscription either way.
    pub fn attach_sink(&self, job_id: JobId, sink: Arc<Sink>) -> Option<SinkGuard> {
        let sinks = self.topics().get(&job_id)?.sinks.clone();
        sinks.lock().expect("hub lock poisoned").push(sink.clone());
        if self.shared.closed.load(Ordering::Acquire) {
            sink.finish(); // `close` may have finished this job's sinks before this one joined
        }
        Some(SinkGuard { sinks, sink })
    }
}

impl Publisher for Hub {
    /// Publishes `job`'s new state to this instance's watchers of it and of every job,
    /// serialising it only when someone listens (the memory store's write path).
    fn publish_job(&self, job: &Job) {
        let (for_job, for_all) = (self.is_watched(job.job_id), self.is_watching_all());
        if !(for_job || for_all) {
            return;
        }
        let event = JobEvent::from(job);
        if for_all {
            self.publish_to_all(event.clone());
        }
        if for_job {
            self.publish(event);
        }
    }
}

impl Hub {
    /// Delivers `event` to this instance's watchers of every job, if there are any.
    pub fn publish_to_all(&self, event: JobEvent) {
        if let Some(topic) = &*self.shared.all.lock().expect("hub lock poisoned") {
            let _ = topic.sender.send(event);
        }
    }

    /// Starts receiving the events of every job.
    pub fn subscribe_all(&self) -> AllJobsSubscription {
        let relay = self.shared.relay.get();
        let mut all = self.shared.all.lock().expect("hub lock poisoned");
        if self.shared.closed.load(Ordering::Acquire) {
            return AllJobsSubscription {
                hub: self.clone(),
                receiver: closed_channel(),
                relayed: watch::channel(false).1,
            };
        }
        let topic =
            all.get_or_insert_with(|| Topic::open(ALL_JOBS_BUFFER, relay, Interest::WatchAll));
        AllJobsSubscription {
            hub: self.clone(),
            receiver: topic.sender.subscribe(),
            relayed: topic.relayed.subscribe(),
        }
    }

    /// Whether anyone here watches every job.
    pub fn is_watching_all(&self) -> bool {
        self.shared.all.lock().expect("hub lock poisoned").is_some()
    }

    /// Ends every subscription (each gets `None` after what it has buffered) and every later
    /// one at once: the server is shutting down. One call here instead of a shutdown future
    /// polled by every stream on every delivery.
    pub fn close(&self) {
        let mut topics = self.topics();
        self.shared.closed.store(true, Ordering::Release);
        for topic in topics.values() {
            for sink in topic.sinks.lock().expect("hub lock poisoned").iter() {
                sink.finish();
            }
        }
        topics.clear();
        *self.shared.all.lock().expect("hub lock poisoned") = None;
    }

    /// Starts receiving the events of `job_id`.
    pub fn subscribe(&self, job_id: JobId) -> Subscription {
        let relay = self.shared.relay.get();
        let mut topics = self.topics();
        if self.shared.closed.load(Ordering::Acquire) {
            return Subscription::closed(self.clone(), job_id);
        }
        let topic = topics
            .entry(job_id)
            .or_insert_with(|| Topic::open(SUBSCRIBER_BUFFER, relay, Interest::Watch(job_id)));
        Subscription {
            hub: self.clone(),
            job_id,
            receiver: topic.sender.subscribe(),
            relayed: topic.relayed.subscribe(),
        }
    }

    /// Attaches the relay; from now on topics report their interest to it. Call once.
    pub fn attach_relay(&self) -> mpsc::UnboundedReceiver<Interest> {
        let (sender, receiver) = mpsc::unbounded_channel();
        assert!(self.shared.relay.set(sender).is_ok(), "a hub has one relay");
        receiver
    }

    /// Records whether the relay's subscription for `job_id` is active.
    pub fn set_relayed(&self, job_id: JobId, relayed: bool) {
        if let Some(topic) = self.topics().get(&job_id) {
            topic.relayed.send_replace(relayed);
        }
    }

    /// Records whether the relay's subscription to every job is active.
    pub fn set_all_relayed(&self, relayed: bool) {
        if let Some(topic) = &*self.shared.all.lock().expect("hub lock poisoned") {
            topic.relayed.send_replace(relayed);
        }
    }

    /// Marks every topic as not relayed: the relay's connection was lost.
    pub fn set_none_relayed(&self) {
        for topic in self.topics().values() {
            topic.relayed.send_replace(false);
        }
        self.set_all_relayed(false);
    }

    /// How many local subscribers `job_id` has.
    pub fn subscriber_count(&self, job_id: JobId) -> usize {
        self.topics()
            .get(&job_id)
            .map_or(0, |topic| topic.sender.receiver_count())
    }

    /// Whether `job_id` has at least one local subscriber.
    pub fn is_watched(&self, job_id: JobId) -> bool {
        self.topics().contains_key(&job_id)
    }

    /// The jobs that have at least one local subscriber.
    pub fn watched(&self) -> Vec<JobId> {
        self.topics().keys().copied().collect()
    }
}

/// A direct stream's place among its job's sinks; leaving it stops publishers writing to it.
pub struct SinkGuard {
    sinks: Arc<Mutex<Vec<Arc<Sink>>>>,
    sink: Arc<Sink>,
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        let mut sinks = self.sinks.lock().expect("hub lock poisoned");
        if let Some(at) = sinks.iter().position(|sink| Arc::ptr_eq(sink, &self.sink)) {
            sinks.swap_remove(at);
        }
    }
}

/// A receiver whose sender is gone: it yields nothing and ends at once.
fn closed_channel() -> broadcast::Receiver<JobEvent> {
    broadcast::channel(1).1
}

/// A subscriber's end of one job's channel; the channel is removed when the last one drops.
pub struct Subscription {
    hub: Hub,
    job_id: JobId,
    receiver: broadcast::Receiver<JobEvent>,
    relayed: watch::Receiver<bool>,
}

impl Subscription {
    /// A subscription that has already ended, for watchers arriving after [`Hub::close`].
    fn closed(hub: Hub, job_id: JobId) -> Self {
        Self {
            hub,
            job_id,
            receiver: closed_channel(),
            relayed: watch::channel(false).1,
        }
    }

    /// Waits until updates of this job reach this instance (the relay's Redis subscription is
    /// active), for at most `limit`. Returns whether they do.
    pub async fn relayed(&mut self, limit: Duration) -> bool {
        let wait = self.relayed.wait_for(|relayed| *relayed);
        matches!(tokio::time::timeout(limit, wait).await, Ok(Ok(_)))
    }

    /// The next event. A subscriber that fell behind gets the newest event instead of the ones it
    /// missed. `None` once the hub side is gone.
    pub async fn next(&mut self) -> Option<JobEvent> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => self.newest(),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Whether updates of this job reach this instance right now.
    pub fn is_relayed(&self) -> bool {
        *self.relayed.borrow()
    }

    /// The next event already received, without waiting; after a lag, the oldest still buffered.
    pub fn try_next(&mut self) -> Option<JobEvent> {
        loop {
            match self.receiver.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    }

    /// The job this subscription follows.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// The newest event already received, without waiting (what is buffered is drained, the
    /// last kept); `None` when there is none.
    pub fn newest(&mut self) -> Option<JobEvent> {
        let mut newest = None;
        loop {
            match self.receiver.try_recv() {
                Ok(event) => newest = Some(event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return newest,
            }
        }
    }
}

/// A watcher's end of the every-job channel; it is removed when the last one drops.
pub struct AllJobsSubscription {
    hub: Hub,
    receiver: broadcast::Receiver<JobEvent>,
    relayed: watch::Receiver<bool>,
}

impl AllJobsSubscription {
    /// Waits (at most `limit`) until every job's updates reach this instance; whether they do.
    pub async fn relayed(&mut self, limit: Duration) -> bool {
        let wait = self.relayed.wait_for(|relayed| *relayed);
        matches!(tokio::time::timeout(limit, wait).await, Ok(Ok(_)))
    }

    /// The next event of any job; after falling behind, the oldest still buffered.
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

impl Drop for AllJobsSubscription {
    fn drop(&mut self) {
        let mut all = self.hub.shared.all.lock().expect("hub lock poisoned");
        if all
            .as_ref()
            .is_some_and(|topic| topic.sender.receiver_count() <= 1)
        {
            *all = None;
            if let Some(relay) = self.hub.shared.relay.get() {
                let _ = relay.send(Interest::UnwatchAll);
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = self.hub.topics();
        let last = topics
            .get(&self.job_id)
            .is_some_and(|topic| topic.sender.receiver_count() <= 1);
        if last {
            topics.remove(&self.job_id);
            if let Some(relay) = self.hub.shared.relay.get() {
                let _ = relay.send(Interest::Unwatch(self.job_id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobStatus, Timestamp};
    use bytes::Bytes;

    fn event(job_id: JobId, seq: u64) -> JobEvent {
        JobEvent {
            job_id,
            seq,
            status: JobStatus::Processing,
            expires_at: Timestamp::now(),
            json: Bytes::from_static(b"{}"),
            frames: Arc::default(),
        }
    }

    #[tokio::test]
    async fn a_subscriber_receives_what_is_published_and_the_topic_is_pruned_after() {
        let hub = Hub::default();
        let id = JobId::new();
        let mut subscription = hub.subscribe(id);
        hub.publish(event(id, 2));
        assert_eq!(subscription.next().await.unwrap().seq, 2);
        assert_eq!(hub.watched(), [id]);
        drop(subscription);
        assert!(hub.watched().is_empty());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_skips_to_the_newest_event() {
        let hub = Hub::default();
        let id = JobId::new();
        let mut subscription = hub.subscribe(id);
        let total = SUBSCRIBER_BUFFER as u64 * 3;
        for seq in 1..=total {
            hub.publish(event(id, seq));
        }
        assert_eq!(subscription.next().await.unwrap().seq, total);
    }

    #[tokio::test]
    async fn the_relay_hears_of_the_first_watcher_and_the_last_leaving() {
        let hub = Hub::default();
        let mut interest = hub.attach_relay();
        let id = JobId::new();
        let mut first = hub.subscribe(id);
        let second = hub.subscribe(id);
        assert_eq!(interest.recv().await, Some(Interest::Watch(id)));
        assert!(!first.relayed(Duration::from_millis(10)).await);
        hub.set_relayed(id, true);
        assert!(first.relayed(Duration::from_millis(10)).await);
        drop(first);
        drop(second);
        assert_eq!(interest.recv().await, Some(Interest::Unwatch(id)));
        assert!(interest.try_recv().is_err());
    }

    #[tokio::test]
    async fn closing_ends_every_subscription_after_what_it_has_buffered_and_every_later_one() {
        let hub = Hub::default();
        let id = JobId::new();
        let mut subscription = hub.subscribe(id);
        let mut everything = hub.subscribe_all();
        hub.publish(event(id, 2));
        hub.close();
        assert_eq!(subscription.next().await.unwrap().seq, 2);
        assert!(subscription.next().await.is_none());
        assert!(everything.next().await.is_none());
        assert!(hub.subscribe(id).next().await.is_none());
        assert!(hub.subscribe_all().next().await.is_none());
        assert!(hub.watched().is_empty());
    }
}
