//! AIPerf's time-weighted metrics: `effective_*`, `active_*` and `tokens_in_flight`, from the
//! run's timeline of requests rather than from one value per request.
//!
//! Each profiling request is an interval on the run's clock: prefill from its send to its first
//! token, decode from its first token to its end (for a streamed response; a whole body has no
//! first token, so no prefill or decode). Summing the requests' contributions at every instant
//! gives step functions, AIPerf's sweep lines:
//! - concurrency: requests in flight (failed and cancelled ones too, while they were);
//! - decode and prefill concurrency: requests in either stage;
//! - decode throughput: each request's `output tokens - 1` spread evenly over its decode time
//!   (the first token arrives at once), tokens/s;
//! - prefill throughput: each request's input tokens spread over its prefill time;
//! - total throughput: both; per-user throughputs: a throughput divided by the requests in its
//!   stage (0 while none is);
//! - tokens in flight: a request's input tokens from its send, plus its output tokens from its
//!   first token, until its end (the tokens a server holds for it).
//!
//! Each metric reports its step function's time-weighted statistics over the benchmark's
//! window (the `effective_*` family: the mean is the integral over the window's length, the
//! percentiles are of the time spent at each value), or, for the `active_*` family, over only
//! the moments when the stage the throughput belongs to has a request in it.
//!
//! The computation follows AIPerf 0.13's `sweepline` module. One difference: where AIPerf keeps
//! every chunk's timing (its default), its decode throughput (and so the per-user decode
//! throughput and the total) and tokens in flight follow the chunks; aiperf uses the
//! request-level curves AIPerf falls back to otherwise. Both integrate to the same tokens, so
//! the decode throughputs' means agree; their percentiles can differ, and tokens in flight
//! counts a request's output tokens from its first token on, where AIPerf's chunk-level curve
//! adds them as they arrive.
//!
//! Memory: five numbers per request, kept in [`ValueColumn`]s (bounded in memory, spilled to a
//! temporary file), and read back once, when the run is over.

use std::io;

use super::table::{METRICS, MetricKind};
use super::value_column::ValueColumn;

/// The step functions the time-weighted metrics are taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// Requests in flight.
    Concurrency,
    /// Output tokens per second being generated.
    DecodeThroughput,
    /// Input tokens per second being processed.
    PrefillThroughput,
    /// Requests between their first token and their end.
    DecodeConcurrency,
    /// Requests between their send and their first token.
    PrefillConcurrency,
    /// Prefill and decode throughput together.
    TotalThroughput,
    /// Decode throughput per request in decode.
    DecodeThroughputPerUser,
    /// Prefill throughput per request in prefill.
    PrefillThroughputPerUser,
    /// Input and output tokens of the requests in flight.
    TokensInFlight,
}

impl Curve {
    /// Whether the metric table reports the curve over its active time too (an `active_*`
    /// metric): the throughputs.
    fn has_active_variant(self) -> bool {
        METRICS.iter().any(|def| {
            matches!(def.kind, MetricKind::TimeWeighted { curve, active_only: true } if curve == self)
        })
    }
}

/// Time-weighted statistics of a step function: each value counts for the time it was held.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimeWeightedStats {
    /// The mean over the time considered.
    pub avg: f64,
    /// The smallest value held.
    pub min: f64,
    /// The largest value held.
    pub max: f64,
    /// The value held at least half of the time at or below it.
    pub p50: f64,
    /// 90th percentile of the time.
    pub p90: f64,
    /// 95th percentile of the time.
    pub p95: f64,
    /// 99th percentile of the time.
    pub p99: f64,
    /// The time-weighted population standard deviation.
    pub std: f64,
}

/// What one profiling request contributes, in nanoseconds from the timeline's origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Interval {
    /// When it was sent.
    pub start_ns: u64,
    /// Its first token, for a streamed response that had one.
    pub first_token_ns: Option<u64>,
    /// Its last response (or its failure).
    pub end_ns: u64,
    /// Its input tokens, when known.
    pub input_tokens: Option<f64>,
    /// Its output tokens, when known.
    pub output_tokens: Option<f64>,
}

