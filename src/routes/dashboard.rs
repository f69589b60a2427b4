//! What the dashboard needs: a sign-in for browsers, the job listing and every job's changes.

use super::responses::{AdminFailures, ListFailures, StoreFailures};
use super::shapes::JobSummary;
use crate::auth::{self, Admin, SESSION_COOKIE};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::follow::{self, RELAY_WAIT};
use crate::hub::{Scope, Subscription};
use crate::job::{JobEvent, JobStatus};
use crate::search::Search;
use crate::state::AppState;
use crate::store::JobStore;
use crate::store::listing::{Cursor, ListQuery, MAX_PAGE};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long a browser session lasts, in seconds.
pub const SESSION_TTL_SECS: u64 = 12 * 3600;
/// The page size when the client names none.
pub const DEFAULT_PAGE: usize = 20;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(list_jobs))
        .routes(routes!(all_job_events))
}

/// `POST /api/v4/session` with the bearer token: sets the session cookie EventSource will send.
/// Without `ADMIN_TOKEN` there is nothing to sign in to (loopback clients are admitted as such).
#[utoipa::path(
    post,
    path = "/api/v4/session",
    tag = "dashboard",
    summary = "Sign in: exchange the bearer token for a session cookie",
    description = "Sets the `jobcast_session` cookie (`Path=/api/v4`, `HttpOnly`, \
        `SameSite=Strict`, for `SESSION_TTL_SECS` = 12 h) that browsers' EventSource sends. \
        Without `ADMIN_TOKEN` no cookie is set: loopback clients are admitted as they are.",
    responses(
        (status = 204, description = "Signed in.", headers(("set-cookie" = String, description = "The session cookie (absent while `ADMIN_TOKEN` is unset)."))),
        AdminFailures,
    ),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn sign_in(_: Admin, State(state): State<AppState>) -> Response {
    let Some(token) = &state.config.admin_token else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/api/v4; Max-Age={SESSION_TTL_SECS}; HttpOnly; SameSite=Strict",
        auth::new_session(token, SESSION_TTL_SECS)
    );
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

/// `DELETE /api/v4/session`: ends the session on every instance (its id is revoked until the
/// cookie would have expired) and forgets the cookie.
#[utoipa::path(
    delete,
    path = "/api/v4/session",
    tag = "dashboard",
    summary = "Sign out: revoke the session on every instance and clear the cookie",
    responses(
        (status = 204, description = "Signed out (also when there was no session).", headers(("set-cookie" = String, description = "Clears the cookie."))),
        StoreFailures,
    ),
)]
async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = &state.config.admin_token
        && let Some(session) = auth::presented_session(&headers, token)
    {
        state
            .store
            .revoke_session(&session.id, session.remaining())
            .await?;
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/api/v4; Max-Age=0; HttpOnly; SameSite=Strict");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only jobs in this state: `pending`, `processing`, `completed`, `failed` or `cancelled`.
    status: Option<String>,
    /// Only jobs whose product name and ingredients hold these words (case and accents do not
    /// matter; the last word may be the beginning of one, unless a space ends the query).
    #[param(example = "diet co")]
    q: Option<String>,
    /// Jobs per page: 1 to `MAX_PAGE`, default `DEFAULT_PAGE` (20).
    #[param(minimum = 1)]
    limit: Option<usize>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// One page of a listing.
#[derive(Serialize, ToSchema)]
struct JobPage {
    /// Newest first.
    #[schema(value_type = Vec<JobSummary>)]
    jobs: Vec<Value>,
    /// Where the next page starts; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// `GET /api/v4/jobs?status=&q=&limit=&cursor=`: jobs newest first, without their results.
#[utoipa::path(
    get,
    path = "/api/v4/jobs",
    tag = "dashboard",
    summary = "List jobs, newest first, without their results",
    params(ListParams),
    responses((status = 200, description = "One page.", body = JobPage), ListFailures),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn list_jobs(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<JobPage>, ApiError> {
    let query = list_query(params)?;
    let page = state.store.list(&query).await?;
    Ok(Json(JobPage {
        jobs: page.jobs.iter().filter_map(summary).collect(),
        next_cursor: page.next.map(|cursor| cursor.to_string()),
    }))
}

fn list_query(params: ListParams) -> Result<ListQuery, ApiError> {
    Ok(ListQuery {
        status: status_param(params.status.as_deref())?,
        search: search_param(params.q.as_deref())?,
        limit: limit_param(params.limit)?,
        after: cursor_param(params.cursor.as_deref())?,
    })
}

/// A `q` query parameter: empty or absent is no search.
pub(super) fn search_param(text: Option<&str>) -> Result<Option<Search>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => Search::parse(text).map(Some).map_err(ApiError::invalid),
    }
}

/// A `status` query parameter: empty or absent is any.
pub(super) fn status_param(text: Option<&str>) -> Result<Option<JobStatus>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_value(Value::String(text.to_owned()))
            .map(Some)
            .map_err(|_| {
                ApiError::invalid(
                    "status must be pending, processing, completed, failed or cancelled",
                )
            }),
    }
}

