//! `inferperf profile`: drive server-side profiling over HTTP, like `python -m sglang.profiler`.
//!
//! - `inferperf profile --url URL --num-steps 5 [...]`: one window of N steps that the server
//!   closes by itself (SGLang's CLI; returns as soon as the server acknowledges). A server that
//!   does not close it (vLLM: its session stays open until `/stop_profile`) gets its own body
//!   (`max_iterations`) and is stopped by inferperf after the steps ran, `--max-window-sec`, or
//!   Ctrl-C/SIGTERM: inferperf never exits leaving such a window open;
//! - `inferperf profile start [...]` / `inferperf profile stop`: an interactive window.
//!
//! `--gpu` defaults to off (SGLang: on) because the reference server refuses GPU; pass `--gpu`
//! against a real SGLang server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context;
use inferperf_profiler::client::{self, remote};
use inferperf_protocol::profile::ProfileReqInput;

/// Flags shared by the one-shot form and `profile start`.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Server base URL.
    #[arg(long, default_value = "http://localhost:30000")]
    pub url: String,
    /// Base directory for the traces; a `str(time.time())` subdirectory is created in it
    /// (default `$SGLANG_TORCH_PROFILER_DIR`, else `/tmp`). The server writes to the same path.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Absolute forward step at which the window opens (inclusive).
    #[arg(long)]
    pub start_step: Option<u64>,
    /// Prefix of the trace file names.
    #[arg(long)]
    pub profile_prefix: Option<String>,
    /// Extra directory level under the output dir (older sglang.profiler's `--profile-name`).
    #[arg(long)]
    pub profile_name: Option<String>,
    /// Profile CPU activity (default on).
    #[arg(long, overrides_with = "no_cpu")]
    pub cpu: bool,
    /// Turn CPU profiling off.
    #[arg(long, overrides_with = "cpu")]
    pub no_cpu: bool,
    /// Profile GPU activity (default off here; the reference server has no GPU).
    #[arg(long, overrides_with = "no_gpu")]
    pub gpu: bool,
    /// Turn GPU profiling off.
    #[arg(long, overrides_with = "gpu")]
    pub no_gpu: bool,
    /// Record a memory timeline (MEM).
    #[arg(long, overrides_with = "no_mem")]
    pub mem: bool,
    /// Turn the memory timeline off.
    #[arg(long, overrides_with = "mem")]
    pub no_mem: bool,
    /// ROCm rpd tracer (RPD; real SGLang servers on ROCm only).
    #[arg(long, overrides_with = "no_rpd")]
    pub rpd: bool,
    /// Turn the rpd tracer off.
    #[arg(long, overrides_with = "rpd")]
    pub no_rpd: bool,
    /// Separate prefill (EXTEND) and decode (DECODE) windows and files.
    #[arg(long, overrides_with = "no_profile_by_stage")]
    pub profile_by_stage: bool,
    /// Turn per-stage windows off.
    #[arg(long, overrides_with = "profile_by_stage")]
    pub no_profile_by_stage: bool,
    /// Merge the rank traces into `merged-{profile_id}.trace.json.gz`.
    #[arg(long, overrides_with = "no_merge_profiles")]
    pub merge_profiles: bool,
    /// Turn merging off.
    #[arg(long, overrides_with = "merge_profiles")]
    pub no_merge_profiles: bool,
    /// Servers that do not end a bounded window by themselves (vLLM): the longest inferperf
    /// waits for the steps before it calls `/stop_profile` itself.
    #[arg(long, default_value_t = 120.0, value_parser = super::value_parsers::non_negative_seconds)]
    pub max_window_sec: f64,
    /// How long `/stop_profile` may take (the server writes its traces before answering).
    #[arg(long, default_value_t = 600.0, value_parser = super::value_parsers::non_negative_seconds)]
    pub stop_timeout_sec: f64,
}

impl Common {
    /// Activities in sglang.profiler's order: CPU, GPU, MEM, RPD.
    fn activities(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.no_cpu {
            v.push("CPU".to_string());
        }
        if self.gpu {
            v.push("GPU".to_string());
        }
        if self.mem {
            v.push("MEM".to_string());
        }
        if self.rpd {
            v.push("RPD".to_string());
        }
        v
    }

    fn body(&self, dir: &Path, num_steps: Option<u64>) -> ProfileReqInput {
        ProfileReqInput {
            output_dir: Some(dir.display().to_string()),
            num_steps,
            start_step: self.start_step,
            activities: Some(self.activities()),
            profile_by_stage: self.profile_by_stage,
            merge_profiles: self.merge_profiles,
            profile_prefix: self.profile_prefix.clone(),
            ..Default::default()
        }
    }
}

/// One-shot form (no subcommand).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// Number of forward steps to capture; the server stops by itself.
    #[arg(long, default_value_t = 5)]
    pub num_steps: u64,
}

