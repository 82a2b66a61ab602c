//! HTTP client side of profiling: `/start_profile` and `/stop_profile` on one server or on the
//! prefill and decode workers of a PD-separated deployment (what `bench serving --profile`,
//! `inferperf profile` and `inferperf send-one --profile` use), plus `send_one`.
//!
//! Plain HTTP/1.1 over reqwest with no TLS and no proxy (benchmark targets are direct).

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use inferperf_protocol::profile::ProfileReqInput;
use serde_json::Value;

use crate::naming::python_time_str;

pub mod remote;

/// The HTTP client type the functions here take (re-exported so callers need no reqwest dep).
pub use reqwest::Client as HttpClient;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connection or protocol failure; `detail` is the whole error chain on one line.
    #[error("request to {url} failed: {detail}")]
    Http { url: String, detail: String },
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("invalid response from {url}: {message}")]
    Invalid { url: String, message: String },
    /// The server did not answer in time (e.g. `/stop_profile` still writing a huge trace).
    #[error("{url} did not answer within {} s; the server may still be busy (its profiler may still be writing)", after.as_secs())]
    Timeout { url: String, after: Duration },
    #[error("creating {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// `reqwest::Error` with its sources, deduplicated (reqwest repeats the URL at each level).
fn http_error(url: impl Into<String>, err: reqwest::Error) -> ClientError {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    ClientError::Http {
        url: url.into(),
        detail: parts.join(": "),
    }
}

/// A client suited to benchmark targets: no proxy, HTTP/1.1, generous timeouts for
/// `/stop_profile` (which returns only after the traces are written).
pub fn http_client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|source| http_error(String::new(), source))
}

/// One server to profile, with the label used in messages (`Prefill-0`, `Decode-1`, or the URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileTarget {
    pub label: String,
    pub url: String,
}

impl ProfileTarget {
    /// A single (non-PD) server.
    pub fn single(url: &str) -> Self {
        Self {
            label: "Server".into(),
            url: url.trim_end_matches('/').to_string(),
        }
    }
}

/// Targets of a PD-separated deployment, labelled like SGLang's bench_serving
/// (`Prefill-{i}`, then `Decode-{i}`).
pub fn pd_targets(prefill_urls: &[String], decode_urls: &[String]) -> Vec<ProfileTarget> {
    let mk = |kind: &str, i: usize, url: &String| ProfileTarget {
        label: format!("{kind}-{i}"),
        url: url.trim_end_matches('/').to_string(),
    };
    prefill_urls
        .iter()
        .enumerate()
        .map(|(i, u)| mk("Prefill", i, u))
        .chain(
            decode_urls
                .iter()
                .enumerate()
                .map(|(i, u)| mk("Decode", i, u)),
        )
        .collect()
}

/// Python's `os.path.normpath` on an absolute path: drops `.`, resolves `..` lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The client-side trace directory of `sglang.profiler` / bench_serving:
/// `abs(normpath(base or $SGLANG_TORCH_PROFILER_DIR or /tmp)) / [name/] str(time.time())`,
/// created with `mkdir -p` (on this machine; the server writes to the same path, so both must
/// share it when they are different hosts).
pub fn timestamped_output_dir(
    base: Option<&Path>,
    name: Option<&str>,
) -> Result<PathBuf, ClientError> {
    let base = match base {
        Some(b) => b.to_path_buf(),
        None => std::env::var_os("SGLANG_TORCH_PROFILER_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp")),
    };
    let abs = std::path::absolute(&base).map_err(|source| ClientError::Io {
        path: base.clone(),
        error: source,
    })?;
    let mut dir = normalize(&abs);
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        dir.push(name);
    }
    dir.push(python_time_str(SystemTime::now()));
    std::fs::create_dir_all(&dir).map_err(|source| ClientError::Io {
        path: dir.clone(),
        error: source,
    })?;
    Ok(dir)
}

async fn read_reply(url: &str, resp: reqwest::Response) -> Result<String, ClientError> {
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|source| http_error(url.to_string(), source))?;
    if !status.is_success() {
        return Err(ClientError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            body: body.trim().to_string(),
        });
    }
    Ok(body)
}

/// `POST {base_url}/start_profile` with `body`; returns the server's reply text
/// (`"Start profiling.\n"`). Non-2xx answers are errors carrying the server's message.
pub async fn start_profile(
    client: &reqwest::Client,
    base_url: &str,
    body: &ProfileReqInput,
) -> Result<String, ClientError> {
    let url = format!("{}/start_profile", base_url.trim_end_matches('/'));
    tracing::debug!(%url, body = %serde_json::to_string(body).unwrap_or_default(), "start_profile");
    let resp = client
        .post(&url)
        .json(body)
        .send()
        .await
        .map_err(|source| http_error(url.clone(), source))?;
    read_reply(&url, resp).await
}

