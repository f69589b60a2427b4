//! A fixed number of requests over many keep-alive connections: each written into one reused
//! buffer just before it is sent, as fast as answers come or paced evenly in time.

use crate::client::{self, Connection};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How many requests, over how many connections, to which servers, how fast.
pub struct Batch<'a> {
    /// Connection `c` goes to `addrs[c % addrs.len()]`.
    pub addrs: &'a [SocketAddr],
    /// Request `i` goes over connection `i % connections`, in order.
    pub connections: usize,
    pub count: usize,
    /// Request `i` is sent no earlier than the start plus `i` times this; zero: at once.
    pub spacing: Duration,
}

/// What became of one request: its status and body, or `None` when its connection failed.
pub type Answer<'b> = Option<(u16, &'b [u8])>;

/// Sends the batch: `write(i, out)` writes request `i` into `out` just before it goes out, and
/// `answer(i, …)` sees its response. A failed connection stops (its later requests are not sent).
pub async fn send(
    batch: Batch<'_>,
    write: impl Fn(usize, &mut Vec<u8>),
    answer: impl FnMut(usize, Answer),
) {
    let start = Instant::now();
    let answer = RefCell::new(answer);
    let loops = (0..batch.connections).map(|c| {
        let addr = batch.addrs[c % batch.addrs.len()];
        let requests = (c..batch.count).step_by(batch.connections);
        let (write, answer, spacing) = (&write, &answer, batch.spacing);
        async move {
            let Ok(mut connection) = Connection::open(addr).await else {
                return requests.for_each(|i| answer.borrow_mut()(i, None));
            };
            let mut out = Vec::with_capacity(1024);
            for i in requests {
                if !spacing.is_zero() {
                    tokio::time::sleep_until((start + spacing * i as u32).into()).await;
                }
                write(i, &mut out);
                match connection.exchange(&out).await {
                    Ok(status) => answer.borrow_mut()(i, Some((status, connection.body()))),
                    Err(_) => return answer.borrow_mut()(i, None),
                }
            }
        }
    });
    futures::future::join_all(loops).await;
}

/// Creates `count` jobs no worker runs through `addrs` (round robin) over `connections`;
/// returns their ids and how many creations failed.
pub async fn create_jobs(
    addrs: &[SocketAddr],
    connections: usize,
    count: usize,
) -> (Vec<String>, u64) {
    let body = br#"{"kind":"bench","input":{"product_name":"Benchmark cola"}}"#;
    let batch = Batch {
        addrs,
        connections,
        count,
        spacing: Duration::ZERO,
    };
    let mut ids = vec![String::new(); count];
    let mut errors = 0;
    let write = |_, out: &mut Vec<u8>| {
        client::write_request(out, "POST", format_args!("/api/v4/jobs"), Some(body))
    };
    send(batch, write, |i, answer| match answer.and_then(job_id) {
        Some(id) => ids[i] = id,
        None => errors += 1,
    })
    .await;
    ids.retain(|id| !id.is_empty());
    (ids, errors)
}

/// The job id in a successful creation's answer.
fn job_id((status, body): (u16, &[u8])) -> Option<String> {
    let at = client::find(body, br#""job_id":""#)? + 10;
    let id = std::str::from_utf8(body.get(at..at + 36)?).ok()?;
    (status < 400).then(|| id.to_owned())
}
