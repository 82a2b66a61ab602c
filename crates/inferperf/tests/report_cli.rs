//! `inferperf report html` as a user runs it with the "Why requests were slow" inputs
//! (`--request-trace` plus `--request-log` or `--server-trace`): the section is added, and
//! incomplete or unreadable inputs stop it with the file or flag named and no page written.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The report crate's hand-written inputs (a client request trace and a `--log-requests` file
/// of the same three requests, and a `bench serving` result line).
fn data(name: &str) -> PathBuf {
    inferperf_test_support::manifest_dir!()
        .join("../inferperf-report/tests/data/why-slow")
        .join(name)
}

/// `report html` of the hand-written `runs.jsonl`, with `flags[i] extra[i]` added.
fn report_html(out: &Path, extra: &[&Path], flags: &[&str]) -> Output {
    report_html_of(&data("runs.jsonl"), out, extra, flags)
}

/// `report html --experiment-folder runs --output out`, with `flags[i] extra[i]` added.
fn report_html_of(runs: &Path, out: &Path, extra: &[&Path], flags: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inferperf"));
    c.args(["report", "html", "--experiment-folder"])
        .arg(runs)
        .arg("--output")
        .arg(out);
    for (flag, file) in flags.iter().zip(extra) {
        c.arg(flag).arg(file);
    }
    c.output().expect("run inferperf")
}

#[test]
fn the_section_is_added_with_both_sides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.html");
    let o = report_html(
        &out,
        &[&data("client-requests.json"), &data("requests.jsonl")],
        &["--request-trace", "--request-log"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&out).expect("page");
    assert!(page.contains("<h2>Why requests were slow</h2>"));
    assert_eq!(page.matches("<svg class=\"gantt\"").count(), 2);
    // Without the flags the page is as before.
    let plain = dir.path().join("plain.html");
    let o = report_html(&plain, &[], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&plain).expect("page");
    assert!(!page.contains("Why requests were slow"));
}

