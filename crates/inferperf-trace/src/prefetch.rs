//! A trace's events read -- and, for the fast paths, scanned -- on a helper thread and handed
//! over in batches, so that delimiting and validating events overlaps what the caller does with
//! them (merge: rewriting and writing). Memory stays bounded: a few batches of about
//! [`BATCH_BYTES`] are in flight.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::error::TraceError;
use crate::fastscan::Member;
use crate::reader::TraceReader;

/// Event bytes per batch.
pub const BATCH_BYTES: usize = 1 << 20;
/// Batches queued between the threads.
const DEPTH: usize = 4;

#[derive(Clone, Copy)]
struct Event {
    start: usize,
    end: usize,
    members_start: usize,
    members_end: usize,
    scanned: bool,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    members: Vec<Member>,
    events: Vec<Event>,
    /// Reader position after the batch's last event.
    position: u64,
}

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.members.clear();
        self.events.clear();
    }

    fn push(&mut self, raw: &[u8], scanned: bool, members: &[Member]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(raw);
        let members_start = self.members.len();
        if scanned {
            self.members.extend_from_slice(members);
        }
        self.events.push(Event {
            start,
            end: self.bytes.len(),
            members_start,
            members_end: self.members.len(),
            scanned,
        });
    }
}

/// Events of one trace, read on a background thread.
pub struct Prefetch {
    path: std::path::PathBuf,
    rx: Receiver<Result<Batch, TraceError>>,
    recycle: SyncSender<Batch>,
    handle: Option<JoinHandle<TraceReader>>,
    batch: Batch,
    next: usize,
    done: bool,
}

impl Prefetch {
    /// Starts reading `reader`'s remaining events on a thread; with `scan`, events are read with
    /// [`TraceReader::next_event_scanned`], else with [`TraceReader::next_event`].
    pub fn spawn(mut reader: TraceReader, scan: bool) -> Result<Self, TraceError> {
        let path = reader.path().to_path_buf();
        let (tx, rx) = sync_channel::<Result<Batch, TraceError>>(DEPTH);
        let (recycle, recycled) = sync_channel::<Batch>(DEPTH + 2);
        let handle = std::thread::Builder::new()
            .name("trace-scan".into())
            .spawn(move || {
                let mut members = Vec::new();
                loop {
                    let mut b = recycled.try_recv().unwrap_or_default();
                    b.clear();
                    let mut end: Option<Result<(), TraceError>> = None;
                    while b.bytes.len() < BATCH_BYTES {
                        let next = if scan {
                            reader.next_event_scanned(&mut members)
                        } else {
                            reader.next_event().map(|e| e.map(|raw| (raw, false)))
                        };
                        match next {
                            Ok(Some((raw, scanned))) => b.push(raw, scanned, &members),
                            Ok(None) => {
                                end = Some(Ok(()));
                                break;
                            }
                            Err(e) => {
                                end = Some(Err(e));
                                break;
                            }
                        }
                    }
                    b.position = reader.position();
                    if !b.events.is_empty() && tx.send(Ok(b)).is_err() {
                        return reader;
                    }
                    match end {
                        None => {}
                        Some(Ok(())) => return reader,
                        Some(Err(e)) => {
                            let _ = tx.send(Err(e));
                            return reader;
                        }
                    }
                }
            })
            .map_err(|e| TraceError::io(&path, e))?;
        Ok(Prefetch {
            path,
            rx,
            recycle,
            handle: Some(handle),
            batch: Batch::default(),
            next: 0,
            done: false,
        })
    }

    /// The next event and whether `members` holds its scanned members (as
    /// [`TraceReader::next_event_scanned`] returns them); `None` after the last one.
    pub fn next_event(
        &mut self,
        members: &mut Vec<Member>,
    ) -> Result<Option<(&[u8], bool)>, TraceError> {
        while self.next >= self.batch.events.len() {
            if self.done {
                return Ok(None);
            }
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    let old = std::mem::replace(&mut self.batch, b);
                    let _ = self.recycle.try_send(old);
                    self.next = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => self.done = true,
            }
        }
        let ev = self.batch.events[self.next];
        self.next += 1;
        members.clear();
        members.extend_from_slice(&self.batch.members[ev.members_start..ev.members_end]);
        Ok(Some((&self.batch.bytes[ev.start..ev.end], ev.scanned)))
    }

    /// Reader position (decompressed bytes) after the current batch.
    pub fn position(&self) -> u64 {
        self.batch.position
    }

    /// Waits for the reading thread and returns the reader (metadata, warnings...). Call after
    /// `next_event` returned `None`.
    pub fn finish(mut self) -> Result<TraceReader, TraceError> {
        let handle = self.handle.take();
        let path = std::mem::take(&mut self.path);
        drop(self);
        match handle.map(JoinHandle::join) {
            Some(Ok(reader)) => Ok(reader),
            _ => Err(TraceError::io(
                path,
                std::io::Error::other("the trace reading thread stopped unexpectedly"),
            )),
        }
    }
}
