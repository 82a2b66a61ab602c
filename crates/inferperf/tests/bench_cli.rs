//! `inferperf bench serving` as a user runs it: the README's main command shape against the
//! embedded reference server, here with `--print-requests`.

use std::process::Command;

/// Run the command; it must exit 0 (else the failure shows its stdout and stderr). Its stdout.
fn succeed(cmd: &mut Command) -> String {
    let run = cmd.output().expect("run inferperf");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

/// Every request logs a start line with its body and an end line with its output, paired by
/// rid, and the run still writes its result record.
#[test]
fn print_requests_logs_the_start_and_end_of_every_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.jsonl");
    let mut run = Command::new(env!("CARGO_BIN_EXE_inferperf"));
    run.args([
        "bench",
        "serving",
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "3",
        "--random-input-len",
        "16",
        "--random-output-len",
        "4",
        "--warmup-requests",
        "0",
        "--print-requests",
        "--disable-tqdm",
        "--output-file",
    ])
    .arg(&out);
    let stdout = succeed(&mut run);
    let rid = |l: &str| l.split_whitespace().next().unwrap_or("").to_string();
    let starts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("message=\"request start\""))
        .collect();
    let ends: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("message=\"request end\""))
        .collect();
    assert_eq!((starts.len(), ends.len()), (3, 3), "{stdout}");
    for s in &starts {
        assert!(
            s.starts_with("rid=") && s.contains("request_func_input="),
            "{s}"
        );
        assert!(
            ends.iter()
                .any(|e| rid(e) == rid(s) && e.contains("time_delta=")),
            "no end line for {s}"
        );
    }
    assert!(out.is_file(), "the result record is still written");
}

/// The diffusion benchmark prints SGLang's report and then the measurement validity block of
/// `bench serving`, and writes the per-request records next to the metrics file.
#[test]
fn diffusion_serving_prints_the_validity_verdict() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt
        .block_on(inferperf_server::EmbeddedServer::start(
            inferperf_server::ServerConfig {
                model_path: "diffusion".into(),
                ..inferperf_server::ServerConfig::ephemeral()
            },
        ))
        .expect("diffusion server");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("m.json");
    let mut run = Command::new(env!("CARGO_BIN_EXE_inferperf"));
    run.args([
        "bench",
        "serving",
        "--base-url",
        &server.base_url(),
        "--dataset",
        "random",
        "--task",
        "text-to-image",
        "--width",
        "32",
        "--height",
        "32",
        "--num-inference-steps",
        "1",
        "--num-prompts",
        "3",
        "--warmup-requests",
        "0",
        "--output-file",
    ])
    .arg(&out);
    let stdout = succeed(&mut run);
    assert!(stdout.contains("Successful requests:"), "{stdout}");
    assert!(stdout.contains("Measurement validity"), "{stdout}");
    assert!(stdout.contains("Verdict:"), "{stdout}");
    let records: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("m.records.json")).expect("records file"),
    )
    .expect("records JSON");
    assert_eq!(records["requests"].as_array().map(Vec::len), Some(3));
    rt.block_on(server.shutdown()).expect("shutdown");
}
