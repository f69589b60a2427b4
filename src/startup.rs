//! Building the application (store, relay, listener) and running it until told to stop.

use crate::cache::{CACHE_IDLE, JobCache};
use crate::config::Config;
use crate::config::FanoutWrites;
use crate::control_token::ControlTokens;
use crate::hub::Hub;
use crate::metrics::{METRICS_SAMPLE_INTERVAL, Metrics};
use crate::rate_limit::{RATE_LIMIT_PRUNE_INTERVAL, RateLimits};
use crate::routes;
use crate::state::{AppState, Handles};
use crate::store::{MemoryStore, RedisStore, Store, WebhookRouting};
use crate::{pubsub, serve, worker};
use anyhow::Context;
use redis::aio::ConnectionManagerConfig;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// How long one Redis command may take before it fails (and the store falls back to memory).
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often expired jobs are purged from the in-memory store and mirror.
pub const MEMORY_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// A built application: its store chosen, its listener bound, ready to run.
pub struct App {
    listener: TcpListener,
    /// `METRICS_ADDR`'s listener, when set.
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl App {
    /// Binds `HOST:PORT` (port 0 picks a free one) and connects to Redis; when Redis does not
    /// answer within `REDIS_CONNECT_TIMEOUT_MS` it serves from memory and keeps trying.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen_addr())
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr()))?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("METRICS_ADDR={addr}: cannot listen"))?,
            ),
            None => None,
        };
        warn_if_open_without_token(&config);
        // rediss:// needs a TLS crypto provider; pick ring explicitly rather than relying on which
        // rustls features other crates happen to enable. Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = Metrics::new();
        let hub = Hub::new(config.fanout_writes, metrics.clone());
        log_fanout_writes(config.fanout_writes);
        let shutdown = CancellationToken::new();
        info!(redis_url = %config.redis_url, "connecting to Redis");
        let client = redis_client(&config)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.redis_connect_timeout()))
            .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
            // No retries inside the manager: the failover store falls back at once and reconnects.
            .set_number_of_retries(0);
        let redis = RedisStore::new(
            client.clone(),
            manager_config,
            config.job_ttl_secs,
            metrics.clone(),
        )?
        .keeping_history(config.history_retention_days > 0)
        .with_webhooks(webhook_routing(&config));
        let max_bytes = usize::try_from(config.memory_store_max_bytes).unwrap_or(usize::MAX);
        let memory = MemoryStore::new(Arc::new(hub.clone()), config.job_ttl_secs, max_bytes)
            .keeping_history(config.history_retention_days > 0)
            .with_webhooks(webhook_routing(&config));
        let store = Store::start(
            redis,
            memory,
            config.lease(),
            shutdown.clone(),
            metrics.clone(),
        )
        .await
        .with_context(|| {
            format!(
                "REDIS_URL={}: Redis refuses this server; check the password, the user's \
                     permissions and the TLS settings (REDIS_TLS_CA_FILE, REDIS_TLS_INSECURE)",
                config.redis_url
            )
        })?;
        let relay = pubsub::spawn_relay(
            client,
            hub.clone(),
            store.clone(),
            config.relay_subscribe,
            shutdown.clone(),
        );
        let state = AppState::new(Handles {
            limits: RateLimits::new(
                (config.create_rate_per_min, config.create_burst),
                (config.stream_rate_per_min, config.stream_burst),
                metrics.clone(),
            ),
            metrics,
            store,
            hub,
            cache: JobCache::default(),
            control_tokens: ControlTokens::new(
                (config.control_token_secret.as_ref()).or(config.admin_token.as_ref()),
            ),
            config: Arc::new(config),
            work_queued: Arc::new(Notify::new()),
            relay,
            shutdown,
        });
        Ok(Self {
            listener,
            metrics_listener,
            state,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address `METRICS_ADDR` bound, when it is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let listener = self.metrics_listener.as_ref()?;
        Some(
            listener
                .local_addr()
                .expect("a bound listener has an address"),
        )
    }

    /// The shared state, for embedding and tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` completes; then streams end, workers hand their jobs back, and
    /// connections drain.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let workers = worker::spawn_workers(&state);
        worker::spawn_sweeper(&state);
        worker::spawn_deliverer(&state);
        spawn_every(&state, MEMORY_PURGE_INTERVAL, purge_memory);
        spawn_every(&state, CACHE_IDLE / 4, async |state| {
            let cached = state.cache.evict_idle();
            tracing::trace!(cached, "idle cache entries evicted");
        });
        spawn_every(&state, RATE_LIMIT_PRUNE_INTERVAL, async |state| {
            let tracked = state.limits.prune();
            tracing::trace!(tracked, "rate-limited clients pruned");
        });
        spawn_every(&state, METRICS_SAMPLE_INTERVAL, async |state| {
            routes::metrics::sample(&state).await;
        });
        tokio::spawn(close_streams_at_shutdown(state.clone()));
        info!(
            addr = %self.local_addr(),
            backend = ?state.store.kind(),
            workers = state.config.worker_concurrency,
            "jobcast listening"
        );
        if let Some(listener) = self.metrics_listener {
            routes::metrics::spawn_private(listener, state.clone());
        }
        let app = routes::router(state.clone());
        let connections = serve::spawn(self.listener, state.clone(), app);
        let stop = state.shutdown.clone();
        let serving = async {
            signal.await;
            stop.cancel();
            // Each HTTP connection closes once idle (an open axum stream ends with the hub).
            connections.http.close();
            connections.http.wait().await;
        };
        let stopping = async {
            state.shutdown.cancelled().await;
            workers.stop(state.config.shutdown_grace()).await;
            // `Hub::close` has ended every stream; let them write their last bytes.
            connections.streams.close();
            let grace = state.config.shutdown_grace();
            let _ = tokio::time::timeout(grace, connections.streams.wait()).await;
        };
        tokio::join!(serving, stopping);
        info!("jobcast stopped");
        Ok(())
    }
}

