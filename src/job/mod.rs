//! The job record as stored and served: ids, statuses, timestamps and the state machine, and
//! the vocabulary of a change that every layer above shares ([`event`], [`wire`]).

mod change;
pub mod event;
mod history;
mod merge;
pub mod payload;
mod priority;
mod timestamp;
pub mod wire;

pub use change::{Change, Outcome, Rejection};
pub use event::{EventFields, Frame, FrameKind, Frames, JobEvent};
pub use history::HistoryRecord;
pub use merge::Superseded;
pub use priority::{ARRIVALS_PER_BAND, DEFAULT_PRIORITY, MAX_PRIORITY, Priority};
pub use timestamp::Timestamp;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use uuid::Uuid;

/// A job's identifier: a random UUIDv4, so knowing one is the capability to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// The id as 32 hex digits, without hyphens.
    pub fn simple(&self) -> String {
        self.0.simple().to_string()
    }

    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The greatest id: the end of a range of ids.
    pub fn max() -> Self {
        Self(Uuid::max())
    }

    /// The Redis key that holds this job's JSON (`job:<uuid>`, as in the original service).
    pub fn key(&self) -> String {
        Self::key_of(&self.0.to_string())
    }

    /// The key of the job named by `id`, an id as read back from an index or queue entry
    /// (which need not be a valid one).
    pub fn key_of(id: &str) -> String {
        format!("job:{id}")
    }

    /// The pub/sub channel on which every change of this job is published.
    ///
    /// It is named like the key so that sharded pub/sub (Redis Cluster) maps it to the key's slot.
    pub fn channel(&self) -> String {
        self.key()
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// In the API document: a UUID string.
impl utoipa::PartialSchema for JobId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .description(Some(
                "A job's id: a random UUIDv4, the capability to read the job.",
            ))
            .examples([serde_json::json!("3f2c8a4e-9b1d-4c7a-8e6f-2a5b7c9d0e1f")])
            .into()
    }
}

impl ToSchema for JobId {}

impl FromStr for JobId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Where a job is in its life: `pending → processing → completed | failed`, or `cancelled` from
/// either of the first two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    /// Terminal states never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// The lower-case name used on the wire and in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The kind of the built-in job that this server's workers run.
pub const DEEP_RESEARCH_KIND: &str = "deep-research";

/// One job, exactly as stored under its key and served by `GET /api/v4/job/{id}`.
///
/// Field order matters to the Redis script: every scalar field comes first, then `input`, then
/// `result`, and `result` is `null` until the job is terminal. The script relies on that layout to
/// rewrite the scalars without decoding (and so without altering) the caller's JSON payloads.
///
/// Its schema in the API document is derived from this struct (`ToSchema`): `Option` fields are
/// always sent (as `null` when empty), so they are marked required.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(
    description = "A job as `GET /api/v4/job/{job_id}` serves it, and every stream frame carries it."
)]
pub struct Job {
    pub job_id: JobId,
    /// What the job is: `deep-research` is run by this server's workers, any other kind by
    /// whoever reports its progress.
    pub kind: String,
    pub status: JobStatus,
    /// 0–100, never lower than before.
    #[schema(maximum = 100)]
    pub progress: u8,
    /// What the job is doing now, in words.
    pub current_step: String,
    pub created_at: Timestamp,
    /// When the job last changed.
    pub updated_at: Timestamp,
    /// When the job completed or failed; `null` while it runs.
    #[schema(required = true)]
    pub completed_at: Option<Timestamp>,
    /// When the key's TTL runs out: how long a client can come back for this job.
    pub expires_at: Timestamp,
    /// Why the job failed; `null` unless it did.
    #[schema(required = true)]
    pub error: Option<String>,
    /// Bumped by one on every change; the resume token of ETag, SSE `id:` and WebSocket frames.
    pub seq: u64,
    /// How many times a worker has started this job; the fencing token of the current attempt.
    pub attempt: u32,
    /// 0–9: queued jobs run highest priority first, first come first served within one. Jobs
    /// stored before priorities existed read as [`DEFAULT_PRIORITY`] (as transition.lua does).
    #[serde(default)]
    pub priority: Priority,
    /// Terminal outcomes that lost to this one when states that diverged during a Redis outage
    /// were merged (see [`Superseded`]); absent when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<Superseded>,
    /// The job's input, kept verbatim.
    #[schema(value_type = serde_json::Value)]
    pub input: Box<RawValue>,
    /// The job's result, kept verbatim; `null` until the job is completed.
    #[schema(value_type = Option<serde_json::Value>, required = true)]
    pub result: Option<Box<RawValue>>,
    /// The endpoint told when the job ends (`webhook_url` on create). Never part of the job's
    /// JSON, so never shown to those who watch it: stores keep it beside the job.
    #[serde(skip)]
    pub webhook_url: Option<String>,
}

impl Job {
    /// A new pending job with `seq` 1, expiring `ttl` from `now`.
    pub fn new(kind: &str, input: Box<RawValue>, now: Timestamp, ttl_secs: u64) -> Self {
        Self {
            job_id: JobId::new(),
            kind: kind.to_owned(),
            status: JobStatus::Pending,
            progress: 0,
            current_step: "Queued".to_owned(),
            created_at: now,
            updated_at: now,
            completed_at: None,
            expires_at: now.plus_secs(ttl_secs),
            error: None,
            seq: 1,
            attempt: 0,
            priority: Priority::default(),
            superseded: Vec::new(),
            input,
            result: None,
            webhook_url: None,
        }
    }

    /// The job as JSON text (what is stored, published and served).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Job always serialises")
    }
}
