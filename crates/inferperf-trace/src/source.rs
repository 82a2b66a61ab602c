//! Byte sources for the reader: plain files, or gzip files decompressed on a helper thread so
//! that decompression overlaps JSON scanning (two stages, two cores).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use flate2::read::MultiGzDecoder;

use crate::error::TraceError;

/// Size of one decompressed chunk handed from the decompression thread to the scanner.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight: bounds the memory held between the two threads (`CHUNK * DEPTH`).
const DEPTH: usize = 4;

/// Opens `path` for reading; gzip (detected by its magic bytes, not the name) is decompressed on
/// a background thread.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, TraceError> {
    let mut file = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = read_full(&mut file, &mut magic).map_err(|e| TraceError::io(path, e))?;
    let head = magic[..n].to_vec();
    let rest = io::Cursor::new(head).chain(file);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(ThreadedGunzip::spawn(rest)))
    } else {
        Ok(Box::new(BufReader::with_capacity(CHUNK, rest)))
    }
}

/// Returns true when `path` starts with the gzip magic bytes.
pub fn is_gzip(path: &Path) -> Result<bool, TraceError> {
    let mut file = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = read_full(&mut file, &mut magic).map_err(|e| TraceError::io(path, e))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Like `read_full`, but keeps the bytes read before an error: (bytes read, error if any).
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// A `Read` over chunks produced by a decompression thread.
///
/// The thread stops on its own when the reader is dropped (its next send fails).
struct ThreadedGunzip {
    rx: Receiver<io::Result<Vec<u8>>>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    spawn_failed: bool,
    _handle: Option<JoinHandle<()>>,
}

impl ThreadedGunzip {
    fn spawn<R: Read + Send + 'static>(inner: R) -> Self {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
        let (recycle, recycled) = sync_channel::<Vec<u8>>(DEPTH + 2);
        let handle = std::thread::Builder::new()
            .name("trace-gunzip".into())
            .spawn(move || {
                let mut dec = MultiGzDecoder::new(BufReader::with_capacity(CHUNK, inner));
                loop {
                    let mut buf = recycled.try_recv().unwrap_or_default();
                    buf.resize(CHUNK, 0);
                    let (n, err) = read_some(&mut dec, &mut buf);
                    if n > 0 {
                        buf.truncate(n);
                        if tx.send(Ok(buf)).is_err() {
                            return;
                        }
                    }
                    match err {
                        Some(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                        None if n == 0 => return,
                        None => {}
                    }
                }
            })
            .ok();
        ThreadedGunzip {
            rx,
            recycle,
            current: Vec::new(),
            pos: 0,
            done: false,
            spawn_failed: handle.is_none(),
            _handle: handle,
        }
    }
}

impl Read for ThreadedGunzip {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.spawn_failed {
            return Err(io::Error::other("could not start the decompression thread"));
        }
        while self.pos >= self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let old = std::mem::replace(&mut self.current, chunk);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
