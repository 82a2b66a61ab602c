//! Process limits both sides raise before they hold many connections: the server for its
//! `--max-connections`, the load generator for its concurrent streams (one descriptor each).

/// Raise the soft `RLIMIT_NOFILE` to `wanted` (at most the hard limit); the soft limit in
/// effect afterwards, `None` if it cannot be read.
#[cfg(unix)]
#[allow(clippy::useless_conversion)] // `rlim_t` is `u64` here but narrower on some targets.
pub fn raise_open_file_limit(wanted: u64) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let current = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
    if current >= wanted {
        return Some(current);
    }
    let target = libc::rlim_t::try_from(wanted)
        .unwrap_or(libc::rlim_t::MAX)
        .min(limit.rlim_max);
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct it is given, which lives on this stack.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        Some(u64::try_from(target).unwrap_or(u64::MAX))
    } else {
        Some(current)
    }
}

#[cfg(not(unix))]
pub fn raise_open_file_limit(_wanted: u64) -> Option<u64> {
    None
}
