//! One SSH connection per host: connect, check the host key, authenticate,
//! run a command with its output streamed, and talk SFTP.
//!
//! ssh2 is blocking; each host runs in its own thread. Nothing here decides
//! what a deploy is; that is the `deploy` module.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use sha2::Digest as _;
use slipway_config::Host;
use slipway_core::secret::{ExposeSecret as _, SecretString};

/// How to authenticate.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// A private key file, and its passphrase if it is encrypted.
    KeyFile(PathBuf, Option<SecretString>),
    /// A private key held in memory (from an environment variable), and its
    /// passphrase if it is encrypted.
    KeyMemory(SecretString, Option<SecretString>),
    /// The keys of the running ssh-agent.
    Agent,
}

/// How to trust a host key.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// Look the host up in a known_hosts file; `accept_new` adds unknown hosts.
    KnownHosts { path: PathBuf, accept_new: bool },
    /// Accept only this `SHA256:…` fingerprint.
    Fingerprint(String),
}

/// Why a host could not be reached or trusted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SshError {
    // The causes are printed after the message (`caused by`, or `: ` in a
    // host's report), so no message repeats its `source`.
    #[error("cannot resolve `{name}` (host `{host}`, port {port})")]
    Resolve {
        host: String,
        name: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot connect to `{host}` at `{address}`")]
    Connect {
        host: String,
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("ssh handshake with `{host}` failed")]
    Handshake { host: String, source: ssh2::Error },
    #[error(
        "host key of `{host}` is unknown: its fingerprint is `{fingerprint}`; compare it with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host, then add it to `{known_hosts}`, pin it with `--host-key-fingerprint {fingerprint}`, or trust it on first use with `--accept-new-host-key`"
    )]
    UnknownHostKey {
        host: String,
        fingerprint: String,
        known_hosts: String,
    },
    #[error(
        "host key of `{host}` has CHANGED: it is now `{fingerprint}`, which `{known_hosts}` does not list for this host; someone may be intercepting the connection, or the host was reinstalled; refusing to connect. Only if the change is expected (compare `{fingerprint}` with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host): remove the old key with `ssh-keygen -R '{entry}' -f '{known_hosts}'` and deploy once with `--accept-new-host-key`, or pin the new key with `--host-key-fingerprint {fingerprint}`"
    )]
    ChangedHostKey {
        host: String,
        fingerprint: String,
        known_hosts: String,
        /// The host's name in known_hosts (`host` or `[host]:port`).
        entry: String,
    },
    #[error(
        "host key of `{host}` is `{fingerprint}`, not the pinned `{expected}` of `--host-key-fingerprint`; refusing to connect"
    )]
    FingerprintMismatch {
        host: String,
        fingerprint: String,
        expected: String,
    },
    #[error("cannot read known_hosts `{path}`")]
    ReadKnownHosts {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot parse known_hosts `{path}`")]
    KnownHosts { path: String, source: ssh2::Error },
    #[error("cannot add `{host}` to known_hosts `{path}`")]
    AddKnownHost {
        host: String,
        path: String,
        source: std::io::Error,
    },
    #[error("`{host}` names no user and neither $USER nor $LOGNAME is set; write `user@host`")]
    NoUser { host: String },
    #[error("`{host}` sent no host key")]
    NoHostKey { host: String },
    #[error("cannot reach `{host}` through the jump host `{jump}` (`ProxyJump`): {why}")]
    Jump {
        host: String,
        jump: String,
        why: String,
    },
    #[error("authentication as `{user}` on `{host}` failed ({method})")]
    Auth {
        user: String,
        host: String,
        method: &'static str,
        source: ssh2::Error,
    },
}

/// The `SHA256:…` fingerprint of a host key blob, as OpenSSH prints it
/// (base64 without padding).
pub(crate) fn fingerprint(key: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(key))
    )
}

/// The name known_hosts uses for `host`: `host` on port 22, else `[host]:port`.
pub(crate) fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Ciphers in order of preference.
const CIPHERS: &str = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr";

/// Serialises appends to known_hosts when several hosts are trusted at once.
static KNOWN_HOSTS_WRITE: Mutex<()> = Mutex::new(());

/// Where and as whom to connect: a host as written, with what the ssh
/// config adds (explicit values win).
#[derive(Debug, Clone)]
struct Target {
    /// As written (`user@alias:port`), for messages.
    shown: String,
    /// The name or address connected to (`HostName`, else the host).
    name: String,
    port: u16,
    user: String,
    identity_files: Vec<PathBuf>,
    /// `ProxyJump` hops, in order.
    jumps: Vec<String>,
}

