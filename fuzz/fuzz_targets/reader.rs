//! Fuzzes the streaming reader and event parser: any byte string (plain or gzip) must give
//! events, a tolerated read with warnings, or an error -- never a panic or a hang.
#![no_main]

use std::io::{Cursor, Read};
use std::path::Path;

use inferperf_trace::event::EventParser;
use inferperf_trace::object::RawObject;
use inferperf_trace::reader::TraceReader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let src: Box<dyn Read + Send> = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = TraceReader::from_reader(Path::new("fuzz-input"), src) else {
        return;
    };
    let mut parser = EventParser::default();
    while let Ok(Some(raw)) = reader.next_event() {
        let raw = raw.to_vec();
        let _ = parser
            .parse(&raw)
            .map(|ev| (ev.end(), ev.link_args(), ev.is_gpu()));
        if let Ok(text) = std::str::from_utf8(&raw) {
            if let Ok(obj) = RawObject::parse(text) {
                let _ = obj.to_json();
            }
        }
    }
    let _ = reader.metadata();
});
