//! Liveness and readiness, for load balancers and orchestrators.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
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

/// `GET /ready`: 200 while jobs can be served, with the backend in use and whether Redis answers.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let backend = state.store.kind();
    let redis_connected = state.store.redis_connected().await;
    let memory = backend == crate::store::BackendKind::Memory;
    let serving = redis_connected || memory;
    let pubsub_connected = state.relay.as_ref().map(|relay| relay.is_connected());
    let status = if serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if serving { "ready" } else { "unavailable" },
        "backend": backend,
        "redis_connected": redis_connected,
        "pubsub_connected": pubsub_connected,
        "degraded": memory || pubsub_connected == Some(false),
        "workers": state.config.worker_concurrency,
    });
    (status, Json(body))
}
