//! A job's changes over a WebSocket served straight on the socket: the same frames, close codes
//! and pings as the axum route (`routes/ws.rs`), with changes written by their publisher
//! ([`crate::sink`]) instead of a task woken per delivery.
//!
//! The wire format is tungstenite's: its accept key, frame header parser and frame writer.

use super::direct;
use super::sniff::WebSocketRequest;
use crate::error::ApiError;
use crate::follow::{self, Follower, Started};
use crate::job::wire::{NO_PONG, WS_MAX_MESSAGE_BYTES, on_the_wire};
use crate::metrics::{StreamPath, Transport};
use crate::sink::{Drained, Encoding, Sink, write_all};
use crate::state::AppState;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use bytes::{Buf, BytesMut};
use std::io::{self, Cursor};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame as WireFrame;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

/// How much is read from the client at a time (it only sends pongs and close frames).
const READ_CHUNK_BYTES: usize = 256;
/// The largest payload of a control frame (RFC 6455, 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// How a socket's stream ends.
enum Ending {
    /// Send this close frame.
    Close(CloseCode, &'static str),
    /// The peer is gone or broke the protocol at the transport level: just drop the connection.
    Drop,
}

/// Answers the upgrade (or `404` before it), then streams the job's changes.
pub async fn serve_websocket(
    stream: TcpStream,
    peer: SocketAddr,
    request: WebSocketRequest,
    state: AppState,
) {
    let mut headers = HeaderMap::new();
    request.request_id.add_to(&mut headers);
    let span = request.request_id.span();
    let started = async {
        let origins = &state.config.cors_allowed_origins;
        if !origins.allows_websocket(request.origin.as_deref(), request.host.as_deref()) {
            return Err(ApiError::OriginNotAllowed);
        }
        direct::admit_stream(&state, peer, &request.forwarding)?;
        let started = follow::start(
            &state.hub,
            &state.store,
            request.job_id,
            request.resume_from,
        );
        Ok(started.await?)
    };
    let started = match started.instrument(span).await {
        Ok(started) => started,
        Err(error) => {
            let response = direct::with_headers(error.into_response(), headers);
            return direct::write_response(stream, response).await;
        }
    };
    drop(headers); // a long-lived socket keeps only what it uses again
    let accept = tungstenite::handshake::derive_accept_key(request.key.as_bytes());
    let request_id = request.request_id.as_str();
    let handshake = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: {accept}\r\nx-request-id: {request_id}\r\n\r\n"
    );
    if write_all(&stream, handshake.as_bytes()).await.is_err() {
        return;
    }
    drop(handshake);
    let socket = Arc::new(stream);
    let mut follower = match started {
        Started::Streaming(follower) => follower,
        Started::AlreadyFinal(_) => {
            let close = close_frame(CloseCode::Normal, "job already finished");
            if write_all(&socket, &close).await.is_ok() {
                direct::close_gracefully(&socket).await;
            }
            return;
        }
    };
    // The stream's own lines name the request rather than keep a span open for its whole life.
    tracing::debug!(request_id, job_id = %request.job_id, resume_from = ?request.resume_from, "websocket opened");
    let _open = state
        .metrics
        .streams()
        .open(Transport::WebSocket, StreamPath::Direct);
    stream_frames(&socket, &mut follower, &state).await;
    tracing::debug!(request_id, job_id = %request.job_id, "websocket closed");
}

/// Streams until the end, writing the closing frame (if any) before publishers let go.
async fn stream_frames(socket: &Arc<TcpStream>, follower: &mut Follower, state: &AppState) {
    let sink = Sink::new(socket.clone(), Encoding::WebSocket, follower.last_seq());
    let ending = write_changes(socket, &sink, follower, state).await;
    let stalled = ending.as_ref().is_err_and(direct::is_stalled);
    if stalled || matches!(ending, Ok(Ending::Close(_, NO_PONG))) {
        state.metrics.fanout().slow_dropped.increment(1);
    }
    let ending = ending.unwrap_or(Ending::Drop);
    if let Ending::Close(code, reason) = ending
        && sink.write_own(&close_frame(code, reason)).await.is_ok()
    {
        direct::close_gracefully(socket).await;
    }
}

/// Writes the snapshot and the changes (publishers write most of them), answers pings and
/// pongs, and pings the client; how the stream ends.
async fn write_changes(
    socket: &Arc<TcpStream>,
    sink: &Arc<Sink>,
    follower: &mut Follower,
    state: &AppState,
) -> io::Result<Ending> {
    let finished = Ending::Close(CloseCode::Normal, "job finished");
    if let Some(snapshot) = follower.take_snapshot() {
        sink.write_frame(&snapshot).await?;
        if snapshot.is_final() {
            return Ok(finished);
        }
    }
    let Some(_attached) = state.hub.attach_sink(follower.job_id(), sink.clone()) else {
        return Ok(Ending::Close(CloseCode::Away, "server shutting down"));
    };
    if sink.catch_up(follower.take_received()).await? {
        return Ok(finished);
    }
    let every = Duration::from_secs(state.config.ws_ping_secs);
    converse_until_end(socket, sink, every, &state.shutdown).await
}

