//! The steady-state flags of `bench serving` (and `bench slo`, `bench sweep`): SGLang's
//! `--steady-state-concurrency-ratio` and `--steady-state-output-file` (from its
//! `steady_state_serving` entry point), plus ours: `--no-steady-state` and the fixed
//! `--warmup-duration` / `--cooldown-duration` window for open-loop runs.
//!
//! SGLang's ratio flag is required because its steady state is opt-in; ours is always
//! reported next to the whole-run metrics, so the ratio defaults to 0.8 (SGLang's documented
//! example).

use inferperf_bench::config::SteadyStateConfig;

use super::value_parsers::non_negative_seconds;

/// Steady-state window flags.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Steady state")]
pub struct SteadyStateArgs {
    /// Steady-state window: the longest span in which at least this fraction of the peak
    /// concurrency was in flight; in (0, 1].
    #[arg(long, alias = "steady-state-ratio", value_name = "R", default_value_t = 0.8, value_parser = ratio)]
    pub steady_state_concurrency_ratio: f64,
    /// Also append the steady-state section alone as one JSONL line to this file.
    #[arg(long, value_name = "FILE")]
    pub steady_state_output_file: Option<String>,
    /// Do not compute or report the steady-state section.
    #[arg(long)]
    pub no_steady_state: bool,
    /// Open-loop runs: the steady-state window starts this many seconds after the first
    /// send (instead of the concurrency-ratio search). Requests are still sent.
    #[arg(long, value_name = "S", default_value_t = 0.0, allow_negative_numbers = true, value_parser = non_negative_seconds)]
    pub warmup_duration: f64,
    /// Open-loop runs: the steady-state window ends this many seconds before the last
    /// response ends (instead of the concurrency-ratio search).
    #[arg(long, value_name = "S", default_value_t = 0.0, allow_negative_numbers = true, value_parser = non_negative_seconds)]
    pub cooldown_duration: f64,
}

impl SteadyStateArgs {
    /// The library's settings.
    pub fn to_config(&self) -> SteadyStateConfig {
        SteadyStateConfig {
            enabled: !self.no_steady_state,
            ratio: self.steady_state_concurrency_ratio,
            output_file: self.steady_state_output_file.clone(),
            warmup_duration_s: self.warmup_duration,
            cooldown_duration_s: self.cooldown_duration,
            use_in_aggregates: false,
        }
    }
}

/// A ratio in (0, 1].
fn ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} is outside (0, 1]"))
    }
}
