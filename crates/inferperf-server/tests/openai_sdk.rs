//! The official OpenAI Python SDK against the server: chat and completions, streamed and not,
//! and typed errors. Needs the test venv (`scripts/fetch-test-assets.sh`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// This package's directory, as the test runner gives it at run time (cargo and nextest set
/// `CARGO_MANIFEST_DIR` for test processes); the compile-time value only as a fallback, since
/// a target dir shared with a clone elsewhere can hold a test binary built there.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The venv's python, or a failure that says how to create it.
fn venv_python() -> PathBuf {
    let assets = std::env::var_os("INFERPERF_ASSETS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/inferperf/assets"))
        })
        .expect("neither INFERPERF_ASSETS nor HOME is set");
    let python = assets.join("venv/bin/python");
    assert!(
        python.exists(),
        "the test venv is missing ({}): run scripts/fetch-test-assets.sh (it installs the \
         `openai` SDK into $INFERPERF_ASSETS/venv)",
        python.display()
    );
    python
}

/// Run the SDK script against `base_url`; panics with its output on failure.
async fn run_sdk_script(base_url: String) {
    let python = venv_python();
    let script = manifest_dir().join("tests/openai_sdk_client.py");
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
    let server = inferperf_server::EmbeddedServer::start(inferperf_server::ServerArgs::ephemeral())
        .await
        .expect("start the server with --model-path default");
    run_sdk_script(server.base_url()).await;
    server.shutdown().await.unwrap();
}
