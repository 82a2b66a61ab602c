//! `inferperf trace ...` as a user runs it: vLLM's two trace files, CPU-only (gloo) ranks,
//! invalid events, and interrupted writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The vLLM-shaped fixtures of the trace crate: a CPU worker trace and the front-end trace.
fn vllm_files() -> (PathBuf, PathBuf) {
    let dir = inferperf_test_support::manifest_dir!().join("../inferperf-trace/tests/data/vllm");
    (
        dir.join("rank0.1754560861234567890.pt.trace.json"),
        dir.join("node1_4242.async_llm.1754560861345678901.pt.trace.json"),
    )
}

fn inferperf(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inferperf"))
        .args(args)
        .args(files)
        .output()
        .expect("run inferperf")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn summary_of_vllm_traces_shows_stages_or_says_why_there_are_none() {
    let (worker, frontend) = vllm_files();
    let o = inferperf(
        &["trace", "summary", "--csv", "--table", "stages:rank 0"],
        &[&worker],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let stages: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(stages, ["prefill", "mixed", "decode"], "{out}");

    // The front end alone: an explanation, not empty output.
    let o = inferperf(&["trace", "summary"], &[&frontend]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("Nothing to summarize"), "{out}");
    assert!(out.contains("15 python_function"), "{out}");
    assert!(out.contains("--python"), "{out}");
    let o = inferperf(&["trace", "summary", "--python"], &[&frontend]);
    let (out, _) = text(&o);
    assert!(!out.contains("Nothing to summarize"), "{out}");
    assert!(out.contains("async_llm.py"), "{out}");
}

/// The trace crate's 4-rank gloo set: rank 2 computes 4x as long before every all_reduce.
fn gloo_files() -> Vec<PathBuf> {
    let dir =
        inferperf_test_support::manifest_dir!().join("../inferperf-trace/tests/data/gloo_4rank");
    (0..4)
        .map(|r| dir.join(format!("worker{r}.pt.trace.json")))
        .collect()
}

#[test]
fn ranks_of_cpu_only_gloo_traces_name_the_straggler() {
    let files = gloo_files();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let o = inferperf(&["trace", "ranks"], &refs);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        err.contains("straggler (others wait for it at CPU collectives): rank 2"),
        "{err}"
    );
    assert!(out.contains("Per-rank CPU time"), "{out}");
    assert!(out.contains("gloo:all_reduce"), "{out}");

    let o = inferperf(&["trace", "ranks", "--json"], &refs);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let rep: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(rep["kind"], "cpu_collectives");
    assert_eq!(rep["straggler"], serde_json::json!(["rank 2"]));
    assert_eq!(rep["collectives"].as_array().map(Vec::len), Some(5));
    for r in rep["ranks"].as_array().expect("ranks") {
        assert!(r["timeline"]["busy_ns"].as_i64() > Some(0), "{r}");
    }

    let o = inferperf(
        &["trace", "summary", "--csv", "--table", "cpu_timeline"],
        &refs,
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(
        out.lines().count(),
        1 + 4 + 1,
        "header, 4 ranks, all ranks: {out}"
    );
}

#[test]
fn merge_of_a_vllm_run_needs_no_rank_map() {
    let (worker, frontend) = vllm_files();
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged.trace.json.gz");
    let o = inferperf(
        &["trace", "merge", "-o", merged.to_str().unwrap()],
        &[&worker, &frontend],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("vLLM frontend (async_llm, pid 4242)"), "{out}");
    assert!(out.contains("[RANK00]"), "{out}");
    assert!(merged.is_file());

    // `trim --steps` picks vLLM steps out of the merged file.
    let trimmed = dir.path().join("trimmed.trace.json");
    let o = inferperf(
        &[
            "trace",
            "trim",
            "--steps",
            "0",
            "-o",
            trimmed.to_str().unwrap(),
        ],
        &[&merged],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let kept = std::fs::read_to_string(&trimmed).unwrap();
    assert!(kept.contains("execute_context_1(7)_generation_0(0)"));
    assert!(!kept.contains("execute_context_0(0)_generation_2(2)"));
}

#[test]
fn merge_and_summary_reject_and_skip_the_same_bad_events() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rank0.json");
    std::fs::write(
        &input,
        r#"{"traceEvents":[
{"ph":"X","cat":"cpu_op","name":"aten::mm","ts":10,"dur":5,"pid":1,"tid":1},
{"ph":"X","cat":"cpu_op","name":"aten::mm","ts":"20","dur":5,"pid":1,"tid":1},
{"ph":"X","cat":"cpu_op","name":"aten::mm","ts":1e30,"dur":5,"pid":1,"tid":1}]}"#,
    )
    .unwrap();
    let merged = dir.path().join("merged.json");
    let m = merged.to_str().unwrap();

    let o = inferperf(&["trace", "merge", "-o", m], &[&input]);
    let (_, merge_err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{merge_err}");
    let o = inferperf(&["trace", "summary"], &[&input]);
    let (_, summary_err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{summary_err}");
    for e in [&merge_err, &summary_err] {
        assert!(e.contains("rank0.json: event 1:"), "{e}");
        assert!(e.contains("--skip-bad"), "{e}");
    }
    assert!(!merged.exists());

    // Skipped: merge says so in its table and exits 2 (the output lacks events); summary
    // reads the rest.
    let o = inferperf(&["trace", "merge", "--skip-bad", "-o", m], &[&input]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(out.contains("2 invalid events skipped"), "{out}");
    assert!(
        err.contains("skipped 2 invalid events (first: event 1:"),
        "{err}"
    );
    let o = inferperf(&["trace", "summary", "--skip-bad", "--json"], &[&input]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let rep: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rep["traces"][0]["events"], 1);
    assert!(
        err.contains("skipped 2 invalid events (first: event 1:"),
        "{err}"
    );
    // What merge kept, summary accepts as it is.
    let o = inferperf(&["trace", "summary"], &[&merged]);
    assert!(o.status.success(), "{}", text(&o).1);
}

/// The names in `dir` that are unfinished outputs.
#[cfg(unix)]
fn part_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".inferperf-") && n.ends_with(".part"))
        .collect()
}

