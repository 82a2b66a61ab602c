//! The streaming trace writer: object-form Chrome trace JSON, plain or gzip, written to a
//! temporary file in the destination directory and renamed into place only when complete, so an
//! error never leaves a half-written trace. Gzip compression runs on its own thread, in parallel
//! with whatever produces the events.
//!
//! The temporary files of unfinished writes are also listed in a process-wide registry, so that
//! a program stopped by a signal (which skips destructors) can remove them first:
//! [`remove_unfinished_outputs`].

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

use flate2::write::GzEncoder;
use flate2::Compression;
use tempfile::NamedTempFile;

use crate::error::TraceError;
use crate::object::write_json_string;

/// Bytes buffered before a chunk is handed to the compressor / file.
const FLUSH_AT: usize = 256 * 1024;
/// Chunks queued for the compressor thread (bounds memory).
const QUEUE: usize = 8;

/// How the output is encoded.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// gzip the output; `None` decides by the file name (`.gz`).
    pub gzip: Option<bool>,
    /// gzip level 0-9; the default 1 favours speed (traces compress well even at level 1).
    pub level: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            gzip: None,
            level: 1,
        }
    }
}

/// Temporary files of the writes under way in this process.
struct Unfinished {
    /// Set by [`remove_unfinished_outputs`]: no write may start or complete afterwards.
    closed: bool,
    parts: Vec<PathBuf>,
}

static UNFINISHED: Mutex<Unfinished> = Mutex::new(Unfinished {
    closed: false,
    parts: Vec::new(),
});

fn unfinished() -> MutexGuard<'static, Unfinished> {
    // The list stays valid whatever a panicking holder was doing.
    UNFINISHED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the temporary (`.inferperf-*.part`) files of every write still under way and stops
/// any further write from starting or completing; returns the files removed.
///
/// For a signal handler that is about to end the process (`std::process::exit` runs no
/// destructors, so the temporary files would otherwise stay behind). A write that completes
/// at the same moment either finished before this call (its output is whole) or fails.
pub fn remove_unfinished_outputs() -> Vec<PathBuf> {
    let mut u = unfinished();
    u.closed = true;
    let mut removed = Vec::new();
    for part in std::mem::take(&mut u.parts) {
        if std::fs::remove_file(&part).is_ok() {
            removed.push(part);
        }
    }
    removed
}

fn interrupted(path: &Path) -> TraceError {
    TraceError::io(
        path,
        io::Error::new(
            io::ErrorKind::Interrupted,
            "interrupted; output not written",
        ),
    )
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip {
        tx: Option<SyncSender<Vec<u8>>>,
        /// Chunks handed back by the compressor for reuse (no fresh allocation per chunk).
        recycled: Receiver<Vec<u8>>,
        handle: Option<JoinHandle<io::Result<()>>>,
    },
}

/// Writes one trace file event by event.
pub struct TraceWriter {
    path: PathBuf,
    tmp: Option<NamedTempFile>,
    sink: Sink,
    buf: Vec<u8>,
    events: u64,
    bytes: u64,
}

