//! Watching one job: the race-free start and the sequence of frames every stream sends.
//!
//! Subscribe first, then read the stored snapshot, then forward only events newer than what was
//! sent. Every frame carries the job's full state, so the newest frame repairs any gap and the
//! store stays the source of truth for clients that come back.

use crate::error::ApiError;
use crate::hub::{JobEvent, Subscription};
use crate::job::{JobId, JobStatus};
use crate::state::AppState;
use crate::store::JobStore;
use bytes::{Bytes, BytesMut};
use std::sync::OnceLock;
use std::time::Duration;
use tungstenite::protocol::frame::Frame as WireFrame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// How long a new watcher waits for the Redis subscription before reading the snapshot anyway.
/// Only reached while the pub/sub connection is down; the relay re-reads every watched job when
/// it is back, so nothing is missed either way.
pub const RELAY_WAIT: Duration = Duration::from_secs(2);

/// What a frame tells the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// The job's full state at the start of a stream.
    Snapshot,
    Progress,
    Completed,
    Failed,
}

impl FrameKind {
    /// The SSE `event:` name and the WebSocket `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Progress => "progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    fn of_change(status: JobStatus) -> Self {
        match status {
            JobStatus::Pending | JobStatus::Processing => Self::Progress,
            JobStatus::Completed => Self::Completed,
            JobStatus::Failed => Self::Failed,
        }
    }
}

/// One message of a job stream.
#[derive(Clone, Debug)]
pub struct Frame {
    pub kind: FrameKind,
    pub event: JobEvent,
}

impl Frame {
    /// The frame of a change (not a snapshot).
    pub fn change(event: JobEvent) -> Self {
        Self {
            kind: FrameKind::of_change(event.status),
            event,
        }
    }

    /// Whether this is the job's last frame.
    pub fn is_final(&self) -> bool {
        self.event.status.is_terminal()
    }

    /// The SSE event: `id: <seq>`, `event: <kind>`, `data: <job JSON>`. A change's event is built
    /// once and shared by every subscriber; a snapshot is built per stream.
    pub fn sse(&self) -> Bytes {
        self.framed(
            &self.event.frames.sse,
            |kind, seq| format!("id: {seq}\nevent: {kind}\ndata: "),
            "\n\n",
        )
    }

    /// The SSE event as one HTTP/1.1 chunk, shared the same way.
    pub fn sse_chunk(&self) -> Bytes {
        self.shared(&self.event.frames.sse_chunk, || http_chunk(&self.sse()))
    }

    /// The WebSocket message as one unmasked text frame, shared the same way.
    pub fn websocket_frame(&self) -> Bytes {
        self.shared(&self.event.frames.websocket_frame, || {
            let frame = WireFrame::message(self.websocket(), OpCode::Data(Data::Text), true);
            Bytes::from(on_the_wire(frame))
        })
    }

