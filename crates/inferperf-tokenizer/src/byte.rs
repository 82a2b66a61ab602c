//! The built-in byte-level tokenizer of `--model-path default`: one id per byte plus four
//! special tokens, and a ChatML template, so the server starts with no files at all.

use std::sync::Arc;

use crate::template::{ChatTemplate, CHATML_TEMPLATE};
use crate::{TextTokenizer, TokenizerError, TokenizerSpec};

const SPECIALS: [&str; 4] = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"];
const BOS: u32 = 256;
const EOS: u32 = 257;
const IM_END: u32 = 259;

/// Byte tokenizer: ids 0..=255 are bytes, 256.. are the special tokens.
pub struct ByteTokenizer {
    template: ChatTemplate,
}

impl ByteTokenizer {
    pub fn new() -> Result<Self, TokenizerError> {
        Ok(Self {
            template: ChatTemplate::new(
                CHATML_TEMPLATE.to_string(),
                SPECIALS[0].into(),
                SPECIALS[1].into(),
                "built-in byte tokenizer",
            )?,
        })
    }

    /// Number of ids: 256 bytes plus the specials.
    pub const VOCAB_SIZE: usize = 256 + SPECIALS.len();
}

impl TextTokenizer for ByteTokenizer {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::with_capacity(text.len() + 1);
        if add_special_tokens {
            ids.push(BOS);
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        'outer: while i < bytes.len() {
            if bytes[i] == b'<' {
                for (k, s) in SPECIALS.iter().enumerate() {
                    if bytes[i..].starts_with(s.as_bytes()) {
                        ids.push(256 + k as u32);
                        i += s.len();
                        continue 'outer;
                    }
                }
            }
            ids.push(bytes[i] as u32);
            i += 1;
        }
        Ok(ids)
    }

    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        let mut bytes = Vec::with_capacity(ids.len());
        for &id in ids {
            match id {
                0..=255 => bytes.push(id as u8),
                _ if (id as usize) < Self::VOCAB_SIZE => {
                    if !skip_special_tokens {
                        bytes.extend_from_slice(SPECIALS[id as usize - 256].as_bytes());
                    }
                }
                _ => {
                    return Err(TokenizerError::OutOfVocabulary {
                        id,
                        vocab_size: Self::VOCAB_SIZE,
                    })
                }
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        self.template.render(messages, add_generation_prompt)
    }

    fn vocab_size(&self) -> usize {
        Self::VOCAB_SIZE
    }

    fn eos_token_ids(&self) -> Vec<u32> {
        vec![EOS, IM_END]
    }

    fn spec(&self) -> Option<Arc<TokenizerSpec>> {
        Some(Arc::new(TokenizerSpec::Byte))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_specials() {
        let t = ByteTokenizer::new().unwrap();
        let ids = t.encode("<|im_start|>héllo<|im_end|>", false).unwrap();
        assert_eq!(ids[0], 258);
        assert_eq!(*ids.last().unwrap(), 259);
        assert_eq!(ids.len(), 2 + "héllo".len());
        assert_eq!(t.decode(&ids, true).unwrap(), "héllo");
        assert_eq!(
            t.decode(&ids, false).unwrap(),
            "<|im_start|>héllo<|im_end|>"
        );
    }

    #[test]
    fn renders_chatml() {
        let t = ByteTokenizer::new().unwrap();
        let m = serde_json::json!([{"role":"user","content":"hi"}]);
        assert_eq!(
            t.apply_chat_template(&m, true).unwrap(),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
