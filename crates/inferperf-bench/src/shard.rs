//! Deterministic shards of one run (`--num-shards N --shard-index I`): every shard builds the
//! same plan and arrival schedule from the seed and keeps the requests whose index is I mod N,
//! at their original offsets, so that N load generators together send exactly what one ideal
//! client would have sent. Also: the run's identity (shards of different runs refuse to
//! merge), the concurrency split and the shared start instant (`--start-at`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use inferperf_loadgen::dataset::DatasetRow;
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::runner::PlannedRequest;

/// This process's part of a sharded run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sharding {
    pub num_shards: usize,
    pub shard_index: usize,
}

impl Sharding {
    /// Check `index < num_shards` and `num_shards >= 1`, naming the flags.
    pub fn new(num_shards: usize, shard_index: usize) -> Result<Self, BenchError> {
        if num_shards == 0 {
            return Err(BenchError::Config("--num-shards must be at least 1".into()));
        }
        if shard_index >= num_shards {
            return Err(BenchError::Config(format!(
                "--shard-index {shard_index} is out of range for --num-shards {num_shards} \
                 (0..={})",
                num_shards - 1
            )));
        }
        Ok(Self {
            num_shards,
            shard_index,
        })
    }

    /// Whether the request with this index of the whole plan is this shard's.
    pub fn owns(&self, plan_index: usize) -> bool {
        plan_index % self.num_shards == self.shard_index
    }

    /// This shard's part of `--max-concurrency C`: C / N, the first C mod N shards one more,
    /// so the shards' limits add up to C. A shard left with no slot is an error (C < N).
    pub fn max_concurrency(&self, total: usize) -> Result<usize, BenchError> {
        let share =
            total / self.num_shards + usize::from(self.shard_index < total % self.num_shards);
        if share == 0 {
            return Err(BenchError::Config(format!(
                "--max-concurrency {total} is smaller than --num-shards {}: shard {} would \
                 have no concurrency slot",
                self.num_shards, self.shard_index
            )));
        }
        Ok(share)
    }
}

/// The shard's requests and their offsets, and each one's index in the whole plan.
pub struct ShardPlan {
    pub requests: Vec<PlannedRequest>,
    pub offsets: Vec<u64>,
    pub plan_index: Vec<usize>,
}

/// Keep this shard's requests (index mod N), each at its original offset.
pub fn select(requests: Vec<PlannedRequest>, offsets: Vec<u64>, s: &Sharding) -> ShardPlan {
    let mut out = ShardPlan {
        requests: Vec::with_capacity(requests.len() / s.num_shards + 1),
        offsets: Vec::with_capacity(offsets.len() / s.num_shards + 1),
        plan_index: Vec::with_capacity(requests.len() / s.num_shards + 1),
    };
    for (i, (r, o)) in requests.into_iter().zip(offsets).enumerate() {
        if s.owns(i) {
            out.requests.push(r);
            out.offsets.push(o);
            out.plan_index.push(i);
        }
    }
    out
}

/// The run's identity, the same in every shard of one run and different between runs: a hash
/// of the whole plan's schedule and token lengths, the seed, the shard count and the start
/// instant.
pub fn run_id(
    rows: &[DatasetRow],
    offsets: &[u64],
    seed: u64,
    num_shards: usize,
    start_at_unix_ns: Option<u64>,
) -> String {
    let mut bytes = Vec::with_capacity(rows.len() * 24 + 32);
    bytes.extend(seed.to_le_bytes());
    bytes.extend((num_shards as u64).to_le_bytes());
    bytes.extend(start_at_unix_ns.unwrap_or(0).to_le_bytes());
    for (row, off) in rows.iter().zip(offsets) {
        bytes.extend(off.to_le_bytes());
        bytes.extend((row.prompt_len as u64).to_le_bytes());
        bytes.extend((row.output_len as u64).to_le_bytes());
    }
    format!("{:016x}", inferperf_protocol::hash::fnv1a(&bytes))
}

/// Now, as Unix nanoseconds.
fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

