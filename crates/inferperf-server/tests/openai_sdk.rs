//! The official OpenAI Python SDK against the server: chat and completions, streamed and not,
//! and typed errors. Needs the test venv (`scripts/fetch-test-assets.sh`).

mod common;

use std::process::Command;

use common::*;

/// Run the SDK script against `base_url`; panics with its output on failure.
async fn run_sdk_script(base_url: String) {
    let python = inferperf_test_support::venv_python();
    let script = inferperf_test_support::manifest_dir!().join("tests/openai_sdk_client.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .arg(&base_url)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "OpenAI SDK script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("OPENAI SDK OK"), "{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_against_the_fake_engine() {
    let s = start_fake(fake_args()).await;
    run_sdk_script(s.base.clone()).await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_against_the_default_model() {
    let server =
        inferperf_server::EmbeddedServer::start(inferperf_server::ServerConfig::ephemeral())
            .await
            .expect("start the server with --model-path default");
    run_sdk_script(server.base_url()).await;
    server.shutdown().await.unwrap();
}
