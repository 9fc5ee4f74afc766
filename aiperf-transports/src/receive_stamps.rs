//! The kernel's receive time of what a TCP socket reads (`SO_TIMESTAMPNS`, Linux): when the
//! bytes reached this host, not when a busy process got round to reading them.
//!
//! A benchmark client on one core under a burst reads its sockets one after another; a stamp
//! taken when `read` returns then carries the client's own queueing (the `http` transport's
//! reads, at 2048 streams and a record processor sharing the core, ran tens of milliseconds
//! late). The kernel stamps each packet as it arrives (on loopback, as the server writes it),
//! and `recvmsg` hands that stamp over with the bytes: for a read that gathers several packets,
//! the last one's. `receive_with` returns it as a [`aiperf_core::clock::now_ns`] reading,
//! never later than the moment of the read.
//!
//! The mock server uses the same stamps for its requests' arrival (its truth log). On other
//! systems, or when the kernel refuses the option, [`enable`] says so and the callers stamp
//! reads with their own clock.

use std::io;

use tokio::net::TcpStream;

/// Asks the kernel to stamp the reads of `socket` (on a listening socket: of every connection
/// it accepts); returns whether it agreed. Linux turns the stamps on for its whole network
/// stack from a work queue, a moment after the first socket asks: packets in that moment carry
/// none, and their reads fall back to the reader's clock.
#[cfg(target_os = "linux")]
pub fn enable(socket: &impl std::os::fd::AsFd) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(socket, sockopt::ReceiveTimestampns, &true).is_ok()
}

/// Receive stamps are Linux's: elsewhere readers stamp with their own clock.
#[cfg(not(target_os = "linux"))]
pub fn enable<S>(_socket: &S) -> bool {
    false
}

/// The largest read `receive_with` makes.
const MAX_READ: usize = 16 * 1024;

thread_local! {
    /// Where reads land before they are handed on: `recvmsg` writes only into initialized
    /// memory, and zeroing a caller's free buffer room before every read cost more than
    /// copying the few hundred bytes a read brings. One per thread, zeroed once.
    static LANDING: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; MAX_READ].into_boxed_slice());
}

/// One non-blocking read of up to `max` bytes from `stream`, handed to `take`: how many bytes
/// were read and, when the kernel attached one, their receive time as a
/// [`aiperf_core::clock::now_ns`] reading. `WouldBlock` when nothing is there (call it through
/// [`TcpStream::try_io`]). `max` must be positive (a read of 0 bytes is the connection's end)
/// and at most [`MAX_READ`]. `take` must not read from a socket itself (it runs while the
/// landing buffer is borrowed).
fn receive_with(
    stream: &TcpStream,
    max: usize,
    take: impl FnOnce(&[u8]),
) -> io::Result<(usize, Option<u64>)> {
    debug_assert!(
        max > 0,
        "a read of no bytes would look like the connection's end"
    );
    LANDING.with_borrow_mut(|landing| {
        let (read, stamp) = receive(stream, &mut landing[..max])?;
        take(&landing[..read]);
        Ok((read, stamp))
    })
}

/// Runs a `receive_with` read inside `stream`'s [`TcpStream::try_io`], the way tokio's own
/// reads go: a read that did not fill its room emptied the socket, so the socket's readiness
/// is cleared (tokio clears only the readiness it saw before the read, never a newer event),
/// and the next read waits for the next packet instead of making a syscall that would find
/// nothing. Returns what the read returned, or `WouldBlock` when there was nothing to read.
pub fn try_receive_with(
    stream: &TcpStream,
    max: usize,
    take: impl FnOnce(&[u8]),
) -> io::Result<(usize, Option<u64>)> {
    let room = max.min(MAX_READ);
    let mut received = None;
    let result = stream.try_io(tokio::io::Interest::READABLE, || {
        let (read, stamp) = receive_with(stream, room, take)?;
        received = Some((read, stamp));
        if read > 0 && read < room {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    });
    // Without a read, `try_io` returned the error that stopped it.
    received.ok_or_else(|| {
        result
            .err()
            .unwrap_or_else(|| io::ErrorKind::WouldBlock.into())
    })
}

/// One non-blocking `recvmsg` from `stream` into `buf`, with its receive stamp.
#[cfg(target_os = "linux")]
fn receive(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [io::IoSliceMut::new(buf)];
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let mut received = None;
    // The bytes are off the socket now: control data that cannot be read (truncated by a
    // message nobody asked for) costs the stamp, never the bytes.
    let Ok(controls) = message.cmsgs() else {
        return Ok((message.bytes, None));
    };
    for control in controls {
        if let ControlMessageOwned::ScmTimestampns(time) = control {
            received = u64::try_from(time.tv_sec())
                .ok()
                .zip(u64::try_from(time.tv_nsec()).ok())
                .map(|(seconds, nanos)| {
                    aiperf_core::clock::from_unix_ns(seconds * 1_000_000_000 + nanos)
                });
        }
    }
    Ok((message.bytes, received))
}

/// Without receive stamps, a plain read.
#[cfg(not(target_os = "linux"))]
fn receive(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    stream.try_read(buf).map(|read| (read, None))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use aiperf_core::clock::now_ns;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn a_read_carries_the_time_its_bytes_arrived_not_the_time_it_was_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert!(enable(&listener), "the kernel stamps loopback reads");
        // The stack turns stamps on from a work queue: give it a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();

        let sent = now_ns();
        client.write_all(b"request").await.unwrap();
        // The bytes wait in the socket while the reader is busy elsewhere.
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.readable().await.unwrap();
        let mut got = Vec::new();
        let (read, stamp) = server
            .try_io(tokio::io::Interest::READABLE, || {
                receive_with(&server, 4, |bytes| got.extend_from_slice(bytes))
            })
            .unwrap();
        let handled = now_ns();
        assert_eq!(
            (read, &got[..]),
            (4, &b"requ"[..]),
            "at most the room asked for"
        );
        let arrived = stamp.expect("a stamp, inherited from the listener");
        assert!(arrived + 1_000_000 >= sent, "{arrived} vs sent {sent}");
        assert!(
            handled.saturating_sub(arrived) >= 40_000_000,
            "the stamp is when the bytes came ({} ms before the read), not when they were read",
            handled.saturating_sub(arrived) as f64 / 1e6
        );
    }
}
