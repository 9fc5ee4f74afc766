//! What a run's files say: the client's `profile_export.jsonl` (one line per request) and the
//! mock server's truth log, paired by `X-Request-ID`. From them come the client's timing error
//! (its TTFT and ITL minus the server's own for the same request), how many requests were truly
//! in flight, and the rate achieved.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

/// One request as the client recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    /// The `X-Request-ID` it sent.
    pub id: String,
    /// `request_start_ns` (Unix ns).
    pub start_ns: u64,
    /// `request_end_ns` (Unix ns).
    pub end_ns: u64,
    /// Time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Inter-token latency, ms.
    pub itl_ms: Option<f64>,
    /// Responses received: chunks with content when streamed, else 1.
    pub responses: u64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Reads `profile_export.jsonl`.
pub fn read_client(path: &Path) -> anyhow::Result<Vec<ClientRecord>> {
    read_lines(path, |line| {
        let metadata = &line["metadata"];
        let metrics = &line["metrics"];
        let value = |tag: &str| metrics[tag]["value"].as_f64();
        let ok = line["error"].is_null();
        let responses = match metrics["inter_chunk_latency"]["value"].as_array() {
            Some(gaps) => gaps.len() as u64 + 1,
            None => u64::from(ok),
        };
        Some(ClientRecord {
            id: metadata["x_request_id"].as_str()?.to_owned(),
            start_ns: metadata["request_start_ns"].as_u64()?,
            end_ns: metadata["request_end_ns"].as_u64()?,
            ttft_ms: value("time_to_first_token"),
            itl_ms: value("inter_token_latency"),
            responses,
            ok,
        })
    })
}

/// One request as the mock server served it (its truth log).
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    /// When it arrived (Unix ns).
    pub arrival_ns: u64,
    /// When its first token was produced.
    pub first_token_ns: Option<u64>,
    /// When its last token was produced.
    pub last_token_ns: Option<u64>,
    /// Output tokens produced.
    pub output_tokens: u64,
}

impl Truth {
    /// The server's time to first token, ms.
    pub fn ttft_ms(&self) -> Option<f64> {
        Some(self.first_token_ns?.checked_sub(self.arrival_ns)? as f64 / 1e6)
    }

    /// The server's inter-token latency, ms: (last - first) / (tokens - 1).
    pub fn itl_ms(&self) -> Option<f64> {
        let span = self.last_token_ns?.checked_sub(self.first_token_ns?)?;
        (self.output_tokens >= 2).then(|| span as f64 / 1e6 / (self.output_tokens - 1) as f64)
    }
}

/// Reads a truth log into a map by request id.
pub fn read_truth(path: &Path) -> anyhow::Result<HashMap<String, Truth>> {
    let records = read_lines(path, |line| {
        Some((
            line["request_id"].as_str()?.to_owned(),
            Truth {
                arrival_ns: line["arrival_ns"].as_u64()?,
                first_token_ns: line["first_token_ns"].as_u64(),
                last_token_ns: line["last_token_ns"].as_u64(),
                output_tokens: line["output_tokens"].as_u64()?,
            },
        ))
    })?;
    Ok(records.into_iter().collect())
}

fn read_lines<T>(path: &Path, parse: impl Fn(&Value) -> Option<T>) -> anyhow::Result<Vec<T>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{} is not JSON", path.display(), number + 1))?;
        let parsed = parse(&value).with_context(|| {
            format!(
                "{}:{} lacks a field the benchmark reads",
                path.display(),
                number + 1
            )
        })?;
        out.push(parsed);
    }
    Ok(out)
}

