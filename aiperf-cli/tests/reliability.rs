//! Every request accounted for, whatever the server or the user does: unreachable servers,
//! failing servers, an unwritable artifact directory, and Ctrl-C in the middle of a run.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::mock::MockServer;
use support::run::{Run, read_json};

/// A 127.0.0.1 port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_unreachable_server_is_one_clear_error_before_the_run() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let run = Run::profile(&["--url", &url, "-m", "test"]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    let stderr = run.stderr();
    assert!(
        stderr.contains("not reachable") && stderr.contains(&url),
        "{stderr}"
    );
    assert!(stderr.contains("--wait-for-model-timeout"), "{stderr}");
    assert!(!run.dir.join("profile_export.jsonl").exists());
}

#[test]
fn wait_for_model_timeout_waits_for_a_server_that_starts_late() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        Command::new(env!("CARGO_BIN_EXE_aiperf"))
            .args([
                "mock-server",
                "--port",
                &port.to_string(),
                "--ttft-ms",
                "1",
                "--itl-ms",
                "1",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    });
    let run = Run::profile(&[
        "--url",
        &url,
        "-m",
        "test",
        "--request-count",
        "3",
        "--osl",
        "2",
        "--wait-for-model-timeout",
        "20",
    ]);
    let mut server = starter.join().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    run.assert_success();
    assert_eq!(run.records().len(), 3);
}

#[test]
fn a_failing_server_gives_error_records_with_real_latency_and_exit_status_1() {
    let server = MockServer::start(&["--ttft-ms", "5", "--itl-ms", "1", "--error-rate", "1.0"]);
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--request-count",
        "12",
        "--concurrency",
        "4",
    ]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr());
    let records = run.records();
    assert_eq!(records.len(), 12);
    for record in &records {
        assert_eq!(record["error"]["code"], 500, "{record}");
        assert!(record["error"]["type"].is_string() && record["error"]["message"].is_string());
        let latency = record["metrics"]["request_latency"]["value"]
            .as_f64()
            .unwrap();
        assert!(latency > 0.0, "error latency must not be 0: {record}");
    }
    let summary = run.summary();
    let errors = summary["error_summary"].as_array().unwrap();
    let total: u64 = errors.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 12, "{errors:?}");
    assert!(
        run.stdout()
            .contains("12 sent = 0 succeeded + 12 errored + 0 cancelled"),
        "{}",
        run.stdout()
    );
    assert!(!run.stderr().contains("no --model was given"));
    // Without -m, the requests named the simulated engine's model: the failure says so.
    let unnamed = Run::profile(&["--url", &server.url, "--request-count", "2"]);
    assert_eq!(unnamed.output.status.code(), Some(1));
    unnamed.assert_said("no --model was given");
}

#[test]
fn the_failed_request_threshold_decides_the_exit_status() {
    let server = MockServer::start(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "1",
        "--error-rate",
        "0.5",
        "--seed",
        "3",
    ]);
    let args = |threshold: &'static str| {
        vec![
            "--url",
            &server.url,
            "-m",
            "test",
            "--request-count",
            "40",
            "--concurrency",
            "8",
            "--osl",
            "2",
            "--failed-request-threshold",
            threshold,
        ]
    };
    let tolerant = Run::profile(&args("40"));
    assert_eq!(
        tolerant.output.status.code(),
        Some(0),
        "{}",
        tolerant.stderr()
    );
    let strict = Run::profile(&args("0"));
    assert_eq!(strict.output.status.code(), Some(1), "{}", strict.stderr());
    strict.assert_said("--failed-request-threshold");
}

#[test]
fn an_unwritable_artifact_dir_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let artifacts = file.join("artifacts");
    let output = Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .args(["profile", "--ui-type", "none", "--artifact-dir"])
        .arg(&artifacts)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&*file.to_string_lossy()), "{stderr}");
    assert!(!stderr.contains("LLM Metrics"), "it ran anyway: {stderr}");
}

