//! `bench slo`: the highest load that meets every SLO. Each probe is a `bench serving` run at one
//! request rate (open loop) or concurrency (closed loop); the search doubles the load until an SLO
//! breaks or the server saturates (achieved throughput falls behind the offered rate), then
//! bisects between the last passing and the first failing load until they are within the
//! requested precision or the probe budget is spent. The answer is the last passing load with
//! the bracket as its uncertainty.

use std::fmt::Write as _;

use crate::config::ServingConfig;
use crate::serving::{run_serving_rows, ServingContext};
use inferperf_loadgen::dataset::DatasetRow;
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::metrics::BenchmarkMetrics;
use inferperf_loadgen::stats::Summary;

/// Builds a probe's `n` dataset rows.
pub type RowsFn<'a> = dyn Fn(usize) -> Result<Vec<DatasetRow>, BenchError> + 'a;

/// One SLO: `{stat}_{metric}_ms <= limit` (or `<`).
#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    pub name: String,
    pub limit_ms: f64,
    pub strict: bool,
}

/// Parse `p99_ttft_ms<=500,p99_tpot_ms<=50`; stats `mean|median|p50|p90|p95|p99|max`, metrics
/// `ttft|tpot|itl|e2e_latency|e2el`.
pub fn parse_slos(s: &str) -> Result<Vec<Slo>, BenchError> {
    let bad = |m: String| BenchError::Config(format!("--slo {s:?}: {m}"));
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let p = p.trim();
            let (name, limit, strict) = if let Some((n, v)) = p.split_once("<=") {
                (n, v, false)
            } else if let Some((n, v)) = p.split_once('<') {
                (n, v, true)
            } else {
                return Err(bad(format!("{p:?} must be NAME<=MS or NAME<MS")));
            };
            let name = name.trim().to_string();
            let limit_ms: f64 = limit
                .trim()
                .parse()
                .map_err(|_| bad(format!("{limit:?} is not a number")))?;
            let slo = Slo {
                name,
                limit_ms,
                strict,
            };
            // Check the name now, against an empty summary.
            value_of(&BenchmarkMetrics::default(), &slo.name).map_err(bad)?;
            Ok(slo)
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(bad("no SLO given".into()))
            } else {
                Ok(v)
            }
        })
}

/// The value an SLO name refers to in a run's metrics (ms).
fn value_of(m: &BenchmarkMetrics, name: &str) -> Result<f64, String> {
    let rest = name
        .strip_suffix("_ms")
        .ok_or_else(|| format!("SLO names end in _ms, got {name:?}"))?;
    let (stat, metric) = rest
        .split_once('_')
        .ok_or_else(|| format!("SLO names are STAT_METRIC_ms, got {name:?}"))?;
    let summary: &Summary = match metric {
        "ttft" => &m.ttft_ms,
        "tpot" => &m.tpot_ms,
        "itl" => &m.itl_ms,
        "e2e_latency" | "e2el" => &m.e2e_latency_ms,
        other => {
            return Err(format!(
                "unknown SLO metric {other:?} (ttft, tpot, itl, e2e_latency)"
            ))
        }
    };
    Ok(match stat {
        "mean" => summary.mean,
        "median" | "p50" => summary.median,
        "p90" => summary.p90,
        "p95" => summary.p95,
        "p99" => summary.p99,
        "max" => summary.max,
        other => {
            return Err(format!(
                "unknown SLO statistic {other:?} (mean, median, p90, p95, p99, max)"
            ))
        }
    })
}

/// How the load is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Open loop: Poisson arrivals at a request rate.
    Rate,
    /// Closed loop: a number of requests in flight.
    Concurrency,
}

/// One probe's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub load: f64,
    pub passed: bool,
    pub saturated: bool,
    pub achieved_rps: f64,
    /// (SLO name, measured ms) for every SLO.
    pub values: Vec<(String, f64)>,
    pub failed_requests: usize,
}

/// The answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Knee {
    /// Highest passing load, if any passed.
    pub load: Option<f64>,
    /// Lowest failing load above it, if one was found.
    pub first_failing: Option<f64>,
    pub probes: Vec<Probe>,
}

