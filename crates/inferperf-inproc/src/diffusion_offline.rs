//! `bench offline` for diffusion models (SGLang's multimodal `bench_offline_throughput`): the
//! pipeline in this process, prompts from `random`/`vbench` or a request manifest (JSONL),
//! optional saved outputs with their SHA-256, SGLang's metrics, console block and appended
//! JSONL line (`metadata`, `configuration`, `results`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use inferperf_engine::diffusion::{
    decode_png, DiffusionPipeline, DiffusionRequest, InputImage, NoopObserver,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use inferperf_loadgen::error::BenchError;

/// One request of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestRequest {
    pub request_id: String,
    pub prompt: String,
    /// Overrides of the run's defaults (`width`, `num_inference_steps`, `image_path`, ...).
    pub sampling_params: Map<String, Value>,
}

const SHORTCUTS: [&str; 10] = [
    "fps",
    "guidance_scale",
    "height",
    "image_paths",
    "negative_prompt",
    "num_frames",
    "num_inference_steps",
    "num_outputs_per_prompt",
    "seed",
    "width",
];
const RESERVED: [&str; 7] = [
    "image_path",
    "output_file_name",
    "output_path",
    "prompt",
    "request_id",
    "return_file_paths_only",
    "save_output",
];

/// Parse a request manifest (SGLang's `request_manifest.py` rules); errors name the line.
pub fn parse_manifest(path: &Path) -> Result<(Vec<ManifestRequest>, String), BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
    let sha = format!("{:x}", Sha256::digest(text.as_bytes()));
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |m: String| BenchError::Dataset(format!("{}:{}: {m}", path.display(), i + 1));
        let Value::Object(obj) =
            serde_json::from_str::<Value>(line).map_err(|e| at(e.to_string()))?
        else {
            return Err(at("each line must be a JSON object".into()));
        };
        for k in obj.keys() {
            if !(k == "prompt"
                || k == "request_id"
                || k == "sampling_params"
                || SHORTCUTS.contains(&k.as_str()))
            {
                return Err(at(format!("unknown key {k:?}")));
            }
        }
        let prompt = obj
            .get("prompt")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| at("`prompt` must be a non-empty string".into()))?
            .to_string();
        let request_id = match obj.get("request_id") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(at("`request_id` must be a string".into())),
            None => format!("request-{:05}", i),
        };
        if !ids.insert(request_id.clone()) {
            return Err(at(format!("duplicate request_id {request_id:?}")));
        }
        let mut sp = match obj.get("sampling_params") {
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(at("`sampling_params` must be an object".into())),
            None => Map::new(),
        };
        if let Some(k) = sp.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err(at(format!("sampling_params may not set {k:?}")));
        }
        for k in SHORTCUTS {
            if let Some(v) = obj.get(k) {
                if k == "image_paths" {
                    let resolve = |s: &str| -> String {
                        if s.contains("://") {
                            s.to_string()
                        } else {
                            dir.join(s).to_string_lossy().into_owned()
                        }
                    };
                    let v = match v {
                        Value::String(s) => json!(resolve(s)),
                        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => {
                            json!(a
                                .iter()
                                .filter_map(Value::as_str)
                                .map(resolve)
                                .collect::<Vec<_>>())
                        }
                        _ => {
                            return Err(at(
                                "`image_paths` must be a string or a non-empty list of strings"
                                    .into(),
                            ))
                        }
                    };
                    sp.insert("image_path".into(), v);
                } else {
                    sp.insert(k.into(), v.clone());
                }
            }
        }
        out.push(ManifestRequest {
            request_id,
            prompt,
            sampling_params: sp,
        });
    }
    if out.is_empty() {
        return Err(BenchError::Dataset(format!(
            "{}: the manifest is empty",
            path.display()
        )));
    }
    Ok((out, sha))
}

/// Run settings (SGLang's flags and defaults).
#[derive(Clone, Debug)]
pub struct DiffusionOfflineOptions {
    pub model_path: String,
    pub num_inference_steps: u32,
    pub guidance_scale: f64,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub num_frames: u32,
    pub fps: u32,
    pub task_name: String,
    pub dataset: String,
    pub batch_size: usize,
    pub skip_warmup: bool,
    pub save_output_dir: Option<PathBuf>,
    pub output_file: Option<PathBuf>,
    pub manifest: Option<(PathBuf, String)>,
    /// `--profile`: (`--num-profiled-timesteps`, `--profile-all-stages`); one trace per request
    /// in `SGLANG_DIFFUSION_TORCH_PROFILER_DIR` (else `SGLANG_TORCH_PROFILER_DIR`, `./logs`).
    pub profile: Option<(i64, bool)>,
}

