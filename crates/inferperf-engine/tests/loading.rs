//! Model sources: an HF directory (config.json, *.safetensors, tokenizer.json) loads the exact
//! weights it holds, `--load-format dummy` and `--json-model-override-args` apply to it, and
//! unknown paths or hub ids fail with errors that name them.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use common::*;
use inferperf_engine::model::weights::{DummyWeights, WeightSource};
use inferperf_engine::{launch, EngineConfig};

const HIDDEN: usize = 64;
const INTER: usize = 128;
const LAYERS: usize = 2;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const VOCAB: usize = 64;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("inferperf-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every tensor a Llama of the constants above needs, with the dummy loader's values.
fn dummy_tensors(seed: u64) -> HashMap<String, Tensor> {
    let hd = HIDDEN / HEADS;
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN]),
        ("model.norm.weight".into(), vec![HIDDEN]),
        // Untied: with tied dummy embeddings greedy decoding just repeats the last token.
        ("lm_head.weight".into(), vec![VOCAB, HIDDEN]),
    ];
    for i in 0..LAYERS {
        let p = format!("model.layers.{i}");
        shapes.extend([
            (
                format!("{p}.self_attn.q_proj.weight"),
                vec![HEADS * hd, HIDDEN],
            ),
            (
                format!("{p}.self_attn.k_proj.weight"),
                vec![KV_HEADS * hd, HIDDEN],
            ),
            (
                format!("{p}.self_attn.v_proj.weight"),
                vec![KV_HEADS * hd, HIDDEN],
            ),
            (
                format!("{p}.self_attn.o_proj.weight"),
                vec![HIDDEN, HEADS * hd],
            ),
            (format!("{p}.mlp.gate_proj.weight"), vec![INTER, HIDDEN]),
            (format!("{p}.mlp.up_proj.weight"), vec![INTER, HIDDEN]),
            (format!("{p}.mlp.down_proj.weight"), vec![HIDDEN, INTER]),
            (format!("{p}.input_layernorm.weight"), vec![HIDDEN]),
            (format!("{p}.post_attention_layernorm.weight"), vec![HIDDEN]),
        ]);
    }
    let mut src = DummyWeights { seed };
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let t = src
                .tensor(&name, &shape)
                .expect("dummy tensor")
                .expect("present");
            (name, t)
        })
        .collect()
}

/// config.json, model.safetensors and a word-level tokenizer.json.
fn write_hf_dir(dir: &Path, seed: u64) {
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": HIDDEN, "intermediate_size": INTER, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "vocab_size": VOCAB,
        "max_position_embeddings": 256, "tie_word_embeddings": false, "eos_token_id": 0
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config");
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), 0.into());
    for i in 1..VOCAB {
        vocab.insert(format!("w{i}"), i.into());
    }
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).expect("write tokenizer");
    candle_core::safetensors::save(&dummy_tensors(seed), dir.join("model.safetensors"))
        .expect("write safetensors");
}

fn generate(config: EngineConfig) -> (Vec<u32>, inferperf_engine::api::ModelInfo) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let eng = launch(config).expect("launch");
    let ids = eng
        .tokenizer
        .encode("w1 w2 w3 w4 w5", false)
        .expect("encode");
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    let mut p = greedy(12);
    p.ignore_eos = true;
    let (out, _, _) = rt.block_on(run_one(&eng.handle, request("r", ids, p)));
    let info = eng.model_info.clone();
    eng.shutdown();
    (out, info)
}

#[test]
fn hf_directory_loads_its_safetensors_exactly() {
    let scratch = Scratch::new("hf");
    write_hf_dir(&scratch.0, 7);
    let path = scratch.0.display().to_string();
    let (from_file, info) = generate(EngineConfig {
        model_path: path.clone(),
        ..Default::default()
    });
    assert_eq!(info.load_format, "safetensors");
    assert_eq!(
        (info.hidden_size, info.num_hidden_layers, info.vocab_size),
        (HIDDEN, LAYERS, VOCAB)
    );
    assert_eq!(from_file.len(), 12);
    // The file holds exactly the dummy loader's seed-7 weights, so both paths agree.
    let (dummy, info) = generate(EngineConfig {
        model_path: path.clone(),
        load_format: "dummy".into(),
        random_seed: 7,
        ..Default::default()
    });
    assert_eq!(info.load_format, "dummy");
    assert_eq!(from_file, dummy);
    // ...and the comparison can tell weights apart: another seed generates something else.
    let (other, _) = generate(EngineConfig {
        model_path: path.clone(),
        load_format: "dummy".into(),
        random_seed: 8,
        ..Default::default()
    });
    assert_ne!(from_file, other);
    // Overrides are merged into config.json before loading.
    let (_, info) = generate(EngineConfig {
        model_path: path,
        json_model_override_args: Some(r#"{"num_hidden_layers": 1}"#.into()),
        ..Default::default()
    });
    assert_eq!(info.num_hidden_layers, 1);
}

#[test]
fn unknown_paths_and_uncached_hub_ids_fail_with_their_name() {
    let err = launch(EngineConfig {
        model_path: "inferperf-test-org/no-such-model".into(),
        ..Default::default()
    })
    .err()
    .expect("an uncached hub id cannot load")
    .to_string();
    assert!(err.contains("inferperf-test-org/no-such-model"), "{err}");
    assert!(err.contains("does not download"), "{err}");
    let err = launch(EngineConfig {
        model_path: "/nonexistent/model.gguf".into(),
        ..Default::default()
    })
    .err()
    .expect("a missing file cannot load")
    .to_string();
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
    let err = launch(EngineConfig {
        load_format: "pt".into(),
        ..Default::default()
    })
    .err()
    .expect("unknown load format")
    .to_string();
    assert!(err.contains("--load-format"), "{err}");
}
