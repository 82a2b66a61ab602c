//! OpenAI `/v1/completions`, `/v1/chat/completions` and `/v1/models` requests, responses and
//! stream chunks, with the extra request fields SGLang's OpenAI server accepts (`top_k`,
//! `min_p`, `ignore_eos`, `stop_token_ids`, ...), plus SGLang's `/tokenize` and `/detokenize`.
//!
//! Requests: every optional field is `Option` and skipped when `None`, so a client sends only
//! what it sets, and the server can tell "absent" from "default". Unknown fields are ignored
//! (as pydantic does), so newer clients keep working.
//!
//! Responses: fields default when absent (`#[serde(default)]`), so a client can parse the
//! responses of other OpenAI-compatible servers that omit some of them.

use serde::{Deserialize, Serialize};

use crate::StringOrList;

/// `stream_options` of both OpenAI request kinds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamOptions {
    /// Send a final chunk with `usage` and empty `choices` before `[DONE]`.
    pub include_usage: bool,
    /// SGLang/vLLM extension: put the running `usage` in every chunk.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub continuous_usage_stats: bool,
}

/// `prompt` of `/v1/completions`: text, token ids, or a batch of either.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CompletionPrompt {
    Text(String),
    Ids(Vec<u32>),
    Texts(Vec<String>),
    IdsBatch(Vec<Vec<u32>>),
}

impl Default for CompletionPrompt {
    /// An empty text prompt, so that requests can be built with `..Default::default()`.
    fn default() -> Self {
        Self::Text(String::new())
    }
}

/// Body of `POST /v1/completions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// Served model name; `None` (SGLang extension) means the only model served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub prompt: CompletionPrompt,
    /// Maximum generated tokens; OpenAI's default is 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Only `1` is supported by the reference server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_of: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StringOrList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// Number of top logprobs; accepted, not produced by the reference server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    // SGLang extensions (same names on completions and chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    /// Minimum generated tokens before EOS/stop may end the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f32>,
    /// Keep generating past EOS (benchmarks set it to get exactly `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_token_ids: Option<Vec<u32>>,
    /// Keep the matched stop string in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_stop_trim: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_special_tokens: Option<bool>,
    /// Request id chosen by the client (SGLang extension), usable with `/abort_request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_path: Option<serde_json::Value>,
}

/// A `usage` object: server-side token counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// `{"cached_tokens": N}`: prompt tokens served from the prefix cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

impl Usage {
    /// Usage with `total_tokens = prompt + completion` and the cached-token detail.
    pub fn new(prompt_tokens: u64, completion_tokens: u64, cached_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: Some(PromptTokensDetails { cached_tokens }),
        }
    }
}

/// `usage.prompt_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

/// `finish_reason` values of OpenAI choices.
pub mod finish_reason {
    /// EOS, a stop token or a stop string.
    pub const STOP: &str = "stop";
    /// `max_tokens` or the context length reached.
    pub const LENGTH: &str = "length";
    /// Aborted (SGLang extension).
    pub const ABORT: &str = "abort";
}

/// One choice of a non-streamed completion.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompletionChoice {
    pub index: u32,
    pub text: String,
    pub logprobs: Option<serde_json::Value>,
    /// `stop`, `length` or `abort`.
    pub finish_reason: Option<String>,
    /// SGLang extension: the stop token id or stop string that ended generation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_stop: Option<serde_json::Value>,
}

/// Response of a non-streamed `/v1/completions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompletionResponse {
    pub id: String,
    /// Always `text_completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    pub usage: Option<Usage>,
}

/// One `data:` chunk of a streamed `/v1/completions` (`object: text_completion`).
///
/// The final usage chunk (with `stream_options.include_usage`) has empty `choices`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompletionStreamResponse {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// `content` of a chat message: a string or an array of typed parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    /// `[{"type": "text", "text": ...}, {"type": "image_url", ...}]`.
    Parts(Vec<ContentPart>),
}

/// One part of an array `content`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    /// `text`, `image_url`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<serde_json::Value>,
}

/// One message of a chat request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message with plain text content.
    pub fn text(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Some(MessageContent::Text(content.into())),
            name: None,
            reasoning_content: None,
            tool_calls: None,
            tool_call_id: None,
        }
    }
}

/// Body of `POST /v1/chat/completions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Deprecated by OpenAI in favour of `max_completion_tokens`; both are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StringOrList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<serde_json::Value>,
    /// Continue the last (assistant) message instead of starting a new one (SGLang).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_final_message: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template_kwargs: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separate_reasoning: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_reasoning: Option<bool>,
    // SGLang extensions (same names on completions and chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    /// Minimum generated tokens before EOS/stop may end the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f32>,
    /// Keep generating past EOS (benchmarks set it to get exactly `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_token_ids: Option<Vec<u32>>,
    /// Keep the matched stop string in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_stop_trim: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_special_tokens: Option<bool>,
    /// Request id chosen by the client (SGLang extension), usable with `/abort_request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_path: Option<serde_json::Value>,
}

