//! Merging the 8 DLRM ranks: labelled ranks, flow ids that never cross ranks, every event kept,
//! and a file that both our reader and HTA 0.5.0's parser load.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use inferperf_trace::event::{EventParser, Id};
use inferperf_trace::merge::{merge_files, MergeOptions, PID_STRIDE};
use inferperf_trace::reader::TraceReader;

const DLRM_EVENTS: u64 = 26_538;

struct Merged {
    events: u64,
    process_names: Vec<(i64, String)>,
    flow_ranks: HashMap<String, HashSet<i64>>,
    meta_keys: Vec<String>,
}

fn read_merged(path: &Path) -> Merged {
    let mut r = TraceReader::open(path).expect("our reader loads the merged file");
    let mut p = EventParser::default();
    let mut m = Merged {
        events: 0,
        process_names: Vec::new(),
        flow_ranks: HashMap::new(),
        meta_keys: Vec::new(),
    };
    while let Some(raw) = r.next_event().unwrap() {
        let ev = p.parse(raw).unwrap();
        m.events += 1;
        let pid = match ev.pid {
            Some(Id::Int(p)) => p,
            other => panic!("merged pids are integers, got {other:?}"),
        };
        if ev.ph == "M" && ev.name == "process_name" {
            let args: serde_json::Value = serde_json::from_str(ev.args.unwrap().get()).unwrap();
            m.process_names
                .push((pid, args["name"].as_str().unwrap().to_string()));
        }
        if matches!(ev.ph.as_ref(), "s" | "f" | "t") {
            let id = ev.id.as_ref().expect("flow id").to_string();
            m.flow_ranks.entry(id).or_default().insert(pid / PID_STRIDE);
        }
    }
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    m.meta_keys = r.metadata().iter().map(|(k, _)| k.clone()).collect();
    m
}

#[test]
fn merge_dlrm_8_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged-dlrm.trace.json.gz");
    let rep = merge_files(&common::dlrm_files(), &out, &MergeOptions::default()).unwrap();
    assert_eq!(rep.ranks.len(), 8);
    assert_eq!(rep.events_in, DLRM_EVENTS);
    assert_eq!(rep.events_out, DLRM_EVENTS + rep.synthesized_metadata);
    let labels: Vec<&str> = rep.ranks.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "[RANK00]", "[RANK01]", "[RANK02]", "[RANK03]", "[RANK04]", "[RANK05]", "[RANK06]",
            "[RANK07]"
        ]
    );
    // Only a temp-free directory remains: the output and nothing half-written.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    let m = read_merged(&out);
    assert_eq!(m.events, rep.events_out);
    // 8 labelled ranks, each with a CPU process and GPU processes.
    let ranks: HashSet<i64> = m
        .process_names
        .iter()
        .map(|(p, _)| p / PID_STRIDE)
        .collect();
    assert_eq!(ranks.len(), 8);
    for r in 0..8 {
        let label = format!("[RANK{r:02}]");
        let names: Vec<&str> = m
            .process_names
            .iter()
            .filter(|(p, _)| p / PID_STRIDE == r)
            .map(|(_, n)| n.as_str())
            .collect();
        assert!(
            names.contains(&format!("{label} CPU").as_str()),
            "rank {r}: {names:?}"
        );
        assert!(
            names.contains(&format!("{label} GPU {r}").as_str()),
            "rank {r}: {names:?}"
        );
        assert!(
            names.iter().all(|n| n.starts_with(&label)),
            "rank {r}: {names:?}"
        );
    }
    // No flow id is shared across ranks (in the inputs every rank reuses the same id space).
    assert!(!m.flow_ranks.is_empty());
    for (id, rs) in &m.flow_ranks {
        assert_eq!(rs.len(), 1, "flow id {id} appears on ranks {rs:?}");
    }
    // Every rank's metadata is kept.
    assert!(m.meta_keys.contains(&"inferperfMerge".to_string()));
    assert!(m.meta_keys.contains(&"inferperfRankMetadata".to_string()));

    // HTA 0.5.0 loads it too.
    let python = inferperf_test_support::venv_python();
    let script = inferperf_test_support::manifest_dir!().join("tests/hta_load.py");
    assert!(
        python.exists(),
        "HTA venv missing: {} not found; run scripts/fetch-test-assets.sh (needed by {})",
        python.display(),
        script.display()
    );
    let outp = Command::new(&python)
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), script.display()));
    assert!(
        outp.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&outp.stderr)
    );
    let stdout = String::from_utf8_lossy(&outp.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{}: bad output {stdout:?}: {e}", script.display()));
    assert_eq!(v["raw_events"].as_u64(), Some(rep.events_out));
    // 2104 kernels over the 8 ranks (golden A.1 kernel column).
    assert_eq!(v["hta_kernels"].as_u64(), Some(2104), "{v}");
}

