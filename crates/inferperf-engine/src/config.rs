//! Model architecture configuration: HF `config.json` fields for Llama-family decoders, GGUF
//! metadata, the built-in tiny default, and SGLang's `--json-model-override-args`.

use serde::{Deserialize, Serialize};

use crate::api::EngineError;

/// RoPE rotation layout: HF checkpoints rotate halves ("neox"); GGUF Llama files store Q/K
/// permuted for interleaved pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RopeStyle {
    #[default]
    Neox,
    Interleaved,
}

/// `rope_scaling` of HF configs; only the llama3 type changes frequencies here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    #[serde(alias = "type")]
    pub rope_type: String,
    #[serde(default = "one")]
    pub factor: f64,
    #[serde(default = "one")]
    pub low_freq_factor: f64,
    #[serde(default = "four")]
    pub high_freq_factor: f64,
    #[serde(default = "default_orig_ctx")]
    pub original_max_position_embeddings: usize,
}

fn one() -> f64 {
    1.0
}
fn four() -> f64 {
    4.0
}
fn default_orig_ctx() -> usize {
    8192
}

/// Llama-family decoder configuration (Llama, SmolLM2, Qwen2, Mistral), with HF field names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(default = "default_arch")]
    pub architectures: Vec<String>,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    #[serde(default = "default_ctx")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Qwen2 has biases on q/k/v projections.
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(skip)]
    pub rope_style: RopeStyle,
}

fn default_arch() -> Vec<String> {
    vec!["LlamaForCausalLM".into()]
}
fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10000.0
}
fn default_ctx() -> usize {
    4096
}

impl ModelConfig {
    /// The built-in model behind `--model-path default`: a small Llama with a byte-level
    /// vocabulary, seeded dummy weights, no files needed.
    pub fn tiny_default(vocab_size: usize) -> Self {
        Self {
            architectures: default_arch(),
            hidden_size: 256,
            intermediate_size: 688,
            num_hidden_layers: 4,
            num_attention_heads: 8,
            num_key_value_heads: Some(2),
            head_dim: None,
            vocab_size,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            rope_scaling: None,
            max_position_embeddings: 4096,
            tie_word_embeddings: true,
            attention_bias: false,
            bos_token_id: None,
            eos_token_id: None,
            model_type: Some("llama".into()),
            rope_style: RopeStyle::Neox,
        }
    }

    /// Parse an HF `config.json`; Qwen2 gets its q/k/v biases.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, EngineError> {
        let mut cfg: ModelConfig = serde_json::from_str(text)
            .map_err(|e| EngineError::InvalidRequest(format!("{origin}: invalid config: {e}")))?;
        if cfg.model_type.as_deref() == Some("qwen2")
            || cfg.architectures.iter().any(|a| a.starts_with("Qwen2"))
        {
            cfg.attention_bias = true;
        }
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Merge SGLang's `--json-model-override-args` (a JSON object) into this config.
    pub fn apply_overrides(&mut self, overrides: &str) -> Result<(), EngineError> {
        let bad =
            |e: String| EngineError::InvalidRequest(format!("--json-model-override-args: {e}"));
        let patch: serde_json::Value =
            serde_json::from_str(overrides).map_err(|e| bad(e.to_string()))?;
        let serde_json::Value::Object(patch) = patch else {
            return Err(bad("expected a JSON object".into()));
        };
        let mut base = serde_json::to_value(&*self).map_err(|e| bad(e.to_string()))?;
        if let serde_json::Value::Object(map) = &mut base {
            for (k, v) in patch {
                map.insert(k, v);
            }
        }
        let style = self.rope_style;
        *self = serde_json::from_value(base).map_err(|e| bad(e.to_string()))?;
        self.rope_style = style;
        self.validate("--json-model-override-args")
    }

    fn validate(&self, origin: &str) -> Result<(), EngineError> {
        let bad = |m: &str| Err(EngineError::InvalidRequest(format!("{origin}: {m}")));
        if self.num_hidden_layers == 0 || self.hidden_size == 0 || self.vocab_size == 0 {
            return bad("hidden_size, num_hidden_layers and vocab_size must be positive");
        }
        if self.num_attention_heads == 0 || self.num_attention_heads % self.num_kv_heads() != 0 {
            return bad("num_attention_heads must be a positive multiple of num_key_value_heads");
        }
        if self.head_dim() % 2 != 0 {
            return bad("head_dim must be even for RoPE");
        }
        Ok(())
    }

    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads
            .unwrap_or(self.num_attention_heads)
            .max(1)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    pub fn architecture(&self) -> String {
        self.architectures
            .first()
            .cloned()
            .unwrap_or_else(|| "LlamaForCausalLM".into())
    }

    /// EOS ids declared by the config (`eos_token_id` may be an int or a list).
    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().map(|v| vec![v as u32]).unwrap_or_default()
            }
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_u64().map(|v| v as u32))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Inverse frequencies for RoPE, with llama3 scaling when configured.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim();
        let mut inv: Vec<f64> = (0..d / 2)
            .map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / d as f64))
            .collect();
        if let Some(s) = &self.rope_scaling {
            if s.rope_type == "llama3" {
                let low_wavelen = s.original_max_position_embeddings as f64 / s.low_freq_factor;
                let high_wavelen = s.original_max_position_embeddings as f64 / s.high_freq_factor;
                for f in inv.iter_mut() {
                    let wavelen = 2.0 * std::f64::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= s.factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (s.original_max_position_embeddings as f64 / wavelen
                            - s.low_freq_factor)
                            / (s.high_freq_factor - s.low_freq_factor);
                        *f = (1.0 - smooth) * *f / s.factor + smooth * *f;
                    }
                }
            }
        }
        inv.into_iter().map(|f| f as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_change_layers_and_keep_the_rest() {
        let mut c = ModelConfig::tiny_default(260);
        c.apply_overrides(r#"{"num_hidden_layers": 1}"#).unwrap();
        assert_eq!(c.num_hidden_layers, 1);
        assert_eq!(c.hidden_size, 256);
        assert!(c.apply_overrides("[1]").is_err());
        assert!(c.apply_overrides(r#"{"num_attention_heads": 3}"#).is_err());
    }

    #[test]
    fn qwen2_configs_get_qkv_bias() {
        let c = ModelConfig::from_json(
            r#"{"architectures":["Qwen2ForCausalLM"],"hidden_size":64,"intermediate_size":128,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,
            "eos_token_id":[1,2]}"#,
            "config.json",
        )
        .unwrap();
        assert!(c.attention_bias);
        assert_eq!(c.eos_ids(), vec![1, 2]);
    }

    #[test]
    fn llama3_scaling_lowers_low_frequencies_only() {
        let mut c = ModelConfig::tiny_default(260);
        let plain = c.rope_inv_freq();
        c.rope_scaling = Some(RopeScaling {
            rope_type: "llama3".into(),
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        });
        let scaled = c.rope_inv_freq();
        assert_eq!(plain[0], scaled[0]);
        assert!(scaled[plain.len() - 1] < plain[plain.len() - 1]);
    }
}
