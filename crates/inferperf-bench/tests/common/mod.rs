//! Shared helpers: a real server (the inferperf HTTP front end) over the simulated engine on
//! 127.0.0.1 with an ephemeral port, flag parsing as the CLI does it, and record parsing.

#![allow(dead_code)]

pub mod scripted;

use std::path::Path;
use std::sync::Arc;

use clap::Parser;
use inferperf_bench::config::ServingConfig;
use inferperf_bench::serving::{run_serving, ServingContext, ServingOutcome};
use inferperf_engine::simulated::{SimulatedEngine, TokenSchedule};
use inferperf_loadgen::cpu::ThreadCpu;
use inferperf_loadgen::runner::Abort;
use inferperf_loadgen::tokenizer::SharedTokenizer;
use inferperf_server::{EmbeddedServer, EngineParts, ServerConfig};

/// A real HTTP server over a simulated engine.
pub struct SimServer {
    pub server: EmbeddedServer,
    pub sim: SimulatedEngine,
}

impl SimServer {
    pub async fn start(schedule: TokenSchedule) -> Self {
        let sim = SimulatedEngine::start(schedule, 32000).unwrap_or_else(|e| panic!("{e}"));
        let parts = EngineParts {
            handle: sim.handle.clone(),
            tokenizer: sim.tokenizer.clone(),
            model_info: sim.model_info.clone(),
        };
        let mut args = ServerConfig::ephemeral();
        args.model_path = sim.model_info.model_path.clone();
        let server = EmbeddedServer::start_with_engine(args, parts)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self { server, sim }
    }

    pub fn tokenizer(&self) -> SharedTokenizer {
        self.sim.tokenizer.clone()
    }
}

/// The CLI's own flag definitions, compiled into the tests so that "the flags a user types"
/// reach the library exactly as `inferperf bench serving` maps them (the binary crate has no
/// library target to depend on).
#[path = "../../../inferperf/src/cli"]
pub mod cli_flags {
    pub mod dataset_args;
    pub mod serving_args;
    pub mod shard_args;
    pub mod steady_state_args;
    pub mod value_parsers;
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: cli_flags::serving_args::ServingArgs,
}

/// Parse flags exactly as `inferperf bench serving` does.
pub fn args(flags: &[&str]) -> ServingConfig {
    try_args(flags).unwrap_or_else(|e| panic!("{e}"))
}

/// Parse flags as `inferperf bench serving` does, returning clap's message on error.
pub fn try_args(flags: &[&str]) -> Result<ServingConfig, String> {
    let mut v = vec!["bench"];
    v.extend_from_slice(flags);
    Cli::try_parse_from(v)
        .map(|c| c.args.to_config())
        .map_err(|e| e.to_string())
}

/// Run the benchmark against `base_url`, writing the record into `dir/out.jsonl`.
pub async fn run(
    base_url: &str,
    tok: Option<SharedTokenizer>,
    mut a: ServingConfig,
    dir: &Path,
    abort: Abort,
) -> ServingOutcome {
    a.output_file = Some(dir.join("out.jsonl").to_string_lossy().into_owned());
    a.disable_tqdm = true;
    let ctx = ServingContext {
        base_url: base_url.to_owned(),
        tokenizer: tok,
        client_threads: 2,
        cpu: ThreadCpu::default(),
        abort,
        calibration: None,
        print: false,
    };
    run_serving(&a, ctx).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The last JSONL line of a file, parsed (Python-style non-finite floats become strings).
pub fn last_record(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    let line = text.lines().last().unwrap_or_default();
    inferperf_loadgen::jsonl::parse_line(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

pub fn shared<T>(x: T) -> Arc<T> {
    Arc::new(x)
}
