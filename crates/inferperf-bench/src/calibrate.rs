//! Client ceiling calibration: drive the client flat out against a zero-latency streaming
//! endpoint (the simulated engine behind the real server, or any mock) and record what this
//! host's client can sustain: requests/s, chunks/s and concurrent streams. `bench serving`
//! warns when its planned load exceeds half of it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use inferperf_loadgen::backend::Protocol;
use inferperf_loadgen::client::{Pool, Target};
use inferperf_loadgen::clock::Clock;
use inferperf_loadgen::cpu::ThreadCpu;
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::runner::{run, Abort, PlannedRequest, RunSpec};

/// One calibration point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CalibrationPoint {
    pub concurrency: usize,
    pub requests: usize,
    pub failed: usize,
    pub requests_per_s: f64,
    pub chunks_per_s: f64,
    pub client_cpu_s: f64,
    /// Client CPU seconds per million chunks.
    pub cpu_s_per_m_chunks: f64,
    /// Chunks per client CPU-second: what one fully busy client thread could parse if the
    /// server kept up (the server shares this host, so the measured rate is lower).
    pub chunks_per_client_cpu_s: f64,
}

/// This host's client ceiling (the best point).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibration {
    pub requests_per_s: f64,
    pub chunks_per_s: f64,
    pub streams: usize,
    pub client_threads: usize,
    pub output_len: usize,
    pub points: Vec<CalibrationPoint>,
}

impl Calibration {
    /// Where the last calibration is kept (`~/.cache/inferperf/calibration.json`).
    pub fn cache_path() -> Option<PathBuf> {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/inferperf/calibration.json"))
    }

    /// The cached calibration, if any.
    pub fn load() -> Option<Self> {
        let text = std::fs::read_to_string(Self::cache_path()?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Save atomically to the cache path.
    pub fn save(&self) -> Result<PathBuf, BenchError> {
        let p = Self::cache_path().ok_or_else(|| BenchError::Config("HOME is not set".into()))?;
        inferperf_protocol::fs::write_atomic_with(&p, |f| {
            serde_json::to_writer_pretty(f, self).map_err(std::io::Error::other)
        })
        .map_err(|e| {
            BenchError::io(
                format!("saving calibration to {}", e.path.display()),
                e.source,
            )
        })?;
        Ok(p)
    }

    /// Warnings when a planned load exceeds half of the ceiling.
    pub fn overload_warnings(
        &self,
        rate: Option<f64>,
        concurrency: usize,
        mean_output: f64,
    ) -> Vec<String> {
        let mut w = vec![];
        if let Some(r) = rate {
            if r > 0.5 * self.requests_per_s {
                w.push(format!(
                    "planned {r:.0} req/s exceeds half of this host's client ceiling ({:.0} req/s, `inferperf bench calibrate`)",
                    self.requests_per_s
                ));
            }
            let chunks = r * mean_output;
            if chunks > 0.5 * self.chunks_per_s {
                w.push(format!(
                    "planned ~{chunks:.0} chunks/s exceeds half of this host's client ceiling ({:.0} chunks/s)",
                    self.chunks_per_s
                ));
            }
        }
        if concurrency > 2 * self.streams.max(1) {
            w.push(format!(
                "{concurrency} concurrent streams is beyond the calibrated {} streams",
                self.streams
            ));
        }
        w
    }
}

/// Options of a calibration run.
pub struct CalibrateOptions {
    pub base_url: String,
    pub model: String,
    pub concurrency: Vec<usize>,
    pub num_requests: usize,
    pub output_len: usize,
    pub cpu: ThreadCpu,
    pub client_threads: usize,
}

/// Run the client flat out at each concurrency level (completions stream, `ignore_eos`).
pub async fn calibrate(o: &CalibrateOptions) -> Result<Calibration, BenchError> {
    let target = Target::from_base_url(&o.base_url, Default::default())?;
    let pool = Arc::new(Pool::new(target));
    let body = json!({"model": o.model, "prompt": "hello", "max_tokens": o.output_len, "stream": true,
                      "temperature": 0.0, "ignore_eos": true});
    let body = Bytes::from(body.to_string());
    let mut points = vec![];
    for &c in &o.concurrency {
        let req = PlannedRequest {
            body: body.clone(),
            prompt_len: 1,
            output_len: o.output_len,
            headers: None,
            rid: None,
            conversation: None,
        };
        let spec = RunSpec {
            requests: Arc::new(vec![req; o.num_requests]),
            offsets: vec![0; o.num_requests],
            max_concurrency: Some(c),
            path: pool.target().path("/v1/completions"),
            protocol: Protocol::Completions,
            stream: true,
            timeout: None,
            stall_timeout: Some(std::time::Duration::from_secs(60)),
            max_consecutive_connect_failures: 8,
            warmup: false,
            print_requests: false,
            cpu: o.cpu.clone(),
            exchange: inferperf_loadgen::runner::Exchange::default(),
        };
        let cpu0 = o.cpu.seconds();
        let t = Instant::now();
        let res = run(
            pool.clone(),
            spec,
            Clock::start(),
            Arc::default(),
            Abort::default(),
        )
        .await;
        let wall = t.elapsed().as_secs_f64().max(1e-9);
        let cpu = o.cpu.seconds() - cpu0;
        let chunks: usize = res.records.iter().map(|r| r.chunk_ns.len()).sum();
        let failed = res.records.iter().filter(|r| !r.success()).count();
        let p = CalibrationPoint {
            concurrency: c,
            requests: res.records.len(),
            failed,
            requests_per_s: (res.records.len() - failed) as f64 / res.duration_s.max(1e-9),
            chunks_per_s: chunks as f64 / res.duration_s.max(1e-9),
            client_cpu_s: cpu,
            cpu_s_per_m_chunks: cpu / (chunks.max(1) as f64) * 1e6,
            chunks_per_client_cpu_s: chunks as f64 / cpu.max(1e-9),
        };
        tracing::info!(
            "calibration c={c}: {:.0} req/s, {:.0} chunks/s, client CPU {:.2} s in {wall:.2} s",
            p.requests_per_s,
            p.chunks_per_s,
            p.client_cpu_s
        );
        points.push(p);
    }
    let best = points
        .iter()
        .filter(|p| p.failed == 0)
        .max_by(|a, b| a.chunks_per_s.total_cmp(&b.chunks_per_s))
        .ok_or_else(|| BenchError::Server("every calibration point had failures".into()))?;
    Ok(Calibration {
        requests_per_s: best.requests_per_s,
        chunks_per_s: best.chunks_per_s,
        streams: o.concurrency.iter().copied().max().unwrap_or(0),
        client_threads: o.client_threads,
        output_len: o.output_len,
        points: points.clone(),
    })
}
