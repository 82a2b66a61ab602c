//! Resolves `--model-path` into a model, a tokenizer and its description: the built-in default,
//! a GGUF file, an HF directory, or a hub id already in the local HF cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file::Value;

use crate::api::{EngineError, ModelInfo, TextTokenizer};
use crate::config::{ModelConfig, RopeStyle};
use crate::engine::EngineConfig;
use crate::model::weights::{DummyWeights, GgufWeights, SafetensorsWeights, WeightSource};
use crate::model::LlamaModel;
use crate::tokenizer::{tokenizer_json_from_gguf, ByteTokenizer, HfTokenizer};

/// A model ready for the engine thread.
pub struct LoadedModel {
    pub model: LlamaModel,
    pub tokenizer: Arc<dyn TextTokenizer>,
    pub info: ModelInfo,
}

fn invalid(m: String) -> EngineError {
    EngineError::InvalidRequest(m)
}

/// Load what `config.model_path` names.
pub fn load(config: &EngineConfig) -> Result<LoadedModel, EngineError> {
    let path = config.model_path.as_str();
    let fmt = config.load_format.as_str();
    if !matches!(fmt, "auto" | "dummy" | "gguf" | "safetensors") {
        return Err(invalid(format!(
            "--load-format {fmt:?} is not one of auto, dummy, gguf, safetensors"
        )));
    }
    if path == "default" {
        return load_default(config);
    }
    let p = Path::new(path);
    if p.is_file() && (fmt == "gguf" || p.extension().is_some_and(|e| e == "gguf")) {
        return load_gguf(config, p);
    }
    if p.is_dir() {
        return load_hf_dir(config, p);
    }
    if p.is_file() {
        return Err(invalid(format!(
            "--model-path {path}: a file must be a .gguf model (or pass --load-format gguf)"
        )));
    }
    match hf_cache_snapshot(path) {
        Some(dir) => load_hf_dir(config, &dir),
        None => Err(invalid(format!(
            "--model-path {path}: no such file or directory, and no snapshot of hub id {path:?} in the local HF cache ({}). \
             inferperf does not download models: download it with `huggingface-cli download {path}` on a machine with network, \
             or pass a local GGUF file or HF directory",
            hf_hub_dir().display()
        ))),
    }
}

fn finish_config(mut cfg: ModelConfig, config: &EngineConfig) -> Result<ModelConfig, EngineError> {
    if let Some(o) = &config.json_model_override_args {
        cfg.apply_overrides(o)?;
    }
    Ok(cfg)
}

fn info(cfg: &ModelConfig, config: &EngineConfig, tokenizer_path: &str, fmt: &str) -> ModelInfo {
    ModelInfo {
        model_path: config.model_path.clone(),
        tokenizer_path: tokenizer_path.to_string(),
        architecture: cfg.architecture(),
        load_format: fmt.to_string(),
        context_length: config.context_length.unwrap_or(cfg.max_position_embeddings),
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        num_hidden_layers: cfg.num_hidden_layers,
        num_attention_heads: cfg.num_attention_heads,
        num_key_value_heads: cfg.num_kv_heads(),
        is_generation: true,
    }
}

fn load_default(config: &EngineConfig) -> Result<LoadedModel, EngineError> {
    let cfg = finish_config(ModelConfig::tiny_default(ByteTokenizer::VOCAB_SIZE), config)?;
    let tokenizer: Arc<dyn TextTokenizer> = Arc::new(ByteTokenizer::new()?);
    let mut w = DummyWeights {
        seed: config.random_seed,
    };
    let model = LlamaModel::load(cfg.clone(), &mut w)?;
    Ok(LoadedModel {
        info: info(&cfg, config, "built-in byte tokenizer", "dummy"),
        model,
        tokenizer,
    })
}

fn meta_u(meta: &std::collections::HashMap<String, Value>, key: &str) -> Option<usize> {
    meta.get(key)
        .and_then(|v| v.to_u64().ok().or_else(|| v.to_u32().ok().map(u64::from)))
        .map(|v| v as usize)
}

fn meta_f(meta: &std::collections::HashMap<String, Value>, key: &str) -> Option<f64> {
    meta.get(key)
        .and_then(|v| v.to_f32().ok().map(f64::from).or_else(|| v.to_f64().ok()))
}