impl Target {
    fn resolve(
        host: &Host,
        default_user: Option<&str>,
        config: Option<&crate::ssh_config::SshConfig>,
    ) -> Result<Target, SshError> {
        let settings = config.map(|c| c.lookup(&host.host)).unwrap_or_default();
        let shown = host.to_string();
        let user = host
            .user
            .clone()
            .or(settings.user)
            .or(default_user.map(str::to_owned))
            .ok_or_else(|| SshError::NoUser {
                host: shown.clone(),
            })?;
        Ok(Target {
            name: settings.host_name.unwrap_or_else(|| host.host.clone()),
            port: host.port.or(settings.port).unwrap_or(22),
            user,
            identity_files: settings.identity_files,
            jumps: settings.proxy_jump,
            shown,
        })
    }
}

/// Connects to `host`, checks its key by `trust` and authenticates by
/// `auth`. With an ssh config, the host's `HostName`, `User`, `Port`,
/// `IdentityFile` (tried before ssh-agent when no key is given) and
/// `ProxyJump` apply where slipway.toml and the flags say nothing; each
/// jump host is connected to (and trusted, and authenticated to) in turn,
/// and the next connection runs through a direct-tcpip channel of the one
/// before.
pub(crate) fn connect(
    host: &Host,
    default_user: Option<&str>,
    auth: &Auth,
    trust: &Trust,
    timeout: Duration,
    config: Option<&crate::ssh_config::SshConfig>,
) -> Result<ssh2::Session, SshError> {
    let target = Target::resolve(host, default_user, config)?;
    let mut previous: Option<(ssh2::Session, String)> = None;
    for hop in &target.jumps {
        let hop_host = hop.parse::<Host>().map_err(|error| SshError::Jump {
            host: target.shown.clone(),
            jump: hop.clone(),
            why: format!("`ProxyJump {hop}` is not `[user@]host[:port]`: {error}"),
        })?;
        let hop_target = Target {
            jumps: Vec::new(),
            ..Target::resolve(&hop_host, default_user, config)?
        };
        let stream = match previous.take() {
            None => tcp_connect(&hop_target, timeout)?,
            Some((session, via)) => relay(session, &via, &hop_target)?,
        };
        let session = handshake(stream, &hop_target, auth, trust, timeout)?;
        previous = Some((session, hop_target.shown.clone()));
    }
    let stream = match previous {
        None => tcp_connect(&target, timeout)?,
        Some((session, via)) => relay(session, &via, &target)?,
    };
    handshake(stream, &target, auth, trust, timeout)
}

fn tcp_connect(target: &Target, timeout: Duration) -> Result<TcpStream, SshError> {
    let resolve_error = |source| SshError::Resolve {
        host: target.shown.clone(),
        name: target.name.clone(),
        port: target.port,
        source,
    };
    let address = (target.name.as_str(), target.port)
        .to_socket_addrs()
        .map_err(resolve_error)?
        .next()
        .ok_or_else(|| resolve_error(std::io::Error::other("the name resolves to no address")))?;
    let tcp =
        TcpStream::connect_timeout(&address, timeout).map_err(|source| SshError::Connect {
            host: target.shown.clone(),
            address,
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// A local stream that carries a direct-tcpip channel of `session` (the
/// jump host `via`) to `target`: a loopback socket pair, the far end
/// relayed to the channel by a thread that owns the jump session and ends
/// when either side closes. (libssh2 needs a socket; this makes one of a
/// channel.)
fn relay(session: ssh2::Session, via: &str, target: &Target) -> Result<TcpStream, SshError> {
    let jump_error = |why: String| SshError::Jump {
        host: target.shown.clone(),
        jump: via.to_owned(),
        why,
    };
    let channel = session
        .channel_direct_tcpip(&target.name, target.port, None)
        .map_err(|error| {
            jump_error(format!(
                "the jump host cannot open a channel to `{}:{}`: {error}",
                target.name, target.port
            ))
        })?;
    let local =
        |error: std::io::Error| jump_error(format!("cannot open a loopback relay: {error}"));
    let listener =
        std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).map_err(local)?;
    let client = TcpStream::connect(listener.local_addr().map_err(local)?).map_err(local)?;
    let (server, _) = listener.accept().map_err(local)?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    std::thread::Builder::new()
        .name(format!("jump {via}"))
        .spawn(move || pump_channel(session, channel, server))
        .map_err(local)?;
    Ok(client)
}

/// The jump host's relay: runs until either side ends, then closes both.
fn pump_channel(session: ssh2::Session, mut channel: ssh2::Channel, mut socket: TcpStream) {
    let never = std::sync::atomic::AtomicBool::new(false);
    // The relay's poll interval while both sides are idle.
    bridge(
        &session,
        &mut channel,
        &mut socket,
        &never,
        Duration::from_millis(1),
    );
    let _ = socket.shutdown(std::net::Shutdown::Both);
    let _ = channel.close();
}

/// Copies `socket`→`channel` and `channel`→`socket`, both non-blocking, up
/// to 1 MiB in flight each way, until the socket's side closes or fails,
/// `stop` is set, or the channel's side ends (its data then delivered and
/// the socket half-closed). Sleeps `poll` while both sides are idle. Used
/// by the jump host's relay and by readiness's tunnel; the session is left
/// blocking again.
pub(crate) fn bridge(
    session: &ssh2::Session,
    channel: &mut ssh2::Channel,
    socket: &mut TcpStream,
    stop: &std::sync::atomic::AtomicBool,
    poll: Duration,
) {
    use std::io::ErrorKind::WouldBlock;
    const IN_FLIGHT: usize = 1024 * 1024;
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    session.set_blocking(false);
    let mut up: Vec<u8> = Vec::new();
    let mut down: Vec<u8> = Vec::new();
    let mut is_channel_done = false;
    let mut buffer = vec![0u8; 256 * 1024];
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let mut has_moved = false;
        if up.len() < IN_FLIGHT {
            match socket.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    up.extend_from_slice(&buffer[..n]);
                    has_moved = true;
                }
                Err(e) if e.kind() == WouldBlock => {}
                Err(_) => break,
            }
        }
        if !up.is_empty() {
            match channel.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    has_moved |= n > 0;
                }
                Err(e) if e.kind() == WouldBlock => {}
                Err(_) => break,
            }
        }
        if down.len() < IN_FLIGHT && !is_channel_done {
            match channel.read(&mut buffer) {
                Ok(0) => is_channel_done = channel.eof(),
                Ok(n) => {
                    down.extend_from_slice(&buffer[..n]);
                    has_moved = true;
                }
                Err(e) if e.kind() == WouldBlock => {}
                Err(_) => is_channel_done = true,
            }
        }
        if !down.is_empty() {
            match socket.write(&down) {
                Ok(n) => {
                    down.drain(..n);
                    has_moved |= n > 0;
                }
                Err(e) if e.kind() == WouldBlock => {}
                Err(_) => break,
            }
        }
        if is_channel_done && down.is_empty() {
            let _ = socket.shutdown(std::net::Shutdown::Write);
            break;
        }
        if !has_moved {
            std::thread::sleep(poll);
        }
    }
    session.set_blocking(true);
}

