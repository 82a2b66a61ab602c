//! CPU time of the client's own threads (tokio workers, pacer), read from per-thread CPU clocks,
//! so that a server running in the same process (the embedded one) is not charged to the client.

use std::sync::{Arc, Mutex};

/// Registry of thread CPU clocks.
#[derive(Clone, Default)]
pub struct ThreadCpu {
    clocks: Arc<Mutex<Vec<libc::clockid_t>>>,
    /// CPU seconds of registered threads that have finished (see `finish_current`).
    finished: Arc<Mutex<f64>>,
}

impl std::fmt::Debug for ThreadCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let threads = self.clocks.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("ThreadCpu")
            .field("threads", &threads)
            .finish()
    }
}

impl ThreadCpu {
    /// Register the calling thread (call from the thread itself, e.g. `on_thread_start`).
    pub fn register_current(&self) {
        let mut id: libc::clockid_t = 0;
        // SAFETY: pthread_self() is always valid for the calling thread and `id` is a valid
        // out-pointer.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
        if rc == 0 {
            if let Ok(mut v) = self.clocks.lock() {
                v.push(id);
            }
        }
    }

    /// A registered thread that is about to exit moves its CPU time into the total (a dead
    /// thread's clock can no longer be read).
    pub fn finish_current(&self) {
        let mut id: libc::clockid_t = 0;
        // SAFETY: as in `register_current`.
        if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) } != 0 {
            return;
        }
        let secs = clock_seconds(id);
        if let (Ok(mut v), Ok(mut f)) = (self.clocks.lock(), self.finished.lock()) {
            v.retain(|&c| c != id);
            *f += secs;
        }
    }

    /// CPU seconds of the registered threads: live ones plus finished ones.
    pub fn seconds(&self) -> f64 {
        let live: f64 = match self.clocks.lock() {
            Ok(v) => v.iter().map(|&id| clock_seconds(id)).sum(),
            Err(_) => 0.0,
        };
        live + self.finished.lock().map(|f| *f).unwrap_or(0.0)
    }
}

fn clock_seconds(id: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; an invalid clock id only yields an error code.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc == 0 {
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    } else {
        0.0
    }
}

/// User + system CPU seconds of the whole process (getrusage), for reference.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Ask the kernel for the finest timer slack on this thread, so short sleeps wake on time.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and affects only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// The client's CPU clocks at one instant, to charge a run the CPU it used: the registered
/// client threads (runtime and pacer) and the whole process.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    client_s: f64,
    process_s: f64,
}

impl CpuMark {
    pub fn now(cpu: &ThreadCpu) -> Self {
        Self {
            client_s: cpu.seconds(),
            process_s: process_cpu_seconds(),
        }
    }

    /// CPU seconds of the client threads since the mark.
    pub fn client_since(&self, cpu: &ThreadCpu) -> f64 {
        cpu.seconds() - self.client_s
    }

    /// CPU seconds of the whole process since the mark.
    pub fn process_since(&self) -> f64 {
        process_cpu_seconds() - self.process_s
    }
}
