//! One request being served: admission to the batch, then each piece of the answer produced at
//! its absolute deadline and rendered into the caller's buffer.
//!
//! Deadlines are computed from the admission time (first token at `ttft + prefill × input
//! tokens`, chunk `k` at `first + k × itl × tokens_per_chunk`) and slept to with
//! `tokio::time::sleep_until`, so a late wake-up delays one piece, never the ones after it.
//! A deadline already past costs no timer at all (`ttft = itl = 0` serves at full speed).
//!
//! The engine's own faults ([`super::faults`]) are made here: a stall moves the deadlines from
//! the first token (or from the chunk a mid-stream fault hits) on by the stall; invalid JSON
//! cuts that chunk short; a stream without usage or `[DONE]` skips those pieces.

use bytes::BytesMut;
use tokio::time::Instant;

use super::admission::Slot;
use super::faults::{Fault, INVALID_JSON_KEPT_BYTES, PlannedFault};
use super::openai_render::{self, Head, TextApi, Usage, Words};
use super::outcome::{FinishReason, Length, Outcome};
use super::request::{ParsedRequest, Route};
use super::{Engine, TruthRecord};
use crate::clock;

/// Where a generation is in its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a slot in the batch.
    Queued,
    /// Streaming: the chunk with this index is next.
    Chunk(u32),
    /// Not streaming: the whole body is next.
    Body,
    /// Streaming: the usage chunk is next.
    Usage,
    /// Streaming: `[DONE]` is next.
    Done,
    /// Everything was produced.
    Finished,
}

/// One request being served by the [`Engine`]; created by [`Engine::start`].
///
/// Call [`Generation::next`] until it returns `None`. Dropping it early (the client went away)
/// frees its batch slot and records it as cancelled.
#[derive(Debug)]
pub struct Generation {
    engine: Engine,
    request: ParsedRequest,
    /// `None` for embeddings.
    api: Option<TextApi>,
    length: Length,
    first_word: usize,
    /// Response number, for `chatcmpl-N` ids.
    sequence: u64,
    /// Unix seconds at arrival (`created`).
    created: u64,
    phase: Phase,
    slot: Option<Slot>,
    /// When the first token is due ([`clock::now_ns`]), known once admitted.
    first_token_due: u64,
    /// The fault injected into this answer, if any.
    fault: Option<Fault>,
    truth: TruthRecord,
}

impl Generation {
    pub(super) fn new(
        engine: Engine,
        request: ParsedRequest,
        outcome: &Outcome,
        fault: Option<Fault>,
        sequence: u64,
        arrival_ns: u64,
        mut truth: TruthRecord,
    ) -> Self {
        let config = &engine.shared.config;
        let (api, length) = match request.route {
            Route::ChatCompletions | Route::Completions => {
                let api = if request.route == Route::ChatCompletions {
                    TextApi::Chat
                } else {
                    TextApi::Completion
                };
                let max_tokens = request.max_tokens.unwrap_or(config.default_output_tokens);
                let length = outcome.length(
                    max_tokens,
                    request.min_tokens,
                    config.eos_rate,
                    request.ignore_eos,
                );
                (Some(api), length)
            }
            Route::Embeddings | Route::Models => (
                None,
                Length {
                    tokens: 0,
                    finish: FinishReason::Length,
                },
            ),
        };
        truth.status = 200;
        truth.streaming = request.stream;
        truth.input_tokens = request.input_tokens;
        Self {
            created: clock::to_unix_ns(arrival_ns) / 1_000_000_000,
            first_word: outcome.first_word,
            engine,
            request,
            api,
            length,
            sequence,
            phase: Phase::Queued,
            slot: None,
            first_token_due: 0,
            fault,
            truth,
        }
    }

    /// The fault injected into this answer, and the chunk a mid-stream fault hits. The engine
    /// makes the [`super::FaultLayer::Engine`] faults itself; the server carrying it makes the
    /// wire ones.
    pub fn fault(&self) -> Option<PlannedFault> {
        self.fault.map(|fault| PlannedFault {
            fault,
            chunk: self.fault_chunk(),
        })
    }

    /// The chunk a mid-stream fault hits: `⌊chunks / 2⌋` of a streamed text answer, else 0.
    fn fault_chunk(&self) -> u32 {
        if self.request.stream && self.api.is_some() {
            self.chunk_count() / 2
        } else {
            0
        }
    }

