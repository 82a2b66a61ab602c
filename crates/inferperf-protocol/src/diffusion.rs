//! SGLang diffusion server wire types (`sglang serve` for image/video models): the OpenAI-style
//! `/v1/images/generations` and `/v1/videos` bodies with SGLang's extensions, and the test-only
//! delay field of the inferperf reference server.
//!
//! Requests accept unknown keys (SGLang uses `extra="allow"`) and keep them in `extra`, so a
//! client can send fields this crate does not model and the server can decide what to refuse.

use serde::{Deserialize, Serialize};

/// Test-only: make denoising step `step` slower by `ms` milliseconds on the inferperf reference
/// server (field `inferperf_diffusion_test_delay`), to test regression detection end to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferperfDiffusionTestDelay {
    pub step: u64,
    pub ms: u64,
}

/// `POST /v1/images/generations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageGenerationsRequest {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Images per prompt (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// `"WxH"`, default `1024x1024`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `b64_json` (supported) or `url` (refused for generations, as in SGLang).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_inference_steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance_scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// Write a perf dump for this request on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf_dump_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferperf_diffusion_test_delay: Option<InferperfDiffusionTestDelay>,
    /// Any other key (SGLang's `extra="allow"`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One image of an [`ImageResponse`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b64_json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub revised_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
}

/// Response of `/v1/images/generations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub data: Vec<ImageData>,
    /// Read by SGLang's benchmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_time_s: Option<f64>,
}

/// `POST /v1/videos` (JSON form).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoGenerationsRequest {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Duration; `num_frames` defaults to `fps * seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_frames: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_inference_steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance_scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf_dump_path: Option<String>,
    /// Per-request torch-profiler equivalents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_profiled_timesteps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_all_stages: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferperf_diffusion_test_delay: Option<InferperfDiffusionTestDelay>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A video job (`/v1/videos` responses).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub model: String,
    /// `queued`, `completed`, `failed`, `deleted`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub progress: u32,
    #[serde(default)]
    pub created_at: u64,
    #[serde(default)]
    pub size: String,
    #[serde(default)]
    pub seconds: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<VideoError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_time_s: Option<f64>,
}

/// `error` of a failed video job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoError {
    pub message: String,
}

/// Parse an OpenAI `size` string, `"WxH"`.
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.trim().split_once(['x', 'X'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_are_kept_and_the_delay_parses() {
        let r: ImageGenerationsRequest = serde_json::from_value(json!({
            "prompt": "a cat", "size": "512x256", "true_cfg_scale": 4.0,
            "inferperf_diffusion_test_delay": {"step": 2, "ms": 50}
        }))
        .unwrap();
        assert_eq!(r.extra["true_cfg_scale"], 4.0);
        assert_eq!(
            r.inferperf_diffusion_test_delay,
            Some(InferperfDiffusionTestDelay { step: 2, ms: 50 })
        );
        assert_eq!(parse_size(r.size.as_deref().unwrap()), Some((512, 256)));
        assert_eq!(parse_size("12"), None);
        let body = serde_json::to_value(VideoGenerationsRequest {
            prompt: "p".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(body, json!({"prompt": "p"}));
    }
}