/// Requests from `random` or a VBench prompt file, resized to `n`.
pub fn dataset_requests(
    dataset: &str,
    path: Option<&Path>,
    n: usize,
) -> Result<Vec<ManifestRequest>, BenchError> {
    let prompts: Vec<String> = match dataset {
        "random" => (0..n.max(1))
            .map(|i| format!("Random prompt {i} for benchmarking diffusion models"))
            .collect(),
        "vbench" => {
            let p = path.ok_or_else(|| {
                BenchError::Dataset(
                    "--dataset vbench needs --dataset-path FILE (one prompt per line)".into(),
                )
            })?;
            let text = std::fs::read_to_string(p)
                .map_err(|e| BenchError::io(format!("reading {}", p.display()), e))?;
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        }
        other => {
            return Err(BenchError::Config(format!(
                "--dataset must be random or vbench, not {other:?}"
            )))
        }
    };
    if prompts.is_empty() {
        return Err(BenchError::Dataset("the dataset has no prompts".into()));
    }
    Ok(prompts
        .iter()
        .cycle()
        .take(n.max(1))
        .enumerate()
        .map(|(i, p)| ManifestRequest {
            request_id: format!("request-{i:05}"),
            prompt: p.clone(),
            sampling_params: Map::new(),
        })
        .collect())
}

fn read_png(path: &str) -> Result<InputImage, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let d = decode_png(&bytes).map_err(|e| format!("{path} is not a readable PNG: {e}"))?;
    let rgb = d
        .frames
        .into_iter()
        .next()
        .ok_or(format!("{path} has no frame"))?;
    Ok(InputImage {
        width: d.width,
        height: d.height,
        rgb,
    })
}

