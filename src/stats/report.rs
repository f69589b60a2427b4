//! What `GET /api/v4/stats` answers: the counters of a window's hours added up, with the
//! success rate, the percentiles of the duration and wait histograms, the series per hour and
//! the most frequent findings.

use super::distribution::Distribution;
use super::fields::{Counters, Field};
use super::hours::start_of;
use super::percentile::Histogram;
use super::window::Window;
use crate::job::{JobStatus, Timestamp};
use serde::Serialize;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// How many of the most frequent findings are listed.
pub const TOP_FINDINGS: usize = 10;

/// The jobs of a window of whole hours: the current hour and the ones before it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsReport {
    /// `1h`, `24h`, `7d` or `30d`.
    pub window: String,
    /// The start of the window's oldest hour.
    pub from: Timestamp,
    /// The end of the current hour.
    pub until: Timestamp,
    /// Jobs created in the window.
    pub created: u64,
    /// The same, by kind.
    pub created_by_kind: BTreeMap<String, u64>,
    /// Jobs that ended in the window, by how.
    pub finished: Outcomes,
    /// The same, by kind.
    pub finished_by_kind: BTreeMap<String, Outcomes>,
    /// completed / (completed + failed + cancelled) of the jobs that ended in the window;
    /// `null` when none did.
    #[schema(required = true)]
    pub success_rate: Option<f64>,
    /// From creation to the end, of the jobs that ended in the window.
    pub duration_ms: Distribution,
    /// From creation to the first start (a worker's, or a reporter's first progress), of the
    /// jobs that first started in the window.
    pub queue_wait_ms: Distribution,
    /// One entry per hour of the window, oldest first, hours with nothing included.
    pub per_hour: Vec<HourCounts>,
    /// The ingredients most often among completed deep-research reports' findings (as they
    /// were listed), most frequent first, at most 10.
    pub top_findings: Vec<FindingCount>,
}

/// How many jobs ended each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Outcomes {
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl Outcomes {
    fn add(&mut self, status: JobStatus, count: u64) {
        match status {
            JobStatus::Completed => self.completed += count,
            JobStatus::Failed => self.failed += count,
            JobStatus::Cancelled => self.cancelled += count,
            JobStatus::Pending | JobStatus::Processing => {}
        }
    }

    fn total(self) -> u64 {
        self.completed + self.failed + self.cancelled
    }
}

/// One hour of the series.
#[derive(Debug, Serialize, ToSchema)]
pub struct HourCounts {
    /// When the hour starts.
    pub hour: Timestamp,
    pub created: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// An ingredient and how many reports found it.
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FindingCount {
    pub ingredient: String,
    pub count: u64,
}

impl StatsReport {
    /// The report of `window` ending with the hour `current`, from the counters of each of its
    /// hours (`hours[i]` is the i-th hour of `window.range(current)`).
    pub fn build<C: Borrow<Counters>>(window: Window, current: i64, hours: &[C]) -> Self {
        let range = window.range(current);
        let mut sums = Sums::default();
        let per_hour: Vec<HourCounts> = range
            .clone()
            .zip(hours)
            .map(|(hour, counters)| sums.add_hour(hour, counters.borrow()))
            .collect();
        let finished = per_hour.iter().fold(Outcomes::default(), |mut sum, row| {
            sum.completed += row.completed;
            sum.failed += row.failed;
            sum.cancelled += row.cancelled;
            sum
        });
        let ended = finished.total();
        Self {
            window: window.to_string(),
            from: start_of(*range.start()),
            until: start_of(current + 1),
            created: per_hour.iter().map(|row| row.created).sum(),
            created_by_kind: sums.created_by_kind,
            finished,
            finished_by_kind: sums.finished_by_kind,
            success_rate: (ended > 0).then(|| finished.completed as f64 / ended as f64),
            duration_ms: Distribution::of(&sums.durations),
            queue_wait_ms: Distribution::of(&sums.waits),
            per_hour,
            top_findings: top(sums.findings),
        }
    }
}

/// What the window's hours add up to beyond the series, as they are read.
#[derive(Default)]
struct Sums<'a> {
    created_by_kind: BTreeMap<String, u64>,
    finished_by_kind: BTreeMap<String, Outcomes>,
    durations: Histogram,
    waits: Histogram,
    findings: HashMap<&'a str, u64>,
}

impl<'a> Sums<'a> {
    /// Adds the counters of `hour`; its entry of the series.
    fn add_hour(&mut self, hour: i64, counters: &'a Counters) -> HourCounts {
        let mut row = HourCounts {
            hour: start_of(hour),
            created: 0,
            completed: 0,
            failed: 0,
            cancelled: 0,
        };
        for (name, &count) in counters {
            let count = u64::try_from(count).unwrap_or(0);
            match Field::parse(name) {
                Some(Field::Created) => row.created += count,
                Some(Field::CreatedOfKind(kind)) => {
                    *self.created_by_kind.entry(kind.to_owned()).or_default() += count;
                }
                Some(Field::Finished(status)) => row.add(status, count),
                Some(Field::FinishedOfKind(status, kind)) => {
                    let by_kind = self.finished_by_kind.entry(kind.to_owned());
                    by_kind.or_default().add(status, count);
                }
                Some(Field::Duration(bucket)) => {
                    *self.durations.entry(bucket).or_default() += count
                }
                Some(Field::Wait(bucket)) => *self.waits.entry(bucket).or_default() += count,
                Some(Field::Finding(ingredient)) => {
                    *self.findings.entry(ingredient).or_default() += count;
                }
                None => {}
            }
        }
        row
    }
}

