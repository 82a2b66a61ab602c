//! Manager-level tests: real writer thread, real files in a temp directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use inferperf_protocol::profile::ProfileReqInput;
use serde_json::Value;

use crate::writer::Job;
use crate::*;

fn env(dir: &Path) -> EnvDefaults {
    EnvDefaults {
        profiler_dir: Some(dir.to_string_lossy().into_owned()),
        ..EnvDefaults::default()
    }
}

fn manager(rank: RankInfo, writer: &TraceWriter) -> ProfileManager {
    ProfileManager::new(
        ProfilerConfig {
            rank,
            ..ProfilerConfig::default()
        },
        writer.clone(),
    )
}

/// Run one step of `mode` the way the engine loop will: begin, phases, forward with modules,
/// end. Returns whether it was recorded.
fn step(m: &mut ProfileManager, mode: ForwardMode) -> bool {
    let ct = m.last_forward_ct() + 1;
    let (prefix, ext, seq): (&[usize], &[usize], &[usize]) = match mode {
        ForwardMode::Extend => (&[0, 2], &[4, 3], &[]),
        ForwardMode::Decode => (&[], &[], &[9, 12]),
        ForwardMode::Mixed => (&[3, 11], &[5, 1], &[]),
        ForwardMode::Idle => (&[], &[], &[]),
    };
    let info = StepInfo {
        forward_ct: ct,
        mode,
        batch_size: prefix.len().max(seq.len()),
        num_tokens: ext.iter().sum::<usize>() + seq.len(),
        extend_prefix_lens: prefix,
        extend_seq_lens: ext,
        seq_lens: seq,
        iter_start: None,
    };
    let recorded = m.on_step_begin(&info);
    {
        let rec = m.recorder();
        let _s = rec.span(phase::SCHEDULE);
        drop(_s);
        let _f = rec.forward_span();
        for layer in 0..2 {
            let _l = rec.module(|| ModuleMarker {
                module: format!("model.layers.{layer}.mlp.down_proj"),
                inputs: vec![vec![2, 16]],
                trainable_params: vec![("weight", vec![8, 16])],
                static_params: vec![],
            });
        }
    }
    m.on_step_end(&StepEnd {
        running_reqs: 2,
        waiting_reqs: 1,
        kv_used_tokens: 20,
        kv_total_tokens: 100,
        kv_bytes_per_token: 64,
    });
    recorded
}

fn read_trace(path: &Path) -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn names_with_prefix(doc: &Value, prefix: &str) -> Vec<String> {
    doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect()
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn start_step_and_num_steps_capture_exact_steps_and_close_by_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    for _ in 0..2 {
        assert!(!step(&mut m, ForwardMode::Decode));
    }
    let req = ProfileReqInput {
        start_step: Some(4),
        num_steps: Some(3),
        profile_id: Some("100.5".into()),
        ..Default::default()
    };
    let session = m.start_request(&req, &env(tmp.path())).unwrap();
    let recorded: Vec<bool> = (0..8).map(|_| step(&mut m, ForwardMode::Decode)).collect();
    // Steps 3..=10: 4, 5, 6 are recorded.
    assert_eq!(
        recorded,
        [false, true, true, true, false, false, false, false]
    );
    assert!(!m.is_active(), "the window closed by itself");
    let outcome = session.wait();
    assert_eq!(outcome.message, "Succeeded.");
    let path = tmp.path().join("100.5-TP-0.trace.json.gz");
    assert_eq!(outcome.trace_files, vec![path.clone()]);
    let doc = read_trace(&path);
    assert_eq!(
        names_with_prefix(&doc, "ProfilerStep#"),
        ["ProfilerStep#4", "ProfilerStep#5", "ProfilerStep#6"]
    );
    assert_eq!(
        names_with_prefix(&doc, "step["),
        vec!["step[DECODE bs=2 g_sqsq=2 g_sqsk=21 g_sk=21]".to_string(); 3]
    );
    // A manual stop after the auto-stop is SGLang's "not in progress".
    assert_eq!(
        m.stop().unwrap_err().to_string(),
        "Profiling is not in progress. Call /start_profile first."
    );
}