/// `POST {base_url}/stop_profile` with body `{}`; returns once the server has written the
/// traces (`"Stop profiling. This will take some time.\n"`).
pub async fn stop_profile(client: &reqwest::Client, base_url: &str) -> Result<String, ClientError> {
    let url = format!("{}/stop_profile", base_url.trim_end_matches('/'));
    let resp = client
        .post(&url)
        .json(&serde_json::json!({}))
        .send()
        .await
        .map_err(|source| http_error(url.clone(), source))?;
    read_reply(&url, resp).await
}

/// The name `bench serving --profile` gives the server traces merged with its client request
/// trace, next to them.
pub const MERGED_WITH_CLIENT_FILE: &str = "merged-with-client.trace.json.gz";

/// The trace files a server wrote into `dir` (the `output_dir` the client sent), sorted:
/// rank traces and `merged-*` files (`*.trace.json.gz`) and MEM timelines (`*-memory*.json.gz`).
/// Call it after [`stop_profile`] returned (the server replies only once its files are on
/// disk) to report where the traces are. A missing directory is an empty list.
pub fn written_traces(dir: &Path) -> Result<Vec<PathBuf>, ClientError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(ClientError::Io {
                path: dir.to_path_buf(),
                error,
            })
        }
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                // The client's own merge of these with its request trace is not the server's.
                n != MERGED_WITH_CLIENT_FILE
                    && (n.ends_with(".trace.json.gz")
                        || (n.contains("-memory") && n.ends_with(".json.gz")))
            })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The result of one target in a fan-out call.
#[derive(Debug)]
pub struct TargetResult {
    pub target: ProfileTarget,
    pub result: Result<String, ClientError>,
}

/// Start profiling on every target, one after the other (as SGLang does), with the body
/// `body_for(target)` (bench_serving gives each worker its own timestamped directory).
/// Never short-circuits: every target gets its call and its result.
pub async fn start_profile_all(
    client: &reqwest::Client,
    targets: &[ProfileTarget],
    mut body_for: impl FnMut(&ProfileTarget) -> ProfileReqInput,
) -> Vec<TargetResult> {
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let body = body_for(t);
        let result = start_profile(client, &t.url, &body).await;
        out.push(TargetResult {
            target: t.clone(),
            result,
        });
    }
    out
}

/// Stop profiling on every target, one after the other.
pub async fn stop_profile_all(
    client: &reqwest::Client,
    targets: &[ProfileTarget],
) -> Vec<TargetResult> {
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let result = stop_profile(client, &t.url).await;
        out.push(TargetResult {
            target: t.clone(),
            result,
        });
    }
    out
}

/// `GET /get_server_info` (falling back to `/server_info` on 404), as JSON; `sglang.profiler`
/// saves it as `server_args.json` next to the traces.
pub async fn server_info(client: &reqwest::Client, base_url: &str) -> Result<Value, ClientError> {
    let base = base_url.trim_end_matches('/');
    let mut last = None;
    for path in ["/get_server_info", "/server_info"] {
        let url = format!("{base}{path}");
        let resp = client
            .get(&url)
            .send()
            .await
            .map_err(|source| http_error(url.clone(), source))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            last = Some(ClientError::Status {
                url,
                status: 404,
                body: String::new(),
            });
            continue;
        }
        let text = read_reply(&url, resp).await?;
        return serde_json::from_str(&text).map_err(|e| ClientError::Invalid {
            url,
            message: e.to_string(),
        });
    }
    Err(last.unwrap_or(ClientError::Invalid {
        url: base.to_string(),
        message: "no server info endpoint".into(),
    }))
}

