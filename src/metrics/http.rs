//! HTTP requests answered by the router, by method, route template and status.

use super::Registry;
use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

pub(super) const REQUESTS: &str = "jobcast_http_requests_total";
pub(super) const DURATION: &str = "jobcast_http_request_duration_seconds";

/// The route label of a request that matched no route (so clients cannot mint labels).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The methods that get a label of their own; any other is `other` (a client may send any token).
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// The most series whose handles are kept; past it (a route whose text is made anew for every
/// request, as a nested router's is), requests take the registry's lookup.
pub const MAX_KEPT_SERIES: usize = 1024;

/// A request's series: (where its route's text lives, method index, status). The router hands
/// every request of a route the same shared text, so its address names the route without
/// hashing it; the text itself is kept in [`Series`] and compared, so a reused address is
/// never taken for another route.
type SeriesKey = (usize, usize, u16);

/// One (method, route, status)'s handles.
struct Series {
    route: Box<str>,
    requests: Counter,
    duration: Histogram,
}

/// Each (method, route, status) is registered the first time it is seen and its handles kept,
/// so an answered request costs one read of a small map (the registry's own lookup builds a
/// key with a few allocations: about half a microsecond on the poll path).
pub struct Http {
    registry: Registry,
    /// A std lock, held for one map access; written once per new series.
    series: RwLock<HashMap<SeriesKey, Series>>,
}

impl Http {
    pub(super) fn new(registry: &Registry) -> Self {
        Self {
            registry: registry.clone(),
            series: RwLock::default(),
        }
    }

    /// Counts one answered request of `route` (a template such as `/api/v4/job/{job_id}`).
    pub fn answered(&self, method: &str, route: &str, status: u16, took: Duration) {
        let method = METHODS
            .iter()
            .position(|known| *known == method)
            .unwrap_or(METHODS.len());
        let key = (route.as_ptr() as usize, method, status);
        let seconds = took.as_secs_f64();
        if let Some(series) = self.series.read().expect("http series lock").get(&key)
            && *series.route == *route
        {
            series.requests.increment(1);
            return series.duration.record(seconds);
        }
        let series = self.register(method, route, status);
        series.requests.increment(1);
        series.duration.record(seconds);
        let mut kept = self.series.write().expect("http series lock");
        if kept.len() < MAX_KEPT_SERIES {
            kept.insert(key, series);
        }
    }

    fn register(&self, method: usize, route: &str, status: u16) -> Series {
        let method = METHODS.get(method).copied().unwrap_or("other");
        let status = status.to_string();
        let labels = [("method", method), ("route", route), ("status", &status)];
        let requests = self.registry.counter(REQUESTS, &labels);
        let duration = self
            .registry
            .histogram(DURATION, &[("method", method), ("route", route)]);
        Series {
            route: route.into(),
            requests,
            duration,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::Metrics;
    use std::time::Duration;

    #[test]
    fn a_route_is_counted_under_its_text_wherever_that_text_lives() {
        let metrics = Metrics::new();
        let route = String::from("/api/v4/job/{job_id}");
        let copy = route.clone();
        for text in [&route, &copy, &route] {
            metrics
                .http()
                .answered("GET", text, 200, Duration::from_millis(1));
        }
        metrics
            .http()
            .answered("BREW", "/coffee", 418, Duration::from_millis(1));

        let text = metrics.render();
        let get = r#"jobcast_http_requests_total{method="GET",route="/api/v4/job/{job_id}",status="200"} 3"#;
        assert!(text.contains(get), "{text}");
        let brew = r#"jobcast_http_requests_total{method="other",route="/coffee",status="418"} 1"#;
        assert!(text.contains(brew), "{text}");
    }
}
