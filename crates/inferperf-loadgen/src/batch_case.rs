//! The (batch size, input length, output length) grid both one-batch benchmarks sweep: the
//! in-process one (`inferperf-inproc`) and the one against a server (`bench one-batch-server`),
//! with the record keys they share.

use serde_json::json;

use crate::jsonl::OrderedRecord;

/// One (batch size, input length, output length) case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    pub batch_size: usize,
    pub input_len: usize,
    pub output_len: usize,
}

impl Case {
    /// The record's first keys, shared by both batch benchmarks: `run_name, batch_size,
    /// input_len, output_len`.
    pub fn record_head(&self, run_name: &str) -> OrderedRecord {
        let mut r = OrderedRecord::default();
        r.put("run_name", json!(run_name));
        r.put("batch_size", json!(self.batch_size));
        r.put("input_len", json!(self.input_len));
        r.put("output_len", json!(self.output_len));
        r
    }
}
