//! The streaming response parser (the client's hot path): splits the body into SSE lines across
//! network reads without copying complete lines, and reads only the fields the metrics need
//! from each JSON chunk into borrowed views (no re-tokenizing, no owned trees).
//!
//! Line handling follows SGLang: trim, skip empty lines, drop the `data:` prefix, ignore
//! `[DONE]` (but let it end the latency), every other data line must be JSON. Deliberate
//! differences: SSE comment lines (`: ping`) and other SSE fields are ignored instead of
//! failing the request, and a usage-only completions chunk (`"choices": []`) is accepted.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use crate::backend::Protocol;
use crate::record::{DocumentFacts, ErrorKind, RequestError, RequestRecord, TokenCountSource};

/// How a response body is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseReading {
    /// An LLM generation of the request's protocol: tokens, usage, `[DONE]`.
    #[default]
    Generation,
    /// One JSON document, read into [`DocumentFacts`] at its end (diffusion images, video job
    /// submits and polls).
    Document,
    /// Every stream data line kept with its arrival time in `rec.stream_lines`, for the
    /// benchmark to read after the run (a batched stream whose lines belong to many sequences).
    StreamLines,
}

/// Incremental parser for one response body.
pub struct StreamParser {
    protocol: Protocol,
    stream: bool,
    carry: Vec<u8>,
    done: bool,
    last_completion_tokens: usize,
    reading: ResponseReading,
}

impl StreamParser {
    /// A parser for one response of `protocol`; `stream` false means one JSON body.
    pub fn new(protocol: Protocol, stream: bool) -> Self {
        Self {
            protocol,
            stream,
            carry: Vec::new(),
            done: false,
            last_completion_tokens: 0,
            reading: ResponseReading::Generation,
        }
    }

    /// A parser for a response read as `reading` (`protocol` and `stream` apply to
    /// generations).
    pub fn for_response(reading: ResponseReading, protocol: Protocol, stream: bool) -> Self {
        match reading {
            ResponseReading::Generation => Self::new(protocol, stream),
            ResponseReading::Document => Self::document(),
            ResponseReading::StreamLines => Self::lines(),
        }
    }

    /// A parser that keeps a stream's data lines with their arrival times.
    pub fn lines() -> Self {
        Self {
            reading: ResponseReading::StreamLines,
            ..Self::new(Protocol::Generate, true)
        }
    }

    /// A parser for a JSON document response: the body is buffered and, at its end, read
    /// into `rec.document`.
    pub fn document() -> Self {
        Self {
            reading: ResponseReading::Document,
            ..Self::new(Protocol::Generate, false)
        }
    }

    /// Whether `[DONE]` was seen.
    pub fn saw_done(&self) -> bool {
        self.done
    }

