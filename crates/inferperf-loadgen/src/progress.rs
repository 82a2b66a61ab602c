//! The progress bar: completed/failed and live output throughput, refreshed from atomic
//! counters by a ticker (never from the hot path). Hidden off a TTY or with `--disable-tqdm`.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::runner::LiveCounters;

/// A bar over `total` requests, hidden when `disabled` or stderr is not a terminal.
pub fn bar(total: usize, disabled: bool) -> ProgressBar {
    let pb = ProgressBar::new(total as u64);
    if disabled || !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

/// Refresh `pb` every 200 ms until the returned handle is aborted.
pub fn spawn_ticker(pb: ProgressBar, c: Arc<LiveCounters>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let ok = c.completed.load(Ordering::Relaxed);
            let failed = c.failed.load(Ordering::Relaxed);
            let toks = c.output_tokens.load(Ordering::Relaxed);
            let now = Instant::now();
            let dt = now.duration_since(last.0).as_secs_f64();
            let rate = if dt > 0.0 {
                (toks - last.1) as f64 / dt
            } else {
                0.0
            };
            if now.duration_since(last.0) >= Duration::from_secs(1) {
                last = (now, toks);
            }
            pb.set_position((ok + failed) as u64);
            pb.set_message(format!(
                "ok {ok} failed {failed} | {rate:.0} tok/s (avg {:.0})",
                toks as f64 / start.elapsed().as_secs_f64().max(1e-9)
            ));
        }
    })
}
