//! The human summary on stdout: SGLang's "Serving Benchmark Result" table (same labels,
//! `{:<40} {:<10}` rows, same section headers), followed by our extra sections.

use std::fmt::Write;

use crate::metrics::BenchmarkMetrics;
use crate::stats::Summary;

/// What the table header needs besides the metrics.
pub struct TableContext<'a> {
    pub backend: &'a str,
    /// Python-style rendering of the rate: `inf`, `trace` or e.g. `4.0`.
    pub request_rate: String,
    pub max_concurrency: Option<usize>,
    pub duration_s: f64,
    pub accept_length: Option<f64>,
    /// Print SGLang's "Cache Hit Details" section.
    pub cache_report: bool,
}

/// Python `str(float)` for the values SGLang prints raw (`4.0`, `0.5`, `inf`).
pub fn py_float(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if x.is_nan() {
        "nan".to_owned()
    } else if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "{label:<40} {value:<10}");
}

fn rowf(out: &mut String, label: &str, v: f64) {
    row(out, label, &format!("{v:.2}"));
}

/// `'{s:{c}^50}'` as Python centers it (extra padding goes right).
fn header(out: &mut String, title: &str, fill: char) {
    let pad = 50usize.saturating_sub(title.chars().count());
    let left = pad / 2;
    let right = pad - left;
    let f = fill.to_string();
    let _ = writeln!(out, "{}{}{}", f.repeat(left), title, f.repeat(right));
}

fn latency_rows(out: &mut String, name: &str, s: &Summary, with_max: bool) {
    rowf(out, &format!("Mean {name} (ms):"), s.mean);
    rowf(out, &format!("Median {name} (ms):"), s.median);
    rowf(out, &format!("P90 {name} (ms):"), s.p90);
    rowf(out, &format!("P95 {name} (ms):"), s.p95);
    rowf(out, &format!("P99 {name} (ms):"), s.p99);
    if with_max {
        rowf(out, &format!("Max {name} (ms):"), s.max);
    }
}

/// SGLang's table, byte for byte in layout.
pub fn sglang_table(m: &BenchmarkMetrics, c: &TableContext<'_>) -> String {
    let mut o = String::from("\n");
    header(&mut o, " Serving Benchmark Result ", '=');
    row(&mut o, "Backend:", c.backend);
    row(&mut o, "Traffic request rate:", &c.request_rate);
    let mc = c
        .max_concurrency
        .map_or_else(|| "not set".to_owned(), |n| n.to_string());
    row(&mut o, "Max request concurrency:", &mc);
    row(&mut o, "Successful requests:", &m.completed.to_string());
    rowf(&mut o, "Benchmark duration (s):", c.duration_s);
    row(&mut o, "Total input tokens:", &m.total_input.to_string());
    row(
        &mut o,
        "Total input text tokens:",
        &m.total_input.to_string(),
    );
    row(
        &mut o,
        "Total generated tokens:",
        &m.total_output.to_string(),
    );
    row(
        &mut o,
        "Total generated tokens (retokenized):",
        &m.total_output_retokenized.to_string(),
    );
    rowf(&mut o, "Request throughput (req/s):", m.request_throughput);
    rowf(
        &mut o,
        "Input token throughput (tok/s):",
        m.input_throughput,
    );
    rowf(
        &mut o,
        "Output token throughput (tok/s):",
        m.output_throughput,
    );
    rowf(
        &mut o,
        "Peak output token throughput (tok/s):",
        m.max_output_tokens_per_s,
    );
    row(
        &mut o,
        "Peak concurrent requests:",
        &m.max_concurrent_requests.to_string(),
    );
    rowf(
        &mut o,
        "Total token throughput (tok/s):",
        m.total_throughput,
    );
    rowf(&mut o, "Concurrency:", m.concurrency);
    if let Some(a) = c.accept_length.filter(|a| *a != 0.0) {
        rowf(&mut o, "Accept length:", a);
    }
    header(&mut o, "End-to-End Latency", '-');
    latency_rows(&mut o, "E2E Latency", &m.e2e_latency_ms, false);
    header(&mut o, "Time to First Token", '-');
    latency_rows(&mut o, "TTFT", &m.ttft_ms, false);
    header(&mut o, "Time per Output Token (excl. 1st token)", '-');
    latency_rows(&mut o, "TPOT", &m.tpot_ms, false);
    header(&mut o, "Inter-Token Latency", '-');
    latency_rows(&mut o, "ITL", &m.itl_ms, true);
    if c.cache_report {
        header(&mut o, "Cache Hit Details", '-');
        row(
            &mut o,
            "Total prompt tokens:",
            &m.extra.cache_total_prompt_tokens.to_string(),
        );
        row(
            &mut o,
            "Total cached tokens:",
            &m.extra.cache_total_cached_tokens.to_string(),
        );
        row(
            &mut o,
            "Cache hit rate:",
            &format!("{:.1}%", crate::metrics::cache_hit_rate_pct(m)),
        );
    }
    o.push_str(&"=".repeat(50));
    o.push('\n');
    o
}

