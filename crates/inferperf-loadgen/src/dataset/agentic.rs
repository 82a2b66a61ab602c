//! `agentic-trace`: recorded agent conversations replayed turn by turn. The file is one JSON
//! object `{"conversations": [[{"messages": [...], "prompt_tokens": N}, ...], ...]}`; each
//! conversation is one multi-turn row whose turns add their `messages` to the history (the
//! assistant replies come from the server, see [`crate::conversation`]). `--dataset-offset`
//! rotates the conversation list, `--agentic-max-turns` caps the turns, and every turn asks for
//! `--sharegpt-output-len` tokens (220 by default), as SGLang does.

use serde::Deserialize;
use serde_json::Value;

use super::DatasetRow;
use crate::backend::Prompt;
use crate::error::BenchError;
use crate::tokenizer::{tokenizer_error, SharedTokenizer};

#[derive(Deserialize)]
struct TraceFile {
    conversations: Vec<Vec<Turn>>,
}

#[derive(Deserialize)]
struct Turn {
    messages: Vec<Value>,
    #[serde(default)]
    prompt_tokens: Option<usize>,
}

/// `agentic-trace` options.
pub struct AgenticOptions {
    pub num_prompts: usize,
    pub offset: usize,
    pub max_turns: Option<usize>,
    pub output_len: Option<usize>,
}

/// One multi-turn row per conversation (the first `num_prompts` after rotating by `offset`).
/// `prompt_len` is the first turn's: its recorded `prompt_tokens`, else its templated length.
pub fn load(
    path: &str,
    o: &AgenticOptions,
    tok: &SharedTokenizer,
) -> Result<Vec<DatasetRow>, BenchError> {
    if path.is_empty() {
        return Err(BenchError::Dataset(
            "--dataset-name agentic-trace needs --dataset-path TRACE.json".into(),
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| BenchError::io(format!("reading {path}"), e))?;
    let file: TraceFile = serde_json::from_str(&text)
        .map_err(|e| BenchError::Dataset(format!("{path}: not an agentic trace: {e}")))?;
    let mut convs: Vec<Vec<Turn>> = file
        .conversations
        .into_iter()
        .filter(|c| c.iter().any(|t| !t.messages.is_empty()))
        .collect();
    if convs.is_empty() {
        return Err(BenchError::Dataset(format!(
            "{path}: no conversation has messages"
        )));
    }
    let shift = o.offset % convs.len();
    convs.rotate_left(shift);
    let output_len = o.output_len.unwrap_or(220);
    convs
        .into_iter()
        .take(o.num_prompts)
        .map(|mut turns| {
            turns.retain(|t| !t.messages.is_empty());
            if let Some(max) = o.max_turns {
                turns.truncate(max.max(1));
            }
            let prompt_len = match turns[0].prompt_tokens {
                Some(n) => n,
                None => {
                    let first = Value::Array(turns[0].messages.clone());
                    let text = tok
                        .apply_chat_template(&first, true)
                        .map_err(tokenizer_error)?;
                    tok.encode(&text, false).map_err(tokenizer_error)?.len()
                }
            };
            let mut row = DatasetRow::text(String::new(), prompt_len, output_len);
            row.prompt = Prompt::Turns(
                turns
                    .into_iter()
                    .map(|t| Value::Array(t.messages))
                    .collect(),
            );
            Ok(row)
        })
        .collect()
}
