//! The webhook deliverer: claims due deliveries from the store (any instance may; a lease keeps
//! two from attempting one at once), attempts each with bounded concurrency — in total and per
//! endpoint, so one slow endpoint holds up no other — and records what came of it.

use crate::job::Timestamp;
use crate::state::AppState;
use crate::store::{StoreError, Webhooks};
use crate::webhook::delivery::{Attempt, Claimed, Next};
use crate::webhook::{Attempted, RetrySchedule, Sender};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

/// How long the deliverer waits before it looks again when nothing was due.
pub const WEBHOOK_POLL: Duration = Duration::from_millis(200);
/// How many attempt timeouts a claim holds its delivery for: long enough that an attempt still
/// running is never claimed again, short enough that one a dead instance held is soon retried.
pub const LEASE_TIMEOUTS: u32 = 2;
/// How long a delivery is put off when this instance already has the most attempts in flight
/// that its endpoint may take.
pub const BUSY_ENDPOINT_DELAY: Duration = Duration::from_millis(500);

/// What every attempt needs.
struct Deliverer {
    state: AppState,
    sender: Sender,
    schedule: RetrySchedule,
    lease: Duration,
    in_flight: Arc<Semaphore>,
    per_endpoint: usize,
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Starts delivering, unless webhooks are off (no `WEBHOOK_SECRET`); stops with the server.
pub fn spawn_deliverer(state: &AppState) {
    let config = &state.config;
    let Some(signer) = config.webhook_secret.clone() else {
        return;
    };
    let deliverer = Arc::new(Deliverer {
        state: state.clone(),
        sender: Sender::new(
            signer,
            config.webhook_timeout(),
            config.webhook_allow_private,
        ),
        schedule: config.webhook_retry_schedule.clone(),
        lease: config.webhook_timeout() * LEASE_TIMEOUTS,
        in_flight: Arc::new(Semaphore::new(config.webhook_max_in_flight as usize)),
        per_endpoint: config.webhook_max_per_endpoint as usize,
        endpoints: Mutex::default(),
    });
    tokio::spawn(async move {
        let shutdown = deliverer.state.shutdown.clone();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = deliverer.run() => {}
        }
    });
}

impl Deliverer {
    async fn run(self: Arc<Self>) {
        loop {
            // Claim only what can be attempted now: the rest stays due for other instances.
            let Ok(first) = self.in_flight.clone().acquire_owned().await else {
                return;
            };
            let free = self.in_flight.available_permits() + 1;
            let claimed = match self.state.store.claim_deliveries(self.lease, free).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    warn!(%error, "claiming webhook deliveries failed");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                drop(first);
                tokio::time::sleep(WEBHOOK_POLL).await;
                continue;
            }
            let mut permits = std::iter::once(first);
            for delivery in claimed {
                let permit = match permits.next() {
                    Some(permit) => permit,
                    None => match self.in_flight.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                };
                self.start(delivery, permit).await;
            }
        }
    }

    /// Attempts `delivery` in its own task, or puts it off if its endpoint is busy here.
    async fn start(self: &Arc<Self>, delivery: Claimed, permit: OwnedSemaphorePermit) {
        let Some(endpoint) = self.endpoint_permit(&delivery.url) else {
            let later = now_ms() + BUSY_ENDPOINT_DELAY.as_millis() as i64;
            let put_off = self
                .state
                .store
                .record_attempt(&delivery, None, Next::RetryAt(later));
            if let Err(error) = put_off.await {
                warn!(%error, delivery = %delivery.id, "putting off a webhook delivery failed");
            }
            return;
        };
        let deliverer = self.clone();
        tokio::spawn(async move {
            let _held = (permit, endpoint);
            if let Err(error) = deliverer.attempt(&delivery).await {
                // Its lease runs out and another claim attempts it again.
                warn!(%error, delivery = %delivery.id, "recording a webhook attempt failed");
            }
        });
    }

    /// A permit for one more attempt to `url`'s endpoint, if it has one free.
    fn endpoint_permit(&self, url: &str) -> Option<OwnedSemaphorePermit> {
        let mut endpoints = self.endpoints.lock().expect("endpoints lock");
        // Forget idle endpoints: only the map itself holds their semaphore.
        endpoints.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
        let semaphore = endpoints
            .entry(endpoint_of(url))
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_endpoint)));
        semaphore.clone().try_acquire_owned().ok()
    }

    async fn attempt(&self, delivery: &Claimed) -> Result<(), StoreError> {
        let at = Timestamp::now();
        let attempted = self
            .sender
            .send(&delivery.url, &delivery.id, &delivery.body)
            .await;
        let next = self.next(delivery.attempts_made + 1, &attempted);
        let attempt = Attempt {
            at,
            status_code: attempted.status,
            latency_ms: attempted.latency.as_millis() as u64,
            error: attempted.error,
        };
        let store = &self.state.store;
        if !store.record_attempt(delivery, Some(&attempt), next).await? {
            warn!(delivery = %delivery.id, "a webhook attempt outlived its claim; not recorded");
        }
        Ok(())
    }

    /// What follows the `made`-th attempt.
    fn next(&self, made: usize, attempted: &Attempted) -> Next {
        if attempted.succeeded() {
            return Next::Succeeded;
        }
        if attempted.gone() {
            return Next::Failed; // the endpoint wants no more of it
        }
        match self.schedule.next_after(made, attempted.retry_after) {
            Some(delay) => Next::RetryAt(now_ms() + delay.as_millis() as i64),
            None => Next::Failed,
        }
    }
}

/// Scheme, host and port: what one endpoint's concurrency is counted by.
fn endpoint_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => url.to_owned(),
    }
}

fn now_ms() -> i64 {
    Timestamp::now().0.timestamp_millis()
}
