//! `--random-range-ratio`: synthetic prompt and output lengths drawn uniformly from a window
//! around their means, as `vllm bench serve` draws them and as AIPerf 0.13 does, in either of
//! its two styles ([`WindowStyle`], AIPerf's `--random-corpus-style`).
//!
//! ```
//! use aiperf_core::dataset::range_ratio::{RangeRatio, WindowStyle};
//! use aiperf_core::dataset::synthetic::LengthDistribution;
//!
//! let ratio = RangeRatio::parse(r#"{"input": 0.25, "output": 0.5}"#, WindowStyle::Vllm).unwrap();
//! assert_eq!(ratio.input_window(100), LengthDistribution::Uniform { low: 75, high: 125 });
//! assert_eq!(ratio.output_window(10), LengthDistribution::Uniform { low: 5, high: 15 });
//! ```

use serde::Deserialize;

use super::synthetic::LengthDistribution;

/// How a ratio `r` makes a window of a mean: AIPerf's two `--random-corpus-style`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowStyle {
    /// `vllm bench serve`'s: `[floor(mean x (1 - r)), ceil(mean x (1 + r))]`, `r` in
    /// `[0, 1)`, one ratio for both lengths or one each.
    #[default]
    Vllm,
    /// SGLang's `bench_serving`: `[max(1, int(mean x r)), mean]`, `r` in `[0, 1]`, one ratio
    /// for both lengths.
    Sglang,
}

/// The ratios of the prompt's and the output's windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeRatio {
    /// The prompt length's ratio.
    pub input: f64,
    /// The output length's ratio.
    pub output: f64,
    /// How each ratio makes its window.
    pub style: WindowStyle,
}

/// A `--random-range-ratio` that is not a ratio the style takes.
#[derive(Debug, thiserror::Error)]
pub enum RangeRatioError {
    /// Neither a number nor `{"input": R, "output": R}`.
    #[error(
        "`{text}` is neither a ratio (0.3) nor a JSON object of the input's and the output's \
         ({{\"input\": 0.3, \"output\": 0.5}})"
    )]
    Malformed {
        /// What was given.
        text: String,
        /// What the JSON reader said of it.
        #[source]
        source: serde_json::Error,
    },
    /// A ratio outside the style's range.
    #[error("the {which} ratio must be from 0 to {bound}, got {value}")]
    OutOfRange {
        /// `input` or `output`.
        which: &'static str,
        /// What was given.
        value: f64,
        /// The style's upper bound, written as the range's end.
        bound: &'static str,
    },
    /// Two ratios where the style takes one.
    #[error("the sglang style takes one ratio for both lengths: give one number")]
    OneRatioOnly,
}

/// `{"input": R, "output": R}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PerLength {
    input: f64,
    output: f64,
}

impl RangeRatio {
    /// Reads `text`: one ratio for both lengths (`0.3`), or, in the vLLM style, one each
    /// (`{"input": 0.3, "output": 0.5}`).
    pub fn parse(text: &str, style: WindowStyle) -> Result<Self, RangeRatioError> {
        let text = text.trim();
        let (input, output) = match text.parse::<f64>() {
            Ok(ratio) => (ratio, ratio),
            Err(_) => {
                let both: PerLength =
                    serde_json::from_str(text).map_err(|source| RangeRatioError::Malformed {
                        text: text.to_owned(),
                        source,
                    })?;
                if style == WindowStyle::Sglang {
                    return Err(RangeRatioError::OneRatioOnly);
                }
                (both.input, both.output)
            }
        };
        for (which, value) in [("input", input), ("output", output)] {
            let in_range = match style {
                WindowStyle::Vllm => (0.0..1.0).contains(&value),
                WindowStyle::Sglang => (0.0..=1.0).contains(&value),
            };
            if !in_range {
                let bound = match style {
                    WindowStyle::Vllm => "1 (not included)",
                    WindowStyle::Sglang => "1",
                };
                return Err(RangeRatioError::OutOfRange {
                    which,
                    value,
                    bound,
                });
            }
        }
        Ok(Self {
            input,
            output,
            style,
        })
    }

    /// The prompt lengths' window around `mean`. Its low end may be 0, which a prompt cannot
    /// be (a draw of 0 becomes 1): the caller decides whether a prefix makes up for it (the
    /// CLI refuses such a window without one, as vLLM and AIPerf do).
    pub fn input_window(&self, mean: u32) -> LengthDistribution {
        self.window(mean, self.input, 0)
    }

    /// The output lengths' window around `mean`, at least 1 at both ends.
    pub fn output_window(&self, mean: u32) -> LengthDistribution {
        self.window(mean, self.output, 1)
    }

