//! The `http2` transport against a real HTTP/2-only server on 127.0.0.1: it must speak h2c with
//! prior knowledge (an HTTP/1.1 request would fail the connection), multiplex concurrent
//! requests over one connection, and stamp each server-sent event as it arrives.

#![cfg(feature = "http2")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aiperf_core::registry::Registry;
use aiperf_core::transport::{
    ResponseSink, Transport, TransportCategory, TransportContext, TransportRequest,
};
use aiperf_transports as _;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Gap between the two events of each response.
const EVENT_GAP: Duration = Duration::from_millis(100);

/// An HTTP/2-only server answering every request with two SSE events, `EVENT_GAP` apart;
/// counts the connections that carried requests and the streams in flight at once.
///
/// Connections that carried none are not counted: hyper's client pool, when a request finds
/// the pooled connection between its two attempts (waiting for one, opening one), finishes the
/// connection it began and then drops it unused, so a spare connection may be accepted and
/// closed without a single request on it.
struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most_in_flight = Arc::new(AtomicUsize::new(0));
        let (accepted, most) = (Arc::clone(&connections), Arc::clone(&most_in_flight));
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
                let accepted = Arc::clone(&accepted);
                let counted = Arc::new(AtomicBool::new(false));
                tokio::spawn(async move {
                    let service = service_fn(move |_: Request<Incoming>| {
                        if !counted.swap(true, Ordering::SeqCst) {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        let in_flight = Arc::clone(&in_flight);
                        let events = stream::iter(0..2).then(move |i| {
                            let in_flight = Arc::clone(&in_flight);
                            async move {
                                tokio::time::sleep(EVENT_GAP).await;
                                if i == 1 {
                                    in_flight.fetch_sub(1, Ordering::SeqCst);
                                }
                                let event = format!("data: {{\"i\":{i}}}\n\n");
                                Ok::<_, Infallible>(Frame::data(Bytes::from(event)))
                            }
                        });
                        let mut response = Response::new(StreamBody::new(events));
                        response.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("text/event-stream"),
                        );
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(connection), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            connections,
            most_in_flight,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_share_one_h2c_connection_and_are_stamped_on_arrival() {
    let server = Server::start().await;
    let ctx = TransportContext {
        url: Some(format!("http://{}", server.addr)),
        max_in_flight: 20,
        request_timeout: Some(Duration::from_secs(30)),
        ..TransportContext::default()
    };
    let transport: Arc<dyn Transport> = Registry::<TransportCategory>::builtins()
        .create_instance("http2", &ctx)
        .unwrap()
        .into();
    assert_eq!(
        transport.open_connections().await,
        1,
        "20 streams fit one connection"
    );
    let started = aiperf_core::clock::now_ns();
    let requests = (0..20).map(|i| {
        let transport = Arc::clone(&transport);
        tokio::spawn(async move {
            let mut sink = ResponseSink::default();
            let id = format!("req-{i}");
            let request = TransportRequest {
                correlation_id: "conv-1",
                path: "/v1/chat/completions",
                payload: Bytes::from_static(b"{}"),
                request_id: &id,
                streaming: true,
            };
            transport.send(request, &mut sink).await.map(|()| sink)
        })
    });
    let gap_ns = EVENT_GAP.as_nanos() as u64;
    let mut spread = 0;
    for request in futures_util::future::join_all(requests).await {
        let sink = request.unwrap().unwrap();
        assert_eq!(sink.status, Some(200));
        let data: Vec<&[u8]> = sink.chunks.iter().map(|c| &c.data[..]).collect();
        assert_eq!(data, [&b"{\"i\":0}"[..], b"{\"i\":1}"]);
        // Timers never fire early: each event is stamped no sooner than it was written.
        assert!(sink.chunks[0].received_ns >= started + gap_ns);
        assert!(sink.chunks[1].received_ns >= started + 2 * gap_ns);
        if sink.chunks[1].received_ns - sink.chunks[0].received_ns >= gap_ns / 2 {
            spread += 1;
        }
    }
    // Stamped on arrival, not when the body ended: the events of a response are apart (a
    // loaded machine may deliver a few together).
    assert!(
        spread >= 10,
        "only {spread} of 20 responses had their events apart"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "every request on one connection"
    );
    assert!(
        server.most_in_flight.load(Ordering::SeqCst) > 1,
        "requests were multiplexed, not sent one after another"
    );
}
