//! `inferperf generate`: run the built-in diffusion pipeline once, like `sglang generate`, with
//! SGLang's profiling (`--profile`, `--num-profiled-timesteps`, `--profile-all-stages`) and perf
//! dump (`--perf-dump-path`).
//!
//! The profiler glue lives here, on the pipeline's observer seam: denoising steps (or, with
//! `--profile-all-stages`, pipeline stages) become `ProfilerStep#N` steps of an
//! `inferperf-profiler` session, and the finished trace is published under SGLang's diffusion
//! name `{request_id}-{N}_steps-global-rank0.trace.json.gz`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use inferperf_engine::diffusion::{
    decode_png, DiffusionPipeline, DiffusionRequest, GeneratedMedia, InferperfDiffusionTestDelay,
    InputImage, Stage,
};
use inferperf_profiler::diffusion_dump::{perf_dump, MemoryCheckpoints};
use inferperf_profiler::diffusion_profiler::{
    DiffusionProfileOptions, DiffusionProfiler, RequestObserver,
};
use inferperf_protocol::fs::write_atomic;
use inferperf_protocol::perf_dump::TAG_CLI_GENERATE;

/// SGLang's request id for offline `generate` (it names the trace file).
const OFFLINE_REQUEST_ID: &str = "mocked_fake_id_for_offline_generate";

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// `default` (built-in tiny model, dummy weights), a directory with `config.json` and/or
    /// `model.safetensors`, a config `.json`, or a `.safetensors` file.
    #[arg(long, default_value = "default")]
    pub model_path: String,
    /// Text prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Prompt of the unconditional branch (used when `--guidance-scale` > 1).
    #[arg(long, default_value = "")]
    pub negative_prompt: String,
    /// Conditioning image (PNG).
    #[arg(long)]
    pub image_path: Option<PathBuf>,
    #[arg(long, default_value_t = 1024)]
    pub seed: u64,
    /// Default: the model's (20 for the built-in model).
    #[arg(long)]
    pub num_inference_steps: Option<usize>,
    /// Classifier-free guidance scale; <= 1 disables CFG.
    #[arg(long, default_value_t = 1.0)]
    pub guidance_scale: f64,
    /// Output width; a multiple of 16. Default: the native resolution.
    #[arg(long)]
    pub width: Option<usize>,
    #[arg(long)]
    pub height: Option<usize>,
    /// 1 = image (PNG); more = video (APNG).
    #[arg(long, default_value_t = 1)]
    pub num_frames: usize,
    #[arg(long, default_value_t = 24)]
    pub fps: u32,
    /// A directory, or a file path ending in `.png`/`.apng`.
    #[arg(long, default_value = "outputs/")]
    pub output_path: PathBuf,
    /// File name inside `--output-path` (default: SGLang's `{prompt}_{time}_{hash}`).
    #[arg(long)]
    pub output_file_name: Option<String>,
    /// Request id (names the trace and the perf dump).
    #[arg(long, default_value = OFFLINE_REQUEST_ID)]
    pub request_id: String,
    /// Profile the denoising stage: 1 warm-up step, then `--num-profiled-timesteps` steps.
    #[arg(long)]
    pub profile: bool,
    /// Steps recorded after the warm-up; -1 = every step, no warm-up.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub num_profiled_timesteps: i64,
    /// With `--profile`: record every pipeline stage (one profiler step per stage).
    #[arg(long)]
    pub profile_all_stages: bool,
    /// Trace directory (SGLang's explicit `log_dir`); default
    /// `$SGLANG_DIFFUSION_TORCH_PROFILER_DIR`, then `$SGLANG_TORCH_PROFILER_DIR`, then `./logs`.
    #[arg(long)]
    pub profile_output_dir: Option<PathBuf>,
    /// Write SGLang's stage/step timing JSON here.
    #[arg(long)]
    pub perf_dump_path: Option<PathBuf>,
    /// Test only: `STEP:MS` makes denoising step STEP slower by MS milliseconds.
    #[arg(long, hide = true, value_parser = parse_test_delay)]
    pub inferperf_diffusion_test_delay: Option<InferperfDiffusionTestDelay>,
}

fn parse_test_delay(s: &str) -> Result<InferperfDiffusionTestDelay, String> {
    let (step, ms) = s.split_once(':').ok_or("expected STEP:MS")?;
    Ok(InferperfDiffusionTestDelay {
        step: step.trim().parse().map_err(|e| format!("step: {e}"))?,
        ms: ms.trim().parse().map_err(|e| format!("ms: {e}"))?,
    })
}

