//! The HTTP surface: one router factory, with every layer added in this one place.

mod admin;
mod batch;
mod cancel;
mod counted;
mod create;
mod dashboard;
mod docs;
pub mod document;
mod health;
mod history;
mod jobs;
pub mod metrics;
mod page;
mod priority;
mod quota;
mod responses;
mod shapes;
pub mod sse;
mod stats;
mod webhooks;
pub mod ws;

pub use cancel::MAX_CANCEL_REASON_CHARS;

use crate::error::ApiError;
use crate::request_id::{self, NewRequestId, REQUEST_ID_HEADER};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::map_request;
use axum::response::{IntoResponse, Response};
use std::any::Any;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

/// Every route with its documentation. Routes are registered only here and only with
/// `OpenApiRouter::routes(routes!(handler))`, so a route cannot be served without being in
/// `GET /openapi.json` (clippy's `disallowed-methods` refuses the other ways, see clippy.toml).
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(document::frame())
        .merge(create::routes())
        .merge(jobs::routes())
        .merge(batch::routes())
        .merge(cancel::routes())
        .merge(priority::routes())
        .merge(admin::routes())
        .merge(dashboard::routes())
        .merge(history::routes())
        .merge(webhooks::routes())
        .merge(stats::routes())
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(page::routes())
        .merge(sse::routes())
        .merge(ws::routes())
        .merge(document::routes())
        .merge(docs::routes())
}

/// The whole application's routes over `state`.
pub fn router(state: AppState) -> Router {
    let (routes, _document) = api().split_for_parts();
    with_layers(routes, state)
}

/// `routes` behind the application's fallbacks and layers: what [`router`] serves, and what a
/// test wraps around routes of its own to drive the layers (a handler that panics, say).
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let routes = routes
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(counted::CountLayer(state.metrics.clone()));
    let routes = match state.config.cors_allowed_origins.layer() {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    // Outermost last: an unusable client id is dropped, every request gets an id, the trace
    // span carries it, and every response (preflights and errors included) sends it back.
    routes
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(TraceLayer::new_for_http().make_span_with(request_id::span_for))
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, NewRequestId))
        .layer(map_request(request_id::drop_unusable))
        .with_state(state)
}

/// A handler that panicked answers 500 with `{"detail"}` (and the panic is logged), rather than
/// dropping the connection.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    tracing::error!(panic = message, "a handler panicked");
    ApiError::Internal.into_response()
}
