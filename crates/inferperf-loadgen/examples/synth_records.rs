//! Writes a synthetic sharded run's record files for `scripts/bench-merge.sh`: N requests
//! split over S shards (index mod S), each with a plausible open-loop timeline (arrivals at a
//! fixed rate, TTFT 20-80 ms, one chunk per token 4-6 ms apart, L output tokens), seeded.
//!
//! `cargo run --release -p inferperf-loadgen --example synth_records -- OUT_DIR N S L`

use inferperf_loadgen::record::{RequestRecord, TokenCountSource};
use inferperf_loadgen::records_file::{
    self, ClockAnchors, RecordsFooter, RecordsHeader, RunSettings, ShardIdentity,
};
use inferperf_loadgen::steady_state::WindowRule;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: synth_records OUT_DIR N SHARDS OUTPUT_LEN";
    let out = std::path::PathBuf::from(args.get(1).ok_or(usage)?);
    let n: usize = args.get(2).ok_or(usage)?.parse()?;
    let shards: usize = args.get(3).ok_or(usage)?.parse()?;
    let output_len: usize = args.get(4).ok_or(usage)?.parse()?;
    let rate_per_s = 2000.0;
    let settings = RunSettings {
        backend: "sglang".into(),
        dataset_name: "random-ids".into(),
        request_rate: Some(rate_per_s),
        burstiness: 1.0,
        random_input_len: 128,
        random_output_len: output_len,
        random_range_ratio: 0.0,
        model_id: "synthetic".into(),
        num_prompts: n,
        percentile_metrics: vec!["ttft".into(), "tpot".into(), "itl".into()],
        metric_percentiles: vec![99.0],
        steady_state: Some(WindowRule::ConcurrencyRatio(0.8)),
        ..Default::default()
    };
    for shard in 0..shards {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(shard as u64);
        let records: Vec<RequestRecord> = (shard..n)
            .step_by(shards)
            .map(|i| {
                let scheduled = (i as f64 / rate_per_s * 1e9) as u64 + 1;
                let sent = scheduled + rng.gen_range(20_000..200_000);
                let first = sent + rng.gen_range(20_000_000..80_000_000);
                let mut t = first;
                let chunk_ns: Vec<u64> = (0..output_len)
                    .map(|k| {
                        if k > 0 {
                            t += rng.gen_range(4_000_000..6_000_000);
                        }
                        t
                    })
                    .collect();
                RequestRecord {
                    index: i,
                    rid: format!("synth-{i}"),
                    scheduled_ns: scheduled,
                    released_ns: scheduled + rng.gen_range(1_000..50_000),
                    sent_ns: sent,
                    first_byte_ns: first - 1_000,
                    first_token_ns: first,
                    last_ns: t + 100_000,
                    chunk_ns,
                    prompt_len: 128,
                    server_prompt_len: Some(128),
                    output_len,
                    output_len_source: TokenCountSource::Server,
                    requested_output_len: output_len,
                    ..Default::default()
                }
            })
            .collect();
        let header = RecordsHeader {
            format: records_file::FORMAT.into(),
            version: records_file::VERSION,
            tool_version: "synthetic".into(),
            shard: ShardIdentity {
                run_id: "synthetic".into(),
                shard_index: shard,
                num_shards: shards,
                planned_requests: n,
                shard_requests: records.len(),
            },
            seed: 1,
            argv: vec!["synth_records".into()],
            clock: ClockAnchors {
                unix_ns_at_start: 1_764_936_000_000_000_000 + shard as u64 * 1_000,
                ..Default::default()
            },
            settings: settings.clone(),
        };
        let retok: Vec<usize> = vec![output_len; records.len()];
        let footer = RecordsFooter {
            records: records.len(),
            duration_s: records.iter().map(|r| r.last_ns).max().unwrap_or(0) as f64 * 1e-9,
            ..Default::default()
        };
        let path = out.join(format!("shard-{shard}.records.jsonl"));
        records_file::write(&path, &header, &records, Some(&retok), &footer)?;
        eprintln!("wrote {} ({} records)", path.display(), records.len());
    }
    Ok(())
}
