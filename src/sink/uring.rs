//! Many non-blocking sends in one system call: each thread that publishes keeps an io_uring,
//! made the first time it writes a batch.
//!
//! A send is submitted with `MSG_DONTWAIT`, so the kernel runs it during the submission and
//! answers `EAGAIN` rather than waiting for the socket: every send is complete when
//! [`send_each`] returns, which is what makes lending it the callers' buffers sound.

use super::FANOUT_BATCH;
use io_uring::{IoUring, opcode, types};
use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static RING: RefCell<Ring> = const { RefCell::new(Ring::Untried) };
}

enum Ring {
    Untried,
    Ready(Box<IoUring>),
    Unavailable,
}

/// Whether this process may use io_uring (for the startup log).
pub fn probe() -> io::Result<()> {
    IoUring::new(1).map(drop)
}

/// Sends each `(socket, bytes)` once, without waiting; at most [`FANOUT_BATCH`] of them. The
/// result of each, in order; `None` for a send that did not run here, and nothing at all when
/// this thread has no io_uring: the caller makes those sends itself.
pub fn send_each(targets: &[(RawFd, &[u8])]) -> Vec<Option<io::Result<usize>>> {
    assert!(targets.len() <= FANOUT_BATCH, "a batch fits the ring");
    RING.with_borrow_mut(|ring| {
        let Some(uring) = ring.get() else {
            return Vec::new();
        };
        let mut sends = uring.submission();
        for (index, &(socket, bytes)) in targets.iter().enumerate() {
            let len = u32::try_from(bytes.len()).expect("a chunk is far below 4 GiB");
            let send = opcode::Send::new(types::Fd(socket), bytes.as_ptr(), len)
                .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                .build()
                .user_data(index as u64);
            // SAFETY: `bytes` and `socket` are borrowed for this whole call, the ring was empty
            // when it began (`Ring::get`), and before it returns every send pushed here has
            // completed or has been dropped with the ring unsubmitted.
            unsafe { sends.push(&send) }.expect("an empty ring holds a batch");
        }
        drop(sends);
        let mut results: Vec<_> = targets.iter().map(|_| None).collect();
        if let Err(error) = complete(uring, &mut results) {
            // Sends the kernel has not taken die with this ring; the caller makes them.
            tracing::warn!(%error, "io_uring failed; the next batch gets a new ring");
            *ring = Ring::Untried;
        }
        results
    })
}

/// Submits what is queued and collects one completion per entry of `results`. An error means
/// the kernel took none of what was left to submit.
fn complete(uring: &mut IoUring, results: &mut [Option<io::Result<usize>>]) -> io::Result<()> {
    let mut completed = 0;
    while completed < results.len() {
        uring.submit_and_wait(results.len() - completed)?;
        for entry in uring.completion() {
            let result = entry.result();
            results[entry.user_data() as usize] = Some(match usize::try_from(result) {
                Ok(written) => Ok(written),
                Err(_) => Err(io::Error::from_raw_os_error(-result)),
            });
            completed += 1;
        }
    }
    Ok(())
}

impl Ring {
    /// This thread's ring, made on first use, and made again if a batch left anything in it.
    fn get(&mut self) -> Option<&mut IoUring> {
        if let Self::Ready(uring) = self
            && !(uring.submission().is_empty() && uring.completion().is_empty())
        {
            *self = Self::Untried;
        }
        if let Self::Untried = self {
            *self = match IoUring::new(FANOUT_BATCH as u32) {
                Ok(uring) => Self::Ready(Box::new(uring)),
                Err(error) => {
                    warn_once(&error);
                    Self::Unavailable
                }
            };
        }
        match self {
            Self::Ready(uring) => Some(uring),
            _ => None,
        }
    }
}

fn warn_once(error: &io::Error) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(%error, "no io_uring; fan-out sends one socket at a time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn each_send_runs_in_the_ring_and_answers_for_itself() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = || {
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            (listener.accept().unwrap().0, client)
        };
        let (mut live, gone) = (open(), open());
        let (gone, peer) = gone;
        drop(peer); // the peer has gone: the first send draws a reset, the next one fails
        let _ = send_each(&[(gone.as_raw_fd(), b"x")]);
        let results = send_each(&[(live.0.as_raw_fd(), b"hello"), (gone.as_raw_fd(), b"world")]);
        assert_eq!(results.len(), 2, "this machine's kernel runs io_uring");
        assert_eq!(results[0].as_ref().unwrap().as_ref().unwrap(), &5);
        assert!(results[1].as_ref().unwrap().is_err(), "{:?}", results[1]);
        let mut received = [0; 5];
        live.1.read_exact(&mut received).unwrap();
        assert_eq!(&received, b"hello");
    }
}
