//! The window finder on hand-built intervals, the accumulator on a hand-computed run, and the
//! one-call path against the two passes.

use super::*;
use crate::record::{ErrorKind, RequestError};

const S: u64 = 1_000_000_000;

/// Ramp-up to 4 in flight, then down: concurrency 1,2,3,4,3,2,1 over
/// [0,10),[10,20),[20,30),[30,40),[40,80),[80,90),[90,100).
fn ramp() -> Vec<(u64, u64)> {
    vec![(0, 100), (10, 90), (20, 80), (30, 40)]
}

#[test]
fn the_plateau_above_the_threshold_is_the_window() {
    let w = find_window(ramp(), 0.75).expect("window");
    assert_eq!((w.start_ns, w.end_ns), (20, 80));
    assert_eq!((w.concurrency_threshold, w.peak_concurrency), (3, 4));
    let w = find_window(ramp(), 0.5).expect("window");
    assert_eq!((w.start_ns, w.end_ns, w.concurrency_threshold), (10, 90, 2));
    // The threshold is at least one request: the whole busy span.
    let w = find_window(ramp(), 0.01).expect("window");
    assert_eq!((w.start_ns, w.end_ns, w.concurrency_threshold), (0, 100, 1));
}

#[test]
fn ratio_one_keeps_only_the_peak() {
    let w = find_window(ramp(), 1.0).expect("window");
    assert_eq!((w.start_ns, w.end_ns), (30, 40));
    assert_eq!(w.concurrency_threshold, 4);
}

#[test]
fn equal_spans_pick_the_first() {
    // Two requests on [0,10) and on [20,30), one on [10,20): two spans of length 10 at 2.
    let iv = vec![(0, 10), (0, 10), (10, 20), (20, 30), (20, 30)];
    let w = find_window(iv, 1.0).expect("window");
    assert_eq!((w.start_ns, w.end_ns), (0, 10));
}

#[test]
fn an_idle_gap_splits_the_window() {
    // [0,10) and [15,40): the gap has no request in flight.
    let w = find_window(vec![(0, 10), (15, 40)], 0.5).expect("window");
    assert_eq!((w.start_ns, w.end_ns), (15, 40));
}

#[test]
fn errors_are_typed() {
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        assert!(matches!(
            find_window(ramp(), bad),
            Err(SteadyStateError::BadRatio(_))
        ));
    }
    assert_eq!(
        find_window(Vec::new(), 0.8),
        Err(SteadyStateError::NoSuccessfulRequests)
    );
    // Zero latency is no interval.
    assert_eq!(
        find_window(vec![(5, 5)], 0.8),
        Err(SteadyStateError::NoSuccessfulRequests)
    );
}

#[test]
fn warmup_and_cooldown_cut_the_ends() {
    let secs: Vec<(u64, u64)> = ramp().into_iter().map(|(a, b)| (a * S, b * S)).collect();
    let w = fixed_window(secs.clone(), 15.0, 15.0).expect("window");
    assert_eq!((w.start_ns, w.end_ns), (15 * S, 85 * S));
    assert_eq!((w.concurrency_threshold, w.peak_concurrency), (2, 4));
    let e = fixed_window(secs.clone(), 60.0, 50.0).expect_err("nothing left");
    assert!(matches!(e, SteadyStateError::NothingLeft { .. }));
    let msg = e.to_string();
    assert!(msg.contains("--warmup-duration") && msg.contains("--cooldown-duration"));
    assert!(matches!(
        fixed_window(secs, -1.0, 0.0),
        Err(SteadyStateError::BadExclusion { .. })
    ));
}

/// A record sent at `sent_ms` with chunks at `chunks_ms` (the last one ends it).
fn rec(sent_ms: u64, chunks_ms: &[u64], tokens: &[u32], output_len: usize) -> RequestRecord {
    let chunk_ns: Vec<u64> = chunks_ms.iter().map(|m| m * 1_000_000).collect();
    RequestRecord {
        sent_ns: sent_ms * 1_000_000,
        first_token_ns: chunk_ns[0],
        last_ns: *chunk_ns.last().unwrap_or(&0),
        chunk_ns,
        chunk_tokens: tokens.to_vec(),
        output_len,
        ..Default::default()
    }
}

