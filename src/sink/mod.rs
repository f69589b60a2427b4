//! A direct event stream's socket, written by the publisher of a change while the socket takes
//! the bytes at once, and by the stream's own task otherwise.
//!
//! Waking a task per subscriber per change cost more than the write itself (BENCHMARKS.md):
//! here the task that publishes a change writes its shared chunk to every idle stream's socket
//! with non-blocking sends, batched into io_uring submissions (`batch.rs`, `uring.rs`), as the
//! cheapest fan-out server would. Only a socket that would block, a partial write, or the end
//! of the stream hands the socket to its task, which then writes what is left and the newest
//! state (progress is latest-wins, so a slow client skips states instead of making the server
//! buffer them) and hands the socket back.

mod batch;
#[cfg(target_os = "linux")]
mod uring;

/// How publishers write (configured by `FANOUT_WRITES`), where the sinks' users look for it.
pub use crate::config::FanoutWrites;
pub use batch::write_to_all;
#[cfg(target_os = "linux")]
pub use uring::{probe as probe_io_uring, send_each};

use crate::job::{Frame, JobEvent};
use bytes::Bytes;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// How many sockets one batch writes: the io_uring submission size, and how many sinks a
/// publisher holds at once (their tasks wait for the batch before writing themselves).
pub const FANOUT_BATCH: usize = 256;

/// How a direct stream frames a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// An SSE event as an HTTP/1.1 chunk.
    Sse,
    /// A WebSocket text frame.
    WebSocket,
}

impl Encoding {
    /// `frame` in this encoding, shared by every stream that uses it.
    pub fn encode(self, frame: &Frame) -> Bytes {
        match self {
            Self::Sse => frame.sse_chunk(),
            Self::WebSocket => frame.websocket_frame(),
        }
    }
}

/// One direct stream's socket, shared by publishers and the stream's task.
pub struct Sink {
    socket: Arc<TcpStream>,
    encoding: Encoding,
    state: Mutex<SinkState>,
    /// Wakes the stream's task when it has work.
    wake: Notify,
    /// Set by a publisher's write; the task's keep-alive only speaks when nothing was written.
    wrote: AtomicBool,
}

#[derive(Default)]
struct SinkState {
    /// The seq of the newest state written or about to be: older changes are not offered.
    seq: u64,
    /// The task writes (it starts so, and takes over when a write would block); publishers only
    /// leave work for it meanwhile.
    task_writes: bool,
    /// The rest of a chunk the socket took only in part.
    backlog: Option<Bytes>,
    /// The newest change not yet written.
    pending: Option<JobEvent>,
    /// The final state has been written (or the server stops): end the response.
    finished: bool,
    /// The socket failed: stop.
    broken: bool,
}

/// What the stream's task found after writing what publishers left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// Nothing left: the socket is the publishers' again.
    Idle,
    /// The final state is out (or the server stops): end the response.
    Finished,
    /// The socket failed.
    Broken,
}

/// What one change's fan-out did, for the metrics: sinks that got it or will (their task writes
/// it), and pending states it replaced before their task wrote them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub delivered: usize,
    pub coalesced: usize,
}

/// The task's next piece of work: bytes to write, or nothing more (and why).
enum Work {
    Write(Bytes),
    Done(Drained),
}

/// A sink whose socket a publisher holds while it writes one change; no one else writes to the
/// socket until [`Claim::settle`].
pub struct Claim<'a> {
    sink: &'a Sink,
    state: MutexGuard<'a, SinkState>,
}

impl Claim<'_> {
    pub fn socket(&self) -> &TcpStream {
        &self.sink.socket
    }

    pub fn encoding(&self) -> Encoding {
        self.sink.encoding
    }

    /// Records how writing `chunk` (`frame` in this sink's encoding) went; what is left of it,
    /// and anything after the final state, becomes the task's work.
    pub fn settle(self, written: io::Result<usize>, frame: &Frame, chunk: &Bytes) {
        let Claim { sink, mut state } = self;
        match written {
            Ok(written) if written == chunk.len() => {
                sink.wrote.store(true, Ordering::Relaxed);
                if !frame.is_final() {
                    return;
                }
                state.task_writes = true;
                state.finished = true;
            }
            Ok(written) => {
                state.task_writes = true;
                state.backlog = Some(chunk.slice(written..));
                state.finished = frame.is_final();
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                state.task_writes = true;
                state.pending = Some(frame.event.clone());
            }
            Err(_) => state.broken = true,
        }
        drop(state);
        sink.wake.notify_one();
    }
}

