//! Assemble the JSONL record: SGLang's keys first (same names, order and meaning), then ours
//! (failures, completeness, both ITL conventions, queue/CO-aware latency, goodput, validity and
//! the metric conventions), then the per-request arrays with `--output-details`.

use serde_json::{json, Value};

use crate::jsonl::{Field, OrderedRecord};
use crate::metrics::BenchmarkMetrics;
use crate::record::{ns_to_s, RequestRecord};
use crate::stats::Summary;
use crate::validity::Validity;

/// Run facts that are not metrics.
pub struct RecordContext<'a> {
    pub tag: Option<&'a str>,
    pub backend: &'a str,
    pub dataset_name: &'a str,
    /// `None` for a trace-driven run ("trace").
    pub request_rate: Option<f64>,
    pub burstiness: f64,
    pub max_concurrency: Option<usize>,
    pub sharegpt_output_len: Option<usize>,
    pub random_input_len: usize,
    pub random_output_len: usize,
    pub random_range_ratio: f64,
    pub server_info: Option<Value>,
    pub duration_s: f64,
    pub accept_length: Option<f64>,
    pub model_id: &'a str,
    pub num_prompts: usize,
    pub incomplete: bool,
    pub abort_reason: Option<&'a str>,
    /// Why `--flush-cache` could not flush (the server has no flush route), if it could not.
    pub flush_cache_skipped: Option<&'a str>,
    pub output_details: bool,
    pub cache_report: bool,
}

fn put_summary(r: &mut OrderedRecord, name: &str, s: &Summary, with_max: bool) {
    r.put(&format!("mean_{name}_ms"), s.mean);
    r.put(&format!("median_{name}_ms"), s.median);
    r.put(&format!("std_{name}_ms"), s.std);
    r.put(&format!("p90_{name}_ms"), s.p90);
    r.put(&format!("p95_{name}_ms"), s.p95);
    r.put(&format!("p99_{name}_ms"), s.p99);
    if with_max {
        r.put(&format!("max_{name}_ms"), s.max);
    }
}