/// Window [10 s, 20 s]; a starts before it, b inside it, c ends after it, f starts at its
/// end; a failed and a warm-up record inside it count for nothing.
fn run() -> (Vec<RequestRecord>, Vec<usize>) {
    let a = RequestRecord {
        prompt_len: 100,
        ..rec(0, &[5_000, 15_000], &[], 2)
    };
    let b = RequestRecord {
        prompt_len: 50,
        ..rec(12_000, &[13_000, 14_000, 16_000], &[1, 2, 1], 4)
    };
    let c = RequestRecord {
        prompt_len: 30,
        ..rec(18_000, &[19_000, 22_000, 23_000], &[], 3)
    };
    let f = RequestRecord {
        prompt_len: 7,
        ..rec(20_000, &[21_000], &[], 1)
    };
    let failed = RequestRecord {
        prompt_len: 1000,
        error: Some(RequestError {
            kind: ErrorKind::Transport,
            message: "reset".into(),
        }),
        ..rec(11_000, &[11_500], &[], 9)
    };
    let warm = RequestRecord {
        prompt_len: 1000,
        warmup: true,
        ..rec(11_000, &[11_500], &[], 9)
    };
    (vec![a, b, c, f, failed, warm], vec![2, 4, 6, 1, 0, 0])
}

fn window() -> SteadyStateWindow {
    SteadyStateWindow {
        start_ns: 10 * S,
        end_ns: 20 * S,
        concurrency_threshold: 1,
        peak_concurrency: 2,
    }
}

#[test]
fn the_accumulator_counts_what_falls_inside() {
    let (records, retok) = run();
    let mut acc = SteadyStateAccumulator::new(window(), 0.5);
    for (r, n) in records.iter().zip(&retok) {
        acc.add(r, Some(*n));
    }
    let m = acc.finish();
    assert_eq!(
        (m.window_start, m.window_end, m.duration),
        (10.0, 20.0, 10.0)
    );
    // a: 1 of 2 events (1 token); b: all 4 tokens; c: 1 of 3 events (1 token); f: none.
    assert!((m.total_output - 6.0).abs() < 1e-12);
    // Retokenized: 2/2 + 4 + 6/3 + 0.
    assert!((m.total_output_retokenized - 7.0).abs() < 1e-12);
    assert!((m.output_throughput - 0.6).abs() < 1e-12);
    // Inputs of b and c; f starts at the (open) end.
    assert_eq!(m.total_input, 80);
    assert!((m.input_throughput - 8.0).abs() < 1e-12);
    // a and b end inside; c ends after.
    assert_eq!(m.completed, 2);
    // Overlaps 5 s (a) + 4 s (b) + 2 s (c) over 10 s.
    assert!((m.average_concurrency - 1.1).abs() < 1e-12);
    // b's middle chunk carries 2 tokens at 14 s: second [3, 4) of the window.
    assert!((m.peak_output_throughput - 2.0).abs() < 1e-12);
    assert_eq!(m.concurrency_ratio, Some(0.5));
    assert_eq!(m.window_rule, "concurrency_ratio");
    // Only b started and ended inside: TTFT 1 s, E2E 4 s.
    assert_eq!(m.requests_within_window, 1);
    assert!((m.within_window_ttft_ms.mean - 1000.0).abs() < 1e-9);
    assert!((m.within_window_e2e_latency_ms.mean - 4000.0).abs() < 1e-9);
}

#[test]
fn one_call_equals_the_two_passes() {
    let (records, retok) = run();
    let window = find_window(records.iter().filter_map(interval_of), 0.8).expect("window");
    let mut acc = SteadyStateAccumulator::new(window, 0.8);
    for (r, n) in records.iter().zip(&retok) {
        acc.add(r, Some(*n));
    }
    let two = serde_json::to_value(acc.finish()).expect("json");
    let one =
        serde_json::to_value(steady_state(&records, Some(&retok), 0.8).expect("ss")).expect("json");
    assert_eq!(one, two);
    // And the window is where two requests overlap: b inside a, c after.
    assert_eq!(
        (window.start_ns, window.end_ns, window.peak_concurrency),
        (12 * S, 15 * S, 2)
    );
}

#[test]
fn the_keys_are_sglangs_then_ours() {
    let (records, _) = run();
    let v = serde_json::to_value(steady_state(&records, None, 0.8).expect("ss")).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let sglang = [
        "concurrency_ratio",
        "window_start",
        "window_end",
        "duration",
        "concurrency_threshold",
        "completed",
        "total_input",
        "input_throughput",
        "total_output",
        "total_output_retokenized",
        "output_throughput",
        "output_throughput_retokenized",
        "average_concurrency",
        "peak_concurrency",
        "peak_output_throughput",
    ];
    for k in sglang {
        assert!(keys.contains(&k), "missing {k}");
    }
}