    /// Feed one network read received at `now_ns`.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        now_ns: u64,
        rec: &mut RequestRecord,
    ) -> Result<(), RequestError> {
        if !self.stream {
            self.carry.extend_from_slice(data);
            return Ok(());
        }
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', data) {
                None => {
                    self.carry.extend_from_slice(data);
                    return Ok(());
                }
                Some(nl) => {
                    self.carry.extend_from_slice(&data[..nl]);
                    data = &data[nl + 1..];
                    let line = std::mem::take(&mut self.carry);
                    self.line(&line, now_ns, rec)?;
                    self.carry = line;
                    self.carry.clear();
                }
            }
        }
        while let Some(nl) = memchr::memchr(b'\n', data) {
            self.line(&data[..nl], now_ns, rec)?;
            data = &data[nl + 1..];
        }
        self.carry.extend_from_slice(data);
        Ok(())
    }

    /// The body ended cleanly at `now_ns`: parse what is left and check completeness.
    pub fn finish(&mut self, now_ns: u64, rec: &mut RequestRecord) -> Result<(), RequestError> {
        let rest = std::mem::take(&mut self.carry);
        if self.reading == ResponseReading::Document {
            rec.last_ns = now_ns;
            rec.document = Some(Box::new(document_facts(&rest)?));
            return Ok(());
        }
        if !self.stream {
            if rest.iter().all(u8::is_ascii_whitespace) {
                return Err(malformed("empty response body"));
            }
            self.json(trim(&rest), now_ns, rec)?;
            if rec.generated_text.is_empty() && !server_counted_tokens(rec) {
                return Err(empty("response carried no generated text"));
            }
            if rec.first_token_ns == 0 {
                // Non-streaming: TTFT equals the latency (SGLang).
                rec.first_token_ns = now_ns;
                rec.chunk_ns.push(now_ns);
            }
            return Ok(());
        }
        self.line(&rest, now_ns, rec)?;
        if self.reading == ResponseReading::StreamLines {
            if rec.stream_lines.is_empty() {
                return Err(empty("stream carried no data line"));
            }
            return Ok(());
        }
        if !self.done {
            return Err(RequestError {
                kind: ErrorKind::TruncatedStream,
                message: "stream ended without data: [DONE]".into(),
            });
        }
        if rec.first_token_ns == 0 {
            return Err(empty("stream carried no generated content before [DONE]"));
        }
        Ok(())
    }

    fn line(
        &mut self,
        raw: &[u8],
        now_ns: u64,
        rec: &mut RequestRecord,
    ) -> Result<(), RequestError> {
        let line = trim(raw);
        if line.is_empty() || line[0] == b':' {
            return Ok(());
        }
        let payload = match line.strip_prefix(b"data:") {
            Some(p) => trim(p),
            // `event:`, `id:`, `retry:` fields carry nothing we measure.
            None if is_sse_field(line) => return Ok(()),
            None => line,
        };
        rec.last_ns = now_ns;
        if payload == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        if self.reading == ResponseReading::StreamLines {
            rec.stream_lines.push((now_ns, payload.to_vec()));
            return Ok(());
        }
        // One rule for every protocol: a chunk that is not UTF-8 is malformed (JSON must be
        // UTF-8; serde_json skips the check inside fields it ignores).
        if std::str::from_utf8(payload).is_err() {
            return Err(malformed(&format!(
                "chunk is not valid UTF-8: {}",
                excerpt(payload)
            )));
        }
        self.json(payload, now_ns, rec)
    }

    fn json(
        &mut self,
        payload: &[u8],
        now_ns: u64,
        rec: &mut RequestRecord,
    ) -> Result<(), RequestError> {
        rec.last_ns = now_ns;
        match self.protocol {
            Protocol::Generate => {
                let c: GenChunk<'_> = parse(payload)?;
                server_error(c.error.as_ref())?;
                if let Some(m) = &c.meta_info {
                    if let Some(p) = m.prompt_tokens.filter(|p| *p > 0) {
                        rec.server_prompt_len = Some(p);
                    }
                    if m.spec_accept_length.is_some() {
                        rec.spec_accept_length = m.spec_accept_length;
                    }
                    if m.cached_tokens.is_some() {
                        rec.cached_tokens = m.cached_tokens;
                    }
                }
                let text = c.text.as_deref().unwrap_or("");
                let ct = c.meta_info.as_ref().and_then(|m| m.completion_tokens);
                // A chunk counts when it carries text or new tokens: tokens whose bytes do not
                // form text yet (a split UTF-8 character) were still generated. SGLang's client
                // waits for text and then reports TTFT 0 for such requests.
                if text.is_empty() && ct.unwrap_or(0) <= self.last_completion_tokens {
                    return Ok(());
                }
                let n_new = match ct {
                    Some(ct) => ct.saturating_sub(self.last_completion_tokens),
                    None => 1,
                };
                if rec.first_token_ns == 0 {
                    rec.first_token_ns = now_ns;
                } else if n_new == 0 {
                    return Ok(());
                }
                rec.chunk_ns.push(now_ns);
                rec.chunk_tokens.push(n_new.max(1) as u32);
                rec.generated_text.clear();
                rec.generated_text.push_str(text);
                match ct {
                    Some(ct) => {
                        self.last_completion_tokens = ct;
                        rec.output_len = ct;
                        rec.output_len_source = TokenCountSource::Server;
                    }
                    None => rec.output_len = rec.chunk_ns.len(),
                }
            }
            Protocol::Completions => {
                let c: CmplChunk<'_> = parse(payload)?;
                server_error(c.error.as_ref())?;
                usage(c.usage.as_ref(), rec);
                let text = c.choices.0.as_ref().and_then(|ch| ch.text.as_deref());
                if let Some(t) = text.filter(|t| !t.is_empty()) {
                    content(t, now_ns, rec);
                }
            }
            Protocol::Chat => {
                let c: ChatChunk<'_> = parse(payload)?;
                server_error(c.error.as_ref())?;
                usage(c.usage.as_ref(), rec);
                if let Some(ch) = c.choices.0.as_ref() {
                    let d = ch.delta.as_ref().or(ch.message.as_ref());
                    if let Some(d) = d {
                        let reasoning = d
                            .reasoning_content
                            .as_deref()
                            .or(d.reasoning.as_deref())
                            .unwrap_or("");
                        let body = d.content.as_deref().unwrap_or("");
                        if !reasoning.is_empty() || !body.is_empty() {
                            if !reasoning.is_empty() {
                                rec.generated_text.push_str(reasoning);
                            }
                            content(body, now_ns, rec);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// One content event of an OpenAI stream: TTFT on the first, then one chunk per event.
#[inline]
fn content(text: &str, now_ns: u64, rec: &mut RequestRecord) {
    if rec.first_token_ns == 0 {
        rec.first_token_ns = now_ns;
    }
    rec.chunk_ns.push(now_ns);
    rec.generated_text.push_str(text);
}

#[inline]
fn usage(u: Option<&Usage>, rec: &mut RequestRecord) {
    if let Some(u) = u {
        if let Some(c) = u.completion_tokens {
            rec.output_len = c;
            rec.output_len_source = TokenCountSource::Server;
        }
        if let Some(p) = u.prompt_tokens.filter(|p| *p > 0) {
            rec.server_prompt_len = Some(p);
        }
        if let Some(c) = u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
        {
            rec.cached_tokens = Some(c);
        }
    }
}

fn server_error(e: Option<&serde_json::Value>) -> Result<(), RequestError> {
    match e {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(v) => Err(RequestError {
            kind: ErrorKind::ServerError,
            message: excerpt(v.to_string().as_bytes()),
        }),
    }
}

fn parse<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, RequestError> {
    serde_json::from_slice(payload).map_err(|e| malformed(&format!("{e}: {}", excerpt(payload))))
}

/// Whether the server reported generating tokens (a response may legitimately carry tokens
/// whose text is empty, e.g. special tokens skipped in the output).
fn server_counted_tokens(rec: &RequestRecord) -> bool {
    rec.output_len_source == TokenCountSource::Server && rec.output_len > 0
}

/// The shape of a diffusion response document, as far as the client reads it.
#[derive(Deserialize)]
struct RawDocument {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    peak_memory_mb: Option<f64>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Read a JSON document response; anything but a JSON object is malformed.
fn document_facts(body: &[u8]) -> Result<DocumentFacts, RequestError> {
    let raw: RawDocument = serde_json::from_slice(trim(body)).map_err(|e| {
        malformed(&format!(
            "response is not a JSON object ({e}): {}",
            excerpt(body)
        ))
    })?;
    let error_message = raw.error.and_then(|e| match e {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Object(o) => o.get("message").and_then(|m| m.as_str()).map(String::from),
        _ => None,
    });
    Ok(DocumentFacts {
        id: raw.id,
        status: raw.status,
        peak_memory_mb: raw.peak_memory_mb,
        error_message,
    })
}

fn empty(msg: &str) -> RequestError {
    RequestError {
        kind: ErrorKind::EmptyStream,
        message: msg.to_owned(),
    }
}

fn malformed(msg: &str) -> RequestError {
    RequestError {
        kind: ErrorKind::MalformedResponse,
        message: msg.to_owned(),
    }
}

/// At most 200 bytes of `b`, lossily decoded, for error messages. Control characters are
/// escaped (`\u{1b}`): server bytes must not reach the terminal as escape sequences.
pub fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(200)]);
    let mut out = String::with_capacity(s.len() + 3);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if b.len() > 200 {
        out.push_str("...");
    }
    out
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn is_sse_field(line: &[u8]) -> bool {
    line.starts_with(b"event:") || line.starts_with(b"id:") || line.starts_with(b"retry:")
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<usize>,
    completion_tokens: Option<usize>,
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    cached_tokens: Option<usize>,
}

#[derive(Deserialize)]
struct MetaInfo {
    prompt_tokens: Option<usize>,
    completion_tokens: Option<usize>,
    cached_tokens: Option<usize>,
    spec_accept_length: Option<f64>,
}

#[derive(Deserialize)]
struct GenChunk<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    meta_info: Option<MetaInfo>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CmplChoice<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CmplChunk<'a> {
    #[serde(borrow, default)]
    choices: First<CmplChoice<'a>>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChatDelta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChatChoice<'a> {
    #[serde(borrow)]
    delta: Option<ChatDelta<'a>>,
    #[serde(borrow)]
    message: Option<ChatDelta<'a>>,
}

#[derive(Deserialize)]
struct ChatChunk<'a> {
    #[serde(borrow, default)]
    choices: First<ChatChoice<'a>>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

/// The first element of a JSON array (the rest skipped without allocating); `null` and `[]`
/// give `None`.
struct First<T>(Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        First(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array or null")
            }
            fn visit_unit<E>(self) -> Result<First<T>, E> {
                Ok(First(None))
            }
            fn visit_none<E>(self) -> Result<First<T>, E> {
                Ok(First(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<First<T>, D::Error> {
                d.deserialize_seq(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_option(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(protocol: Protocol, parts: &[&str]) -> (RequestRecord, Result<(), RequestError>) {
        let mut rec = RequestRecord::default();
        let mut p = StreamParser::new(protocol, true);
        for (i, part) in parts.iter().enumerate() {
            if let Err(e) = p.feed(part.as_bytes(), (i as u64 + 1) * 1000, &mut rec) {
                return (rec, Err(e));
            }
        }
        let r = p.finish(99_000, &mut rec);
        (rec, r)
    }

    #[test]
    fn completions_lines_split_across_reads() {
        let (rec, r) = run(
            Protocol::Completions,
            &[
                "data: {\"choices\":[{\"text\":\" a\"}]}\n\ndata: {\"cho",
                "ices\":[{\"text\":\"\"}]}\n\n: ping\n\ndata: {\"choices\":[{\"text\":\" b\"}]}\n\n",
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
            ],
        );
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(rec.generated_text, " a b");
        assert_eq!(rec.chunk_ns, vec![1000, 2000]);
        assert_eq!(rec.output_len, 2);
        assert_eq!(rec.server_prompt_len, Some(3));
        assert_eq!(rec.last_ns, 3000);
    }

    #[test]
    fn chat_role_chunk_is_not_a_token() {
        let (rec, r) = run(
            Protocol::Chat,
            &[
                "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"x\\n\"}}]}\n\ndata: [DONE]\n\n",
            ],
        );
        assert!(r.is_ok());
        assert_eq!(rec.first_token_ns, 2000);
        assert_eq!(rec.generated_text, "x\n");
    }

    #[test]
    fn native_tokens_without_text_yet_start_ttft() {
        let (rec, r) = run(
            Protocol::Generate,
            &[
                "data: {\"text\":\"\",\"meta_info\":{\"completion_tokens\":1}}\n\n",
                "data: {\"text\":\"é\",\"meta_info\":{\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
            ],
        );
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(rec.first_token_ns, 1000);
        assert_eq!(rec.chunk_tokens, vec![1, 1]);
        assert_eq!(rec.output_len, 2);
    }

    #[test]
    fn native_cumulative_text_and_token_deltas() {
        let (rec, r) = run(
            Protocol::Generate,
            &[
                "data: {\"text\":\"a\",\"meta_info\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n",
                "data: {\"text\":\"abc\",\"meta_info\":{\"completion_tokens\":3}}\n\n",
                "data: {\"text\":\"abc\",\"meta_info\":{\"completion_tokens\":3}}\n\ndata: [DONE]\n\n",
            ],
        );
        assert!(r.is_ok());
        assert_eq!(rec.generated_text, "abc");
        assert_eq!(rec.chunk_tokens, vec![1, 2]);
        assert_eq!(rec.output_len, 3);
        assert_eq!(rec.server_prompt_len, Some(5));
    }

    #[test]
    fn failures_are_classified() {
        let (_, r) = run(
            Protocol::Completions,
            &["data: {\"choices\":[{\"text\":\"a\"}]}\n\n"],
        );
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::TruncatedStream));
        let (_, r) = run(Protocol::Completions, &["data: {not json\n\n"]);
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::MalformedResponse));
        let (_, r) = run(
            Protocol::Chat,
            &["data: {\"error\":{\"message\":\"boom\"}}\n\n"],
        );
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::ServerError));
    }

    /// One rule for every protocol: a clean stream with no content fails as `empty_stream`,
    /// and a chunk with bytes that are not UTF-8 fails as malformed.
    #[test]
    fn empty_and_non_utf8_streams_fail_alike_for_every_protocol() {
        for protocol in [Protocol::Generate, Protocol::Completions, Protocol::Chat] {
            let (rec, r) = run(protocol, &["data: [DONE]\n\n"]);
            assert_eq!(
                r.map_err(|e| e.kind),
                Err(ErrorKind::EmptyStream),
                "{protocol:?}"
            );
            assert_eq!(rec.first_token_ns, 0);
            let chunk: &[u8] = match protocol {
                Protocol::Generate => b"data: {\"text\":\"a\xff\"}\n\n",
                Protocol::Completions => b"data: {\"choices\":[{\"text\":\"a\xff\"}]}\n\n",
                Protocol::Chat => b"data: {\"choices\":[{\"delta\":{\"content\":\"a\xff\"}}]}\n\n",
            };
            let mut p = StreamParser::new(protocol, true);
            let mut rec = RequestRecord::default();
            let r = p.feed(chunk, 1000, &mut rec);
            assert_eq!(
                r.map_err(|e| e.kind),
                Err(ErrorKind::MalformedResponse),
                "{protocol:?}"
            );
        }
    }

    #[test]
    fn a_non_streamed_body_without_text_is_empty() {
        let mut p = StreamParser::new(Protocol::Completions, false);
        let mut rec = RequestRecord::default();
        assert!(p
            .feed(b"{\"choices\":[{\"text\":\"\"}]}", 1000, &mut rec)
            .is_ok());
        let r = p.finish(2000, &mut rec);
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::EmptyStream));
    }

    #[test]
    fn excerpts_escape_terminal_control_characters() {
        let e = excerpt(b"bad \x1b[31mred\x07 line\nnext");
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert!(e.contains("\\u{1b}[31mred"), "{e:?}");
    }

    /// A JSON document response (diffusion): its facts, split across reads, whatever else it
    /// holds; a body that is not a JSON object is malformed.
    #[test]
    fn document_responses_keep_only_their_facts() {
        let mut rec = RequestRecord::default();
        let mut p = StreamParser::document();
        let body = r#"{"id":"job-1","status":"failed","data":[{"b64_json":"AAAA"}],
                      "peak_memory_mb":12.5,"error":{"message":"out of memory"}}"#;
        let (a, b) = body.split_at(17);
        assert!(p.feed(a.as_bytes(), 1_000, &mut rec).is_ok());
        assert!(p.feed(b.as_bytes(), 2_000, &mut rec).is_ok());
        assert!(p.finish(3_000, &mut rec).is_ok());
        assert_eq!(rec.last_ns, 3_000);
        let d = rec.document.as_deref().cloned().unwrap_or_default();
        assert_eq!(d.id.as_deref(), Some("job-1"));
        assert_eq!(d.status.as_deref(), Some("failed"));
        assert_eq!(d.peak_memory_mb, Some(12.5));
        assert_eq!(d.error_message.as_deref(), Some("out of memory"));
        let mut rec = RequestRecord::default();
        let mut p = StreamParser::document();
        assert!(p.feed(b"<html>", 1_000, &mut rec).is_ok());
        let e = p.finish(2_000, &mut rec).err().map(|e| e.kind);
        assert_eq!(e, Some(ErrorKind::MalformedResponse));
    }

    /// Kept lines: every data line (split across reads) with its arrival time, `[DONE]` and
    /// comments left out; a stream without a data line is empty.
    #[test]
    fn kept_lines_carry_their_arrival_times() {
        let mut rec = RequestRecord::default();
        let mut p = StreamParser::lines();
        for (t, part) in [
            (1, "data: {\"index\":0}\n\ndata: {\"ind"),
            (2, "ex\":1}\n\n: ping\n\n"),
            (3, "data: [DONE]\n\n"),
        ] {
            assert!(p.feed(part.as_bytes(), t, &mut rec).is_ok());
        }
        assert!(p.finish(4, &mut rec).is_ok());
        let lines: Vec<(u64, &[u8])> = rec
            .stream_lines
            .iter()
            .map(|(t, l)| (*t, l.as_slice()))
            .collect();
        assert_eq!(
            lines,
            [(1, &b"{\"index\":0}"[..]), (2, &b"{\"index\":1}"[..])]
        );
        assert_eq!(rec.last_ns, 3);
        let mut rec = RequestRecord::default();
        let mut p = StreamParser::lines();
        assert!(p.feed(b"data: [DONE]\n\n", 1, &mut rec).is_ok());
        let e = p.finish(2, &mut rec).err().map(|e| e.kind);
        assert_eq!(e, Some(ErrorKind::EmptyStream));
    }
}
