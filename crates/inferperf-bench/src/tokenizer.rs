//! Tokenizers the client uses off the hot path (dataset building, retokenized output counts):
//! a local `tokenizer.json` through the `tokenizers` crate, or any [`TextTokenizer`] handed in
//! (the embedded server's own).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use inferperf_engine::api::{EngineError, TextTokenizer};

use crate::error::BenchError;

/// Shared tokenizer handle.
pub type SharedTokenizer = Arc<dyn TextTokenizer>;

/// A Hugging Face `tokenizer.json` loaded locally.
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    eos: Vec<u32>,
}

impl HfTokenizer {
    /// Load from a `tokenizer.json` file or a directory containing one.
    pub fn load(path: &Path) -> Result<Self, BenchError> {
        let file: PathBuf = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        let inner = tokenizers::Tokenizer::from_file(&file)
            .map_err(|e| BenchError::Tokenizer(format!("cannot load {}: {e}", file.display())))?;
        let eos = ["</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>"]
            .iter()
            .filter_map(|t| inner.token_to_id(t))
            .collect();
        Ok(Self { inner, eos })
    }
}

fn tok_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Other(e.to_string())
}

impl TextTokenizer for HfTokenizer {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, EngineError> {
        Ok(self
            .inner
            .encode_fast(text, add_special_tokens)
            .map_err(tok_err)?
            .get_ids()
            .to_vec())
    }

    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, EngineError> {
        self.inner.decode(ids, skip_special_tokens).map_err(tok_err)
    }

    /// No template engine on the client side: role-prefixed lines, one per message (SGLang's
    /// own fallback when a template is missing).
    fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        let mut out = String::new();
        for m in messages.as_array().into_iter().flatten() {
            let role = m["role"].as_str().unwrap_or("user");
            let content = m["content"].as_str().unwrap_or("");
            out.push_str(&format!("{role}: {content}\n"));
        }
        if add_generation_prompt {
            out.push_str("assistant:");
        }
        Ok(out)
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn eos_token_ids(&self) -> Vec<u32> {
        self.eos.clone()
    }
}

/// Number of special tokens the server adds when it encodes a prompt (BOS etc.).
pub fn num_special_tokens_to_add(tok: &dyn TextTokenizer) -> usize {
    let with = tok.encode("hello", true).map(|v| v.len()).unwrap_or(0);
    let without = tok.encode("hello", false).map(|v| v.len()).unwrap_or(0);
    with.saturating_sub(without)
}

/// Convert an engine tokenizer error into ours.
pub fn tokenizer_error(e: EngineError) -> BenchError {
    BenchError::Tokenizer(e.to_string())
}
