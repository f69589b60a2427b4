//! The job API: read a job (with ETag, or by long-poll), and report its progress.

use super::quota::Client;
use super::responses::{ReadFailures, ReportFailures};
use crate::auth::Admin;
use crate::cache::CACHE_SUBSCRIBE_WAIT;
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, JobIdPath};
use crate::follow::{self, Started};
use crate::job::{Change, Job, JobEvent, JobId, payload};
use crate::metrics::{StreamPath, Transport};
use crate::rate_limit::Limit;
use crate::state::AppState;
use crate::store::History;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long a long-poll waits when the client names no `timeout`, in seconds.
pub const LONG_POLL_DEFAULT_SECS: f64 = 30.0;
/// The longest long-poll a client may ask for, in seconds.
pub const LONG_POLL_MAX_SECS: f64 = 120.0;
/// The longest `current_step`, in characters.
pub const MAX_STEP_CHARS: usize = 500;
/// The longest `error` of a failed job, in characters.
pub const MAX_ERROR_CHARS: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_job))
        .routes(routes!(report_progress))
        .routes(routes!(complete_job))
        .routes(routes!(fail_job))
}

/// The `{job_id}` of a job's paths, for the API document ([`JobIdPath`] reads it).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a description of the path; `JobIdPath` explains a bad one
pub(super) struct JobPath {
    /// The job's id, as its creation answered it.
    #[param(example = "3f2c8a4e-9b1d-4c7a-8e6f-2a5b7c9d0e1f")]
    job_id: JobId,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct GetQuery {
    /// Long-poll: answer as soon as the job's seq moves past this one.
    wait_for_change: Option<u64>,
    /// Longest wait of a long-poll, in seconds: 0 to `LONG_POLL_MAX_SECS` (120), default
    /// `LONG_POLL_DEFAULT_SECS` (30).
    #[param(minimum = 0, maximum = 120)]
    timeout: Option<f64>,
}

/// `GET /api/v4/job/{job_id}`: the job, or 304 when `If-None-Match` names its current seq.
/// With `?wait_for_change=<seq>` it waits (up to `timeout` seconds) for a newer state first.
#[utoipa::path(
    get,
    path = "/api/v4/job/{job_id}",
    tag = "jobs",
    summary = "Read a job (ETag, or long-poll for its next change)",
    description = "Answers the job with `ETag: \"<seq>\"`; `If-None-Match` naming the current seq \
        answers `304`. With `wait_for_change=<seq>` the answer waits (up to `timeout` seconds) \
        until the job's seq moves past `<seq>` — then or at the timeout it answers the job as it \
        is; a long-poll counts against `STREAM_RATE_PER_MIN`. Public: knowing the id is the \
        capability to read the job.",
    params(
        JobPath,
        GetQuery,
        ("if-none-match" = Option<String>, Header, description = "An ETag this client holds (`\"<seq>\"`, weak or strong, or `*`)."),
    ),
    responses(
        (status = 200, description = "The job.", body = Job,
            headers(("etag" = String, description = "`\"<seq>\"`"))),
        (status = 304, description = "The job is still at the seq `If-None-Match` names.",
            headers(("etag" = String, description = "`\"<seq>\"`"))),
        ReadFailures,
    ),
)]
async fn get_job(
    State(state): State<AppState>,
    Client(client): Client,
    JobIdPath(job_id): JobIdPath,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<GetQuery>,
) -> Result<Response, ApiError> {
    match answer_job(&state, client, job_id, &headers, query).await {
        Err(ApiError::JobNotFound) => Err(expired_or_missing(&state, job_id).await),
        answer => answer,
    }
}

