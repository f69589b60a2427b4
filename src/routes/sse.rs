//! `GET /api/v4/job/{job_id}/events`: a job's changes as Server-Sent Events.

use super::jobs::JobPath;
use super::quota::StreamQuota;
use super::responses::StreamFailures;
use crate::error::ApiError;
use crate::extract::{ApiQuery, JobIdPath};
use crate::follow::{self, Follower, Started};
use crate::job::JobId;
use crate::job::wire::{EVENT_STREAM_HEADERS, KEEP_ALIVE_COMMENT, retry_hint};
use crate::metrics::{OpenStream, StreamPath, Transport};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(job_events))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ResumeQuery {
    /// The last `id:` received, for clients that cannot set the `Last-Event-ID` header (which
    /// wins when both are sent).
    last_event_id: Option<String>,
}

/// What the stream sends, for the API document.
const STREAM_DESCRIPTION: &str = "A `text/event-stream` of one job. It opens with `retry: <ms>` \
(1000 ms plus up to 2000 ms of random jitter per stream, so a restart's reconnects spread out), \
then sends events of the form\n\n\
```\nid: <seq>\nevent: <snapshot|progress|completed|failed>\ndata: <the job's JSON>\n\n```\n\n\
`data` is always the job's full state (the `Job` schema), `id` its `seq`. `snapshot` is the \
state at the start; `progress` a change of a running job; `completed` or `failed` the final \
state, after which the server ends the stream. A client that misses changes gets the newest \
state: every event repairs any gap. While the job is quiet, a comment line (`:`) is sent every \
`SSE_KEEPALIVE_SECS` (default 15).\n\n\
**Resume**: send the last `id` as `Last-Event-ID` (EventSource does this by itself) or \
`?last_event_id=`. Resuming from the current seq sends no snapshot, only later changes; any \
other value (older, unknown, not a number) gets a fresh snapshot. Resuming from a finished \
job's final seq answers `204`, which tells EventSource to stop reconnecting.\n\n\
Public like `GET /api/v4/job/{job_id}`; counted against `STREAM_RATE_PER_MIN`.";

/// Snapshot first (unless the client resumes from the current seq), then one event per change,
/// then the end of the stream after the terminal state. `204` when the client already has it.
///
/// Most streams never reach this handler: `crate::serve` answers a connection whose first
/// request is for a job's events straight from the socket. This serves the rest (a keep-alive
/// connection reused for a stream, or a request the sniffer does not take).
#[utoipa::path(
    get,
    path = "/api/v4/job/{job_id}/events",
    tag = "streams",
    summary = "Follow a job as Server-Sent Events",
    description = STREAM_DESCRIPTION,
    params(
        JobPath,
        ResumeQuery,
        ("last-event-id" = Option<String>, Header, description = "The last event's `id` (its `seq`): resume after it."),
    ),
    responses(
        (status = 200, description = "The stream, until the job's final event.", content_type = "text/event-stream", body = String,
            headers(("cache-control" = String, description = "`no-cache`"), ("x-accel-buffering" = String, description = "`no`: proxies must not buffer it."))),
        (status = 204, description = "The client already has the job's final state: nothing more will come."),
        StreamFailures,
    ),
)]
async fn job_events(
    _: StreamQuota,
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ResumeQuery>,
) -> Result<Response, ApiError> {
    let header = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok());
    let resume_from = follow::resume_point(header.or(query.last_event_id.as_deref()));
    let Some(events) = open(&state, job_id, resume_from).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut response = Body::from_stream(events.map(Ok::<_, Infallible>)).into_response();
    for (name, value) in EVENT_STREAM_HEADERS {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    Ok(response)
}

/// Opens `job_id`'s events for a client that has state `resume_from`: the bytes to send, or
/// `None` when the client already has the final state. The stream ends after the final frame,
/// and at shutdown (`Hub::close` ends the follower).
pub async fn open(
    state: &AppState,
    job_id: JobId,
    resume_from: Option<u64>,
) -> Result<Option<impl Stream<Item = Bytes> + Send + 'static>, ApiError> {
    let follower = match follow::start(&state.hub, &state.store, job_id, resume_from).await? {
        Started::AlreadyFinal(_) => return Ok(None),
        Started::Streaming(follower) => follower,
    };
    let keep_alive = Duration::from_secs(state.config.sse_keepalive_secs);
    let open = state
        .metrics
        .streams()
        .open(Transport::Sse, StreamPath::Axum);
    Ok(Some(event_stream(follower, keep_alive, open)))
}

/// A `retry:` hint, then the follower's frames, with a keep-alive comment whenever the stream has
/// been quiet for `keep_alive`. Each change's bytes are shared by every subscriber.
///
/// The keep-alive timer is not re-armed per frame (that would cost a timer-wheel update per
/// delivery): when it fires, it checks when the last frame went out and sleeps again if that was
/// recent.
fn event_stream(
    follower: Follower,
    keep_alive: Duration,
    open: OpenStream,
) -> impl Stream<Item = Bytes> {
    let hint = stream::once(async move { retry_hint() });
    let feed = Feed {
        _open: open,
        follower,
        keep_alive,
        quiet: Box::pin(tokio::time::sleep(keep_alive)),
        last_sent: Instant::now(),
    };
    let frames = stream::unfold(feed, |mut feed| async move {
        let bytes = feed.next().await?;
        Some((bytes, feed))
    });
    hint.chain(frames)
}

/// A follower and its keep-alive timer.
struct Feed {
    /// Counts the stream open until the response body is dropped.
    _open: OpenStream,
    follower: Follower,
    keep_alive: Duration,
    quiet: Pin<Box<Sleep>>,
    last_sent: Instant,
}

impl Feed {
    /// The next frame's bytes or a keep-alive comment; `None` after the final frame.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                biased; // a ready frame is sent without looking at the timer
                frame = self.follower.next() => {
                    self.last_sent = Instant::now();
                    return Some(frame?.sse());
                }
                () = self.quiet.as_mut() => {
                    let due = self.last_sent + self.keep_alive;
                    if due > Instant::now() {
                        self.quiet.as_mut().reset(due);
                        continue;
                    }
                    self.last_sent = Instant::now();
                    self.quiet.as_mut().reset(self.last_sent + self.keep_alive);
                    return Some(Bytes::from_static(KEEP_ALIVE_COMMENT));
                }
            }
        }
    }
}
