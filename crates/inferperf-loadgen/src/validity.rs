//! Was the measurement valid? Pacing lag (release vs schedule), late arrivals, runtime
//! scheduling lag and client CPU use, turned into a verdict: `OK`, or `CLIENT-BOUND` with the
//! reasons, or `SERVER-FAILED` when the server died or failed every request, printed at the
//! end of every run and written to the record.

use serde::Serialize;

use crate::record::RequestRecord;
use crate::stats::{percentile_sorted, sorted};

/// A release later than this after its scheduled time counts as a late arrival.
pub const LATE_NS: u64 = 1_000_000;

/// The validity block.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Validity {
    pub pacing_lag_p50_ms: f64,
    pub pacing_lag_p99_ms: f64,
    pub pacing_lag_max_ms: f64,
    /// Released more than 1 ms after schedule.
    pub late_arrivals: usize,
    /// Arrivals never sent because the client could not keep up (this client queues instead
    /// of dropping, so this is always 0; queueing shows in the client queue time).
    pub dropped_arrivals: usize,
    /// Requests never released because the run stopped early.
    pub not_started: usize,
    /// How late a 1 ms timer fired on the client runtime (p99).
    pub runtime_lag_p99_ms: f64,
    /// CPU seconds of the client's own threads during the run.
    pub client_cpu_s: f64,
    /// `client_cpu_s / (duration * client threads)`.
    pub client_cpu_utilization: f64,
    pub client_threads: usize,
    /// CPU seconds of the whole process (includes an embedded server).
    pub process_cpu_s: f64,
    pub verdict: String,
    pub reasons: Vec<String>,
}

/// Inputs of the verdict.
pub struct ValidityInputs<'a> {
    pub records: &'a [RequestRecord],
    /// True for an open-loop schedule (finite rate or trace); pacing lag only matters then.
    pub paced: bool,
    pub not_started: usize,
    pub runtime_lag_ns: &'a [u64],
    pub client_cpu_s: f64,
    pub process_cpu_s: f64,
    pub client_threads: usize,
    pub duration_s: f64,
    /// Why the server failed the run (it died, or no request succeeded), if it did.
    pub server_failure: Option<String>,
}

impl<'a> ValidityInputs<'a> {
    /// The inputs of a finished run: its records, lags and duration, the CPU it used, and
    /// whether the server failed it.
    pub fn of_run(
        res: &'a crate::runner::RunResult,
        paced: bool,
        client_cpu_s: f64,
        process_cpu_s: f64,
        client_threads: usize,
    ) -> Self {
        Self {
            records: &res.records,
            paced,
            not_started: res.not_started,
            runtime_lag_ns: &res.runtime_lag_ns,
            client_cpu_s,
            process_cpu_s,
            client_threads,
            duration_s: res.duration_s,
            server_failure: server_failure(&res.records, res.abort_reason.as_deref()),
        }
    }
}

