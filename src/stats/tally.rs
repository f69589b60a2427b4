//! Which counters a creation, a change or a write-back adds, and to which hour: the rules
//! create.lua and transition.lua apply inside Redis, for the memory store and the write-back.

use super::buckets::bucket_of;
use super::fields::Field;
use super::hours::hour_of;
use crate::job::{DEEP_RESEARCH_KIND, Job, JobStatus, Timestamp};

/// Counters to add one to, all in one hour.
#[derive(Debug, PartialEq, Eq)]
pub struct Tally {
    /// Hours since the epoch.
    pub hour: i64,
    /// The hash fields, each counted once (a field may repeat).
    pub fields: Vec<String>,
}

fn ms(instant: Timestamp) -> i64 {
    instant.0.timestamp_millis()
}

/// A job just created: `created` and `created:<kind>`, in the hour it was created.
pub fn of_creation(job: &Job) -> Tally {
    Tally {
        hour: hour_of(ms(job.created_at)),
        fields: vec![
            Field::Created.to_string(),
            Field::CreatedOfKind(&job.kind).to_string(),
        ],
    }
}

/// A change from `before` to `after`, counted in the hour it was made (`after.updated_at`):
/// the wait of a job's first start (pending with no attempt yet → processing, whether a worker
/// started it or a reporter's first progress did), and the outcome of the change that ends it.
pub fn of_change(before: &Job, after: &Job) -> Option<Tally> {
    let mut fields = Vec::new();
    if before.status == JobStatus::Pending
        && before.attempt == 0
        && after.status == JobStatus::Processing
    {
        let waited = ms(after.updated_at) - ms(before.created_at);
        fields.push(Field::Wait(bucket_of(waited)).to_string());
    }
    if !before.status.is_terminal() && after.status.is_terminal() {
        fields.extend(ending(after));
    }
    (!fields.is_empty()).then(|| Tally {
        hour: hour_of(ms(after.updated_at)),
        fields,
    })
}

/// A job written back after an outage over `stored` (what Redis held; `None` when it had no
/// such job) as `merged`: its creation when Redis did not have it, and its end when Redis did
/// not know it ended, each in the hour it happened. The waits of jobs first started during the
/// outage are not known (a job keeps no time of its first start) and are not counted.
pub fn of_write_back(stored: Option<&Job>, merged: &Job) -> Vec<Tally> {
    let mut tallies = Vec::new();
    if stored.is_none() {
        tallies.push(of_creation(merged));
    }
    if merged.status.is_terminal() && !stored.is_some_and(|stored| stored.status.is_terminal()) {
        let finished = merged.completed_at.unwrap_or(merged.updated_at);
        tallies.push(Tally {
            hour: hour_of(ms(finished)),
            fields: ending(merged),
        });
    }
    tallies
}

/// The counters of a job that has just ended: its status, with its kind, its duration, and a
/// completed deep-research report's findings.
fn ending(job: &Job) -> Vec<String> {
    let finished = job.completed_at.unwrap_or(job.updated_at);
    let mut fields = vec![
        Field::Finished(job.status).to_string(),
        Field::FinishedOfKind(job.status, &job.kind).to_string(),
        Field::Duration(bucket_of(ms(finished) - ms(job.created_at))).to_string(),
    ];
    if job.status == JobStatus::Completed && job.kind == DEEP_RESEARCH_KIND {
        let findings = findings_of(job).into_iter();
        fields.extend(findings.map(|ingredient| Field::Finding(&ingredient).to_string()));
    }
    fields
}

