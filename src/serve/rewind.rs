//! A connection handed to HTTP: its first bytes, already read, replayed before the rest.

use super::deadline::HeadClock;
use super::limit::ConnectionSlot;
use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP connection handed to HTTP after the sniffer read its first bytes.
pub struct Rewound {
    prefix: Bytes,
    inner: TcpStream,
    /// The connection's place under `MAX_CONNECTIONS`: it lives as long as the socket, through a
    /// WebSocket upgrade too (hyper hands this whole value to the upgraded connection).
    _slot: ConnectionSlot,
    /// Told of every read that brings bytes: when a request head began is its deadline's start.
    clock: Arc<HeadClock>,
}

impl Rewound {
    pub fn new(
        prefix: Bytes,
        inner: TcpStream,
        slot: ConnectionSlot,
        clock: Arc<HeadClock>,
    ) -> Self {
        Self {
            prefix,
            inner,
            _slot: slot,
            clock,
        }
    }
}

impl AsyncRead for Rewound {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if !self.prefix.has_remaining() {
                self.prefix = Bytes::new(); // frees the sniffer's buffer for the connection's life
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.saw_bytes();
        }
        read
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_prefix_is_read_first_then_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b" world").await.unwrap();
        drop(client);
        let slot = std::sync::Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .unwrap();
        let clock = HeadClock::new(tokio::time::Instant::now());
        let mut rewound = Rewound::new(Bytes::from_static(b"hello"), server, slot, clock);
        let mut text = String::new();
        rewound.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "hello world");
    }
}
