//! Reads a client request trace (`bench serving --request-trace`, format in
//! docs/trace-conventions.md "Client request traces") back into per-request times on the
//! client's Unix clock, streaming (a 100k-request trace is mostly chunk instants).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::event::EventParser;
use crate::reader::TraceReader;
use crate::TraceError;

/// What the client saw of one request, in Unix ns of the client's clock (0: did not happen).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientRequest {
    pub rid: String,
    pub ok: bool,
    pub scheduled: i64,
    pub sent: i64,
    pub headers: i64,
    pub first_token: i64,
    pub last: i64,
    /// Arrival of every content chunk.
    pub chunks: Vec<i64>,
}

impl ClientRequest {
    /// Time to first token from send (SGLang's TTFT), ns.
    pub fn ttft(&self) -> Option<i64> {
        (self.first_token > 0 && self.sent > 0).then(|| self.first_token - self.sent)
    }

    /// Send to last chunk, ns.
    pub fn e2e(&self) -> Option<i64> {
        (self.last > 0 && self.sent > 0).then(|| self.last - self.sent)
    }

    /// The largest gap between consecutive chunks: (gap, chunk before, chunk after).
    pub fn max_chunk_gap(&self) -> Option<(i64, i64, i64)> {
        self.chunks
            .windows(2)
            .map(|w| (w[1] - w[0], w[0], w[1]))
            .max_by_key(|g| g.0)
    }
}

/// The server's clock relative to the client's, as the client measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct MeasuredOffset {
    pub offset_ns: i64,
    pub uncertainty_ns: u64,
    #[serde(default)]
    pub drift_ns: i64,
    #[serde(default)]
    pub samples: usize,
}

/// A client request trace, read.
#[derive(Clone, Debug, Default)]
pub struct ClientTrace {
    pub run_tag: String,
    pub server_clock: Option<MeasuredOffset>,
    pub requests: Vec<ClientRequest>,
}

#[derive(Deserialize)]
struct Info {
    #[serde(default)]
    run_tag: String,
    clock: Option<serde_json::Value>,
    #[serde(default)]
    server_clock: Option<MeasuredOffset>,
}

/// What a client request trace says of itself: its run, the server clock offset the client
/// measured, and its Unix time base.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientHeader {
    pub run_tag: String,
    pub server_clock: Option<MeasuredOffset>,
    /// `baseTimeNanoseconds`: Unix ns that every `ts` counts from.
    pub base_ns: i64,
}

/// The top-level key that marks a client request trace (and holds its description).
pub const INFO_KEY: &str = "inferperfRequestTrace";

/// Read and check the header of the client trace `reader` reads from `path` (its top-level
/// keys before `traceEvents`, as our writer puts them). A file that is not a client request
/// trace, or has no wall-clock anchor or time base, is an error naming it.
pub fn read_header(reader: &TraceReader, path: &Path) -> Result<ClientHeader, TraceError> {
    let info: Info = match reader.meta(INFO_KEY) {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| TraceError::format(path, format!("{INFO_KEY} is not readable: {e}")))?,
        None => {
            return Err(TraceError::format(
                path,
                format!(
                    "not a client request trace (no {INFO_KEY} key, so no wall-clock anchor to \
                     put it on the server's timeline; write one with `bench serving \
                     --request-trace FILE`)"
                ),
            ))
        }
    };
    if info.clock.as_ref().is_none_or(|c| c.is_null()) {
        return Err(TraceError::format(
            path,
            format!(
                "the client trace has no wall-clock anchor ({INFO_KEY}.clock), so it cannot be \
                 placed on the server's timeline"
            ),
        ));
    }
    let base_ns: i64 = reader
        .meta("baseTimeNanoseconds")
        .and_then(|v| v.get().trim().parse().ok())
        .ok_or_else(|| TraceError::format(path, "no baseTimeNanoseconds (Unix time base)"))?;
    Ok(ClientHeader {
        run_tag: info.run_tag,
        server_clock: info.server_clock,
        base_ns,
    })
}

#[derive(Deserialize)]
struct RequestArgs {
    #[serde(default)]
    rid: String,
    #[serde(default)]
    status: String,
}

/// Read the client trace at `path`. A file that is not one (no `inferperfRequestTrace`, no
/// wall-clock anchor) is an error naming the file.
pub fn read(path: &Path) -> Result<ClientTrace, TraceError> {
    let mut reader = TraceReader::open(path)?;
    let header = read_header(&reader, path)?;
    let base = header.base_ns;
    let mut parser = EventParser::default();
    let mut requests: Vec<ClientRequest> = Vec::new();
    // Chunks come after their request's slice, on its lane: (pid, tid) -> current request.
    let mut current: HashMap<String, usize> = HashMap::new();
    let mut index = 0u64;
    while let Some(raw) = reader.next_event()? {
        index += 1;
        let e = parser
            .parse(raw)
            .map_err(|err| TraceError::format(path, format!("event {index}: {err}")))?;
        let cat = e.cat.as_deref().unwrap_or("");
        let (Some(ts), lane) = (e.ts, format!("{:?}/{:?}", e.pid, e.tid)) else {
            continue;
        };
        let at = base + ts.0;
        match (cat, e.name.as_ref()) {
            ("client_request", "request") => {
                let args: RequestArgs = e
                    .args
                    .map(|a| serde_json::from_str(a.get()))
                    .transpose()
                    .map_err(|err| TraceError::format(path, format!("event {index}: {err}")))?
                    .unwrap_or(RequestArgs {
                        rid: String::new(),
                        status: String::new(),
                    });
                if args.rid.is_empty() {
                    return Err(TraceError::format(
                        path,
                        format!("event {index}: a request slice without args.rid"),
                    ));
                }
                let end = at + e.dur.map_or(0, |d| d.0);
                current.insert(lane, requests.len());
                requests.push(ClientRequest {
                    rid: args.rid,
                    ok: args.status == "ok",
                    scheduled: at,
                    last: end,
                    ..Default::default()
                });
            }
            ("client_phase", name) => {
                let Some(&i) = current.get(&lane) else {
                    continue;
                };
                let end = at + e.dur.map_or(0, |d| d.0);
                let r = &mut requests[i];
                match name {
                    "queued" => r.sent = end,
                    "awaiting headers" => {
                        r.sent = at;
                        r.headers = end;
                    }
                    "awaiting first token" => {
                        r.headers = at;
                        r.first_token = end;
                    }
                    "streaming" => {
                        r.first_token = at;
                        r.last = end;
                    }
                    _ => {}
                }
            }
            ("client_chunk", _) => {
                if let Some(&i) = current.get(&lane) {
                    requests[i].chunks.push(at);
                }
            }
            _ => {}
        }
    }
    if requests.is_empty() {
        return Err(TraceError::Empty(format!(
            "{}: the client trace holds no requests",
            path.display()
        )));
    }
    Ok(ClientTrace {
        run_tag: header.run_tag,
        server_clock: header.server_clock,
        requests,
    })
}
