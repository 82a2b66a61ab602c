//! The diffusion server's HTTP API (SGLang `sglang serve` for image/video models):
//! `/v1/images/generations` (JSON), `/v1/images/edits` (multipart, image-to-image),
//! `/v1/videos` (asynchronous jobs: create, list, poll, delete, content), `/v1/models`,
//! `/v1/model_info`, `/get_server_info`, `/health_generate`. Bad input is a 400 naming the field;
//! a video whose generation fails is a `failed` job with the error on poll. (`/health` and the
//! profile routes are on the server's common base.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use inferperf_engine::diffusion::{
    decode_png, DiffusionError, DiffusionRequest, InferperfDiffusionTestDelay, InputImage,
};
use inferperf_protocol::diffusion::{
    parse_size, ImageData, ImageGenerationsRequest, ImageResponse, VideoError,
    VideoGenerationsRequest, VideoResponse,
};
use serde_json::{json, Value};

use super::profile::{output_file, profile_options};
use super::worker::DiffusionWorker;
use crate::api_error::ApiError;
use crate::config::ServerConfig;
use inferperf_profiler::OutputRoot;

/// One video job.
struct VideoJob {
    response: VideoResponse,
    content: Option<Vec<u8>>,
}

/// Shared state of the diffusion routes.
pub struct DiffusionState {
    pub worker: DiffusionWorker,
    pub args: ServerConfig,
    /// `--profile-output-root`: where a request's perf dump and trace may go.
    pub output_root: Option<OutputRoot>,
    videos: Mutex<BTreeMap<String, VideoJob>>,
}

impl DiffusionState {
    pub fn new(
        worker: DiffusionWorker,
        args: ServerConfig,
        output_root: Option<OutputRoot>,
    ) -> Self {
        Self {
            worker,
            args,
            output_root,
            videos: Mutex::new(BTreeMap::new()),
        }
    }

    fn model_name(&self) -> String {
        self.args
            .served_model_name
            .clone()
            .unwrap_or_else(|| self.args.model_path.clone())
    }
}

type Shared = Arc<DiffusionState>;

/// The diffusion model's routes, over `state`.
pub fn routes(state: Shared) -> Router {
    Router::new()
        .route("/health_generate", get(health_generate))
        .route("/v1/models", get(models))
        .route("/v1/models/{model}", get(model))
        .route("/v1/model_info", get(model_info))
        .route("/model_info", get(model_info))
        .route("/get_server_info", get(server_info))
        .route("/server_info", get(server_info))
        .route(
            "/v1/images/generations",
            axum::routing::post(images_generations),
        )
        .route("/v1/images/edits", axum::routing::post(images_edits))
        .route("/v1/videos", get(list_videos).post(create_video))
        .route("/v1/videos/{id}", get(get_video).delete(delete_video))
        .route("/v1/videos/{id}/content", get(video_content))
        .with_state(state)
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}

