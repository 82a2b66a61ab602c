//! What `--log-requests` adds per engine step, measured on the hooks alone (no model):
//! the engine's hook calls for CONC requests decoding TOKENS tokens each, replayed ROUNDS
//! times, through `NoHooks` and through the request log's wrapper around `NoHooks`.
//! Prints ns per step for both; `scripts/bench-profiler-overhead.sh` runs it next to the
//! end-to-end comparison. Usage: request_log_step_cost [ROUNDS] [CONC] [TOKENS]

use std::time::Instant;

use inferperf_engine::api::FinishReason;
use inferperf_engine::hooks::{
    BatchSummary, ForwardMode, NoHooks, RequestEvent, RequestStage, StepHooks, StepOutcome,
};
use inferperf_server::request_log::RequestLog;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// One workload through `hooks`; returns the steps it took.
fn replay(hooks: &mut dyn StepHooks, round: usize, conc: usize, tokens: usize) -> usize {
    let rids: Vec<String> = (0..conc).map(|i| format!("r{round}-{i}")).collect();
    let wants = hooks.wants_request_events();
    let now = Instant::now();
    if wants {
        for rid in &rids {
            for stage in [
                RequestStage::Received {
                    arrival: now,
                    tokenized: now,
                    prompt_tokens: 16,
                },
                RequestStage::Enqueued { queue_pos: 0 },
            ] {
                hooks.on_request(&RequestEvent {
                    rid,
                    at: now,
                    stage,
                });
            }
        }
    }
    for step in 0..tokens {
        let batch = BatchSummary {
            forward_ct: (round * tokens + step) as u64,
            mode: if step == 0 {
                ForwardMode::Extend
            } else {
                ForwardMode::Decode
            },
            batch_size: conc,
            num_tokens: conc,
            prefix_lens: vec![16 + step; conc],
            extend_lens: vec![if step == 0 { 16 } else { 1 }; conc],
            schedule_start: None,
            rids: if wants { rids.clone() } else { Vec::new() },
        };
        hooks.on_step_begin(&batch);
        let t = Instant::now();
        hooks.on_forward(t, t);
        hooks.on_step_end(&StepOutcome {
            forward_ct: batch.forward_ct,
            running_reqs: conc,
            waiting_reqs: 0,
            kv_used_tokens: 0,
            kv_total_tokens: 0,
            new_tokens: conc,
        });
        if wants {
            for rid in &rids {
                let stage = if step == 0 {
                    RequestStage::FirstToken
                } else {
                    RequestStage::Chunk { tokens: 1 }
                };
                hooks.on_request(&RequestEvent { rid, at: t, stage });
            }
        }
    }
    if wants {
        let reason = FinishReason::Length { length: tokens };
        for rid in &rids {
            hooks.on_request(&RequestEvent {
                rid,
                at: Instant::now(),
                stage: RequestStage::Finished {
                    reason: &reason,
                    prompt_tokens: 16,
                    completion_tokens: tokens,
                    cached_tokens: 0,
                },
            });
        }
    }
    tokens
}

fn ns_per_step(hooks: &mut dyn StepHooks, rounds: usize, conc: usize, tokens: usize) -> f64 {
    let t = Instant::now();
    let mut steps = 0;
    for round in 0..rounds {
        steps += replay(hooks, round, conc, tokens);
    }
    t.elapsed().as_nanos() as f64 / steps as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (rounds, conc, tokens) = (arg(1, 2000), arg(2, 4), arg(3, 128));
    let dir = std::env::temp_dir().join(format!("request-log-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let log = RequestLog::open(&dir.join("requests.jsonl"))?;
    let mut plain: Box<dyn StepHooks> = Box::new(NoHooks);
    let mut logged = log.hooks(Box::new(NoHooks));
    // Warm both, then alternate so drifts hit both alike.
    ns_per_step(plain.as_mut(), rounds / 10 + 1, conc, tokens);
    ns_per_step(logged.as_mut(), rounds / 10 + 1, conc, tokens);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        a.push(ns_per_step(plain.as_mut(), rounds / 5, conc, tokens));
        b.push(ns_per_step(logged.as_mut(), rounds / 5, conc, tokens));
    }
    drop(logged);
    log.finish();
    let _ = std::fs::remove_dir_all(&dir);
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    println!(
        "hooks per step ({conc} requests x {tokens} tokens, {rounds} rounds): NoHooks {:.0} ns, \
         with --log-requests {:.0} ns (medians of 5)",
        a[2], b[2]
    );
    Ok(())
}
