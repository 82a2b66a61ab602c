//! Run-level metrics: SGLang's `calculate_metrics` (same formulas, NumPy statistics) plus what
//! SGLang lacks: goodput, both ITL conventions under distinct names, client queue time,
//! latency measured from the schedule (coordinated-omission aware) and error-adjusted
//! percentiles in which every failed request counts as an infinitely slow one.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::pooled::PooledSeconds;
use crate::record::{ns_to_s, RequestRecord};
use crate::stats::{percentile_sorted, sorted, summarize, Summary};

/// Service-level objectives for goodput (vLLM `--goodput ttft:MS tpot:MS e2el:MS`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
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
        self.met_by_latencies(r.ttft_s(), r.tpot_s(), r.latency_s())
    }

    /// [`Slo::met_by`] on a request's TTFT, TPOT (if it has one) and E2E latency, in seconds.
    pub fn met_by_latencies(&self, ttft_s: f64, tpot_s: Option<f64>, e2e_s: f64) -> bool {
        let ok = |limit: Option<f64>, v: f64| limit.is_none_or(|l| v * 1000.0 <= l);
        ok(self.ttft_ms, ttft_s)
            && tpot_s.is_none_or(|t| ok(self.tpot_ms, t))
            && ok(self.e2el_ms, e2e_s)
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
    compute_with_timeline(inp).0
}

/// [`compute`], and the per-second timeline its peaks come from (the record's `timeline`
/// and `--plot-throughput` show it).
pub fn compute_with_timeline(inp: &MetricInputs<'_>) -> (BenchmarkMetrics, Timeline) {
    let mut acc = MetricsAccumulator::new(Timeline::origin_of(inp.records));
    for (k, r) in inp.records.iter().enumerate() {
        acc.add(r, inp.retokenized.and_then(|t| t.get(k).copied()));
    }
    acc.finish_with_timeline(&MetricSettings {
        duration_s: inp.duration_s,
        server_added_prompt_tokens: inp.server_added_prompt_tokens,
        slo: inp.slo,
        percentile_metrics: inp.percentile_metrics,
        metric_percentiles: inp.metric_percentiles,
    })
}

/// The run-level inputs of [`MetricsAccumulator::finish`]: everything of [`MetricInputs`] that
/// is not a record.
pub struct MetricSettings<'a> {
    pub duration_s: f64,
    pub server_added_prompt_tokens: Option<usize>,
    pub slo: &'a Slo,
    pub percentile_metrics: &'a [String],
    pub metric_percentiles: &'a [f64],
}

/// The metrics of a run built one record at a time, so that a caller streaming records from
/// files (`bench merge` over shard records) computes exactly what [`compute`] computes over an
/// in-memory run without holding the records: it keeps one number per request and one per
/// inter-token gap (the pooled ITL percentiles need every gap), nothing else.
#[derive(Default)]
pub struct MetricsAccumulator {
    completed: usize,
    failed: usize,
    total_input: usize,
    total_output: usize,
    total_output_retokenized: usize,
    ttfts: Vec<f64>,
    /// Each successful request's TPOT (`None` for a single output token), aligned with
    /// `ttfts` and `e2es` for the SLO check; the TPOT summary takes the `Some`s.
    tpots: Vec<Option<f64>>,
    /// SGLang's ITL samples when they differ from the chunk gaps (a chunk carried several
    /// tokens); `None` while they are the same list.
    itls: Option<PooledSeconds>,
    e2es: Vec<f64>,
    gaps: PooledSeconds,
    per_req_itl: Vec<f64>,
    queue: Vec<f64>,
    from_sched: Vec<f64>,
    chunks: usize,
    input_len_min: Option<usize>,
    input_len_max: usize,
    input_len_sum: usize,
    cache_prompt: usize,
    cache_cached: usize,
    /// Server prompt length minus the dataset's, per successful request that reported one.
    server_extra_prompt: Vec<i64>,
    replacement_chars: usize,
    errors_by_kind: BTreeMap<String, usize>,
    timeline: TimelineBuilder,
}

