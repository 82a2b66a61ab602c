//! `inferperf bench one-batch`: latency of one static batch on the in-process engine (SGLang
//! `bench_one_batch`). Takes every `serve` model flag plus SGLang's benchmark flags.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use inferperf_inproc::inproc::InProcEngine;
use inferperf_inproc::one_batch::{self, OneBatchOptions, ProfileOptions, ProfileStage};
use inferperf_profiler::ProfilerConfig;

/// The case grid and its record file, as both SGLang batch benchmarks take them: every
/// combination of the three lists is one case.
#[derive(clap::Args)]
pub struct CaseGridArgs {
    /// Copied into every result record.
    #[arg(long, default_value = "default")]
    pub run_name: String,
    #[arg(long, num_args = 1.., default_values_t = [1usize])]
    pub batch_size: Vec<usize>,
    #[arg(long, num_args = 1.., default_values_t = [1024usize])]
    pub input_len: Vec<usize>,
    #[arg(long, num_args = 1.., default_values_t = [16usize])]
    pub output_len: Vec<usize>,
    /// JSONL file the case records are appended to.
    #[arg(long, default_value = "result.jsonl")]
    pub result_filename: PathBuf,
}

/// `bench one-batch` flags: the model flags of `serve`, then SGLang's `BenchArgs`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: super::server_flags::ServerFlags,
    #[command(flatten)]
    pub cases: CaseGridArgs,
    /// Print the generated text of every request.
    #[arg(long)]
    pub correctness_test: bool,
    /// Print every N-th decode step (the first five are always printed).
    #[arg(long, default_value_t = 0)]
    pub log_decode_step: usize,
    /// Seed of the synthetic prompts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Profile each case (an extra run per stage; the measured run is not profiled).
    #[arg(long, help_heading = "Profiling")]
    pub profile: bool,
    #[arg(long, help_heading = "Profiling")]
    pub profile_record_shapes: bool,
    /// Only CPU exists on this engine; GPU, CUDA_PROFILER and XPU are named and ignored.
    #[arg(long, num_args = 1.., default_values_t = ["CPU".to_string(), "GPU".to_string()], help_heading = "Profiling")]
    pub profile_activities: Vec<String>,
    #[arg(long, value_enum, default_value = "all", help_heading = "Profiling")]
    pub profile_stage: ProfileStage,
    #[arg(
        long,
        visible_alias = "profile-filename-prefix",
        default_value = "profile",
        help_heading = "Profiling"
    )]
    pub profile_prefix: String,
    /// 0-based decode step the decode window starts at (default: output_len / 2).
    #[arg(long, help_heading = "Profiling")]
    pub profile_start_step: Option<usize>,
    /// Decode steps to capture (default 1).
    #[arg(long, help_heading = "Profiling")]
    pub profile_steps: Option<usize>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    inferperf_server::launch::validate_args(&a.server.to_config()).context("bench one-batch")?;
    if let Some(path) = &a.server.log_requests {
        anyhow::bail!(
            "bench one-batch: --log-requests {} needs the server; this benchmark runs the engine in process",
            path.display()
        );
    }
    let mut config = inferperf_server::launch::engine_config(&a.server.to_config());
    // One EXTEND step for the whole batch, room for the largest batch, and no prefix reuse
    // (SGLang drives the model runner directly: every case computes its full prompt).
    config.chunked_prefill_size = -1;
    config.disable_radix_cache = true;
    config.enable_mixed_chunk = false;
    let max_bs = a.cases.batch_size.iter().copied().max().unwrap_or(1);
    config.max_running_requests = Some(config.max_running_requests.unwrap_or(0).max(max_bs));
    let profile = if a.profile {
        let other: Vec<&String> = a
            .profile_activities
            .iter()
            .filter(|x| !x.eq_ignore_ascii_case("CPU"))
            .collect();
        if !other.is_empty() {
            eprintln!(
                "note: the CPU engine records only the CPU activity; not recorded: {}",
                other
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let dir = one_batch::default_profile_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the profile directory {}", dir.display()))?;
        Some(ProfileOptions {
            stage: a.profile_stage,
            start_step: a.profile_start_step,
            steps: a.profile_steps,
            prefix: a.profile_prefix.clone(),
            record_shapes: a.profile_record_shapes,
            dir,
        })
    } else {
        None
    };
    let engine = InProcEngine::launch(
        config,
        a.profile.then(|| ProfilerConfig {
            layerwise_markers: a.server.enable_layerwise_nvtx_marker,
            ..ProfilerConfig::default()
        }),
    )
    .context("bench one-batch")?;
    let results = one_batch::run(
        &engine,
        &OneBatchOptions {
            run_name: a.cases.run_name,
            batch_sizes: a.cases.batch_size,
            input_lens: a.cases.input_len,
            output_lens: a.cases.output_len,
            result_filename: Some(a.cases.result_filename.clone()),
            log_decode_step: a.log_decode_step,
            correctness_test: a.correctness_test,
            profile,
            seed: a.seed,
        },
    )
    .context("bench one-batch")?;
    if !results.is_empty() {
        println!(
            "Results appended to {}",
            a.cases.result_filename.to_string_lossy()
        );
    }
    Ok(ExitCode::SUCCESS)
}
