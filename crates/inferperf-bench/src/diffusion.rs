//! `bench serving` for diffusion servers (SGLang's multimodal `bench_serving`): VBench or random
//! prompts sent as text-to-image (`/v1/images/generations`), image-to-image (`/v1/images/edits`,
//! multipart) or video jobs (`/v1/videos`, submit then poll), with SGLang's metrics, SLO
//! attainment, console layout and metrics JSON.
//!
//! Differences from SGLang, on purpose: arrivals are seeded (`--seed`), `--num-inference-steps`
//! is sent with every request (SGLang stores it but does not send it), video jobs are polled
//! every 50 ms instead of every second (SGLang's interval rounds video latency up to the
//! second), and the dataset fallbacks print a warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use serde_json::{json, Map, Value};

use crate::error::BenchError;
use crate::stats::{mean, percentile_sorted, sorted};

/// `--task`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Task {
    #[value(name = "text-to-image")]
    TextToImage,
    #[value(name = "image-to-image")]
    ImageToImage,
    #[value(name = "text-to-video")]
    TextToVideo,
    #[value(name = "image-to-video")]
    ImageToVideo,
    #[value(name = "video-to-video")]
    VideoToVideo,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::TextToImage => "text-to-image",
            Task::ImageToImage => "image-to-image",
            Task::TextToVideo => "text-to-video",
            Task::ImageToVideo => "image-to-video",
            Task::VideoToVideo => "video-to-video",
        }
    }

    fn is_video(self) -> bool {
        matches!(
            self,
            Task::TextToVideo | Task::ImageToVideo | Task::VideoToVideo
        )
    }

    fn needs_image(self) -> bool {
        matches!(self, Task::ImageToImage | Task::ImageToVideo)
    }

    /// From a server's `task_type` (`T2I`, `T2V`, `I2V`, `I2I`, ...).
    fn from_server(t: &str) -> Option<Self> {
        Some(match t.to_ascii_uppercase().as_str() {
            "T2I" => Task::TextToImage,
            "I2I" | "TI2I" => Task::ImageToImage,
            "T2V" => Task::TextToVideo,
            "I2V" | "TI2V" => Task::ImageToVideo,
            "V2V" => Task::VideoToVideo,
            _ => return None,
        })
    }
}

/// `--dataset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataset {
    Vbench,
    Random,
}

/// The diffusion-only flags of `bench serving` (SGLang multimodal names).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DiffusionFlags {
    /// Diffusion mode: `vbench` or `random` prompts.
    #[arg(long, value_enum, help_heading = "Diffusion")]
    pub dataset: Option<Dataset>,
    /// Diffusion mode: the task (default: the server's, else from the dataset).
    #[arg(long, value_enum, help_heading = "Diffusion")]
    pub task: Option<Task>,
    #[arg(long, help_heading = "Diffusion")]
    pub width: Option<u32>,
    #[arg(long, help_heading = "Diffusion")]
    pub height: Option<u32>,
    #[arg(long, help_heading = "Diffusion")]
    pub num_frames: Option<u32>,
    #[arg(long, help_heading = "Diffusion")]
    pub fps: Option<u32>,
    #[arg(long, help_heading = "Diffusion")]
    pub num_inference_steps: Option<u32>,
    /// Report SLO attainment (targets from the warm-up latency, scaled by --slo-scale).
    #[arg(long, help_heading = "Diffusion")]
    pub slo: bool,
    #[arg(long, default_value_t = 3.0, help_heading = "Diffusion")]
    pub slo_scale: f64,
}

impl DiffusionFlags {
    /// Whether the flags ask for the diffusion benchmark.
    pub fn requested(&self) -> bool {
        self.dataset.is_some() || self.task.is_some()
    }
}

