//! `GET /docs`: an interactive API reference (Swagger UI) over `GET /openapi.json`, its files
//! embedded in the binary (`utoipa-swagger-ui`'s `vendored` feature): nothing is fetched from
//! another origin, at build time or at run time.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::{Arc, LazyLock};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::Config;

/// What the page loads: our document, and no validator badge (Swagger UI would fetch it from
/// the validator's site).
static CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::new(["/openapi.json"]).validator_url("none")));

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(docs))
        .routes(routes!(docs_index))
        .routes(routes!(docs_file))
}

#[utoipa::path(
    get,
    path = "/docs",
    tag = "documentation",
    summary = "The API reference (redirects to `/docs/`)",
    responses((status = 308, description = "To `/docs/`, whose files are found relative to it.")),
)]
async fn docs() -> Redirect {
    Redirect::permanent("/docs/")
}

#[utoipa::path(
    get,
    path = "/docs/",
    tag = "documentation",
    summary = "The API reference: Swagger UI over `/openapi.json`, served from the binary",
    responses((status = 200, description = "Its page.", content_type = "text/html")),
)]
async fn docs_index() -> Result<Response, ApiError> {
    asset("index.html")
}

#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "documentation",
    summary = "One of the API reference's scripts, styles and icons",
    params(("file" = String, Path, description = "A file of Swagger UI's distribution.", example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The file, with its content type."),
        (status = 404, description = "No such file.", body = crate::error::Detail),
    ),
)]
async fn docs_file(Path(file): Path<String>) -> Result<Response, ApiError> {
    asset(&file)
}

fn asset(file: &str) -> Result<Response, ApiError> {
    let found = utoipa_swagger_ui::serve(file, CONFIG.clone()).map_err(|error| {
        tracing::error!(%error, file, "the embedded Swagger UI could not be served");
        ApiError::Internal
    })?;
    let found = found.ok_or(ApiError::RouteNotFound)?;
    let encoding = found
        .gzpipped
        .then_some([(header::CONTENT_ENCODING, "gzip")]);
    let headers = [
        (header::CONTENT_TYPE, found.content_type),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
    ];
    Ok((headers, encoding, found.bytes.into_owned()).into_response())
}
