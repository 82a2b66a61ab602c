//! The data of the page's interactive charts, built from the runs: metrics against load (log2
//! axis for concurrency), the throughput-vs-latency Pareto frontier per scenario, TTFT and ITL
//! CDFs per run, and throughput over time with the steady-state window. Only data and the
//! notes that say what could not be drawn live here; [`crate::interactive`] turns it into HTML
//! and the page's script into uPlot charts.

use serde::Serialize;

use crate::data::{ReportData, Run};

/// At most this many points per CDF curve (the first and last sample are always kept).
pub const CDF_POINTS: usize = 200;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Draw {
    /// Points joined by straight lines (gaps spanned).
    Line,
    /// Points only.
    Points,
    /// A step after each point (CDFs, per-bucket counts).
    Step,
}

/// One series: its label, how it is drawn, and whether it uses the right-hand axis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub label: String,
    pub draw: Draw,
    pub right_axis: bool,
}

/// One chart: `data[0]` holds the x values (ascending), `data[k]` the y values of
/// `series[k - 1]` at those x (`None` where the series has no point).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The right-hand axis's label when a series uses it.
    pub y2_label: Option<String>,
    pub x_log2: bool,
    pub series: Vec<Series>,
    pub data: Vec<Vec<Option<f64>>>,
    /// A text shown next to each point's value on hover (one per x), e.g. the run's load.
    pub point_labels: Option<Vec<String>>,
    /// An x range drawn shaded (the steady-state window).
    pub shade: Option<(f64, f64)>,
}

/// Charts under one heading (a scenario or a run) with the notes on what is missing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub heading: String,
    pub charts: Vec<Chart>,
    pub notes: Vec<String>,
}

/// One part of the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    pub title: String,
    pub blurb: String,
    pub groups: Vec<Group>,
}

/// For each point `(throughput, latency)`: whether it is on the Pareto frontier (higher
/// throughput and lower latency are better), i.e. no other point is at least as good in both
/// and strictly better in one. Equal points are all on it; non-finite points never are.
pub fn pareto_frontier(points: &[(f64, f64)]) -> Vec<bool> {
    let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    points
        .iter()
        .map(|p| {
            finite(p)
                && !points
                    .iter()
                    .any(|q| finite(q) && q.0 >= p.0 && q.1 <= p.1 && (q.0 > p.0 || q.1 < p.1))
        })
        .collect()
}

/// The empirical CDF of `samples`: `(value, fraction of samples <= value)` at each distinct
/// value, ascending, thinned evenly to at most `max_points` (keeping the first and the last,
/// whose fraction is 1). Non-finite samples are ignored; no samples give no points.
pub fn cdf(samples: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (i, &x) in s.iter().enumerate() {
        let frac = (i + 1) as f64 / n;
        match steps.last_mut() {
            Some(last) if last.0 == x => last.1 = frac,
            _ => steps.push((x, frac)),
        }
    }
    let max_points = max_points.max(2);
    if steps.len() <= max_points {
        return steps;
    }
    let last = steps.len() - 1;
    // Strictly increasing indices (there are more steps than points), 0 and `last` included.
    (0..max_points)
        .map(|k| steps[k * last / (max_points - 1)])
        .collect()
}

/// The x values of several `(x, y)` curves merged into one ascending axis, each curve's y at
/// its own x and `None` elsewhere (the layout uPlot draws).
fn align(curves: &[Vec<(f64, f64)>]) -> Vec<Vec<Option<f64>>> {
    let mut xs: Vec<f64> = curves.iter().flatten().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut out = vec![xs.iter().map(|&x| Some(x)).collect::<Vec<_>>()];
    for c in curves {
        let mut col = vec![None; xs.len()];
        for &(x, y) in c {
            if let Ok(i) = xs.binary_search_by(|v| v.total_cmp(&x)) {
                col[i] = Some(y);
            }
        }
        out.push(col);
    }
    out
}

/// "concurrency 4", "request rate 2.5", "batch size 8".
pub fn load_label(r: &Run) -> String {
    let kind = match r.iteration_type.as_str() {
        "num_concurrency" => "concurrency",
        other => other,
    };
    format!("{} {}", kind.replace('_', " "), r.value)
}

