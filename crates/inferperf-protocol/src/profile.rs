//! SGLang `ProfileReqInput`: the body of `/start_profile`.
//!
//! One definition for both sides: the server parses it (tolerantly, like SGLang's FastAPI layer)
//! and the clients (`inferperf profile`, `bench serving --profile`) build it.
//!
//! Tolerance rules, matching what SGLang accepts on the wire:
//! - `start_step` / `num_steps` may be JSON integers, integral floats (`5.0`) or numeric strings
//!   (`"5"`, which `python -m sglang.profiler` and `bench_serving` send);
//! - `null` is accepted for every field (booleans then take their default, `false`);
//! - unknown fields (`rid`, `http_worker_ipc`, `shape_discovery`, ... from newer SGLang versions)
//!   are ignored.
//!
//! Field *values* (activity names, stage names) are validated by the profiler, not here, so that
//! its errors can name the offending value.

use serde::{Deserialize, Deserializer, Serialize};

/// Body of `POST /start_profile` (SGLang `io_struct.ProfileReqInput`). Every field is optional;
/// an absent body means all defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileReqInput {
    /// Directory for the trace files; `None` means the server's `SGLANG_TORCH_PROFILER_DIR`,
    /// else `/tmp` (`~` is expanded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_dir: Option<String>,
    /// Absolute forward-step number at which the window opens (inclusive).
    #[serde(
        deserialize_with = "lenient_step",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_step: Option<u64>,
    /// Number of forward steps to capture; the window then closes by itself. `None` means
    /// "until `/stop_profile`".
    #[serde(
        deserialize_with = "lenient_step",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_steps: Option<u64>,
    /// `CPU`, `GPU`, `MEM`, `CUDA_PROFILER`, `RPD` (`XPU` in the newest SGLang). `None` means
    /// the server's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activities: Option<Vec<String>>,
    /// Capture prefill (EXTEND) and decode batches in separate windows and files.
    #[serde(deserialize_with = "bool_or_null")]
    pub profile_by_stage: bool,
    /// With `profile_by_stage`: which stages to capture (`prefill`, `decode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_stages: Option<Vec<String>>,
    /// Record the source location of each span (`None` means the server default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_stack: Option<bool>,
    /// Record input shapes (per-module spans with their shapes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_shapes: Option<bool>,
    /// Merge the traces of all ranks into `merged-{profile_id}.trace.json.gz`.
    #[serde(deserialize_with = "bool_or_null")]
    pub merge_profiles: bool,
    /// Prefix of the trace file names (`{prefix}-{profile_id}-TP-...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_prefix: Option<String>,
    /// Profile id chosen by the caller (newer SGLang sets it in the front end); `None` means the
    /// server picks `str(time.time())`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
    /// Fold the roofline aggregates (`c_sq`, `g_sk`, ...) into the `step[...]` span names
    /// (newest SGLang field). `None` means the server default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roofline_annotations: Option<bool>,
}

/// Accepts `null`, a non-negative integer, an integral float, or a string holding one of those.
fn lenient_step<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let value = Option::<serde_json::Value>::deserialize(de)?;
    let Some(value) = value else {
        return Ok(None);
    };
    parse_step_value(&value).map_err(D::Error::custom)
}

/// Shared by the deserializer and its tests: the accepted spellings of a step count.
fn parse_step_value(value: &serde_json::Value) -> Result<Option<u64>, String> {
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => number_to_step(n)
            .map(Some)
            .ok_or_else(|| format!("expected a non-negative integer step count, got {n}")),
        serde_json::Value::String(s) => {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                return Err("expected a step count, got an empty string".to_string());
            }
            let n: serde_json::Number = trimmed
                .parse()
                .map_err(|_| format!("expected a non-negative integer step count, got {s:?}"))?;
            number_to_step(&n)
                .map(Some)
                .ok_or_else(|| format!("expected a non-negative integer step count, got {s:?}"))
        }
        other => Err(format!(
            "expected an integer or a numeric string for a step count, got {other}"
        )),
    }
}

fn number_to_step(n: &serde_json::Number) -> Option<u64> {
    if let Some(v) = n.as_u64() {
        return Some(v);
    }
    let f = n.as_f64()?;
    // Integral floats (`5.0`) are accepted like pydantic's int coercion does; 2^53 bounds the
    // range where f64 holds integers exactly.
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 {
        Some(f as u64)
    } else {
        None
    }
}

fn bool_or_null<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(de)?.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<ProfileReqInput, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn empty_body_is_all_defaults() {
        assert_eq!(parse(json!({})).unwrap(), ProfileReqInput::default());
    }

    #[test]
    fn numeric_strings_and_ints_are_both_accepted() {
        let a = parse(json!({"num_steps": "5", "start_step": 3})).unwrap();
        assert_eq!(a.num_steps, Some(5));
        assert_eq!(a.start_step, Some(3));
        let b = parse(json!({"num_steps": 5.0, "start_step": " 7 "})).unwrap();
        assert_eq!(b.num_steps, Some(5));
        assert_eq!(b.start_step, Some(7));
        let c = parse(json!({"num_steps": null})).unwrap();
        assert_eq!(c.num_steps, None);
    }

    #[test]
    fn bad_step_values_are_rejected_with_the_value() {
        for bad in [json!("five"), json!(-1), json!(2.5), json!(""), json!([1])] {
            let err = parse(json!({ "num_steps": bad })).unwrap_err().to_string();
            assert!(err.contains("step count"), "{err}");
        }
    }

    #[test]
    fn every_field_and_unknown_newer_fields() {
        let body = json!({
            "output_dir": "/tmp/x",
            "start_step": "10",
            "num_steps": "5",
            "activities": ["CPU", "MEM"],
            "profile_by_stage": true,
            "profile_stages": ["prefill"],
            "with_stack": false,
            "record_shapes": true,
            "merge_profiles": null,
            "profile_prefix": "pre",
            "profile_id": "1718000000.5",
            "roofline_annotations": true,
            "rid": "abc",
            "shape_discovery": true,
            "http_worker_ipc": null
        });
        let req = parse(body).unwrap();
        assert_eq!(req.output_dir.as_deref(), Some("/tmp/x"));
        assert_eq!(req.start_step, Some(10));
        assert_eq!(req.num_steps, Some(5));
        assert_eq!(
            req.activities,
            Some(vec!["CPU".to_string(), "MEM".to_string()])
        );
        assert!(req.profile_by_stage);
        assert_eq!(req.profile_stages, Some(vec!["prefill".to_string()]));
        assert_eq!(req.with_stack, Some(false));
        assert_eq!(req.record_shapes, Some(true));
        assert!(!req.merge_profiles);
        assert_eq!(req.profile_prefix.as_deref(), Some("pre"));
        assert_eq!(req.profile_id.as_deref(), Some("1718000000.5"));
        assert_eq!(req.roofline_annotations, Some(true));
    }

    #[test]
    fn serializes_without_nulls_and_round_trips() {
        let req = ProfileReqInput {
            num_steps: Some(5),
            activities: Some(vec!["CPU".into()]),
            ..Default::default()
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({"num_steps": 5, "activities": ["CPU"], "profile_by_stage": false, "merge_profiles": false})
        );
        assert_eq!(parse(v).unwrap(), req);
    }
}