#[test]
fn a_request_trace_without_a_server_side_fails_naming_what_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.html");
    let o = report_html(&out, &[&data("client-requests.json")], &["--request-trace"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("client-requests.json")
            && err.contains("server's side")
            && err.contains("--request-log")
            && err.contains("--server-trace"),
        "{err}"
    );
    assert!(!out.exists(), "a page was written");
    // The server side without the client's.
    let o = report_html(&out, &[&data("requests.jsonl")], &["--request-log"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--request-trace"),
        "{err}"
    );
    assert!(!out.exists(), "a page was written");
    // A file that is not a request log: explain fails, naming it.
    let o = report_html(
        &out,
        &[&data("client-requests.json"), &data("runs.jsonl")],
        &["--request-trace", "--request-log"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("runs.jsonl") && err.contains("--log-requests record"),
        "{err}"
    );
    assert!(!out.exists(), "a page was written");
    // --server-trace reaches explain: a file that is not a trace is named.
    let o = report_html(
        &out,
        &[&data("client-requests.json"), &data("runs.jsonl")],
        &["--request-trace", "--server-trace"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("runs.jsonl"), "{err}");
    assert!(!out.exists(), "a page was written");
    // Both server sides at once are refused.
    let o = report_html(
        &out,
        &[
            &data("client-requests.json"),
            &data("requests.jsonl"),
            &data("requests.jsonl"),
        ],
        &["--request-trace", "--request-log", "--server-trace"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--server-trace"),
        "{err}"
    );
    assert!(!out.exists(), "a page was written");
}

#[test]
fn a_malformed_timeline_is_named_with_its_line_and_no_page_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs.jsonl");
    std::fs::write(
        &runs,
        "{\"max_concurrency\": 1, \"output_throughput\": 9.0}\n\
         {\"max_concurrency\": 2, \"timeline\": {\"bucket_s\": 1.0, \"output_tokens\": [1]}}\n",
    )
    .expect("write");
    let out = dir.path().join("report.html");
    let o = report_html_of(&runs, &out, &[], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("runs.jsonl")
            && err.contains("line 2")
            && err.contains("\"timeline\"")
            && err.contains("concurrency"),
        "{err}"
    );
    assert!(!out.exists(), "a page was written");
}

/// The interactive charts from real `bench serving` output (not a hand-made fixture): two
/// runs at concurrency 2 and 4 give a log2 load axis, a TTFT and an ITL CDF curve per run
/// (from `--output-details`), and a throughput-over-time chart per run shaded with the
/// run's own steady-state window.
#[test]
fn charts_are_built_from_real_bench_serving_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs.jsonl");
    for c in ["2", "4"] {
        let o = Command::new(env!("CARGO_BIN_EXE_inferperf"))
            .args([
                "bench",
                "serving",
                "--simulate",
                "20:5",
                "--dataset-name",
                "random-ids",
                "--num-prompts",
                "24",
                "--random-input-len",
                "16",
                "--random-output-len",
                "12",
                "--max-concurrency",
                c,
                "--warmup-requests",
                "0",
                "--steady-state-ratio",
                "0.5",
                "--disable-tqdm",
                "--output-details",
                "--output-file",
            ])
            .arg(&runs)
            .output()
            .expect("bench serving");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let page = dir.path().join("page.html");
    let o = report_html_of(&runs, &page, &[], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).expect("page");
    let open = "<script type=\"application/json\" id=\"chart-data\">";
    let start = html.find(open).expect("chart data block") + open.len();
    let end = start + html[start..].find("</script>").expect("end of block");
    let charts: Vec<serde_json::Value> =
        serde_json::from_str(&html[start..end]).expect("chart data JSON");
    let titled = |t: &str| -> Vec<&serde_json::Value> {
        charts.iter().filter(|c| c["title"] == t).collect()
    };
    let load = titled("Output tokens/s vs concurrency");
    assert_eq!(load.len(), 1, "{charts:?}");
    assert_eq!(load[0]["x_log2"], true);
    for cdf in ["TTFT CDF", "ITL CDF"] {
        let c = titled(cdf);
        assert_eq!(c.len(), 1, "{cdf}");
        assert_eq!(
            c[0]["series"].as_array().map(Vec::len),
            Some(2),
            "{cdf}: {}",
            c[0]
        );
    }
    let over_time = titled("Throughput over time");
    assert_eq!(over_time.len(), 2, "one per run");
    for c in over_time {
        let shade = c["shade"].as_array().expect("a shaded window");
        assert!(!shade.is_empty(), "{c}");
    }
}

/// The README's run with `--profile` and nothing else: the embedded reference server records
/// a trace (SGLang's default activities include GPU, which it does not have), the client trace
/// lands next to it, and `report html` explains the run from the server's trace
/// (`--server-trace`) as well as from a request log.
#[test]
fn profile_alone_gives_traces_that_explain_the_run_in_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs.jsonl");
    let client = dir.path().join("client.json");
    let o = Command::new(env!("CARGO_BIN_EXE_inferperf"))
        .args([
            "bench",
            "serving",
            "--dataset-name",
            "random-ids",
            "--num-prompts",
            "8",
            "--random-input-len",
            "16",
            "--random-output-len",
            "4",
            "--warmup-requests",
            "0",
            "--disable-tqdm",
            "--profile",
            "--profile-output-dir",
        ])
        .arg(dir.path())
        .arg("--request-trace")
        .arg(&client)
        .arg("--output-file")
        .arg(&runs)
        .output()
        .expect("bench serving");
    let all = common::text(&o);
    assert!(o.status.success(), "{all}");
    assert!(all.contains("starting an embedded server"), "{all}");
    assert!(!all.contains("Failed to start profiler"), "{all}");
    let traces: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("profile dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .flat_map(|d| {
            std::fs::read_dir(d)
                .expect("run dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
        })
        .filter(|p| p.to_string_lossy().ends_with("-TP-0.trace.json.gz"))
        .collect();
    assert_eq!(traces.len(), 1, "{all}");
    let page = dir.path().join("page.html");
    let o = report_html_of(
        &runs,
        &page,
        &[&client, &traces[0]],
        &["--request-trace", "--server-trace"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(
        html.contains("<h2>Why requests were slow</h2>"),
        "no section"
    );
    assert!(html.matches("<svg class=\"gantt\"").count() >= 1);
}
