//! Three jobcast instances on one Redis: the watchers spread over them, the updates sent to any of
//! them. Per instance, its CPU per update and what its relay received (from `GET /metrics`);
//! once with a subscription per watched job (`RELAY_SUBSCRIBE=channels`) and once with one
//! `job:*` pattern (`RELAY_SUBSCRIBE=pattern`), and which of the two costs less.

use crate::batch;
use crate::latency::round2;
use crate::paced::{self, Load, Peer, Targets};
use crate::processes::{Redis, Server};
use crate::procfs::Metered;
use crate::scenarios::Transport;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Instances side by side.
const INSTANCES: usize = 3;

/// The relay's counter in each instance's `/metrics`.
const RELAY_METRIC: &str = "jobcast_relay_messages_total";

/// A row per way of subscribing, then the winner.
pub async fn instances(load: &Load) -> Vec<Value> {
    let mut rows = Vec::new();
    for mode in ["channels", "pattern"] {
        rows.push(run(load, mode).await);
    }
    rows.push(winner(&rows));
    rows
}

async fn run(load: &Load, mode: &str) -> Value {
    let redis = Redis::start().await;
    let url = redis.url();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("WORKER_CONCURRENCY", "0"),
        ("RELAY_SUBSCRIBE", mode),
    ];
    let mut servers = Vec::new();
    for _ in 0..INSTANCES {
        servers.push(Server::jobcast(&vars).await);
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let (jobs, failed) = batch::create_jobs(&addrs, load.connections, load.jobs).await;
    assert_eq!(failed, 0, "creating the jobs failed");
    let before = relay_counts(&addrs).await;
    let mut meters: Vec<&dyn Metered> = servers.iter().map(|s| s as &dyn Metered).collect();
    meters.push(&redis);
    let targets = Targets {
        watch: &addrs,
        send: &addrs,
    };
    let peer = Peer::Jobcast(Transport::Sse);
    let outcome = paced::run(peer, load, &jobs, targets, &meters).await;
    let after = relay_counts(&addrs).await;
    let per_instance: Vec<Value> = (0..INSTANCES)
        .map(|i| {
            let relayed = after[i].zip(before[i]).map(|(a, b)| a.saturating_sub(b));
            json!({"cpu_ms": outcome.cpu[i].as_millis() as u64,
                   "cpu_us_per_update": outcome.cpu_us_per_update(i),
                   "relay_messages": relayed,
                   "own_watchers_updates": own_updates(load, i)})
        })
        .collect();
    let mut row = outcome.json();
    row["scenario"] = json!(format!("instances-{mode}"));
    row["jobs"] = json!(load.jobs);
    row["per_sec"] = json!(load.per_sec);
    row["relay_subscribe"] = json!(mode);
    row["instances"] = json!(per_instance);
    row["instances_cpu_us_per_update"] = json!(round2(
        (0..INSTANCES).map(|i| outcome.cpu_us_per_update(i)).sum()
    ));
    row["redis_cpu_us_per_update"] = json!(outcome.cpu_us_per_update(INSTANCES));
    row
}

/// How many of the load's updates are for jobs watched on instance `i` (job `j` is watched on
/// instance `j % INSTANCES`; update `k` is job `k % jobs`'s).
fn own_updates(load: &Load, i: usize) -> usize {
    (0..load.updates())
        .filter(|k| (k % load.jobs) % INSTANCES == i)
        .count()
}

/// Each instance's relay count, `None` where it has no `/metrics` (yet) or no such metric.
async fn relay_counts(addrs: &[SocketAddr]) -> Vec<Option<u64>> {
    let mut counts = Vec::new();
    for addr in addrs {
        counts.push(relay_messages(*addr).await);
    }
    counts
}

async fn relay_messages(addr: SocketAddr) -> Option<u64> {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(crate::ADMIN_TOKEN)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None; // 404 until /metrics exists
    }
    let text = response.text().await.ok()?;
    metric_sum(&text, RELAY_METRIC).map(|sum| sum as u64)
}

/// The sum of metric `name`'s samples over all its label sets in Prometheus text `text`;
/// `None` when it has none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let values = text.lines().filter_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = match rest.strip_prefix('{') {
            Some(labels) => &labels[labels_end(labels)?..],
            None if rest.starts_with([' ', '\t']) => rest,
            None => return None, // another metric whose name starts with this one
        };
        rest.split_whitespace().next()?.parse::<f64>().ok()
    });
    values.fold(None, |sum, value| Some(sum.unwrap_or(0.0) + value))
}

/// Where the label set that `labels` begins (just after its `{`) ends: past its `}`, skipping
/// quoted values (which may hold `}` and escaped quotes).
fn labels_end(labels: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (at, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(at + 1),
            _ => {}
        }
    }
    None
}

/// Which way of subscribing spent less CPU per update, instances and Redis together.
fn winner(rows: &[Value]) -> Value {
    let total = |row: &Value| {
        row["instances_cpu_us_per_update"].as_f64().unwrap_or(0.0)
            + row["redis_cpu_us_per_update"].as_f64().unwrap_or(0.0)
    };
    let (channels, pattern) = (total(&rows[0]), total(&rows[1]));
    let (winner, loser, won, lost) = if channels <= pattern {
        ("channels", "pattern", channels, pattern)
    } else {
        ("pattern", "channels", pattern, channels)
    };
    let by_pct = round2((lost - won) * 100.0 / lost.max(0.01));
    json!({"scenario": "instances", "winner": winner, "loser": loser,
           "cpu_us_per_update": {"channels": round2(channels), "pattern": round2(pattern)},
           "saves_pct": by_pct, "pattern_in_effect": pattern_in_effect(rows)})
}

/// Whether the pattern run's relays received more than the per-channel run's (with `job:*`
/// every instance receives every update): `false` says the server ignored `RELAY_SUBSCRIBE`,
/// `null` that the counts are unknown (no `/metrics`).
fn pattern_in_effect(rows: &[Value]) -> Option<bool> {
    let relayed = |row: &Value| -> Option<u64> {
        let instances = row["instances"].as_array()?;
        instances.iter().map(|i| i["relay_messages"].as_u64()).sum()
    };
    Some(relayed(&rows[1])? > relayed(&rows[0])?)
}
