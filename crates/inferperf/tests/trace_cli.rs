//! `inferperf trace ...` as a user runs it: invalid events.

use std::path::Path;
use std::process::{Command, Output};

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