/// A `limit` query parameter: 1 to `MAX_PAGE`, default `DEFAULT_PAGE`.
pub(super) fn limit_param(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be from 1 to {MAX_PAGE}"
        )));
    }
    Ok(limit)
}

/// A `cursor` query parameter: the previous page's `next_cursor`.
pub(super) fn cursor_param(text: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<Cursor>()
            .map(Some)
            .map_err(|()| ApiError::bad_request("Invalid cursor")),
    }
}

/// A job without its result, for lists; `None` (logged) for a job no `Value` can hold. Stores
/// refuse such records already; this keeps one that slips through from failing the whole list.
fn summary(job: &crate::job::Job) -> Option<Value> {
    let mut value = match serde_json::to_value(job) {
        Ok(value) => value,
        Err(error) => {
            tracing::warn!(job_id = %job.job_id, %error, "skipping a job that cannot be listed");
            return None;
        }
    };
    if let Some(fields) = value.as_object_mut() {
        fields.remove("result");
    }
    Some(value)
}

/// `GET /api/v4/jobs/events`: every job's changes as SSE (`created`, `progress`, `completed`,
/// `failed`), each with the full job JSON. Lists are fetched separately; this only adds changes.
#[utoipa::path(
    get,
    path = "/api/v4/jobs/events",
    tag = "dashboard",
    summary = "Every job's changes, as Server-Sent Events",
    description = "An endless `text/event-stream`: one event per change of any job, \
        `event: created` (the job's first state), `progress`, `completed` or `failed`, its \
        `data:` the job's full JSON (the `Job` schema). No `id:` and no resume: fetch the \
        listing (`GET /api/v4/jobs`) first, then apply these changes (a job's `seq` orders \
        them). A comment line (`:`) is sent every `SSE_KEEPALIVE_SECS` while quiet.",
    responses(
        (status = 200, description = "The stream.", content_type = "text/event-stream", body = String),
        AdminFailures,
    ),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn all_job_events(_: Admin, State(state): State<AppState>) -> Response {
    let (subscription, _) =
        follow::subscribe(&state.hub, &state.store, Scope::All, Some(RELAY_WAIT)).await;
    let events = stream::unfold(subscription, |mut subscription: Subscription| async move {
        let event = subscription.next().await?;
        Some((Ok::<_, Infallible>(sse_event(&event)), subscription))
    });
    let keep_alive =
        KeepAlive::new().interval(Duration::from_secs(state.config.sse_keepalive_secs));
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn sse_event(event: &JobEvent) -> Event {
    let kind = match event.status {
        _ if event.seq == 1 => "created",
        JobStatus::Completed => "completed",
        JobStatus::Failed => "failed",
        JobStatus::Cancelled => "cancelled",
        JobStatus::Pending | JobStatus::Processing => "progress",
    };
    let json = std::str::from_utf8(&event.json).unwrap_or("{}");
    Event::default().event(kind).data(json)
}
