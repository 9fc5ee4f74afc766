//! The last stage of the data flow (DESIGN.md §4): a [`crate::metrics::BenchmarkReport`]
//! written out as AIPerf 0.13 writes its results, so that users' scripts keep working:
//!
//! | file | module |
//! |---|---|
//! | `profile_export_aiperf.json` (statistics per metric, config, errors) | [`json`] |
//! | `profile_export_aiperf.csv` (the same statistics, spreadsheet-shaped) | [`csv`] |
//! | `profile_export.jsonl` (one line per request) | [`jsonl`] |
//! | `inputs.json` (the request bodies sent, per session) | [`inputs`] |
//! | the console tables | [`console`] |
//!
//! Each module writes to any `io::Write`; [`ArtifactDir`] puts the files in the artifact
//! directory (buffered, with errors naming the file) and checks before a run that the
//! directory is writable, so that a run's results are never lost to a typo in
//! `--artifact-dir`. `profile_export.jsonl` is written during the run, a line as each request
//! ends ([`RecordsJsonl`], fed by [`crate::record_processor`]); the others after it.
//!
//! ```no_run
//! use aiperf_core::export::{ArtifactDir, console};
//! use aiperf_core::metrics::{Analysis, MetricOptions, RunFacts};
//!
//! # fn main() -> Result<(), aiperf_core::export::ExportError> {
//! let dir = ArtifactDir::prepare("artifacts")?; // before the run
//! # let records: Vec<aiperf_core::record::RequestRecord> = Vec::new();
//! let mut analysis = Analysis::new(&MetricOptions::default());
//! let mut jsonl = dir.records_jsonl()?; // before the run
//! for record in &records {
//!     // as each request ends
//!     jsonl.write(record, analysis.add(record))?;
//! }
//! jsonl.finish()?;
//! let report = analysis.finish(&RunFacts::default());
//! print!("{}", console::render(&report));
//! let input_config = serde_json::json!({"endpoint": {"streaming": true}});
//! dir.write_profile_json(&report, &input_config, &serde_json::json!({"trial": 0}))?;
//! dir.write_profile_csv(&report)?;
//! dir.write_inputs_json(&[])?;
//! # Ok(())
//! # }
//! ```

mod artifact_dir;
pub mod console;
pub mod csv;
pub mod inputs;
pub mod json;
pub mod jsonl;
pub mod outputs;

pub use artifact_dir::{ArtifactDir, ExportError, OutputsJson, RecordsJsonl};

/// A metric value as JSON: a whole number where its unit counts (tokens, requests) and the
/// value is whole, else a float; `None` for a value JSON cannot hold (NaN, infinities).
pub(crate) fn display_number(value: f64, integral: bool) -> Option<serde_json::Number> {
    if integral && value >= 0.0 && value.fract() == 0.0 && value <= u64::MAX as f64 {
        Some(serde_json::Number::from(value as u64))
    } else {
        serde_json::Number::from_f64(value)
    }
}
pub use inputs::SessionPayloads;
