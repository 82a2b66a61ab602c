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
