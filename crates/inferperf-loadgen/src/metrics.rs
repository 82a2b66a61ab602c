//! Run-level metrics: SGLang's `calculate_metrics` (same formulas, NumPy statistics) plus what
//! SGLang lacks: goodput, both ITL conventions under distinct names, client queue time,
//! latency measured from the schedule (coordinated-omission aware) and error-adjusted
//! percentiles in which every failed request counts as an infinitely slow one.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::{ns_to_s, RequestRecord};
use crate::stats::{percentile_sorted, sorted, summarize, Summary};

/// Service-level objectives for goodput (vLLM `--goodput ttft:MS tpot:MS e2el:MS`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
}

impl Slo {
    /// True when any objective is set.
    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2el_ms.is_some()
    }

    /// A successful request meets the SLO when every set objective holds (vLLM semantics:
    /// TPOT is checked only for requests with more than one output token).
    pub fn met_by(&self, r: &RequestRecord) -> bool {
        let ok = |limit: Option<f64>, v: f64| limit.is_none_or(|l| v * 1000.0 <= l);
        ok(self.ttft_ms, r.ttft_s())
            && r.tpot_s().is_none_or(|t| ok(self.tpot_ms, t))
            && ok(self.e2el_ms, r.latency_s())
    }
}

/// Everything printed and written for one run. Latencies in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchmarkMetrics {
    pub completed: usize,
    pub failed: usize,
    pub total_input: usize,
    pub total_output: usize,
    pub total_output_retokenized: usize,
    pub request_throughput: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub output_throughput_retokenized: f64,
    pub total_throughput: f64,
    pub total_throughput_retokenized: f64,
    pub ttft_ms: Summary,
    pub tpot_ms: Summary,
    /// SGLang/vLLM "ITL": pooled gaps between content chunks (native: split per token).
    pub itl_ms: Summary,
    pub e2e_latency_ms: Summary,
    /// Σ latency / duration.
    pub concurrency: f64,
    pub max_output_tokens_per_s: f64,
    pub max_concurrent_requests: usize,
    /// Extras beyond SGLang's record.
    pub extra: ExtraMetrics,
}

/// Metrics SGLang does not have, each under an unambiguous name.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExtraMetrics {
    /// Raw gaps between content chunks, whatever the tokens per chunk (AIPerf "ICL").
    pub inter_chunk_ms: Summary,
    /// Per-request mean inter-token latency `(last - first token)/(n - 1)` (AIPerf/GuideLLM
    /// "ITL", SGLang/vLLM "TPOT"), summarized over requests.
    pub itl_per_request_mean_ms: Summary,
    pub tokens_per_chunk: f64,
    /// Scheduled arrival -> send (concurrency slot, connection).
    pub client_queue_ms: Summary,
    /// Scheduled arrival -> last line: latency as an open-loop user would see it.
    pub e2e_from_schedule_ms: Summary,
    /// Percentiles with failed requests counted as +inf (they never "look fast").
    pub error_adjusted_p50_e2e_ms: f64,
    pub error_adjusted_p90_e2e_ms: f64,
    pub error_adjusted_p99_e2e_ms: f64,
    pub error_adjusted_p99_ttft_ms: f64,
    /// Requests that met every SLO, per second (only with `--goodput`).
    pub request_goodput: Option<f64>,
    pub goodput_completed: Option<usize>,
    /// Prompt lengths actually sent (dataset rows), for checking exactness.
    pub input_len_min: usize,
    pub input_len_mean: f64,
    pub input_len_max: usize,
    /// Requests whose server-reported prompt length differs from the dataset's plus the
    /// tokens the server is known to add (see [`MetricInputs::server_added_prompt_tokens`]).
    pub input_len_mismatches: usize,
    /// Chat backends: mean server prompt tokens beyond the client's count (the chat template
    /// the server applies), over successful requests that reported `prompt_tokens`.
    pub chat_template_tokens_mean: Option<f64>,
    /// Successful responses whose text holds U+FFFD: bytes that were not UTF-8, which no
    /// retokenization can count back.
    pub responses_with_replacement_chars: usize,
    /// Failures by kind.
    pub errors_by_kind: BTreeMap<String, usize>,
    /// Σ prompt tokens (server-reported when available) and Σ cached prompt tokens over
    /// successful requests (`--cache-report`).
    pub cache_total_prompt_tokens: usize,
    pub cache_total_cached_tokens: usize,
    /// Extra percentiles asked for with `--percentile-metrics`/`--metric-percentiles`,
    /// as `p{P}_{metric}_ms`.
    pub selected_percentiles: BTreeMap<String, f64>,
}

