//! What a run holds beyond its summary row, for the page's interactive charts: the latency
//! percentiles a throughput-vs-latency frontier is drawn against, the per-request TTFT and ITL
//! samples (for CDFs), and the throughput timeline with its steady-state window.
//!
//! Everything is optional because older or smaller files lack it: `bench serving` writes the
//! per-request arrays only with `--output-details`, and `timeline`/`steady_state` only in newer
//! records; genai-bench run files have per-request TTFTs but no per-token gaps. A key that is
//! present but malformed is an error (naming the key) rather than a silently empty chart.

use serde::Deserialize;
use serde_json::Value;

/// Latency percentiles of one run, seconds; `None` when the file does not record it (a missing
/// value must not be drawn as 0, which would dominate every frontier).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latencies {
    pub ttft_p50: Option<f64>,
    pub ttft_p99: Option<f64>,
    pub tpot_p50: Option<f64>,
    pub itl_p99: Option<f64>,
}

/// Output tokens and requests in flight per time bucket, from the run's earliest send
/// (`bench serving`'s `timeline` key): bucket `k` covers `[k, k+1) * bucket_s` seconds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Timeline {
    pub bucket_s: f64,
    pub output_tokens: Vec<f64>,
    pub concurrency: Vec<f64>,
}

/// The window `bench serving` measured as steady (`steady_state` key): seconds from the same
/// earliest send as [`Timeline`]. Only the fields the page shows are read; the window's ends
/// are optional so that a run that never reached steady state (ends null or absent) still
/// gets its timeline, unshaded.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SteadyState {
    #[serde(default)]
    pub window_start: Option<f64>,
    #[serde(default)]
    pub window_end: Option<f64>,
    #[serde(default)]
    pub output_throughput: Option<f64>,
    #[serde(default)]
    pub concurrency_ratio: Option<f64>,
    #[serde(default)]
    pub concurrency_threshold: Option<f64>,
    #[serde(default)]
    pub completed: Option<f64>,
}

impl SteadyState {
    /// `(start, end)` when both ends are finite and the window is not empty.
    pub fn window(&self) -> Option<(f64, f64)> {
        let (a, b) = (self.window_start?, self.window_end?);
        (a.is_finite() && b.is_finite() && b > a).then_some((a, b))
    }
}

/// A run's details (see the module doc).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunDetail {
    pub latencies: Latencies,
    /// Seconds, one per successful request; `None` when the file has no per-request data.
    pub ttfts: Option<Vec<f64>>,
    /// Seconds, every request's gaps pooled (as SGLang's ITL statistics pool them).
    pub itls: Option<Vec<f64>>,
    pub timeline: Option<Timeline>,
    pub steady_state: Option<SteadyState>,
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

fn ms(v: &Value) -> Option<f64> {
    num(v).map(|x| x / 1000.0)
}

fn parse_key<T: for<'de> Deserialize<'de>>(v: &Value, key: &str) -> Result<Option<T>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => T::deserialize(x)
            .map(Some)
            .map_err(|e| format!("\"{key}\": {e}")),
    }
}

/// Finite numbers of a JSON array, or an error naming `key`.
fn numbers(x: &Value, key: &str) -> Result<Vec<Option<f64>>, String> {
    let arr = x
        .as_array()
        .ok_or_else(|| format!("\"{key}\": not an array"))?;
    Ok(arr.iter().map(num).collect())
}

