//! `bench serving`'s steady-state section: the window by the configured rule
//! (`inferperf_loadgen::steady_state`), SGLang's console block, the record's `steady_state`
//! and `timeline` keys, and SGLang's `--steady-state-output-file` line. A window that cannot
//! be found is one console line and a `null` section, never an error: the run is kept.

use std::path::Path;

use serde_json::{json, Value};

use crate::config::SteadyStateConfig;
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::jsonl::OrderedRecord;
use inferperf_loadgen::metrics::Timeline;
use inferperf_loadgen::record::RequestRecord;
use inferperf_loadgen::steady_state::{steady_state_by_rule, SteadyStateError, SteadyStateMetrics};

/// The section of a run: `None` when turned off (`--no-steady-state`).
pub type SteadyStateOutcome = Option<Result<SteadyStateMetrics, SteadyStateError>>;

/// Compute the section for the measured records (`retokenized` aligned with them).
pub fn compute(
    cfg: &SteadyStateConfig,
    records: &[RequestRecord],
    retokenized: Option<&[usize]>,
) -> SteadyStateOutcome {
    (cfg.enabled || cfg.use_in_aggregates)
        .then(|| steady_state_by_rule(records, retokenized, cfg.rule()))
}

/// The console text after the main report: SGLang's block, or one line saying why not. A
/// ratio window shorter than a tenth of the run gets a note: the load never held near its
/// peak (typical of open-loop Poisson arrivals, where the peak is a momentary burst), and a
/// fixed window says more.
pub fn console(s: &SteadyStateOutcome, run_duration_s: f64) -> String {
    match s {
        None => String::new(),
        Some(Ok(m)) => {
            let mut out = inferperf_loadgen::table::steady_state_table(m);
            if m.concurrency_ratio.is_some() && m.duration < 0.1 * run_duration_s {
                out.push_str(&format!(
                    "Note: the window covers {:.2} s of a {:.2} s run: concurrency never held \
                     near its peak of {} (a burst, as open-loop arrivals make). \
                     --warmup-duration/--cooldown-duration give a fixed window instead.\n",
                    m.duration, run_duration_s, m.peak_concurrency
                ));
            }
            out
        }
        Some(Err(e)) => format!("Steady-state result: none ({e})\n"),
    }
}

/// Add `steady_state` (the section, or `null`) and `timeline` (output tokens and requests in
/// flight per one-second bucket from the earliest successful send, the origin of the window's
/// times) to the record.
pub fn put_keys(rec: &mut OrderedRecord, s: &SteadyStateOutcome, t: &Timeline) {
    let section = match s {
        Some(Ok(m)) => serde_json::to_value(m).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    rec.put("steady_state", section);
    rec.put(
        "timeline",
        json!({"bucket_s": 1.0, "output_tokens": t.output_tokens, "concurrency": t.concurrency}),
    );
}

/// Fail before the run when `--steady-state-output-file` cannot be appended to.
pub fn check_output_file(cfg: &SteadyStateConfig) -> Result<(), BenchError> {
    match (&cfg.output_file, cfg.enabled) {
        (Some(f), true) => inferperf_loadgen::jsonl::check_appendable(Path::new(f)),
        _ => Ok(()),
    }
}

/// SGLang's `--steady-state-output-file`: the section alone as one JSONL line (nothing when
/// no window was found).
pub fn append_output_file(
    cfg: &SteadyStateConfig,
    s: &SteadyStateOutcome,
) -> Result<(), BenchError> {
    let (Some(f), Some(Ok(m))) = (&cfg.output_file, s) else {
        return Ok(());
    };
    let line = serde_json::to_string(m)
        .map_err(|e| BenchError::Config(format!("serializing the steady-state section: {e}")))?;
    inferperf_loadgen::jsonl::append_line(Path::new(f), &line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_window_much_shorter_than_the_run_gets_a_note() {
        let m = |ratio: Option<f64>, duration: f64| {
            Some(Ok(SteadyStateMetrics {
                concurrency_ratio: ratio,
                duration,
                peak_concurrency: 16,
                ..Default::default()
            }))
        };
        let short = console(&m(Some(0.8), 0.1), 10.0);
        assert!(
            short.contains("Note: the window covers 0.10 s of a 10.00 s run"),
            "{short}"
        );
        assert!(short.contains("peak of 16"), "{short}");
        assert!(!console(&m(Some(0.8), 5.0), 10.0).contains("Note:"));
        assert!(
            !console(&m(None, 0.1), 10.0).contains("Note:"),
            "a fixed window is the user's"
        );
    }
}
