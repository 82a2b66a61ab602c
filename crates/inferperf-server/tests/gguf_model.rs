//! Server-level check with a real model (SmolLM2-135M-Instruct GGUF): `/v1/chat/completions`
//! renders the model's own chat template and tokenizes it without an extra BOS, i.e. it is
//! exactly `/generate` on the rendered prompt. Needs `scripts/fetch-test-assets.sh`.

mod common;

use std::path::PathBuf;

use common::*;
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::json;

fn gguf_path() -> PathBuf {
    let assets = std::env::var_os("INFERPERF_ASSETS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/inferperf/assets"))
        })
        .expect("neither INFERPERF_ASSETS nor HOME is set");
    let path = assets.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-test-assets.sh",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_equals_generate_on_the_rendered_template() {
    let args = ServerConfig {
        model_path: gguf_path().display().to_string(),
        ..ServerConfig::ephemeral()
    };
    let server = EmbeddedServer::start(args)
        .await
        .expect("load the GGUF model");
    let base = server.base_url();
    let http = reqwest::Client::new();

    let (status, chat) = post_json(
        &http,
        &format!("{base}/v1/chat/completions"),
        &json!({"messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 4, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{chat}");
    let chat = json(&chat);

    // SmolLM2's template, with its default system prompt.
    let rendered = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by \
                    Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?\
                    <|im_end|>\n<|im_start|>assistant\n";
    let (status, gen) = post_json(
        &http,
        &format!("{base}/generate"),
        &json!({"text": rendered, "sampling_params": {"max_new_tokens": 4, "temperature": 0}}),
    )
    .await;
    assert_eq!(status, 200, "{gen}");
    let gen = json(&gen);

    assert_eq!(
        chat["usage"]["prompt_tokens"], gen["meta_info"]["prompt_tokens"],
        "chat prompt tokens differ from the rendered template's"
    );
    assert_eq!(chat["choices"][0]["message"]["content"], gen["text"]);
    assert!(!gen["text"].as_str().unwrap_or_default().is_empty());
    server.shutdown().await.expect("clean shutdown");
}
