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
//! every chunk's timing (its default), its decode throughput and tokens in flight follow the
//! chunks; aiperf uses the request-level curves AIPerf falls back to otherwise. Both integrate
//! to the same tokens, so the decode throughputs' means agree; their percentiles can differ, and
//! tokens in flight counts a request's output tokens from its first token on, where AIPerf's
//! chunk-level curve adds them as they arrive.
//!
//! Memory: five numbers per request, kept in [`ValueColumn`]s (bounded in memory, spilled to a
//! temporary file), and read back once, when the run is over.

use std::cmp::Ordering;
use std::io;

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
    /// The curve whose positive stretches are this one's active time (AIPerf's `active_*`
    /// variants): the requests in the stage the throughput belongs to.
    pub fn active_when(self) -> Self {
        match self {
            Self::DecodeThroughput | Self::DecodeThroughputPerUser | Self::DecodeConcurrency => {
                Self::DecodeConcurrency
            }
            Self::PrefillThroughput | Self::PrefillThroughputPerUser | Self::PrefillConcurrency => {
                Self::PrefillConcurrency
            }
            Self::Concurrency | Self::TotalThroughput | Self::TokensInFlight => Self::Concurrency,
        }
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
        let offset = |ns: u64| ns as f64 - origin as f64;
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

    /// The curves over `window` (clock readings, the benchmark's first send to its last
    /// response); `None` without requests. Fails only if the values cannot be read back from
    /// their temporary files.
    pub(crate) fn finish(self, window: (u64, u64)) -> io::Result<Option<Curves>> {
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
        let relative = |ns: u64| ns as f64 - origin as f64;
        Ok(Some(Curves::of(
            &requests,
            (relative(window.0), relative(window.1)),
        )))
    }
}

/// The intervals read back, one column each (NaN where a value is missing).
struct Requests {
    start: Vec<f64>,
    first_token: Vec<f64>,
    end: Vec<f64>,
    input_tokens: Vec<f64>,
    output_tokens: Vec<f64>,
}

/// Every curve of a run, and the window their statistics are taken over.
#[derive(Debug)]
pub(crate) struct Curves {
    window: (f64, f64),
    concurrency: Steps,
    decode_concurrency: Steps,
    prefill_concurrency: Steps,
    decode_throughput: Steps,
    prefill_throughput: Steps,
    total_throughput: Steps,
    decode_throughput_per_user: Steps,
    prefill_throughput_per_user: Steps,
    tokens_in_flight: Steps,
}

/// Nanoseconds per second: the curves' rates are per second.
const NS_PER_S: f64 = 1e9;

impl Curves {
    fn of(r: &Requests, window: (f64, f64)) -> Self {
        let n = r.start.len();
        let known = |v: f64| !v.is_nan();
        let mut concurrency = Vec::with_capacity(2 * n);
        let mut decode_concurrency = Vec::new();
        let mut prefill_concurrency = Vec::new();
        let mut decode_throughput = Vec::new();
        let mut prefill_throughput = Vec::new();
        let mut tokens_in_flight = Vec::new();
        for i in 0..n {
            let (start, first, end) = (r.start[i], r.first_token[i], r.end[i]);
            let (input, output) = (r.input_tokens[i], r.output_tokens[i]);
            push_interval(&mut concurrency, start, end, 1.0);
            if !known(first) {
                continue;
            }
            push_interval(&mut decode_concurrency, first, end, 1.0);
            push_interval(&mut prefill_concurrency, start, first, 1.0);
            let decode_ns = end - first;
            let in_decode = known(output) && output >= 1.0 && decode_ns > 0.0;
            if in_decode {
                let rate = (output - 1.0) / decode_ns * NS_PER_S;
                push_interval(&mut decode_throughput, first, end, rate);
            }
            let prefill_ns = first - start;
            let in_prefill = known(input) && prefill_ns > 0.0;
            if in_prefill {
                let rate = input / prefill_ns * NS_PER_S;
                push_interval(&mut prefill_throughput, start, first, rate);
                tokens_in_flight.push((start, input));
            }
            let holds_output = known(output) && decode_ns > 0.0;
            if holds_output {
                tokens_in_flight.push((first, output));
            }
            let freed =
                if in_prefill { input } else { 0.0 } + if holds_output { output } else { 0.0 };
            if in_prefill || holds_output {
                tokens_in_flight.push((end, -freed));
            }
        }
        let total_events: Vec<(f64, f64)> = decode_throughput
            .iter()
            .chain(&prefill_throughput)
            .copied()
            .collect();
        let concurrency = Steps::sweep(concurrency);
        let decode_concurrency = Steps::sweep(decode_concurrency);
        let prefill_concurrency = Steps::sweep(prefill_concurrency);
        let decode_throughput = Steps::sweep(decode_throughput);
        let prefill_throughput = Steps::sweep(prefill_throughput);
        Self {
            window,
            decode_throughput_per_user: decode_throughput.divided_by(&decode_concurrency),
            prefill_throughput_per_user: prefill_throughput.divided_by(&prefill_concurrency),
            total_throughput: Steps::sweep(total_events),
            tokens_in_flight: Steps::sweep(tokens_in_flight),
            concurrency,
            decode_concurrency,
            prefill_concurrency,
            decode_throughput,
            prefill_throughput,
        }
    }

