//! The deadline on each request head of an HTTP connection: a kept-alive connection may wait
//! `KEEPALIVE_TIMEOUT_MS` for its next request, and a head must be whole within
//! `HEADER_READ_TIMEOUT_MS` of its first byte (the first head: of the accept).
//!
//! hyper has one clock for both, its `header_read_timeout`, started when it begins to wait for
//! a head. [`HeadTimer`] is the timer that clock runs on: it gives each wait two phases, told
//! apart by whether the connection has received bytes since the wait began ([`HeadClock`]).

use hyper::rt::{Sleep, Timer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// "No bytes since the wait began."
const NOT_BEGUN: u64 = u64::MAX;

/// When the head a connection is waiting for began to arrive; shared by its reads and its timer.
pub struct HeadClock {
    /// The accept: offsets are counted from it, and the first head begins at it.
    origin: Instant,
    /// Nanoseconds after `origin` of the first byte since the wait began, or `NOT_BEGUN`.
    head_began: AtomicU64,
    /// The first wait keeps the accept as its head's start (the sniffer read its first bytes).
    first_wait: AtomicBool,
}

impl HeadClock {
    /// A clock for a connection accepted at `accepted_at`, its first head begun then.
    pub fn new(accepted_at: Instant) -> Arc<Self> {
        Arc::new(Self {
            origin: accepted_at,
            head_began: AtomicU64::new(0),
            first_wait: AtomicBool::new(true),
        })
    }

    /// The connection received bytes: if it was waiting idle, its next head has begun.
    pub fn saw_bytes(&self) {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(NOT_BEGUN - 1);
        let _ =
            self.head_began
                .compare_exchange(NOT_BEGUN, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// hyper begins to wait for a head (bytes of it already buffered are not seen again).
    fn wait_begins(&self) {
        if !self.first_wait.swap(false, Ordering::Relaxed) {
            self.head_began.store(NOT_BEGUN, Ordering::Relaxed);
        }
    }

    fn head_began(&self) -> Option<Instant> {
        match self.head_began.load(Ordering::Relaxed) {
            NOT_BEGUN => None,
            nanos => Some(self.origin + Duration::from_nanos(nanos)),
        }
    }
}

/// hyper's timer for one connection, its head deadline split into idle and reading.
pub struct HeadTimer {
    clock: Arc<HeadClock>,
    header_read: Duration,
    keep_alive: Duration,
}

impl HeadTimer {
    pub fn new(clock: Arc<HeadClock>, header_read: Duration, keep_alive: Duration) -> Self {
        Self {
            clock,
            header_read,
            keep_alive,
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(Plain(Box::pin(tokio::time::sleep(duration))))
    }

    /// hyper asks for its header read timeout (the deadline it passes is replaced).
    fn sleep_until(&self, _deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        self.clock.wait_begins();
        let wait_began = Instant::now();
        Box::pin(HeadSleep {
            clock: self.clock.clone(),
            idle_until: wait_began + self.keep_alive,
            header_read: self.header_read,
            sleep: Box::pin(tokio::time::sleep_until(wait_began + self.keep_alive)),
        })
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// The wait for one head: until `idle_until` while no byte came, then `header_read` after the
/// first one. hyper polls it whenever the connection reads, so it moves its deadline then.
struct HeadSleep {
    clock: Arc<HeadClock>,
    idle_until: Instant,
    header_read: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = match self.clock.head_began() {
            Some(began) => began + self.header_read,
            None => self.idle_until,
        };
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl Sleep for HeadSleep {}

/// Any other sleep hyper asks for.
struct Plain(Pin<Box<tokio::time::Sleep>>);

impl Future for Plain {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Sleep for Plain {}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(clock: &Arc<HeadClock>) -> HeadTimer {
        HeadTimer::new(
            clock.clone(),
            Duration::from_secs(1),
            Duration::from_secs(10),
        )
    }

    async fn fires_after(sleep: Pin<Box<dyn Sleep>>) -> Duration {
        let started = Instant::now();
        sleep.await;
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_head_has_the_header_timeout_from_the_accept() {
        let clock = HeadClock::new(Instant::now());
        tokio::time::advance(Duration::from_millis(400)).await;
        let sleep = timer(&clock).sleep_until(std::time::Instant::now());
        let waited = fires_after(sleep).await;
        assert_eq!(waited, Duration::from_millis(600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_wait_idles_for_the_keep_alive_then_gives_a_begun_head_the_header_timeout() {
        let clock = HeadClock::new(Instant::now());
        let timer = timer(&clock);
        drop(timer.sleep_until(std::time::Instant::now())); // the first request
        let idle = fires_after(timer.sleep_until(std::time::Instant::now())).await;
        assert_eq!(idle, Duration::from_secs(10));

        let mut sleep = timer.sleep_until(std::time::Instant::now());
        tokio::time::advance(Duration::from_secs(7)).await;
        clock.saw_bytes();
        let polled = futures::poll!(sleep.as_mut());
        assert!(polled.is_pending());
        assert_eq!(fires_after(sleep).await, Duration::from_secs(1));
    }
}
