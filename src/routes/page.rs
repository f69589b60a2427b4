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
        .routes(routes!(analytics))
        .routes(routes!(style))
}

/// One handler per file of `static/`, each `GET path` with its own entry in the API document:
/// `handler: path => file as media type, the operation's summary, the answer's description;`.
macro_rules! static_files {
    ($($handler:ident: $path:tt => $file:tt as $media_type:tt, $summary:tt, $answer:tt;)*) => {$(
        #[utoipa::path(
            get,
            path = $path,
            tag = "page",
            summary = $summary,
            responses((status = 200, description = $answer, content_type = $media_type)),
        )]
        async fn $handler() -> impl IntoResponse {
            asset(
                concat!($media_type, "; charset=utf-8"),
                include_str!(concat!("../../static/", $file)),
            )
        }
    )*};
}

static_files! {
    index: "/" => "index.html" as "text/html",
        "The bundled web page (start a job, watch it, the dashboard)", "The page.";
    script: "/app.js" => "app.js" as "text/javascript", "The page's script", "The script.";
    analytics: "/analytics.js" => "analytics.js" as "text/javascript",
        "The page's analytics panel (GET /api/v4/stats drawn as inline SVG)", "The script.";
    style: "/style.css" => "style.css" as "text/css", "The page's styles", "The styles.";
}

/// `body`, with the headers every file of the page is served with.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, body)
}