/// Inputs that are not per-request records.
pub struct MetricInputs<'a> {
    pub records: &'a [RequestRecord],
    pub duration_s: f64,
    /// Retokenized output lengths aligned with `records` (0 for failures), if computable.
    pub retokenized: Option<&'a [usize]>,
    /// Tokens the server adds to every prompt the client counted (special tokens such as BOS on
    /// text prompts; 0 for token-id prompts); `None` when it applies a chat template, whose
    /// size the client does not count.
    pub server_added_prompt_tokens: Option<usize>,
    pub slo: &'a Slo,
    /// Metric names (`ttft,tpot,itl,e2el,client_queue_time,e2el_including_client_queue`).
    pub percentile_metrics: &'a [String],
    pub metric_percentiles: &'a [f64],
}

/// Compute every metric from the records of the measured (non-warmup) requests.
pub fn compute(inp: &MetricInputs<'_>) -> BenchmarkMetrics {
    let ok: Vec<&RequestRecord> = inp.records.iter().filter(|r| r.success()).collect();
    let dur = if inp.duration_s > 0.0 {
        inp.duration_s
    } else {
        f64::MIN_POSITIVE
    };
    let mut m = BenchmarkMetrics {
        completed: ok.len(),
        failed: inp.records.len() - ok.len(),
        ..Default::default()
    };
    let (mut ttfts, mut tpots, mut itls, mut e2es) = (vec![], vec![], vec![], vec![]);
    let (mut gaps, mut per_req_itl, mut queue, mut from_sched) = (vec![], vec![], vec![], vec![]);
    let mut chunks = 0usize;
    let mut goodput = 0usize;
    for r in &ok {
        m.total_input += r.prompt_len;
        m.total_output += r.output_len;
        ttfts.push(r.ttft_s());
        if let Some(t) = r.tpot_s() {
            tpots.push(t);
        }
        itls.extend(r.sglang_itl_s());
        gaps.extend(r.chunk_gaps_s());
        e2es.push(r.latency_s());
        queue.push(r.client_queue_s());
        from_sched.push(r.latency_from_schedule_s());
        chunks += r.chunk_ns.len();
        if let (Some(first), Some(last)) = (r.chunk_ns.first(), r.chunk_ns.last()) {
            if r.output_len > 1 {
                per_req_itl.push(ns_to_s(last.saturating_sub(*first)) / (r.output_len - 1) as f64);
            }
        }
        if inp.slo.is_set() && inp.slo.met_by(r) {
            goodput += 1;
        }
    }
    if let Some(retok) = inp.retokenized {
        m.total_output_retokenized = retok.iter().sum();
    }
    m.request_throughput = m.completed as f64 / dur;
    m.input_throughput = m.total_input as f64 / dur;
    m.output_throughput = m.total_output as f64 / dur;
    m.output_throughput_retokenized = m.total_output_retokenized as f64 / dur;
    m.total_throughput = (m.total_input + m.total_output) as f64 / dur;
    m.total_throughput_retokenized = (m.total_input + m.total_output_retokenized) as f64 / dur;
    m.ttft_ms = summarize(&ttfts, 1000.0);
    m.tpot_ms = summarize(&tpots, 1000.0);
    m.itl_ms = summarize(&itls, 1000.0);
    m.e2e_latency_ms = summarize(&e2es, 1000.0);
    m.concurrency = e2es.iter().fold(0.0, |a, b| a + b) / dur;
    let (peak_tok, peak_conc) = peaks(&ok);
    m.max_output_tokens_per_s = peak_tok as f64;
    m.max_concurrent_requests = peak_conc;

    let x = &mut m.extra;
    x.inter_chunk_ms = summarize(&gaps, 1000.0);
    x.itl_per_request_mean_ms = summarize(&per_req_itl, 1000.0);
    x.tokens_per_chunk = if chunks > 0 {
        m.total_output as f64 / chunks as f64
    } else {
        0.0
    };
    x.client_queue_ms = summarize(&queue, 1000.0);
    x.e2e_from_schedule_ms = summarize(&from_sched, 1000.0);
    let failed_inf = std::iter::repeat_n(f64::INFINITY, m.failed);
    let adj_e2e = sorted(
        &e2es
            .iter()
            .copied()
            .chain(failed_inf.clone())
            .collect::<Vec<_>>(),
    );
    let adj_ttft = sorted(&ttfts.iter().copied().chain(failed_inf).collect::<Vec<_>>());
    x.error_adjusted_p50_e2e_ms = percentile_sorted(&adj_e2e, 50.0) * 1000.0;
    x.error_adjusted_p90_e2e_ms = percentile_sorted(&adj_e2e, 90.0) * 1000.0;
    x.error_adjusted_p99_e2e_ms = percentile_sorted(&adj_e2e, 99.0) * 1000.0;
    x.error_adjusted_p99_ttft_ms = percentile_sorted(&adj_ttft, 99.0) * 1000.0;
    if inp.slo.is_set() {
        x.goodput_completed = Some(goodput);
        x.request_goodput = Some(goodput as f64 / dur);
    }
    let lens: Vec<usize> = inp.records.iter().map(|r| r.prompt_len).collect();
    x.input_len_min = lens.iter().copied().min().unwrap_or(0);
    x.input_len_max = lens.iter().copied().max().unwrap_or(0);
    x.input_len_mean = if lens.is_empty() {
        0.0
    } else {
        lens.iter().sum::<usize>() as f64 / lens.len() as f64
    };
    x.cache_total_prompt_tokens = ok
        .iter()
        .map(|r| r.server_prompt_len.unwrap_or(r.prompt_len))
        .sum();
    x.cache_total_cached_tokens = ok.iter().map(|r| r.cached_tokens.unwrap_or(0)).sum();
    match inp.server_added_prompt_tokens {
        Some(added) => {
            x.input_len_mismatches = ok
                .iter()
                .filter(|r| {
                    r.server_prompt_len
                        .is_some_and(|s| s != r.prompt_len + added)
                })
                .count();
        }
        None => {
            let extra: Vec<f64> = ok
                .iter()
                .filter_map(|r| r.server_prompt_len.map(|s| s as f64 - r.prompt_len as f64))
                .collect();
            if !extra.is_empty() {
                x.chat_template_tokens_mean = Some(extra.iter().sum::<f64>() / extra.len() as f64);
            }
        }
    }
    x.responses_with_replacement_chars = ok
        .iter()
        .filter(|r| r.generated_text.contains('\u{FFFD}'))
        .count();
    for r in inp.records {
        if let Some(e) = &r.error {
            let key = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *x.errors_by_kind.entry(key).or_default() += 1;
        }
    }
    for name in inp.percentile_metrics {
        let samples: &[f64] = match name.as_str() {
            "ttft" => &ttfts,
            "tpot" => &tpots,
            "itl" => &itls,
            "e2el" => &e2es,
            "client_queue_time" => &queue,
            "e2el_including_client_queue" => &from_sched,
            _ => continue,
        };
        let s = sorted(samples);
        for &p in inp.metric_percentiles {
            let key = format!("p{}_{}_ms", fmt_pct(p), name);
            x.selected_percentiles
                .insert(key, percentile_sorted(&s, p) * 1000.0);
        }
    }
    m
}

