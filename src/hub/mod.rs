//! Local fan-out: one broadcast channel per watched topic (a job, or every job), created
//! lazily and pruned when its last subscriber leaves.
//!
//! With Redis, the hub also tells the pub/sub relay (`pubsub.rs`) which channels this instance
//! needs: a topic's channel is subscribed when its first local watcher arrives and unsubscribed
//! when the last one leaves, so each instance receives only the updates its own clients watch.

mod subscription;

pub use subscription::Subscription;

use crate::config::FanoutWrites;
use crate::job::{Frame, Job, JobEvent, JobId};
use crate::metrics::Metrics;
use crate::sink::Sink;
use crate::store::Publisher;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::{broadcast, mpsc, watch};

/// How many events one subscriber of a job may fall behind before it skips to the newest.
///
/// Progress is latest-wins: every event carries the job's full state, so skipping loses nothing a
/// subscriber needs, and a client that stops reading costs at most this many shared events.
pub const SUBSCRIBER_BUFFER: usize = 16;

/// How many events a watcher of every job may fall behind before it skips ahead.
pub const ALL_JOBS_BUFFER: usize = 256;

/// What a subscription follows: one job, or every job (dashboards).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Job(JobId),
    All,
}

impl From<JobId> for Scope {
    fn from(job_id: JobId) -> Self {
        Self::Job(job_id)
    }
}

impl Scope {
    /// How many events a subscriber of this scope may fall behind.
    fn buffer(self) -> usize {
        match self {
            Self::Job(_) => SUBSCRIBER_BUFFER,
            Self::All => ALL_JOBS_BUFFER,
        }
    }
}

/// What the hub asks of the relay that feeds it from Redis.
#[derive(Debug, PartialEq, Eq)]
pub enum Interest {
    /// The first local watcher of this scope arrived: subscribe to its channel (or pattern).
    Watch(Scope),
    /// The last local watcher left: unsubscribe.
    Unwatch(Scope),
}

/// A cheap, clonable handle to this instance's fan-out map.
#[derive(Clone, Default)]
pub struct Hub {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// A std mutex: held only to look up, insert or remove a topic, never across an `.await`.
    topics: Mutex<HashMap<Scope, Topic>>,
    /// Set once when a relay feeds this hub from Redis; unset on the memory store, where every
    /// event is published locally and topics are live from the start.
    relay: OnceLock<mpsc::UnboundedSender<Interest>>,
    /// Set by [`Hub::close`]: no topic is kept from then on.
    closed: AtomicBool,
    /// How changes are written to the sockets of direct streams.
    writes: FanoutWrites,
    /// Counted once per published change (how many watchers it reached), never per watcher.
    metrics: Metrics,
}

/// The direct streams of one job, written by the publisher itself ([`Sink`]).
type Sinks = Arc<Mutex<Vec<Arc<Sink>>>>;

struct Topic {
    sender: broadcast::Sender<JobEvent>,
    sinks: Sinks,
    /// Whether the relay's Redis subscription for this topic is active (always true without relay).
    relayed: watch::Sender<bool>,
}

/// Locks one of the hub's std mutexes; they are never held across an `.await` or a panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("hub lock poisoned")
}