/// Everything one diffusion run needs.
#[derive(Clone, Debug)]
pub struct Options {
    pub base_url: String,
    pub flags: DiffusionFlags,
    pub dataset_path: Option<PathBuf>,
    pub num_prompts: usize,
    pub max_concurrency: Option<usize>,
    pub request_rate: f64,
    pub warmup_requests: usize,
    pub seed: u64,
    pub output_file: Option<PathBuf>,
}

/// One request of the plan.
#[derive(Clone, Debug)]
struct Item {
    prompt: String,
    image: Option<PathBuf>,
}

/// One request's outcome.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub success: bool,
    pub latency_s: f64,
    pub error: String,
    pub peak_memory_mb: f64,
    pub slo_ms: Option<f64>,
}

/// SGLang's metrics, in its JSON order.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Metrics {
    pub duration: f64,
    pub completed_requests: usize,
    pub failed_requests: usize,
    pub throughput_qps: f64,
    pub latency_mean: f64,
    pub latency_median: f64,
    pub latency_p99: f64,
    pub latency_p50: f64,
    pub peak_memory_mb_max: f64,
    pub peak_memory_mb_mean: f64,
    pub peak_memory_mb_median: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_attainment_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_met_success: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_scale: Option<f64>,
}

const FALLBACK_PROMPT: &str = "A cat sitting on a bench";

/// VBench text prompts: `--dataset-path`, else `~/.cache/sglang/vbench_subject_consistency.txt`.
fn vbench_prompts(path: Option<&Path>) -> Result<Vec<String>, BenchError> {
    let default = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/sglang/vbench_subject_consistency.txt"));
    let path = match path.map(Path::to_path_buf).or(default) {
        Some(p) if p.is_file() => p,
        other => {
            eprintln!(
                "WARNING: no VBench prompt file ({}); using 50 copies of {FALLBACK_PROMPT:?} as SGLang does. \
                 Pass --dataset-path FILE (one prompt per line).",
                other.map_or("no path".into(), |p| p.display().to_string())
            );
            return Ok(vec![FALLBACK_PROMPT.to_string(); 50]);
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
    let v: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if v.is_empty() {
        return Err(BenchError::Dataset(format!(
            "{} has no prompts",
            path.display()
        )));
    }
    Ok(v)
}

/// Image inputs: a directory of PNG files (prompt = file stem), else one dummy red image.
fn image_items(path: Option<&Path>) -> Result<Vec<Item>, BenchError> {
    if let Some(dir) = path.filter(|p| p.is_dir()) {
        let mut items: Vec<Item> = std::fs::read_dir(dir)
            .map_err(|e| BenchError::io(format!("reading {}", dir.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case("png"))
            })
            .map(|p| Item {
                prompt: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                image: Some(p),
            })
            .collect();
        items.sort_by(|a, b| a.image.cmp(&b.image));
        if !items.is_empty() {
            return Ok(items);
        }
    }
    let dummy = std::env::temp_dir().join("inferperf_dummy_image.png");
    if !dummy.is_file() {
        let red: Vec<u8> = (0..100 * 100).flat_map(|_| [255u8, 0, 0]).collect();
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, 100, 100);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc
                .write_header()
                .map_err(|e| BenchError::Dataset(format!("dummy image: {e}")))?;
            w.write_image_data(&red)
                .map_err(|e| BenchError::Dataset(format!("dummy image: {e}")))?;
        }
        std::fs::write(&dummy, bytes)
            .map_err(|e| BenchError::io(format!("writing {}", dummy.display()), e))?;
    }
    eprintln!("WARNING: no image directory given; using a 100x100 red dummy image, as SGLang does");
    Ok(vec![
        Item {
            prompt: "A moving cat".into(),
            image: Some(dummy),
        };
        10
    ])
}