/// The profiling requests' intervals, gathered as records arrive.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// The clock reading every time is stored relative to (the first request's send), so
    /// that nanoseconds stay exact in an `f64`.
    origin_ns: Option<u64>,
    start: ValueColumn,
    first_token: ValueColumn,
    end: ValueColumn,
    input_tokens: ValueColumn,
    output_tokens: ValueColumn,
}

impl Timeline {
    /// Adds one request's interval.
    pub(crate) fn add(&mut self, interval: Interval) {
        let origin = *self.origin_ns.get_or_insert(interval.start_ns);
        let offset = |ns: u64| offset_ns(ns, origin);
        self.start.push(offset(interval.start_ns));
        self.first_token
            .push(interval.first_token_ns.map_or(f64::NAN, offset));
        self.end
            .push(offset(interval.end_ns.max(interval.start_ns)));
        self.input_tokens
            .push(interval.input_tokens.unwrap_or(f64::NAN));
        self.output_tokens
            .push(interval.output_tokens.unwrap_or(f64::NAN));
    }

    /// The statistics of every curve over `window` (clock readings, the benchmark's first
    /// send to its last response); `None` without requests. Fails only if the values cannot
    /// be read back from their temporary files.
    pub(crate) fn finish(self, window: (u64, u64)) -> io::Result<Option<CurveStats>> {
        let Some(origin) = self.origin_ns else {
            return Ok(None);
        };
        let requests = Requests {
            start: self.start.into_values()?,
            first_token: self.first_token.into_values()?,
            end: self.end.into_values()?,
            input_tokens: self.input_tokens.into_values()?,
            output_tokens: self.output_tokens.into_values()?,
        };
        Ok(Some(CurveStats::of(
            &requests,
            (offset_ns(window.0, origin), offset_ns(window.1, origin)),
        )))
    }
}

/// `ns - origin` in nanoseconds, exact in an `f64` (the difference is taken in integers; a run
/// would need 104 days to reach 2^53 ns).
fn offset_ns(ns: u64, origin: u64) -> f64 {
    (i128::from(ns) - i128::from(origin)) as f64
}

/// The intervals read back, one column each (NaN where a value is missing).
struct Requests {
    start: Vec<f64>,
    first_token: Vec<f64>,
    end: Vec<f64>,
    input_tokens: Vec<f64>,
    output_tokens: Vec<f64>,
}

/// Nanoseconds per second: the curves' rates are per second.
const NS_PER_S: f64 = 1e9;

impl Requests {
    /// Request `i`'s values.
    fn part(&self, i: usize) -> Part {
        Part {
            start: self.start[i],
            first_token: self.first_token[i],
            end: self.end[i],
            input: self.input_tokens[i],
            output: self.output_tokens[i],
        }
    }

    /// Every request's moments (send, first token when it has one, end) in time order: the one
    /// sort every curve shares. Times are whole nanoseconds from the timeline's origin, exact
    /// in an `f64`, so an integer key orders them; the order of equal times does not matter
    /// (a step function keeps the value after the last change at a time).
    fn moments(&self) -> Vec<At> {
        let mut moments = Vec::with_capacity(3 * self.start.len());
        for (i, request) in (0..self.start.len()).zip(0_u32..) {
            let at = |time: f64, moment| At {
                time,
                request,
                moment,
            };
            moments.push(at(self.start[i], Moment::Start));
            if !self.first_token[i].is_nan() {
                moments.push(at(self.first_token[i], Moment::FirstToken));
            }
            moments.push(at(self.end[i], Moment::End));
        }
        moments.sort_unstable_by_key(|at| at.time as i64);
        moments
    }
}

/// A request's moment and its time (16 bytes: a million requests' moments take 48 MB).
#[derive(Debug, Clone, Copy)]
struct At {
    time: f64,
    request: u32,
    moment: Moment,
}

