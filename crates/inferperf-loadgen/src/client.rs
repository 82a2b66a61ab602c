//! The HTTP/1.1 client: keep-alive connections with TCP_NODELAY in a small pool (sized by use,
//! i.e. by the concurrency), one pre-serialized body per request, and the streaming loop that
//! timestamps every network read and hands it to the SSE parser.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use tokio::net::TcpStream;

use crate::backend::Protocol;

/// The request-id header (vLLM's and our server's; SGLang bodies also carry `rid`).
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
use crate::clock::Clock;
use crate::error::BenchError;
use crate::record::{ErrorKind, RequestError, RequestRecord};
use crate::rx_stamp::{Arrival, RxStampedStream};
use crate::sse::{excerpt, ResponseReading, StreamParser};

/// Where requests go: a resolved address plus the headers every request carries.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` for the Host header.
    pub authority: String,
    /// Path prefix of the base URL (usually empty).
    pub base_path: String,
    /// Authorization and `--header` pairs.
    pub headers: HeaderMap,
}

impl Target {
    /// Parse an `http://host:port[/prefix]` base URL (plain HTTP only) and resolve it once.
    pub fn from_base_url(base_url: &str, headers: HeaderMap) -> Result<Self, BenchError> {
        let rest = base_url.strip_prefix("http://").ok_or_else(|| {
            BenchError::Config(format!("base URL {base_url:?} must start with http://"))
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
            .map_err(|e| BenchError::Config(format!("cannot resolve {authority:?}: {e}")))?
            .next()
            .ok_or_else(|| BenchError::Config(format!("{authority:?} resolves to nothing")))?;
        Ok(Self {
            addr,
            authority: authority.to_owned(),
            base_path: path.to_owned(),
            headers,
        })
    }

    /// Full path of a route under the base URL.
    pub fn path(&self, route: &str) -> String {
        format!("{}{}", self.base_path, route)
    }
}

/// Build the auth header SGLang sends: `Bearer $OPENAI_API_KEY`, else raw `$API_KEY`, plus
/// `Key=Value` pairs (split at the first `=`, empty keys or values dropped).
pub fn request_headers(pairs: &[String]) -> Result<HeaderMap, BenchError> {
    let mut h = HeaderMap::new();
    let auth = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(|k| format!("Bearer {k}"))
        .or_else(|| std::env::var("API_KEY").ok().filter(|k| !k.is_empty()));
    if let Some(a) = auth {
        let v = HeaderValue::from_str(&a)
            .map_err(|e| BenchError::Config(format!("API key is not a valid header value: {e}")))?;
        h.insert(hyper::header::AUTHORIZATION, v);
    }
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            continue;
        }
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| BenchError::Config(format!("--header {k:?}: {e}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|e| BenchError::Config(format!("--header {k:?} value: {e}")))?;
        h.append(name, value);
    }
    Ok(h)
}

type Sender = SendRequest<Full<Bytes>>;
type Connection = http1::Connection<RxStampedStream, Full<Bytes>>;

/// One keep-alive connection: the request handle and the connection state machine. Both are
/// driven by the task that sends the request (no connection task, no cross-task hand-off per
/// network read): the request future and the connection future are polled together.
pub struct Conn {
    sender: Sender,
    conn: Connection,
    /// Kernel receive time of the newest bytes on this connection.
    arrival: Arrival,
    /// Opened for this request (a failure on it is not a stale pooled connection).
    fresh: bool,
}

/// Idle keep-alive connections to one target.
pub struct Pool {
    target: Target,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Close every idle connection: after a run, so that its descriptors are free for the
    /// result files (a run that used the whole open-file limit must still write them).
    pub fn close_idle(&self) {
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
    }

    /// Open a new connection with TCP_NODELAY.
    pub async fn connect(&self) -> Result<Conn, RequestError> {
        let err = |kind, e: &dyn std::fmt::Display| RequestError {
            kind,
            message: format!("connect {}: {e}", self.target.addr),
        };
        let stream = TcpStream::connect(self.target.addr).await.map_err(|e| {
            if is_client_limit(&e) {
                err(
                    ErrorKind::ClientLimit,
                    &format_args!(
                        "{e} (this client's limit: raise `ulimit -n`, or spread the load over \
                         more --num-shards)"
                    ),
                )
            } else {
                err(ErrorKind::Connect, &e)
            }
        })?;
        stream
            .set_nodelay(true)
            .map_err(|e| err(ErrorKind::Connect, &e))?;
        let io = RxStampedStream::new(stream).map_err(|e| err(ErrorKind::Connect, &e))?;
        let arrival = io.arrival();
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(16 << 20)
            .handshake(io)
            .await
            .map_err(|e| err(ErrorKind::Connect, &e))?;
        Ok(Conn {
            sender,
            conn,
            arrival,
            fresh: true,
        })
    }

    async fn get(&self) -> Result<Conn, RequestError> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
            match idle {
                Some(c) if c.sender.is_closed() => continue,
                Some(c) => return Ok(c),
                None => return self.connect().await,
            }
        }
    }

