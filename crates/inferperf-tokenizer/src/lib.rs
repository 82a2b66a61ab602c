//! The tokenizer and chat template both sides of inferperf use: the server (through the
//! engine, which re-exports this crate as `inferperf_engine::tokenizer`) tokenizes prompts and
//! detokenizes output with it, and the load generator builds datasets and recounts output tokens
//! with it, so the two count tokens the same way.
//!
//! - [`TextTokenizer`]: the trait every tokenizer implements;
//! - [`ByteTokenizer`]: the built-in byte tokenizer of `--model-path default`;
//! - [`SimTokenizer`]: the simulated engine's one-token-per-word tokenizer;
//! - [`HfTokenizer`]: a Hugging Face `tokenizer.json` (loaded from a file, or built from bytes,
//!   e.g. GGUF metadata converted by the engine), with its chat template and one EOS rule;
//! - [`ChatTemplate`]: Jinja chat templates rendered with minijinja;
//! - [`IncrementalDetokenizer`]: streaming text that never splits a UTF-8 character;
//! - [`TokenizerSpec`]: a tokenizer as data, what a server publishes so a client rebuilds the
//!   identical tokenizer.

use std::sync::Arc;

mod byte;
mod detok;
mod hf;
mod simulated;
mod spec;
mod template;

pub use byte::ByteTokenizer;
pub use detok::{IncrementalDetokenizer, MAX_HELD_TOKENS};
pub use hf::HfTokenizer;
pub use simulated::SimTokenizer;
pub use spec::TokenizerSpec;
pub use template::{ChatTemplate, CHATML_TEMPLATE};

/// What tokenizing, detokenizing, templating or loading a tokenizer can fail with. Every
/// variant is about the input (the text, ids, messages or tokenizer files given), so a server
/// answers them as bad requests.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A tokenizer (`tokenizer.json`, its config) that cannot be read or parsed.
    #[error("{origin}: invalid tokenizer: {message}")]
    Load { origin: String, message: String },
    /// A chat template that does not compile.
    #[error("{origin}: invalid chat template: {message}")]
    Template { origin: String, message: String },
    /// Rendering messages with the chat template failed (bad messages, `raise_exception`).
    #[error("chat template: {0}")]
    Render(String),
    #[error("tokenize: {0}")]
    Encode(String),
    #[error("detokenize: {0}")]
    Decode(String),
    #[error("token id {id} is outside the vocabulary (size {vocab_size})")]
    OutOfVocabulary { id: u32, vocab_size: usize },
}

/// Tokenization and chat templating, shared by the server's front end (which tokenizes on its
/// own threads so the engine thread only runs forwards) and the load generator.
pub trait TextTokenizer: Send + Sync {
    /// Encode text; `add_special_tokens` adds BOS where the model expects it.
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError>;
    /// Decode ids to text.
    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError>;
    /// Render an OpenAI `messages` array (a JSON array) with the model's chat template.
    fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError>;
    fn vocab_size(&self) -> usize;
    /// Token ids that end generation unless `ignore_eos`.
    fn eos_token_ids(&self) -> Vec<u32>;
    /// This tokenizer as data a client can rebuild it from (`None`: it cannot be shipped).
    fn spec(&self) -> Option<Arc<TokenizerSpec>> {
        None
    }
}

/// Messages as `role: content` lines, then `assistant:` when a generation prompt is asked for:
/// SGLang's fallback when a tokenizer ships no chat template (and the simulated model's).
pub fn role_lines(messages: &serde_json::Value, add_generation_prompt: bool) -> String {
    let mut out = String::new();
    for m in messages.as_array().into_iter().flatten() {
        let role = m.get("role").and_then(|r| r.as_str()).unwrap_or("user");
        let content = m.get("content").and_then(|c| c.as_str()).unwrap_or("");
        out.push_str(role);
        out.push_str(": ");
        out.push_str(content);
        out.push('\n');
    }
    if add_generation_prompt {
        out.push_str("assistant:");
    }
    out
}

/// Number of special tokens the tokenizer adds when it encodes a prompt (BOS etc.).
pub fn num_special_tokens_to_add(tok: &dyn TextTokenizer) -> usize {
    let with = tok.encode("hello", true).map(|v| v.len()).unwrap_or(0);
    let without = tok.encode("hello", false).map(|v| v.len()).unwrap_or(0);
    with.saturating_sub(without)
}
