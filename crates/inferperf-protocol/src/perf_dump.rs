//! SGLang diffusion's perf-dump file (`--perf-dump-path`, `PerformanceLogger.dump_benchmark_report`):
//! the exact JSON schema, its validation, and the derived numbers consumers compute from it
//! (end-to-end, denoise latency, per-stage rows, peak memory).
//!
//! Key order on disk follows SGLang: `timestamp`, `request_id`, `commit_hash`, `tag`,
//! `total_duration_ms`, `steps`, `denoise_steps_ms`, `memory_checkpoints`, `meta`. Older dumps
//! without `memory_checkpoints` (or `meta`) still parse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Perf dumps stamp `timestamp` with this (kept here, where it always was).
pub use crate::dates::iso8601_utc;

/// `tag` of dumps written by `generate`.
pub const TAG_CLI_GENERATE: &str = "cli_generate";
/// `tag` of dumps written per request by the server.
pub const TAG_SERVER_PERF_DUMP: &str = "server_perf_dump";
/// `tag` default of the dumper.
pub const TAG_BENCHMARK_DUMP: &str = "benchmark_dump";

/// One pipeline stage (`steps[]`), named by its class, e.g. `DenoisingStage`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageDuration {
    pub name: String,
    pub duration_ms: f64,
}

/// One denoising step (`denoise_steps_ms[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenoiseStepDuration {
    pub step: u64,
    pub duration_ms: f64,
}

/// Memory after a stage (`memory_checkpoints["after_<Stage>"]`), MB rounded to 2 decimals.
/// On the CPU reference engine these are the process's resident set size.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryCheckpoint {
    pub allocated_mb: f64,
    pub reserved_mb: f64,
    pub peak_allocated_mb: f64,
    pub peak_reserved_mb: f64,
}

/// The perf-dump document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerfDump {
    /// ISO-8601 UTC, e.g. `2026-01-02T03:04:05.123456+00:00`.
    pub timestamp: String,
    pub request_id: String,
    /// Git SHA of the producer, or `N/A`.
    pub commit_hash: String,
    /// `cli_generate`, `server_perf_dump` or `benchmark_dump`.
    pub tag: String,
    /// Pipeline-internal wall time.
    pub total_duration_ms: f64,
    /// Stages in execution order.
    pub steps: Vec<StageDuration>,
    pub denoise_steps_ms: Vec<DenoiseStepDuration>,
    #[serde(default)]
    pub memory_checkpoints: BTreeMap<String, MemoryCheckpoint>,
    /// `{"prompt", "model"}` for the CLI, `{"model"}` for the server; kept as free-form JSON.
    #[serde(default)]
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// Newer SGLang versions: free-form `{name: value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metrics: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_stats: Option<serde_json::Value>,
}

/// Why a perf dump is not valid.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PerfDumpError {
    #[error("not a perf dump: {0}")]
    Parse(String),
    #[error("{field} must be a finite, non-negative number of milliseconds (got {value})")]
    BadDuration { field: String, value: f64 },
    #[error("denoise_steps_ms[{index}] has step {step}; steps must be numbered 0, 1, 2, ...")]
    StepOrder { index: usize, step: u64 },
    #[error("stage {0:?} appears more than once")]
    DuplicateStage(String),
}

fn check_ms(field: impl FnOnce() -> String, value: f64) -> Result<(), PerfDumpError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(PerfDumpError::BadDuration {
            field: field(),
            value,
        })
    }
}

/// Round to 2 decimals, as SGLang does for memory.
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

impl PerfDump {
    /// Parse and validate a dump.
    pub fn from_json_str(text: &str) -> Result<Self, PerfDumpError> {
        let dump: Self =
            serde_json::from_str(text).map_err(|e| PerfDumpError::Parse(e.to_string()))?;
        dump.validate()?;
        Ok(dump)
    }

    /// Pretty JSON with a 2-space indent (SGLang's `json.dump(indent=2)`), newline-terminated.
    pub fn to_pretty_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    /// Check what the schema cannot: durations are finite and non-negative, stage names are
    /// unique (SGLang keeps one entry per name), denoise steps are numbered 0..n in order.
    pub fn validate(&self) -> Result<(), PerfDumpError> {
        check_ms(|| "total_duration_ms".into(), self.total_duration_ms)?;
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.steps.iter().enumerate() {
            check_ms(|| format!("steps[{i}].duration_ms"), s.duration_ms)?;
            if !seen.insert(s.name.as_str()) {
                return Err(PerfDumpError::DuplicateStage(s.name.clone()));
            }
        }
        for (i, s) in self.denoise_steps_ms.iter().enumerate() {
            check_ms(
                || format!("denoise_steps_ms[{i}].duration_ms"),
                s.duration_ms,
            )?;
            if s.step != i as u64 {
                return Err(PerfDumpError::StepOrder {
                    index: i,
                    step: s.step,
                });
            }
        }
        Ok(())
    }

