//! Reports from a real `bench sweep` folder (2 scenarios x 3 concurrencies against the HTTP
//! server over the simulated engine) and from `bench serving` JSONL: the workbook opens in
//! openpyxl with genai-bench's five sheets and their headers, the SVG plots carry one line per
//! scenario, and the HTML page is self-contained (its interactive charts included).

use std::path::{Path, PathBuf};

use inferperf_bench::config::ServingConfig;
use inferperf_bench::scenario::Scenario;
use inferperf_bench::sweep::{run, LoadPoint, SweepOptions};
use inferperf_engine::simulated::{SimulatedEngine, TokenSchedule};
use inferperf_loadgen::backend::Backend;
use inferperf_report::plot::Preset;
use inferperf_server::{EmbeddedServer, EngineParts, ServerConfig};

async fn sweep_folder(dir: &Path) -> PathBuf {
    let sim = SimulatedEngine::start(TokenSchedule::ZeroLatency, 32000).expect("sim");
    let parts = EngineParts {
        handle: sim.handle.clone(),
        tokenizer: sim.tokenizer.clone(),
        model_info: sim.model_info.clone(),
    };
    let server = EmbeddedServer::start_with_engine(
        ServerConfig {
            model_path: sim.model_info.model_path.clone(),
            ..ServerConfig::ephemeral()
        },
        parts,
    )
    .await
    .expect("server");
    let serving = ServingConfig {
        backend: Backend::OpenaiChat,
        ..ServingConfig::default()
    };
    let exp = dir.join("exp");
    run(
        &SweepOptions {
            base_url: server.base_url(),
            model: "m".into(),
            task: "text-to-text".into(),
            scenarios: vec![
                Scenario::parse("D(20,5)").expect("D"),
                Scenario::parse("U(10,30)/(4,8)").expect("U"),
            ],
            loads: [1, 2, 4].into_iter().map(LoadPoint::Concurrency).collect(),
            max_requests_per_run: 4,
            max_time_per_run_s: 600.0,
            seed: 3,
            experiment_dir: exp.clone(),
            metadata: serde_json::json!({"task": "text-to-text", "api_backend": "sglang"}),
            tokenizer: sim.tokenizer.clone(),
            profile: None,
        },
        &serving,
    )
    .await
    .expect("sweep");
    server.shutdown().await.expect("shutdown");
    exp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workbook_plots_and_page_from_a_sweep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exp = sweep_folder(dir.path()).await;
    let d = inferperf_report::data::load(&exp).expect("load");
    assert_eq!(d.runs.len(), 6);
    assert_eq!(d.scenarios().len(), 2);

    // Excel, read back by openpyxl.
    let xlsx = dir.path().join("exp_summary.xlsx");
    inferperf_report::excel::write(&d, &xlsx).expect("workbook");
    let python = inferperf_test_support::venv_python();
    assert!(
        python.exists(),
        "{} missing: run scripts/fetch-test-assets.sh",
        python.display()
    );
    let script = r#"
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {name: [c.value for c in wb[name][1]] for name in wb.sheetnames}
out["_rows"] = {name: wb[name].max_row for name in wb.sheetnames}
print(json.dumps(out))
"#;
    let o = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&xlsx)
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    for sheet in [
        "Summary",
        "Appendix",
        "Experiment Metadata",
        "Aggregated Metrics for Each Run",
        "Individual Request Metrics",
    ] {
        assert!(v.get(sheet).is_some(), "missing sheet {sheet}: {v}");
    }
    assert_eq!(v["Summary"][0], "Scenario");
    assert_eq!(v["_rows"]["Summary"], 7, "a header and six runs");
    assert_eq!(
        v["_rows"]["Individual Request Metrics"], 25,
        "a header and 24 requests"
    );
    assert_eq!(v["Individual Request Metrics"][2], "ttft");

    // SVG plots: one line per scenario in each of the eight charts.
    let grid = inferperf_report::plot::svg(&d, Preset::Default2x4).expect("2x4");
    assert!(grid.starts_with("<svg"));
    assert!(grid.matches("<polyline").count() >= 8 * 2, "{}", grid.len());
    assert!(grid.contains("D(20,5)") && grid.contains("Mean TTFT (s)"));
    let lat = inferperf_report::plot::svg(&d, Preset::MultiLineLatency).expect("latency");
    assert!(lat.contains("D(20,5) p99"));
    // PNG: the right size, and not blank.
    let png_bytes = inferperf_report::plot::png(&d, Preset::Default2x4).expect("png");
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    assert_eq!((info.width, info.height), (1600, 800));
    let colours: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    assert!(colours.len() > 10, "blank plot");

    // The page carries everything inline.
    let page = inferperf_report::html::page(&d).expect("page");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 2);
    // Scripts and styles are inline (the embedded chart library), nothing is fetched.
    assert!(
        !page.contains("<script src") && !page.contains("<link") && !page.contains("src=\"http")
    );
    // Sweep folders hold per-request TTFTs (a CDF per scenario) but no per-token gaps.
    assert!(
        page.contains("No per-request ITL data for concurrency 1, concurrency 2, concurrency 4")
    );
    let all = inferperf_report::charts::build(&d);
    let cdfs = all
        .iter()
        .find(|s| s.title == "TTFT and ITL distributions")
        .expect("CDF section");
    for g in &cdfs.groups {
        assert_eq!(g.charts.len(), 1, "{}: a TTFT CDF only", g.heading);
        assert_eq!(g.charts[0].series.len(), 3, "one curve per run");
    }
    assert!(page.contains("U(10,30)/(4,8)"));
}

