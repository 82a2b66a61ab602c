//! `bench serving` end to end: readiness, model and tokenizer discovery, dataset, request plan
//! (pre-serialized bodies, fixed schedule), warmup, the measured run, metrics, the console
//! table, the validity verdict and the JSONL record. The record is written even when the run
//! was interrupted or the server died, marked incomplete.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::calibrate::Calibration;
use crate::config::ServingConfig;
use inferperf_loadgen::arrival::{offered_rate, schedule, Arrivals};
use inferperf_loadgen::backend::{
    build_body, parse_extra, Backend, BodyOptions, LogprobOptions, Prompt, Protocol,
};
use inferperf_loadgen::client::{request_headers, simple_request, Pool, Target};
use inferperf_loadgen::clock::Clock;
use inferperf_loadgen::conversation::Conversation;
use inferperf_loadgen::cpu::{CpuMark, ThreadCpu};
use inferperf_loadgen::dataset::{self, DatasetName, DatasetRow};
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::metrics::{compute_with_timeline, BenchmarkMetrics, MetricInputs, Timeline};
use inferperf_loadgen::records_file::{
    self, ClockAnchors, RecordsFooter, RecordsHeader, RunSettings, ShardIdentity,
};
use inferperf_loadgen::request_trace::RequestTraceInfo;
use inferperf_loadgen::runner::{run, Abort, LiveCounters, PlannedRequest, RunSpec};
use inferperf_loadgen::table::{extra_table, py_float, sglang_table, TableContext};
use inferperf_loadgen::tokenizer::{HfTokenizer, SharedTokenizer};
use inferperf_loadgen::validity::{assess, render, Validity, ValidityInputs};

/// What the caller provides besides the flags.
pub struct ServingContext {
    pub base_url: String,
    /// The tokenizer, when the caller has one already (the embedded server's own).
    pub tokenizer: Option<SharedTokenizer>,
    pub client_threads: usize,
    pub cpu: ThreadCpu,
    /// Raised by Ctrl-C (wired by the caller).
    pub abort: Abort,
    /// This host's measured client ceiling, for the overload warning.
    pub calibration: Option<Calibration>,
    /// Print the tables to stdout (tests turn this off).
    pub print: bool,
}

impl ServingContext {
    /// A progress line on stdout (SGLang's wording), when this run talks to a console.
    fn say(&self, line: impl std::fmt::Display) {
        if self.print {
            println!("{line}");
        }
    }
}

/// The run's results.
pub struct ServingOutcome {
    pub metrics: BenchmarkMetrics,
    pub validity: Validity,
    pub records: Vec<inferperf_loadgen::record::RequestRecord>,
    /// The JSONL line written.
    pub record_line: String,
    pub output_file: String,
    pub incomplete: bool,
    /// The `output_dir` sent to each profiled server (`--profile`), in target order.
    pub profile_dirs: Vec<std::path::PathBuf>,
    /// The console report the caller prints: SGLang's table, the extra percentiles, the
    /// first errors, the throughput plot (`--plot-throughput`) and the validity block.
    pub console_report: String,
    /// Where each profiled server's traces are (or will be written), one line each.
    pub profile_locations: Vec<String>,
    /// The client request traces written (`--request-trace`, and with `--profile`).
    pub request_traces: Vec<std::path::PathBuf>,
    /// With `--profile`: the server traces and the client's merged into one timeline.
    pub merged_timelines: Vec<std::path::PathBuf>,
    /// The steady-state section (`None` with `--no-steady-state`).
    pub steady_state: crate::steady_report::SteadyStateOutcome,
}

impl ServingOutcome {
    /// Why this run counts as failed, if it does: no request succeeded, or more than
    /// `max_failure_rate` of them failed (`--max-failure-rate`). Interrupted runs are judged
    /// by the caller (they end with the signal's status).
    pub fn failure(&self, max_failure_rate: Option<f64>) -> Option<String> {
        let total = self.records.len();
        let failed = self.records.iter().filter(|r| !r.success()).count();
        if self.metrics.completed == 0 {
            return Some(format!("no request succeeded ({failed} of {total} failed)"));
        }
        let limit = max_failure_rate?;
        let rate = failed as f64 / total.max(1) as f64;
        (rate > limit).then(|| {
            format!(
                "{failed} of {total} requests failed ({:.1} %), more than --max-failure-rate {limit}",
                rate * 100.0
            )
        })
    }
}

/// Run the serving benchmark.
pub async fn run_serving(
    args: &ServingConfig,
    ctx: ServingContext,
) -> Result<ServingOutcome, BenchError> {
    run_serving_rows(args, ctx, None).await
}

