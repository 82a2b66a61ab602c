//! `inferperf bench offline`: offline throughput of the in-process engine over a dataset
//! (SGLang `bench_offline_throughput`). Every `serve` model flag plus SGLang's dataset flags.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use inferperf_inproc::inproc::InProcEngine;
use inferperf_inproc::offline::{self, OfflineOptions};
use inferperf_loadgen::dataset::{self, DatasetConfig, DatasetName};

use super::dataset_args::DatasetArgs;
use inferperf_profiler::ProfilerConfig;

/// `bench offline` flags.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: super::server_flags::ServerFlags,
    /// JSONL file the record is appended to (none by default, as SGLang).
    #[arg(long)]
    pub result_filename: Option<PathBuf>,
    /// Dataset flags (`bench serving`'s); the engine runs `sharegpt`, `random`, `random-ids`,
    /// `generated-shared-prefix` and `custom`.
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Default 1000.
    #[arg(long)]
    pub num_prompts: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub gsp_num_groups: usize,
    /// Default 42.
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub disable_ignore_eos: bool,
    /// JSON object merged into every request's sampling parameters.
    #[arg(long)]
    pub extra_request_body: Option<String>,
    /// Profile the measured generate call (CPU activity) into `SGLANG_TORCH_PROFILER_DIR`
    /// (default /tmp); profiling time is excluded from the latency.
    #[arg(long)]
    pub profile: bool,
    #[arg(long)]
    pub skip_warmup: bool,
    /// Keep the process alive after finishing (for external profilers' capture windows).
    #[arg(long)]
    pub do_not_exit: bool,
    /// Flags of the diffusion mode (`--model-path diffusion` or a diffusion model).
    #[command(flatten)]
    pub diffusion: DiffusionOfflineFlags,
}

/// SGLang's multimodal `bench_offline_throughput` flags (used with a diffusion model).
#[derive(clap::Args)]
pub struct DiffusionOfflineFlags {
    #[arg(long, default_value_t = 20, help_heading = "Diffusion")]
    pub num_inference_steps: u32,
    #[arg(long, default_value_t = 7.5, help_heading = "Diffusion")]
    pub guidance_scale: f64,
    #[arg(long, default_value_t = 32, help_heading = "Diffusion")]
    pub width: u32,
    #[arg(long, default_value_t = 32, help_heading = "Diffusion")]
    pub height: u32,
    #[arg(long, default_value_t = 1, help_heading = "Diffusion")]
    pub num_frames: u32,
    #[arg(long, default_value_t = 24, help_heading = "Diffusion")]
    pub fps: u32,
    /// `random` or `vbench` (a prompt file in --dataset-path).
    #[arg(long, default_value = "random", help_heading = "Diffusion")]
    pub dataset: String,
    #[arg(long, default_value = "unknown", help_heading = "Diffusion")]
    pub task_name: String,
    #[arg(long, default_value_t = 1, help_heading = "Diffusion")]
    pub batch_size: usize,
    /// JSONL workload (one request per line); replaces the dataset and --num-prompts.
    #[arg(long, help_heading = "Diffusion")]
    pub request_manifest: Option<PathBuf>,
    /// Keep the generated media here (with their SHA-256 in the results).
    #[arg(long, help_heading = "Diffusion")]
    pub save_output_dir: Option<PathBuf>,
    /// JSONL file the run is appended to.
    #[arg(long, help_heading = "Diffusion")]
    pub output_file: Option<PathBuf>,
    #[arg(long, help_heading = "Diffusion")]
    pub disable_tqdm: bool,
    /// With --profile: denoising steps recorded after the warm-up step (-1: all).
    #[arg(
        long,
        default_value_t = 5,
        allow_negative_numbers = true,
        help_heading = "Diffusion"
    )]
    pub num_profiled_timesteps: i64,
    /// With --profile: one profiler step per pipeline stage.
    #[arg(long, help_heading = "Diffusion")]
    pub profile_all_stages: bool,
}

