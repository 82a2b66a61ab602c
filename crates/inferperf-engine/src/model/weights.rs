//! Where weights come from: seeded dummy values (SGLang `--load-format dummy`), GGUF files
//! (quantized tensors stay quantized) and HF safetensors. All sources answer by HF tensor name.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::qmat::{QKind, QMatrix};
use crate::api::EngineError;

/// A `[out, in]` matrix for the linear layers: candle's (possibly quantized) matmul, or a
/// Q4_1/Q8_0 matrix with our own row-tiled SIMD kernel (candle's Q4_1 path is scalar).
pub enum MatWeight {
    Candle(QMatMul),
    Quant(QMatrix),
}

fn err(origin: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Other(format!("{origin}: {e}"))
}

/// A provider of named weights in HF naming (`model.layers.0.self_attn.q_proj.weight`).
pub trait WeightSource {
    /// A dense f32 tensor (norms, biases, embeddings), or `None` if absent.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>, EngineError>;
    /// A `[out, in]` matrix for a matmul, kept quantized where the source is.
    fn matmul(&mut self, name: &str, shape: [usize; 2]) -> Result<Option<MatWeight>, EngineError>;
    /// `dummy`, `gguf` or `safetensors`.
    fn format(&self) -> &'static str;
}

/// Deterministic pseudo-random weights: each tensor seeded from its name and the seed, so the
/// same config gives the same model on every machine.
pub struct DummyWeights {
    pub seed: u64,
}

impl DummyWeights {
    fn values(&self, name: &str, shape: &[usize]) -> Result<Tensor, EngineError> {
        let n: usize = shape.iter().product();
        if name.ends_with("norm.weight") {
            return Tensor::ones(shape, DType::F32, &Device::Cpu).map_err(|e| err(name, e));
        }
        // FNV-1a of the name, mixed with the seed.
        let h = inferperf_protocol::hash::fnv1a_seeded(self.seed, name.as_bytes());
        let mut rng = ChaCha8Rng::seed_from_u64(h);
        let fan_in = *shape.last().unwrap_or(&1) as f32;
        let a = if name.contains("embed") {
            1.0
        } else {
            1.0 / fan_in.sqrt()
        };
        let data: Vec<f32> = (0..n).map(|_| rng.gen_range(-a..a)).collect();
        Tensor::from_vec(data, shape, &Device::Cpu).map_err(|e| err(name, e))
    }
}

impl WeightSource for DummyWeights {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>, EngineError> {
        if name.contains("bias") {
            return Tensor::zeros(shape, DType::F32, &Device::Cpu)
                .map(Some)
                .map_err(|e| err(name, e));
        }
        self.values(name, shape).map(Some)
    }
    fn matmul(&mut self, name: &str, shape: [usize; 2]) -> Result<Option<MatWeight>, EngineError> {
        Ok(Some(MatWeight::Candle(QMatMul::Tensor(
            self.values(name, &shape)?,
        ))))
    }
    fn format(&self) -> &'static str {
        "dummy"
    }
}

/// HF safetensors shards (memory-mapped), converted to f32.
pub struct SafetensorsWeights {
    st: candle_core::safetensors::MmapedSafetensors,
    origin: String,
}

impl SafetensorsWeights {
    pub fn open(dir: &Path) -> Result<Self, EngineError> {
        let origin = dir.display().to_string();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| err(&origin, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(EngineError::InvalidRequest(format!(
                "{origin}: no *.safetensors files (use --load-format dummy for random weights)"
            )));
        }
        // SAFETY: the files are mapped read-only; modifying them while the server runs is
        // outside what we support, as in every mmap-based loader.
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files) }
            .map_err(|e| err(&origin, e))?;
        Ok(Self { st, origin })
    }

    fn load(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>, EngineError> {
        if self.st.get(name).is_err() {
            return Ok(None);
        }
        let t = self
            .st
            .load(name, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| err(&self.origin, e))?;
        if t.dims() != shape {
            return Err(EngineError::InvalidRequest(format!(
                "{}: tensor {name} has shape {:?}, config expects {shape:?}",
                self.origin,
                t.dims()
            )));
        }
        Ok(Some(t))
    }
}