/// Our additions, after SGLang's table: failures, goodput, both ITL conventions, client
/// queueing, latency from the schedule, error-adjusted percentiles.
pub fn extra_table(m: &BenchmarkMetrics) -> String {
    let x = &m.extra;
    let mut o = String::new();
    header(&mut o, " inferperf additions ", '=');
    row(&mut o, "Failed requests:", &m.failed.to_string());
    for (k, n) in &x.errors_by_kind {
        row(&mut o, &format!("  {k}:"), &n.to_string());
    }
    if let (Some(g), Some(n)) = (x.request_goodput, x.goodput_completed) {
        rowf(&mut o, "Request goodput (req/s):", g);
        row(&mut o, "Requests meeting the SLO:", &n.to_string());
    }
    row(
        &mut o,
        "Input lengths sent (min/mean/max):",
        &format!(
            "{}/{:.1}/{}",
            x.input_len_min, x.input_len_mean, x.input_len_max
        ),
    );
    if x.input_len_mismatches > 0 {
        row(
            &mut o,
            "Server prompt_tokens != client count:",
            &format!(
                "{} (the client's tokenizer is not the server's: pass --tokenizer)",
                x.input_len_mismatches
            ),
        );
    }
    if let Some(t) = x.chat_template_tokens_mean {
        row(
            &mut o,
            "Chat template tokens (server, mean):",
            &format!("{t:.1} (added by the server; not in the input counts)"),
        );
    }
    if m.total_output_retokenized != m.total_output && m.total_output_retokenized > 0 {
        let why = if x.responses_with_replacement_chars > 0 {
            format!(
                "{} responses hold bytes that are not UTF-8 (sent as U+FFFD), which text cannot count back",
                x.responses_with_replacement_chars
            )
        } else {
            "re-encoding text need not give back the ids the model generated".to_owned()
        };
        row(
            &mut o,
            "Retokenized != server output count:",
            &format!("{why}; output totals use the server's counts where it reports them"),
        );
    }
    rowf(&mut o, "Tokens per chunk:", x.tokens_per_chunk);
    header(&mut o, "Inter-chunk latency (= vLLM/SGLang ITL)", '-');
    latency_rows(&mut o, "inter-chunk", &x.inter_chunk_ms, true);
    header(&mut o, "Per-request mean ITL (= AIPerf ITL)", '-');
    latency_rows(&mut o, "per-request ITL", &x.itl_per_request_mean_ms, false);
    header(&mut o, "Client queue (scheduled -> sent)", '-');
    latency_rows(&mut o, "queue", &x.client_queue_ms, false);
    header(&mut o, "E2E from schedule (CO-aware)", '-');
    latency_rows(&mut o, "E2E from schedule", &x.e2e_from_schedule_ms, false);
    header(&mut o, "Error-adjusted (failures = +inf)", '-');
    rowf(&mut o, "P50 E2E Latency (ms):", x.error_adjusted_p50_e2e_ms);
    rowf(&mut o, "P90 E2E Latency (ms):", x.error_adjusted_p90_e2e_ms);
    rowf(&mut o, "P99 E2E Latency (ms):", x.error_adjusted_p99_e2e_ms);
    rowf(&mut o, "P99 TTFT (ms):", x.error_adjusted_p99_ttft_ms);
    if !x.selected_percentiles.is_empty() {
        header(&mut o, "Selected percentiles", '-');
        for (k, v) in &x.selected_percentiles {
            rowf(&mut o, &format!("{k}:"), *v);
        }
    }
    o
}

