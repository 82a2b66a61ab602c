//! The page's interactive charts from a hand-written `bench serving` JSONL
//! (tests/data/interactive/runs.jsonl): scenario `random-ids D(16,8)` at concurrency 1, 2, 4 with
//! `--output-details` arrays (one failed request at 4), `timeline` on all three and
//! `steady_state` on 1 and 2 (the keys' contract: README, `report html`); scenario
//! `sharegpt</script><!--` at concurrency 1, 2 with summary keys only. Its charts: 4 against load,
//! Pareto 4 + 2 (the second scenario records no TPOT or ITL percentiles), CDFs 2 + 0, timelines
//! 3 -- 15 -- drawn by headless Chromium without errors, two of them shaded.

use std::path::PathBuf;

use inferperf_report::charts::{self, Chart, Section};
use inferperf_report::data::ReportData;

const CHARTS: usize = 15;

fn fixture() -> ReportData {
    let path = inferperf_test_support::manifest_dir!().join("tests/data/interactive/runs.jsonl");
    inferperf_report::data::load(&path).expect("fixture")
}

fn section<'a>(all: &'a [Section], title: &str) -> &'a Section {
    all.iter()
        .find(|s| s.title == title)
        .unwrap_or_else(|| panic!("no section {title}"))
}

fn chart<'a>(s: &'a Section, heading: &str, title: &str) -> &'a Chart {
    s.groups
        .iter()
        .filter(|g| g.heading == heading)
        .flat_map(|g| &g.charts)
        .find(|c| c.title == title)
        .unwrap_or_else(|| panic!("no chart {title} under {heading}"))
}

fn notes(s: &Section) -> String {
    s.groups
        .iter()
        .flat_map(|g| &g.notes)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

const A: &str = "random-ids D(16,8)";
const B: &str = "sharegpt</script><!--";

#[test]
fn the_fixture_gives_each_chart_its_data_and_says_what_is_missing() {
    let d = fixture();
    let all = charts::build(&d);
    let count: usize = all
        .iter()
        .flat_map(|s| &s.groups)
        .map(|g| g.charts.len())
        .sum();
    assert_eq!(count, CHARTS);

    // Concurrency is drawn on a log2 axis.
    let load = section(&all, "Metrics vs load");
    assert!(load.groups[0].charts.iter().all(|c| c.x_log2));
    assert_eq!(
        load.groups[0].charts[0].data[0],
        vec![Some(1.0), Some(2.0), Some(4.0)]
    );

    // Concurrency 4 (170 tok/s at 0.2 s) loses to 2 (180 tok/s at 0.08 s): drawn, not on the
    // frontier.
    let pareto = section(&all, "Throughput vs latency (Pareto frontier)");
    let p99 = chart(pareto, A, "Output tokens/s vs P99 TTFT");
    assert_eq!(p99.data[1], vec![Some(100.0), Some(180.0), Some(170.0)]);
    assert_eq!(p99.data[2], vec![Some(100.0), Some(180.0), None]);
    assert_eq!(
        p99.point_labels.as_deref(),
        Some(
            &[
                "concurrency 1".to_string(),
                "concurrency 2".into(),
                "concurrency 4".into()
            ][..]
        )
    );
    assert!(
        notes(pareto).contains("Not drawn: Median TPOT, P99 ITL"),
        "{}",
        notes(pareto)
    );

    // CDFs: one curve per run, each ending at 1; the failed request is not a sample.
    let cdfs = section(&all, "TTFT and ITL distributions");
    let ttft = chart(cdfs, A, "TTFT CDF");
    assert_eq!(ttft.series.len(), 3);
    for col in &ttft.data[1..] {
        let ys: Vec<f64> = col.iter().flatten().copied().collect();
        assert!(ys.windows(2).all(|w| w[0] < w[1]), "{ys:?}");
        assert_eq!(ys.last(), Some(&1.0));
    }
    let at4: Vec<f64> = ttft.data[3].iter().flatten().copied().collect();
    assert_eq!(at4.len(), 9, "ten requests, one failed: {at4:?}");
    assert!(ttft.data[0].iter().flatten().all(|&x| x > 0.0));
    chart(cdfs, A, "ITL CDF");
    assert!(
        notes(cdfs).contains("No per-request TTFT data for concurrency 1, concurrency 2"),
        "{}",
        notes(cdfs)
    );
    assert!(cdfs
        .groups
        .iter()
        .filter(|g| g.heading == B)
        .all(|g| g.charts.is_empty()));

    // Timelines: tokens per bucket as tokens/s, the window shaded where recorded.
    let time = section(&all, "Throughput over time");
    let c1 = chart(time, &format!("{A}, concurrency 1"), "Throughput over time");
    assert_eq!(c1.shade, Some((0.4, 3.6)));
    assert_eq!(c1.data[1][1], Some(100.0));
    assert_eq!(c1.data[2][0], Some(1.0));
    // Five buckets end at 5 s, the last one's value held to its end.
    assert_eq!(c1.data[0].last(), Some(&Some(5.0)));
    assert_eq!(c1.data[1][4..], [Some(40.0), Some(40.0)]);
    let c4 = chart(time, &format!("{A}, concurrency 4"), "Throughput over time");
    assert_eq!(c4.shade, None);
    let n = notes(time);
    assert!(n.contains("No steady-state window recorded"), "{n}");
    assert!(n.contains("No timeline recorded for sharegpt"), "{n}");
}

#[test]
fn the_page_embeds_everything_and_escapes_names() {
    let page = inferperf_report::html::page(&fixture()).expect("page");
    assert!(!page.contains(B), "a raw scenario name in the page");
    assert!(page.contains("sharegpt&lt;/script&gt;&lt;!--"));
    assert_eq!(
        page.matches("<div class=\"chart\" data-chart=").count(),
        CHARTS
    );
    assert!(page.contains("<script type=\"application/json\" id=\"chart-data\">"));
    // Self-contained: no external script, style or font.
    assert!(!page.contains("<script src") && !page.contains("<link") && !page.contains("url(http"));
    // The existing SVG plots are still there.
    assert_eq!(page.matches("<svg").count(), 2);
}

fn chromium() -> &'static str {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium missing: run scripts/fetch-test-assets.sh (apt-get install chromium)")
}