impl Sink {
    /// A sink that its task writes until the task first runs out of work; `seq` is the newest
    /// state the client has or is being sent.
    pub fn new(socket: Arc<TcpStream>, encoding: Encoding, seq: u64) -> Arc<Self> {
        Arc::new(Self {
            socket,
            encoding,
            state: Mutex::new(SinkState {
                seq,
                task_writes: true,
                ..SinkState::default()
            }),
            wake: Notify::new(),
            wrote: AtomicBool::new(false),
        })
    }

    fn state(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().expect("sink lock poisoned")
    }

    /// Takes the socket to write `frame`'s change, if the client lacks it and no task is writing.
    /// `None` when the change is handled already: skipped as stale, or left to the task.
    pub fn claim(&self, frame: &Frame, tally: &mut Tally) -> Option<Claim<'_>> {
        let mut state = self.state();
        let event = &frame.event;
        if state.broken || state.finished || event.seq <= state.seq {
            return None;
        }
        state.seq = event.seq;
        tally.delivered += 1;
        if state.task_writes {
            tally.coalesced += usize::from(state.pending.replace(event.clone()).is_some());
            drop(state);
            self.wake.notify_one();
            return None;
        }
        Some(Claim { sink: self, state })
    }

    /// Ends the stream after what is already queued (the server is stopping).
    pub fn finish(&self) {
        let mut state = self.state();
        state.finished = true;
        state.task_writes = true;
        drop(state);
        self.wake.notify_one();
    }

    /// Waits until a publisher leaves work for the task.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The task's next piece of work.
    fn next_work(&self) -> Work {
        let mut state = self.state();
        if state.broken {
            return Work::Done(Drained::Broken);
        }
        state.task_writes = true;
        if let Some(rest) = state.backlog.take() {
            return Work::Write(rest);
        }
        if let Some(event) = state.pending.take() {
            let frame = Frame::change(event);
            state.finished |= frame.is_final();
            return Work::Write(self.encoding.encode(&frame));
        }
        if state.finished {
            return Work::Done(Drained::Finished);
        }
        state.task_writes = false;
        Work::Done(Drained::Idle)
    }

    /// Records that the task wrote the state `seq`: publishers skip it, and a pending change
    /// that is not newer is dropped.
    fn written_by_task(&self, seq: u64) {
        let mut state = self.state();
        state.seq = state.seq.max(seq);
        if state.pending.as_ref().is_some_and(|event| event.seq <= seq) {
            state.pending = None;
        }
    }

    /// Whether a publisher wrote since the last call (a keep-alive is needed only if not).
    pub fn take_wrote(&self) -> bool {
        self.wrote.swap(false, Ordering::Relaxed)
    }

    /// Takes the socket for the task; returns what a partial write left, which must go out
    /// first. The task's next [`Sink::drain`] hands the socket back.
    fn take_over(&self) -> Option<Bytes> {
        let mut state = self.state();
        state.task_writes = true;
        state.backlog.take()
    }

    /// Records that the socket failed under the task.
    fn break_off(&self) {
        self.state().broken = true;
    }

    /// Writes `bytes` as the stream's task, which holds the socket (it does until its first
    /// [`Sink::drain`], and again after a handover); a failure marks the sink broken.
    pub async fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let written = write_all(&self.socket, bytes).await;
        if written.is_err() {
            self.break_off();
        }
        written
    }

    /// Writes `frame` as the task, and records it so publishers skip it.
    pub async fn write_frame(&self, frame: &Frame) -> io::Result<()> {
        self.write(&self.encoding.encode(frame)).await?;
        self.written_by_task(frame.event.seq);
        Ok(())
    }

    /// Writes, as the task, the `changes` its stream received since its snapshot; whether the
    /// final state was among them.
    pub async fn catch_up(&self, changes: impl Iterator<Item = Frame>) -> io::Result<bool> {
        for frame in changes {
            self.write_frame(&frame).await?;
            if frame.is_final() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Takes the socket from publishers and writes `bytes` of the task's own (a keep-alive, a
    /// control frame), after what a partial publisher write left.
    pub async fn write_own(&self, bytes: &[u8]) -> io::Result<()> {
        if let Some(rest) = self.take_over() {
            self.write(&rest).await?;
        }
        self.write(bytes).await
    }

    /// Writes what publishers left the task, until the socket can go back to them.
    pub async fn drain(&self) -> io::Result<Drained> {
        loop {
            match self.next_work() {
                Work::Write(bytes) => self.write(&bytes).await?,
                Work::Done(drained) => return Ok(drained),
            }
        }
    }
}

/// Writes all of `bytes`, waiting while the socket is full.
pub async fn write_all(socket: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        socket.writable().await?;
        match socket.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