    fn window(&self, mean: u32, ratio: f64, floor: u32) -> LengthDistribution {
        let mean_f = f64::from(mean);
        let (low, high) = match self.style {
            WindowStyle::Vllm => (
                (mean_f * (1.0 - ratio)).floor() as u32,
                (mean_f * (1.0 + ratio)).ceil().min(f64::from(u32::MAX)) as u32,
            ),
            WindowStyle::Sglang => (((mean_f * ratio) as u32).max(1), mean),
        };
        LengthDistribution::Uniform {
            low: low.max(floor),
            high: high.max(floor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(distribution: LengthDistribution) -> (u32, u32) {
        match distribution {
            LengthDistribution::Uniform { low, high } => (low, high),
            other => panic!("not a window: {other:?}"),
        }
    }

    #[test]
    fn vllm_windows_are_symmetric_floor_and_ceiling() {
        let ratio = RangeRatio::parse("0.3", WindowStyle::Vllm).unwrap();
        assert_eq!((ratio.input, ratio.output), (0.3, 0.3));
        // 550 x 0.7 = 385, 550 x 1.3 = 715; 7 x 0.7 = 4.9, 7 x 1.3 = 9.1.
        assert_eq!(bounds(ratio.input_window(550)), (385, 715));
        assert_eq!(bounds(ratio.output_window(7)), (4, 10));
        let zero = RangeRatio::parse("0", WindowStyle::Vllm).unwrap();
        assert_eq!(bounds(zero.input_window(128)), (128, 128));
        // The prompt's low end may reach 0 (refused by the caller); the output's stays 1.
        let wide = RangeRatio::parse("0.9", WindowStyle::Vllm).unwrap();
        assert_eq!(bounds(wide.input_window(1)), (0, 2));
        assert_eq!(bounds(wide.output_window(1)), (1, 2));
    }

    #[test]
    fn sglang_windows_reach_down_from_the_mean() {
        let ratio = RangeRatio::parse("0.25", WindowStyle::Sglang).unwrap();
        assert_eq!(bounds(ratio.input_window(1000)), (250, 1000));
        assert_eq!(bounds(ratio.output_window(3)), (1, 3));
        let one = RangeRatio::parse("1", WindowStyle::Sglang).unwrap();
        assert_eq!(bounds(one.input_window(64)), (64, 64));
    }

    #[test]
    fn each_length_may_have_its_own_ratio_in_the_vllm_style_only() {
        let text = r#" {"input": 0.1, "output": 0.5} "#;
        let ratio = RangeRatio::parse(text, WindowStyle::Vllm).unwrap();
        assert_eq!((ratio.input, ratio.output), (0.1, 0.5));
        assert!(matches!(
            RangeRatio::parse(text, WindowStyle::Sglang),
            Err(RangeRatioError::OneRatioOnly)
        ));
    }

    #[test]
    fn ratios_outside_the_styles_range_and_malformed_text_are_refused() {
        for (text, style) in [
            ("1", WindowStyle::Vllm),
            ("-0.1", WindowStyle::Vllm),
            ("NaN", WindowStyle::Vllm),
            ("1.5", WindowStyle::Sglang),
            (r#"{"input": 0.2, "output": 1}"#, WindowStyle::Vllm),
        ] {
            let err = RangeRatio::parse(text, style).unwrap_err();
            assert!(
                matches!(err, RangeRatioError::OutOfRange { .. }),
                "{text}: {err}"
            );
        }
        for text in [
            "",
            "abc",
            r#"{"input": 0.2}"#,
            r#"{"input": 0.2, "output": 0.1, "x": 1}"#,
        ] {
            let err = RangeRatio::parse(text, WindowStyle::Vllm).unwrap_err();
            assert!(
                matches!(err, RangeRatioError::Malformed { .. }),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn a_missing_key_is_named() {
        let err = RangeRatio::parse(r#"{"input": 0.2}"#, WindowStyle::Vllm).unwrap_err();
        let source = std::error::Error::source(&err).expect("the JSON reader's error");
        assert!(
            source.to_string().contains("missing field `output`"),
            "{source}"
        );
    }

    #[test]
    fn draws_stay_in_the_window_and_reach_both_ends() {
        use rand::SeedableRng;
        let window = LengthDistribution::Uniform { low: 3, high: 6 };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let draws: std::collections::BTreeSet<u32> =
            (0..200).map(|_| window.sample(&mut rng)).collect();
        assert_eq!(draws.into_iter().collect::<Vec<_>>(), [3, 4, 5, 6]);
        let reaching_zero = LengthDistribution::Uniform { low: 0, high: 1 };
        assert!((0..50).all(|_| reaching_zero.sample(&mut rng) == 1));
    }
}
