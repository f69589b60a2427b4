//! The fan-out's and the pub/sub relay's figures: deliveries, skipped states, dropped clients,
//! and the relay's messages, connection and lag.

use super::Registry;
use super::streams::StreamPath;
use metrics::{Counter, Gauge, Histogram};

pub(super) const DELIVERIES: &str = "jobcast_deliveries_total";
pub(super) const COALESCED: &str = "jobcast_coalesced_states_total";
pub(super) const SLOW_DROPPED: &str = "jobcast_slow_clients_dropped_total";
pub(super) const RELAY_MESSAGES: &str = "jobcast_relay_messages_total";
pub(super) const RELAY_LAG: &str = "jobcast_relay_lag_seconds";
pub(super) const PUBSUB_CONNECTED: &str = "jobcast_pubsub_connected";
pub(super) const PUBSUB_RECONNECTS: &str = "jobcast_pubsub_reconnects_total";
pub(super) const PUBSUB_ERRORS: &str = "jobcast_pubsub_errors_total";

/// The local fan-out's counters. The hub adds to them once per published change (the number of
/// watchers it reached), never once per watcher.
pub struct Fanout {
    deliveries: [Counter; 2],
    /// States skipped by a watcher that was behind.
    pub coalesced: Counter,
    /// Streams dropped because their client stopped taking data.
    pub slow_dropped: Counter,
}

impl Fanout {
    pub(super) fn new(registry: &Registry) -> Self {
        Self {
            deliveries: [("path", "direct"), ("path", "axum")]
                .map(|label| registry.counter(DELIVERIES, &[label])),
            coalesced: registry.counter(COALESCED, &[]),
            slow_dropped: registry.counter(SLOW_DROPPED, &[]),
        }
    }

    /// Counts one published change: the `direct` streams' sockets it was written to or left
    /// for, the `coalesced` pending states it replaced there, and the `axum` subscribers (axum
    /// streams, long-polls, poll-cache entries) it was sent to. Three atomic adds at most.
    pub fn published(&self, direct: usize, coalesced: usize, axum: usize) {
        let add = |counter: &Counter, count: usize| {
            if count > 0 {
                counter.increment(count as u64);
            }
        };
        add(&self.deliveries[StreamPath::Direct as usize], direct);
        add(&self.coalesced, coalesced);
        add(&self.deliveries[StreamPath::Axum as usize], axum);
    }
}

/// The Redis pub/sub relay's figures.
pub struct Relay {
    /// Every message received, a job's channel or the every-job pattern's.
    pub messages: Counter,
    /// Seconds from a change's `updated_at` to its message's arrival.
    pub lag: Histogram,
    /// 1 while connected.
    pub connected: Gauge,
    /// Connections lost.
    pub reconnects: Counter,
    /// Connection attempts and (un)subscriptions that failed.
    pub errors: Counter,
}

impl Relay {
    pub(super) fn new(registry: &Registry) -> Self {
        Self {
            messages: registry.counter(RELAY_MESSAGES, &[]),
            lag: registry.histogram(RELAY_LAG, &[]),
            connected: registry.gauge(PUBSUB_CONNECTED, &[]),
            reconnects: registry.counter(PUBSUB_RECONNECTS, &[]),
            errors: registry.counter(PUBSUB_ERRORS, &[]),
        }
    }

    /// Records whether the connection is up.
    pub fn set_connected(&self, connected: bool) {
        self.connected.set(f64::from(u8::from(connected)));
    }
}