fn api_error(e: DiffusionError) -> ApiError {
    match e {
        DiffusionError::InvalidRequest { field, message } => {
            ApiError::invalid_param(field, format!("invalid {field}: {message}"))
        }
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// `/health_generate`: 200, like `/health` (the diffusion model runs no probe generation).
async fn health_generate() -> impl IntoResponse {
    StatusCode::OK
}

/// SGLang's model card, with the tasks this pipeline serves.
fn card(s: &DiffusionState) -> Value {
    let info = s.worker.pipeline().info();
    json!({
        "id": s.model_name(),
        "object": "model",
        "created": now_s(),
        "owned_by": "sglang",
        "root": s.args.model_path,
        "parent": null,
        "max_model_len": null,
        "num_gpus": 0,
        "task_type": "T2I",
        "supported_tasks": ["text-to-image", "image-to-image", "text-to-video", "image-to-video"],
        "dit_precision": "fp32",
        "vae_precision": "fp32",
        "pipeline_name": "inferperf-tiny-dit",
        "pipeline_class": "DiffusionPipeline",
        "load_format": info.load_format,
        "model_type": "diffusion",
    })
}

async fn models(State(s): State<Shared>) -> impl IntoResponse {
    Json(json!({"object": "list", "data": [card(&s)]}))
}

async fn model(State(s): State<Shared>, Path(m): Path<String>) -> Response {
    if m == s.model_name() {
        return Json(card(&s)).into_response();
    }
    let mut e = ApiError::new(
        StatusCode::NOT_FOUND,
        format!("The model `{m}` does not exist."),
    )
    .with_param("model")
    .body();
    e.error.code = Some(inferperf_protocol::error::ErrorCode::Name(
        "model_not_found".into(),
    ));
    e.error.kind = "invalid_request_error".into();
    (StatusCode::NOT_FOUND, Json(e)).into_response()
}

async fn model_info(State(s): State<Shared>) -> impl IntoResponse {
    Json(json!({"model_path": s.args.model_path, "model_type": "diffusion", "is_generation": true}))
}

async fn server_info(State(s): State<Shared>) -> impl IntoResponse {
    let mut v = serde_json::to_value(&s.args).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("model_type".into(), json!("diffusion"));
        m.insert("task_type".into(), json!("T2I"));
        m.insert("version".into(), json!(crate::routes::info::VERSION));
    }
    Json(v)
}

/// `WxH` from `size` or explicit `width`/`height` (explicit wins); `None` means the default.
fn resolve_size(
    size: Option<&str>,
    width: Option<u32>,
    height: Option<u32>,
    default: Option<(u32, u32)>,
) -> Result<(Option<usize>, Option<usize>), ApiError> {
    let from_size = match size.filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_size(s).ok_or_else(|| {
            ApiError::invalid_param("size", format!("size must be WIDTHxHEIGHT, got {s:?}"))
        })?),
        None => default,
    };
    let w = width.or(from_size.map(|x| x.0)).map(|v| v as usize);
    let h = height.or(from_size.map(|x| x.1)).map(|v| v as usize);
    Ok((w, h))
}

fn delay(
    d: Option<inferperf_protocol::diffusion::InferperfDiffusionTestDelay>,
) -> Option<InferperfDiffusionTestDelay> {
    d.map(|d| InferperfDiffusionTestDelay {
        step: d.step as usize,
        ms: d.ms,
    })
}

fn image_request(
    r: &ImageGenerationsRequest,
    image: Option<InputImage>,
) -> Result<DiffusionRequest, ApiError> {
    if r.prompt.trim().is_empty() {
        return Err(ApiError::invalid_param(
            "prompt",
            "prompt must not be empty",
        ));
    }
    if r.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid_param(
            "n",
            "n must be 1: the reference server generates one image per request",
        ));
    }
    let (width, height) = resolve_size(r.size.as_deref(), r.width, r.height, Some((1024, 1024)))?;
    Ok(DiffusionRequest {
        request_id: new_id("img"),
        prompt: r.prompt.clone(),
        negative_prompt: r.negative_prompt.clone().unwrap_or_default(),
        seed: r.seed.unwrap_or(1024),
        num_inference_steps: r.num_inference_steps.map(|n| n as usize),
        guidance_scale: r.guidance_scale.unwrap_or(1.0),
        width,
        height,
        num_frames: 1,
        fps: 24,
        image,
        test_delay: delay(r.inferperf_diffusion_test_delay),
    })
}

async fn run_image(
    s: &DiffusionState,
    r: ImageGenerationsRequest,
    image: Option<InputImage>,
) -> Result<Response, ApiError> {
    if r.response_format.as_deref() == Some("url") {
        return Err(ApiError::invalid_param(
            "response_format",
            "response_format `url` is not supported; use `b64_json`",
        ));
    }
    let req = image_request(&r, image)?;
    s.worker.validate(&req).map_err(api_error)?;
    let prompt = req.prompt.clone();
    let id = req.request_id.clone();
    let profile = profile_options(s, &id, &r.extra, None, None, None)?;
    let dump = output_file(s, r.perf_dump_path.as_deref(), "perf_dump_path")?;
    let g = s
        .worker
        .generate(req, dump, profile)
        .await
        .map_err(api_error)?;
    if let Some(t) = &g.trace_file {
        tracing::info!("Saved profiler traces to: {}", t.display());
    }
    Ok(Json(ImageResponse {
        id,
        created: now_s(),
        data: vec![ImageData {
            b64_json: Some(base64::engine::general_purpose::STANDARD.encode(&g.encoded)),
            url: None,
            revised_prompt: Some(prompt),
            file_path: None,
        }],
        peak_memory_mb: Some(g.peak_memory_mb),
        inference_time_s: Some(g.inference_time_s),
    })
    .into_response())
}

