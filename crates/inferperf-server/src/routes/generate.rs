//! `POST /generate` (SGLang native): `text` or `input_ids`, one prompt or a batch, with
//! `sampling_params`; streamed chunks carry the cumulative text and `meta_info`, as SGLang
//! sends them by default.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::stream::{self, StreamExt};
use inferperf_engine::api::{FinishInfo, GenerateEvent};
use inferperf_protocol::generate::{
    GenerateReqInput, GenerateResponse, GenerateSamplingParams, InputIds, MetaInfo,
};
use inferperf_protocol::OneOrBatch;

use crate::api_error::ApiError;
use crate::convert::generate_finish_reason;
use crate::json::ApiJson;
use crate::prompt::{check_ids, encode_text};
use crate::request::{collect_all, merge, new_rid, submit, Collected, IndexedEvents};
use crate::request_id::{with_rid_header, RequestMeta};
use crate::sampling::{SamplingInput, GENERATE};
use crate::sse::{data_frame, done_frame, sse_response};
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/generate", post(generate))
}

async fn generate(
    State(state): State<Arc<AppState>>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<GenerateReqInput>,
) -> Result<Response, ApiError> {
    // Prompts, in batch order, as token ids.
    let (prompts, batch) = match (req.text, req.input_ids) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Either text or input_ids should be provided, not both.",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Either text or input_ids should be provided.",
            ))
        }
        (Some(OneOrBatch::One(text)), None) => {
            (vec![encode_text(&state, text, true).await?], false)
        }
        (Some(OneOrBatch::Batch(texts)), None) => {
            let mut ids = Vec::with_capacity(texts.len());
            for text in texts {
                ids.push(encode_text(&state, text, true).await?);
            }
            (ids, true)
        }
        (None, Some(InputIds::One(ids))) => {
            check_ids(state.tokenizer.as_ref(), &ids, "input_ids")?;
            (vec![ids], false)
        }
        (None, Some(InputIds::Batch(batch))) => {
            for ids in &batch {
                check_ids(state.tokenizer.as_ref(), ids, "input_ids")?;
            }
            (batch, true)
        }
    };
    if prompts.is_empty() {
        return Err(ApiError::bad_request("the batch of prompts is empty"));
    }
    let n = prompts.len();

    let params: Vec<GenerateSamplingParams> = match req.sampling_params {
        None => vec![GenerateSamplingParams::default(); n],
        Some(OneOrBatch::One(p)) => vec![p; n],
        Some(OneOrBatch::Batch(list)) if list.len() == n => list,
        Some(OneOrBatch::Batch(list)) => {
            return Err(ApiError::invalid_param(
                "sampling_params",
                format!(
                    "sampling_params has {} entries but the request has {n} prompts",
                    list.len()
                ),
            ))
        }
    };
    // The body's rid wins; else the X-Request-Id header (suffixed `-i` in a batch); else new.
    let rids: Vec<String> = match req.rid {
        None => match (&meta.header_rid, batch) {
            (Some(h), false) => vec![h.clone()],
            (Some(h), true) => (0..n).map(|i| format!("{h}-{i}")).collect(),
            (None, _) => (0..n).map(|_| new_rid()).collect(),
        },
        Some(OneOrBatch::One(rid)) if !batch => vec![rid],
        Some(OneOrBatch::Batch(list)) if list.len() == n => list,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "rid",
                format!("rid must be one string for one prompt, or a list of {n} strings for a batch of {n}"),
            ))
        }
    };

    let stream = req.stream.unwrap_or(false);
    let mut jobs = Vec::with_capacity(n);
    for ((ids, p), rid) in prompts.into_iter().zip(params).zip(rids) {
        for (field, value) in [
            ("json_schema", &p.json_schema),
            ("regex", &p.regex),
            ("ebnf", &p.ebnf),
        ] {
            if value.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(ApiError::invalid_param(
                    &format!("sampling_params.{field}"),
                    format!(
                        "`{field}` (constrained decoding) is not supported by the reference server"
                    ),
                ));
            }
        }
        let stream_interval = if stream {
            p.stream_interval
                .unwrap_or(state.args.stream_interval)
                .max(1) as usize
        } else {
            usize::MAX
        };
        let sampling = SamplingInput {
            max_new_tokens: p.max_new_tokens,
            min_new_tokens: p.min_new_tokens,
            temperature: p.temperature,
            top_p: p.top_p,
            top_k: p.top_k,
            min_p: p.min_p,
            stop: p.stop,
            stop_token_ids: p.stop_token_ids,
            ignore_eos: p.ignore_eos,
            skip_special_tokens: p.skip_special_tokens,
            no_stop_trim: p.no_stop_trim,
            seed: p.seed,
            n: p.n,
            presence_penalty: p.presence_penalty,
            frequency_penalty: p.frequency_penalty,
            repetition_penalty: p.repetition_penalty,
        }
        .build(&state, GENERATE, ids.len(), true)?;
        jobs.push((rid, ids, sampling, stream_interval));
    }
    let mut requests = Vec::with_capacity(n);
    for (rid, ids, sampling, stream_interval) in jobs {
        requests.push(submit(
            &state,
            rid,
            ids,
            sampling,
            stream_interval,
            meta.arrival,
        )?);
    }
    // The response's X-Request-Id: the one rid, or the header's for a batch (each element
    // carries its own in `meta_info.id`).
    let header_rid = match (&meta.header_rid, requests.as_slice()) {
        (_, [one]) if !batch => one.rid.clone(),
        (Some(h), _) => h.clone(),
        (None, reqs) => reqs
            .iter()
            .map(|r| r.rid.as_str())
            .collect::<Vec<_>>()
            .join(","),
    };
    let progress: Vec<Progress> = requests
        .iter()
        .map(|r| Progress::new(r.rid.clone(), r.prompt_tokens))
        .collect();

    if stream {
        let streamer = GenerateStreamer {
            events: merge(requests),
            progress,
            batch,
            pending: VecDeque::new(),
            done: false,
        };
        let frames = stream::unfold(streamer, |mut s| async move {
            let frame = s.next_frame().await?;
            Some((frame, s))
        });
        return Ok(with_rid_header(sse_response(frames), &header_rid));
    }

    let results = collect_all(requests).await;
    let mut responses: Vec<GenerateResponse> = progress
        .into_iter()
        .zip(results)
        .enumerate()
        .map(
            |(
                i,
                (
                    mut p,
                    Collected {
                        text,
                        output_ids,
                        finish,
                    },
                ),
            )| {
                p.text = text;
                p.output_ids = output_ids;
                p.response(finish.as_ref(), batch.then_some(i))
            },
        )
        .collect();
    let response = if batch {
        Json(responses).into_response()
    } else {
        Json(responses.pop().unwrap_or_default()).into_response()
    };
    Ok(with_rid_header(response, &header_rid))
}

