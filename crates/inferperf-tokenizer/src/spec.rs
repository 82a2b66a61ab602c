//! A tokenizer as data: what a server sends a client (`GET /inferperf/tokenizer`) so the client
//! counts tokens with exactly the server's tokenizer, however the server built it (the byte
//! tokenizer, a `tokenizer.json`, or one derived from GGUF metadata), with no file on the
//! client's side.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{ByteTokenizer, HfTokenizer, SimTokenizer, TextTokenizer, TokenizerError};

/// Everything needed to rebuild a tokenizer identical to the server's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenizerSpec {
    /// The built-in byte tokenizer of `--model-path default`.
    Byte,
    /// The simulated engine's one-token-per-word tokenizer.
    Simulated { vocab_size: u32 },
    /// A Hugging Face `tokenizers` tokenizer with the server's chat template and BOS/EOS rules.
    Hf {
        /// The `tokenizer.json` text.
        tokenizer_json: String,
        chat_template: Option<String>,
        bos_token: Option<String>,
        eos_tokens: Vec<String>,
        extra_eos_ids: Vec<u32>,
        /// Whether encoding with special tokens prepends BOS.
        add_bos: bool,
        /// Where the server loaded it from (for messages).
        origin: String,
    },
}

impl TokenizerSpec {
    /// The tokenizer this spec describes.
    pub fn build(&self) -> Result<Arc<dyn TextTokenizer>, TokenizerError> {
        Ok(match self {
            TokenizerSpec::Byte => Arc::new(ByteTokenizer::new()?),
            TokenizerSpec::Simulated { vocab_size } => Arc::new(SimTokenizer::new(*vocab_size)),
            TokenizerSpec::Hf {
                tokenizer_json,
                chat_template,
                bos_token,
                eos_tokens,
                extra_eos_ids,
                add_bos,
                origin,
            } => Arc::new(HfTokenizer::from_json_bytes(
                tokenizer_json.as_bytes(),
                chat_template.clone(),
                bos_token.clone(),
                eos_tokens,
                extra_eos_ids,
                *add_bos,
                origin,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec survives the wire (JSON) and rebuilds a tokenizer that encodes like the original.
    #[test]
    fn byte_and_simulated_specs_round_trip() {
        for spec in [
            TokenizerSpec::Byte,
            TokenizerSpec::Simulated { vocab_size: 1000 },
        ] {
            let text = serde_json::to_string(&spec).expect("serialize");
            let back: TokenizerSpec = serde_json::from_str(&text).expect("parse");
            assert_eq!(back, spec);
            let original = match &spec {
                TokenizerSpec::Byte => {
                    Arc::new(ByteTokenizer::new().expect("byte")) as Arc<dyn TextTokenizer>
                }
                _ => Arc::new(SimTokenizer::new(1000)),
            };
            let rebuilt = back.build().expect("build");
            assert_eq!(
                rebuilt.encode("hello <s> world", true).expect("encode"),
                original.encode("hello <s> world", true).expect("encode")
            );
            assert_eq!(original.spec().as_deref(), Some(&spec));
        }
    }
}