/// A request's stage between two of its moments, and its curves.
struct Stage {
    opens: Moment,
    closes: Moment,
    /// The stage's tokens per second for a request, when it has some over some time.
    rate: fn(Part) -> Option<f64>,
    concurrency: Curve,
    throughput: Curve,
    per_user: Curve,
}

impl Stage {
    /// From the first token to the end: the output tokens after the first.
    const DECODE: Self = Self {
        opens: Moment::FirstToken,
        closes: Moment::End,
        rate: Part::decode_rate,
        concurrency: Curve::DecodeConcurrency,
        throughput: Curve::DecodeThroughput,
        per_user: Curve::DecodeThroughputPerUser,
    };
    /// From the send to the first token: the input tokens.
    const PREFILL: Self = Self {
        opens: Moment::Start,
        closes: Moment::FirstToken,
        rate: Part::prefill_rate,
        concurrency: Curve::PrefillConcurrency,
        throughput: Curve::PrefillThroughput,
        per_user: Curve::PrefillThroughputPerUser,
    };

    /// +1 at the moment a request enters the stage, -1 at the one it leaves it.
    fn sign(&self, moment: Moment) -> Option<f64> {
        match moment {
            _ if moment == self.opens => Some(1.0),
            _ if moment == self.closes => Some(-1.0),
            _ => None,
        }
    }
}

/// A moment of a request at which curves change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    Start,
    FirstToken,
    End,
}

/// One request's values (NaN where missing), and the stages they make.
#[derive(Clone, Copy)]
struct Part {
    start: f64,
    first_token: f64,
    end: f64,
    input: f64,
    output: f64,
}

impl Part {
    /// Whether the request has a first token (a streamed success), so prefill and decode.
    fn has_stages(self) -> bool {
        !self.first_token.is_nan()
    }

    /// Its decode rate, tokens/s, when it generated tokens after the first over some time.
    fn decode_rate(self) -> Option<f64> {
        let decode_ns = self.end - self.first_token;
        (self.has_stages() && self.output >= 1.0 && decode_ns > 0.0)
            .then(|| (self.output - 1.0) / decode_ns * NS_PER_S)
    }

    /// Its prefill rate, tokens/s, when its input took some time to a first token.
    fn prefill_rate(self) -> Option<f64> {
        let prefill_ns = self.first_token - self.start;
        (self.has_stages() && !self.input.is_nan() && prefill_ns > 0.0)
            .then(|| self.input / prefill_ns * NS_PER_S)
    }
}

/// The time-weighted statistics of every curve of a run, over the whole window and over each
/// curve's active time.
#[derive(Debug)]
pub(crate) struct CurveStats {
    by_curve: Vec<(Curve, TimeWeightedStats, Option<TimeWeightedStats>)>,
}

impl CurveStats {
    /// Builds the curves one after another, each dropped once its statistics are taken (a
    /// curve holds two numbers per request event), but for the three concurrencies, which
    /// the others' active times need.
    fn of(r: &Requests, window: (f64, f64)) -> Self {
        use Moment::{End, FirstToken, Start};
        let moments = r.moments();
        let curve = |change: &dyn Fn(Part, Moment) -> Option<f64>| {
            Steps::sweep(&moments, |i, moment| change(r.part(i), moment))
        };
        let mut by_curve = Vec::with_capacity(9);
        // The statistics over the whole window, and over the moments `active_when` is positive
        // for the curves AIPerf reports that way too (the throughputs).
        let mut record = |curve: Curve, steps: &Steps, active_when: &Steps| {
            let active = curve
                .has_active_variant()
                .then(|| steps.stats(Some(active_when), window));
            by_curve.push((curve, steps.stats(None, window), active));
        };

        // Each stage: the requests in it, the tokens it handles, per request in it.
        let mut stage = |stage: Stage| {
            let in_stage = curve(&|p, moment| p.has_stages().then(|| stage.sign(moment))?);
            record(stage.concurrency, &in_stage, &in_stage);
            let throughput = curve(&|p, moment| Some((stage.rate)(p)? * stage.sign(moment)?));
            record(stage.throughput, &throughput, &in_stage);
            let per_user = throughput.divided_by(&in_stage);
            record(stage.per_user, &per_user, &in_stage);
            throughput
        };
        let decode = stage(Stage::DECODE);
        let prefill = stage(Stage::PREFILL);

        // Both stages, active while any request is in flight.
        let total = decode.plus(&prefill);
        drop((decode, prefill));
        let concurrency = curve(&|_, moment| match moment {
            Start => Some(1.0),
            End => Some(-1.0),
            FirstToken => None,
        });
        record(Curve::Concurrency, &concurrency, &concurrency);
        record(Curve::TotalThroughput, &total, &concurrency);
        drop((total, concurrency));

        // A request's input tokens from its send, its output tokens from its first token,
        // all freed at its end (AIPerf's tokens in flight, request by request).
        let tokens = curve(&|p, moment| {
            let input = p.prefill_rate().map(|_| p.input);
            let output =
                (p.has_stages() && !p.output.is_nan() && p.end > p.first_token).then_some(p.output);
            match moment {
                Start => input,
                FirstToken => output,
                End if input.is_some() || output.is_some() => {
                    Some(-(input.unwrap_or(0.0) + output.unwrap_or(0.0)))
                }
                End => None,
            }
        });
        record(Curve::TokensInFlight, &tokens, &tokens);
        Self { by_curve }
    }

