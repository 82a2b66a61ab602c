//! Which kind of server a profiling window is opened on, and what it honours.
//!
//! SGLang (and inferperf's reference server) write traces into the `output_dir` the client sends
//! and close a `num_steps` window by themselves. vLLM does neither: its `/start_profile` body
//! takes `profile_prefix`, `delay_iterations` and `max_iterations` (strict types, unknown fields
//! ignored), its workers stop after `max_iterations` but the session (and the front-end
//! profiler) stays open until `/stop_profile`, and its traces go to the `torch_profiler_dir` the
//! server was started with. A client that sent SGLang's body to vLLM left an unbounded window
//! open (a 21 GB worker, a server that ignored SIGTERM); so every window is opened through
//! [`open_window`], which translates the request, and closed by [`OpenWindow::close`] whenever
//! the server will not close it itself.

use std::path::PathBuf;
use std::time::Duration;

use inferperf_protocol::profile::ProfileReqInput;
use serde_json::{json, Value};

use super::{http_error, read_reply, ClientError, ProfileTarget};

/// The profiling dialect a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// SGLang or inferperf's reference server: `ProfileReqInput`, `output_dir` and `num_steps`
    /// honoured.
    Sglang,
    /// vLLM: `profile_prefix`/`delay_iterations`/`max_iterations`; traces where the server was
    /// started with `--profiler-config torch_profiler_dir`.
    Vllm,
    /// Neither recognised: SGLang's body is sent, and the client closes the window itself.
    Unknown,
}

impl ServerKind {
    /// How the kind is named in messages.
    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Sglang => "SGLang-compatible",
            ServerKind::Vllm => "vLLM",
            ServerKind::Unknown => "unrecognised",
        }
    }

    /// Whether the server writes its traces into the `output_dir` the client sends.
    pub fn honours_output_dir(self) -> bool {
        self == ServerKind::Sglang
    }

    /// Whether a window of `num_steps` closes on the server without `/stop_profile`.
    pub fn closes_bounded_windows(self) -> bool {
        self == ServerKind::Sglang
    }
}

/// Ask the server what it is: SGLang's `/server_info` (or `/get_server_info`) carries
/// `internal_states`/`tp_size`; vLLM answers `GET /version` with `{"version"}` (and, in its
/// dev mode, `/server_info` with `vllm_config`). Anything else is [`ServerKind::Unknown`].
pub async fn detect_server_kind(client: &reqwest::Client, base_url: &str) -> ServerKind {
    let base = base_url.trim_end_matches('/');
    for path in ["/server_info", "/get_server_info"] {
        if let Some(info) = get_json(client, &format!("{base}{path}")).await {
            if info.get("vllm_config").is_some() {
                return ServerKind::Vllm;
            }
            if info.get("internal_states").is_some() || info.get("tp_size").is_some() {
                return ServerKind::Sglang;
            }
        }
    }
    match get_json(client, &format!("{base}/version")).await {
        Some(v) if v.get("version").is_some_and(Value::is_string) => ServerKind::Vllm,
        _ => ServerKind::Unknown,
    }
}

/// GET `url` within 10 s; the response when it is a success, `None` on any failure (probing a
/// server must never fail a run).
async fn get_ok(client: &reqwest::Client, url: &str) -> Option<reqwest::Response> {
    let resp = client
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    resp.status().is_success().then_some(resp)
}

/// [`get_ok`] as JSON.
async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    get_ok(client, url).await?.json().await.ok()
}

/// The `/start_profile` body for `kind`, and notes on what could not be expressed (to print).
pub fn start_body(kind: ServerKind, body: &ProfileReqInput) -> (Value, Vec<String>) {
    match kind {
        ServerKind::Sglang | ServerKind::Unknown => (
            serde_json::to_value(body).unwrap_or_else(|_| json!({})),
            Vec::new(),
        ),
        ServerKind::Vllm => {
            let mut notes = Vec::new();
            let mut out = serde_json::Map::new();
            if let Some(n) = body.num_steps {
                out.insert("max_iterations".into(), json!(n));
            }
            if let Some(s) = body.start_step {
                out.insert("delay_iterations".into(), json!(s));
                notes.push(format!(
                    "vLLM counts steps from the start call: start step {s} is sent as \
                     delay_iterations {s} (SGLang's is an absolute forward step)"
                ));
            }
            let prefix = body
                .profile_prefix
                .as_deref()
                .or(body.profile_id.as_deref());
            if let Some(p) = prefix {
                if vllm_prefix_ok(p) {
                    out.insert("profile_prefix".into(), json!(p));
                } else {
                    notes.push(format!(
                        "vLLM accepts only [A-Za-z0-9._-] prefixes starting with a letter or \
                         digit (1-128 characters): prefix {p:?} not sent"
                    ));
                }
            }
            if body.output_dir.is_some() {
                notes.push(
                    "vLLM ignores output_dir: the server writes its traces to the \
                     torch_profiler_dir it was started with"
                        .into(),
                );
            }
            if body.profile_by_stage || body.merge_profiles {
                notes.push(
                    "vLLM has no per-stage windows or trace merging; those options are not sent"
                        .into(),
                );
            }
            (Value::Object(out), notes)
        }
    }
}

