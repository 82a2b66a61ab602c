//! `bench serving` for diffusion servers (SGLang's multimodal `bench_serving`): VBench or random
//! prompts sent as text-to-image (`/v1/images/generations`), image-to-image (`/v1/images/edits`,
//! multipart) or video jobs (`/v1/videos`, submit then poll), with SGLang's metrics, SLO
//! attainment, console layout and metrics JSON.
//!
//! Differences from SGLang, on purpose: arrivals are seeded (`--seed`), `--num-inference-steps`
//! is sent with every request (SGLang stores it but does not send it), video jobs are polled
//! every 50 ms instead of every second (SGLang's interval rounds video latency up to the
//! second), and the dataset fallbacks print a warning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Method;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use serde_json::{json, Map, Value};

use crate::multipart::Form;
use inferperf_loadgen::client::{simple_request, JobPoll, Pool, Target};
use inferperf_loadgen::clock::Clock;
use inferperf_loadgen::cpu::{CpuMark, ThreadCpu};
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::record::RequestRecord;
use inferperf_loadgen::runner::{Abort, Exchange, LiveCounters, PlannedRequest, RunSpec};
use inferperf_loadgen::sse::ResponseReading;
use inferperf_loadgen::stats::{mean, percentile_sorted, sorted};
use inferperf_loadgen::validity::{assess, render, Validity, ValidityInputs};

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
#[derive(Clone)]
pub struct DiffusionServingConfig {
    pub base_url: String,
    pub flags: DiffusionFlags,
    pub dataset_path: Option<PathBuf>,
    pub num_prompts: usize,
    pub max_concurrency: Option<usize>,
    pub request_rate: f64,
    pub warmup_requests: usize,
    pub seed: u64,
    pub output_file: Option<PathBuf>,
    /// Registry of the client's threads (the runtime's and the pacer's), for the client CPU
    /// accounting of the validity verdict.
    pub cpu: ThreadCpu,
    /// Worker threads of the client runtime the run is driven on.
    pub client_threads: usize,
    /// Print the report and the validity block to stdout.
    pub print: bool,
}

/// One request of the plan.
#[derive(Clone, Debug)]
struct Item {
    prompt: String,
    image: Option<PathBuf>,
}

/// One request's outcome.
#[derive(Clone, Debug, Default)]
pub struct DiffusionOutcome {
    pub success: bool,
    pub latency_s: f64,
    pub error: String,
    pub peak_memory_mb: f64,
    pub slo_ms: Option<f64>,
}

/// SGLang's metrics, in its JSON order.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DiffusionMetrics {
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
fn build_items(o: &DiffusionServingConfig, task: Task) -> Result<Vec<Item>, BenchError> {
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

/// What every request of the run shares: the model, the task and the size flags.
struct RequestShape<'a> {
    model: &'a str,
    task: Task,
    flags: &'a DiffusionFlags,
    /// Multipart boundary of the run (image-conditioned tasks).
    boundary: &'a str,
}

