//! Builds an HF `tokenizer.json` from GGUF metadata (`tokenizer.ggml.*`), so GGUF models need
//! no tokenizer files beside them.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use serde_json::json;

use crate::api::EngineError;

/// The tokenizer.json text for a GGUF `gpt2`-type (byte-level BPE) tokenizer.
pub fn tokenizer_json_from_gguf(meta: &HashMap<String, Value>) -> Result<String, EngineError> {
    let bad = |m: String| EngineError::InvalidRequest(format!("GGUF tokenizer: {m}"));
    let model = meta
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if model != "gpt2" {
        return Err(bad(format!(
            "tokenizer model {model:?} is not supported (only byte-level BPE \"gpt2\"); pass --tokenizer-path"
        )));
    }
    let tokens = meta
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .ok_or_else(|| bad("missing tokenizer.ggml.tokens".into()))?;
    let types: Vec<i32> = meta
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.iter().map(|t| t.to_i32().unwrap_or(1)).collect())
        .unwrap_or_default();
    let merges: Vec<String> = meta
        .get("tokenizer.ggml.merges")
        .and_then(|v| v.to_vec().ok())
        .map(|v| {
            v.iter()
                .filter_map(|m| m.to_string().ok().cloned())
                .collect()
        })
        .unwrap_or_default();
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        let tok = tok
            .to_string()
            .map_err(|_| bad(format!("token {id} is not a string")))?;
        vocab.insert(tok.clone(), json!(id));
        // 3 = control, 4 = user defined: matched as whole special tokens.
        if matches!(types.get(id), Some(3) | Some(4)) {
            added.push(
                json!({"id": id, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true}),
            );
        }
    }
    let pre = meta
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let pre_tokenizer = if pre == "smollm" {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]})
    } else {
        byte_level.clone()
    };
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    serde_json::to_string(&doc).map_err(|e| bad(e.to_string()))
}
