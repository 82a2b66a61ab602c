//! `report html`: one self-contained page (the summary table, inline SVG plots, the interactive
//! charts of [`crate::charts`] drawn by the embedded chart library, and the run metadata; no
//! external scripts, styles or fonts) that can be mailed around and opened offline.

use std::fmt::Write as _;

use inferperf_trace::explain::ExplainReport;

use crate::data::ReportData;
use crate::error::ReportError;
use crate::plot::{svg, Preset};

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page.
pub fn page(d: &ReportData) -> Result<String, ReportError> {
    page_with(d, None)
}

/// The page, with the "Why requests were slow" section ([`crate::slow`]) after the plots when
/// `explained` is given.
pub fn page_with(d: &ReportData, explained: Option<&ExplainReport>) -> Result<String, ReportError> {
    let mut h = String::new();
    let title = format!("inferperf report: {}", d.source.display());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:24px}}table{{border-collapse:collapse;margin:12px 0}}\
         td,th{{border:1px solid #bbb;padding:4px 8px;text-align:right}}th{{background:#eee}}\
         td:first-child,th:first-child{{text-align:left}}svg{{max-width:100%;height:auto}}</style>\
         {}</head><body><h1>{}</h1>",
        esc(&title),
        crate::interactive::styles(),
        esc(&title)
    );
    h.push_str("<h2>Summary</h2><table><tr><th>Scenario</th><th>Load</th><th>Req/s</th><th>Output tok/s</th><th>Mean TTFT (s)</th><th>P99 TTFT (s)</th><th>Mean E2E (s)</th><th>P99 E2E (s)</th><th>Error rate</th></tr>");
    for r in &d.runs {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{} {}</td><td>{:.2}</td><td>{:.1}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.3}</td></tr>",
            esc(&r.scenario),
            esc(&r.iteration_type),
            r.value,
            r.requests_per_second,
            r.output_tokens_per_s,
            r.ttft_mean,
            r.ttft_p99,
            r.e2e_mean,
            r.e2e_p99,
            r.error_rate
        );
    }
    h.push_str("</table>");
    for p in [Preset::Default2x4, Preset::MultiLineLatency] {
        let _ = write!(h, "<h2>{}</h2>", esc(p.file_stem()));
        h.push_str(&svg(d, p)?);
    }
    h.push_str(&crate::interactive::sections(&crate::charts::build(d)));
    if let Some(rep) = explained {
        h.push_str(&crate::slow::section(rep));
    }
    h.push_str("<h2>Run metadata</h2><pre>");
    h.push_str(&esc(
        &serde_json::to_string_pretty(&d.metadata).unwrap_or_default()
    ));
    h.push_str("</pre></body></html>\n");
    Ok(h)
}