impl RequestShape<'_> {
    fn size(&self) -> Option<String> {
        match (self.flags.width, self.flags.height) {
            (Some(w), Some(h)) => Some(format!("{w}x{h}")),
            _ => None,
        }
    }

    /// The route requests go to (a video job's submit route is also its poll collection).
    fn route(&self) -> &'static str {
        match self.task {
            t if t.is_video() => "/v1/videos",
            Task::ImageToImage => "/v1/images/edits",
            _ => "/v1/images/generations",
        }
    }

    /// Whether bodies are multipart forms (an input image is uploaded).
    fn multipart(&self) -> bool {
        matches!(self.task, Task::ImageToImage | Task::ImageToVideo)
    }

    /// The body of one request, as SGLang's client builds it. `image` is the input image's
    /// file name and bytes for the multipart tasks.
    fn body(
        &self,
        item: &Item,
        image: Option<(&str, &[u8])>,
        steps: Option<u32>,
    ) -> Result<Bytes, BenchError> {
        let need_image = || {
            image.ok_or_else(|| {
                BenchError::Dataset(format!("{} needs an input image", self.task.name()))
            })
        };
        if self.task == Task::ImageToImage {
            let (name, bytes) = need_image()?;
            let mut form = Form::new(self.boundary)
                .text("model", self.model)
                .text("prompt", &item.prompt)
                .text("response_format", "b64_json")
                .file("image", name, bytes);
            if let Some(s) = self.size() {
                form = form.text("size", &s);
            }
            if let Some(n) = steps {
                form = form.text("num_inference_steps", &n.to_string());
            }
            return Ok(form.finish());
        }
        if self.task == Task::ImageToVideo {
            // SGLang's multipart form: fields, `extra_body` as one JSON string, the first
            // image as `input_reference`.
            let (name, bytes) = need_image()?;
            let mut form = Form::new(self.boundary)
                .text("model", self.model)
                .text("prompt", &item.prompt)
                .file("input_reference", name, bytes);
            if let Some(s) = self.size() {
                form = form.text("size", &s);
            }
            if let Some(n) = self.flags.num_frames {
                form = form.text("num_frames", &n.to_string());
            }
            if let Some(f) = self.flags.fps {
                form = form.text("fps", &f.to_string());
            }
            let extra = match steps {
                Some(n) => json!({"num_inference_steps": n}),
                None => json!({}),
            };
            return Ok(form.text("extra_body", &extra.to_string()).finish());
        }
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model));
        body.insert("prompt".into(), json!(item.prompt));
        if !self.task.is_video() {
            body.insert("n".into(), json!(1));
            body.insert("response_format".into(), json!("b64_json"));
        }
        if let Some(s) = self.size() {
            body.insert("size".into(), json!(s));
        }
        if self.task.is_video() {
            if let Some(n) = self.flags.num_frames {
                body.insert("num_frames".into(), json!(n));
            }
            if let Some(f) = self.flags.fps {
                body.insert("fps".into(), json!(f));
            }
        }
        if let Some(n) = steps {
            body.insert("num_inference_steps".into(), json!(n));
        }
        serde_json::to_vec(&Value::Object(body))
            .map(Bytes::from)
            .map_err(|e| BenchError::Config(format!("request body: {e}")))
    }
}

/// Read every distinct input image once, before the run.
fn read_images(items: &[Item]) -> Result<HashMap<PathBuf, (String, Vec<u8>)>, BenchError> {
    let mut images = HashMap::new();
    for path in items.iter().filter_map(|i| i.image.as_ref()) {
        if images.contains_key(path) {
            continue;
        }
        let bytes = std::fs::read(path)
            .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image.png".into());
        images.insert(path.clone(), (name, bytes));
    }
    Ok(images)
}

/// The planned requests of `items`, bodies built once.
fn plan(
    shape: &RequestShape<'_>,
    items: &[Item],
    images: &HashMap<PathBuf, (String, Vec<u8>)>,
    steps: Option<u32>,
) -> Result<Vec<PlannedRequest>, BenchError> {
    items
        .iter()
        .map(|item| {
            let image = if shape.multipart() {
                item.image
                    .as_ref()
                    .and_then(|p| images.get(p))
                    .map(|(n, b)| (n.as_str(), b.as_slice()))
            } else {
                None
            };
            Ok(PlannedRequest {
                body: shape.body(item, image, steps)?,
                prompt_len: 0,
                output_len: 0,
                headers: None,
                rid: None,
                conversation: None,
            })
        })
        .collect()
}

/// Resolve the task: `--task`, else the server's `task_type`, else from the dataset.
async fn resolve_task(pool: &Pool, o: &DiffusionServingConfig) -> Task {
    if let Some(t) = o.flags.task {
        return t;
    }
    get_json(pool, "/v1/models")
        .await
        .and_then(|v| Task::from_server(v["data"][0]["task_type"].as_str()?))
        .unwrap_or(Task::TextToVideo)
}

/// GET a JSON document; `None` when the server does not answer with one (optional facts).
async fn get_json(pool: &Pool, route: &str) -> Option<Value> {
    let (status, body) = simple_request(pool, Method::GET, route, None, Duration::from_secs(30))
        .await
        .ok()?;
    if !status.is_success() {
        return None;
    }
    serde_json::from_slice(&body).ok()
}

/// One request's outcome, from its record.
fn outcome(r: &RequestRecord, slo_ms: Option<f64>) -> DiffusionOutcome {
    DiffusionOutcome {
        success: r.success(),
        latency_s: r.latency_s(),
        error: r
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default(),
        peak_memory_mb: r
            .document
            .as_ref()
            .and_then(|d| d.peak_memory_mb)
            .unwrap_or(0.0),
        slo_ms,
    }
}