impl WeightSource for SafetensorsWeights {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>, EngineError> {
        self.load(name, shape)
    }
    fn matmul(&mut self, name: &str, shape: [usize; 2]) -> Result<Option<MatWeight>, EngineError> {
        Ok(self
            .load(name, &shape)?
            .map(|t| MatWeight::Candle(QMatMul::Tensor(t))))
    }
    fn format(&self) -> &'static str {
        "safetensors"
    }
}

/// A GGUF file: tensors are read by their llama.cpp names, quantized ones kept quantized.
pub struct GgufWeights {
    pub content: gguf_file::Content,
    file: File,
    origin: String,
}

impl GgufWeights {
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let origin = path.display().to_string();
        let mut file = File::open(path).map_err(|e| {
            EngineError::InvalidRequest(format!("{origin}: cannot open GGUF file: {e}"))
        })?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| EngineError::InvalidRequest(format!("{origin}: not a GGUF file: {e}")))?;
        Ok(Self {
            content,
            file,
            origin,
        })
    }

    pub fn metadata(&self) -> &HashMap<String, gguf_file::Value> {
        &self.content.metadata
    }

    /// Map an HF tensor name to llama.cpp's GGUF name.
    fn gguf_name(name: &str) -> String {
        let n = name.trim_end_matches(".weight");
        let (base, suffix) = match n.strip_suffix(".bias") {
            Some(b) => (b, "bias"),
            None => (n, "weight"),
        };
        let mapped = if base == "model.embed_tokens" {
            "token_embd".to_string()
        } else if base == "model.norm" {
            "output_norm".to_string()
        } else if base == "lm_head" {
            "output".to_string()
        } else if let Some(rest) = base.strip_prefix("model.layers.") {
            let (idx, part) = rest.split_once('.').unwrap_or((rest, ""));
            let p = match part {
                "self_attn.q_proj" => "attn_q",
                "self_attn.k_proj" => "attn_k",
                "self_attn.v_proj" => "attn_v",
                "self_attn.o_proj" => "attn_output",
                "mlp.gate_proj" => "ffn_gate",
                "mlp.up_proj" => "ffn_up",
                "mlp.down_proj" => "ffn_down",
                "input_layernorm" => "attn_norm",
                "post_attention_layernorm" => "ffn_norm",
                other => other,
            };
            format!("blk.{idx}.{p}")
        } else {
            base.to_string()
        };
        format!("{mapped}.{suffix}")
    }

    fn read(&mut self, name: &str) -> Result<Option<candle_core::quantized::QTensor>, EngineError> {
        let g = Self::gguf_name(name);
        if !self.content.tensor_infos.contains_key(&g) {
            return Ok(None);
        }
        self.content
            .tensor(&mut self.file, &g, &Device::Cpu)
            .map(Some)
            .map_err(|e| err(&self.origin, e))
    }
}

impl WeightSource for GgufWeights {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>, EngineError> {
        let Some(q) = self.read(name)? else {
            return Ok(None);
        };
        let t = q
            .dequantize(&Device::Cpu)
            .map_err(|e| err(&self.origin, e))?;
        let t = t.reshape(shape).map_err(|e| err(name, e))?;
        Ok(Some(t))
    }
    fn matmul(&mut self, name: &str, shape: [usize; 2]) -> Result<Option<MatWeight>, EngineError> {
        let Some(q) = self.read(name)? else {
            return Ok(None);
        };
        if q.shape().dims() != shape {
            return Err(EngineError::InvalidRequest(format!(
                "{}: tensor {name} has shape {:?}, expected {shape:?}",
                self.origin,
                q.shape().dims()
            )));
        }
        let kind = match q.dtype() {
            GgmlDType::Q4_1 => Some(QKind::Q4_1),
            GgmlDType::Q8_0 => Some(QKind::Q8_0),
            _ => None,
        };
        if let Some(kind) = kind {
            let bytes = q.data().map_err(|e| err(name, e))?;
            if let Some(m) = QMatrix::from_gguf_bytes(kind, &bytes, shape[0], shape[1]) {
                return Ok(Some(MatWeight::Quant(m)));
            }
        }
        QMatMul::from_qtensor(q)
            .map(|m| Some(MatWeight::Candle(m)))
            .map_err(|e| err(name, e))
    }
    fn format(&self) -> &'static str {
        "gguf"
    }
}

/// A short deterministic random generator for tests and dummy inputs.
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