    fn curve(&self, curve: Curve) -> &Steps {
        match curve {
            Curve::Concurrency => &self.concurrency,
            Curve::DecodeThroughput => &self.decode_throughput,
            Curve::PrefillThroughput => &self.prefill_throughput,
            Curve::DecodeConcurrency => &self.decode_concurrency,
            Curve::PrefillConcurrency => &self.prefill_concurrency,
            Curve::TotalThroughput => &self.total_throughput,
            Curve::DecodeThroughputPerUser => &self.decode_throughput_per_user,
            Curve::PrefillThroughputPerUser => &self.prefill_throughput_per_user,
            Curve::TokensInFlight => &self.tokens_in_flight,
        }
    }

    /// A curve's statistics over the whole window, or, when `active_only`, over the moments
    /// its [`Curve::active_when`] curve is positive; all zero when it has no such time (as
    /// AIPerf reports them).
    pub(crate) fn stats(&self, curve: Curve, active_only: bool) -> TimeWeightedStats {
        let steps = self.curve(curve);
        let segments = if active_only {
            steps.segments_while(self.curve(curve.active_when()), self.window)
        } else {
            steps.segments(self.window)
        };
        let over_ns = if active_only {
            segments.iter().map(|s| s.1).sum()
        } else {
            self.window.1 - self.window.0
        };
        time_weighted(segments, over_ns)
    }
}

/// `+value` at `from` and `-value` at `to`.
fn push_interval(events: &mut Vec<(f64, f64)>, from: f64, to: f64, value: f64) {
    events.push((from, value));
    events.push((to, -value));
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
    /// The running sum of `(time, change)` events in time order, decreases before increases
    /// at the same time (a request ending as another starts does not count both).
    fn sweep(mut events: Vec<(f64, f64)>) -> Self {
        events.sort_unstable_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then_with(|| (a.1 > 0.0).cmp(&(b.1 > 0.0)))
        });
        let mut sum = 0.0;
        let (times, mut values): (Vec<f64>, Vec<f64>) = events
            .into_iter()
            .map(|(time, change)| {
                sum += change;
                (time, sum)
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

    /// This function divided by `other` on every time of either, 0 where `other` is not
    /// positive; empty when either is.
    fn divided_by(&self, other: &Self) -> Self {
        if self.times.is_empty() || other.times.is_empty() {
            return Self::default();
        }
        let times = merged_times(&self.times, &other.times);
        let values = times
            .iter()
            .map(|&t| {
                let denominator = other.at(t);
                if denominator > 0.0 {
                    self.at(t) / denominator
                } else {
                    0.0
                }
            })
            .collect();
        Self { times, values }
    }

    /// `(value, duration)` of every stretch of `window` the function holds a value, in time
    /// order, stretches of no duration left out.
    fn segments(&self, window: (f64, f64)) -> Vec<(f64, f64)> {
        let (from, to) = window;
        if self.times.is_empty() || to <= from {
            return Vec::new();
        }
        let mut segments = Vec::new();
        let mut at = from;
        let mut value = self.at(from);
        let first_after = self.times.partition_point(|&t| t <= from);
        for (&time, &next) in self.times[first_after..]
            .iter()
            .zip(&self.values[first_after..])
        {
            if time >= to {
                break;
            }
            if time > at {
                segments.push((value, time - at));
                at = time;
            }
            value = next;
        }
        if to > at {
            segments.push((value, to - at));
        }
        segments
    }

    /// [`Steps::segments`] restricted to the stretches where `mask` is positive.
    fn segments_while(&self, mask: &Self, window: (f64, f64)) -> Vec<(f64, f64)> {
        let (from, to) = window;
        if self.times.is_empty() || mask.times.is_empty() || to <= from {
            return Vec::new();
        }
        let inside = |times: &[f64]| {
            let first = times.partition_point(|&t| t <= from);
            let end = times.partition_point(|&t| t < to);
            times[first..end.max(first)].to_vec()
        };
        let mut grid = merged_times(&inside(&self.times), &inside(&mask.times));
        grid.insert(0, from);
        grid.push(to);
        grid.dedup();
        grid.windows(2)
            .filter(|pair| pair[1] > pair[0] && mask.at(pair[0]) > 0.0)
            .map(|pair| (self.at(pair[0]), pair[1] - pair[0]))
            .collect()
    }
}

/// The sorted union of two sorted lists of times, each time once.
fn merged_times(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut times: Vec<f64> = a.iter().chain(b).copied().collect();
    times.sort_unstable_by(f64::total_cmp);
    times.dedup();
    times
}

/// The statistics of `(value, duration)` segments, the mean and deviation taken over
/// `over_ns`; the percentiles are the first values, in value order, by which that share of
/// the segments' time is reached.
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
    segments.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    let total: f64 = segments.iter().map(|s| s.1).sum();
    let mut cumulative = Vec::with_capacity(segments.len());
    let mut sum = 0.0;
    for segment in &segments {
        sum += segment.1;
        cumulative.push(sum / total);
    }
    let percentile = |q: f64| {
        let index = cumulative.partition_point(|&fraction| fraction < q);
        segments[index.min(segments.len() - 1)].0
    };
    TimeWeightedStats {
        avg,
        min: segments[0].0,
        max: segments[segments.len() - 1].0,
        p50: percentile(0.50),
        p90: percentile(0.90),
        p95: percentile(0.95),
        p99: percentile(0.99),
        std: variance.sqrt(),
    }
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

    fn curves(requests: &[Interval], window: (u64, u64)) -> Curves {
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
    fn large_values_leave_no_residue_once_they_cancel() {
        let steps = Steps::sweep(vec![
            (0.0, 1e12 + 0.1),
            (1.0, 3.3),
            (2.0, -(1e12 + 0.1)),
            (3.0, -3.3),
        ]);
        assert_eq!(steps.values.last(), Some(&0.0));
    }
}
