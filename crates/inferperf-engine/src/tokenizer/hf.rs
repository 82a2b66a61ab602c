//! HF `tokenizers` tokenizer (from `tokenizer.json`, or built from GGUF metadata) with its chat
//! template.

use super::template::{ChatTemplate, CHATML_TEMPLATE};
use crate::api::{EngineError, TextTokenizer};

/// A `tokenizers::Tokenizer` plus the model's chat template and EOS ids.
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    template: ChatTemplate,
    eos_ids: Vec<u32>,
    add_bos: Option<u32>,
    /// What it was built from, for clients that need the identical tokenizer.
    spec: std::sync::Arc<super::TokenizerSpec>,
}

impl HfTokenizer {
    /// Build from `tokenizer.json` bytes. `chat_template` falls back to ChatML; `eos_tokens`
    /// and `bos_token` are token strings resolved against the vocabulary.
    pub fn from_json_bytes(
        json: &[u8],
        chat_template: Option<String>,
        bos_token: Option<String>,
        eos_tokens: &[String],
        extra_eos_ids: &[u32],
        add_bos: bool,
        origin: &str,
    ) -> Result<Self, EngineError> {
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| {
            EngineError::InvalidRequest(format!("{origin}: invalid tokenizer: {e}"))
        })?;
        let mut eos_ids: Vec<u32> = eos_tokens
            .iter()
            .filter_map(|t| inner.token_to_id(t))
            .chain(extra_eos_ids.iter().copied())
            .collect();
        // Chat models end turns with their end-of-turn marker; stop on it too.
        for t in ["<|im_end|>", "<|eot_id|>", "<|endoftext|>"] {
            if let Some(id) = inner.token_to_id(t) {
                eos_ids.push(id);
            }
        }
        eos_ids.sort_unstable();
        eos_ids.dedup();
        let spec = std::sync::Arc::new(super::TokenizerSpec::Hf {
            tokenizer_json: String::from_utf8_lossy(json).into_owned(),
            chat_template: chat_template.clone(),
            bos_token: bos_token.clone(),
            eos_tokens: eos_tokens.to_vec(),
            extra_eos_ids: extra_eos_ids.to_vec(),
            add_bos,
            origin: origin.to_string(),
        });
        let bos_id = bos_token.as_deref().and_then(|t| inner.token_to_id(t));
        let template = ChatTemplate::new(
            chat_template.unwrap_or_else(|| CHATML_TEMPLATE.to_string()),
            bos_token.unwrap_or_default(),
            eos_tokens.first().cloned().unwrap_or_default(),
            origin,
        )?;
        Ok(Self {
            inner,
            template,
            eos_ids,
            add_bos: if add_bos { bos_id } else { None },
            spec,
        })
    }
}

impl TextTokenizer for HfTokenizer {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, EngineError> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| EngineError::InvalidRequest(format!("tokenize: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        if let (true, Some(bos)) = (add_special_tokens, self.add_bos) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, EngineError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| EngineError::InvalidRequest(format!("detokenize: {e}")))
    }

    fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        self.template.render(messages, add_generation_prompt)
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn eos_token_ids(&self) -> Vec<u32> {
        self.eos_ids.clone()
    }

    fn spec(&self) -> Option<std::sync::Arc<super::TokenizerSpec>> {
        Some(self.spec.clone())
    }
}
