//! Connection handling of both server kinds, with raw TCP clients: a connection that never
//! finishes its headers is closed after `--header-read-timeout-sec`, and with every one of
//! `--max-connections` held by idle clients `/health` still answers (other routes get a quick
//! 503) until the idle clients go away.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use inferperf_server::{EmbeddedServer, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound on any wait below: generous for a loaded machine, never an expectation.
const PATIENCE: Duration = Duration::from_secs(60);

fn fake_with(timeout_sec: f64, max_connections: u32) -> ServerConfig {
    ServerConfig {
        header_read_timeout_sec: timeout_sec,
        max_connections,
        ..fake_args()
    }
}

async fn diffusion_with(timeout_sec: f64, max_connections: u32) -> EmbeddedServer {
    EmbeddedServer::start(ServerConfig {
        model_path: "diffusion".into(),
        header_read_timeout_sec: timeout_sec,
        max_connections,
        ..ServerConfig::ephemeral()
    })
    .await
    .expect("diffusion server")
}

/// Read until the server closes the connection; what it sent, if anything.
async fn read_until_closed(mut tcp: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut got)).await;
    match read {
        Ok(Ok(_)) => got,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Ok(Err(e)) => panic!("reading from the server: {e}"),
        Err(_) => panic!("the server kept the connection open for {PATIENCE:?}"),
    }
}

/// A connection with half a request, one with nothing at all: both closed by the server
/// without an answer; a complete request on a new connection is still served.
async fn check_header_timeout(addr: SocketAddr, base: &str) {
    let mut partial = TcpStream::connect(addr).await.expect("connect");
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write half a request");
    let silent = TcpStream::connect(addr).await.expect("connect");
    for (what, tcp) in [("partial headers", partial), ("no bytes", silent)] {
        let got = read_until_closed(tcp).await;
        assert!(
            !got.starts_with(b"HTTP/1.1 200"),
            "{what}: answered as if complete: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    let (status, _) = get(&reqwest::Client::new(), &format!("{base}/health")).await;
    assert_eq!(status, 200);
}

/// Hold every regular slot with idle connections (accepted in connect order, so they take
/// the slots before the probes below), then: `/health` answers 200, another route a 503 naming
/// the flag; once the idle connections close, that route is served again.
async fn check_cap(addr: SocketAddr, base: &str, cap: u32, other_route: &str) {
    let mut idle = Vec::new();
    for _ in 0..cap {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let http = reqwest::Client::new();
    let health = tokio::time::timeout(PATIENCE, get(&http, &format!("{base}/health")))
        .await
        .expect("/health answers while the cap is reached");
    assert_eq!(health.0, 200, "{}", health.1);
    let (status, body) = get(&http, &format!("{base}{other_route}")).await;
    assert_error(status, &body, 503, &["--max-connections"]);

    drop(idle);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = get(&http, &format!("{base}{other_route}")).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "slots never freed after the idle clients left"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn llm_server_closes_connections_that_never_finish_their_headers() {
    let s = start_fake(fake_with(0.3, 64)).await;
    check_header_timeout(s.server.local_addr(), &s.base).await;
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffusion_server_closes_connections_that_never_finish_their_headers() {
    let s = diffusion_with(0.3, 64).await;
    check_header_timeout(s.local_addr(), &s.base_url()).await;
    s.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn llm_server_answers_health_with_every_connection_held() {
    let s = start_fake(fake_with(600.0, 4)).await;
    check_cap(s.server.local_addr(), &s.base, 4, "/v1/models").await;
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffusion_server_answers_health_with_every_connection_held() {
    let s = diffusion_with(600.0, 4).await;
    check_cap(s.local_addr(), &s.base_url(), 4, "/v1/models").await;
    s.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn invalid_connection_flags_are_refused_at_start() {
    for bad in [0.0, -1.0, f64::NAN] {
        let engine = common::fake_engine::FakeEngine::start();
        let err = EmbeddedServer::start_with_engine(fake_with(bad, 4), engine.parts())
            .await
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("--header-read-timeout-sec"),
            "{err}"
        );
    }
}
