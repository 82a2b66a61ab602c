//! `--save-records FILE`: every request's raw observations, in the versioned JSON-lines format
//! `bench merge` reads back to recompute a sharded run's metrics exactly as one client would.
//!
//! Layout: one header line (`{"format":"inferperf-records","version":1,...}`: the run's
//! identity, shard, seed, flags, settings and clock anchors), one line per request
//! ([`SavedRecord`]: the fields the metrics are computed from, times in nanoseconds of the
//! shard's own monotonic clock, chunk arrivals as gaps), and one footer line
//! (`{"footer":{...}}`: what the shard concluded: duration, requests never started, validity).
//! The file is written atomically after the run, streamed record by record, so it is complete
//! or absent, and a million records need no buffer. Generated text is not kept (only its
//! retokenized length and whether it held invalid UTF-8): records are for metrics, and text
//! would make them ten times larger.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::Slo;
use crate::record::{RequestError, RequestRecord, TokenCountSource};
use crate::request_trace::ServerClock;
use crate::validity::Validity;

/// The header's `format` value.
pub const FORMAT: &str = "inferperf-records";
/// The layout version this build writes and reads.
pub const VERSION: u32 = 1;

/// A records file that cannot be written or read, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordsFileError {
    #[error("cannot write records file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read records file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not an inferperf records file ({why})", path.display())]
    NotRecords { path: PathBuf, why: String },
    #[error(
        "{} is records format version {found}; this inferperf reads version {VERSION}",
        path.display()
    )]
    Version { path: PathBuf, found: u32 },
    #[error("{} line {line}: {why}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error(
        "{} ends without its footer line: the file is incomplete (written by a shard that was \
         killed, or cut short); rerun that shard",
        path.display()
    )]
    Truncated { path: PathBuf },
}

/// Which part of a sharded run a file holds, and the run it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardIdentity {
    /// The same for every shard of one run: a hash of the whole plan (arrival offsets, prompt
    /// and output lengths), the seed, the shard count and the start instant.
    pub run_id: String,
    pub shard_index: usize,
    pub num_shards: usize,
    /// Requests in the whole run's plan, and in this shard's share of it.
    pub planned_requests: usize,
    pub shard_requests: usize,
}

/// How this shard's clock maps to the run's common time line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockAnchors {
    /// Unix time (ns) of the shard clock's zero, read once when the measured clock started.
    pub unix_ns_at_start: u64,
    /// `--start-at` as Unix ns, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_unix_ns: Option<u64>,
    /// How much later than `--start-at` the clock started (0 without it or when on time).
    #[serde(default)]
    pub start_late_ns: u64,
    /// This host's wall clock against the server's (NTP-style probes before and after the run):
    /// the correction that puts shards on different hosts on one clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_clock: Option<ServerClock>,
}

/// Run settings the merged result needs (they shape the JSONL record and the table).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub tag: Option<String>,
    pub backend: String,
    pub dataset_name: String,
    /// `None` for a trace-driven run.
    pub request_rate: Option<f64>,
    pub burstiness: f64,
    /// The whole run's `--max-concurrency` (before it was split across shards).
    pub max_concurrency: Option<usize>,
    pub sharegpt_output_len: Option<usize>,
    pub random_input_len: usize,
    pub random_output_len: usize,
    pub random_range_ratio: f64,
    pub model_id: String,
    pub num_prompts: usize,
    pub server_added_prompt_tokens: Option<usize>,
    pub slo: Slo,
    pub percentile_metrics: Vec<String>,
    pub metric_percentiles: Vec<f64>,
    pub cache_report: bool,
    pub output_details: bool,
    pub accept_length: Option<f64>,
    /// How the steady-state window is chosen; `None` with `--no-steady-state`.
    #[serde(default)]
    pub steady_state: Option<crate::steady_state::WindowRule>,
}

