//! A job's events served straight on the socket: the response head, then each shared frame as
//! one chunk, with no HTTP connection object in between.
//!
//! A stream spends its life waiting and then sending one frame, so what it costs is the
//! per-connection state and the work per delivery; here that is a subscription, a sink, a timer,
//! and one `write` per frame made by the publisher itself (hyper kept 24 KiB of buffers per
//! stream, and every delivery woke the stream's task and went through several layers of body and
//! dispatch polling).

use super::sniff::EventsRequest;
use crate::client_addr::{Forwarding, client_addr};
use crate::error::ApiError;
use crate::follow::{self, Follower, Started};
use crate::job::wire::{EVENT_STREAM_HEADERS, KEEP_ALIVE_COMMENT, http_chunk, retry_hint};
use crate::metrics::{StreamPath, Transport};
use crate::rate_limit::Limit;
use crate::sink::{Drained, Encoding, Sink, write_all};
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::Instrument;

/// The largest error body this path sends (they are small JSON `{"detail"}` objects).
pub const DIRECT_RESPONSE_BODY_LIMIT: usize = 16 * 1024;

/// The chunk that ends a chunked response.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Serves `request` on `stream` until the job's final frame, the client leaving, or shutdown.
///
/// The race-free start is the same as every stream's (`follow::start`); the head, the retry hint
/// and the snapshot go out in one write. Then the socket joins the job's sinks, the changes that
/// arrived meanwhile are written, and from there on publishers write changes themselves; this
/// task only wakes for work they leave (see [`crate::sink`]), keep-alives and the client leaving.
pub async fn serve_events(
    stream: TcpStream,
    peer: SocketAddr,
    request: EventsRequest,
    state: AppState,
) {
    let mut headers = state
        .config
        .cors_allowed_origins
        .response_headers(request.origin.as_deref());
    request.request_id.add_to(&mut headers);
    let span = request.request_id.span();
    let started = async {
        admit_stream(&state, peer, &request.forwarding)?;
        let started = follow::start(
            &state.hub,
            &state.store,
            request.job_id,
            request.resume_from,
        );
        Ok::<_, ApiError>(started.await?)
    };
    let mut follower = match started.instrument(span).await {
        Ok(Started::Streaming(follower)) => follower,
        Ok(Started::AlreadyFinal(_)) => {
            let response = with_headers(StatusCode::NO_CONTENT.into_response(), headers);
            return write_response(stream, response).await;
        }
        Err(error) => {
            return write_response(stream, with_headers(error.into_response(), headers)).await;
        }
    };
    // The stream's own lines name the request rather than keep a span open for its whole life.
    let request_id = request.request_id.as_str();
    let opened_at = std::time::Instant::now();
    tracing::debug!(request_id, job_id = %request.job_id, resume_from = ?request.resume_from, "event stream opened");
    let _open = state
        .metrics
        .streams()
        .open(Transport::Sse, StreamPath::Direct);
    let socket = Arc::new(stream);
    let ended = stream_changes(&socket, &mut follower, &state, headers).await;
    if ended.as_ref().is_err_and(is_stalled) {
        state.metrics.fanout().slow_dropped.increment(1);
    }
    if ended.is_ok() && write_all(&socket, LAST_CHUNK).await.is_ok() {
        close_gracefully(&socket).await;
    }
    let seconds = opened_at.elapsed().as_secs_f64();
    tracing::debug!(request_id, job_id = %request.job_id, seconds, "event stream closed");
}

/// Whether a stream's socket failed because its client stopped taking data for
/// `STALLED_CLIENT_TIMEOUT_MS` (the kernel's `TCP_USER_TIMEOUT`).
pub fn is_stalled(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::TimedOut
}

/// Counts a stream opened by the client of `peer` (with `forwarding` headers) against its limit.
pub fn admit_stream(
    state: &AppState,
    peer: SocketAddr,
    forwarding: &Forwarding,
) -> Result<(), ApiError> {
    let client = client_addr(peer.ip(), forwarding, &state.config.trusted_proxies);
    Ok(state.limits.admit(Limit::Stream, client.ip)?)
}