/// SGLang's metrics over the outcomes of the timed run.
pub fn metrics(outs: &[DiffusionOutcome], duration: f64, slo: Option<f64>) -> DiffusionMetrics {
    let ok: Vec<&DiffusionOutcome> = outs.iter().filter(|o| o.success).collect();
    let lat = sorted(&ok.iter().map(|o| o.latency_s).collect::<Vec<_>>());
    let mem = sorted(
        &ok.iter()
            .map(|o| o.peak_memory_mb)
            .filter(|&m| m > 0.0)
            .collect::<Vec<_>>(),
    );
    let mut m = DiffusionMetrics {
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
        ..DiffusionMetrics::default()
    };
    if let Some(scale) = slo {
        let with: Vec<&DiffusionOutcome> = outs.iter().filter(|o| o.slo_ms.is_some()).collect();
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
    m: &DiffusionMetrics,
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

/// What a diffusion run produced.
#[derive(Clone, Debug)]
pub struct DiffusionServingOutcome {
    pub metrics: DiffusionMetrics,
    /// One per request of the timed run, in plan order.
    pub outcomes: Vec<DiffusionOutcome>,
    /// The measured client's record of each timed request, in plan order.
    pub records: Vec<RequestRecord>,
    pub validity: Validity,
}

/// The file next to the metrics JSON (which keeps exactly SGLang's keys): the validity block
/// and every timed request's record, as `bench serving` measures them.
#[derive(serde::Serialize)]
struct RecordsFile<'a> {
    validity: &'a Validity,
    requests: &'a [RequestRecord],
}

/// Where the records of a run with `--output-file PATH` go: `PATH` with the extension
/// `records.json` (`metrics.json` -> `metrics.records.json`).
pub fn records_path(output_file: &Path) -> PathBuf {
    output_file.with_extension("records.json")
}

/// How often a video job is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Run the diffusion benchmark through the measured load engine: warm-ups, then the timed run
/// released by the pacer; prints the report and the validity block, and writes the metrics
/// JSON when asked.
pub async fn run(o: &DiffusionServingConfig) -> Result<DiffusionServingOutcome, BenchError> {
    if o.flags.slo && o.flags.slo_scale <= 0.0 {
        return Err(BenchError::Config("--slo-scale must be > 0".into()));
    }
    let target = Target::from_base_url(
        &o.base_url,
        inferperf_loadgen::client::request_headers(&[])?,
    )?;
    let pool = Arc::new(Pool::new(target));
    let model = get_json(&pool, "/v1/model_info")
        .await
        .and_then(|v| {
            v["model_path"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| "default".into());
    let task = resolve_task(&pool, o).await;
    let items = build_items(o, task)?;
    let images = read_images(&items)?;
    let contents: Vec<&[u8]> = images.values().map(|(_, b)| b.as_slice()).collect();
    let boundary = crate::multipart::boundary(o.seed, &contents);
    let shape = RequestShape {
        model: &model,
        task,
        flags: &o.flags,
        boundary: &boundary,
    };
    let route = pool.target().path(shape.route());
    let exchange = Exchange {
        method: Method::POST,
        content_type: if shape.multipart() {
            Some(
                HeaderValue::from_str(&crate::multipart::content_type(&boundary))
                    .map_err(|e| BenchError::Config(format!("multipart content type: {e}")))?,
            )
        } else {
            None
        },
        reading: ResponseReading::Document,
        poll: task.is_video().then(|| JobPoll {
            route: route.clone(),
            interval: POLL_INTERVAL,
        }),
    };
    let spec = |requests: Vec<PlannedRequest>, offsets: Vec<u64>, conc, warmup| RunSpec {
        requests: Arc::new(requests),
        offsets,
        max_concurrency: conc,
        path: route.clone(),
        protocol: inferperf_loadgen::backend::Protocol::Generate,
        stream: false,
        timeout: None,
        stall_timeout: None,
        max_consecutive_connect_failures: 8,
        warmup,
        print_requests: false,
        cpu: o.cpu.clone(),
        exchange: exchange.clone(),
    };

    // Warm-ups, one after the other, with one denoising step; they also set the SLO base.
    let mut base = Vec::new();
    if o.warmup_requests > 0 && !items.is_empty() {
        let warm_items: Vec<Item> = (0..o.warmup_requests)
            .map(|i| items[i % items.len()].clone())
            .collect();
        let requests = plan(&shape, &warm_items, &images, Some(1))?;
        let n = requests.len();
        let res = inferperf_loadgen::runner::run(
            pool.clone(),
            spec(requests, vec![0; n], Some(1), true),
            Clock::start(),
            Arc::new(LiveCounters::default()),
            Abort::default(),
        )
        .await;
        for r in res.records.iter().filter(|r| r.success()) {
            if let Some(scale) = slo_scale_of(&o.flags, Some(1)) {
                base.push(r.latency_s() * 1000.0 / scale);
            }
        }
    }
    let slo_ms = if o.flags.slo && !base.is_empty() {
        let b = percentile_sorted(&sorted(&base), 50.0);
        slo_scale_of(&o.flags, o.flags.num_inference_steps).map(|s| b * s * o.flags.slo_scale)
    } else {
        None
    };

    // The schedule: SGLang's Poisson gaps from the seeded generator (each request waits one
    // gap, the first included), as release offsets for the pacer.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
    let exp = (o.request_rate.is_finite() && o.request_rate > 0.0)
        .then(|| Exp::new(o.request_rate))
        .transpose()
        .map_err(|e| BenchError::Config(format!("--request-rate: {e}")))?;
    let mut at = 0.0f64;
    let offsets: Vec<u64> = items
        .iter()
        .map(|_| {
            if let Some(e) = &exp {
                at += e.sample(&mut rng);
            }
            (at * 1e9) as u64
        })
        .collect();
    let requests = plan(&shape, &items, &images, o.flags.num_inference_steps)?;
    let cpu0 = CpuMark::now(&o.cpu);
    let res = inferperf_loadgen::runner::run(
        pool.clone(),
        spec(requests, offsets, o.max_concurrency, false),
        Clock::start(),
        Arc::new(LiveCounters::default()),
        Abort::default(),
    )
    .await;
    let (client_cpu, process_cpu) = (cpu0.client_since(&o.cpu), cpu0.process_since());
    let outs: Vec<DiffusionOutcome> = res.records.iter().map(|r| outcome(r, slo_ms)).collect();
    let m = metrics(
        &outs,
        res.duration_s,
        o.flags.slo.then_some(o.flags.slo_scale),
    );
    let validity = assess(&ValidityInputs::of_run(
        &res,
        exp.is_some(),
        client_cpu,
        process_cpu,
        o.client_threads,
    ));
    let dataset = match o.flags.dataset.unwrap_or(Dataset::Vbench) {
        Dataset::Vbench => "vbench",
        Dataset::Random => "random",
    };
    if o.print {
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
        print!("{}", render(&validity));
        if let Some(e) = outs.iter().find(|o| !o.success) {
            println!("First error: {}", e.error);
        }
    }
    if let Some(path) = &o.output_file {
        let text = serde_json::to_string_pretty(&m)
            .map_err(|e| BenchError::Config(format!("metrics JSON: {e}")))?;
        inferperf_loadgen::jsonl::write_atomic(path, text.as_bytes())?;
        let records = RecordsFile {
            validity: &validity,
            requests: &res.records,
        };
        let text = serde_json::to_string(&records)
            .map_err(|e| BenchError::Config(format!("records JSON: {e}")))?;
        inferperf_loadgen::jsonl::write_atomic(&records_path(path), text.as_bytes())?;
        if o.print {
            println!("Metrics saved to {}", path.display());
            println!("Records saved to {}", records_path(path).display());
        }
    }
    Ok(DiffusionServingOutcome {
        metrics: m,
        outcomes: outs,
        records: res.records,
        validity,
    })
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
            DiffusionOutcome {
                success: true,
                latency_s: 1.0,
                peak_memory_mb: 10.0,
                slo_ms: Some(1500.0),
                ..Default::default()
            },
            DiffusionOutcome {
                success: true,
                latency_s: 2.0,
                slo_ms: Some(1500.0),
                ..Default::default()
            },
            DiffusionOutcome {
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
