//! Hugging Face `tokenizers` tokenizer with its chat template and EOS ids, built either from
//! `tokenizer.json` bytes with the model's settings (the server: a `tokenizer.json`, or one the
//! engine derived from GGUF metadata) or loaded from a local file or directory (the load
//! generator: `--tokenizer`, `--model-tokenizer`).

use std::path::Path;
use std::sync::Arc;

use crate::template::{ChatTemplate, CHATML_TEMPLATE};
use crate::{role_lines, TextTokenizer, TokenizerError, TokenizerSpec};

/// End-of-turn markers: chat models end a reply with one of these, so generation stops on them
/// whatever the tokenizer's configuration names as EOS.
const END_OF_TURN: [&str; 3] = ["<|im_end|>", "<|eot_id|>", "<|endoftext|>"];

/// The EOS token a tokenizer loaded from a file is assumed to have (no model settings given).
const DEFAULT_EOS: &str = "</s>";

/// A `tokenizers::Tokenizer` plus the model's chat template and EOS ids.
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    /// `None`: no template came with the tokenizer; messages render as role lines.
    template: Option<ChatTemplate>,
    eos_ids: Vec<u32>,
    add_bos: Option<u32>,
    /// What it was built from, for clients that need the identical tokenizer.
    spec: Option<Arc<TokenizerSpec>>,
}

/// The one EOS rule: the configured EOS tokens and extra ids, plus the end-of-turn markers the
/// vocabulary has; sorted, without repeats.
fn eos_ids(
    inner: &tokenizers::Tokenizer,
    eos_tokens: &[String],
    extra_eos_ids: &[u32],
) -> Vec<u32> {
    let mut ids: Vec<u32> = eos_tokens
        .iter()
        .map(String::as_str)
        .chain(END_OF_TURN)
        .filter_map(|t| inner.token_to_id(t))
        .chain(extra_eos_ids.iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
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
    ) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| TokenizerError::Load {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let eos_ids = eos_ids(&inner, eos_tokens, extra_eos_ids);
        let spec = Arc::new(TokenizerSpec::Hf {
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
            template: Some(template),
            eos_ids,
            add_bos: if add_bos { bos_id } else { None },
            spec: Some(spec),
        })
    }

    /// Load a `tokenizer.json` file, or the one in a directory, with the chat template of the
    /// `tokenizer_config.json` (or `chat_template.jinja`) beside it when there is one; without
    /// one, messages render as role lines (SGLang's fallback). EOS is `</s>` plus the
    /// end-of-turn markers; BOS is whatever the tokenizer's post-processor adds.
    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        let load_error = |message: String| TokenizerError::Load {
            origin: file.display().to_string(),
            message,
        };
        let json = std::fs::read(&file).map_err(|e| load_error(e.to_string()))?;
        let inner =
            tokenizers::Tokenizer::from_bytes(&json).map_err(|e| load_error(e.to_string()))?;
        let template = match file.parent() {
            Some(dir) => load_chat_template(dir)?,
            None => None,
        };
        Ok(Self {
            eos_ids: eos_ids(&inner, &[DEFAULT_EOS.to_string()], &[]),
            inner,
            template,
            add_bos: None,
            spec: None,
        })
    }

    /// Whether a chat template came with the tokenizer.
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }
}

/// The chat template shipped with a Hugging Face tokenizer: `tokenizer_config.json`'s
/// `chat_template` (a string, or the `default` entry of a named list), else
/// `chat_template.jinja`. `None` when the directory has neither; an unreadable or invalid
/// template is an error naming the file.
fn load_chat_template(dir: &Path) -> Result<Option<ChatTemplate>, TokenizerError> {
    let config_path = dir.join("tokenizer_config.json");
    let config: serde_json::Value = match std::fs::read_to_string(&config_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| TokenizerError::Load {
            origin: config_path.display().to_string(),
            message: format!("not JSON: {e}"),
        })?,
        Err(_) => serde_json::Value::Null,
    };
    let token = |key: &str| match config.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Object(o)) => o
            .get("content")
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    let (source, origin) = match config.get("chat_template") {
        Some(serde_json::Value::String(s)) => (s.clone(), config_path.clone()),
        Some(serde_json::Value::Array(named)) => {
            let default = named
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str());
            match default {
                Some(s) => (s.to_string(), config_path.clone()),
                None => return Ok(None),
            }
        }
        _ => {
            let jinja = dir.join("chat_template.jinja");
            match std::fs::read_to_string(&jinja) {
                Ok(s) => (s, jinja),
                Err(_) => return Ok(None),
            }
        }
    };
    ChatTemplate::new(
        source,
        token("bos_token"),
        token("eos_token"),
        &origin.display().to_string(),
    )
    .map(Some)
}

