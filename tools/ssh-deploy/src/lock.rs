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
//!
//! The holder is the deploy's one login shell on the host: it ran the
//! preflight before taking the lock, and it runs the deploy's later steps
//! ([`HeldLock::run`]: the records) and starts its command line
//! ([`HeldLock::run_line`]), each sent on its stdin with a token only this
//! deploy knows. Each login shell runs the user's rc files (100–500 ms where
//! they are heavy), so one per deploy is what a deploy costs on the host.

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

    /// Whether the holder starts the command line too (see
    /// [`HeldLock::run_line`]); else it gets a login shell of its own.
    pub(crate) fn runs_lines(&self) -> bool {
        self.exact_reads
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
        let nonce = plan::nonce();
        let mut held = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        let result = (|| {
            let channel = self.begin(&mut held, session, &nonce, code)?;
            channel.write_all(data)?;
            crate::ssh::read_until_done(session, channel, &nonce, self.io)
        })();
        self.settle(&mut held, session, result.as_ref().err());
        let (status, output) = result?;
        anyhow::ensure!(
            status != plan::SHORT_READ,
            "the lock holder on the host stopped: what was sent for `{code}` did not arrive whole"
        );
        Ok((status, output))
    }

    /// Sends the start of a step (`r`, the token, `nonce` and `code`) on
    /// the holder's channel, and gives the channel for the rest.
    fn begin<'c>(
        &self,
        held: &'c mut Option<ssh2::Channel>,
        session: &ssh2::Session,
        nonce: &str,
        code: &str,
    ) -> anyhow::Result<&'c mut ssh2::Channel> {
        anyhow::ensure!(
            !code.contains('\n'),
            "a step of more than one line for the lock holder (a bug)"
        );
        let channel = held
            .as_mut()
            .context("the lock holder is gone (released, or its stream was cut)")?;
        session.set_timeout(millis(self.io));
        channel.write_all(format!("r{} {nonce} {code}\n", self.token).as_bytes())?;
        Ok(channel)
    }

    /// After a step: one that failed on the way may have left the holder
    /// mid-read, where a heartbeat would be taken for the step's bytes, so
    /// its channel is closed (the holder sees the end, or the silence, and
    /// frees the lock) and the lock counts as lost.
    fn settle(
        &self,
        held: &mut Option<ssh2::Channel>,
        session: &ssh2::Session,
        error: Option<&anyhow::Error>,
    ) {
        session.set_timeout(millis(self.io));
        if error.is_some()
            && let Some(channel) = held.take()
        {
            self.lost.store(true, Ordering::SeqCst);
            session.set_blocking(false);
            drop(channel);
            session.set_blocking(true);
        }
    }

    /// Runs a command line from the holder, without a login shell of its
    /// own: `line` (as `exec_streamed` would run it, with `$1` for the SSH
    /// session's PID) becomes a session of its own on the host (`setsid`),
    /// reading `stdin` (the prefix, then the files as one tar stream)
    /// through a FIFO in `state_dir`, or `/dev/null` when `stdin` is empty,
    /// while the holder goes back to its heartbeat. The holder reads the stream by its exact size, and a
    /// watchdog ends its read when no byte came for the heartbeat timeout;
    /// `line` drains whatever it did not read, so the holder's next byte
    /// is always the next step's. A stream cut short here (a file that
    /// changed, `--timeout`, a signal) is completed with zeros, which the
    /// host's `tar` refuses (the end marker is missing). Returns as
    /// `exec_streamed` does: how the line ended and what was sent of each
    /// file; on a timeout or a signal the line still runs (stop it with
    /// `plan::stop_command_line`).
    #[allow(
        clippy::too_many_arguments,
        reason = "the session, the line, its stdin and its bounds"
    )]
    pub(crate) fn run_line(
        &self,
        session: &ssh2::Session,
        state_dir: &str,
        line: &str,
        stdin: crate::ssh::Stdin<'_>,
        timeout: Duration,
        is_cancellable: bool,
        on_line: impl FnMut(&str),
    ) -> anyhow::Result<(crate::ssh::Exit, Vec<crate::tarball::Sent>)> {
        let deadline = Instant::now() + timeout;
        let total = stdin.prefix.len() as u64
            + match stdin.files {
                [] => 0,
                files => crate::tarball::stream_size(files),
            };
        let (step, done) = (plan::nonce(), plan::nonce());
        let max_secs = (timeout + self.io).as_secs();
        let code = plan::holder_line_step(state_dir, line, total, max_secs, &step, &done);
        let mut held = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        // Whether the holder got every byte of the stream: only then is its
        // next byte the next step's.
        let mut in_step = false;
        let result = (|| {
            let channel = self.begin(&mut held, session, &step, &code)?;
            let mut counted = Counted {
                inner: &mut *channel,
                count: 0,
            };
            counted.write_all(stdin.prefix)?;
            let mut read_error = None;
            let mut sent = Vec::new();
            if !stdin.files.is_empty() {
                match crate::tarball::send(stdin.files, stdin.mtime, &mut counted, deadline) {
                    Ok(all) => sent = all,
                    Err(crate::tarball::Stopped::Read(error)) => read_error = Some(error),
                    Err(crate::tarball::Stopped::Write { name, error }) => {
                        // Cut by `--timeout` or a signal, not by the
                        // connection: the holder is still reading, and gets
                        // the rest as zeros.
                        // Where the zeros cannot go within a few seconds
                        // (a slow network), the channel is closed instead:
                        // the holder's read ends short, and the lock with it.
                        if crate::cancel::requested().is_some() || Instant::now() >= deadline {
                            let left = total.saturating_sub(counted.count);
                            in_step = pad(&mut counted, left, self.io.min(PAD_WITHIN)).is_ok();
                        }
                        return Err(anyhow::Error::from(error)
                            .context(format!("cannot upload `{name}` to the host")));
                    }
                }
            }
            let left = total.saturating_sub(counted.count);
            pad(&mut counted, left, self.io)?;
            in_step = true;
            let exit = self
                .watch(
                    session,
                    channel,
                    (&step, &done),
                    deadline,
                    is_cancellable,
                    on_line,
                )
                .inspect_err(|_| in_step = false)?;
            if let Some(error) = read_error {
                return Err(error);
            }
            Ok((exit, sent))
        })();
        self.settle(
            &mut held,
            session,
            result.as_ref().err().filter(|_| !in_step),
        );
        result
    }

    /// Reads the line's output up to its end (`done`'s marker), handing on
    /// each line, and keeps the holder's heartbeat going meanwhile.
    fn watch(
        &self,
        session: &ssh2::Session,
        channel: &mut ssh2::Channel,
        (step, done): (&str, &str),
        deadline: Instant,
        is_cancellable: bool,
        mut on_line: impl FnMut(&str),
    ) -> anyhow::Result<crate::ssh::Exit> {
        use crate::ssh::Exit;
        let mut lines = crate::ssh::Lines::default();
        let mut buffer = [0u8; 16 * 1024];
        let mut beat = Instant::now();
        // The holder's step may end after the line; the line's end is what
        // counts, unless the step failed (then the line never started).
        let mut ended: Option<Result<i32, i32>> = None;
        // An empty line is held back: the host prints one before each marker.
        let mut empty = false;
        let mut handle = |text: &str, ended: &mut Option<Result<i32, i32>>| {
            if let Some(rest) = text.strip_prefix(plan::DONE_TAG) {
                let (nonce, status) = rest.split_once(' ').unwrap_or((rest, ""));
                let status = status.trim().parse::<i32>().unwrap_or(-1);
                if nonce == done {
                    empty = false;
                    *ended = Some(Ok(status));
                    return;
                }
                if nonce == step {
                    empty = false;
                    if status != 0 && ended.is_none() {
                        *ended = Some(Err(status));
                    }
                    return;
                }
            }
            if std::mem::take(&mut empty) {
                on_line("");
            }
            match text.is_empty() {
                true => empty = true,
                false => on_line(text),
            }
        };
        loop {
            match ended {
                Some(Ok(status)) => break Ok(Exit::Status(status)),
                Some(Err(plan::SHORT_READ)) => anyhow::bail!(
                    "the lock holder on the host stopped: the upload did not arrive whole"
                ),
                Some(Err(status)) => break Ok(Exit::Status(status)),
                None => {}
            }
            if let Some(signal) = crate::cancel::requested().filter(|_| is_cancellable) {
                break Ok(Exit::Cancelled(signal));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(Exit::TimedOut);
            }
            if beat.elapsed() >= BEAT {
                beat = Instant::now();
                // A host slow to take the stream (its window full) is no
                // lost connection: the next read says if it is one.
                match channel.write(b"k") {
                    Ok(_) => {}
                    Err(error)
                        if matches!(
                            error.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(error) => {
                        return Err(anyhow::Error::from(error)
                            .context("lost the connection while the command ran"));
                    }
                }
            }
            session.set_timeout(millis(left.min(Duration::from_millis(250))).max(1));
            match channel.read(&mut buffer) {
                Ok(0) => anyhow::bail!("the lock holder on the host ended while the command ran"),
                Ok(n) => lines.push(&buffer[..n], &mut |text: &str| handle(text, &mut ended)),
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
                Err(error) => {
                    return Err(
                        anyhow::Error::from(error).context("lost the remote command's output")
                    );
                }
            }
        }
    }

    /// Shell that reads the next `size` bytes of a step's stdin, exactly,
    /// and writes them to its stdout; bounded by the heartbeat timeout.
    pub(crate) fn read_exactly(&self, size: usize) -> String {
        match self.exact_reads {
            true => format!(
                "timeout $slipway_w dd bs=65536 count={size} iflag=count_bytes,fullblock 2>/dev/null"
            ),
            false => format!("timeout $slipway_w dd bs=1 count={size} 2>/dev/null"),
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

/// A writer that counts what it took.
struct Counted<'a, W> {
    inner: &'a mut W,
    count: u64,
}

impl<W: std::io::Write> std::io::Write for Counted<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// How long the rest of a stream stopped by `--timeout` or a signal may
/// take to send as zeros.
const PAD_WITHIN: Duration = Duration::from_secs(5);

/// Writes `left` zero bytes, within `io`.
fn pad(out: &mut impl std::io::Write, mut left: u64, io: Duration) -> anyhow::Result<()> {
    let zeros = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + io;
    while left > 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "cannot complete the upload's stream within {}",
            humantime::format_duration(io)
        );
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(zeros.len());
        out.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    Ok(())
}
