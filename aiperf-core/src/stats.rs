//! Summary statistics of one metric's values: the numbers every export reports (DESIGN.md §5).
//!
//! In the data flow (DESIGN.md §4) the metrics stage collects each record metric's values over
//! the profiling records, and [`Stats::from_values`] turns them into avg, min, max, the
//! percentiles p1..p99, the population standard deviation, count and sum. The percentiles are
//! computed exactly as numpy's default `np.percentile` (method `linear`, Hyndman & Fan type 7),
//! including numpy's two-sided interpolation formula, so that results agree with AIPerf's to
//! the last bit where the inputs do.
//!
//! ```
//! use aiperf_core::stats::Stats;
//!
//! let mut latencies_ms = [12.0, 10.0, 11.0, 40.0];
//! let stats = Stats::from_values(&mut latencies_ms).expect("values given");
//! assert_eq!(stats.count, 4);
//! assert_eq!(stats.p50, 11.5);
//! assert_eq!(stats.max, 40.0);
//! ```

use std::cmp::Ordering;

/// The percentiles every distribution reports, in export order.
pub const PERCENTILES: [u8; 9] = [1, 5, 10, 25, 50, 75, 90, 95, 99];

/// Summary statistics of a non-empty set of values, in the values' unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// How many values.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Their mean.
    pub avg: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// 1st percentile.
    pub p1: f64,
    /// 5th percentile.
    pub p5: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Population standard deviation (numpy's `np.std` default, `ddof = 0`).
    pub std: f64,
}

