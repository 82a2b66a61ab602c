//! `report html`'s "Why requests were slow" section from hand-written inputs
//! (tests/data/why-slow: a client request trace as docs/trace-conventions.md "Client request
//! traces" describes it and a `--log-requests` file as "Requests (reference server)"): one Gantt
//! row per slow request labelled with its (escaped) rid, bars as wide as their parts on one ms
//! axis, a negative part drawn 0 wide with its value in the tooltip, the legend, and inputs
//! that lack a side named. The page with the section renders in headless Chromium.

use std::path::PathBuf;

use inferperf_report::slow::{parts, SlowInputs, PARTS};
use inferperf_trace::explain::ExplainReport;

fn data(name: &str) -> PathBuf {
    inferperf_test_support::manifest_dir!()
        .join("tests/data/why-slow")
        .join(name)
}

fn inputs() -> SlowInputs {
    SlowInputs {
        request_trace: Some(data("client-requests.json")),
        request_log: Some(data("requests.jsonl")),
        server_traces: Vec::new(),
        slowest: 10,
    }
}

fn explained() -> ExplainReport {
    inputs().explain().expect("explain").expect("a report")
}

/// The SVG chart with id `id` in `page`.
fn chart<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<svg class=\"gantt\" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let len = page[start..].find("</svg>").expect("closed");
    &page[start..start + len]
}

/// The value of attribute `name` in the tag starting `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    &tag[at..at + tag[at..].find('"').expect("closing quote")]
}

/// A bar: its part, width and tooltip.
type Bar = (String, f64, String);

/// Each row of a chart: its rid attribute and its bars.
fn rows(svg: &str) -> Vec<(String, Vec<Bar>)> {
    svg.split("<g class=\"row\"")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</g>").expect("row closed")];
            let bars = row
                .split("<rect class=\"bar\"")
                .skip(1)
                .map(|b| {
                    let tip_at = b.find("<title>").expect("tooltip") + "<title>".len();
                    let tip = &b[tip_at..tip_at + b[tip_at..].find("</title>").expect("closed")];
                    (
                        attr(b, "data-part").to_string(),
                        attr(b, "width").parse::<f64>().expect("width"),
                        tip.to_string(),
                    )
                })
                .collect();
            (attr(row, "data-rid").to_string(), bars)
        })
        .collect()
}

