//! `report html --request-trace`: the "Why requests were slow" section. Runs `trace explain`
//! ([`inferperf_trace::explain`]) on the client request trace and the reference server's side
//! of the same run, and draws its result: the TTFT composition at p50/p90/p99 and, for the
//! slowest requests by TTFT and by E2E, one Gantt row per request (inline SVG, no scripts) with
//! the step that delayed each most.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use inferperf_trace::explain::{
    explain, Components, ExplainOptions, ExplainReport, RequestExplanation, SlowRequest,
};

use crate::error::ReportError;
use crate::html::esc;

/// The inputs of the section, as `trace explain` takes them.
#[derive(Clone, Debug, Default)]
pub struct SlowInputs {
    /// The client request trace (`bench serving --request-trace FILE`).
    pub request_trace: Option<PathBuf>,
    /// The reference server's `serve --log-requests` file.
    pub request_log: Option<PathBuf>,
    /// Or its profiler traces (rank 0; by-stage files are joined).
    pub server_traces: Vec<PathBuf>,
    /// Requests drawn per chart.
    pub slowest: usize,
}

impl SlowInputs {
    /// Whether any input was given (without any, the page has no section).
    pub fn is_empty(&self) -> bool {
        self.request_trace.is_none() && self.request_log.is_none() && self.server_traces.is_empty()
    }

    /// Run `trace explain` on the inputs; `Ok(None)` when none were given. A client trace
    /// without a server side (or the reverse, or both server sides) is an error naming what is
    /// missing, and so is every failure of `explain`, naming the files.
    pub fn explain(&self) -> Result<Option<ExplainReport>, ReportError> {
        if self.is_empty() {
            return Ok(None);
        }
        let Some(client) = &self.request_trace else {
            return Err(ReportError::Explain(
                "--request-log/--server-trace need --request-trace FILE: the client request \
                 trace of the same run (bench serving --request-trace)"
                    .into(),
            ));
        };
        if self.request_log.is_none() && self.server_traces.is_empty() {
            return Err(ReportError::Explain(format!(
                "--request-trace {}: the server's side of the same run is missing: give \
                 --request-log FILE (serve --log-requests) or --server-trace FILE (its profiler \
                 traces)",
                client.display()
            )));
        }
        if self.request_log.is_some() && !self.server_traces.is_empty() {
            return Err(ReportError::Explain(
                "give the server's side as --request-log or --server-trace, not both".into(),
            ));
        }
        let rep = explain(&ExplainOptions {
            client: client.clone(),
            request_log: self.request_log.clone(),
            server_traces: self.server_traces.clone(),
            top: self.slowest.max(1),
            steps_per_request: 1,
        })
        .map_err(|e| {
            ReportError::Explain(format!(
                "explaining the requests of {}: {e}",
                client.display()
            ))
        })?;
        Ok(Some(rep))
    }
}

/// The parts a request's time is drawn as, in time order: name, colour.
pub const PARTS: [(&str, &str); 10] = [
    ("client queue", "#9e9e9e"),
    ("send", "#9467bd"),
    ("admission", "#8c564b"),
    ("queue wait", "#d62728"),
    ("prefill own", "#1f77b4"),
    ("prefill interference", "#ff7f0e"),
    ("first-token delivery", "#e377c2"),
    ("decode own", "#2ca02c"),
    ("decode interference", "#bcbd22"),
    ("stream tail", "#17becf"),
];

/// The last part of TTFT: the chart marks its end (the first token at the client).
const FIRST_TOKEN_PART: &str = "first-token delivery";

/// The parts of one request, ns, in [`PARTS`] order.
pub fn parts(client_queue_ns: i64, c: &Components) -> [i64; 10] {
    [
        client_queue_ns,
        c.send,
        c.admission,
        c.queue_wait,
        c.prefill_own,
        c.prefill_interference,
        c.first_token_delivery,
        c.decode_own,
        c.decode_interference,
        c.stream_tail,
    ]
}