impl RunSettings {
    /// The JSONL record's run facts: these settings plus what the run itself produced (the
    /// server's `/server_info`, the duration, why it stopped early, a skipped cache flush).
    pub fn record_context<'a>(
        &'a self,
        server_info: Option<serde_json::Value>,
        duration_s: f64,
        abort_reason: Option<&'a str>,
        flush_cache_skipped: Option<&'a str>,
    ) -> crate::result::RecordContext<'a> {
        crate::result::RecordContext {
            tag: self.tag.as_deref(),
            backend: &self.backend,
            dataset_name: &self.dataset_name,
            request_rate: self.request_rate,
            burstiness: self.burstiness,
            max_concurrency: self.max_concurrency,
            sharegpt_output_len: self.sharegpt_output_len,
            random_input_len: self.random_input_len,
            random_output_len: self.random_output_len,
            random_range_ratio: self.random_range_ratio,
            server_info,
            duration_s,
            accept_length: self.accept_length,
            model_id: &self.model_id,
            num_prompts: self.num_prompts,
            incomplete: abort_reason.is_some(),
            abort_reason,
            flush_cache_skipped,
            output_details: self.output_details,
            cache_report: self.cache_report,
        }
    }
}

/// The first line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordsHeader {
    pub format: String,
    pub version: u32,
    pub tool_version: String,
    pub shard: ShardIdentity,
    pub seed: u64,
    /// The command line as given.
    pub argv: Vec<String>,
    pub clock: ClockAnchors,
    pub settings: RunSettings,
}

/// The last line: what the shard concluded about its own run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordsFooter {
    pub records: usize,
    pub not_started: usize,
    /// Shard clock zero to its last record.
    pub duration_s: f64,
    pub abort_reason: Option<String>,
    pub validity: Validity,
}

#[derive(Serialize, Deserialize)]
struct FooterLine {
    footer: RecordsFooter,
}

/// One request, as saved. Times are the shard clock's nanoseconds (0 = did not happen).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedRecord {
    /// Index in the whole run's plan (not in the shard's share).
    pub index: usize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rid: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub turn: usize,
    pub scheduled_ns: u64,
    pub released_ns: u64,
    pub sent_ns: u64,
    pub first_byte_ns: u64,
    pub first_token_ns: u64,
    pub last_ns: u64,
    /// Chunk arrivals as gaps: the first from `sent_ns`, each next from the previous chunk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_gaps_ns: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_tokens: Vec<u32>,
    pub prompt_len: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_prompt_len: Option<usize>,
    pub output_len: usize,
    pub output_len_source: TokenCountSource,
    pub requested_output_len: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retokenized_len: Option<usize>,
    /// The generated text held U+FFFD (bytes that were not UTF-8).
    #[serde(default, skip_serializing_if = "is_false")]
    pub invalid_utf8: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_accept_length: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RequestError>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl SavedRecord {
    /// What is saved of `r`, with its index in the whole plan.
    pub fn of(r: &RequestRecord, plan_index: usize, retokenized_len: Option<usize>) -> Self {
        let mut prev = r.sent_ns;
        let chunk_gaps_ns = r
            .chunk_ns
            .iter()
            .map(|&ns| {
                let gap = ns.saturating_sub(prev);
                prev = ns;
                gap
            })
            .collect();
        Self {
            index: plan_index,
            rid: r.rid.clone(),
            turn: r.turn,
            scheduled_ns: r.scheduled_ns,
            released_ns: r.released_ns,
            sent_ns: r.sent_ns,
            first_byte_ns: r.first_byte_ns,
            first_token_ns: r.first_token_ns,
            last_ns: r.last_ns,
            chunk_gaps_ns,
            chunk_tokens: r.chunk_tokens.clone(),
            prompt_len: r.prompt_len,
            server_prompt_len: r.server_prompt_len,
            output_len: r.output_len,
            output_len_source: r.output_len_source,
            requested_output_len: r.requested_output_len,
            retokenized_len,
            invalid_utf8: r.generated_text.contains('\u{FFFD}'),
            spec_accept_length: r.spec_accept_length,
            cached_tokens: r.cached_tokens,
            error: r.error.clone(),
        }
    }

    /// The record back, every time shifted by `shift_ns` (onto the merged run's clock), and
    /// its retokenized length. The text is not saved: a record that held invalid UTF-8 gets
    /// a lone U+FFFD so that the metric counting such responses still counts it.
    pub fn into_record(self, shift_ns: u64) -> (RequestRecord, Option<usize>) {
        let at = |ns: u64| if ns == 0 { 0 } else { ns + shift_ns };
        let mut t = self.sent_ns;
        let chunk_ns = self
            .chunk_gaps_ns
            .iter()
            .map(|g| {
                t += g;
                at(t)
            })
            .collect();
        let r = RequestRecord {
            index: self.index,
            rid: self.rid,
            turn: self.turn,
            scheduled_ns: at(self.scheduled_ns),
            released_ns: at(self.released_ns),
            sent_ns: at(self.sent_ns),
            first_byte_ns: at(self.first_byte_ns),
            first_token_ns: at(self.first_token_ns),
            chunk_ns,
            chunk_tokens: self.chunk_tokens,
            last_ns: at(self.last_ns),
            prompt_len: self.prompt_len,
            server_prompt_len: self.server_prompt_len,
            output_len: self.output_len,
            output_len_source: self.output_len_source,
            requested_output_len: self.requested_output_len,
            generated_text: if self.invalid_utf8 {
                "\u{FFFD}".to_owned()
            } else {
                String::new()
            },
            spec_accept_length: self.spec_accept_length,
            cached_tokens: self.cached_tokens,
            error: self.error,
            ..Default::default()
        };
        (r, self.retokenized_len)
    }
}