/// `bench offline` with a diffusion model.
fn diffusion_offline(a: &Args) -> anyhow::Result<ExitCode> {
    use inferperf_inproc::diffusion_offline as d;
    let f = &a.diffusion;
    let pipeline = inferperf_engine::diffusion::load_model(&a.server.model_path)
        .map_err(|e| anyhow::anyhow!("cannot load model {}: {e}", a.server.model_path))?;
    let (reqs, manifest) = match &f.request_manifest {
        Some(m) => {
            let (r, sha) = d::parse_manifest(m).context("--request-manifest")?;
            (r, Some((m.clone(), sha)))
        }
        None => (
            d::dataset_requests(
                &f.dataset,
                (!a.dataset.dataset_path.is_empty())
                    .then(|| std::path::Path::new(&a.dataset.dataset_path)),
                a.num_prompts.unwrap_or(10),
            )
            .context("bench offline")?,
            None,
        ),
    };
    d::run(
        &pipeline,
        &reqs,
        &d::DiffusionOfflineOptions {
            model_path: a.server.model_path.clone(),
            num_inference_steps: f.num_inference_steps,
            guidance_scale: f.guidance_scale,
            seed: a.seed.unwrap_or(42),
            width: f.width,
            height: f.height,
            num_frames: f.num_frames,
            fps: f.fps,
            task_name: f.task_name.clone(),
            dataset: f.dataset.clone(),
            batch_size: f.batch_size,
            skip_warmup: a.skip_warmup,
            save_output_dir: f.save_output_dir.clone(),
            output_file: f.output_file.clone(),
            manifest,
            profile: a
                .profile
                .then_some((f.num_profiled_timesteps, f.profile_all_stages)),
        },
    )
    .context("bench offline (diffusion)")?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if inferperf_engine::diffusion::is_diffusion_model(&a.server.model_path) {
        return diffusion_offline(&a);
    }
    inferperf_server::launch::validate_args(&a.server.to_config()).context("bench offline")?;
    if !matches!(
        a.dataset.dataset_name,
        DatasetName::Sharegpt
            | DatasetName::Random
            | DatasetName::RandomIds
            | DatasetName::GeneratedSharedPrefix
            | DatasetName::Custom
    ) {
        anyhow::bail!(
            "bench offline: --dataset-name {} is not supported (sharegpt, random, random-ids, generated-shared-prefix, custom)",
            a.dataset.dataset_name.name()
        );
    }
    if let Some(path) = &a.server.log_requests {
        anyhow::bail!(
            "bench offline: --log-requests {} needs the server; this benchmark runs the engine in process",
            path.display()
        );
    }
    let profile_dir = a
        .profile
        .then(inferperf_inproc::one_batch::default_profile_dir);
    let engine = InProcEngine::launch(
        inferperf_server::launch::engine_config(&a.server.to_config()),
        a.profile.then(ProfilerConfig::default),
    )
    .context("bench offline")?;
    let tok = engine.tokenizer();
    let seed = a.seed.unwrap_or(42);
    let d = a
        .dataset
        .to_config(a.num_prompts.unwrap_or(1000), seed, a.gsp_num_groups);
    let rows =
        dataset::build(&d, false, Some(&tok)).context("bench offline: building the dataset")?;
    // SGLang's warm-up: min(num_prompts, 16) random requests of 256 in / 16 out.
    let w = DatasetConfig {
        name: DatasetName::RandomIds,
        num_prompts: rows.len().min(16),
        random_input_len: 256,
        random_output_len: 16,
        random_range_ratio: 1.0,
        seed,
        ..DatasetConfig::default()
    };
    let warmup = if a.skip_warmup {
        Vec::new()
    } else {
        dataset::build(&w, false, Some(&tok)).context("bench offline: building the warm-up")?
    };
    let result = offline::run(
        &engine,
        &rows,
        &warmup,
        &OfflineOptions {
            disable_ignore_eos: a.disable_ignore_eos,
            extra_request_body: a.extra_request_body.clone(),
            skip_warmup: a.skip_warmup,
            profile_dir,
            result_filename: a.result_filename.clone(),
            seed,
        },
    )
    .context("bench offline")?;
    print!("{}", result.table());
    for t in &result.traces {
        println!("Profiler trace: {}", t.display());
    }
    if let Some(f) = &a.result_filename {
        println!("Results appended to {}", f.display());
    }
    if a.do_not_exit {
        println!("--do-not-exit: sleeping; press Ctrl-C to exit");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    Ok(ExitCode::SUCCESS)
}