    /// A curve's statistics over the whole window, or, when `active_only`, over the moments
    /// its stage has a request in it (decode, prefill, or either for the total); all zero when
    /// it has no such time (as AIPerf reports them).
    pub(crate) fn stats(&self, curve: Curve, active_only: bool) -> TimeWeightedStats {
        self.by_curve
            .iter()
            .find(|(c, ..)| *c == curve)
            .and_then(|&(_, whole, active)| if active_only { active } else { Some(whole) })
            .unwrap_or_default()
    }
}

/// A step function: `values[i]` holds from `times[i]` until `times[i + 1]` (the last one
/// onwards), 0 before the first time. Times are sorted; several may be equal, the last of them
/// giving the value.
#[derive(Debug, Default)]
struct Steps {
    times: Vec<f64>,
    values: Vec<f64>,
}

impl Steps {
    /// The running sum of the changes `change` gives (request, moment) at each of the
    /// `moments`, in time order.
    fn sweep(moments: &[At], change: impl Fn(usize, Moment) -> Option<f64>) -> Self {
        let mut sum = 0.0;
        let (times, mut values): (Vec<f64>, Vec<f64>) = moments
            .iter()
            .filter_map(|at| {
                sum += change(at.request as usize, at.moment)?;
                Some((at.time, sum))
            })
            .unzip();
        // Additions and subtractions of large rates leave residues like 1e-12: they are 0.
        let largest = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for value in &mut values {
            if value.abs() < 1e-9 * largest {
                *value = 0.0;
            }
        }
        Self { times, values }
    }

    /// The value at `time`: the last step at or before it, 0 before the first.
    fn at(&self, time: f64) -> f64 {
        match self.times.partition_point(|&t| t <= time) {
            0 => 0.0,
            after => self.values[after - 1],
        }
    }

    /// Its statistics over `window`, or over only the stretches where `active_when` is
    /// positive (their total time the mean's denominator).
    fn stats(&self, active_when: Option<&Self>, window: (f64, f64)) -> TimeWeightedStats {
        let segments = self.segments_while(active_when, window);
        let over_ns = match active_when {
            Some(_) => segments.iter().map(|s| s.1).sum(),
            None => window.1 - window.0,
        };
        time_weighted(segments, over_ns)
    }

    /// This function and `other` added, on every time of either.
    fn plus(&self, other: &Self) -> Self {
        let (times, values) = Both::after(self, other, f64::NEG_INFINITY)
            .map(|(time, a, b)| (time, a + b))
            .unzip();
        Self { times, values }
    }

