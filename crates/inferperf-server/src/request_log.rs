//! `--log-requests FILE`: one JSON line per finished (or aborted) request with its server-side
//! lifecycle: when it arrived, was tokenized, enqueued, got its first token, every chunk and
//! every engine step it took part in, and when it finished.
//!
//! [`RequestLog::hooks`] wraps the engine's step hooks (usually the profiler's) in
//! [`LoggingHooks`], which asks the engine for request events and assembles one [`Record`] per
//! request on the engine thread (monotonic [`Instant`]s, no formatting, no I/O). A finished
//! record goes over a channel to the writer thread, which maps the instants to wall-clock time
//! through the process's one anchor ([`WallClock`]), serializes and appends whole lines (one
//! `write` per batch of complete lines, so a crash never leaves half a line behind). The
//! writer drains the channel and syncs the file when the engine stops (on shutdown, SIGTERM
//! included: the server stops the engine, which drops the hooks and with them the sender).
//!
//! Key names follow SGLang's request time stats where it has one (`created_time`,
//! `tokenize_finish_time`, `wait_queue_entry_time`, `forward_entry_time`, `first_token_time`,
//! `finished_time`, `queue_time`, `e2e_latency`); see docs/trace-conventions.md.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use inferperf_engine::api::FinishReason;
use inferperf_engine::hooks::{
    BatchSummary, ForwardMode, ModuleTiming, RequestEvent, RequestStage, StepHooks, StepOutcome,
    WallClock,
};
use serde_json::{json, Value};

use crate::error::ServerError;

/// One engine step a request took part in.
#[derive(Clone, Debug)]
struct StepRecord {
    forward_ct: u64,
    mode: ForwardMode,
    /// This request's own tokens in the step (its chunk in EXTEND, 1 in DECODE).
    extend_tokens: usize,
    batch_size: usize,
    start: Instant,
    end: Instant,
}

/// The lifecycle of one request, as far as it got.
#[derive(Clone, Debug)]
struct Record {
    rid: String,
    arrival: Instant,
    tokenized: Instant,
    prompt_tokens: usize,
    enqueued: Option<(Instant, usize)>,
    steps: Vec<StepRecord>,
    first_token: Option<Instant>,
    chunks: Vec<Instant>,
}

/// A finished record on its way to the writer.
struct Finished {
    record: Record,
    finish: Instant,
    reason: FinishReason,
    completion_tokens: usize,
    cached_tokens: usize,
}

/// The open request log: its writer thread and the sending side the hooks clone.
pub struct RequestLog {
    path: PathBuf,
    tx: mpsc::Sender<Finished>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RequestLog {
    /// Open `path` for appending (created if missing) and start the writer thread. A missing
    /// directory or an unwritable file is an error naming the file.
    pub fn open(path: &Path) -> Result<Self, ServerError> {
        let err = |error: std::io::Error| ServerError::RequestLog {
            path: path.to_path_buf(),
            error,
        };
        if path.is_dir() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory, not a file",
            )));
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let (tx, rx) = mpsc::channel::<Finished>();
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("inferperf-request-log".into())
            .spawn(move || write_lines(file, rx, &shown))
            .map_err(err)?;
        let clock = WallClock::global();
        tracing::info!(
            path = %path.display(),
            anchor_unix_ns = clock.anchor_unix_ns as u64,
            "logging finished requests (monotonic times mapped to the wall clock through one anchor)"
        );
        Ok(Self {
            path: path.to_path_buf(),
            tx,
            thread,
        })
    }

    /// `inner` (e.g. the profiler's hooks) plus request logging.
    pub fn hooks(&self, inner: Box<dyn StepHooks>) -> Box<dyn StepHooks> {
        Box::new(LoggingHooks {
            inner_wants_requests: inner.wants_request_events(),
            inner,
            tx: self.tx.clone(),
            live: HashMap::new(),
            step: None,
        })
    }

    /// Drop this side of the channel and wait until the writer has written every record of
    /// hooks already dropped (call after the engine thread ended).
    pub fn finish(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::warn!("the request log writer panicked");
        }
    }
}

