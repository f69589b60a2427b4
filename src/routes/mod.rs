//! The HTTP surface: one router factory, with every layer added in this one place.

mod admin;
mod dashboard;
mod health;
mod jobs;
mod page;
mod quota;
pub mod sse;
pub mod ws;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::trace::TraceLayer;

/// The whole application's routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(jobs::routes())
        .merge(admin::routes())
        .merge(dashboard::routes())
        .merge(health::routes())
        .merge(page::routes())
        .merge(sse::routes())
        .merge(ws::routes())
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
