//! Joining two states of one job that diverged while Redis was away (the write-back's merge).
//!
//! During an outage every instance serves from its own memory and counts `seq` on its own, so
//! two instances can acknowledge different changes of one job with the same `seq`. Keeping "the
//! higher seq" then drops an acknowledged completion. The merge here is a join instead: it does
//! not depend on the order in which instances write back, a terminal state dominates every
//! running one, progress is the maximum, the result travels with its terminal state, and the
//! merged `seq` is above both, so every stream that saw either state receives the merge.

use super::{Job, JobStatus, Timestamp};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A terminal outcome that lost a merge to another terminal outcome of the same job. It stays in
/// the job's record (`superseded`), so what a client was told is never silently gone.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct Superseded {
    #[schema(required = true)]
    pub completed_at: Option<Timestamp>,
    pub status: JobStatus,
    #[schema(required = true)]
    pub error: Option<String>,
    /// The result's JSON text, kept as a string so the stored document keeps its layout (every
    /// scalar before `input`, see [`Job`]).
    #[schema(required = true)]
    pub result: Option<String>,
}

impl Job {
    /// The join of two states of this job: terminal over running (between two terminal states
    /// the earlier `completed_at` wins, then `completed` over `failed`, then the smaller payload;
    /// the loser is kept in `superseded`), among running states the later attempt, progress the
    /// maximum of both, and `seq` one above both.
    pub fn merged_with(&self, other: &Job) -> Job {
        let (lead, rest) = match self.precedence(other) {
            Ordering::Less => (other, self),
            _ => (self, other),
        };
        let mut merged = lead.clone();
        merged.progress = lead.progress.max(rest.progress);
        merged.attempt = lead.attempt.max(rest.attempt);
        merged.seq = lead.seq.max(rest.seq) + 1;
        merged.updated_at = lead.updated_at.max(rest.updated_at);
        merged.expires_at = lead.expires_at.max(rest.expires_at);
        merged.created_at = lead.created_at.min(rest.created_at);
        merged.superseded = superseded_after(lead, rest);
        merged
    }

    /// Whether `other` says nothing this state does not: merging it in changes nothing but the
    /// bookkeeping (`seq` and times).
    pub fn covers(&self, other: &Job) -> bool {
        let merged = self.merged_with(other);
        merged.status == self.status
            && merged.progress == self.progress
            && merged.current_step == self.current_step
            && merged.attempt == self.attempt
            && merged.error == self.error
            && merged.completed_at == self.completed_at
            && merged.superseded == self.superseded
            && merged.result.as_ref().map(|r| r.get()) == self.result.as_ref().map(|r| r.get())
    }

    /// What to write back over `stored` so that nothing either state told a client is lost:
    /// `None` when `stored` already says it all (it covers this state with a higher seq, or is
    /// this very state); this state as it is when it covers `stored` with a higher seq (a
    /// fast-forward, no seq needed above it); otherwise the merge of both.
    pub fn written_over(&self, stored: &Job) -> Option<Job> {
        let same = stored.seq == self.seq && self.covers(stored);
        if stored.covers(self) && (stored.seq > self.seq || same) {
            return None;
        }
        if self.covers(stored) && self.seq > stored.seq {
            return Some(self.clone());
        }
        Some(stored.merged_with(self))
    }

    /// Which of two states leads the merge (`Greater`: `self` does).
    fn precedence(&self, other: &Job) -> Ordering {
        match (self.status.is_terminal(), other.status.is_terminal()) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            // The first outcome stands: the earlier one leads, so it compares greater.
            (true, true) => other.outcome().cmp(&self.outcome()),
            (false, false) => self.running_rank().cmp(&other.running_rank()),
        }
    }

    /// Where a running state is in the life of a job: attempts go up on each start, and within
    /// one attempt a worker's job moves `processing → pending` (handed back or requeued), while
    /// a reported job (attempt 0) moves `pending → processing`.
    fn running_rank(&self) -> (u32, u8, u8, u64, Timestamp) {
        let phase = match (self.attempt, self.status) {
            (0, JobStatus::Pending) | (1.., JobStatus::Processing) => 0,
            _ => 1,
        };
        (
            self.attempt,
            phase,
            self.progress,
            self.seq,
            self.updated_at,
        )
    }

    /// This state's terminal outcome, ordered so that the first to finish sorts first.
    fn outcome(&self) -> Superseded {
        Superseded {
            completed_at: self.completed_at,
            status: self.status,
            error: self.error.clone(),
            result: self.result.as_ref().map(|r| r.get().to_owned()),
        }
    }
}

