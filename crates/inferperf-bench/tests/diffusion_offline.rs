//! `bench offline` for diffusion on the built-in pipeline: a request manifest (text and
//! image-conditioned requests, per-request overrides), saved outputs whose SHA-256 is in the
//! results, SGLang's metrics and the appended JSONL line.

use inferperf_inproc::diffusion_offline::{parse_manifest, run, DiffusionOfflineOptions};
use sha2::{Digest, Sha256};

#[test]
fn manifest_run_saves_outputs_and_appends_sglangs_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = inferperf_engine::diffusion::load_model("diffusion").expect("pipeline");
    // An input image for the image-conditioned request, made by the pipeline itself.
    let img = pipeline
        .generate(
            &inferperf_engine::diffusion::DiffusionRequest {
                prompt: "seed image".into(),
                width: Some(32),
                height: Some(32),
                num_inference_steps: Some(1),
                ..Default::default()
            },
            &mut inferperf_engine::diffusion::NoopObserver,
        )
        .expect("image");
    std::fs::write(dir.path().join("in.png"), img.encode().expect("png")).expect("write");
    let manifest = dir.path().join("m.jsonl");
    std::fs::write(
        &manifest,
        "{\"prompt\": \"a lighthouse\", \"request_id\": \"a/1\", \"width\": 48}\n\
         {\"prompt\": \"the same, at dusk\", \"image_paths\": [\"in.png\"], \"num_inference_steps\": 1}\n",
    )
    .expect("manifest");
    let (reqs, sha) = parse_manifest(&manifest).expect("manifest");
    let out_dir = dir.path().join("out");
    let out_file = dir.path().join("runs.jsonl");
    let line = run(
        &pipeline,
        &reqs,
        &DiffusionOfflineOptions {
            model_path: "diffusion".into(),
            num_inference_steps: 2,
            guidance_scale: 1.0,
            seed: 42,
            width: 32,
            height: 32,
            num_frames: 1,
            fps: 24,
            task_name: "text-to-image".into(),
            dataset: "random".into(),
            batch_size: 1,
            skip_warmup: true,
            save_output_dir: Some(out_dir.clone()),
            output_file: Some(out_file.clone()),
            manifest: Some((manifest.clone(), sha.clone())),
            profile: None,
        },
    )
    .expect("run");
    let r = &line["results"];
    assert_eq!(
        (
            r["successful_requests"].as_u64(),
            r["failed_requests"].as_u64()
        ),
        (Some(2), Some(0))
    );
    // 48x32 + 32x32 pixels.
    assert_eq!(r["total_pixels_generated"], 48 * 32 + 32 * 32);
    assert_eq!(line["configuration"]["dataset"], "request_manifest");
    assert_eq!(line["metadata"]["request_manifest_sha256"], sha.as_str());
    for res in r["request_results"].as_array().expect("results") {
        let path = res["output_file_paths"][0].as_str().expect("saved path");
        let bytes = std::fs::read(path).expect("saved output");
        assert_eq!(
            res["output_sha256"][0],
            format!("{:x}", Sha256::digest(&bytes)).as_str()
        );
    }
    assert!(r["request_results"][0]["output_file_paths"][0]
        .as_str()
        .is_some_and(|p| p.ends_with("00000-a_1.png")));
    let appended = std::fs::read_to_string(&out_file).expect("appended");
    assert_eq!(appended.lines().count(), 1);
}
