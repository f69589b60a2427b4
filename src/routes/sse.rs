//! `GET /api/v4/job/{job_id}/events`: a job's changes as Server-Sent Events.

use crate::error::ApiError;
use crate::extract::{ApiQuery, JobIdPath};
use crate::state::AppState;
use crate::watch::{self, JobWatch, WatchStart};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
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
    let header = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok());
    let resume_from = watch::resume_point(header.or(query.last_event_id.as_deref()));
    let watch = match watch::start(&state, job_id, resume_from).await? {
        WatchStart::AlreadyFinal(_) => return Ok(StatusCode::NO_CONTENT.into_response()),
        WatchStart::Streaming(watch) => watch,
    };
    let keep_alive = Duration::from_secs(state.config.sse_keepalive_secs);
    let events =
        event_stream(watch, keep_alive).take_until(state.shutdown.clone().cancelled_owned());
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        (HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, Body::from_stream(events)).into_response())
}

/// A `retry:` hint, then the watch's frames, with a keep-alive comment whenever the stream has
/// been quiet for `keep_alive`. Each change's bytes are shared by every subscriber.
fn event_stream(
    watch: JobWatch,
    keep_alive: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let retry = SSE_RETRY_BASE_MS + fastrand::u64(0..=SSE_RETRY_JITTER_MS);
    let hint = stream::once(async move { Ok(Bytes::from(format!("retry: {retry}\n\n"))) });
    let frames = stream::unfold(watch, move |mut watch| async move {
        let frame = tokio::select! {
            frame = watch.next() => frame?.sse(),
            _ = tokio::time::sleep(keep_alive) => Bytes::from_static(b":\n\n"),
        };
        Some((Ok(frame), watch))
    });
    hint.chain(frames)
}