/// Writes what publishers leave the task, answers the client's frames and pings it every
/// `every`, until the stream ends; how it ends.
async fn converse_until_end(
    socket: &TcpStream,
    sink: &Sink,
    every: Duration,
    shutdown: &CancellationToken,
) -> io::Result<Ending> {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // After a long blocked write, wait a whole interval for the pong, not a burst of ticks.
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut awaiting_pong = false;
    let mut received = BytesMut::with_capacity(256);
    loop {
        match sink.drain().await? {
            Drained::Idle => {}
            Drained::Finished if shutdown.is_cancelled() => {
                return Ok(Ending::Close(CloseCode::Away, "server shutting down"));
            }
            Drained::Finished => return Ok(Ending::Close(CloseCode::Normal, "job finished")),
            Drained::Broken => return Ok(Ending::Drop),
        }
        tokio::select! {
            biased;
            () = sink.woken() => {}
            readable = socket.readable() => {
                readable?;
                if let Some(ending) = read_frames(socket, sink, &mut received, &mut awaiting_pong).await? {
                    return Ok(ending);
                }
            }
            _ = ping.tick() => {
                if awaiting_pong {
                    return Ok(Ending::Close(CloseCode::Away, NO_PONG));
                }
                sink.write_own(&on_the_wire(WireFrame::ping(Vec::new()))).await?;
                awaiting_pong = true;
            }
        }
    }
}

/// Reads what the client sent and acts on each whole frame; `Some` when the stream must end.
async fn read_frames(
    socket: &TcpStream,
    sink: &Sink,
    received: &mut BytesMut,
    awaiting_pong: &mut bool,
) -> io::Result<Option<Ending>> {
    received.reserve(READ_CHUNK_BYTES);
    match socket.try_read_buf(received) {
        Ok(0) => return Ok(Some(Ending::Drop)),
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(error) => return Err(error),
    }
    loop {
        match next_frame(received) {
            Ok(Some((opcode, payload))) => {
                if let Some(ending) = act_on(opcode, payload, sink, awaiting_pong).await? {
                    return Ok(Some(ending));
                }
            }
            Ok(None) => return Ok(None),
            Err(ending) => return Ok(Some(ending)),
        }
    }
}

/// Takes the next whole frame off `received`, unmasked: its opcode and payload. `Ok(None)` while
/// the frame is incomplete; `Err` with the close to send for a frame this server refuses.
fn next_frame(received: &mut BytesMut) -> Result<Option<(OpCode, BytesMut)>, Ending> {
    let refuse = |reason| Err(Ending::Close(CloseCode::Protocol, reason));
    let mut cursor = Cursor::new(&received[..]);
    let Ok(parsed) = FrameHeader::parse(&mut cursor) else {
        return refuse("malformed frame");
    };
    let Some((header, length)) = parsed else {
        return Ok(None); // the header is not complete yet
    };
    if length > WS_MAX_MESSAGE_BYTES as u64 {
        return Err(Ending::Close(CloseCode::Size, "message too big"));
    }
    let is_control = matches!(header.opcode, OpCode::Control(_));
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return refuse("reserved bits set");
    }
    if is_control && (length > MAX_CONTROL_PAYLOAD || !header.is_final) {
        return refuse("invalid control frame");
    }
    let header_length = cursor.position() as usize;
    if received.len() < header_length + length as usize {
        return Ok(None); // the payload is not complete yet
    }
    received.advance(header_length);
    let mut payload = received.split_to(length as usize);
    let Some(mask) = header.mask else {
        return refuse("frames must be masked");
    };
    for (at, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[at % 4];
    }
    Ok(Some((header.opcode, payload)))
}

/// Answers one frame from the client; `Some` when the stream must end.
async fn act_on(
    opcode: OpCode,
    payload: BytesMut,
    sink: &Sink,
    awaiting_pong: &mut bool,
) -> io::Result<Option<Ending>> {
    let ending = match opcode {
        OpCode::Control(Control::Pong) => {
            *awaiting_pong = false;
            return Ok(None);
        }
        OpCode::Control(Control::Ping) => {
            let pong = on_the_wire(WireFrame::pong(payload.freeze()));
            sink.write_own(&pong).await?;
            return Ok(None);
        }
        OpCode::Control(Control::Close) => Ending::Close(CloseCode::Normal, ""),
        OpCode::Data(Data::Binary) => {
            Ending::Close(CloseCode::Unsupported, "binary frames are not supported")
        }
        OpCode::Data(Data::Text | Data::Continue) => {
            Ending::Close(CloseCode::Policy, "this stream accepts no messages")
        }
        _ => Ending::Close(CloseCode::Protocol, "unknown opcode"),
    };
    Ok(Some(ending))
}

fn close_frame(code: CloseCode, reason: &'static str) -> Vec<u8> {
    on_the_wire(WireFrame::close(Some(CloseFrame {
        code,
        reason: reason.into(),
    })))
}