fn line(label: &str) -> Series {
    Series {
        label: label.to_string(),
        draw: Draw::Line,
        right_axis: false,
    }
}

/// Every section, in page order.
pub fn build(d: &ReportData) -> Vec<Section> {
    vec![
        load_section(d),
        pareto_section(d),
        cdf_section(d),
        timeline_section(d),
    ]
}

/// A summary metric of a run.
type MetricOf = fn(&Run) -> f64;

/// Throughput and latency against load, one line per scenario; the x axis is log2 when the
/// load is a concurrency or batch size (they are swept in powers of two).
fn load_section(d: &ReportData) -> Section {
    let x_log2 = d
        .runs
        .iter()
        .all(|r| r.iteration_type != "request_rate" && r.value > 0.0);
    let x_label = match d.runs.first().map(|r| r.iteration_type.as_str()) {
        Some("num_concurrency") => "Concurrency",
        Some("batch_size") => "Batch size",
        Some("request_rate") => "Request rate (req/s)",
        _ => "Load",
    };
    let metrics: [(&str, MetricOf); 4] = [
        ("Output tokens/s", |r| r.output_tokens_per_s),
        ("P99 TTFT (s)", |r| r.ttft_p99),
        ("Mean TPOT (s)", |r| r.tpot_mean),
        ("P99 E2E latency (s)", |r| r.e2e_p99),
    ];
    let scenarios = d.scenarios();
    let charts = metrics
        .iter()
        .map(|(name, get)| {
            let curves: Vec<Vec<(f64, f64)>> = scenarios
                .iter()
                .map(|s| {
                    d.runs_of(s)
                        .map(|r| (r.value, get(r)))
                        // Summary fields read a missing key as 0, which no latency is: not drawn.
                        .filter(|p| p.1.is_finite() && (*name == "Output tokens/s" || p.1 > 0.0))
                        .collect()
                })
                .collect();
            Chart {
                title: format!("{name} vs {}", x_label.to_lowercase()),
                x_label: x_label.into(),
                y_label: (*name).into(),
                y2_label: None,
                x_log2,
                series: scenarios.iter().map(|s| line(s)).collect(),
                data: align(&curves),
                point_labels: None,
                shade: None,
            }
        })
        .collect();
    Section {
        title: "Metrics vs load".into(),
        blurb: "One line per scenario.".into(),
        groups: vec![Group {
            heading: String::new(),
            charts,
            notes: Vec::new(),
        }],
    }
}

/// The latency a frontier is drawn against, from a run.
type LatencyOf = fn(&Run) -> Option<f64>;