#[cfg(unix)]
#[test]
fn running_out_of_file_descriptors_is_explained_and_every_result_is_written() {
    let server = MockServer::start(&["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "2"]);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("artifacts");
    // `ulimit -n` lowers the hard limit too, so aiperf cannot raise its own back: 100 requests
    // in flight need more connections than 64 descriptors allow.
    let output = Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_aiperf"))
        .args(["profile", "--url", &server.url, "-m", "test"])
        .args([
            "--concurrency",
            "100",
            "--request-count",
            "300",
            "--ui-type",
            "none",
        ])
        .arg("--artifact-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("300 sent = "), "{stdout}\n{stderr}");
    let summary = read_json(&dir.join("profile_export_aiperf.json"));
    let errors = summary["error_summary"].as_array().unwrap();
    assert!(
        errors.iter().any(|error| {
            let message = error["error_details"]["message"]
                .as_str()
                .unwrap_or_default();
            message.contains("out of file descriptors") && message.contains("ulimit -n")
        }),
        "{errors:?}"
    );
    let lines = std::fs::read_to_string(dir.join("profile_export.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 300, "{stderr}");
}

/// An interrupted run: its output, how long it took to stop after the signal, and its
/// artifact directory (kept as long as this is).
struct Interrupted {
    output: std::process::Output,
    took: Duration,
    artifacts: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts a duration run of 4 streams that each take about 10 s (100 x 100 ms), sends `signal`
/// (`kill -SIGNAL`) once they are in flight, and waits for it to end.
fn signal_mid_run(signal: &str, grace: &str) -> Interrupted {
    let server = MockServer::start(&["--ttft-ms", "10", "--itl-ms", "100"]);
    let url = server.url.clone();
    let args = [
        "--url",
        &url,
        "--streaming",
        "--concurrency",
        "4",
        "--osl",
        "100",
        "--benchmark-duration",
        "60",
        "--benchmark-grace-period",
        grace,
    ];
    // The first requests are in flight once the run has been profiling for a moment.
    signal_after(&args, "profiling", Duration::from_millis(1500), signal)
}

/// Starts `aiperf profile <args>`, sends `signal` `delay` after it printed a line containing
/// `line`, and waits for it to end.
fn signal_after(args: &[&str], line: &str, delay: Duration, signal: &str) -> Interrupted {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .args(["profile", "--ui-type", "none", "-m", "test"])
        .args(args)
        .arg("--artifact-dir")
        .arg(&artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut read = String::new();
    while !read.contains(line) {
        read.clear();
        assert!(
            stderr.read_line(&mut read).unwrap() > 0,
            "aiperf exited before printing {line:?}"
        );
    }
    std::thread::sleep(delay);
    let signalled_at = Instant::now();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    Interrupted {
        output,
        took: signalled_at.elapsed(),
        artifacts,
        _dir: dir,
    }
}

/// Checks that an interrupted run exited 130 with every export, its 4 requests in flight
/// cancelled records that had run for more than a second.
fn assert_interrupted_with_every_export(run: &Interrupted) {
    let (output, artifacts) = (&run.output, &run.artifacts);
    assert_eq!(output.status.code(), Some(130));
    let summary = read_json(&artifacts.join("profile_export_aiperf.json"));
    assert_eq!(summary["was_cancelled"], true);
    let lines = std::fs::read_to_string(artifacts.join("profile_export.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each request in flight is still a record, cancelled, with the chunks it had received.
    assert_eq!(records.len(), 4, "{records:?}");
    for record in &records {
        assert_eq!(record["metadata"]["was_cancelled"], true, "{record}");
        assert_eq!(
            record["error"]["message"], "Request cancelled by external signal",
            "{record}"
        );
        let start = record["metadata"]["request_start_ns"].as_u64().unwrap();
        let end = record["metadata"]["request_end_ns"].as_u64().unwrap();
        assert!(end - start > 1_000_000_000, "cancelled at once: {record}");
    }
    for file in ["profile_export_aiperf.csv", "inputs.json"] {
        assert!(artifacts.join(file).is_file(), "{file} missing");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("4 sent = 0 succeeded + 0 errored + 4 cancelled"),
        "{stdout}"
    );
}

#[test]
fn sigint_mid_run_writes_every_export_and_exits_130() {
    // The 4 requests in flight outlive the 0.5 s grace.
    let run = signal_mid_run("INT", "0.5");
    assert!(
        run.took < Duration::from_secs(4),
        "it did not stop within the grace period"
    );
    assert_interrupted_with_every_export(&run);
}

#[test]
fn sigterm_cancels_the_requests_in_flight_whatever_the_grace_period() {
    // With the 30 s grace honoured, the requests (10 s each) would have ended on their own.
    assert_interrupted_with_every_export(&signal_mid_run("TERM", "30"));
}

#[test]
fn a_signal_while_waiting_for_the_server_ends_the_run_with_nothing_sent() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let args = ["--url", &url, "--wait-for-model-timeout", "60"];
    let run = signal_after(&args, "profiling", Duration::from_millis(500), "TERM");
    assert_eq!(run.output.status.code(), Some(130), "{:?}", run.output);
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    assert!(stdout.contains("requests: 0 sent"), "{stdout}");
}

#[test]
fn an_interruption_does_not_wait_for_a_ramp_s_next_step() {
    // Ctrl-C during the warm-up's one request: the profiling phase then starts interrupted,
    // and three of its four workers would wait for their steps of a 300 s ramp. Before the
    // ramp's wait heard an interruption made before it began, the run lasted until the last.
    let args = [
        "--warmup-request-count",
        "1",
        "--concurrency",
        "4",
        "--concurrency-ramp-duration",
        "300",
        "--request-count",
        "100",
        "--osl",
        "20",
        "--itl-ms",
        "100",
        "--benchmark-grace-period",
        "0",
    ];
    let run = signal_after(&args, "simulated engine", Duration::from_millis(500), "INT");
    assert_eq!(run.output.status.code(), Some(130), "{:?}", run.output);
    assert!(
        run.took < Duration::from_secs(60),
        "ended {:?} after Ctrl-C, not at the ramp's end",
        run.took
    );
}

#[test]
fn a_closed_stdout_loses_the_console_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .args(["profile", "--ui-type", "none", "--request-count", "3"])
        .arg("--artifact-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // As `aiperf profile | head -0` would: nobody reads the report.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "no panic on a closed stdout");
    assert!(dir.path().join("profile_export_aiperf.json").is_file());
}

#[test]
fn an_export_that_cannot_be_written_loses_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profile_export_aiperf.csv")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .args(["profile", "--ui-type", "none", "--request-count", "3"])
        .arg("--artifact-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("profile_export_aiperf.csv") && stderr.contains("the other exports are in"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("requests: 3 sent"),
        "the console report: {stdout}"
    );
    for file in [
        "profile_export_aiperf.json",
        "inputs.json",
        "profile_export.jsonl",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
}