/// The engine request of one manifest entry over the run's defaults.
fn to_request(
    r: &ManifestRequest,
    o: &DiffusionOfflineOptions,
) -> Result<DiffusionRequest, String> {
    let sp = &r.sampling_params;
    let u = |k: &str, d: u64| sp.get(k).and_then(Value::as_u64).unwrap_or(d);
    let image = match sp.get("image_path") {
        Some(Value::String(p)) => Some(read_png(p)?),
        Some(Value::Array(a)) => match a.first().and_then(Value::as_str) {
            Some(p) => Some(read_png(p)?),
            None => None,
        },
        _ => None,
    };
    if sp
        .get("num_outputs_per_prompt")
        .and_then(Value::as_u64)
        .is_some_and(|n| n != 1)
    {
        return Err("num_outputs_per_prompt must be 1".into());
    }
    Ok(DiffusionRequest {
        request_id: r.request_id.clone(),
        prompt: r.prompt.clone(),
        negative_prompt: sp
            .get("negative_prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into(),
        seed: u("seed", o.seed),
        num_inference_steps: Some(u("num_inference_steps", o.num_inference_steps as u64) as usize),
        guidance_scale: sp
            .get("guidance_scale")
            .and_then(Value::as_f64)
            .unwrap_or(o.guidance_scale),
        width: Some(u("width", o.width as u64) as usize),
        height: Some(u("height", o.height as u64) as usize),
        num_frames: u("num_frames", o.num_frames as u64) as usize,
        fps: u("fps", o.fps as u64) as u32,
        image,
        test_delay: None,
    })
}

fn safe_id(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches(|c| c == '.' || c == '_').to_string()
}

/// Generate every request (after a warm-up batch), then print and append SGLang's results.
pub fn run(
    pipeline: &DiffusionPipeline,
    reqs: &[ManifestRequest],
    o: &DiffusionOfflineOptions,
) -> Result<Value, BenchError> {
    if o.batch_size == 0 {
        return Err(BenchError::Config("--batch-size must be at least 1".into()));
    }
    if !o.skip_warmup {
        for r in reqs.iter().take(o.batch_size.min(reqs.len())) {
            let mut w = r.clone();
            w.request_id = format!("warmup-{}", r.request_id);
            if let Ok(req) = to_request(&w, o) {
                let _ = pipeline.generate(&req, &mut NoopObserver);
            }
        }
    }
    if let Some(dir) = &o.save_output_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
    }
    let start = Instant::now();
    let mut results = Vec::new();
    let mut lat = Vec::new();
    let (mut frames, mut pixels) = (0u64, 0u64);
    for (idx, r) in reqs.iter().enumerate() {
        let t = Instant::now();
        let outcome = to_request(r, o).and_then(|req| {
            let profiler = match o.profile {
                Some((n, all)) => {
                    let steps = pipeline
                        .validate(&req)
                        .map_err(|e| e.to_string())?
                        .num_inference_steps;
                    Some(
                        inferperf_profiler::diffusion_profiler::DiffusionProfiler::start(
                            &inferperf_profiler::diffusion_profiler::DiffusionProfileOptions {
                                request_id: r.request_id.clone(),
                                profile_all_stages: all,
                                num_profiled_timesteps: n,
                                output_dir: None,
                            },
                            steps,
                            &Map::new(),
                        )
                        .map_err(|e| e.to_string())?,
                    )
                }
                None => None,
            };
            let mut profiler = profiler;
            let media = pipeline
                .generate(&req, &mut profiler)
                .map_err(|e| e.to_string())?;
            if let Some(p) = profiler {
                // The profiler logs where the trace went; a failed write is a warning only.
                if let Err(e) = p.finish() {
                    tracing::warn!("profile of {}: {e}", r.request_id);
                }
            }
            let (mut paths, mut shas) = (Vec::new(), Vec::new());
            if let Some(dir) = &o.save_output_dir {
                let bytes = media.encode().map_err(|e| e.to_string())?;
                let path = dir.join(format!(
                    "{idx:05}-{}.{}",
                    safe_id(&r.request_id),
                    media.extension()
                ));
                inferperf_loadgen::jsonl::write_atomic(&path, &bytes).map_err(|e| e.to_string())?;
                shas.push(format!("{:x}", Sha256::digest(&bytes)));
                paths.push(path.to_string_lossy().into_owned());
            }
            Ok((media, paths, shas))
        });
        let latency = t.elapsed().as_secs_f64();
        let (success, error, paths, shas) = match outcome {
            Ok((media, paths, shas)) => {
                frames += media.frames.len() as u64;
                pixels += (media.width * media.height * media.frames.len()) as u64;
                lat.push(latency);
                (true, Value::Null, paths, shas)
            }
            Err(e) => (false, json!(e), Vec::new(), Vec::new()),
        };
        results.push(json!({"request_id": r.request_id, "prompt": r.prompt,
            "sampling_params": r.sampling_params, "success": success, "latency_seconds": latency,
            "error": error, "output_file_paths": paths, "output_sha256": shas}));
    }
    let duration = start.elapsed().as_secs_f64();
    let ok = lat.len();
    let sorted = inferperf_loadgen::stats::sorted(&lat);
    let per_s = |x: f64| if duration > 0.0 { x / duration } else { 0.0 };
    let peak_mb =
        inferperf_profiler::process_rss_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0));
    let metrics = json!({
        "num_requests": reqs.len(),
        "successful_requests": ok,
        "failed_requests": reqs.len() - ok,
        "total_duration_seconds": duration,
        "total_frames_generated": frames,
        "total_pixels_generated": pixels,
        "images_per_second": per_s(ok as f64),
        "frames_per_second": per_s(frames as f64),
        "megapixels_per_second": per_s(pixels as f64 / 1e6),
        "requests_per_second": per_s(ok as f64),
        "latency_per_request_seconds": if ok > 0 { duration / ok as f64 } else { 0.0 },
        "request_latency_mean_seconds": inferperf_loadgen::stats::mean(&lat),
        "request_latency_median_seconds": inferperf_loadgen::stats::percentile_sorted(&sorted, 50.0),
        "request_latency_min_seconds": sorted.first().copied().unwrap_or(0.0),
        "request_latency_max_seconds": sorted.last().copied().unwrap_or(0.0),
        "request_results": results,
        "peak_memory_mb": peak_mb,
    });
    print!("{}", console(o, &metrics));
    let resolution = format!("{}x{}x{}", o.width, o.height, o.num_frames);
    let line = json!({
        "metadata": {
            "timestamp": inferperf_protocol::perf_dump::iso8601_utc(std::time::SystemTime::now()).chars().take(19).collect::<String>(),
            "model_path": o.model_path, "task_type": o.task_name, "backend": "engine",
            "request_manifest": o.manifest.as_ref().map(|m| m.0.to_string_lossy().into_owned()),
            "request_manifest_sha256": o.manifest.as_ref().map(|m| m.1.clone()),
        },
        "configuration": {
            "num_inference_steps": o.num_inference_steps, "guidance_scale": o.guidance_scale,
            "seed": o.seed, "batch_size": o.batch_size, "num_prompts": reqs.len(),
            "resolution": resolution,
            "dataset": if o.manifest.is_some() { "request_manifest".to_string() } else { o.dataset.clone() },
            "save_output_dir": o.save_output_dir.as_ref().map(|d| d.to_string_lossy().into_owned()),
        },
        "results": metrics,
    });
    if let Some(path) = &o.output_file {
        inferperf_loadgen::jsonl::append_line(path, &line.to_string())?;
        println!("Results appended to {}", path.display());
    }
    Ok(line)
}