    /// The stall before chunk `index` (of a stream, or the last one of a whole text body).
    fn stall_before_chunk(&self, index: u32) -> u64 {
        if self.fault == Some(Fault::StallBetweenTokens) && index >= self.fault_chunk() {
            nanos(self.engine.shared.config.faults.stall)
        } else {
            0
        }
    }

    /// The phase after the last chunk, or after the usage chunk when `usage_sent`.
    fn after_content(&self, usage_sent: bool) -> Phase {
        if !usage_sent && self.request.include_usage && self.fault != Some(Fault::NoUsage) {
            Phase::Usage
        } else if self.fault == Some(Fault::NoDone) {
            Phase::Finished
        } else {
            Phase::Done
        }
    }

    /// Cuts what was appended to `out` from `start` short, if this answer gets invalid JSON.
    fn break_json(&self, out: &mut BytesMut, start: usize) {
        if self.fault == Some(Fault::InvalidJson) {
            out.truncate(start + INVALID_JSON_KEPT_BYTES.min(out.len() - start));
        }
    }

    /// Whether the answer is streamed (SSE events) or one body.
    pub fn is_streaming(&self) -> bool {
        self.request.stream
    }

    /// The API being served.
    pub fn route(&self) -> Route {
        self.request.route
    }

    /// The `Content-Type` of the answer: `text/event-stream` or `application/json`.
    pub fn content_type(&self) -> &'static str {
        if self.request.stream {
            "text/event-stream"
        } else {
            "application/json"
        }
    }

    /// Waits until the next piece of the answer is due, appends it to `out` and returns when it
    /// was produced ([`clock::now_ns`], taken on waking, before rendering); `None` once the
    /// answer is complete.
    ///
    /// Streamed, the pieces are the data of each SSE event: the chunk JSONs, the usage chunk
    /// (when `stream_options.include_usage`), then `[DONE]`; otherwise one piece, the whole
    /// body. Cancel-safe: dropping the returned future loses nothing.
    pub async fn next(&mut self, out: &mut BytesMut) -> Option<u64> {
        if self.phase == Phase::Queued {
            self.admit().await;
        }
        match self.phase {
            Phase::Queued | Phase::Finished => None,
            Phase::Chunk(index) => Some(self.chunk(index, out).await),
            Phase::Body => Some(self.body(out).await),
            Phase::Usage => {
                let now = clock::now_ns();
                let api = self.api.expect("only text APIs stream");
                openai_render::usage_chunk(out, api, &self.head(), self.usage());
                self.phase = self.after_content(true);
                Some(now)
            }
            Phase::Done => {
                let now = clock::now_ns();
                out.extend_from_slice(b"[DONE]");
                self.phase = Phase::Finished;
                Some(now)
            }
        }
    }

    async fn admit(&mut self) {
        let slot = self.engine.shared.admission.admit().await;
        let admitted = clock::now_ns();
        let config = &self.engine.shared.config;
        let prefill =
            nanos(config.prefill_per_input_token).saturating_mul(self.request.input_tokens);
        let stall = if self.fault == Some(Fault::StallBeforeFirstToken) {
            nanos(config.faults.stall)
        } else {
            0
        };
        self.first_token_due = admitted
            .saturating_add(nanos(config.ttft))
            .saturating_add(prefill)
            .saturating_add(stall);
        self.slot = Some(slot);
        self.truth.admitted_ns = Some(clock::to_unix_ns(admitted));
        self.phase = if self.request.stream {
            Phase::Chunk(0)
        } else {
            Phase::Body
        };
    }

    /// When chunk `index` is due.
    fn chunk_due(&self, index: u32) -> u64 {
        let config = &self.engine.shared.config;
        let interval = nanos(config.itl).saturating_mul(u64::from(config.tokens_per_chunk));
        self.first_token_due
            .saturating_add(interval.saturating_mul(u64::from(index)))
            .saturating_add(self.stall_before_chunk(index))
    }

    fn chunk_count(&self) -> u32 {
        self.length
            .tokens
            .div_ceil(self.engine.shared.config.tokens_per_chunk)
    }

    async fn chunk(&mut self, index: u32, out: &mut BytesMut) -> u64 {
        let now = wait_until(self.chunk_due(index)).await;
        let per_chunk = self.engine.shared.config.tokens_per_chunk;
        let first_token = index * per_chunk;
        let count = per_chunk.min(self.length.tokens - first_token);
        let is_last = first_token + count == self.length.tokens;
        let words = Words {
            start: self.first_word.wrapping_add(first_token as usize),
            count,
        };
        let api = self.api.expect("only text APIs stream");
        let finish = is_last.then_some(self.length.finish);
        let start = out.len();
        openai_render::text_chunk(out, api, &self.head(), words, index == 0, finish);
        if index == self.fault_chunk() {
            self.break_json(out, start);
        }
        if index == 0 {
            self.truth.first_token_ns = Some(clock::to_unix_ns(now));
        }
        self.truth.output_tokens = u64::from(first_token + count);
        if is_last {
            self.complete(now);
            self.phase = self.after_content(false);
        } else {
            self.phase = Phase::Chunk(index + 1);
        }
        now
    }

    async fn body(&mut self, out: &mut BytesMut) -> u64 {
        let due = match self.api {
            Some(_) => self.chunk_due(self.chunk_count().saturating_sub(1)),
            None => self.first_token_due,
        };
        let now = wait_until(due).await;
        let start = out.len();
        match self.api {
            Some(api) => {
                let words = Words {
                    start: self.first_word,
                    count: self.length.tokens,
                };
                let (head, usage) = (self.head(), self.usage());
                openai_render::text_body(out, api, &head, words, self.length.finish, usage);
            }
            None => openai_render::embeddings_body(
                out,
                &self.request.model_json,
                &self.request.embedding_inputs,
                self.request.input_tokens,
            ),
        }
        self.break_json(out, start);
        self.truth.first_token_ns = Some(clock::to_unix_ns(self.first_token_due.min(now)));
        self.truth.output_tokens = u64::from(self.length.tokens);
        self.complete(now);
        self.phase = Phase::Finished;
        now
    }

    /// The last token is out: free the batch slot.
    fn complete(&mut self, now: u64) {
        self.slot = None;
        self.truth.last_token_ns = Some(clock::to_unix_ns(now));
    }

    fn head(&self) -> Head<'_> {
        Head {
            id: self.sequence,
            created: self.created,
            model_json: &self.request.model_json,
        }
    }

    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.request.input_tokens,
            completion_tokens: u64::from(self.length.tokens),
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if self.engine.shared.truth_sink.is_some() {
            self.truth.cancelled =
                matches!(self.phase, Phase::Queued | Phase::Chunk(_) | Phase::Body);
            self.engine.record(std::mem::take(&mut self.truth));
        }
    }
}

