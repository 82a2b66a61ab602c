//! `ServerConfig` -> the built-in engine: the one place that maps server flags onto the engine's
//! configuration and starts it (off the async workers: loading weights blocks).

use std::sync::Arc;

use inferperf_engine::{EngineConfig, LaunchedEngine};

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::routes::profile::{ProfileControl, Unavailable};
use crate::state::EngineParts;

/// A started engine the server owns: its parts, and how to stop it when the server ends.
pub struct OwnedEngine {
    pub parts: EngineParts,
    /// Joins the engine thread after `EngineHandle::shutdown` (runs on the blocking pool).
    pub join: Option<Box<dyn FnOnce() + Send>>,
}

/// Validate the flags the server itself interprets.
pub fn validate_args(args: &ServerConfig) -> Result<(), ServerError> {
    match serde_json::from_str::<serde_json::Value>(&args.json_model_override_args) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => {
            return Err(ServerError::InvalidArgs(
                "--json-model-override-args must be a JSON object".to_string(),
            ))
        }
        Err(e) => {
            return Err(ServerError::InvalidArgs(format!(
                "--json-model-override-args is not valid JSON: {e}"
            )))
        }
    }
    if args.tp_size > 1 && args.dp_size > 1 {
        return Err(ServerError::InvalidArgs(format!(
            "--tp-size {} with --dp-size {} is not supported: use one of them",
            args.tp_size, args.dp_size
        )));
    }
    if args.tp_size > 1 && args.model_path == SIMULATED_MODEL_PATH {
        return Err(ServerError::InvalidArgs(
            "--tp-size needs a model; the simulated engine has no layers to shard".to_string(),
        ));
    }
    if let Some(r) = args.inferperf_test_admit_rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(ServerError::InvalidArgs(format!(
                "--inferperf-test-admit-rate must be a positive number, got {r}"
            )));
        }
    }
    if args.context_length == Some(0) {
        return Err(ServerError::InvalidArgs(
            "--context-length must be at least 1".to_string(),
        ));
    }
    crate::connections::ConnectionLimits::from_args(args)?;
    if let Some(path) = &args.log_requests {
        if args.model_path == SIMULATED_MODEL_PATH {
            return Err(ServerError::InvalidArgs(
                "--log-requests needs the built-in engine; the simulated engine runs no steps"
                    .to_string(),
            ));
        }
        check_log_path(path)?;
    }
    Ok(())
}