fn console(o: &DiffusionOfflineOptions, m: &Value) -> String {
    let row = |k: &str, v: String| format!("{k:<45} {v}\n");
    let f = |k: &str| m[k].as_f64().unwrap_or(0.0);
    let mut s = format!("\n{:=^110}\n", " Offline Throughput Benchmark Result ");
    s += &row("Model:", o.model_path.clone());
    s += &row(
        "Dataset:",
        if o.manifest.is_some() {
            "request_manifest".into()
        } else {
            o.dataset.clone()
        },
    );
    s += &row(
        "Resolution:",
        format!("{}x{}x{}", o.width, o.height, o.num_frames),
    );
    s += &row("Num Inference Steps:", o.num_inference_steps.to_string());
    s += &format!("{}\n", "-".repeat(75));
    s += &row("Total Requests:", m["num_requests"].to_string());
    s += &row("Successful Requests:", m["successful_requests"].to_string());
    s += &row("Failed Requests:", m["failed_requests"].to_string());
    s += &row(
        "Total Duration (seconds):",
        format!("{:.2}", f("total_duration_seconds")),
    );
    s += &format!("{}\n", "-".repeat(75));
    s += &row("Frames Generated:", m["total_frames_generated"].to_string());
    s += &row(
        "Megapixels Generated:",
        format!("{:.2}", f("total_pixels_generated") / 1e6),
    );
    s += &format!("{}\n", "-".repeat(75));
    s += &row(
        "Frame Throughput (frames/sec):",
        format!("{:.2}", f("frames_per_second")),
    );
    s += &row(
        "MP Throughput (MP/sec):",
        format!("{:.2}", f("megapixels_per_second")),
    );
    s += &row(
        "Requests Per Second:",
        format!("{:.2}", f("requests_per_second")),
    );
    s += &row(
        "Latency Per Request (sec):",
        format!("{:.2}", f("latency_per_request_seconds")),
    );
    s += &row(
        "Request Latency Mean (sec):",
        format!("{:.2}", f("request_latency_mean_seconds")),
    );
    s += &row(
        "Request Latency Median (sec):",
        format!("{:.2}", f("request_latency_median_seconds")),
    );
    s += &row("Peak Memory (MB):", format!("{:.2}", f("peak_memory_mb")));
    s += &format!("{}\n", "=".repeat(110));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("m.jsonl");
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn manifest_rules_follow_sglang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            "{\"prompt\": \"a\", \"width\": 64, \"sampling_params\": {\"width\": 32, \"seed\": 3}}\n\n{\"prompt\": \"b\", \"request_id\": \"x\", \"image_paths\": \"img.png\"}\n",
        );
        let (reqs, sha) = parse_manifest(&p).expect("manifest");
        assert_eq!(sha.len(), 64);
        assert_eq!(reqs[0].request_id, "request-00000");
        assert_eq!(reqs[0].sampling_params["width"], 64, "top level wins");
        assert_eq!(reqs[0].sampling_params["seed"], 3);
        assert_eq!(
            reqs[1].sampling_params["image_path"],
            json!(dir.path().join("img.png").to_string_lossy())
        );
        for (bad, why) in [
            ("{\"prompt\": \"a\", \"colour\": 1}", "unknown key"),
            ("{\"prompt\": \"\"}", "prompt"),
            ("{\"prompt\": \"a\", \"request_id\": \"r\"}\n{\"prompt\": \"b\", \"request_id\": \"r\"}", "duplicate"),
            ("{\"prompt\": \"a\", \"sampling_params\": {\"output_path\": \"/x\"}}", "output_path"),
            ("\n", "empty"),
        ] {
            let e = parse_manifest(&write(dir.path(), bad)).expect_err(bad);
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }
}