/// The 50th and 99th percentiles of a sample, interpolated linearly (as numpy does).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    /// `None` for an empty sample.
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(Self {
            p50: percentile(&values, 0.50),
            p99: percentile(&values, 0.99),
        })
    }

    /// For errors, which can fall on either side: `p50` is the median signed error (the
    /// bias), `p99` the 99th percentile of the error's size, so that a tail below zero counts
    /// as much as one above. `None` for an empty sample.
    pub fn of_error(errors: Vec<f64>) -> Option<Self> {
        let sizes = errors.iter().map(|error| error.abs()).collect();
        Some(Self {
            p50: Self::of(errors)?.p50,
            p99: Self::of(sizes)?.p99,
        })
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

/// The client's timing error against the server's truth, over the requests found in both.
#[derive(Debug, Clone, Serialize)]
pub struct TimingError {
    /// Requests found in both files.
    pub paired: usize,
    /// Client TTFT minus server TTFT, ms ([`Percentiles::of_error`]: median, and p99 of the
    /// size).
    pub ttft_ms: Option<Percentiles>,
    /// Requests whose TTFT error is over [`LATE_TTFT_MS`]: far more than the kernel's delivery
    /// of a token takes, so how many requests the tail of `ttft_ms` is made of.
    pub ttft_late: usize,
    /// Client ITL minus server ITL, ms ([`Percentiles::of_error`]). A first token stamped
    /// late makes its request's ITL too short: the tail of this error is below zero.
    pub itl_ms: Option<Percentiles>,
    /// The server's own TTFT, ms (how late the mock itself was against its setting).
    pub server_ttft_ms: Option<Percentiles>,
}

/// A TTFT error over this many milliseconds counts as late in [`TimingError::ttft_late`].
pub const LATE_TTFT_MS: f64 = 1.0;

/// Pairs successful client records with the server's truth by request id.
pub fn timing_error(records: &[ClientRecord], truth: &HashMap<String, Truth>) -> TimingError {
    let mut ttft = Vec::new();
    let mut itl = Vec::new();
    let mut server_ttft = Vec::new();
    let mut paired = 0;
    for record in records.iter().filter(|r| r.ok) {
        let Some(truth) = truth.get(&record.id) else {
            continue;
        };
        paired += 1;
        if let (Some(client), Some(server)) = (record.ttft_ms, truth.ttft_ms()) {
            ttft.push(client - server);
            server_ttft.push(server);
        }
        if let (Some(client), Some(server)) = (record.itl_ms, truth.itl_ms()) {
            itl.push(client - server);
        }
    }
    TimingError {
        paired,
        ttft_late: ttft.iter().filter(|&&error| error > LATE_TTFT_MS).count(),
        ttft_ms: Percentiles::of_error(ttft),
        itl_ms: Percentiles::of_error(itl),
        server_ttft_ms: Percentiles::of(server_ttft),
    }
}

/// How the run flowed, from the records' start and end times.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    /// Requests that succeeded.
    pub succeeded: usize,
    /// Requests that failed or were cancelled.
    pub failed: usize,
    /// First start to last end, seconds.
    pub duration_s: f64,
    /// Successful requests per second over that span.
    pub requests_per_s: f64,
    /// Responses (content chunks, or bodies) per second.
    pub responses_per_s: f64,
    /// Requests in flight, time-averaged while the client was still starting new ones (from
    /// the first start to the last): a closed loop should hold its concurrency there.
    pub in_flight_mean: f64,
    /// Requests in flight, time-averaged from the moment the peak was first reached to the
    /// last start: in a closed loop whose first wave reaches its concurrency (the peak), the
    /// same figure without that wave's ramp (see `fill_ms`), so what is left of the shortfall
    /// is the client's turnaround between a request and the next.
    pub in_flight_after_fill: f64,
    /// The most requests in flight at once.
    pub in_flight_peak: usize,
    /// Milliseconds from the first start until that peak was first reached: how long the
    /// client took to send its first wave. A closed loop's *in flight* falls short of its
    /// concurrency by about `fill / 2` over the window, even with no gap between a request's
    /// end and its successor's start.
    pub fill_ms: f64,
    /// Milliseconds from a response's last bytes to the next request's write, over every end
    /// that a start follows: the k-th end paired with the start `peak` places after the k-th
    /// (a closed loop of `peak` workers, whose first wave has no predecessor). Its mean is
    /// what costs the closed loop `requests/s x turnaround` requests in flight after the fill.
    /// `None` when no request started after an end.
    pub turnaround_ms: Option<Turnaround>,
}

/// A closed loop's turnaround times (see [`Flow::turnaround_ms`]), ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Turnaround {
    /// Mean.
    pub mean: f64,
    /// Median and 99th percentile.
    pub percentiles: Percentiles,
}