    /// This function divided by `other` on every time of either, 0 where `other` is not
    /// positive; empty when either is.
    fn divided_by(&self, other: &Self) -> Self {
        if self.times.is_empty() || other.times.is_empty() {
            return Self::default();
        }
        let (times, values) = Both::after(self, other, f64::NEG_INFINITY)
            .map(|(time, a, b)| (time, if b > 0.0 { a / b } else { 0.0 }))
            .unzip();
        Self { times, values }
    }

    /// `(value, duration)` of every stretch of `window` the function holds a value, in time
    /// order, stretches of no duration left out; only those where `mask` is positive, when
    /// given.
    fn segments_while(&self, mask: Option<&Self>, window: (f64, f64)) -> Vec<(f64, f64)> {
        let (from, to) = window;
        let no_mask = Self::default();
        let mask_steps = mask.unwrap_or(&no_mask);
        if self.times.is_empty() || mask.is_some_and(|m| m.times.is_empty()) || to <= from {
            return Vec::new();
        }
        let active = |m: f64| mask.is_none() || m > 0.0;
        let mut segments = Vec::new();
        let (mut at, mut value, mut mask_value) = (from, self.at(from), mask_steps.at(from));
        for (time, next, next_mask) in Both::after(self, mask_steps, from) {
            if time >= to {
                break;
            }
            if time > at {
                if active(mask_value) {
                    segments.push((value, time - at));
                }
                at = time;
            }
            (value, mask_value) = (next, next_mask);
        }
        if to > at && active(mask_value) {
            segments.push((value, to - at));
        }
        segments
    }
}

/// Two step functions walked together: each distinct time of either after a starting time,
/// with both functions' values from then on, in one pass.
struct Both<'a> {
    a: &'a Steps,
    b: &'a Steps,
    i: usize,
    j: usize,
    a_value: f64,
    b_value: f64,
}

impl<'a> Both<'a> {
    /// The times of `a` and `b` after `from`.
    fn after(a: &'a Steps, b: &'a Steps, from: f64) -> Self {
        Self {
            a,
            b,
            i: a.times.partition_point(|&t| t <= from),
            j: b.times.partition_point(|&t| t <= from),
            a_value: a.at(from),
            b_value: b.at(from),
        }
    }
}

impl Iterator for Both<'_> {
    type Item = (f64, f64, f64);

    fn next(&mut self) -> Option<Self::Item> {
        let time = match (self.a.times.get(self.i), self.b.times.get(self.j)) {
            (None, None) => return None,
            (Some(&t), None) | (None, Some(&t)) => t,
            (Some(&ta), Some(&tb)) => ta.min(tb),
        };
        // Of several steps at one time, the last gives the value.
        while self.a.times.get(self.i) == Some(&time) {
            self.a_value = self.a.values[self.i];
            self.i += 1;
        }
        while self.b.times.get(self.j) == Some(&time) {
            self.b_value = self.b.values[self.j];
            self.j += 1;
        }
        Some((time, self.a_value, self.b_value))
    }
}

/// The statistics of `(value, duration)` segments, the mean and deviation taken over
/// `over_ns`; a percentile is the first value, in value order, by which that share of the
/// segments' time is reached.
fn time_weighted(mut segments: Vec<(f64, f64)>, over_ns: f64) -> TimeWeightedStats {
    if segments.is_empty() || over_ns <= 0.0 {
        return TimeWeightedStats::default();
    }
    let avg = segments.iter().map(|(v, d)| v * d).sum::<f64>() / over_ns;
    let variance = segments
        .iter()
        .map(|(v, d)| d * (v - avg) * (v - avg))
        .sum::<f64>()
        / over_ns;
    let total: f64 = segments.iter().map(|s| s.1).sum();
    let (min, max) = segments
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.0), hi.max(s.0))
        });
    let targets = [0.50, 0.90, 0.95, 0.99].map(|share| share * total);
    let mut percentiles = [max; 4];
    select_percentiles(&mut segments, 0.0, &targets, &mut percentiles);
    let [p50, p90, p95, p99] = percentiles;
    TimeWeightedStats {
        avg,
        min,
        max,
        p50,
        p90,
        p95,
        p99,
        std: variance.sqrt(),
    }
}

