//! `inferperf bench ...`: `serving` (SGLang-compatible online serving benchmark) and
//! `calibrate` (this host's client ceiling against a zero-latency simulated server).
//!
//! This file only wires flags to `inferperf_bench`, decides where the server is (a URL, a
//! server already on the default port, or an embedded one) and maps outcomes to exit codes.

use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use super::serving_args::ServingArgs;
use anyhow::{bail, Context};
use inferperf_bench::calibrate::{calibrate, CalibrateOptions, Calibration};
use inferperf_bench::serving::{run_serving, ServingContext};
use inferperf_engine::simulated::TokenSchedule;
use inferperf_loadgen::cpu::ThreadCpu;
use inferperf_loadgen::runner::Abort;
use inferperf_server::{ServerConfig, StopSignal};

use super::embedded::Embedded;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Online serving benchmark (SGLang `bench_serving` flags, table and JSONL keys).
    Serving(Box<ServingCliArgs>),
    /// Measure this host's client ceiling against a zero-latency simulated server.
    Calibrate(CalibrateArgs),
    /// Latency of one static batch on the in-process engine (SGLang `bench_one_batch`).
    OneBatch(Box<super::bench_one_batch::Args>),
    /// One batched request per case through a server (SGLang `bench_one_batch_server`).
    OneBatchServer(Box<super::bench_one_batch_server::Args>),
    /// Offline throughput of the in-process engine (SGLang `bench_offline_throughput`).
    Offline(Box<super::bench_offline::Args>),
    /// Grid of traffic scenarios x load points (genai-bench `benchmark`).
    #[command(alias = "benchmark")]
    Sweep(Box<super::bench_sweep::Args>),
    /// Capacity search: the highest load that meets every SLO.
    Slo(Box<super::bench_slo::Args>),
    /// Merge sharded runs: recompute the result from the shards' `--save-records` files.
    Merge(super::shard_args::MergeArgs),
}

/// `bench serving` flags: SGLang's, plus the embedded-server choice.
#[derive(clap::Args)]
pub struct ServingCliArgs {
    #[command(flatten)]
    pub bench: ServingArgs,
    /// Embedded server only: serve a simulated engine instead of the model:
    /// `zero` (every token at once) or `TTFT_MS:ITL_MS` (fixed schedule). Labelled simulated.
    #[arg(long)]
    pub simulate: Option<String>,
    /// Embedded server only: the model it serves (`default`, a GGUF file, an HF directory).
    #[arg(long)]
    pub model_path: Option<String>,
    /// Diffusion mode (`--dataset` or `--task` given): SGLang's multimodal bench_serving.
    #[command(flatten)]
    pub diffusion: inferperf_bench::diffusion::DiffusionFlags,
}

/// `bench calibrate` flags.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// Calibrate against this zero-latency server instead of an embedded simulated one.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Model name sent in requests (external server only).
    #[arg(long, default_value = "simulated-zero-latency")]
    pub model: String,
    /// Concurrency levels to try (comma-separated).
    #[arg(long, default_value = "64,256", value_delimiter = ',')]
    pub concurrency: Vec<usize>,
    #[arg(long, default_value_t = 1000)]
    pub num_requests: usize,
    #[arg(long, default_value_t = 256)]
    pub output_len: usize,
    /// Client worker threads (default: one per four cores, at least one).
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Do not save the result as this host's calibration.
    #[arg(long)]
    pub no_save: bool,
}

/// Run a `bench` subcommand; `matches` are the `bench` level's parsed flags (to learn which
/// flags the user gave, as clap records them).
pub fn run(cmd: BenchCommand, matches: Option<&clap::ArgMatches>) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Serving(a) => {
            let given = GivenFlags::of(matches.and_then(|m| m.subcommand_matches("serving")));
            serving(*a, given)
        }
        BenchCommand::Calibrate(a) => calibrate_cmd(a),
        BenchCommand::OneBatch(a) => super::bench_one_batch::run(*a),
        BenchCommand::OneBatchServer(a) => super::bench_one_batch_server::run(*a),
        BenchCommand::Offline(a) => super::bench_offline::run(*a),
        BenchCommand::Sweep(a) => super::bench_sweep::run(*a),
        BenchCommand::Slo(a) => super::bench_slo::run(*a),
        BenchCommand::Merge(a) => super::shard_args::merge(a),
    }
}

