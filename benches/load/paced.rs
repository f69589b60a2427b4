//! The many-jobs load: `jobs` jobs with one watcher each, updated at a steady rate spread evenly
//! over time and over the jobs. Each update's receipt is matched to its sending by job and seq:
//! update `k` goes to job `k % jobs` and is that job's `k / jobs`-th, so it carries seq
//! `k / jobs + 2` (seq 1 is the snapshot a watcher gets first).

use crate::batch::{self, Batch};
use crate::client;
use crate::latency::{Latencies, histogram, percentiles_ms, round2};
use crate::procfs::Metered;
use crate::scenarios::Transport;
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How big the load is.
pub struct Load {
    pub jobs: usize,
    /// Keep-alive connections the updates are sent over.
    pub connections: usize,
    pub per_sec: u32,
    pub duration: Duration,
}

impl Load {
    /// How many updates the run sends.
    pub fn updates(&self) -> usize {
        (self.per_sec as f64 * self.duration.as_secs_f64()) as usize
    }
}

/// Which server a run drives: how a job is watched and what an update is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// jobcast's `POST …/progress`, watched over SSE or a WebSocket.
    Jobcast(Transport),
    /// jobcast's `POST /api/v4/jobs/progress`, [`BATCHED_UPDATES`] reports a request, watched
    /// over SSE.
    JobcastBatched,
    /// The many-jobs floor (`many_floor.rs`): the same requests, SSE.
    Floor,
    /// Nchan's `POST /pub/<id>` with a job document carrying `"seq"`, watched at `/sub/<id>`.
    Nchan,
}

/// How many reports one request of [`Peer::JobcastBatched`] carries.
pub const BATCHED_UPDATES: usize = 16;

impl Peer {
    fn watch_path(self, job: &str) -> String {
        match self {
            Self::Jobcast(Transport::WebSocket) => format!("/api/v4/job/{job}/ws"),
            Self::Jobcast(Transport::Sse) | Self::JobcastBatched | Self::Floor => {
                format!("/api/v4/job/{job}/events")
            }
            Self::Nchan => format!("/sub/{job}"),
        }
    }

    /// Writes the request that gives `job` its `seq` into `out`, using `body` as scratch.
    pub fn write_update(self, out: &mut Vec<u8>, body: &mut Vec<u8>, job: &str, seq: u64) {
        body.clear();
        if self == Self::Nchan {
            crate::job_json::write(body, job, seq);
            return client::write_request(out, "POST", format_args!("/pub/{job}"), Some(body));
        }
        let _ = write!(body, r#"{{"progress":50,"current_step":"{}"}}"#, step(seq));
        let path = format_args!("/api/v4/job/{job}/progress");
        client::write_request(out, "POST", path, Some(body));
    }

    /// How many updates one request carries.
    fn updates_per_request(self) -> usize {
        match self {
            Self::JobcastBatched => BATCHED_UPDATES,
            _ => 1,
        }
    }

    /// Writes one `POST /api/v4/jobs/progress` giving each `(job, seq)` its seq into `out`.
    fn write_batch<'a>(
        out: &mut Vec<u8>,
        body: &mut Vec<u8>,
        updates: impl Iterator<Item = (&'a str, u64)>,
    ) {
        body.clear();
        body.push(b'[');
        for (i, (job, seq)) in updates.enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let step = step(seq);
            let _ = write!(
                body,
                r#"{comma}{{"job_id":"{job}","progress":50,"current_step":"{step}"}}"#
            );
        }
        body.push(b']');
        client::write_request(
            out,
            "POST",
            format_args!("/api/v4/jobs/progress"),
            Some(body),
        );
    }
}

/// The step of a job's update with `seq`: it alternates, so no update leaves the job unchanged.
fn step(seq: u64) -> &'static str {
    if seq.is_multiple_of(2) { "a" } else { "b" }
}

/// Where a run's watchers and updates go: job `j`'s watcher to `watch[j % len]`, update
/// connection `c` to `send[c % len]`.
pub struct Targets<'a> {
    pub watch: &'a [SocketAddr],
    pub send: &'a [SocketAddr],
}

/// What a run counted.
pub struct Outcome {
    /// Updates the load asked for; all are sent unless the server held them up past the limit.
    pub planned: u64,
    pub sent: u64,
    pub delivered: u64,
    pub errors: u64,
    /// Watchers that had their snapshot when the updates began.
    pub ready: usize,
    latencies: Latencies,
    /// CPU time of each meter from the first update to the last delivery.
    pub cpu: Vec<Duration>,
}

impl Outcome {
    /// The counts and latencies as JSON fields.
    pub fn json(&self) -> Value {
        let (p50, p99, max) = percentiles_ms(&self.latencies.borrow());
        let pct = self.delivered as f64 * 100.0 / self.sent.max(1) as f64;
        json!({"updates": self.sent, "unsent": self.planned - self.sent,
               "expected": self.sent, "delivered": self.delivered,
               "delivered_pct": round2(pct), "errors": self.errors, "watchers_ready": self.ready,
               "p50_ms": p50, "p99_ms": p99, "max_ms": max})
    }

    /// Meter `i`'s CPU time per update sent, in µs.
    pub fn cpu_us_per_update(&self, i: usize) -> f64 {
        round2(self.cpu[i].as_secs_f64() * 1e6 / self.sent.max(1) as f64)
    }
}