impl TextTokenizer for HfTokenizer {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .inner
            .encode_fast(text, add_special_tokens)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let mut ids = enc.get_ids().to_vec();
        if let (true, Some(bos)) = (add_special_tokens, self.add_bos) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| TokenizerError::Decode(e.to_string()))
    }

    /// The tokenizer's template; role lines when it came with none.
    fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        match &self.template {
            Some(t) => t.render(messages, add_generation_prompt),
            None => Ok(role_lines(messages, add_generation_prompt)),
        }
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn eos_token_ids(&self) -> Vec<u32> {
        self.eos_ids.clone()
    }

    fn spec(&self) -> Option<Arc<TokenizerSpec>> {
        self.spec.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WordLevel tokenizer with a few specials: enough to load, encode and resolve EOS.
    const TOKENIZER_JSON: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","vocab":{"[UNK]":0,"hello":1,"user":2,"assistant":3,
        "</s>":4,"<|im_end|>":5,"<eos>":6},"unk_token":"[UNK]"}}"#;

    fn dir_with(config: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tokenizer.json"), TOKENIZER_JSON).expect("write");
        if let Some(c) = config {
            std::fs::write(dir.path().join("tokenizer_config.json"), c).expect("write");
        }
        dir
    }

    #[test]
    fn the_template_beside_the_tokenizer_is_used() {
        let config = r#"{"bos_token": {"content": "<s>"}, "chat_template":
            "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"}"#;
        let dir = dir_with(Some(config));
        let tok = HfTokenizer::load(&dir.path().join("tokenizer.json")).expect("load");
        assert!(tok.has_chat_template());
        let msgs = serde_json::json!([{"role": "user", "content": "hello"}]);
        assert_eq!(
            tok.apply_chat_template(&msgs, true).expect("render"),
            "<s>[user] hello\n[assistant]"
        );
    }

    #[test]
    fn without_a_template_messages_become_role_lines() {
        let dir = dir_with(None);
        let tok = HfTokenizer::load(dir.path()).expect("load");
        assert!(!tok.has_chat_template());
        assert!(tok.spec().is_none());
        let msgs = serde_json::json!([{"role": "user", "content": "hello"}]);
        assert_eq!(
            tok.apply_chat_template(&msgs, true).expect("render"),
            "user: hello\nassistant:"
        );
    }

    /// Loading `dir` fails with a message naming `file`.
    fn assert_load_error_names(dir: &Path, file: &str) {
        let e = HfTokenizer::load(dir)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(file), "{e}");
    }

    #[test]
    fn a_broken_template_is_an_error_naming_the_file() {
        let dir = dir_with(Some(r#"{"chat_template": "{% for m in messages %}"}"#));
        assert_load_error_names(dir.path(), "tokenizer_config.json");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_load_error_names(dir.path(), "tokenizer.json");
    }

    /// One EOS rule for both constructors: the configured EOS (a loaded file assumes `</s>`)
    /// plus the end-of-turn markers in the vocabulary.
    #[test]
    fn eos_is_the_configured_token_plus_end_of_turn_markers() {
        let dir = dir_with(None);
        let loaded = HfTokenizer::load(dir.path()).expect("load");
        assert_eq!(loaded.eos_token_ids(), vec![4, 5]);
        let built = HfTokenizer::from_json_bytes(
            TOKENIZER_JSON.as_bytes(),
            None,
            None,
            &["<eos>".to_string()],
            &[9],
            false,
            "test",
        )
        .expect("build");
        assert_eq!(built.eos_token_ids(), vec![5, 6, 9]);
        // Built from model settings: ChatML unless a template is given, and a spec to publish.
        let msgs = serde_json::json!([{"role": "user", "content": "hello"}]);
        assert_eq!(
            built.apply_chat_template(&msgs, true).expect("render"),
            "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(built.spec().is_some());
    }
}