/// From one `bench serving` record (SGLang keys, milliseconds for statistics, seconds in the
/// per-request arrays).
pub fn from_sglang(v: &Value) -> Result<RunDetail, String> {
    let latencies = Latencies {
        ttft_p50: ms(&v["median_ttft_ms"]),
        ttft_p99: ms(&v["p99_ttft_ms"]),
        tpot_p50: ms(&v["median_tpot_ms"]),
        itl_p99: ms(&v["p99_itl_ms"]),
    };
    // A failed request has ttft 0 and an error text; neither is a measurement.
    let failed: Vec<bool> = match v.get("errors").and_then(Value::as_array) {
        Some(errors) => errors
            .iter()
            .map(|e| e.as_str().is_some_and(|s| !s.is_empty()))
            .collect(),
        None => Vec::new(),
    };
    let ok = |i: usize| !failed.get(i).copied().unwrap_or(false);
    let ttfts = match v.get("ttfts") {
        None | Some(Value::Null) => None,
        Some(x) => Some(
            numbers(x, "ttfts")?
                .into_iter()
                .enumerate()
                .filter(|&(i, t)| ok(i) && t.is_some_and(|t| t > 0.0))
                .filter_map(|(_, t)| t)
                .collect(),
        ),
    };
    let itls = match v.get("itls") {
        None | Some(Value::Null) => None,
        Some(x) => {
            let per_request = x
                .as_array()
                .ok_or_else(|| "\"itls\": not an array".to_string())?;
            let mut pooled = Vec::new();
            for (i, r) in per_request.iter().enumerate() {
                if ok(i) {
                    pooled.extend(numbers(r, "itls")?.into_iter().flatten());
                }
            }
            Some(pooled)
        }
    };
    Ok(RunDetail {
        latencies,
        ttfts,
        itls,
        timeline: parse_key(v, "timeline")?,
        steady_state: parse_key(v, "steady_state")?,
    })
}

/// From a genai-bench run file's statistics (seconds) and its per-request records: TTFTs of the
/// requests without an error; no per-token gaps (genai-bench does not record them), no timeline.
pub fn from_genai(stats: &Value, requests: &[Value]) -> RunDetail {
    let ttfts = (!requests.is_empty()).then(|| {
        requests
            .iter()
            .filter(|r| r["error_code"].is_null())
            .filter_map(|r| num(&r["ttft"]))
            .collect()
    });
    RunDetail {
        latencies: Latencies {
            ttft_p50: num(&stats["ttft"]["p50"]),
            ttft_p99: num(&stats["ttft"]["p99"]),
            tpot_p50: num(&stats["tpot"]["p50"]),
            itl_p99: None,
        },
        ttfts,
        itls: None,
        timeline: None,
        steady_state: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sglang_arrays_skip_failed_requests_and_missing_keys_stay_absent() {
        let v = json!({
            "median_ttft_ms": 20.0, "p99_itl_ms": 5.0,
            "ttfts": [0.02, 0.0, 0.03], "itls": [[0.01, 0.02], [], [0.03]],
            "errors": ["", "HttpStatus: HTTP 500", ""],
        });
        let d = from_sglang(&v).expect("parsed");
        assert_eq!(d.latencies.ttft_p50, Some(0.02));
        assert_eq!(d.latencies.ttft_p99, None);
        assert_eq!(d.ttfts, Some(vec![0.02, 0.03]));
        assert_eq!(d.itls, Some(vec![0.01, 0.02, 0.03]));
        assert!(d.timeline.is_none() && d.steady_state.is_none());
        let plain = from_sglang(&json!({"mean_ttft_ms": 1.0})).expect("parsed");
        assert!(plain.ttfts.is_none() && plain.itls.is_none());
    }

    #[test]
    fn timeline_and_steady_state_follow_the_contract_and_bad_ones_are_named() {
        let v = json!({
            "timeline": {"bucket_s": 1.0, "output_tokens": [10, 20], "concurrency": [2, 2]},
            "steady_state": {"concurrency_ratio": 0.8, "window_start": 0.5, "window_end": 1.5,
                             "duration": 1.0, "concurrency_threshold": 2, "completed": 3,
                             "output_throughput": 18.0, "peak_concurrency": 2},
        });
        let d = from_sglang(&v).expect("parsed");
        let t = d.timeline.expect("timeline");
        assert_eq!(t.output_tokens, vec![10.0, 20.0]);
        let s = d.steady_state.expect("steady state");
        assert_eq!(s.window(), Some((0.5, 1.5)));
        assert_eq!(s.output_throughput, Some(18.0));
        // A run that never reached steady state: the key is there, the window is not.
        let none = json!({"steady_state": {"window_start": null, "completed": 0}});
        let s = from_sglang(&none)
            .expect("parsed")
            .steady_state
            .expect("key");
        assert_eq!(s.window(), None);
        let e = from_sglang(&json!({"timeline": {"bucket_s": 1.0}})).expect_err("malformed");
        assert!(
            e.contains("\"timeline\"") && e.contains("output_tokens"),
            "{e}"
        );
        let e = from_sglang(&json!({"ttfts": 3})).expect_err("malformed");
        assert!(e.contains("\"ttfts\""), "{e}");
    }
}