/// [`run_serving`] over rows built by the caller (a sweep's scenario) instead of the
/// `--dataset-name` ones.
pub async fn run_serving_rows(
    args: &ServingConfig,
    ctx: ServingContext,
    rows: Option<Vec<DatasetRow>>,
) -> Result<ServingOutcome, BenchError> {
    if args.dataset.tokenize_prompt
        && !matches!(args.backend, Backend::Sglang | Backend::SglangNative)
    {
        return Err(BenchError::Config(
            "--tokenize-prompt only compatible with --backend sglang currently".into(),
        ));
    }
    // Checked before the first request: a run must not end in "cannot write the result".
    // `{shard}` in the name becomes the shard index, so shards can share a directory.
    let output_file = crate::shard::with_shard_index(
        args.output_file
            .as_deref()
            .unwrap_or(&default_output_file(args)),
        args.sharding.as_ref(),
    );
    inferperf_loadgen::jsonl::check_appendable(Path::new(&output_file))?;
    if args.sharding.is_some_and(|s| s.num_shards > 1) && (args.profile || args.sglang_profile) {
        return Err(BenchError::Config(
            "--profile with --num-shards > 1: every shard would open its own window; profile \
             from one place instead (`inferperf profile start`/`stop` around the run)"
                .into(),
        ));
    }
    args.steady_state.validate()?;
    crate::steady_report::check_output_file(&args.steady_state)?;
    let headers = request_headers(&args.header)?;
    let target = Target::from_base_url(&ctx.base_url, headers)?;
    let pool = Arc::new(Pool::new(target));
    ctx.say(format_args!(
        "base_url={} backend={}",
        ctx.base_url,
        args.backend.name()
    ));
    if args.ready_check_timeout_sec > 0 {
        wait_ready(&ctx, &pool, args.ready_check_timeout_sec).await?;
    }
    let model = match &args.model {
        Some(m) => m.clone(),
        None => fetch_model(&pool).await?,
    };
    let model_id = args
        .served_model_name
        .clone()
        .unwrap_or_else(|| model.clone());
    let tokenizer = resolve_tokenizer(args, &ctx, &pool, &model).await?;
    let profile_plan = crate::profiling::plan(args, &ctx.base_url)?;

    let t_prep = Instant::now();
    let rows = match rows {
        Some(r) => r,
        None => build_dataset(args, tokenizer.as_ref())?,
    };
    if rows.is_empty() {
        return Err(BenchError::Dataset("the dataset produced no rows".into()));
    }
    let total_in: usize = rows.iter().map(|r| r.prompt_len).sum();
    let total_out: usize = rows.iter().map(|r| r.output_len).sum();
    ctx.say(format_args!("#Input tokens: {total_in}"));
    ctx.say(format_args!("#Output tokens: {total_out}"));
    let extra = body_extras(args)?;
    let (arrivals, rate_for_record) = arrivals_for(args, &rows, &ctx);
    // SGLang's --use-trace-timestamps only relabels the rate.
    let rate_for_record = rate_for_record.filter(|_| !args.use_trace_timestamps);
    // One planned request per row; the whole plan's schedule, before any sharding.
    let offsets = schedule(&arrivals, rows.len(), args.dataset.seed)?;
    let run_id = crate::shard::run_id(
        &rows,
        &offsets,
        args.dataset.seed,
        args.sharding.map_or(1, |s| s.num_shards),
        args.start_at_unix_ns,
    );
    // Shards of one run share their request ids' prefix, so every id names one request.
    let rid_prefix = match (&args.request_id_prefix, &args.sharding) {
        (Some(p), _) => p.clone(),
        (None, Some(_)) => run_id[..8].to_owned(),
        (None, None) => inferperf_loadgen::record::new_run_tag(),
    };
    let requests = plan_requests(args, &rows, &model_id, &extra, Some(&rid_prefix))?;
    let planned_requests = requests.len();
    let shard_plan = match &args.sharding {
        Some(s) => crate::shard::select(requests, offsets, s),
        None => crate::shard::ShardPlan {
            plan_index: (0..requests.len()).collect(),
            requests,
            offsets,
        },
    };
    let max_concurrency = match (&args.sharding, args.max_concurrency) {
        (Some(s), Some(c)) => Some(s.max_concurrency(c)?),
        (_, c) => c,
    };
    if let Some(s) = &args.sharding {
        ctx.say(format_args!(
            "shard {} of {}: {} of {} requests{}",
            s.shard_index,
            s.num_shards,
            shard_plan.requests.len(),
            planned_requests,
            max_concurrency.map_or(String::new(), |c| format!(", max concurrency {c}"))
        ));
    }
    // One descriptor per open stream: raise the soft open-file limit before the run, and say
    // when it cannot hold the run's concurrency (the requests that do not fit fail as
    // `client_limit`, never as a dead server).
    let streams = max_concurrency.unwrap_or(shard_plan.requests.len()) as u64;
    let wanted = streams + 64;
    if let Some(limit) = inferperf_protocol::os_limits::raise_open_file_limit(wanted) {
        if limit < wanted {
            ctx.say(format_args!(
                "WARNING: the open-file limit ({limit}) cannot hold {streams} concurrent streams; \
                 raise `ulimit -n` (hard limit) or use --num-shards"
            ));
        }
    }
    let plan_index = shard_plan.plan_index;
    let requests = Arc::new(shard_plan.requests);
    let offsets = shard_plan.offsets;
    tracing::info!(
        "prepared {} requests in {:.2} s",
        requests.len(),
        t_prep.elapsed().as_secs_f64()
    );
    if let Some(cal) = &ctx.calibration {
        for w in cal.overload_warnings(
            offered_rate(&offsets),
            args.max_concurrency.unwrap_or(requests.len()),
            total_out as f64 / requests.len() as f64,
        ) {
            tracing::warn!("{w}");
            eprintln!("WARNING: {w}");
        }
    }

    let protocol = args.backend.protocol();
    let send = SendSettings {
        path: pool.target().path(args.backend.api_path()),
        protocol,
        args,
        cpu: &ctx.cpu,
    };
    if args.warmup_requests > 0 {
        // SGLang's warm-up request: the first row with at most 32 output tokens.
        let mut first = rows[0].clone();
        first.output_len = first.output_len.min(32);
        // No request ids: the warm-up sends one body several times at once.
        let planned = plan_requests(args, std::slice::from_ref(&first), &model_id, &extra, None)?;
        warmup(&ctx, &pool, &send, &planned[0]).await?;
    }
    // A server that cannot flush (vLLM outside its dev mode answers 404) is a warning, not a
    // reason to lose the run (SGLang's client aborts); the record says the cache was not flushed.
    let mut flush_cache_skipped = None;
    if args.flush_cache {
        if let Err(e) = flush_cache(&pool, args.backend, args.flush_cache_timeout).await {
            let why = e.to_string();
            ctx.say(format_args!(
                "WARNING: --flush-cache: the server did not flush its cache ({why}); going on"
            ));
            flush_cache_skipped = Some(why);
        }
    }
    // With a request trace or saved records, the server's clock is probed (on Unix time)
    // before the profile window opens and again after it closes.
    let probe_clock = Clock::start();
    let wants_trace = args.request_trace.is_some() || profile_plan.is_some();
    let wants_server_clock = wants_trace || args.save_records.is_some();
    let probes_before = if wants_server_clock {
        crate::server_clock::probe(&pool, &probe_clock, crate::server_clock::PROBES).await
    } else {
        Vec::new()
    };
    // Armed after warmup and flush, before the measured clock starts (SGLang starts its clock
    // after this too, but stops it after `/stop_profile`; we stop it before).
    let profile_http = inferperf_profiler::client::http_client()
        .map_err(|e| BenchError::Config(format!("profiling client: {e}")))?;
    let profile = match profile_plan {
        Some(plan) => Some(plan.start(&profile_http).await),
        None => None,
    };
    // Every shard starts its schedule on the shared instant; the measured clock starts there.
    if let Some(at) = args.start_at_unix_ns {
        crate::shard::wait_until(at).await;
    }
    let clock = Clock::start();

    let counters = Arc::new(LiveCounters::default());
    let pb = inferperf_loadgen::progress::bar(requests.len(), args.disable_tqdm);
    let ticker = inferperf_loadgen::progress::spawn_ticker(pb.clone(), counters.clone());
    let cpu0 = CpuMark::now(&ctx.cpu);
    let mut spec = send.spec(requests.clone(), offsets.clone(), false);
    spec.print_requests = args.print_requests;
    spec.max_concurrency = max_concurrency;
    let mut res = run(
        pool.clone(),
        spec,
        clock,
        counters.clone(),
        ctx.abort.clone(),
    )
    .await;
    // Records carry their index in the whole plan (the same as the shard's without shards).
    for r in &mut res.records {
        r.index = plan_index.get(r.index).copied().unwrap_or(r.index);
    }
    let client_cpu = cpu0.client_since(&ctx.cpu);
    if let Some(p) = &profile {
        p.stop(&profile_http, res.abort_reason.is_some()).await;
    }
    let probes_after = if wants_server_clock && res.abort_reason.is_none() {
        crate::server_clock::probe(&pool, &probe_clock, crate::server_clock::PROBES).await
    } else {
        Vec::new()
    };
    pool.close_idle();
    let process_cpu = cpu0.process_since();
    ticker.abort();
    pb.finish_and_clear();
    let incomplete = res.abort_reason.is_some();
    if let Some(r) = &res.abort_reason {
        eprintln!("WARNING: run stopped early: {r}; writing results for what completed");
    }

    // After the measured duration: server info (accept length) and retokenized counts.
    let server_info = if args.backend.is_sglang() && !incomplete {
        get_json(&pool, "/server_info").await
    } else {
        None
    };
    let accept_length = server_info.as_ref().and_then(accept_length_of);
    let retok = tokenizer
        .as_ref()
        .map(|t| retokenized_output_lens(t, &res.records));
    let slo = args.slo()?;
    let pm = args.percentile_metric_names();
    let mp = args.metric_percentile_values()?;
    let server_added_prompt_tokens =
        server_added_prompt_tokens(protocol, args.dataset.tokenize_prompt, tokenizer.as_ref());
    let (metrics, timeline) = compute_with_timeline(&MetricInputs {
        records: &res.records,
        duration_s: res.duration_s,
        retokenized: retok.as_deref(),
        server_added_prompt_tokens,
        slo: &slo,
        percentile_metrics: &pm,
        metric_percentiles: &mp,
    });
    let steady_state =
        crate::steady_report::compute(&args.steady_state, &res.records, retok.as_deref());
    if metrics.completed == 0 {
        ctx.say("All requests failed. This is likely due to a misconfiguration on the benchmark arguments.");
    }
    let validity = assess(&ValidityInputs::of_run(
        &res,
        !matches!(arrivals, Arrivals::Burst),
        client_cpu,
        process_cpu,
        ctx.client_threads,
    ));
    let console_report = console_report(
        args,
        &metrics,
        &validity,
        &res,
        &timeline,
        rate_for_record,
        accept_length,
    );
    let console_report =
        console_report + &crate::steady_report::console(&steady_state, res.duration_s);
    // The run's settings: in the record's context here, and in the records file's header.
    let settings = RunSettings {
        tag: args.tag.clone(),
        backend: args.backend.name().into(),
        dataset_name: args.dataset.name.name().into(),
        request_rate: rate_for_record,
        burstiness: args.burstiness,
        max_concurrency: args.max_concurrency,
        sharegpt_output_len: args.dataset.sharegpt_output_len,
        random_input_len: args.dataset.random_input_len,
        random_output_len: args.dataset.random_output_len,
        random_range_ratio: args.dataset.random_range_ratio,
        model_id: model_id.clone(),
        num_prompts: args.dataset.num_prompts,
        server_added_prompt_tokens,
        slo: slo.clone(),
        percentile_metrics: pm.clone(),
        metric_percentiles: mp.clone(),
        cache_report: args.cache_report,
        output_details: args.output_details,
        accept_length,
        steady_state: args.steady_state.enabled.then(|| args.steady_state.rule()),
    };
    let mut rec = inferperf_loadgen::result::build(
        &settings.record_context(
            server_info,
            res.duration_s,
            res.abort_reason.as_deref(),
            flush_cache_skipped.as_deref(),
        ),
        &metrics,
        &validity,
        &res.records,
    );
    crate::steady_report::put_keys(&mut rec, &steady_state, &timeline);
    let line = rec.to_line();
    inferperf_loadgen::jsonl::append_line(Path::new(&output_file), &line)?;
    if let Err(e) = crate::steady_report::append_output_file(&args.steady_state, &steady_state) {
        eprintln!("WARNING: --steady-state-output-file: {e}");
    }
    let server_clock = crate::server_clock::estimate(&probes_before, &probes_after);
    if let Some(template) = &args.save_records {
        let path = std::path::PathBuf::from(crate::shard::with_shard_index(
            &template.to_string_lossy(),
            args.sharding.as_ref(),
        ));
        let first_offset = offsets.first().copied().unwrap_or(0);
        let header = RecordsHeader {
            format: records_file::FORMAT.into(),
            version: records_file::VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            shard: ShardIdentity {
                run_id: run_id.clone(),
                shard_index: args.sharding.map_or(0, |s| s.shard_index),
                num_shards: args.sharding.map_or(1, |s| s.num_shards),
                planned_requests,
                shard_requests: requests.len(),
            },
            seed: args.dataset.seed,
            argv: args.argv.clone(),
            clock: ClockAnchors {
                unix_ns_at_start: clock.unix_ns_at_start(),
                start_at_unix_ns: args.start_at_unix_ns,
                // The schedule's origin (the first release minus its offset) against --start-at.
                start_late_ns: match (args.start_at_unix_ns, schedule_origin_ns(&res.records)) {
                    (Some(at), Some(origin)) => clock
                        .unix_ns(origin)
                        .saturating_sub(first_offset)
                        .saturating_sub(at),
                    _ => 0,
                },
                server_clock,
            },
            settings,
        };
        if header.clock.start_late_ns > 1_000_000 {
            ctx.say(format_args!(
                "WARNING: this shard started {:.1} ms after --start-at (recorded in {})",
                header.clock.start_late_ns as f64 / 1e6,
                path.display()
            ));
        }
        let footer = RecordsFooter {
            records: res.records.len(),
            not_started: res.not_started,
            duration_s: res.duration_s,
            abort_reason: res.abort_reason.clone(),
            validity: validity.clone(),
        };
        records_file::write(&path, &header, &res.records, retok.as_deref(), &footer)?;
        ctx.say(format_args!("Records saved to {}", path.display()));
    }
    let request_traces = write_request_traces(
        args,
        &output_file,
        profile.as_ref(),
        &res.records,
        &clock,
        &RequestTraceInfo {
            run_tag: rid_prefix.clone(),
            backend: args.backend.name().into(),
            base_url: ctx.base_url.clone(),
            server_clock,
        },
    )?;
    let merged_timelines = merge_with_client(&ctx, profile.as_ref());
    let (profile_dirs, profile_locations) = match &profile {
        Some(p) => (
            p.trace_dirs().into_iter().map(|(_, dir, _)| dir).collect(),
            p.location_lines(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(ServingOutcome {
        profile_dirs,
        metrics,
        validity,
        records: res.records,
        record_line: line,
        output_file,
        incomplete,
        console_report,
        profile_locations,
        request_traces,
        merged_timelines,
        steady_state,
    })
}

/// The run's schedule origin on the measured clock: the earliest scheduled time (that of the
/// first request, whose offset is the smallest).
fn schedule_origin_ns(records: &[inferperf_loadgen::record::RequestRecord]) -> Option<u64> {
    records.iter().map(|r| r.scheduled_ns).min()
}

/// Write the client request trace where `--request-trace` says and, with `--profile`, as
/// `client-requests.json` in every trace directory the client sent (for a server that decides
/// where its traces go, next to the result file instead). Returns the files written.
fn write_request_traces(
    args: &ServingConfig,
    output_file: &str,
    profile: Option<&crate::profiling::ActiveProfile>,
    records: &[inferperf_loadgen::record::RequestRecord],
    clock: &Clock,
    info: &RequestTraceInfo,
) -> Result<Vec<std::path::PathBuf>, BenchError> {
    let mut paths: Vec<std::path::PathBuf> = args.request_trace.iter().cloned().collect();
    if let Some(p) = profile {
        let dirs: Vec<_> = p.trace_dirs().into_iter().map(|(_, dir, _)| dir).collect();
        if dirs.is_empty() {
            paths.push(std::path::PathBuf::from(format!(
                "{output_file}.client-requests.json"
            )));
        }
        paths.extend(dirs.into_iter().map(|d| d.join(CLIENT_TRACE_FILE)));
    }
    for path in &paths {
        inferperf_loadgen::request_trace::write(path, records, clock, info).map_err(|e| {
            BenchError::io(
                format!("writing the request trace {}", e.path.display()),
                e.source,
            )
        })?;
    }
    Ok(paths)
}

/// The client request trace's name in a profile directory (not `*.trace.json`, so rank-trace
/// globs do not take it for a rank).
pub const CLIENT_TRACE_FILE: &str = "client-requests.json";

/// With `--profile`, one timeline per trace directory the servers already wrote to: their
/// rank traces and the client request trace merged, flows from each request to the steps
/// that hold its rid (`trace merge --client`), as `merged-with-client.trace.json.gz`. A merge
/// that fails (traces without rids, a window still writing) is a warning: the inputs stay.
fn merge_with_client(
    ctx: &ServingContext,
    profile: Option<&crate::profiling::ActiveProfile>,
) -> Vec<std::path::PathBuf> {
    let mut merged = Vec::new();
    for (_, dir, files) in profile.map(|p| p.trace_dirs()).unwrap_or_default() {
        // Rank traces only (not the memory snapshots, nor a merge the server made).
        let files: Vec<_> = files
            .into_iter()
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".trace.json.gz") && !n.starts_with("merged-"))
            })
            .collect();
        if files.is_empty() {
            continue;
        }
        let out = dir.join(MERGED_WITH_CLIENT_FILE);
        let opts = inferperf_trace::MergeOptions {
            client: Some(dir.join(CLIENT_TRACE_FILE)),
            ..Default::default()
        };
        match inferperf_trace::merge_files(&files, &out, &opts) {
            Ok(_) => merged.push(out),
            Err(e) => ctx.say(format_args!(
                "WARNING: could not merge the client requests with the traces in {}: {e}",
                dir.display()
            )),
        }
    }
    merged
}