#[test]
fn open_ended_window_until_stop_and_two_windows_per_lifetime() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    let e = env(tmp.path());
    for (id, steps) in [("1.0", 3usize), ("2.0", 2)] {
        let req = ProfileReqInput {
            profile_id: Some(id.into()),
            ..Default::default()
        };
        let session = m.start_request(&req, &e).unwrap();
        assert_eq!(
            m.start_request(&req, &e).unwrap_err().to_string(),
            "Profiling is already in progress. Call /stop_profile first."
        );
        for _ in 0..steps {
            assert!(step(&mut m, ForwardMode::Decode));
        }
        let stopped = m.stop().unwrap();
        assert!(Arc::ptr_eq(&stopped, &session));
        let outcome = session.wait();
        let doc = read_trace(&outcome.trace_files[0]);
        assert_eq!(names_with_prefix(&doc, "ProfilerStep#").len(), steps);
        assert!(
            !step(&mut m, ForwardMode::Decode),
            "nothing recorded after stop"
        );
    }
    assert_eq!(
        dir_names(tmp.path()),
        ["1.0-TP-0.trace.json.gz", "2.0-TP-0.trace.json.gz"]
    );
    let doc = read_trace(&tmp.path().join("2.0-TP-0.trace.json.gz"));
    // Steps 1-3 were the first window, 4 was unrecorded, 5-6 the second.
    assert_eq!(
        names_with_prefix(&doc, "ProfilerStep#"),
        ["ProfilerStep#5", "ProfilerStep#6"]
    );
}

#[test]
fn stop_without_start_is_sglangs_error() {
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    let err = m.stop().unwrap_err();
    assert_eq!(
        err.to_string(),
        "Profiling is not in progress. Call /start_profile first."
    );
    assert_eq!(err.http_status(), 409);
}

#[test]
fn stop_before_the_start_step_cancels_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    let req = ProfileReqInput {
        start_step: Some(50),
        ..Default::default()
    };
    let session = m.start_request(&req, &env(tmp.path())).unwrap();
    assert!(!step(&mut m, ForwardMode::Decode));
    m.stop().unwrap();
    let outcome = session.wait();
    assert!(outcome.trace_files.is_empty());
    assert!(dir_names(tmp.path()).is_empty());
}

#[test]
fn by_stage_writes_extend_and_decode_files() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    let req = ProfileReqInput {
        num_steps: Some(2),
        profile_by_stage: true,
        profile_prefix: Some("pre".into()),
        profile_id: Some("7.25".into()),
        ..Default::default()
    };
    let session = m.start_request(&req, &env(tmp.path())).unwrap();
    use ForwardMode::*;
    let recorded: Vec<bool> = [Extend, Decode, Mixed, Decode, Extend, Decode]
        .into_iter()
        .map(|mode| step(&mut m, mode))
        .collect();
    assert_eq!(recorded, [true, true, true, true, false, false]);
    let outcome = session.wait();
    assert_eq!(
        dir_names(tmp.path()),
        [
            "pre-7.25-TP-0-DECODE.trace.json.gz",
            "pre-7.25-TP-0-EXTEND.trace.json.gz"
        ]
    );
    assert_eq!(outcome.trace_files.len(), 2);
    let ext = read_trace(&tmp.path().join("pre-7.25-TP-0-EXTEND.trace.json.gz"));
    assert_eq!(
        names_with_prefix(&ext, "step["),
        [
            "step[EXTEND bs=2 toks=7 c_sqsq=25 c_sqsk=31 c_sk=9]",
            "step[MIXED bs=2 c=1 g=1 c_sq=5 c_sk=8 c_sqsq=25 c_sqsk=40 g_sq=1 g_sk=12 g_sqsq=1 g_sqsk=12]"
        ]
    );
    assert_eq!(
        names_with_prefix(&ext, "ProfilerStep#"),
        ["ProfilerStep#1", "ProfilerStep#3"]
    );
    let dec = read_trace(&tmp.path().join("pre-7.25-TP-0-DECODE.trace.json.gz"));
    assert_eq!(
        names_with_prefix(&dec, "ProfilerStep#"),
        ["ProfilerStep#2", "ProfilerStep#4"]
    );
}

