//! A subscriber's end of one topic: its events in order, skipping ahead when it falls behind.

use super::{Hub, Scope};
use crate::job::JobEvent;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// A subscriber's end of one topic's channel; the topic is removed when the last one drops.
pub struct Subscription {
    pub(super) hub: Hub,
    pub(super) scope: Scope,
    pub(super) receiver: broadcast::Receiver<JobEvent>,
    pub(super) relayed: watch::Receiver<bool>,
}

impl Subscription {
    /// A subscription that has already ended, for watchers arriving after [`Hub::close`].
    pub(super) fn closed(hub: Hub, scope: Scope) -> Self {
        Self {
            hub,
            scope,
            receiver: broadcast::channel(1).1, // its sender is gone: it ends at once
            relayed: watch::channel(false).1,
        }
    }

    /// Waits until updates of this scope reach this instance (the relay's Redis subscription is
    /// active), for at most `limit`. Returns whether they do.
    pub async fn relayed(&mut self, limit: Duration) -> bool {
        let wait = self.relayed.wait_for(|relayed| *relayed);
        matches!(tokio::time::timeout(limit, wait).await, Ok(Ok(_)))
    }

    /// Whether updates of this scope reach this instance right now.
    pub fn is_relayed(&self) -> bool {
        *self.relayed.borrow()
    }

    /// The next event; `None` once the hub side is gone. A subscriber of one job that fell
    /// behind gets the newest event instead of the ones it missed; a watcher of every job the
    /// oldest still buffered (each event is another job's news).
    pub async fn next(&mut self) -> Option<JobEvent> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    self.hub.metrics().fanout().coalesced.increment(skipped);
                    if self.scope != Scope::All {
                        return self.newest();
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
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

    /// The newest event already received, without waiting (what is buffered is drained, the
    /// last kept); `None` when there is none.
    pub fn newest(&mut self) -> Option<JobEvent> {
        let mut newest = None;
        while let Some(event) = self.try_next() {
            newest = Some(event);
        }
        newest
    }

    /// What this subscription follows.
    pub fn scope(&self) -> Scope {
        self.scope
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.leave(self.scope);
    }
}