    /// The WebSocket message: `{"event": <kind>, "seq": <seq>, "job": <job JSON>}`, shared the
    /// same way.
    pub fn websocket(&self) -> Bytes {
        self.framed(
            &self.event.frames.websocket,
            |kind, seq| format!(r#"{{"event":"{kind}","seq":{seq},"job":"#),
            "}",
        )
    }

    /// The job JSON between `head(kind, seq)` and `tail`, shared through `cell`.
    fn framed(
        &self,
        cell: &OnceLock<Bytes>,
        head: impl FnOnce(&str, u64) -> String,
        tail: &str,
    ) -> Bytes {
        self.shared(cell, || {
            let head = head(self.kind.as_str(), self.event.seq);
            let mut frame =
                BytesMut::with_capacity(head.len() + self.event.json.len() + tail.len());
            frame.extend_from_slice(head.as_bytes());
            frame.extend_from_slice(&self.event.json);
            frame.extend_from_slice(tail.as_bytes());
            frame.freeze()
        })
    }

    /// `build()`, made once per change and kept in `cell` for every other subscriber; a
    /// snapshot is built per stream.
    fn shared(&self, cell: &OnceLock<Bytes>, build: impl FnOnce() -> Bytes) -> Bytes {
        match self.kind {
            FrameKind::Snapshot => build(),
            _ => cell.get_or_init(build).clone(),
        }
    }
}

/// A WebSocket frame as the server sends it (unmasked).
pub fn on_the_wire(frame: WireFrame) -> Vec<u8> {
    let mut wire = Vec::with_capacity(frame.len());
    frame
        .format(&mut wire)
        .expect("writing to a Vec cannot fail");
    wire
}

/// `data` as one HTTP/1.1 chunk: its size in hex, CRLF, the data, CRLF.
pub fn http_chunk(data: &[u8]) -> Bytes {
    let mut chunk = BytesMut::with_capacity(data.len() + 12);
    chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(b"\r\n");
    chunk.freeze()
}

/// How a watch begins.
pub enum WatchStart {
    /// Frames follow.
    Streaming(JobWatch),
    /// The client already has the job's final state (its resume point is the final seq).
    AlreadyFinal(JobEvent),
}

/// A live watch of one job.
pub struct JobWatch {
    subscription: Subscription,
    /// The snapshot, when the client needs one.
    snapshot: Option<Frame>,
    /// The seq of the newest state the client has, or is about to get.
    last_seq: u64,
    finished: bool,
}

/// A client's resume point (`Last-Event-ID`, `?last_event_id=`, `?last_seq=`): a seq, or `None`
/// for anything that is not one (which then gets a fresh snapshot).
pub fn resume_point(text: Option<&str>) -> Option<u64> {
    text.and_then(|text| text.trim().parse().ok())
}

/// Starts watching `job_id` for a client that already has state `resume_from` (if any).
///
/// Resuming from the current seq sends no snapshot; any other value — older, unknown, garbage —
/// gets a fresh one. An unknown or expired job is `404` before anything is streamed.
pub async fn start(
    state: &AppState,
    job_id: JobId,
    resume_from: Option<u64>,
) -> Result<WatchStart, ApiError> {
    let mut subscription = state.hub.subscribe(job_id);
    if !state.store.is_degraded() {
        // While degraded, changes are published locally: there is no Redis subscription to await.
        subscription.relayed(RELAY_WAIT).await;
    }
    let job = state
        .store
        .get(job_id)
        .await?
        .ok_or(ApiError::JobNotFound)?;
    let current = JobEvent::from(&job);
    let up_to_date = resume_from == Some(job.seq);
    if up_to_date && job.status.is_terminal() {
        return Ok(WatchStart::AlreadyFinal(current));
    }
    let snapshot = (!up_to_date).then_some(Frame {
        kind: FrameKind::Snapshot,
        event: current,
    });
    Ok(WatchStart::Streaming(JobWatch {
        subscription,
        snapshot,
        last_seq: job.seq,
        finished: false,
    }))
}

impl JobWatch {
    /// The snapshot to send first, if the client needs one.
    pub fn take_snapshot(&mut self) -> Option<Frame> {
        self.snapshot.take()
    }

    /// A change already received and newer than what was sent, without waiting. Only for
    /// streams that take their changes another way from now on ([`crate::sink`]).
    pub fn try_next(&mut self) -> Option<Frame> {
        while let Some(event) = self.subscription.try_next() {
            if let Some(frame) = self.newer(event) {
                return Some(frame);
            }
        }
        None
    }

    /// `event` as the next frame if the client lacks it (its seq is past the last one sent).
    fn newer(&mut self, event: JobEvent) -> Option<Frame> {
        (event.seq > self.last_seq).then(|| {
            self.last_seq = event.seq;
            Frame::change(event)
        })
    }

    /// The job this watch follows.
    pub fn job_id(&self) -> JobId {
        self.subscription.job_id()
    }

    /// The seq of the newest state the client has, or is about to get.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The next frame; `None` after the final one. Cancel-safe.
    pub async fn next(&mut self) -> Option<Frame> {
        if self.finished {
            return None;
        }
        let frame = match self.snapshot.take() {
            Some(snapshot) => snapshot,
            None => loop {
                let event = self.subscription.next().await?;
                if let Some(frame) = self.newer(event) {
                    break frame;
                }
            },
        };
        self.finished = frame.is_final();
        Some(frame)
    }
}