#[test]
fn trace_content_has_kineto_shape_spans_counters_and_markers() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::tp(1, 2), &writer);
    let start = ProfileStart::resolve(
        &ProfileReqInput {
            num_steps: Some(1),
            profile_id: Some("3.5".into()),
            ..Default::default()
        },
        &env(tmp.path()),
    )
    .unwrap();
    let session = ProfileSession::new(start, 1);
    m.start(session.clone()).unwrap();
    m.recorder().instant("retract", || {
        let mut a = serde_json::Map::new();
        a.insert("rid".into(), "r1".into());
        a
    });
    assert!(step(&mut m, ForwardMode::Extend));
    let outcome = session.wait();
    assert_eq!(
        outcome.trace_files,
        [tmp.path().join("3.5-TP-1.trace.json.gz")]
    );
    let doc = read_trace(&outcome.trace_files[0]);
    assert_eq!(doc["schemaVersion"], 1);
    assert_eq!(doc["distributedInfo"]["rank"], 1);
    assert_eq!(doc["distributedInfo"]["world_size"], 2);
    assert_eq!(doc["displayTimeUnit"], "ms");
    assert!(doc["deviceProperties"].is_array());
    assert!(doc["traceName"]
        .as_str()
        .unwrap()
        .ends_with("3.5-TP-1.trace.json.gz"));
    let events = doc["traceEvents"].as_array().unwrap();
    let by_name = |n: &str| events.iter().find(|e| e["name"] == n).cloned();
    for meta in ["process_name", "thread_name", "process_sort_index"] {
        assert_eq!(by_name(meta).unwrap()["ph"], "M", "{meta}");
    }
    let step_ev = by_name("ProfilerStep#1").unwrap();
    assert_eq!(step_ev["ph"], "X");
    assert_eq!(step_ev["cat"], "user_annotation");
    let (s0, s1) = (
        step_ev["ts"].as_f64().unwrap(),
        step_ev["ts"].as_f64().unwrap() + step_ev["dur"].as_f64().unwrap(),
    );
    let module = by_name("model.layers.1.mlp.down_proj").unwrap();
    assert_eq!(module["cat"], "cpu_op");
    assert_eq!(module["args"]["Module"], "model.layers.1.mlp.down_proj");
    assert_eq!(module["args"]["Inputs"], serde_json::json!([[2, 16]]));
    assert_eq!(
        module["args"]["TrainableParams"]["weight"],
        serde_json::json!([8, 16])
    );
    assert!(module["args"]["Call stack"]
        .as_str()
        .unwrap()
        .contains("tests.rs:"));
    let m0 = module["ts"].as_f64().unwrap();
    assert!(s0 <= m0 && m0 <= s1, "module span inside its ProfilerStep");
    assert!(by_name("schedule").is_some());
    assert_eq!(by_name("kv_cache").unwrap()["ph"], "C");
    assert_eq!(by_name("kv_cache").unwrap()["args"]["used_tokens"], 20.0);
    assert_eq!(
        by_name("running_reqs").unwrap()["args"]["running_reqs"],
        2.0
    );
    assert_eq!(
        by_name("waiting_reqs").unwrap()["args"]["waiting_reqs"],
        1.0
    );
    let retract = by_name("retract").unwrap();
    assert_eq!(retract["ph"], "i");
    assert_eq!(retract["args"]["rid"], "r1");
}

