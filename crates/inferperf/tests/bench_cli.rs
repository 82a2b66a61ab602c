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

/// The last record of a JSONL file (Python-style non-finite floats become strings).
fn last_record(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("result file");
    let line = text.lines().last().expect("a record line");
    inferperf_loadgen::jsonl::parse_line(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// The steady-state section: SGLang's console block, the record's `steady_state` (a window
/// inside the run, counts within the run's) and `timeline` (every output token in one bucket),
/// and SGLang's `--steady-state-output-file` line equal to the record's section.
#[test]
fn steady_state_is_reported_next_to_the_whole_run() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt
        .block_on(inferperf_server::EmbeddedServer::start(
            inferperf_server::ServerConfig::ephemeral(),
        ))
        .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, ss_out) = (dir.path().join("r.jsonl"), dir.path().join("ss.jsonl"));
    let mut run = Command::new(env!("CARGO_BIN_EXE_inferperf"));
    run.args([
        "bench",
        "serving",
        "--base-url",
        &server.base_url(),
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "24",
        "--max-concurrency",
        "4",
        "--random-input-len",
        "16",
        "--random-output-len",
        "6",
        "--warmup-requests",
        "0",
        "--disable-tqdm",
        "--steady-state-ratio",
        "0.75",
        "--steady-state-output-file",
    ])
    .arg(&ss_out)
    .arg("--output-file")
    .arg(&out);
    let stdout = succeed(&mut run);
    assert!(
        stdout.contains("\n============== Steady-State Result ===============\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Minimum concurrency:"), "{stdout}");
    let rec = last_record(&out);
    let ss = &rec["steady_state"];
    let num = |v: &serde_json::Value| v.as_f64().expect("a number");
    let (start, end) = (num(&ss["window_start"]), num(&ss["window_end"]));
    let timeline = &rec["timeline"];
    assert_eq!(num(&timeline["bucket_s"]), 1.0);
    let series = |k: &str| -> Vec<u64> {
        timeline[k]
            .as_array()
            .expect("series")
            .iter()
            .map(|x| x.as_u64().expect("count"))
            .collect()
    };
    let (tokens, conc) = (series("output_tokens"), series("concurrency"));
    assert_eq!(tokens.len(), conc.len());
    // The window lies inside the run, whose buckets start at the first send.
    assert!(0.0 <= start && start < end, "{ss}");
    assert!(end <= tokens.len() as f64, "{ss} {timeline}");
    assert!((num(&ss["duration"]) - (end - start)).abs() < 1e-6, "{ss}");
    assert_eq!(num(&ss["concurrency_ratio"]), 0.75);
    assert_eq!(ss["window_rule"], "concurrency_ratio");
    let (thr, peak) = (
        ss["concurrency_threshold"].as_u64().expect("threshold"),
        ss["peak_concurrency"].as_u64().expect("peak"),
    );
    assert!(1 <= thr && thr <= peak && peak <= 4, "{ss}");
    assert!(
        ss["completed"].as_u64() <= rec["completed"].as_u64(),
        "{ss}"
    );
    let total_out = num(&rec["total_output_tokens"]);
    assert!(num(&ss["total_output"]) <= total_out + 1e-9, "{ss}");
    assert!(
        num(&ss["total_input"]) <= num(&rec["total_input_tokens"]),
        "{ss}"
    );
    // The native backend reports each chunk's tokens: the timeline holds them all.
    assert_eq!(tokens.iter().sum::<u64>() as f64, total_out, "{timeline}");
    // SGLang's standalone file: the same section, one line.
    let alone = std::fs::read_to_string(&ss_out).expect("steady-state file");
    assert_eq!(alone.lines().count(), 1);
    let alone: serde_json::Value = serde_json::from_str(alone.trim()).expect("JSON");
    assert_eq!(&alone, ss);
    rt.block_on(server.shutdown()).expect("shutdown");
}

