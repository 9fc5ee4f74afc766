//! The wire faults of `aiperf mock-server`: what only the server carrying the engine can break
//! (DESIGN.md §6). The engine picks every request's fault ([`aiperf_core::engine::Fault`]) and
//! makes its own (rate limits, stalls, invalid JSON, no usage, no `[DONE]`); the routes attach
//! the planned fault to the response ([`attach`]); [`apply`] then makes the wire ones:
//!
//! - reset before headers: the service fails, so hyper drops the connection (HTTP/1.1) or
//!   resets the stream (h2c) without a byte of response;
//! - reset mid-stream: the body fails before the chunk the fault hits (a whole body: halfway
//!   through it), so the response never ends properly: no last chunk of the chunked encoding
//!   (HTTP/1.1), a stream reset (h2c);
//! - malformed SSE: that chunk's event goes out without its `data: ` field name, a line that
//!   is no SSE field, which a conforming client ignores (the event carries no data);
//! - slow headers: the response is held back `--stall-ms` before its headers go out.
//!
//! The body faults count SSE events by body frames: the routes send each event as one frame. A
//! reset lets hyper flush what was sent before it fails the body, so the client receives
//! exactly the chunks before the one the fault hits.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aiperf_core::engine::{Engine, Fault, FaultConfig, PlannedFault};
use bytes::Bytes;
use http_body_util::Either;
use hyper::Response;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header::CONTENT_TYPE;

use super::routes::Body;

/// `aiperf mock-server`'s wire-fault flags, each a fraction of requests (0 to 1) chosen by the
/// seed and the request id; together with the engine's fault rates they may not exceed 1.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct WireFaultArgs {
    /// Fraction of requests whose connection is closed before any response header
    /// [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    reset_before_headers_rate: Option<f64>,
    /// Fraction of requests whose connection is cut halfway through the answer, without the
    /// end of the body [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    reset_mid_stream_rate: Option<f64>,
    /// Fraction of streams whose middle event is sent without its `data:` field name
    /// [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    malformed_sse_rate: Option<f64>,
    /// Fraction of requests whose response headers are sent --stall-ms late [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    slow_headers_rate: Option<f64>,
}

impl WireFaultArgs {
    /// Sets the rates given into `faults` (checked with the engine's configuration).
    pub(crate) fn apply_to(&self, faults: &mut FaultConfig) {
        let rates = [
            (Fault::ResetBeforeHeaders, self.reset_before_headers_rate),
            (Fault::ResetMidStream, self.reset_mid_stream_rate),
            (Fault::MalformedSse, self.malformed_sse_rate),
            (Fault::SlowHeaders, self.slow_headers_rate),
        ];
        for (fault, rate) in rates {
            if let Some(rate) = rate {
                faults.set_rate(fault, rate);
            }
        }
    }
}

/// A response body as served: the routes' own, or one a wire fault breaks.
pub(crate) type ServedBody = Either<Body, FaultyBody>;

/// Why the server broke a response on purpose.
#[derive(Debug)]
pub(crate) enum Abort {
    /// [`Fault::ResetBeforeHeaders`].
    BeforeHeaders,
    /// [`Fault::ResetMidStream`].
    MidStream,
    /// The routes' body failed (it never does: its errors are `Infallible`).
    Body(Box<dyn std::error::Error + Send + Sync>),
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BeforeHeaders => {
                f.write_str("injected fault: connection reset before the response headers")
            }
            Self::MidStream => f.write_str("injected fault: connection reset mid-stream"),
            Self::Body(error) => write!(f, "the response body failed: {error}"),
        }
    }
}

impl std::error::Error for Abort {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Body(error) => Some(error.as_ref()),
            Self::BeforeHeaders | Self::MidStream => None,
        }
    }
}

/// Marks `response` with the fault planned for its request, for [`apply`].
pub(crate) fn attach(response: &mut Response<Body>, fault: Option<PlannedFault>) {
    if let Some(fault) = fault {
        response.extensions_mut().insert(fault);
    }
}

/// Makes the wire fault attached to `response`, if any: an error aborts the exchange.
pub(crate) async fn apply(
    engine: &Engine,
    mut response: Response<Body>,
) -> Result<Response<ServedBody>, Abort> {
    let Some(planned) = response.extensions_mut().remove::<PlannedFault>() else {
        return Ok(response.map(Either::Left));
    };
    let streaming = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    let breaking = match planned.fault {
        Fault::ResetBeforeHeaders => return Err(Abort::BeforeHeaders),
        Fault::SlowHeaders => {
            tokio::time::sleep(engine.config().faults.stall).await;
            return Ok(response.map(Either::Left));
        }
        Fault::ResetMidStream => Breaking::Cut,
        Fault::MalformedSse if streaming => Breaking::DropDataField,
        // The engine's own faults are made already; malformed SSE needs a stream.
        _ => return Ok(response.map(Either::Left)),
    };
    Ok(response.map(|inner| {
        Either::Right(FaultyBody {
            inner,
            breaking,
            streaming,
            at_frame: planned.chunk,
            frames: 0,
            cut: Cut::No,
        })
    }))
}

