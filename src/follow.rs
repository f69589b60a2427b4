//! Following one job: the race-free start and the sequence of frames every stream sends.
//!
//! Subscribe first, then read the stored snapshot, then forward only events newer than what was
//! sent. Every frame carries the job's full state, so the newest frame repairs any gap and the
//! store stays the source of truth for clients that come back. Every reader of live state (a
//! stream, a long-poll, the poll cache, the dashboard) starts this way, through [`subscribe`].

use crate::hub::{Hub, Scope, Subscription};
use crate::job::{Frame, Job, JobEvent, JobId};
use crate::store::{JobStore, Store, StoreError};
use std::time::Duration;

/// How long a new watcher waits for the Redis subscription before reading the snapshot anyway.
/// Only reached while the pub/sub connection is down; the relay re-reads every watched job when
/// it is back, so nothing is missed either way.
pub const RELAY_WAIT: Duration = Duration::from_secs(2);

/// Why following a job did not start.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The job does not exist or has expired.
    #[error("job not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Subscribes to `scope`, then waits (at most `wait`) until its changes reach this instance:
/// the first step of every start. Whether they do; never while the store is degraded (changes
/// are published here then, there is no Redis subscription to await) or when `wait` is `None`.
pub async fn subscribe(
    hub: &Hub,
    store: &Store,
    scope: impl Into<Scope>,
    wait: Option<Duration>,
) -> (Subscription, bool) {
    let mut subscription = hub.subscribe(scope);
    let relayed = match wait {
        Some(wait) if !store.is_degraded() => subscription.relayed(wait).await,
        _ => false,
    };
    (subscription, relayed)
}

/// A job's stored state, read after its subscription began (see [`subscribe_and_read`]).
pub struct Opened {
    /// Receives every change after `job`.
    pub subscription: Subscription,
    pub job: Job,
    /// Whether the job's changes reach this instance through the relay.
    pub relayed: bool,
}

/// [`subscribe`] to `job_id`, then read its stored state: no change after it can be missed.
pub async fn subscribe_and_read(
    hub: &Hub,
    store: &Store,
    job_id: JobId,
    wait: Option<Duration>,
) -> Result<Opened, FollowError> {
    let (subscription, relayed) = subscribe(hub, store, job_id, wait).await;
    let job = store.get(job_id).await?.ok_or(FollowError::NotFound)?;
    Ok(Opened {
        subscription,
        job,
        relayed,
    })
}

/// How following a job begins.
pub enum Started {
    /// Frames follow.
    Streaming(Follower),
    /// The client already has the job's final state (its resume point is the final seq).
    AlreadyFinal(JobEvent),
}

/// One stream's follower of one job: the frames the client still lacks, in order.
pub struct Follower {
    job_id: JobId,
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
    hub: &Hub,
    store: &Store,
    job_id: JobId,
    resume_from: Option<u64>,
) -> Result<Started, FollowError> {
    let Opened {
        subscription, job, ..
    } = subscribe_and_read(hub, store, job_id, Some(RELAY_WAIT)).await?;
    let current = JobEvent::from(&job);
    let up_to_date = resume_from == Some(job.seq);
    if up_to_date && job.status.is_terminal() {
        return Ok(Started::AlreadyFinal(current));
    }
    let snapshot = (!up_to_date).then(|| Frame::snapshot(current));
    Ok(Started::Streaming(Follower {
        job_id,
        subscription,
        snapshot,
        last_seq: job.seq,
        finished: false,
    }))
}

impl Follower {
    /// The snapshot to send first, if the client needs one.
    pub fn take_snapshot(&mut self) -> Option<Frame> {
        self.snapshot.take()
    }

    /// The changes already received and newer than what was sent, without waiting. Only for
    /// streams that take their changes another way from now on ([`crate::sink`]).
    pub fn take_received(&mut self) -> impl Iterator<Item = Frame> + Send + '_ {
        std::iter::from_fn(|| self.try_next())
    }

    /// A change already received and newer than what was sent, without waiting.
    fn try_next(&mut self) -> Option<Frame> {
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

    /// The job followed.
    pub fn job_id(&self) -> JobId {
        self.job_id
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
