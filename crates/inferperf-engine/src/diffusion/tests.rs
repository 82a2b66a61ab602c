//! Pipeline tests: determinism, stage/step reporting, real PNG/APNG output at the requested
//! size, weights round-trip, the test delay knob.

use std::time::Duration;

use super::*;

/// A smaller model than the default, so debug-profile tests stay quick.
fn small() -> DiffusionConfig {
    DiffusionConfig {
        hidden_size: 32,
        text_hidden_size: 32,
        max_image_tokens: 64,
        max_video_tokens_per_frame: 16,
        max_text_len: 16,
        decoder_channels: vec![8, 8, 4],
        default_num_inference_steps: 3,
        ..DiffusionConfig::default()
    }
}

fn req(seed: u64) -> DiffusionRequest {
    DiffusionRequest {
        prompt: "a red fox".into(),
        seed,
        ..DiffusionRequest::default()
    }
}

#[derive(Default)]
struct Log(Vec<String>);

impl PipelineObserver for Log {
    fn on_stage_begin(&mut self, stage: Stage) {
        self.0.push(format!("begin {}", stage.name()));
    }
    fn on_stage_end(&mut self, stage: Stage, _: Duration) {
        self.0.push(format!("end {}", stage.name()));
    }
    fn on_denoise_step_begin(&mut self, step: usize, total: usize) {
        self.0.push(format!("step {step}/{total}"));
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_image() {
    let p = DiffusionPipeline::dummy(small()).unwrap();
    let a = p
        .generate(&req(7), &mut NoopObserver)
        .unwrap()
        .encode()
        .unwrap();
    let b = p
        .generate(&req(7), &mut NoopObserver)
        .unwrap()
        .encode()
        .unwrap();
    let c = p
        .generate(&req(8), &mut NoopObserver)
        .unwrap()
        .encode()
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    // A fresh pipeline (weights regenerated from the same seed) gives the same bytes too.
    let q = DiffusionPipeline::dummy(small()).unwrap();
    assert_eq!(
        q.generate(&req(7), &mut NoopObserver)
            .unwrap()
            .encode()
            .unwrap(),
        a
    );
}

#[test]
fn observer_sees_every_stage_and_step_in_order() {
    let p = DiffusionPipeline::dummy(small()).unwrap();
    let mut log = Log::default();
    let out = p.generate(&req(1), &mut log).unwrap();
    let begins: Vec<&str> = log
        .0
        .iter()
        .filter_map(|l| l.strip_prefix("begin "))
        .collect();
    let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(begins, names);
    let i = log
        .0
        .iter()
        .position(|l| l == "begin DenoisingStage")
        .unwrap();
    assert_eq!(&log.0[i + 1..i + 4], ["step 0/3", "step 1/3", "step 2/3"]);
    assert_eq!(log.0[i + 4], "end DenoisingStage");
    let t = &out.timings;
    assert_eq!(t.stages.len(), 7);
    assert_eq!(t.denoise_steps.len(), 3);
    let steps: Duration = t.denoise_steps.iter().sum();
    let stage = t.stage(Stage::Denoising).unwrap();
    assert!(steps <= stage && stage <= t.total);
}

#[test]
fn image_is_a_png_of_the_requested_size_upsampled_from_native() {
    let p = DiffusionPipeline::dummy(small()).unwrap();
    let r = DiffusionRequest {
        width: Some(256),
        height: Some(128),
        guidance_scale: 4.0,
        ..req(3)
    };
    let out = p.generate(&r, &mut NoopObserver).unwrap();
    assert_eq!((out.native_width, out.native_height), (128, 64));
    assert!(out.upsampled());
    let d = decode_png(&out.encode().unwrap()).unwrap();
    assert_eq!(
        (d.width, d.height, d.animated, d.frames.len()),
        (256, 128, false, 1)
    );
    assert_eq!(d.frames[0], out.frames[0]);
    // Guidance changes the result (the unconditional branch really runs).
    let plain = p
        .generate(
            &DiffusionRequest {
                guidance_scale: 1.0,
                ..r
            },
            &mut NoopObserver,
        )
        .unwrap();
    assert_ne!(plain.frames, out.frames);
}

#[test]
fn video_is_an_apng_with_one_frame_per_requested_frame() {
    let p = DiffusionPipeline::dummy(small()).unwrap();
    let r = DiffusionRequest {
        num_frames: 3,
        fps: 8,
        width: Some(64),
        height: Some(64),
        ..req(5)
    };
    let out = p.generate(&r, &mut NoopObserver).unwrap();
    assert_eq!(out.kind, MediaKind::Video);
    assert_eq!(out.mime_type(), "image/apng");
    let d = decode_png(&out.encode().unwrap()).unwrap();
    assert_eq!(
        (d.width, d.height, d.animated, d.frames.len()),
        (64, 64, true, 3)
    );
    assert_ne!(d.frames[0], d.frames[1]);
}

#[test]
fn saved_dummy_weights_load_by_name_and_give_the_same_image() {
    let dir = std::env::temp_dir().join(format!("inferperf-diffusion-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let p = DiffusionPipeline::dummy(small()).unwrap();
    p.save_dummy_weights(&path).unwrap();
    let q = DiffusionPipeline::load(small(), WeightSource::Safetensors(path.clone())).unwrap();
    assert_eq!(q.info().load_format, "safetensors");
    let a = p.generate(&req(2), &mut NoopObserver).unwrap();
    let b = q.generate(&req(2), &mut NoopObserver).unwrap();
    assert_eq!(a.frames, b.frames);
    // A config that asks for other shapes fails to load with the file named.
    let wide = DiffusionConfig {
        hidden_size: 48,
        ..small()
    };
    let err = DiffusionPipeline::load(wide, WeightSource::Safetensors(path.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_delay_slows_exactly_the_chosen_step() {
    let p = DiffusionPipeline::dummy(small()).unwrap();
    let r = DiffusionRequest {
        test_delay: Some(InferperfDiffusionTestDelay { step: 1, ms: 30 }),
        ..req(1)
    };
    let out = p.generate(&r, &mut NoopObserver).unwrap();
    assert!(out.timings.denoise_steps[1] >= Duration::from_millis(30));
    // The delay does not change the image.
    let plain = p.generate(&req(1), &mut NoopObserver).unwrap();
    assert_eq!(plain.frames, out.frames);
}

#[test]
fn bad_requests_fail_before_any_compute() {
    let p = DiffusionPipeline::dummy(small()).unwrap();
    let mut log = Log::default();
    let r = DiffusionRequest {
        width: Some(100),
        ..req(1)
    };
    let err = p.generate(&r, &mut log).unwrap_err();
    assert!(
        matches!(err, DiffusionError::InvalidRequest { field: "width", .. }),
        "{err}"
    );
    assert_eq!(log.0, ["begin InputValidationStage"]);
}
