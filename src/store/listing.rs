//! Listing jobs newest first, a page at a time, from an index sorted by creation time.

use crate::job::{Job, JobId, JobStatus, Timestamp};
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

/// Collects a page from index entries read newest first, `batch` at a time, by `read_batch`,
/// which returns the entries after a cursor with their jobs (`None` for an expired job).
pub async fn collect_page<F, Fut, E>(query: &ListQuery, mut read_batch: F) -> Result<JobPage, E>
where
    F: FnMut(Option<Cursor>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(Cursor, Option<Job>)>, E>>,
{
    let batch = (query.limit * 2).clamp(16, 200);
    let mut page = JobPage::default();
    let mut position = query.after;
    let mut scanned = 0;
    loop {
        let entries = read_batch(position, batch).await?;
        let exhausted = entries.len() < batch;
        for (cursor, job) in entries {
            scanned += 1;
            position = Some(cursor);
            let wanted = job.filter(|job| query.status.is_none_or(|status| job.status == status));
            if let Some(job) = wanted {
                page.jobs.push(job);
                if page.jobs.len() == query.limit {
                    page.next = position;
                    return Ok(page);
                }
            }
        }
        if exhausted {
            return Ok(page);
        }
        if scanned >= MAX_SCAN {
            page.next = position;
            return Ok(page);
        }
    }
}
