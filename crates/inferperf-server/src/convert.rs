//! Engine finish reasons -> the wire spellings of each API.

use inferperf_engine::api::{FinishReason, StopMatch};
use inferperf_protocol::generate::GenerateFinishReason;
use inferperf_protocol::openai::finish_reason;

/// SGLang `meta_info.finish_reason`: `{"type": "length", "length": N}`, ...
pub fn generate_finish_reason(reason: &FinishReason) -> GenerateFinishReason {
    match reason {
        FinishReason::Length { length } => GenerateFinishReason {
            kind: "length".to_string(),
            length: Some(*length as u64),
            ..Default::default()
        },
        FinishReason::Stop { matched } => GenerateFinishReason {
            kind: "stop".to_string(),
            matched: Some(stop_match_json(matched)),
            ..Default::default()
        },
        FinishReason::Abort { message } => GenerateFinishReason {
            kind: "abort".to_string(),
            message: Some(message.clone()),
            ..Default::default()
        },
    }
}

/// OpenAI `finish_reason` and SGLang's `matched_stop`.
pub fn openai_finish_reason(reason: &FinishReason) -> (String, Option<serde_json::Value>) {
    match reason {
        FinishReason::Length { .. } => (finish_reason::LENGTH.to_string(), None),
        FinishReason::Stop { matched } => (
            finish_reason::STOP.to_string(),
            Some(stop_match_json(matched)),
        ),
        FinishReason::Abort { .. } => (finish_reason::ABORT.to_string(), None),
    }
}

fn stop_match_json(matched: &StopMatch) -> serde_json::Value {
    match matched {
        StopMatch::Token(id) => serde_json::Value::from(*id),
        StopMatch::Text(s) => serde_json::Value::from(s.clone()),
    }
}
