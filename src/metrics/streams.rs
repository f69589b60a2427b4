//! Open streams by transport and path: a gauge each, moved by a guard the stream holds.

use super::Registry;
use metrics::{Counter, Gauge};

pub(super) const OPEN: &str = "jobcast_streams_open";
pub(super) const OPENED: &str = "jobcast_streams_opened_total";

/// How a stream reaches its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Sse = 0,
    WebSocket = 1,
    LongPoll = 2,
}

/// Which implementation serves a stream: straight on the socket, or through the axum router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamPath {
    Direct = 0,
    Axum = 1,
}

impl Transport {
    const ALL: [Self; 3] = [Self::Sse, Self::WebSocket, Self::LongPoll];

    fn label(self) -> &'static str {
        match self {
            Self::Sse => "sse",
            Self::WebSocket => "websocket",
            Self::LongPoll => "longpoll",
        }
    }
}

impl StreamPath {
    const ALL: [Self; 2] = [Self::Direct, Self::Axum];

    fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Axum => "axum",
        }
    }
}

/// The gauges and counters of every transport and path, registered once.
pub struct Streams {
    open: [[Gauge; 2]; 3],
    opened: [[Counter; 2]; 3],
}

impl Streams {
    pub(super) fn new(registry: &Registry) -> Self {
        let labels = |transport: Transport, path: StreamPath| {
            [("transport", transport.label()), ("path", path.label())]
        };
        let open = Transport::ALL.map(|transport| {
            StreamPath::ALL.map(|path| registry.gauge(OPEN, &labels(transport, path)))
        });
        let opened = Transport::ALL.map(|transport| {
            StreamPath::ALL.map(|path| registry.counter(OPENED, &labels(transport, path)))
        });
        Self { open, opened }
    }

    /// Counts a stream opened; it is open until the guard drops.
    pub fn open(&self, transport: Transport, path: StreamPath) -> OpenStream {
        let gauge = self.open[transport as usize][path as usize].clone();
        self.opened[transport as usize][path as usize].increment(1);
        gauge.increment(1);
        OpenStream(gauge)
    }
}

/// A stream counted as open; dropping it counts it closed.
pub struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}