/// SGLang's " Steady-State Result " block (same labels and formats), then ours: the rule that
/// chose the window, where it lies, and the latencies of the requests inside it.
pub fn steady_state_table(m: &crate::steady_state::SteadyStateMetrics) -> String {
    let mut o = String::from("\n");
    header(&mut o, " Steady-State Result ", '=');
    match m.concurrency_ratio {
        Some(r) => rowf(&mut o, "Concurrency ratio:", r),
        None => row(
            &mut o,
            "Warm-up / cool-down (s):",
            &format!(
                "{:.2} / {:.2}",
                m.warmup_duration.unwrap_or(0.0),
                m.cooldown_duration.unwrap_or(0.0)
            ),
        ),
    }
    rowf(&mut o, "Measurement duration (s):", m.duration);
    row(
        &mut o,
        "Minimum concurrency:",
        &m.concurrency_threshold.to_string(),
    );
    row(&mut o, "Completed requests:", &m.completed.to_string());
    row(&mut o, "Input tokens:", &m.total_input.to_string());
    rowf(
        &mut o,
        "Input token throughput (tok/s):",
        m.input_throughput,
    );
    rowf(&mut o, "Generated tokens:", m.total_output);
    rowf(
        &mut o,
        "Output token throughput (tok/s):",
        m.output_throughput,
    );
    rowf(
        &mut o,
        "Output throughput, retokenized (tok/s):",
        m.output_throughput_retokenized,
    );
    rowf(&mut o, "Average concurrency:", m.average_concurrency);
    row(&mut o, "Peak concurrency:", &m.peak_concurrency.to_string());
    rowf(
        &mut o,
        "Peak output throughput (tok/s):",
        m.peak_output_throughput,
    );
    row(&mut o, "Window rule:", m.window_rule);
    row(
        &mut o,
        "Window (s from the first send):",
        &format!("{:.2} - {:.2}", m.window_start, m.window_end),
    );
    header(&mut o, "Requests within the window", '-');
    row(&mut o, "Requests:", &m.requests_within_window.to_string());
    let none = m.requests_within_window == 0;
    for (name, s) in [
        ("TTFT", &m.within_window_ttft_ms),
        ("TPOT", &m.within_window_tpot_ms),
        ("ITL", &m.within_window_itl_ms),
        ("E2E Latency", &m.within_window_e2e_latency_ms),
    ]
    .into_iter()
    .filter(|_| !none)
    {
        rowf(&mut o, &format!("Mean {name} (ms):"), s.mean);
        rowf(&mut o, &format!("P99 {name} (ms):"), s.p99);
    }
    o.push_str(&"=".repeat(50));
    o.push('\n');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_sglang() {
        let m = BenchmarkMetrics::default();
        let t = sglang_table(
            &m,
            &TableContext {
                backend: "sglang",
                request_rate: py_float(f64::INFINITY),
                max_concurrency: None,
                duration_s: 12.345,
                accept_length: None,
                cache_report: false,
            },
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "");
        assert_eq!(
            lines[1],
            "============ Serving Benchmark Result ============"
        );
        assert_eq!(
            lines[3],
            "Traffic request rate:                    inf       "
        );
        assert_eq!(
            lines[6],
            "Benchmark duration (s):                  12.35     "
        );
        assert!(t.contains("\n----------------End-to-End Latency----------------\n"));
        assert!(t.contains("\n---------------Time to First Token----------------\n"));
        assert!(t.contains("\n-----Time per Output Token (excl. 1st token)------\n"));
        assert!(t.contains("\n---------------Inter-Token Latency----------------\n"));
        assert_eq!(py_float(4.0), "4.0");
        assert_eq!(py_float(0.25), "0.25");
    }

    #[test]
    fn steady_state_block_has_sglangs_title_and_rows() {
        let m = crate::steady_state::SteadyStateMetrics {
            concurrency_ratio: Some(0.8),
            duration: 12.0,
            ..Default::default()
        };
        let t = steady_state_table(&m);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[1],
            "============== Steady-State Result ==============="
        );
        assert_eq!(
            lines[2],
            "Concurrency ratio:                       0.80      "
        );
        assert!(t.contains("\nMeasurement duration (s):                12.00     \n"));
        assert!(t.contains("\nPeak output throughput (tok/s):"));
    }
}
