//! The streaming trace reader: visits the events of a Chrome/Kineto trace one at a time with
//! memory bounded by the largest single event, whatever the file size.
//!
//! Hand-written on purpose (it is the product): it finds the `traceEvents` array in the object
//! form (metadata keys before or after it) or takes the array form, hands out each event's raw
//! JSON bytes, and keeps every other top-level key as raw JSON. A crashed writer's unterminated
//! array, or a cut gzip stream, is read up to the last complete event with a warning.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use crate::error::TraceError;
use crate::fastscan::{self, Member};
use crate::source;

/// Initial scan buffer; it grows only if one event is larger.
const INITIAL_BUF: usize = 512 * 1024;
/// Largest single JSON value (event or metadata) accepted, to bound memory on garbage input.
const MAX_VALUE: usize = 1 << 30;

/// Which container form the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceForm {
    /// `{"traceEvents": [...], ...metadata}`
    Object,
    /// `[event, event, ...]` (the closing `]` may be missing)
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Events,
    Done,
}

/// A streaming reader over one trace file.
///
/// `open` reads up to the start of the event array (so metadata written before `traceEvents` is
/// available at once); `next_event` yields raw event bytes; once it returns `None`, metadata
/// written after the array is available too.
pub struct TraceReader {
    path: PathBuf,
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    offset: u64,
    eof: bool,
    state: State,
    form: TraceForm,
    first_event: bool,
    events: u64,
    metadata: Vec<(String, Box<RawValue>)>,
    metadata_before_events: usize,
    warnings: Vec<String>,
    truncated: bool,
}

