//! Liveness and readiness, for load balancers and orchestrators.

use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// `GET /health`: the process is up.
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 while jobs can be served (from Redis, or from memory during an outage),
/// with the backend in use and what is degraded.
async fn ready(State(state): State<AppState>) -> Json<Value> {
    let backend = state.store.kind();
    let redis_connected = state.store.redis_connected().await;
    let pubsub_connected = state.relay.is_connected();
    Json(json!({
        "status": "ready",
        "backend": backend,
        "redis_connected": redis_connected,
        "pubsub_connected": pubsub_connected,
        "degraded": state.store.is_degraded() || !pubsub_connected,
        "workers": state.config.worker_concurrency,
    }))
}