/// Compute the block and the verdict.
pub fn assess(i: &ValidityInputs<'_>) -> Validity {
    let lags: Vec<f64> = i
        .records
        .iter()
        .map(|r| r.released_ns.saturating_sub(r.scheduled_ns) as f64 * 1e-6)
        .collect();
    let s = sorted(&lags);
    let rt = sorted(
        &i.runtime_lag_ns
            .iter()
            .map(|&l| l as f64 * 1e-6)
            .collect::<Vec<_>>(),
    );
    let mut v = Validity {
        pacing_lag_p50_ms: percentile_sorted(&s, 50.0),
        pacing_lag_p99_ms: percentile_sorted(&s, 99.0),
        pacing_lag_max_ms: s.last().copied().unwrap_or(0.0),
        late_arrivals: i
            .records
            .iter()
            .filter(|r| r.released_ns.saturating_sub(r.scheduled_ns) > LATE_NS)
            .count(),
        dropped_arrivals: 0,
        not_started: i.not_started,
        runtime_lag_p99_ms: percentile_sorted(&rt, 99.0),
        client_cpu_s: i.client_cpu_s,
        client_threads: i.client_threads,
        process_cpu_s: i.process_cpu_s,
        ..Default::default()
    };
    let budget = i.duration_s * i.client_threads.max(1) as f64;
    v.client_cpu_utilization = if budget > 0.0 {
        i.client_cpu_s / budget
    } else {
        0.0
    };
    if i.paced && v.pacing_lag_p99_ms > 1.0 {
        v.reasons.push(format!(
            "pacing lag p99 {:.3} ms > 1 ms: arrivals left later than scheduled",
            v.pacing_lag_p99_ms
        ));
    }
    if i.paced && v.late_arrivals * 100 > i.records.len().max(1) {
        v.reasons.push(format!(
            "{} late arrivals (> 1 % of requests)",
            v.late_arrivals
        ));
    }
    if v.runtime_lag_p99_ms > 5.0 {
        v.reasons.push(format!(
            "client runtime lag p99 {:.2} ms > 5 ms: timestamps were taken late",
            v.runtime_lag_p99_ms
        ));
    }
    let client_limited = i
        .records
        .iter()
        .filter(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.kind == crate::record::ErrorKind::ClientLimit)
        })
        .count();
    if client_limited > 0 {
        v.reasons.push(format!(
            "{client_limited} requests failed on this client's own limits (open files or \
             ephemeral ports): raise `ulimit -n` or use more shards"
        ));
    }
    if v.client_cpu_utilization > 0.9 {
        v.reasons.push(format!(
            "client threads {:.0} % busy",
            v.client_cpu_utilization * 100.0
        ));
    }
    v.verdict = if let Some(why) = &i.server_failure {
        // The server's failure decides the run; client-side reasons may be its symptoms.
        v.reasons.insert(0, why.clone());
        "SERVER-FAILED".into()
    } else if v.reasons.is_empty() {
        "OK".into()
    } else {
        "CLIENT-BOUND".into()
    };
    v
}

/// Whether the server failed the run: the run stopped because the server became unreachable,
/// or not one request succeeded. `None` for a run the server carried (some failures are
/// results, not a failed server).
pub fn server_failure(records: &[RequestRecord], abort_reason: Option<&str>) -> Option<String> {
    if let Some(r) = abort_reason.filter(|r| r.starts_with("server unreachable")) {
        return Some(format!("the server died during the run: {r}"));
    }
    let client_limit = |r: &RequestRecord| {
        r.error
            .as_ref()
            .is_some_and(|e| e.kind == crate::record::ErrorKind::ClientLimit)
    };
    // Failures that are all the client's own limits are not the server's failure.
    if records.is_empty()
        || records.iter().any(RequestRecord::success)
        || records.iter().all(client_limit)
    {
        return None;
    }
    let first = records
        .iter()
        .find_map(|r| r.error.as_ref())
        .map(|e| format!(" (first error: {:?}: {})", e.kind, e.message))
        .unwrap_or_default();
    Some(format!(
        "no request succeeded: all {} failed{first}",
        records.len()
    ))
}

/// The block as printed after the tables.
pub fn render(v: &Validity) -> String {
    let mut o = String::new();
    let row = |o: &mut String, l: &str, val: String| o.push_str(&format!("{l:<40} {val:<10}\n"));
    o.push_str("--------------Measurement validity----------------\n");
    row(
        &mut o,
        "Pacing lag p50/p99/max (ms):",
        format!(
            "{:.3}/{:.3}/{:.3}",
            v.pacing_lag_p50_ms, v.pacing_lag_p99_ms, v.pacing_lag_max_ms
        ),
    );
    row(
        &mut o,
        "Late arrivals (> 1 ms):",
        v.late_arrivals.to_string(),
    );
    row(&mut o, "Dropped arrivals:", v.dropped_arrivals.to_string());
    if v.not_started > 0 {
        row(
            &mut o,
            "Never started (run stopped):",
            v.not_started.to_string(),
        );
    }
    row(
        &mut o,
        "Client runtime lag p99 (ms):",
        format!("{:.3}", v.runtime_lag_p99_ms),
    );
    row(
        &mut o,
        "Client CPU (s, % of its threads):",
        format!(
            "{:.2} s, {:.0} % of {}",
            v.client_cpu_s,
            v.client_cpu_utilization * 100.0,
            v.client_threads
        ),
    );
    row(&mut o, "Verdict:", v.verdict.clone());
    for r in &v.reasons {
        o.push_str(&format!("  - {r}\n"));
    }
    o.push_str(&"=".repeat(50));
    o.push('\n');
    o
}