/// Writes the stream until its end (`Ok`) or until the client is gone or fails (`Err`).
///
/// What only the opening needs (`headers`, the opening's bytes) is dropped once it is written:
/// an idle stream keeps nothing it will not use again.
async fn stream_changes(
    socket: &Arc<TcpStream>,
    follower: &mut Follower,
    state: &AppState,
    headers: HeaderMap,
) -> io::Result<()> {
    let sink = Sink::new(socket.clone(), Encoding::Sse, follower.last_seq());
    let mut opening = response_head(StatusCode::OK, &headers, Body::Chunked);
    drop(headers);
    opening.extend_from_slice(&http_chunk(&retry_hint()));
    let mut finished = false;
    if let Some(snapshot) = follower.take_snapshot() {
        opening.extend_from_slice(&snapshot.sse_chunk());
        finished = snapshot.is_final();
    }
    sink.write(&opening).await?;
    drop(opening);
    if finished {
        return Ok(());
    }
    let Some(_attached) = state.hub.attach_sink(follower.job_id(), sink.clone()) else {
        return Ok(()); // the server is stopping
    };
    if sink.catch_up(follower.take_received()).await? {
        return Ok(());
    }
    let every = Duration::from_secs(state.config.sse_keepalive_secs);
    write_until_end(socket, &sink, every).await
}

/// Writes what publishers leave the task and a keep-alive comment whenever the stream has been
/// quiet for `every`, until the stream's end (`Ok`) or the client is gone or fails (`Err`).
async fn write_until_end(socket: &TcpStream, sink: &Sink, every: Duration) -> io::Result<()> {
    let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut discard = [0u8; 64];
    loop {
        match sink.drain().await? {
            Drained::Idle => {}
            Drained::Finished => return Ok(()),
            Drained::Broken => return Err(io::ErrorKind::BrokenPipe.into()),
        }
        tokio::select! {
            biased;
            () = sink.woken() => {}
            // The client has nothing to say on this connection; reading notices when it leaves.
            readable = socket.readable() => {
                readable?;
                match socket.try_read(&mut discard) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(error),
                }
            }
            _ = keep_alive.tick() => {
                if !sink.take_wrote() {
                    sink.write_own(&http_chunk(KEEP_ALIVE_COMMENT)).await?;
                }
            }
        }
    }
}

/// How long a finished stream waits for the client to close its side.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Ends the connection without losing what was just written: closing a socket with unread
/// input makes the kernel reset it and drop unsent output, so send FIN first, then read and
/// discard until the client closes too (or `CLOSE_LINGER` passes).
pub async fn close_gracefully(socket: &TcpStream) {
    let _ = socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Write);
    let drain = async {
        let mut discard = [0u8; 256];
        loop {
            if socket.readable().await.is_err() {
                return;
            }
            match socket.try_read(&mut discard) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}

/// How a response's body is delimited.
pub enum Body {
    Chunked,
    Length(usize),
}

/// The status line and headers, with `EVENT_STREAM_HEADERS` for a stream, and `connection:
/// close` (the connection ends with the response).
pub fn response_head(status: StatusCode, headers: &HeaderMap, body: Body) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(format!("HTTP/1.1 {status}\r\n").as_bytes());
    let mut header = |name: &[u8], value: &[u8]| {
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    };
    match body {
        Body::Chunked => {
            for (name, value) in EVENT_STREAM_HEADERS {
                header(name.as_bytes(), value.as_bytes());
            }
            header(b"transfer-encoding", b"chunked");
        }
        Body::Length(_) if status == StatusCode::NO_CONTENT => {}
        Body::Length(length) => header(b"content-length", length.to_string().as_bytes()),
    }
    for (name, value) in headers {
        header(name.as_str().as_bytes(), value.as_bytes());
    }
    header(b"connection", b"close");
    header(
        b"date",
        httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
    );
    head.extend_from_slice(b"\r\n");
    head
}

/// `response` with `headers` added (the CORS headers and request id of a direct answer).
pub fn with_headers(mut response: Response, headers: HeaderMap) -> Response {
    response.headers_mut().extend(headers);
    response
}

/// Writes a complete (non-streaming) response and closes the connection.
pub async fn write_response(mut stream: TcpStream, response: Response) {
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, DIRECT_RESPONSE_BODY_LIMIT).await else {
        return;
    };
    let mut headers = parts.headers;
    headers.remove(axum::http::header::CONTENT_LENGTH);
    let head = response_head(parts.status, &headers, Body::Length(body.len()));
    let _ = stream.write_all(&head).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}