#[test]
fn the_section_draws_one_row_per_slow_request_with_bars_as_wide_as_their_parts() {
    let rep = explained();
    assert_eq!(rep.requests.len(), 3, "{:?}", rep.notes);
    let d = inferperf_report::data::load(&data("runs.jsonl")).expect("runs");
    let plain = inferperf_report::html::page(&d).expect("page");
    assert!(!plain.contains("Why requests were slow"));
    let page = inferperf_report::html::page_with(&d, Some(&rep)).expect("page");
    assert!(page.contains("<h2>Why requests were slow</h2>"));
    // The section adds no script (the page's own are the interactive charts').
    assert_eq!(
        page.matches("<script").count(),
        plain.matches("<script").count()
    );
    // The rid with markup in it is escaped everywhere, never raw.
    assert!(!page.contains("short<b>"), "a raw rid in the page");
    assert!(page.contains("short&lt;b&gt;&amp;amp"));

    // The composition table has p50/p90/p99 and every TTFT part.
    for h in [
        "<th>p50</th>",
        "<th>p90</th>",
        "<th>p99</th>",
        "<td>queue wait</td>",
    ] {
        assert!(page.contains(h), "{h} missing");
    }

    let by_rid = inferperf_trace::explain::by_rid(&rep);
    for (id, list) in [
        ("gantt-ttft", &rep.slowest_ttft),
        ("gantt-e2e", &rep.slowest_e2e),
    ] {
        let svg = chart(&page, id);
        let rows = rows(svg);
        // One row per slow request, in the report's order, labelled by its rid.
        assert_eq!(rows.len(), list.len());
        assert_eq!(rows.len(), 3);
        // Each row marks where its first token reached the client, with the TTFT.
        assert_eq!(svg.matches("class=\"first-token\"").count(), 3);
        for slow in list.iter() {
            let ttft = format!(
                "first token (TTFT {:.2} ms)",
                slow.components.ttft() as f64 / 1e6
            );
            assert!(svg.contains(&ttft), "{ttft} missing");
        }
        let values: Vec<[i64; 10]> = list
            .iter()
            .map(|s| parts(by_rid[s.rid.as_str()].client_queue_ns, &s.components))
            .collect();
        // One px-per-ns scale for every bar of the chart (widths are written to 0.01 px).
        let (px, ns) = rows
            .iter()
            .zip(&values)
            .flat_map(|(r, v)| r.1.iter().zip(v.iter()))
            .fold((0.0, 0.0), |(px, ns), (b, v)| {
                (px + b.1, ns + (*v).max(0) as f64)
            });
        let scale = px / ns;
        for (((rid, bars), slow), values) in rows.iter().zip(list.iter()).zip(&values) {
            let escaped = slow
                .rid
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            assert_eq!(rid, &escaped);
            assert!(svg.contains(&format!("<title>{escaped}</title>")));
            assert_eq!(bars.len(), PARTS.len());
            for ((part, w, tip), (v, (name, _))) in bars.iter().zip(values.iter().zip(PARTS)) {
                assert_eq!(part, name);
                assert!(tip.starts_with(&format!("{name}: ")), "{tip}");
                if *v <= 0 {
                    assert_eq!(*w, 0.0, "{name} = {v} ns drawn {w} wide");
                    continue;
                }
                assert!(
                    (w - *v as f64 * scale).abs() < 0.05,
                    "{} {name}: {v} ns drawn {w} wide (scale {scale})",
                    slow.rid
                );
            }
            // So the bars are ordered as the parts' values (parts within 50 us of each other
            // are equal up to the request log's float seconds).
            for (a, (_, wa, _)) in values.iter().zip(bars.iter()) {
                for (b, (_, wb, _)) in values.iter().zip(bars.iter()) {
                    if a.max(&0) - b.max(&0) > 50_000 {
                        assert!(wa > wb, "{a} ns vs {b} ns drawn {wa} vs {wb}");
                    }
                }
            }
        }
        // The legend names every part.
        let legend = &svg[svg.find("<g class=\"legend\">").expect("legend")..];
        for (name, colour) in PARTS {
            assert!(legend.contains(&format!(">{name}</text>")), "{name}");
            assert!(legend.contains(colour));
        }
    }

    // `early` reached the server 0.1 ms before the client sent it: drawn 0 wide, said in its
    // tooltip.
    let early = rows(chart(&page, "gantt-e2e"))
        .into_iter()
        .find(|r| r.0 == "early")
        .expect("early drawn");
    let send = &early.1[1];
    assert_eq!((send.0.as_str(), send.1), ("send", 0.0));
    assert!(
        send.2.contains("-0.10 ms") && send.2.contains("negative"),
        "{}",
        send.2
    );

    // Under each chart, the step that delayed each request most, with its batch.
    assert!(page.contains("delayed most by EXTEND step #1"), "{page}");
    assert!(page.contains("long (64 tok), short&lt;b&gt;&amp;amp (16 tok)"));
    assert!(page.contains("0.00 ms after it was sent; it was not in the batch"));
    assert!(page.contains("<b>early</b>: no step of the server overlaps its window"));
}

#[test]
fn a_side_missing_is_named() {
    let e = SlowInputs {
        request_log: None,
        ..inputs()
    }
    .explain()
    .expect_err("no server side")
    .to_string();
    assert!(
        e.contains("client-requests.json")
            && e.contains("--request-log")
            && e.contains("--server-trace"),
        "{e}"
    );
    let e = SlowInputs {
        request_trace: None,
        ..inputs()
    }
    .explain()
    .expect_err("no client side")
    .to_string();
    assert!(e.contains("--request-trace"), "{e}");
    // A failing explain names the file.
    let e = SlowInputs {
        request_log: Some(data("runs.jsonl")),
        ..inputs()
    }
    .explain()
    .expect_err("not a request log")
    .to_string();
    assert!(e.contains("runs.jsonl") && e.contains("line 1"), "{e}");
    assert!(SlowInputs::default().explain().expect("nothing").is_none());
}

/// The page with the section renders in headless Chromium (Debian `chromium`, installed by
/// scripts/fetch-test-assets.sh) without console errors.
#[test]
fn the_page_with_the_section_renders_in_headless_chromium() {
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
    let d = inferperf_report::data::load(&data("runs.jsonl")).expect("runs");
    let page = dir.path().join("report.html");
    std::fs::write(
        &page,
        inferperf_report::html::page_with(&d, Some(&explained())).expect("page"),
    )
    .expect("write");
    let dom = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    // The browser parsed the charts as SVG: its DOM has every row and bar.
    let out = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(out.matches("<g class=\"row\"").count(), 6, "{out}");
    assert_eq!(out.matches("<rect class=\"bar\"").count(), 6 * PARTS.len());
}