/// SGLang's cache hit rate in percent (0 without prompt tokens).
pub fn cache_hit_rate_pct(m: &BenchmarkMetrics) -> f64 {
    let p = m.extra.cache_total_prompt_tokens;
    if p == 0 {
        0.0
    } else {
        m.extra.cache_total_cached_tokens as f64 / p as f64 * 100.0
    }
}

/// `99` -> "99", `99.9` -> "99.9" (vLLM's key spelling).
pub fn fmt_pct(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

/// Peak metrics over one-second buckets from the earliest send: output tokens per bucket and
/// requests alive per bucket. Each chunk adds the tokens it carried at its arrival time.
/// SGLang adds one token per inter-token gap instead, which undercounts whenever a chunk holds
/// several tokens (`--stream-interval` > 1, or a server that coalesces): its peak can then fall
/// below the mean throughput.
fn peaks(ok: &[&RequestRecord]) -> (usize, usize) {
    let t = Timeline::of(ok);
    (
        t.output_tokens.into_iter().max().unwrap_or(0),
        t.concurrency.into_iter().max().unwrap_or(0),
    )
}

/// Output tokens and requests in flight per one-second bucket from the earliest send (the
/// series behind the peak metrics and `--plot-throughput`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    pub output_tokens: Vec<usize>,
    pub concurrency: Vec<usize>,
}

