//! The server's wall clock relative to the client's, for lining up a client request trace
//! with server traces written on another host.
//!
//! NTP-style: the client stamps each `GET /server_info` before sending and after the reply
//! (monotonic readings mapped to Unix time by the run's [`Clock`]), the server reports
//! `server_time_ns` (its Unix time when it built the reply), and the probe with the smallest
//! round trip gives `offset = server - (sent + received) / 2`, within half that round trip.
//! Probes run before and after the run; the difference of the two estimates is reported as
//! drift. Servers without `server_time_ns` (SGLang, vLLM today) give no estimate.

use std::time::Duration;

use hyper::{Method, StatusCode};
use inferperf_loadgen::client::{simple_request, Pool};
use inferperf_loadgen::clock::Clock;
use inferperf_loadgen::request_trace::ServerClock;

/// Probes per batch (before, and again after the run).
pub const PROBES: usize = 8;

/// One round trip: client Unix ns at send and at receipt, and the server's reported time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub sent_ns: u64,
    pub received_ns: u64,
    pub server_ns: u64,
}

impl Probe {
    fn rtt(&self) -> u64 {
        self.received_ns.saturating_sub(self.sent_ns)
    }

    fn offset(&self) -> i64 {
        let mid = self.sent_ns / 2 + self.received_ns / 2;
        self.server_ns as i64 - mid as i64
    }
}

/// Up to `n` probes of `/server_info`; stops at the first reply without `server_time_ns`.
pub async fn probe(pool: &Pool, clock: &Clock, n: usize) -> Vec<Probe> {
    let mut out = Vec::new();
    for _ in 0..n {
        let sent = clock.now_ns();
        let reply = simple_request(
            pool,
            Method::GET,
            "/server_info",
            None,
            Duration::from_secs(5),
        )
        .await;
        let received = clock.now_ns();
        let server_ns = match reply {
            Ok((StatusCode::OK, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("server_time_ns").and_then(serde_json::Value::as_u64)),
            _ => None,
        };
        let Some(server_ns) = server_ns else { break };
        out.push(Probe {
            sent_ns: clock.unix_ns(sent),
            received_ns: clock.unix_ns(received),
            server_ns,
        });
    }
    out
}

/// The estimate from the probes before and after the run (`None` without any).
pub fn estimate(before: &[Probe], after: &[Probe]) -> Option<ServerClock> {
    let best = |p: &[Probe]| p.iter().min_by_key(|p| p.rtt()).copied();
    let overall = before
        .iter()
        .chain(after)
        .min_by_key(|p| p.rtt())
        .copied()?;
    let drift_ns = match (best(before), best(after)) {
        (Some(b), Some(a)) => a.offset() - b.offset(),
        _ => 0,
    };
    Some(ServerClock {
        offset_ns: overall.offset(),
        uncertainty_ns: overall.rtt().div_ceil(2),
        drift_ns,
        samples: before.len() + after.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(sent: u64, received: u64, server: u64) -> Probe {
        Probe {
            sent_ns: sent,
            received_ns: received,
            server_ns: server,
        }
    }

    #[test]
    fn the_shortest_round_trip_sets_offset_and_uncertainty() {
        // The server is 1 s ahead; the second probe's 200 ns round trip is the best.
        let before = [
            p(0, 10_000, 1_000_009_000),
            p(20_000, 20_200, 1_000_020_100),
        ];
        let after = [p(50_000, 51_000, 1_000_050_700)];
        let c = estimate(&before, &after).expect("estimate");
        assert_eq!(c.offset_ns, 1_000_000_000);
        assert_eq!(c.uncertainty_ns, 100);
        assert_eq!(c.drift_ns, 200);
        assert_eq!(c.samples, 3);
    }

    #[test]
    fn no_probes_no_estimate() {
        assert_eq!(estimate(&[], &[]), None);
    }
}
