//! SGLang's diffusion perf dump (`--perf-dump-path`, `perf_dump_path`) built from one
//! generation: stage and denoising-step durations from the pipeline's timings, and memory
//! checkpoints after every stage (process RSS: a CPU engine has no allocator split). Shared by
//! `inferperf generate` (tag `cli_generate`) and the diffusion server (`server_perf_dump`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use inferperf_engine::diffusion::{GeneratedMedia, PipelineObserver, Stage};
use inferperf_protocol::perf_dump::{
    iso8601_utc, round2, DenoiseStepDuration, MemoryCheckpoint, PerfDump, StageDuration,
};

use crate::memory::process_rss_bytes;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Records a memory checkpoint after every stage (and the running peak).
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    pub checkpoints: Vec<(Stage, MemoryCheckpoint)>,
    /// Highest RSS seen, in MiB.
    pub peak_mb: f64,
}

impl MemoryCheckpoints {
    /// Take the checkpoint of `stage` now.
    pub fn after_stage(&mut self, stage: Stage) {
        if let Some(rss) = process_rss_bytes() {
            let mb = rss as f64 / (1024.0 * 1024.0);
            self.peak_mb = self.peak_mb.max(mb);
            let (cur, peak) = (round2(mb), round2(self.peak_mb));
            self.checkpoints.push((
                stage,
                MemoryCheckpoint {
                    allocated_mb: cur,
                    reserved_mb: cur,
                    peak_allocated_mb: peak,
                    peak_reserved_mb: peak,
                },
            ));
        }
    }
}

impl PipelineObserver for MemoryCheckpoints {
    fn on_stage_end(&mut self, stage: Stage, _elapsed: Duration) {
        self.after_stage(stage);
    }
}

/// `SGLANG_GIT_COMMIT` when set (as newer SGLang honours), else `N/A`.
pub fn commit_hash() -> String {
    std::env::var("SGLANG_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "N/A".into())
}

/// The perf dump of one generation, with SGLang's keys and `tag`.
pub fn perf_dump(
    media: &GeneratedMedia,
    memory: &[(Stage, MemoryCheckpoint)],
    prompt: &str,
    model: &str,
    tag: &str,
) -> PerfDump {
    let t = &media.timings;
    let mut meta = serde_json::Map::new();
    meta.insert("prompt".into(), prompt.into());
    meta.insert("model".into(), model.into());
    PerfDump {
        timestamp: iso8601_utc(SystemTime::now()),
        request_id: media.request_id.clone(),
        commit_hash: commit_hash(),
        tag: tag.into(),
        total_duration_ms: ms(t.total),
        steps: t
            .stages
            .iter()
            .map(|(s, d)| StageDuration {
                name: s.name().into(),
                duration_ms: ms(*d),
            })
            .collect(),
        denoise_steps_ms: t
            .denoise_steps
            .iter()
            .enumerate()
            .map(|(i, d)| DenoiseStepDuration {
                step: i as u64,
                duration_ms: ms(*d),
            })
            .collect(),
        memory_checkpoints: memory
            .iter()
            .map(|(s, m)| (format!("after_{}", s.name()), m.clone()))
            .collect::<BTreeMap<_, _>>(),
        meta,
        custom_metrics: None,
        cache_stats: None,
    }
}
