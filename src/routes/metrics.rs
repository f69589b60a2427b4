//! The HTTP surface's metrics: every request counted by route and status, `GET /metrics` for the
//! admin (a scraper sends the bearer token), and the same unauthenticated on `METRICS_ADDR`.

use crate::auth::Admin;
use crate::metrics::{CONTENT_TYPE, UNMATCHED_ROUTE};
use crate::state::AppState;
use crate::store::WorkQueue;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Instant;
use tokio::net::TcpListener;

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_for_admin))
}

/// `GET /metrics`: admitted like the admin endpoints.
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

/// Counts the request by method, route template (never the raw path: ids would mint labels)
/// and status, with its latency (for a stream, until its response head).
pub async fn count_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let status = response.status().as_u16();
    state
        .metrics
        .http()
        .answered(method.as_str(), route, status, started.elapsed());
    response
}
