//! `GET /metrics` for the admin (a scraper sends the bearer token), the same unauthenticated on
//! `METRICS_ADDR`, and the sampling of the figures that are read rather than counted.

use super::responses::AdminFailures;
use crate::auth::Admin;
use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;
use crate::store::WorkQueue;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics_for_admin))
}

/// `GET /metrics`: admitted like the admin endpoints.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Metrics in the Prometheus text format",
    description = "Also served unauthenticated on `METRICS_ADDR`, when set (a listener of its own, \
        not this API).",
    responses(
        (status = 200, description = "The exposition.", content_type = "text/plain; version=0.0.4", body = String),
        AdminFailures,
    ),
    security(("admin_token" = [])),
)]
async fn metrics_for_admin(_: Admin, State(state): State<AppState>) -> Response {
    exposition(&state)
}

/// `GET /metrics` on `METRICS_ADDR`: whoever can reach that address may read it.
async fn metrics_for_anyone(State(state): State<AppState>) -> Response {
    exposition(&state)
}

/// Every metric in the text format, the backend in use sampled now.
fn exposition(state: &AppState) -> Response {
    state
        .metrics
        .store()
        .sample_backend(state.store.is_degraded());
    let body = state.metrics.render();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// Samples what is read rather than counted: the backend (and time degraded), Redis's memory
/// and the queue's depth; and folds histogram samples into their buckets.
pub async fn sample(state: &AppState) {
    let metrics = state.metrics.store();
    metrics.sample_backend(state.store.is_degraded());
    if let Some((used, max)) = state.store.redis_memory().await {
        metrics.used_memory.set(used as f64);
        metrics.max_memory.set(max as f64);
    }
    if let Ok(queued) = state.store.queued_len().await {
        metrics.queue_depth.set(queued as f64);
    }
    state.metrics.run_upkeep();
}

/// Serves `GET /metrics`, unauthenticated, on `listener` until shutdown.
pub fn spawn_private(listener: TcpListener, state: AppState) {
    let shutdown = state.shutdown.clone();
    // Not the application's router, nor in its document: a listener of its own for scrapers.
    #[allow(clippy::disallowed_methods)]
    let router = Router::new()
        .route("/metrics", get(metrics_for_anyone))
        .with_state(state);
    tokio::spawn(async move {
        let serving =
            axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(error) = serving.await {
            tracing::warn!(%error, "the METRICS_ADDR listener stopped");
        }
    });
}
