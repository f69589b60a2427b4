//! `GET /openapi.json`: the API document, generated from the routes' own annotations (every
//! route is registered through `utoipa_axum`'s `OpenApiRouter`, so none is served undocumented).

use crate::auth::SESSION_COOKIE;
use crate::error::Detail;
use crate::state::AppState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Tag};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The security scheme of `Authorization: Bearer <ADMIN_TOKEN>`.
pub const BEARER: &str = "admin_token";
/// The security scheme of a job's `control_token` (its creator may cancel it).
pub const CONTROL: &str = "control_token";
/// The security scheme of the session cookie `POST /api/v4/session` sets.
pub const SESSION: &str = "session_cookie";

const DESCRIPTION: &str = "Real-time job progress: create jobs, report their progress, and \
follow them by polling (with ETag or long-poll), Server-Sent Events or WebSocket.\n\n\
Every error is answered as `{\"detail\": \"...\"}`; an unknown path is `404` and a known path \
with another method is `405`, both with that body.\n\n\
Admin operations (creating jobs of any kind, reporting progress, listings, cleanup, metrics) \
take `Authorization: Bearer <ADMIN_TOKEN>` or the session cookie; while `ADMIN_TOKEN` is unset \
they answer loopback clients only (`403` otherwise).\n\n\
Every answer carries `x-request-id`: the client's own when it sends one of 1 to 128 characters \
of `A-Z a-z 0-9 - _ . : / + =`, else a new UUID; the server's log lines of that request carry \
it too.";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The document's frame: what no route annotation says (info, security schemes, shared schemas).
pub fn frame() -> OpenApi {
    let bearer = bearer_scheme("`Authorization: Bearer <ADMIN_TOKEN>`.");
    let control = bearer_scheme(
        "`Authorization: Bearer <control_token>`: the token a job's creation answered, which lets \
         its creator cancel that job.",
    );
    let cookie = ApiKey::Cookie(ApiKeyValue::with_description(
        SESSION_COOKIE,
        "Set by `POST /api/v4/session`, for browsers (EventSource cannot send headers).",
    ));
    let components = ComponentsBuilder::new()
        .schema(Detail::name(), Detail::schema())
        .security_scheme(BEARER, bearer)
        .security_scheme(CONTROL, control)
        .security_scheme(SESSION, SecurityScheme::ApiKey(cookie))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("jobcast")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION)),
        )
        .components(Some(components))
        .tags(Some(
            [
                "jobs",
                "streams",
                "dashboard",
                "webhooks",
                "operations",
                "page",
                "documentation",
            ]
            .map(Tag::new),
        ))
        .build()
}

/// A bearer-token scheme, `description` saying which token.
fn bearer_scheme(description: &str) -> SecurityScheme {
    let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer);
    SecurityScheme::Http(scheme.description(Some(description)).build())
}

/// The document of every route [`super::router`] serves.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| super::api().into_openapi())
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "documentation",
    summary = "This API document (OpenAPI 3.1)",
    description = "Public, like the page: it tells no more than the code does.",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| document().to_json().expect("the document serialises"));
    ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()
}