impl HourCounts {
    fn add(&mut self, status: JobStatus, count: u64) {
        match status {
            JobStatus::Completed => self.completed += count,
            JobStatus::Failed => self.failed += count,
            JobStatus::Cancelled => self.cancelled += count,
            JobStatus::Pending | JobStatus::Processing => {}
        }
    }
}

/// The [`TOP_FINDINGS`] most frequent, most frequent first, then by name.
fn top(findings: HashMap<&str, u64>) -> Vec<FindingCount> {
    let mut all: Vec<(&str, u64)> = findings.into_iter().filter(|(_, n)| *n > 0).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    all.into_iter()
        .take(TOP_FINDINGS)
        .map(|(ingredient, count)| FindingCount {
            ingredient: ingredient.to_owned(),
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::buckets::{bucket_of, representative};

    fn counters(fields: &[(&str, i64)]) -> Counters {
        fields.iter().map(|(f, n)| (f.to_string(), *n)).collect()
    }

    #[test]
    fn the_hours_add_up_to_the_window() {
        let older = counters(&[
            ("created", 3),
            ("created:external", 1),
            ("created:deep-research", 2),
            ("finished:completed", 2),
            ("finished:completed:deep-research", 2),
            (&format!("duration:{}", bucket_of(1_000)), 2),
        ]);
        let current = counters(&[
            ("created", 1),
            ("created:external", 1),
            ("finished:failed", 1),
            ("finished:failed:external", 1),
            ("finished:cancelled", 1),
            ("finished:cancelled:external", 1),
            (&format!("duration:{}", bucket_of(50)), 2),
            (&format!("wait:{}", bucket_of(20)), 1),
        ]);
        let report = StatsReport::build(Window::Day, 1_000, &[older, Counters::new(), current]);
        assert_eq!(report.created, 4);
        assert_eq!(report.created_by_kind["external"], 2);
        let outcomes = Outcomes {
            completed: 2,
            failed: 1,
            cancelled: 1,
        };
        assert_eq!(report.finished, outcomes);
        assert_eq!(
            report.finished_by_kind["external"],
            Outcomes {
                completed: 0,
                failed: 1,
                cancelled: 1
            }
        );
        assert_eq!(report.success_rate, Some(0.5));
        assert_eq!(report.duration_ms.count, 4);
        assert_eq!(report.duration_ms.p50, Some(representative(bucket_of(50))));
        assert_eq!(
            report.duration_ms.p99,
            Some(representative(bucket_of(1_000)))
        );
        assert_eq!(
            report.queue_wait_ms.p95,
            Some(representative(bucket_of(20)))
        );
        assert_eq!(report.duration_ms.buckets.len(), 2);
    }

    #[test]
    fn the_series_has_one_entry_per_hour_oldest_first() {
        let hours: Vec<Counters> = (0..24).map(|i| counters(&[("created", i)])).collect();
        let report = StatsReport::build(Window::Day, 500_000, &hours);
        assert_eq!(report.per_hour.len(), 24);
        assert_eq!(report.per_hour[0].hour, start_of(500_000 - 23));
        assert_eq!(report.per_hour[23].hour, start_of(500_000));
        assert_eq!(report.per_hour[23].created, 23);
        assert_eq!(
            (report.from, report.until),
            (start_of(499_977), start_of(500_001))
        );
    }

    #[test]
    fn nothing_finished_has_no_success_rate_and_no_percentiles() {
        let report = StatsReport::build(Window::Hour, 7, &[Counters::new()]);
        assert_eq!((report.success_rate, report.duration_ms.p50), (None, None));
        assert_eq!(report.per_hour.len(), 1);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["success_rate"].is_null() && json["queue_wait_ms"]["p99"].is_null());
    }

    #[test]
    fn the_top_findings_are_the_ten_most_frequent() {
        let mut hour: Vec<(String, i64)> = (0..12)
            .map(|i| (format!("finding:e{i:02}"), i + 1))
            .collect();
        hour.push(("finding:e00".into(), 0));
        let hour: Counters = hour.into_iter().collect();
        let report = StatsReport::build(Window::Hour, 7, &[hour]);
        let names: Vec<&str> = report
            .top_findings
            .iter()
            .map(|f| f.ingredient.as_str())
            .collect();
        assert_eq!(names.len(), TOP_FINDINGS);
        assert_eq!((names[0], report.top_findings[0].count), ("e11", 12));
        assert_eq!(names[9], "e02");
    }
}
