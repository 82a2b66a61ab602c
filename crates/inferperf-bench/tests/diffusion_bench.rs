//! `bench serving` in diffusion mode against the real diffusion server (`--model-path
//! diffusion`): every task (text-to-image, image-to-image, text-to-video, image-to-video,
//! video-to-video -- which SGLang's client also sends without an input video) with
//! the VBench prompt file, the random dataset, SGLang's metrics keys, and SLO attainment.

use std::path::PathBuf;

use inferperf_bench::diffusion::{run, Dataset, DiffusionFlags, DiffusionServingConfig, Task};
use inferperf_server::{EmbeddedServer, ServerConfig};

fn vbench() -> PathBuf {
    inferperf_test_support::manifest_dir!()
        .join("../../../shared/data/vbench/subject_consistency.txt")
}

fn options(base_url: String, task: Task, dataset_path: Option<PathBuf>) -> DiffusionServingConfig {
    DiffusionServingConfig {
        base_url,
        flags: DiffusionFlags {
            dataset: Some(Dataset::Vbench),
            task: Some(task),
            width: Some(32),
            height: Some(32),
            num_frames: Some(2),
            fps: Some(8),
            num_inference_steps: Some(2),
            slo: true,
            slo_scale: 1000.0,
        },
        dataset_path,
        num_prompts: 3,
        max_concurrency: Some(2),
        request_rate: f64::INFINITY,
        warmup_requests: 1,
        seed: 7,
        output_file: None,
        cpu: Default::default(),
        client_threads: 2,
        print: true,
    }
}

async fn server() -> EmbeddedServer {
    EmbeddedServer::start(ServerConfig {
        model_path: "diffusion".into(),
        ..ServerConfig::ephemeral()
    })
    .await
    .expect("diffusion server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_runs_through_the_server() {
    assert!(vbench().is_file(), "{} missing", vbench().display());
    let s = server().await;
    let images = tempfile::tempdir().expect("tempdir");
    // One input image for the image-conditioned tasks: a 32x32 PNG from the server itself.
    let m = run(&options(s.base_url(), Task::TextToImage, Some(vbench())))
        .await
        .expect("text-to-image")
        .metrics;
    assert_eq!((m.completed_requests, m.failed_requests), (3, 0));
    let gen: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/images/generations", s.base_url()))
        .json(&serde_json::json!({"prompt": "a red apple", "size": "32x32", "num_inference_steps": 1}))
        .send()
        .await
        .expect("generate")
        .json()
        .await
        .expect("json");
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(gen["data"][0]["b64_json"].as_str().unwrap_or_default())
        .expect("b64");
    std::fs::write(images.path().join("a red apple.png"), png).expect("write image");
    for task in [
        Task::ImageToImage,
        Task::TextToVideo,
        Task::ImageToVideo,
        Task::VideoToVideo,
    ] {
        let path = if matches!(task, Task::TextToVideo | Task::VideoToVideo) {
            vbench()
        } else {
            images.path().to_path_buf()
        };
        let r = run(&options(s.base_url(), task, Some(path)))
            .await
            .unwrap_or_else(|e| panic!("{task:?}: {e}"));
        let (m, outs) = (r.metrics, r.outcomes);
        assert_eq!(
            (m.completed_requests, m.failed_requests),
            (3, 0),
            "{task:?}: {:?}",
            outs.iter().find(|o| !o.success).map(|o| o.error.clone())
        );
        assert_eq!(m.slo_attainment_rate, Some(1.0), "{task:?}");
    }
    s.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_dataset_and_the_metrics_file() {
    let s = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("metrics.json");
    let mut o = options(s.base_url(), Task::TextToImage, None);
    o.flags.dataset = Some(Dataset::Random);
    o.flags.slo = false;
    o.num_prompts = 4;
    o.request_rate = 50.0;
    o.output_file = Some(out.clone());
    let m = run(&o).await.expect("run").metrics;
    assert_eq!(m.completed_requests, 4);
    let text = std::fs::read_to_string(&out).expect("metrics file");
    let keys: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"').and_then(|r| r.split('"').next()))
        .map(String::from)
        .collect();
    assert_eq!(
        keys,
        [
            "duration",
            "completed_requests",
            "failed_requests",
            "throughput_qps",
            "latency_mean",
            "latency_median",
            "latency_p99",
            "latency_p50",
            "peak_memory_mb_max",
            "peak_memory_mb_mean",
            "peak_memory_mb_median"
        ]
    );
    s.shutdown().await.expect("shutdown");
}

/// The run goes through the measured load engine: one record per timed request (sent, answered,
/// the job's document read), the validity verdict, and both written next to the metrics file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_recorded_and_the_run_gets_a_verdict() {
    let s = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("metrics.json");
    for task in [Task::TextToImage, Task::TextToVideo] {
        let mut o = options(s.base_url(), task, Some(vbench()));
        o.output_file = Some(out.clone());
        let r = run(&o).await.expect("run");
        assert_eq!(r.records.len(), 3, "{task:?}");
        for (i, rec) in r.records.iter().enumerate() {
            assert_eq!(rec.index, i);
            assert!(rec.success(), "{task:?}: {:?}", rec.error);
            assert!(!rec.warmup);
            assert!(rec.sent_ns >= rec.released_ns && rec.released_ns >= rec.scheduled_ns);
            assert!(rec.first_byte_ns >= rec.sent_ns && rec.last_ns >= rec.first_byte_ns);
            let doc = rec.document.as_ref().expect("document facts");
            if task == Task::TextToVideo {
                // The record ends with the poll that saw the job complete.
                assert_eq!(doc.status.as_deref(), Some("completed"));
                assert!(doc.id.is_some());
            }
        }
        // The outcomes are the records' view.
        for (o, rec) in r.outcomes.iter().zip(&r.records) {
            assert_eq!(o.latency_s, rec.latency_s());
        }
        assert!(
            matches!(r.validity.verdict.as_str(), "OK" | "CLIENT-BOUND"),
            "{:?}",
            r.validity
        );
        assert_eq!(r.validity.not_started, 0);
        let file: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(inferperf_bench::diffusion::records_path(&out))
                .expect("records file"),
        )
        .expect("records JSON");
        assert_eq!(file["validity"]["verdict"], r.validity.verdict.as_str());
        assert_eq!(file["requests"].as_array().map(Vec::len), Some(3));
        assert!(file["requests"][0]["sent_ns"].as_u64() > Some(0));
    }
    s.shutdown().await.expect("shutdown");
}

/// A server that fails every request makes the verdict SERVER-FAILED with the first error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_failing_every_request_is_server_failed() {
    let s = server().await;
    // Under a path prefix the server does not serve, every request is a 404.
    let mut o = options(
        format!("{}/no-such-prefix", s.base_url()),
        Task::TextToImage,
        Some(vbench()),
    );
    o.warmup_requests = 0;
    o.flags.slo = false;
    let r = run(&o).await.expect("run");
    assert_eq!(r.metrics.completed_requests, 0);
    assert_eq!(r.records.len(), 3);
    assert_eq!(r.validity.verdict, "SERVER-FAILED", "{:?}", r.validity);
    s.shutdown().await.expect("shutdown");
}
