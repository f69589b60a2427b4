//! HTTP requests answered by the router, by method, route template and status.

use super::Registry;
use std::time::Duration;

pub(super) const REQUESTS: &str = "jobcast_http_requests_total";
pub(super) const DURATION: &str = "jobcast_http_request_duration_seconds";

/// The route label of a request that matched no route (so clients cannot mint labels).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Registers each (method, route, status) the first time it is seen; a request costs two map
/// lookups in the registry (not on the fan-out's path).
pub struct Http {
    registry: Registry,
}

impl Http {
    pub(super) fn new(registry: &Registry) -> Self {
        Self {
            registry: registry.clone(),
        }
    }

    /// Counts one answered request of `route` (a template such as `/api/v4/job/{job_id}`).
    pub fn answered(&self, method: &str, route: &str, status: u16, took: Duration) {
        let method = method_label(method);
        let status = status.to_string();
        let labels = [
            ("method", method),
            ("route", route),
            ("status", status.as_str()),
        ];
        self.registry.counter(REQUESTS, &labels).increment(1);
        let labels = [("method", method), ("route", route)];
        self.registry
            .histogram(DURATION, &labels)
            .record(took.as_secs_f64());
    }
}

/// A standard method's name, or `other` (a client may send any token as a method).
fn method_label(method: &str) -> &str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}
