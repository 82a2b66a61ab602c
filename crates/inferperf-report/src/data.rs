//! The runs a report shows, loaded from a genai-bench experiment folder (as `bench sweep`
//! writes it) or from `bench serving` result files (SGLang JSONL, one line per run).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::detail::{self, RunDetail};
use crate::error::ReportError;

/// One load point of one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub scenario: String,
    /// `num_concurrency`, `request_rate` or `batch_size`.
    pub iteration_type: String,
    pub value: f64,
    pub requests_per_second: f64,
    pub output_tokens_per_s: f64,
    pub input_tokens_per_s: f64,
    /// Seconds.
    pub ttft_mean: f64,
    pub ttft_p99: f64,
    pub tpot_mean: f64,
    pub e2e_mean: f64,
    pub e2e_p50: f64,
    pub e2e_p90: f64,
    pub e2e_p99: f64,
    pub error_rate: f64,
    pub num_requests: f64,
    /// The run's aggregated metrics as stored (all fields, for the workbook).
    pub aggregated: Value,
    /// Per-request records as stored.
    pub requests: Vec<Value>,
    /// Percentiles, per-request samples and the timeline, for the page's interactive charts.
    pub detail: RunDetail,
}

/// Everything a report needs.
#[derive(Clone, Debug, Default)]
pub struct ReportData {
    /// Where it came from (a folder or a file).
    pub source: PathBuf,
    pub metadata: Value,
    pub runs: Vec<Run>,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// genai-bench's loader pattern for run files (plus our `request_rate` points).
fn is_run_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix("s.json") else {
        return false;
    };
    let Some((head, secs)) = stem.rsplit_once("_time_") else {
        return false;
    };
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    ["_num_concurrency_", "_batch_size_", "_request_rate_"]
        .iter()
        .any(|k| head.contains(k))
}

fn read_json(path: &Path) -> Result<Value, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A genai-bench run file.
fn from_genai(v: Value) -> Run {
    let a = &v["aggregated_metrics"];
    let st = &a["stats"];
    let (iteration_type, value) = match a["iteration_type"].as_str().unwrap_or("num_concurrency") {
        "request_rate" => ("request_rate", f(&a["request_rate"])),
        "batch_size" => ("batch_size", f(&a["batch_size"])),
        _ => ("num_concurrency", f(&a["num_concurrency"])),
    };
    let requests: Vec<Value> = v["individual_request_metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Run {
        detail: detail::from_genai(st, &requests),
        scenario: a["scenario"].as_str().unwrap_or("?").to_string(),
        iteration_type: iteration_type.into(),
        value,
        requests_per_second: f(&a["requests_per_second"]),
        output_tokens_per_s: f(&a["mean_output_throughput_tokens_per_s"]),
        input_tokens_per_s: f(&a["mean_input_throughput_tokens_per_s"]),
        ttft_mean: f(&st["ttft"]["mean"]),
        ttft_p99: f(&st["ttft"]["p99"]),
        tpot_mean: f(&st["tpot"]["mean"]),
        e2e_mean: f(&st["e2e_latency"]["mean"]),
        e2e_p50: f(&st["e2e_latency"]["p50"]),
        e2e_p90: f(&st["e2e_latency"]["p90"]),
        e2e_p99: f(&st["e2e_latency"]["p99"]),
        error_rate: f(&a["error_rate"]),
        num_requests: f(&a["num_requests"]),
        aggregated: a.clone(),
        requests,
    }
}

