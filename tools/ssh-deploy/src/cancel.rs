//! SIGINT and SIGTERM (a cancelled CI job) turned into a flag that a
//! deploy's steps look at, so that it stops its remote command, removes its
//! temporary files, records the release as `cancelled` and releases the
//! lock before exiting 130 or 143. A second signal exits at once (the host
//! then frees the lock by itself when the connection closes).

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal received, 0 for none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Catches SIGINT and SIGTERM from now on, on a thread of its own.
pub(crate) fn install() {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!(%error, "cannot watch for SIGINT and SIGTERM; a cancelled deploy leaves its cleanup to the host");
            return;
        }
    };
    // Registered here, before the deploy starts, not when the thread runs.
    let signals = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    });
    let (mut interrupt, mut terminate) = match signals {
        Ok(signals) => signals,
        Err(error) => {
            tracing::warn!(%error, "cannot watch for SIGINT and SIGTERM; a cancelled deploy leaves its cleanup to the host");
            return;
        }
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            loop {
                let received = tokio::select! {
                    _ = interrupt.recv() => 2,
                    _ = terminate.recv() => 15,
                };
                if SIGNAL.swap(received, Ordering::SeqCst) != 0 {
                    // A second signal: the user insists.
                    std::process::exit(128 + received);
                }
                tracing::warn!(
                    signal = name(received),
                    "cancelling: stopping the remote command, cleaning up and releasing the lock"
                );
            }
        });
    });
}

/// The signal received, if any.
pub(crate) fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// `SIGINT` or `SIGTERM`.
pub(crate) fn name(signal: i32) -> &'static str {
    match signal {
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// The exit status for a run cut short by a signal: 128 + its number.
pub fn exit_status() -> Option<u8> {
    requested().and_then(|signal| u8::try_from(128 + signal).ok())
}

/// A step given up because of a signal.
#[derive(Debug, thiserror::Error)]
#[error("cancelled by {}", name(*.0))]
pub(crate) struct Cancelled(pub(crate) i32);

/// `Err(Cancelled)` once a signal came.
pub(crate) fn check() -> Result<(), Cancelled> {
    requested().map_or(Ok(()), |signal| Err(Cancelled(signal)))
}
