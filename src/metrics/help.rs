//! Every metric's name, unit and help text: the `# HELP` lines, and the list in README.md.

use super::{fanout, http, jobs, store, streams};
use ::metrics::Unit;

/// Every metric's name, unit and help text: the `# HELP` lines, and the list in README.md.
pub(super) const DESCRIPTIONS: &[(&str, Option<Unit>, &str)] = &[
    (
        http::REQUESTS,
        None,
        "HTTP requests answered by the router, by method, route template and status.",
    ),
    (
        http::DURATION,
        Some(Unit::Seconds),
        "Time to answer an HTTP request (for a stream: until its response head).",
    ),
    (jobs::CREATED, None, "Jobs created, by kind."),
    (
        jobs::COMPLETED,
        None,
        "Jobs that reached completed on this instance, by kind.",
    ),
    (
        jobs::FAILED,
        None,
        "Jobs that reached failed on this instance, by kind.",
    ),
    (
        jobs::CANCELLED,
        None,
        "Jobs cancelled through this instance, by kind.",
    ),
    (
        jobs::DURATION,
        Some(Unit::Seconds),
        "Time from a job's creation to its final state, by kind and status.",
    ),
    (
        jobs::QUEUE_WAIT,
        Some(Unit::Seconds),
        "Time a job waited on the queue (since it was created or requeued) before a worker started it, by kind.",
    ),
    (
        jobs::RUNNING,
        None,
        "Jobs this instance's workers are running.",
    ),
    (
        jobs::REQUEUES,
        None,
        "Jobs whose attempt ended unfinished (an expired lease, found by the sweeper or reconciliation): requeued, or failed after MAX_ATTEMPTS.",
    ),
    (
        jobs::RATE_LIMITED,
        None,
        "Requests refused with 429 by a per-client limit (create or stream).",
    ),
    (
        store::QUEUE_DEPTH,
        None,
        "Jobs waiting on the work queue (sampled).",
    ),
    (
        store::BACKEND,
        None,
        "The backend serving jobs: 1 for the one in use.",
    ),
    (
        store::DEGRADED,
        None,
        "1 while Redis is unreachable and the in-memory store serves.",
    ),
    (
        store::DEGRADED_SECONDS,
        None,
        "Seconds spent serving from the in-memory store because Redis was unreachable (sampled).",
    ),
    (
        store::OUTAGES,
        None,
        "Times Redis became unreachable and the store fell back to memory.",
    ),
    (
        store::WRITE_BACKS,
        None,
        "Jobs written back to Redis after an outage.",
    ),
    (
        store::COMMAND_DURATION,
        Some(Unit::Seconds),
        "Time of each Redis command, script or pipeline the store sent (failed ones included), and of reconnections.",
    ),
    (
        store::COMMAND_ERRORS,
        None,
        "Redis commands that failed: connection (unreachable, timed out), refused (credentials, TLS), reply (an error answer).",
    ),
    (
        store::USED_MEMORY,
        Some(Unit::Bytes),
        "Redis's used_memory, sampled from INFO memory.",
    ),
    (
        store::MAX_MEMORY,
        Some(Unit::Bytes),
        "Redis's maxmemory, sampled from INFO memory (0: no limit).",
    ),
    (
        streams::OPEN,
        None,
        "Streams open now, by transport (sse, websocket, longpoll) and path (direct, axum).",
    ),
    (
        streams::OPENED,
        None,
        "Streams opened, by transport and path.",
    ),
    (
        fanout::DELIVERIES,
        None,
        "Changes handed to local watchers, by path: direct (written to the socket by the publisher, or left to the stream's task), axum (SSE, WebSocket and long-poll subscribers, and poll-cache entries).",
    ),
    (
        fanout::COALESCED,
        None,
        "States a slow watcher skipped because a newer one was ready (progress is latest-wins).",
    ),
    (
        fanout::SLOW_DROPPED,
        None,
        "Streams dropped because the client stopped taking data (no pong to a WebSocket ping, or the kernel's STALLED_CLIENT_TIMEOUT).",
    ),
    (
        fanout::RELAY_MESSAGES,
        None,
        "Pub/sub messages the relay received from Redis.",
    ),
    (
        fanout::RELAY_LAG,
        Some(Unit::Seconds),
        "Time from a change being stored (its updated_at) to the relay receiving it.",
    ),
    (
        fanout::PUBSUB_CONNECTED,
        None,
        "1 while the relay's Redis pub/sub connection is up.",
    ),
    (
        fanout::PUBSUB_RECONNECTS,
        None,
        "Times the relay's pub/sub connection was lost.",
    ),
    (
        fanout::PUBSUB_ERRORS,
        None,
        "Failed attempts to open the relay's pub/sub connection.",
    ),
];

/// Every metric's name and help text.
pub fn descriptions() -> impl Iterator<Item = (&'static str, &'static str)> {
    DESCRIPTIONS.iter().map(|&(name, _, help)| (name, help))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_lists_every_metric() {
        let readme = include_str!("../../README.md");
        for (name, _) in super::descriptions() {
            assert!(
                readme.contains(&format!("`{name}`")),
                "README.md lists {name}"
            );
        }
    }
}