impl Flow {
    /// `None` without records.
    pub fn of(records: &[ClientRecord]) -> Option<Self> {
        let first_start = records.iter().map(|r| r.start_ns).min()?;
        let last_start = records.iter().map(|r| r.start_ns).max()?;
        let last_end = records.iter().map(|r| r.end_ns).max()?;
        let succeeded = records.iter().filter(|r| r.ok).count();
        let responses: u64 = records.iter().filter(|r| r.ok).map(|r| r.responses).sum();
        let duration_s = last_end.saturating_sub(first_start) as f64 / 1e9;
        let per_s = |n: f64| {
            if duration_s > 0.0 {
                n / duration_s
            } else {
                0.0
            }
        };

        // +1 at each start, -1 at each end; ends sort before starts at the same instant.
        let mut events: Vec<(u64, i64)> = records
            .iter()
            .flat_map(|r| [(r.start_ns, 1), (r.end_ns.max(r.start_ns), -1)])
            .collect();
        events.sort_unstable();
        let (window_start, window_end) = if last_start > first_start {
            (first_start, last_start)
        } else {
            (first_start, last_end)
        };
        let mut in_flight: i64 = 0;
        let mut peak: i64 = 0;
        let mut peak_at = first_start;
        for &(at, change) in &events {
            in_flight += change;
            if in_flight > peak {
                peak = in_flight;
                peak_at = at;
            }
        }
        let turnaround_ms = turnaround(records, usize::try_from(peak).unwrap_or(0));
        let mean_over = |from: u64| {
            if window_end > from {
                mean_in_flight(&events, from, window_end)
            } else {
                peak as f64
            }
        };
        Some(Self {
            succeeded,
            failed: records.len() - succeeded,
            duration_s,
            requests_per_s: per_s(succeeded as f64),
            responses_per_s: per_s(responses as f64),
            in_flight_mean: mean_over(window_start),
            in_flight_after_fill: mean_over(peak_at.max(window_start)),
            in_flight_peak: usize::try_from(peak).unwrap_or(0),
            fill_ms: peak_at.saturating_sub(first_start) as f64 / 1e6,
            turnaround_ms,
        })
    }
}

/// [`Flow::turnaround_ms`] of `records`, run by `workers` workers.
fn turnaround(records: &[ClientRecord], workers: usize) -> Option<Turnaround> {
    let mut starts: Vec<u64> = records.iter().map(|r| r.start_ns).collect();
    let mut ends: Vec<u64> = records.iter().map(|r| r.end_ns).collect();
    starts.sort_unstable();
    ends.sort_unstable();
    let gaps: Vec<f64> = starts
        .iter()
        .skip(workers)
        .zip(&ends)
        .map(|(&start, &end)| (start as f64 - end as f64) / 1e6)
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    Some(Turnaround {
        mean,
        percentiles: Percentiles::of(gaps)?,
    })
}