/// The SSH handshake over `tcp`, the host key check and authentication.
fn handshake(
    tcp: TcpStream,
    target: &Target,
    auth: &Auth,
    trust: &Trust,
    timeout: Duration,
) -> Result<ssh2::Session, SshError> {
    let shown = target.shown.clone();
    let user = target.user.as_str();
    let mut session = ssh2::Session::new().map_err(|source| SshError::Handshake {
        host: shown.clone(),
        source,
    })?;
    session.set_tcp_stream(tcp);
    // AES-GCM runs on the CPU's AES instructions through OpenSSL; libssh2's
    // own chacha20-poly1305, which it would pick first, is portable C and
    // roughly halves upload throughput. Methods libssh2 lacks are skipped.
    for direction in [ssh2::MethodType::CryptCs, ssh2::MethodType::CryptSc] {
        let _ = session.method_pref(direction, CIPHERS);
    }
    session.set_timeout(millis(timeout));
    session.handshake().map_err(|source| SshError::Handshake {
        host: shown.clone(),
        source,
    })?;
    tracing::debug!(
        host = shown,
        kex = session.methods(ssh2::MethodType::Kex),
        cipher = session.methods(ssh2::MethodType::CryptCs),
        mac = session.methods(ssh2::MethodType::MacCs),
        "ssh session"
    );
    check_host_key(&session, &target.name, target.port, &shown, trust)?;
    let auth_error = |method, source| SshError::Auth {
        user: user.to_owned(),
        host: shown.clone(),
        method,
        source,
    };
    match auth {
        Auth::KeyFile(path, passphrase) => session
            .userauth_pubkey_file(
                user,
                None,
                path,
                passphrase.as_ref().map(|p| p.expose_secret()),
            )
            .map_err(|e| auth_error("key file", e))?,
        Auth::KeyMemory(key, passphrase) => session
            .userauth_pubkey_memory(
                user,
                None,
                key.expose_secret(),
                passphrase.as_ref().map(|p| p.expose_secret()),
            )
            .map_err(|e| auth_error("key from environment variable", e))?,
        Auth::Agent => {
            // As OpenSSH: the ssh config's `IdentityFile`s (those that
            // exist, unencrypted), then the agent.
            let by_file = target
                .identity_files
                .iter()
                .filter(|path| path.is_file())
                .any(|path| session.userauth_pubkey_file(user, None, path, None).is_ok());
            if !by_file {
                session.userauth_agent(user).map_err(|e| {
                    auth_error(
                        if target.identity_files.is_empty() {
                            "ssh-agent"
                        } else {
                            "the ssh config's IdentityFile, then ssh-agent"
                        },
                        e,
                    )
                })?;
            }
        }
    }
    // Every later call that waits for the host is bounded too: a host (or
    // network) that goes silent fails the step instead of hanging it.
    // (The lock's heartbeat, a byte every 2 s on its channel, keeps a quiet
    // connection alive through NAT. libssh2's own keepalive is left off: it
    // sends from inside every blocking wait and cuts long writes short.)
    session.set_timeout(millis(timeout));
    Ok(session)
}

