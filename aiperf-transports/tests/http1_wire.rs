//! The `http` transport's own HTTP/1.1 client against a raw TCP server on 127.0.0.1 that writes
//! exactly the bytes each test scripts: chunked framing split anywhere, bodies delimited by the
//! connection's end, `Connection: close`, kept-alive connections the server closed meanwhile,
//! malformed heads, and when a request's start is stamped.

#![cfg(feature = "http")]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiperf_core::clock::now_ns;
use aiperf_core::registry::Registry;
use aiperf_core::transport::{
    ResponseSink, Transport, TransportCategory, TransportContext, TransportErrorKind,
    TransportRequest,
};
use aiperf_transports as _;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Gap between two writes the client must see as two reads.
const WRITE_GAP: Duration = Duration::from_millis(40);

/// What the server saw and when.
#[derive(Default)]
struct Seen {
    /// Connections accepted.
    connections: AtomicUsize,
    /// Each request's head, in arrival order.
    heads: Mutex<Vec<String>>,
    /// [`now_ns`] when each request's head had arrived.
    arrived_ns: Mutex<Vec<u64>>,
    /// [`now_ns`] just before each scripted write.
    written_ns: Mutex<Vec<u64>>,
}

type Handler =
    fn(usize, TcpStream, Arc<Seen>) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A server whose every connection runs `handler(connection_index, stream, seen)`.
async fn start(handler: Handler) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let accepted = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let index = accepted.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(handler(index, stream, Arc::clone(&accepted)));
        }
    });
    (addr, seen)
}

/// Reads one request (head and `Content-Length` body) and records it; `false` when the client
/// closed the connection instead.
async fn read_request(stream: &mut TcpStream, seen: &Seen) -> bool {
    let mut bytes = Vec::new();
    let mut piece = [0; 4096];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut piece).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => bytes.extend_from_slice(&piece[..n]),
        }
    };
    seen.arrived_ns.lock().unwrap().push(now_ns());
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .map_or(0, |value| value.trim().parse().unwrap());
    while bytes.len() < head_end + length {
        match stream.read(&mut piece).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => bytes.extend_from_slice(&piece[..n]),
        }
    }
    seen.heads.lock().unwrap().push(head);
    true
}

/// Writes `bytes`, stamping the write first.
async fn write(stream: &mut TcpStream, seen: &Seen, bytes: &[u8]) {
    seen.written_ns.lock().unwrap().push(now_ns());
    stream.write_all(bytes).await.unwrap();
}

fn transport(addr: SocketAddr, max_in_flight: usize) -> Box<dyn Transport> {
    let ctx = TransportContext {
        url: Some(format!("http://{addr}")),
        max_in_flight,
        request_timeout: Some(Duration::from_secs(10)),
        ..TransportContext::default()
    };
    Registry::<TransportCategory>::builtins()
        .create_instance("http", &ctx)
        .unwrap()
}

async fn send(
    transport: &dyn Transport,
    streaming: bool,
) -> (
    ResponseSink,
    Result<(), aiperf_core::transport::TransportError>,
) {
    let mut sink = ResponseSink::default();
    let request = TransportRequest {
        correlation_id: "conv-1",
        path: "/v1/chat/completions",
        payload: Bytes::from_static(b"{\"model\":\"m\"}"),
        request_id: "req-1",
        streaming,
    };
    let result = transport.send(request, &mut sink).await;
    (sink, result)
}

const SMALL: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

