//! The simulated LLM engine behind the embedded default (DESIGN.md §6): the `in_engine`
//! transport runs it inside the process and `aiperf mock-server` serves it over HTTP, so both
//! have known truth.
//!
//! In the data flow (DESIGN.md §4) the engine stands where the server is: it takes the bytes an
//! [`crate::endpoint::Endpoint`] wrote and answers with what an OpenAI-compatible server sends,
//! at the times a real engine would send them:
//!
//! 1. [`Engine::start`] reads the request ([`request`]), counts its prompt tokens with the
//!    builtin tokenizer, and decides its fate from the seed and the request id (`outcome`):
//!    an injected error, or an output length and finish reason, and any injected fault
//!    (`faults`: rate limiting, stalls, broken JSON, streams without `[DONE]` or usage; the
//!    wire faults are left to the server carrying the engine).
//! 2. [`Generation::next`] admits it (at most `max_batch` generate at once, the rest wait in
//!    FIFO order, `admission`), then produces each piece at its absolute deadline: the first
//!    token at `ttft + prefill_per_input_token × input tokens` after admission, then one chunk of
//!    `tokens_per_chunk` tokens every `itl × tokens_per_chunk`. Pieces are rendered as OpenAI
//!    JSON ([`openai_render`]) into a caller's buffer.
//! 3. When the generation ends (or is dropped), its [`TruthRecord`] goes to the engine's truth
//!    sink, so a benchmark can pair the server's timings with its own by `X-Request-ID`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use aiperf_core::engine::{Engine, EngineConfig};
//!
//! let engine = Engine::new(EngineConfig::default())?;
//! let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
//! let mut generation =
//!     engine.start("/v1/chat/completions", body, Some("req-1"), aiperf_core::clock::now_ns())?;
//! let mut out = bytes::BytesMut::new();
//! while let Some(produced_ns) = generation.next(&mut out).await {
//!     let event = out.split().freeze(); // one SSE event's data: a chunk JSON, then `[DONE]`
//!     println!("{produced_ns}: {}", String::from_utf8_lossy(&event));
//! }
//! # Ok(()) }
//! ```

mod admission;
mod faults;
mod generation;
pub mod openai_render;
mod outcome;
mod prompt_tokens;
pub mod request;
mod truth;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::clock;

use admission::Admission;
pub use faults::{
    Fault, FaultConfig, FaultConfigError, FaultLayer, INVALID_JSON_KEPT_BYTES, PlannedFault,
};
pub use generation::Generation;
use outcome::Outcome;
pub use request::{RequestError, Route};
pub use truth::TruthRecord;

/// How the simulated engine behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Time from admission to the first token, before the prefill cost.
    pub ttft: Duration,
    /// Time between consecutive tokens.
    pub itl: Duration,
    /// Tokens sent per streamed chunk.
    pub tokens_per_chunk: u32,
    /// Output length when the request sets no `max_tokens`.
    pub default_output_tokens: u32,
    /// Extra time to first token per input token.
    pub prefill_per_input_token: Duration,
    /// Requests served at once; beyond it requests queue.
    pub max_batch: usize,
    /// Fraction of requests answered with an error status (0 to 1).
    pub error_rate: f64,
    /// The status of the requests the error rate picks (400 to 599; 500 by default).
    pub error_status: u16,
    /// Probability, per token after `min_tokens`, that the answer ends early with finish
    /// reason `stop` (0 to 1; requests with `ignore_eos` never end early).
    pub eos_rate: f64,
    /// The faults injected on purpose, and how often.
    pub faults: FaultConfig,
    /// Seed of the engine's random choices (errors, EOS, answer words, faults).
    pub seed: u64,
    /// The model name `/v1/models` reports; requests may name any model, and responses echo it.
    pub model: String,
}

