//! `openai`: a JSONL file of OpenAI chat requests (one `{"messages": [...], ...}` per line),
//! replayed as they are: the messages become the request's `messages`, every other key except
//! `messages`, `max_tokens`, `max_completion_tokens` and `model` is merged into its body (tools,
//! response formats, sampling settings), and the output length is `--sharegpt-output-len`, else
//! the line's `max_tokens` (or `max_completion_tokens`), else 256.

use std::path::Path;

use serde_json::{Map, Value};

use super::DatasetRow;
use crate::backend::Prompt;
use crate::error::BenchError;
use crate::tokenizer::{tokenizer_error, SharedTokenizer};

/// Keys of a request line that are not copied into the body.
const NOT_EXTRA: [&str; 4] = ["messages", "max_tokens", "max_completion_tokens", "model"];

/// Rows of an OpenAI-requests JSONL file: the first `num_prompts` lines with a non-empty
/// `messages` array (all such lines when `num_prompts` is 0). `prompt_len` counts the
/// chat-templated messages plus the JSON of `tools` when present, as SGLang does.
pub fn load(
    path: &str,
    num_prompts: usize,
    fixed_output_len: Option<usize>,
    tok: &SharedTokenizer,
) -> Result<Vec<DatasetRow>, BenchError> {
    if path.is_empty() {
        return Err(BenchError::Dataset(
            "--dataset-name openai needs --dataset-path FILE.jsonl (one chat request per line)"
                .into(),
        ));
    }
    let text = std::fs::read_to_string(Path::new(path))
        .map_err(|e| BenchError::io(format!("reading {path}"), e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if num_prompts > 0 && rows.len() >= num_prompts {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let request: Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| BenchError::Dataset(format!("{path}:{}: {e}", i + 1)))?;
        let Some(messages) = request
            .get("messages")
            .filter(|m| m.as_array().is_some_and(|a| !a.is_empty()))
        else {
            continue;
        };
        let templated = tok
            .apply_chat_template(messages, true)
            .map_err(tokenizer_error)?;
        let mut prompt_len = tok
            .encode(&templated, false)
            .map_err(tokenizer_error)?
            .len();
        if let Some(tools) = request.get("tools") {
            prompt_len += tok
                .encode(&tools.to_string(), false)
                .map_err(tokenizer_error)?
                .len();
        }
        let line_max = ["max_tokens", "max_completion_tokens"]
            .iter()
            .find_map(|k| request.get(*k).and_then(Value::as_u64));
        let output_len = fixed_output_len
            .or(line_max.map(|n| n as usize))
            .unwrap_or(256);
        let extra: Map<String, Value> = request
            .iter()
            .filter(|(k, _)| !NOT_EXTRA.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        rows.push(DatasetRow {
            prompt: Prompt::Messages(messages.clone()),
            prompt_len,
            output_len,
            timestamp_ms: None,
            routing_key: None,
            extra: (!extra.is_empty()).then_some(extra),
        });
    }
    Ok(rows)
}
