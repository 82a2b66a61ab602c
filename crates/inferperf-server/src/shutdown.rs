//! Process signals that end a long-running command: Ctrl-C (SIGINT) and SIGTERM (what CI
//! runners, `timeout` and Kubernetes send). The server stops on them; a benchmark stops its run
//! and still writes what completed.

/// Which signal asked the process to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl StopSignal {
    /// The shell's exit status for a process ended by this signal (128 + number).
    pub fn exit_status(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }

    /// How the signal is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "interrupted (Ctrl-C)",
            StopSignal::Terminate => "terminated (SIGTERM)",
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM and says which. If a handler cannot be installed,
/// that signal is ignored (logged) and the other still works.
pub async fn shutdown_signal() -> StopSignal {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {
            tracing::info!("received Ctrl-C");
            StopSignal::Interrupt
        }
        _ = term => {
            tracing::info!("received SIGTERM");
            StopSignal::Terminate
        }
    }
}