/// `profile start`: open a window (until `profile stop` unless `--num-steps`).
#[derive(clap::Args, Debug, Clone)]
pub struct StartArgs {
    #[command(flatten)]
    pub common: Common,
    /// Close the window by itself after this many steps.
    #[arg(long)]
    pub num_steps: Option<u64>,
}

/// `profile stop`: close the window; returns once the server has written the traces.
#[derive(clap::Args, Debug, Clone)]
pub struct StopArgs {
    #[arg(long, default_value = "http://localhost:30000")]
    pub url: String,
    /// How long `/stop_profile` may take (the server writes its traces before answering).
    #[arg(long, default_value_t = 600.0, value_parser = super::value_parsers::non_negative_seconds)]
    pub stop_timeout_sec: f64,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Action {
    /// Start an interactive profiling window.
    Start(StartArgs),
    /// Stop the profiling window and wait for the traces.
    Stop(StopArgs),
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProfileArgs {
    #[command(subcommand)]
    pub action: Option<Action>,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(args: ProfileArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let http = client::http_client().context("building the HTTP client")?;
        match args.action {
            None => run_once(&http, &args.run).await,
            Some(Action::Start(a)) => start(&http, &a).await,
            Some(Action::Stop(a)) => {
                let reply = remote::stop_profile_within(
                    &http,
                    &a.url,
                    Duration::from_secs_f64(a.stop_timeout_sec),
                )
                .await?;
                println!("{}", reply.trim_end());
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn run_once(http: &client::HttpClient, a: &RunArgs) -> anyhow::Result<ExitCode> {
    let c = &a.common;
    let dir = client::timestamped_output_dir(c.output_dir.as_deref(), c.profile_name.as_deref())?;
    println!(
        "Waiting for {} steps and the trace to be flushed.... (profile_by_stage={})",
        a.num_steps,
        if c.profile_by_stage { "True" } else { "False" }
    );
    client::save_server_args(http, &c.url, &dir).await;
    let target = client::ProfileTarget::single(&c.url);
    let steps_before = remote::engine_steps(http, &c.url).await;
    let (window, notes) = remote::open_window(http, &target, &c.body(&dir, Some(a.num_steps)))
        .await
        .with_context(|| format!("starting a profile window on {}", c.url))?;
    for n in &notes {
        println!("Note: {n}");
    }
    if window.needs_stop {
        // The server will not end the window: bound it from here, and never exit with it open.
        println!(
            "The {} server does not end a {}-step window by itself: inferperf stops it after {} \
             engine steps, or after {:.0} s (--max-window-sec), or at once on Ctrl-C/SIGTERM.",
            window.kind.label(),
            a.num_steps,
            a.num_steps,
            c.max_window_sec
        );
        let end = remote::wait_for_steps(
            http,
            &c.url,
            steps_before,
            a.num_steps,
            Duration::from_secs_f64(c.max_window_sec),
            async {
                inferperf_server::shutdown_signal().await;
            },
        )
        .await;
        println!("Stopping the window ({end:?})...");
        let reply = window
            .close(http, Duration::from_secs_f64(c.stop_timeout_sec))
            .await
            .with_context(|| format!("stopping the profile window on {}", c.url))?;
        if let Some(r) = reply.filter(|r| !r.trim().is_empty()) {
            println!("{}", r.trim_end());
        }
    }
    print_location(&window, &dir);
    Ok(ExitCode::SUCCESS)
}

/// Where the traces are: the directory sent, or what the server decides (its empty directory
/// is removed so that nothing points at it).
fn print_location(window: &remote::OpenWindow, dir: &Path) {
    match window.location {
        remote::TraceLocation::Sent(_) => println!("Dump profiling traces to {}", dir.display()),
        remote::TraceLocation::ServerDecides { .. } => {
            let _ = std::fs::remove_dir(dir);
            println!("{}", window.describe_location());
        }
    }
}

async fn start(http: &client::HttpClient, a: &StartArgs) -> anyhow::Result<ExitCode> {
    let c = &a.common;
    let dir = client::timestamped_output_dir(c.output_dir.as_deref(), c.profile_name.as_deref())?;
    client::save_server_args(http, &c.url, &dir).await;
    let target = client::ProfileTarget::single(&c.url);
    let (window, notes) = remote::open_window(http, &target, &c.body(&dir, a.num_steps))
        .await
        .with_context(|| format!("starting a profile window on {}", c.url))?;
    println!("Start profiling.");
    for n in &notes {
        println!("Note: {n}");
    }
    if window.needs_stop {
        println!(
            "The window stays open until `inferperf profile stop --url {}`.",
            c.url
        );
    }
    print_location(&window, &dir);
    Ok(ExitCode::SUCCESS)
}
