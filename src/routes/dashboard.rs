//! What the dashboard needs: a sign-in for browsers, the job listing and every job's changes.

use crate::auth::{self, Admin, SESSION_COOKIE};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::follow::{self, RELAY_WAIT};
use crate::hub::{Scope, Subscription};
use crate::job::{JobEvent, JobStatus};
use crate::state::AppState;
use crate::store::JobStore;
use crate::store::listing::{Cursor, ListQuery, MAX_PAGE};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream;
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;

/// How long a browser session lasts, in seconds.
pub const SESSION_TTL_SECS: u64 = 12 * 3600;
/// The page size when the client names none.
pub const DEFAULT_PAGE: usize = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v4/session", post(sign_in).delete(sign_out))
        .route("/api/v4/jobs", get(list_jobs))
        .route("/api/v4/jobs/events", get(all_job_events))
}

/// `POST /api/v4/session` with the bearer token: sets the session cookie EventSource will send.
/// Without `ADMIN_TOKEN` there is nothing to sign in to (loopback clients are admitted as such).
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

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /api/v4/jobs?status=&limit=&cursor=`: jobs newest first, without their results.
async fn list_jobs(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let query = list_query(params)?;
    let page = state.store.list(&query).await?;
    let jobs: Vec<Value> = page.jobs.iter().filter_map(summary).collect();
    Ok(Json(json!({
        "jobs": jobs,
        "next_cursor": page.next.map(|cursor| cursor.to_string()),
    })))
}

fn list_query(params: ListParams) -> Result<ListQuery, ApiError> {
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            serde_json::from_value::<JobStatus>(Value::String(text.to_owned())).map_err(|_| {
                ApiError::invalid("status must be pending, processing, completed or failed")
            })?,
        ),
    };
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be from 1 to {MAX_PAGE}"
        )));
    }
    let after = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<Cursor>()
                .map_err(|()| ApiError::bad_request("Invalid cursor"))?,
        ),
    };
    Ok(ListQuery {
        status,
        limit,
        after,
    })
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
        JobStatus::Pending | JobStatus::Processing => "progress",
    };
    let json = std::str::from_utf8(&event.json).unwrap_or("{}");
    Event::default().event(kind).data(json)
}
