//! `bench slo` finds the capacity of a server whose capacity is known: the real HTTP server
//! (simulated engine) with `--inferperf-test-admit-rate 50` admits at most 50 requests per
//! second, so above 50 req/s the queue, and with it TTFT, grows through each probe.

mod common;

use inferperf_bench::config::ServingConfig;
use inferperf_bench::serving::ServingContext;
use inferperf_bench::slo::{parse_slos, search, Mode, SearchOptions};
use inferperf_engine::simulated::{SimulatedEngine, TokenSchedule};
use inferperf_loadgen::cpu::ThreadCpu;
use inferperf_loadgen::dataset::DatasetRow;
use inferperf_loadgen::runner::Abort;
use inferperf_server::{EmbeddedServer, EngineParts, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_known_capacity_within_ten_percent() {
    let k = 50.0;
    let sim = SimulatedEngine::start(TokenSchedule::ZeroLatency, 32000).expect("sim");
    let parts = EngineParts {
        handle: sim.handle.clone(),
        tokenizer: sim.tokenizer.clone(),
        model_info: sim.model_info.clone(),
    };
    let server = EmbeddedServer::start_with_engine(
        ServerConfig {
            model_path: sim.model_info.model_path.clone(),
            inferperf_test_admit_rate: Some(k),
            ..ServerConfig::ephemeral()
        },
        parts,
    )
    .await
    .expect("server");
    let info: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/get_server_info", server.base_url()))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("json");
    assert_eq!(
        info["inferperf_test_admit_rate"], k,
        "the test mode is labelled"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let base = ServingConfig {
        backend: inferperf_loadgen::backend::Backend::Sglang,
        // Nearly even arrivals: queueing comes from the rate, not from Poisson bursts.
        burstiness: 100.0,
        warmup_requests: 0,
        output_file: Some(
            dir.path()
                .join("probes.jsonl")
                .to_string_lossy()
                .into_owned(),
        ),
        ..ServingConfig::default()
    };
    let url = server.base_url();
    let tok = sim.tokenizer.clone();
    let make_ctx = || ServingContext {
        base_url: url.clone(),
        tokenizer: Some(tok.clone()),
        client_threads: 1,
        cpu: ThreadCpu::default(),
        abort: Abort::default(),
        calibration: None,
        print: false,
    };
    let rows = |n: usize| {
        Ok((0..n)
            .map(|_| DatasetRow::text("hello there".into(), 2, 4))
            .collect())
    };
    let knee = search(
        &SearchOptions {
            mode: Mode::Rate,
            slos: parse_slos("p99_ttft_ms<=60").expect("slo"),
            start: 12.5,
            max_load: 80.0,
            precision: 0.05,
            max_probes: 12,
            seconds_per_probe: 2.0,
            min_requests: 20,
        },
        &base,
        &make_ctx,
        Some(&rows),
    )
    .await
    .expect("search");
    let found = knee.load.expect("a passing load");
    assert!(
        (found - k).abs() <= 0.1 * k,
        "found {found} req/s for a capacity of {k} (probes: {:?})",
        knee.probes
            .iter()
            .map(|p| (p.load, p.passed))
            .collect::<Vec<_>>()
    );
    assert!(knee.first_failing.is_some_and(|f| f > found));
    server.shutdown().await.expect("shutdown");
}
