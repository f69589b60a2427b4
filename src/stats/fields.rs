//! What each hour counts: the fields of its hash (`HINCRBY`'d by create.lua and transition.lua,
//! kept alike by the memory store), written and read back here.

use crate::job::JobStatus;
use std::collections::HashMap;
use std::fmt;

/// One hour's counters, field name to count: a Redis hash as `HGETALL` reads it.
pub type Counters = HashMap<String, i64>;

/// One counter of an hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    /// Jobs created (`created`).
    Created,
    /// Jobs of one kind created (`created:<kind>`).
    CreatedOfKind(&'a str),
    /// Jobs that ended so (`finished:<status>`, status completed, failed or cancelled).
    Finished(JobStatus),
    /// Jobs of one kind that ended so (`finished:<status>:<kind>`).
    FinishedOfKind(JobStatus, &'a str),
    /// Jobs that ended with their creation-to-end time in this bucket (`duration:<bucket>`).
    Duration(u32),
    /// Jobs that first ran with their creation-to-start time in this bucket (`wait:<bucket>`).
    Wait(u32),
    /// Completed deep-research reports with a finding of this ingredient (`finding:<as listed>`).
    Finding(&'a str),
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Created => f.write_str("created"),
            Self::CreatedOfKind(kind) => write!(f, "created:{kind}"),
            Self::Finished(status) => write!(f, "finished:{}", status.as_str()),
            Self::FinishedOfKind(status, kind) => write!(f, "finished:{}:{kind}", status.as_str()),
            Self::Duration(bucket) => write!(f, "duration:{bucket}"),
            Self::Wait(bucket) => write!(f, "wait:{bucket}"),
            Self::Finding(ingredient) => write!(f, "finding:{ingredient}"),
        }
    }
}

impl<'a> Field<'a> {
    /// The counter a hash field names; `None` for a field this version does not know.
    pub fn parse(name: &'a str) -> Option<Self> {
        let Some((head, rest)) = name.split_once(':') else {
            return (name == "created").then_some(Self::Created);
        };
        match (head, rest) {
            (_, "") => None,
            ("created", kind) => Some(Self::CreatedOfKind(kind)),
            ("finished", rest) => {
                let (status, kind) = match rest.split_once(':') {
                    Some((_, "")) => return None,
                    Some((status, kind)) => (status, Some(kind)),
                    None => (rest, None),
                };
                let status = final_status(status)?;
                Some(match kind {
                    None => Self::Finished(status),
                    Some(kind) => Self::FinishedOfKind(status, kind),
                })
            }
            ("duration", bucket) => bucket.parse().ok().map(Self::Duration),
            ("wait", bucket) => bucket.parse().ok().map(Self::Wait),
            ("finding", ingredient) => Some(Self::Finding(ingredient)),
            _ => None,
        }
    }
}

/// The final status `name` names.
fn final_status(name: &str) -> Option<JobStatus> {
    match name {
        "completed" => Some(JobStatus::Completed),
        "failed" => Some(JobStatus::Failed),
        "cancelled" => Some(JobStatus::Cancelled),
        _ => None,
    }
}

/// An hour's hash as Redis hands it over (field and count pairs): a count that is not a number
/// is left out, with a warning (the hash is outside data).
pub fn counters_of(hash: impl IntoIterator<Item = (String, String)>) -> Counters {
    hash.into_iter()
        .filter_map(|(field, count)| match count.parse() {
            Ok(count) => Some((field, count)),
            Err(_) => {
                tracing::warn!(%field, %count, "a stats counter is not a number; skipped");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reads_back_as_written() {
        let fields = [
            Field::Created,
            Field::CreatedOfKind("deep-research"),
            Field::Finished(JobStatus::Cancelled),
            Field::FinishedOfKind(JobStatus::Failed, "a:kind:with:colons"),
            Field::Duration(77),
            Field::Wait(0),
            Field::Finding("sodium nitrite (E250)"),
        ];
        for field in fields {
            let name = field.to_string();
            assert_eq!(Field::parse(&name), Some(field), "{name}");
        }
        assert_eq!(
            Field::FinishedOfKind(JobStatus::Completed, "x").to_string(),
            "finished:completed:x"
        );
    }

    #[test]
    fn fields_of_another_version_are_ignored() {
        for name in [
            "",
            "created:",
            "finished:",
            "finished:completed:",
            "finished:pending",
            "duration:x",
            "finding:",
            "retried",
        ] {
            assert_eq!(Field::parse(name), None, "{name:?}");
        }
    }

    #[test]
    fn a_count_that_is_not_a_number_is_left_out() {
        let hash = HashMap::from([
            ("created".into(), "3".into()),
            ("wait:2".into(), "x".into()),
        ]);
        assert_eq!(counters_of(hash), Counters::from([("created".into(), 3)]));
    }
}