/// The assistant message of a non-streamed chat choice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatResponseMessage {
    pub role: String,
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<serde_json::Value>>,
}

/// One choice of a non-streamed chat completion.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatChoice {
    pub index: u32,
    pub message: ChatResponseMessage,
    pub logprobs: Option<serde_json::Value>,
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_stop: Option<serde_json::Value>,
}

/// Response of a non-streamed `/v1/chat/completions` (`object: chat.completion`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatCompletionResponse {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Option<Usage>,
}

/// `delta` of a streamed chat choice: the first chunk carries `role`, later ones `content`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<serde_json::Value>>,
}

/// One choice of a chat stream chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatStreamChoice {
    pub index: u32,
    pub delta: ChatDelta,
    pub logprobs: Option<serde_json::Value>,
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_stop: Option<serde_json::Value>,
}

/// One `data:` chunk of a streamed chat completion (`object: chat.completion.chunk`).
///
/// Order: a chunk with `delta.role`, content chunks, a chunk with `finish_reason`, then (with
/// `stream_options.include_usage`) a chunk with `usage` and empty `choices`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatCompletionStreamResponse {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatStreamChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One entry of `GET /v1/models`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelCard {
    pub id: String,
    /// Always `model`.
    pub object: String,
    pub created: u64,
    pub owned_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Context length (SGLang/vLLM extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u64>,
}

/// Response of `GET /v1/models` (`object: list`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelCard>,
}

/// Body of `POST /tokenize` (SGLang/vLLM).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenizeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A string or a batch of strings.
    pub prompt: StringOrList,
    /// Add BOS where the model expects it (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_special_tokens: Option<bool>,
}

/// Token ids of one prompt or of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(Vec<u32>),
    Batch(Vec<Vec<u32>>),
}

/// A count for one prompt or per prompt of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenCount {
    One(u64),
    Batch(Vec<u64>),
}

/// Response of `POST /tokenize`; the shapes follow the request (one or batch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenizeResponse {
    pub tokens: TokenIds,
    pub count: TokenCount,
    pub max_model_len: u64,
}

/// Body of `POST /detokenize`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub tokens: TokenIds,
}

/// Response of `POST /detokenize`; `text` is a list for a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeResponse {
    pub text: StringOrList,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completion_request_accepts_sglang_extras_and_ignores_unknown_fields() {
        let req: CompletionRequest = serde_json::from_value(json!({
            "model": "m", "prompt": "hi", "max_tokens": 8, "stream": true,
            "stream_options": {"include_usage": true}, "ignore_eos": true, "top_k": 5,
            "stop": "x", "best_of": 1, "some_future_field": 1
        }))
        .unwrap();
        assert_eq!(req.prompt, CompletionPrompt::Text("hi".into()));
        assert_eq!(req.ignore_eos, Some(true));
        assert_eq!(req.top_k, Some(5));
        assert_eq!(req.stop, Some(StringOrList::One("x".into())));
        assert!(req.stream_options.unwrap().include_usage);
    }

    #[test]
    fn prompt_forms() {
        let p = |v| serde_json::from_value::<CompletionPrompt>(v).unwrap();
        assert_eq!(p(json!([1, 2])), CompletionPrompt::Ids(vec![1, 2]));
        assert_eq!(p(json!(["a"])), CompletionPrompt::Texts(vec!["a".into()]));
        assert_eq!(
            p(json!([[1], [2]])),
            CompletionPrompt::IdsBatch(vec![vec![1], vec![2]])
        );
    }

    #[test]
    fn client_request_serializes_only_what_is_set() {
        let req = ChatCompletionRequest {
            messages: vec![ChatMessage::text("user", "hi")],
            model: Some("m".into()),
            max_completion_tokens: Some(4),
            stream: Some(true),
            ignore_eos: Some(true),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"messages": [{"role": "user", "content": "hi"}], "model": "m",
                   "max_completion_tokens": 4, "stream": true, "ignore_eos": true})
        );
    }

    #[test]
    fn usage_only_chunk_parses_with_empty_choices() {
        let c: ChatCompletionStreamResponse = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                      "prompt_tokens_details": {"cached_tokens": 1}}
        }))
        .unwrap();
        assert!(c.choices.is_empty());
        assert_eq!(c.usage.unwrap(), Usage::new(3, 2, 1));
    }
}
