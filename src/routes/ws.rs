//! `GET /api/v4/job/{job_id}/ws`: a job's changes as WebSocket text frames.

use super::jobs::JobPath;
use super::quota::StreamQuota;
use super::responses::SocketFailures;
use super::shapes::StreamMessage;
use crate::error::ApiError;
use crate::extract::{ApiQuery, JobIdPath};
use crate::follow::{self, Follower, Started};
use crate::job::Frame;
use crate::job::wire::NO_PONG;
use crate::metrics::{Metrics, StreamPath, Transport};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::header::{HOST, ORIGIN};
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest frame a client may send, shared with the direct path.
pub use crate::job::wire::WS_MAX_MESSAGE_BYTES;

/// The socket's read buffer. A client only sends pongs and close frames, and the protocol layer
/// zero-fills this buffer before every read attempt: its default of 128 KiB cost more CPU than
/// everything else on a delivery and stayed resident per socket.
pub const WS_READ_BUFFER_BYTES: usize = 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(job_socket))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ResumeQuery {
    /// The `seq` of the last message received: resume after it.
    last_seq: Option<String>,
}

/// What the socket sends, for the API document.
const SOCKET_DESCRIPTION: &str = "A WebSocket (RFC 6455) of one job. The server sends one text \
message per state, the `StreamMessage` schema: `{\"event\": \"snapshot\"|\"progress\"|\
\"completed\"|\"failed\", \"seq\": <seq>, \"job\": <the job's JSON>}`; `snapshot` first (the \
state at the start), then one per change; every message carries the job's full state.\n\n\
**Resume**: `?last_seq=<seq>` from the current seq sends no snapshot; any other value gets a \
fresh one.\n\n\
The client sends nothing but pongs and a close: the server pings every `WS_PING_SECS` \
(default 20) and closes a socket that has not answered by the next ping.\n\n\
**Close codes**: `1000` `job finished` after the final message, or `job already finished` at \
once when `last_seq` is the finished job's final seq; `1001` `server shutting down`, or `no \
pong`; `1008` for a text message (`this stream accepts no messages`); `1003` for a binary \
message; `1009` for a frame over `WS_MAX_MESSAGE_BYTES` (4096); `1002` for a protocol error \
(an unmasked frame, reserved bits, an unknown opcode).\n\n\
The job must exist before the upgrade (`404` otherwise). Public like \
`GET /api/v4/job/{job_id}`; counted against `STREAM_RATE_PER_MIN`. A request that is not a \
WebSocket upgrade is refused with `400`, `405` or `426` and a plain-text reason.";

/// An upgrade whose `Origin` is absent, the server's own or allowed by `CORS_ALLOWED_ORIGINS`
/// (`403` otherwise, before it counts against the client's stream quota, as on the direct path).
struct AllowedOrigin;

impl FromRequestParts<AppState> for AllowedOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        // An `Origin` that is not text is refused like a foreign one.
        let origin = headers
            .get(ORIGIN)
            .map(|value| value.to_str().unwrap_or("\u{0}"));
        let host = headers.get(HOST).and_then(|value| value.to_str().ok());
        let origins = &state.config.cors_allowed_origins;
        origins
            .allows_websocket(origin, host)
            .then_some(Self)
            .ok_or(ApiError::OriginNotAllowed)
    }
}

/// Checks the job exists (`404` before any upgrade), then streams it.
#[utoipa::path(
    get,
    path = "/api/v4/job/{job_id}/ws",
    tag = "streams",
    summary = "Follow a job over a WebSocket",
    description = SOCKET_DESCRIPTION,
    params(JobPath, ResumeQuery),
    responses(
        (status = 101, description = "Switching protocols; then one text message per state (as this schema).", content_type = "application/json", body = StreamMessage),
        SocketFailures,
    ),
)]
async fn job_socket(
    _: AllowedOrigin,
    _: StreamQuota,
    upgrade: WebSocketUpgrade,
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
    ApiQuery(query): ApiQuery<ResumeQuery>,
) -> Result<Response, ApiError> {
    let resume_from = follow::resume_point(query.last_seq.as_deref());
    let start = follow::start(&state.hub, &state.store, job_id, resume_from).await?;
    let shutdown = state.shutdown.clone();
    let ping_every = Duration::from_secs(state.config.ws_ping_secs);
    let metrics = state.metrics.clone();
    Ok(upgrade
        .max_message_size(WS_MAX_MESSAGE_BYTES)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .on_upgrade(move |socket| serve(socket, start, ping_every, shutdown, metrics)))
}