fn load_gguf(config: &EngineConfig, path: &Path) -> Result<LoadedModel, EngineError> {
    let origin = path.display().to_string();
    let mut w = GgufWeights::open(path)?;
    let meta = w.metadata().clone();
    let arch = meta
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if !matches!(arch.as_str(), "llama" | "qwen2" | "mistral") {
        return Err(invalid(format!(
            "{origin}: GGUF architecture {arch:?} is not supported (llama, qwen2, mistral)"
        )));
    }
    let key = |k: &str| format!("{arch}.{k}");
    let req = |k: &str| {
        meta_u(&meta, &key(k))
            .ok_or_else(|| invalid(format!("{origin}: GGUF metadata lacks {}", key(k))))
    };
    let tokens = meta
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.len())
        .unwrap_or(0);
    let heads = req("attention.head_count")?;
    let hidden = req("embedding_length")?;
    let mut cfg = ModelConfig::tiny_default(tokens.max(1));
    cfg.architectures = vec![match arch.as_str() {
        "qwen2" => "Qwen2ForCausalLM".into(),
        "mistral" => "MistralForCausalLM".into(),
        _ => "LlamaForCausalLM".into(),
    }];
    cfg.model_type = Some(arch.clone());
    cfg.hidden_size = hidden;
    cfg.intermediate_size = req("feed_forward_length")?;
    cfg.num_hidden_layers = req("block_count")?;
    cfg.num_attention_heads = heads;
    cfg.num_key_value_heads = Some(meta_u(&meta, &key("attention.head_count_kv")).unwrap_or(heads));
    cfg.head_dim = meta_u(&meta, &key("attention.key_length")).or(Some(hidden / heads));
    cfg.rms_norm_eps = meta_f(&meta, &key("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5);
    cfg.rope_theta = meta_f(&meta, &key("rope.freq_base")).unwrap_or(10000.0);
    cfg.max_position_embeddings = meta_u(&meta, &key("context_length")).unwrap_or(4096);
    cfg.tie_word_embeddings = !w.content.tensor_infos.contains_key("output.weight");
    cfg.attention_bias = arch == "qwen2";
    // llama.cpp permutes Llama Q/K for interleaved RoPE; Qwen2 keeps the NeoX layout.
    cfg.rope_style = if arch == "qwen2" {
        RopeStyle::Neox
    } else {
        RopeStyle::Interleaved
    };
    let cfg = finish_config(cfg, config)?;
    let tokenizer: Arc<dyn TextTokenizer> = match &config.tokenizer_path {
        Some(tp) => load_tokenizer_dir(Path::new(tp), &cfg)?,
        None => {
            let json = tokenizer_json_from_gguf(&meta)?;
            let token_str = |id: Option<usize>| {
                id.and_then(|i| {
                    meta.get("tokenizer.ggml.tokens")
                        .and_then(|v| v.to_vec().ok())
                        .and_then(|t| t.get(i))
                        .and_then(|t| t.to_string().ok().cloned())
                })
            };
            let bos = token_str(meta_u(&meta, "tokenizer.ggml.bos_token_id"));
            let eos_id = meta_u(&meta, "tokenizer.ggml.eos_token_id");
            let add_bos = meta
                .get("tokenizer.ggml.add_bos_token")
                .and_then(|v| v.to_bool().ok())
                .unwrap_or(false);
            let template = meta
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
                .cloned();
            Arc::new(HfTokenizer::from_json_bytes(
                json.as_bytes(),
                template,
                bos,
                &token_str(eos_id).into_iter().collect::<Vec<_>>(),
                &eos_id.map(|e| e as u32).into_iter().collect::<Vec<_>>(),
                add_bos,
                &origin,
            )?)
        }
    };
    let fmt = if config.load_format == "dummy" {
        "dummy"
    } else {
        "gguf"
    };
    let model = if fmt == "dummy" {
        LlamaModel::load(
            cfg.clone(),
            &mut DummyWeights {
                seed: config.random_seed,
            },
        )?
    } else {
        LlamaModel::load(cfg.clone(), &mut w)?
    };
    let tp = config
        .tokenizer_path
        .clone()
        .unwrap_or_else(|| origin.clone());
    Ok(LoadedModel {
        info: info(&cfg, config, &tp, fmt),
        model,
        tokenizer,
    })
}

fn read_text(path: &Path) -> Result<String, EngineError> {
    std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("{}: cannot read: {e}", path.display())))
}

fn load_tokenizer_dir(
    dir: &Path,
    cfg: &ModelConfig,
) -> Result<Arc<dyn TextTokenizer>, EngineError> {
    let tj = dir.join("tokenizer.json");
    let json = std::fs::read(&tj)
        .map_err(|e| invalid(format!("{}: cannot read tokenizer: {e}", tj.display())))?;
    let tc: serde_json::Value = std::fs::read_to_string(dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let token_of = |k: &str| match tc.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => {
            o.get("content").and_then(|c| c.as_str()).map(String::from)
        }
        _ => None,
    };
    let template = match tc.get("chat_template") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        _ => std::fs::read_to_string(dir.join("chat_template.jinja")).ok(),
    };
    let eos: Vec<String> = token_of("eos_token").into_iter().collect();
    let add_bos = tc
        .get("add_bos_token")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Ok(Arc::new(HfTokenizer::from_json_bytes(
        &json,
        template,
        token_of("bos_token"),
        &eos,
        &cfg.eos_ids(),
        add_bos,
        &dir.display().to_string(),
    )?))
}

fn load_hf_dir(config: &EngineConfig, dir: &Path) -> Result<LoadedModel, EngineError> {
    let cfg_path = dir.join("config.json");
    let cfg = ModelConfig::from_json(&read_text(&cfg_path)?, &cfg_path.display().to_string())?;
    let cfg = finish_config(cfg, config)?;
    let tok_dir = config
        .tokenizer_path
        .as_deref()
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.to_path_buf());
    let tokenizer = load_tokenizer_dir(&tok_dir, &cfg)?;
    let mut src: Box<dyn WeightSource> = if config.load_format == "dummy" {
        Box::new(DummyWeights {
            seed: config.random_seed,
        })
    } else {
        Box::new(SafetensorsWeights::open(dir)?)
    };
    let fmt = src.format();
    let model = LlamaModel::load(cfg.clone(), src.as_mut())?;
    Ok(LoadedModel {
        info: info(&cfg, config, &tok_dir.display().to_string(), fmt),
        model,
        tokenizer,
    })
}

fn hf_hub_dir() -> PathBuf {
    if let Ok(h) = std::env::var("HF_HUB_CACHE") {
        return PathBuf::from(h);
    }
    if let Ok(h) = std::env::var("HF_HOME") {
        return PathBuf::from(h).join("hub");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".cache/huggingface/hub")
}

/// The newest snapshot of hub id `org/name` in the local HF cache, if any.
fn hf_cache_snapshot(id: &str) -> Option<PathBuf> {
    if !id.contains('/') {
        return None;
    }
    let snaps = hf_hub_dir()
        .join(format!("models--{}", id.replace('/', "--")))
        .join("snapshots");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(snaps)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.json").is_file())
        .collect();
    dirs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    dirs.pop()
}
