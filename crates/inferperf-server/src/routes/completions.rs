//! `POST /v1/completions`: text or token-id prompts (one or a batch, one choice each),
//! streamed as `text_completion` chunks or answered in one body.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::stream;
use inferperf_protocol::openai::{
    CompletionChoice, CompletionPrompt, CompletionRequest, CompletionResponse,
    CompletionStreamResponse, Usage,
};

use crate::api_error::ApiError;
use crate::convert::openai_finish_reason;
use crate::json::ApiJson;
use crate::openai_common::{check_model, reject_if, UsageSum};
use crate::openai_stream::{ChunkFormat, Finish, OpenAiStreamer};
use crate::prompt::{check_ids, decode, encode_text};
use crate::request::{collect_all, merge, submit, ActiveRequest};
use crate::request_id::{with_rid_header, RequestMeta};
use crate::sampling::{SamplingInput, COMPLETIONS};
use crate::sse::{data_frame, sse_response};
use crate::state::{unix_now, AppState};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/completions", post(completions))
}

async fn completions(
    State(state): State<Arc<AppState>>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let model = check_model(&state, req.model.as_deref())?;
    reject_if(
        req.best_of.is_some_and(|b| b > 1),
        "best_of",
        "only best_of=1 is supported",
    )?;
    reject_if(
        req.suffix.as_deref().is_some_and(|s| !s.is_empty()),
        "suffix",
        "insertion is not implemented",
    )?;

    let echo = req.echo.unwrap_or(false);
    let prompts: Vec<CompletionPrompt> = match req.prompt {
        CompletionPrompt::Texts(v) => v.into_iter().map(CompletionPrompt::Text).collect(),
        CompletionPrompt::IdsBatch(v) => v.into_iter().map(CompletionPrompt::Ids).collect(),
        one => vec![one],
    };
    if prompts.is_empty() {
        return Err(ApiError::invalid_param(
            "prompt",
            "the prompt list is empty",
        ));
    }

    let mut encoded = Vec::with_capacity(prompts.len());
    for prompt in prompts {
        let (text, ids) = match prompt {
            CompletionPrompt::Text(text) => {
                let ids = encode_text(&state, text.clone(), true).await?;
                (text, ids)
            }
            CompletionPrompt::Ids(ids) => {
                check_ids(state.tokenizer.as_ref(), &ids, "prompt")?;
                let text = if echo {
                    decode(&state, ids.clone(), false).await?
                } else {
                    String::new()
                };
                (text, ids)
            }
            CompletionPrompt::Texts(_) | CompletionPrompt::IdsBatch(_) => {
                return Err(ApiError::invalid_param(
                    "prompt",
                    "nested prompt lists are not supported",
                ))
            }
        };
        encoded.push((text, ids));
    }

    let sampling_input = SamplingInput {
        max_new_tokens: req.max_tokens,
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
    };
    let stream = req.stream.unwrap_or(false);
    let stream_interval = if stream {
        state.args.stream_interval as usize
    } else {
        usize::MAX
    };
    let batch = encoded.len() > 1;
    let base_rid = meta.rid(req.rid);

    // Validate every prompt before submitting any, so a bad one rejects the whole request.
    let mut jobs = Vec::with_capacity(encoded.len());
    for (i, (text, ids)) in encoded.into_iter().enumerate() {
        let sampling = sampling_input.build(&state, COMPLETIONS, ids.len(), false)?;
        let rid = if batch {
            format!("{base_rid}-{i}")
        } else {
            base_rid.clone()
        };
        jobs.push((rid, text, ids, sampling));
    }
    let mut requests: Vec<ActiveRequest> = Vec::with_capacity(jobs.len());
    let mut echoes = Vec::with_capacity(jobs.len());
    for (rid, text, ids, sampling) in jobs {
        requests.push(submit(
            &state,
            rid,
            ids,
            sampling,
            stream_interval,
            meta.arrival,
        )?);
        echoes.push(if echo { text } else { String::new() });
    }

    // SGLang answers with the request's rid as the OpenAI `id` (`meta_info.id`).
    let header = Header {
        id: base_rid.clone(),
        created: unix_now(),
        model,
    };
    if stream {
        let options = req.stream_options.unwrap_or_default();
        let prompt_tokens = requests.iter().map(|r| r.prompt_tokens as u64).sum();
        let mut pending = VecDeque::new();
        for (i, text) in echoes.into_iter().enumerate() {
            if !text.is_empty() {
                pending.push_back(header.chunk(i, text, None, None));
            }
        }
        let streamer =
            OpenAiStreamer::new(merge(requests), header, &options, prompt_tokens, pending);
        let frames = stream::unfold(streamer, |mut s| async move {
            let frame = s.next_frame().await?;
            Some((frame, s))
        });
        return Ok(with_rid_header(sse_response(frames), &base_rid));
    }

    let results = collect_all(requests).await;
    let mut usage = UsageSum::default();
    let mut choices = Vec::with_capacity(results.len());
    for (i, (result, echo_text)) in results.into_iter().zip(echoes).enumerate() {
        let (finish_reason, matched_stop) = match &result.finish {
            Some(info) => {
                usage.add(info);
                let (r, m) = openai_finish_reason(&info.reason);
                (Some(r), m)
            }
            None => (None, None),
        };
        choices.push(CompletionChoice {
            index: i as u32,
            text: echo_text + &result.text,
            logprobs: None,
            finish_reason,
            matched_stop,
        });
    }
    let response = Json(CompletionResponse {
        id: header.id,
        object: "text_completion".to_string(),
        created: header.created,
        model: header.model,
        choices,
        usage: Some(usage.usage()),
    })
    .into_response();
    Ok(with_rid_header(response, &base_rid))
}

/// Fields repeated in every chunk.
struct Header {
    id: String,
    created: u64,
    model: String,
}

impl Header {
    fn frame(&self, choices: Vec<CompletionChoice>, usage: Option<Usage>) -> Bytes {
        data_frame(&CompletionStreamResponse {
            id: self.id.clone(),
            object: "text_completion".to_string(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        })
    }

    fn chunk(
        &self,
        index: usize,
        text: String,
        finish: Option<Finish>,
        usage: Option<Usage>,
    ) -> Bytes {
        let (finish_reason, matched_stop) = match finish {
            Some((r, m)) => (Some(r), m),
            None => (None, None),
        };
        self.frame(
            vec![CompletionChoice {
                index: index as u32,
                text,
                logprobs: None,
                finish_reason,
                matched_stop,
            }],
            usage,
        )
    }
}

impl ChunkFormat for Header {
    fn content(&self, index: usize, text: String, usage: Option<Usage>) -> Bytes {
        self.chunk(index, text, None, usage)
    }

    fn finish(&self, index: usize, finish: Finish, usage: Option<Usage>) -> Bytes {
        self.chunk(index, String::new(), Some(finish), usage)
    }

    fn usage_only(&self, usage: Usage) -> Bytes {
        self.frame(Vec::new(), Some(usage))
    }
}