/// The Redis client `REDIS_URL` names, with the TLS options applied.
fn redis_client(config: &Config) -> anyhow::Result<redis::Client> {
    let url = config.redis_url.expose();
    let tls_options = config.redis_tls_insecure || config.redis_tls_ca_file.is_some();
    if tls_options && !url.starts_with("rediss://") {
        anyhow::bail!(
            "REDIS_TLS_CA_FILE and REDIS_TLS_INSECURE apply to rediss:// URLs only (REDIS_URL={})",
            config.redis_url
        );
    }
    match (&config.redis_tls_ca_file, config.redis_tls_insecure) {
        (Some(_), true) => anyhow::bail!("set REDIS_TLS_CA_FILE or REDIS_TLS_INSECURE, not both"),
        (Some(path), false) => {
            let root_cert = std::fs::read(path)
                .with_context(|| format!("REDIS_TLS_CA_FILE={}: cannot read", path.display()))?;
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            };
            redis::Client::build_with_tls(url, certificates)
                .with_context(|| format!("REDIS_TLS_CA_FILE={}: not a PEM CA", path.display()))
        }
        (None, true) => {
            tracing::warn!(
                "REDIS_TLS_INSECURE is set: the Redis server's certificate is not verified, so \
                 anyone on the network path can read and change every job"
            );
            let url = url.split_once('#').map_or(url, |(url, _)| url);
            Ok(redis::Client::open(format!("{url}#insecure"))?)
        }
        (None, false) => Ok(redis::Client::open(url)?),
    }
}

/// Warns when clients beyond this host can reach a server with no `ADMIN_TOKEN`: only loopback
/// clients are admitted then, and a proxy on this host that adds no forwarding header makes
/// every client it forwards look local.
fn warn_if_open_without_token(config: &Config) {
    if config.admin_token.is_none() && !config.host.to_canonical().is_loopback() {
        tracing::warn!(
            host = %config.host,
            "listening beyond loopback with no ADMIN_TOKEN: set one before exposing admin and reporting endpoints"
        );
    }
}

/// Says how direct streams will be written, and why plain sends when io_uring was asked for.
fn log_fanout_writes(writes: FanoutWrites) {
    if writes == FanoutWrites::Send {
        info!("fan-out writes: send");
        return;
    }
    #[cfg(target_os = "linux")]
    match crate::sink::probe_io_uring() {
        Ok(()) => info!("fan-out writes: io_uring"),
        Err(error) => tracing::warn!(%error, "fan-out writes: send (io_uring unavailable)"),
    }
    #[cfg(not(target_os = "linux"))]
    info!("fan-out writes: send (io_uring is Linux only)");
}

/// Runs `chore` every `period` until shutdown.
fn spawn_every<F, Fut>(state: &AppState, period: Duration, chore: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let state = state.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = interval.tick() => chore(state.clone()).await,
            }
        }
    });
}

/// Purges expired jobs from memory and writes sign-outs made during an outage to Redis.
async fn purge_memory(state: AppState) {
    let purged = state.store.purge_expired().await;
    tracing::debug!(purged, "expired jobs purged from memory");
    if let Err(error) = state.store.write_back_revocations().await {
        tracing::debug!(%error, "signed-out sessions not yet written to Redis");
    }
}

/// Ends every job stream (SSE, WebSocket, dashboard) when shutdown begins.
async fn close_streams_at_shutdown(state: AppState) {
    state.shutdown.cancelled().await;
    state.hub.close();
}

/// Where the stores queue webhook deliveries: nowhere without `WEBHOOK_SECRET`.
fn webhook_routing(config: &Config) -> WebhookRouting {
    match config.webhook_secret {
        Some(_) => WebhookRouting {
            urls: config.webhook_urls.clone(),
            retention_secs: config.webhook_retention_secs,
        },
        None => WebhookRouting::default(),
    }
}