/// The most of a captured command's output kept: its last bytes. A remote
/// command that prints gigabytes must not grow memory without bound.
pub(crate) const MAX_CAPTURED: usize = 64 * 1024;

/// What a [`Warm`] channel runs: the user's login shell (and its rc files)
/// starts at once, then waits for its command line, one line on stdin.
/// `read` takes a byte at a time from a pipe or socket, so what follows
/// the line on stdin is the command line's own.
const TRAMPOLINE: &str = "IFS= read -r slipway_line && eval \"$slipway_line\"";

/// A channel whose login shell was started ahead of its command line. Each
/// exec request runs the user's login shell, which reads `~/.bashrc` (a
/// heavy one takes 100–500 ms); started early, that time passes while the
/// deploy does something else (takes the lock, uploads), and the command
/// line then starts in a round trip. Dropped unused, its shell reads the
/// end of its stdin and exits.
pub(crate) struct Warm {
    channel: Option<ssh2::Channel>,
    session: ssh2::Session,
}

impl Drop for Warm {
    fn drop(&mut self) {
        if let Some(mut channel) = self.channel.take() {
            // Unused: its shell sees the end of stdin and exits; the channel
            // is freed without waiting for the host.
            self.session.set_blocking(false);
            let _ = channel.send_eof();
            drop(channel);
            self.session.set_blocking(true);
        }
    }
}

/// The warm channel of one deploy's steps: the lock holder's, which runs
/// the preflight first, then holds the lock, starts the command lines and
/// writes the records.
#[derive(Default)]
pub(crate) struct Warms {
    pub(crate) lock: Option<Warm>,
}

impl Warms {
    /// Starts it on `session`.
    pub(crate) fn start(session: &ssh2::Session) -> Warms {
        Warms {
            lock: warm(session),
        }
    }
}

/// Starts a [`Warm`] channel; `None` if the host refuses one (the step then
/// opens its own).
pub(crate) fn warm(session: &ssh2::Session) -> Option<Warm> {
    let mut channel = session.channel_session().ok()?;
    channel
        .handle_extended_data(ssh2::ExtendedData::Merge)
        .ok()?;
    channel.exec(TRAMPOLINE).ok()?;
    Some(Warm {
        channel: Some(channel),
        session: session.clone(),
    })
}

/// Runs `command` on `warm`'s shell, then has that shell wait for its next
/// line again: the exit status and output, and the shell back, still warm.
/// `command` must not read stdin (the next line is there).
pub(crate) fn run_keeping_warm(
    session: &ssh2::Session,
    mut warm: Warm,
    command: &str,
    io: Duration,
) -> anyhow::Result<(i32, String, Warm)> {
    let Some(mut channel) = warm.channel.take() else {
        anyhow::bail!("a warm shell used twice (a bug)");
    };
    anyhow::ensure!(
        !command.contains('\n'),
        "a command of more than one line for a warm shell (a bug)"
    );
    let nonce = crate::plan::nonce();
    // In a subshell (an `exit` ends only it), the marker as the lock holder
    // prints it, then the trampoline again.
    let line = format!(
        "( {command} ) </dev/null; {}; {TRAMPOLINE}\n",
        crate::plan::print_done(&nonce, "$?")
    );
    session.set_timeout(millis(io));
    channel.write_all(line.as_bytes())?;
    let (status, output) = read_until_done(session, &mut channel, &nonce, io)?;
    warm.channel = Some(channel);
    Ok((status, output, warm))
}

/// Reads `channel`'s output up to `slipway-done: <nonce> <status>` (as
/// `plan::print_done` prints it); the status and
/// the output before it (at most [`MAX_CAPTURED`] bytes of it). Bounded
/// by `io` for the whole wait.
pub(crate) fn read_until_done(
    session: &ssh2::Session,
    channel: &mut ssh2::Channel,
    nonce: &str,
    io: Duration,
) -> anyhow::Result<(i32, String)> {
    let marker = format!("\n{}{nonce} ", crate::plan::DONE_TAG);
    let deadline = Instant::now() + io;
    let mut tail = Tail::default();
    // What may still hold the marker: the end of the output so far.
    let mut seen: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if let Some(at) = find(&seen, marker.as_bytes()) {
            let after = &seen[at + marker.len()..];
            if let Some(end) = after.iter().position(|b| *b == b'\n') {
                let status = std::str::from_utf8(&after[..end])
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .context("the host's shell printed no exit status")?;
                tail.push(&seen[..at]);
                session.set_timeout(millis(io));
                return Ok((status, tail.finish()));
            }
        }
        // No signal stops it: a cancelled deploy's record goes this way.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            session.set_timeout(millis(io));
            anyhow::bail!(
                "the host did not answer within {}",
                humantime::format_duration(io)
            );
        }
        session.set_timeout(millis(left.min(TICK)).max(1));
        match channel.read(&mut buffer) {
            Ok(0) => {
                session.set_timeout(millis(io));
                tail.push(&seen);
                anyhow::bail!(
                    "the host's shell ended early: {}",
                    crate::remote::reason(&tail.finish())
                );
            }
            Ok(n) => {
                seen.extend_from_slice(&buffer[..n]);
                // The marker and its status are short: older output goes to
                // the bounded tail.
                let keep = marker.len() + 24;
                if seen.len() > MAX_CAPTURED + keep {
                    let cut = seen.len() - keep;
                    tail.push(&seen[..cut]);
                    seen.drain(..cut);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(error) => {
                session.set_timeout(millis(io));
                return Err(error.into());
            }
        }
    }
}