/// The `findings[].ingredient` of a report; none when the result is not a report.
fn findings_of(job: &Job) -> Vec<String> {
    let report: Option<serde_json::Value> = job
        .result
        .as_ref()
        .and_then(|result| serde_json::from_str(result.get()).ok());
    let findings = report
        .as_ref()
        .and_then(|report| report.get("findings")?.as_array());
    findings
        .into_iter()
        .flatten()
        .filter_map(|finding| finding.get("ingredient")?.as_str())
        .filter(|ingredient| !ingredient.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Change;
    use chrono::TimeDelta;

    fn job(kind: &str) -> Job {
        let input = serde_json::value::RawValue::from_string("{}".into()).unwrap();
        Job::new(kind, input, Timestamp::now(), 60)
    }

    fn apply(job: &Job, change: Change, after_ms: i64) -> Job {
        let now = Timestamp(job.created_at.0 + TimeDelta::milliseconds(after_ms));
        match change.apply(job, now, 60).unwrap() {
            crate::job::Outcome::Applied(next) => *next,
            crate::job::Outcome::Unchanged => panic!("unchanged"),
        }
    }

    fn report(ingredients: &[&str]) -> Box<serde_json::value::RawValue> {
        let findings: Vec<_> = ingredients
            .iter()
            .map(|i| serde_json::json!({"ingredient": i}))
            .collect();
        let json = serde_json::json!({"findings": findings, "overall_risk": {"level": "low"}});
        serde_json::value::RawValue::from_string(json.to_string()).unwrap()
    }

    #[test]
    fn a_creation_counts_in_the_hour_it_was_made() {
        let created = job("external");
        let tally = of_creation(&created);
        assert_eq!(tally.hour, hour_of(created.created_at.0.timestamp_millis()));
        assert_eq!(tally.fields, ["created", "created:external"]);
    }

    #[test]
    fn the_first_start_counts_its_wait_and_a_restart_does_not() {
        let pending = job(DEEP_RESEARCH_KIND);
        let started = apply(&pending, Change::Start { step: "go".into() }, 300);
        let tally = of_change(&pending, &started).unwrap();
        assert_eq!(tally.fields, [format!("wait:{}", bucket_of(300))]);

        let requeue = Change::Requeue {
            reason: "lost".into(),
            max_attempts: 3,
            fence: Some(1),
        };
        let requeued = apply(&started, requeue, 400);
        assert_eq!(of_change(&started, &requeued), None);
        let restarted = apply(
            &requeued,
            Change::Start {
                step: "again".into(),
            },
            500,
        );
        assert_eq!(
            of_change(&requeued, &restarted),
            None,
            "only the first start waits"
        );
    }

    #[test]
    fn a_reporters_first_progress_is_its_start() {
        let pending = job("external");
        let progress = Change::Progress {
            progress: 5,
            step: None,
            fence: None,
        };
        let running = apply(&pending, progress, 40);
        assert_eq!(
            of_change(&pending, &running).unwrap().fields,
            [format!("wait:{}", bucket_of(40))]
        );
        let more = apply(
            &running,
            Change::Progress {
                progress: 9,
                step: None,
                fence: None,
            },
            50,
        );
        assert_eq!(of_change(&running, &more), None);
    }

    #[test]
    fn the_end_counts_status_kind_duration_and_a_reports_findings() {
        let pending = job(DEEP_RESEARCH_KIND);
        let started = apply(&pending, Change::Start { step: "go".into() }, 10);
        let complete = Change::Complete {
            result: report(&["aspartame", "Caffeine"]),
            step: "done".into(),
            fence: Some(1),
        };
        let done = apply(&started, complete, 2_000);
        let tally = of_change(&started, &done).unwrap();
        assert_eq!(tally.hour, hour_of(done.updated_at.0.timestamp_millis()));
        assert_eq!(
            tally.fields,
            [
                "finished:completed".to_string(),
                "finished:completed:deep-research".into(),
                format!("duration:{}", bucket_of(2_000)),
                "finding:aspartame".into(),
                "finding:Caffeine".into(),
            ]
        );
    }

    #[test]
    fn a_cancelled_pending_job_counts_its_end_but_no_wait() {
        let pending = job("external");
        let cancelled = apply(
            &pending,
            Change::Cancel {
                reason: "no".into(),
            },
            70,
        );
        let tally = of_change(&pending, &cancelled).unwrap();
        assert_eq!(
            tally.fields[..2],
            ["finished:cancelled", "finished:cancelled:external"]
        );
        assert_eq!(tally.fields.len(), 3);
    }

    #[test]
    fn a_write_back_counts_what_redis_did_not_see() {
        let pending = job("external");
        let failed = apply(
            &pending,
            Change::Fail {
                error: "x".into(),
                fence: None,
            },
            90,
        );
        let both = of_write_back(None, &failed);
        assert_eq!(both.len(), 2, "created and failed during the outage");
        assert_eq!(both[0].fields[0], "created");
        assert_eq!(both[1].fields[0], "finished:failed");
        assert_eq!(
            of_write_back(Some(&pending), &failed).len(),
            1,
            "created before it"
        );
        assert_eq!(
            of_write_back(Some(&failed), &failed),
            [],
            "Redis counted it already"
        );
    }
}