impl TraceReader {
    /// Opens a plain or gzip trace file and reads its leading metadata.
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let src = source::open(path)?;
        Self::from_reader(path, src)
    }

    /// Reads a trace from any byte source; `name` is used in messages.
    pub fn from_reader(name: &Path, src: Box<dyn Read + Send>) -> Result<Self, TraceError> {
        let mut r = TraceReader {
            path: name.to_path_buf(),
            src,
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            state: State::Done,
            form: TraceForm::Object,
            first_event: true,
            events: 0,
            metadata: Vec::new(),
            metadata_before_events: 0,
            warnings: Vec::new(),
            truncated: false,
        };
        r.read_header()?;
        Ok(r)
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Object or array form.
    pub fn form(&self) -> TraceForm {
        self.form
    }

    /// Top-level metadata keys seen so far, in file order (all of them once events are exhausted).
    pub fn metadata(&self) -> &[(String, Box<RawValue>)] {
        &self.metadata
    }

    /// Number of metadata keys that precede `traceEvents` in the file.
    pub fn metadata_before_events(&self) -> usize {
        self.metadata_before_events
    }

    /// The raw JSON of a top-level key, if seen so far.
    pub fn meta(&self, key: &str) -> Option<&RawValue> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Warnings about tolerated damage (unterminated array, cut gzip, trailing garbage).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// True when the file ended early and only the complete events before the cut were read.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Number of events returned so far.
    pub fn events_read(&self) -> u64 {
        self.events
    }

    /// Byte offset (in the decompressed stream) of the next unread byte.
    pub fn position(&self) -> u64 {
        self.offset + self.start as u64
    }

    /// Returns the raw JSON bytes of the next event, or `None` at the end of the array.
    pub fn next_event(&mut self) -> Result<Option<&[u8]>, TraceError> {
        match self.next_event_at(None)? {
            Some((s, len, _)) => Ok(Some(&self.buf[s..s + len])),
            None => Ok(None),
        }
    }

    /// Like [`next_event`](Self::next_event), and also scans the event's members into
    /// `members` with [`fastscan::scan_object_at`] while finding its end (one pass over the
    /// bytes instead of two). The flag is true when the event was scanned and is valid UTF-8;
    /// false when the scanner refused it (invalid, escaped keys, cut by the buffer end...) or
    /// it has invalid UTF-8: the event is then delimited as `next_event` does and `members` is
    /// unspecified.
    pub fn next_event_scanned(
        &mut self,
        members: &mut Vec<Member>,
    ) -> Result<Option<(&[u8], bool)>, TraceError> {
        match self.next_event_at(Some(members))? {
            Some((s, len, scanned)) => Ok(Some((&self.buf[s..s + len], scanned))),
            None => Ok(None),
        }
    }

    /// The next event as (start, length, scanned into `members`).
    fn next_event_at(
        &mut self,
        members: Option<&mut Vec<Member>>,
    ) -> Result<Option<(usize, usize, bool)>, TraceError> {
        if self.state != State::Events {
            return Ok(None);
        }
        let Some(mut b) = self.skip_ws()? else {
            self.truncate(format!(
                "unterminated traceEvents array (file ends after {} events); read up to the last complete event",
                self.events
            ));
            return Ok(None);
        };
        if !self.first_event {
            if b == b']' {
                self.start += 1;
                self.after_array()?;
                return Ok(None);
            }
            if b != b',' {
                return Err(self.error(format!(
                    "expected ',' or ']' after event {}, found {}",
                    self.events,
                    show_byte(b)
                )));
            }
            self.start += 1;
            match self.skip_ws()? {
                Some(c) => b = c,
                None => {
                    self.truncate(format!(
                        "unterminated traceEvents array (file ends after {} events); read up to the last complete event",
                        self.events
                    ));
                    return Ok(None);
                }
            }
        }
        if b == b']' {
            // `[]` or a trailing comma before `]`.
            self.start += 1;
            self.after_array()?;
            return Ok(None);
        }
        if b != b'{' {
            return Err(self.error(format!(
                "event {} is not a JSON object (starts with {})",
                self.events,
                show_byte(b)
            )));
        }
        self.first_event = false;
        if let Some(members) = members {
            // The scanner finds the same end as `value_len` for the objects it accepts; it
            // gives up on anything else, and on an event cut by the end of the buffer.
            let s = self.start;
            if let Some(end) = fastscan::scan_object_at(&self.buf[..self.end], s, members) {
                self.start = end;
                self.events += 1;
                let utf8 = std::str::from_utf8(&self.buf[s..end]).is_ok();
                return Ok(Some((s, end - s, utf8)));
            }
        }
        match self.value_len()? {
            Some(len) => {
                let s = self.start;
                self.start += len;
                self.events += 1;
                Ok(Some((s, len, false)))
            }
            None => {
                self.truncate(format!(
                    "last event is incomplete (file cut inside event {}); read {} complete events",
                    self.events, self.events
                ));
                Ok(None)
            }
        }
    }

    /// Reads (and discards) all remaining events so that trailing metadata becomes available.
    pub fn skip_events(&mut self) -> Result<(), TraceError> {
        while self.next_event()?.is_some() {}
        Ok(())
    }

    fn truncate(&mut self, msg: String) {
        if !self.truncated {
            tracing::warn!("{}: {}", self.path.display(), msg);
            self.warnings.push(msg);
        }
        self.truncated = true;
        self.state = State::Done;
    }

    fn error(&self, message: String) -> TraceError {
        TraceError::format(
            &self.path,
            format!("{message} (at byte {})", self.position()),
        )
    }

    fn read_header(&mut self) -> Result<(), TraceError> {
        // Skip a UTF-8 byte-order mark.
        if self.ensure(3)? && self.buf[self.start..self.start + 3] == [0xEF, 0xBB, 0xBF] {
            self.start += 3;
        }
        match self.skip_ws()? {
            None => Err(self.error("empty file: not a trace".into())),
            Some(b'[') => {
                self.start += 1;
                self.form = TraceForm::Array;
                self.state = State::Events;
                Ok(())
            }
            Some(b'{') => {
                self.start += 1;
                self.form = TraceForm::Object;
                let found = self.read_members(true)?;
                self.metadata_before_events = self.metadata.len();
                if found {
                    self.state = State::Events;
                    Ok(())
                } else if self.truncated {
                    Ok(())
                } else {
                    Err(self.error("no `traceEvents` array in this JSON object".into()))
                }
            }
            Some(b) => Err(self.error(format!(
                "not a trace: expected a JSON object or array, found {}",
                show_byte(b)
            ))),
        }
    }

    /// Reads object members into `metadata` until `traceEvents` (returns true, positioned just
    /// inside its `[`) or the closing `}` (returns false).
    fn read_members(&mut self, mut first: bool) -> Result<bool, TraceError> {
        loop {
            let Some(mut b) = self.skip_ws()? else {
                self.truncate("file ends inside the top-level object".into());
                return Ok(false);
            };
            if !first {
                if b == b'}' {
                    self.start += 1;
                    self.state = State::Done;
                    self.check_trailing()?;
                    return Ok(false);
                }
                if b != b',' {
                    return Err(self.error(format!(
                        "expected ',' or '}}' between top-level keys, found {}",
                        show_byte(b)
                    )));
                }
                self.start += 1;
                b = match self.skip_ws()? {
                    Some(c) => c,
                    None => {
                        self.truncate("file ends inside the top-level object".into());
                        return Ok(false);
                    }
                };
            } else if b == b'}' {
                self.start += 1;
                self.state = State::Done;
                return Ok(false);
            }
            first = false;
            if b != b'"' {
                return Err(self.error(format!(
                    "expected a quoted key in the top-level object, found {}",
                    show_byte(b)
                )));
            }
            let Some(len) = self.value_len()? else {
                self.truncate("file ends inside a top-level key".into());
                return Ok(false);
            };
            let key: String = serde_json::from_slice(&self.buf[self.start..self.start + len])
                .map_err(|e| self.error(format!("invalid top-level key: {e}")))?;
            self.start += len;
            match self.skip_ws()? {
                Some(b':') => self.start += 1,
                Some(c) => {
                    return Err(self.error(format!(
                        "expected ':' after key {key:?}, found {}",
                        show_byte(c)
                    )))
                }
                None => {
                    self.truncate(format!("file ends after top-level key {key:?}"));
                    return Ok(false);
                }
            }
            let Some(v) = self.skip_ws()? else {
                self.truncate(format!("file ends before the value of {key:?}"));
                return Ok(false);
            };
            if key == "traceEvents" {
                if v != b'[' {
                    return Err(self.error(format!(
                        "`traceEvents` must be an array, found {}",
                        show_byte(v)
                    )));
                }
                self.start += 1;
                return Ok(true);
            }
            let Some(len) = self.value_len()? else {
                self.truncate(format!("file ends inside the value of {key:?}"));
                return Ok(false);
            };
            let raw = &self.buf[self.start..self.start + len];
            let value: Box<RawValue> = match serde_json::from_slice(raw) {
                Ok(v) => v,
                Err(_) => {
                    // Tolerate invalid UTF-8 in metadata (old Kineto); anything else is an error.
                    let lossy = String::from_utf8_lossy(raw).into_owned();
                    let v = RawValue::from_string(lossy).map_err(|e| {
                        self.error(format!("invalid JSON in top-level key {key:?}: {e}"))
                    })?;
                    self.warnings.push(format!(
                        "top-level key {key:?} had invalid UTF-8 (replaced)"
                    ));
                    v
                }
            };
            self.start += len;
            self.metadata.push((key, value));
        }
    }

    fn after_array(&mut self) -> Result<(), TraceError> {
        match self.form {
            TraceForm::Array => {
                self.state = State::Done;
                self.check_trailing()
            }
            TraceForm::Object => {
                self.state = State::Done;
                let found = self.read_members(false)?;
                if found {
                    // A second `traceEvents` key: read it as a continuation of the first.
                    self.warnings
                        .push("a second `traceEvents` array was found and read".into());
                    self.state = State::Events;
                    self.first_event = true;
                }
                Ok(())
            }
        }
    }

    fn check_trailing(&mut self) -> Result<(), TraceError> {
        if let Some(b) = self.skip_ws()? {
            let msg = format!(
                "ignored data after the end of the trace (starts with {})",
                show_byte(b)
            );
            tracing::warn!("{}: {}", self.path.display(), msg);
            self.warnings.push(msg);
        }
        Ok(())
    }

    /// Makes at least `n` unread bytes available if the input has them.
    fn ensure(&mut self, n: usize) -> Result<bool, TraceError> {
        while self.end - self.start < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads more input, compacting or growing the buffer; false at end of input.
    fn fill(&mut self) -> Result<bool, TraceError> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.offset += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_VALUE {
                return Err(self.error(format!(
                    "a single JSON value is larger than {} MiB; refusing to buffer it",
                    MAX_VALUE >> 20
                )));
            }
            let new_len = (self.buf.len() * 2).min(MAX_VALUE);
            self.buf.resize(new_len, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.eof = true;
                    let msg = "compressed stream is cut short (truncated gzip)".to_string();
                    tracing::warn!("{}: {}", self.path.display(), msg);
                    self.warnings.push(msg);
                    return Ok(false);
                }
                Err(e) => {
                    return Err(self.error(format!("cannot read the trace data: {e}")));
                }
            }
        }
    }

    /// Skips whitespace and returns the next byte without consuming it; `None` at end of input.
    fn skip_ws(&mut self) -> Result<Option<u8>, TraceError> {
        loop {
            while self.start < self.end {
                let b = self.buf[self.start];
                if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    self.start += 1;
                } else {
                    return Ok(Some(b));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Length of the JSON value starting at `start` (found by bracket/string scanning; full
    /// validation happens when the value is parsed). `None` if the input ends first.
    fn value_len(&mut self) -> Result<Option<usize>, TraceError> {
        let first = self.buf[self.start];
        if !matches!(first, b'{' | b'[' | b'"') {
            // A scalar: runs to the next delimiter.
            let mut i = 0;
            loop {
                let data = &self.buf[self.start..self.end];
                while i < data.len() {
                    if matches!(
                        data[i],
                        b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t' | b':'
                    ) {
                        return Ok(Some(i));
                    }
                    i += 1;
                }
                if !self.fill()? {
                    return Ok(if i > 0 { Some(i) } else { None });
                }
            }
        }
        let mut i = 0usize;
        let mut depth = 0usize;
        let mut in_str = false;
        loop {
            let data = &self.buf[self.start..self.end];
            while i < data.len() {
                if in_str {
                    // Find the next quote or backslash: a plain loop for short strings (most
                    // keys and values), a SIMD search beyond.
                    let short_end = data.len().min(i + 32);
                    while i < short_end && !matches!(data[i], b'"' | b'\\') {
                        i += 1;
                    }
                    if i == short_end {
                        match memchr::memchr2(b'"', b'\\', &data[i..]) {
                            Some(k) => i += k,
                            None => {
                                i = data.len();
                                continue;
                            }
                        }
                    }
                    if data[i] == b'\\' {
                        if i + 1 < data.len() {
                            i += 2;
                        } else {
                            break;
                        }
                    } else {
                        in_str = false;
                        i += 1;
                        if depth == 0 {
                            return Ok(Some(i));
                        }
                    }
                } else {
                    match data[i] {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                return Ok(Some(i + 1));
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }
}

fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}