/// Runs `trace <args> <fifo> -o <out dir>/out.trace.json`, feeding the named pipe `fifo` with
/// `feed` (which gets the pipe's path), waits until the unfinished output exists, sends
/// `signal`, and checks that the process failed and left no `.part` file and no output.
///
/// The input is a named pipe that never delivers the rest of the trace, so the command is
/// certain to still be writing when the signal arrives.
#[cfg(unix)]
fn interrupt(args: &[&str], signal: &str, feed: impl FnOnce(PathBuf) + Send + 'static) {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("rank0.trace.json");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("out.trace.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_inferperf"))
        .arg("trace")
        .args(args)
        .arg(&fifo)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inferperf");
    let pipe = fifo.clone();
    std::thread::spawn(move || feed(pipe));

    let deadline = Instant::now() + Duration::from_secs(120);
    while part_files(&out_dir).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("inferperf ended ({status}) before writing its output");
        }
        assert!(Instant::now() < deadline, "no .part file appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert_eq!(part_files(&out_dir), Vec::<String>::new(), "{err}");
    assert!(!out.exists());
    assert!(err.contains("interrupted: removed unfinished"), "{err}");
}

/// Writes the start of a trace into the named pipe `fifo` and keeps the pipe open without
/// writing more, until the test process ends: whoever reads it waits for the rest forever.
#[cfg(unix)]
fn feed_and_hold(fifo: PathBuf) {
    use std::io::Write;
    let header = r#"{"distributedInfo":{"rank":0},"traceEvents":[
{"ph":"X","cat":"cpu_op","name":"aten::mm","ts":10,"dur":5,"pid":1,"tid":1}"#;
    if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&fifo) {
        let _ = w.write_all(header.as_bytes());
        let _ = w.flush();
        loop {
            std::thread::park();
        }
    }
}

#[cfg(unix)]
#[test]
fn interrupted_merge_removes_its_part_file() {
    // Merge reads the header once to learn the rank, creates its output, then opens the input
    // again to copy its events and waits there.
    interrupt(&["merge"], "TERM", feed_and_hold);
}

#[cfg(unix)]
#[test]
fn interrupted_trim_removes_its_part_file() {
    // Trim creates its output, copies the first event and waits for the next one.
    interrupt(&["trim"], "INT", feed_and_hold);
}

/// A one-rank reference-server trace with one step holding `rid`, and a client request trace
/// of that rid (no server clock offset measured: same host).
fn server_and_client(dir: &Path, rid: &str) -> (PathBuf, PathBuf) {
    let base: i64 = 1_764_900_000_000_000_000;
    let rank = serde_json::json!({
        "distributedInfo": {"rank": 0, "world_size": 1},
        "baseTimeNanoseconds": base,
        "traceEvents": [
            {"ph": "X", "cat": "user_annotation", "name": "step[0]", "pid": 7, "tid": 7, "ts": 100.0,
             "dur": 50.0, "args": {"forward_mode": "EXTEND", "batch_size": 1, "rids": ["r-0"], "extend_lens": [32]}},
        ],
    });
    let client = serde_json::json!({
        "baseTimeNanoseconds": base,
        "inferperfRequestTrace": {"clock": {"unix_ns_at_anchor": base}, "run_tag": "cli", "server_clock": null},
        "traceEvents": [
            {"name": "process_name", "ph": "M", "ts": 0, "pid": 9, "tid": 0, "args": {"name": "inferperf client"}},
            {"ph": "X", "cat": "client_request", "name": "request", "pid": 9, "tid": 1, "ts": 90.0, "dur": 100.0,
             "args": {"rid": rid, "index": 0, "status": "ok"}},
        ],
    });
    let r = dir.join("tp0.trace.json");
    let c = dir.join("client-requests.json");
    std::fs::write(&r, rank.to_string()).unwrap();
    std::fs::write(&c, client.to_string()).unwrap();
    (r, c)
}

#[test]
fn merge_with_a_client_trace_reports_links_and_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let (rank, client) = server_and_client(dir.path(), "r-0");
    let merged = dir.path().join("merged.trace.json");
    let args = [
        "trace",
        "merge",
        "--client",
        client.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ];
    let o = inferperf(&args, &[&rank]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("1 requests, 1 linked to server steps, 0 unmatched"),
        "{out}"
    );
    assert!(out.contains("client clock: none"), "{out}");
    assert!(err.contains("one host clock"), "{err}");
    let o = inferperf(&[&args[..], &["--json"]].concat(), &[&rank]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["client"]["linked"], 1, "{v}");
    assert_eq!(v["client"]["alignment"]["source"], "none", "{v}");

    // Rids of another run: an error naming the client trace.
    let other = tempfile::tempdir().unwrap();
    let (_, client) = server_and_client(other.path(), "other-0");
    let o = inferperf(
        &[
            "trace",
            "merge",
            "--client",
            client.to_str().unwrap(),
            "-o",
            merged.to_str().unwrap(),
        ],
        &[&rank],
    );
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}\n{err}");
    assert!(err.contains(client.to_str().unwrap()), "{err}");
    assert!(err.contains("different runs"), "{err}");
}
