//! The measured run: a pacer thread releases requests on the fixed schedule; with
//! `--max-concurrency C`, C workers take them in order (time spent waiting for a worker is the
//! client queue time); without it, each released request gets its own task. Records go to a
//! collector; Ctrl-C, a dead server or the end of the plan all finish with every record that
//! exists, none lost.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderMap;
use tokio::sync::{mpsc, watch, Mutex};

use crate::backend::Protocol;
use crate::client::{execute, poll_job, Outgoing, Pool};
use crate::clock::Clock;
use crate::conversation::Conversation;
use crate::record::{ErrorKind, RequestError, RequestRecord};

/// One request of the plan, ready to send.
#[derive(Clone, Debug)]
pub struct PlannedRequest {
    /// Pre-serialized JSON body.
    pub body: Bytes,
    pub prompt_len: usize,
    pub output_len: usize,
    /// Per-request headers (routing key).
    pub headers: Option<HeaderMap>,
    /// The request id, sent as `X-Request-Id` (later rounds of a conversation add `-tN`);
    /// SGLang-family bodies carry it as `rid` already.
    pub rid: Option<String>,
    /// Multi-turn rows: the rounds to replay (`body` is then the first round's body).
    pub conversation: Option<Arc<Conversation>>,
}

/// Everything the run needs.
pub struct RunSpec {
    pub requests: Arc<Vec<PlannedRequest>>,
    /// Release offsets (ns from the run start), one per request, non-decreasing.
    pub offsets: Vec<u64>,
    pub max_concurrency: Option<usize>,
    pub path: String,
    pub protocol: Protocol,
    pub stream: bool,
    pub timeout: Option<Duration>,
    /// Fail a request as stalled after this long without a byte (`None`: never).
    pub stall_timeout: Option<Duration>,
    /// Abort the run after this many consecutive connection failures (server gone).
    pub max_consecutive_connect_failures: usize,
    pub warmup: bool,
    /// Log each request's start and end on stdout (`--print-requests`).
    pub print_requests: bool,
    /// Registry the pacer thread joins, so its CPU is charged to the client.
    pub cpu: crate::cpu::ThreadCpu,
    /// Method, content type and response reading, when they are not an LLM generation's.
    pub exchange: Exchange,
}

/// How a benchmark other than an LLM generation talks to its server: the method and
/// Content-Type of its bodies, how a response is read, and whether a submit starts a job to
/// poll. The default is an LLM generation: a JSON POST read by `protocol`.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: hyper::Method,
    /// `None`: `application/json`.
    pub content_type: Option<hyper::header::HeaderValue>,
    pub reading: crate::sse::ResponseReading,
    pub poll: Option<crate::client::JobPoll>,
}

impl Default for Exchange {
    fn default() -> Self {
        Self {
            method: hyper::Method::POST,
            content_type: None,
            reading: crate::sse::ResponseReading::Generation,
            poll: None,
        }
    }
}

/// Live counters for the progress display.
#[derive(Default)]
pub struct LiveCounters {
    pub completed: AtomicUsize,
    pub failed: AtomicUsize,
    pub output_tokens: AtomicU64,
}

/// What a run produced.
pub struct RunResult {
    /// One record per request that was released, sorted by plan index.
    pub records: Vec<RequestRecord>,
    /// Requests never sent (the run was stopped before they were released or written).
    pub not_started: usize,
    /// Run start to the last record.
    pub duration_s: f64,
    /// Why the run stopped early, if it did.
    pub abort_reason: Option<String>,
    /// Runtime scheduling lag samples (ns): how late a 1 ms timer fired.
    pub runtime_lag_ns: Vec<u64>,
}

/// Stops a run from outside (Ctrl-C handler, server death detection).
#[derive(Clone)]
pub struct Abort {
    tx: Arc<watch::Sender<Option<String>>>,
}

impl Default for Abort {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::channel(None).0),
        }
    }
}

impl Abort {
    /// Stop the run with a reason (the first reason wins).
    pub fn trigger(&self, reason: &str) {
        self.tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason.to_owned());
                true
            } else {
                false
            }
        });
    }

    pub fn reason(&self) -> Option<String> {
        self.tx.borrow().clone()
    }

    /// Resolves once the run is aborted.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|r| r.is_some()).await;
    }
}

struct Shared {
    pool: Arc<Pool>,
    spec: RunSpec,
    clock: Clock,
    /// The schedule's origin, set by the pacer thread when it starts (so thread start-up is
    /// not counted as pacing lag).
    t0: AtomicU64,
    released: Vec<AtomicU64>,
    counters: Arc<LiveCounters>,
    abort: Abort,
    connect_failures: AtomicUsize,
    records: mpsc::UnboundedSender<RequestRecord>,
}