/// Where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A channel running `command`: on `warm` if given and `command` is one
/// line, else on a new channel. Output of both is merged.
pub(crate) fn start(
    session: &ssh2::Session,
    command: &str,
    warm: Option<Warm>,
) -> anyhow::Result<ssh2::Channel> {
    if let Some(mut channel) = warm
        .filter(|_| !command.contains('\n'))
        .and_then(|mut warm| warm.channel.take())
    {
        channel.write_all(command.as_bytes())?;
        channel.write_all(b"\n")?;
        return Ok(channel);
    }
    let mut channel = session.channel_session()?;
    channel.handle_extended_data(ssh2::ExtendedData::Merge)?;
    channel.exec(command)?;
    Ok(channel)
}

/// Runs `command` on the host with `stdin` as its standard input, and
/// returns its exit status and merged output (at most the last
/// [`MAX_CAPTURED`] bytes, after a line saying how much was cut); every
/// wait is bounded by `io`.
pub(crate) fn run_captured(
    session: &ssh2::Session,
    command: &str,
    stdin: &[u8],
    io: Duration,
) -> anyhow::Result<(i32, String)> {
    run_captured_on(session, None, command, stdin, io)
}

/// [`run_captured`] on `warm`, if given.
pub(crate) fn run_captured_on(
    session: &ssh2::Session,
    warm: Option<Warm>,
    command: &str,
    stdin: &[u8],
    io: Duration,
) -> anyhow::Result<(i32, String)> {
    session.set_timeout(millis(io));
    let mut channel = start(session, command, warm)?;
    channel.write_all(stdin)?;
    channel.send_eof()?;
    let mut tail = Tail::default();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match channel.read(&mut buffer)? {
            0 => break,
            n => tail.push(&buffer[..n]),
        }
    }
    channel.wait_close()?;
    Ok((channel.exit_status()?, tail.finish()))
}

/// The last [`MAX_CAPTURED`] bytes of a stream, and how many came before.
#[derive(Debug, Default)]
struct Tail {
    kept: std::collections::VecDeque<u8>,
    cut: u64,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        let bytes = match bytes.len().checked_sub(MAX_CAPTURED) {
            Some(skip) if skip > 0 => {
                self.cut += (skip + self.kept.len()) as u64;
                self.kept.clear();
                &bytes[skip..]
            }
            _ => bytes,
        };
        let over = (self.kept.len() + bytes.len()).saturating_sub(MAX_CAPTURED);
        self.kept.drain(..over);
        self.cut += over as u64;
        self.kept.extend(bytes);
    }

    fn finish(self) -> String {
        let (front, back) = self.kept.as_slices();
        let text = String::from_utf8_lossy(&[front, back].concat())
            .trim()
            .to_owned();
        match self.cut {
            0 => text,
            cut => format!(
                "[{cut} earlier bytes of output cut; the last {MAX_CAPTURED} follow]\n{text}"
            ),
        }
    }
}

/// Whether the connection still answers: a new channel is opened and closed
/// again (bounded by the session's timeout, `--connect-timeout`). Used
/// after a step failed, to tell a host that refused something from a
/// connection that is gone.
pub(crate) fn answers(session: &ssh2::Session) -> bool {
    match session.channel_session() {
        Ok(mut channel) => {
            let _ = channel.close();
            true
        }
        Err(_) => false,
    }
}

/// Whether `error` means the connection is gone or the host stopped
/// answering (a step ran past its time, the socket was closed or reset),
/// after which nothing more is tried on it.
pub(crate) fn is_connection_lost(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind;
    // libssh2's LIBSSH2_ERROR_SOCKET_SEND (-7), _TIMEOUT (-9),
    // _SOCKET_DISCONNECT (-13), _SOCKET_TIMEOUT (-30), _SOCKET_RECV (-43).
    const LOST: [i32; 5] = [-7, -9, -13, -30, -43];
    error.chain().any(|cause| {
        let ssh = cause.downcast_ref::<ssh2::Error>().map(ssh2::Error::code);
        let io = cause.downcast_ref::<std::io::Error>();
        matches!(ssh, Some(ssh2::ErrorCode::Session(code)) if LOST.contains(&code))
            || io.is_some_and(|e| {
                matches!(
                    e.kind(),
                    ErrorKind::TimedOut
                        | ErrorKind::BrokenPipe
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                        | ErrorKind::NotConnected
                ) || e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<ssh2::Error>())
                    .is_some_and(|e| matches!(e.code(), ssh2::ErrorCode::Session(code) if LOST.contains(&code)))
            })
            || {
                let text = cause.to_string();
                text.contains("transport read") || text.contains("Unable to send") || text.contains("draining incoming flow")
            }
    })
}

