//! Listing jobs newest first, a page at a time, from an index sorted by creation time.

use crate::job::{HistoryRecord, Job, JobId, JobStatus, Timestamp};
use crate::search::Search;
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// The largest page a client may ask for.
pub const MAX_PAGE: usize = 100;
/// The most index entries one page may look through while filtering by status.
pub const MAX_SCAN: usize = 2_000;

/// A position in the index: the entry a page ended on. The next page starts strictly after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub created_ms: i64,
    pub job_id: JobId,
}

impl Cursor {
    /// The index position of `job`.
    pub fn of(job: &Job) -> Self {
        Self {
            created_ms: job.created_at.0.timestamp_millis(),
            job_id: job.job_id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.created_ms, self.job_id)
    }
}

impl FromStr for Cursor {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, id) = s.split_once('_').ok_or(())?;
        Ok(Self {
            created_ms: ms.parse().map_err(|_| ())?,
            job_id: id.parse().map_err(|_| ())?,
        })
    }
}

/// What to list.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub status: Option<JobStatus>,
    /// Only jobs this search finds.
    pub search: Option<Search>,
    pub limit: usize,
    /// Start strictly after this entry (newest first); `None` starts at the newest job.
    pub after: Option<Cursor>,
}

/// One page, newest first.
#[derive(Debug, Default)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Where the next page starts; `None` when the index has no more entries.
    pub next: Option<Cursor>,
}

/// The scalar fields of a stored job that say whether it may be stuck; reading only these keeps a
/// walk of the whole index from reading every job's payloads.
#[derive(Clone, Debug, Deserialize)]
pub struct JobHead {
    pub job_id: JobId,
    pub kind: String,
    pub status: JobStatus,
    pub updated_at: Timestamp,
}

impl From<&Job> for JobHead {
    fn from(job: &Job) -> Self {
        Self {
            job_id: job.job_id,
            kind: job.kind.clone(),
            status: job.status,
            updated_at: job.updated_at,
        }
    }
}

/// A batch of the index walked oldest first, by position.
#[derive(Debug, Default)]
pub struct HeadPage {
    pub heads: Vec<JobHead>,
    /// The position of the next batch; `None` once the index is exhausted.
    pub next: Option<usize>,
}

/// What history to list: newest first, by when jobs finished.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
    /// Only jobs this search finds.
    pub search: Option<Search>,
    /// Only jobs that finished at or after this instant (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only jobs that finished at or before this instant (ms since the epoch).
    pub until_ms: Option<i64>,
    pub limit: usize,
    /// Start strictly after this entry; its `created_ms` is, here, when the job finished.
    pub after: Option<Cursor>,
}

impl HistoryQuery {
    fn wants(&self, record: &HistoryRecord) -> bool {
        self.status.is_none_or(|status| record.status == status)
            && self.kind.as_ref().is_none_or(|kind| record.kind == *kind)
            && self
                .since_ms
                .is_none_or(|since| record.finished_ms() >= since)
    }
}

/// One page of history, newest first.
#[derive(Debug, Default)]
pub struct HistoryPage {
    pub records: Vec<HistoryRecord>,
    /// Where the next page starts; `None` when there are no more records.
    pub next: Option<Cursor>,
}

/// Collects a page from index entries read newest first, `batch` at a time, by `read_batch`,
/// which returns the entries after a cursor with their jobs (`None` for an expired job).
pub async fn collect_page<F, Fut, E>(query: &ListQuery, read_batch: F) -> Result<JobPage, E>
where
    F: FnMut(Option<Cursor>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(Cursor, Option<Job>)>, E>>,
{
    let wanted = |job: &Job| query.status.is_none_or(|status| job.status == status);
    let (jobs, next) = collect(query.limit, query.after, wanted, read_batch).await?;
    Ok(JobPage { jobs, next })
}

/// [`collect_page`] for the history: records of jobs that finished after `since_ms` (the read
/// starts at `until_ms`), of the status and kind asked for.
pub async fn collect_history<F, Fut, E>(
    query: &HistoryQuery,
    read_batch: F,
) -> Result<HistoryPage, E>
where
    F: FnMut(Option<Cursor>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(Cursor, Option<HistoryRecord>)>, E>>,
{
    let (records, next) = collect(query.limit, query.after, |r| query.wants(r), read_batch).await?;
    Ok(HistoryPage { records, next })
}

/// Up to `limit` items that `wanted` keeps, read after `after` a batch at a time, looking
/// through at most [`MAX_SCAN`] entries: the items, and where the next page starts.
async fn collect<T, F, Fut, E>(
    limit: usize,
    after: Option<Cursor>,
    wanted: impl Fn(&T) -> bool,
    mut read_batch: F,
) -> Result<(Vec<T>, Option<Cursor>), E>
where
    F: FnMut(Option<Cursor>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(Cursor, Option<T>)>, E>>,
{
    let batch = (limit * 2).clamp(16, 200);
    let mut items = Vec::new();
    let mut position = after;
    let mut scanned = 0;
    loop {
        let entries = read_batch(position, batch).await?;
        let exhausted = entries.len() < batch;
        for (cursor, item) in entries {
            scanned += 1;
            position = Some(cursor);
            if let Some(item) = item.filter(|item| wanted(item)) {
                items.push(item);
                if items.len() == limit {
                    return Ok((items, position));
                }
            }
        }
        if exhausted {
            return Ok((items, None));
        }
        if scanned >= MAX_SCAN {
            return Ok((items, position));
        }
    }
}
