//! The Redis pub/sub relay: one connection per instance feeding the local hub, watched and repaired.
//!
//! Each job's changes are published on its own channel (`job:<uuid>`). The relay subscribes to a
//! channel while this instance has a watcher of that job, rather than to one `job:*` pattern:
//! with a pattern every instance would receive and parse every update of every job, so the cost
//! per instance would grow with the cluster's total update rate instead of with its own watchers.
//!
//! `RELAY_SUBSCRIBE=pattern` subscribes that one pattern instead, for the instance's lifetime;
//! BENCHMARKS.md measures both with three instances.
//!
//! When the connection drops (a Redis restart, `CLIENT KILL TYPE pubsub`) the relay reconnects
//! with capped exponential backoff, resubscribes, and re-reads the stored state of every watched
//! job, so a watcher never misses a terminal state published while the relay was away.

use crate::config::RelaySubscribe;
use crate::hub::{Hub, Interest, Scope};
use crate::job::{JobEvent, JobId, Timestamp};
use crate::store::{JobStore, Store};
use bytes::Bytes;
use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Matches every job's channel, for watchers of all jobs (dashboards). Subscribed only while
/// such a watcher is connected to this instance.
pub const ALL_JOBS_PATTERN: &str = "job:*";
/// First wait before reconnecting; doubled after each failure up to [`RECONNECT_MAX`].
pub const RECONNECT_MIN: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Whether the relay's connection is up, for `/ready`.
#[derive(Clone, Default)]
pub struct RelayHealth(Arc<AtomicBool>);

impl RelayHealth {
    pub fn is_connected(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, connected: bool) {
        self.0.store(connected, Ordering::Relaxed);
    }
}

/// Logs the first failure of a series at `warn`, the repeats at `debug`.
fn log_connect_failure(error: &redis::RedisError, retry_in: Duration, first: bool) {
    let retry_in_ms = retry_in.as_millis() as u64;
    if first {
        warn!(%error, retry_in_ms, "redis pub/sub connect failed; retrying with backoff");
    } else {
        debug!(%error, retry_in_ms, "redis pub/sub connect failed again");
    }
}

/// Starts the relay for `hub` on `client`; it runs until `shutdown`.
pub fn spawn_relay(
    client: redis::Client,
    hub: Hub,
    store: Store,
    mode: RelaySubscribe,
    shutdown: CancellationToken,
) -> RelayHealth {
    let interest = hub.attach_relay();
    let health = RelayHealth::default();
    let relay = Relay {
        client,
        hub,
        store,
        mode,
        health: health.clone(),
    };
    tokio::spawn(relay.run(interest, shutdown));
    health
}

struct Relay {
    client: redis::Client,
    hub: Hub,
    store: Store,
    mode: RelaySubscribe,
    health: RelayHealth,
}

/// Why one connection's session ended.
enum SessionEnd {
    Shutdown,
    ConnectionLost,
}