impl Default for EngineConfig {
    /// A quick, realistic-looking engine: a 64-token answer takes about 150 ms, so a 10-request
    /// profile at concurrency 1 finishes in under two seconds.
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(20),
            itl: Duration::from_millis(2),
            tokens_per_chunk: 1,
            default_output_tokens: 64,
            prefill_per_input_token: Duration::ZERO,
            max_batch: 256,
            error_rate: 0.0,
            error_status: 500,
            eos_rate: 0.0,
            faults: FaultConfig::default(),
            seed: 0,
            model: "aiperf-simulated".to_owned(),
        }
    }
}

/// An [`EngineConfig`] that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineConfigError {
    /// `tokens_per_chunk` is 0.
    #[error("the engine's tokens per chunk is 0: set it to 1 or more")]
    ZeroTokensPerChunk,
    /// `default_output_tokens` is 0.
    #[error("the engine's default output length is 0 tokens: set it to 1 or more")]
    ZeroOutputTokens,
    /// `max_batch` is 0.
    #[error("the engine's max batch is 0, so no request could ever run: set it to 1 or more")]
    ZeroMaxBatch,
    /// A probability outside [0, 1].
    #[error("the engine's {name} is {value}: set a fraction between 0 and 1")]
    NotAFraction {
        /// Which setting (`error rate`, `eos rate`).
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// An error status that is not an HTTP error.
    #[error("the engine's error status is {status}: set an HTTP error status from 400 to 599")]
    NotAnErrorStatus {
        /// The status given.
        status: u16,
    },
    /// The fault rates cannot be used.
    #[error(transparent)]
    Faults(#[from] FaultConfigError),
}

impl EngineConfig {
    /// Checks that the engine can run with these settings.
    pub fn validate(&self) -> Result<(), EngineConfigError> {
        if self.tokens_per_chunk == 0 {
            return Err(EngineConfigError::ZeroTokensPerChunk);
        }
        if self.default_output_tokens == 0 {
            return Err(EngineConfigError::ZeroOutputTokens);
        }
        if self.max_batch == 0 {
            return Err(EngineConfigError::ZeroMaxBatch);
        }
        for (name, value) in [("error rate", self.error_rate), ("eos rate", self.eos_rate)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(EngineConfigError::NotAFraction { name, value });
            }
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(EngineConfigError::NotAnErrorStatus {
                status: self.error_status,
            });
        }
        self.faults.validate()?;
        Ok(())
    }
}

/// Where finished requests' [`TruthRecord`]s go. Called once per request from the task that
/// served it, so it must not block (send to a channel, as `aiperf mock-server --truth-log` does).
pub type TruthSink = Box<dyn Fn(TruthRecord) + Send + Sync>;

/// A request the engine answered with an error instead of a generation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request could not be read, or went to a path the engine does not serve.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The request was picked to fail by the engine's error rate.
    #[error(
        "simulated server error: the engine fails this fraction of requests on purpose ({rate})"
    )]
    Injected {
        /// The configured error rate.
        rate: f64,
        /// The status it is answered with.
        status: u16,
    },
    /// The request was picked by the rate-limit fault ([`Fault::RateLimited`]).
    #[error(
        "simulated rate limit: the engine refuses this fraction of requests on purpose ({rate}); \
         retry after {retry_after_seconds} s"
    )]
    RateLimited {
        /// The configured rate.
        rate: f64,
        /// The `retry-after` the server sends, in seconds.
        retry_after_seconds: u32,
    },
}

impl EngineError {
    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Request(error) => error.status(),
            Self::Injected { status, .. } => *status,
            Self::RateLimited { .. } => 429,
        }
    }

    /// The `retry-after` header (seconds) a server sends with this error, if any.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            Self::RateLimited {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            Self::Request(_) | Self::Injected { .. } => None,
        }
    }

    /// The OpenAI-style error body (`{"error":{"message":..,"type":..,"param":null,"code":..}}`).
    pub fn openai_body(&self) -> Bytes {
        openai_render::error_body(self.status(), &self.to_string())
    }
}