fn check_host_key(
    session: &ssh2::Session,
    name: &str,
    port: u16,
    shown: &str,
    trust: &Trust,
) -> Result<(), SshError> {
    let (key, key_type) = session.host_key().ok_or_else(|| SshError::NoHostKey {
        host: shown.to_owned(),
    })?;
    let found = fingerprint(key);
    match trust {
        Trust::Fingerprint(expected) if *expected == found => Ok(()),
        Trust::Fingerprint(expected) => Err(SshError::FingerprintMismatch {
            host: shown.to_owned(),
            fingerprint: found,
            expected: expected.clone(),
        }),
        Trust::KnownHosts { path, accept_new } => {
            let shown_path = path.display().to_string();
            let mut known = session
                .known_hosts()
                .map_err(|source| SshError::KnownHosts {
                    path: shown_path.clone(),
                    source,
                })?;
            if path.exists() {
                let text =
                    // Capped: `--known-hosts /dev/zero` fails naming the file
                    // and the limit instead of reading without end.
                    slipway_core::input::read_to_string(path).map_err(|source| SshError::ReadKnownHosts {
                        path: shown_path.clone(),
                        source,
                    })?;
                read_known_hosts(&mut known, &text).map_err(|(line, source)| {
                    SshError::KnownHosts {
                        path: format!("{shown_path}:{line}"),
                        source,
                    }
                })?;
            }
            match known.check_port(name, port, key) {
                ssh2::CheckResult::Match => Ok(()),
                ssh2::CheckResult::Mismatch => Err(SshError::ChangedHostKey {
                    host: shown.to_owned(),
                    fingerprint: found,
                    known_hosts: shown_path,
                    entry: known_hosts_name(name, port),
                }),
                ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure if *accept_new => {
                    let line = format!(
                        "{} {} {}\n",
                        known_hosts_name(name, port),
                        key_type_name(key_type),
                        base64::engine::general_purpose::STANDARD.encode(key)
                    );
                    append_known_host(path, &line).map_err(|source| SshError::AddKnownHost {
                        host: shown.to_owned(),
                        path: shown_path,
                        source,
                    })?;
                    tracing::warn!(host = shown, fingerprint = %found, "trusted a new host key (--accept-new-host-key)");
                    Ok(())
                }
                ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure => {
                    Err(SshError::UnknownHostKey {
                        host: shown.to_owned(),
                        fingerprint: found,
                        known_hosts: shown_path,
                    })
                }
            }
        }
    }
}

/// Adds known_hosts `text` to `known`, one line at a time through libssh2's
/// parser (the one its `read_file` uses); the error carries the 1-based
/// number of the line libssh2 rejects. Public for the fuzz target.
pub fn read_known_hosts(
    known: &mut ssh2::KnownHosts,
    text: &str,
) -> Result<(), (usize, ssh2::Error)> {
    for (index, line) in text.lines().enumerate() {
        known
            .read_str(line, ssh2::KnownHostFileKind::OpenSSH)
            .map_err(|source| (index + 1, source))?;
    }
    Ok(())
}

fn append_known_host(path: &Path, line: &str) -> std::io::Result<()> {
    let _guard = KNOWN_HOSTS_WRITE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(line.as_bytes())
}

fn key_type_name(key_type: ssh2::HostKeyType) -> &'static str {
    match key_type {
        ssh2::HostKeyType::Rsa => "ssh-rsa",
        ssh2::HostKeyType::Dss => "ssh-dss",
        ssh2::HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        ssh2::HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        ssh2::HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        ssh2::HostKeyType::Ed25519 => "ssh-ed25519",
        ssh2::HostKeyType::Unknown => "unknown",
    }
}

/// How a remote command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It exited with this status.
    Status(i32),
    /// It ran past the deadline; the channel was closed.
    TimedOut,
    /// ssh-deploy got this signal (SIGINT, SIGTERM); the channel was closed.
    Cancelled(i32),
}

/// The most of one output line held before it is handed on anyway: a
/// command that prints without newlines (`head -c 200000000 /dev/zero`)
/// must not grow memory without bound.
const MAX_LINE: usize = 64 * 1024;

