//! The figures an operator watches, rendered in Prometheus's text format for `GET /metrics`.
//!
//! Each application has its own registry (a `metrics-exporter-prometheus` recorder that is never
//! installed as the process's global one), so every app a test starts counts only its own
//! traffic. Handles are registered once and kept ([`Metrics`] and its groups); a hot path only
//! adds to an atomic it already holds — the fan-out adds once per published change, never per
//! subscriber. Figures that are a state (the backend in use, Redis's memory) are set when
//! sampled or scraped.

mod fanout;
mod help;
mod http;
mod jobs;
mod store;
mod streams;

pub use fanout::{Fanout, Relay};
pub use help::descriptions;
pub use http::{Http, UNMATCHED_ROUTE};
pub use jobs::{Jobs, LimitLabel};
pub use store::{RedisErrorKind, StoreMetrics};
pub use streams::{OpenStream, StreamPath, Streams, Transport};

/// The handle types, for the modules that keep one.
pub use ::metrics::{Counter, Gauge, Histogram};

use ::metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::sync::Arc;
use std::time::Duration;

/// Bucket bounds of the request, command and relay latencies, in seconds.
pub const LATENCY_BUCKETS_SECS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds of job durations and queue waits, in seconds (the alert on completion time
/// looks at five minutes).
pub const JOB_BUCKETS_SECS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// How often sampled figures (Redis's memory, the queue's depth, degraded time) are taken.
pub const METRICS_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A cheap, clonable handle to one application's metrics.
#[derive(Clone)]
pub struct Metrics(Arc<Groups>);

struct Groups {
    registry: Registry,
    http: Http,
    jobs: Jobs,
    streams: Streams,
    fanout: Fanout,
    relay: Relay,
    store: StoreMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A new, empty registry with every metric described and the unlabelled ones registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        Self(Arc::new(Groups {
            http: Http::new(&registry),
            jobs: Jobs::new(&registry),
            streams: Streams::new(&registry),
            fanout: Fanout::new(&registry),
            relay: Relay::new(&registry),
            store: StoreMetrics::new(&registry),
            registry,
        }))
    }

    /// Every metric in the text format.
    pub fn render(&self) -> String {
        self.0.registry.handle.render()
    }

    /// Folds recorded histogram samples into their buckets (call periodically, as scraping does).
    pub fn run_upkeep(&self) {
        self.0.registry.handle.run_upkeep();
    }

    pub fn http(&self) -> &Http {
        &self.0.http
    }

    pub fn jobs(&self) -> &Jobs {
        &self.0.jobs
    }

    pub fn streams(&self) -> &Streams {
        &self.0.streams
    }

    pub fn fanout(&self) -> &Fanout {
        &self.0.fanout
    }

    pub fn relay(&self) -> &Relay {
        &self.0.relay
    }

    pub fn store(&self) -> &StoreMetrics {
        &self.0.store
    }
}

/// One application's recorder and the handle that renders it.
#[derive(Clone)]
struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

/// What the recorder is told of each handle's origin (it ignores it).
const METADATA: Metadata<'static> = Metadata::new("jobcast", Level::INFO, None);

impl Registry {
    fn new() -> Self {
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS_SECS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Prefix("jobcast_job_".into()),
                    JOB_BUCKETS_SECS,
                )
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        for &(name, unit, help) in help::DESCRIPTIONS {
            let name = ::metrics::KeyName::from_const_str(name);
            recorder.describe_counter(name, unit, help.into());
        }
        let handle = recorder.handle();
        Self {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|&(key, value)| Label::new(key, value.to_owned()))
            .collect();
        Key::from_parts(name, labels)
    }

    /// The counter `name` with `labels` (a map lookup: keep the handle on hot paths).
    fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder
            .register_counter(&Self::key(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder
            .register_gauge(&Self::key(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder
            .register_histogram(&Self::key(name, labels), &METADATA)
    }
}
