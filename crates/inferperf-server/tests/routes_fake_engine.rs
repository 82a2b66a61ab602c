//! Every route of the server over the deterministic fake engine (exact outputs), on
//! 127.0.0.1 with an ephemeral port and a real HTTP client.

mod common;

use common::fake_engine::{expected_text, CONTEXT};
use common::*;
use inferperf_protocol::generate::GenerateResponse;
use inferperf_protocol::openai::{ChatCompletionResponse, CompletionResponse, ModelList};
use inferperf_protocol::server_info::{
    metric_names, sum_prometheus_metric, ModelInfoResponse, ServerInfo,
};
use serde_json::json;

#[tokio::test]
async fn info_routes_models_health_and_tokenizer() {
    let s = start_fake(fake_args()).await;
    let (status, body) = get(&s.http, &format!("{}/health", s.base)).await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, _) = get(&s.http, &format!("{}/health_generate", s.base)).await;
    assert_eq!(status, 200);

    let (status, body) = get(&s.http, &format!("{}/v1/models", s.base)).await;
    assert_eq!(status, 200);
    let models: ModelList = serde_json::from_str(&body).unwrap();
    assert_eq!(models.object, "list");
    assert_eq!(models.data.len(), 1);
    assert_eq!(models.data[0].id, "fake");
    assert_eq!(models.data[0].object, "model");
    assert_eq!(models.data[0].max_model_len, Some(CONTEXT as u64));
    let (status, _) = get(&s.http, &format!("{}/v1/models/fake", s.base)).await;
    assert_eq!(status, 200);
    let (status, body) = get(&s.http, &format!("{}/v1/models/other", s.base)).await;
    assert_error(status, &body, 404, &["other"]);

    for path in ["/server_info", "/get_server_info"] {
        let (status, body) = get(&s.http, &format!("{}{path}", s.base)).await;
        assert_eq!(status, 200, "{path}");
        let info: ServerInfo = serde_json::from_str(&body).unwrap();
        assert_eq!(info.model_path.as_deref(), Some("fake"));
        assert_eq!(info.internal_states.len(), 1);
        assert_eq!(info.internal_states[0].last_gen_throughput, Some(123.0));
        assert_eq!(info.max_total_num_tokens, Some(100_000));
        assert!(info.version.is_some());
        assert_eq!(
            info.extra["port"],
            json!(0),
            "server args are spread into the top level"
        );
        assert_eq!(info.extra["stream_interval"], json!(1));
        for key in ["page_size", "chunked_prefill_size", "random_seed"] {
            assert!(
                info.extra[key].is_u64(),
                "{key} is reported as the value in effect, not null"
            );
        }
        assert!(!body.contains("api_key"), "the API key is never reported");
    }
    for path in ["/model_info", "/get_model_info"] {
        let (status, body) = get(&s.http, &format!("{}{path}", s.base)).await;
        assert_eq!(status, 200, "{path}");
        let info: ModelInfoResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(info.model_path, "fake");
        assert!(info.is_generation);
        assert_eq!(
            info.architectures,
            Some(vec!["FakeForCausalLM".to_string()])
        );
    }

    let (status, body) = post_json(
        &s.http,
        &format!("{}/tokenize", s.base),
        &json!({"prompt": "hi"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body),
        json!({"tokens": [256, 104, 105], "count": 3, "max_model_len": CONTEXT})
    );
    let (_, body) = post_json(
        &s.http,
        &format!("{}/v1/tokenize", s.base),
        &json!({"prompt": ["a", "bc"], "add_special_tokens": false}),
    )
    .await;
    assert_eq!(json(&body)["tokens"], json!([[97], [98, 99]]));
    assert_eq!(json(&body)["count"], json!([1, 2]));
    let (status, body) = post_json(
        &s.http,
        &format!("{}/detokenize", s.base),
        &json!({"tokens": [256, 104, 105]}),
    )
    .await;
    assert_eq!((status, json(&body)), (200, json!({"text": "hi"})));

    for method in ["GET", "POST"] {
        let resp = s
            .http
            .request(method.parse().unwrap(), format!("{}/flush_cache", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp.text().await.unwrap().starts_with("Cache flushed."));
    }
    let (status, _) = post_json(
        &s.http,
        &format!("{}/abort_request", s.base),
        &json!({"rid": "nothing-running"}),
    )
    .await;
    assert_eq!(status, 200);

    let (status, body) = get(&s.http, &format!("{}/no/such/route", s.base)).await;
    assert_error(status, &body, 404, &["/no/such/route"]);
    let (status, body) = get(&s.http, &format!("{}/generate", s.base)).await;
    assert_error(status, &body, 405, &["/generate"]);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_count_prompt_and_generated_tokens() {
    let s = start_fake(fake_args()).await;
    let metrics = |http: reqwest::Client, base: String| async move {
        let (status, text) = get(&http, &format!("{base}/metrics")).await;
        assert_eq!(status, 200);
        text
    };
    let before = metrics(s.http.clone(), s.base.clone()).await;
    assert_eq!(
        sum_prometheus_metric(&before, metric_names::PROMPT_TOKENS_TOTAL),
        Some(0.0)
    );
    for name in [
        metric_names::GENERATION_TOKENS_TOTAL,
        metric_names::CACHED_TOKENS_TOTAL,
        metric_names::NUM_RUNNING_REQS,
        metric_names::NUM_QUEUE_REQS,
    ] {
        assert!(
            sum_prometheus_metric(&before, name).is_some(),
            "{name} missing:\n{before}"
        );
    }
    let (status, _) = post_json(
        &s.http,
        &format!("{}/generate", s.base),
        &json!({"input_ids": [1, 2, 3, 4], "sampling_params": {"max_new_tokens": 5}}),
    )
    .await;
    assert_eq!(status, 200);
    let after = metrics(s.http.clone(), s.base.clone()).await;
    assert_eq!(
        sum_prometheus_metric(&after, metric_names::PROMPT_TOKENS_TOTAL),
        Some(4.0)
    );
    assert_eq!(
        sum_prometheus_metric(&after, metric_names::GENERATION_TOKENS_TOTAL),
        Some(5.0)
    );
    assert_eq!(
        sum_prometheus_metric(&after, metric_names::NUM_REQUESTS_TOTAL),
        Some(1.0)
    );
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn completions_non_streamed_and_streamed_agree() {
    let s = start_fake(fake_args()).await;
    let url = format!("{}/v1/completions", s.base);
    let (status, body) = post_json(
        &s.http,
        &url,
        &json!({"model": "fake", "prompt": "Hello", "max_tokens": 7, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let resp: CompletionResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(resp.object, "text_completion");
    assert_eq!(resp.model, "fake");
    assert_eq!(resp.choices.len(), 1);
    assert_eq!(resp.choices[0].text, expected_text(7));
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("length"));
    let usage = resp.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (6, 7, 13)
    );
    assert_eq!(usage.prompt_tokens_details.unwrap().cached_tokens, 0);

    // Streamed, with usage: content chunks, a finish chunk, a usage chunk, [DONE].
    let (status, body) = post_json(
        &s.http,
        &url,
        &json!({"prompt": "Hello", "max_tokens": 7, "stream": true,
                "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chunks = sse_chunks(&body);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .map(|c| c["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(text, expected_text(7));
    for c in &chunks {
        assert_eq!(c["object"], "text_completion");
    }
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 7);
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 6);
    // Without include_usage there is no usage chunk and no chunk carries usage.
    let (_, body) = post_json(
        &s.http,
        &url,
        &json!({"prompt": "Hello", "max_tokens": 3, "stream": true}),
    )
    .await;
    let chunks = sse_chunks(&body);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "{body}");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );

    // Token-id prompts and batches: one choice per prompt, in order.
    let (status, body) = post_json(
        &s.http,
        &url,
        &json!({"prompt": [[1, 2], [3, 4, 5]], "max_tokens": 2, "echo": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let resp: CompletionResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(resp.choices.len(), 2);
    assert_eq!(resp.choices[1].index, 1);
    assert_eq!(resp.usage.unwrap().prompt_tokens, 5);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn stop_strings_map_to_finish_reason_stop_with_matched_stop() {
    let s = start_fake(fake_args()).await;
    let (status, body) = post_json(
        &s.http,
        &format!("{}/v1/completions", s.base),
        &json!({"prompt": "x", "max_tokens": 20, "stop": ["cd"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["matched_stop"], "cd");
    let (_, body) = post_json(
        &s.http,
        &format!("{}/generate", s.base),
        &json!({"text": "x", "sampling_params": {"max_new_tokens": 20, "stop": "cd"}}),
    )
    .await;
    assert_eq!(
        json(&body)["meta_info"]["finish_reason"],
        json!({"type": "stop", "matched": "cd"})
    );
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn chat_streams_role_content_finish_usage_done() {
    let s = start_fake(fake_args()).await;
    let url = format!("{}/v1/chat/completions", s.base);
    let messages = json!([{"role": "system", "content": "be brief"},
                          {"role": "user", "content": [{"type": "text", "text": "hi"}]}]);
    let (status, body) = post_json(
        &s.http,
        &url,
        &json!({"model": "fake", "messages": messages, "max_completion_tokens": 5,
                "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chunks = sse_chunks(&body);
    assert!(chunks.len() >= 4, "{body}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks[0]["choices"][0]["finish_reason"].is_null());
    let content: String = chunks[1..chunks.len() - 2]
        .iter()
        .map(|c| {
            assert!(c["choices"][0]["delta"].get("role").is_none());
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(content, expected_text(5));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    // "<|system|>be brief\n<|user|>hi\n<|assistant|>" is 19 + 11 + 13 = 43 bytes = 43 tokens (no BOS).
    assert_eq!(usage["usage"]["prompt_tokens"], 43);
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    assert_eq!(usage["usage"]["total_tokens"], 48);

    let (status, body) = post_json(
        &s.http,
        &url,
        &json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let resp: ChatCompletionResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.choices[0].message.role, "assistant");
    assert_eq!(resp.choices[0].message.content.as_deref(), Some("abcd"));
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("length"));
    assert_eq!(resp.usage.unwrap().completion_tokens, 4);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn generate_single_batch_and_streams() {
    let s = start_fake(fake_args()).await;
    let url = format!("{}/generate", s.base);
    let (status, body) = post_json(
        &s.http,
        &url,
        &json!({"text": "Hi", "sampling_params": {"max_new_tokens": 3, "temperature": 0},
                "rid": "r-1", "return_logprob": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let resp: GenerateResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(resp.text, "abc");
    assert_eq!(resp.output_ids, vec![97, 98, 99]);
    assert_eq!(resp.meta_info.id, "r-1");
    assert_eq!(resp.meta_info.prompt_tokens, 3);
    assert_eq!(resp.meta_info.completion_tokens, 3);
    let finish = resp.meta_info.finish_reason.unwrap();
    assert_eq!((finish.kind.as_str(), finish.length), ("length", Some(3)));
    assert!(resp.meta_info.e2e_latency.is_some());

    // Streamed: cumulative text, completion_tokens counting up, finish_reason only at the end.
    let (status, body) = post_json(
        &s.http,
        &url,
        &json!({"input_ids": [5, 6], "sampling_params": {"max_new_tokens": 4}, "stream": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chunks = sse_chunks(&body);
    let texts: Vec<&str> = chunks.iter().map(|c| c["text"].as_str().unwrap()).collect();
    assert_eq!(&texts[..4], &["a", "ab", "abc", "abcd"]);
    for (i, c) in chunks[..4].iter().enumerate() {
        assert_eq!(c["meta_info"]["completion_tokens"], i + 1);
        assert_eq!(c["meta_info"]["prompt_tokens"], 2);
        assert!(c["meta_info"]["finish_reason"].is_null());
        assert!(c.get("index").is_none());
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["text"], "abcd");
    assert_eq!(
        last["meta_info"]["finish_reason"],
        json!({"type": "length", "length": 4})
    );
    assert!(last["meta_info"]["e2e_latency"].is_number());
    assert_eq!(last["meta_info"]["cached_tokens"], 0);

    // --stream-interval per request: chunks of 2 tokens.
    let (_, body) = post_json(
        &s.http,
        &url,
        &json!({"input_ids": [5], "stream": true,
                "sampling_params": {"max_new_tokens": 4, "stream_interval": 2}}),
    )
    .await;
    let texts: Vec<String> = sse_chunks(&body)
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(&texts[..2], &["ab", "abcd"]);

    // Batch (bench_one_batch_server's shape): array answer / chunks tagged with `index`.
    let (status, body) = post_json(
        &s.http,
        &url,
        &json!({"input_ids": [[1, 2], [3]], "sampling_params": {"max_new_tokens": 2,
                "ignore_eos": true, "json_schema": null}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let batch: Vec<GenerateResponse> = serde_json::from_str(&body).unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[1].meta_info.prompt_tokens, 1);
    assert_ne!(batch[0].meta_info.id, batch[1].meta_info.id);
    let (_, body) = post_json(
        &s.http,
        &url,
        &json!({"input_ids": [[1, 2], [3]], "stream": true,
                "sampling_params": [{"max_new_tokens": 2}, {"max_new_tokens": 3}]}),
    )
    .await;
    let chunks = sse_chunks(&body);
    for (index, n) in [(0, 2), (1, 3)] {
        let mine: Vec<_> = chunks.iter().filter(|c| c["index"] == index).collect();
        let last = mine.last().unwrap();
        assert_eq!(last["meta_info"]["completion_tokens"], n);
        assert_eq!(last["text"], expected_text(n));
        assert_eq!(last["meta_info"]["finish_reason"]["type"], "length");
    }
    s.server.shutdown().await.unwrap();
}

/// A profile control that accepts every call and counts the starts it ran.
#[derive(Clone, Default)]
struct CountingProfiler {
    starts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl inferperf_server::routes::profile::ProfileControl for CountingProfiler {
    fn start<'a>(
        &'a self,
        _req: &'a inferperf_protocol::profile::ProfileReqInput,
    ) -> inferperf_server::routes::profile::ProfileCall<'a> {
        self.starts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
    fn stop(&self) -> inferperf_server::routes::profile::ProfileCall<'_> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn an_injected_profiler_is_served_behind_the_api_key() {
    let engine = common::fake_engine::FakeEngine::start();
    let profiler = CountingProfiler::default();
    let args = inferperf_server::ServerConfig {
        api_key: Some("k".into()),
        ..fake_args()
    };
    let owned = inferperf_server::OwnedEngine {
        parts: engine.parts(),
        join: None,
    };
    let server =
        inferperf_server::EmbeddedServer::start_with_profiler(args, owned, profiler.clone())
            .await
            .unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/start_profile", server.base_url());
    let resp = http.post(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        profiler.starts.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a refused call does not reach the profiler"
    );
    let resp = http.post(&url).bearer_auth("k").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "Start profiling.\n");
    assert_eq!(profiler.starts.load(std::sync::atomic::Ordering::SeqCst), 1);
    let resp = http
        .post(format!("{}/v1/models", server.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        405,
        "built-in routes are still there"
    );
    server.shutdown().await.unwrap();
}
