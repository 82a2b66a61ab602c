//! Prints how a chat prompt is rendered and tokenized for a model, and a greedy answer.
use inferperf_engine::api::{GenerateEvent, GenerateRequest, SamplingParams};
use inferperf_engine::{launch, EngineConfig};

#[tokio::main]
async fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "default".into());
    let q = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "What is the capital of France?".into());
    let eng = match launch(EngineConfig {
        model_path: path,
        ..Default::default()
    }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let m = serde_json::json!([{"role": "user", "content": q}]);
    let prompt = eng
        .tokenizer
        .apply_chat_template(&m, true)
        .unwrap_or_default();
    let ids = eng.tokenizer.encode(&prompt, false).unwrap_or_default();
    println!("prompt {prompt:?}\nids {ids:?}");
    let req = GenerateRequest {
        rid: "p".into(),
        input_ids: ids,
        sampling: SamplingParams {
            temperature: 0.0,
            max_new_tokens: 40,
            ..Default::default()
        },
        stream_interval: 1,
    };
    let Ok(mut rx) = eng.handle.generate(req) else {
        return;
    };
    let t = std::time::Instant::now();
    let mut n = 0;
    while let Some(ev) = rx.recv().await {
        match ev {
            GenerateEvent::Tokens {
                text, token_ids, ..
            } => {
                n += token_ids.len();
                print!("{text}")
            }
            GenerateEvent::Finished(f) => {
                println!("\n{f:?}");
                break;
            }
        }
    }
    println!("{n} tokens in {:?}", t.elapsed());
}