    fn put(&self, mut c: Conn) {
        c.fresh = false;
        if !c.sender.is_closed() {
            if let Ok(mut v) = self.idle.lock() {
                v.push(c);
            }
        }
    }
}

/// What one request sends.
pub struct Outgoing<'a> {
    /// POST for generations and submits, GET for job polls.
    pub method: Method,
    pub path: &'a str,
    pub body: Bytes,
    /// The body's Content-Type; `None` means `application/json`.
    pub content_type: Option<&'a HeaderValue>,
    pub extra_headers: Option<&'a HeaderMap>,
    /// Sent as `X-Request-Id` (vLLM and our server take the request id from it).
    pub request_id: Option<&'a str>,
    pub protocol: Protocol,
    pub stream: bool,
    /// How the response is read (a generation of `protocol`, a JSON document, kept lines).
    pub reading: ResponseReading,
    /// No byte for this long (response headers or the next body frame): fail as stalled.
    pub stall_timeout: Option<Duration>,
}

/// The error of a request whose server went silent for `limit`.
fn stalled(limit: Duration, what: &str) -> RequestError {
    RequestError {
        kind: ErrorKind::Stalled,
        message: format!(
            "stalled: no byte from the server for {:.0} s {what} (--stall-timeout-sec)",
            limit.as_secs_f64()
        ),
    }
}