async fn answer_job(
    state: &AppState,
    client: ClientAddr,
    job_id: JobId,
    headers: &HeaderMap,
    query: GetQuery,
) -> Result<Response, ApiError> {
    if let Some(seq) = query.wait_for_change {
        state.limits.admit(Limit::Stream, client.ip)?;
        let secs = query.timeout.unwrap_or(LONG_POLL_DEFAULT_SECS);
        if !(0.0..=LONG_POLL_MAX_SECS).contains(&secs) {
            return Err(ApiError::invalid(format!(
                "timeout must be from 0 to {LONG_POLL_MAX_SECS} seconds"
            )));
        }
        return long_poll(state, job_id, seq, Duration::from_secs_f64(secs)).await;
    }
    let event = current_state(state, job_id).await?;
    if etag_matches(headers, event.seq) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag(event.seq))]).into_response());
    }
    Ok(event_response(&event, StatusCode::OK))
}

/// What to answer for a job that is not stored: 410 with its history record while the history
/// keeps it, else 404.
async fn expired_or_missing(state: &AppState, job_id: JobId) -> ApiError {
    match state.store.history_record(job_id).await {
        Ok(Some(record)) => ApiError::JobExpired(Box::new(record)),
        Ok(None) => ApiError::JobNotFound,
        Err(error) => error.into(),
    }
}

/// The job's state: from the cache when it holds the job, else from the store (then cached, once
/// this instance is subscribed to the job's changes).
async fn current_state(state: &AppState, job_id: JobId) -> Result<JobEvent, ApiError> {
    if let Some(event) = state.cache.get(job_id) {
        return Ok(event);
    }
    let wait = state.relay.is_connected().then_some(CACHE_SUBSCRIBE_WAIT);
    let opened = follow::subscribe_and_read(&state.hub, &state.store, job_id, wait).await?;
    let event = JobEvent::from(&opened.job);
    if opened.relayed {
        state.cache.insert(opened.subscription, event.clone());
    }
    Ok(event)
}

/// Answers with the first state newer than `seq`, or the current one when `limit` passes first.
async fn long_poll(
    state: &AppState,
    job_id: JobId,
    seq: u64,
    limit: Duration,
) -> Result<Response, ApiError> {
    let mut follower = match follow::start(&state.hub, &state.store, job_id, Some(seq)).await? {
        Started::AlreadyFinal(event) => return Ok(event_response(&event, StatusCode::OK)),
        Started::Streaming(follower) => follower,
    };
    let _open = state
        .metrics
        .streams()
        .open(Transport::LongPoll, StreamPath::Axum);
    let newer = tokio::select! {
        frame = follower.next() => frame,
        _ = tokio::time::sleep(limit) => None,
        _ = state.shutdown.cancelled() => None,
    };
    match newer {
        Some(frame) => Ok(event_response(&frame.event, StatusCode::OK)),
        None => Ok(event_response(
            &current_state(state, job_id).await?,
            StatusCode::OK,
        )),
    }
}

#[derive(Deserialize, ToSchema)]
pub(super) struct ProgressReport {
    /// 0 to 100, never lower than the job's current progress.
    #[schema(minimum = 0, maximum = 100, example = 40)]
    progress: i64,
    /// At most `MAX_STEP_CHARS` (500) characters; blank keeps the current step.
    #[schema(example = "Reading sources")]
    current_step: Option<String>,
}

impl ProgressReport {
    /// The change this report asks for, or why it is invalid.
    pub(super) fn change(self) -> Result<Change, ApiError> {
        let progress = u8::try_from(self.progress)
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| ApiError::invalid("progress must be an integer from 0 to 100"))?;
        let step = validate_step(self.current_step)?;
        Ok(Change::Progress {
            progress,
            step,
            fence: None,
        })
    }
}

/// `POST /api/v4/job/{job_id}/progress`.
#[utoipa::path(
    post,
    path = "/api/v4/job/{job_id}/progress",
    tag = "jobs",
    summary = "Report a job's progress",
    description = "A pending job becomes `processing`. Progress never goes backwards (`409`).",
    params(JobPath),
    request_body = ProgressReport,
    responses((status = 200, description = "The job after the change.", body = Job), ReportFailures),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn report_progress(
    _: Admin,
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
    ApiJson(report): ApiJson<ProgressReport>,
) -> Result<Response, ApiError> {
    let event = state.store.apply_event(job_id, report.change()?).await?;
    answer_applied(&state, event)
}

