//! A job's events served straight on the socket: the response head, then each shared frame as
//! one chunk, written by this connection's task with no HTTP connection object in between.
//!
//! A stream spends its life waiting and then sending one frame, so what it costs is the
//! per-connection state and the work per delivery; here that is a subscription, a timer and one
//! `writev` per frame (hyper kept 24 KiB of buffers per stream and several layers of body and
//! dispatch polling per frame).

use super::sniff::EventsRequest;
use crate::routes::sse::{self, EVENT_STREAM_HEADERS};
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::io::{self, IoSlice, Write};
use std::pin::pin;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The largest error body this path sends (they are small JSON `{"detail"}` objects).
pub const DIRECT_RESPONSE_BODY_LIMIT: usize = 16 * 1024;

/// Serves `request` on `stream` until the job's final frame, the client leaving, or shutdown.
pub async fn serve_events(mut stream: TcpStream, request: EventsRequest, state: AppState) {
    let opened = sse::open(&state, request.job_id, request.resume_from).await;
    let events = match opened {
        Ok(Some(events)) => events,
        Ok(None) => return write_response(stream, StatusCode::NO_CONTENT.into_response()).await,
        Err(error) => return write_response(stream, error.into_response()).await,
    };
    let opened_at = std::time::Instant::now();
    tracing::debug!(job_id = %request.job_id, resume_from = ?request.resume_from, "event stream opened");
    let head = response_head(StatusCode::OK, &HeaderMap::new(), Body::Chunked);
    if stream.write_all(&head).await.is_err() {
        return;
    }
    let mut events = pin!(events);
    let mut discard = [0u8; 64];
    loop {
        tokio::select! {
            biased;
            bytes = events.next() => match bytes {
                Some(bytes) => {
                    if write_chunk(&mut stream, &bytes).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                    let _ = stream.shutdown().await;
                    break;
                }
            },
            // The client has nothing to say on this connection; reading notices when it leaves.
            readable = stream.readable() => {
                let gone = readable.is_err()
                    || match stream.try_read(&mut discard) {
                        Ok(read) => read == 0,
                        Err(error) => error.kind() != io::ErrorKind::WouldBlock,
                    };
                if gone {
                    break;
                }
            }
        }
    }
    let seconds = opened_at.elapsed().as_secs_f64();
    tracing::debug!(job_id = %request.job_id, seconds, "event stream closed");
}

/// How a response's body is delimited.
enum Body {
    Chunked,
    Length(usize),
}

/// The status line and headers, with `EVENT_STREAM_HEADERS` for a stream, and `connection:
/// close` (the connection ends with the response).
fn response_head(status: StatusCode, headers: &HeaderMap, body: Body) -> Vec<u8> {
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

/// Writes a complete (non-streaming) response and closes the connection.
async fn write_response(mut stream: TcpStream, response: Response) {
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

/// `data` as one HTTP/1.1 chunk, in one `writev` unless the socket takes it only in part.
async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(()); // an empty chunk would end the response
    }
    let mut size = [0u8; 20];
    let size_len = {
        let mut cursor = &mut size[..];
        write!(cursor, "{:x}\r\n", data.len())?;
        20 - cursor.len()
    };
    let mut parts = [
        IoSlice::new(&size[..size_len]),
        IoSlice::new(data),
        IoSlice::new(b"\r\n"),
    ];
    let mut unwritten = &mut parts[..];
    while !unwritten.is_empty() {
        let written = stream.write_vectored(unwritten).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut unwritten, written);
    }
    Ok(())
}
