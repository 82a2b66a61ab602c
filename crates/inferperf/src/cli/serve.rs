//! `inferperf serve`: run the reference server until Ctrl-C or SIGTERM: the SGLang- and
//! OpenAI-compatible LLM API over the built-in CPU engine, or SGLang's diffusion API for a
//! diffusion model (one server, `inferperf_server::serve`).

use std::process::ExitCode;

use anyhow::Context;

/// Flags of `inferperf serve`: the server's own, named as in `sglang.launch_server`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: super::server_flags::ServerFlags,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let model = args.server.model_path.clone();
    runtime
        .block_on(inferperf_server::serve(args.server.to_config(), async {
            inferperf_server::shutdown_signal().await;
        }))
        .with_context(|| format!("serving model `{model}`"))?;
    Ok(ExitCode::SUCCESS)
}