/// What `run` produced (paths are absolute when the inputs were).
#[derive(Debug, Default)]
pub struct GenerateOutcome {
    pub output_file: Option<PathBuf>,
    pub trace_file: Option<PathBuf>,
    pub perf_dump: Option<PathBuf>,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    generate(&args)?;
    Ok(ExitCode::SUCCESS)
}

/// The whole command; returns the files it wrote.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<GenerateOutcome> {
    let Some(prompt) = args.prompt.clone() else {
        bail!("--prompt is required");
    };
    let pipeline = load_pipeline(&args.model_path)?;
    let image = match &args.image_path {
        Some(path) => Some(read_image(path)?),
        None => None,
    };
    let request = DiffusionRequest {
        request_id: args.request_id.clone(),
        prompt: prompt.clone(),
        negative_prompt: args.negative_prompt.clone(),
        seed: args.seed,
        num_inference_steps: args.num_inference_steps,
        guidance_scale: args.guidance_scale,
        width: args.width,
        height: args.height,
        num_frames: args.num_frames,
        fps: args.fps,
        image,
        test_delay: args.inferperf_diffusion_test_delay,
    };
    // Refuse bad input before anything is created on disk.
    let shape = pipeline
        .validate(&request)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let profiler = if args.profile {
        Some(DiffusionProfiler::start(
            &DiffusionProfileOptions {
                request_id: args.request_id.clone(),
                profile_all_stages: args.profile_all_stages,
                num_profiled_timesteps: args.num_profiled_timesteps,
                output_dir: args.profile_output_dir.clone(),
            },
            shape.num_inference_steps,
            &shape_args(&request, &shape),
        )?)
    } else {
        None
    };
    let mut observer = RequestObserver {
        profiler,
        memory: MemoryCheckpoints::default(),
    };
    let media = pipeline
        .generate(&request, &mut observer)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut outcome = GenerateOutcome::default();
    if let Some(profiler) = observer.profiler.take() {
        outcome.trace_file = profiler.finish()?;
    }
    let out_path = output_file_path(args, &prompt, &media);
    write_atomic(&out_path, &media.encode()?)?;
    tracing::info!("Saved output to {}", absolute(&out_path).display());
    outcome.output_file = Some(out_path.clone());
    if let Some(path) = &args.perf_dump_path {
        let dump = perf_dump(
            &media,
            &observer.memory.checkpoints,
            &prompt,
            &args.model_path,
            TAG_CLI_GENERATE,
        );
        write_atomic(path, dump.to_pretty_json().as_bytes()).context("perf dump")?;
        tracing::info!("Metrics dumped to: {}", absolute(path).display());
        outcome.perf_dump = Some(path.clone());
    }
    let t = &media.timings;
    println!(
        "Generated {} {}x{} (native {}x{}{}) with {} steps in {:.2} ms (denoising {:.2} ms): {}",
        if media.frames.len() > 1 {
            format!("{}-frame video", media.frames.len())
        } else {
            "image".to_string()
        },
        media.width,
        media.height,
        media.native_width,
        media.native_height,
        if media.upsampled() {
            format!(", upsampled {}x", media.upsample_factor)
        } else {
            String::new()
        },
        media.num_inference_steps,
        ms(t.total),
        ms(t.stage(Stage::Denoising).unwrap_or_default()),
        out_path.display()
    );
    Ok(outcome)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Resolve `--model-path` (`default` is the built-in diffusion model).
fn load_pipeline(model_path: &str) -> anyhow::Result<DiffusionPipeline> {
    inferperf_engine::diffusion::load_model(model_path)
        .map_err(|e| anyhow::anyhow!("cannot load model {model_path}: {e}"))
}

fn read_image(path: &Path) -> anyhow::Result<InputImage> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read input image {}", path.display()))?;
    let decoded = decode_png(&bytes).map_err(|e| {
        anyhow::anyhow!("input image {} is not a readable PNG: {e}", path.display())
    })?;
    let rgb = decoded
        .frames
        .into_iter()
        .next()
        .with_context(|| format!("input image {} has no frame", path.display()))?;
    Ok(InputImage {
        width: decoded.width,
        height: decoded.height,
        rgb,
    })
}

/// SGLang's `_sanitize_filename`: ASCII, spaces to `_`, other characters outside
/// `[A-Za-z0-9._-]` to `_`, runs of `_` collapsed, `._` trimmed, at most 150 characters.
/// Non-ASCII characters are dropped (SGLang NFKD-normalizes first, so `é` keeps its `e`).
fn sanitize_filename(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        let c = if ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-') {
            ch
        } else if ch.is_ascii() {
            '_'
        } else {
            continue;
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    let trimmed: String = out
        .trim_matches(|c| c == '.' || c == '_')
        .chars()
        .take(150)
        .collect();
    if trimmed.is_empty() {
        "output".into()
    } else {
        trimmed
    }
}