#[test]
fn bench_serving_jsonl_and_bad_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("runs.jsonl");
    std::fs::write(
        &f,
        "{\"dataset_name\": \"random-ids\", \"random_input_len\": 128, \"random_output_len\": 32, \"max_concurrency\": 4, \"completed\": 9, \"failed\": 1, \"request_throughput\": 3.0, \"output_throughput\": 96.0, \"input_throughput\": 384.0, \"mean_ttft_ms\": 20.0, \"p99_ttft_ms\": Infinity, \"mean_e2e_latency_ms\": 300.0}\n",
    )
    .expect("write");
    let d = inferperf_report::data::load(&f).expect("jsonl");
    assert_eq!(d.runs.len(), 1);
    assert_eq!(d.runs[0].value, 4.0);
    assert_eq!(d.runs[0].ttft_mean, 0.02);
    assert_eq!(d.runs[0].error_rate, 0.1);
    let e = inferperf_report::data::load(dir.path()).expect_err("not an experiment");
    assert!(e.to_string().contains("experiment_metadata.json"), "{e}");
    std::fs::write(&f, "{not json\n").expect("write");
    let e = inferperf_report::data::load(&f).expect_err("bad JSON");
    assert!(e.to_string().contains("line 1"), "{e}");
}

/// The page renders in headless Chromium (Debian `chromium`, installed by
/// scripts/fetch-test-assets.sh) without console errors, and the screenshot is not blank.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_page_renders_in_headless_chromium() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium missing: run scripts/fetch-test-assets.sh (apt-get install chromium)");
    let dir = tempfile::tempdir().expect("tempdir");
    let exp = sweep_folder(dir.path()).await;
    let d = inferperf_report::data::load(&exp).expect("load");
    let page = dir.path().join("report.html");
    std::fs::write(&page, inferperf_report::html::page(&d).expect("page")).expect("write");
    let shot = dir.path().join("shot.png");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1600",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let px = &buf[..info.buffer_size()];
    let distinct: std::collections::HashSet<&[u8]> = px.chunks(3).take(200_000).collect();
    assert!(
        distinct.len() > 10,
        "the screenshot is blank ({} colours)",
        distinct.len()
    );
}
