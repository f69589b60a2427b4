//! The Redis names the tests inspect, taken from the store's own definitions so they follow it.

pub use jobcast::store::{INDEX_KEY, LEASES_KEY, QUEUE_KEY};

/// The key that holds job `id`'s JSON.
pub fn job_key(id: &str) -> String {
    parse(id).key()
}

/// The pub/sub channel on which job `id`'s changes are published.
pub fn job_channel(id: &str) -> String {
    parse(id).channel()
}

fn parse(id: &str) -> jobcast::job::JobId {
    id.parse().expect("a job id is a UUID")
}
