//! Many jobs, one watcher each: the cost of one update through jobcast (SSE and WebSocket), the
//! many-jobs floor and Nchan, one after another on one Redis, with the ratios between them.

use crate::batch::{self, Batch};
use crate::latency::round2;
use crate::nchan::{self, Nchan};
use crate::paced::{self, BATCHED_UPDATES, Load, Outcome, Peer, Targets};
use crate::processes::{Redis, Server};
use crate::scenarios::Transport;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::time::Duration;

/// The rows (floor, jobcast SSE, jobcast WebSocket, jobcast SSE with batched reports, Nchan),
/// then a line of ratios.
pub async fn many(load: &Load) -> Vec<Value> {
    let redis = Redis::start_with_tcp().await;
    let mut rows = vec![floor(load).await];
    for transport in [Transport::Sse, Transport::WebSocket] {
        rows.push(jobcast(load, &redis, Peer::Jobcast(transport)).await);
    }
    rows.push(jobcast(load, &redis, Peer::JobcastBatched).await);
    rows.push(match nchan::unavailable() {
        Some((reason, fails)) => {
            println!("many-nchan: skipped, {reason}");
            json!({"scenario": "many-nchan", "skipped": reason, "errors": u64::from(fails)})
        }
        None => nchan(load, &redis).await,
    });
    rows.push(ratios(&rows));
    rows
}

async fn floor(load: &Load) -> Value {
    let server = Server::many_floor().await;
    let jobs = fresh_ids(load.jobs);
    let targets = Targets {
        watch: &[server.addr],
        send: &[server.addr],
    };
    let outcome = paced::run(Peer::Floor, load, &jobs, targets, &[&server]).await;
    row("many-floor", load, &outcome, false)
}

async fn jobcast(load: &Load, redis: &Redis, peer: Peer) -> Value {
    let vars = [
        ("REDIS_URL", redis.url()),
        ("WORKER_CONCURRENCY", "0".into()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::jobcast(&vars).await;
    let (jobs, failed) = batch::create_jobs(&[server.addr], load.connections, load.jobs).await;
    assert_eq!(failed, 0, "creating the jobs failed");
    let targets = Targets {
        watch: &[server.addr],
        send: &[server.addr],
    };
    let outcome = paced::run(peer, load, &jobs, targets, &[&server, redis]).await;
    let name = match peer {
        Peer::JobcastBatched => format!("many-sse-batched-{BATCHED_UPDATES}"),
        _ => format!("many-{:?}", transport_of(peer)).to_lowercase(),
    };
    row(&name, load, &outcome, true)
}

async fn nchan(load: &Load, redis: &Redis) -> Value {
    let server = Nchan::start(redis.tcp_addr().unwrap()).await;
    let jobs = fresh_ids(load.jobs);
    publish_snapshots(&server, &jobs, load.connections).await;
    let targets = Targets {
        watch: &[server.addr],
        send: &[server.addr],
    };
    let outcome = paced::run(Peer::Nchan, load, &jobs, targets, &[&server, redis]).await;
    let mut row = row("many-nchan", load, &outcome, true);
    row["redis"] = json!("tcp");
    row
}

/// Publishes seq 1 to every channel: what a watcher gets on subscribing (Nchan sends the oldest
/// message it keeps), as jobcast's and the floor's watchers get a snapshot.
async fn publish_snapshots(server: &Nchan, jobs: &[String], connections: usize) {
    let batch = Batch {
        addrs: &[server.addr],
        connections,
        count: jobs.len(),
        spacing: Duration::ZERO,
    };
    let body = RefCell::new(Vec::with_capacity(512));
    let write = |i: usize, out: &mut Vec<u8>| {
        Peer::Nchan.write_update(out, &mut body.borrow_mut(), &jobs[i], 1);
    };
    batch::send(batch, write, |_, answer| {
        assert!(
            answer.is_some_and(|(status, _)| status < 400),
            "Nchan refused a publish"
        );
    })
    .await;
}

fn transport_of(peer: Peer) -> Transport {
    match peer {
        Peer::Jobcast(transport) => transport,
        _ => Transport::Sse,
    }
}

/// Job ids for the servers that keep no jobs of their own.
fn fresh_ids(count: usize) -> Vec<String> {
    (0..count)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect()
}

/// One row's figures: meter 0 is the server, meter 1 (when `with_redis`) its Redis.
fn row(name: &str, load: &Load, outcome: &Outcome, with_redis: bool) -> Value {
    let mut row = outcome.json();
    row["scenario"] = json!(name);
    row["jobs"] = json!(load.jobs);
    row["connections"] = json!(load.connections);
    row["per_sec"] = json!(load.per_sec);
    row["server_cpu_ms"] = json!(outcome.cpu[0].as_millis() as u64);
    row["server_cpu_us_per_update"] = json!(outcome.cpu_us_per_update(0));
    if with_redis {
        row["redis_cpu_ms"] = json!(outcome.cpu[1].as_millis() as u64);
        row["redis_cpu_us_per_update"] = json!(outcome.cpu_us_per_update(1));
    }
    row
}

/// jobcast against the floor and against Nchan, by CPU per update (the targets: ≤ 2× the
/// floor, ≤ 0.75× Nchan, with Redis ≤ 0.6× Nchan with its Redis).
fn ratios(rows: &[Value]) -> Value {
    let figure = |name: &str, key: &str| {
        let row = rows.iter().find(|row| row["scenario"] == name)?;
        row[key].as_f64()
    };
    let server = |name: &str| figure(name, "server_cpu_us_per_update");
    let batched = format!("many-sse-batched-{BATCHED_UPDATES}");
    let both = |name: &str| Some(server(name)? + figure(name, "redis_cpu_us_per_update")?);
    // No ratio against a figure that measured no CPU tick at all (a smoke run's floor).
    let ratio = |a: Option<f64>, b: Option<f64>| Some(round2(a? / b.filter(|b| *b > 0.0)?));
    json!({"scenario": "many",
           "sse_over_floor": ratio(server("many-sse"), server("many-floor")),
           "websocket_over_floor": ratio(server("many-websocket"), server("many-floor")),
           "sse_over_nchan": ratio(server("many-sse"), server("many-nchan")),
           "websocket_over_nchan": ratio(server("many-websocket"), server("many-nchan")),
           "sse_with_redis_over_nchan_with_redis": ratio(both("many-sse"), both("many-nchan")),
           "batched_over_floor": ratio(server(&batched), server("many-floor")),
           "batched_over_nchan": ratio(server(&batched), server("many-nchan")),
           "batched_with_redis_over_nchan_with_redis": ratio(both(&batched), both("many-nchan")),
           "floor_over_nchan": ratio(server("many-floor"), server("many-nchan"))})
}