/// Run the plan to completion (or abort) and return every record.
pub async fn run(
    pool: Arc<Pool>,
    spec: RunSpec,
    clock: Clock,
    counters: Arc<LiveCounters>,
    external: Abort,
) -> RunResult {
    // A run-local stop signal, raised by the caller's abort (Ctrl-C), by server death
    // detection, or at the end of the run (to stop the probes); the caller's stays untouched.
    let abort = Abort::default();
    let link = {
        let (external, abort) = (external.clone(), abort.clone());
        tokio::spawn(async move {
            external.wait().await;
            abort.trigger(&external.reason().unwrap_or_default());
        })
    };
    let n = spec.requests.len();
    let (rec_tx, mut rec_rx) = mpsc::unbounded_channel();
    let start_ns = clock.now_ns();
    let max_conc = spec.max_concurrency;
    let shared = Arc::new(Shared {
        pool,
        spec,
        clock,
        t0: AtomicU64::new(start_ns),
        released: (0..n).map(|_| AtomicU64::new(0)).collect(),
        counters,
        abort: abort.clone(),
        connect_failures: AtomicUsize::new(0),
        records: rec_tx,
    });

    let (idx_tx, idx_rx) = mpsc::unbounded_channel::<usize>();
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = {
        let shared = shared.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("inferperf-pacer".into())
            .spawn(move || {
                shared.spec.cpu.register_current();
                let t0 = shared.clock.now_ns();
                shared.t0.store(t0, Ordering::Release);
                let offsets: Vec<u64> = shared.spec.offsets.iter().map(|o| t0 + o).collect();
                let n = crate::pacer::run(&offsets, &shared.clock, &stop, |i, now| {
                    shared.released[i].store(now, Ordering::Relaxed);
                    let _ = idx_tx.send(i);
                });
                shared.spec.cpu.finish_current();
                n
            })
    };
    let pacer = match pacer {
        Ok(p) => Some(p),
        Err(e) => {
            abort.trigger(&format!("cannot start the pacer thread: {e}"));
            None
        }
    };
    let lag_probe = tokio::spawn(runtime_lag_probe(abort.clone()));

    let stopper = {
        let abort = abort.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            abort.wait().await;
            stop.store(true, Ordering::Relaxed);
        })
    };

    let idx_rx = Arc::new(Mutex::new(idx_rx));
    let mut workers = tokio::task::JoinSet::new();
    match max_conc {
        Some(c) => {
            for _ in 0..c.max(1) {
                let (shared, rx) = (shared.clone(), idx_rx.clone());
                workers.spawn(async move {
                    loop {
                        let next = { rx.lock().await.recv().await };
                        match next {
                            Some(i) => one(&shared, i).await,
                            None => break,
                        }
                    }
                });
            }
        }
        None => {
            let shared = shared.clone();
            workers.spawn(async move {
                let mut tasks = tokio::task::JoinSet::new();
                loop {
                    let next = { idx_rx.lock().await.recv().await };
                    match next {
                        Some(i) => {
                            let shared = shared.clone();
                            tasks.spawn(async move { one(&shared, i).await });
                        }
                        None => break,
                    }
                    while tasks.try_join_next().is_some() {}
                }
                while tasks.join_next().await.is_some() {}
            });
        }
    }
    while workers.join_next().await.is_some() {}
    let released_count = match pacer {
        Some(p) => p.join().unwrap_or(0),
        None => 0,
    };
    let end = shared.clock.now_ns();
    stopper.abort();
    link.abort();
    abort.trigger("");
    let runtime_lag_ns = lag_probe.await.unwrap_or_default();
    drop(shared);
    let mut records = Vec::with_capacity(released_count);
    while let Some(r) = rec_rx.recv().await {
        // Released but stopped before anything was written: not a failure, just never started.
        let unsent = r.sent_ns == 0
            && r.error
                .as_ref()
                .is_some_and(|e| e.kind == ErrorKind::Cancelled);
        if !unsent {
            records.push(r);
        }
    }
    records.sort_by_key(|r| (r.index, r.turn));
    let started = {
        let mut idx: Vec<usize> = records.iter().map(|r| r.index).collect();
        idx.dedup();
        idx.len()
    };
    let reason = abort.reason().filter(|r| !r.is_empty());
    let t0 = records
        .iter()
        .map(|r| r.scheduled_ns)
        .min()
        .unwrap_or(start_ns);
    let last = records
        .iter()
        .map(|r| r.last_ns)
        .max()
        .unwrap_or(end)
        .max(t0);
    RunResult {
        not_started: n - started,
        duration_s: (last - t0) as f64 * 1e-9,
        abort_reason: reason,
        records,
        runtime_lag_ns,
    }
}