/// The plan: dataset items resized to `num_prompts` (repeated or truncated, no shuffle).
fn build_items(o: &Options, task: Task) -> Result<Vec<Item>, BenchError> {
    let items = match (
        o.flags.dataset.unwrap_or(Dataset::Vbench),
        task.needs_image(),
    ) {
        (Dataset::Random, _) => (0..o.num_prompts.max(1))
            .map(|i| Item {
                prompt: format!("Random prompt {i} for benchmarking diffusion models"),
                image: None,
            })
            .collect(),
        (Dataset::Vbench, true) => image_items(o.dataset_path.as_deref())?,
        (Dataset::Vbench, false) => vbench_prompts(o.dataset_path.as_deref())?
            .into_iter()
            .map(|prompt| Item {
                prompt,
                image: None,
            })
            .collect(),
    };
    let n = o.num_prompts;
    if n == 0 {
        return Ok(items);
    }
    Ok(items.iter().cycle().take(n).cloned().collect())
}

/// SGLang's SLO scale of a request: `max(w*h/256, 1) * frames * steps`.
fn slo_scale_of(f: &DiffusionFlags, steps: Option<u32>) -> Option<f64> {
    let (w, h) = (f.width? as f64, f.height? as f64);
    let frames = f.num_frames.filter(|&x| x > 0).unwrap_or(1) as f64;
    let steps = steps.filter(|&x| x > 0).unwrap_or(1) as f64;
    Some((w * h / 256.0).max(1.0) * frames * steps)
}

struct Client {
    http: reqwest::Client,
    base: String,
    model: String,
    task: Task,
    flags: DiffusionFlags,
}

impl Client {
    fn size(&self) -> Option<String> {
        match (self.flags.width, self.flags.height) {
            (Some(w), Some(h)) => Some(format!("{w}x{h}")),
            _ => None,
        }
    }

    async fn send(&self, item: &Item, steps: Option<u32>) -> Outcome {
        let start = Instant::now();
        let r = if self.task.is_video() {
            self.video(item, steps).await
        } else {
            self.image(item, steps).await
        };
        let mut out = Outcome {
            latency_s: start.elapsed().as_secs_f64(),
            ..Outcome::default()
        };
        match r {
            Ok(body) => {
                out.success = true;
                out.peak_memory_mb = body["peak_memory_mb"].as_f64().unwrap_or(0.0);
            }
            Err(e) => out.error = e,
        }
        out
    }