pub use inferperf_profiler::client::MERGED_WITH_CLIENT_FILE;

/// The arrival process the settings ask for -- a Mooncake trace's own times, a burst, or a
/// (bursty) rate -- and the rate the record names (`None`: "trace").
fn arrivals_for(
    args: &ServingConfig,
    rows: &[DatasetRow],
    ctx: &ServingContext,
) -> (Arrivals, Option<f64>) {
    if args.dataset.name == DatasetName::Mooncake {
        ctx.say("Using time-based Mooncake request scheduler, ignoring --request-rate.");
        let offsets_ms = rows.iter().map(|r| r.timestamp_ms.unwrap_or(0.0)).collect();
        (
            Arrivals::Trace {
                offsets_ms,
                slowdown: args.mooncake_slowdown_factor,
            },
            None,
        )
    } else if args.request_rate.is_infinite() {
        (Arrivals::Burst, Some(args.request_rate))
    } else {
        (
            Arrivals::Rate {
                rate: args.request_rate,
                burstiness: args.burstiness,
            },
            Some(args.request_rate),
        )
    }
}

/// How every request of a run is sent (route, protocol, timeouts), shared by the warm-up
/// and the measured run.
struct SendSettings<'a> {
    path: String,
    protocol: Protocol,
    args: &'a ServingConfig,
    cpu: &'a ThreadCpu,
}