impl MetricsAccumulator {
    /// An empty accumulator whose throughput timeline starts at `timeline_origin_ns` (the
    /// earliest send of a successful request, [`Timeline::origin_of`]).
    pub fn new(timeline_origin_ns: Option<u64>) -> Self {
        Self {
            timeline: TimelineBuilder::new(timeline_origin_ns),
            ..Default::default()
        }
    }

    /// Add one measured request; `retokenized_len` is its retokenized output length, if known.
    pub fn add(&mut self, r: &RequestRecord, retokenized_len: Option<usize>) {
        self.input_len_min = Some(
            self.input_len_min
                .map_or(r.prompt_len, |m| m.min(r.prompt_len)),
        );
        self.input_len_max = self.input_len_max.max(r.prompt_len);
        self.input_len_sum += r.prompt_len;
        if let Some(e) = &r.error {
            let key = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *self.errors_by_kind.entry(key).or_default() += 1;
        }
        if !r.success() {
            self.failed += 1;
            return;
        }
        self.completed += 1;
        self.total_output_retokenized += retokenized_len.unwrap_or(0);
        self.total_input += r.prompt_len;
        self.total_output += r.output_len;
        self.ttfts.push(r.ttft_s());
        self.tpots.push(r.tpot_s());
        // The same numbers as `sglang_itl_s` and `chunk_gaps_s`, kept compactly.
        if self.itls.is_none() && r.chunk_tokens.iter().skip(1).any(|&n| n > 1) {
            self.itls = Some(self.gaps.clone());
        }
        for k in 1..r.chunk_ns.len() {
            let gap_ns = r.chunk_ns[k].saturating_sub(r.chunk_ns[k - 1]);
            self.gaps.push_ns(gap_ns);
            if let Some(itls) = self.itls.as_mut() {
                itls.push_itl(gap_ns, r.chunk_tokens.get(k).copied().unwrap_or(1));
            }
        }
        self.e2es.push(r.latency_s());
        self.queue.push(r.client_queue_s());
        self.from_sched.push(r.latency_from_schedule_s());
        self.chunks += r.chunk_ns.len();
        if let (Some(first), Some(last)) = (r.chunk_ns.first(), r.chunk_ns.last()) {
            if r.output_len > 1 {
                self.per_req_itl
                    .push(ns_to_s(last.saturating_sub(*first)) / (r.output_len - 1) as f64);
            }
        }
        self.cache_prompt += r.server_prompt_len.unwrap_or(r.prompt_len);
        self.cache_cached += r.cached_tokens.unwrap_or(0);
        if let Some(s) = r.server_prompt_len {
            self.server_extra_prompt
                .push(s as i64 - r.prompt_len as i64);
        }
        if r.generated_text.contains('\u{FFFD}') {
            self.replacement_chars += 1;
        }
        self.timeline.add(r);
    }

    /// The run's metrics.
    pub fn finish(self, s: &MetricSettings<'_>) -> BenchmarkMetrics {
        self.finish_with_timeline(s).0
    }

