//! Server-side profiling around a `bench serving` run: SGLang's `--profile*` flags (including
//! `--pd-separated` with prefill/decode worker URLs) and genai-bench's `--sglang-profile*`
//! equivalents, turned into `/start_profile` and `/stop_profile` calls on every target.
//!
//! Differences from SGLang, on purpose: the profile calls happen outside the measured duration;
//! a failed start is reported (SGLang is silent outside PD mode); in PD mode `/stop_profile` is
//! skipped when `--profile-num-steps` bounds the window (SGLang posts it anyway and the server
//! answers "not profiling"); and the run prints where the traces were written.
//!
//! Every window is opened through `inferperf_profiler::client::remote`, which detects the kind
//! of server: vLLM gets its own body (`max_iterations`/`delay_iterations`) and is always
//! stopped after the run (it keeps a session open until `/stop_profile`); an interrupted run
//! stops bounded windows too, so no window outlives the benchmark.

use std::path::{Path, PathBuf};
use std::time::Duration;

use inferperf_profiler::client::remote::{self, OpenWindow, TraceLocation};
use inferperf_profiler::client::{self as pc, ProfileTarget};
use inferperf_protocol::profile::ProfileReqInput;

use crate::config::ServingConfig;
use inferperf_loadgen::error::BenchError;

/// Which client's conventions the flags asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// `bench_serving --profile`: `{base}/{time}` directories, stop after the run unless the
    /// window is bounded.
    Sglang,
    /// genai-bench `--sglang-profile`: `{base}/{time}` directories with `server_args.json`, a
    /// bounded window (`--sglang-profile-steps`, default 5), never a stop call.
    GenaiBench,
}

/// What to ask every profiled server, decided from the flags before the run.
#[derive(Clone, Debug)]
pub struct ProfilePlan {
    style: Style,
    targets: Vec<ProfileTarget>,
    body: ProfileReqInput,
    base_dir: Option<PathBuf>,
}

/// Whether the flags ask for profiling, and of which servers. `base_url` is the benchmarked
/// server (profiled unless `--pd-separated` names the workers).
pub fn plan(args: &ServingConfig, base_url: &str) -> Result<Option<ProfilePlan>, BenchError> {
    if args.profile && args.sglang_profile {
        return Err(BenchError::Config(
            "--profile and --sglang-profile are two spellings of the same request; give one".into(),
        ));
    }
    if !args.profile && !args.sglang_profile {
        return Ok(None);
    }
    let prefill = args.profile_prefill_url.clone().unwrap_or_default();
    let decode = args.profile_decode_url.clone().unwrap_or_default();
    if !prefill.is_empty() && !decode.is_empty() {
        return Err(BenchError::Config(
            "--profile-prefill-url and --profile-decode-url are mutually exclusive".into(),
        ));
    }
    let targets = if args.pd_separated {
        if prefill.is_empty() && decode.is_empty() {
            println!(
                "Warning: PD separated mode requires --profile-prefill-url or --profile-decode-url"
            );
            println!("Skipping profiler start. Please specify worker URLs for profiling.");
            return Ok(None);
        }
        pc::pd_targets(&prefill, &decode)
    } else {
        if !prefill.is_empty() || !decode.is_empty() {
            return Err(BenchError::Config(
                "--profile-prefill-url/--profile-decode-url need --pd-separated".into(),
            ));
        }
        vec![ProfileTarget::single(base_url)]
    };
    let plan = if args.sglang_profile {
        let activities: Vec<String> = args
            .sglang_profile_activities
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        ProfilePlan {
            style: Style::GenaiBench,
            targets,
            body: ProfileReqInput {
                num_steps: Some(args.sglang_profile_steps),
                activities: Some(activities),
                profile_by_stage: args.sglang_profile_by_stage,
                ..ProfileReqInput::default()
            },
            base_dir: Some(PathBuf::from(
                args.sglang_profile_output_dir
                    .clone()
                    .unwrap_or_else(|| "/tmp/genai_bench_profiles".into()),
            )),
        }
    } else {
        // `--profile-steps` overrides `--profile-num-steps`; by-stage defaults to 5 steps.
        let num_steps = args
            .profile_steps
            .or(args.profile_num_steps)
            .or(args.profile_by_stage.then_some(5));
        ProfilePlan {
            style: Style::Sglang,
            targets,
            body: ProfileReqInput {
                start_step: args.profile_start_step,
                num_steps,
                activities: Some(args.profile_activities.clone()),
                profile_by_stage: args.profile_by_stage,
                profile_stages: args.profile_stages.clone(),
                profile_prefix: args.profile_prefix.clone(),
                ..ProfileReqInput::default()
            },
            base_dir: args.profile_output_dir.as_ref().map(PathBuf::from),
        }
    };
    Ok(Some(plan))
}

/// The profiled servers after `/start_profile`: each window with the directory sent.
#[derive(Debug)]
pub struct ActiveProfile {
    started: Vec<(OpenWindow, PathBuf)>,
}

