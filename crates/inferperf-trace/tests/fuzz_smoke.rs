//! A deterministic stand-in for the cargo-fuzz target (fuzz/fuzz_targets/reader.rs) that runs on
//! stable: every prefix length and many byte flips of a real trace must read, warn or error --
//! never panic.

use std::io::{Cursor, Read};
use std::path::Path;

use inferperf_trace::event::EventParser;
use inferperf_trace::reader::TraceReader;

fn exercise(data: &[u8]) {
    let src: Box<dyn Read + Send> = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut r) = TraceReader::from_reader(Path::new("smoke"), src) else {
        return;
    };
    let mut p = EventParser::default();
    while let Ok(Some(raw)) = r.next_event() {
        let raw = raw.to_vec();
        let _ = p.parse(&raw).map(|e| (e.end(), e.link_args()));
    }
}

#[test]
fn prefixes_and_flips_never_panic() {
    let seed = br#"{"schemaVersion":1,"deviceProperties":[{"id":0}],"traceEvents":[
      {"ph":"X","cat":"kernel","name":"nccl\"k\\u00e9","ts":1.5,"dur":2,"pid":0,"tid":7,"args":{"correlation":5,"grid":[1,2,3]}},
      {"ph":"f","id":5,"pid":"Spans","tid":"","ts":1694128201426556,"bp":"e"},
      {"name":"process_name","ph":"M","pid":1,"args":{"name":"python3"}}
    ],"traceName":"x","baseTimeNanoseconds":1775078550000000000}"#;
    for n in 0..=seed.len() {
        exercise(&seed[..n]);
    }
    let mut x: u32 = 12345;
    for _ in 0..3000 {
        let mut d = seed.to_vec();
        for _ in 0..3 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (x >> 8) as usize % d.len();
            d[i] = (x >> 16) as u8;
        }
        exercise(&d);
    }
}