#[test]
fn merge_by_profile_id_with_prefix_and_align_clocks() {
    // SGLang naming, one rank written with a profile prefix (which SGLang's merger misses).
    let dir = tempfile::tempdir().unwrap();
    let files = common::dlrm_files();
    for (i, f) in files.iter().take(4).enumerate() {
        let name = if i == 2 {
            format!("myprefix-1700000000.5-TP-{i}.trace.json")
        } else {
            format!("1700000000.5-TP-{i}.trace.json")
        };
        std::fs::copy(f, dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("1700000000.55-TP-9.trace.json"), "{}").unwrap();
    let found = inferperf_trace::naming::discover(dir.path(), "1700000000.5").unwrap();
    assert_eq!(found.len(), 4);
    let out = dir.path().join("merged-1700000000.5.trace.json.gz");
    let opts = MergeOptions {
        align_clocks: true,
        perfetto_fix: true,
        ..Default::default()
    };
    let rep = merge_files(&found, &out, &opts).unwrap();
    let labels: Vec<&str> = rep.ranks.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "[TP00 DP00 PP00 EP00]",
            "[TP01 DP00 PP00 EP00]",
            "[TP02 DP00 PP00 EP00]",
            "[TP03 DP00 PP00 EP00]"
        ]
    );
    let a = rep.alignment.expect("alignment requested");
    assert_eq!(a.matched_collectives, 8);
    // Same node: offsets are a few µs and not applied.
    assert!(
        a.offsets_ns.iter().all(|o| o.abs() < 10_000),
        "{:?}",
        a.offsets_ns
    );
    assert!(a.applied.iter().all(|x| !x));
    let m = read_merged(&out);
    assert_eq!(m.events, rep.events_out);
}

#[test]
fn duplicate_and_unknown_ranks_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = &common::dlrm_files()[0];
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::copy(f, &a).unwrap();
    std::fs::copy(f, &b).unwrap();
    let out = dir.path().join("m.json");
    let err = merge_files(&[a.clone(), b], &out, &MergeOptions::default()).unwrap_err();
    assert!(err.to_string().contains("both claim rank"), "{err}");
    assert!(!out.exists());

    let c = dir.path().join("c.json");
    std::fs::write(
        &c,
        r#"{"traceEvents":[{"ph":"X","name":"k","ts":1,"dur":1,"pid":1,"tid":1}]}"#,
    )
    .unwrap();
    let err = merge_files(&[a.clone(), c.clone()], &out, &MergeOptions::default()).unwrap_err();
    assert!(err.to_string().contains("cannot tell which rank"), "{err}");

    // A bad rank fails the merge, or is skipped loudly with skip_bad.
    let bad = dir.path().join("rank3.json");
    std::fs::write(&bad, "this is not json").unwrap();
    let err = merge_files(&[a.clone(), bad.clone()], &out, &MergeOptions::default()).unwrap_err();
    assert!(err.to_string().contains("rank3.json"), "{err}");
    assert!(!out.exists());
    let rep = merge_files(
        &[a, bad],
        &out,
        &MergeOptions {
            skip_bad: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rep.ranks.len(), 1);
    assert_eq!(rep.skipped.len(), 1);
    assert!(out.exists());
}
