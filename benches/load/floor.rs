//! The fan-out floor: the cheapest correct SSE fan-out server this generator can drive, run as
//! its own process (`--serve-floor`) so its CPU time is measured the same way as jobcast's.
//!
//! One thread; one task holds every subscriber's socket; each update is built once and written
//! to each socket in turn, with no per-subscriber task, buffer or subscription: with one `send`
//! per socket, or (`io-uring`) with jobcast's batched io_uring sends. What it spends per
//! delivery is mostly the kernel's cost of one small TCP write on loopback: the least any
//! server can spend on this machine for the same deliveries, written the same way.

use crate::client::{content_length, find};
use jobcast::sink::{FANOUT_BATCH, FanoutWrites, send_each};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A job document of the size jobcast sends in the fan-out scenario.
const JOB_JSON_BYTES: usize = 350;

struct Floor {
    writes: FanoutWrites,
    subscribers: RefCell<Vec<TcpStream>>,
    seq: Cell<u64>,
    job: String,
}

/// `POST …/progress` publishes the next seq to every subscriber; any other `POST` answers a
/// job id; a `GET` subscribes and gets the snapshot (seq 1).
pub async fn serve(writes: FanoutWrites) {
    let mut job = String::from(
        r#"{"job_id":"00000000-0000-4000-8000-000000000000","status":"processing","progress":50,"current_step":""#,
    );
    job.push_str(&"x".repeat(JOB_JSON_BYTES - job.len() - 2));
    job.push_str(r#""}"#);
    let floor = Rc::new(Floor {
        writes,
        subscribers: RefCell::new(Vec::new()),
        seq: Cell::new(1),
        job,
    });
    listen(|stream| serve_connection(stream, floor.clone())).await;
}

/// Listens on a free loopback port, says where (the line `Server::spawn` waits for), and serves
/// each connection with the task `serve` makes of it, all on this one thread.
pub async fn listen<F: Future<Output = ()> + 'static>(mut serve: impl FnMut(TcpStream) -> F) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    println!(
        "{}",
        serde_json::json!({"fields": {"message": "floor listening", "addr": addr}})
    );
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                tokio::task::spawn_local(serve(stream));
            }
        })
        .await;
}

async fn serve_connection(mut stream: TcpStream, floor: Rc<Floor>) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let Some(head) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        if head.starts_with("GET") {
            let mut hello = EVENT_STREAM_HEAD.to_vec();
            write_chunk(&mut hello, 1, floor.job.as_bytes());
            if stream.write_all(&hello).await.is_ok() {
                floor.subscribers.borrow_mut().push(stream);
            }
            return;
        }
        let body = if head.contains("/progress") {
            let seq = floor.seq.get() + 1;
            floor.seq.set(seq);
            let mut chunk = Vec::new();
            write_chunk(&mut chunk, seq, floor.job.as_bytes());
            let mut sockets = std::mem::take(&mut *floor.subscribers.borrow_mut());
            write_to_all(&mut sockets, &chunk, floor.writes).await;
            floor.subscribers.borrow_mut().append(&mut sockets);
            format!(r#"{{"seq":{seq}}}"#)
        } else {
            r#"{"job_id":"00000000-0000-4000-8000-000000000000"}"#.to_owned()
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Writes `chunk` to every socket: batched through io_uring, then whatever a socket did not
/// take at once is written on its own.
async fn write_to_all(sockets: &mut [TcpStream], chunk: &[u8], writes: FanoutWrites) {
    let mut written = vec![0; sockets.len()];
    if writes == FanoutWrites::IoUring {
        for (batch, done) in sockets
            .chunks(FANOUT_BATCH)
            .zip(written.chunks_mut(FANOUT_BATCH))
        {
            let targets: Vec<_> = batch.iter().map(|s| (s.as_raw_fd(), chunk)).collect();
            for (done, sent) in done.iter_mut().zip(send_each(&targets)) {
                *done = sent.and_then(Result::ok).unwrap_or(0);
            }
        }
    }
    for (socket, done) in sockets.iter_mut().zip(written) {
        let _ = socket.write_all(&chunk[done..]).await;
    }
}

/// Reads one request (head and body); returns its head.
pub async fn read_request(stream: &mut TcpStream, buffer: &mut [u8]) -> Option<String> {
    let mut filled = 0;
    let end = loop {
        if let Some(end) = find(&buffer[..filled], b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buffer[filled..]).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => filled += read,
        }
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let length = content_length(&head);
    while filled < end + 4 + length {
        match stream.read(&mut buffer[filled..]).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => filled += read,
        }
    }
    Some(head)
}

/// The head of an SSE response, its body in chunks.
pub const EVENT_STREAM_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

/// Appends one SSE event (`id: seq`, `data`) to `out` as an HTTP/1.1 chunk.
pub fn write_chunk(out: &mut Vec<u8>, seq: u64, data: &[u8]) {
    let (head, tail) = ("event: progress\ndata: ", "\n\n");
    let seq_digits = seq.checked_ilog10().unwrap_or(0) as usize + 1;
    let length = "id: \n".len() + seq_digits + head.len() + data.len() + tail.len();
    let _ = write!(out, "{length:x}\r\nid: {seq}\n{head}");
    out.extend_from_slice(data);
    out.extend_from_slice(tail.as_bytes());
    out.extend_from_slice(b"\r\n");
}
