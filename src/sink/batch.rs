//! One change written to many sinks: claimed in batches, each batch sent with one io_uring
//! submission where the kernel allows it, or with one non-blocking `send` per socket.

use super::{Claim, Encoding, FANOUT_BATCH, Sink, Tally};
use crate::config::FanoutWrites;
use crate::job::Frame;
use bytes::Bytes;
use std::io;
use std::sync::Arc;

/// Writes `frame` to each of `sinks` that can take it at once; the others are left to their
/// tasks (see [`Sink::claim`]). What it did, counted.
pub fn write_to_all(sinks: &[Arc<Sink>], frame: &Frame, writes: FanoutWrites) -> Tally {
    let mut tally = Tally::default();
    let mut chunks = Chunks::default();
    let mut claims = Vec::with_capacity(sinks.len().min(FANOUT_BATCH));
    for sink in sinks {
        if let Some(claim) = sink.claim(frame, &mut tally) {
            chunks.prepare(claim.encoding(), frame);
            claims.push(claim);
        }
        if claims.len() == FANOUT_BATCH {
            write_batch(&mut claims, frame, &chunks, writes);
        }
    }
    write_batch(&mut claims, frame, &chunks, writes);
    tally
}

/// Writes the claimed sinks' chunks and settles each claim.
fn write_batch(claims: &mut Vec<Claim<'_>>, frame: &Frame, chunks: &Chunks, writes: FanoutWrites) {
    if claims.is_empty() {
        return;
    }
    // One socket (a job with one watcher, the common case) is one `send` either way, and a
    // plain one skips the ring's submission and completion.
    let mut sent = match writes {
        FanoutWrites::IoUring if claims.len() > 1 => send_with_io_uring(claims, chunks),
        _ => Vec::new(),
    }
    .into_iter();
    for claim in claims.drain(..) {
        let chunk = chunks.get(claim.encoding());
        let written = sent.next().flatten();
        let written = written.unwrap_or_else(|| claim.socket().try_write(chunk));
        claim.settle(written, frame, chunk);
    }
}