async fn images_generations(
    State(s): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let r: ImageGenerationsRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    run_image(&s, r, None).await
}

/// A PNG upload as the pipeline's input image; `field` names it in errors.
fn read_image(bytes: &[u8], field: &str) -> Result<InputImage, ApiError> {
    let d = decode_png(bytes).map_err(|e| {
        ApiError::invalid_param(field, format!("{field} is not a readable PNG: {e}"))
    })?;
    let rgb = d
        .frames
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::invalid_param(field, format!("{field} has no frame")))?;
    Ok(InputImage {
        width: d.width,
        height: d.height,
        rgb,
    })
}

async fn images_edits(State(s): State<Shared>, mut form: Multipart) -> Result<Response, ApiError> {
    let mut fields = serde_json::Map::new();
    let mut image = None;
    while let Some((name, data)) = next_part(&mut form).await? {
        if name == "image" || name == "image[]" {
            if image.is_none() {
                image = Some(read_image(&data, "image")?);
            }
            continue;
        }
        fields.insert(name, form_value(&data));
    }
    let Some(image) = image else {
        return Err(ApiError::invalid_param(
            "image",
            "image-to-image needs an `image` file part (PNG)",
        ));
    };
    let r: ImageGenerationsRequest = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::bad_request(format!("invalid form fields: {e}")))?;
    run_image(&s, r, Some(image)).await
}

/// The body of `POST /v1/videos`: JSON, or multipart with an `input_reference` image, form
/// fields and an `extra_body` JSON string (SGLang's two forms); `extra_body` is merged into the
/// top level either way.
async fn video_body(req: axum::extract::Request) -> Result<(Value, Option<InputImage>), ApiError> {
    use axum::extract::FromRequest;
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    let mut m = serde_json::Map::new();
    let mut image = None;
    if multipart {
        let mut form = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?;
        while let Some((name, data)) = next_part(&mut form).await? {
            if name == "input_reference" {
                image = Some(read_image(&data, "input_reference")?);
                continue;
            }
            m.insert(name, form_value(&data));
        }
        if image.is_none() {
            return Err(ApiError::invalid_param(
                "input_reference",
                "a multipart video request needs an `input_reference` image file (PNG)",
            ));
        }
    } else {
        // The extractor keeps to the server's body limit (`DIFFUSION_MAX_BODY_BYTES`).
        let body = axum::body::Bytes::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(o)) => m = o,
            Ok(_) => return Err(ApiError::bad_request("the body must be a JSON object")),
            Err(e) => return Err(ApiError::bad_request(format!("invalid JSON body: {e}"))),
        }
    }
    if let Some(extra) = m.remove("extra_body") {
        let extra = match extra {
            Value::String(s) => serde_json::from_str::<Value>(&s).map_err(|e| {
                ApiError::invalid_param("extra_body", format!("extra_body is not JSON: {e}"))
            })?,
            other => other,
        };
        if let Value::Object(extra) = extra {
            for (k, x) in extra {
                m.insert(k, x);
            }
        }
    }
    Ok((Value::Object(m), image))
}

