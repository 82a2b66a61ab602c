//! `POST /v1/chat/completions`: messages rendered with the model's chat template, one
//! choice, streamed as `chat.completion.chunk`s (role chunk, content deltas, finish chunk,
//! optional usage chunk, `[DONE]`) or answered in one body.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::stream;
use inferperf_protocol::openai::{
    ChatChoice, ChatCompletionRequest, ChatCompletionResponse, ChatCompletionStreamResponse,
    ChatDelta, ChatMessage, ChatResponseMessage, ChatStreamChoice, MessageContent, Usage,
};

use crate::api_error::ApiError;
use crate::convert::openai_finish_reason;
use crate::json::ApiJson;
use crate::openai_common::{check_model, reject_if, UsageSum};
use crate::openai_stream::{ChunkFormat, Finish, OpenAiStreamer};
use crate::prompt::encode_chat;
use crate::request::{collect_all, merge, submit};
use crate::request_id::{with_rid_header, RequestMeta};
use crate::sampling::{self, SamplingInput};
use crate::sse::{data_frame, sse_response};
use crate::state::{unix_now, AppState};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/chat/completions", post(chat_completions))
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let model = check_model(&state, req.model.as_deref())?;
    if req.messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` is empty: at least one message is required",
        ));
    }
    reject_if(
        req.tools.as_ref().is_some_and(|t| !t.is_empty()),
        "tools",
        "tool calling is not implemented",
    )?;
    reject_if(
        req.response_format
            .as_ref()
            .and_then(|f| f.get("type"))
            .and_then(|t| t.as_str())
            .is_some_and(|t| t != "text"),
        "response_format",
        "constrained (JSON) decoding is not implemented",
    )?;

    let messages = text_only_messages(&req.messages)?;
    let continue_final = req.continue_final_message.unwrap_or(false)
        && req.messages.last().is_some_and(|m| m.role == "assistant");
    let (_prompt, input_ids) = encode_chat(&state, messages, !continue_final).await?;

    let (max_new_tokens, max_field) = match (req.max_completion_tokens, req.max_tokens) {
        (Some(m), _) => (Some(m), "max_completion_tokens"),
        (None, Some(m)) => (Some(m), "max_tokens"),
        (None, None) => (None, "max_completion_tokens"),
    };
    let sampling = SamplingInput {
        max_new_tokens,
        min_new_tokens: req.min_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        min_p: req.min_p,
        stop: req.stop,
        stop_token_ids: req.stop_token_ids,
        ignore_eos: req.ignore_eos,
        skip_special_tokens: req.skip_special_tokens,
        no_stop_trim: req.no_stop_trim,
        seed: req.seed,
        n: req.n,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        repetition_penalty: req.repetition_penalty,
    }
    .build(&state, sampling::chat(max_field), input_ids.len(), false)?;

    let stream = req.stream.unwrap_or(false);
    let stream_interval = if stream {
        state.args.stream_interval as usize
    } else {
        usize::MAX
    };
    let rid = meta.rid(req.rid);
    let request = submit(
        &state,
        rid.clone(),
        input_ids,
        sampling,
        stream_interval,
        meta.arrival,
    )?;
    // SGLang answers with the request's rid as the OpenAI `id` (`meta_info.id`).
    let header = Header {
        id: rid.clone(),
        created: unix_now(),
        model,
    };

    if stream {
        let options = req.stream_options.unwrap_or_default();
        let prompt_tokens = request.prompt_tokens as u64;
        let mut pending = VecDeque::new();
        // First chunk: the role, with empty content (what OpenAI and SGLang send).
        pending.push_back(header.chunk(
            ChatDelta {
                role: Some("assistant".to_string()),
                content: Some(String::new()),
                ..Default::default()
            },
            None,
            None,
        ));
        let streamer = OpenAiStreamer::new(
            merge(vec![request]),
            header,
            &options,
            prompt_tokens,
            pending,
        );
        let frames = stream::unfold(streamer, |mut s| async move {
            let frame = s.next_frame().await?;
            Some((frame, s))
        });
        return Ok(with_rid_header(sse_response(frames), &rid));
    }

    let mut results = collect_all(vec![request]).await;
    let result = results.pop().unwrap_or_default();
    let mut usage = UsageSum::default();
    let (finish_reason, matched_stop) = match &result.finish {
        Some(info) => {
            usage.add(info);
            let (r, m) = openai_finish_reason(&info.reason);
            (Some(r), m)
        }
        None => (None, None),
    };
    let response = Json(ChatCompletionResponse {
        id: header.id,
        object: "chat.completion".to_string(),
        created: header.created,
        model: header.model,
        choices: vec![ChatChoice {
            index: 0,
            message: ChatResponseMessage {
                role: "assistant".to_string(),
                content: Some(result.text),
                reasoning_content: None,
                tool_calls: None,
            },
            logprobs: None,
            finish_reason,
            matched_stop,
        }],
        usage: Some(usage.usage()),
    })
    .into_response();
    Ok(with_rid_header(response, &rid))
}

/// The messages as the chat template sees them: array `content` of text parts is joined into
/// one string (templates of text models expect strings); non-text parts are rejected.
fn text_only_messages(messages: &[ChatMessage]) -> Result<serde_json::Value, ApiError> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let mut m = message.clone();
        if let Some(MessageContent::Parts(parts)) = &message.content {
            let mut text = Vec::with_capacity(parts.len());
            for part in parts {
                match (part.kind.as_str(), &part.text) {
                    ("text", Some(t)) => text.push(t.as_str()),
                    ("text", None) => {
                        return Err(ApiError::invalid_param(
                            &format!("messages[{i}].content"),
                            "a text content part has no `text`",
                        ))
                    }
                    (other, _) => {
                        return Err(ApiError::invalid_param(
                            &format!("messages[{i}].content"),
                            format!("content parts of type `{other}` are not supported: the reference model is text-only"),
                        ))
                    }
                }
            }
            m.content = Some(MessageContent::Text(text.join("\n")));
        }
        out.push(m);
    }
    serde_json::to_value(out)
        .map_err(|e| ApiError::invalid_param("messages", format!("invalid messages: {e}")))
}

/// Fields repeated in every chunk.
struct Header {
    id: String,
    created: u64,
    model: String,
}

impl Header {
    fn chunk(&self, delta: ChatDelta, finish: Option<Finish>, usage: Option<Usage>) -> Bytes {
        let (finish_reason, matched_stop) = match finish {
            Some((r, m)) => (Some(r), m),
            None => (None, None),
        };
        self.frame(
            vec![ChatStreamChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
                matched_stop,
            }],
            usage,
        )
    }

    fn frame(&self, choices: Vec<ChatStreamChoice>, usage: Option<Usage>) -> Bytes {
        data_frame(&ChatCompletionStreamResponse {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_string(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        })
    }
}

/// Chat has one choice: every chunk is choice 0.
impl ChunkFormat for Header {
    fn content(&self, _index: usize, text: String, usage: Option<Usage>) -> Bytes {
        let delta = ChatDelta {
            content: Some(text),
            ..Default::default()
        };
        self.chunk(delta, None, usage)
    }

    fn finish(&self, _index: usize, finish: Finish, usage: Option<Usage>) -> Bytes {
        self.chunk(ChatDelta::default(), Some(finish), usage)
    }

    fn usage_only(&self, usage: Usage) -> Bytes {
        self.frame(Vec::new(), Some(usage))
    }
}