impl SendSettings<'_> {
    fn spec(&self, requests: Arc<Vec<PlannedRequest>>, offsets: Vec<u64>, warmup: bool) -> RunSpec {
        RunSpec {
            requests,
            offsets,
            max_concurrency: self.args.max_concurrency,
            path: self.path.clone(),
            protocol: self.protocol,
            stream: !self.args.disable_stream,
            timeout: self.args.request_timeout_sec.map(Duration::from_secs_f64),
            stall_timeout: self.args.stall_timeout(),
            // A warm-up fails as a whole; the measured run stops early when the server is gone.
            max_consecutive_connect_failures: if warmup { usize::MAX } else { 8 },
            warmup,
            print_requests: false,
            cpu: self.cpu.clone(),
            exchange: inferperf_loadgen::runner::Exchange::default(),
        }
    }
}

/// SGLang's warm-up: `--warmup-requests` copies of `request` sent at once; the run fails when
/// none succeeds.
async fn warmup(
    ctx: &ServingContext,
    pool: &Arc<Pool>,
    send: &SendSettings<'_>,
    request: &PlannedRequest,
) -> Result<(), BenchError> {
    let n = send.args.warmup_requests;
    ctx.say(format_args!("Starting warmup with {n} sequences..."));
    let spec = send.spec(Arc::new(vec![request.clone(); n]), vec![0; n], true);
    let res = run(
        pool.clone(),
        spec,
        Clock::start(),
        Arc::default(),
        ctx.abort.clone(),
    )
    .await;
    if let Some(reason) = res.abort_reason {
        return Err(BenchError::Server(format!("warmup interrupted: {reason}")));
    }
    if !res.records.iter().any(|r| r.success()) {
        let err = res
            .records
            .iter()
            .find_map(|r| {
                r.error
                    .as_ref()
                    .map(|e| format!("{:?}: {}", e.kind, e.message))
            })
            .unwrap_or_default();
        return Err(BenchError::Server(format!(
            "Warmup failed - Please make sure benchmark arguments are correctly specified. Error: {err}"
        )));
    }
    ctx.say(format_args!(
        "Warmup completed with {n} sequences. Starting main benchmark run..."
    ));
    Ok(())
}