/// Write a records file atomically: header, one line per record (whose `index` must already
/// be its index in the whole run's plan), footer.
pub fn write(
    path: &Path,
    header: &RecordsHeader,
    records: &[RequestRecord],
    retokenized: Option<&[usize]>,
    footer: &RecordsFooter,
) -> Result<(), RecordsFileError> {
    inferperf_protocol::fs::write_atomic_with(path, |file| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        serde_json::to_writer(&mut w, header)?;
        w.write_all(b"\n")?;
        for (k, r) in records.iter().enumerate() {
            let saved = SavedRecord::of(r, r.index, retokenized.and_then(|t| t.get(k).copied()));
            serde_json::to_writer(&mut w, &saved)?;
            w.write_all(b"\n")?;
        }
        serde_json::to_writer(
            &mut w,
            &FooterLine {
                footer: footer.clone(),
            },
        )?;
        w.write_all(b"\n")?;
        w.flush()
    })
    .map_err(|e| RecordsFileError::Write {
        path: e.path,
        source: e.source,
    })
}

/// A records file being read: its header, then its records one at a time, then its footer.
pub struct RecordsReader {
    path: PathBuf,
    lines: io::Lines<BufReader<File>>,
    line_no: usize,
    pub header: RecordsHeader,
    footer: Option<RecordsFooter>,
}