/// Search settings.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    pub mode: Mode,
    pub slos: Vec<Slo>,
    pub start: f64,
    pub max_load: f64,
    /// Stop bisecting when (fail - pass) / pass is below this.
    pub precision: f64,
    pub max_probes: usize,
    /// Requests per probe: max(min_requests, load * seconds_per_probe).
    pub seconds_per_probe: f64,
    pub min_requests: usize,
}

/// Run the search; `rows(n)` builds the n dataset rows of one probe (`None`: the
/// `--dataset-name` rows of `base`).
pub async fn search(
    o: &SearchOptions,
    base: &ServingConfig,
    make_ctx: &dyn Fn() -> ServingContext,
    rows: Option<&RowsFn<'_>>,
) -> Result<Knee, BenchError> {
    if !(o.start > 0.0 && o.max_load >= o.start) {
        return Err(BenchError::Config(
            "--start must be > 0 and <= --max-load".into(),
        ));
    }
    let mut probes = Vec::new();
    let mut pass: Option<f64> = None;
    let mut fail: Option<f64> = None;
    let mut load = o.start;
    // Bracket: double until a failure (or the cap).
    while probes.len() < o.max_probes {
        let p = probe(o, base, make_ctx, rows, load).await?;
        println!("{}", describe(&p));
        let passed = p.passed;
        probes.push(p);
        if passed {
            pass = Some(load);
            if load >= o.max_load {
                break;
            }
            load = (load * 2.0).min(o.max_load);
        } else {
            fail = Some(load);
            break;
        }
    }
    // Bisect between the last pass and the first failure.
    while let (Some(p), Some(f)) = (pass, fail) {
        if probes.len() >= o.max_probes || (f - p) / p <= o.precision {
            break;
        }
        let mid = match o.mode {
            Mode::Rate => (p + f) / 2.0,
            Mode::Concurrency => ((p + f) / 2.0).round(),
        };
        if mid <= p || mid >= f {
            break;
        }
        let pr = probe(o, base, make_ctx, rows, mid).await?;
        println!("{}", describe(&pr));
        if pr.passed {
            pass = Some(mid);
        } else {
            fail = Some(mid);
        }
        probes.push(pr);
    }
    // A first probe that fails: halve downwards (once per remaining probe) to find a pass.
    while pass.is_none() && probes.len() < o.max_probes {
        let Some(f) = fail else { break };
        let lower = match o.mode {
            Mode::Rate => f / 2.0,
            Mode::Concurrency => (f / 2.0).floor(),
        };
        if lower < 1e-3 || (o.mode == Mode::Concurrency && lower < 1.0) {
            break;
        }
        let pr = probe(o, base, make_ctx, rows, lower).await?;
        println!("{}", describe(&pr));
        if pr.passed {
            pass = Some(lower);
        } else {
            fail = Some(lower);
        }
        probes.push(pr);
    }
    Ok(Knee {
        load: pass,
        first_failing: fail,
        probes,
    })
}

fn describe(p: &Probe) -> String {
    let mut s = format!(
        "probe load {:.3}: {} (achieved {:.2} req/s{}{})",
        p.load,
        if p.passed { "meets every SLO" } else { "fails" },
        p.achieved_rps,
        if p.saturated { ", saturated" } else { "" },
        if p.failed_requests > 0 {
            format!(", {} failed requests", p.failed_requests)
        } else {
            String::new()
        }
    );
    for (n, v) in &p.values {
        let _ = write!(s, " {n}={v:.1}");
    }
    s
}

/// `--use-steady-state`: the numbers an SLO probe reads (latency summaries, request
/// throughput, failures) from the steady-state window; the failures stay the whole run's.
fn steady_state_metrics(
    ss: &inferperf_loadgen::steady_state::SteadyStateMetrics,
    whole: &BenchmarkMetrics,
) -> BenchmarkMetrics {
    BenchmarkMetrics {
        completed: ss.completed,
        failed: whole.failed,
        request_throughput: if ss.duration > 0.0 {
            ss.completed as f64 / ss.duration
        } else {
            0.0
        },
        input_throughput: ss.input_throughput,
        output_throughput: ss.output_throughput,
        ttft_ms: ss.within_window_ttft_ms,
        tpot_ms: ss.within_window_tpot_ms,
        itl_ms: ss.within_window_itl_ms,
        e2e_latency_ms: ss.within_window_e2e_latency_ms,
        ..BenchmarkMetrics::default()
    }
}

