//! What a served job must look like: every field with its type and a value consistent with the rest.

use serde_json::Value;

/// The seed's fields, which existing clients read.
pub const SEED_FIELDS: [&str; 8] = [
    "job_id",
    "status",
    "progress",
    "current_step",
    "created_at",
    "result",
    "error",
    "completed_at",
];

/// The fields a job has beyond the seed's (`superseded` only after a merge, so not here).
pub const NEW_FIELDS: [&str; 7] = [
    "seq",
    "updated_at",
    "expires_at",
    "kind",
    "attempt",
    "priority",
    "input",
];

/// What a test knows a job must be; `check_job` checks every field's value and type against it.
pub struct Expected<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub status: &'a str,
    /// The input as stored: verbatim, or normalised for deep research.
    pub input: Value,
    /// The configured `JOB_TTL_SECS`.
    pub ttl_secs: u64,
}

/// A timestamp field: an RFC 3339 string in UTC with a `Z`.
pub fn timestamp(job: &Value, field: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = job[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string: {job}"));
    assert!(text.ends_with('Z'), "{field} is UTC with a Z: {text}");
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{field} is RFC 3339 ({e}): {text}"))
}

/// Asserts that `job` has exactly the seed's and the new fields, each of the right type and value.
pub fn check_job(job: &Value, expected: &Expected) {
    let mut fields: Vec<&str> = job
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut wanted: Vec<&str> = SEED_FIELDS.iter().chain(&NEW_FIELDS).copied().collect();
    fields.sort();
    wanted.sort();
    assert_eq!(fields, wanted, "{job}");

    assert_eq!(job["job_id"], expected.id, "{job}");
    let id = uuid::Uuid::parse_str(expected.id).unwrap();
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(job["kind"], expected.kind);
    assert_eq!(job["status"], expected.status);
    let progress = job["progress"].as_u64().expect("progress is an integer");
    assert!(progress <= 100, "{job}");
    assert!(job["current_step"].is_string(), "{job}");
    assert!(
        job["seq"].as_u64().expect("seq is an integer") >= 1,
        "{job}"
    );
    assert!(job["attempt"].is_u64(), "attempt is an integer: {job}");
    let priority = job["priority"].as_u64().expect("priority is an integer");
    assert!(priority <= 9, "{job}");
    check_times(job, expected);
    check_outcome(job, expected.status);
    assert_eq!(job["input"], expected.input, "{job}");
}

/// The timestamps: each RFC 3339 UTC, in order, `expires_at` one TTL after the last change, and
/// `completed_at` set exactly when the job is terminal.
fn check_times(job: &Value, expected: &Expected) {
    let (created, updated) = (timestamp(job, "created_at"), timestamp(job, "updated_at"));
    assert!(created <= updated, "{job}");
    let expires = timestamp(job, "expires_at");
    let ttl = chrono::TimeDelta::seconds(expected.ttl_secs as i64);
    assert!(
        (expires - (updated + ttl)).abs() <= chrono::TimeDelta::seconds(1),
        "expires_at is updated_at + {ttl}: {job}"
    );
    let terminal = matches!(expected.status, "completed" | "failed");
    if terminal {
        let completed = timestamp(job, "completed_at");
        assert!(created <= completed && completed <= updated, "{job}");
    } else {
        assert!(job["completed_at"].is_null(), "{job}");
    }
}

/// `error` is a string only when failed, `result` an object only when completed.
fn check_outcome(job: &Value, status: &str) {
    if status == "failed" {
        assert!(job["error"].is_string(), "{job}");
    } else {
        assert!(job["error"].is_null(), "{job}");
    }
    if status == "completed" {
        assert!(job["result"].is_object(), "{job}");
    } else {
        assert!(job["result"].is_null(), "{job}");
    }
}
