//! `bench sweep` against the real HTTP server (simulated engine): a 2-scenario x
//! 3-concurrency grid writes genai-bench's folder layout -- the metadata file and one run file
//! per point with the loader's name pattern, aggregated metrics in genai-bench's key order with
//! a computed error rate, and one individual record per request.

mod common;

use common::SimServer;
use inferperf_bench::config::ServingConfig;
use inferperf_bench::scenario::Scenario;
use inferperf_bench::sweep::{run, LoadPoint, SweepOptions};
use inferperf_engine::simulated::TokenSchedule;
use inferperf_loadgen::backend::Backend;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_writes_genai_benchs_layout() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let exp = dir.path().join("exp");
    let serving = ServingConfig {
        backend: Backend::OpenaiChat,
        model: None,
        ..ServingConfig::default()
    };
    let o = SweepOptions {
        base_url: s.server.base_url(),
        model: "m".into(),
        task: "text-to-text".into(),
        scenarios: vec![
            Scenario::parse("D(20,5)").expect("D"),
            Scenario::parse("N(30,5)/(6,2)").expect("N"),
        ],
        loads: [1, 2, 4].into_iter().map(LoadPoint::Concurrency).collect(),
        max_requests_per_run: 5,
        max_time_per_run_s: 600.0,
        seed: 1,
        experiment_dir: exp.clone(),
        metadata: serde_json::json!({"task": "text-to-text"}),
        tokenizer: s.tokenizer(),
        profile: None,
    };
    let files = run(&o, &serving).await.expect("sweep");
    assert_eq!(files.len(), 6);
    assert!(exp.join("experiment_metadata.json").is_file());
    // genai-bench's loader pattern.
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (head, tail) = name.rsplit_once("_time_").expect("time part");
        assert!(
            tail.ends_with("s.json") && tail.trim_end_matches("s.json").parse::<u64>().is_ok(),
            "{name}"
        );
        assert!(head.contains("_text-to-text_num_concurrency_"), "{name}");
    }
    let first =
        std::fs::read_to_string(exp.join(files[0].file_name().expect("name"))).expect("run file");
    let keys: Vec<&str> = first
        .lines()
        .filter(|l| l.starts_with("    \"") && !l.starts_with("     "))
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .collect();
    assert_eq!(
        keys,
        [
            "scenario",
            "num_concurrency",
            "batch_size",
            "iteration_type",
            "run_duration",
            "mean_output_throughput_tokens_per_s",
            "mean_input_throughput_tokens_per_s",
            "mean_total_tokens_throughput_tokens_per_s",
            "requests_per_second",
            "error_codes_frequency",
            "error_rate",
            "num_error_requests",
            "num_completed_requests",
            "num_requests",
            "stats",
            "validity_verdict"
        ]
    );
    let v: Value = serde_json::from_str(&first).expect("json");
    let agg = &v["aggregated_metrics"];
    assert_eq!(agg["scenario"], "D(20,5)");
    assert_eq!(agg["num_requests"], 5);
    assert_eq!(agg["error_rate"], 0.0);
    assert_eq!(
        v["individual_request_metrics"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(agg["stats"]["num_output_tokens"]["sum"], 25.0);
    assert_eq!(v["_time_unit"], "s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_gives_a_real_error_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let tok = s.tokenizer();
    let url = s.server.base_url();
    s.server.shutdown().await.expect("shutdown");
    let serving = ServingConfig {
        backend: Backend::OpenaiChat,
        model: Some("m".into()),
        ready_check_timeout_sec: 0,
        ..ServingConfig::default()
    };
    let o = SweepOptions {
        base_url: url,
        model: "m".into(),
        task: "text-to-text".into(),
        scenarios: vec![Scenario::parse("D(10,3)").expect("D")],
        loads: vec![LoadPoint::Concurrency(1)],
        max_requests_per_run: 3,
        max_time_per_run_s: 60.0,
        seed: 1,
        experiment_dir: dir.path().join("exp"),
        metadata: serde_json::json!({}),
        tokenizer: tok,
        profile: None,
    };
    let files = run(&o, &serving).await.expect("sweep");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).expect("file")).expect("json");
    // genai-bench would write 0 here; every request failed.
    assert_eq!(v["aggregated_metrics"]["error_rate"], 1.0);
    assert_eq!(v["aggregated_metrics"]["num_error_requests"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sglang_profile_arms_one_window_per_point() {
    use inferperf_profiler::ProfilerHandle;
    let args = inferperf_server::ServerConfig::ephemeral();
    let a = args.clone();
    let (engine, profiler) =
        tokio::task::spawn_blocking(move || inferperf_server::launch::launch_model_profiled(&a))
            .await
            .expect("launch task")
            .expect("launch");
    let tok = engine.parts.tokenizer.clone();
    let server =
        inferperf_server::EmbeddedServer::start_with_profiler(args, engine, profiler.clone())
            .await
            .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let serving = ServingConfig {
        backend: Backend::OpenaiChat,
        ..ServingConfig::default()
    };
    let o = SweepOptions {
        base_url: server.base_url(),
        model: "default".into(),
        task: "text-to-text".into(),
        scenarios: vec![Scenario::parse("D(8,4)").expect("D")],
        loads: vec![LoadPoint::Concurrency(2)],
        max_requests_per_run: 4,
        max_time_per_run_s: 600.0,
        seed: 1,
        experiment_dir: dir.path().join("exp"),
        metadata: serde_json::json!({}),
        tokenizer: tok,
        profile: Some(inferperf_bench::sweep::SweepProfile {
            steps: 2,
            by_stage: false,
            activities: vec!["CPU".into()],
            output_dir: dir.path().join("profiles"),
        }),
    };
    let files = run(&o, &serving).await.expect("sweep");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).expect("run file")).expect("json");
    let path = v["aggregated_metrics"]["profile_path"]
        .as_str()
        .expect("profile path recorded");
    assert!(std::path::Path::new(path)
        .join("server_args.json")
        .is_file());
    let session = profiler.last_session().expect("a window was armed");
    let out = ProfilerHandle::wait(&session).await.expect("window closes");
    assert_eq!(out.trace_files.len(), 1);
    assert!(out.trace_files[0].starts_with(path));
    server.shutdown().await.expect("shutdown");
}