/// Save the server's info as `server_args.json` in the trace directory `dir`, as
/// `sglang.profiler` and genai-bench do (kept if already there; written through a temp file).
/// A failure is only a warning: the traces matter more than the metadata.
pub async fn save_server_args(client: &reqwest::Client, base_url: &str, dir: &Path) {
    let path = dir.join("server_args.json");
    if path.exists() {
        return;
    }
    let result = match server_info(client, base_url).await {
        Ok(info) => inferperf_protocol::fs::write_atomic_with(&path, |f| {
            serde_json::to_writer_pretty(f, &info).map_err(std::io::Error::other)
        })
        .map_err(|e| e.source.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        tracing::warn!("could not save {}: {e}", path.display());
    }
}

/// What `send_one` sends: the flags of `python -m sglang.test.send_one`.
#[derive(Clone, Debug, PartialEq)]
pub struct SendOneOptions {
    pub prompt: String,
    pub batch_size: usize,
    pub different_prompts: bool,
    pub temperature: f64,
    pub max_new_tokens: usize,
    pub frequency_penalty: f64,
    pub presence_penalty: f64,
    pub json: bool,
    pub return_logprob: bool,
    pub image: bool,
    pub many_images: bool,
    pub stream: bool,
}

/// send_one's default prompt.
pub const SEND_ONE_PROMPT: &str =
    "Human: Give me a fully functional FastAPI server. Show the python code.\n\nAssistant:";

const EXAMPLE_IMAGE: &str =
    "https://raw.githubusercontent.com/sgl-project/sglang/main/examples/assets/example_image.png";

/// The `/generate` body send_one builds (same prompts, stop strings and fields).
pub fn send_one_body(o: &SendOneOptions) -> Value {
    let mut prompt = o.prompt.clone();
    let image_data = if o.image {
        prompt = "Human: Describe this image in a very short sentence.\n\nAssistant:".into();
        Value::from(EXAMPLE_IMAGE)
    } else if o.many_images {
        prompt = "Human: I have one reference image and many images.Describe their relationship in a very short sentence.\n\nAssistant:".into();
        Value::from(vec![EXAMPLE_IMAGE; 4])
    } else {
        Value::Null
    };
    let json_schema = if o.json {
        prompt = "Human: What is the capital of France and how is that city like. Give me 3 trivial information about that city. Write in a format of json.\nAssistant:".into();
        Value::from("$$ANY$$")
    } else {
        Value::Null
    };
    let text = if o.batch_size > 1 {
        if o.different_prompts {
            Value::from(
                (0..o.batch_size)
                    .map(|i| format!("Test case {}: {prompt}", i + 1))
                    .collect::<Vec<_>>(),
            )
        } else {
            Value::from(vec![prompt; o.batch_size])
        }
    } else {
        Value::from(prompt)
    };
    serde_json::json!({
        "text": text,
        "image_data": image_data,
        "sampling_params": {
            "temperature": o.temperature,
            "max_new_tokens": o.max_new_tokens,
            "frequency_penalty": o.frequency_penalty,
            "presence_penalty": o.presence_penalty,
            "json_schema": json_schema,
            "stop": ["Question", "Assistant:", "<|separator|>", "<|eos|>"],
        },
        "return_logprob": o.return_logprob,
        "stream": o.stream,
    })
}

/// send_one's result row.
#[derive(Clone, Debug, PartialEq)]
pub struct SendOneResult {
    /// Generated text (non-streaming) or the concatenated streamed text.
    pub text: String,
    /// `meta_info.e2e_latency`, seconds.
    pub latency_s: f64,
    /// `meta_info.completion_tokens`.
    pub tokens: u64,
    /// `completion_tokens / spec_verify_ct` when speculative decoding ran, else 1.0.
    pub acc_length: f64,
    /// `tokens / latency`.
    pub speed: f64,
}

/// POST `/generate` like send_one. `on_text` receives streamed text deltas as they arrive.
pub async fn send_one(
    client: &reqwest::Client,
    base_url: &str,
    opts: &SendOneOptions,
    mut on_text: impl FnMut(&str),
) -> Result<SendOneResult, ClientError> {
    let url = format!("{}/generate", base_url.trim_end_matches('/'));
    let http = |source| http_error(url.clone(), source);
    let invalid = |message: String| ClientError::Invalid {
        url: url.clone(),
        message,
    };
    let mut resp = client
        .post(&url)
        .json(&send_one_body(opts))
        .send()
        .await
        .map_err(http)?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        return Err(ClientError::Status {
            url: url.clone(),
            status,
            body: body.trim().to_string(),
        });
    }
    let mut ret = Value::Null;
    let mut streamed = String::new();
    if opts.stream {
        let mut pending: Vec<u8> = Vec::new();
        let mut last_len = 0usize;
        'outer: while let Some(chunk) = resp.chunk().await.map_err(http)? {
            pending.extend_from_slice(&chunk);
            while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end();
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                if line == "data: [DONE]" {
                    break 'outer;
                }
                let value: Value =
                    serde_json::from_str(data.trim()).map_err(|e| invalid(e.to_string()))?;
                let item = if opts.batch_size > 1 {
                    value.get(0).cloned().unwrap_or(value)
                } else {
                    value
                };
                let text = item["text"].as_str().unwrap_or_default();
                if let Some(delta) = text.get(last_len..) {
                    on_text(delta);
                    streamed.push_str(delta);
                }
                last_len = text.len();
                ret = item;
            }
        }
    } else {
        let value: Value = resp.json().await.map_err(http)?;
        ret = if opts.batch_size > 1 {
            value.get(0).cloned().unwrap_or(Value::Null)
        } else {
            value
        };
    }
    let meta = ret
        .get("meta_info")
        .ok_or_else(|| invalid("no meta_info in the response".into()))?;
    let latency_s = meta["e2e_latency"]
        .as_f64()
        .ok_or_else(|| invalid("meta_info.e2e_latency missing".into()))?;
    let tokens = meta["completion_tokens"]
        .as_u64()
        .ok_or_else(|| invalid("meta_info.completion_tokens missing".into()))?;
    let verify = meta
        .get("spec_verify_ct")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let acc_length = if verify > 0 {
        tokens as f64 / verify as f64
    } else {
        1.0
    };
    let speed = if latency_s > 0.0 {
        tokens as f64 / latency_s
    } else {
        0.0
    };
    let text = if opts.stream {
        streamed
    } else {
        ret["text"].as_str().unwrap_or_default().to_string()
    };
    Ok(SendOneResult {
        text,
        latency_s,
        tokens,
        acc_length,
        speed,
    })
}