/// What the watchers and the sender share: when each update was sent, and what arrived.
struct Receipts {
    jobs: usize,
    sent: RefCell<Vec<Option<Instant>>>,
    sent_count: Cell<u64>,
    /// Updates answered with an error status, or lost with their connection.
    errors: Cell<u64>,
    latencies: Latencies,
    delivered: Cell<u64>,
    ready: Cell<usize>,
}

impl Receipts {
    fn new(jobs: usize, updates: usize) -> Self {
        Self {
            jobs,
            sent: RefCell::new(vec![None; updates]),
            sent_count: Cell::new(0),
            errors: Cell::new(0),
            latencies: histogram(),
            delivered: Cell::new(0),
            ready: Cell::new(0),
        }
    }

    /// Update `k` is being sent now.
    fn sending(&self, k: usize) {
        self.sent.borrow_mut()[k] = Some(Instant::now());
        self.sent_count.set(self.sent_count.get() + 1);
    }

    /// Job `job`'s watcher received `seq` at `at`.
    fn receive(&self, job: usize, seq: u64, at: Instant) {
        if seq == 1 {
            return self.ready.set(self.ready.get() + 1);
        }
        let k = (seq as usize).saturating_sub(2) * self.jobs + job;
        let sent_at = self.sent.borrow_mut().get_mut(k).and_then(Option::take);
        if let Some(sent_at) = sent_at {
            let us = at.duration_since(sent_at).as_micros().max(1) as u64;
            let _ = self.latencies.borrow_mut().record(us);
            self.delivered.set(self.delivered.get() + 1);
        }
    }
}

/// Watches every job, then sends `load`'s updates; reads `meters`' CPU time around them.
pub async fn run(
    peer: Peer,
    load: &Load,
    jobs: &[String],
    targets: Targets<'_>,
    meters: &[&dyn Metered],
) -> Outcome {
    let receipts = Rc::new(Receipts::new(jobs.len(), load.updates()));
    let local = tokio::task::LocalSet::new();
    watch_all(peer, jobs, targets.watch, &receipts, &local).await;
    let cpu = local
        .run_until(async {
            let all_ready = || receipts.ready.get() >= jobs.len();
            wait_until(Duration::from_secs(30), all_ready).await;
            cpu_during(meters, async {
                let updates = send_updates(peer, load, jobs, targets.send, &receipts);
                let _ =
                    tokio::time::timeout(load.duration + Duration::from_secs(30), updates).await;
                let all_in = || receipts.delivered.get() >= receipts.sent_count.get();
                wait_until(Duration::from_secs(5), all_in).await;
            })
            .await
        })
        .await;
    Outcome {
        planned: (load.updates() / peer.updates_per_request() * peer.updates_per_request()) as u64,
        sent: receipts.sent_count.get(),
        delivered: receipts.delivered.get(),
        errors: receipts.errors.get(),
        ready: receipts.ready.get(),
        latencies: receipts.latencies.clone(),
        cpu,
    }
}

/// Opens job `j`'s watcher at `addrs[j % len]`, its reader a task on `local`.
async fn watch_all(
    peer: Peer,
    jobs: &[String],
    addrs: &[SocketAddr],
    receipts: &Rc<Receipts>,
    local: &tokio::task::LocalSet,
) {
    for (j, job) in jobs.iter().enumerate() {
        let addr = addrs[j % addrs.len()];
        let receipts = receipts.clone();
        let on_seq = move |seq, at| {
            receipts.receive(j, seq, at);
            false
        };
        let path = peer.watch_path(job);
        if peer == Peer::Jobcast(Transport::WebSocket) {
            let socket = client::open_websocket(addr, &path).await;
            local.spawn_local(client::read_ws_seqs(socket, on_seq));
        } else {
            let stream = client::open_stream(addr, &path).await.unwrap();
            local.spawn_local(client::read_event_seqs(stream, on_seq));
        }
    }
}

/// Each meter's CPU time spent while `work` ran.
async fn cpu_during(meters: &[&dyn Metered], work: impl Future<Output = ()>) -> Vec<Duration> {
    let before: Vec<Duration> = meters.iter().map(|m| m.cpu_time()).collect();
    work.await;
    let after = meters.iter().map(|m| m.cpu_time());
    after
        .zip(before)
        .map(|(a, b)| a.saturating_sub(b))
        .collect()
}

async fn send_updates(
    peer: Peer,
    load: &Load,
    jobs: &[String],
    addrs: &[SocketAddr],
    receipts: &Receipts,
) {
    let per_request = peer.updates_per_request();
    let batch = Batch {
        addrs,
        connections: load.connections,
        count: load.updates() / per_request,
        spacing: Duration::from_secs(1) * per_request as u32 / load.per_sec,
    };
    let body = RefCell::new(Vec::with_capacity(512));
    let update = |k: usize| (jobs[k % jobs.len()].as_str(), (k / jobs.len()) as u64 + 2);
    let write = |r: usize, out: &mut Vec<u8>| {
        let ks = r * per_request..(r + 1) * per_request;
        if per_request == 1 {
            let (job, seq) = update(r);
            peer.write_update(out, &mut body.borrow_mut(), job, seq);
        } else {
            Peer::write_batch(out, &mut body.borrow_mut(), ks.clone().map(update));
        }
        ks.for_each(|k| receipts.sending(k));
    };
    batch::send(batch, write, |_, answer| {
        if answer.is_none_or(|(status, _)| status >= 400) {
            receipts.errors.set(receipts.errors.get() + 1);
        }
    })
    .await;
}

/// Waits until `done` says so, checking every 5 ms, for at most `limit`.
pub async fn wait_until(limit: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
