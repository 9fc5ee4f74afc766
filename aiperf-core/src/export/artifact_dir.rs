//! The artifact directory (`--artifact-dir`): checked writable before a run, then given the
//! export files, each written through a buffer and flushed explicitly so that no write error
//! goes unseen.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use super::inputs::SessionPayloads;
use super::{csv, inputs, json, jsonl, outputs};
use crate::metrics::{BenchmarkReport, RecordRow};
use crate::record::RequestRecord;

/// Writing the exports failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The directory cannot be created.
    #[error("cannot create the artifact directory {}: choose another --artifact-dir or fix its permissions", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The directory exists but a file cannot be written in it.
    #[error("cannot write in the artifact directory {}: choose another --artifact-dir or fix its permissions", path.display())]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An export file cannot be written.
    #[error("cannot write {}: check that the disk has space and the artifact directory is still writable", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A writable artifact directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactDir {
    path: PathBuf,
    /// The base name of the exports (`--profile-export-prefix`), or AIPerf's default names.
    base: Option<String>,
}

/// The ends AIPerf strips from `--profile-export-prefix`, longest first, so that a file name
/// given as the prefix (`run1.json`) names the run (`run1`).
const PREFIX_ENDS: &[&str] = &[
    "_server_metrics.parquet",
    "_server_metrics.jsonl",
    "_server_metrics.json",
    "_server_metrics.csv",
    "_network_latency.jsonl",
    "_gpu_telemetry.jsonl",
    "_timeslices.csv",
    "_timeslices.json",
    "_console.txt",
    "_raw.jsonl",
    ".parquet",
    ".csv",
    ".json",
    ".jsonl",
];

impl ArtifactDir {
    /// Creates the directory (and its parents) if needed and checks that files can be created
    /// in it, by writing and removing a probe file. Call it before the run starts.
    pub fn prepare(path: impl Into<PathBuf>) -> Result<Self, ExportError> {
        let path = path.into();
        fs::create_dir_all(&path).map_err(|source| ExportError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let probe = path.join(format!(".aiperf-write-probe-{}", std::process::id()));
        let not_writable = |source| ExportError::NotWritable {
            path: path.clone(),
            source,
        };
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&probe)
            .and_then(|mut file| file.write_all(b"probe"))
            .map_err(not_writable)?;
        fs::remove_file(&probe).map_err(not_writable)?;
        Ok(Self { path, base: None })
    }

    /// The directory with its exports named `<base>.json`, `<base>.csv` and `<base>.jsonl`
    /// instead of AIPerf's default names, `base` being `prefix` without the ends AIPerf strips
    /// (`run1.json` names `run1`), as `--profile-export-prefix` names them; a relative path
    /// (`sub/run1`) is taken from the directory, its directories made as needed.
    /// [`ArtifactDir::base_name`] says whether a prefix is usable.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.base = Some(Self::base_name(prefix).to_owned());
        self
    }

    /// `prefix` without the end AIPerf strips from it, if any.
    pub fn base_name(prefix: &str) -> &str {
        PREFIX_ENDS
            .iter()
            .find_map(|end| prefix.strip_suffix(end))
            .unwrap_or(prefix)
    }

    /// The file name of an export: `<base><end>` with a prefix, else `default`.
    fn export_name(&self, end: &str, default: &str) -> String {
        match &self.base {
            Some(base) => format!("{base}{end}"),
            None => default.to_owned(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `profile_export_aiperf.json`; `input_config` is the run's configuration as the
    /// user gave it.
    pub fn write_profile_json(
        &self,
        report: &BenchmarkReport,
        input_config: &serde_json::Value,
        run_info: &serde_json::Value,
    ) -> Result<PathBuf, ExportError> {
        self.write_file(&self.export_name(".json", json::FILE_NAME), |out| {
            json::write(out, report, input_config, run_info)
        })
    }

    /// Writes `profile_export_aiperf.csv`.
    pub fn write_profile_csv(&self, report: &BenchmarkReport) -> Result<PathBuf, ExportError> {
        self.write_file(&self.export_name(".csv", csv::FILE_NAME), |out| {
            csv::write(out, report)
        })
    }

    /// `profile_export.jsonl`, created now (before the run has opened its connections, which
    /// could take every file descriptor the process may open), to be written one line per
    /// request (warm-up and profiling) as records are processed.
    pub fn records_jsonl(&self) -> Result<RecordsJsonl, ExportError> {
        let path = self.path.join(self.export_name(".jsonl", jsonl::FILE_NAME));
        match create_with_parents(&path) {
            Ok(file) => Ok(RecordsJsonl {
                path,
                out: Some(BufWriter::with_capacity(1 << 16, file)),
                lines: 0,
            }),
            Err(source) => Err(ExportError::Write { path, source }),
        }
    }

    /// `outputs.json` (`--export-outputs-json`): its fragments file created now, as
    /// [`ArtifactDir::records_jsonl`] is, written one line per profiling request as records are
    /// processed, and assembled by [`OutputsJson::finish`]. An `outputs.json` of an earlier
    /// run in this directory is removed, so that none is left that this run did not write.
    pub fn outputs_json(&self) -> Result<OutputsJson, ExportError> {
        let path = self.path.join(outputs::FILE_NAME);
        let fragments = self.path.join(outputs::FRAGMENTS_FILE_NAME);
        let created = match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            // Read and write: it is read back, from the same handle, to assemble the file.
            _ => OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&fragments),
        };
        match created {
            Ok(file) => Ok(OutputsJson {
                path,
                fragments,
                out: Some(BufWriter::with_capacity(1 << 16, file)),
            }),
            Err(source) => Err(ExportError::Write {
                path: self.path.join(outputs::FILE_NAME),
                source,
            }),
        }
    }

    /// Writes `inputs.json`.
    pub fn write_inputs_json(&self, sessions: &[SessionPayloads]) -> Result<PathBuf, ExportError> {
        self.write_file(inputs::FILE_NAME, |out| inputs::write(out, sessions))
    }

    fn write_file(
        &self,
        name: &str,
        write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    ) -> Result<PathBuf, ExportError> {
        let path = self.path.join(name);
        let result = create_with_parents(&path).and_then(|file| {
            let mut out = BufWriter::with_capacity(1 << 16, file);
            write(&mut out)?;
            out.into_inner()
                .map_err(io::IntoInnerError::into_error)?
                .sync_data()
        });
        match result {
            Ok(()) => Ok(path),
            Err(source) => Err(ExportError::Write { path, source }),
        }
    }
}