/// No window is one line and a `null` section, never a lost run; `--no-steady-state` drops
/// the section (the timeline stays); a negative duration is refused naming the flag.
#[test]
fn steady_state_without_a_window_keeps_the_run() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt
        .block_on(inferperf_server::EmbeddedServer::start(
            inferperf_server::ServerConfig::ephemeral(),
        ))
        .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.jsonl");
    let base = |extra: &[&str]| {
        let mut run = Command::new(env!("CARGO_BIN_EXE_inferperf"));
        run.args([
            "bench",
            "serving",
            "--base-url",
            &server.base_url(),
            "--dataset-name",
            "random-ids",
            "--num-prompts",
            "3",
            "--random-input-len",
            "8",
            "--random-output-len",
            "2",
            "--warmup-requests",
            "0",
            "--disable-tqdm",
        ])
        .args(extra)
        .arg("--output-file")
        .arg(&out);
        run
    };
    // A warm-up longer than any such run leaves nothing.
    let stdout = succeed(&mut base(&["--warmup-duration", "100000"]));
    assert!(
        stdout.contains("Steady-state result: none (--warmup-duration 100000 s"),
        "{stdout}"
    );
    let rec = last_record(&out);
    assert!(rec["steady_state"].is_null(), "{rec}");
    assert!(rec["timeline"]["output_tokens"].is_array(), "{rec}");

    let stdout = succeed(&mut base(&["--no-steady-state"]));
    assert!(!stdout.contains("Steady-State Result"), "{stdout}");
    assert!(last_record(&out)["steady_state"].is_null());

    let refused = base(&["--cooldown-duration", "-1"])
        .output()
        .expect("run inferperf");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--cooldown-duration"), "{err}");
    rt.block_on(server.shutdown()).expect("shutdown");
}

/// A client that runs out of open files says so: the requests that could not connect fail
/// as `client_limit` (not a dead server: the run goes on and is not aborted), the verdict is
/// CLIENT-BOUND with the reason, and the warning before the run names the limit.
#[test]
fn running_out_of_open_files_is_the_clients_limit_not_a_dead_server() {
    use inferperf_engine::simulated::{SimulatedEngine, TokenSchedule};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Streams stay open ~1 s, so 200 at once need 200 descriptors.
    let sim = SimulatedEngine::start(
        TokenSchedule::Fixed {
            ttft: std::time::Duration::from_millis(800),
            itl: std::time::Duration::from_millis(100),
        },
        32000,
    )
    .expect("simulated engine");
    let parts = inferperf_server::EngineParts {
        handle: sim.handle.clone(),
        tokenizer: sim.tokenizer.clone(),
        model_info: sim.model_info.clone(),
    };
    let config = inferperf_server::ServerConfig {
        model_path: sim.model_info.model_path.clone(),
        ..inferperf_server::ServerConfig::ephemeral()
    };
    let server = rt
        .block_on(inferperf_server::EmbeddedServer::start_with_engine(
            config, parts,
        ))
        .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.jsonl");
    // `ulimit -n` sets the hard limit too, so the client cannot raise it back.
    let script = format!(
        "ulimit -n 64 && exec {} bench serving --base-url {} --dataset-name random-ids \
         --num-prompts 200 --random-input-len 8 --random-output-len 3 --warmup-requests 0 \
         --disable-tqdm --output-file {}",
        env!("CARGO_BIN_EXE_inferperf"),
        server.base_url(),
        out.display()
    );
    let run = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        all.contains("the open-file limit (64) cannot hold 200 concurrent streams"),
        "{all}"
    );
    let rec = last_record(&out);
    let limited = rec["errors_by_kind"]["client_limit"].as_u64().unwrap_or(0);
    assert!(limited > 0, "some connects hit the limit: {all}");
    assert!(rec["completed"].as_u64().unwrap_or(0) > 0, "{all}");
    assert!(
        rec["abort_reason"].is_null(),
        "not a dead server: {}",
        rec["abort_reason"]
    );
    assert_eq!(
        rec["validity"]["verdict"], "CLIENT-BOUND",
        "{}",
        rec["validity"]
    );
    assert!(all.contains("this client's own limits"), "{all}");
    rt.block_on(server.shutdown()).expect("shutdown");
    drop(sim);
}