impl Stats {
    /// Computes the statistics of `values`, or `None` when there are none.
    ///
    /// The slice is reordered (partially sorted) in place; no copy is made. It runs in linear
    /// time: the percentiles come from successive selections, not a full sort, which matters
    /// for inter-chunk latency (one value per chunk of every request). Values must not be NaN
    /// (the metrics never produce one); a NaN would make the result meaningless, not panic.
    pub fn from_values(values: &mut [f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        debug_assert!(
            values.iter().all(|v| !v.is_nan()),
            "statistics of NaN values"
        );
        let sum = compensated_sum(values.iter().copied());
        let avg = sum / n as f64;
        let variance = compensated_sum(values.iter().map(|v| (v - avg) * (v - avg))) / n as f64;

        // The ranks every percentile interpolates between, plus the extremes.
        let mut ranks: Vec<usize> = Vec::with_capacity(2 * PERCENTILES.len() + 2);
        ranks.extend([0, n - 1]);
        for p in PERCENTILES {
            if let Some((lo, hi, _)) = interpolation_point(n, p) {
                ranks.extend([lo, hi]);
            }
        }
        ranks.sort_unstable();
        ranks.dedup();
        select_ranks(values, &ranks);

        let percentile = |p: u8| match interpolation_point(n, p) {
            Some((lo, hi, gamma)) => lerp(values[lo], values[hi], gamma),
            None => values[n - 1],
        };
        Some(Self {
            count: n as u64,
            sum,
            avg,
            min: values[0],
            max: values[n - 1],
            p1: percentile(1),
            p5: percentile(5),
            p10: percentile(10),
            p25: percentile(25),
            p50: percentile(50),
            p75: percentile(75),
            p90: percentile(90),
            p95: percentile(95),
            p99: percentile(99),
            std: variance.sqrt(),
        })
    }

    /// The percentiles with their export names (`"p1"` .. `"p99"`), in [`PERCENTILES`] order.
    pub fn percentiles(&self) -> [(&'static str, f64); 9] {
        [
            ("p1", self.p1),
            ("p5", self.p5),
            ("p10", self.p10),
            ("p25", self.p25),
            ("p50", self.p50),
            ("p75", self.p75),
            ("p90", self.p90),
            ("p95", self.p95),
            ("p99", self.p99),
        ]
    }
}

/// Where percentile `p` of `n` sorted values falls, as numpy's `linear` method computes it:
/// the two neighbouring ranks and the weight of the upper one, or `None` when the virtual
/// index is at or past the last rank (numpy then takes the maximum).
fn interpolation_point(n: usize, p: u8) -> Option<(usize, usize, f64)> {
    // numpy: q = p / 100 (np.true_divide), virtual index = (n - 1) * q.
    let virtual_index = (n - 1) as f64 * (f64::from(p) / 100.0);
    if virtual_index >= (n - 1) as f64 {
        return None;
    }
    let lo = virtual_index.floor();
    Some((lo as usize, lo as usize + 1, virtual_index - lo))
}

/// numpy's `_lerp`: `a + (b - a) * t`, computed from the nearer end so that it is exact at
/// `t = 1` and monotonic.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Reorders `values` so that each rank in `ranks` (sorted, distinct) holds the value it would
/// hold if the slice were sorted, everything before it is not greater and everything after it
/// is not smaller.
fn select_ranks(values: &mut [f64], ranks: &[usize]) {
    let mut start = 0;
    for &rank in ranks {
        values[start..].select_nth_unstable_by(rank - start, total_order);
        start = rank + 1;
    }
}

fn total_order(a: &f64, b: &f64) -> Ordering {
    a.total_cmp(b)
}

/// Neumaier's compensated sum: accurate to the last bit or two even over millions of values
/// of mixed magnitude, where a plain running sum drifts.
fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0_f64;
    let mut compensation = 0.0_f64;
    for v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            compensation += (sum - t) + v;
        } else {
            compensation += (v - t) + sum;
        }
        sum = t;
    }
    sum + compensation
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn stats(values: &[f64]) -> Stats {
        Stats::from_values(&mut values.to_vec()).expect("non-empty")
    }

    fn assert_close(actual: f64, expected: f64, what: &str) {
        let tolerance = 1e-12 * expected.abs().max(1.0);
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: {actual} != {expected}"
        );
    }

    /// Every field against the value numpy 2.4 computes:
    /// `np.percentile(v, [1, 5, 10, 25, 50, 75, 90, 95, 99])`, `np.mean(v)`, `np.std(v)`.
    fn assert_numpy(values: &[f64], expected: [f64; 14]) {
        let s = stats(values);
        let [
            avg,
            min,
            max,
            p1,
            p5,
            p10,
            p25,
            p50,
            p75,
            p90,
            p95,
            p99,
            std,
            sum,
        ] = expected;
        assert_eq!(s.count, values.len() as u64);
        for (name, actual, expected) in [
            ("avg", s.avg, avg),
            ("min", s.min, min),
            ("max", s.max, max),
            ("p1", s.p1, p1),
            ("p5", s.p5, p5),
            ("p10", s.p10, p10),
            ("p25", s.p25, p25),
            ("p50", s.p50, p50),
            ("p75", s.p75, p75),
            ("p90", s.p90, p90),
            ("p95", s.p95, p95),
            ("p99", s.p99, p99),
            ("std", s.std, std),
            ("sum", s.sum, sum),
        ] {
            assert_close(actual, expected, name);
        }
    }

    #[test]
    fn empty_input_has_no_statistics() {
        assert_eq!(Stats::from_values(&mut []), None);
    }

    #[test]
    fn a_single_value_is_every_statistic() {
        assert_numpy(
            &[7.5],
            [
                7.5, 7.5, 7.5, 7.5, 7.5, 7.5, 7.5, 7.5, 7.5, 7.5, 7.5, 7.5, 0.0, 7.5,
            ],
        );
    }

    #[test]
    fn two_values_interpolate_linearly() {
        assert_numpy(
            &[10.0, 20.0],
            [
                15.0, 10.0, 20.0, 10.1, 10.5, 11.0, 12.5, 15.0, 17.5, 19.0, 19.5, 19.9, 5.0, 30.0,
            ],
        );
    }

    #[test]
    fn unsorted_integers_match_numpy() {
        // v = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
        assert_numpy(
            &[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0],
            [
                4.0,
                1.0,
                9.0,
                1.0,
                1.0,
                1.0,
                2.5,
                4.0,
                5.0,
                6.0,
                7.5,
                8.700000000000001,
                2.256304299271065,
                44.0,
            ],
        );
    }

    #[test]
    fn latencies_with_fractions_match_numpy() {
        // v = [79.7, 81.25, 80.0, 120.5, 95.125, 79.7, 300.0]
        assert_numpy(
            &[79.7, 81.25, 80.0, 120.5, 95.125, 79.7, 300.0],
            [
                119.46785714285714,
                79.7,
                300.0,
                79.7,
                79.7,
                79.7,
                79.85,
                81.25,
                107.8125,
                192.30000000000007,
                246.14999999999986,
                289.2299999999999,
                74.99216710797882,
                836.275,
            ],
        );
    }

    #[test]
    fn one_hundred_and_one_values_hit_exact_ranks() {
        // v = np.arange(101) * 0.5: every percentile lands on a rank.
        let values: Vec<f64> = (0..=100).map(|i| f64::from(i) * 0.5).collect();
        let s = stats(&values);
        assert_eq!(
            [s.p1, s.p5, s.p10, s.p25, s.p50, s.p75, s.p90, s.p95, s.p99],
            [0.5, 2.5, 5.0, 12.5, 25.0, 37.5, 45.0, 47.5, 49.5]
        );
        assert_close(s.std, 14.577379737113251, "std");
    }

    #[test]
    fn a_thousand_skewed_values_match_numpy() {
        // v = [(i * 37) % 1000 ** 1.5 / 7 for i in range(1000)], as numpy computes it.
        let values: Vec<f64> = (0..1000_u32)
            .map(|i| f64::from((i * 37) % 1000).powf(1.5) / 7.0)
            .collect();
        assert_numpy(
            &values,
            [
                1804.757597104938,
                0.0,
                4510.764899614237,
                4.510935547952423,
                50.43224586623002,
                142.64339375336507,
                563.8462482610086,
                1594.7968236742572,
                2929.828112095048,
                3851.3587502977434,
                4176.722374948044,
                4443.2728796506,
                1354.507974294247,
                1804757.597104938,
            ],
        );
    }

    #[test]
    fn percentile_names_follow_the_export_order() {
        let names: Vec<&str> = stats(&[1.0])
            .percentiles()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let expected: Vec<String> = PERCENTILES.iter().map(|p| format!("p{p}")).collect();
        assert_eq!(names, expected);
    }

    proptest! {
        #[test]
        fn statistics_are_ordered_and_bounded(
            values in prop::collection::vec(-1.0e9_f64..1.0e9, 1..300)
        ) {
            let s = stats(&values);
            let chain = [s.min, s.p1, s.p5, s.p10, s.p25, s.p50, s.p75, s.p90, s.p95, s.p99, s.max];
            for pair in chain.windows(2) {
                prop_assert!(pair[0] <= pair[1], "{:?}", chain);
            }
            let true_min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let true_max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert_eq!(s.min, true_min);
            prop_assert_eq!(s.max, true_max);
            let slack = 1e-9 * true_max.abs().max(true_min.abs()).max(1.0);
            prop_assert!(s.avg >= s.min - slack && s.avg <= s.max + slack);
            prop_assert!(s.std >= 0.0);
            prop_assert_eq!(s.count, values.len() as u64);
        }

        #[test]
        fn selection_agrees_with_a_full_sort(
            values in prop::collection::vec(0.0_f64..1000.0, 1..200)
        ) {
            let s = stats(&values);
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            for (p, actual) in PERCENTILES.iter().zip(s.percentiles()) {
                let expected = match interpolation_point(n, *p) {
                    Some((lo, hi, gamma)) => lerp(sorted[lo], sorted[hi], gamma),
                    None => sorted[n - 1],
                };
                prop_assert_eq!(actual.1, expected);
            }
        }
    }
}