/// Output throughput against each latency percentile the files record, per scenario: every run
/// as a point, the frontier runs joined by a line.
fn pareto_section(d: &ReportData) -> Section {
    let metrics: [(&str, LatencyOf); 4] = [
        ("P99 TTFT (s)", |r| r.detail.latencies.ttft_p99),
        ("Median TTFT (s)", |r| r.detail.latencies.ttft_p50),
        ("Median TPOT (s)", |r| r.detail.latencies.tpot_p50),
        ("P99 ITL (s)", |r| r.detail.latencies.itl_p99),
    ];
    let groups = d
        .scenarios()
        .iter()
        .map(|s| {
            let mut charts = Vec::new();
            let mut missing = Vec::new();
            for (name, get) in metrics {
                // (latency, throughput, load) of the runs that record both.
                let mut pts: Vec<(f64, f64, String)> = d
                    .runs_of(s)
                    .filter_map(|r| Some((get(r)?, r.output_tokens_per_s, load_label(r))))
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .collect();
                if pts.is_empty() {
                    missing.push(name.trim_end_matches(" (s)"));
                    continue;
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
                let on = pareto_frontier(&pts.iter().map(|p| (p.1, p.0)).collect::<Vec<_>>());
                charts.push(Chart {
                    title: format!("Output tokens/s vs {}", name.trim_end_matches(" (s)")),
                    x_label: (*name).into(),
                    y_label: "Output tokens/s".into(),
                    y2_label: None,
                    x_log2: false,
                    series: vec![
                        Series {
                            label: "runs".into(),
                            draw: Draw::Points,
                            right_axis: false,
                        },
                        line("Pareto frontier"),
                    ],
                    data: vec![
                        pts.iter().map(|p| Some(p.0)).collect(),
                        pts.iter().map(|p| Some(p.1)).collect(),
                        pts.iter()
                            .zip(&on)
                            .map(|(p, &f)| f.then_some(p.1))
                            .collect(),
                    ],
                    point_labels: Some(pts.into_iter().map(|p| p.2).collect()),
                    shade: None,
                });
            }
            let mut notes = Vec::new();
            if !missing.is_empty() {
                notes.push(format!(
                    "Not drawn: {} (not recorded for any run of this scenario).",
                    missing.join(", ")
                ));
            }
            Group {
                heading: s.clone(),
                charts,
                notes,
            }
        })
        .collect();
    Section {
        title: "Throughput vs latency (Pareto frontier)".into(),
        blurb: "Every run is a point; the line joins the runs no other run beats on both \
                throughput and latency."
            .into(),
        groups,
    }
}

/// TTFT and ITL CDFs per scenario, one curve per run that has per-request samples.
fn cdf_section(d: &ReportData) -> Section {
    type Samples = fn(&Run) -> Option<&Vec<f64>>;
    let kinds: [(&str, &str, &str, Samples); 2] = [
        ("TTFT", "TTFT (s)", "Fraction of requests", |r| {
            r.detail.ttfts.as_ref()
        }),
        (
            "ITL",
            "Inter-token latency (s)",
            "Fraction of token gaps",
            |r| r.detail.itls.as_ref(),
        ),
    ];
    let groups = d
        .scenarios()
        .iter()
        .map(|s| {
            let mut charts = Vec::new();
            let mut notes = Vec::new();
            for (kind, x_label, y_label, get) in kinds {
                let mut series = Vec::new();
                let mut curves = Vec::new();
                let mut without = Vec::new();
                for r in d.runs_of(s) {
                    match get(r).map(|v| cdf(v, CDF_POINTS)).filter(|c| !c.is_empty()) {
                        Some(c) => {
                            series.push(Series {
                                label: load_label(r),
                                draw: Draw::Step,
                                right_axis: false,
                            });
                            curves.push(c);
                        }
                        None => without.push(load_label(r)),
                    }
                }
                if !without.is_empty() {
                    notes.push(format!(
                        "No per-request {kind} data for {}{}.",
                        without.join(", "),
                        if kind == "TTFT" {
                            " (bench serving writes it with --output-details)"
                        } else {
                            " (bench serving --output-details writes it; sweep folders hold no per-token gaps)"
                        }
                    ));
                }
                if curves.is_empty() {
                    continue;
                }
                charts.push(Chart {
                    title: format!("{kind} CDF"),
                    x_label: x_label.into(),
                    y_label: y_label.into(),
                    y2_label: None,
                    x_log2: false,
                    series,
                    data: align(&curves),
                    point_labels: None,
                    shade: None,
                });
            }
            Group {
                heading: s.clone(),
                charts,
                notes,
            }
        })
        .collect();
    Section {
        title: "TTFT and ITL distributions".into(),
        blurb: "Empirical CDFs from the per-request samples, one curve per run (ITL: every \
                request's gaps pooled)."
            .into(),
        groups,
    }
}

/// Output tokens/s and requests in flight per time bucket, one chart per run that records a
/// timeline, its steady-state window shaded.
fn timeline_section(d: &ReportData) -> Section {
    let mut groups = Vec::new();
    let mut without = Vec::new();
    for r in &d.runs {
        let heading = format!("{}, {}", r.scenario, load_label(r));
        let Some(t) = r
            .detail
            .timeline
            .as_ref()
            .filter(|t| t.bucket_s > 0.0 && t.bucket_s.is_finite())
        else {
            without.push(heading);
            continue;
        };
        let n = t.output_tokens.len().max(t.concurrency.len());
        // Bucket k's value holds over [k, k+1) buckets: a last row at the end of the final
        // bucket repeats its values so the step covers it.
        let at = |v: &[f64], k: usize| v.get(k.min(n.saturating_sub(1))).copied();
        let data = vec![
            (0..=n).map(|k| Some(k as f64 * t.bucket_s)).collect(),
            (0..=n)
                .map(|k| at(&t.output_tokens, k).map(|x| x / t.bucket_s))
                .collect(),
            (0..=n).map(|k| at(&t.concurrency, k)).collect(),
        ];
        let mut notes = Vec::new();
        let steady = r.detail.steady_state.as_ref();
        let shade = steady.and_then(|s| s.window()).inspect(|&(start, end)| {
            let mut note = format!("Steady state (shaded): {start:.1} s to {end:.1} s");
            if let Some(tp) = steady.and_then(|s| s.output_throughput) {
                note.push_str(&format!(", {tp:.1} output tokens/s"));
            }
            if let Some(c) = steady.and_then(|s| s.concurrency_threshold) {
                note.push_str(&format!(", requests in flight >= {c}"));
            }
            note.push('.');
            notes.push(note);
        });
        if shade.is_none() {
            notes.push(match steady {
                Some(_) => "The run recorded no steady-state window (it never held the \
                            concurrency threshold)."
                    .into(),
                None => "No steady-state window recorded for this run.".into(),
            });
        }
        groups.push(Group {
            heading,
            charts: vec![Chart {
                title: "Throughput over time".into(),
                x_label: "Seconds from the first request".into(),
                y_label: "Output tokens/s".into(),
                y2_label: Some("Requests in flight".into()),
                x_log2: false,
                series: vec![
                    Series {
                        label: "output tokens/s".into(),
                        draw: Draw::Step,
                        right_axis: false,
                    },
                    Series {
                        label: "requests in flight".into(),
                        draw: Draw::Step,
                        right_axis: true,
                    },
                ],
                data,
                point_labels: None,
                shade,
            }],
            notes,
        });
    }
    if !without.is_empty() {
        groups.push(Group {
            heading: String::new(),
            charts: Vec::new(),
            notes: vec![format!(
                "No timeline recorded for {} (older bench serving results and sweep folders \
                 have none).",
                without.join("; ")
            )],
        });
    }
    Section {
        title: "Throughput over time".into(),
        blurb: "Per-second buckets from the run's first request.".into(),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominated_points_are_off_the_frontier() {
        // (throughput, latency)
        let pts = [
            (100.0, 1.0),
            (200.0, 2.0),
            (150.0, 2.5),
            (50.0, 0.5),
            (90.0, 1.0),
        ];
        assert_eq!(
            pareto_frontier(&pts),
            vec![true, true, false, true, false],
            "(150, 2.5) loses to (200, 2.0); (90, 1.0) to (100, 1.0)"
        );
    }

    #[test]
    fn ties_stay_on_the_frontier_and_non_finite_points_never_are() {
        let pts = [(100.0, 1.0), (100.0, 1.0), (100.0, 2.0), (f64::NAN, 0.1)];
        assert_eq!(pareto_frontier(&pts), vec![true, true, false, false]);
        // Same latency, lower throughput: dominated.
        assert_eq!(
            pareto_frontier(&[(10.0, 1.0), (20.0, 1.0)]),
            vec![false, true]
        );
        assert!(pareto_frontier(&[]).is_empty());
    }

    #[test]
    fn a_cdf_is_monotone_and_ends_at_one() {
        let samples = [0.3, 0.1, 0.2, 0.2, f64::NAN, 0.5];
        let c = cdf(&samples, 100);
        assert_eq!(c, vec![(0.1, 0.2), (0.2, 0.6), (0.3, 0.8), (0.5, 1.0)]);
        // Thinned: still ascending in both, first sample kept, last point at 1.
        let many: Vec<f64> = (0..10_000).map(|i| ((i * 7919) % 10_007) as f64).collect();
        let c = cdf(&many, 50);
        assert!(c.len() <= 50 && c.len() > 40, "{}", c.len());
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        assert_eq!(c.first().map(|p| p.0), Some(0.0));
        assert_eq!(c.last().map(|p| p.1), Some(1.0));
        assert!(cdf(&[], 10).is_empty());
    }

    #[test]
    fn curves_are_aligned_on_one_x_axis() {
        let a = align(&[
            vec![(1.0, 10.0), (3.0, 30.0)],
            vec![(2.0, 20.0), (3.0, 31.0)],
        ]);
        assert_eq!(
            a,
            vec![
                vec![Some(1.0), Some(2.0), Some(3.0)],
                vec![Some(10.0), None, Some(30.0)],
                vec![None, Some(20.0), Some(31.0)],
            ]
        );
    }
}