/// One `bench serving` record (SGLang keys, milliseconds); an error names the malformed key.
fn from_sglang(v: Value) -> Result<Run, String> {
    let detail = detail::from_sglang(&v)?;
    let ms = |k: &str| f(&v[k]) / 1000.0;
    let (iteration_type, value) = match v["max_concurrency"].as_f64() {
        Some(c) => ("num_concurrency", c),
        None => ("request_rate", v["request_rate"].as_f64().unwrap_or(0.0)),
    };
    let total = f(&v["completed"]) + f(&v["failed"]);
    let scenario = match v["dataset_name"].as_str() {
        Some(d) if d.starts_with("random") => format!(
            "{d} D({},{})",
            v["random_input_len"], v["random_output_len"]
        ),
        Some(d) => d.to_string(),
        None => "bench serving".into(),
    };
    Ok(Run {
        scenario,
        iteration_type: iteration_type.into(),
        value,
        requests_per_second: f(&v["request_throughput"]),
        output_tokens_per_s: f(&v["output_throughput"]),
        input_tokens_per_s: f(&v["input_throughput"]),
        ttft_mean: ms("mean_ttft_ms"),
        ttft_p99: ms("p99_ttft_ms"),
        tpot_mean: ms("mean_tpot_ms"),
        e2e_mean: ms("mean_e2e_latency_ms"),
        e2e_p50: ms("median_e2e_latency_ms"),
        e2e_p90: ms("p90_e2e_latency_ms"),
        e2e_p99: ms("p99_e2e_latency_ms"),
        error_rate: if total > 0.0 {
            f(&v["failed"]) / total
        } else {
            0.0
        },
        num_requests: total,
        aggregated: v,
        requests: Vec::new(),
        detail,
    })
}

/// Load an experiment folder (`experiment_metadata.json` + run files) or a `bench serving`
/// JSONL file; errors name the path and what is wrong.
pub fn load(path: &Path) -> Result<ReportData, ReportError> {
    let mut data = ReportData {
        source: path.to_path_buf(),
        ..ReportData::default()
    };
    if path.is_dir() {
        let meta = path.join("experiment_metadata.json");
        if !meta.is_file() {
            return Err(ReportError::NotAnExperiment(path.to_path_buf()));
        }
        data.metadata = read_json(&meta)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ReportError::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_run_file)
            })
            .collect();
        files.sort();
        for file in files {
            data.runs.push(from_genai(read_json(&file)?));
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            // Python's json.dumps writes Infinity/NaN for non-finite floats.
            let fixed = line
                .replace("-Infinity", "null")
                .replace("Infinity", "null")
                .replace("NaN", "null");
            let v: Value = serde_json::from_str(&fixed).map_err(|e| ReportError::Parse {
                path: path.to_path_buf(),
                message: format!("line {}: {e}", i + 1),
            })?;
            let run = from_sglang(v).map_err(|message| ReportError::Malformed {
                path: path.to_path_buf(),
                message: format!("line {}: {message}", i + 1),
            })?;
            data.runs.push(run);
        }
        data.metadata = serde_json::json!({"source": path.display().to_string()});
    }
    if data.runs.is_empty() {
        return Err(ReportError::NoRuns(path.to_path_buf()));
    }
    data.runs.sort_by(|a, b| {
        a.scenario
            .cmp(&b.scenario)
            .then(a.value.total_cmp(&b.value))
    });
    Ok(data)
}

impl ReportData {
    /// Scenario labels in order.
    pub fn scenarios(&self) -> Vec<String> {
        let mut v: Vec<String> = self.runs.iter().map(|r| r.scenario.clone()).collect();
        v.dedup();
        v
    }

    /// The runs of one scenario, by load.
    pub fn runs_of<'a>(&'a self, scenario: &'a str) -> impl Iterator<Item = &'a Run> + 'a {
        self.runs.iter().filter(move |r| r.scenario == scenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_file_names_follow_genai_bench() {
        assert!(is_run_file(
            "D100_100_text-to-text_num_concurrency_8_time_61s.json"
        ));
        assert!(is_run_file(
            "D1_1_text-to-text_request_rate_2.5_time_3s.json"
        ));
        assert!(!is_run_file("experiment_metadata.json"));
        assert!(!is_run_file(
            "D100_100_text-to-text_num_concurrency_8_time_s.json"
        ));
    }
}
