//! Building the application (choose the store, bind the listener) and running it until told to stop.

use crate::config::Config;
use crate::hub::Hub;
use crate::routes;
use crate::state::AppState;
use crate::store::{JobStore, MemoryStore, RedisStore, Store};
use crate::{pubsub, worker};
use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long one Redis command may take before it fails (and the request gets a 503).
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the memory store purges expired jobs by itself.
pub const MEMORY_PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// How long workers get to reach a checkpoint after the shutdown signal.
pub const WORKER_STOP_GRACE: Duration = Duration::from_secs(5);

/// A built application: its store chosen, its listener bound, ready to run.
pub struct App {
    listener: TcpListener,
    state: AppState,
}

impl App {
    /// Binds `HOST:PORT` (port 0 picks a free one) and connects to Redis, or falls back to the
    /// in-memory store when Redis does not answer within `REDIS_CONNECT_TIMEOUT_MS`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen_addr())
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr()))?;
        let hub = Hub::default();
        let shutdown = CancellationToken::new();
        let (store, relay) = match connect_redis(&config).await {
            Ok((client, connection)) => {
                info!(redis_url = %config.redis_url, "using Redis");
                let store = Store::Redis(RedisStore::new(connection, config.job_ttl_secs));
                let relay =
                    pubsub::spawn_relay(client, hub.clone(), store.clone(), shutdown.clone());
                (store, Some(relay))
            }
            Err(error) => {
                warn!(
                    redis_url = %config.redis_url,
                    error = %error,
                    "Redis did not answer: serving from the embedded in-memory store; jobs will not survive a restart"
                );
                let store = MemoryStore::new(hub.clone(), config.job_ttl_secs);
                (Store::Memory(store), None)
            }
        };
        let state = AppState {
            store,
            hub,
            config: Arc::new(config),
            work_queued: Arc::new(Notify::new()),
            relay,
            shutdown,
        };
        Ok(Self { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state, for embedding and tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` completes, then stops the workers and drains connections.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = self.state.shutdown.clone();
        let mut workers = worker::spawn_workers(&self.state, &shutdown);
        if let Store::Memory(store) = &self.state.store {
            tokio::spawn(purge_periodically(store.clone(), shutdown.clone()));
        }
        info!(
            addr = %self.local_addr(),
            backend = ?self.state.store.kind(),
            workers = self.state.config.worker_concurrency,
            "jobcast listening"
        );
        let app = routes::router(self.state.clone());
        let stop = shutdown.clone();
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            signal.await;
            stop.cancel();
        })
        .await
        .context("server error")?;
        shutdown.cancel();
        if tokio::time::timeout(WORKER_STOP_GRACE, async {
            while workers.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            warn!("workers did not stop in time; aborting them");
            workers.abort_all();
        }
        info!("jobcast stopped");
        Ok(())
    }
}

/// A client (for the pub/sub relay) and a multiplexed connection that has answered a PING.
async fn connect_redis(config: &Config) -> anyhow::Result<(redis::Client, ConnectionManager)> {
    let client = redis::Client::open(config.redis_url.expose())?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.redis_connect_timeout()))
        .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
        .set_number_of_retries(1);
    let connect = ConnectionManager::new_with_config(client.clone(), manager_config);
    let mut connection = tokio::time::timeout(config.redis_connect_timeout(), connect)
        .await
        .context("timed out")??;
    let _: String = redis::cmd("PING").query_async(&mut connection).await?;
    Ok((client, connection))
}

async fn purge_periodically(store: MemoryStore, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(MEMORY_PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        if let Ok(report) = store.cleanup().await {
            tracing::debug!(?report, "memory store purged");
        }
    }
}
