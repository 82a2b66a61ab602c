//! SGLang native `/generate` request and response (`meta_info`), and `/abort_request`.
//!
//! `/generate` takes `text` or `input_ids`, each either one prompt or a batch, with
//! `sampling_params` (one object for all, or one per prompt). Responses carry the text
//! (cumulative across stream chunks by default, as SGLang sends it), the output token ids and a
//! `meta_info` with the server-side accounting benchmarks rely on.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::{OneOrBatch, StringOrList};

/// `input_ids`: one prompt's token ids or a batch of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum InputIds {
    One(Vec<u32>),
    Batch(Vec<Vec<u32>>),
}

impl<'de> Deserialize<'de> for InputIds {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            Id(u32),
            List(Vec<u32>),
        }
        let items = Vec::<Item>::deserialize(de).map_err(|_| {
            de::Error::custom("expected a list of token ids or a list of lists of token ids")
        })?;
        if items.is_empty() {
            return Ok(Self::One(Vec::new()));
        }
        let mut one = Vec::new();
        let mut batch = Vec::new();
        for item in items {
            match item {
                Item::Id(id) => one.push(id),
                Item::List(l) => batch.push(l),
            }
        }
        match (one.is_empty(), batch.is_empty()) {
            (false, true) => Ok(Self::One(one)),
            (true, false) => Ok(Self::Batch(batch)),
            _ => Err(de::Error::custom(
                "input_ids mixes token ids and lists of token ids",
            )),
        }
    }
}

/// `sampling_params` of `/generate`, SGLang names; absent fields take SGLang's defaults
/// (`max_new_tokens` 128, `temperature` 1.0, ...), applied by the server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateSamplingParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_new_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// -1 means the whole vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StringOrList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_token_ids: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_special_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spaces_between_special_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_stop_trim: Option<bool>,
    /// Per-request seed (`sampling_seed` in newer SGLang; both spellings are accepted).
    #[serde(
        default,
        alias = "sampling_seed",
        skip_serializing_if = "Option::is_none"
    )]
    pub seed: Option<u64>,
    /// Only 1 is supported by the reference server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f32>,
    /// Per-request stream interval (tokens per chunk); overrides `--stream-interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_interval: Option<u32>,
    /// Constrained decoding; `null` is accepted, other values are rejected by the reference
    /// server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebnf: Option<serde_json::Value>,
}

/// Body of `POST /generate` (SGLang `GenerateReqInput`). Exactly one of `text` and
/// `input_ids` must be given. Unknown fields are ignored; logprob fields are tolerated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateReqInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<OneOrBatch<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ids: Option<InputIds>,
    /// One object for every prompt, or one per prompt of a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_params: Option<OneOrBatch<GenerateSamplingParams>>,
    /// Request id(s); the server makes one up when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<OneOrBatch<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Accepted for compatibility; the reference server returns no logprobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_logprob: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprob_start_len: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs_num: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_path: Option<serde_json::Value>,
}

/// `meta_info.finish_reason`: `{"type": "length", "length": N}`,
/// `{"type": "stop", "matched": <token id or string>}` or `{"type": "abort", "message": ...}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateFinishReason {
    /// `length`, `stop` or `abort`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `meta_info` of every `/generate` response and stream chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetaInfo {
    /// The request id (`rid`).
    pub id: String,
    /// `null` until the last chunk.
    pub finish_reason: Option<GenerateFinishReason>,
    pub prompt_tokens: u64,
    /// Tokens generated so far (cumulative in stream chunks).
    pub completion_tokens: u64,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: u64,
    /// Seconds from arrival to finish; present on the last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_latency: Option<f64>,
    /// Fields other servers add (`spec_accept_length`, `weight_version`, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One `/generate` response object: the whole answer (non-streamed) or one stream chunk.
/// A batch answers with a JSON array of these (non-streamed) or chunks tagged with `index`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateResponse {
    /// Generated text; cumulative in stream chunks (SGLang's default).
    pub text: String,
    /// Generated token ids; cumulative like `text`.
    pub output_ids: Vec<u32>,
    pub meta_info: MetaInfo,
    /// Position of the prompt in a batch request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// Body of `POST /abort_request`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AbortRequest {
    /// Request id to abort; empty with `abort_all: false` does nothing.
    pub rid: String,
    pub abort_all: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_batch_forms() {
        let r: GenerateReqInput = serde_json::from_value(json!({
            "text": "hi", "sampling_params": {"max_new_tokens": 4, "ignore_eos": true},
            "stream": true, "return_logprob": false, "lora_path": null
        }))
        .unwrap();
        assert_eq!(r.text, Some(OneOrBatch::One("hi".into())));
        let sp = r.sampling_params.unwrap();
        assert_eq!(sp.get(0).unwrap().max_new_tokens, Some(4));

        let b: GenerateReqInput = serde_json::from_value(json!({
            "input_ids": [[1, 2], [3]], "rid": ["a", "b"],
            "sampling_params": {"temperature": 0.0, "json_schema": null, "stream_interval": 1}
        }))
        .unwrap();
        assert_eq!(
            b.input_ids,
            Some(InputIds::Batch(vec![vec![1, 2], vec![3]]))
        );
        assert_eq!(b.rid.unwrap().batch_len(), Some(2));

        let one: GenerateReqInput = serde_json::from_value(
            json!({"input_ids": [5, 6], "sampling_params": {"sampling_seed": 3}}),
        )
        .unwrap();
        assert_eq!(one.input_ids, Some(InputIds::One(vec![5, 6])));
        assert_eq!(one.sampling_params.unwrap().get(0).unwrap().seed, Some(3));
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(serde_json::from_value::<GenerateReqInput>(json!({"input_ids": "x"})).is_err());
        assert!(
            serde_json::from_value::<GenerateReqInput>(json!({"input_ids": [1, [2]]})).is_err()
        );
        let err = serde_json::from_str::<GenerateReqInput>(
            r#"{"text": "a", "sampling_params": {"max_new_tokens": "many"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn response_round_trip_and_shape() {
        let resp = GenerateResponse {
            text: "ab".into(),
            output_ids: vec![1, 2],
            meta_info: MetaInfo {
                id: "r".into(),
                finish_reason: Some(GenerateFinishReason {
                    kind: "length".into(),
                    length: Some(2),
                    ..Default::default()
                }),
                prompt_tokens: 3,
                completion_tokens: 2,
                cached_tokens: 0,
                e2e_latency: Some(0.5),
                extra: Default::default(),
            },
            index: None,
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            v,
            json!({"text": "ab", "output_ids": [1, 2], "meta_info": {"id": "r",
                "finish_reason": {"type": "length", "length": 2}, "prompt_tokens": 3,
                "completion_tokens": 2, "cached_tokens": 0, "e2e_latency": 0.5}})
        );
        assert_eq!(serde_json::from_value::<GenerateResponse>(v).unwrap(), resp);
    }
}
