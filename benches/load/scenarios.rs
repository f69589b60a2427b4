//! The scenarios: each starts what it needs, runs bounded in count and time, and returns its figures.

use crate::Settings;
use crate::client::{self, Connection};
use crate::latency::{histogram, percentiles_ms};
use crate::processes::{self, Redis, Server};
use crate::procfs::Metered;
use jobcast::sink::FanoutWrites;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Creates a job no worker runs, returning its id.
async fn create_job(addr: SocketAddr) -> String {
    let body = json!({"kind": "bench", "input": {"product_name": "Benchmark cola"}}).to_string();
    post_for_job_id(addr, "/api/v4/jobs", body).await
}

/// Posts `body` to `path` with the admin's token; returns the `job_id` of the job it created.
pub async fn post_for_job_id(addr: SocketAddr, path: &str, body: String) -> String {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .bearer_auth(crate::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "create: {}",
        response.status()
    );
    response.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs `connections` keep-alive loops for `duration`, each sending `requests(i)` in turn.
async fn hammer(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    requests: impl Fn(usize) -> Vec<Vec<u8>>,
) -> Value {
    let latencies = histogram();
    let errors = Rc::new(RefCell::new(0u64));
    let deadline = Instant::now() + duration;
    let local = tokio::task::LocalSet::new();
    for i in 0..connections {
        let (latencies, errors, requests) = (latencies.clone(), errors.clone(), requests(i));
        local.spawn_local(async move {
            let mut connection = Connection::open(addr).await.unwrap();
            let mut n = 0;
            while Instant::now() < deadline {
                let started = Instant::now();
                match connection.exchange(&requests[n % requests.len()]).await {
                    Ok(status) if status < 400 => {
                        latencies
                            .borrow_mut()
                            .record(started.elapsed().as_micros() as u64)
                            .unwrap();
                    }
                    _ => *errors.borrow_mut() += 1,
                }
                n += 1;
            }
        });
    }
    let started = Instant::now();
    local.await;
    let elapsed = started.elapsed().as_secs_f64();
    let h = latencies.borrow();
    let (p50, p99, max) = percentiles_ms(&h);
    json!({"requests": h.len(), "errors": *errors.borrow(), "per_sec": (h.len() as f64 / elapsed).round(),
           "p50_ms": p50, "p99_ms": p99, "max_ms": max})
}

/// 1. Poll one job at 64 connections, and the same bytes from bare axum in the same run.
pub async fn poll(settings: &Settings) -> Value {
    let redis = Redis::start().await;
    let server = Server::jobcast(&[("REDIS_URL", &redis.url()), ("WORKER_CONCURRENCY", "0")]).await;
    let id = create_job(server.addr).await;
    let body = reqwest::get(format!("http://{}/api/v4/job/{id}", server.addr))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let get = client::request("GET", &format!("/api/v4/job/{id}"), None);
    let jobcast = hammer(server.addr, settings.connections, settings.duration, |_| {
        vec![get.clone()]
    })
    .await;
    drop(server);

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let bare = Server::bare(file.path()).await;
    let ceiling = hammer(bare.addr, settings.connections, settings.duration, |_| {
        vec![get.clone()]
    })
    .await;
    let ratio =
        jobcast["per_sec"].as_f64().unwrap() / ceiling["per_sec"].as_f64().unwrap().max(1.0);
    json!({"scenario": "poll", "connections": settings.connections, "body_bytes": body.len(),
           "jobcast": jobcast, "bare_axum": ceiling, "ratio": (ratio * 1000.0).round() / 1000.0})
}

/// 2. Create deep-research jobs at 64 connections (no workers, so only creation is measured).
pub async fn create(settings: &Settings) -> Value {
    let redis = Redis::start().await;
    let server = Server::jobcast(&[("REDIS_URL", &redis.url()), ("WORKER_CONCURRENCY", "0")]).await;
    let body =
        json!({"product_name": "Benchmark cola", "ingredients": ["water", "sugar", "aspartame"]})
            .to_string();
    let post = client::request("POST", "/api/v4/deep-research", Some(&body));
    let result = hammer(server.addr, settings.connections, settings.duration, |_| {
        vec![post.clone()]
    })
    .await;
    json!({"scenario": "create", "connections": settings.connections, "jobcast": result})
}

/// 3. Progress updates through the atomic update path: over HTTP, and the store call alone.
pub async fn ingest(settings: &Settings) -> Value {
    let redis = Redis::start().await;
    let server = Server::jobcast(&[("REDIS_URL", &redis.url()), ("WORKER_CONCURRENCY", "0")]).await;
    let mut jobs = Vec::new();
    for _ in 0..settings.connections {
        jobs.push(create_job(server.addr).await);
    }
    let http = hammer(server.addr, settings.connections, settings.duration, |i| {
        ["a", "b"]
            .iter()
            .map(|step| {
                let body = json!({"progress": 50, "current_step": step}).to_string();
                client::request(
                    "POST",
                    &format!("/api/v4/job/{}/progress", jobs[i]),
                    Some(&body),
                )
            })
            .collect()
    })
    .await;
    let store = store_ingest(&redis, &jobs, settings).await;
    json!({"scenario": "ingest", "connections": settings.connections, "http": http, "store": store})
}

/// The store's `apply` called directly from `connections` concurrent tasks on one connection.
async fn store_ingest(redis: &Redis, jobs: &[String], settings: &Settings) -> Value {
    use jobcast::job::{Change, JobId};
    use jobcast::store::{JobStore, RedisStore};
    let client = redis::Client::open(redis.url()).unwrap();
    let store = RedisStore::new(
        client,
        redis::aio::ConnectionManagerConfig::new(),
        86_400,
        jobcast::metrics::Metrics::default(),
    )
    .unwrap();
    let deadline = Instant::now() + settings.duration;
    let started = Instant::now();
    let tasks: Vec<_> = jobs
        .iter()
        .map(|id| {
            let (store, id) = (store.clone(), id.parse::<JobId>().unwrap());
            tokio::spawn(async move {
                let mut applied = 0u64;
                while Instant::now() < deadline {
                    let step = if applied.is_multiple_of(2) { "x" } else { "y" };
                    let change = Change::Progress {
                        progress: 50,
                        step: Some(step.into()),
                        fence: None,
                    };
                    store.apply(id, change).await.unwrap();
                    applied += 1;
                }
                applied
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    json!({"updates": total, "per_sec": (total as f64 / started.elapsed().as_secs_f64()).round()})
}

/// How the fan-out subscribers connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Sse,
    WebSocket,
}

/// Which server a fan-out runs against, and how it writes a change to many sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Jobcast(FanoutWrites),
    /// The machine's floor (`floor.rs`); SSE only.
    Floor(FanoutWrites),
}

impl Target {
    /// The scenario name's suffix: nothing for jobcast as configured by default.
    fn suffix(self) -> String {
        let writes = |writes: FanoutWrites| match writes {
            FanoutWrites::IoUring => "",
            FanoutWrites::Send => "-send",
        };
        match self {
            Self::Jobcast(writes_as) => writes(writes_as).to_owned(),
            Self::Floor(writes_as) => format!("-floor{}", writes(writes_as)),
        }
    }
}

/// 4. One job, `subscribers` watchers, an update every `interval`, `updates` times.
pub async fn fanout(
    target: Target,
    transport: Transport,
    subscribers: usize,
    interval: Duration,
    updates: usize,
) -> Value {
    let (_redis, server) = match target {
        Target::Jobcast(writes) => {
            let redis = Redis::start().await;
            let vars = [
                ("REDIS_URL", redis.url()),
                ("WORKER_CONCURRENCY", "0".into()),
                ("FANOUT_WRITES", processes::fanout_writes_var(writes).into()),
            ];
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let server = Server::jobcast(&vars).await;
            (Some(redis), server)
        }
        Target::Floor(writes) => (None, Server::floor(writes).await),
    };
    let id = create_job(server.addr).await;
    let sent: Rc<RefCell<Vec<Option<Instant>>>> = Rc::new(RefCell::new(vec![None; updates + 2]));
    let latencies = histogram();
    let delivered = Rc::new(RefCell::new(0u64));
    let ready = Rc::new(RefCell::new(0usize));
    let last_seq = updates as u64 + 1;
    let local = tokio::task::LocalSet::new();
    for _ in 0..subscribers {
        let (sent, latencies, delivered, ready) = (
            sent.clone(),
            latencies.clone(),
            delivered.clone(),
            ready.clone(),
        );
        let on_id = move |seq: u64, at: Instant| {
            if seq == 1 {
                *ready.borrow_mut() += 1;
            } else if let Some(Some(sent_at)) = sent.borrow().get(seq as usize) {
                latencies
                    .borrow_mut()
                    .record(at.duration_since(*sent_at).as_micros().max(1) as u64)
                    .unwrap();
                *delivered.borrow_mut() += 1;
            }
            seq >= last_seq
        };
        match transport {
            Transport::Sse => {
                let stream = client::open_stream(server.addr, &format!("/api/v4/job/{id}/events"))
                    .await
                    .unwrap();
                local.spawn_local(client::read_event_seqs(stream, on_id));
            }
            Transport::WebSocket => {
                let path = format!("/api/v4/job/{id}/ws");
                let socket = client::open_websocket(server.addr, &path).await;
                local.spawn_local(client::read_ws_seqs(socket, on_id));
            }
        }
    }
    let (ready_wait, publisher) = (ready.clone(), sent.clone());
    let addr = server.addr;
    let cpu_before = Rc::new(RefCell::new(Duration::ZERO));
    let cpu_start = cpu_before.clone();
    let server = Rc::new(server);
    let server_for_publisher = server.clone();
    local.spawn_local(async move {
        while *ready_wait.borrow() < subscribers {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        *cpu_start.borrow_mut() = server_for_publisher.cpu_time();
        let mut connection = Connection::open(addr).await.unwrap();
        let requests: Vec<Vec<u8>> = ["a", "b"]
            .iter()
            .map(|step| {
                let body = json!({"progress": 50, "current_step": step}).to_string();
                client::request("POST", &format!("/api/v4/job/{id}/progress"), Some(&body))
            })
            .collect();
        let mut ticks = tokio::time::interval(interval);
        for update in 0..updates {
            ticks.tick().await;
            publisher.borrow_mut()[update + 2] = Some(Instant::now());
            connection.exchange(&requests[update % 2]).await.unwrap();
        }
    });
    let limit = interval * updates as u32 + Duration::from_secs(30);
    let _ = tokio::time::timeout(limit, local).await;
    let cpu = server.cpu_time().saturating_sub(*cpu_before.borrow());
    let delivered = *delivered.borrow();
    let expected = (subscribers * updates) as u64;
    let h = latencies.borrow();
    let (p50, p99, max) = percentiles_ms(&h);
    let suffix = target.suffix();
    json!({"scenario": format!("fanout-{transport:?}{suffix}").to_lowercase(), "subscribers": subscribers,
           "updates": updates, "interval_ms": interval.as_millis() as u64,
           "delivered": delivered, "expected": expected,
           "delivered_pct": (delivered as f64 * 100.0 / expected.max(1) as f64 * 100.0).round() / 100.0,
           "p50_ms": p50, "p99_ms": p99, "max_ms": max,
           "server_cpu_ms": cpu.as_millis() as u64,
           "server_cpu_us_per_delivery": ((cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64) * 100.0).round() / 100.0})
}

/// 5. `streams` open SSE streams on distinct jobs: the server's memory per stream.
pub async fn idle(streams: usize) -> Value {
    let redis = Redis::start().await;
    let server = Server::jobcast(&[("REDIS_URL", &redis.url()), ("WORKER_CONCURRENCY", "0")]).await;
    let mut jobs = Vec::with_capacity(streams);
    let body = json!({"kind": "idle"}).to_string();
    let create = client::request("POST", "/api/v4/jobs", Some(&body));
    let mut connection = Connection::open(server.addr).await.unwrap();
    for _ in 0..streams {
        connection.exchange(&create).await.unwrap();
        let job: Value = serde_json::from_slice(connection.body()).unwrap();
        jobs.push(job["job_id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    let mut open = Vec::with_capacity(streams);
    for id in &jobs {
        open.push(
            client::open_stream(server.addr, &format!("/api/v4/job/{id}/events"))
                .await
                .unwrap(),
        );
    }
    let mut chunk = vec![0u8; 4096];
    for stream in &mut open {
        use tokio::io::AsyncReadExt;
        let _ = stream.read(&mut chunk).await; // headers and snapshot: the stream is live
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = server.rss_kib();
    let per_stream = (after.saturating_sub(before) as f64 * 1024.0 / streams as f64).round();
    json!({"scenario": "idle", "streams": streams, "rss_before_kib": before, "rss_after_kib": after,
           "bytes_per_stream": per_stream, "kib_per_stream": (per_stream / 1024.0 * 100.0).round() / 100.0})
}

/// Startup to ready without Redis, and memory at rest.
pub async fn startup() -> Value {
    let started = Instant::now();
    let server = Server::jobcast(&[("REDIS_URL", "redis+unix:///nonexistent/redis.sock")]).await;
    let mut connection = Connection::open(server.addr).await.unwrap();
    let ready = client::request("GET", "/ready", None);
    while connection.exchange(&ready).await.unwrap() != 200 {}
    let to_ready = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    json!({"scenario": "startup", "to_ready_ms": (to_ready.as_secs_f64() * 1e4).round() / 10.0,
           "rss_at_rest_kib": server.rss_kib()})
}
