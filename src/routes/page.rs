//! The bundled web page, embedded in the binary so it is served from any working directory.

use crate::state::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// No inline scripts or styles, nothing from another origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(script))
        .routes(routes!(style))
}

#[utoipa::path(
    get,
    path = "/",
    tag = "page",
    summary = "The bundled web page (start a job, watch it, the dashboard)",
    responses((status = 200, description = "The page.", content_type = "text/html")),
)]
async fn index() -> impl IntoResponse {
    asset(
        "text/html; charset=utf-8",
        include_str!("../../static/index.html"),
    )
    .await
}

#[utoipa::path(
    get,
    path = "/app.js",
    tag = "page",
    summary = "The page's script",
    responses((status = 200, description = "The script.", content_type = "text/javascript")),
)]
async fn script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    )
    .await
}

#[utoipa::path(
    get,
    path = "/style.css",
    tag = "page",
    summary = "The page's styles",
    responses((status = 200, description = "The styles.", content_type = "text/css")),
)]
async fn style() -> impl IntoResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    )
    .await
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, body)
}