/// Speculative decoding's mean accept length from `/server_info` (the decode worker's under
/// PD disaggregation).
fn accept_length_of(info: &Value) -> Option<f64> {
    let s = info.get("decode").and_then(|d| d.get(0)).unwrap_or(info);
    s.get("internal_states")?
        .get(0)?
        .get("avg_spec_accept_length")?
        .as_f64()
}

/// Each successful request's output length as the client's tokenizer counts it (0 for
/// failures), after the measured run.
fn retokenized_output_lens(
    tok: &SharedTokenizer,
    records: &[inferperf_loadgen::record::RequestRecord],
) -> Vec<usize> {
    records
        .par_iter()
        .map(|r| {
            if r.success() {
                tok.encode(&r.generated_text, false)
                    .map(|v| v.len())
                    .unwrap_or(0)
            } else {
                0
            }
        })
        .collect()
}

/// What the server adds to the client's prompt counts: special tokens (BOS) on text prompts,
/// nothing on token ids, an uncounted chat template on chat backends (`None`).
fn server_added_prompt_tokens(
    protocol: Protocol,
    tokenize_prompt: bool,
    tok: Option<&SharedTokenizer>,
) -> Option<usize> {
    if protocol == Protocol::Chat {
        None
    } else if tokenize_prompt {
        Some(0)
    } else {
        Some(tok.map_or(0, |t| {
            inferperf_loadgen::tokenizer::num_special_tokens_to_add(t.as_ref())
        }))
    }
}