/// The writer thread: append whole lines until every sender is gone, then sync.
fn write_lines(mut file: File, rx: mpsc::Receiver<Finished>, path: &str) {
    let clock = WallClock::global();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut failed = false;
    while let Ok(first) = rx.recv() {
        buf.clear();
        push_line(&mut buf, &first, clock);
        // Everything already queued goes out in the same write.
        while let Ok(more) = rx.try_recv() {
            push_line(&mut buf, &more, clock);
        }
        if let Err(e) = file.write_all(&buf) {
            if !failed {
                tracing::error!(path, error = %e, "cannot write the request log");
                failed = true;
            }
        }
    }
    if let Err(e) = file.sync_data() {
        tracing::warn!(path, error = %e, "cannot sync the request log");
    }
}

/// One complete JSON line (with its newline) for `f`.
fn push_line(buf: &mut Vec<u8>, f: &Finished, clock: &WallClock) {
    match serde_json::to_vec(&line(f, clock)) {
        Ok(bytes) => {
            buf.extend_from_slice(&bytes);
            buf.push(b'\n');
        }
        Err(e) => {
            tracing::error!(rid = %f.record.rid, error = %e, "cannot serialize a request log line")
        }
    }
}

/// The JSON object of one finished request.
fn line(f: &Finished, clock: &WallClock) -> Value {
    let r = &f.record;
    let wall = |t: Instant| clock.unix_secs(t);
    let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
    let forward_entry = r.steps.first().map(|s| s.start);
    let status = if matches!(f.reason, FinishReason::Abort { .. }) {
        "aborted"
    } else {
        "finished"
    };
    let steps: Vec<Value> = r
        .steps
        .iter()
        .map(|s| {
            json!({
                "forward_ct": s.forward_ct,
                "forward_mode": s.mode.name(),
                "extend_tokens": s.extend_tokens,
                "batch_size": s.batch_size,
                "start_time": wall(s.start),
                "end_time": wall(s.end),
            })
        })
        .collect();
    json!({
        "rid": r.rid,
        "status": status,
        "finish_reason": f.reason,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": f.completion_tokens,
        "cached_tokens": f.cached_tokens,
        "queue_pos": r.enqueued.map(|(_, pos)| pos),
        "created_time": wall(r.arrival),
        "tokenize_finish_time": wall(r.tokenized),
        "wait_queue_entry_time": r.enqueued.map(|(t, _)| wall(t)),
        "forward_entry_time": forward_entry.map(wall),
        "first_token_time": r.first_token.map(wall),
        "finished_time": wall(f.finish),
        "queue_time": match (r.enqueued, forward_entry) {
            (Some((q, _)), Some(s)) => Some(secs(q, s)),
            _ => None,
        },
        "prefill_time": match (forward_entry, r.first_token) {
            (Some(s), Some(t)) => Some(secs(s, t)),
            _ => None,
        },
        "decode_time": r.first_token.map(|t| secs(t, f.finish)),
        "e2e_latency": secs(r.arrival, f.finish),
        "steps": steps,
        "chunk_times": r.chunks.iter().map(|&t| wall(t)).collect::<Vec<_>>(),
    })
}

/// The current step's batch, between `on_step_begin` and `on_forward`.
struct PendingStep {
    forward_ct: u64,
    mode: ForwardMode,
    batch_size: usize,
    rids: Vec<String>,
    extend_lens: Vec<usize>,
}

/// Step hooks that log requests and pass everything on to `inner`.
pub struct LoggingHooks {
    inner: Box<dyn StepHooks>,
    inner_wants_requests: bool,
    tx: mpsc::Sender<Finished>,
    live: HashMap<String, Record>,
    step: Option<PendingStep>,
}

impl StepHooks for LoggingHooks {
    fn on_step_begin(&mut self, batch: &BatchSummary) -> bool {
        self.step = Some(PendingStep {
            forward_ct: batch.forward_ct,
            mode: batch.mode,
            batch_size: batch.batch_size,
            rids: batch.rids.clone(),
            extend_lens: batch.extend_lens.clone(),
        });
        self.inner.on_step_begin(batch)
    }

    fn on_module(&mut self, timing: ModuleTiming) {
        self.inner.on_module(timing);
    }