#[test]
fn record_shapes_off_drops_module_spans_and_with_stack_off_drops_locations() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    let req = ProfileReqInput {
        num_steps: Some(1),
        record_shapes: Some(false),
        with_stack: Some(false),
        roofline_annotations: Some(false),
        ..Default::default()
    };
    let session = m.start_request(&req, &env(tmp.path())).unwrap();
    step(&mut m, ForwardMode::Decode);
    let doc = read_trace(&session.wait().trace_files[0]);
    assert!(names_with_prefix(&doc, "model.").is_empty());
    assert_eq!(names_with_prefix(&doc, "step["), ["step[DECODE bs=2]"]);
    let text = doc.to_string();
    assert!(!text.contains("Call stack"));
}

#[test]
fn mem_activity_writes_a_memory_timeline_under_sglangs_name() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    let req = ProfileReqInput {
        num_steps: Some(2),
        activities: Some(vec!["MEM".into()]),
        ..Default::default()
    };
    let session = m.start_request(&req, &env(tmp.path())).unwrap();
    step(&mut m, ForwardMode::Decode);
    step(&mut m, ForwardMode::Decode);
    let outcome = session.wait();
    assert!(outcome.trace_files.is_empty(), "no CPU activity, no trace");
    assert_eq!(outcome.memory_files.len(), 1);
    let name = outcome.memory_files[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(name.ends_with("-TP-0-memory.json.gz"), "{name}");
    let ts: f64 = name.split("-TP-").next().unwrap().parse().unwrap();
    assert!(ts > 1.6e9);
    let doc = read_trace(&outcome.memory_files[0]);
    let kv = names_with_prefix(&doc, "kv_cache");
    assert_eq!(kv.len(), 2);
}

#[test]
fn refused_requests_leave_the_manager_idle() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    let e = env(tmp.path());
    let bad = [
        (
            ProfileReqInput {
                activities: Some(vec!["CPU".into(), "GPU".into()]),
                ..Default::default()
            },
            "profiler activity GPU is not available on this server",
        ),
        (
            ProfileReqInput {
                activities: Some(vec!["TPU".into()]),
                ..Default::default()
            },
            "unknown profiler activity \"TPU\"",
        ),
        (
            ProfileReqInput {
                merge_profiles: true,
                ..Default::default()
            },
            "merge_profiles is not available",
        ),
    ];
    for (req, text) in bad {
        let err = m.start_request(&req, &e).unwrap_err();
        assert!(err.to_string().starts_with(text), "{err}");
        assert_eq!(err.http_status(), 400);
        assert!(!m.is_active());
    }
}

#[test]
fn writing_happens_off_the_engine_thread_and_completion_waits_for_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let (release, hold) = mpsc::channel::<()>();
    writer.submit(Job::Hold(hold)).unwrap();
    let mut m = manager(RankInfo::single(), &writer);
    let req = ProfileReqInput {
        num_steps: Some(1),
        profile_id: Some("9.0".into()),
        ..Default::default()
    };
    let session = m.start_request(&req, &env(tmp.path())).unwrap();
    let (tx, rx) = mpsc::channel();
    session.on_complete(move |o| {
        let _ = tx.send(o.clone());
    });
    // The writer is blocked, yet the engine side finishes its step and closes the window.
    assert!(step(&mut m, ForwardMode::Decode));
    assert!(!m.is_active());
    assert!(session.outcome().is_none());
    assert!(rx.try_recv().is_err());
    assert!(!tmp.path().join("9.0-TP-0.trace.json.gz").exists());
    release.send(()).unwrap();
    let outcome = rx.recv().unwrap();
    assert!(outcome.trace_files[0].exists(), "complete means written");
    assert_eq!(dir_names(tmp.path()), ["9.0-TP-0.trace.json.gz"]);
}

struct CountingMerger;

impl TraceMerger for CountingMerger {
    fn merge(&self, inputs: &[PathBuf], output: &Path) -> Result<String, String> {
        let names: Vec<String> = inputs
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        std::fs::write(output, names.join("\n")).map_err(|e| e.to_string())?;
        Ok(format!("Events: 0, Files: {}", inputs.len()))
    }
}

