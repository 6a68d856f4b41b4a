//! SIGINT and SIGTERM (a cancelled CI job) watched on a thread of their
//! own, for the deploy tools that stop on the first one.

/// Registers SIGINT and SIGTERM now, and runs `on_signal` with the first
/// one's number (2 or 15) on a thread of its own; `on_signal` cleans up
/// and exits. Without a way to watch, a warning says so, ending with
/// `unwatched` (what a cancelled deploy then leaves behind).
pub fn on_first_signal(unwatched: &'static str, on_signal: impl FnOnce(i32) + Send + 'static) {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!(%error, "cannot watch for SIGINT and SIGTERM; {unwatched}");
            return;
        }
    };
    // Registered here, before the caller goes on, not when the thread runs.
    let signals = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    });
    let (mut interrupt, mut terminate) = match signals {
        Ok(signals) => signals,
        Err(error) => {
            tracing::warn!(%error, "cannot watch for SIGINT and SIGTERM; {unwatched}");
            return;
        }
    };
    std::thread::spawn(move || {
        let received = runtime.block_on(async move {
            tokio::select! {
                _ = interrupt.recv() => 2,
                _ = terminate.recv() => 15,
            }
        });
        on_signal(received);
    });
}