/// `--log-requests FILE` must name a file in an existing directory (checked before the
/// model loads; opening it at launch reports the rest, e.g. permissions).
fn check_log_path(path: &std::path::Path) -> Result<(), ServerError> {
    let err = |message: &str| ServerError::RequestLog {
        path: path.to_path_buf(),
        error: std::io::Error::other(message.to_string()),
    };
    if path.is_dir() {
        return Err(err("is a directory, not a file"));
    }
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(err(&format!(
            "the directory {} does not exist",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Step hooks, one per rank or replica.
type RankHooks = Vec<Box<dyn inferperf_engine::hooks::StepHooks>>;

/// Open `--log-requests FILE` (if given) and wrap `hooks` to log requests into it.
fn with_request_log(
    args: &ServerConfig,
    hooks: RankHooks,
) -> Result<(RankHooks, Option<crate::request_log::RequestLog>), ServerError> {
    let Some(path) = &args.log_requests else {
        return Ok((hooks, None));
    };
    let log = crate::request_log::RequestLog::open(path)?;
    // With tensor parallelism only rank 0 (the engine thread) sees requests.
    let hooks = hooks
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            if args.tp_size > 1 && i > 0 {
                h
            } else {
                log.hooks(h)
            }
        })
        .collect();
    Ok((hooks, Some(log)))
}

/// Start the built-in engine described by `args`.
pub async fn launch_engine(args: &ServerConfig) -> Result<OwnedEngine, ServerError> {
    validate_args(args)?;
    let args = args.clone();
    tokio::task::spawn_blocking(move || launch_blocking(&args))
        .await
        .map_err(|e| ServerError::EngineLaunch(format!("engine launch task failed: {e}")))?
}

/// `--model-path simulated`: the engine crate's simulated engine (no model; every token at
/// once), labelled `Simulated` everywhere, for measuring client and server overheads.
pub const SIMULATED_MODEL_PATH: &str = "simulated";

/// Vocabulary of the simulated engine served for `--model-path simulated`.
const SIMULATED_VOCAB: u32 = 32_000;

fn launch_blocking(args: &ServerConfig) -> Result<OwnedEngine, ServerError> {
    if args.model_path == SIMULATED_MODEL_PATH {
        return launch_simulated();
    }
    let hooks = (0..args.dp_size)
        .map(|_| {
            Box::new(inferperf_engine::hooks::NoHooks)
                as Box<dyn inferperf_engine::hooks::StepHooks>
        })
        .collect();
    launch_model_ranks(args, hooks)
}

/// [`launch_engine`] plus what its `/start_profile` routes drive: the profiler hooks the
/// engine runs (one profiler rank per `--dp-size` replica), or a refusal for the simulated
/// engine.
pub async fn launch_engine_profiled(
    args: &ServerConfig,
) -> Result<(OwnedEngine, Arc<dyn ProfileControl>), ServerError> {
    validate_args(args)?;
    let args = args.clone();
    tokio::task::spawn_blocking(move || launch_profiled_blocking(&args))
        .await
        .map_err(|e| ServerError::EngineLaunch(format!("engine launch task failed: {e}")))?
}

fn launch_profiled_blocking(
    args: &ServerConfig,
) -> Result<(OwnedEngine, Arc<dyn ProfileControl>), ServerError> {
    if args.model_path == SIMULATED_MODEL_PATH {
        let refusal = Unavailable("the simulated engine runs no forward steps");
        return Ok((launch_simulated()?, Arc::new(refusal)));
    }
    let (engine, profiler) = launch_model_profiled(args)?;
    Ok((engine, Arc::new(profiler)))
}

/// Load the model with profiler hooks (one rank per `--dp-size` replica) and return the
/// [`inferperf_profiler::ProfilerHandle`] attached to it (serve it with
/// `EmbeddedServer::start_with_profiler`). Blocks while the weights load.
pub fn launch_model_profiled(
    args: &ServerConfig,
) -> Result<(OwnedEngine, inferperf_profiler::ProfilerHandle), ServerError> {
    let (mut profiler, hooks) = crate::routes::profile::profiler_for(args)?;
    let engine = launch_model_ranks(args, hooks)?;
    profiler.attach(engine.parts.handle.clone());
    let info = &engine.parts.model_info;
    let head_dim = info.hidden_size / info.num_attention_heads.max(1);
    let kv_bytes = info.num_hidden_layers * 2 * info.num_key_value_heads * head_dim * 4;
    if let Err(e) = profiler.set_kv_bytes_per_token(kv_bytes) {
        tracing::warn!("profiler: {e}");
    }
    Ok((engine, profiler))
}

/// The engine configuration for `args` (SGLang flag -> engine field, defaults from the engine).
pub fn engine_config(args: &ServerConfig) -> EngineConfig {
    let defaults = EngineConfig::default();
    EngineConfig {
        model_path: args.model_path.clone(),
        tokenizer_path: args.tokenizer_path.clone(),
        load_format: args.load_format.clone(),
        json_model_override_args: (args.json_model_override_args.trim() != "{}")
            .then(|| args.json_model_override_args.clone()),
        max_total_tokens: args.max_total_tokens,
        page_size: args.page_size.unwrap_or(defaults.page_size),
        chunked_prefill_size: args
            .chunked_prefill_size
            .unwrap_or(defaults.chunked_prefill_size),
        max_running_requests: args.max_running_requests,
        enable_mixed_chunk: args.enable_mixed_chunk,
        random_seed: args.random_seed.unwrap_or(defaults.random_seed),
        context_length: args.context_length,
        disable_radix_cache: args.disable_radix_cache,
        tp_size: args.tp_size.max(1) as usize,
        compute_threads: args.engine_threads.map(|n| n as usize),
        yield_to_client: args.engine_yields_to_client,
    }
}

/// Load the model named by `args` and start the engine thread with `hooks` (the profiler's
/// seam). Blocks while the weights load.
pub fn launch_model(
    args: &ServerConfig,
    hooks: Box<dyn inferperf_engine::hooks::StepHooks>,
) -> Result<OwnedEngine, ServerError> {
    launch_model_ranks(args, vec![hooks])
}

/// [`launch_model`] with one hooks object per rank: per tensor-parallel rank with
/// `--tp-size N`, else per data-parallel replica (`hooks.len()` replicas behind a round-robin
/// dispatcher; one entry is a single engine).
pub fn launch_model_ranks(
    args: &ServerConfig,
    hooks: Vec<Box<dyn inferperf_engine::hooks::StepHooks>>,
) -> Result<OwnedEngine, ServerError> {
    let (hooks, log) = with_request_log(args, hooks)?;
    let config = engine_config(args);
    tracing::info!(model_path = %config.model_path, load_format = %config.load_format, tp_size = config.tp_size, dp_size = args.dp_size, "loading model");
    let launched = if config.tp_size > 1 {
        // One hooks object per tensor-parallel rank.
        inferperf_engine::launch_with_rank_hooks(config, hooks)
    } else {
        inferperf_engine::launch_dp(config, hooks)
    }
    .map_err(|e| ServerError::EngineLaunch(format!("cannot load `{}`: {e}", args.model_path)))?;
    let LaunchedEngine {
        handle,
        tokenizer,
        model_info,
        thread,
    } = launched;
    tracing::info!(
        architecture = %model_info.architecture,
        load_format = %model_info.load_format,
        context_length = model_info.context_length,
        "model loaded"
    );
    Ok(OwnedEngine {
        parts: EngineParts {
            handle,
            tokenizer,
            model_info,
        },
        join: Some(Box::new(move || {
            if let Some(t) = thread {
                if t.join().is_err() {
                    tracing::warn!("the engine thread panicked");
                }
            }
            // The engine dropped its hooks: the log has every record; write and sync it.
            if let Some(log) = log {
                log.finish();
            }
        }) as Box<dyn FnOnce() + Send>),
    })
}

fn launch_simulated() -> Result<OwnedEngine, ServerError> {
    use inferperf_engine::simulated::{SimulatedEngine, TokenSchedule};
    let sim = SimulatedEngine::start(TokenSchedule::ZeroLatency, SIMULATED_VOCAB)
        .map_err(|e| ServerError::EngineLaunch(e.to_string()))?;
    let parts = EngineParts::from(&sim);
    tracing::info!(schedule = %sim.schedule.label(), "serving the simulated engine (no model)");
    Ok(OwnedEngine {
        parts,
        // Dropping the simulated engine stops and joins its thread.
        join: Some(Box::new(move || drop(sim))),
    })
}