/// Sleeps until `due` ([`clock::now_ns`] units) unless it has passed; returns the time on
/// waking.
async fn wait_until(due: u64) -> u64 {
    let now = clock::now_ns();
    if due <= now {
        return now;
    }
    tokio::time::sleep_until(Instant::from_std(clock::instant_at(due))).await;
    clock::now_ns()
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use serde_json::Value;
    use std::time::Duration;

    fn engine(config: EngineConfig) -> Engine {
        Engine::new(config).unwrap()
    }

    async fn run(engine: &Engine, path: &str, body: &str) -> Vec<(u64, String)> {
        let mut generation = engine
            .start(path, body.as_bytes(), None, clock::now_ns())
            .unwrap();
        let mut out = BytesMut::new();
        let mut pieces = Vec::new();
        while let Some(at) = generation.next(&mut out).await {
            pieces.push((at, String::from_utf8(out.split().to_vec()).unwrap()));
        }
        pieces
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[tokio::test]
    async fn streamed_chat_sends_each_token_then_usage_then_done() {
        let engine = engine(EngineConfig {
            ttft: Duration::from_millis(10),
            itl: Duration::from_millis(2),
            ..EngineConfig::default()
        });
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hello world"}],
                       "max_tokens":16,"stream":true,"stream_options":{"include_usage":true}}"#;
        let started = clock::now_ns();
        let pieces = run(&engine, "/v1/chat/completions", body).await;
        assert_eq!(pieces.len(), 16 + 2);
        let mut text = String::new();
        for (i, (_, piece)) in pieces[..16].iter().enumerate() {
            let chunk = json(piece);
            let choice = &chunk["choices"][0];
            assert_eq!(choice["delta"].get("role").is_some(), i == 0);
            let expected_finish = if i == 15 {
                Value::from("length")
            } else {
                Value::Null
            };
            assert_eq!(choice["finish_reason"], expected_finish);
            text += choice["delta"]["content"].as_str().unwrap();
        }
        assert_eq!(crate::tokenizer::Tokenizer::builtin().count(&text), 16);
        let usage = json(&pieces[16].1);
        assert_eq!(usage["usage"]["completion_tokens"], 16);
        assert_eq!(usage["usage"]["prompt_tokens"], 2);
        assert_eq!(pieces[17].1, "[DONE]");
        // Timers never fire early: the first token is at least TTFT after the start, the last
        // at least TTFT + 15 ITLs (the first may be late, so the gap between them is no bound).
        assert!(pieces[0].0 - started >= 10_000_000);
        assert!(pieces[15].0 - started >= 40_000_000);
        assert!(pieces.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[tokio::test]
    async fn tokens_per_chunk_groups_tokens_and_the_last_chunk_takes_the_rest() {
        let engine = engine(EngineConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            tokens_per_chunk: 4,
            ..EngineConfig::default()
        });
        let body = r#"{"model":"m","prompt":"x","max_tokens":10,"stream":true}"#;
        let pieces = run(&engine, "/v1/completions", body).await;
        assert_eq!(pieces.len(), 3 + 1, "3 chunks (4+4+2), no usage, [DONE]");
        let texts: Vec<String> = pieces[..3]
            .iter()
            .map(|(_, p)| json(p)["choices"][0]["text"].as_str().unwrap().to_owned())
            .collect();
        let tokenizer = crate::tokenizer::Tokenizer::builtin();
        let counts: Vec<u64> = texts.iter().map(|t| tokenizer.count(t)).collect();
        assert_eq!(counts, [4, 4, 2]);
    }

    #[tokio::test]
    async fn non_streamed_answers_come_whole_after_the_last_token() {
        let engine = engine(EngineConfig {
            ttft: Duration::from_millis(5),
            itl: Duration::from_millis(1),
            default_output_tokens: 11,
            ..EngineConfig::default()
        });
        let started = clock::now_ns();
        let pieces = run(
            &engine,
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_eq!(pieces.len(), 1);
        let body = json(&pieces[0].1);
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(
            body["usage"]["completion_tokens"], 11,
            "default output length"
        );
        assert!(pieces[0].0 - started >= 15_000_000);
    }

    #[tokio::test]
    async fn prefill_cost_grows_with_the_prompt() {
        let engine = engine(EngineConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            prefill_per_input_token: Duration::from_millis(1),
            ..EngineConfig::default()
        });
        let prompt = crate::vocabulary::WORDS[..30].concat();
        let body = format!(r#"{{"model":"m","input":"{prompt}"}}"#);
        let started = clock::now_ns();
        let pieces = run(&engine, "/v1/embeddings", &body).await;
        assert!(pieces[0].0 - started >= 30_000_000, "30 tokens × 1 ms");
        assert_eq!(json(&pieces[0].1)["usage"]["prompt_tokens"], 30);
    }

    #[tokio::test]
    async fn eos_ends_answers_early_with_finish_reason_stop() {
        let engine = engine(EngineConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            eos_rate: 0.5,
            ..EngineConfig::default()
        });
        let mut stopped = 0;
        for _ in 0..20 {
            let pieces = run(
                &engine,
                "/v1/completions",
                r#"{"model":"m","prompt":"x","max_tokens":200,"min_tokens":3}"#,
            )
            .await;
            let body = json(&pieces[0].1);
            let tokens = body["usage"]["completion_tokens"].as_u64().unwrap();
            assert!(tokens > 3);
            if body["choices"][0]["finish_reason"] == "stop" {
                assert!(tokens < 200);
                stopped += 1;
            }
        }
        assert_eq!(stopped, 20, "p = 0.5 per token never reaches 200 tokens");
        let ignored = run(
            &engine,
            "/v1/completions",
            r#"{"model":"m","prompt":"x","max_tokens":200,"nvext":{"ignore_eos":true}}"#,
        )
        .await;
        assert_eq!(json(&ignored[0].1)["usage"]["completion_tokens"], 200);
    }

    /// An engine at full speed where every request gets `fault`, stalls lasting `stall`.
    fn faulty(fault: Fault, stall: Duration) -> Engine {
        let mut faults = crate::engine::FaultConfig::default().with_rate(fault, 1.0);
        faults.stall = stall;
        engine(EngineConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            faults,
            ..EngineConfig::default()
        })
    }

    const STREAMED_CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],
        "max_tokens":10,"stream":true,"stream_options":{"include_usage":true}}"#;

    #[tokio::test]
    async fn a_generation_reports_its_fault_and_the_chunk_it_hits() {
        let faulty_engine = faulty(Fault::ResetMidStream, Duration::ZERO);
        let streamed = faulty_engine
            .start("/v1/chat/completions", STREAMED_CHAT.as_bytes(), None, 0)
            .unwrap();
        assert_eq!(
            streamed.fault(),
            Some(PlannedFault {
                fault: Fault::ResetMidStream,
                chunk: 5
            })
        );
        let whole = br#"{"model":"m","prompt":"x","max_tokens":10}"#;
        let whole = faulty_engine
            .start("/v1/completions", whole, None, 0)
            .unwrap();
        assert_eq!(whole.fault().map(|f| f.chunk), Some(0));
        let healthy = engine(EngineConfig::default());
        let plain = healthy.start("/v1/completions", br#"{"model":"m","prompt":"x"}"#, None, 0);
        assert_eq!(plain.unwrap().fault(), None);
    }

    #[tokio::test]
    async fn a_stall_before_the_first_token_delays_every_piece() {
        let engine = faulty(Fault::StallBeforeFirstToken, Duration::from_millis(30));
        let started = clock::now_ns();
        let pieces = run(&engine, "/v1/chat/completions", STREAMED_CHAT).await;
        assert_eq!(pieces.len(), 10 + 2, "nothing is lost");
        assert!(pieces[0].0 - started >= 30_000_000);
    }

    #[tokio::test]
    async fn a_stall_between_tokens_opens_a_gap_halfway() {
        let engine = faulty(Fault::StallBetweenTokens, Duration::from_millis(30));
        let pieces = run(&engine, "/v1/chat/completions", STREAMED_CHAT).await;
        assert_eq!(pieces.len(), 10 + 2);
        assert!(
            pieces[5].0 - pieces[4].0 >= 30_000_000,
            "the gap is before chunk 5"
        );
        let whole = run(
            &engine,
            "/v1/completions",
            r#"{"model":"m","prompt":"x","max_tokens":4}"#,
        )
        .await;
        assert_eq!(whole.len(), 1);
    }

    #[tokio::test]
    async fn invalid_json_cuts_one_chunk_short_and_keeps_the_rest() {
        let engine = faulty(Fault::InvalidJson, Duration::ZERO);
        let pieces = run(&engine, "/v1/chat/completions", STREAMED_CHAT).await;
        assert_eq!(pieces.len(), 10 + 2);
        for (i, (_, piece)) in pieces[..11].iter().enumerate() {
            let parsed = serde_json::from_str::<Value>(piece);
            assert_eq!(parsed.is_err(), i == 5, "chunk {i}: {piece}");
        }
        assert_eq!(pieces[5].1, r#"{"id":"cha"#);
        assert_eq!(pieces[11].1, "[DONE]");
        let whole = run(
            &engine,
            "/v1/completions",
            r#"{"model":"m","prompt":"x","max_tokens":4}"#,
        )
        .await;
        assert_eq!(whole[0].1, r#"{"id":"cmp"#);
    }

    #[tokio::test]
    async fn streams_can_end_without_usage_or_without_done() {
        let no_usage = faulty(Fault::NoUsage, Duration::ZERO);
        let pieces = run(&no_usage, "/v1/chat/completions", STREAMED_CHAT).await;
        assert_eq!(pieces.len(), 10 + 1);
        assert!(pieces[..10].iter().all(|(_, p)| json(p)["usage"].is_null()));
        assert_eq!(pieces[10].1, "[DONE]");

        let no_done = faulty(Fault::NoDone, Duration::ZERO);
        let pieces = run(&no_done, "/v1/chat/completions", STREAMED_CHAT).await;
        assert_eq!(pieces.len(), 10 + 1);
        assert_eq!(json(&pieces[10].1)["usage"]["completion_tokens"], 10);
        let without_usage = STREAMED_CHAT.replace("true}", "false}");
        let pieces = run(&no_done, "/v1/chat/completions", &without_usage).await;
        assert_eq!(pieces.len(), 10, "neither usage nor [DONE]");
    }

    #[tokio::test]
    async fn a_full_batch_delays_the_next_request_until_a_slot_frees() {
        let engine = engine(EngineConfig {
            ttft: Duration::from_millis(20),
            itl: Duration::ZERO,
            max_batch: 1,
            ..EngineConfig::default()
        });
        let body = r#"{"model":"m","prompt":"x","max_tokens":1}"#;
        let started = clock::now_ns();
        let (a, b) = tokio::join!(
            run(&engine, "/v1/completions", body),
            run(&engine, "/v1/completions", body)
        );
        let mut ends = [a[0].0 - started, b[0].0 - started];
        ends.sort_unstable();
        assert!(ends[0] >= 20_000_000);
        assert!(
            ends[1] >= 40_000_000,
            "the second waited for the first: {ends:?}"
        );
    }
}