/// The end-of-run console text: SGLang's table, the extra percentiles, the first errors, the
/// throughput plot (`--plot-throughput`) and the validity block.
fn console_report(
    args: &ServingConfig,
    metrics: &BenchmarkMetrics,
    validity: &Validity,
    res: &inferperf_loadgen::runner::RunResult,
    timeline: &Timeline,
    rate_for_record: Option<f64>,
    accept_length: Option<f64>,
) -> String {
    let rate_str = rate_for_record.map_or_else(|| "trace".to_owned(), py_float);
    let mut r = sglang_table(
        metrics,
        &TableContext {
            backend: args.backend.name(),
            request_rate: rate_str,
            max_concurrency: args.max_concurrency,
            duration_s: res.duration_s,
            accept_length,
            cache_report: args.cache_report,
        },
    );
    r.push_str(&extra_table(metrics));
    r.push_str(&first_errors(&res.records));
    if args.plot_throughput {
        r.push_str(&crate::plot::render(timeline));
    }
    r.push_str(&render(validity));
    r
}

/// The first five errors, for the console (empty when every request succeeded).
fn first_errors(records: &[inferperf_loadgen::record::RequestRecord]) -> String {
    use std::fmt::Write as _;
    let errs: Vec<_> = records
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| (r.index, e)))
        .collect();
    let mut out = String::new();
    if errs.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "First errors ({} failed requests in total):",
        errs.len()
    );
    for (i, e) in errs.iter().take(5) {
        let _ = writeln!(out, "  request {i}: {:?}: {}", e.kind, e.message);
    }
    out
}