/// How long `/stop_profile` may take (the server writes its traces before answering).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(600);

impl ProfilePlan {
    /// The servers this plan profiles.
    pub fn targets(&self) -> &[ProfileTarget] {
        &self.targets
    }

    /// The `/start_profile` body for one target with its output directory.
    pub fn body_for(&self, dir: &Path) -> ProfileReqInput {
        ProfileReqInput {
            output_dir: Some(dir.to_string_lossy().into_owned()),
            ..self.body.clone()
        }
    }

    /// Arms the profiler on every target, one after the other, each with its own timestamped
    /// directory (as SGLang does). Failures are printed and that target is left out; the run
    /// goes on.
    pub async fn start(self, http: &reqwest::Client) -> ActiveProfile {
        let pd = self.targets.len() > 1 || self.targets.iter().any(|t| t.label != "Server");
        println!("Starting profiler...");
        let mut started = Vec::new();
        for target in &self.targets {
            let dir = match pc::timestamped_output_dir(self.base_dir.as_deref(), None) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!(
                        "Failed to start profiler for {} worker at {}: {e}",
                        target.label, target.url
                    );
                    continue;
                }
            };
            if self.style == Style::GenaiBench {
                pc::save_server_args(http, &target.url, &dir).await;
            }
            match remote::open_window(http, target, &self.body_for(&dir)).await {
                Ok((window, notes)) => {
                    if pd {
                        println!(
                            "Profiler started for {} worker at {}",
                            target.label, target.url
                        );
                    } else {
                        println!("Profiler started");
                    }
                    for n in notes {
                        println!("Note: {n}");
                    }
                    if window.needs_stop && self.body.num_steps.is_some() {
                        println!(
                            "Note: the {} server does not close a {}-step window by itself; \
                             inferperf stops it after the run",
                            window.kind.label(),
                            self.body.num_steps.unwrap_or_default()
                        );
                    }
                    started.push((window, dir));
                }
                Err(e) => eprintln!(
                    "Failed to start profiler for {} worker at {}: {e}",
                    target.label, target.url
                ),
            }
        }
        ActiveProfile { started }
    }
}

impl ActiveProfile {
    /// Closes every window the server will not close itself (open-ended ones, and any window
    /// on a server that ignores `num_steps`); with `interrupted`, bounded windows too, since
    /// their steps may never come. Call it after the measured run, also an aborted one: no
    /// window stays open when the benchmark exits.
    pub async fn stop(&self, http: &reqwest::Client, interrupted: bool) {
        let to_close: Vec<&OpenWindow> = self
            .started
            .iter()
            .map(|(w, _)| w)
            .filter(|w| w.needs_stop || interrupted)
            .collect();
        if to_close.is_empty() {
            return;
        }
        println!("Stopping profiler...");
        for w in to_close {
            match remote::stop_profile_within(http, &w.target.url, STOP_TIMEOUT).await {
                Ok(_) => println!("Profiler stopped"),
                // A bounded window that closed by itself meanwhile answers "not profiling".
                Err(e) if !w.needs_stop => {
                    tracing::debug!("stop of a bounded window after an interrupt: {e}")
                }
                Err(e) => eprintln!(
                    "Failed to stop profiler for {} worker at {}: {e}",
                    w.target.label, w.target.url
                ),
            }
        }
    }

    /// The directories sent to the servers that write into them, with the trace files already
    /// there (servers on this host; a bounded window may still be writing when the run ends).
    pub fn trace_dirs(&self) -> Vec<(ProfileTarget, PathBuf, Vec<PathBuf>)> {
        self.started
            .iter()
            .filter(|(w, _)| matches!(w.location, TraceLocation::Sent(_)))
            .map(|(w, d)| {
                (
                    w.target.clone(),
                    d.clone(),
                    pc::written_traces(d).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Where every target's traces are (or will be) written, one line each: the directory
    /// sent, or, for a server that ignores it, that the server decides (and where, when it
    /// says). The directory made for such a server stays empty and is removed.
    pub fn location_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (w, dir) in &self.started {
            if !matches!(w.location, TraceLocation::Sent(_)) {
                lines.push(w.describe_location());
                let _ = std::fs::remove_dir(dir);
                continue;
            }
            let files = pc::written_traces(dir).unwrap_or_default();
            if files.is_empty() {
                lines.push(format!(
                    "{} (written by the server when its window closes)",
                    w.describe_location()
                ));
            } else {
                lines.push(format!(
                    "Profiler traces of {} ({}):",
                    w.target.label, w.target.url
                ));
                lines.extend(files.iter().map(|f| format!("  {}", f.display())));
            }
        }
        if !self.started.is_empty() {
            lines.push(
                "Open them in https://ui.perfetto.dev or merge ranks with `inferperf trace merge`."
                    .into(),
            );
        }
        lines
    }
}
