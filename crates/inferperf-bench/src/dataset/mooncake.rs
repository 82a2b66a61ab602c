//! `mooncake`: replay of a Mooncake trace (JSONL of `timestamp` ms, `hash_ids`,
//! `output_length`) on its own timestamps, prompts built as SGLang builds them: per hash id
//! `"{hash_id}" + " hi" * 128`, then "Tell me a story based on this context.", wrapped in the
//! chat template as one user round.

use std::path::Path;

use serde::Deserialize;

use super::DatasetRow;
use crate::error::BenchError;
use crate::tokenizer::{tokenizer_error, SharedTokenizer};

#[derive(Deserialize)]
struct TraceRecord {
    #[serde(default)]
    timestamp: f64,
    #[serde(default)]
    hash_ids: Vec<u64>,
    output_length: Option<usize>,
}

/// Rows (sorted by timestamp) of the first `num_prompts` trace records.
pub fn load(
    path: &str,
    num_prompts: usize,
    tok: &SharedTokenizer,
) -> Result<Vec<DatasetRow>, BenchError> {
    if path.is_empty() {
        return Err(BenchError::Dataset(
            "--dataset-name mooncake needs --dataset-path TRACE.jsonl (traces are not downloaded at run time; \
             get one from the kvcache-ai/Mooncake repository, FAST25-release/)"
                .into(),
        ));
    }
    let text = std::fs::read_to_string(Path::new(path))
        .map_err(|e| BenchError::io(format!("reading {path}"), e))?;
    let mut recs = vec![];
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        if recs.len() >= num_prompts {
            break;
        }
        let r: TraceRecord = serde_json::from_str(line)
            .map_err(|e| BenchError::Dataset(format!("{path}:{}: {e}", i + 1)))?;
        recs.push(r);
    }
    recs.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    recs.into_iter()
        .map(|r| {
            let mut base = String::new();
            for h in &r.hash_ids {
                base.push_str(&h.to_string());
                base.push_str(&" hi".repeat(128));
            }
            base.push_str("Tell me a story based on this context.");
            let msgs = serde_json::json!([{"role": "user", "content": format!("Round 1: {base}")}]);
            let prompt = tok
                .apply_chat_template(&msgs, true)
                .map_err(tokenizer_error)?;
            let prompt_len = tok.encode(&prompt, false).map_err(tokenizer_error)?.len();
            let mut row = DatasetRow::text(prompt, prompt_len, r.output_length.unwrap_or(256));
            row.timestamp_ms = Some(r.timestamp);
            Ok(row)
        })
        .collect()
}
