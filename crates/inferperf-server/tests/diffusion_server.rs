//! The diffusion server end to end (`--model-path diffusion`, 127.0.0.1:0): text-to-image and
//! image-to-image return PNGs of the requested size, per-request perf dumps follow SGLang's
//! schema, video jobs go from queued to completed with an APNG of the requested frames, the
//! job list and delete work, and bad input is a 400 naming the field.

use std::time::{Duration, Instant};

use base64::Engine as _;
use inferperf_engine::diffusion::decode_png;
use inferperf_protocol::perf_dump::PerfDump;
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::{json, Value};

async fn start() -> (EmbeddedServer, reqwest::Client) {
    let s = EmbeddedServer::start(ServerConfig {
        model_path: "diffusion".into(),
        ..ServerConfig::ephemeral()
    })
    .await
    .expect("diffusion server");
    (s, reqwest::Client::new())
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http.post(url).json(&body).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn png_of(b64: &Value) -> (usize, usize, usize) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_str().expect("b64_json"))
        .expect("base64");
    let d = decode_png(&bytes).expect("a valid PNG");
    (d.width, d.height, d.frames.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_pngs_of_the_requested_size_with_a_perf_dump() {
    let (s, http) = start().await;
    let base = s.base_url();
    let models: Value = http
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    assert_eq!(models["data"][0]["model_type"], "diffusion");
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.json");
    let (status, body) = post(
        &http,
        format!("{base}/v1/images/generations"),
        json!({"prompt": "a red fox", "size": "64x48", "num_inference_steps": 2,
               "response_format": "b64_json", "perf_dump_path": dump}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(png_of(&body["data"][0]["b64_json"]), (64, 48, 1));
    assert!(body["inference_time_s"].as_f64().is_some_and(|t| t > 0.0));
    let d = PerfDump::from_json_str(&std::fs::read_to_string(&dump).expect("dump written"))
        .expect("SGLang's perf-dump schema");
    assert_eq!(d.tag, "server_perf_dump");
    assert_eq!(d.denoise_steps_ms.len(), 2);
    let denoise: f64 = d.denoise_steps_ms.iter().map(|s| s.duration_ms).sum();
    let stage = d
        .steps
        .iter()
        .find(|s| s.name == "DenoisingStage")
        .map(|s| s.duration_ms)
        .expect("DenoisingStage");
    assert!(
        (denoise - stage).abs() <= stage * 0.01 + 0.05,
        "{denoise} vs {stage}"
    );

    // Image-to-image through multipart, conditioned on the first image.
    let png = base64::engine::general_purpose::STANDARD
        .decode(body["data"][0]["b64_json"].as_str().unwrap_or_default())
        .expect("base64");
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(png).file_name("in.png"),
        )
        .text("prompt", "the same fox at night")
        .text("size", "32x32")
        .text("num_inference_steps", "2");
    let r = http
        .post(format!("{base}/v1/images/edits"))
        .multipart(form)
        .send()
        .await
        .expect("edits");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(png_of(&v["data"][0]["b64_json"]), (32, 32, 1));
    s.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_naming_the_field() {
    let (s, http) = start().await;
    let base = s.base_url();
    let url = format!("{base}/v1/images/generations");
    for (body, param) in [
        (json!({"prompt": "x", "size": "65x48"}), "width"),
        (
            json!({"prompt": "x", "num_inference_steps": 0}),
            "num_inference_steps",
        ),
        (json!({"prompt": "x", "n": 2}), "n"),
        (
            json!({"prompt": "x", "response_format": "url"}),
            "response_format",
        ),
        (json!({"prompt": "x", "size": "big"}), "size"),
        (json!({"prompt": ""}), "prompt"),
    ] {
        let (status, reply) = post(&http, url.clone(), body.clone()).await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reply["error"]["param"], param, "{body} -> {reply}");
    }
    // Image-to-image without an image, and with a file that is not a PNG.
    let form = reqwest::multipart::Form::new().text("prompt", "x");
    let r = http
        .post(format!("{base}/v1/images/edits"))
        .multipart(form)
        .send()
        .await
        .expect("edits");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "image");
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(b"GIF89a".to_vec()))
        .text("prompt", "x");
    let r = http
        .post(format!("{base}/v1/images/edits"))
        .multipart(form)
        .send()
        .await
        .expect("edits");
    assert_eq!(r.status(), 400);
    // A multipart video request without its input_reference image.
    let form = reqwest::multipart::Form::new().text("prompt", "x");
    let r = http
        .post(format!("{base}/v1/videos"))
        .multipart(form)
        .send()
        .await
        .expect("videos");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "input_reference");
    // Too many frames for the model.
    let (status, reply) = post(
        &http,
        format!("{base}/v1/videos"),
        json!({"prompt": "x", "num_frames": 1000}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["param"], "num_frames", "{reply}");
    s.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_jobs_complete_with_their_frames_and_can_be_listed_and_deleted() {
    let (s, http) = start().await;
    let base = s.base_url();
    let (status, job) = post(
        &http,
        format!("{base}/v1/videos"),
        json!({"prompt": "waves", "size": "32x32", "num_frames": 3, "fps": 8,
               "extra_body": {"num_inference_steps": 2}}),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"], "queued");
    let id = job["id"].as_str().expect("id").to_string();
    // Poll the job as clients do, until it leaves the queue (bounded).
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let v: Value = http
            .get(format!("{base}/v1/videos/{id}"))
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("json");
        if v["status"] != "queued" {
            break v;
        }
        assert!(Instant::now() < deadline, "the job never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"], 100);
    let bytes = http
        .get(format!("{base}/v1/videos/{id}/content"))
        .send()
        .await
        .expect("content")
        .bytes()
        .await
        .expect("bytes");
    let d = decode_png(&bytes).expect("an APNG");
    assert_eq!((d.width, d.height, d.frames.len()), (32, 32, 3));
    let list: Value = http
        .get(format!("{base}/v1/videos?limit=10"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"][0]["id"], id.as_str());
    let deleted: Value = http
        .delete(format!("{base}/v1/videos/{id}"))
        .send()
        .await
        .expect("delete")
        .json()
        .await
        .expect("json");
    assert_eq!(deleted["status"], "deleted");
    let r = http
        .get(format!("{base}/v1/videos/{id}"))
        .send()
        .await
        .expect("poll");
    assert_eq!(r.status(), 404);
    s.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profiled_request_writes_its_trace_with_the_profiled_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    // nextest runs every test in its own process, so the variable is this test's alone.
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe { std::env::set_var("SGLANG_DIFFUSION_TORCH_PROFILER_DIR", dir.path()) };
    let (s, http) = start().await;
    let base = s.base_url();
    let (status, body) = post(
        &http,
        format!("{base}/v1/images/generations"),
        json!({"prompt": "a tree", "size": "32x32", "num_inference_steps": 4,
               "profile": true, "num_profiled_timesteps": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().expect("id");
    let trace = dir
        .path()
        .join(format!("{id}-2_steps-global-rank0.trace.json.gz"));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&trace).expect("trace written")),
        &mut text,
    )
    .expect("gunzip");
    let doc: Value = serde_json::from_str(&text).expect("trace JSON");
    let names: Vec<&str> = doc["traceEvents"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    // One warm-up step, then exactly the two profiled denoising steps.
    let steps: Vec<&&str> = names
        .iter()
        .filter(|n| n.starts_with("ProfilerStep#"))
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(
        names.contains(&"denoising_step_1") && names.contains(&"denoising_step_2"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"denoising_step_0"),
        "the warm-up step is not recorded"
    );
    let (status, reply) = post(
        &http,
        format!("{base}/v1/images/generations"),
        json!({"prompt": "x", "profile": true, "num_profiled_timesteps": 0}),
    )
    .await;
    assert_eq!(
        (status, reply["error"]["param"].as_str()),
        (400, Some("num_profiled_timesteps"))
    );
    s.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_stop_profile_capture_denoising_steps_as_profiler_steps() {
    let (s, http) = start().await;
    let base = s.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let r = http
        .post(format!("{base}/start_profile"))
        .json(&json!({"output_dir": dir.path(), "activities": ["CPU"]}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    // A second start while profiling is SGLang's 409.
    let again = http
        .post(format!("{base}/start_profile"))
        .send()
        .await
        .expect("start again");
    assert_eq!(again.status(), 409);
    let (status, _) = post(
        &http,
        format!("{base}/v1/images/generations"),
        json!({"prompt": "a boat", "size": "32x32", "num_inference_steps": 3}),
    )
    .await;
    assert_eq!(status, 200);
    let r = http
        .post(format!("{base}/stop_profile"))
        .send()
        .await
        .expect("stop");
    assert_eq!(r.status(), 200);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".trace.json.gz"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&files[0]).expect("open")),
        &mut text,
    )
    .expect("gunzip");
    let doc: Value = serde_json::from_str(&text).expect("json");
    let steps = doc["traceEvents"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("ProfilerStep#"))
        })
        .count();
    assert_eq!(steps, 3, "one profiler step per denoising step");
    s.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_output_root_confines_perf_dumps_and_profiles() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let s = EmbeddedServer::start(ServerConfig {
        model_path: "diffusion".into(),
        profile_output_root: Some(root.clone()),
        ..ServerConfig::ephemeral()
    })
    .await
    .expect("diffusion server");
    let root = root.canonicalize().expect("the root is created at start");
    let (base, http) = (s.base_url(), reqwest::Client::new());
    let image = |dump: &str| json!({"prompt": "x", "size": "32x32", "num_inference_steps": 1, "perf_dump_path": dump});

    // A perf dump outside the root is refused before generating; nothing is written.
    let escape = tmp.path().join("escape.json");
    for dump in [escape.display().to_string(), "../escape.json".to_string()] {
        let (status, body) =
            post(&http, format!("{base}/v1/images/generations"), image(&dump)).await;
        assert_eq!(status, 403, "{dump}: {body}");
        assert_eq!(body["error"]["param"], "perf_dump_path", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&dump) && message.contains(&root.display().to_string()),
            "{message}"
        );
    }
    assert!(!escape.exists());
    // Inside (relative to the root): written.
    let (status, body) = post(
        &http,
        format!("{base}/v1/images/generations"),
        image("dumps/d.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(root.join("dumps/d.json").is_file());

    // /start_profile: the same rule for output_dir.
    let r = http
        .post(format!("{base}/start_profile"))
        .json(&json!({"output_dir": tmp.path().join("out")}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 403);
    assert!(!tmp.path().join("out").exists());
    let r = http
        .post(format!("{base}/start_profile"))
        .json(&json!({"output_dir": "traces", "profile_id": "p"}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/stop_profile"))
        .send()
        .await
        .expect("stop");
    assert_eq!(r.status(), 200);
    assert!(root.join("traces/p-TP-0.trace.json.gz").is_file());
    s.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_that_cannot_be_written_is_a_500_naming_the_file() {
    let (s, http) = start().await;
    let base = s.base_url();
    let tmp = tempfile::tempdir().expect("tempdir");
    let gone = tmp.path().join("gone");
    let r = http
        .post(format!("{base}/start_profile"))
        .json(&json!({"output_dir": gone, "profile_id": "lost"}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    std::fs::remove_dir(&gone).expect("remove the output directory");
    let r = http
        .post(format!("{base}/stop_profile"))
        .send()
        .await
        .expect("stop");
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.expect("json");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let file = gone.join("lost-TP-0.trace.json.gz").display().to_string();
    assert!(
        message.contains(&file) && message.contains("No such file or directory"),
        "{message}"
    );
    s.shutdown().await.expect("shutdown");
}