/// Send request `i` (every round of it, for a conversation) and deliver its records.
async fn one(sh: &Shared, i: usize) {
    let req = &sh.spec.requests[i];
    let rec = RequestRecord {
        index: i,
        rid: req.rid.clone().unwrap_or_default(),
        scheduled_ns: sh.t0.load(Ordering::Acquire) + sh.spec.offsets[i],
        released_ns: sh.released[i].load(Ordering::Relaxed),
        prompt_len: req.prompt_len,
        requested_output_len: req.output_len,
        output_len: req.output_len,
        warmup: sh.spec.warmup,
        ..Default::default()
    };
    match &req.conversation {
        None => {
            let rec = send(sh, rec, req.body.clone(), req.headers.as_ref()).await;
            deliver(sh, rec);
        }
        Some(conv) => {
            let mut history: Vec<serde_json::Value> = Vec::new();
            let mut rec = rec;
            for (turn, added) in conv.turns.iter().enumerate() {
                if turn > 0 {
                    // A later round starts when the previous reply is complete: no queueing.
                    let now = sh.clock.now_ns();
                    rec = RequestRecord {
                        index: i,
                        rid: req
                            .rid
                            .as_ref()
                            .map(|r| format!("{r}-t{turn}"))
                            .unwrap_or_default(),
                        turn,
                        scheduled_ns: now,
                        released_ns: now,
                        requested_output_len: req.output_len,
                        output_len: req.output_len,
                        warmup: sh.spec.warmup,
                        ..Default::default()
                    };
                }
                history.extend(added.iter().cloned());
                let body = Bytes::from(
                    conv.body(&history, Some(rec.rid.as_str()).filter(|r| !r.is_empty())),
                );
                let mut done = send(sh, rec.clone(), body, req.headers.as_ref()).await;
                if turn > 0 || done.server_prompt_len.is_some() {
                    done.prompt_len = done.server_prompt_len.unwrap_or(0);
                }
                let ok = done.error.is_none();
                history
                    .push(serde_json::json!({"role": "assistant", "content": done.generated_text}));
                deliver(sh, done);
                if !ok {
                    break;
                }
            }
        }
    }
}

/// Send one body and fill the record (timeouts and aborts included).
async fn send(
    sh: &Shared,
    mut rec: RequestRecord,
    body: Bytes,
    headers: Option<&HeaderMap>,
) -> RequestRecord {
    let logged = sh
        .spec
        .print_requests
        .then(|| crate::request_log::start(&rec, &body));
    let cancelled = if sh.abort.reason().is_some() {
        true
    } else {
        let ex = &sh.spec.exchange;
        let rid = rec.rid.clone();
        let out = Outgoing {
            method: ex.method.clone(),
            path: &sh.spec.path,
            body,
            content_type: ex.content_type.as_ref(),
            extra_headers: headers,
            request_id: Some(rid.as_str()).filter(|r| !r.is_empty()),
            protocol: sh.spec.protocol,
            stream: sh.spec.stream,
            reading: ex.reading,
            stall_timeout: sh.spec.stall_timeout,
        };
        let rec = &mut rec;
        let fut = async {
            execute(&sh.pool, out, &sh.clock, rec).await;
            if let Some(poll) = &ex.poll {
                poll_job(&sh.pool, poll, sh.spec.stall_timeout, &sh.clock, rec).await;
            }
        };
        let timed = async {
            match sh.spec.timeout {
                Some(t) => tokio::time::timeout(t, fut).await.is_err(),
                None => {
                    fut.await;
                    false
                }
            }
        };
        tokio::select! {
            timed_out = timed => {
                if timed_out {
                    rec.error = Some(RequestError {
                        kind: ErrorKind::Timeout,
                        message: format!("no complete response within {:?}", sh.spec.timeout.unwrap_or_default()),
                    });
                    rec.last_ns = sh.clock.now_ns();
                }
                false
            }
            _ = sh.abort.wait() => true,
        }
    };
    if cancelled {
        rec.error = Some(RequestError {
            kind: ErrorKind::Cancelled,
            message: sh.abort.reason().unwrap_or_default(),
        });
        rec.last_ns = sh.clock.now_ns();
    }
    if let Some(started) = logged {
        crate::request_log::end(started, &rec);
    }
    rec
}

/// Count a finished record (live counters, server-death detection) and hand it to the collector.
fn deliver(sh: &Shared, rec: RequestRecord) {
    match &rec.error {
        None => {
            sh.connect_failures.store(0, Ordering::Relaxed);
            sh.counters.completed.fetch_add(1, Ordering::Relaxed);
            sh.counters
                .output_tokens
                .fetch_add(rec.output_len as u64, Ordering::Relaxed);
        }
        Some(e) => {
            sh.counters.failed.fetch_add(1, Ordering::Relaxed);
            if e.kind == ErrorKind::Connect {
                let k = sh.connect_failures.fetch_add(1, Ordering::Relaxed) + 1;
                if k >= sh.spec.max_consecutive_connect_failures {
                    sh.abort.trigger(&format!(
                        "server unreachable: {k} consecutive connection failures ({})",
                        e.message
                    ));
                }
            }
        }
    }
    let _ = sh.records.send(rec);
}

/// Measure how late a 1 ms sleep wakes up on the client runtime, every 10 ms, until abort.
async fn runtime_lag_probe(abort: Abort) -> Vec<u64> {
    let mut lags = Vec::new();
    loop {
        let t = std::time::Instant::now();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            _ = abort.wait() => break,
        }
        lags.push((t.elapsed().as_nanos() as u64).saturating_sub(1_000_000));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(9)) => {}
            _ = abort.wait() => break,
        }
    }
    lags
}
