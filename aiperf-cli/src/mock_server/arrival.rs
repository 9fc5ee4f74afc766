//! When a request reached the server: the kernel's receive time of the bytes that completed it,
//! for the truth log's `arrival_ns`.
//!
//! The mock server answers on one core. When hundreds of requests come at once (the first wave
//! of a closed loop at concurrency 512), the last of them wait in the socket buffers for
//! milliseconds before hyper reads them. That wait is the server's (a real server queues the
//! same way, and its users see it), yet a stamp taken in the request handler would leave it
//! out of the truth and count it as the client's error. So the listening socket asks the
//! kernel for receive timestamps ([`aiperf_transports::receive_stamps`], Linux),
//! [`StampedStream`] reads with them and keeps the stamp of the latest read, and the handler
//! takes it as the request's arrival: hyper reads a request and calls the handler in one go, so
//! the latest read is the one that completed the request (over HTTP/2 several requests may
//! share a read, and its stamp). Elsewhere (or if the option is refused) the stamp is absent
//! and the handler's own clock reading stands.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use aiperf_core::clock;
use aiperf_transports::receive_stamps;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The latest receive time of one connection, in [`clock::now_ns`] units (0: none yet).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceivedAt(Arc<AtomicU64>);

impl ReceivedAt {
    /// When the request being handled arrived: the latest read's kernel stamp, or now when
    /// there is none (never later than now).
    pub(crate) fn arrival_ns(&self) -> u64 {
        let now = clock::now_ns();
        match self.0.load(Ordering::Relaxed) {
            0 => now,
            received => received.min(now),
        }
    }

    fn set(&self, received_ns: u64) {
        // 0 means "no stamp yet": a reading of 0 (the clock's first nanosecond) becomes 1.
        self.0.store(received_ns.max(1), Ordering::Relaxed);
    }
}

/// A TCP stream whose reads record the kernel's receive time in a [`ReceivedAt`].
#[derive(Debug)]
pub(crate) struct StampedStream {
    stream: TcpStream,
    received_at: ReceivedAt,
    /// Whether the kernel agreed to stamp this socket's reads.
    stamped: bool,
}

impl StampedStream {
    /// Wraps `stream`, accepted from a listener whose stamps are `stamped`
    /// ([`receive_stamps::enable`]: accepted sockets inherit them); returns it with the handle
    /// its requests' handler reads the stamps from.
    pub(crate) fn new(stream: TcpStream, stamped: bool) -> (Self, ReceivedAt) {
        let received_at = ReceivedAt::default();
        let stamped_stream = Self {
            stream,
            received_at: received_at.clone(),
            stamped,
        };
        (stamped_stream, received_at)
    }
}

impl AsyncRead for StampedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.stamped || buf.remaining() == 0 {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        loop {
            std::task::ready!(this.stream.poll_read_ready(cx))?;
            let room = buf.remaining();
            match receive_stamps::try_receive_with(&this.stream, room, |bytes| {
                buf.put_slice(bytes);
            }) {
                Ok((_read, received_ns)) => {
                    // A read the kernel did not stamp is timed now, never by an older read.
                    this.received_at
                        .set(received_ns.unwrap_or_else(clock::now_ns));
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn reads_carry_the_time_the_bytes_arrived_not_the_time_they_were_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stamped = receive_stamps::enable(&listener);
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let (mut server, received_at) = StampedStream::new(accepted, stamped);
        assert!(server.stamped, "the kernel stamps loopback reads");
        // Linux turns receive stamps on for the whole stack from a work queue: the first
        // socket asking may miss a few of its first packets.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;

        let sent = clock::now_ns();
        client.write_all(b"request").await.unwrap();
        // The bytes wait in the socket while the server is busy elsewhere.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut buf = [0; 16];
        let read = server.read(&mut buf).await.unwrap();
        let handled = clock::now_ns();
        assert_eq!(&buf[..read], b"request");
        let arrived = received_at.arrival_ns();
        assert!(
            arrived >= sent.saturating_sub(1_000_000),
            "{arrived} vs sent {sent}"
        );
        assert!(
            handled.saturating_sub(arrived) >= 40_000_000,
            "the arrival is when the bytes came ({} ms before the read), not when they were read",
            (handled - arrived) as f64 / 1e6
        );
    }

    #[test]
    fn without_a_stamp_the_arrival_is_now() {
        let received_at = ReceivedAt::default();
        let before = clock::now_ns();
        assert!(received_at.arrival_ns() >= before);
    }
}