impl Relay {
    async fn run(
        self,
        mut interest: mpsc::UnboundedReceiver<Interest>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = RECONNECT_MIN;
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                connected = self.client.get_async_pubsub() => connected,
            };
            match connected {
                Ok(pubsub) => {
                    backoff = RECONNECT_MIN;
                    let (requests, messages) = pubsub.split();
                    if let SessionEnd::Shutdown = self
                        .session(requests, messages, &mut interest, &shutdown)
                        .await
                    {
                        return;
                    }
                    self.health.set(false);
                    self.hub.metrics().relay().reconnects.increment(1);
                    self.hub.metrics().relay().set_connected(false);
                    self.hub.set_none_relayed();
                    warn!("redis pub/sub connection lost; reconnecting");
                }
                Err(error) => {
                    self.hub.metrics().relay().errors.increment(1);
                    log_connect_failure(&error, backoff, backoff == RECONNECT_MIN);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                }
            }
        }
    }

    /// Serves one connection: resubscribe, repair, then relay messages and interest changes.
    async fn session(
        &self,
        mut requests: PubSubSink,
        mut messages: PubSubStream,
        interest: &mut mpsc::UnboundedReceiver<Interest>,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let watched = self.hub.watched();
        if self.mode == RelaySubscribe::Pattern
            && requests.psubscribe(ALL_JOBS_PATTERN).await.is_err()
        {
            return SessionEnd::ConnectionLost;
        }
        for &scope in &watched {
            if self.subscribe(&mut requests, scope).await.is_err() {
                return SessionEnd::ConnectionLost;
            }
        }
        self.health.set(true);
        self.hub.metrics().relay().set_connected(true);
        let jobs: Vec<JobId> = watched
            .into_iter()
            .filter_map(|scope| match scope {
                Scope::Job(job_id) => Some(job_id),
                Scope::All => None,
            })
            .collect();
        info!(watched = jobs.len(), "redis pub/sub connected");
        self.repair(&jobs).await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return SessionEnd::Shutdown,
                message = messages.next() => match message {
                    Some(message) => self.relay(message.get_payload_bytes(), message.from_pattern()),
                    None => return SessionEnd::ConnectionLost,
                },
                change = interest.recv() => {
                    let applied = match change {
                        Some(Interest::Watch(scope)) => self.subscribe(&mut requests, scope).await,
                        Some(Interest::Unwatch(scope)) => self.unsubscribe(&mut requests, scope).await,
                        None => return SessionEnd::Shutdown,
                    };
                    if applied.is_err() {
                        return SessionEnd::ConnectionLost;
                    }
                }
            }
        }
    }

    /// Subscribes to `scope`'s channel (every job's: the pattern) and marks it relayed. With
    /// [`RelaySubscribe::Pattern`] the pattern, subscribed once per connection, relays them all.
    async fn subscribe(&self, requests: &mut PubSubSink, scope: Scope) -> redis::RedisResult<()> {
        match (self.mode, scope) {
            (RelaySubscribe::Pattern, _) => {}
            (_, Scope::Job(job_id)) => requests.subscribe(job_id.channel()).await?,
            (_, Scope::All) => requests.psubscribe(ALL_JOBS_PATTERN).await?,
        }
        self.hub.set_relayed(scope, true);
        Ok(())
    }

    async fn unsubscribe(&self, requests: &mut PubSubSink, scope: Scope) -> redis::RedisResult<()> {
        // A watcher may have come back since the last one left: then the channel is still needed.
        if self.hub.is_watched(scope) || self.mode == RelaySubscribe::Pattern {
            return Ok(());
        }
        match scope {
            Scope::Job(job_id) => requests.unsubscribe(job_id.channel()).await,
            Scope::All => requests.punsubscribe(ALL_JOBS_PATTERN).await,
        }
    }

    /// Publishes the stored state of each job locally; subscribers drop what they already have.
    async fn repair(&self, watched: &[JobId]) {
        for &job_id in watched {
            match self.store.get(job_id).await {
                Ok(Some(job)) => self.hub.publish(JobEvent::from(&job)),
                Ok(None) => {}
                Err(error) => warn!(%job_id, %error, "re-reading a watched job failed"),
            }
        }
    }

    /// Hands a message to the job's watchers, or (from the pattern) to the watchers of all jobs;
    /// with [`RelaySubscribe::Pattern`], the pattern's messages go to both.
    fn relay(&self, payload: &[u8], from_pattern: bool) {
        let metrics = self.hub.metrics().relay();
        metrics.messages.increment(1);
        let Some(event) = parse_event(payload) else {
            return debug!("ignoring a pub/sub message that is not a job");
        };
        if let Ok(behind) = (Timestamp::now().0 - event.updated_at.0).to_std() {
            metrics.lag.record(behind.as_secs_f64());
        }
        match (self.mode, from_pattern) {
            (RelaySubscribe::Pattern, _) => {
                if self.hub.is_watched(Scope::All) {
                    self.hub.publish_to_all(event.clone());
                }
                self.hub.publish(event);
            }
            (_, true) => self.hub.publish_to_all(event),
            (_, false) => self.hub.publish(event),
        }
    }
}

fn parse_event(payload: &[u8]) -> Option<JobEvent> {
    JobEvent::from_json(Bytes::copy_from_slice(payload)).ok()
}
