//! A hostile HTTP server for client tests: it answers the n-th request with the n-th script
//! (cycling), byte for byte, to produce what a real server must never send (empty streams,
//! bytes that are not UTF-8, silence) on 127.0.0.1 with an ephemeral port.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What one response does.
#[derive(Clone)]
pub enum Script {
    /// A 200 event stream with this body, then the connection closes.
    Stream(Vec<u8>),
    /// A 200 event stream that sends this prefix and then stays silent (connection open).
    StreamThenSilence(Vec<u8>),
}

/// The running server; stops when dropped.
pub struct ScriptedServer {
    pub base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedServer {
    pub async fn start(scripts: Vec<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let scripts = Arc::new(scripts);
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (scripts, next) = (scripts.clone(), next.clone());
                tokio::spawn(async move {
                    let Some(is_post) = read_request(&mut sock).await else {
                        return;
                    };
                    if !is_post {
                        // Readiness and info probes: a model list, no script used.
                        let body =
                            br#"{"object":"list","data":[{"id":"scripted","object":"model"}]}"#;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body).await;
                        let _ = sock.shutdown().await;
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                    let _ = sock.write_all(head).await;
                    match &scripts[i % scripts.len()] {
                        Script::Stream(body) => {
                            let _ = sock.write_all(body).await;
                            let _ = sock.shutdown().await;
                        }
                        Script::StreamThenSilence(prefix) => {
                            let _ = sock.write_all(prefix).await;
                            // Hold the connection open until the client gives up.
                            let mut buf = [0u8; 64];
                            while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
                        }
                    }
                });
            }
        });
        Self {
            base_url: format!("http://{addr}"),
            task,
        }
    }
}

/// Read one request (headers and a `content-length` body): whether it is a POST; `None` on
/// EOF or error.
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<bool> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(head.starts_with("post "))
}
