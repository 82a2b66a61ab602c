//! `bench serving`'s flags for sharded runs (`--num-shards`, `--shard-index`,
//! `--shard-index-from-env`, `--start-at`) and `--save-records`, and `bench merge`'s flags.
//! The shard index may come from `JOB_COMPLETION_INDEX`, the variable a Kubernetes Indexed Job
//! sets in each of its pods.

use std::path::PathBuf;

use anyhow::{bail, Context};
use inferperf_bench::shard::Sharding;

/// The Kubernetes Indexed Job's index variable.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Sharded-run flags of `bench serving`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ShardArgs {
    /// Split the run into N deterministic shards: every shard builds the same dataset and
    /// arrival schedule from --seed and sends the requests whose index is I mod N, at their
    /// original times. --max-concurrency C is split: C/N per shard, the first C mod N shards
    /// one more. Merge the shards' --save-records files with `bench merge`.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub num_shards: usize,
    /// This process's shard, 0..N-1.
    #[arg(long, value_name = "I", conflicts_with = "shard_index_from_env")]
    pub shard_index: Option<usize>,
    /// Take the shard index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's pods).
    #[arg(long)]
    pub shard_index_from_env: bool,
    /// Start the measured run at this wall-clock instant, RFC 3339 (2026-12-05T12:00:00Z) or
    /// Unix seconds, so that all shards start together; a shard that starts late says so and
    /// records by how much.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<u64>,
    /// Write every request's raw observations (versioned JSON lines: header with the run's
    /// flags, seed, shard and clock anchors; one line per request; footer) for `bench merge`.
    /// `{shard}` in the path becomes the shard index.
    #[arg(long, value_name = "FILE")]
    pub save_records: Option<PathBuf>,
}

fn parse_start_at(s: &str) -> Result<u64, String> {
    inferperf_protocol::dates::parse_instant_unix_ns(s).map_err(|e| e.to_string())
}

impl ShardArgs {
    /// This process's shard: `None` for an unsharded run.
    pub fn sharding(&self) -> anyhow::Result<Option<Sharding>> {
        let index = match (self.shard_index, self.shard_index_from_env) {
            (Some(i), _) => Some(i),
            (None, true) => {
                let raw = std::env::var(INDEX_ENV)
                    .with_context(|| format!("--shard-index-from-env: {INDEX_ENV} is not set"))?;
                Some(raw.trim().parse::<usize>().with_context(|| {
                    format!("--shard-index-from-env: {INDEX_ENV}={raw:?} is not a shard index")
                })?)
            }
            (None, false) => None,
        };
        match index {
            None if self.num_shards > 1 => bail!(
                "--num-shards {} needs --shard-index I or --shard-index-from-env",
                self.num_shards
            ),
            None => Ok(None),
            Some(i) => Ok(Some(Sharding::new(self.num_shards, i)?)),
        }
    }
}

/// `bench merge` flags.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// Record files written by `bench serving --save-records`, or directories whose
    /// `*.records.jsonl` files are all merged.
    #[arg(required = true, value_name = "FILES_OR_DIRS")]
    pub inputs: Vec<PathBuf>,
    /// JSONL file the merged result is appended to (SGLang's keys, as one client writes).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Print the merged record as JSON on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// `bench merge`: the run's result from its shards' records.
pub fn merge(a: MergeArgs) -> anyhow::Result<std::process::ExitCode> {
    let outcome = inferperf_bench::shard_merge::merge(&inferperf_bench::shard_merge::MergeConfig {
        inputs: a.inputs,
        output_file: a.output_file.clone(),
    })
    .context("bench merge")?;
    if a.json {
        println!("{}", outcome.record_line);
    } else {
        print!("{}", outcome.console_report);
        if let Some(f) = &a.output_file {
            println!("Merged result appended to {}", f.display());
        }
    }
    Ok(if outcome.metrics.completed == 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        shard: ShardArgs,
    }

    #[test]
    fn shard_flags_resolve_or_say_what_is_missing() {
        let c = Cli::parse_from(["x", "--num-shards", "4", "--shard-index", "3"]);
        assert_eq!(c.shard.sharding().ok().flatten(), Sharding::new(4, 3).ok());
        let e = Cli::parse_from(["x", "--num-shards", "4"])
            .shard
            .sharding()
            .expect_err("no index");
        assert!(e.to_string().contains("--shard-index"), "{e}");
        let e = Cli::parse_from(["x", "--num-shards", "2", "--shard-index", "2"])
            .shard
            .sharding()
            .expect_err("out of range");
        assert!(format!("{e:#}").contains("out of range"), "{e:#}");
        assert!(Cli::parse_from(["x"])
            .shard
            .sharding()
            .ok()
            .flatten()
            .is_none());
        assert!(Cli::try_parse_from(["x", "--start-at", "soon"]).is_err());
        let c = Cli::parse_from(["x", "--start-at", "1764936000"]);
        assert_eq!(c.shard.start_at, Some(1_764_936_000_000_000_000));
    }
}