#[tokio::test]
async fn chunked_events_split_anywhere_are_stamped_by_the_read_that_completed_them() {
    let (addr, seen) = start(|_, mut stream, seen| {
        Box::pin(async move {
            read_request(&mut stream, &seen).await;
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                         Transfer-Encoding: chunked\r\n\r\n";
            // Event 1 whole; event 2 cut inside its chunk's data; then the last chunk.
            let pieces: [&[u8]; 3] = [
                b"a\r\ndata: 1\n\n\r\n10\r\ndata: tw",
                b"o-two\n\n\r\n",
                b"0\r\n\r\n",
            ];
            write(&mut stream, &seen, head).await;
            for piece in pieces {
                write(&mut stream, &seen, piece).await;
                tokio::time::sleep(WRITE_GAP).await;
            }
            read_request(&mut stream, &seen).await;
        })
    })
    .await;
    let transport = transport(addr, 1);
    let (sink, result) = send(&*transport, true).await;
    result.unwrap();
    let data: Vec<&[u8]> = sink.chunks.iter().map(|c| &c.data[..]).collect();
    assert_eq!(data, [&b"1"[..], b"two-two"]);
    let written = seen.written_ns.lock().unwrap().clone();
    assert!(sink.chunks[0].received_ns >= written[1]);
    assert!(
        sink.chunks[1].received_ns >= written[2],
        "the second event is stamped by the read of its end, not of its start"
    );
    let head = &seen.heads.lock().unwrap()[0];
    assert!(
        head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("x-request-id: req-1\r\n") && head.contains("accept: text/event-stream\r\n")
    );
    assert!(head.contains(&format!("Host: {addr}\r\n")), "{head}");
}

#[tokio::test]
async fn a_body_delimited_by_the_connection_end_is_read_whole_and_ends_the_connection() {
    let (addr, seen) = start(|_, mut stream, seen| {
        Box::pin(async move {
            read_request(&mut stream, &seen).await;
            write(
                &mut stream,
                &seen,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":",
            )
            .await;
            tokio::time::sleep(WRITE_GAP).await;
            write(&mut stream, &seen, b"1}").await;
        })
    })
    .await;
    let transport = transport(addr, 1);
    for _ in 0..2 {
        let (sink, result) = send(&*transport, false).await;
        result.unwrap();
        assert_eq!(sink.chunks.len(), 1);
        assert_eq!(sink.chunks[0].data, "{\"a\":1}");
    }
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        2,
        "one connection per such body"
    );
}

#[tokio::test]
async fn connection_close_is_honoured_without_a_failed_attempt() {
    let (addr, seen) = start(|_, mut stream, seen| {
        Box::pin(async move {
            while read_request(&mut stream, &seen).await {
                let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
                write(&mut stream, &seen, close).await;
            }
        })
    })
    .await;
    let transport = transport(addr, 1);
    for _ in 0..3 {
        send(&*transport, false).await.1.unwrap();
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    assert_eq!(
        seen.heads.lock().unwrap().len(),
        3,
        "no request was sent twice"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_the_server_closed_is_replaced_and_the_request_sent_again() {
    // Each connection answers one request in keep-alive terms, then the server drops it (an
    // idle timeout in a real server): the client only finds out on its next request.
    let (addr, seen) = start(|_, mut stream, seen| {
        Box::pin(async move {
            if read_request(&mut stream, &seen).await {
                write(&mut stream, &seen, SMALL).await;
            }
        })
    })
    .await;
    let transport = transport(addr, 1);
    for request in 0..3 {
        let (sink, result) = send(&*transport, false).await;
        assert!(result.is_ok(), "request {request}: {result:?}");
        assert_eq!(sink.chunks[0].data, "{}");
        // Each went on a connection opened for it: the first found none, the others found
        // theirs closed and opened another.
        let trace = sink.http_trace.unwrap();
        assert!(!trace.connection_reused, "request {request}: {trace:?}");
        assert!(trace.connecting_ns > 0, "request {request}: {trace:?}");
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    assert_eq!(
        seen.heads.lock().unwrap().len(),
        3,
        "each request answered once"
    );
}

#[tokio::test]
async fn a_new_connection_closed_before_answering_is_an_error_not_a_retry() {
    let (addr, seen) = start(|_, mut stream, seen| {
        Box::pin(async move {
            read_request(&mut stream, &seen).await;
        })
    })
    .await;
    let transport = transport(addr, 1);
    let (sink, result) = send(&*transport, true).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind, TransportErrorKind::Protocol);
    assert!(
        error.message.contains("before a response arrived"),
        "{}",
        error.message
    );
    assert_eq!(sink.status, None);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "not sent again");
}

#[tokio::test]
async fn an_ipv6_url_connects_and_names_its_host_in_brackets() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here: nothing to check");
        return;
    };
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let server = Arc::clone(&seen);
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream, &server).await;
        write(&mut stream, &server, SMALL).await;
    });
    let transport = transport(addr, 1);
    let (sink, result) = send(&*transport, false).await;
    result.unwrap();
    assert_eq!(sink.chunks[0].data, "{}");
    let head = &seen.heads.lock().unwrap()[0];
    assert!(
        head.contains(&format!("Host: [::1]:{}\r\n", addr.port())),
        "{head}"
    );
}

