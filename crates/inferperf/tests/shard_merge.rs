//! Sharded runs end to end, with the Kubernetes manifests' own command lines: four shard
//! processes (`JOB_COMPLETION_INDEX` 0..3, as an Indexed Job's pods) against one server with
//! the simulated engine at a fixed TTFT/ITL, then the merge Job's `bench merge`. The merged
//! result must equal a single-process run of the same schedule: identical counts and token
//! totals, latencies within the client's own measured noise. Bad merges are refused by name.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::deploy;
use inferperf_engine::simulated::{SimulatedEngine, TokenSchedule};
use inferperf_server::{EmbeddedServer, EngineParts, ServerConfig};
use serde_json::Value;

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn last_record(path: &Path) -> Value {
    let body = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(body.lines().last().expect("a record")).expect("JSON record")
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn four_shards_merge_into_what_one_client_measures() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = SimulatedEngine::start(
        TokenSchedule::Fixed {
            ttft: Duration::from_millis(30),
            itl: Duration::from_millis(5),
        },
        32000,
    )
    .expect("simulated engine");
    let parts = EngineParts {
        handle: sim.handle.clone(),
        tokenizer: sim.tokenizer.clone(),
        model_info: sim.model_info.clone(),
    };
    let config = ServerConfig {
        model_path: sim.model_info.model_path.clone(),
        ..ServerConfig::ephemeral()
    };
    let server = rt
        .block_on(EmbeddedServer::start_with_engine(config, parts))
        .expect("server");
    let url = server.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    // Far enough ahead for four processes to start and prepare; a late shard would say so.
    let start_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 4;
    let start_at = start_at.to_string();
    let c = deploy::local_command_lines(
        dir.path(),
        &[
            ("BASE_URL", url.as_str()),
            ("BACKEND", "sglang"),
            ("NUM_PROMPTS", "48"),
            ("RANDOM_INPUT_LEN", "16"),
            ("RANDOM_OUTPUT_LEN", "8"),
            ("REQUEST_RATE", "24"),
            ("MAX_CONCURRENCY", "16"),
            ("START_AT", start_at.as_str()),
            ("RUN_ID", "local"),
        ],
    );
    let n: usize = c.params["NUM_SHARDS"].parse().expect("NUM_SHARDS");
    assert_eq!(n, 4, "the manifests' default shard count");
    let exe = env!("CARGO_BIN_EXE_inferperf");
    let shards: Vec<_> = (0..n)
        .map(|i| {
            Command::new(exe)
                .args(&c.shard[1..])
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("shard process")
        })
        .collect();
    for s in shards {
        let o = s.wait_with_output().expect("shard output");
        assert!(o.status.success(), "shard failed: {}", text(&o));
    }
    let merged = Command::new(exe)
        .args(&c.merge[1..])
        .output()
        .expect("merge");
    assert!(merged.status.success(), "{}", text(&merged));
    let merged_out = String::from_utf8_lossy(&merged.stdout).to_string();
    assert!(
        merged_out.contains("============ Serving Benchmark Result ============"),
        "{merged_out}"
    );
    assert!(merged_out.contains(" Shards "), "{merged_out}");
    let out_path = deploy::flag_value(&c.merge, "--output-file").expect("merge output");
    let m = last_record(Path::new(out_path));

    // The same schedule from one process.
    let single_out = dir.path().join("single.jsonl");
    let single_records = dir.path().join("single.records.jsonl");
    let mut single: Vec<String> = c.shard[1..].to_vec();
    let drop_flag = |argv: &mut Vec<String>, flag: &str, with_value: bool| {
        if let Some(i) = argv.iter().position(|a| a == flag) {
            argv.drain(i..i + 1 + usize::from(with_value));
        }
    };
    for (flag, value) in [
        ("--num-shards", true),
        ("--shard-index-from-env", false),
        ("--start-at", true),
        ("--save-records", true),
        ("--output-file", true),
    ] {
        drop_flag(&mut single, flag, value);
    }
    single.extend([
        "--save-records".into(),
        single_records.display().to_string(),
        "--output-file".into(),
        single_out.display().to_string(),
    ]);
    let o = Command::new(exe)
        .args(&single)
        .output()
        .expect("single run");
    assert!(o.status.success(), "{}", text(&o));
    let s = last_record(&single_out);

    // Identical counts and token totals.
    for key in [
        "completed",
        "total_input_tokens",
        "total_output_tokens",
        "failed",
    ] {
        assert_eq!(m[key], s[key], "{key}: merged {m} vs single {s}");
    }
    assert_eq!(num(&m, "completed"), 48.0);
    assert_eq!(m["max_concurrency"], s["max_concurrency"]);
    assert_eq!(m["shards"]["num_shards"], 4);
    let per_shard: Vec<u64> = m["shards"]["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|x| x["records"].as_u64().expect("records"))
        .collect();
    assert_eq!(per_shard, [12, 12, 12, 12]);
    // Latencies within the client's measured noise: three standard deviations of each run's
    // own samples, plus 1 ms of timer resolution.
    for name in ["ttft", "e2e_latency", "itl"] {
        let noise =
            3.0 * (num(&m, &format!("std_{name}_ms")) + num(&s, &format!("std_{name}_ms"))) + 1.0;
        for stat in ["mean", "median"] {
            let key = format!("{stat}_{name}_ms");
            let (a, b) = (num(&m, &key), num(&s, &key));
            assert!(
                (a - b).abs() <= noise,
                "{key}: merged {a} vs single {b}, noise bound {noise}"
            );
        }
    }
    // The duration follows the schedule: the same up to the latency noise and how far apart
    // the shards' clocks started (recorded by each shard and reported by the merge).
    let spread_ms = m["shards"]["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|x| num(x, "offset_ms") + num(x, "start_late_ms"))
        .fold(0.0, f64::max);
    let e2e_noise_s =
        3.0 * (num(&m, "std_e2e_latency_ms") + num(&s, "std_e2e_latency_ms")) / 1000.0;
    let (dm, ds) = (num(&m, "duration"), num(&s, "duration"));
    assert!(
        (dm - ds).abs() <= e2e_noise_s + spread_ms / 1000.0 + 0.001,
        "duration: merged {dm} vs single {ds} (noise {e2e_noise_s} s, shard spread {spread_ms} ms)"
    );
    assert!(m["steady_state"].is_object() || m["steady_state"].is_null());
    assert!(m["timeline"]["output_tokens"].is_array(), "{m}");
    rt.block_on(server.shutdown()).expect("shutdown");
    drop(sim);

    // Refusals, by name.
    let records_dir =
        Path::new(deploy::flag_value(&c.shard, "--save-records").expect("--save-records"))
            .parent()
            .expect("records dir")
            .to_path_buf();
    let shard_file = |i: usize| records_dir.join(format!("shard-{i}.records.jsonl"));
    let refuse = |args: &[&Path], expect: &[&str]| {
        let o = Command::new(exe)
            .args(["bench", "merge"])
            .args(args)
            .output()
            .expect("merge");
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        for e in expect {
            assert!(t.contains(e), "expected {e:?} in\n{t}");
        }
        assert!(!t.contains("panicked"), "{t}");
    };
    let (f0, f1, f2, f3) = (shard_file(0), shard_file(1), shard_file(2), shard_file(3));
    refuse(&[&f0, &f1, &f2], &["shard(s) [3] of 4 are missing"]);
    refuse(
        &[&f0, &f1, &f2, &f3, &f0],
        &["shard 0 is given twice", "shard-0.records.jsonl"],
    );
    refuse(
        &[&f0, &f1, &f2, &f3, &single_records],
        &["different runs", "single.records.jsonl"],
    );
    let cut = dir.path().join("cut.records.jsonl");
    let body = std::fs::read_to_string(&f3).expect("shard 3");
    let without_footer: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with("{\"footer\""))
        .collect();
    std::fs::write(&cut, without_footer.join("\n") + "\n").expect("write");
    refuse(
        &[&f0, &f1, &f2, &cut],
        &["cut.records.jsonl", "without its footer"],
    );
}