impl Hub {
    /// A hub whose publishers write direct streams' sockets the `writes` way.
    pub fn new(writes: FanoutWrites, metrics: Metrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                writes,
                metrics,
                ..Shared::default()
            }),
        }
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<Scope, Topic>> {
        lock(&self.shared.topics)
    }

    /// Delivers `event` to this instance's subscribers of its job, if there are any: through
    /// the broadcast channel, and written straight to the sockets of direct streams.
    pub fn publish(&self, event: JobEvent) {
        let Some((sinks, received)) = self.send(Scope::Job(event.job_id), event.clone()) else {
            return;
        };
        let sinks = lock(&sinks);
        let tally = crate::sink::write_to_all(&sinks, &Frame::change(event), self.shared.writes);
        // A direct stream's follower is subscribed too, but reads nothing once it is a sink.
        let axum = received.saturating_sub(sinks.len());
        let metrics = self.shared.metrics.fanout();
        metrics.published(tally.delivered, tally.coalesced, axum);
    }

    /// Delivers `event` to this instance's watchers of every job, if there are any.
    pub fn publish_to_all(&self, event: JobEvent) {
        if let Some((_, received)) = self.send(Scope::All, event) {
            self.shared.metrics.fanout().published(0, 0, received);
        }
    }

    /// Sends `event` to the subscribers of `scope`; its sinks and how many subscribers received
    /// it, if it has subscribers.
    fn send(&self, scope: Scope, event: JobEvent) -> Option<(Sinks, usize)> {
        let topics = self.topics();
        let topic = topics.get(&scope)?;
        // An error only means every receiver has just gone; the last one's Drop prunes.
        let received = topic.sender.send(event).unwrap_or(0);
        Some((topic.sinks.clone(), received))
    }

    /// Lets publishers of `job_id` write to `sink` until the guard drops. `None` when the job has
    /// no subscription here (the caller must hold one) or the hub is closed.
    ///
    /// The topics lock is not held while waiting for the sinks (a publisher may be writing to
    /// all of them). A change published meanwhile is in the caller's subscription either way.
    pub fn attach_sink(&self, job_id: JobId, sink: Arc<Sink>) -> Option<SinkGuard> {
        let sinks = self.topics().get(&Scope::Job(job_id))?.sinks.clone();
        lock(&sinks).push(sink.clone());
        if self.shared.closed.load(Ordering::Acquire) {
            sink.finish(); // `close` may have finished this job's sinks before this one joined
        }
        Some(SinkGuard { sinks, sink })
    }

    /// Starts receiving the events of `scope`: a job (`hub.subscribe(job_id)`) or every job.
    pub fn subscribe(&self, scope: impl Into<Scope>) -> Subscription {
        let scope = scope.into();
        let relay = self.shared.relay.get();
        let mut topics = self.topics();
        if self.shared.closed.load(Ordering::Acquire) {
            return Subscription::closed(self.clone(), scope);
        }
        let topic = topics.entry(scope).or_insert_with(|| {
            if let Some(relay) = relay {
                let _ = relay.send(Interest::Watch(scope));
            }
            Topic {
                sender: broadcast::channel(scope.buffer()).0,
                sinks: Sinks::default(),
                relayed: watch::channel(relay.is_none()).0,
            }
        });
        Subscription {
            hub: self.clone(),
            scope,
            receiver: topic.sender.subscribe(),
            relayed: topic.relayed.subscribe(),
        }
    }

    /// Drops `scope`'s topic if the subscriber leaving is its last, and tells the relay.
    fn leave(&self, scope: Scope) {
        let mut topics = self.topics();
        let last = topics
            .get(&scope)
            .is_some_and(|topic| topic.sender.receiver_count() <= 1);
        if last {
            topics.remove(&scope);
            if let Some(relay) = self.shared.relay.get() {
                let _ = relay.send(Interest::Unwatch(scope));
            }
        }
    }

    /// Ends every subscription (each gets `None` after what it has buffered) and every later
    /// one at once: the server is shutting down. One call here instead of a shutdown future
    /// polled by every stream on every delivery.
    pub fn close(&self) {
        let mut topics = self.topics();
        self.shared.closed.store(true, Ordering::Release);
        for topic in topics.values() {
            for sink in lock(&topic.sinks).iter() {
                sink.finish();
            }
        }
        topics.clear();
    }

    /// Attaches the relay; from now on topics report their interest to it. Call once.
    pub fn attach_relay(&self) -> mpsc::UnboundedReceiver<Interest> {
        let (sender, receiver) = mpsc::unbounded_channel();
        assert!(self.shared.relay.set(sender).is_ok(), "a hub has one relay");
        receiver
    }

    /// Records whether the relay's subscription for `scope` is active.
    pub fn set_relayed(&self, scope: Scope, relayed: bool) {
        if let Some(topic) = self.topics().get(&scope) {
            topic.relayed.send_replace(relayed);
        }
    }

    /// This instance's metrics, for the relay that feeds the hub and the subscriptions.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Marks every topic as not relayed: the relay's connection was lost.
    pub fn set_none_relayed(&self) {
        for topic in self.topics().values() {
            topic.relayed.send_replace(false);
        }
    }

    /// How many local subscribers `job_id` has.
    pub fn subscriber_count(&self, job_id: JobId) -> usize {
        self.topics()
            .get(&Scope::Job(job_id))
            .map_or(0, |topic| topic.sender.receiver_count())
    }

    /// Whether `scope` has at least one local subscriber.
    pub fn is_watched(&self, scope: impl Into<Scope>) -> bool {
        self.topics().contains_key(&scope.into())
    }

    /// The scopes that have at least one local subscriber.
    pub fn watched(&self) -> Vec<Scope> {
        self.topics().keys().copied().collect()
    }
}

impl Publisher for Hub {
    /// Publishes `job`'s new state to this instance's watchers of it and of every job,
    /// serialising it only when someone listens (the memory store's write path).
    fn publish_job(&self, job: &Job) {
        let (for_job, for_all) = (self.is_watched(job.job_id), self.is_watched(Scope::All));
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

/// A direct stream's place among its job's sinks; leaving it stops publishers writing to it.
pub struct SinkGuard {
    sinks: Sinks,
    sink: Arc<Sink>,
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        let mut sinks = lock(&self.sinks);
        if let Some(at) = sinks.iter().position(|sink| Arc::ptr_eq(sink, &self.sink)) {
            sinks.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests;
