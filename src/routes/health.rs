//! Liveness and readiness, for load balancers and orchestrators.

use crate::state::AppState;
use crate::store::{BackendKind, RedisHealth};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// `GET /health`'s answer.
#[derive(Serialize, ToSchema)]
struct Liveness {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /health`: the process is up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Liveness: the process is up",
    responses((status = 200, description = "Always `{\"status\": \"ok\"}`.", body = Liveness)),
)]
async fn health() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// `GET /ready`'s answer.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ready`, or `not ready` (with `503`).
    #[schema(example = "ready")]
    status: &'static str,
    /// The backend serving jobs now (`memory` during a Redis outage).
    backend: BackendKind,
    redis_connected: bool,
    pubsub_connected: bool,
    /// Serving from memory, or without the Redis relay of changes.
    degraded: bool,
    /// `WORKER_CONCURRENCY`.
    workers: u16,
    /// Why not ready; only with `503`.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// `GET /ready`: 200 while jobs can be served (from Redis, or from memory during an outage),
/// with the backend in use and what is degraded; 503 while Redis answers but refuses this
/// server (a wrong password, a certificate): a configuration error that waiting does not mend.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    summary = "Readiness: whether jobs can be served, and from which backend",
    responses(
        (status = 200, description = "Jobs can be served (from memory during a Redis outage: `degraded`).", body = Readiness),
        (status = 503, description = "Redis answers but refuses this server (a password, a certificate): a configuration error.", body = Readiness),
    ),
)]
async fn ready(State(state): State<AppState>) -> Response {
    let health = state.store.redis_health().await;
    let pubsub_connected = state.relay.is_connected();
    let mut body = Readiness {
        status: "ready",
        backend: state.store.kind(),
        redis_connected: matches!(health, RedisHealth::Up),
        pubsub_connected,
        degraded: state.store.is_degraded() || !pubsub_connected,
        workers: state.config.worker_concurrency,
        detail: None,
    };
    if let RedisHealth::Refusing(error) = health {
        body.status = "not ready";
        body.detail = Some(format!("Redis refuses this server: {error}"));
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(body).into_response()
}