/// Client worker threads: `--client-threads`, else one per four cores (at least one). One
/// thread parses ~600k chunks/s here, and every extra worker adds cross-thread wake-ups
/// (futex) to each chunk at realistic token rates; the validity verdict says when more are
/// needed.
fn default_threads(explicit: Option<usize>) -> usize {
    explicit.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / 4).max(1)
    })
}

/// Parse `--simulate`.
fn parse_schedule(s: &str) -> anyhow::Result<TokenSchedule> {
    if s == "zero" || s == "0" {
        return Ok(TokenSchedule::ZeroLatency);
    }
    let (t, i) = s
        .split_once(':')
        .with_context(|| format!("--simulate {s:?}: expected `zero` or TTFT_MS:ITL_MS"))?;
    let ms = |x: &str| -> anyhow::Result<Duration> {
        let v: f64 = x
            .parse()
            .with_context(|| format!("--simulate: {x:?} is not a number"))?;
        anyhow::ensure!(v >= 0.0 && v.is_finite(), "--simulate: {x} must be >= 0");
        Ok(Duration::from_secs_f64(v / 1000.0))
    };
    Ok(TokenSchedule::Fixed {
        ttft: ms(t)?,
        itl: ms(i)?,
    })
}

fn something_listens(url_port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], url_port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Which `bench serving` flags the user gave (clap's value source), to apply SGLang's
/// multimodal defaults only where the user did not choose.
#[derive(Clone, Copy, Debug, Default)]
struct GivenFlags {
    num_prompts: bool,
    max_concurrency: bool,
    profile_activities: bool,
}

impl GivenFlags {
    fn of(matches: Option<&clap::ArgMatches>) -> Self {
        let given = |id: &str| {
            matches.and_then(|m| m.value_source(id)) == Some(clap::parser::ValueSource::CommandLine)
        };
        Self {
            num_prompts: given("num_prompts"),
            max_concurrency: given("max_concurrency"),
            profile_activities: given("profile_activities"),
        }
    }
}

/// `bench serving` in diffusion mode, against `--base-url` or an embedded diffusion server.
fn diffusion_serving(a: ServingCliArgs, given: GivenFlags) -> anyhow::Result<ExitCode> {
    use inferperf_bench::diffusion::{run, DiffusionServingConfig};
    let args = a.bench.to_config();
    // The measured client's runtime, its threads registered for the client CPU accounting
    // (an embedded server runs on it too, as before; its CPU shows in the process CPU).
    let threads = 2;
    let cpu = ThreadCpu::default();
    let runtime = inferperf_loadgen::client_runtime(threads, &cpu)
        .context("cannot start the client runtime")?;
    let mut server = None;
    let base_url = match args.explicit_base_url() {
        Some(u) => u,
        None if something_listens(30000) => {
            let u = args.host_port_url();
            eprintln!(
                "No --base-url/--host/--port given; using the server already listening on {u}."
            );
            u
        }
        None => {
            eprintln!(
                "No --base-url/--host/--port given and nothing listens on 127.0.0.1:30000: \
                 starting an embedded diffusion server (--model-path diffusion)."
            );
            let s = runtime
                .block_on(inferperf_server::EmbeddedServer::start(ServerConfig {
                    model_path: inferperf_engine::diffusion::BUILTIN_DIFFUSION_MODEL.into(),
                    ..ServerConfig::ephemeral()
                }))
                .context("starting the embedded diffusion server")?;
            let u = s.base_url();
            server = Some(s);
            u
        }
    };
    let options = DiffusionServingConfig {
        base_url,
        flags: a.diffusion,
        dataset_path: (!args.dataset.path.is_empty()).then(|| args.dataset.path.clone().into()),
        // SGLang's multimodal defaults where the flags were not given.
        num_prompts: if given.num_prompts {
            args.dataset.num_prompts
        } else {
            10
        },
        max_concurrency: if given.max_concurrency {
            args.max_concurrency
        } else {
            Some(1)
        },
        request_rate: args.request_rate,
        warmup_requests: args.warmup_requests,
        seed: args.dataset.seed,
        output_file: args.output_file.clone().map(Into::into),
        cpu,
        client_threads: threads,
        print: true,
    };
    let result = runtime.block_on(run(&options));
    if let Some(s) = server {
        let _ = runtime.block_on(s.shutdown());
    }
    let metrics = result.context("bench serving (diffusion)")?.metrics;
    Ok(if metrics.completed_requests == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn serving(a: ServingCliArgs, given: GivenFlags) -> anyhow::Result<ExitCode> {
    if a.diffusion.requested() {
        return diffusion_serving(a, given);
    }
    let mut args = a.bench.to_config();
    args.sharding = a.bench.shard.sharding()?;
    args.argv = std::env::args().collect();
    let model_path = a.model_path.clone();
    let schedule = a.simulate.as_deref().map(parse_schedule).transpose()?;
    let threads = default_threads(args.client_threads);
    let cpu = ThreadCpu::default();
    let runtime = inferperf_loadgen::client_runtime(threads, &cpu)
        .context("cannot start the client runtime")?;

    let mut embedded = None;
    let base_url = match args.explicit_base_url() {
        Some(u) => {
            if schedule.is_some() {
                bail!(
                    "--simulate applies to the embedded server only; drop --base-url/--host/--port"
                );
            }
            u
        }
        None => {
            let port = args.backend.default_port();
            if schedule.is_none() && something_listens(port) {
                let u = args.host_port_url();
                eprintln!(
                    "No --base-url/--host/--port given; using the server already listening on {u}."
                );
                u
            } else {
                let what = match &schedule {
                    Some(s) => s.label(),
                    None => format!(
                        "the reference model (--model-path {})",
                        model_path.as_deref().unwrap_or("default")
                    ),
                };
                eprintln!(
                    "No --base-url/--host/--port given and nothing listens on 127.0.0.1:{port}: \
                     starting an embedded server with {what}."
                );
                let mut server_args = ServerConfig::ephemeral();
                if let Some(m) = &model_path {
                    server_args.model_path = m.clone();
                }
                let e = Embedded::start(server_args, schedule)?;
                let u = e.base_url();
                embedded = Some(e);
                // SGLang's default activities are CPU and GPU; the embedded reference server
                // has no GPU and refuses it by name, so `--profile` alone would record nothing.
                if !given.profile_activities {
                    args.profile_activities = vec!["CPU".into()];
                }
                u
            }
        }
    };
    let abort = Abort::default();
    let ctx = ServingContext {
        base_url,
        tokenizer: embedded.as_ref().map(Embedded::tokenizer),
        client_threads: threads,
        cpu,
        abort: abort.clone(),
        calibration: Calibration::load(),
        print: true,
    };
    let stopped_by = std::sync::Arc::new(std::sync::OnceLock::new());
    let outcome = runtime.block_on(async {
        let (a2, stopped_by) = (abort.clone(), stopped_by.clone());
        let signals = tokio::spawn(async move {
            let signal = inferperf_server::shutdown_signal().await;
            let _ = stopped_by.set(signal);
            a2.trigger(signal.describe());
        });
        let r = run_serving(&args, ctx).await;
        signals.abort();
        r
    });
    drop(embedded);
    let outcome = outcome.context("bench serving")?;
    print!("{}", outcome.console_report);
    println!("Results appended to {}", outcome.output_file);
    for line in &outcome.profile_locations {
        println!("{line}");
    }
    for path in &outcome.request_traces {
        println!("Client request trace: {}", path.display());
    }
    for path in &outcome.merged_timelines {
        println!("Client and server on one timeline: {}", path.display());
    }
    if outcome.incomplete {
        eprintln!(
            "The run is incomplete; the record in {} says so.",
            outcome.output_file
        );
        return Ok(ExitCode::from(
            stopped_by.get().map_or(1, |s: &StopSignal| s.exit_status()),
        ));
    }
    match outcome.failure(args.max_failure_rate) {
        Some(why) => {
            eprintln!("error: {why}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

fn calibrate_cmd(a: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let threads = default_threads(a.client_threads);
    let cpu = ThreadCpu::default();
    let runtime = inferperf_loadgen::client_runtime(threads, &cpu)
        .context("cannot start the client runtime")?;
    let mut embedded = None;
    let (base_url, model) = match &a.base_url {
        Some(u) => (u.clone(), a.model.clone()),
        None => {
            let e = Embedded::start(ServerConfig::ephemeral(), Some(TokenSchedule::ZeroLatency))?;
            let u = e.base_url();
            embedded = Some(e);
            (u, "simulated-zero-latency".to_owned())
        }
    };
    let opts = CalibrateOptions {
        base_url,
        model,
        concurrency: a.concurrency.clone(),
        num_requests: a.num_requests,
        output_len: a.output_len,
        cpu,
        client_threads: threads,
    };
    let cal = runtime
        .block_on(calibrate(&opts))
        .context("calibration run")?;
    drop(embedded);
    println!(
        "{:<12} {:>12} {:>14} {:>14} {:>18} {:>22}",
        "concurrency",
        "req/s",
        "chunks/s",
        "client CPU s",
        "CPU s / 1M chunks",
        "chunks / client CPU-s"
    );
    for p in &cal.points {
        println!(
            "{:<12} {:>12.1} {:>14.0} {:>14.2} {:>18.2} {:>22.0}",
            p.concurrency,
            p.requests_per_s,
            p.chunks_per_s,
            p.client_cpu_s,
            p.cpu_s_per_m_chunks,
            p.chunks_per_client_cpu_s
        );
    }
    println!(
        "Measured ceiling on this host ({} client threads; the simulated server shares the host \
         on its own thread): {:.0} req/s, {:.0} chunks/s, {} streams. \
         `chunks / client CPU-s` is what the client alone could parse per busy thread.",
        cal.client_threads, cal.requests_per_s, cal.chunks_per_s, cal.streams
    );
    if !a.no_save {
        let p = cal.save().context("saving the calibration")?;
        println!("Saved to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use inferperf_bench::config::ServingConfig;

    use super::ServingArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServingArgs,
    }

    /// Tests and commands that build a config without flags get exactly the flags' defaults.
    #[test]
    fn the_flag_defaults_are_the_config_defaults() {
        let parsed = Cli::parse_from(["bench"]).args.to_config();
        assert_eq!(parsed, ServingConfig::default());
    }

    /// Dataset flags land in the dataset settings, per-command ones included.
    #[test]
    fn dataset_flags_reach_the_dataset_config() {
        let c = Cli::parse_from([
            "bench",
            "--dataset-name",
            "random-ids",
            "--num-prompts",
            "7",
            "--seed",
            "3",
            "--gsp-num-groups",
            "2",
            "--random-input-len",
            "9",
            "--request-rate",
            "4",
        ])
        .args
        .to_config();
        assert_eq!(c.dataset.name.name(), "random-ids");
        assert_eq!(
            (
                c.dataset.num_prompts,
                c.dataset.seed,
                c.dataset.gsp_num_groups
            ),
            (7, 3, 2)
        );
        assert_eq!(c.dataset.random_input_len, 9);
        assert_eq!(c.request_rate, 4.0);
    }

    /// SGLang's steady-state flags (and our alias) reach the settings; bad values are refused
    /// by the parser naming the flag.
    #[test]
    fn steady_state_flags_reach_the_config() {
        let c = Cli::parse_from([
            "bench",
            "--steady-state-ratio",
            "0.5",
            "--steady-state-output-file",
            "ss.jsonl",
            "--warmup-duration",
            "2.5",
        ])
        .args
        .to_config();
        let s = &c.steady_state;
        assert!(s.enabled);
        assert_eq!((s.ratio, s.warmup_duration_s), (0.5, 2.5));
        assert_eq!(s.output_file.as_deref(), Some("ss.jsonl"));
        let off = Cli::parse_from(["bench", "--no-steady-state"])
            .args
            .to_config();
        assert!(!off.steady_state.enabled);
        for bad in [
            ["--steady-state-concurrency-ratio", "0"],
            ["--steady-state-concurrency-ratio", "1.5"],
            ["--warmup-duration", "-1"],
        ] {
            let e = Cli::try_parse_from(["bench", bad[0], bad[1]])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(bad[0]), "{bad:?}: {e}");
        }
    }
}