impl Timeline {
    /// The timeline of the successful records.
    pub fn of_records(records: &[RequestRecord]) -> Self {
        let ok: Vec<&RequestRecord> = records
            .iter()
            .filter(|r| r.success() && !r.warmup)
            .collect();
        Self::of(&ok)
    }

    fn of(ok: &[&RequestRecord]) -> Self {
        let Some(t0) = ok.iter().map(|r| r.sent_ns).min() else {
            return Self::default();
        };
        let t_end = ok.iter().map(|r| r.last_ns).max().unwrap_or(t0);
        let buckets = (ns_to_s(t_end - t0).ceil() as usize) + 1;
        let mut tokens = vec![0usize; buckets];
        let mut conc = vec![0usize; buckets];
        for r in ok {
            let start = ns_to_s(r.sent_ns - t0);
            for (k, &ns) in r.chunk_ns.iter().enumerate() {
                let carried = match r.chunk_tokens.get(k) {
                    Some(&n) => n as usize,
                    // One chunk for the whole answer (non-streaming): all its tokens.
                    None if r.chunk_ns.len() == 1 => r.output_len,
                    None => 1,
                };
                let b = ns_to_s(ns.saturating_sub(t0)) as usize;
                if b < buckets {
                    tokens[b] += carried.max(1);
                }
            }
            let end = start + r.latency_s();
            let (b0, b1) = (start as usize, ((end as usize) + 1).min(buckets));
            for c in conc.iter_mut().take(b1).skip(b0) {
                *c += 1;
            }
        }
        Self {
            output_tokens: tokens,
            concurrency: conc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_counts_every_token_a_chunk_carries() {
        let rec = |sent: u64| RequestRecord {
            sent_ns: sent,
            first_token_ns: sent + 100_000_000,
            chunk_ns: vec![sent + 100_000_000, sent + 200_000_000],
            chunk_tokens: vec![4, 4],
            last_ns: sent + 200_000_000,
            output_len: 8,
            ..Default::default()
        };
        let (a, b) = (rec(0), rec(10_000_000));
        let (peak_tokens, peak_conc) = peaks(&[&a, &b]);
        assert_eq!(
            peak_tokens, 16,
            "two requests x 8 tokens in the first second"
        );
        assert_eq!(peak_conc, 2);
    }
}