    async fn image(&self, item: &Item, steps: Option<u32>) -> Result<Value, String> {
        let resp = if self.task == Task::ImageToImage {
            let path = item
                .image
                .as_ref()
                .ok_or("image-to-image needs an input image")?;
            let mut form = reqwest::multipart::Form::new()
                .text("model", self.model.clone())
                .text("prompt", item.prompt.clone())
                .text("response_format", "b64_json")
                .part("image", image_part(path).await?);
            if let Some(s) = self.size() {
                form = form.text("size", s);
            }
            if let Some(n) = steps {
                form = form.text("num_inference_steps", n.to_string());
            }
            self.http
                .post(format!("{}/v1/images/edits", self.base))
                .multipart(form)
                .send()
                .await
        } else {
            let mut body = json!({"model": self.model, "prompt": item.prompt, "n": 1,
                                  "response_format": "b64_json"});
            if let Some(s) = self.size() {
                body["size"] = json!(s);
            }
            if let Some(n) = steps {
                body["num_inference_steps"] = json!(n);
            }
            self.http
                .post(format!("{}/v1/images/generations", self.base))
                .json(&body)
                .send()
                .await
        }
        .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                crate::sse::excerpt(text.as_bytes())
            ));
        }
        serde_json::from_str(&text).map_err(|e| format!("response is not JSON: {e}"))
    }

    async fn video(&self, item: &Item, steps: Option<u32>) -> Result<Value, String> {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model));
        body.insert("prompt".into(), json!(item.prompt));
        if let Some(s) = self.size() {
            body.insert("size".into(), json!(s));
        }
        if let Some(n) = self.flags.num_frames {
            body.insert("num_frames".into(), json!(n));
        }
        if let Some(f) = self.flags.fps {
            body.insert("fps".into(), json!(f));
        }
        if let Some(n) = steps {
            body.insert("num_inference_steps".into(), json!(n));
        }
        let url = format!("{}/v1/videos", self.base);
        let image = item
            .image
            .as_ref()
            .filter(|_| self.task == Task::ImageToVideo);
        let resp = match image {
            // SGLang's multipart form: fields, `extra_body` as one JSON string, the first image
            // as `input_reference`.
            Some(path) => {
                let mut form = reqwest::multipart::Form::new()
                    .text("model", self.model.clone())
                    .text("prompt", item.prompt.clone())
                    .part("input_reference", image_part(path).await?);
                if let Some(s) = self.size() {
                    form = form.text("size", s);
                }
                if let Some(n) = self.flags.num_frames {
                    form = form.text("num_frames", n.to_string());
                }
                if let Some(f) = self.flags.fps {
                    form = form.text("fps", f.to_string());
                }
                let extra = match steps {
                    Some(n) => json!({"num_inference_steps": n}),
                    None => json!({}),
                };
                form = form.text("extra_body", extra.to_string());
                self.http.post(&url).multipart(form).send().await
            }
            None => self.http.post(&url).json(&Value::Object(body)).send().await,
        }
        .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "Submit failed HTTP {}: {}",
                status.as_u16(),
                crate::sse::excerpt(text.as_bytes())
            ));
        }
        let job: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let id = job["id"].as_str().ok_or("No job_id returned")?.to_string();
        loop {
            let r = self
                .http
                .get(format!("{url}/{id}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("poll HTTP {}", r.status().as_u16()));
            }
            let v: Value = r.json().await.map_err(|e| e.to_string())?;
            match v["status"].as_str() {
                Some("completed") => return Ok(v),
                Some("failed") => {
                    return Err(format!(
                        "Job failed: {}",
                        v["error"]["message"].as_str().unwrap_or("")
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Resolve the task: `--task`, else the server's `task_type`, else from the dataset.
async fn resolve_task(http: &reqwest::Client, o: &Options) -> Task {
    if let Some(t) = o.flags.task {
        return t;
    }
    get_json(http, &format!("{}/v1/models", o.base_url))
        .await
        .and_then(|v| Task::from_server(v["data"][0]["task_type"].as_str()?))
        .unwrap_or(Task::TextToVideo)
}

/// GET a JSON document; `None` when the server does not answer with one (optional facts).
async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

/// SGLang's metrics over the outcomes of the timed run.
pub fn metrics(outs: &[Outcome], duration: f64, slo: Option<f64>) -> Metrics {
    let ok: Vec<&Outcome> = outs.iter().filter(|o| o.success).collect();
    let lat = sorted(&ok.iter().map(|o| o.latency_s).collect::<Vec<_>>());
    let mem = sorted(
        &ok.iter()
            .map(|o| o.peak_memory_mb)
            .filter(|&m| m > 0.0)
            .collect::<Vec<_>>(),
    );
    let mut m = Metrics {
        duration,
        completed_requests: ok.len(),
        failed_requests: outs.len() - ok.len(),
        throughput_qps: if duration > 0.0 {
            ok.len() as f64 / duration
        } else {
            0.0
        },
        latency_mean: mean(&lat),
        latency_median: percentile_sorted(&lat, 50.0),
        latency_p99: percentile_sorted(&lat, 99.0),
        latency_p50: percentile_sorted(&lat, 50.0),
        peak_memory_mb_max: mem.last().copied().unwrap_or(0.0),
        peak_memory_mb_mean: mean(&mem),
        peak_memory_mb_median: percentile_sorted(&mem, 50.0),
        ..Metrics::default()
    };
    if let Some(scale) = slo {
        let with: Vec<&Outcome> = outs.iter().filter(|o| o.slo_ms.is_some()).collect();
        let met = with
            .iter()
            .filter(|o| o.success && o.slo_ms.is_some_and(|s| o.latency_s * 1000.0 <= s))
            .count();
        m.slo_attainment_rate = Some(if with.is_empty() {
            0.0
        } else {
            met as f64 / with.len() as f64
        });
        m.slo_met_success = Some(met);
        m.slo_scale = Some(scale);
    }
    m
}

fn row(desc: &str, v: String) -> String {
    format!("{desc:<45} {v:<30}\n")
}

/// SGLang's console report.
pub fn report(
    m: &Metrics,
    task: Task,
    model: &str,
    dataset: &str,
    rate: f64,
    conc: Option<usize>,
    total: usize,
) -> String {
    let mut s = format!("\n{:=^60}\n", " Serving Benchmark Result ");
    s += &row("Task:", task.name().into());
    s += &row("Model:", model.into());
    s += &row("Dataset:", dataset.into());
    s += &format!("{}\n", "-".repeat(50));
    s += &row("Benchmark duration (s):", format!("{:.2}", m.duration));
    s += &row(
        "Request rate:",
        if rate.is_infinite() {
            "inf".into()
        } else {
            format!("{rate}")
        },
    );
    s += &row(
        "Max request concurrency:",
        conc.map_or("not set".into(), |c| c.to_string()),
    );
    s += &row(
        "Successful requests:",
        format!("{}/{total}", m.completed_requests),
    );
    s += &format!("{}\n", "-".repeat(50));
    s += &row(
        "Request throughput (req/s):",
        format!("{:.2}", m.throughput_qps),
    );
    s += &row("Latency Mean (s):", format!("{:.2}", m.latency_mean));
    s += &row("Latency Median (s):", format!("{:.2}", m.latency_median));
    s += &row("Latency P99 (s):", format!("{:.2}", m.latency_p99));
    if m.peak_memory_mb_max > 0.0 {
        s += &format!("{}\n", "-".repeat(50));
        s += &row(
            "Peak Memory Max (MB):",
            format!("{:.2}", m.peak_memory_mb_max),
        );
        s += &row(
            "Peak Memory Mean (MB):",
            format!("{:.2}", m.peak_memory_mb_mean),
        );
        s += &row(
            "Peak Memory Median (MB):",
            format!("{:.2}", m.peak_memory_mb_median),
        );
    }
    if let (Some(rate), Some(met), Some(scale)) =
        (m.slo_attainment_rate, m.slo_met_success, m.slo_scale)
    {
        s += &format!("{}\n", "-".repeat(50));
        s += &format!("{:<40} {:.2}%\n", "SLO Attainment Rate:", rate * 100.0);
        s += &row("SLO Met (Success):", met.to_string());
        s += &row("SLO Scale:", format!("{scale:.2}"));
    }
    s += &format!("{}\n", "=".repeat(60));
    s
}

/// Run the diffusion benchmark: warm-ups, then the timed run; prints the report and writes the
/// metrics JSON when asked.
pub async fn run(o: &Options) -> Result<(Metrics, Vec<Outcome>), BenchError> {
    if o.flags.slo && o.flags.slo_scale <= 0.0 {
        return Err(BenchError::Config("--slo-scale must be > 0".into()));
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| BenchError::Config(format!("HTTP client: {e}")))?;
    let model = get_json(&http, &format!("{}/v1/model_info", o.base_url))
        .await
        .and_then(|v| {
            v["model_path"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| "default".into());
    let task = resolve_task(&http, o).await;
    let items = build_items(o, task)?;
    let client = Arc::new(Client {
        http,
        base: o.base_url.clone(),
        model: model.clone(),
        task,
        flags: o.flags.clone(),
    });
    // Warm-ups, one after the other, with one denoising step; they also set the SLO base.
    let mut base = Vec::new();
    for i in 0..o.warmup_requests {
        let w = client.send(&items[i % items.len()], Some(1)).await;
        if w.success {
            if let Some(scale) = slo_scale_of(&o.flags, Some(1)) {
                base.push(w.latency_s * 1000.0 / scale);
            }
        }
    }
    let slo_ms = if o.flags.slo && !base.is_empty() {
        let b = percentile_sorted(&sorted(&base), 50.0);
        slo_scale_of(&o.flags, o.flags.num_inference_steps).map(|s| b * s * o.flags.slo_scale)
    } else {
        None
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(
        o.max_concurrency
            .unwrap_or(tokio::sync::Semaphore::MAX_PERMITS),
    ));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
    let exp = (o.request_rate.is_finite() && o.request_rate > 0.0)
        .then(|| Exp::new(o.request_rate))
        .transpose()
        .map_err(|e| BenchError::Config(format!("--request-rate: {e}")))?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, item) in items.iter().cloned().enumerate() {
        if let Some(e) = &exp {
            tokio::time::sleep(Duration::from_secs_f64(e.sample(&mut rng))).await;
        }
        let (client, sem) = (client.clone(), sem.clone());
        let steps = o.flags.num_inference_steps;
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.ok();
            let mut out = client.send(&item, steps).await;
            out.slo_ms = slo_ms;
            (i, out)
        });
    }
    let mut outs: Vec<(usize, Outcome)> = Vec::with_capacity(items.len());
    while let Some(r) = tasks.join_next().await {
        if let Ok(x) = r {
            outs.push(x);
        }
    }
    let duration = start.elapsed().as_secs_f64();
    outs.sort_by_key(|x| x.0);
    let outs: Vec<Outcome> = outs.into_iter().map(|x| x.1).collect();
    let m = metrics(&outs, duration, o.flags.slo.then_some(o.flags.slo_scale));
    let dataset = match o.flags.dataset.unwrap_or(Dataset::Vbench) {
        Dataset::Vbench => "vbench",
        Dataset::Random => "random",
    };
    print!(
        "{}",
        report(
            &m,
            task,
            &model,
            dataset,
            o.request_rate,
            o.max_concurrency,
            items.len()
        )
    );
    if let Some(e) = outs.iter().find(|o| !o.success) {
        println!("First error: {}", e.error);
    }
    if let Some(path) = &o.output_file {
        let text = serde_json::to_string_pretty(&m)
            .map_err(|e| BenchError::Config(format!("metrics JSON: {e}")))?;
        crate::jsonl::write_atomic(path, text.as_bytes())?;
        println!("Metrics saved to {}", path.display());
    }
    Ok((m, outs))
}

/// An input image file as a multipart part named after the file.
async fn image_part(path: &std::path::Path) -> Result<reqwest::multipart::Part, String> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image.png".into());
    Ok(reqwest::multipart::Part::bytes(bytes).file_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_scale_and_metrics_follow_sglang() {
        let f = DiffusionFlags {
            width: Some(32),
            height: Some(16),
            num_frames: Some(3),
            ..Default::default()
        };
        // 32*16/256 = 2 area units, 3 frames, 4 steps.
        assert_eq!(slo_scale_of(&f, Some(4)), Some(24.0));
        assert_eq!(slo_scale_of(&DiffusionFlags::default(), Some(4)), None);
        let outs = vec![
            Outcome {
                success: true,
                latency_s: 1.0,
                peak_memory_mb: 10.0,
                slo_ms: Some(1500.0),
                ..Default::default()
            },
            Outcome {
                success: true,
                latency_s: 2.0,
                slo_ms: Some(1500.0),
                ..Default::default()
            },
            Outcome {
                success: false,
                latency_s: 0.1,
                slo_ms: Some(1500.0),
                ..Default::default()
            },
        ];
        let m = metrics(&outs, 4.0, Some(3.0));
        assert_eq!((m.completed_requests, m.failed_requests), (2, 1));
        assert_eq!(m.throughput_qps, 0.5);
        assert_eq!((m.latency_mean, m.latency_median), (1.5, 1.5));
        assert_eq!(m.peak_memory_mb_max, 10.0);
        assert_eq!(m.slo_met_success, Some(1));
        assert_eq!(m.slo_attainment_rate, Some(1.0 / 3.0));
    }
}
