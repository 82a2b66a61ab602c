//! Which diffusion model a `--model-path` names, shared by `inferperf generate` and
//! `inferperf serve`: the built-in model (`default` for `generate`; `diffusion` everywhere,
//! since `serve --model-path default` is the built-in LLM), a directory with a diffusion
//! `config.json` and/or `model.safetensors`, a `.json` config, or a `.safetensors` file.

use std::path::{Path, PathBuf};

use super::config::DiffusionConfig;
use super::error::DiffusionError;
use super::pipeline::DiffusionPipeline;
use super::weights::WeightSource;

/// The built-in diffusion model's name for `serve` (and `generate`).
pub const BUILTIN_DIFFUSION_MODEL: &str = "diffusion";

/// Whether `model_path` names a diffusion model (not an LLM): the built-in name, or a config
/// that parses as a [`DiffusionConfig`] (which rejects unknown keys, so an LLM's `config.json`
/// does not), or a lone `.safetensors` file next to no LLM config.
pub fn is_diffusion_model(model_path: &str) -> bool {
    if model_path == BUILTIN_DIFFUSION_MODEL {
        return true;
    }
    let path = Path::new(model_path);
    let config = if path.is_dir() {
        path.join("config.json")
    } else {
        path.to_path_buf()
    };
    match config.extension().and_then(|e| e.to_str()) {
        Some("json") => DiffusionConfig::from_json_file(&config).is_ok(),
        Some("safetensors") => !path.with_file_name("config.json").is_file(),
        _ => false,
    }
}

/// Load the pipeline `model_path` names (`default` and `diffusion` are the built-in model).
pub fn load_model(model_path: &str) -> Result<DiffusionPipeline, DiffusionError> {
    if model_path == "default" || model_path == BUILTIN_DIFFUSION_MODEL {
        return DiffusionPipeline::dummy(DiffusionConfig::default());
    }
    let path = Path::new(model_path);
    let load_err = |message: &str| DiffusionError::Load {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let (config, weights): (Option<PathBuf>, Option<PathBuf>) = if path.is_dir() {
        let cfg = path.join("config.json");
        let w = path.join("model.safetensors");
        (cfg.is_file().then_some(cfg), w.is_file().then_some(w))
    } else if path.is_file() {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => (Some(path.to_path_buf()), None),
            Some("safetensors") => (None, Some(path.to_path_buf())),
            _ => return Err(load_err("neither a .json config nor .safetensors weights")),
        }
    } else {
        return Err(load_err(
            "does not exist (use `diffusion` for the built-in diffusion model)",
        ));
    };
    let config = match config {
        Some(c) => DiffusionConfig::from_json_file(&c)?,
        None => DiffusionConfig::default(),
    };
    let source = match weights {
        Some(w) => WeightSource::Safetensors(w),
        None => WeightSource::Dummy {
            seed: config.weights_seed,
        },
    };
    DiffusionPipeline::load(config, source)
}
