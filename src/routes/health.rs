//! Liveness and readiness, for load balancers and orchestrators.

use crate::state::AppState;
use crate::store::RedisHealth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
/// with the backend in use and what is degraded; 503 while Redis answers but refuses this
/// server (a wrong password, a certificate): a configuration error that waiting does not mend.
async fn ready(State(state): State<AppState>) -> Response {
    let health = state.store.redis_health().await;
    let pubsub_connected = state.relay.is_connected();
    let mut body = json!({
        "status": "ready",
        "backend": state.store.kind(),
        "redis_connected": matches!(health, RedisHealth::Up),
        "pubsub_connected": pubsub_connected,
        "degraded": state.store.is_degraded() || !pubsub_connected,
        "workers": state.config.worker_concurrency,
    });
    if let RedisHealth::Refusing(error) = health {
        body["status"] = json!("not ready");
        body["detail"] = json!(format!("Redis refuses this server: {error}"));
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(body).into_response()
}