/// For each of the ascending `targets`, the first value, in value order, at which the
/// durations (counted from `before`, the time of the values below the slice) reach it: AIPerf's
/// sort, cumulative sum and search, by selection (the slice is reordered), which needs no full
/// sort. A target the durations do not reach (by rounding) keeps the value given.
fn select_percentiles(segments: &mut [(f64, f64)], before: f64, targets: &[f64], out: &mut [f64]) {
    if targets.is_empty() || segments.is_empty() {
        return;
    }
    if segments.len() <= 32 {
        segments.sort_unstable_by_key(|&(value, _)| ordered_bits(value));
        let (mut sum, mut next) = (before, 0);
        for &(value, duration) in segments.iter() {
            sum += duration;
            while next < targets.len() && sum >= targets[next] {
                out[next] = value;
                next += 1;
            }
        }
        return;
    }
    let middle = segments.len() / 2;
    let (below, &mut (value, duration), above) =
        segments.select_nth_unstable_by_key(middle, |&(value, _)| ordered_bits(value));
    let below_end = before + below.iter().map(|s| s.1).sum::<f64>();
    let pivot_end = below_end + duration;
    let in_below = targets.partition_point(|&t| t <= below_end);
    let at_pivot = targets.partition_point(|&t| t <= pivot_end);
    select_percentiles(below, before, &targets[..in_below], &mut out[..in_below]);
    out[in_below..at_pivot].fill(value);
    select_percentiles(above, pivot_end, &targets[at_pivot..], &mut out[at_pivot..]);
}