/// The result of each claim's send, `None` where it is still to be made.
#[cfg(target_os = "linux")]
fn send_with_io_uring(claims: &[Claim<'_>], chunks: &Chunks) -> Vec<Option<io::Result<usize>>> {
    use std::os::fd::AsRawFd;
    let targets: Vec<_> = claims
        .iter()
        .map(|claim| {
            let chunk = chunks.get(claim.encoding());
            (claim.socket().as_raw_fd(), chunk.as_ref())
        })
        .collect();
    super::uring::send_each(&targets)
}

#[cfg(not(target_os = "linux"))]
fn send_with_io_uring(_: &[Claim<'_>], _: &Chunks) -> Vec<Option<io::Result<usize>>> {
    Vec::new()
}

/// A change's bytes in each encoding that the batch needs, each built once.
#[derive(Default)]
struct Chunks([Option<Bytes>; 2]);

impl Chunks {
    fn prepare(&mut self, encoding: Encoding, frame: &Frame) {
        self.0[encoding as usize].get_or_insert_with(|| encoding.encode(frame));
    }

    /// The chunk for `encoding`; [`Chunks::prepare`] has made it.
    fn get(&self, encoding: Encoding) -> &Bytes {
        self.0[encoding as usize]
            .as_ref()
            .expect("chunk prepared when its sink was claimed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobEvent;
    use crate::job::{EventFields, Frames, JobId, JobStatus, Timestamp};
    use crate::sink::Drained;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    const BOTH: [FanoutWrites; 2] = [FanoutWrites::IoUring, FanoutWrites::Send];

    fn change(seq: u64, json: &'static [u8]) -> Frame {
        Frame::change(JobEvent::from(EventFields {
            job_id: JobId::new(),
            seq,
            status: JobStatus::Processing,
            updated_at: Timestamp::now(),
            expires_at: Timestamp::now(),
            json: Bytes::from_static(json),
            frames: Frames::default(),
        }))
    }

    /// `count` sinks that publishers may write (their tasks have run out of work), each with the
    /// client end of its socket.
    async fn idle_sinks(count: usize, encoding: Encoding) -> Vec<(Arc<Sink>, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut pairs = Vec::new();
        for _ in 0..count {
            let client = TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let sink = Sink::new(Arc::new(server), encoding, 1);
            assert!(matches!(sink.drain().await.unwrap(), Drained::Idle));
            pairs.push((sink, client));
        }
        pairs
    }

    async fn read_exactly(client: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        client.read_exact(&mut bytes).await.unwrap();
        bytes
    }

    #[tokio::test]
    async fn a_change_reaches_every_idle_socket_across_several_batches_with_either_writer() {
        for writes in BOTH {
            let mut pairs = idle_sinks(FANOUT_BATCH + 3, Encoding::Sse).await;
            let sinks: Vec<_> = pairs.iter().map(|(sink, _)| sink.clone()).collect();
            let frame = change(2, br#"{"progress":50}"#);
            write_to_all(&sinks, &frame, writes);
            let chunk = frame.sse_chunk();
            for (sink, client) in &mut pairs {
                assert_eq!(read_exactly(client, chunk.len()).await, chunk, "{writes:?}");
                assert!(sink.take_wrote(), "{writes:?}: the publisher wrote it");
            }
        }
    }

    #[tokio::test]
    async fn sse_and_websocket_sinks_of_one_job_each_get_their_own_framing() {
        let mut sse = idle_sinks(1, Encoding::Sse).await;
        let mut websocket = idle_sinks(1, Encoding::WebSocket).await;
        let sinks = [sse[0].0.clone(), websocket[0].0.clone()];
        let frame = change(2, b"{}");
        write_to_all(&sinks, &frame, FanoutWrites::IoUring);
        let (sse_chunk, ws_frame) = (frame.sse_chunk(), frame.websocket_frame());
        assert_eq!(
            read_exactly(&mut sse[0].1, sse_chunk.len()).await,
            sse_chunk
        );
        assert_eq!(
            read_exactly(&mut websocket[0].1, ws_frame.len()).await,
            ws_frame
        );
    }

    #[tokio::test]
    async fn a_change_the_client_already_has_is_not_written_again() {
        for writes in BOTH {
            let (sink, mut client) = idle_sinks(1, Encoding::Sse).await.remove(0);
            let (stale, newer) = (change(2, b"{}"), change(3, b"{}"));
            let sinks = std::slice::from_ref(&sink);
            let once = Tally {
                delivered: 1,
                coalesced: 0,
            };
            assert_eq!(write_to_all(sinks, &newer, writes), once, "{writes:?}");
            assert_eq!(write_to_all(sinks, &stale, writes), Tally::default());
            assert_eq!(write_to_all(sinks, &newer, writes), Tally::default());
            let chunk = newer.sse_chunk();
            assert_eq!(read_exactly(&mut client, chunk.len()).await, chunk);
            drop(sink);
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            assert!(
                rest.is_empty(),
                "{writes:?}: wrote {rest:?} after the newest change"
            );
        }
    }

    #[tokio::test]
    async fn a_socket_that_is_full_leaves_the_change_to_its_task_which_writes_it_once_there_is_room()
     {
        for writes in BOTH {
            let (sink, mut client) = idle_sinks(1, Encoding::Sse).await.remove(0);
            let mut filled = 0;
            let filler = vec![b'.'; 64 * 1024];
            while let Ok(written) = sink.socket.try_write(&filler) {
                filled += written;
            }
            let skipped = change(2, br#"{"progress":55}"#);
            write_to_all(std::slice::from_ref(&sink), &skipped, writes);
            assert!(!sink.take_wrote(), "{writes:?}: the socket took nothing");
            let frame = change(3, br#"{"progress":60}"#);
            let tally = write_to_all(std::slice::from_ref(&sink), &frame, writes);
            let replaced = Tally {
                delivered: 1,
                coalesced: 1,
            };
            assert_eq!(tally, replaced, "{writes:?}: the skipped state is counted");
            let task = tokio::spawn({
                let sink = sink.clone();
                async move {
                    sink.woken().await;
                    sink.drain().await.unwrap()
                }
            });
            read_exactly(&mut client, filled).await;
            let chunk = frame.sse_chunk();
            assert_eq!(
                read_exactly(&mut client, chunk.len()).await,
                chunk,
                "{writes:?}"
            );
            assert!(matches!(task.await.unwrap(), Drained::Idle));
        }
    }
}