impl TraceWriter {
    /// Starts writing `path` (through a temp file) with `header` top-level keys (raw JSON values)
    /// placed before `traceEvents`.
    pub fn create(
        path: &Path,
        header: &[(String, String)],
        opts: WriteOptions,
    ) -> Result<Self, TraceError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = {
            let mut u = unfinished();
            if u.closed {
                return Err(interrupted(path));
            }
            let tmp = tempfile::Builder::new()
                .prefix(".inferperf-")
                .suffix(".part")
                .tempfile_in(&dir)
                .map_err(|e| TraceError::io(&dir, e))?;
            u.parts.push(tmp.path().to_path_buf());
            tmp
        };
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| TraceError::io(path, e))?;
        let gzip = opts.gzip.unwrap_or_else(|| {
            path.extension()
                .map(|e| e.eq_ignore_ascii_case("gz"))
                .unwrap_or(false)
        });
        let sink = if gzip {
            let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
            let (recycle, recycled) = sync_channel::<Vec<u8>>(2);
            let level = Compression::new(opts.level.min(9));
            let handle = std::thread::Builder::new()
                .name("trace-gzip".into())
                .spawn(move || -> io::Result<()> {
                    let mut enc = GzEncoder::new(BufWriter::with_capacity(FLUSH_AT, file), level);
                    for mut chunk in rx {
                        enc.write_all(&chunk)?;
                        chunk.clear();
                        let _ = recycle.try_send(chunk);
                    }
                    let mut inner = enc.finish()?;
                    inner.flush()?;
                    inner.get_ref().sync_all().or(Ok(()))
                })
                .map_err(|e| TraceError::io(path, e))?;
            Sink::Gzip {
                tx: Some(tx),
                recycled,
                handle: Some(handle),
            }
        } else {
            Sink::Plain(BufWriter::with_capacity(FLUSH_AT, file))
        };
        let mut w = TraceWriter {
            path: path.to_path_buf(),
            tmp: Some(tmp),
            sink,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            events: 0,
            bytes: 0,
        };
        w.buf.push(b'{');
        for (k, v) in header {
            write_json_string(&mut w.buf, k);
            w.buf.push(b':');
            w.buf.extend_from_slice(v.as_bytes());
            w.buf.push(b',');
        }
        w.buf.extend_from_slice(b"\"traceEvents\":[\n");
        Ok(w)
    }

    /// Appends one event given as raw JSON bytes (must be a complete, valid JSON object).
    pub fn write_raw_event(&mut self, raw: &[u8]) -> Result<(), TraceError> {
        self.begin_event().extend_from_slice(raw);
        self.end_event()
    }

    /// Returns the buffer to serialize the next event into; call `end_event` afterwards.
    pub fn begin_event(&mut self) -> &mut Vec<u8> {
        if self.events > 0 {
            self.buf.extend_from_slice(b",\n");
        }
        self.events += 1;
        &mut self.buf
    }

    /// Completes an event started with `begin_event`.
    pub fn end_event(&mut self) -> Result<(), TraceError> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Uncompressed bytes written so far (including buffered ones).
    pub fn bytes(&self) -> u64 {
        self.bytes + self.buf.len() as u64
    }

    /// Closes the event array, writes `trailer` keys, and atomically renames the file into
    /// place. Returns the uncompressed size in bytes.
    pub fn finish(mut self, trailer: &[(String, String)]) -> Result<u64, TraceError> {
        self.buf.extend_from_slice(b"\n]");
        for (k, v) in trailer {
            self.buf.push(b',');
            write_json_string(&mut self.buf, k);
            self.buf.push(b':');
            self.buf.extend_from_slice(v.as_bytes());
        }
        self.buf.extend_from_slice(b"}\n");
        self.flush_buf()?;
        let path = self.path.clone();
        match &mut self.sink {
            Sink::Plain(w) => {
                w.flush().map_err(|e| TraceError::io(&path, e))?;
                w.get_ref().sync_all().ok();
            }
            Sink::Gzip { tx, handle, .. } => {
                drop(tx.take());
                if let Some(h) = handle.take() {
                    match h.join() {
                        Ok(r) => r.map_err(|e| TraceError::io(&path, e))?,
                        Err(_) => {
                            return Err(TraceError::io(
                                &path,
                                io::Error::other("the compression thread panicked"),
                            ))
                        }
                    }
                }
            }
        }
        let tmp = self
            .tmp
            .take()
            .ok_or_else(|| TraceError::io(&path, io::Error::other("output already finished")))?;
        let mut u = unfinished();
        if u.closed {
            return Err(interrupted(&path));
        }
        let part = tmp.path().to_path_buf();
        u.parts.retain(|p| *p != part);
        tmp.persist(&path)
            .map_err(|e| TraceError::io(&path, e.error))?;
        Ok(self.bytes)
    }

    fn flush_buf(&mut self) -> Result<(), TraceError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.bytes += self.buf.len() as u64;
        match &mut self.sink {
            Sink::Plain(w) => {
                w.write_all(&self.buf)
                    .map_err(|e| TraceError::io(&self.path, e))?;
                self.buf.clear();
            }
            Sink::Gzip {
                tx,
                recycled,
                handle,
            } => {
                let next = recycled
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(FLUSH_AT * 2));
                let chunk = std::mem::replace(&mut self.buf, next);
                let sent = tx.as_ref().map(|t| t.send(chunk).is_ok()).unwrap_or(false);
                if !sent {
                    // The compressor stopped: report its error.
                    drop(tx.take());
                    let err = match handle.take().map(|h| h.join()) {
                        Some(Ok(Err(e))) => e,
                        _ => io::Error::other("the compression thread stopped"),
                    };
                    return Err(TraceError::io(&self.path, err));
                }
            }
        }
        Ok(())
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        // On an abandoned write, stop the compressor; the temp file removes itself.
        if let Sink::Gzip { tx, handle, .. } = &mut self.sink {
            drop(tx.take());
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
        if let Some(tmp) = &self.tmp {
            let part = tmp.path();
            unfinished().parts.retain(|p| p != part);
        }
    }
}
