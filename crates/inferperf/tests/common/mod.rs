//! Helpers of the CLI's process tests: `inferperf serve` as a child process on an ephemeral
//! port, the combined output of a finished command for assertion messages, and (`deploy`) the
//! Kubernetes manifests' command lines.
#![allow(dead_code)] // each test binary uses a different subset

pub mod deploy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};

/// `inferperf serve --port 0 ARGS`, killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub addr: String,
    /// Everything the server logged so far (drained by a thread so it never blocks).
    log: std::sync::Arc<std::sync::Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl ServeProcess {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_inferperf"))
            .args(["serve", "--port", "0"])
            .args(args)
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
        // Keep draining the log so the server never blocks on a full pipe.
        let shared = std::sync::Arc::new(std::sync::Mutex::new(log));
        let sink = shared.clone();
        let drain = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        Self {
            child,
            addr,
            log: shared,
            drain: Some(drain),
        }
    }

    /// Send SIGTERM, wait for the exit, and return its status with the whole log.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait for inferperf serve");
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        (exit, log)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET path` with an optional bearer key; the raw response.
    pub fn get(&self, path: &str, key: Option<&str>) -> String {
        let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
        self.request(&format!("GET {path}"), &auth, "")
    }

    /// One HTTP/1.1 request (`request_line` like `POST /generate`) with `Connection: close`;
    /// the raw response.
    pub fn request(&self, request_line: &str, extra_headers: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to the server");
        write!(
            stream,
            "{request_line} HTTP/1.1\r\nHost: {}\r\n{extra_headers}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .expect("write request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        response
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status, stdout and stderr of a finished command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
