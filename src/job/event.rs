//! The vocabulary of one change: the event every subscriber shares and its frames per encoding.

use super::wire::{http_chunk, on_the_wire};
use super::{Job, JobId, JobStatus, Timestamp};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use std::sync::{Arc, OnceLock};
use tungstenite::protocol::frame::Frame as WireFrame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// One change of one job, serialised once and shared by every subscriber: one pointer, so that
/// a job's broadcast buffer (`hub::SUBSCRIBER_BUFFER` slots, allocated with its first watcher)
/// costs a few hundred bytes, and handing the event to a subscriber is one reference count.
#[derive(Clone, Debug)]
pub struct JobEvent(Arc<EventFields>);

/// What a [`JobEvent`] holds.
#[derive(Debug)]
pub struct EventFields {
    pub job_id: JobId,
    pub seq: u64,
    pub status: JobStatus,
    /// When the change was made (what the relay's lag is measured from).
    pub updated_at: Timestamp,
    /// When the job's key expires (every change renews it).
    pub expires_at: Timestamp,
    /// The full job JSON, as served by `GET /api/v4/job/{id}`.
    pub json: Bytes,
    /// This change framed for each stream, made by the first subscriber that needs it and
    /// shared by all the others.
    pub frames: Frames,
}

impl std::ops::Deref for JobEvent {
    type Target = EventFields;

    fn deref(&self) -> &EventFields {
        &self.0
    }
}

impl From<EventFields> for JobEvent {
    fn from(fields: EventFields) -> Self {
        Self(Arc::new(fields))
    }
}

/// A change's SSE event and WebSocket message, built at most once each.
#[derive(Debug, Default)]
pub struct Frames {
    pub sse: OnceLock<Bytes>,
    /// The SSE event as one HTTP/1.1 chunk, for streams served straight on the socket.
    pub sse_chunk: OnceLock<Bytes>,
    pub websocket: OnceLock<Bytes>,
    /// The WebSocket message as one frame on the wire, for sockets served directly.
    pub websocket_frame: OnceLock<Bytes>,
}

/// The fields of a job's JSON that an event is ordered and classified by.
#[derive(Deserialize)]
struct EventHead {
    job_id: JobId,
    seq: u64,
    status: JobStatus,
    updated_at: Timestamp,
    expires_at: Timestamp,
}

impl JobEvent {
    /// The event of a job already serialised (by Redis): only the fields it is ordered and
    /// classified by are read; the rest stays as it is, not parsed into a [`Job`].
    pub fn from_json(json: Bytes) -> serde_json::Result<Self> {
        let head: EventHead = serde_json::from_slice(&json)?;
        Ok(Self::from(EventFields {
            job_id: head.job_id,
            seq: head.seq,
            status: head.status,
            updated_at: head.updated_at,
            expires_at: head.expires_at,
            json,
            frames: Frames::default(),
        }))
    }
}

impl From<&Job> for JobEvent {
    fn from(job: &Job) -> Self {
        Self::from(EventFields {
            job_id: job.job_id,
            seq: job.seq,
            status: job.status,
            updated_at: job.updated_at,
            expires_at: job.expires_at,
            json: Bytes::from(job.to_json()),
            frames: Frames::default(),
        })
    }
}

/// What a frame tells the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// The job's full state at the start of a stream.
    Snapshot,
    Progress,
    Completed,
    Failed,
    Cancelled,
}

impl FrameKind {
    /// The SSE `event:` name and the WebSocket `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Progress => "progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn of_change(status: JobStatus) -> Self {
        match status {
            JobStatus::Pending | JobStatus::Processing => Self::Progress,
            JobStatus::Completed => Self::Completed,
            JobStatus::Failed => Self::Failed,
            JobStatus::Cancelled => Self::Cancelled,
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

    /// The frame that opens a stream with the job's full state.
    pub fn snapshot(event: JobEvent) -> Self {
        Self {
            kind: FrameKind::Snapshot,
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