#[tokio::test]
async fn a_malformed_head_is_a_protocol_error_that_names_it() {
    let (addr, _seen) = start(|_, mut stream, seen| {
        Box::pin(async move {
            read_request(&mut stream, &seen).await;
            write(&mut stream, &seen, b"SMTP ready\r\n\r\n").await;
        })
    })
    .await;
    let transport = transport(addr, 1);
    let error = send(&*transport, false).await.1.unwrap_err();
    assert_eq!(error.kind, TransportErrorKind::Protocol);
    assert!(
        error.message.contains("malformed response head"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_request_starts_when_its_bytes_are_written_not_when_it_was_handed_over() {
    let (addr, seen) = start(|_, mut stream, seen| {
        Box::pin(async move {
            while read_request(&mut stream, &seen).await {
                write(&mut stream, &seen, SMALL).await;
            }
        })
    })
    .await;
    let transport = transport(addr, 1);
    // A connection opened for the request: its start is before the connect.
    let before_first = now_ns();
    let (first, result) = send(&*transport, false).await;
    result.unwrap();
    let first_sent = first.sent_ns.expect("stamped by the transport");
    let arrived = seen.arrived_ns.lock().unwrap().clone();
    assert!(before_first <= first_sent && first_sent <= arrived[0]);
    // A kept-alive connection: its start is the write, after the hand-over.
    let handed_over = now_ns();
    let (second, result) = send(&*transport, false).await;
    result.unwrap();
    let second_sent = second.sent_ns.unwrap();
    let arrived = seen.arrived_ns.lock().unwrap().clone();
    assert!(handed_over <= second_sent && second_sent <= arrived[1]);
    assert!(second.ack_ns.unwrap() >= arrived[1]);
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "the second reused the first's"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn an_event_read_late_keeps_the_time_it_arrived() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, AtomicU64};

    // A server on a thread of its own, so that it writes while the client's only thread is
    // blocked: one answer to warm the connection (and the kernel's stamps) up, then a stream
    // whose head is read at once and whose event comes only once the client is busy.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let head_written = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let written_ns = Arc::new(AtomicU64::new(0));
    let (head_flag, go_flag, stamp) = (
        Arc::clone(&head_written),
        Arc::clone(&go),
        Arc::clone(&written_ns),
    );
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // Each write leaves at once, not held for the client's (delayed) ACK of the last.
        stream.set_nodelay(true).unwrap();
        let mut request = [0; 4096];
        let _ = stream.read(&mut request).unwrap();
        stream.write_all(SMALL).unwrap();
        let _ = stream.read(&mut request).unwrap();
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 9\r\n\r\n";
        stream.write_all(head).unwrap();
        head_flag.store(true, Ordering::SeqCst);
        while !go_flag.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_micros(100));
        }
        stamp.store(now_ns(), Ordering::SeqCst);
        stream.write_all(b"data: 1\n\n").unwrap();
        std::thread::sleep(Duration::from_millis(500));
    });
    let transport: Arc<dyn Transport> = transport(addr, 1).into();
    send(&*transport, false).await.1.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let streaming = tokio::spawn({
        let transport = Arc::clone(&transport);
        async move { send(&*transport, true).await }
    });
    // Let the client read the head, then block its one thread and only then let the event go.
    while !head_written.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let blocked_ns = now_ns();
    go.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(60));
    let read_after = now_ns();
    let (sink, result) = streaming.await.unwrap();
    result.unwrap();
    let received_ns = sink.chunks[0].received_ns;
    let written_ns = written_ns.load(Ordering::SeqCst);
    assert!(
        written_ns >= blocked_ns && read_after - written_ns >= 40_000_000,
        "the event was written while the client was blocked"
    );
    assert!(
        received_ns >= written_ns && received_ns - written_ns < 20_000_000,
        "stamped {:.1} ms after the write, though read {:.1} ms after it",
        (received_ns as f64 - written_ns as f64) / 1e6,
        (read_after - written_ns) as f64 / 1e6
    );
}