/// Two rank managers on their own threads, one session; returns the outcome.
fn two_rank_session(dir: &Path, writer: &TraceWriter, merge: bool, steps: usize) -> ProfileOutcome {
    let start = ProfileStart::resolve(
        &ProfileReqInput {
            merge_profiles: merge,
            profile_id: Some("42.5".into()),
            ..Default::default()
        },
        &env(dir),
    )
    .unwrap();
    let session = ProfileSession::new(start, 2);
    let handles: Vec<_> = (0..2)
        .rev()
        .map(|rank| {
            let writer = writer.clone();
            let session = session.clone();
            std::thread::spawn(move || {
                let mut m = manager(RankInfo::tp(rank, 2), &writer);
                m.start(session).unwrap();
                for i in 0..steps {
                    let mode = if i == 0 {
                        ForwardMode::Extend
                    } else {
                        ForwardMode::Decode
                    };
                    step(&mut m, mode);
                }
                m.stop().unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    session.wait()
}

#[test]
fn multi_rank_session_completes_after_all_ranks_and_merges_in_rank_order() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(Some(Arc::new(CountingMerger))).unwrap();
    let outcome = two_rank_session(tmp.path(), &writer, true, 2);
    assert_eq!(
        outcome.trace_files,
        [
            tmp.path().join("42.5-TP-0.trace.json.gz"),
            tmp.path().join("42.5-TP-1.trace.json.gz")
        ]
    );
    let merged = tmp.path().join("merged-42.5.trace.json.gz");
    assert_eq!(outcome.merged.as_deref(), Some(merged.as_path()));
    assert_eq!(
        outcome.message,
        format!(
            "Succeeded. Merged trace: {} (Events: 0, Files: 2)",
            merged.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&merged).unwrap(),
        "42.5-TP-0.trace.json.gz\n42.5-TP-1.trace.json.gz"
    );
}

const HTA_SCRIPT: &str = r#"
import json, sys, logging
logging.disable(logging.WARNING)
from hta.trace_analysis import TraceAnalysis
a = TraceAnalysis(trace_dir=sys.argv[1], include_last_profiler_step=True)
t = a.t
out = {"ranks": sorted(int(r) for r in t.get_ranks()), "iterations": {}, "names": {}}
for r in t.get_ranks():
    df = t.get_trace(r)
    sym = t.symbol_table.get_sym_table()
    out["names"][str(int(r))] = sorted(set(sym[int(i)] for i in df["name"].unique()))
    out["iterations"][str(int(r))] = sorted(int(i) for i in df["iteration"].unique() if int(i) >= 0)
print("HTA_RESULT " + json.dumps(out))
"#;

#[test]
fn hta_parses_two_rank_traces() {
    let python = inferperf_test_support::venv_python();
    let tmp = tempfile::tempdir().unwrap();
    let writer = TraceWriter::spawn(None).unwrap();
    let outcome = two_rank_session(tmp.path(), &writer, false, 3);
    assert_eq!(outcome.trace_files.len(), 2);
    let script = tmp.path().join("hta_check.py.txt");
    std::fs::write(&script, HTA_SCRIPT).unwrap();
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "HTA failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HTA_RESULT "))
        .unwrap_or_else(|| panic!("no HTA_RESULT in {stdout}"));
    let result: Value = serde_json::from_str(line).unwrap();
    assert_eq!(result["ranks"], serde_json::json!([0, 1]));
    for rank in ["0", "1"] {
        assert_eq!(
            result["iterations"][rank],
            serde_json::json!([1, 2, 3]),
            "rank {rank}"
        );
        let names: Vec<&str> = result["names"][rank]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for want in [
            "ProfilerStep#1",
            "ProfilerStep#3",
            "step[EXTEND bs=2 toks=7 c_sqsq=25 c_sqsk=31 c_sk=9]",
            "step[DECODE bs=2 g_sqsq=2 g_sqsk=21 g_sk=21]",
            "schedule",
            "model.layers.0.mlp.down_proj",
        ] {
            assert!(names.contains(&want), "rank {rank} lacks {want}: {names:?}");
        }
    }
}
