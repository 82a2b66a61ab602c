//! Test-only capacity limit (`--inferperf-test-admit-rate K`): generation requests are admitted
//! at most K per second, evenly spaced (a leaky bucket with no burst); the rest wait in line.
//! It gives `bench slo` a server whose capacity is known exactly. The server labels itself in
//! `/get_server_info` (`inferperf_test_admit_rate`) so results from it are never mistaken for a
//! real engine's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Mutex;

/// The admission schedule: the next free slot.
pub struct AdmissionGate {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl AdmissionGate {
    /// A gate admitting `rate` requests per second (`rate > 0`).
    pub fn new(rate: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(None),
        }
    }

    /// Wait for this request's slot.
    async fn admit(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// Middleware: generation routes wait for their admission slot.
pub async fn gate(State(g): State<Arc<AdmissionGate>>, req: Request, next: Next) -> Response {
    if matches!(
        req.uri().path(),
        "/generate" | "/v1/completions" | "/v1/chat/completions"
    ) {
        g.admit().await;
    }
    next.run(req).await
}