    /// Duration of the stage called `name`.
    pub fn stage_ms(&self, name: &str) -> Option<f64> {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.duration_ms)
    }

    /// Sum of the denoising steps.
    pub fn denoise_steps_total_ms(&self) -> f64 {
        self.denoise_steps_ms.iter().map(|s| s.duration_ms).sum()
    }

    /// Consumers' "denoise latency": stages whose name ends with `DenoisingStage` or
    /// `RefinementStage` (but not `BeforeDenoisingStage`); if there are none, the sum of
    /// `denoise_steps_ms`.
    pub fn denoise_latency_ms(&self) -> f64 {
        let stages: Vec<f64> = self
            .steps
            .iter()
            .filter(|s| {
                (s.name.ends_with("DenoisingStage") || s.name.ends_with("RefinementStage"))
                    && !s.name.contains("BeforeDenoisingStage")
            })
            .map(|s| s.duration_ms)
            .collect();
        if stages.is_empty() {
            self.denoise_steps_total_ms()
        } else {
            stages.iter().sum()
        }
    }

    /// Peak memory: the largest `peak_reserved_mb` over the checkpoints.
    pub fn peak_memory_mb(&self) -> Option<f64> {
        self.memory_checkpoints
            .values()
            .map(|m| m.peak_reserved_mb)
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
    }

    /// `compare_perf.py`'s stage rows: entries named `denoising_step_<i>` are summed into one
    /// `Denoising Loop` row (with their count); other names are summed by name; execution
    /// order is kept.
    pub fn stage_rows(&self) -> Vec<StageRow> {
        let mut rows: Vec<StageRow> = Vec::new();
        for s in &self.steps {
            let (name, is_step) = match s.name.strip_prefix("denoising_step_") {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    ("Denoising Loop".to_string(), true)
                }
                _ => (s.name.clone(), false),
            };
            match rows.iter_mut().find(|r| r.name == name) {
                Some(r) => {
                    r.duration_ms += s.duration_ms;
                    r.count += usize::from(is_step);
                }
                None => rows.push(StageRow {
                    name,
                    duration_ms: s.duration_ms,
                    count: usize::from(is_step),
                }),
            }
        }
        rows
    }
}

/// One row of a stage breakdown.
#[derive(Clone, Debug, PartialEq)]
pub struct StageRow {
    pub name: String,
    pub duration_ms: f64,
    /// Denoising steps folded into this row (0 for ordinary stages).
    pub count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SGLANG_DOC_EXAMPLE: &str = r#"{"total_duration_ms":14959.11,
        "steps":[{"name":"TextEncodingStage","duration_ms":611.83},{"name":"DenoisingStage","duration_ms":14289.46}],
        "denoise_steps_ms":[{"step":0,"duration_ms":240.5},{"step":1,"duration_ms":239.0}],
        "commit_hash":"abc","timestamp":"2026-01-02T03:04:05.123456+00:00","memory_checkpoints":{},
        "request_id":"r","tag":"cli_generate"}"#;

    #[test]
    fn parses_sglang_dumps_and_writes_keys_in_sglang_order() {
        let d = PerfDump::from_json_str(SGLANG_DOC_EXAMPLE).unwrap();
        assert_eq!(d.denoise_latency_ms(), 14289.46);
        assert!(d.meta.is_empty());
        let text = d.to_pretty_json();
        let keys = [
            "timestamp",
            "request_id",
            "commit_hash",
            "tag",
            "total_duration_ms",
            "steps",
            "denoise_steps_ms",
            "memory_checkpoints",
            "meta",
        ];
        let pos: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\n  \"{k}\"")).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(!text.contains("custom_metrics"));
    }

    #[test]
    fn validation_rejects_misnumbered_steps_and_bad_numbers() {
        let mut d = PerfDump::from_json_str(SGLANG_DOC_EXAMPLE).unwrap();
        d.denoise_steps_ms[1].step = 5;
        assert!(matches!(
            d.validate(),
            Err(PerfDumpError::StepOrder { index: 1, step: 5 })
        ));
        let bad = SGLANG_DOC_EXAMPLE.replace("14959.11", "-1");
        assert!(PerfDump::from_json_str(&bad).is_err());
        assert!(matches!(
            PerfDump::from_json_str("{}"),
            Err(PerfDumpError::Parse(_))
        ));
    }

    #[test]
    fn denoise_latency_falls_back_to_steps_and_stage_rows_fold_step_entries() {
        let mut d = PerfDump::from_json_str(SGLANG_DOC_EXAMPLE).unwrap();
        d.steps = vec![
            StageDuration {
                name: "TextEncodingStage".into(),
                duration_ms: 1.0,
            },
            StageDuration {
                name: "denoising_step_0".into(),
                duration_ms: 2.0,
            },
            StageDuration {
                name: "denoising_step_1".into(),
                duration_ms: 3.0,
            },
            StageDuration {
                name: "FluxBeforeDenoisingStage".into(),
                duration_ms: 9.0,
            },
        ];
        assert_eq!(d.denoise_latency_ms(), 479.5);
        let rows = d.stage_rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[1].name.as_str(), rows[1].duration_ms, rows[1].count),
            ("Denoising Loop", 5.0, 2)
        );
    }
}