/// Requests in flight, time-averaged over `from..to` (`to > from`), from `events`: `+1` at
/// each start and `-1` at each end, sorted by time.
fn mean_in_flight(events: &[(u64, i64)], from: u64, to: u64) -> f64 {
    let mut in_flight: i64 = 0;
    let mut area = 0.0;
    let mut previous = from;
    for &(at, change) in events {
        let clamped = at.clamp(from, to);
        area += in_flight as f64 * clamped.saturating_sub(previous) as f64;
        previous = clamped;
        in_flight += change;
    }
    area / to.saturating_sub(from) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, start_ms: u64, end_ms: u64) -> ClientRecord {
        ClientRecord {
            id: id.into(),
            start_ns: start_ms * 1_000_000,
            end_ns: end_ms * 1_000_000,
            ttft_ms: Some(51.0),
            itl_ms: Some(10.5),
            responses: 64,
            ok: true,
        }
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let p = Percentiles::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(p.p50, 50.5);
        assert!((p.p99 - 99.01).abs() < 1e-9, "{p:?}");
        assert!(Percentiles::of(Vec::new()).is_none());
    }

    #[test]
    fn an_error_s_tail_below_zero_counts_by_its_size() {
        // 98 exact, two 0.5 ms short: the signed p99 would be 0.
        let mut errors = vec![0.0; 98];
        errors.extend([-0.5, -0.5]);
        let p = Percentiles::of_error(errors).unwrap();
        assert_eq!(p.p50, 0.0);
        assert!((p.p99 - 0.5).abs() < 1e-9, "{p:?}");
        assert!(Percentiles::of_error(Vec::new()).is_none());
    }

    #[test]
    fn two_closed_loop_workers_hold_two_in_flight() {
        // Worker A: 0-10, 10-20, 20-30; worker B: 0-15, 15-30.
        let records = [
            record("a1", 0, 10),
            record("a2", 10, 20),
            record("a3", 20, 30),
            record("b1", 0, 15),
            record("b2", 15, 30),
        ];
        let flow = Flow::of(&records).unwrap();
        assert_eq!(flow.in_flight_peak, 2);
        assert!((flow.in_flight_mean - 2.0).abs() < 1e-9, "{flow:?}");
        assert!((flow.duration_s - 0.030).abs() < 1e-9);
        assert!((flow.requests_per_s - 5.0 / 0.030).abs() < 1e-6);
        assert!((flow.responses_per_s - 5.0 * 64.0 / 0.030).abs() < 1e-3);
        assert_eq!(flow.fill_ms, 0.0, "both started at once");
    }

    #[test]
    fn the_fill_time_is_how_long_the_first_wave_took_to_start() {
        let records = [
            record("a1", 0, 10),
            record("b1", 4, 14),
            record("a2", 10, 20),
        ];
        let flow = Flow::of(&records).unwrap();
        assert_eq!(flow.in_flight_peak, 2);
        assert!((flow.fill_ms - 4.0).abs() < 1e-9, "{flow:?}");
        // Until the last start (10 ms): one in flight for 4 ms, then two for 6 ms.
        assert!((flow.in_flight_mean - 1.6).abs() < 1e-9, "{flow:?}");
        assert!((flow.in_flight_after_fill - 2.0).abs() < 1e-9, "{flow:?}");
    }

    #[test]
    fn after_the_fill_a_turnaround_gap_is_what_falls_short() {
        // Peak at 4 ms; then a1 ends at 10 and its successor starts at 12 (a 2 ms gap).
        let records = [
            record("a1", 0, 10),
            record("b1", 4, 30),
            record("a2", 12, 30),
            record("b2", 30, 40),
        ];
        let flow = Flow::of(&records).unwrap();
        // From 4 to 30 ms (the last start): two in flight but for 10-12 ms.
        let expected = (2.0 * 26.0 - 2.0) / 26.0;
        assert!(
            (flow.in_flight_after_fill - expected).abs() < 1e-9,
            "{flow:?}"
        );
    }

    #[test]
    fn the_turnaround_pairs_each_end_with_the_start_a_wave_later() {
        // Worker A: its successors start 1 ms and 3 ms after its ends; worker B: 2 ms after.
        let records = [
            record("a1", 0, 10),
            record("b1", 0, 12),
            record("a2", 11, 20),
            record("b2", 14, 30),
            record("a3", 23, 30),
        ];
        let turnaround = Flow::of(&records).unwrap().turnaround_ms.unwrap();
        assert!((turnaround.mean - 2.0).abs() < 1e-9, "{turnaround:?}");
        assert!(
            (turnaround.percentiles.p50 - 2.0).abs() < 1e-9,
            "{turnaround:?}"
        );
        let single_wave = [record("a1", 0, 10), record("b1", 4, 14)];
        assert_eq!(Flow::of(&single_wave).unwrap().turnaround_ms, None);
    }

    #[test]
    fn one_wave_has_no_window_after_its_fill() {
        // The peak is reached at the last start: the figure is the peak.
        let records = [record("a1", 0, 10), record("b1", 4, 14)];
        let flow = Flow::of(&records).unwrap();
        assert_eq!(flow.in_flight_after_fill, 2.0, "{flow:?}");
    }

    #[test]
    fn errors_are_client_minus_server_for_paired_requests() {
        let truth = HashMap::from([(
            "a".to_owned(),
            Truth {
                arrival_ns: 1_000_000,
                first_token_ns: Some(51_000_000),
                last_token_ns: Some(681_000_000),
                output_tokens: 64,
            },
        )]);
        let records = [record("a", 0, 700), record("missing", 0, 700)];
        let error = timing_error(&records, &truth);
        assert_eq!(error.paired, 1);
        assert!((error.ttft_ms.unwrap().p50 - 1.0).abs() < 1e-9);
        assert!((error.itl_ms.unwrap().p99 - 0.5).abs() < 1e-9);
        assert!((error.server_ttft_ms.unwrap().p50 - 50.0).abs() < 1e-9);
        assert_eq!(error.ttft_late, 0, "1 ms is not over the threshold");

        let late = ClientRecord {
            ttft_ms: Some(61.0),
            ..record("a", 0, 700)
        };
        assert_eq!(timing_error(&[late], &truth).ttft_late, 1);
    }
}
