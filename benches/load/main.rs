//! jobcast's load benchmark: `cargo bench --bench load` runs every scenario against a release build
//! of the server and its own redis-server, on loopback only, and prints a table and a JSON line per
//! scenario. `cargo bench --bench load -- --smoke` runs each briefly and checks only the counts
//! (CI runs it so the harness cannot rot); speed is judged from full runs, never in `cargo test`.
//!
//! The generator runs on one thread (one core), with prepared requests and streams read into
//! reused buffers, so it disturbs the server as little as it can on a shared machine.

mod batch;
mod client;
mod floor;
mod instances;
mod job_json;
mod latency;
mod many;
mod many_floor;
mod memory;
mod nchan;
mod paced;
mod processes;
mod procfs;
mod scenarios;

use jobcast::sink::FanoutWrites;
use scenarios::{Target, Transport};
use serde_json::Value;
use std::time::Duration;

/// The admin token the benchmark's servers are started with.
pub const ADMIN_TOKEN: &str = "bench-token";

/// How big each scenario is.
pub struct Settings {
    pub smoke: bool,
    pub duration: Duration,
    pub connections: usize,
}

fn main() {
    // The TLS provider the server installs too: reqwest is built without one of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(at) = args.iter().position(|arg| arg == "--serve-bare") {
        let threaded = tokio::runtime::Runtime::new().unwrap();
        return threaded.block_on(processes::serve_bare(&args[at + 1]));
    }
    if let Some(at) = args.iter().position(|arg| arg == "--serve-floor") {
        let writes = match args[at + 1].as_str() {
            many_floor::MODE => return runtime.block_on(many_floor::serve()),
            "io-uring" => FanoutWrites::IoUring,
            _ => FanoutWrites::Send,
        };
        return runtime.block_on(floor::serve(writes));
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let smoke = args.iter().any(|arg| arg == "--smoke");
    let only: Option<&str> = args
        .iter()
        .position(|arg| arg == "--only")
        .map(|at| args[at + 1].as_str());
    let failures = runtime.block_on(run(smoke, only));
    if failures > 0 {
        eprintln!("{failures} scenario(s) delivered less than expected or had errors");
        std::process::exit(1);
    }
}

async fn run(smoke: bool, only: Option<&str>) -> usize {
    let settings = Settings {
        smoke,
        duration: if smoke {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(5)
        },
        connections: if smoke { 8 } else { 64 },
    };
    let (subscribers, big, idle_streams) = if smoke {
        (50, 200, 200)
    } else {
        (1_000, 10_000, 10_000)
    };
    let (fast_updates, slow_updates) = if smoke { (20, 4) } else { (250, 10) };
    let wanted = |name: &str| only.is_none_or(|only| only == name);
    let mut results: Vec<Value> = Vec::new();
    if wanted("startup") {
        results.push(scenarios::startup().await);
    }
    if wanted("poll") {
        results.push(scenarios::poll(&settings).await);
    }
    if wanted("create") {
        results.push(scenarios::create(&settings).await);
    }
    if wanted("ingest") {
        results.push(scenarios::ingest(&settings).await);
    }
    if wanted("fanout") {
        let fast = (subscribers, Duration::from_millis(20), fast_updates);
        let slow = (big, Duration::from_millis(500), slow_updates);
        let (uring, send) = (FanoutWrites::IoUring, FanoutWrites::Send);
        let runs = [
            (Target::Floor(send), Transport::Sse, fast),
            (Target::Floor(uring), Transport::Sse, fast),
            (Target::Jobcast(send), Transport::Sse, fast),
            (Target::Jobcast(uring), Transport::Sse, fast),
            (Target::Jobcast(uring), Transport::WebSocket, fast),
            (Target::Floor(uring), Transport::Sse, slow),
            (Target::Jobcast(uring), Transport::Sse, slow),
        ];
        for (target, transport, (subscribers, interval, updates)) in runs {
            let result = scenarios::fanout(target, transport, subscribers, interval, updates);
            results.push(result.await);
        }
    }
    if wanted("idle") {
        results.push(scenarios::idle(idle_streams).await);
    }
    let load = many_jobs_load(&settings);
    if wanted("many") {
        results.extend(many::many(&load).await);
    }
    if wanted("instances") {
        results.extend(instances::instances(&load).await);
    }
    if wanted("memory") {
        results.push(memory::stored_job().await);
        let jobs = if smoke { 2_000 } else { 100_000 };
        results.push(memory::instance(jobs, settings.connections).await);
    }
    print_table(&results, settings.smoke);
    results.iter().filter(|result| !counts_hold(result)).count()
}

/// The many-jobs load (`many`, `instances`): 10,000 jobs with one watcher each, 5,000 updates/s
/// for 10 s over 64 connections; in a smoke run, 200 jobs at 1,000/s for 1 s over 8.
fn many_jobs_load(settings: &Settings) -> paced::Load {
    let smoke = settings.smoke;
    paced::Load {
        jobs: if smoke { 200 } else { 10_000 },
        connections: settings.connections,
        per_sec: if smoke { 1_000 } else { 5_000 },
        duration: Duration::from_secs(if smoke { 1 } else { 10 }),
    }
}

/// Whether a scenario's counts are right: everything sent and delivered, no request failed.
fn counts_hold(result: &Value) -> bool {
    let none = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0) == 0;
    let no_errors = |v: &Value| none(v, "errors") && none(v, "unsent");
    let delivered = result
        .get("expected")
        .is_none_or(|expected| result["delivered"] == *expected);
    delivered
        && no_errors(result)
        && ["jobcast", "bare_axum", "http"]
            .iter()
            .all(|key| result.get(key).is_none_or(no_errors))
}