impl RecordsReader {
    /// Open `path` and read its header (checking format and version).
    pub fn open(path: &Path) -> Result<Self, RecordsFileError> {
        let read_err = |source| RecordsFileError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        let mut lines = BufReader::with_capacity(1 << 20, file).lines();
        let not_records = |why: String| RecordsFileError::NotRecords {
            path: path.to_path_buf(),
            why,
        };
        let first = match lines.next() {
            None => return Err(not_records("the file is empty".into())),
            Some(l) => l.map_err(read_err)?,
        };
        let v: serde_json::Value = serde_json::from_str(&first)
            .map_err(|e| not_records(format!("the first line is not JSON: {e}")))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(not_records(format!(
                "the first line has no \"format\": \"{FORMAT}\""
            )));
        }
        let found = v.get("version").and_then(|x| x.as_u64()).unwrap_or(0) as u32;
        if found != VERSION {
            return Err(RecordsFileError::Version {
                path: path.to_path_buf(),
                found,
            });
        }
        let header: RecordsHeader =
            serde_json::from_value(v).map_err(|e| RecordsFileError::Line {
                path: path.to_path_buf(),
                line: 1,
                why: format!("bad header: {e}"),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            lines,
            line_no: 1,
            header,
            footer: None,
        })
    }

    /// The next record, `None` after the footer. A file that ends without a footer is an
    /// error ([`RecordsFileError::Truncated`]).
    pub fn next_record(&mut self) -> Result<Option<SavedRecord>, RecordsFileError> {
        if self.footer.is_some() {
            return Ok(None);
        }
        let Some(line) = self.lines.next() else {
            return Err(RecordsFileError::Truncated {
                path: self.path.clone(),
            });
        };
        self.line_no += 1;
        let line = line.map_err(|source| RecordsFileError::Read {
            path: self.path.clone(),
            source,
        })?;
        let bad = |e: serde_json::Error| RecordsFileError::Line {
            path: self.path.clone(),
            line: self.line_no,
            why: e.to_string(),
        };
        if line.starts_with("{\"footer\"") {
            let f: FooterLine = serde_json::from_str(&line).map_err(bad)?;
            self.footer = Some(f.footer);
            return Ok(None);
        }
        serde_json::from_str(&line).map(Some).map_err(bad)
    }

    /// The footer, once [`RecordsReader::next_record`] returned `None`.
    pub fn footer(&self) -> Option<&RecordsFooter> {
        self.footer.as_ref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ErrorKind;

    fn header() -> RecordsHeader {
        RecordsHeader {
            format: FORMAT.into(),
            version: VERSION,
            tool_version: "test".into(),
            shard: ShardIdentity {
                run_id: "r".into(),
                shard_index: 1,
                num_shards: 2,
                planned_requests: 4,
                shard_requests: 2,
            },
            seed: 1,
            argv: vec!["inferperf".into()],
            clock: ClockAnchors::default(),
            settings: RunSettings::default(),
        }
    }

    #[test]
    fn records_round_trip_with_plan_indexes_and_a_shift() {
        let ok = RequestRecord {
            index: 1,
            rid: "x-1".into(),
            scheduled_ns: 5,
            released_ns: 6,
            sent_ns: 10,
            first_byte_ns: 20,
            first_token_ns: 30,
            chunk_ns: vec![30, 45, 70],
            last_ns: 71,
            prompt_len: 7,
            output_len: 3,
            requested_output_len: 3,
            output_len_source: TokenCountSource::Server,
            generated_text: "a\u{FFFD}".into(),
            ..Default::default()
        };
        let failed = RequestRecord {
            index: 3,
            sent_ns: 12,
            error: Some(RequestError {
                kind: ErrorKind::HttpStatus,
                message: "503".into(),
            }),
            ..Default::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.records.jsonl");
        let footer = RecordsFooter {
            records: 2,
            duration_s: 1.5,
            ..Default::default()
        };
        write(
            &path,
            &header(),
            &[ok.clone(), failed.clone()],
            Some(&[3, 0]),
            &footer,
        )
        .expect("write");
        let mut rd = RecordsReader::open(&path).expect("open");
        assert_eq!(rd.header, header());
        let a = rd.next_record().expect("read").expect("first");
        let b = rd.next_record().expect("read").expect("second");
        assert!(rd.next_record().expect("footer").is_none());
        assert_eq!(rd.footer().map(|f| f.records), Some(2));
        assert_eq!(
            (a.index, b.index),
            (1, 3),
            "indexes of the whole plan, as given"
        );
        let (back, retok) = a.into_record(1000);
        assert_eq!(retok, Some(3));
        assert_eq!(back.chunk_ns, vec![1030, 1045, 1070]);
        assert_eq!((back.sent_ns, back.last_ns), (1010, 1071));
        assert_eq!(back.first_byte_ns, 1020);
        assert!(back.generated_text.contains('\u{FFFD}'));
        let (back, _) = b.into_record(1000);
        assert_eq!(back.first_token_ns, 0, "events that did not happen stay 0");
        assert_eq!(back.error, failed.error);
    }

    #[test]
    fn a_file_without_footer_is_truncated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cut.records.jsonl");
        let mut text = serde_json::to_string(&header()).expect("json");
        text.push('\n');
        std::fs::write(&path, text).expect("write");
        let mut rd = RecordsReader::open(&path).expect("open");
        let err = rd.next_record().expect_err("no footer");
        assert!(matches!(err, RecordsFileError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("cut.records.jsonl"));
    }

    #[test]
    fn other_files_and_versions_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("result.jsonl");
        std::fs::write(&path, "{\"backend\":\"sglang\"}\n").expect("write");
        let err = RecordsReader::open(&path).err().expect("refused");
        assert!(err.to_string().contains("result.jsonl") && err.to_string().contains("format"));
        let mut h = serde_json::to_value(header()).expect("json");
        h["version"] = 99.into();
        std::fs::write(&path, format!("{h}\n")).expect("write");
        let err = RecordsReader::open(&path).err().expect("refused");
        assert!(
            matches!(err, RecordsFileError::Version { found: 99, .. }),
            "{err}"
        );
    }
}