async fn create_video(
    State(s): State<Shared>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (v, uploaded) = video_body(request).await?;
    let r: VideoGenerationsRequest = serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))?;
    if r.prompt.trim().is_empty() {
        return Err(ApiError::invalid_param(
            "prompt",
            "prompt must not be empty",
        ));
    }
    let fps = r.fps.unwrap_or(24);
    let seconds = r.seconds.unwrap_or(4);
    let num_frames = r.num_frames.unwrap_or(fps * seconds) as usize;
    let (width, height) = resolve_size(r.size.as_deref(), r.width, r.height, None)?;
    let image = uploaded;
    let id = new_id("video");
    let req = DiffusionRequest {
        request_id: id.clone(),
        prompt: r.prompt.clone(),
        negative_prompt: r.negative_prompt.clone().unwrap_or_default(),
        seed: r.seed.unwrap_or(1024),
        num_inference_steps: r.num_inference_steps.map(|n| n as usize),
        guidance_scale: r.guidance_scale.unwrap_or(1.0),
        width,
        height,
        num_frames,
        fps,
        image,
        test_delay: delay(r.inferperf_diffusion_test_delay),
    };
    let shape = s.worker.validate(&req).map_err(api_error)?;
    let profile = profile_options(
        &s,
        &id,
        &r.extra,
        r.profile,
        r.num_profiled_timesteps,
        r.profile_all_stages,
    )?;
    let dump = output_file(&s, r.perf_dump_path.as_deref(), "perf_dump_path")?;
    let response = VideoResponse {
        id: id.clone(),
        object: "video".into(),
        model: s.model_name(),
        status: "queued".into(),
        progress: 0,
        created_at: now_s(),
        size: format!("{}x{}", shape.output_width, shape.output_height),
        seconds: format!("{}", num_frames as f64 / fps.max(1) as f64),
        ..VideoResponse::default()
    };
    s.videos.lock().unwrap_or_else(|e| e.into_inner()).insert(
        id.clone(),
        VideoJob {
            response: response.clone(),
            content: None,
        },
    );
    let state = s.clone();
    tokio::spawn(async move {
        let result = state.worker.generate(req, dump, profile).await;
        let mut jobs = state.videos.lock().unwrap_or_else(|e| e.into_inner());
        // Deleted meanwhile: nothing to record.
        let Some(job) = jobs.get_mut(&id) else { return };
        match result {
            Ok(g) => {
                job.response.status = "completed".into();
                job.response.progress = 100;
                job.response.completed_at = Some(now_s());
                job.response.peak_memory_mb = Some(g.peak_memory_mb);
                job.response.inference_time_s = Some(g.inference_time_s);
                job.content = Some(g.encoded);
            }
            Err(e) => {
                job.response.status = "failed".into();
                job.response.error = Some(VideoError {
                    message: e.to_string(),
                });
            }
        }
    });
    Ok(Json(response).into_response())
}

#[derive(serde::Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
    order: Option<String>,
}

async fn list_videos(
    State(s): State<Shared>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_param("limit", "limit must be in 1..=100"));
    }
    let jobs = s.videos.lock().unwrap_or_else(|e| e.into_inner());
    let mut all: Vec<VideoResponse> = jobs.values().map(|j| j.response.clone()).collect();
    all.sort_by_key(|v| (v.created_at, v.id.clone()));
    if q.order.as_deref() != Some("asc") {
        all.reverse();
    }
    if let Some(after) = &q.after {
        if let Some(i) = all.iter().position(|v| &v.id == after) {
            all.drain(..=i);
        }
    }
    all.truncate(limit);
    Ok(Json(json!({"object": "list", "data": all})).into_response())
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Video not found")
}

async fn get_video(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let jobs = s.videos.lock().unwrap_or_else(|e| e.into_inner());
    let job = jobs.get(&id).ok_or_else(not_found)?;
    Ok(Json(job.response.clone()).into_response())
}

async fn delete_video(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut jobs = s.videos.lock().unwrap_or_else(|e| e.into_inner());
    let mut job = jobs.remove(&id).ok_or_else(not_found)?;
    job.response.status = "deleted".into();
    Ok(Json(job.response).into_response())
}

async fn video_content(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let jobs = s.videos.lock().unwrap_or_else(|e| e.into_inner());
    let job = jobs.get(&id).ok_or_else(not_found)?;
    match &job.content {
        // Frames as an animated PNG (no video encoder on the reference server).
        Some(bytes) => Ok(([(header::CONTENT_TYPE, "image/apng")], bytes.clone()).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Generation is still in-progress",
        )),
    }
}

/// The next part of a multipart body: its name and bytes (a 400 naming the part on errors).
async fn next_part(form: &mut Multipart) -> Result<Option<(String, bytes::Bytes)>, ApiError> {
    let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?
    else {
        return Ok(None);
    };
    let name = field.name().unwrap_or_default().to_string();
    let data = field
        .bytes()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading part {name}: {e}")))?;
    Ok(Some((name, data)))
}

/// A multipart text field as JSON: numbers, booleans and objects arrive as text and stay typed
/// for the request model; anything else is a string.
fn form_value(data: &[u8]) -> Value {
    let text = String::from_utf8_lossy(data).into_owned();
    serde_json::from_str::<Value>(&text)
        .ok()
        .filter(|v| v.is_number() || v.is_boolean() || v.is_object())
        .unwrap_or(Value::String(text))
}
