//! Progress reporting for long work: an `indicatif` spinner on stderr when it is a terminal,
//! nothing otherwise (and nothing for library callers that pass `Progress::hidden()`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A handle the long-running functions tick with the number of bytes they have read.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A progress display on stderr, hidden automatically when stderr is not a terminal.
    pub fn stderr(message: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg}: {bytes} read ({bytes_per_sec}) {elapsed}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Progress { bar }
    }

    /// No display at all.
    pub fn hidden() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    /// Adds `bytes` to the count of bytes read.
    pub fn inc(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Changes the message (e.g. the file being read).
    pub fn set_message(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
    }

    /// Removes the display.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
