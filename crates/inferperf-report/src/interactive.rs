//! The page's interactive part as HTML: the sections of [`crate::charts`] with their headings,
//! notes and one empty `<div>` per chart, the chart data as JSON in a
//! `<script type="application/json">` block, and the scripts that draw it -- the vendored uPlot
//! (`vendor/`, MIT, see `vendor/README.md`) and `charts.js` -- embedded at build time, so the
//! page stays one file that works offline.

use std::fmt::Write as _;

use crate::charts::{Chart, Section};
use crate::html::esc;

/// uPlot, minified, as the npm tarball ships it (`scripts/vendor-charts.sh`).
const UPLOT_JS: &str = include_str!("../vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../vendor/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../vendor/LICENSE");
/// The hand-written script that builds the charts from the JSON block.
const CHARTS_JS: &str = include_str!("charts.js");

/// The element ids the script and the tests use.
pub const DATA_ID: &str = "chart-data";
pub const ERRORS_ID: &str = "chart-errors";

/// JSON that can sit inside a `<script>` element: `<`, `>` and `&` only occur inside JSON
/// strings, where their `\u` escapes mean the same, so neither `</script>` nor `<!--` can
/// appear in the block.
pub fn script_json(v: &impl serde::Serialize) -> String {
    // Chart data is strings and numbers (non-finite ones become null), which always serialize;
    // were it ever to fail, an empty list makes the script report every chart as missing.
    serde_json::to_string(v)
        .unwrap_or_else(|_| "[]".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The styles the sections need (uPlot's own and a few for the layout), for the page's head.
pub fn styles() -> String {
    format!(
        "<style>{UPLOT_CSS}\n.chart{{margin:8px 0 16px}}.note{{color:#555;font-style:italic}}\
         .charts-help{{color:#555}}button.reset{{margin:0 0 4px}}#{ERRORS_ID}{{color:#b00}}</style>"
    )
}

/// The sections, the data block and the scripts.
pub fn sections(all: &[Section]) -> String {
    let mut h = String::new();
    let mut charts: Vec<&Chart> = Vec::new();
    let _ = write!(
        h,
        "<pre id=\"{ERRORS_ID}\" hidden></pre><p class=\"charts-help\">Hover a chart for its \
         values; drag across it to zoom, double-click or \"Reset zoom\" to undo.</p>"
    );
    for s in all {
        let _ = write!(
            h,
            "<section class=\"interactive\"><h2>{}</h2><p>{}</p>",
            esc(&s.title),
            esc(&s.blurb)
        );
        for g in &s.groups {
            if !g.heading.is_empty() {
                let _ = write!(h, "<h3>{}</h3>", esc(&g.heading));
            }
            for n in &g.notes {
                let _ = write!(h, "<p class=\"note\">{}</p>", esc(n));
            }
            for c in &g.charts {
                let _ = write!(
                    h,
                    "<div class=\"chart\" data-chart=\"{}\"></div>",
                    charts.len()
                );
                charts.push(c);
            }
        }
        h.push_str("</section>");
    }
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"{DATA_ID}\">{}</script>",
        script_json(&charts)
    );
    let _ = write!(
        h,
        "<script>{UPLOT_JS}\n</script><script>{CHARTS_JS}</script>"
    );
    let _ = write!(
        h,
        "<details><summary>Chart library licence (uPlot)</summary><pre>{}</pre></details>",
        esc(UPLOT_LICENSE)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_its_element() {
        let s = script_json(&vec!["</script><!-- & >"]);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: Vec<String> = serde_json::from_str(&s).expect("still JSON");
        assert_eq!(back, vec!["</script><!-- & >".to_string()]);
    }

    #[test]
    fn the_vendored_library_is_embedded_and_nothing_is_fetched() {
        let h = sections(&[]);
        assert!(h.contains("var uPlot="), "the library is inline");
        assert!(
            h.contains("Permission is hereby granted"),
            "the licence ships with it"
        );
        assert!(!h.contains("src=\"http") && !h.contains("<link"));
    }
}