/// The simulated engine: cheap to clone, shared by every request it serves.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .field("has_truth_sink", &self.shared.truth_sink.is_some())
            .finish_non_exhaustive()
    }
}

/// What every generation of one engine shares.
struct Shared {
    config: EngineConfig,
    admission: Admission,
    /// Numbers requests: response ids, and the ids of requests that came without one.
    next_sequence: AtomicU64,
    truth_sink: Option<TruthSink>,
    models_body: Bytes,
}

impl Engine {
    /// An engine with these settings and no truth sink.
    pub fn new(config: EngineConfig) -> Result<Self, EngineConfigError> {
        Self::build(config, None)
    }

    /// An engine that hands every request's [`TruthRecord`] to `sink` when the request ends.
    pub fn with_truth_sink(
        config: EngineConfig,
        sink: impl Fn(TruthRecord) + Send + Sync + 'static,
    ) -> Result<Self, EngineConfigError> {
        Self::build(config, Some(Box::new(sink)))
    }

    fn build(
        config: EngineConfig,
        truth_sink: Option<TruthSink>,
    ) -> Result<Self, EngineConfigError> {
        config.validate()?;
        let created = clock::to_unix_ns(clock::now_ns()) / 1_000_000_000;
        Ok(Self {
            shared: Arc::new(Shared {
                admission: Admission::new(config.max_batch),
                models_body: openai_render::models_body(&config.model, created),
                config,
                next_sequence: AtomicU64::new(0),
                truth_sink,
            }),
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// The `/v1/models` body: one model, [`EngineConfig::model`].
    pub fn models_body(&self) -> Bytes {
        self.shared.models_body.clone()
    }

    /// Starts serving one request: `path` is the URL path it was sent to, `body` its JSON,
    /// `request_id` its `X-Request-ID` (one is generated when absent) and `arrival_ns` when it
    /// arrived ([`clock::now_ns`]).
    ///
    /// Reading the request counts its prompt as the builtin tokenizer would, whose pattern is
    /// compiled on first use (a few milliseconds): call
    /// [`crate::tokenizer::Tokenizer::warm_up_in_background`] at start-up to keep that off the
    /// first request. A request that cannot be read, that the
    /// error rate picks or that gets the [`Fault::RateLimited`] fault is answered with an
    /// [`EngineError`] (and its truth record is sent at once); any other fault it gets is
    /// carried by its [`Generation`] ([`Generation::fault`]).
    pub fn start(
        &self,
        path: &str,
        body: &[u8],
        request_id: Option<&str>,
        arrival_ns: u64,
    ) -> Result<Generation, EngineError> {
        let shared = &self.shared;
        let sequence = shared.next_sequence.fetch_add(1, Ordering::Relaxed);
        let generated_id;
        let request_id = match request_id {
            Some(id) => id,
            None => {
                generated_id = format!("engine-{sequence}");
                &generated_id
            }
        };
        let outcome = Outcome::for_request(shared.config.seed, request_id.as_bytes());
        let fault = shared.config.faults.pick(outcome.fault_draw);
        // The truth record names the request only when someone reads it.
        let mut truth = TruthRecord {
            arrival_ns: clock::to_unix_ns(arrival_ns),
            ..TruthRecord::default()
        };
        if shared.truth_sink.is_some() {
            truth.request_id = request_id.to_owned();
            truth.path = path.to_owned();
        }

        let parsed = Route::from_path(path)
            .and_then(|route| request::parse(route, body))
            .map_err(EngineError::from)
            .and_then(|parsed| {
                truth.streaming = parsed.stream;
                truth.input_tokens = parsed.input_tokens;
                let config = &shared.config;
                if outcome.fails(config.error_rate) {
                    Err(EngineError::Injected {
                        rate: config.error_rate,
                        status: config.error_status,
                    })
                } else if fault == Some(Fault::RateLimited) {
                    Err(EngineError::RateLimited {
                        rate: config.faults.rate(Fault::RateLimited),
                        retry_after_seconds: config.faults.retry_after_seconds,
                    })
                } else {
                    Ok(parsed)
                }
            });
        match parsed {
            Ok(parsed) => Ok(Generation::new(
                self.clone(),
                parsed,
                &outcome,
                fault,
                sequence,
                arrival_ns,
                truth,
            )),
            Err(error) => {
                truth.status = error.status();
                self.record(truth);
                Err(error)
            }
        }
    }

    /// Hands a finished request's truth to the sink, if there is one.
    fn record(&self, truth: TruthRecord) {
        if let Some(sink) = &self.shared.truth_sink {
            sink(truth);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use std::sync::Mutex;

    fn fast(config: EngineConfig) -> EngineConfig {
        EngineConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            ..config
        }
    }

    #[test]
    fn default_config_is_valid_and_bad_ones_are_refused() {
        EngineConfig::default().validate().unwrap();
        let bad = [
            EngineConfig {
                tokens_per_chunk: 0,
                ..EngineConfig::default()
            },
            EngineConfig {
                max_batch: 0,
                ..EngineConfig::default()
            },
            EngineConfig {
                default_output_tokens: 0,
                ..EngineConfig::default()
            },
            EngineConfig {
                error_rate: 1.5,
                ..EngineConfig::default()
            },
            EngineConfig {
                eos_rate: f64::NAN,
                ..EngineConfig::default()
            },
        ];
        for config in bad {
            assert!(Engine::new(config.clone()).is_err(), "{config:?}");
        }
    }

    #[tokio::test]
    async fn every_request_leaves_one_truth_record_with_its_id() {
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let engine = Engine::with_truth_sink(fast(EngineConfig::default()), move |r| {
            sink.lock().unwrap().push(r);
        })
        .unwrap();
        let body =
            br#"{"model":"m","messages":[{"role":"user","content":" the of and"}],"max_tokens":5}"#;
        let mut generation = engine
            .start("/v1/chat/completions", body, Some("abc"), clock::now_ns())
            .unwrap();
        let mut out = BytesMut::new();
        while generation.next(&mut out).await.is_some() {}
        drop(generation);
        assert!(
            engine
                .start("/v1/chat/completions", b"{", None, clock::now_ns())
                .is_err()
        );
        // Dropped before it produced anything: recorded as cancelled.
        drop(engine.start(
            "/v1/completions",
            br#"{"model":"m","prompt":"x"}"#,
            Some("gone"),
            clock::now_ns(),
        ));

        let records = records.lock().unwrap();
        assert_eq!(records.len(), 3);
        let ok = &records[0];
        assert_eq!(ok.request_id, "abc");
        assert_eq!(ok.status, 200);
        assert_eq!((ok.input_tokens, ok.output_tokens), (3, 5));
        assert!(!ok.cancelled);
        let (arrival, admitted) = (ok.arrival_ns, ok.admitted_ns.unwrap());
        let (first, last) = (ok.first_token_ns.unwrap(), ok.last_token_ns.unwrap());
        assert!(arrival <= admitted && admitted <= first && first <= last);
        assert_eq!(records[1].status, 400);
        assert!(records[1].request_id.starts_with("engine-"));
        assert!(records[1].admitted_ns.is_none());
        assert_eq!(records[2].request_id, "gone");
        assert!(records[2].cancelled);
    }

    #[test]
    fn error_rate_fails_that_fraction_of_requests_deterministically() {
        let engine = Engine::new(EngineConfig {
            error_rate: 0.25,
            ..EngineConfig::default()
        })
        .unwrap();
        let body = br#"{"model":"m","prompt":"hello"}"#;
        let failed = |engine: &Engine| -> Vec<bool> {
            (0..4000)
                .map(|i| {
                    let id = format!("r{i}");
                    engine.start("/v1/completions", body, Some(&id), 0).is_err()
                })
                .collect()
        };
        let first = failed(&engine);
        let count = first.iter().filter(|f| **f).count();
        assert!((850..1150).contains(&count), "{count} of 4000 failed");
        assert_eq!(first, failed(&engine), "same seed and ids, same failures");
        let error = engine
            .start(
                "/v1/completions",
                body,
                Some(&format!("r{}", first.iter().position(|f| *f).unwrap())),
                0,
            )
            .unwrap_err();
        assert_eq!(error.status(), 500);
        let body: serde_json::Value = serde_json::from_slice(&error.openai_body()).unwrap();
        assert_eq!(body["error"]["code"], 500);

        let always = Engine::new(EngineConfig {
            error_rate: 1.0,
            ..EngineConfig::default()
        })
        .unwrap();
        assert!(failed(&always).iter().all(|f| *f));
    }

    #[test]
    fn injected_errors_take_the_configured_status() {
        let engine = Engine::new(EngineConfig {
            error_rate: 1.0,
            error_status: 503,
            ..EngineConfig::default()
        })
        .unwrap();
        let error = engine
            .start("/v1/completions", br#"{"model":"m","prompt":"x"}"#, None, 0)
            .unwrap_err();
        assert_eq!(error.status(), 503);
        assert_eq!(error.retry_after_seconds(), None);
        let body: serde_json::Value = serde_json::from_slice(&error.openai_body()).unwrap();
        assert_eq!(body["error"]["code"], 503);
        for status in [200, 302, 600] {
            let config = EngineConfig {
                error_status: status,
                ..EngineConfig::default()
            };
            let message = Engine::new(config).unwrap_err().to_string();
            assert!(message.contains("400 to 599"), "{message}");
        }
    }

    #[test]
    fn rate_limited_requests_are_429_with_a_retry_after_and_others_are_served() {
        let mut faults = FaultConfig::default().with_rate(Fault::RateLimited, 0.5);
        faults.retry_after_seconds = 7;
        let engine = Engine::new(EngineConfig {
            faults,
            ..EngineConfig::default()
        })
        .unwrap();
        let body = br#"{"model":"m","prompt":"x"}"#;
        let mut limited = 0;
        for i in 0..400 {
            match engine.start("/v1/completions", body, Some(&format!("r{i}")), 0) {
                Ok(generation) => assert_eq!(generation.fault(), None),
                Err(error) => {
                    assert_eq!(error.status(), 429);
                    assert_eq!(error.retry_after_seconds(), Some(7));
                    assert!(error.to_string().contains("retry after 7 s"), "{error}");
                    limited += 1;
                }
            }
        }
        assert!((160..240).contains(&limited), "{limited} of 400 limited");
        let over = EngineConfig {
            faults: FaultConfig::default()
                .with_rate(Fault::NoDone, 0.7)
                .with_rate(Fault::SlowHeaders, 0.7),
            ..EngineConfig::default()
        };
        assert!(matches!(
            over.validate(),
            Err(EngineConfigError::Faults(FaultConfigError::OverOne { .. }))
        ));
    }

    #[test]
    fn unknown_paths_and_bad_bodies_are_client_errors() {
        let engine = Engine::new(EngineConfig::default()).unwrap();
        let not_found = engine.start("/v1/nope", b"{}", None, 0).unwrap_err();
        assert_eq!(not_found.status(), 404);
        let bad = engine
            .start("/v1/chat/completions", b"{\"model\":\"m\"}", None, 0)
            .unwrap_err();
        assert_eq!(bad.status(), 400);
        assert!(bad.to_string().contains("messages"), "{bad}");
    }

    #[test]
    fn models_body_names_the_configured_model() {
        let engine = Engine::new(EngineConfig {
            model: "my \"model\"".into(),
            ..EngineConfig::default()
        })
        .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&engine.models_body()).unwrap();
        assert_eq!(body["object"], "list");
        assert_eq!(body["data"][0]["id"], "my \"model\"");
    }
}
