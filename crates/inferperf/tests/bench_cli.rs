//! `inferperf bench serving` as a user runs it: the README's main command shape against the
//! embedded reference server, here with `--print-requests`.

use std::process::Command;

/// Every request logs a start line with its body and an end line with its output, paired by
/// rid, and the run still writes its result record.
#[test]
fn print_requests_logs_the_start_and_end_of_every_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_inferperf"))
        .args([
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
        .arg(&out)
        .output()
        .expect("run inferperf");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
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
