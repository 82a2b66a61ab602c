//! Tokenizers the client uses off the hot path (dataset building, retokenized output counts):
//! a local `tokenizer.json` ([`HfTokenizer`] of `inferperf-tokenizer`, the crate the server uses
//! too), the one a server publishes, or any [`TextTokenizer`] handed in (the embedded server's).

use std::path::Path;
use std::sync::Arc;

pub use inferperf_tokenizer::{num_special_tokens_to_add, HfTokenizer, TextTokenizer};
use inferperf_tokenizer::{TokenizerError, TokenizerSpec};

use crate::error::BenchError;

/// Shared tokenizer handle.
pub type SharedTokenizer = Arc<dyn TextTokenizer>;

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
    let Ok(spec) = serde_json::from_slice::<TokenizerSpec>(&body) else {
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

/// Convert a tokenizer error into ours.
pub fn tokenizer_error(e: TokenizerError) -> BenchError {
    BenchError::Tokenizer(e.to_string())
}

impl From<TokenizerError> for BenchError {
    fn from(e: TokenizerError) -> Self {
        tokenizer_error(e)
    }
}
