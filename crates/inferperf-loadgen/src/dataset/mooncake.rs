//! `mooncake`: replay of a Mooncake trace (JSONL of `timestamp` ms, `hash_ids`,
//! `output_length`) on its own timestamps, prompts built as SGLang builds them: per hash id
//! `"{hash_id}" + " hi" * 128`, then "Tell me a story based on this context."; round k of a
//! session (`--mooncake-num-rounds`) appends the user turn `"Round k: {base}"` to the history
//! and is rendered with the chat template; a placeholder assistant reply (`"story"` x output
//! length) follows each round. All rounds of a session start at its timestamp (SGLang sends them
//! back to back without waiting for replies).

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

/// Where SGLang downloads each `--mooncake-workload` from.
fn workload_url(workload: &str) -> Option<&'static str> {
    Some(match workload {
        "mooncake" => "https://raw.githubusercontent.com/kvcache-ai/Mooncake/main/FAST25-release/arxiv-trace/mooncake_trace.jsonl",
        "conversation" => "https://raw.githubusercontent.com/kvcache-ai/Mooncake/main/FAST25-release/traces/conversation_trace.jsonl",
        "synthetic" => "https://raw.githubusercontent.com/kvcache-ai/Mooncake/main/FAST25-release/traces/synthetic_trace.jsonl",
        "toolagent" => "https://raw.githubusercontent.com/kvcache-ai/Mooncake/main/FAST25-release/traces/toolagent_trace.jsonl",
        _ => return None,
    })
}

/// The trace file: `--dataset-path`, else SGLang's download location
/// `/tmp/{workload}_trace.jsonl` when it is there (we do not download at run time).
pub fn locate(path: &str, workload: &str) -> Result<String, BenchError> {
    if !path.is_empty() {
        return Ok(path.to_string());
    }
    let url = workload_url(workload).ok_or_else(|| {
        BenchError::Config(format!(
            "--mooncake-workload must be mooncake, conversation, synthetic or toolagent, not {workload:?}"
        ))
    })?;
    let local = format!("/tmp/{workload}_trace.jsonl");
    if Path::new(&local).is_file() {
        return Ok(local);
    }
    Err(BenchError::Dataset(format!(
        "--dataset-name mooncake needs --dataset-path TRACE.jsonl or {local} (traces are not \
         downloaded at run time; the {workload} trace is at {url})"
    )))
}

/// Rows (sorted by timestamp) of the first `num_prompts` trace records, `num_rounds` per
/// session.
pub fn load(
    path: &str,
    num_prompts: usize,
    num_rounds: usize,
    tok: &SharedTokenizer,
) -> Result<Vec<DatasetRow>, BenchError> {
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
    let mut rows = Vec::with_capacity(recs.len() * num_rounds.max(1));
    for r in recs {
        let mut base = String::new();
        for h in &r.hash_ids {
            base.push_str(&h.to_string());
            base.push_str(&" hi".repeat(128));
        }
        base.push_str("Tell me a story based on this context.");
        let output_len = r.output_length.unwrap_or(256);
        let mut history = Vec::new();
        for round in 1..=num_rounds.max(1) {
            history.push(
                serde_json::json!({"role": "user", "content": format!("Round {round}: {base}")}),
            );
            let prompt = tok
                .apply_chat_template(&serde_json::Value::Array(history.clone()), true)
                .map_err(tokenizer_error)?;
            let prompt_len = tok.encode(&prompt, false).map_err(tokenizer_error)?.len();
            let mut row = DatasetRow::text(prompt, prompt_len, output_len);
            row.timestamp_ms = Some(r.timestamp);
            rows.push(row);
            history.push(serde_json::json!({"role": "assistant", "content": vec!["story"; output_len].join(" ")}));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dataset fixtures live with the benchmark tests that replay them end to end.
    fn fixture() -> String {
        inferperf_test_support::manifest_dir!()
            .join("../inferperf-bench/tests/fixtures/mooncake_small.jsonl")
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn rounds_grow_the_history_and_share_the_session_time() {
        let tok: SharedTokenizer =
            std::sync::Arc::new(inferperf_tokenizer::SimTokenizer::new(1000));
        let rows = load(&fixture(), 2, 3, &tok).expect("rows");
        assert_eq!(rows.len(), 2 * 3);
        for session in rows.chunks(3) {
            assert!(session
                .iter()
                .all(|r| r.timestamp_ms == session[0].timestamp_ms));
            for w in session.windows(2) {
                // The next round holds the previous prompt, an 8-word placeholder reply and a
                // new user turn.
                assert!(w[1].prompt_len > w[0].prompt_len + 8);
            }
            let last = match &session[2].prompt {
                crate::backend::Prompt::Text(t) => t.clone(),
                other => panic!("text expected, got {other:?}"),
            };
            assert!(
                last.contains("Round 3: 0") || last.contains("Round 3: 1"),
                "{last}"
            );
            assert!(last.contains("story story"));
        }
    }

    #[test]
    fn a_missing_trace_names_the_flag_and_the_source() {
        let e = locate("", "toolagent-nope").expect_err("unknown workload");
        assert!(e.to_string().contains("--mooncake-workload"), "{e}");
        if !Path::new("/tmp/synthetic_trace.jsonl").exists() {
            let e = locate("", "synthetic").expect_err("no local file");
            let m = e.to_string();
            assert!(
                m.contains("--dataset-path") && m.contains("synthetic_trace.jsonl"),
                "{m}"
            );
        }
        assert_eq!(locate("x.jsonl", "synthetic").expect("given"), "x.jsonl");
    }
}