fn ms(ns: i64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

/// The section: a heading, the composition table and the two Gantt charts.
pub fn section(rep: &ExplainReport) -> String {
    let mut h = String::new();
    h.push_str("<section id=\"why-slow\"><h2>Why requests were slow</h2>");
    let _ = write!(
        h,
        "<p>{} requests explained; server side: {}; client clock {} the server's by {} ms \
         &plusmn; {} ms.</p>",
        rep.requests.len(),
        esc(&rep.server_source),
        if rep.alignment.source == "measured" {
            "mapped to"
        } else {
            "assumed equal to"
        },
        ms(rep.alignment.offset_ns),
        ms(rep.alignment.uncertainty_ns as i64)
    );
    for n in &rep.notes {
        let _ = write!(h, "<p>Note: {}</p>", esc(n));
    }
    h.push_str("<h3>TTFT composition</h3><table class=\"ttft-shares\"><tr><th>part</th>");
    for s in &rep.ttft_shares {
        let _ = write!(h, "<th>p{}</th>", s.percentile);
    }
    h.push_str("</tr><tr><td>TTFT (ms)</td>");
    for s in &rep.ttft_shares {
        let _ = write!(h, "<td>{}</td>", ms(s.ttft_ns));
    }
    h.push_str("</tr>");
    let names = Components::default().ttft_parts().map(|p| p.0);
    for (i, name) in names.iter().enumerate() {
        let _ = write!(h, "<tr><td>{}</td>", esc(&name.replace('_', " ")));
        for s in &rep.ttft_shares {
            let share = s.shares.get(i).map_or(0.0, |x| x.1);
            let _ = write!(h, "<td>{:.1}%</td>", 100.0 * share);
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    let by_rid: HashMap<&str, &RequestExplanation> =
        rep.requests.iter().map(|r| (r.rid.as_str(), r)).collect();
    for (id, title, list) in [
        ("gantt-ttft", "Slowest requests by TTFT", &rep.slowest_ttft),
        (
            "gantt-e2e",
            "Slowest requests by E2E latency",
            &rep.slowest_e2e,
        ),
    ] {
        let _ = write!(h, "<h3>{}</h3>", esc(title));
        h.push_str(&gantt(id, list, &by_rid));
        h.push_str("<ul class=\"delaying\">");
        for s in list {
            let _ = write!(h, "<li><b>{}</b>: ", esc(&s.rid));
            match s.delaying_steps.first() {
                Some(d) => {
                    let shown: Vec<String> = d
                        .rids
                        .iter()
                        .zip(&d.extend_lens)
                        .take(6)
                        .map(|(r, n)| format!("{r} ({n} tok)"))
                        .collect();
                    let more = d.rids.len().saturating_sub(6);
                    // A step can start before the send: it was running when the request
                    // arrived. Within 5 us of the send it reads as `0.00 ms after`, not `-0.00`.
                    let when = if d.start_ms < -0.005 {
                        format!("{:.2} ms before it was sent", -d.start_ms)
                    } else {
                        format!("{:.2} ms after it was sent", d.start_ms.max(0.0))
                    };
                    let _ = write!(
                        h,
                        "delayed most by {} step{} ({} ms of its {} ms not its own work, {}{}): \
                         {} tokens for {} request{}: {}{}",
                        esc(&d.mode),
                        d.forward_ct.map(|f| format!(" #{f}")).unwrap_or_default(),
                        ms(d.delay_ns),
                        ms(d.dur_ns),
                        when,
                        if d.holds_request {
                            ""
                        } else {
                            "; it was not in the batch"
                        },
                        d.extend_lens.iter().sum::<u64>(),
                        d.rids.len(),
                        if d.rids.len() == 1 { "" } else { "s" },
                        esc(&shown.join(", ")),
                        if more > 0 {
                            format!(", +{more} more")
                        } else {
                            String::new()
                        }
                    );
                }
                None => h.push_str("no step of the server overlaps its window"),
            }
            h.push_str("</li>");
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
    h
}

/// A "nice" axis step (1, 2 or 5 x 10^k) giving about `ticks` ticks over `max`.
fn tick_step(max: f64, ticks: f64) -> f64 {
    let raw = (max / ticks).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// Shorten a label to `n` characters (the whole one is in the row's tooltip).
fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('\u{2026}');
        t
    }
}

/// One Gantt chart: a row per request, its parts as consecutive bars on one ms axis shared by
/// the rows, a legend below. Negative parts (clock uncertainty) are drawn 0 wide; their value
/// is in the tooltip.
pub fn gantt(
    id: &str,
    list: &[SlowRequest],
    by_rid: &HashMap<&str, &RequestExplanation>,
) -> String {
    const LABEL: f64 = 190.0;
    const PLOT: f64 = 760.0;
    const ROW: f64 = 20.0;
    const BAR: f64 = 14.0;
    const TOP: f64 = 10.0;
    let rows: Vec<(&SlowRequest, [i64; 10])> = list
        .iter()
        .map(|s| {
            let cq = by_rid.get(s.rid.as_str()).map_or(0, |r| r.client_queue_ns);
            (s, parts(cq, &s.components))
        })
        .collect();
    let max_ms = rows
        .iter()
        .map(|(_, p)| p.iter().map(|&v| v.max(0)).sum::<i64>())
        .max()
        .unwrap_or(0) as f64
        / 1e6;
    let max_ms = if max_ms > 0.0 { max_ms } else { 1.0 };
    let scale = PLOT / max_ms;
    let axis_y = TOP + ROW * rows.len() as f64 + 4.0;
    let legend_y = axis_y + 34.0;
    let legend_rows = PARTS.len().div_ceil(5);
    let height = legend_y + 18.0 * legend_rows as f64 + 4.0;
    let width = LABEL + PLOT + 30.0;
    let mut h = String::new();
    let _ = write!(
        h,
        "<svg class=\"gantt\" id=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" \
         font-size=\"11\">",
        esc(id)
    );
    for (i, (s, p)) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = write!(
            h,
            "<g class=\"row\" data-rid=\"{}\"><text class=\"rid\" x=\"{}\" y=\"{}\" \
             text-anchor=\"end\"><title>{}</title>{}</text>",
            esc(&s.rid),
            LABEL - 6.0,
            y + BAR - 3.0,
            esc(&s.rid),
            esc(&shorten(&s.rid, 28))
        );
        let mut x = LABEL;
        for ((name, colour), &v) in PARTS.iter().zip(p.iter()) {
            let w = v.max(0) as f64 / 1e6 * scale;
            let tip = if v < 0 {
                format!(
                    "{name}: {} ms (negative: clock uncertainty; drawn 0 wide)",
                    ms(v)
                )
            } else {
                format!("{name}: {} ms", ms(v))
            };
            let _ = write!(
                h,
                "<rect class=\"bar\" data-part=\"{}\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" \
                 height=\"{BAR}\" fill=\"{colour}\"><title>{}</title></rect>",
                esc(name),
                esc(&tip)
            );
            x += w;
            if *name == FIRST_TOKEN_PART {
                // Where the first token reached the client: TTFT ends here.
                let _ = write!(
                    h,
                    "<line class=\"first-token\" x1=\"{x:.2}\" y1=\"{:.2}\" x2=\"{x:.2}\" \
                     y2=\"{:.2}\" stroke=\"#000\" stroke-width=\"2\"><title>first token \
                     (TTFT {} ms)</title></line>",
                    y - 2.0,
                    y + BAR + 2.0,
                    ms(p[1..=6].iter().sum())
                );
            }
        }
        h.push_str("</g>");
    }
    // The shared axis.
    let _ = write!(
        h,
        "<line x1=\"{LABEL}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#444\"/>",
        LABEL + PLOT
    );
    let step = tick_step(max_ms, 8.0);
    let mut t = 0.0;
    while t <= max_ms * 1.0001 {
        let x = LABEL + t * scale;
        let _ = write!(
            h,
            "<line x1=\"{x:.2}\" y1=\"{axis_y}\" x2=\"{x:.2}\" y2=\"{}\" stroke=\"#444\"/>\
             <text x=\"{x:.2}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            axis_y + 4.0,
            axis_y + 15.0,
            if step >= 1.0 {
                format!("{t:.0}")
            } else {
                format!("{t:.2}")
            }
        );
        t += step;
    }
    let _ = write!(
        h,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">ms after the request was scheduled</text>",
        LABEL + PLOT / 2.0,
        axis_y + 28.0
    );
    h.push_str("<g class=\"legend\">");
    for (i, (name, colour)) in PARTS.iter().enumerate() {
        let x = LABEL + 152.0 * (i % 5) as f64;
        let y = legend_y + 18.0 * (i / 5) as f64;
        let _ = write!(
            h,
            "<rect x=\"{x}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            x + 16.0,
            y + 10.0,
            esc(name)
        );
    }
    h.push_str("</g></svg>");
    h
}
