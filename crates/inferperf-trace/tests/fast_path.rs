//! The fast paths give exactly what the general (serde) paths give, on real traces:
//! merge's byte-level rewriting writes the same bytes as parsing and re-serializing every
//! event, and the scanned event views equal the serde-parsed ones.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use inferperf_trace::event::EventParser;
use inferperf_trace::merge::{merge_files, merge_files_general_path, MergeOptions};
use inferperf_trace::reader::TraceReader;

fn sglang_files() -> Vec<PathBuf> {
    let dir = common::traces_dir().join("sglang_mi300x");
    vec![
        dir.join("sglang_Qwen3-8B_decode.json.gz"),
        dir.join("sglang_Qwen3-8B_prefilldecode.json.gz"),
    ]
}

fn read_all(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    inferperf_trace::source::open(path)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Merges `inputs` with both paths and asserts byte-identical outputs.
fn assert_same_merge(inputs: &[PathBuf], opts: &MergeOptions) {
    let dir = tempfile::tempdir().unwrap();
    let fast = dir.path().join("fast.trace.json");
    let general = dir.path().join("general.trace.json");
    let a = merge_files(inputs, &fast, opts).unwrap();
    let b = merge_files_general_path(inputs, &general, opts).unwrap();
    assert_eq!(a.events_out, b.events_out);
    assert_eq!(a.synthesized_metadata, b.synthesized_metadata);
    assert_eq!(a.dropped, b.dropped);
    assert_eq!(a.moved_overlapping, b.moved_overlapping);
    let (fa, fb) = (read_all(&fast), read_all(&general));
    assert!(
        fa == fb,
        "fast-path merge output differs from the general path"
    );
}

#[test]
fn merge_fast_path_equals_general_path_dlrm() {
    let files = common::dlrm_files();
    assert_same_merge(&files, &MergeOptions::default());
    assert_same_merge(
        &files,
        &MergeOptions {
            align_clocks: true,
            drop_categories: vec!["python_function".into(), "cpu_op".into()],
            ..Default::default()
        },
    );
    assert_same_merge(
        &files,
        &MergeOptions {
            perfetto_fix: true,
            ..Default::default()
        },
    );
}

#[test]
fn merge_fast_path_equals_general_path_sglang() {
    // Rank 0 as is, rank 1 a copy with its distributedInfo.rank changed (ids get remapped).
    let dir = tempfile::tempdir().unwrap();
    for (i, src) in sglang_files().iter().enumerate() {
        let text = String::from_utf8(read_all(src)).unwrap();
        let r1 = text.replacen("\"rank\": 0", "\"rank\": 1", 1);
        assert_ne!(text, r1);
        let r1_path = dir.path().join(format!("sglang{i}-rank1.json"));
        std::fs::write(&r1_path, r1).unwrap();
        assert_same_merge(&[src.clone(), r1_path], &MergeOptions::default());
    }
}

#[test]
fn scanned_events_equal_parsed_events() {
    let mut files = common::dlrm_files();
    files.extend(sglang_files());
    for path in files {
        let mut plain = TraceReader::open(&path).unwrap();
        let mut scanning = TraceReader::open(&path).unwrap();
        let (mut p1, mut p2) = (EventParser::default(), EventParser::default());
        let mut members = Vec::new();
        let mut scanned_events = 0;
        loop {
            let a = plain.next_event().unwrap().map(<[u8]>::to_vec);
            let b = scanning.next_event_scanned(&mut members).unwrap();
            match (a, b) {
                (None, None) => break,
                (Some(a), Some((b, scanned))) => {
                    assert_eq!(a, b, "{}: events framed differently", path.display());
                    let general = format!("{:?}", p1.parse(&a));
                    if scanned {
                        scanned_events += 1;
                        let fast = format!("{:?}", p2.parse_scanned(b, &members));
                        assert_eq!(fast, general, "{}", path.display());
                    }
                }
                (a, b) => panic!("{}: {a:?} vs {b:?}", path.display()),
            }
        }
        assert!(scanned_events > 0);
        assert_eq!(plain.metadata().len(), scanning.metadata().len());
    }
}

/// Writes a small two-rank set of unusual (but valid) events, and one malformed file.
fn unusual_events(dir: &Path, rank: u32) -> PathBuf {
    let mut text = format!(
        "{{\"distributedInfo\": {{\"rank\": {rank}}}, \"deviceProperties\": [{{\"id\": 0}}],\n\"traceEvents\": [\n"
    )
    .into_bytes();
    let events: [&[u8]; 13] = [
        br#"{"name": "process_labels", "ph": "M", "pid": 0, "tid": 0, "args": {"labels": "GPU 0"}}"#,
        br#"{"name": "process_name", "ph": "M", "pid": 7, "tid": 0}"#,
        br#"{"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10.5, "dur": 2, "args": { "device": 0, "correlation": 12, "nested": {"a" : [1, 2]} }}"#,
        br#"{"ph": "X", "cat": "cuda_runtime", "name": "launch", "pid": 7, "tid": 7, "ts": 9, "dur": 1, "args": {"correlation": 12, "External id": 3}}"#,
        br#"{"ph": "s", "id": 12, "pid": 7, "tid": 7, "ts": 9, "cat": "ac2g", "name": "flow"}"#,
        br#"{"ph": "f", "id": "str-id", "pid": "Spans", "tid": "", "ts": 9, "bp": "e"}"#,
        br#"{"ph": "X", "cat": null, "name": "no cat", "pid": 7, "tid": 7, "ts": 1, "dur": 1}"#,
        br#"{"ph": "X", "name": "esc\"aped \u00e9", "pid": 7, "tid": 7, "ts": 1, "dur": 1}"#,
        br#"{"ph": "X", "na\u006de": "escaped key", "pid": 7, "tid": 7, "ts": 1, "dur": 1}"#,
        br#"{"ph": "i", "name": "no pid", "ts": 1}"#,
        br#"{"ph": "X", "name": "big", "pid": 123456789012345678901, "tid": -1, "ts": 1, "dur": 0, "id": -0}"#,
        b"{\"ph\": \"X\", \"name\": \"bad \xff utf8\", \"pid\": 7, \"tid\": 7, \"ts\": 1, \"dur\": 1}",
        br#"{}"#,
    ];
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            text.extend_from_slice(b",\n");
        }
        text.extend_from_slice(e);
    }
    text.extend_from_slice(b"\n]}\n");
    let path = dir.join(format!("unusual-rank{rank}.json"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn merge_fast_path_equals_general_path_on_unusual_events() {
    let dir = tempfile::tempdir().unwrap();
    let files = [unusual_events(dir.path(), 0), unusual_events(dir.path(), 1)];
    assert_same_merge(&files, &MergeOptions::default());
    assert_same_merge(
        &files,
        &MergeOptions {
            perfetto_fix: true,
            drop_categories: vec!["ac2g".into()],
            ..Default::default()
        },
    );
}

#[test]
fn malformed_events_give_the_same_error_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        r#"{"ph": "X", "pid": 1, "ts": 12a}"#,
        r#"{"ph": "X", "pid": [1], "ts": 1}"#,
        r#"{"ph": "M", "name": "x", "pid": 1, "args": [1]}"#,
        r#"{"ph": "X", "pid": 1, "ts": 1,}"#,
        // Valid JSON, but `trace summary` rejects a repeated field, so merge does too.
        r#"{"ph": "i", "name": "dup", "pid": 7, "pid": 8, "tid": 7, "ts": 1, "s": "t"}"#,
        r#"{"ph": "X", "pid": 1, "ts": "1", "dur": 1}"#,
        r#"{"ph": "X", "pid": 1, "ts": 1e30, "dur": 1}"#,
    ] {
        let path = dir.path().join("bad-rank0.json");
        std::fs::write(
            &path,
            format!("{{\"traceEvents\": [{{\"ph\": \"i\", \"pid\": 1, \"ts\": 0}}, {bad}]}}"),
        )
        .unwrap();
        let out = dir.path().join("out.json");
        let a = merge_files(std::slice::from_ref(&path), &out, &MergeOptions::default());
        let b =
            merge_files_general_path(std::slice::from_ref(&path), &out, &MergeOptions::default());
        let (a, b) = (a.unwrap_err().to_string(), b.unwrap_err().to_string());
        assert_eq!(a, b, "{bad}");
    }
}