    fn on_forward(&mut self, start: Instant, end: Instant) {
        self.inner.on_forward(start, end);
        // Recorded here, before result processing: a request that finishes in this step
        // already has the step in its list.
        if let Some(step) = self.step.take() {
            for (rid, &extend_tokens) in step.rids.iter().zip(&step.extend_lens) {
                if let Some(r) = self.live.get_mut(rid) {
                    r.steps.push(StepRecord {
                        forward_ct: step.forward_ct,
                        mode: step.mode,
                        extend_tokens,
                        batch_size: step.batch_size,
                        start,
                        end,
                    });
                }
            }
        }
    }

    fn on_step_end(&mut self, outcome: &StepOutcome) {
        self.inner.on_step_end(outcome);
    }

    fn on_control(&mut self) {
        self.inner.on_control();
    }

    fn wants_request_events(&self) -> bool {
        true
    }

    fn on_request(&mut self, ev: &RequestEvent<'_>) {
        if self.inner_wants_requests {
            self.inner.on_request(ev);
        }
        match ev.stage {
            RequestStage::Received {
                arrival,
                tokenized,
                prompt_tokens,
            } => {
                self.live.insert(
                    ev.rid.to_string(),
                    Record {
                        rid: ev.rid.to_string(),
                        arrival,
                        tokenized,
                        prompt_tokens,
                        enqueued: None,
                        steps: Vec::new(),
                        first_token: None,
                        chunks: Vec::new(),
                    },
                );
            }
            RequestStage::Enqueued { queue_pos } => {
                if let Some(r) = self.live.get_mut(ev.rid) {
                    // A retracted request is enqueued again; its first enqueue counts.
                    r.enqueued.get_or_insert((ev.at, queue_pos));
                }
            }
            RequestStage::FirstToken => {
                if let Some(r) = self.live.get_mut(ev.rid) {
                    r.first_token.get_or_insert(ev.at);
                }
            }
            RequestStage::Chunk { .. } => {
                if let Some(r) = self.live.get_mut(ev.rid) {
                    r.chunks.push(ev.at);
                }
            }
            RequestStage::Finished {
                reason,
                completion_tokens,
                cached_tokens,
                ..
            } => {
                if let Some(record) = self.live.remove(ev.rid) {
                    // A gone writer (it failed to start) only loses log lines.
                    let _ = self.tx.send(Finished {
                        record,
                        finish: ev.at,
                        reason: reason.clone(),
                        completion_tokens,
                        cached_tokens,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn line_has_ordered_times_and_durations() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let f = Finished {
            record: Record {
                rid: "r1".into(),
                arrival: t0,
                tokenized: ms(1),
                prompt_tokens: 10,
                enqueued: Some((ms(2), 0)),
                steps: vec![StepRecord {
                    forward_ct: 7,
                    mode: ForwardMode::Extend,
                    extend_tokens: 10,
                    batch_size: 1,
                    start: ms(5),
                    end: ms(9),
                }],
                first_token: Some(ms(9)),
                chunks: vec![ms(9)],
            },
            finish: ms(20),
            reason: FinishReason::Length { length: 3 },
            completion_tokens: 3,
            cached_tokens: 0,
        };
        let v = line(&f, WallClock::global());
        assert_eq!(v["rid"], "r1");
        assert_eq!(v["status"], "finished");
        assert_eq!(v["finish_reason"]["type"], "length");
        assert_eq!(v["steps"][0]["forward_mode"], "EXTEND");
        assert!((v["queue_time"].as_f64().unwrap() - 0.003).abs() < 1e-9);
        assert!((v["e2e_latency"].as_f64().unwrap() - 0.020).abs() < 1e-9);
        let created = v["created_time"].as_f64().unwrap();
        let finished = v["finished_time"].as_f64().unwrap();
        assert!((finished - created - 0.020).abs() < 1e-6);
    }

    #[test]
    fn open_names_the_file_when_its_directory_is_missing() {
        let dir = std::env::temp_dir().join(format!("inferperf-missing-{}", std::process::id()));
        let path = dir.join("sub").join("requests.jsonl");
        let err = RequestLog::open(&path).unwrap_err();
        assert!(err.to_string().contains("requests.jsonl"), "{err}");
    }
}