/// `value`'s bits as an integer ordered as [`f64::total_cmp`] orders the values.
fn ordered_bits(value: f64) -> i64 {
    let bits = value.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(start: u64, first: Option<u64>, end: u64, input: f64, output: f64) -> Interval {
        Interval {
            start_ns: start,
            first_token_ns: first,
            end_ns: end,
            input_tokens: Some(input),
            output_tokens: Some(output),
        }
    }

    fn curves(requests: &[Interval], window: (u64, u64)) -> CurveStats {
        let mut timeline = Timeline::default();
        for &r in requests {
            timeline.add(r);
        }
        timeline.finish(window).unwrap().expect("requests")
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn two_overlapping_requests_make_a_step_function_weighted_by_time() {
        // Times in seconds x 1e9 from 1e18 (a clock reading): A 0-4 s, B 2-10 s.
        let s = |seconds: f64| 1_000_000_000_000_000_000 + (seconds * 1e9) as u64;
        let c = curves(
            &[
                request(s(0.0), Some(s(1.0)), s(4.0), 100.0, 31.0),
                request(s(2.0), Some(s(4.0)), s(10.0), 50.0, 81.0),
            ],
            (s(0.0), s(10.0)),
        );
        let concurrency = c.stats(Curve::Concurrency, false);
        // 1 for 4 s, 2 for 2 s... : 0-2 one, 2-4 two, 4-10 one.
        assert!(
            close(concurrency.avg, (2.0 + 4.0 + 6.0) / 10.0),
            "{concurrency:?}"
        );
        assert_eq!((concurrency.min, concurrency.max), (1.0, 2.0));
        assert_eq!((concurrency.p50, concurrency.p90), (1.0, 2.0));
        // Decode: A 30 tokens over 3 s (10/s) from 1 s, B 80 over 6 s from 4 s.
        let decode = c.stats(Curve::DecodeThroughput, false);
        assert!(close(decode.avg, (30.0 + 80.0) / 10.0), "{decode:?}");
        assert!(close(decode.max, 80.0 / 6.0), "{decode:?}");
        // Active only while a request decodes: 1-10 s.
        let active = c.stats(Curve::DecodeThroughput, true);
        assert!(close(active.avg, 110.0 / 9.0), "{active:?}");
        assert!(close(active.min, 10.0), "{active:?}");
        // Prefill: A 100 tokens over 1 s, B 50 over 2 s; per user, B alone is 25/s.
        let prefill = c.stats(Curve::PrefillThroughput, false);
        assert!(close(prefill.avg, 150.0 / 10.0), "{prefill:?}");
        let per_user = c.stats(Curve::PrefillThroughputPerUser, true);
        assert!(
            close(per_user.max, 100.0) && close(per_user.min, 25.0),
            "{per_user:?}"
        );
        let total = c.stats(Curve::TotalThroughput, false);
        assert!(close(total.avg, 260.0 / 10.0), "{total:?}");
        // Tokens: A 100 from 0 s, +31 at 1 s, freed at 4 s; B 50 from 2 s, +81 at 4 s.
        let tokens = c.stats(Curve::TokensInFlight, false);
        let area = 100.0 * 1.0 + 131.0 * 1.0 + 181.0 * 2.0 + 131.0 * 6.0;
        assert!(close(tokens.avg, area / 10.0), "{tokens:?}");
        assert_eq!(tokens.max, 181.0);
    }

    #[test]
    fn a_request_ending_as_another_starts_is_not_counted_twice() {
        let c = curves(
            &[
                request(0, None, 10, 1.0, 1.0),
                request(10, None, 20, 1.0, 1.0),
            ],
            (0, 20),
        );
        let concurrency = c.stats(Curve::Concurrency, false);
        assert_eq!(
            (concurrency.avg, concurrency.max, concurrency.std),
            (1.0, 1.0, 0.0)
        );
        // Without first tokens (whole bodies) the stages are empty: zeros, as AIPerf writes.
        assert_eq!(
            c.stats(Curve::DecodeThroughput, false),
            TimeWeightedStats::default()
        );
        assert_eq!(
            c.stats(Curve::PrefillConcurrency, true),
            TimeWeightedStats::default()
        );
    }

    #[test]
    fn idle_time_counts_toward_effective_figures_but_not_active_ones() {
        let c = curves(&[request(0, Some(5), 10, 10.0, 11.0)], (0, 40));
        let effective = c.stats(Curve::DecodeThroughput, false);
        let active = c.stats(Curve::DecodeThroughput, true);
        assert!(
            close(effective.avg, active.avg / 8.0),
            "{effective:?} {active:?}"
        );
        assert_eq!(effective.p50, 0.0, "idle most of the window");
        assert_eq!(active.p50, active.max);
    }

    #[test]
    fn percentiles_by_selection_are_those_of_the_sorted_cumulative_time() {
        // AIPerf's way: sort by value, accumulate the durations, take the first value whose
        // share of the time reaches the percentile.
        let by_sorting = |segments: &[(f64, f64)], share: f64| {
            let mut sorted = segments.to_vec();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            let total: f64 = sorted.iter().map(|s| s.1).sum();
            let mut sum = 0.0;
            for (value, duration) in &sorted {
                sum += duration;
                if sum / total >= share {
                    return *value;
                }
            }
            sorted[sorted.len() - 1].0
        };
        let mut seed = 7_u64;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as f64
        };
        for n in [1, 2, 15, 16, 17, 100, 5_000] {
            // Few distinct values, so that ties are common, and varied durations.
            let segments: Vec<(f64, f64)> = (0..n)
                .map(|_| (next() % 40.0, next() % 1000.0 + 1.0))
                .collect();
            let stats = time_weighted(segments.clone(), 1.0);
            for (share, value) in [
                (0.5, stats.p50),
                (0.9, stats.p90),
                (0.95, stats.p95),
                (0.99, stats.p99),
            ] {
                assert_eq!(value, by_sorting(&segments, share), "n {n}, p{share}");
            }
        }
    }

    #[test]
    fn large_values_leave_no_residue_once_they_cancel() {
        let moments: Vec<At> = (0..4)
            .map(|i| At {
                time: f64::from(i),
                request: i,
                moment: Moment::Start,
            })
            .collect();
        let changes = [1e12 + 0.1, 3.3, -(1e12 + 0.1), -3.3];
        let steps = Steps::sweep(&moments, |i, _| Some(changes[i]));
        assert_eq!(steps.values.last(), Some(&0.0));
    }
}
