//! The state every handler and background task shares: cheap handles, cloned per request.

use crate::cache::JobCache;
use crate::config::Config;
use crate::control_token::ControlTokens;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::pubsub::RelayHealth;
use crate::rate_limit::RateLimits;
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The state every request gets: one reference count to copy per request, however many
/// handles it holds.
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

impl AppState {
    pub fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// Handles to this instance's store, fan-out hub and configuration.
pub struct Handles {
    pub store: Store,
    pub hub: Hub,
    /// Polled jobs, kept exact by the pub/sub stream.
    pub cache: JobCache,
    pub config: Arc<Config>,
    /// Wakes an idle local worker when this instance queues a job, so it starts without waiting
    /// for the next poll.
    pub work_queued: Arc<Notify>,
    /// Whether the Redis pub/sub relay is connected.
    pub relay: RelayHealth,
    /// Cancelled when the server begins to stop: streams end, workers stop claiming.
    pub shutdown: CancellationToken,
    /// Per-client limits on creating jobs and opening streams.
    pub limits: RateLimits,
    /// This instance's figures for `GET /metrics`.
    pub metrics: Metrics,
    /// Signs and checks the jobs' control tokens.
    pub control_tokens: ControlTokens,
}
