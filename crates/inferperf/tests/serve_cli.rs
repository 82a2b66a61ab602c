//! `inferperf serve` as a process: it logs the listening URL, answers HTTP on it, and exits
//! cleanly on SIGTERM. Uses `--model-path simulated` so no model has to load.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// One HTTP/1.1 request with `Connection: close`; returns the raw response.
fn http(addr: &str, request_line: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    write!(
        stream,
        "{request_line} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

#[test]
fn serve_logs_its_url_answers_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inferperf"))
        .args(["serve", "--model-path", "simulated", "--port", "0"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start inferperf serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut log = String::new();
    let addr = loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => panic!("inferperf serve exited before listening:\n{log}"),
        };
        log.push_str(&line);
        log.push('\n');
        if let Some(i) = line.find("listening on http://") {
            let url = &line[i + "listening on http://".len()..];
            break url
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };

    let health = http(&addr, "GET /health", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let generate = http(
        &addr,
        "POST /generate",
        r#"{"text": "a b c", "sampling_params": {"max_new_tokens": 3}}"#,
    );
    assert!(generate.starts_with("HTTP/1.1 200"), "{generate}");
    assert!(generate.contains(r#""completion_tokens":3"#), "{generate}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    for line in lines.map_while(Result::ok) {
        log.push_str(&line);
        log.push('\n');
    }
    let exit = child.wait().expect("wait for inferperf serve");
    assert!(exit.success(), "exit status {exit}; log:\n{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}
