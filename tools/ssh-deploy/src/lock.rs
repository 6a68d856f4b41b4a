//! The deploy lock, held by the deploy's own SSH session on the host.
//!
//! A process on the host (see [`crate::plan::lock_holder_line`]), started on
//! a channel of the deploy's one SSH connection, takes a `flock` on
//! `.slipway/deploy.lock` and keeps it while it reads its stdin, where a
//! thread here sends a byte every [`BEAT`]. The kernel frees the lock when
//! that process ends: when ssh-deploy releases it (end of file), when the
//! connection closes (ssh-deploy killed or cancelled, the network cut), or
//! when no byte came for the heartbeat timeout (the network went silent).
//! So a lock never outlives its deploy, and nobody clears a stale one by
//! hand. Who holds it is written beside it (`holder.json`), for `lock status`.

use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::plan::{self, LOCK_TAG};
use crate::ssh::millis;

/// How often the heartbeat is sent.
const BEAT: Duration = Duration::from_secs(2);

/// How long the holder waits for a heartbeat before giving the lock up:
/// long enough for a step that holds the session for up to `io` (one SSH
/// call that waits for the host) to let the heartbeat through.
pub(crate) fn heartbeat_timeout(io: Duration) -> Duration {
    io * 2 + Duration::from_secs(10)
}

/// A lock held by this deploy's session; [`HeldLock::release`] frees it, and
/// so does dropping it, or the connection's end.
pub(crate) struct HeldLock {
    /// The holder's PID on the host.
    pub(crate) pid: u32,
    /// Whether the holder's `dd` stops at a byte count.
    exact_reads: bool,
    /// The word every step sent to the holder starts with.
    token: String,
    /// The holder's channel: the heartbeat's, and each step's in turn.
    channel: Arc<Mutex<Option<ssh2::Channel>>>,
    stop: Option<mpsc::Sender<()>>,
    beats: Option<std::thread::JoinHandle<()>>,
    lost: Arc<AtomicBool>,
    io: Duration,
}

/// What [`acquire`] found.
pub(crate) enum Acquired {
    /// The lock is ours.
    Held(HeldLock),
    /// Another deploy kept it past the wait.
    Busy,
}

/// Takes the lock on `lock_file`, waiting up to `wait` for another deploy
/// (calling `on_wait` once if it must wait).
pub(crate) fn acquire(
    session: &ssh2::Session,
    warm: Option<crate::ssh::Warm>,
    lock_file: &str,
    wait: Duration,
    io: Duration,
    mut on_wait: impl FnMut(),
) -> anyhow::Result<Acquired> {
    // At least 2 s: `lock status` takes the lock for an instant to probe it,
    // which must not turn away a deploy that does not want to wait.
    let token = plan::nonce();
    let line = plan::lock_holder_line(
        lock_file,
        wait.as_secs().max(2),
        heartbeat_timeout(io).as_secs(),
        &token,
    );
    session.set_timeout(millis(io));
    let mut channel = crate::ssh::start(session, &line, warm)
        .with_context(|| format!("cannot start the lock holder on `{lock_file}`"))?;
    let deadline = Instant::now() + wait.max(Duration::from_secs(2)) + io;
    let mut pending: Vec<u8> = Vec::new();
    let mut other = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim().to_owned();
            match line.strip_prefix(LOCK_TAG).map(str::trim) {
                Some("waiting") => on_wait(),
                Some("busy") => return Ok(Acquired::Busy),
                Some(locked) if locked.starts_with("locked ") => {
                    let mut words = locked["locked ".len()..].split_whitespace();
                    let pid = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                    let exact_reads = words.next() == Some("exact");
                    return Ok(Acquired::Held(HeldLock::start(
                        session,
                        channel,
                        Holder {
                            pid,
                            exact_reads,
                            token,
                        },
                        io,
                    )));
                }
                Some(other_tag) => {
                    anyhow::bail!("cannot take the lock `{lock_file}`: the host has {other_tag}")
                }
                None if !line.is_empty() => other.push(line),
                None => {}
            }
        }
        crate::cancel::check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            anyhow::bail!(
                "the host did not answer within {} while taking the lock `{lock_file}`",
                humantime::format_duration(wait + io)
            );
        }
        session.set_timeout(millis(left.min(Duration::from_millis(250))).max(1));
        match channel.read(&mut buffer) {
            Ok(0) => {
                session.set_timeout(millis(io));
                let output = other.join("; ");
                anyhow::bail!(
                    "cannot take the lock `{lock_file}`: {}",
                    crate::remote::reason(&output)
                );
            }
            Ok(n) => pending.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(error) => {
                session.set_timeout(millis(io));
                return Err(anyhow::Error::from(error).context(format!(
                    "lost the connection while taking the lock `{lock_file}`"
                )));
            }
        }
    }
}