/// Splits a command's output into lines as it arrives, looking at each
/// byte once, and hands on a partial line once it reaches [`MAX_LINE`].
#[derive(Debug, Default)]
pub(crate) struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    pub(crate) fn push(&mut self, mut bytes: &[u8], on_line: &mut impl FnMut(&str)) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.pending.len();
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    self.pending.extend_from_slice(&window[..end]);
                    self.flush(on_line);
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    if self.pending.len() >= MAX_LINE {
                        self.flush(on_line);
                    }
                }
            }
        }
    }

    fn flush(&mut self, on_line: &mut impl FnMut(&str)) {
        on_line(String::from_utf8_lossy(&self.pending).trim_end_matches('\r'));
        self.pending.clear();
    }

    /// Hands on what is left after the last newline.
    fn finish(mut self, on_line: &mut impl FnMut(&str)) {
        if !self.pending.is_empty() {
            self.flush(on_line);
        }
    }
}

/// Runs `command` on the host with `stdin.prefix`, then `stdin.files` as one
/// tar stream (see `tarball`), as its standard input, handing each line of
/// its merged stdout and stderr to `on_line` as it arrives, until it exits
/// or `timeout` passes. Returns how it ended and what was sent of each file.
///
/// A stream that cannot be written (the connection, `--timeout`, a signal)
/// is an error naming the file under way, returned at once: the host's
/// `tar` sees the stream end short and the command line stops without
/// moving anything. A local file that cannot be read ends the stream too;
/// the error is returned once the host's line has stopped.
#[allow(
    clippy::too_many_arguments,
    reason = "the channel, the line, its stdin and its bounds"
)]
pub(crate) fn exec_streamed(
    session: &ssh2::Session,
    warm: Option<Warm>,
    command: &str,
    stdin: Stdin<'_>,
    timeout: Duration,
    io: Duration,
    is_cancellable: bool,
    mut on_line: impl FnMut(&str),
) -> anyhow::Result<(Exit, Vec<crate::tarball::Sent>)> {
    let deadline = Instant::now() + timeout;
    session.set_timeout(millis(io));
    // One stream keeps the remote's own interleaving of stdout and stderr and
    // cannot deadlock on a full stderr window while we read stdout.
    let mut channel = start(session, command, warm)?;
    // What the command line reads first (secret variables), then the
    // files.
    if !stdin.prefix.is_empty() {
        channel.write_all(stdin.prefix)?;
    }
    let mut read_error = None;
    let sent = match stdin.files {
        [] => Vec::new(),
        files => match crate::tarball::send(files, stdin.mtime, &mut channel, deadline) {
            Ok(sent) => sent,
            Err(crate::tarball::Stopped::Read(error)) => {
                read_error = Some(error);
                Vec::new()
            }
            Err(crate::tarball::Stopped::Write { name, error }) => {
                // Whatever state the channel is in, it is given up without
                // waiting for the host.
                session.set_blocking(false);
                let _ = channel.send_eof();
                drop(channel);
                session.set_blocking(true);
                session.set_timeout(millis(io));
                return Err(anyhow::Error::from(error)
                    .context(format!("cannot upload `{name}` to the host")));
            }
        },
    };
    // Like `ssh -n`: a command that reads stdin sees its end, not a hang.
    let _ = channel.send_eof();
    let mut lines = Lines::default();
    let mut buffer = [0u8; 16 * 1024];
    let mut timed_out = false;
    let mut cancelled = None;
    loop {
        if let Some(signal) = crate::cancel::requested().filter(|_| is_cancellable) {
            cancelled = Some(signal);
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        // Short reads, so a signal is seen within a quarter of a second;
        // the connection's own liveness is the lock's heartbeat's business.
        session.set_timeout(millis(left.min(TICK)).max(1));
        match channel.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                lines.push(&buffer[..n], &mut on_line);
            }
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) if Instant::now() + Duration::from_millis(100) >= deadline => {
                timed_out = true;
                break;
            }
            Err(error) => {
                session.set_timeout(millis(io));
                return Err(anyhow::Error::from(error).context("lost the remote command's output"));
            }
        }
    }
    lines.finish(&mut on_line);
    session.set_timeout(millis(io));
    if timed_out || cancelled.is_some() {
        // Closing waits for the remote side, which is still running: free the
        // channel without blocking and keep the session for the record.
        session.set_blocking(false);
        drop(channel);
        session.set_blocking(true);
        return Ok((cancelled.map_or(Exit::TimedOut, Exit::Cancelled), sent));
    }
    channel.wait_close()?;
    let status = channel.exit_status()?;
    if let Some(error) = read_error {
        return Err(error);
    }
    Ok((Exit::Status(status), sent))
}

/// What a command gets on its stdin: `prefix`, then `files` as one tar
/// stream (none: nothing), each file with `mtime`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stdin<'a> {
    pub(crate) prefix: &'a [u8],
    pub(crate) files: &'a [crate::tarball::Member<'a>],
    pub(crate) mtime: u64,
}

/// How long one read of a command's output waits before looking at the clock
/// and for a signal.
const TICK: Duration = Duration::from_millis(250);

