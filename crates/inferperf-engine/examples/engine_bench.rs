//! In-process engine throughput through `EngineHandle` (no HTTP): for each concurrency, one wave
//! of requests with fixed prompt and output lengths (greedy, `ignore_eos`), reporting aggregate
//! output tokens/s, per-stream decode tokens/s and TTFT, plus engine steps from `forward_ct`.
//!
//! ```text
//! cargo run --release -p inferperf-engine --example engine_bench -- \
//!     [MODEL_PATH|default] [CONCURRENCIES=1,16] [INPUT_LEN=64] [OUTPUT_LEN=128]
//! ```
//! Prints one human line and one `json: {...}` line per concurrency (read by
//! scripts/bench-engine.sh).

use std::time::Instant;

use inferperf_engine::api::{GenerateEvent, GenerateRequest, SamplingParams};
use inferperf_engine::{launch, EngineConfig};

struct Stream {
    ttft: f64,
    decode_tok_s: f64,
    tokens: usize,
}

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let model: String = arg(1, "default".to_string());
    let concs: String = arg(2, "1,16".to_string());
    let input_len: usize = arg(3, 64);
    let output_len: usize = arg(4, 128);
    let load = Instant::now();
    let eng = match launch(EngineConfig {
        model_path: model.clone(),
        ..Default::default()
    }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot launch {model}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "loaded {model} ({}, {} layers) in {:.1}s",
        eng.model_info.architecture,
        eng.model_info.num_hidden_layers,
        load.elapsed().as_secs_f64()
    );
    let base = eng
        .tokenizer
        .encode(
            "The quick brown fox jumps over the lazy dog while the city sleeps. ",
            false,
        )
        .unwrap_or_else(|_| vec![1]);
    for c in concs
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        let before = match eng.handle.internal_state().await {
            Ok(s) => s.forward_ct,
            Err(_) => 0,
        };
        let start = Instant::now();
        let mut rxs = Vec::new();
        for i in 0..c {
            // Distinct prompts of exactly input_len tokens.
            let mut ids: Vec<u32> = base
                .iter()
                .cycle()
                .skip(i)
                .take(input_len)
                .copied()
                .collect();
            ids.truncate(input_len);
            let req = GenerateRequest {
                rid: format!("bench-{c}-{i}"),
                input_ids: ids,
                sampling: SamplingParams {
                    temperature: 0.0,
                    max_new_tokens: output_len,
                    ignore_eos: true,
                    ..Default::default()
                },
                stream_interval: 1,
            };
            match eng.handle.generate(req) {
                Ok(rx) => rxs.push(rx),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        let tasks: Vec<_> = rxs
            .into_iter()
            .map(|mut rx| {
                tokio::spawn(async move {
                    let (mut first, mut last, mut n) = (None, start, 0usize);
                    while let Some(ev) = rx.recv().await {
                        match ev {
                            GenerateEvent::Tokens { token_ids, .. } => {
                                let now = Instant::now();
                                first.get_or_insert(now);
                                last = now;
                                n += token_ids.len();
                            }
                            GenerateEvent::Finished(_) => break,
                        }
                    }
                    let first = first.unwrap_or(last);
                    let span = (last - first).as_secs_f64();
                    Stream {
                        ttft: (first - start).as_secs_f64(),
                        decode_tok_s: if span > 0.0 {
                            (n.saturating_sub(1)) as f64 / span
                        } else {
                            0.0
                        },
                        tokens: n,
                    }
                })
            })
            .collect();
        let mut streams = Vec::new();
        for t in tasks {
            if let Ok(s) = t.await {
                streams.push(s);
            }
        }
        let wall = start.elapsed().as_secs_f64();
        let steps = match eng.handle.internal_state().await {
            Ok(s) => s.forward_ct - before,
            Err(_) => 0,
        };
        let tokens: usize = streams.iter().map(|s| s.tokens).sum();
        let k = streams.len().max(1) as f64;
        let ttft = streams.iter().map(|s| s.ttft).sum::<f64>() / k;
        let decode = streams.iter().map(|s| s.decode_tok_s).sum::<f64>() / k;
        println!(
            "engine c={c}: {tokens} tokens in {wall:.2}s = {:.1} output tok/s; per-stream decode {decode:.1} tok/s; mean TTFT {:.0} ms; {steps} steps",
            tokens as f64 / wall,
            ttft * 1e3
        );
        println!(
            "json: {{\"concurrency\": {c}, \"output_tokens\": {tokens}, \"wall_s\": {wall:.4}, \"output_tok_s\": {:.2}, \"decode_tok_s_per_stream\": {decode:.2}, \"ttft_mean_s\": {ttft:.4}, \"steps\": {steps}}}",
            tokens as f64 / wall
        );
    }
    eng.shutdown();
}
