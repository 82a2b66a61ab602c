//! Where the pipeline's tensors come from: seeded dummy weights generated on demand (the
//! default), or a safetensors file with the same tensor names.
//!
//! Dummy weights are generated per tensor from `seed ^ fnv1a(name)`, so every tensor is
//! reproducible on its own, whatever order the model asks for them in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::diffusion::error::DiffusionError;

/// Where weights come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightSource {
    /// Generated from this seed.
    Dummy { seed: u64 },
    /// Loaded from a safetensors file (names as the dummy generator makes them).
    Safetensors(PathBuf),
}

impl WeightSource {
    /// `"dummy"` or `"safetensors"`, as `load_format` in model info.
    pub fn load_format(&self) -> &'static str {
        match self {
            WeightSource::Dummy { .. } => "dummy",
            WeightSource::Safetensors(_) => "safetensors",
        }
    }
}

/// Tensors made by a [`SeededBackend`], shared so they can be saved after the model is built.
pub(crate) type Made = Arc<Mutex<Vec<(String, Tensor)>>>;

/// A `VarBuilder` backend that invents each tensor from a seed and its name.
struct SeededBackend {
    seed: u64,
    made: Made,
}

/// `n` standard normal samples (Box-Muller) from `rng`.
pub(crate) fn normal_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.gen::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((r * theta.cos()) as f32);
        out.push((r * theta.sin()) as f32);
    }
    out.truncate(n);
    out
}

impl candle_nn::var_builder::SimpleBackend for SeededBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let dims = s.dims().to_vec();
        let n = s.elem_count();
        let data = match h {
            Init::Const(v) => vec![v as f32; n],
            _ => {
                // 1/sqrt(fan_in) keeps activations O(1) through the random layers; 1-D
                // tensors (biases, embeddings rows) get a small spread.
                let std = if dims.len() >= 2 {
                    let fan_in: usize = dims[1..].iter().product();
                    1.0 / (fan_in.max(1) as f32).sqrt()
                } else {
                    0.02
                };
                let mut rng = ChaCha8Rng::seed_from_u64(
                    self.seed ^ inferperf_protocol::hash::fnv1a(name.as_bytes()),
                );
                normal_vec(&mut rng, n)
                    .into_iter()
                    .map(|v| v * std)
                    .collect()
            }
        };
        let t = Tensor::from_vec(data, dims, dev)?.to_dtype(dtype)?;
        self.made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), t.clone()));
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        Err(candle_core::Error::Msg(format!(
            "dummy weights need a shape for {name}"
        )))
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// A `VarBuilder` over `source`, plus (for dummy weights) the list the generator fills.
pub(crate) fn var_builder(
    source: &WeightSource,
) -> Result<(VarBuilder<'static>, Option<Made>), DiffusionError> {
    match source {
        WeightSource::Dummy { seed } => {
            let made: Made = Arc::default();
            let backend = SeededBackend {
                seed: *seed,
                made: made.clone(),
            };
            Ok((
                VarBuilder::from_backend(Box::new(backend), DType::F32, Device::Cpu),
                Some(made),
            ))
        }
        WeightSource::Safetensors(path) => {
            let map = load_safetensors(path)?;
            Ok((
                VarBuilder::from_tensors(map, DType::F32, &Device::Cpu),
                None,
            ))
        }
    }
}

fn load_safetensors(path: &Path) -> Result<HashMap<String, Tensor>, DiffusionError> {
    let map =
        candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| DiffusionError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    map.into_iter()
        .map(|(k, t)| {
            let t = t.to_dtype(DType::F32).map_err(|e| DiffusionError::Load {
                path: path.to_path_buf(),
                message: format!("{k}: {e}"),
            })?;
            Ok((k, t))
        })
        .collect()
}

/// Write `tensors` as safetensors through a temp file and a rename.
pub(crate) fn save_safetensors(
    tensors: &[(String, Tensor)],
    path: &Path,
) -> Result<(), DiffusionError> {
    let map: HashMap<String, Tensor> = tensors.iter().cloned().collect();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "weights.safetensors".into());
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let err = |message: String| DiffusionError::Load {
        path: path.to_path_buf(),
        message,
    };
    candle_core::safetensors::save(&map, &tmp).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e.to_string())
    })
}
