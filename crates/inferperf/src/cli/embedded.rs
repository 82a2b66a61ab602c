//! The reference server a benchmark command starts in this process when no URL is given: on
//! its own runtime, so that its CPU is not charged to (and does not compete inside) the client
//! runtime, and shut down when dropped.

use anyhow::Context;
use inferperf_engine::simulated::{SimulatedEngine, TokenSchedule};
use inferperf_loadgen::tokenizer::SharedTokenizer;
use inferperf_server::{EmbeddedServer, EngineParts, ServerConfig};

/// A server this process runs for a benchmark.
pub struct Embedded {
    runtime: tokio::runtime::Runtime,
    server: Option<EmbeddedServer>,
    _sim: Option<SimulatedEngine>,
    tokenizer: SharedTokenizer,
}

impl Embedded {
    /// Serve `args` (its port is replaced by a free one), or a simulated engine with `simulate`.
    pub fn start(mut args: ServerConfig, simulate: Option<TokenSchedule>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("inferperf-embedded-server")
            .enable_all()
            .build()
            .context("cannot start the embedded server runtime")?;
        args.port = 0;
        let (server, sim, tokenizer) = match simulate {
            Some(schedule) => {
                let sim = SimulatedEngine::start(schedule, 32000)
                    .context("starting the simulated engine")?;
                let tokenizer: SharedTokenizer = sim.tokenizer.clone();
                let parts = EngineParts {
                    handle: sim.handle.clone(),
                    tokenizer: tokenizer.clone(),
                    model_info: sim.model_info.clone(),
                };
                let mut args = args;
                args.model_path = sim.model_info.model_path.clone();
                let server = runtime
                    .block_on(EmbeddedServer::start_with_engine(args, parts))
                    .context("starting the embedded server")?;
                (server, Some(sim), tokenizer)
            }
            None => {
                if args.engine_threads.is_none() {
                    args.engine_threads = Some(reserve_client_core());
                }
                args.engine_yields_to_client = true;
                // The datasets use the server's own tokenizer, so they count tokens exactly as
                // the server does.
                let server = runtime
                    .block_on(EmbeddedServer::start(args))
                    .context("starting the embedded reference server")?;
                let tokenizer: SharedTokenizer = server.tokenizer().context(
                    "the embedded server serves a diffusion model: use the diffusion benchmark",
                )?;
                (server, None, tokenizer)
            }
        };
        Ok(Self {
            runtime,
            server: Some(server),
            _sim: sim,
            tokenizer,
        })
    }

    /// `http://127.0.0.1:PORT` of the running server.
    pub fn base_url(&self) -> String {
        self.server
            .as_ref()
            .map(|s| s.base_url())
            .unwrap_or_default()
    }

    /// The tokenizer the served engine counts with (datasets then count tokens as it does).
    pub fn tokenizer(&self) -> SharedTokenizer {
        self.tokenizer.clone()
    }
}

/// Compute threads for an embedded engine: every core but one, which is left to the client
/// (its runtime, the pacer and the embedded server's HTTP thread), so that the engine cannot
/// starve the measurement. Said on stderr, since it shapes the numbers.
fn reserve_client_core() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let engine = cores.saturating_sub(1).max(1);
    if cores > 1 {
        eprintln!(
            "Embedded server: the engine computes on {engine} of {cores} cores at lower priority \
             (nice 10); 1 core is reserved for the benchmark client."
        );
    } else {
        eprintln!("Embedded server: 1 core only; the engine and the client share it.");
    }
    engine as u32
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            if let Err(e) = self.runtime.block_on(s.shutdown()) {
                tracing::warn!("embedded server shutdown: {e}");
            }
        }
    }
}