/// The DOM headless Chromium ends with after running the page's scripts (virtual time, so
/// it does not depend on how fast this machine is), and its console log.
fn render(page: &str) -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file: PathBuf = dir.path().join("report.html");
    std::fs::write(&file, page).expect("write");
    let out = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,1600",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    (without_scripts(&String::from_utf8_lossy(&out.stdout)), log)
}

/// The DOM without the text of its `<script>` elements (the library and the data), so that
/// counts only see elements.
fn without_scripts(dom: &str) -> String {
    let mut out = String::new();
    let mut rest = dom;
    while let Some(start) = rest.find("<script") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("</script>")
            .map_or(rest.len(), |e| start + e + "</script>".len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The text of the error box the page's script writes into.
fn error_box(dom: &str) -> &str {
    let start = dom.find("id=\"chart-errors\"").expect("the error box");
    let open = start + dom[start..].find('>').expect("tag end") + 1;
    let close = open + dom[open..].find("</pre>").expect("closed");
    &dom[open..close]
}

#[test]
fn the_charts_render_in_headless_chromium() {
    let (dom, log) = render(&inferperf_report::html::page(&fixture()).expect("page"));
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    assert_eq!(error_box(&dom), "", "script errors");
    assert!(
        dom.contains(&format!("data-charts-drawn=\"{CHARTS}\"")),
        "not every chart was drawn"
    );
    assert_eq!(
        dom.matches("<canvas").count(),
        CHARTS,
        "one canvas per chart"
    );
    assert_eq!(dom.matches("class=\"uplot").count(), CHARTS);
    assert_eq!(
        dom.matches("data-shaded=\"true\"").count(),
        2,
        "two steady windows"
    );
    // Hover values live in each chart's legend.
    assert!(dom.matches("u-legend").count() >= CHARTS);
    // The escaped name reached the browser as text.
    assert!(dom.contains("<h3>sharegpt&lt;/script&gt;&lt;!--</h3>"));
}

#[test]
fn a_script_error_is_caught_by_the_test() {
    // The same check fails when the data block is broken: the script reports instead of drawing.
    let page = inferperf_report::html::page(&fixture())
        .expect("page")
        .replacen("id=\"chart-data\">[", "id=\"chart-data\">[}", 1);
    let (dom, _) = render(&page);
    assert!(
        error_box(&dom).contains("chart data"),
        "{}",
        error_box(&dom)
    );
    assert!(!dom.contains("data-charts-drawn"));
}
