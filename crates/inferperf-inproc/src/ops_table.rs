//! The operator table printed after a profiled one-batch window (torch's
//! `key_averages().table(sort_by="self_cpu_time_total")`): per span name, the time spent in
//! the span itself (children excluded), the total, and the call count, from the trace file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use inferperf_loadgen::error::BenchError;

#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "traceEvents", default)]
    events: Vec<Ev>,
}

#[derive(Deserialize)]
struct Ev {
    #[serde(default)]
    name: String,
    #[serde(default)]
    ph: String,
    #[serde(default)]
    pid: serde_json::Value,
    #[serde(default)]
    tid: serde_json::Value,
    #[serde(default)]
    ts: f64,
    #[serde(default)]
    dur: f64,
}

/// Per-name totals in microseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpStats {
    pub self_us: f64,
    pub total_us: f64,
    pub calls: usize,
}

/// Self and total time per span name over the complete (`X`) events of each thread; the
/// `ProfilerStep#N` wrappers are left out, as torch leaves them out of its table.
pub fn op_stats(path: &Path) -> Result<Vec<(String, OpStats)>, BenchError> {
    let file = std::fs::File::open(path)
        .map_err(|e| BenchError::io(format!("opening {}", path.display()), e))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
    let trace: Trace = serde_json::from_str(&text)
        .map_err(|e| BenchError::Dataset(format!("{}: not a trace: {e}", path.display())))?;
    let mut threads: HashMap<String, Vec<&Ev>> = HashMap::new();
    for e in trace.events.iter().filter(|e| e.ph == "X" && e.dur >= 0.0) {
        threads
            .entry(format!("{}/{}", e.pid, e.tid))
            .or_default()
            .push(e);
    }
    let mut stats: HashMap<&str, OpStats> = HashMap::new();
    for evs in threads.values_mut() {
        // Parents first: earlier start, then longer duration.
        evs.sort_by(|a, b| a.ts.total_cmp(&b.ts).then(b.dur.total_cmp(&a.dur)));
        let mut stack: Vec<(usize, f64)> = Vec::new(); // (index, end)
        let mut self_time: Vec<f64> = evs.iter().map(|e| e.dur).collect();
        for (i, e) in evs.iter().enumerate() {
            while stack.last().is_some_and(|&(_, end)| e.ts >= end) {
                stack.pop();
            }
            if let Some(&(parent, _)) = stack.last() {
                self_time[parent] -= e.dur;
            }
            stack.push((i, e.ts + e.dur));
        }
        for (e, s) in evs.iter().zip(self_time) {
            if e.name.starts_with("ProfilerStep#") {
                continue;
            }
            let st = stats.entry(e.name.as_str()).or_default();
            st.self_us += s.max(0.0);
            st.total_us += e.dur;
            st.calls += 1;
        }
    }
    let mut v: Vec<(String, OpStats)> =
        stats.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    v.sort_by(|a, b| b.1.self_us.total_cmp(&a.1.self_us).then(a.0.cmp(&b.0)));
    Ok(v)
}

/// The `top` rows by self time as a text table.
pub fn render(path: &Path, top: usize) -> Result<String, BenchError> {
    let stats = op_stats(path)?;
    let total_self: f64 = stats.iter().map(|(_, s)| s.self_us).sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<48} {:>14} {:>9} {:>14} {:>8}",
        "Name", "Self CPU (ms)", "Self %", "CPU total (ms)", "# Calls"
    );
    for (name, s) in stats.iter().take(top) {
        let short: String = name.chars().take(48).collect();
        let _ = writeln!(
            out,
            "{:<48} {:>14.3} {:>8.2}% {:>14.3} {:>8}",
            short,
            s.self_us / 1000.0,
            if total_self > 0.0 {
                100.0 * s.self_us / total_self
            } else {
                0.0
            },
            s.total_us / 1000.0,
            s.calls
        );
    }
    let _ = writeln!(out, "Self CPU time total: {:.3} ms", total_self / 1000.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn children_are_subtracted_from_their_parent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.trace.json.gz");
        let doc = serde_json::json!({"traceEvents": [
            {"name": "ProfilerStep#3", "ph": "X", "pid": 1, "tid": 1, "ts": 0.0, "dur": 100.0},
            {"name": "forward", "ph": "X", "pid": 1, "tid": 1, "ts": 1.0, "dur": 90.0},
            {"name": "matmul", "ph": "X", "pid": 1, "tid": 1, "ts": 2.0, "dur": 30.0},
            {"name": "matmul", "ph": "X", "pid": 1, "tid": 1, "ts": 40.0, "dur": 40.0},
            {"name": "sample", "ph": "X", "pid": 1, "tid": 2, "ts": 5.0, "dur": 7.0},
            {"name": "marker", "ph": "i", "pid": 1, "tid": 1, "ts": 3.0}
        ]});
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            flate2::Compression::fast(),
        );
        gz.write_all(doc.to_string().as_bytes()).expect("write");
        gz.finish().expect("finish");
        let stats = op_stats(&path).expect("stats");
        let get = |n: &str| stats.iter().find(|(k, _)| k == n).map(|(_, s)| s.clone());
        assert_eq!(stats[0].0, "matmul");
        assert_eq!(get("matmul").map(|s| (s.self_us, s.calls)), Some((70.0, 2)));
        assert_eq!(
            get("forward").map(|s| (s.self_us, s.total_us)),
            Some((20.0, 90.0))
        );
        assert_eq!(get("sample").map(|s| s.self_us), Some(7.0));
        assert!(get("ProfilerStep#3").is_none());
        assert!(render(&path, 10)
            .expect("table")
            .contains("Self CPU time total: 0.097 ms"));
    }
}