#[derive(Deserialize, ToSchema)]
struct Completion {
    /// Any JSON, stored and served verbatim.
    #[schema(value_type = serde_json::Value)]
    result: Box<RawValue>,
    /// At most `MAX_STEP_CHARS` (500) characters; default `Complete`.
    current_step: Option<String>,
}

/// `POST /api/v4/job/{job_id}/complete`.
#[utoipa::path(
    post,
    path = "/api/v4/job/{job_id}/complete",
    tag = "jobs",
    summary = "Complete a job with its result",
    params(JobPath),
    request_body = Completion,
    responses((status = 200, description = "The completed job.", body = Job), ReportFailures),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn complete_job(
    _: Admin,
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
    ApiJson(completion): ApiJson<Completion>,
) -> Result<Response, ApiError> {
    validate_payload("result", &completion.result)?;
    let step = validate_step(completion.current_step)?.unwrap_or_else(|| "Complete".into());
    let change = Change::Complete {
        result: completion.result,
        step,
        fence: None,
    };
    answer_applied(&state, state.store.apply_event(job_id, change).await?)
}

#[derive(Deserialize, ToSchema)]
struct Failure {
    /// Why: 1 to `MAX_ERROR_CHARS` (10000) characters, trimmed.
    #[schema(example = "the source went away")]
    error: String,
}

/// `POST /api/v4/job/{job_id}/fail`.
#[utoipa::path(
    post,
    path = "/api/v4/job/{job_id}/fail",
    tag = "jobs",
    summary = "Fail a job",
    params(JobPath),
    request_body = Failure,
    responses((status = 200, description = "The failed job.", body = Job), ReportFailures),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn fail_job(
    _: Admin,
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
    ApiJson(failure): ApiJson<Failure>,
) -> Result<Response, ApiError> {
    let error = failure.error.trim();
    if error.is_empty() || error.chars().count() > MAX_ERROR_CHARS {
        return Err(ApiError::invalid(format!(
            "error must be 1 to {MAX_ERROR_CHARS} characters"
        )));
    }
    let change = Change::Fail {
        error: error.to_owned(),
        fence: None,
    };
    answer_applied(&state, state.store.apply_event(job_id, change).await?)
}

/// Refuses a payload that is JSON to the letter but not to every reader (see [`payload::check`]),
/// so it is never stored.
pub(super) fn validate_payload(field: &str, raw: &RawValue) -> Result<(), ApiError> {
    payload::check(raw).map_err(|error| {
        ApiError::invalid(format!(
            "{field} is not JSON every client can read ({error}): strings must be valid \
             Unicode (no lone surrogate) and numbers must fit a 64-bit float"
        ))
    })
}

fn validate_step(step: Option<String>) -> Result<Option<String>, ApiError> {
    match step {
        Some(step) if step.chars().count() > MAX_STEP_CHARS => Err(ApiError::invalid(format!(
            "current_step is longer than {MAX_STEP_CHARS} characters"
        ))),
        Some(step) if step.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// `"<seq>"`, the job's entity tag.
pub(super) fn etag(seq: u64) -> String {
    format!("\"{seq}\"")
}

/// Whether `If-None-Match` names the current seq (weak or strong), or is `*`.
fn etag_matches(headers: &HeaderMap, seq: u64) -> bool {
    let current = etag(seq);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == current)
}

/// Answers with a job this instance just changed, and shows it to the cache at once, so that the
/// client's next read sees its own change before the relay brings it.
pub(super) fn answer_applied(state: &AppState, event: JobEvent) -> Result<Response, ApiError> {
    state.cache.offer(&event);
    Ok(event_response(&event, StatusCode::OK))
}

/// A job state that is already serialised, with its ETag.
fn event_response(event: &JobEvent, status: StatusCode) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "application/json".to_owned()),
        (header::ETAG, etag(event.seq)),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
    ];
    (status, headers, event.json.clone()).into_response()
}