/// Milliseconds for `Session::set_timeout` (0 would mean "no timeout").
pub(crate) fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(host: &str, port: u16, expected: &str) {
        assert_eq!(known_hosts_name(host, port), expected);
    }

    /// The lines `Lines` hands on for `chunks`, as (length, first char).
    #[track_caller]
    fn check_lines(chunks: &[&[u8]], expected: &[(usize, char)]) {
        let mut lines = Lines::default();
        let mut seen = Vec::new();
        let mut on_line = |line: &str| seen.push((line.len(), line.chars().next().unwrap_or(' ')));
        for chunk in chunks {
            lines.push(chunk, &mut on_line);
        }
        lines.finish(&mut on_line);
        assert_eq!(
            seen,
            expected,
            "chunks of {:?} bytes",
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn output_is_split_into_lines_of_at_most_64_kib() {
        check_lines(
            &[b"ab\r\ncd", b"e\n", b"f"],
            &[(2, 'a'), (3, 'c'), (1, 'f')],
        );
        check_lines(&[b"\n\n"], &[(0, ' '), (0, ' ')]);
        let long = vec![b'z'; MAX_LINE * 2 + 10];
        check_lines(
            &[&long[..100], &long[100..], b"\n"],
            &[(MAX_LINE, 'z'), (MAX_LINE, 'z'), (10, 'z')],
        );
        check_lines(
            &[&long[..MAX_LINE], b"\nq"],
            &[(MAX_LINE, 'z'), (0, ' '), (1, 'q')],
        );
    }

    #[test]
    fn captured_output_keeps_a_bounded_tail_and_says_what_was_cut() {
        let mut tail = Tail::default();
        tail.push(b"short");
        assert_eq!(tail.finish(), "short");
        let mut tail = Tail::default();
        for _ in 0..100 {
            tail.push(&[b'a'; 10_000]);
        }
        tail.push(b"the end");
        let text = tail.finish();
        assert_eq!(text.len(), MAX_CAPTURED + text.find('\n').unwrap() + 1);
        assert!(text.starts_with(&format!(
            "[{} earlier bytes of output cut; the last {MAX_CAPTURED} follow]\n",
            1_000_007 - MAX_CAPTURED
        )));
        assert!(text.ends_with("aaathe end"));
        let mut tail = Tail::default();
        tail.push(&vec![b'b'; MAX_CAPTURED * 3]);
        assert!(
            tail.finish()
                .starts_with(&format!("[{} earlier", MAX_CAPTURED * 2))
        );
    }

    #[track_caller]
    fn check_target(host: &str, expected: (&str, u16, &str, &[&str])) {
        let config = crate::ssh_config::SshConfig::parse(
            "Host web\n HostName 10.0.0.1\n User cfg\n Port 2200\n ProxyJump jump1,jump2\nHost *\n User other\n",
            None,
        )
        .expect("valid config");
        let host: Host = host.parse().expect("valid host");
        let target = Target::resolve(&host, Some("login"), Some(&config)).expect("resolves");
        let (name, port, user, jumps) = expected;
        assert_eq!(
            (
                target.name.as_str(),
                target.port,
                target.user.as_str(),
                target.jumps.iter().map(String::as_str).collect::<Vec<_>>()
            ),
            (name, port, user, jumps.to_vec()),
            "`{host}`"
        );
    }

    #[test]
    fn explicit_user_and_port_win_over_the_ssh_config() {
        check_target("web", ("10.0.0.1", 2200, "cfg", &["jump1", "jump2"]));
        check_target("me@web:2222", ("10.0.0.1", 2222, "me", &["jump1", "jump2"]));
        check_target("db", ("db", 22, "other", &[]));
    }

    #[test]
    fn known_hosts_names_bracket_non_default_ports() {
        check("web1", 22, "web1");
        check("127.0.0.1", 2222, "[127.0.0.1]:2222");
    }

    #[test]
    fn fingerprints_are_unpadded_base64_sha256() {
        // `ssh-keygen -lf` of an empty blob is not a thing, but the digest is:
        // sha256("") = 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= (padded).
        assert_eq!(
            fingerprint(b""),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn known_hosts_are_read_line_by_line_and_a_bad_line_is_named() {
        let key = b"\0\0\0\x0bssh-ed25519\0\0\0\x200123456789abcdef0123456789abcdef";
        let good = format!(
            "# the test bed\n[127.0.0.1]:2222 ssh-ed25519 {}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let session = ssh2::Session::new().expect("a libssh2 session");
        let mut known = session.known_hosts().expect("a known_hosts store");
        read_known_hosts(&mut known, &good).expect("valid known_hosts");
        assert!(matches!(
            known.check_port("127.0.0.1", 2222, key),
            ssh2::CheckResult::Match
        ));
        // A key too short for libssh2, on line 3.
        let bad = format!("{good}web1 ssh-ed25519\n");
        let mut known = session.known_hosts().expect("a known_hosts store");
        let line = read_known_hosts(&mut known, &bad).map_err(|(line, _)| line);
        assert_eq!(line, Err(3));
    }
}