/// SGLang's default output file name.
pub fn default_output_file(args: &ServingConfig) -> String {
    let mmdd = inferperf_protocol::dates::local_mmdd();
    let b = args.backend.name();
    if args.dataset.name.name().starts_with("random") {
        format!(
            "{b}_{mmdd}_{}_{}_{}.jsonl",
            args.dataset.num_prompts, args.dataset.random_input_len, args.dataset.random_output_len
        )
    } else {
        format!(
            "{b}_{mmdd}_{}_{}.jsonl",
            args.dataset.num_prompts,
            args.dataset.name.name()
        )
    }
}

/// Poll `GET /v1/models` until it answers 200 (SGLang's readiness check).
async fn wait_ready(ctx: &ServingContext, pool: &Pool, timeout_s: u64) -> Result<(), BenchError> {
    let url = pool.target().path("/v1/models");
    ctx.say(format_args!(
        "Waiting up to {timeout_s}s for {url} to become ready..."
    ));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(timeout_s);
    let mut last_err = String::new();
    while Instant::now() < deadline {
        match simple_request(
            pool,
            Method::GET,
            "/v1/models",
            None,
            Duration::from_secs(5),
        )
        .await
        {
            Ok((StatusCode::OK, _)) => {
                ctx.say(format_args!(
                    "Server ready in {:.1}s.",
                    start.elapsed().as_secs_f64()
                ));
                return Ok(());
            }
            Ok((s, body)) => {
                last_err = format!("HTTP {s}: {}", inferperf_loadgen::sse::excerpt(&body))
            }
            Err(e) => last_err = e,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    ctx.say(format_args!(
        "Server did not become ready within {timeout_s}s timeout."
    ));
    Err(BenchError::Server(format!(
        "Server at {} is not ready ({last_err}). Exiting.",
        pool.target().addr
    )))
}

async fn get_json(pool: &Pool, route: &str) -> Option<Value> {
    match simple_request(pool, Method::GET, route, None, Duration::from_secs(5)).await {
        Ok((StatusCode::OK, body)) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

async fn fetch_model(pool: &Pool) -> Result<String, BenchError> {
    let (status, body) = simple_request(
        pool,
        Method::GET,
        "/v1/models",
        None,
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| {
        BenchError::Server(format!(
            "Failed to fetch model from /v1/models. Error: {e}. Pass --model"
        ))
    })?;
    let list: inferperf_protocol::openai::ModelList =
        serde_json::from_slice(&body).map_err(|e| {
            BenchError::Server(format!(
                "Failed to fetch model from /v1/models (HTTP {status}): {e}. Pass --model"
            ))
        })?;
    list.data
        .first()
        .map(|m| m.id.clone())
        .ok_or_else(|| BenchError::Server("/v1/models lists no model; pass --model".into()))
}

async fn resolve_tokenizer(
    args: &ServingConfig,
    ctx: &ServingContext,
    pool: &Pool,
    model: &str,
) -> Result<Option<SharedTokenizer>, BenchError> {
    if let Some(t) = &args.tokenizer {
        return Ok(Some(Arc::new(HfTokenizer::load(Path::new(t))?)));
    }
    if let Some(t) = &ctx.tokenizer {
        return Ok(Some(t.clone()));
    }
    // An inferperf server publishes its exact tokenizer; prefer it to guessing from paths.
    if let Some(t) = inferperf_loadgen::tokenizer::fetch_from_server(pool).await? {
        return Ok(Some(t));
    }
    let mut candidates = vec![];
    if let Some(info) = get_json(pool, "/get_model_info")
        .await
        .or(get_json(pool, "/model_info").await)
    {
        for k in ["tokenizer_path", "model_path"] {
            if let Some(p) = info.get(k).and_then(Value::as_str) {
                candidates.push(p.to_owned());
            }
        }
    }
    candidates.push(model.to_owned());
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    inferperf_loadgen::tokenizer::load_first_local(&candidates)
}

/// Build the dataset rows for the flags (see [`dataset::build`], the one name -> builder map).
pub fn build_dataset(
    args: &ServingConfig,
    tok: Option<&SharedTokenizer>,
) -> Result<Vec<DatasetRow>, BenchError> {
    dataset::build(
        &args.dataset,
        args.backend.protocol() == Protocol::Chat,
        tok,
    )
}

/// Fields merged into every request body: `--extra-request-body`, then what `--cache-report`
/// (OpenAI-style sglang backends) and `--fake-prefill` add, as SGLang does.
fn body_extras(args: &ServingConfig) -> Result<Map<String, Value>, BenchError> {
    let mut extra = parse_extra(args.extra_request_body.as_deref())?;
    if args.cache_report {
        match args.backend {
            Backend::SglangOai | Backend::SglangOaiChat => {
                extra.insert("return_cached_tokens_details".into(), Value::Bool(true));
            }
            Backend::Sglang | Backend::SglangNative => {}
            _ => println!("WARNING: --cache-report is only supported with sglang backends."),
        }
    }
    if args.fake_prefill {
        extra.insert(
            "bootstrap_host".into(),
            Value::from(crate::one_batch_server::FAKE_BOOTSTRAP_HOST),
        );
        extra.insert("bootstrap_room".into(), Value::from(0));
    }
    Ok(extra)
}

/// Serialize every request body once, before the run (in parallel). With `rid_prefix`,
/// request `i` gets the id `{rid_prefix}-{i}` (header, record, and `rid` in SGLang bodies).
pub fn plan_requests(
    args: &ServingConfig,
    rows: &[DatasetRow],
    model_id: &str,
    extra: &Map<String, Value>,
    rid_prefix: Option<&str>,
) -> Result<Vec<PlannedRequest>, BenchError> {
    let loras = inferperf_loadgen::lora::assign(
        &args.lora_name,
        rows.len(),
        args.lora_request_distribution,
        args.lora_zipf_alpha,
        args.dataset.seed,
    )?;
    let logprobs = LogprobOptions {
        return_logprob: args.return_logprob,
        top_logprobs_num: args.top_logprobs_num,
        token_ids_logprob: args.token_ids_logprob.clone(),
        logprob_start_len: args.logprob_start_len,
        return_routed_experts: args.return_routed_experts,
    };
    rows.par_iter()
        .zip(loras.par_iter())
        .enumerate()
        .map(|(i, (row, lora))| {
            let rid = rid_prefix.map(|p| format!("{p}-{i}"));
            let merged;
            let extra = match &row.extra {
                Some(e) => {
                    let mut m = extra.clone();
                    m.extend(e.clone());
                    merged = m;
                    &merged
                }
                None => extra,
            };
            let body = build_body(
                &row.prompt,
                row.output_len,
                &BodyOptions {
                    backend: args.backend,
                    model: model_id,
                    stream: !args.disable_stream,
                    ignore_eos: !args.disable_ignore_eos,
                    lora_name: *lora,
                    temperature: args.temperature,
                    top_p: args.top_p,
                    extra,
                    logprobs: &logprobs,
                    rid: rid.as_deref(),
                },
            );
            let (bytes, conversation) = match (&row.prompt, body) {
                (Prompt::Turns(turns), Value::Object(map)) => {
                    if args.backend.protocol() != Protocol::Chat {
                        return Err(BenchError::Config(format!(
                            "multi-turn rows need a chat backend (sglang-oai-chat, vllm-chat, lmdeploy-chat, openai-chat), not {}",
                            args.backend.name()
                        )));
                    }
                    let c = Conversation::new(map, turns)?;
                    (c.body(&c.turns[0], rid.as_deref()), Some(Arc::new(c)))
                }
                (_, body) => {
                    let bytes = serde_json::to_vec(&body).map_err(|e| {
                        BenchError::Config(format!("serializing a request body: {e}"))
                    })?;
                    (bytes, None)
                }
            };
            let headers = match &row.routing_key {
                Some(k) => {
                    let mut h = HeaderMap::new();
                    let v = HeaderValue::from_str(k)
                        .map_err(|e| BenchError::Config(format!("routing key: {e}")))?;
                    h.insert(HeaderName::from_static("x-smg-routing-key"), v);
                    Some(h)
                }
                None => None,
            };
            let prompt_len = match &row.prompt {
                Prompt::Ids(ids) => ids.len(),
                _ => row.prompt_len,
            };
            Ok(PlannedRequest {
                body: Bytes::from(bytes),
                prompt_len,
                output_len: row.output_len,
                headers,
                rid,
                conversation,
            })
        })
        .collect()
}

async fn flush_cache(pool: &Pool, backend: Backend, timeout_s: f64) -> Result<(), BenchError> {
    let sglang_route;
    let route = match backend {
        Backend::Vllm | Backend::VllmChat | Backend::Openai | Backend::OpenaiChat => {
            "/reset_prefix_cache"
        }
        b if b.is_sglang() => {
            sglang_route = format!("/flush_cache?timeout={}", py_float(timeout_s));
            &sglang_route
        }
        _ => "/flush_cache",
    };
    let wait = Duration::from_secs_f64(timeout_s.max(1.0) + 10.0);
    match simple_request(pool, Method::POST, route, None, wait).await {
        Ok((s, _)) if s.is_success() => Ok(()),
        Ok((s, body)) => Err(BenchError::Server(format!(
            "POST {route}: HTTP {s}: {}",
            inferperf_loadgen::sse::excerpt(&body)
        ))),
        Err(e) => Err(BenchError::Server(format!("POST {route}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--fake-prefill` adds SGLang's bootstrap fields next to `--extra-request-body`'s.
    #[test]
    fn fake_prefill_adds_the_bootstrap_fields() {
        let plain = ServingConfig {
            extra_request_body: Some(r#"{"top_k": 3}"#.into()),
            ..ServingConfig::default()
        };
        let e = body_extras(&plain).expect("extras");
        assert_eq!(e.len(), 1);
        let fake = ServingConfig {
            fake_prefill: true,
            ..plain
        };
        let e = body_extras(&fake).expect("extras");
        assert_eq!(e["bootstrap_host"], "2.2.2.2");
        assert_eq!(e["bootstrap_room"], 0);
        assert_eq!(e["top_k"], 3);
    }
}
