//! Damaged and unusual inputs: a clear error or a tolerated read with a warning, never a panic
//! and never a half-written output.

use std::io::Write;
use std::path::Path;

use inferperf_trace::collect::{collect, CollectOptions};
use inferperf_trace::event::EventParser;
use inferperf_trace::progress::Progress;
use inferperf_trace::reader::{TraceForm, TraceReader};
use inferperf_trace::taxonomy::Taxonomy;
use inferperf_trace::trim::{trim, TrimOptions};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Reads all events; returns (count, warnings) or the error message.
fn read_all(path: &Path) -> Result<(u64, Vec<String>), String> {
    let mut r = TraceReader::open(path).map_err(|e| e.to_string())?;
    let mut p = EventParser::default();
    let mut n = 0;
    while let Some(raw) = r.next_event().map_err(|e| e.to_string())? {
        p.parse(raw).map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok((n, r.warnings().to_vec()))
}

const EV: &str = r#"{"ph":"X","cat":"kernel","name":"k","ts":1,"dur":2,"pid":0,"tid":7,"args":{"correlation":5}}"#;

#[test]
fn object_and_array_forms_with_metadata_anywhere() {
    let d = tempfile::tempdir().unwrap();
    let obj = format!(
        r#"{{"schemaVersion":1,"traceEvents":[{EV},{EV}],"traceName":"x","baseTimeNanoseconds":17}}"#
    );
    let p = write(d.path(), "o.json", obj.as_bytes());
    let mut r = TraceReader::open(&p).unwrap();
    assert_eq!(r.form(), TraceForm::Object);
    assert_eq!(r.metadata().len(), 1);
    r.skip_events().unwrap();
    assert_eq!(r.events_read(), 2);
    assert_eq!(r.meta("baseTimeNanoseconds").unwrap().get(), "17");
    assert_eq!(r.meta("traceName").unwrap().get(), "\"x\"");

    let arr = format!("\u{feff}[ {EV} ,\n {EV} ]");
    let p = write(d.path(), "a.json", arr.as_bytes());
    assert_eq!(read_all(&p).unwrap(), (2, vec![]));
    // Array form without the closing bracket is allowed by the spec: tolerated with a warning.
    let p = write(d.path(), "a2.json", format!("[{EV},{EV},").as_bytes());
    let (n, w) = read_all(&p).unwrap();
    assert_eq!(n, 2);
    assert!(w[0].contains("unterminated"), "{w:?}");
}

#[test]
fn unusual_field_types_are_read() {
    let d = tempfile::tempdir().unwrap();
    let evs = [
        r#"{"ph":"X","name":"a","ts":1694128201426556,"dur":3,"pid":"Spans","tid":"PyTorch Profiler"}"#,
        r#"{"ph":"X","name":"b","ts":4909913692199.694,"dur":14.452,"pid":251,"tid":251}"#,
        r#"{"ph":"f","id":123456789012345678901234567890,"pid":1,"tid":1,"ts":5,"args":{"Comms Id":99999999999999999999999}}"#,
        r#"{"ph":"i","name":"","pid":"","tid":""}"#,
    ];
    let p = write(
        d.path(),
        "t.json",
        format!("[{}]", evs.join(",")).as_bytes(),
    );
    let mut r = TraceReader::open(&p).unwrap();
    let mut parser = EventParser::default();
    let raw = r.next_event().unwrap().unwrap().to_vec();
    let a = parser.parse(&raw).unwrap();
    assert_eq!(
        a.ts.unwrap().0,
        1_694_128_201_426_556_000,
        "integer µs convert exactly"
    );
    let raw = r.next_event().unwrap().unwrap().to_vec();
    let b = parser.parse(&raw).unwrap();
    assert_eq!(
        b.ts.unwrap().0,
        4_909_913_692_199_694,
        "float µs keep ns precision"
    );
    assert_eq!(b.dur.unwrap().0, 14_452);
    let raw = r.next_event().unwrap().unwrap().to_vec();
    assert!(parser.parse(&raw).is_ok(), "big integers are tolerated");
    let raw = r.next_event().unwrap().unwrap().to_vec();
    assert!(parser.parse(&raw).is_ok());
    assert!(r.next_event().unwrap().is_none());
}

#[test]
fn damaged_files_error_or_warn() {
    let d = tempfile::tempdir().unwrap();
    let good = format!(
        r#"{{"traceEvents":[{}],"traceName":"x"}}"#,
        vec![EV; 2000].join(",")
    );

    // Cut gzip: tolerated up to the last complete event, with a warning.
    let gz = gzip(good.as_bytes());
    let p = write(d.path(), "cut.json.gz", &gz[..gz.len() / 2]);
    let (n, w) = read_all(&p).unwrap();
    assert!(n > 0 && n < 2000, "{n}");
    assert!(w.iter().any(|w| w.contains("truncated gzip")), "{w:?}");

    // Unterminated event array (crashed writer): tolerated.
    let p = write(d.path(), "cut.json", &good.as_bytes()[..good.len() / 2]);
    let (n, w) = read_all(&p).unwrap();
    assert!(n > 0 && n < 2000);
    assert!(!w.is_empty());

    // Corrupt gzip data: a clear error naming the file.
    let mut bad = gz.clone();
    for b in bad.iter_mut().skip(20).take(40) {
        *b ^= 0x5a;
    }
    let p = write(d.path(), "corrupt.json.gz", &bad);
    let e = read_all(&p).unwrap_err();
    assert!(e.contains("corrupt.json.gz"), "{e}");

    // Invalid UTF-8 inside an event: read with replacement characters, counted.
    let mut bytes = br#"[{"ph":"X","name":"ab"#.to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(br#"","ts":1,"dur":1,"pid":1,"tid":1}]"#);
    let p = write(d.path(), "utf8.json", &bytes);
    let data = collect(
        &p,
        &Taxonomy::builtin(),
        &CollectOptions::default(),
        &Progress::hidden(),
    )
    .unwrap();
    assert_eq!(data.events, 1);
    assert!(
        data.warnings.iter().any(|w| w.contains("invalid UTF-8")),
        "{:?}",
        data.warnings
    );

    // Wrong types: clear errors with the event index.
    for (name, text, needle) in [
        ("ts.json", r#"[{"ph":"X","ts":"soon","dur":1}]"#, "event 0"),
        ("te.json", r#"{"traceEvents":5}"#, "must be an array"),
        ("num.json", "42", "not a trace"),
        ("empty.json", "", "empty file"),
        ("noev.json", r#"{"a":1}"#, "no `traceEvents`"),
        ("notobj.json", r#"[1,2]"#, "not a JSON object"),
        ("garbage.json", r#"[{"ph":"X"} {"ph":"X"}]"#, "expected ','"),
    ] {
        let p = write(d.path(), name, text.as_bytes());
        let e = match collect(
            &p,
            &Taxonomy::builtin(),
            &CollectOptions::default(),
            &Progress::hidden(),
        ) {
            Ok(_) => panic!("{name} should fail"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
    }
}

#[test]
fn failed_trim_leaves_no_output() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "bad.json",
        format!(r#"[{EV},{{"ph":"X","ts":"x"}}]"#).as_bytes(),
    );
    let out = d.path().join("out.json.gz");
    let e = trim(&p, &out, &TrimOptions::default(), &Progress::hidden()).unwrap_err();
    assert!(e.to_string().contains("event 1"), "{e}");
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "only the input remains: {left:?}");
}

/// `trace merge` and `trace summary` judge events alike: what one rejects the other rejects,
/// naming the same file and event; with `skip_bad` both skip the same events and count them.
#[test]
fn merge_and_summary_agree_on_bad_timestamps() {
    use inferperf_trace::merge::{merge_files, MergeOptions};

    let d = tempfile::tempdir().unwrap();
    let good = |ts: u32| {
        format!(
            r#"{{"ph":"X","cat":"cpu_op","name":"aten::mm","ts":{ts},"dur":5,"pid":1,"tid":1}}"#
        )
    };
    let events = [
        good(10),
        // A string timestamp (a writer that quoted its numbers)...
        r#"{"ph":"X","cat":"cpu_op","name":"aten::mm","ts":"20","dur":5,"pid":1,"tid":1}"#
            .to_string(),
        good(30),
        // ...and one far beyond any clock (1e30 µs does not fit in i64 ns).
        r#"{"ph":"X","cat":"cpu_op","name":"aten::mm","ts":1e30,"dur":5,"pid":1,"tid":1}"#
            .to_string(),
        good(50),
    ];
    let input = write(
        d.path(),
        "rank0.json",
        format!(r#"{{"traceEvents":[{}]}}"#, events.join(",")).as_bytes(),
    );
    let out = d.path().join("merged.json");
    let summarize = |path: &Path, skip_bad: bool| {
        collect(
            path,
            &Taxonomy::builtin(),
            &CollectOptions {
                skip_bad,
                ..Default::default()
            },
            &Progress::hidden(),
        )
    };

    // Without skipping: the same error, naming the file and the first bad event.
    let merge_err = merge_files(std::slice::from_ref(&input), &out, &MergeOptions::default())
        .unwrap_err()
        .to_string();
    let summary_err = match summarize(&input, false) {
        Ok(_) => panic!("summary accepted a string timestamp"),
        Err(e) => e.to_string(),
    };
    for e in [&merge_err, &summary_err] {
        assert!(e.contains("rank0.json"), "{e}");
        assert!(e.contains("event 1:"), "{e}");
        assert!(e.contains("expected a number of microseconds"), "{e}");
        assert!(e.contains("--skip-bad"), "{e}");
    }
    assert_eq!(merge_err, summary_err);
    assert!(!out.exists(), "no half-written merge output");

    // Skipping: both leave out the same two events and say so.
    let rep = merge_files(
        std::slice::from_ref(&input),
        &out,
        &MergeOptions {
            skip_bad: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rep.bad_events, 2);
    assert_eq!(rep.ranks[0].bad_events, 2);
    assert!(rep.skipped.is_empty(), "the rank itself is kept");
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.contains("skipped 2 invalid events (first: event 1:")),
        "{:?}",
        rep.warnings
    );
    let skipped = summarize(&input, true).unwrap();
    assert_eq!((skipped.events, skipped.bad_events), (3, 2));
    assert!(skipped
        .warnings
        .iter()
        .any(|w| w.contains("skipped 2 invalid events (first: event 1:")));

    // And what merge wrote, summary reads without complaint: the three good events.
    let merged = summarize(&out, false).unwrap();
    assert_eq!(merged.bad_events, 0);
    let mm = merged
        .cpu_spans
        .iter()
        .find(|((_, n), _)| merged.name(*n) == "aten::mm")
        .map(|(_, s)| s.count);
    assert_eq!(mm, Some(3));
}