    /// The run's metrics and its per-second timeline (the series behind the peaks).
    pub fn finish_with_timeline(mut self, s: &MetricSettings<'_>) -> (BenchmarkMetrics, Timeline) {
        let dur = if s.duration_s > 0.0 {
            s.duration_s
        } else {
            f64::MIN_POSITIVE
        };
        let mut m = BenchmarkMetrics {
            completed: self.completed,
            failed: self.failed,
            total_input: self.total_input,
            total_output: self.total_output,
            total_output_retokenized: self.total_output_retokenized,
            ..Default::default()
        };
        m.request_throughput = m.completed as f64 / dur;
        m.input_throughput = m.total_input as f64 / dur;
        m.output_throughput = m.total_output as f64 / dur;
        m.output_throughput_retokenized = m.total_output_retokenized as f64 / dur;
        m.total_throughput = (m.total_input + m.total_output) as f64 / dur;
        m.total_throughput_retokenized = (m.total_input + m.total_output_retokenized) as f64 / dur;
        m.ttft_ms = summarize(&self.ttfts, 1000.0);
        let tpot_values: Vec<f64> = self.tpots.iter().flatten().copied().collect();
        m.tpot_ms = summarize(&tpot_values, 1000.0);
        let gap_summary = self.gaps.summarize(1000.0);
        m.itl_ms = match self.itls.as_mut() {
            Some(itls) => itls.summarize(1000.0),
            None => gap_summary,
        };
        m.e2e_latency_ms = summarize(&self.e2es, 1000.0);
        m.concurrency = self.e2es.iter().fold(0.0, |a, b| a + b) / dur;
        let timeline = self.timeline.finish();
        let timeline_out = timeline.clone();
        m.max_output_tokens_per_s =
            timeline.output_tokens.iter().copied().max().unwrap_or(0) as f64;
        m.max_concurrent_requests = timeline.concurrency.iter().copied().max().unwrap_or(0);

        let x = &mut m.extra;
        x.inter_chunk_ms = gap_summary;
        x.itl_per_request_mean_ms = summarize(&self.per_req_itl, 1000.0);
        x.tokens_per_chunk = if self.chunks > 0 {
            m.total_output as f64 / self.chunks as f64
        } else {
            0.0
        };
        x.client_queue_ms = summarize(&self.queue, 1000.0);
        x.e2e_from_schedule_ms = summarize(&self.from_sched, 1000.0);
        let failed_inf = std::iter::repeat_n(f64::INFINITY, m.failed);
        let adj_e2e = sorted(
            &self
                .e2es
                .iter()
                .copied()
                .chain(failed_inf.clone())
                .collect::<Vec<_>>(),
        );
        let adj_ttft = sorted(
            &self
                .ttfts
                .iter()
                .copied()
                .chain(failed_inf)
                .collect::<Vec<_>>(),
        );
        x.error_adjusted_p50_e2e_ms = percentile_sorted(&adj_e2e, 50.0) * 1000.0;
        x.error_adjusted_p90_e2e_ms = percentile_sorted(&adj_e2e, 90.0) * 1000.0;
        x.error_adjusted_p99_e2e_ms = percentile_sorted(&adj_e2e, 99.0) * 1000.0;
        x.error_adjusted_p99_ttft_ms = percentile_sorted(&adj_ttft, 99.0) * 1000.0;
        if s.slo.is_set() {
            let goodput = (0..self.completed)
                .filter(|&k| {
                    s.slo
                        .met_by_latencies(self.ttfts[k], self.tpots[k], self.e2es[k])
                })
                .count();
            x.goodput_completed = Some(goodput);
            x.request_goodput = Some(goodput as f64 / dur);
        }
        x.input_len_min = self.input_len_min.unwrap_or(0);
        x.input_len_max = self.input_len_max;
        let records = self.completed + self.failed;
        x.input_len_mean = if records == 0 {
            0.0
        } else {
            self.input_len_sum as f64 / records as f64
        };
        x.cache_total_prompt_tokens = self.cache_prompt;
        x.cache_total_cached_tokens = self.cache_cached;
        match s.server_added_prompt_tokens {
            Some(added) => {
                x.input_len_mismatches = self
                    .server_extra_prompt
                    .iter()
                    .filter(|&&extra| extra != added as i64)
                    .count();
            }
            None => {
                if !self.server_extra_prompt.is_empty() {
                    x.chat_template_tokens_mean = Some(
                        self.server_extra_prompt
                            .iter()
                            .map(|&e| e as f64)
                            .sum::<f64>()
                            / self.server_extra_prompt.len() as f64,
                    );
                }
            }
        }
        x.responses_with_replacement_chars = self.replacement_chars;
        x.errors_by_kind = self.errors_by_kind;
        for name in s.percentile_metrics {
            let samples: &[f64] = match name.as_str() {
                "ttft" => &self.ttfts,
                "tpot" => &tpot_values,
                "itl" => {
                    // Sorted by `summarize` above.
                    let itls = self.itls.as_ref().unwrap_or(&self.gaps);
                    for &p in s.metric_percentiles {
                        let key = format!("p{}_{}_ms", fmt_pct(p), name);
                        x.selected_percentiles
                            .insert(key, itls.percentile_sorted(p) * 1000.0);
                    }
                    continue;
                }
                "e2el" => &self.e2es,
                "client_queue_time" => &self.queue,
                "e2el_including_client_queue" => &self.from_sched,
                _ => continue,
            };
            let sorted_samples = sorted(samples);
            for &p in s.metric_percentiles {
                let key = format!("p{}_{}_ms", fmt_pct(p), name);
                x.selected_percentiles
                    .insert(key, percentile_sorted(&sorted_samples, p) * 1000.0);
            }
        }
        (m, timeline_out)
    }
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

/// Output tokens and requests in flight per one-second bucket from the earliest send (the
/// series behind the peak metrics and `--plot-throughput`). Each chunk adds the tokens it
/// carried at its arrival time. SGLang adds one token per inter-token gap instead, which
/// undercounts whenever a chunk holds several tokens (`--stream-interval` > 1, or a server that
/// coalesces): its peak can then fall below the mean throughput.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    pub output_tokens: Vec<usize>,
    pub concurrency: Vec<usize>,
}

