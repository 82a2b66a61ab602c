//! `/server_info` (`/get_server_info`), `/model_info` (`/get_model_info`) and the Prometheus
//! metric names of `/metrics`: what benchmarks read from a server besides generations.
//!
//! SGLang's `/server_info` is `{**server_args, **scheduler_info, "internal_states": [...],
//! "version": ...}`; the fields benchmarks read are typed, everything else lands in `extra`.

use serde::{Deserialize, Serialize};

/// Response of `GET /server_info` and `GET /get_server_info`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenizer_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_model_name: Option<String>,
    /// KV capacity in tokens (scheduler info).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_total_num_tokens: Option<u64>,
    /// Longest accepted prompt (scheduler info).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_req_input_len: Option<u64>,
    /// One entry per data-parallel scheduler (one for the reference server).
    pub internal_states: Vec<InternalStateInfo>,
    /// Server version string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The remaining server arguments and scheduler fields.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One element of `internal_states`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InternalStateInfo {
    /// Decode tokens per second over the last logging interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_gen_throughput: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_running_reqs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_waiting_reqs: Option<u64>,
    /// Used KV slots / total KV slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_usage: Option<f64>,
    /// Forward steps run since start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_ct: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp_size: Option<u64>,
    /// Read by `bench_one_batch_server` to skip batch sizes the server cannot run at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_max_running_requests_per_dp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_usage: Option<MemoryUsage>,
    /// Speculative decoding acceptance length (absent without speculative decoding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_spec_accept_length: Option<f64>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `internal_states[*].memory_usage`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryUsage {
    /// KV capacity in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_capacity: Option<u64>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Response of `GET /model_info` and `GET /get_model_info`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelInfoResponse {
    pub model_path: String,
    pub tokenizer_path: Option<String>,
    pub is_generation: bool,
    pub preferred_sampling_params: Option<serde_json::Value>,
    pub weight_version: Option<String>,
    pub has_image_understanding: bool,
    pub has_audio_understanding: bool,
    pub model_type: Option<String>,
    pub architectures: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Prometheus metric names exported by `/metrics` (SGLang's spelling).
pub mod metric_names {
    /// Counter: prompt tokens of finished and running requests.
    pub const PROMPT_TOKENS_TOTAL: &str = "sglang:prompt_tokens_total";
    /// Counter: generated tokens.
    pub const GENERATION_TOKENS_TOTAL: &str = "sglang:generation_tokens_total";
    /// Counter: prompt tokens served from the prefix cache.
    pub const CACHED_TOKENS_TOTAL: &str = "sglang:cached_tokens_total";
    /// Counter: finished requests.
    pub const NUM_REQUESTS_TOTAL: &str = "sglang:num_requests_total";
    /// Gauge: running requests.
    pub const NUM_RUNNING_REQS: &str = "sglang:num_running_reqs";
    /// Gauge: queued requests.
    pub const NUM_QUEUE_REQS: &str = "sglang:num_queue_reqs";
    /// Gauge: KV usage fraction.
    pub const TOKEN_USAGE: &str = "sglang:token_usage";
    /// Gauge: decode throughput (tokens/s).
    pub const GEN_THROUGHPUT: &str = "sglang:gen_throughput";
}

/// Sum every sample of `metric` in a Prometheus text exposition (all label sets), as
/// `bench_one_batch_server` does for `sglang:cached_tokens_total{...}`. `None` when absent.
pub fn sum_prometheus_metric(text: &str, metric: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let value_part = if let Some(after_labels) = rest.strip_prefix('{') {
            match after_labels.split_once('}') {
                Some((_, v)) => v,
                None => continue,
            }
        } else if rest.starts_with(' ') {
            rest
        } else {
            continue; // a longer metric name sharing the prefix
        };
        if let Some(v) = value_part
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_info_keeps_unknown_fields() {
        let v = json!({"model_path": "m", "port": 30000, "max_total_num_tokens": 100,
            "internal_states": [{"last_gen_throughput": 1.5, "memory_usage": {"token_capacity": 10}, "x": 1}],
            "version": "0.1.0"});
        let info: ServerInfo = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(info.internal_states[0].last_gen_throughput, Some(1.5));
        assert_eq!(
            info.internal_states[0]
                .memory_usage
                .as_ref()
                .unwrap()
                .token_capacity,
            Some(10)
        );
        assert_eq!(info.extra["port"], json!(30000));
        assert_eq!(serde_json::to_value(&info).unwrap(), v);
    }

    #[test]
    fn sums_metric_over_label_sets() {
        let text =
            "# HELP sglang:cached_tokens_total x\n# TYPE sglang:cached_tokens_total counter\n\
            sglang:cached_tokens_total{model_name=\"a\"} 3\n\
            sglang:cached_tokens_total{model_name=\"b\"} 4.5\n\
            sglang:cached_tokens_total_other 100\n\
            sglang:prompt_tokens_total 7\n";
        assert_eq!(
            sum_prometheus_metric(text, metric_names::CACHED_TOKENS_TOTAL),
            Some(7.5)
        );
        assert_eq!(
            sum_prometheus_metric(text, metric_names::PROMPT_TOKENS_TOTAL),
            Some(7.0)
        );
        assert_eq!(sum_prometheus_metric(text, "sglang:nope"), None);
    }
}