/// Creates the file at `path`, and the directories before it that a prefix with a directory
/// (`sub/run1`) names.
fn create_with_parents(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    File::create(path)
}

/// `profile_export.jsonl` being written, one line per request, as the run goes on:
/// whatever happens later, the lines written so far are in the file. Dropped before
/// [`RecordsJsonl::finish`] without a line (a run that could not start), it removes its file.
#[derive(Debug)]
pub struct RecordsJsonl {
    path: PathBuf,
    /// `None` once finished.
    out: Option<BufWriter<File>>,
    lines: usize,
}

impl RecordsJsonl {
    /// Appends the line of one request (see [`jsonl::write_line`]).
    pub fn write(&mut self, record: &RequestRecord, row: RecordRow<'_>) -> Result<(), ExportError> {
        let out = self.out.as_mut().expect("written only before finish");
        jsonl::write_line(out, record, row).map_err(|source| ExportError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.lines += 1;
        Ok(())
    }

    /// Flushes the lines to disk and returns the file's path.
    pub fn finish(mut self) -> Result<PathBuf, ExportError> {
        let out = self.out.take().expect("finished once");
        let result = out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
            .and_then(|file| file.sync_data());
        match result {
            Ok(()) => Ok(self.path.clone()),
            Err(source) => Err(ExportError::Write {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// `outputs.json` being written: each profiling request's entry appended to a fragments file
/// as its record is processed, the file assembled (sorted) by [`OutputsJson::finish`]. Dropped
/// unfinished, it removes its fragments.
#[derive(Debug)]
pub struct OutputsJson {
    path: PathBuf,
    fragments: PathBuf,
    /// `None` once finished.
    out: Option<BufWriter<File>>,
}

impl OutputsJson {
    /// Appends the entry of one request, if it is a profiling one (the [`outputs`] module
    /// says what an entry holds).
    pub fn write(&mut self, record: &RequestRecord, row: RecordRow<'_>) -> Result<(), ExportError> {
        let out = self.out.as_mut().expect("written only before finish");
        outputs::write_fragment(out, record, row).map_err(|source| ExportError::Write {
            path: self.fragments.clone(),
            source,
        })
    }

    /// Assembles `outputs.json` from the fragments (through a temporary file, so that a
    /// failure leaves none half written), removes them, and returns its path.
    pub fn finish(mut self) -> Result<PathBuf, ExportError> {
        let out = self.out.take().expect("finished once");
        let partial = self.path.with_extension("json.tmp");
        let assembled = out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
            .and_then(|mut fragments| {
                fragments.rewind()?;
                let mut out = BufWriter::new(create_with_parents(&partial)?);
                outputs::assemble(&mut io::BufReader::new(fragments), &mut out)?;
                out.into_inner()
                    .map_err(io::IntoInnerError::into_error)?
                    .sync_data()?;
                fs::rename(&partial, &self.path)
            });
        let _ = fs::remove_file(&self.fragments);
        match assembled {
            Ok(()) => Ok(self.path.clone()),
            Err(source) => {
                let _ = fs::remove_file(&partial);
                Err(ExportError::Write {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

impl Drop for OutputsJson {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = fs::remove_file(&self.fragments);
        }
    }
}

impl Drop for RecordsJsonl {
    fn drop(&mut self) {
        if self.out.is_some() && self.lines == 0 {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::record;
    use crate::metrics::{Analysis, MetricOptions, RunFacts, analyze};

    #[test]
    fn prepare_creates_nested_directories_and_leaves_no_probe() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path().join("a/b")).unwrap();
        assert!(dir.path().is_dir());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        // Preparing again (an existing directory) is fine.
        ArtifactDir::prepare(dir.path()).unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("taken");
        fs::write(&file, "x").unwrap();
        let err = ArtifactDir::prepare(file.join("sub")).unwrap_err();
        assert!(matches!(err, ExportError::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().contains("--artifact-dir"), "{err}");
        assert!(err.to_string().contains("taken"), "{err}");
    }

    #[test]
    fn writes_every_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        let records = vec![record()];
        let mut analysis = Analysis::new(&MetricOptions::default());
        let mut jsonl = dir.records_jsonl().unwrap();
        for record in &records {
            let row = analysis.add(record);
            jsonl.write(record, row).unwrap();
        }
        let report = analysis.finish(&RunFacts::default());
        let written = [
            dir.write_profile_json(&report, &serde_json::json!({}), &serde_json::json!({}))
                .unwrap(),
            dir.write_profile_csv(&report).unwrap(),
            jsonl.finish().unwrap(),
            dir.write_inputs_json(&[]).unwrap(),
        ];
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "profile_export_aiperf.json",
                "profile_export_aiperf.csv",
                "profile_export.jsonl",
                "inputs.json"
            ]
        );
        for path in &written {
            assert!(fs::metadata(path).unwrap().len() > 0, "{}", path.display());
        }
    }

    #[test]
    fn a_prefix_names_the_exports_as_aiperf_names_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path())
            .unwrap()
            .with_prefix("run1.json");
        let report = analyze(&[], &RunFacts::default(), &MetricOptions::default());
        let json = dir
            .write_profile_json(&report, &serde_json::json!({}), &serde_json::json!({}))
            .unwrap();
        let csv = dir.write_profile_csv(&report).unwrap();
        let jsonl = dir.records_jsonl().unwrap().finish().unwrap();
        let inputs = dir.write_inputs_json(&[]).unwrap();
        let names: Vec<_> = [json, csv, jsonl, inputs]
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            ["run1.json", "run1.csv", "run1.jsonl", "inputs.json"]
        );
        assert_eq!(ArtifactDir::base_name("x_raw.jsonl"), "x");
        assert_eq!(ArtifactDir::base_name("x.y"), "x.y");
    }

    #[test]
    fn a_run_without_profiling_records_still_gets_its_jsonl_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        let report = analyze(&[], &RunFacts::default(), &MetricOptions::default());
        assert_eq!(report.counts.sent, 0);
        let path = dir.records_jsonl().unwrap().finish().unwrap();
        assert_eq!(fs::read_to_string(path).unwrap(), "");
    }

    #[test]
    fn a_jsonl_file_dropped_unfinished_is_kept_only_with_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        let path = tmp.path().join(jsonl::FILE_NAME);
        let jsonl = dir.records_jsonl().unwrap();
        assert!(path.exists(), "created before the run");
        drop(jsonl);
        assert!(!path.exists(), "a run that could not start leaves no file");

        let mut jsonl = dir.records_jsonl().unwrap();
        let record = record();
        let mut analysis = Analysis::new(&MetricOptions::default());
        let row = analysis.add(&record);
        jsonl.write(&record, row).unwrap();
        drop(jsonl);
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains(&record.request_id)
        );
    }

    #[test]
    fn a_jsonl_file_that_cannot_be_created_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        fs::create_dir(tmp.path().join(jsonl::FILE_NAME)).unwrap();
        let err = dir.records_jsonl().unwrap_err();
        assert!(err.to_string().contains("profile_export.jsonl"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_directory_is_refused_before_the_run() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let ro = tmp.path().join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        // Root can write anywhere: only check when the permission is effective.
        if fs::write(ro.join("x"), "x").is_err() {
            let err = ArtifactDir::prepare(&ro).unwrap_err();
            assert!(matches!(err, ExportError::NotWritable { .. }), "{err:?}");
        }
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
    }
}