impl Timeline {
    /// The timeline of the successful records.
    pub fn of_records(records: &[RequestRecord]) -> Self {
        let mut b = TimelineBuilder::new(Self::origin_of(records));
        for r in records {
            b.add(r);
        }
        b.finish()
    }

    /// The timeline's origin: the earliest send of a successful measured request.
    pub fn origin_of(records: &[RequestRecord]) -> Option<u64> {
        records
            .iter()
            .filter(|r| r.success() && !r.warmup)
            .map(|r| r.sent_ns)
            .min()
    }
}

/// A [`Timeline`] built one record at a time from a known origin.
#[derive(Default)]
pub struct TimelineBuilder {
    origin_ns: Option<u64>,
    end_ns: u64,
    tokens: Vec<usize>,
    concurrency: Vec<usize>,
}

impl TimelineBuilder {
    /// An empty timeline starting at `origin_ns` (`None`: no successful request).
    pub fn new(origin_ns: Option<u64>) -> Self {
        Self {
            origin_ns,
            end_ns: 0,
            tokens: Vec::new(),
            concurrency: Vec::new(),
        }
    }

    /// Add a record (failed and warm-up records are skipped).
    pub fn add(&mut self, r: &RequestRecord) {
        let Some(t0) = self.origin_ns else { return };
        if !r.success() || r.warmup {
            return;
        }
        self.end_ns = self.end_ns.max(r.last_ns);
        for (k, &ns) in r.chunk_ns.iter().enumerate() {
            let carried = match r.chunk_tokens.get(k) {
                Some(&n) => n as usize,
                // One chunk for the whole answer (non-streaming): all its tokens.
                None if r.chunk_ns.len() == 1 => r.output_len,
                None => 1,
            };
            let b = ns_to_s(ns.saturating_sub(t0)) as usize;
            grow(&mut self.tokens, b + 1)[b] += carried.max(1);
        }
        let start = ns_to_s(r.sent_ns.saturating_sub(t0));
        let end = start + r.latency_s();
        let (b0, b1) = (start as usize, (end as usize) + 1);
        for c in grow(&mut self.concurrency, b1).iter_mut().take(b1).skip(b0) {
            *c += 1;
        }
    }

    /// The timeline: `ceil(last end - origin) + 1` buckets.
    pub fn finish(mut self) -> Timeline {
        let Some(t0) = self.origin_ns else {
            return Timeline::default();
        };
        if self.end_ns == 0 {
            return Timeline::default();
        }
        let buckets = (ns_to_s(self.end_ns.saturating_sub(t0)).ceil() as usize) + 1;
        self.tokens.resize(buckets, 0);
        self.concurrency.resize(buckets, 0);
        Timeline {
            output_tokens: self.tokens,
            concurrency: self.concurrency,
        }
    }
}

/// `v` with at least `len` elements (zeros appended).
fn grow(v: &mut Vec<usize>, len: usize) -> &mut Vec<usize> {
    if v.len() < len {
        v.resize(len, 0);
    }
    v
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
        let t = Timeline::of_records(&[rec(0), rec(10_000_000)]);
        let peak_tokens = t.output_tokens.iter().copied().max().unwrap_or(0);
        let peak_conc = t.concurrency.iter().copied().max().unwrap_or(0);
        assert_eq!(
            peak_tokens, 16,
            "two requests x 8 tokens in the first second"
        );
        assert_eq!(peak_conc, 2);
    }
}
