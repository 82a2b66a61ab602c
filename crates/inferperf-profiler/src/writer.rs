//! The trace writer thread: serializes, gzips and atomically publishes trace files off the
//! engine thread, then reports them to their session.
//!
//! Jobs run in submission order on one thread, so a rank's "done" marker is processed after its
//! files, and [`TraceWriter::flush`] returns once everything submitted before it is on disk.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::ProfileError;
use crate::event::Event;
use crate::memory::{samples_to_events, MemSample};
use crate::session::{ProfileSession, TraceMerger};
use crate::trace_json::{write_trace, TraceMeta};

pub(crate) enum Job {
    Trace {
        path: PathBuf,
        meta: TraceMeta,
        events: Vec<Event>,
        session: Arc<ProfileSession>,
    },
    Memory {
        path: PathBuf,
        meta: TraceMeta,
        samples: Vec<MemSample>,
        session: Arc<ProfileSession>,
    },
    RankDone(Arc<ProfileSession>),
    Flush(mpsc::Sender<()>),
    /// Blocks the writer until the sender side is dropped or sends (tests prove that the
    /// engine side never waits for the writer).
    #[cfg(test)]
    Hold(mpsc::Receiver<()>),
}

/// Cloneable handle to the writer thread. One per process is enough; every rank manager can
/// share it. The thread exits when the last handle is dropped, after finishing queued jobs.
#[derive(Clone)]
pub struct TraceWriter {
    tx: mpsc::Sender<Job>,
    has_merger: bool,
}

impl std::fmt::Debug for TraceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWriter")
            .field("has_merger", &self.has_merger)
            .finish()
    }
}

impl TraceWriter {
    /// Start the writer thread (`inferperf-trace-writer`). `merger` serves `merge_profiles`.
    pub fn spawn(merger: Option<Arc<dyn TraceMerger>>) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let has_merger = merger.is_some();
        std::thread::Builder::new()
            .name("inferperf-trace-writer".into())
            .spawn(move || run(rx, merger))?;
        Ok(Self { tx, has_merger })
    }

    /// Whether `merge_profiles` can be honoured.
    pub fn has_merger(&self) -> bool {
        self.has_merger
    }

    pub(crate) fn submit(&self, job: Job) -> Result<(), ProfileError> {
        self.tx.send(job).map_err(|_| ProfileError::WriterGone)
    }

    /// Block until every job submitted before this call has finished.
    pub fn flush(&self) -> Result<(), ProfileError> {
        let (tx, rx) = mpsc::channel();
        self.submit(Job::Flush(tx))?;
        rx.recv().map_err(|_| ProfileError::WriterGone)
    }
}

fn run(rx: mpsc::Receiver<Job>, merger: Option<Arc<dyn TraceMerger>>) {
    for job in rx {
        match job {
            Job::Trace {
                path,
                meta,
                events,
                session,
            } => {
                let rank = meta.rank.global_rank();
                match write_gz_atomic(&path, |w| write_trace(w, &meta, &events)) {
                    Ok(()) => {
                        tracing::debug!(path = %path.display(), events = events.len(), "trace written");
                        session.add_trace(rank, path);
                    }
                    Err(err) => {
                        tracing::error!("{err}");
                        session.add_error(err.to_string());
                    }
                }
            }
            Job::Memory {
                path,
                meta,
                samples,
                session,
            } => {
                let events = samples_to_events(&samples);
                match write_gz_atomic(&path, |w| write_trace(w, &meta, &events)) {
                    Ok(()) => session.add_memory(path),
                    Err(err) => {
                        tracing::error!("{err}");
                        session.add_error(err.to_string());
                    }
                }
            }
            Job::RankDone(session) => session.rank_done(merger.as_deref()),
            Job::Flush(done) => {
                let _ = done.send(());
            }
            #[cfg(test)]
            Job::Hold(release) => {
                let _ = release.recv();
            }
        }
    }
}

/// Write `path` through a temp file in the same directory (gzip, fsync, publish), so readers
/// never see a partial trace, and never over an existing file ([`publish_new`]).
pub(crate) fn write_gz_atomic(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<GzEncoder<File>>) -> io::Result<()>,
) -> Result<(), ProfileError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let err = |source| ProfileError::Write {
        path: path.to_path_buf(),
        error: source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    // Short and fixed-length, so any final name that fits the file system has a temp name too.
    let tmp = dir.join(format!(
        ".inferperf-{}-{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let file = File::create_new(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 16, GzEncoder::new(file, Compression::fast()));
        body(&mut w)?;
        let gz = w.into_inner().map_err(|e| e.into_error())?;
        let file = gz.finish()?;
        file.sync_all()?;
        publish_new(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

/// Move the finished file `tmp` to `path` unless `path` exists (then `AlreadyExists`, and
/// `tmp` is left for the caller to remove). A hard link is atomic create-if-absent; on a file
/// system without hard links it falls back to check-then-rename.
pub(crate) fn publish_new(tmp: &Path, path: &Path) -> io::Result<()> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => std::fs::remove_file(tmp),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if path.try_exists()? => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
        Err(_) => std::fs::rename(tmp, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn atomic_write_leaves_only_the_final_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.trace.json.gz");
        write_gz_atomic(&path, |w| w.write_all(b"{\"traceEvents\": []}")).unwrap();
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["a.trace.json.gz".to_string()]);
        let mut s = String::new();
        flate2::read::GzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "{\"traceEvents\": []}");
    }

    #[test]
    fn failed_write_removes_the_temp_file_and_keeps_the_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.trace.json.gz");
        write_gz_atomic(&path, |w| w.write_all(b"old")).unwrap();
        let err = write_gz_atomic(&path, |_| Err(io::Error::other("boom"))).unwrap_err();
        assert!(err.to_string().contains("boom"));
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let mut s = String::new();
        flate2::read::GzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "old");
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.trace.json.gz");
        std::fs::write(&path, b"precious").unwrap();
        let err = write_gz_atomic(&path, |w| w.write_all(b"new")).unwrap_err();
        assert!(
            matches!(&err, ProfileError::Write { path: p, error } if p == &path && error.kind() == io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temp file is removed");
    }
}