/// What the holder said of itself, and the word its steps must carry.
struct Holder {
    pid: u32,
    exact_reads: bool,
    token: String,
}

impl HeldLock {
    fn start(
        session: &ssh2::Session,
        channel: ssh2::Channel,
        holder: Holder,
        io: Duration,
    ) -> HeldLock {
        session.set_timeout(millis(io));
        let (stop, stopped) = mpsc::channel::<()>();
        let lost = Arc::new(AtomicBool::new(false));
        let channel = Arc::new(Mutex::new(Some(channel)));
        let beats = {
            let lost = Arc::clone(&lost);
            let channel = Arc::clone(&channel);
            std::thread::spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(BEAT) {
                    let mut channel = channel.lock().unwrap_or_else(PoisonError::into_inner);
                    let Some(channel) = channel.as_mut() else {
                        break;
                    };
                    match channel.write(b"k") {
                        Ok(_) => {}
                        // Another step has the session non-blocking for a moment.
                        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(error) => {
                            tracing::debug!(%error, "the lock's heartbeat failed");
                            lost.store(true, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            })
        };
        HeldLock {
            pid: holder.pid,
            exact_reads: holder.exact_reads,
            token: holder.token,
            channel,
            stop: Some(stop),
            beats: Some(beats),
            lost,
            io,
        }
    }

    /// Whether the heartbeat failed: the connection is gone, and with it the lock.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Runs `code` (one line of shell) on the holder, with `data` on its
    /// stdin, which it must read exactly (see [`HeldLock::read_exactly`]);
    /// its exit status and output. A step on the holder costs no login
    /// shell. Waits for the host up to the I/O timeout.
    pub(crate) fn run(
        &self,
        session: &ssh2::Session,
        code: &str,
        data: &[u8],
    ) -> anyhow::Result<(i32, String)> {
        anyhow::ensure!(
            !code.contains('\n'),
            "a step of more than one line for the lock holder (a bug)"
        );
        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        let channel = channel
            .as_mut()
            .context("the lock was already released (a bug)")?;
        let nonce = plan::nonce();
        let mut message = format!("r{} {nonce} {code}\n", self.token).into_bytes();
        message.extend_from_slice(data);
        session.set_timeout(millis(self.io));
        let result = channel
            .write_all(&message)
            .map_err(anyhow::Error::from)
            .and_then(|()| crate::ssh::read_until_done(session, channel, &nonce, self.io));
        session.set_timeout(millis(self.io));
        if let Err(error) = &result
            && crate::ssh::is_connection_lost(error)
        {
            self.lost.store(true, Ordering::SeqCst);
        }
        result
    }

    /// Shell that reads the next `size` bytes of a step's stdin, exactly,
    /// and writes them to its stdout.
    pub(crate) fn read_exactly(&self, size: usize) -> String {
        match self.exact_reads {
            true => format!("dd bs=65536 count={size} iflag=count_bytes,fullblock 2>/dev/null"),
            false => format!("dd bs=1 count={size} 2>/dev/null"),
        }
    }

    /// Frees the lock: end of file to the holder, which exits; waits (up to
    /// the I/O timeout) until it has, so the next deploy finds it free.
    pub(crate) fn release(mut self, session: &ssh2::Session) -> anyhow::Result<()> {
        self.stop_beats();
        let Some(mut channel) = self
            .channel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        session.set_timeout(millis(self.io));
        channel.send_eof().context("cannot release the lock")?;
        let mut rest = Vec::new();
        let _ = channel.read_to_end(&mut rest);
        channel.wait_close().context("cannot release the lock")?;
        Ok(())
    }

    fn stop_beats(&mut self) {
        drop(self.stop.take());
        if let Some(beats) = self.beats.take() {
            let _ = beats.join();
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // The channel closes with the session: the holder sees end of file.
        self.stop_beats();
    }
}