#[tokio::test]
async fn the_http_trace_counts_each_exchange_s_connection_data_and_reads_as_aiperf_does() {
    /// How long the server waits between the first response's head and its body.
    const THINKING: Duration = Duration::from_millis(50);
    const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                                 Transfer-Encoding: chunked\r\n\r\n";
    /// One chunk holding one event: `data: 1` and its blank line, 9 bytes of data.
    const EVENT: &[u8] = b"9\r\ndata: 1\n\n\r\n";
    const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
    /// A whole body of 5 bytes, sent in two writes.
    const WHOLE_HEAD_AND_START: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n[1,";
    const WHOLE_END: &[u8] = b"2]";
    let (addr, seen) = start(|_, mut stream, seen| {
        Box::pin(async move {
            read_request(&mut stream, &seen).await;
            write(&mut stream, &seen, STREAM_HEAD).await;
            tokio::time::sleep(THINKING).await;
            write(&mut stream, &seen, EVENT).await;
            tokio::time::sleep(WRITE_GAP).await;
            write(&mut stream, &seen, EVENT).await;
            tokio::time::sleep(WRITE_GAP).await;
            write(&mut stream, &seen, LAST_CHUNK).await;
            // The second request, on the same connection: a whole body, cut in two.
            read_request(&mut stream, &seen).await;
            write(&mut stream, &seen, WHOLE_HEAD_AND_START).await;
            tokio::time::sleep(WRITE_GAP).await;
            write(&mut stream, &seen, WHOLE_END).await;
            read_request(&mut stream, &seen).await;
        })
    })
    .await;
    let transport = transport(addr, 1);
    let request_body = br#"{"model":"m"}"#.len() as u64;

    let (sink, result) = send(&*transport, true).await;
    result.unwrap();
    let first = sink.http_trace.expect("the http:// client records a trace");
    let written = seen.written_ns.lock().unwrap().clone();
    assert!(!first.connection_reused, "{first:?}");
    assert!(first.connecting_ns > 0, "{first:?}");
    assert_eq!(
        first.connection_overhead_ns(),
        first.dns_lookup_ns + first.connecting_ns
    );
    // Bodies only, as AIPerf counts them: the request's, and the events' data without the
    // chunks' framing.
    assert_eq!(first.body_bytes_sent, request_body, "{first:?}");
    assert_eq!(first.writes, 1, "{first:?}");
    assert_eq!(first.body_bytes_received, 18, "{first:?}");
    assert_eq!(
        first.body_reads, 2,
        "the last chunk yields no data: {first:?}"
    );
    // Waiting runs to the body's first data, not to the head, which came at once.
    let waiting = first.waiting_ns().unwrap();
    assert!(waiting >= THINKING.as_nanos() as u64, "{first:?}");
    assert!(first.body_first_ns.unwrap() >= written[1], "{first:?}");
    let receiving = first.receiving_ns().unwrap();
    assert!(receiving >= WRITE_GAP.as_nanos() as u64, "{first:?}");
    assert!(
        first.body_last_ns.unwrap() < written[3],
        "the receiving ends with the last data, not the last chunk: {first:?}"
    );
    assert_eq!(
        first.duration_ns().unwrap(),
        first.sending_ns() + waiting + receiving
    );

    let (sink, result) = send(&*transport, false).await;
    result.unwrap();
    assert_eq!(sink.chunks[0].data, "[1,2]");
    let second = sink.http_trace.unwrap();
    assert!(second.connection_reused, "{second:?}");
    assert_eq!(second.connection_overhead_ns(), 0, "{second:?}");
    assert_eq!(second.body_bytes_sent, request_body, "{second:?}");
    assert_eq!(second.body_bytes_received, 5, "{second:?}");
    // A body taken whole is one chunk, arrived with its last bytes: waiting runs to them.
    assert_eq!(second.body_reads, 1, "{second:?}");
    assert_eq!(second.receiving_ns(), Some(0), "{second:?}");
    let whole_end_written = seen.written_ns.lock().unwrap()[5];
    assert!(
        second.body_first_ns.unwrap() >= whole_end_written,
        "{second:?}"
    );
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}