/// The message for one frame: `{"event": kind, "seq": n, "job": {...}}`, shared by subscribers.
fn text_message(frame: &Frame) -> Message {
    let text = Utf8Bytes::try_from(frame.websocket()).expect("frames are built from UTF-8 JSON");
    Message::Text(text)
}

/// The close frame for a read that failed because of the peer, as the direct path sends it:
/// 1009 for a message over [`WS_MAX_MESSAGE_BYTES`], 1002 for a protocol error (reserved bits,
/// an unmasked frame, an unknown opcode, a fragmented control frame), 1008 for text that is not
/// UTF-8 (this stream accepts no text at all). `None` when the peer simply went away.
fn farewell_for(error: &axum::Error) -> Option<Message> {
    use tungstenite::error::{Error as WsError, ProtocolError};
    let error: &(dyn std::error::Error + 'static) = error;
    let cause = std::iter::successors(Some(error), |error| error.source())
        .find_map(|error| error.downcast_ref::<WsError>())?;
    match cause {
        WsError::Capacity(_) => Some(close(close_code::SIZE, "message too big")),
        WsError::Utf8(_) => Some(close(close_code::POLICY, "this stream accepts no messages")),
        WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake | ProtocolError::SendAfterClosing,
        ) => None,
        WsError::Protocol(_) => Some(close(close_code::PROTOCOL, "protocol error")),
        _ => None,
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn serve(
    mut socket: WebSocket,
    start: Started,
    ping_every: Duration,
    shutdown: CancellationToken,
    metrics: Metrics,
) {
    let follower = match start {
        Started::Streaming(follower) => follower,
        Started::AlreadyFinal(_) => {
            let _ = socket
                .send(close(close_code::NORMAL, "job already finished"))
                .await;
            return;
        }
    };
    let _open = metrics
        .streams()
        .open(Transport::WebSocket, StreamPath::Axum);
    let farewell = stream_frames(&mut socket, follower, ping_every, &shutdown).await;
    if let Some(Message::Close(Some(frame))) = &farewell
        && frame.reason == NO_PONG
    {
        metrics.fanout().slow_dropped.increment(1);
    }
    if let Some(message) = farewell {
        let _ = socket.send(message).await;
    }
}

/// Sends frames until the job ends, the peer misbehaves or leaves, or the server stops; returns
/// the close message to send, if any.
///
/// The server's stop reaches this loop through the follower (`Hub::close` ends it), so a delivery
/// costs no shutdown future; `shutdown` only tells why the follower ended.
async fn stream_frames(
    socket: &mut WebSocket,
    mut follower: Follower,
    ping_every: Duration,
    shutdown: &CancellationToken,
) -> Option<Message> {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    // After a long blocked send, wait a whole interval for the pong, not a burst of ticks.
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            frame = follower.next() => {
                let Some(frame) = frame else {
                    return shutdown
                        .is_cancelled()
                        .then(|| close(close_code::AWAY, "server shutting down"));
                };
                socket.send(text_message(&frame)).await.ok()?;
                if frame.is_final() {
                    return Some(close(close_code::NORMAL, "job finished"));
                }
            }
            message = socket.recv() => match message {
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                Some(Ok(Message::Ping(_))) => {} // answered by the protocol layer
                Some(Ok(Message::Text(_))) => return Some(close(close_code::POLICY, "this stream accepts no messages")),
                Some(Ok(Message::Binary(_))) => return Some(close(close_code::UNSUPPORTED, "binary frames are not supported")),
                Some(Err(error)) => return farewell_for(&error),
                Some(Ok(Message::Close(_))) | None => return None,
            },
            _ = ping.tick() => {
                if awaiting_pong {
                    return Some(close(close_code::AWAY, NO_PONG));
                }
                socket.send(Message::Ping(Default::default())).await.ok()?;
                awaiting_pong = true;
            }
        }
    }
}