/// Detects a silent stream without touching the timer wheel per chunk: `touch` stores the
/// time of the latest bytes; `expired` sleeps until `latest + limit` and re-arms when bytes
/// came meanwhile.
struct StallWatch {
    limit: Option<Duration>,
    latest: tokio::time::Instant,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl StallWatch {
    fn new(limit: Option<Duration>) -> Self {
        let latest = tokio::time::Instant::now();
        Self {
            limit,
            latest,
            sleep: limit.map(|d| Box::pin(tokio::time::sleep_until(latest + d))),
        }
    }

    fn touch(&mut self) {
        if self.limit.is_some() {
            self.latest = tokio::time::Instant::now();
        }
    }

    /// Resolves when no bytes came for the whole limit; never, without a limit.
    async fn expired(&mut self) -> RequestError {
        let (Some(limit), Some(sleep)) = (self.limit, self.sleep.as_mut()) else {
            return std::future::pending().await;
        };
        loop {
            sleep.as_mut().await;
            let due = self.latest + limit;
            if tokio::time::Instant::now() >= due {
                return stalled(limit, "between two chunks");
            }
            sleep.as_mut().reset(due);
        }
    }
}

/// `fut`, failed as [`ErrorKind::Stalled`] when it takes longer than `limit` (`None`: no
/// limit). Every wait for the server's next bytes goes through here.
async fn within_stall<T>(
    limit: Option<Duration>,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Attempt> {
    match limit {
        None => Ok(fut.await),
        Some(d) => tokio::time::timeout(d, fut)
            .await
            .map_err(|_| Attempt::Failed(stalled(d, what))),
    }
}

/// Send one request and fill `rec` with its timestamps and outcome. Never panics and never
/// returns early without setting `rec.error` on failure.
pub async fn execute(pool: &Pool, out: Outgoing<'_>, clock: &Clock, rec: &mut RequestRecord) {
    if let Err(e) = execute_inner(pool, &out, clock, rec).await {
        if rec.last_ns == 0 {
            rec.last_ns = clock.now_ns();
        }
        rec.error = Some(e);
    }
}

/// Why a request attempt ended without a result.
enum Attempt {
    /// A pooled connection turned out to be closed before the request was written: retry.
    Stale,
    Failed(RequestError),
}

async fn execute_inner(
    pool: &Pool,
    out: &Outgoing<'_>,
    clock: &Clock,
    rec: &mut RequestRecord,
) -> Result<(), RequestError> {
    loop {
        let mut c = pool.get().await?;
        let fresh = c.fresh;
        let (result, conn_alive) = {
            let Conn {
                sender,
                conn,
                arrival,
                ..
            } = &mut c;
            let fut = attempt(pool, sender, arrival, out, clock, rec);
            tokio::pin!(fut);
            let mut conn_alive = true;
            // The connection is polled first: it reads the socket and queues the decoded
            // frames for the body, which the request future then takes in the same poll, so a
            // chunk is timestamped without waiting for another turn of the scheduler.
            let result = loop {
                tokio::select! {
                    biased;
                    _ = &mut *conn, if conn_alive => conn_alive = false,
                    r = &mut fut => break r,
                }
            };
            (result, conn_alive)
        };
        match result {
            Ok(()) => {
                if conn_alive {
                    pool.put(c);
                }
                return Ok(());
            }
            Err(Attempt::Stale) if !fresh => continue,
            Err(Attempt::Stale) => {
                return Err(RequestError {
                    kind: ErrorKind::Transport,
                    message: "connection closed before the request was sent".into(),
                })
            }
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
}

/// When the bytes just decoded arrived: the kernel receive time of the last read, unless it
/// predates this request (a keep-alive connection's previous response), else now.
///
/// Never earlier than the previous time handed out for this request (`floor`, which starts at
/// the send): kernel stamps are converted from the realtime clock and a connection's first
/// reads may be stamped at read time, so two close arrivals could otherwise come out reversed.
fn arrived_ns(arrival: &Arrival, clock: &Clock, sent_ns: u64, floor: &mut u64) -> u64 {
    let t = match arrival.last().map(|at| clock.ns_of(at)) {
        Some(t) if t >= sent_ns => t,
        _ => clock.now_ns(),
    };
    *floor = t.max(*floor);
    *floor
}

async fn attempt(
    pool: &Pool,
    sender: &mut Sender,
    arrival: &Arrival,
    out: &Outgoing<'_>,
    clock: &Clock,
    rec: &mut RequestRecord,
) -> Result<(), Attempt> {
    sender.ready().await.map_err(|_| Attempt::Stale)?;
    let mut req = Request::builder()
        .method(out.method.clone())
        .uri(out.path)
        .body(Full::new(out.body.clone()))
        .map_err(|e| {
            Attempt::Failed(RequestError {
                kind: ErrorKind::Transport,
                message: format!("building request: {e}"),
            })
        })?;
    let h = req.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&pool.target.authority) {
        h.insert(HOST, v);
    }
    h.insert(
        CONTENT_TYPE,
        out.content_type
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    for (k, v) in &pool.target.headers {
        h.append(k, v.clone());
    }
    if let Some(extra) = out.extra_headers {
        for (k, v) in extra {
            h.insert(k, v.clone());
        }
    }
    if let Some(rid) = out.request_id.and_then(|r| HeaderValue::from_str(r).ok()) {
        h.insert(X_REQUEST_ID, rid);
    }
    rec.sent_ns = clock.now_ns();
    let resp = within_stall(
        out.stall_timeout,
        "waiting for the response headers",
        sender.send_request(req),
    )
    .await?
    .map_err(|e| Attempt::Failed(transport(e)))?;
    let mut floor = rec.sent_ns;
    rec.first_byte_ns = arrived_ns(arrival, clock, rec.sent_ns, &mut floor);
    let status = resp.status();
    let mut body = resp.into_body();
    if status != StatusCode::OK {
        let mut buf = Vec::new();
        while let Ok(Some(Ok(f))) =
            within_stall(out.stall_timeout, "in an error body", body.frame()).await
        {
            if let Some(d) = f.data_ref() {
                buf.extend_from_slice(d);
            }
            if buf.len() > 4096 {
                break;
            }
        }
        rec.last_ns = clock.now_ns();
        return Err(Attempt::Failed(RequestError {
            kind: ErrorKind::HttpStatus,
            message: format!("HTTP {}: {}", status, excerpt(&buf)),
        }));
    }
    let mut parser = StreamParser::for_response(out.reading, out.protocol, out.stream);
    // One timer per request, re-armed lazily: a chunk only records when it came, and the
    // timer, when it fires, checks whether the silence really lasted the whole limit.
    let mut stall = StallWatch::new(out.stall_timeout);
    loop {
        let frame = tokio::select! {
            biased;
            f = body.frame() => f,
            e = stall.expired() => return Err(Attempt::Failed(e)),
        };
        let Some(frame) = frame else { break };
        stall.touch();
        let frame = frame.map_err(|e| Attempt::Failed(transport(e)))?;
        if let Some(d) = frame.data_ref() {
            parser
                .feed(d, arrived_ns(arrival, clock, rec.sent_ns, &mut floor), rec)
                .map_err(Attempt::Failed)?;
        }
    }
    parser
        .finish(arrived_ns(arrival, clock, rec.sent_ns, &mut floor), rec)
        .map_err(Attempt::Failed)?;
    Ok(())
}

/// A job API (`/v1/videos`): the submit returns `{"id"}`, and `GET {route}/{id}` answers with
/// the job's `status` until it is `completed` or `failed`.
#[derive(Clone, Debug)]
pub struct JobPoll {
    /// Full path of the job collection (the submit's path), without a trailing slash.
    pub route: String,
    /// Pause between two polls of one job.
    pub interval: Duration,
}

/// After a successful submit (`rec` holds its document), poll the job through the measured
/// client until it completes: the record then ends with the completing poll's response. A
/// failed job, a missing id or a failed poll set `rec.error`.
pub async fn poll_job(
    pool: &Pool,
    poll: &JobPoll,
    stall_timeout: Option<Duration>,
    clock: &Clock,
    rec: &mut RequestRecord,
) {
    if rec.error.is_some() {
        return;
    }
    let fail = |rec: &mut RequestRecord, kind, message: String| {
        rec.last_ns = rec.last_ns.max(clock.now_ns());
        rec.error = Some(RequestError { kind, message });
    };
    let Some(id) = rec.document.as_ref().and_then(|d| d.id.clone()) else {
        fail(
            rec,
            ErrorKind::MalformedResponse,
            "No job_id returned".into(),
        );
        return;
    };
    let path = format!("{}/{id}", poll.route);
    loop {
        tokio::time::sleep(poll.interval).await;
        let mut p = RequestRecord::default();
        let out = Outgoing {
            method: Method::GET,
            path: &path,
            body: Bytes::new(),
            content_type: None,
            extra_headers: None,
            request_id: None,
            protocol: Protocol::Generate,
            stream: false,
            reading: ResponseReading::Document,
            stall_timeout,
        };
        execute(pool, out, clock, &mut p).await;
        if let Some(e) = p.error {
            fail(rec, e.kind, format!("poll: {}", e.message));
            return;
        }
        let doc = p.document.unwrap_or_default();
        match doc.status.as_deref() {
            Some("completed") => {
                rec.last_ns = p.last_ns;
                rec.document = Some(doc);
                return;
            }
            Some("failed") => {
                let msg = doc.error_message.clone().unwrap_or_default();
                rec.document = Some(doc);
                fail(rec, ErrorKind::ServerError, format!("Job failed: {msg}"));
                return;
            }
            _ => {}
        }
    }
}

fn transport(e: hyper::Error) -> RequestError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Transport
    };
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    RequestError { kind, message: msg }
}

/// Small non-hot-path GET/POST helper returning (status, body) for readiness checks,
/// `/v1/models`, `/server_info` and `/flush_cache`.
pub async fn simple_request(
    pool: &Pool,
    method: Method,
    route: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), String> {
    let fut = async {
        let Conn {
            mut sender, conn, ..
        } = pool.connect().await.map_err(|e| e.message)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(pool.target.path(route))
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let h = req.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&pool.target.authority) {
            h.insert(HOST, v);
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (k, v) in &pool.target.headers {
            h.append(k, v.clone());
        }
        let result = async {
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, bytes))
        }
        .await;
        drop(sender);
        driver.abort();
        result
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
}

/// A connect error that is the client's own limit: no descriptor left (EMFILE, ENFILE) or no
/// ephemeral port left for this destination (EADDRNOTAVAIL).
fn is_client_limit(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A read stamped earlier than the previous one (realtime-to-monotonic conversion jitter,
    /// or a read-time stamp followed by a kernel stamp) must not make a request's times go
    /// backwards: per-request ITL would become (last - first) < 0.
    #[test]
    fn arrival_times_never_go_backwards_within_a_request() {
        let clock = Clock::start();
        let arrival = Arrival::default();
        let sent = clock.now_ns();
        let mut floor = sent;
        let later = clock.anchor() + Duration::from_nanos(sent) + Duration::from_millis(5);
        arrival.set(later, false);
        let first = arrived_ns(&arrival, &clock, sent, &mut floor);
        assert!(first > sent);
        arrival.set(later - Duration::from_millis(3), true);
        let second = arrived_ns(&arrival, &clock, sent, &mut floor);
        assert_eq!(
            second, first,
            "an earlier stamp is held at the previous time"
        );
        arrival.set(later + Duration::from_millis(1), true);
        let third = arrived_ns(&arrival, &clock, sent, &mut floor);
        assert!(third > first, "later stamps still move time forward");
    }
}
