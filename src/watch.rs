//! Watching one job: the race-free start and the sequence of frames every stream sends.
//!
//! Subscribe first, then read the stored snapshot, then forward only events newer than what was
//! sent. Every frame carries the job's full state, so the newest frame repairs any gap and the
//! store stays the source of truth for clients that come back.

use crate::hub::{Hub, Subscription};
use crate::job::{Frame, JobEvent, JobId};
use crate::store::{JobStore, Store, StoreError};
use std::time::Duration;

/// How long a new watcher waits for the Redis subscription before reading the snapshot anyway.
/// Only reached while the pub/sub connection is down; the relay re-reads every watched job when
/// it is back, so nothing is missed either way.
pub const RELAY_WAIT: Duration = Duration::from_secs(2);

/// Why a watch did not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The job does not exist or has expired.
    #[error("job not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
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
    hub: &Hub,
    store: &Store,
    job_id: JobId,
    resume_from: Option<u64>,
) -> Result<WatchStart, WatchError> {
    let mut subscription = hub.subscribe(job_id);
    if !store.is_degraded() {
        // While degraded, changes are published locally: there is no Redis subscription to await.
        subscription.relayed(RELAY_WAIT).await;
    }
    let job = store.get(job_id).await?.ok_or(WatchError::NotFound)?;
    let current = JobEvent::from(&job);
    let up_to_date = resume_from == Some(job.seq);
    if up_to_date && job.status.is_terminal() {
        return Ok(WatchStart::AlreadyFinal(current));
    }
    let snapshot = (!up_to_date).then(|| Frame::snapshot(current));
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