async fn probe(
    o: &SearchOptions,
    base: &ServingConfig,
    make_ctx: &dyn Fn() -> ServingContext,
    rows: Option<&RowsFn<'_>>,
    load: f64,
) -> Result<Probe, BenchError> {
    let n = ((load * o.seconds_per_probe).ceil() as usize).max(o.min_requests);
    let mut args = base.clone();
    args.dataset.num_prompts = n;
    args.disable_tqdm = true;
    match o.mode {
        Mode::Rate => {
            args.request_rate = load;
            args.max_concurrency = None;
        }
        Mode::Concurrency => {
            args.request_rate = f64::INFINITY;
            args.max_concurrency = Some(load.round().max(1.0) as usize);
        }
    }
    let rows = match rows {
        Some(f) => Some(f(n)?),
        None => None,
    };
    let out = run_serving_rows(&args, make_ctx(), rows).await?;
    let steady;
    let m = match (&out.steady_state, args.steady_state.use_in_aggregates) {
        // A window with no request inside has no latencies to judge (they would read 0).
        (Some(Ok(ss)), true) if ss.requests_within_window > 0 => {
            steady = steady_state_metrics(ss, &out.metrics);
            &steady
        }
        (Some(Ok(_)), true) => {
            tracing::warn!(
                "probe at {load}: no request inside the steady-state window; whole-run numbers"
            );
            &out.metrics
        }
        (Some(Err(e)), true) => {
            tracing::warn!("probe at {load}: no steady-state window ({e}); whole-run numbers");
            &out.metrics
        }
        _ => &out.metrics,
    };
    let values: Vec<(String, f64)> = o
        .slos
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                value_of(m, &s.name).unwrap_or(f64::INFINITY),
            )
        })
        .collect();
    let meets = o.slos.iter().zip(&values).all(|(s, (_, v))| {
        if s.strict {
            *v < s.limit_ms
        } else {
            *v <= s.limit_ms
        }
    });
    // Open loop: the server keeps up if it completes about what was offered.
    let saturated = o.mode == Mode::Rate && m.request_throughput < 0.8 * load;
    Ok(Probe {
        load,
        passed: meets && !saturated && m.failed == 0,
        saturated,
        achieved_rps: m.request_throughput,
        values,
        failed_requests: m.failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_strings_parse_and_bad_names_are_named() {
        let v = parse_slos("p99_ttft_ms<=500, mean_tpot_ms<50").expect("slos");
        assert_eq!(v.len(), 2);
        assert!(!v[0].strict && v[1].strict);
        assert_eq!(v[1].limit_ms, 50.0);
        for bad in [
            "p99_ttft<=5",
            "p42_ttft_ms<=5",
            "p99_foo_ms<=5",
            "p99_ttft_ms=5",
            "",
        ] {
            assert!(parse_slos(bad).is_err(), "{bad}");
        }
    }

    /// `--use-steady-state`: SLO names read the in-window summaries, the rate is the window's
    /// completions per second, failures stay the whole run's.
    #[test]
    fn steady_state_probes_read_the_window() {
        let ss = inferperf_loadgen::steady_state::SteadyStateMetrics {
            completed: 30,
            duration: 2.0,
            requests_within_window: 20,
            within_window_ttft_ms: Summary {
                p99: 12.0,
                ..Summary::default()
            },
            ..Default::default()
        };
        let whole = BenchmarkMetrics {
            failed: 3,
            ..BenchmarkMetrics::default()
        };
        let m = steady_state_metrics(&ss, &whole);
        assert_eq!(value_of(&m, "p99_ttft_ms"), Ok(12.0));
        assert_eq!((m.request_throughput, m.failed), (15.0, 3));
    }
}