fn print_table(results: &[Value], smoke: bool) {
    println!(
        "\n{:<20} figures{}",
        "scenario",
        if smoke {
            "  (smoke run: counts only, not speed)"
        } else {
            ""
        }
    );
    for result in results {
        println!(
            "{:<20} {}",
            result["scenario"].as_str().unwrap_or("?"),
            summary(result)
        );
    }
    println!();
    for result in results {
        println!("{result}");
    }
}

fn summary(result: &Value) -> String {
    match result["scenario"].as_str().unwrap_or("") {
        "poll" => format!(
            "{} req/s (p50 {} ms, p99 {} ms) vs bare axum {} req/s: ratio {}",
            result["jobcast"]["per_sec"],
            result["jobcast"]["p50_ms"],
            result["jobcast"]["p99_ms"],
            result["bare_axum"]["per_sec"],
            result["ratio"]
        ),
        "create" => format!(
            "{} req/s (p99 {} ms)",
            result["jobcast"]["per_sec"], result["jobcast"]["p99_ms"]
        ),
        "ingest" => format!(
            "HTTP {} updates/s, store alone {} updates/s",
            result["http"]["per_sec"], result["store"]["per_sec"]
        ),
        "startup" => format!(
            "ready in {} ms, {} KiB at rest",
            result["to_ready_ms"], result["rss_at_rest_kib"]
        ),
        "idle" => format!(
            "{} streams: {} KiB RSS per stream",
            result["streams"], result["kib_per_stream"]
        ),
        name if name.starts_with("many") || name.starts_with("instances") => {
            many_jobs_summary(result)
        }
        name if name.starts_with("memory") => memory_summary(result),
        _ => format!(
            "{} subs x {} updates: delivered {}/{} ({}%), p50 {} ms, p99 {} ms, max {} ms, {} us server CPU/delivery",
            result["subscribers"],
            result["updates"],
            result["delivered"],
            result["expected"],
            result["delivered_pct"],
            result["p50_ms"],
            result["p99_ms"],
            result["max_ms"],
            result["server_cpu_us_per_delivery"]
        ),
    }
}

/// A delivery line of the many-jobs load: what arrived, how fast, at what CPU per update.
fn delivery(result: &Value) -> String {
    format!(
        "{} jobs x {}/s: delivered {}/{} ({}%), p50 {} ms, p99 {} ms, max {} ms",
        result["jobs"],
        result["per_sec"],
        result["delivered"],
        result["expected"],
        result["delivered_pct"],
        result["p50_ms"],
        result["p99_ms"],
        result["max_ms"]
    )
}

fn many_summary(result: &Value) -> String {
    if let Some(reason) = result["skipped"].as_str() {
        return format!("skipped: {reason}");
    }
    format!(
        "{}, {} us server CPU/update, {} us Redis CPU/update",
        delivery(result),
        result["server_cpu_us_per_update"],
        result["redis_cpu_us_per_update"]
    )
}

fn instances_summary(result: &Value) -> String {
    let each = |key: &str| -> Vec<String> {
        let instances = result["instances"].as_array().into_iter().flatten();
        instances.map(|i| i[key].to_string()).collect()
    };
    format!(
        "{}; per instance: {} us CPU/update, relayed {} (own watchers' updates {}); Redis {} us/update",
        delivery(result),
        each("cpu_us_per_update").join("/"),
        each("relay_messages").join("/"),
        each("own_watchers_updates").join("/"),
        result["redis_cpu_us_per_update"]
    )
}

/// The lines of the many-jobs load's scenarios (`many`, `instances`).
fn many_jobs_summary(result: &Value) -> String {
    match result["scenario"].as_str().unwrap_or("") {
        "many" => format!(
            "CPU per update: SSE/floor {}, WebSocket/floor {}, SSE/Nchan {}, \
             (SSE+Redis)/(Nchan+Redis) {}, floor/Nchan {}; batched reports: /floor {}, \
             /Nchan {}, (+Redis)/(Nchan+Redis) {}",
            result["sse_over_floor"],
            result["websocket_over_floor"],
            result["sse_over_nchan"],
            result["sse_with_redis_over_nchan_with_redis"],
            result["floor_over_nchan"],
            result["batched_over_floor"],
            result["batched_over_nchan"],
            result["batched_with_redis_over_nchan_with_redis"]
        ),
        "instances" => format!(
            "{} wins, {}% less CPU per update (instances and Redis: channels {} us, pattern {} us); \
             pattern in effect: {}",
            result["winner"],
            result["saves_pct"],
            result["cpu_us_per_update"]["channels"],
            result["cpu_us_per_update"]["pattern"],
            result["pattern_in_effect"]
        ),
        name if name.starts_with("instances-") => instances_summary(result),
        _ => many_summary(result),
    }
}

/// The lines of the memory scenarios.
fn memory_summary(result: &Value) -> String {
    match result["scenario"].as_str().unwrap_or("") {
        "memory-job" => format!(
            "Redis bytes per job: pending {} ({} bytes of JSON), completed {} ({} bytes of JSON)",
            result["pending_redis_bytes"],
            result["pending_json_bytes"],
            result["completed_redis_bytes"],
            result["completed_json_bytes"]
        ),
        _ => format!(
            "{} jobs: RSS {} -> {} KiB created -> {} KiB polled, {} bytes per job; Redis {} bytes per job",
            result["jobs"],
            result["rss_before_kib"],
            result["rss_after_create_kib"],
            result["rss_after_poll_kib"],
            result["rss_bytes_per_job"],
            result["redis_bytes_per_job"]
        ),
    }
}