/// vLLM's `validate_profile_prefix`.
fn vllm_prefix_ok(p: &str) -> bool {
    (1..=128).contains(&p.len())
        && p.is_ascii()
        && p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && p.chars()
            .skip(1)
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Where a window's traces end up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceLocation {
    /// The directory the client sent (the server writes into it).
    Sent(PathBuf),
    /// The server decides; `reported` is its trace directory when it says so.
    ServerDecides { reported: Option<String> },
}

/// A window opened on one server.
#[derive(Clone, Debug)]
pub struct OpenWindow {
    pub target: ProfileTarget,
    pub kind: ServerKind,
    /// Whether the client must call `/stop_profile` (the server will not close it itself).
    pub needs_stop: bool,
    pub location: TraceLocation,
}

/// Open a window on `target`: detect the server, translate `body`, print the notes on what
/// was not expressible, and decide whether the client has to close it.
pub async fn open_window(
    client: &reqwest::Client,
    target: &ProfileTarget,
    body: &ProfileReqInput,
) -> Result<(OpenWindow, Vec<String>), ClientError> {
    let kind = detect_server_kind(client, &target.url).await;
    let (wire, mut notes) = start_body(kind, body);
    let url = format!("{}/start_profile", target.url);
    let resp = client
        .post(&url)
        .json(&wire)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|source| http_error(url.clone(), source))?;
    read_reply(&url, resp).await?;
    let needs_stop = body.num_steps.is_none() || !kind.closes_bounded_windows();
    if kind == ServerKind::Unknown {
        notes.push(format!(
            "{} is not recognised as SGLang or vLLM: inferperf closes the window itself",
            target.url
        ));
    }
    let location = match (&body.output_dir, kind.honours_output_dir()) {
        (Some(dir), true) => TraceLocation::Sent(PathBuf::from(dir)),
        _ => TraceLocation::ServerDecides {
            reported: reported_trace_dir(client, &target.url, kind).await,
        },
    };
    Ok((
        OpenWindow {
            target: target.clone(),
            kind,
            needs_stop,
            location,
        },
        notes,
    ))
}

/// The trace directory a server reports: vLLM's `profiler_config.torch_profiler_dir` from
/// `/server_info?config_format=json` (served in its dev mode only).
pub async fn reported_trace_dir(
    client: &reqwest::Client,
    base_url: &str,
    kind: ServerKind,
) -> Option<String> {
    if kind != ServerKind::Vllm {
        return None;
    }
    let info = get_json(
        client,
        &format!(
            "{}/server_info?config_format=json",
            base_url.trim_end_matches('/')
        ),
    )
    .await?;
    info.pointer("/vllm_config/profiler_config/torch_profiler_dir")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

impl OpenWindow {
    /// Close the window with `/stop_profile` when the server will not close it itself; waits at
    /// most `timeout` for the server to write its traces. `Ok(None)` when no call was needed.
    pub async fn close(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Option<String>, ClientError> {
        if !self.needs_stop {
            return Ok(None);
        }
        stop_profile_within(client, &self.target.url, timeout)
            .await
            .map(Some)
    }

    /// One line saying where the traces are, true for every kind of server.
    pub fn describe_location(&self) -> String {
        match &self.location {
            TraceLocation::Sent(dir) => format!(
                "Profiler traces of {} ({}) go to {}",
                self.target.label,
                self.target.url,
                dir.display()
            ),
            TraceLocation::ServerDecides { reported: Some(d) } => format!(
                "Profiler traces of {} ({}): the {} server ignores output_dir and writes to {d}",
                self.target.label,
                self.target.url,
                self.kind.label()
            ),
            TraceLocation::ServerDecides { reported: None } => format!(
                "Profiler traces of {} ({}): the {} server ignores output_dir and decides where \
                 its traces go (vLLM: the torch_profiler_dir of its --profiler-config)",
                self.target.label,
                self.target.url,
                self.kind.label()
            ),
        }
    }
}

/// Engine steps the server has run so far, from `/metrics`: vLLM's
/// `vllm:iteration_tokens_total_count` (one observation per engine step) or SGLang-style
/// `sglang:forward_ct`. `None` when the server exposes neither.
pub async fn engine_steps(client: &reqwest::Client, base_url: &str) -> Option<u64> {
    let url = format!("{}/metrics", base_url.trim_end_matches('/'));
    let text = get_ok(client, &url).await?.text().await.ok()?;
    let vllm = prometheus_sum(&text, "vllm:iteration_tokens_total_count");
    let sglang = prometheus_sum(&text, "sglang:forward_ct");
    if vllm.is_none() && sglang.is_none() {
        return None;
    }
    Some(vllm.unwrap_or(0.0) as u64 + sglang.unwrap_or(0.0) as u64)
}

/// The one Prometheus text-format reader of the client side: the sum of the samples of metric
/// `name` over every label set (`name{...} v` and `name v`), `None` when no sample of it
/// parses. Comment lines are skipped; a sample's optional timestamp is ignored.
pub fn prometheus_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if rest.starts_with('{') {
            rest.rsplit_once('}').map(|(_, v)| v)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None
        };
        let Some(v) = value
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        *found.get_or_insert(0.0) += v;
    }
    found
}

