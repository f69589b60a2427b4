//! The many-jobs floor (`--serve-floor many`): the cheapest server that takes jobcast's
//! `POST /api/v4/job/{id}/progress` and writes one SSE event to that job's one watcher, keyed by
//! the id in the path, with no Redis and without reading the update's body: about the least one
//! update can cost on this machine, measured the same way as jobcast.

use crate::floor::{EVENT_STREAM_HEAD, listen, read_request, write_chunk};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The `--serve-floor` argument that starts this floor.
pub const MODE: &str = "many";

/// One job's one watcher.
struct Watcher {
    /// Locked while an event is written, so two updates of one job never interleave their bytes.
    stream: tokio::sync::Mutex<TcpStream>,
    seq: Cell<u64>,
}

/// Every watched job, by id; one thread, so a `RefCell` (never held across an `.await`).
type Watchers = Rc<RefCell<HashMap<String, Rc<Watcher>>>>;

/// `GET /api/v4/job/{id}/events` watches job `id` (snapshot: seq 1); `POST …/{id}/progress`
/// sends its watcher the next seq.
pub async fn serve() {
    let watchers = Watchers::default();
    listen(|stream| serve_connection(stream, watchers.clone())).await;
}

async fn serve_connection(mut stream: TcpStream, watchers: Watchers) {
    let mut buffer = vec![0u8; 4096];
    let (mut data, mut out) = (Vec::with_capacity(512), Vec::with_capacity(1024));
    loop {
        let Some(head) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let Some(id) = job_id(&head) else {
            return;
        };
        if head.starts_with("GET") {
            return watch(stream, id, &watchers).await;
        }
        let watcher = watchers.borrow().get(id).cloned();
        let status = match watcher {
            Some(watcher) => {
                send_next(&watcher, id, &mut data, &mut out).await;
                "200 OK"
            }
            None => "404 Not Found",
        };
        out.clear();
        let _ = write!(
            out,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
        );
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Writes job `id`'s next seq to its watcher, building the event in `data` and `out`.
async fn send_next(watcher: &Watcher, id: &str, data: &mut Vec<u8>, out: &mut Vec<u8>) {
    let seq = watcher.seq.get() + 1;
    watcher.seq.set(seq);
    data.clear();
    out.clear();
    crate::job_json::write(data, id, seq);
    write_chunk(out, seq, data);
    let _ = watcher.stream.lock().await.write_all(out).await;
}

/// Sends the snapshot and keeps the socket as job `id`'s watcher.
async fn watch(mut stream: TcpStream, id: &str, watchers: &Watchers) {
    let mut hello = EVENT_STREAM_HEAD.to_vec();
    let mut data = Vec::new();
    crate::job_json::write(&mut data, id, 1);
    write_chunk(&mut hello, 1, &data);
    if stream.write_all(&hello).await.is_ok() {
        let watcher = Watcher {
            stream: tokio::sync::Mutex::new(stream),
            seq: Cell::new(1),
        };
        watchers
            .borrow_mut()
            .insert(id.to_owned(), Rc::new(watcher));
    }
}

/// The job id in a request head's path, `/api/v4/job/{id}/…`.
fn job_id(head: &str) -> Option<&str> {
    let path = head.split(' ').nth(1)?;
    path.strip_prefix("/api/v4/job/")?.split('/').next()
}
