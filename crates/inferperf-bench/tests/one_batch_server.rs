//! `bench one-batch-server` against a real `inferperf serve` (default model, profiler on):
//! SGLang's record keys in order, the throughput arithmetic, the cache hit rate measured from
//! `/metrics` when half of every prompt is warmed into the prefix cache, the capacity skip rule,
//! and the profiled pass with its `bs-{bs}-il-{il}` prefix.

use inferperf_bench::one_batch_server::{
    self, BatchDataset, OneBatchServerConfig, OneBatchServerProfile,
};
use inferperf_loadgen::jsonl::top_level_keys;
use inferperf_profiler::ProfilerHandle;
use inferperf_server::launch::launch_model_profiled;
use inferperf_server::{EmbeddedServer, ServerConfig};

const KEYS: [&str; 12] = [
    "run_name",
    "batch_size",
    "input_len",
    "output_len",
    "latency",
    "input_throughput",
    "output_throughput",
    "overall_throughput",
    "last_ttft",
    "last_gen_throughput",
    "acc_length",
    "cache_hit_rate",
];

async fn start(args: ServerConfig) -> (EmbeddedServer, ProfilerHandle) {
    let a = args.clone();
    let (engine, profiler) = tokio::task::spawn_blocking(move || launch_model_profiled(&a))
        .await
        .expect("launch task")
        .expect("launch");
    let server = EmbeddedServer::start_with_profiler(args, engine, profiler.clone())
        .await
        .expect("server");
    (server, profiler)
}