/// Every terminal outcome either state held or superseded, except the one the merge keeps.
fn superseded_after(lead: &Job, rest: &Job) -> Vec<Superseded> {
    let mut all: Vec<Superseded> = lead
        .superseded
        .iter()
        .chain(&rest.superseded)
        .cloned()
        .collect();
    if lead.status.is_terminal() && rest.status.is_terminal() {
        all.push(rest.outcome());
        let kept = lead.outcome();
        all.retain(|outcome| !same_outcome(outcome, &kept));
    }
    all.sort();
    let mut kept: Vec<Superseded> = Vec::with_capacity(all.len());
    for outcome in all {
        if !kept.iter().any(|earlier| same_outcome(earlier, &outcome)) {
            kept.push(outcome); // the earliest time each outcome was reached
        }
    }
    kept
}

/// Two outcomes say the same thing when they differ at most in when they were reached (a write
/// that timed out in Redis and was then made in memory too reaches Redis later, unchanged).
fn same_outcome(a: &Superseded, b: &Superseded) -> bool {
    (a.status, &a.error, &a.result) == (b.status, &b.error, &b.result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn job() -> Job {
        let input = RawValue::from_string(r#"{"n":[]}"#.to_owned()).unwrap();
        let mut job = Job::new("external", input, Timestamp::now(), 60);
        job.status = JobStatus::Processing;
        job.seq = 2;
        job
    }

    fn progressed(base: &Job, progress: u8, seq: u64) -> Job {
        let mut job = base.clone();
        job.progress = progress;
        job.current_step = format!("at {progress}");
        job.seq = seq;
        job
    }

    fn finished(base: &Job, status: JobStatus, payload: &str, millis: i64, seq: u64) -> Job {
        let mut job = base.clone();
        job.status = status;
        job.seq = seq;
        job.completed_at = Some(Timestamp(
            base.created_at.0 + chrono::TimeDelta::milliseconds(millis),
        ));
        match status {
            JobStatus::Completed => {
                job.progress = 100;
                job.result = Some(RawValue::from_string(payload.to_owned()).unwrap());
            }
            _ => job.error = Some(payload.to_owned()),
        }
        job
    }

    /// Everything but the bookkeeping, to compare merges made in different orders.
    fn content(job: &Job) -> String {
        let mut job = job.clone();
        (job.seq, job.updated_at, job.expires_at) = (0, job.created_at, job.created_at);
        job.to_json()
    }

    #[test]
    fn an_acknowledged_completion_survives_a_higher_seq_of_progress_from_another_instance() {
        let base = job();
        let completed = finished(&base, JobStatus::Completed, r#"{"ok":[1]}"#, 10, 3);
        let progress = progressed(&base, 30, 5);
        for merged in [
            completed.merged_with(&progress),
            progress.merged_with(&completed),
        ] {
            assert_eq!(merged.status, JobStatus::Completed);
            assert_eq!(merged.result.as_ref().unwrap().get(), r#"{"ok":[1]}"#);
            assert_eq!(merged.progress, 100);
            assert_eq!(merged.seq, 6, "above every seq a client saw");
        }
        assert!(completed.covers(&progress));
        assert!(!progress.covers(&completed));
    }

    #[test]
    fn a_write_back_keeps_what_redis_has_fast_forwards_a_descendant_and_merges_the_rest() {
        let base = job();
        let ours = progressed(&base, 30, 5);
        assert!(
            ours.written_over(&ours.clone()).is_none(),
            "the very same state"
        );
        let newer = finished(&base, JobStatus::Completed, "{}", 10, 6);
        assert!(
            ours.written_over(&newer).is_none(),
            "a newer state that includes ours"
        );
        let older = progressed(&base, 10, 3);
        assert_eq!(ours.written_over(&older).unwrap().seq, 5, "ours as it is");
        let same_seq = finished(&base, JobStatus::Completed, "{}", 10, 5);
        let merged = ours.written_over(&same_seq).unwrap();
        assert_eq!((merged.status, merged.seq), (JobStatus::Completed, 6));
    }

    #[test]
    fn progress_never_goes_back_and_the_later_attempt_leads() {
        let base = job();
        let (low, high) = (progressed(&base, 20, 9), progressed(&base, 60, 4));
        assert_eq!(low.merged_with(&high).progress, 60);
        assert_eq!(high.merged_with(&low).current_step, "at 60");
        let mut requeued = progressed(&base, 40, 3);
        requeued.status = JobStatus::Pending;
        requeued.attempt = 1;
        let mut resumed = requeued.clone();
        resumed.status = JobStatus::Processing;
        resumed.attempt = 2;
        assert_eq!(requeued.merged_with(&resumed).attempt, 2);
        assert_eq!(resumed.merged_with(&requeued).status, JobStatus::Processing);
    }

    #[test]
    fn of_two_outcomes_the_first_stands_and_the_other_is_kept_as_superseded() {
        let base = job();
        let failed = finished(&base, JobStatus::Failed, "disk full", 5, 3);
        let completed = finished(&base, JobStatus::Completed, "{}", 9, 3);
        let merged = completed.merged_with(&failed);
        assert_eq!(merged.status, JobStatus::Failed);
        assert_eq!(merged.superseded.len(), 1);
        assert_eq!(merged.superseded[0].status, JobStatus::Completed);
        assert_eq!(merged.superseded[0].result.as_deref(), Some("{}"));
        assert_eq!(content(&merged), content(&failed.merged_with(&completed)));
    }

    #[test]
    fn the_same_outcome_reached_twice_is_not_a_conflict() {
        let base = job();
        let first = finished(&base, JobStatus::Completed, "[1]", 5, 3);
        let again = finished(&base, JobStatus::Completed, "[1]", 8, 4);
        let merged = again.merged_with(&first);
        assert!(merged.superseded.is_empty());
        assert_eq!(merged.completed_at, first.completed_at);
    }

    #[test]
    fn merging_in_any_order_and_grouping_gives_one_state() {
        let base = job();
        let states = [
            progressed(&base, 10, 3),
            progressed(&base, 70, 4),
            finished(&base, JobStatus::Completed, r#"{"a":1}"#, 30, 3),
            finished(&base, JobStatus::Failed, "boom", 20, 5),
            finished(&base, JobStatus::Completed, r#"{"b":2}"#, 20, 6),
        ];
        let orders: [[usize; 5]; 4] = [
            [0, 1, 2, 3, 4],
            [4, 3, 2, 1, 0],
            [2, 0, 4, 1, 3],
            [3, 4, 1, 0, 2],
        ];
        let results: Vec<String> = orders
            .iter()
            .map(|order| {
                let merged = order[1..].iter().fold(states[order[0]].clone(), |acc, &i| {
                    acc.merged_with(&states[i])
                });
                content(&merged)
            })
            .collect();
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:#?}");
        let grouped = states[0]
            .merged_with(&states[1].merged_with(&states[2]))
            .merged_with(&states[3].merged_with(&states[4]));
        assert_eq!(content(&grouped), results[0]);
        let merged: Job = serde_json::from_str(&results[0]).unwrap();
        assert_eq!(
            merged.status,
            JobStatus::Completed,
            "completed at 20 beats failed at 20"
        );
        assert_eq!(merged.superseded.len(), 2);
    }
}