/// What a [`FaultyBody`] does to its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaking {
    /// Fail instead of sending it (a whole body: after its first half).
    Cut,
    /// Send it without its leading `data: `.
    DropDataField,
}

/// A body broken at one frame by a wire fault.
#[derive(Debug)]
pub(crate) struct FaultyBody {
    inner: Body,
    breaking: Breaking,
    /// Whether the body is server-sent events (one event per frame) or one whole body.
    streaming: bool,
    /// The data frame to break: the chunk the fault hits.
    at_frame: u32,
    /// Data frames seen so far.
    frames: u32,
    /// Where a reset is.
    cut: Cut,
}

/// The steps of a reset: once the body must fail, it first yields once so that hyper flushes
/// the frames already written (it drops its write buffer with a failing body), then fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Not cut (yet).
    No,
    /// Cut: yield once to let what was sent be flushed.
    Flush,
    /// Fail now.
    Now,
}

impl HttpBody for FaultyBody {
    type Data = Bytes;
    type Error = Abort;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        match self.cut {
            Cut::No => {}
            Cut::Flush => {
                self.cut = Cut::Now;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Cut::Now => return Poll::Ready(Some(Err(Abort::MidStream))),
        }
        let frame = match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(error)) => return Poll::Ready(Some(Err(Abort::Body(error)))),
            Some(Ok(frame)) => frame,
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => return Poll::Ready(Some(Ok(frame))),
        };
        let index = self.frames;
        self.frames += 1;
        if index != self.at_frame {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let broken = match (self.breaking, self.streaming) {
            (Breaking::Cut, true) => {
                // The event the fault hits is never sent.
                self.cut = Cut::Now;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            (Breaking::Cut, false) => {
                self.cut = Cut::Flush;
                data.slice(..data.len() / 2)
            }
            (Breaking::DropDataField, _) => match data.strip_prefix(b"data: ") {
                Some(rest) => data.slice(data.len() - rest.len()..),
                None => data,
            },
        };
        Poll::Ready(Some(Ok(Frame::data(broken))))
    }

    fn is_end_stream(&self) -> bool {
        self.cut == Cut::No && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // The broken body is shorter than the routes' one: let hyper frame it as it goes.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::convert::Infallible;

    fn events(data: &[&'static str]) -> Body {
        let frames = data
            .iter()
            .map(|event| Ok::<_, Infallible>(Frame::data(Bytes::from(*event))))
            .collect::<Vec<_>>();
        Either::Right(StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync())
    }

    fn faulty(inner: Body, breaking: Breaking, streaming: bool, at_frame: u32) -> FaultyBody {
        FaultyBody {
            inner,
            breaking,
            streaming,
            at_frame,
            frames: 0,
            cut: Cut::No,
        }
    }

    /// Every frame until the end or an error: the data sent, and whether it failed.
    async fn drain(mut body: FaultyBody) -> (Vec<Bytes>, bool) {
        let mut sent = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => sent.push(frame.into_data().unwrap()),
                Err(_) => return (sent, true),
            }
        }
        (sent, false)
    }

    const STREAM: [&str; 4] = [
        "data: a\n\n",
        "data: b\n\n",
        "data: c\n\n",
        "data: [DONE]\n\n",
    ];

    #[tokio::test]
    async fn a_mid_stream_reset_sends_the_events_before_the_fault_then_fails() {
        let (sent, failed) = drain(faulty(events(&STREAM), Breaking::Cut, true, 1)).await;
        assert_eq!(sent, ["data: a\n\n"]);
        assert!(failed);
    }

    #[tokio::test]
    async fn a_reset_whole_body_sends_half_of_it_then_fails() {
        let whole = Either::Left(Full::new(Bytes::from_static(b"{\"id\":\"x\",\"o\":1}")));
        let (sent, failed) = drain(faulty(whole, Breaking::Cut, false, 0)).await;
        assert_eq!(sent, [Bytes::from_static(b"{\"id\":\"x")]);
        assert!(failed);
    }

    #[tokio::test]
    async fn malformed_sse_drops_the_data_field_name_of_one_event() {
        let (sent, failed) = drain(faulty(events(&STREAM), Breaking::DropDataField, true, 2)).await;
        assert_eq!(
            sent,
            ["data: a\n\n", "data: b\n\n", "c\n\n", "data: [DONE]\n\n"]
        );
        assert!(!failed);
    }

    #[test]
    fn wire_flags_set_their_faults_only() {
        let args = WireFaultArgs {
            slow_headers_rate: Some(0.5),
            reset_mid_stream_rate: Some(0.25),
            ..WireFaultArgs::default()
        };
        let mut faults = FaultConfig::default();
        args.apply_to(&mut faults);
        assert_eq!(faults.rate(Fault::SlowHeaders), 0.5);
        assert_eq!(faults.rate(Fault::ResetMidStream), 0.25);
        assert_eq!(faults.rate(Fault::ResetBeforeHeaders), 0.0);
        assert_eq!(faults.rate(Fault::NoDone), 0.0);
    }
}