/// The whole record, in order.
pub fn build(
    c: &RecordContext<'_>,
    m: &BenchmarkMetrics,
    v: &Validity,
    records: &[RequestRecord],
) -> OrderedRecord {
    let mut r = OrderedRecord::default();
    r.put("tag", json!(c.tag));
    r.put("backend", json!(c.backend));
    r.put("dataset_name", json!(c.dataset_name));
    match c.request_rate {
        Some(rate) => r.put("request_rate", rate),
        None => r.put("request_rate", json!("trace")),
    }
    r.put("max_concurrency", json!(c.max_concurrency));
    r.put("sharegpt_output_len", json!(c.sharegpt_output_len));
    r.put("random_input_len", json!(c.random_input_len));
    r.put("random_output_len", json!(c.random_output_len));
    r.put("random_range_ratio", c.random_range_ratio);
    r.put("server_info", c.server_info.clone().unwrap_or(Value::Null));
    r.put("duration", c.duration_s);
    r.put("completed", json!(m.completed));
    r.put("total_input_tokens", json!(m.total_input));
    r.put("total_input_text_tokens", json!(m.total_input));
    r.put("total_input_vision_tokens", json!(0));
    r.put("total_output_tokens", json!(m.total_output));
    r.put(
        "total_output_tokens_retokenized",
        json!(m.total_output_retokenized),
    );
    r.put("request_throughput", m.request_throughput);
    r.put("input_throughput", m.input_throughput);
    r.put("output_throughput", m.output_throughput);
    r.put("total_throughput", m.total_throughput);
    put_summary(&mut r, "e2e_latency", &m.e2e_latency_ms, false);
    put_summary(&mut r, "ttft", &m.ttft_ms, false);
    put_summary(&mut r, "tpot", &m.tpot_ms, false);
    put_summary(&mut r, "itl", &m.itl_ms, false);
    r.put("concurrency", m.concurrency);
    r.put("accept_length", json!(c.accept_length));
    r.put("max_output_tokens_per_s", m.max_output_tokens_per_s);
    r.put("max_concurrent_requests", json!(m.max_concurrent_requests));
    if c.cache_report {
        let rate = (crate::metrics::cache_hit_rate_pct(m) * 100.0).round() / 100.0;
        r.put(
            "cache_report",
            json!({
                "total_prompt_tokens": m.extra.cache_total_prompt_tokens,
                "total_cached_tokens": m.extra.cache_total_cached_tokens,
                "cache_hit_rate_pct": rate,
                "device_cached_tokens": null,
                "host_cached_tokens": null,
                "storage_cached_tokens": null,
                "storage_backend": null,
            }),
        );
    }

    // Ours, after SGLang's keys.
    let x = &m.extra;
    r.put("tool", json!("inferperf"));
    r.put("model_id", json!(c.model_id));
    r.put("num_prompts", json!(c.num_prompts));
    r.put("burstiness", c.burstiness);
    r.put("failed", json!(m.failed));
    r.put("incomplete", json!(c.incomplete));
    r.put("abort_reason", json!(c.abort_reason));
    if let Some(why) = c.flush_cache_skipped {
        r.put("flush_cache_skipped", json!(why));
    }
    r.put("errors_by_kind", json!(x.errors_by_kind));
    r.put("max_itl_ms", m.itl_ms.max);
    r.put(
        "output_throughput_retokenized",
        m.output_throughput_retokenized,
    );
    r.put(
        "total_throughput_retokenized",
        m.total_throughput_retokenized,
    );
    r.put("request_goodput", json!(x.request_goodput));
    put_summary(&mut r, "inter_chunk", &x.inter_chunk_ms, true);
    put_summary(
        &mut r,
        "itl_per_request_mean",
        &x.itl_per_request_mean_ms,
        false,
    );
    r.put("tokens_per_chunk", x.tokens_per_chunk);
    put_summary(&mut r, "client_queue_time", &x.client_queue_ms, false);
    put_summary(
        &mut r,
        "e2el_including_client_queue",
        &x.e2e_from_schedule_ms,
        false,
    );
    r.put(
        "error_adjusted_p50_e2e_latency_ms",
        x.error_adjusted_p50_e2e_ms,
    );
    r.put(
        "error_adjusted_p90_e2e_latency_ms",
        x.error_adjusted_p90_e2e_ms,
    );
    r.put(
        "error_adjusted_p99_e2e_latency_ms",
        x.error_adjusted_p99_e2e_ms,
    );
    r.put("error_adjusted_p99_ttft_ms", x.error_adjusted_p99_ttft_ms);
    for (k, val) in &x.selected_percentiles {
        r.put(k, *val);
    }
    r.put(
        "input_len_sent",
        json!({"min": x.input_len_min, "mean": x.input_len_mean, "max": x.input_len_max,
               "server_mismatches": x.input_len_mismatches}),
    );
    let mut vb = OrderedRecord::default();
    vb.put("verdict", json!(v.verdict));
    vb.put("reasons", json!(v.reasons));
    vb.put("pacing_lag_p50_ms", v.pacing_lag_p50_ms);
    vb.put("pacing_lag_p99_ms", v.pacing_lag_p99_ms);
    vb.put("pacing_lag_max_ms", v.pacing_lag_max_ms);
    vb.put("late_arrivals", json!(v.late_arrivals));
    vb.put("dropped_arrivals", json!(v.dropped_arrivals));
    vb.put("not_started", json!(v.not_started));
    vb.put("runtime_lag_p99_ms", v.runtime_lag_p99_ms);
    vb.put("client_cpu_s", v.client_cpu_s);
    vb.put("client_cpu_utilization", v.client_cpu_utilization);
    vb.put("client_threads", json!(v.client_threads));
    vb.put("process_cpu_s", v.process_cpu_s);
    r.put("validity", Field::Object(vb));
    r.put(
        "conventions",
        json!({
            "ttft": "send -> first chunk with non-empty generated text (role-only chunks do not count)",
            "chunk_time": "kernel receive time of the packet that completed the read (Linux SO_TIMESTAMPNS), else the time the client read it",
            "e2e_latency": "send -> last stream line, [DONE] included (SGLang)",
            "itl": "SGLang/vLLM: pooled gaps between content chunks; native /generate splits a gap evenly over the chunk's new tokens",
            "inter_chunk": "raw gaps between content chunks (AIPerf ICL)",
            "tpot": "per request (latency - ttft)/(output_tokens - 1) (= AIPerf/GuideLLM ITL)",
            "itl_per_request_mean": "per request (last chunk - first chunk)/(output_tokens - 1)",
            "output_tokens": "server usage/meta_info completion_tokens, else the requested length",
            "duration": "first release -> last response line (excludes /server_info and warmup)",
            "client_queue_time": "scheduled arrival -> request written",
            "e2el_including_client_queue": "scheduled arrival -> last stream line",
        }),
    );
    if c.output_details && c.cache_report {
        r.put(
            "cached_tokens",
            json!(records
                .iter()
                .map(|x| x.cached_tokens.unwrap_or(0))
                .collect::<Vec<_>>()),
        );
    }
    if c.output_details {
        let ok = |rec: &RequestRecord| rec.success();
        r.put(
            "input_lens",
            json!(records
                .iter()
                .map(|x| x.server_prompt_len.unwrap_or(x.prompt_len))
                .collect::<Vec<_>>()),
        );
        r.put(
            "output_lens",
            json!(records
                .iter()
                .map(|x| if ok(x) { x.output_len } else { 0 })
                .collect::<Vec<_>>()),
        );
        r.put(
            "ttfts",
            json!(records
                .iter()
                .map(|x| if ok(x) { x.ttft_s() } else { 0.0 })
                .collect::<Vec<_>>()),
        );
        r.put(
            "itls",
            json!(records.iter().map(|x| x.sglang_itl_s()).collect::<Vec<_>>()),
        );
        r.put(
            "generated_texts",
            json!(records
                .iter()
                .map(|x| x.generated_text.as_str())
                .collect::<Vec<_>>()),
        );
        r.put(
            "errors",
            json!(records
                .iter()
                .map(|x| x
                    .error
                    .as_ref()
                    .map(|e| format!("{:?}: {}", e.kind, e.message))
                    .unwrap_or_default())
                .collect::<Vec<_>>()),
        );
        r.put(
            "start_times",
            json!(records
                .iter()
                .map(|x| ns_to_s(x.sent_ns))
                .collect::<Vec<_>>()),
        );
        r.put(
            "scheduled_times",
            json!(records
                .iter()
                .map(|x| ns_to_s(x.scheduled_ns))
                .collect::<Vec<_>>()),
        );
        r.put(
            "queue_times",
            json!(records
                .iter()
                .map(|x| x.client_queue_s())
                .collect::<Vec<_>>()),
        );
        r.put(
            "latencies",
            json!(records.iter().map(|x| x.latency_s()).collect::<Vec<_>>()),
        );
    }
    r
}
