//! `POST /api/v4/job/{job_id}/cancel`: the admin, or the client holding the job's control token,
//! ends a pending or running job as `cancelled`.

use super::jobs::{JobPath, answer_applied};
use super::responses::CancelFailures;
use crate::auth::{self, Admin};
use crate::error::ApiError;
use crate::extract::JobIdPath;
use crate::job::{Change, Job, JobEvent, JobId};
use crate::state::AppState;
use crate::store::JobStore;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The longest `reason` a cancel may give, in characters.
pub const MAX_CANCEL_REASON_CHARS: usize = 500;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(cancel_job))
}

/// A cancel's optional body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    /// Why: the job's `error` becomes `Cancelled: <reason>` (without one, `Cancelled`).
    #[schema(max_length = 500, example = "the customer withdrew the request")]
    reason: Option<String>,
}

/// Cancels the job in one atomic change: a pending job is never started, a running one's worker
/// is refused its next step (on whatever instance it runs), streams send `cancelled` and end.
/// A finished job answers 409.
#[utoipa::path(
    post,
    path = "/api/v4/job/{job_id}/cancel",
    tag = "jobs",
    summary = "Cancel a pending or running job",
    description = "Ends the job as `cancelled` in one atomic change, through any instance: a \
        pending job is never started; a running job's worker is refused its next step (within \
        one `DEEP_RESEARCH_STEP_MS`), and an external reporter's next report answers 409. \
        Streams send a `cancelled` event and end (WebSocket: close 1000). Allowed to the admin \
        and to the client that created the job, with `Authorization: Bearer <control_token>` \
        (the token is in the creation answer only). The body is optional.",
    params(JobPath),
    request_body(content = Option<CancelRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "The cancelled job.", body = Job),
        CancelFailures,
    ),
    security(("control_token" = []), ("admin_token" = []), ("session_cookie" = [])),
)]
async fn cancel_job(
    admin: Result<Admin, ApiError>,
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !holds_control_token(&state, job_id, &headers) {
        admin?;
    }
    let reason = cancel_reason(&body)?;
    let job = state.store.apply(job_id, Change::Cancel { reason }).await?;
    tracing::info!(%job_id, "job cancelled");
    answer_applied(&state, JobEvent::from(&job))
}

/// Whether the request carries `Authorization: Bearer <the job's control token>`.
fn holds_control_token(state: &AppState, job_id: JobId, headers: &HeaderMap) -> bool {
    auth::bearer(headers).is_some_and(|token| state.control_tokens.verify(job_id, token))
}

/// The job's error text: `Cancelled`, or `Cancelled: <reason>` from an optional JSON body.
fn cancel_reason(body: &[u8]) -> Result<String, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("Cancelled".into());
    }
    let request: CancelRequest = serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid(format!("invalid cancel body: {error}")))?;
    match request.reason.as_deref().map(str::trim) {
        None | Some("") => Ok("Cancelled".into()),
        Some(reason) if reason.chars().count() > MAX_CANCEL_REASON_CHARS => Err(ApiError::invalid(
            format!("reason is longer than {MAX_CANCEL_REASON_CHARS} characters"),
        )),
        Some(reason) => Ok(format!("Cancelled: {reason}")),
    }
}
