//! Where a decode step's time goes: per-module totals over a greedy generation, via StepHooks.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use inferperf_engine::api::{GenerateEvent, GenerateRequest, SamplingParams};
use inferperf_engine::hooks::{BatchSummary, ModuleTiming, StepHooks};
use inferperf_engine::{launch_with_hooks, EngineConfig};

/// Seconds per module, total forward seconds, and forward count.
type Tally = (BTreeMap<&'static str, f64>, f64, usize);

#[derive(Clone, Default)]
struct Totals(Arc<Mutex<Tally>>);

impl StepHooks for Totals {
    fn on_step_begin(&mut self, b: &BatchSummary) -> bool {
        b.mode.name() == std::env::var("STEP_MODE").unwrap_or_else(|_| "DECODE".into())
    }
    fn on_module(&mut self, t: ModuleTiming) {
        if let Ok(mut g) = self.0.lock() {
            *g.0.entry(t.module).or_default() += (t.end - t.start).as_secs_f64();
        }
    }
    fn on_forward(&mut self, s: std::time::Instant, e: std::time::Instant) {
        if let Ok(mut g) = self.0.lock() {
            g.1 += (e - s).as_secs_f64();
            g.2 += 1;
        }
    }
}

#[tokio::main]
async fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "default".into());
    let streams: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let totals = Totals::default();
    let Ok(eng) = launch_with_hooks(
        EngineConfig {
            model_path: path,
            ..Default::default()
        },
        Box::new(totals.clone()),
    ) else {
        return;
    };
    let ids = eng
        .tokenizer
        .encode("Tell me a short story about a cat.", false)
        .unwrap_or_default();
    let t0 = std::time::Instant::now();
    let mut rxs = Vec::new();
    for i in 0..streams {
        let req = GenerateRequest {
            rid: format!("p{i}"),
            input_ids: ids.clone(),
            sampling: SamplingParams {
                temperature: 0.0,
                max_new_tokens: 64,
                ignore_eos: true,
                ..Default::default()
            },
            stream_interval: 1,
        };
        if let Ok(rx) = eng.handle.generate(req) {
            rxs.push(rx)
        }
    }
    let mut n = 0;
    for mut rx in rxs {
        while let Some(ev) = rx.recv().await {
            match ev {
                GenerateEvent::Tokens { token_ids, .. } => n += token_ids.len(),
                GenerateEvent::Finished(_) => break,
            }
        }
    }
    let el = t0.elapsed().as_secs_f64();
    let guard = totals.0.lock();
    if let Ok(g) = guard {
        println!(
            "{streams} streams: {n} tokens in {el:.2}s = {:.1} tok/s; decode steps {} avg {:.2} ms",
            n as f64 / el,
            g.2,
            1e3 * g.1 / g.2.max(1) as f64
        );
        for (k, v) in &g.0 {
            println!("  {k:24} {:.2} ms/step", 1e3 * v / g.2.max(1) as f64);
        }
    };
}
