//! `inferperf serve` as a process: it logs the listening URL, answers HTTP on it, and exits
//! cleanly on SIGTERM. Uses `--model-path simulated` so no model has to load.

mod common;

use common::ServeProcess;

#[test]
fn serve_logs_its_url_answers_and_stops_on_sigterm() {
    let mut server = ServeProcess::start(&["--model-path", "simulated"]);
    let health = server.get("/health", None);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let generate = server.request(
        "POST /generate",
        "",
        r#"{"text": "a b c", "sampling_params": {"max_new_tokens": 3}}"#,
    );
    assert!(generate.starts_with("HTTP/1.1 200"), "{generate}");
    assert!(generate.contains(r#""completion_tokens":3"#), "{generate}");

    let (exit, log) = server.terminate();
    assert!(exit.success(), "exit status {exit}; log:\n{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}