/// Which API `send_one` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOneApi {
    /// SGLang's native `/generate` (send_one's own).
    Generate,
    /// OpenAI `/v1/completions` (vLLM, SGLang, any OpenAI-compatible server).
    Completions,
    /// OpenAI `/v1/chat/completions`.
    Chat,
}

/// `send_one` over an OpenAI API: the same prompt and sampling, `max_tokens` for
/// `max_new_tokens`; latency is measured here (OpenAI responses carry none) and the token
/// count comes from `usage.completion_tokens`. `model` `None` asks `/v1/models`.
pub async fn send_one_openai(
    client: &reqwest::Client,
    base_url: &str,
    api: SendOneApi,
    model: Option<&str>,
    opts: &SendOneOptions,
    mut on_text: impl FnMut(&str),
) -> Result<SendOneResult, ClientError> {
    let base = base_url.trim_end_matches('/');
    let model = match model {
        Some(m) => m.to_string(),
        None => first_model(client, base).await?,
    };
    let (path, mut body) = match api {
        SendOneApi::Chat => (
            "/v1/chat/completions",
            serde_json::json!({"messages": [{"role": "user", "content": opts.prompt}]}),
        ),
        _ => (
            "/v1/completions",
            serde_json::json!({"prompt": opts.prompt}),
        ),
    };
    let url = format!("{base}{path}");
    let http = |source| http_error(url.clone(), source);
    let invalid = |message: String| ClientError::Invalid {
        url: url.clone(),
        message,
    };
    body["model"] = Value::from(model);
    body["max_tokens"] = Value::from(opts.max_new_tokens);
    body["temperature"] = Value::from(opts.temperature);
    body["frequency_penalty"] = Value::from(opts.frequency_penalty);
    body["presence_penalty"] = Value::from(opts.presence_penalty);
    body["stream"] = Value::from(opts.stream);
    if opts.stream {
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    let t0 = std::time::Instant::now();
    let mut resp = client.post(&url).json(&body).send().await.map_err(http)?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        return Err(ClientError::Status {
            url: url.clone(),
            status,
            body: text.trim().to_string(),
        });
    }
    let delta_of = |v: &Value| -> String {
        let c = &v["choices"][0];
        c["text"]
            .as_str()
            .or(c["delta"]["content"].as_str())
            .or(c["message"]["content"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut text = String::new();
    let mut tokens = None;
    if opts.stream {
        let mut pending: Vec<u8> = Vec::new();
        'outer: while let Some(chunk) = resp.chunk().await.map_err(http)? {
            pending.extend_from_slice(&chunk);
            while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim().strip_prefix("data:").map(str::trim) else {
                    continue;
                };
                if data == "[DONE]" {
                    break 'outer;
                }
                let v: Value = serde_json::from_str(data).map_err(|e| invalid(e.to_string()))?;
                let d = delta_of(&v);
                on_text(&d);
                text.push_str(&d);
                if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                    tokens = Some(n);
                }
            }
        }
    } else {
        let v: Value = resp.json().await.map_err(http)?;
        text = delta_of(&v);
        tokens = v["usage"]["completion_tokens"].as_u64();
    }
    let latency_s = t0.elapsed().as_secs_f64();
    let tokens = tokens.ok_or_else(|| invalid("usage.completion_tokens missing".into()))?;
    Ok(SendOneResult {
        text,
        latency_s,
        tokens,
        acc_length: 1.0,
        speed: if latency_s > 0.0 {
            tokens as f64 / latency_s
        } else {
            0.0
        },
    })
}

/// `data[0].id` of `GET /v1/models`.
async fn first_model(client: &reqwest::Client, base: &str) -> Result<String, ClientError> {
    let url = format!("{base}/v1/models");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|source| http_error(url.clone(), source))?;
    let text = read_reply(&url, resp).await?;
    let v: Value = serde_json::from_str(&text).map_err(|e| ClientError::Invalid {
        url: url.clone(),
        message: e.to_string(),
    })?;
    v["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ClientError::Invalid {
            url,
            message: "no model listed; pass --model".into(),
        })
}

#[cfg(test)]
mod tests;