/// The output file: `--output-path` itself when it names a `.png`/`.apng` file, otherwise
/// `{output_path}/{name}` with SGLang's default name `{prompt[:100]}_{time}_{hash8}` (the hash
/// is FNV-1a of the parameters, not SHA-256) and our extension (`png`, or `apng` for videos).
fn output_file_path(args: &GenerateArgs, prompt: &str, media: &GeneratedMedia) -> PathBuf {
    let is_file = matches!(
        args.output_path.extension().and_then(|e| e.to_str()),
        Some("png" | "apng")
    );
    if is_file {
        return args.output_path.clone();
    }
    let name = match &args.output_file_name {
        Some(n) => sanitize_filename(n),
        None => {
            let params = format!("{args:?}");
            let hash = inferperf_protocol::hash::fnv1a(params.as_bytes());
            let head: String = prompt.chars().take(100).collect();
            sanitize_filename(&format!(
                "{head}_{}_{:08x}",
                inferperf_protocol::dates::compact_utc(SystemTime::now()),
                hash as u32
            ))
        }
    };
    let name = if name.ends_with(".png") || name.ends_with(".apng") {
        name
    } else {
        format!("{name}.{}", media.extension())
    };
    args.output_path.join(name)
}

/// Honesty labels carried into the trace: native vs output size.
fn shape_args(
    req: &DiffusionRequest,
    shape: &inferperf_engine::diffusion::ResolvedShape,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("request_id".into(), req.request_id.clone().into());
    m.insert(
        "native_hw".into(),
        serde_json::json!([shape.native_height, shape.native_width]),
    );
    m.insert(
        "output_hw".into(),
        serde_json::json!([shape.output_height, shape.output_width]),
    );
    m.insert("upsampled".into(), (shape.upsample > 1).into());
    m.insert("num_frames".into(), shape.num_frames.into());
    m.insert(
        "num_inference_steps".into(),
        shape.num_inference_steps.into(),
    );
    m.insert("cfg".into(), shape.cfg.into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use inferperf_trace::TraceReader;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        args: GenerateArgs,
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir()
                .join(format!("inferperf-gen-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn parse(extra: &[&str]) -> GenerateArgs {
        let mut argv = vec!["generate", "--prompt", "a lighthouse at dusk"];
        argv.extend_from_slice(extra);
        TestCli::try_parse_from(argv).unwrap().args
    }

    fn trace_events(path: &Path) -> Vec<serde_json::Value> {
        let mut r = TraceReader::open(path).unwrap();
        let mut out = Vec::new();
        while let Some(raw) = r.next_event().unwrap() {
            out.push(serde_json::from_slice(raw).unwrap());
        }
        out
    }

    fn named<'a>(events: &'a [serde_json::Value], prefix: &str) -> Vec<&'a str> {
        events
            .iter()
            .filter(|e| e["ph"] == "X")
            .filter_map(|e| e["name"].as_str())
            .filter(|n| n.starts_with(prefix))
            .collect()
    }

    #[test]
    fn profile_records_n_denoising_steps_after_one_warmup_and_dump_adds_up() {
        let tmp = TempDir::new("prof");
        let logs = tmp.0.join("logs");
        let dump = tmp.0.join("perf.json");
        let out = tmp.0.join("img.png");
        let args = parse(&[
            "--num-inference-steps",
            "6",
            "--profile",
            "--num-profiled-timesteps",
            "3",
            "--profile-output-dir",
            logs.to_str().unwrap(),
            "--perf-dump-path",
            dump.to_str().unwrap(),
            "--output-path",
            out.to_str().unwrap(),
        ]);
        let o = generate(&args).unwrap();
        let trace = o.trace_file.unwrap();
        assert_eq!(
            trace.file_name().unwrap().to_str().unwrap(),
            "mocked_fake_id_for_offline_generate-3_steps-global-rank0.trace.json.gz"
        );
        // Only the published file is left in the directory.
        assert_eq!(std::fs::read_dir(&logs).unwrap().count(), 1);
        let events = trace_events(&trace);
        assert_eq!(
            named(&events, "ProfilerStep#"),
            ["ProfilerStep#2", "ProfilerStep#3", "ProfilerStep#4"]
        );
        assert_eq!(
            named(&events, "denoising_step_"),
            ["denoising_step_1", "denoising_step_2", "denoising_step_3"]
        );
        let label = events
            .iter()
            .find(|e| e["name"] == "diffusion_request")
            .unwrap();
        assert_eq!(label["args"]["native_hw"], serde_json::json!([256, 256]));
        assert_eq!(label["args"]["upsampled"], false);

        let text = std::fs::read_to_string(&dump).unwrap();
        let d = inferperf_protocol::perf_dump::PerfDump::from_json_str(&text).unwrap();
        assert_eq!(d.tag, "cli_generate");
        assert_eq!(d.request_id, "mocked_fake_id_for_offline_generate");
        assert_eq!(d.meta["prompt"], "a lighthouse at dusk");
        let names: Vec<&str> = d.steps.iter().map(|s| s.name.as_str()).collect();
        let all: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, all);
        assert_eq!(d.denoise_steps_ms.len(), 6);
        let denoise = d.stage_ms("DenoisingStage").unwrap();
        let sum = d.denoise_steps_total_ms();
        // The steps are timed inside the stage: together they fit in it (what lies between
        // them is the stage's own work, however long a loaded machine makes it).
        assert!(
            sum > 0.0 && sum <= denoise + 0.001,
            "steps {sum} vs stage {denoise}"
        );
        assert!(d.memory_checkpoints.contains_key("after_DenoisingStage"));
    }

    #[test]
    fn profile_all_stages_records_every_stage() {
        let tmp = TempDir::new("all");
        let args = parse(&[
            "--num-inference-steps",
            "2",
            "--profile",
            "--profile-all-stages",
            "--request-id",
            "rid7",
            "--profile-output-dir",
            tmp.0.to_str().unwrap(),
            "--output-path",
            tmp.0.join("x.png").to_str().unwrap(),
        ]);
        let trace = generate(&args).unwrap().trace_file.unwrap();
        assert!(trace.ends_with("rid7-full_stages-global-rank0.trace.json.gz"));
        let events = trace_events(&trace);
        assert_eq!(named(&events, "ProfilerStep#").len(), 7);
        for stage in Stage::ALL {
            assert_eq!(named(&events, stage.name()), [stage.name()], "{stage:?}");
        }
        assert_eq!(named(&events, "denoising_step_").len(), 2);
    }

    #[test]
    fn outputs_are_png_and_apng_of_the_requested_size_and_deterministic() {
        let tmp = TempDir::new("out");
        let a = tmp.0.join("a.png");
        let b = tmp.0.join("b.png");
        for p in [&a, &b] {
            let args = parse(&[
                "--num-inference-steps",
                "3",
                "--width",
                "512",
                "--height",
                "256",
                "--seed",
                "42",
                "--guidance-scale",
                "3.5",
                "--output-path",
                p.to_str().unwrap(),
            ]);
            generate(&args).unwrap();
        }
        let bytes = std::fs::read(&a).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap());
        let img = decode_png(&bytes).unwrap();
        assert_eq!((img.width, img.height, img.animated), (512, 256, false));

        let args = parse(&[
            "--num-inference-steps",
            "2",
            "--num-frames",
            "4",
            "--fps",
            "8",
            "--output-path",
            tmp.0.to_str().unwrap(),
            "--output-file-name",
            "clip",
        ]);
        let out = generate(&args).unwrap().output_file.unwrap();
        assert_eq!(out, tmp.0.join("clip.apng"));
        let vid = decode_png(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(
            (vid.width, vid.height, vid.animated, vid.frames.len()),
            (128, 128, true, 4)
        );
    }

    #[test]
    fn bad_input_is_a_clear_error_and_writes_nothing() {
        let tmp = TempDir::new("bad");
        let out = tmp.0.join("o");
        let o = out.to_str().unwrap();
        let err = |extra: &[&str]| {
            let mut v = extra.to_vec();
            v.extend(["--output-path", o, "--profile", "--profile-output-dir", o]);
            format!("{:#}", generate(&parse(&v)).unwrap_err())
        };
        let e = err(&["--width", "1000"]);
        assert!(e.contains("width") && e.contains("multiple of 16"), "{e}");
        let e = err(&["--num-inference-steps", "0"]);
        assert!(e.contains("num_inference_steps"), "{e}");
        let garbage = tmp.0.join("garbage.png");
        std::fs::write(&garbage, b"definitely not a png").unwrap();
        let e = err(&["--image-path", garbage.to_str().unwrap()]);
        assert!(
            e.contains("garbage.png") && e.contains("not a readable PNG"),
            "{e}"
        );
        let e = err(&["--image-path", "/nonexistent/in.png"]);
        assert!(e.contains("cannot read input image"), "{e}");
        let e = err(&["--model-path", "/nonexistent/model"]);
        assert!(e.contains("does not exist"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn sglang_file_names() {
        assert_eq!(sanitize_filename("a cat, on  a mat!"), "a_cat_on_a_mat");
        assert_eq!(sanitize_filename("..."), "output");
        let ts = inferperf_protocol::dates::compact_utc(SystemTime::now());
        assert_eq!(ts.len(), 15, "{ts}");
    }
}