/// How a client-side wait for a window's steps ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowWait {
    /// The server ran the steps.
    StepsRan,
    /// The time limit passed first.
    TimedOut,
    /// `cancel` resolved (Ctrl-C, SIGTERM).
    Cancelled,
}

/// Wait until the server has run `steps` more engine steps than `from` (watched on `/metrics`
/// every 250 ms), `max_wait` has passed, or `cancel` resolves, whichever comes first. Without a
/// step counter only the time limit and `cancel` end the wait.
pub async fn wait_for_steps(
    client: &reqwest::Client,
    base_url: &str,
    from: Option<u64>,
    steps: u64,
    max_wait: Duration,
    cancel: impl std::future::Future<Output = ()>,
) -> WindowWait {
    let deadline = tokio::time::Instant::now() + max_wait;
    let watch = async {
        loop {
            if let (Some(from), Some(now)) = (from, engine_steps(client, base_url).await) {
                if now >= from + steps {
                    return WindowWait::StepsRan;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return WindowWait::TimedOut;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::select! {
        end = watch => end,
        _ = tokio::time::sleep_until(deadline) => WindowWait::TimedOut,
        _ = cancel => WindowWait::Cancelled,
    }
}

/// `POST /stop_profile`, failing with [`ClientError::Timeout`] after `timeout` (a server writing
/// a huge trace, or one that never answers) instead of hanging.
pub async fn stop_profile_within(
    client: &reqwest::Client,
    base_url: &str,
    timeout: Duration,
) -> Result<String, ClientError> {
    let url = format!("{}/stop_profile", base_url.trim_end_matches('/'));
    let send = client.post(&url).json(&json!({})).timeout(timeout).send();
    let resp = send.await.map_err(|source| {
        if source.is_timeout() {
            ClientError::Timeout {
                url: url.clone(),
                after: timeout,
            }
        } else {
            http_error(url.clone(), source)
        }
    })?;
    read_reply(&url, resp).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vllm_gets_its_own_bounds_and_never_sglangs_fields() {
        let body = ProfileReqInput {
            output_dir: Some("/tmp/x".into()),
            num_steps: Some(5),
            start_step: Some(2),
            profile_prefix: Some("run-1".into()),
            activities: Some(vec!["CPU".into()]),
            ..Default::default()
        };
        let (wire, notes) = start_body(ServerKind::Vllm, &body);
        assert_eq!(
            wire,
            json!({"max_iterations": 5, "delay_iterations": 2, "profile_prefix": "run-1"})
        );
        assert!(notes.iter().any(|n| n.contains("ignores output_dir")));
        let (sglang, _) = start_body(ServerKind::Sglang, &body);
        assert_eq!(sglang["num_steps"], json!(5));
        assert_eq!(sglang["output_dir"], json!("/tmp/x"));
    }

    #[test]
    fn vllm_prefix_rules() {
        assert!(vllm_prefix_ok("a.b_c-1"));
        assert!(!vllm_prefix_ok("-a"));
        assert!(!vllm_prefix_ok("a/b"));
        assert!(!vllm_prefix_ok(""));
        assert!(!vllm_prefix_ok(&"a".repeat(129)));
    }
}