/// Cumulative output of one request of the batch.
struct Progress {
    rid: String,
    prompt_tokens: usize,
    text: String,
    output_ids: Vec<u32>,
    /// Prompt tokens served from the prefix cache, as of the latest chunk.
    cached_tokens: usize,
}

impl Progress {
    fn new(rid: String, prompt_tokens: usize) -> Self {
        Self {
            rid,
            prompt_tokens,
            text: String::new(),
            output_ids: Vec::new(),
            cached_tokens: 0,
        }
    }

    /// The response object for the output so far (`finish` set on the last one).
    fn response(&self, finish: Option<&FinishInfo>, index: Option<usize>) -> GenerateResponse {
        GenerateResponse {
            text: self.text.clone(),
            output_ids: self.output_ids.clone(),
            meta_info: MetaInfo {
                id: self.rid.clone(),
                finish_reason: finish.map(|f| generate_finish_reason(&f.reason)),
                prompt_tokens: finish.map_or(self.prompt_tokens, |f| f.prompt_tokens) as u64,
                completion_tokens: finish.map_or(self.output_ids.len(), |f| f.completion_tokens)
                    as u64,
                cached_tokens: finish.map_or(self.cached_tokens, |f| f.cached_tokens) as u64,
                e2e_latency: finish.map(|f| f.e2e_latency),
                extra: Default::default(),
            },
            index: index.map(|i| i as u64),
        }
    }
}

/// Turns engine events into cumulative `/generate` chunks, then `[DONE]`.
struct GenerateStreamer {
    events: IndexedEvents,
    progress: Vec<Progress>,
    batch: bool,
    pending: VecDeque<Bytes>,
    done: bool,
}

impl GenerateStreamer {
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.done {
                return None;
            }
            let index = |i: usize| self.batch.then_some(i);
            match self.events.next().await {
                Some((
                    i,
                    GenerateEvent::Tokens {
                        token_ids,
                        text,
                        cached_tokens,
                    },
                )) => {
                    let Some(p) = self.progress.get_mut(i) else {
                        continue;
                    };
                    p.cached_tokens = cached_tokens;
                    p.text.push_str(&text);
                    p.output_ids.extend(token_ids);
                    let frame = data_frame(&p.response(None, index(i)));
                    self.pending.push_back(frame);
                }
                Some((i, GenerateEvent::Finished(info))) => {
                    let Some(p) = self.progress.get(i) else {
                        continue;
                    };
                    let frame = data_frame(&p.response(Some(&info), index(i)));
                    self.pending.push_back(frame);
                }
                None => {
                    self.pending.push_back(done_frame());
                    self.done = true;
                }
            }
        }
    }
}