fn options(base_url: String, result: std::path::PathBuf) -> OneBatchServerConfig {
    OneBatchServerConfig {
        run_name: "t".into(),
        batch_sizes: vec![1, 3],
        input_lens: vec![24],
        output_lens: vec![6],
        skip_warmup: true,
        show_report: true,
        result_filename: Some(result),
        seed: 1,
        ..OneBatchServerConfig::new(base_url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_arithmetic_and_a_half_warmed_cache() {
    let (server, _p) = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.jsonl");
    let mut o = options(server.base_url(), out.clone());
    o.cache_hit_rate = 0.5;
    let results = one_batch_server::run(&o).await.expect("run");
    assert_eq!(results.len(), 2);
    for r in &results {
        let (bs, il, ol) = (
            r.case.batch_size as f64,
            r.case.input_len as f64,
            r.case.output_len as f64,
        );
        assert!(r.last_ttft > 0.0 && r.last_ttft < r.latency);
        assert_eq!(r.input_throughput, bs * il / r.last_ttft);
        assert_eq!(r.output_throughput, bs * ol / (r.latency - r.last_ttft));
        assert_eq!(r.overall_throughput, bs * (il + ol) / r.latency);
        // Half of every 24-token prompt (12 tokens) was warmed: the server served 12 of the
        // 24 prompt tokens of each request from its prefix cache.
        let hit = r.cache_hit_rate.expect("measured from /metrics");
        assert!((hit - 0.5).abs() < 0.05, "cache hit rate {hit}");
    }
    let text = std::fs::read_to_string(&out).expect("records");
    for line in text.lines() {
        assert_eq!(top_level_keys(line).expect("keys"), KEYS);
    }
    // Without warming, the flush before each case leaves nothing cached.
    o.cache_hit_rate = 0.0;
    o.batch_sizes = vec![2];
    let cold = one_batch_server::run(&o).await.expect("run");
    assert_eq!(cold[0].cache_hit_rate, Some(0.0));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_beyond_the_server_capacity_are_skipped() {
    let (server, _p) = start(ServerConfig {
        max_running_requests: Some(2),
        ..ServerConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let o = options(server.base_url(), dir.path().join("r.jsonl"));
    let results = one_batch_server::run(&o).await.expect("run");
    let sizes: Vec<usize> = results.iter().map(|r| r.case.batch_size).collect();
    assert_eq!(sizes, [1], "bs=3 exceeds --max-running-requests 2");
    server.shutdown().await.expect("shutdown");
}

/// `--enable-multi-batch` sends a batch above the running cap (the server queues the rest)
/// instead of skipping it; generated-shared-prefix prompts are measured at their own lengths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_batch_and_shared_prefix_prompts() {
    let (server, _p) = start(ServerConfig {
        max_running_requests: Some(2),
        ..ServerConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(server.base_url(), dir.path().join("r.jsonl"));
    o.batch_sizes = vec![3];
    o.enable_multi_batch = true;
    o.dataset = BatchDataset::SharedPrefix {
        groups: 2,
        system_len: 20,
        question_len: 5,
        output_len: 4,
    };
    let results = one_batch_server::run(&o).await.expect("run");
    assert_eq!(
        results.len(),
        1,
        "bs=3 runs in two waves instead of being skipped"
    );
    let r = &results[0];
    assert_eq!(
        (r.case.batch_size, r.case.input_len, r.case.output_len),
        (3, 25, 4)
    );
    assert_eq!(r.overall_throughput, 3.0 * (25.0 + 4.0) / r.latency);
    server.shutdown().await.expect("shutdown");
}

/// `--fixed-prompt-file`: every prompt of the batch is the file's text, encoded with the
/// server's tokenizer, and the case is measured at that length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_prompt_file_sets_the_prompt_and_its_length() {
    let (server, _p) = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("prompt.txt");
    std::fs::write(&file, "The quick brown fox jumps over the lazy dog.").expect("write");
    let tok = server.tokenizer().expect("an LLM server");
    let ids = one_batch_server::encode_fixed_prompt(&file, tok.as_ref(), false).expect("encode");
    assert_eq!(
        ids,
        tok.encode("The quick brown fox jumps over the lazy dog.", true)
            .expect("ids")
    );
    let missing =
        one_batch_server::encode_fixed_prompt(&dir.path().join("nope.txt"), tok.as_ref(), false)
            .expect_err("missing file");
    assert!(missing.to_string().contains("nope.txt"), "{missing}");
    let mut o = options(server.base_url(), dir.path().join("r.jsonl"));
    o.batch_sizes = vec![2];
    o.fixed_prompt = Some(ids.clone());
    let results = one_batch_server::run(&o).await.expect("run");
    assert_eq!(results[0].case.input_len, ids.len());
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profiled_pass_writes_prefixed_traces() {
    let (server, profiler) = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(server.base_url(), dir.path().join("r.jsonl"));
    o.batch_sizes = vec![3];
    o.profile = Some(OneBatchServerProfile {
        activities: vec!["CPU".into()],
        start_step: None,
        steps: 3,
        by_stage: false,
        prefix: None,
        output_dir: Some(dir.path().join("prof")),
    });
    let results = one_batch_server::run(&o).await.expect("run");
    let link = results[0].profile_link.clone().expect("profile link");
    let session = profiler.last_session().expect("session");
    let outcome = ProfilerHandle::wait(&session).await.expect("window closes");
    assert_eq!(outcome.trace_files.len(), 1);
    let f = &outcome.trace_files[0];
    assert!(f.starts_with(&link), "{f:?} in {link}");
    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(name.starts_with("bs-3-il-24-"), "{name}");
    // Measured and profiled runs are both recorded.
    let text = std::fs::read_to_string(dir.path().join("r.jsonl")).expect("records");
    assert_eq!(text.lines().count(), 2);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_through_the_server() {
    let gguf = std::env::var("INFERPERF_ASSETS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/inferperf/assets")
        })
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.is_file(),
        "{} is missing: run scripts/fetch-test-assets.sh",
        gguf.display()
    );
    let (server, _p) = start(ServerConfig {
        model_path: gguf.to_string_lossy().into_owned(),
        ..ServerConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(server.base_url(), dir.path().join("r.jsonl"));
    o.batch_sizes = vec![2];
    o.input_lens = vec![16];
    o.output_lens = vec![4];
    let r = one_batch_server::run(&o).await.expect("run");
    assert_eq!(r.len(), 1);
    assert!(r[0].output_throughput > 0.0 && r[0].last_ttft > 0.0);
    server.shutdown().await.expect("shutdown");
}

/// Every case's batch goes through the measured load engine: its record (sent, first byte, the
/// last sequence's first token at `last_ttft`, the end at `latency`) and a validity verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_is_recorded_and_gets_a_verdict() {
    let (server, _p) = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let o = options(server.base_url(), dir.path().join("r.jsonl"));
    let results = one_batch_server::run(&o).await.expect("run");
    assert_eq!(results.len(), 2);
    for r in &results {
        let rec = &r.request;
        assert!(rec.success(), "{:?}", rec.error);
        assert!(rec.sent_ns > 0 && rec.first_byte_ns >= rec.sent_ns);
        assert!(rec.first_token_ns >= rec.first_byte_ns && rec.last_ns >= rec.first_token_ns);
        assert_eq!(rec.latency_s(), r.latency);
        assert!(rec.stream_lines.is_empty(), "lines are read, not kept");
        assert!(r.last_ttft > 0.0 && r.last_ttft <= r.latency);
        assert!(
            matches!(r.validity.verdict.as_str(), "OK" | "CLIENT-BOUND"),
            "{:?}",
            r.validity
        );
        assert_eq!(r.validity.not_started, 0);
    }
    server.shutdown().await.expect("shutdown");
}
