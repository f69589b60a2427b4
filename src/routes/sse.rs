//! `GET /api/v4/job/{job_id}/events`: a job's changes as Server-Sent Events.

use crate::error::ApiError;
use crate::extract::{ApiQuery, JobIdPath};
use crate::state::AppState;
use crate::watch::{self, Frame, JobWatch, WatchStart};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;

/// The reconnect delay suggested to clients, before jitter, in milliseconds.
pub const SSE_RETRY_BASE_MS: u64 = 1_000;
/// Up to this much random delay is added per stream, so a restart's reconnects are spread out.
pub const SSE_RETRY_JITTER_MS: u64 = 2_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v4/job/{job_id}/events", get(job_events))
}

#[derive(Deserialize)]
struct ResumeQuery {
    /// For clients that cannot set the `Last-Event-ID` header.
    last_event_id: Option<String>,
}

/// Snapshot first (unless the client resumes from the current seq), then one event per change,
/// then the end of the stream after the terminal state. `204` when the client already has it.
async fn job_events(
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ResumeQuery>,
) -> Result<Response, ApiError> {
    let resume_from = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .or(query.last_event_id.as_deref())
        .and_then(|id| id.trim().parse().ok());
    let watch = match watch::start(&state, job_id, resume_from).await? {
        WatchStart::AlreadyFinal(_) => return Ok(StatusCode::NO_CONTENT.into_response()),
        WatchStart::Streaming(watch) => watch,
    };
    let keep_alive =
        KeepAlive::new().interval(Duration::from_secs(state.config.sse_keepalive_secs));
    let events = event_stream(watch).take_until(state.shutdown.clone().cancelled_owned());
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// A `retry:` hint, then the watch's frames as SSE events.
fn event_stream(watch: JobWatch) -> impl Stream<Item = Result<Event, Infallible>> {
    let retry = Duration::from_millis(SSE_RETRY_BASE_MS + fastrand::u64(0..=SSE_RETRY_JITTER_MS));
    let hint = stream::once(async move { Ok(Event::default().retry(retry)) });
    let frames = stream::unfold(watch, |mut watch| async move {
        let frame = watch.next().await?;
        Some((Ok(sse_event(&frame)), watch))
    });
    hint.chain(frames)
}

fn sse_event(frame: &Frame) -> Event {
    let json = std::str::from_utf8(&frame.event.json).unwrap_or("{}");
    Event::default()
        .id(frame.event.seq.to_string())
        .event(frame.kind.as_str())
        .data(json)
}
