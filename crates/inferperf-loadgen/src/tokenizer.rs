//! Tokenizers the client uses off the hot path (dataset building, retokenized output counts):
//! a local `tokenizer.json` through the `tokenizers` crate, or any [`TextTokenizer`] handed in
//! (the embedded server's own).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use inferperf_engine::api::EngineError;
pub use inferperf_engine::api::TextTokenizer;
use inferperf_engine::tokenizer::ChatTemplate;

use crate::error::BenchError;

/// Shared tokenizer handle.
pub type SharedTokenizer = Arc<dyn TextTokenizer>;

/// A Hugging Face `tokenizer.json` loaded locally, with the chat template of the
/// `tokenizer_config.json` (or `chat_template.jinja`) beside it when there is one.
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    eos: Vec<u32>,
    template: Option<ChatTemplate>,
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
        let template = match file.parent() {
            Some(dir) => load_chat_template(dir)?,
            None => None,
        };
        Ok(Self {
            inner,
            eos,
            template,
        })
    }

    /// Whether a chat template was found next to the tokenizer.
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }
}

/// The first of `paths` (as a server reports them: `tokenizer_path`, `model_path`, ...) that is
/// a local `tokenizer.json` or a directory holding one, loaded; `None` when none is.
pub fn load_first_local(paths: &[&str]) -> Result<Option<SharedTokenizer>, BenchError> {
    for p in paths {
        let p = Path::new(p);
        let file = if p.is_dir() {
            p.join("tokenizer.json")
        } else {
            p.to_path_buf()
        };
        if file.is_file() && file.extension().is_some_and(|e| e == "json") {
            return Ok(Some(Arc::new(HfTokenizer::load(&file)?)));
        }
    }
    Ok(None)
}

/// The tokenizer an inferperf server publishes at `GET /inferperf/tokenizer`, rebuilt here so
/// prompts and retokenized counts match the server's counts exactly (BOS rule, chat template,
/// GGUF-derived vocabularies included). `Ok(None)` when the server does not publish one
/// (another kind of server: 404, or not JSON); an error when it does but the spec is broken.
pub async fn fetch_from_server(
    pool: &crate::client::Pool,
) -> Result<Option<SharedTokenizer>, BenchError> {
    let route = "/inferperf/tokenizer";
    let reply = crate::client::simple_request(
        pool,
        hyper::Method::GET,
        route,
        None,
        std::time::Duration::from_secs(60),
    )
    .await;
    let body = match reply {
        Ok((status, body)) if status.is_success() => body,
        Ok(_) | Err(_) => return Ok(None),
    };
    let Ok(spec) = serde_json::from_slice::<inferperf_engine::tokenizer::TokenizerSpec>(&body)
    else {
        return Ok(None);
    };
    let tok = spec.build().map_err(|e| {
        BenchError::Tokenizer(format!(
            "the tokenizer the server publishes at {route} cannot be built: {e}"
        ))
    })?;
    tracing::info!("using the server's own tokenizer (from {route})");
    Ok(Some(tok))
}

/// [`fetch_from_server`] for a base URL and the `--header`/API-key headers.
pub async fn fetch_from_base_url(
    base_url: &str,
    headers: hyper::HeaderMap,
) -> Result<Option<SharedTokenizer>, BenchError> {
    let pool = crate::client::Pool::new(crate::client::Target::from_base_url(base_url, headers)?);
    fetch_from_server(&pool).await
}

/// The chat template shipped with a Hugging Face tokenizer: `tokenizer_config.json`'s
/// `chat_template` (a string, or the `default` entry of a named list), else
/// `chat_template.jinja`. `None` when the directory has neither; an unreadable or invalid
/// template is an error naming the file.
fn load_chat_template(dir: &Path) -> Result<Option<ChatTemplate>, BenchError> {
    let config_path = dir.join("tokenizer_config.json");
    let config: serde_json::Value = match std::fs::read_to_string(&config_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            BenchError::Tokenizer(format!("{}: not JSON: {e}", config_path.display()))
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
    .map_err(tokenizer_error)
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

    /// The tokenizer's own template when it ships one; otherwise role-prefixed lines, one per
    /// message (SGLang's fallback when a template is missing).
    fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        if let Some(t) = &self.template {
            return t.render(messages, add_generation_prompt);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A four-word WordLevel tokenizer: enough to load and encode.
    const TOKENIZER_JSON: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","vocab":{"[UNK]":0,"hello":1,"user":2,"assistant":3},"unk_token":"[UNK]"}}"#;

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
        let msgs = serde_json::json!([{"role": "user", "content": "hello"}]);
        assert_eq!(
            tok.apply_chat_template(&msgs, true).expect("render"),
            "user: hello\nassistant:"
        );
    }

    #[test]
    fn a_broken_template_is_an_error_naming_the_file() {
        let dir = dir_with(Some(r#"{"chat_template": "{% for m in messages %}"}"#));
        let e = HfTokenizer::load(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("tokenizer_config.json"), "{e}");
    }
}