/// Wait until the wall clock reaches `unix_ns`. Returns how late the caller is when it
/// returns: 0 when it had to wait, otherwise how far past the instant it was called (a shard
/// that started late says so and records by how much).
pub async fn wait_until(unix_ns: u64) -> u64 {
    let now = unix_now_ns();
    if now >= unix_ns {
        return now - unix_ns;
    }
    // One conversion to the monotonic clock; the wall clock is not polled while waiting.
    tokio::time::sleep(Duration::from_nanos(unix_ns - now)).await;
    0
}

/// A file name for this shard: `{shard}` in `template` becomes the shard index (0 without
/// shards), so shards can write `--save-records` and `--output-file` into one directory.
pub fn with_shard_index(template: &str, s: Option<&Sharding>) -> String {
    if !template.contains("{shard}") {
        return template.to_owned();
    }
    template.replace("{shard}", &s.map_or(0, |s| s.shard_index).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn planned(n: usize) -> Vec<PlannedRequest> {
        (0..n)
            .map(|i| PlannedRequest {
                body: Bytes::from(i.to_string()),
                prompt_len: i,
                output_len: 1,
                headers: None,
                rid: None,
                conversation: None,
            })
            .collect()
    }

    #[test]
    fn shards_partition_the_plan_at_original_offsets() {
        let offsets: Vec<u64> = (0..10).map(|i| i * 100).collect();
        let mut seen = Vec::new();
        for i in 0..3 {
            let s = Sharding::new(3, i).expect("valid");
            let p = select(planned(10), offsets.clone(), &s);
            for (k, &idx) in p.plan_index.iter().enumerate() {
                assert_eq!(idx % 3, i);
                assert_eq!(p.offsets[k], offsets[idx], "original offset kept");
                assert_eq!(p.requests[k].prompt_len, idx);
            }
            seen.extend(p.plan_index);
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..10).collect::<Vec<_>>(),
            "every request exactly once"
        );
    }

    #[test]
    fn concurrency_split_adds_up_and_refuses_empty_shards() {
        let total: usize = (0..4)
            .map(|i| {
                Sharding::new(4, i)
                    .and_then(|s| s.max_concurrency(10))
                    .expect("share")
            })
            .sum();
        assert_eq!(total, 10);
        assert_eq!(
            Sharding::new(4, 0).and_then(|s| s.max_concurrency(10)).ok(),
            Some(3)
        );
        assert_eq!(
            Sharding::new(4, 3).and_then(|s| s.max_concurrency(10)).ok(),
            Some(2)
        );
        let e = Sharding::new(4, 3)
            .and_then(|s| s.max_concurrency(3))
            .expect_err("no slot");
        assert!(e.to_string().contains("--max-concurrency 3"));
        assert!(Sharding::new(2, 2).is_err() && Sharding::new(0, 0).is_err());
    }

    #[test]
    fn run_id_names_the_plan() {
        let rows: Vec<DatasetRow> = (0..4).map(|i| DatasetRow::text("p".into(), i, 8)).collect();
        let offs = [0, 10, 20, 30];
        let a = run_id(&rows, &offs, 1, 2, None);
        assert_eq!(a, run_id(&rows, &offs, 1, 2, None));
        assert_ne!(a, run_id(&rows, &offs, 2, 2, None), "seed");
        assert_ne!(a, run_id(&rows, &[0, 10, 20, 31], 1, 2, None), "schedule");
        assert_ne!(a, run_id(&rows, &offs, 1, 4, None), "shard count");
        assert_ne!(a, run_id(&rows, &offs, 1, 2, Some(5)), "start instant");
    }

    #[test]
    fn file_names_take_the_shard_index() {
        let s = Sharding::new(4, 2).expect("valid");
        let p = with_shard_index("/r/shard-{shard}.records.jsonl", Some(&s));
        assert_eq!(p, "/r/shard-2.records.jsonl");
        assert_eq!(with_shard_index("/r/x.jsonl", Some(&s)), "/r/x.jsonl");
        assert_eq!(with_shard_index("/r/{shard}.jsonl", None), "/r/0.jsonl");
    }
}
