//! Readiness through the SSH connection, awaited with `slipway_ready`
//! (ready-wait's library).
//!
//! The ready URL is as seen from the host, so a local forwarder stands in for
//! it: a listener on `127.0.0.1:0` whose every accepted connection is bridged
//! to a fresh direct-tcpip channel from the host to the URL's address (so
//! `127.0.0.1` means the host itself and the port needs no firewall opening).
//! The plan polls the forwarder with the original `Host` header. A channel
//! that cannot open is answered `502` with the reason; for `tcp://` the
//! forwarder itself answers `200` once the channel opens.
//!
//! A host that refuses TCP forwarding (`AllowTcpForwarding no`, common
//! hardening) answers every channel open "administratively prohibited";
//! that is detected first ([`is_forwarding_prohibited`], also what a fleet
//! preflight can ask), and then readiness is probed from the host itself:
//! `curl` (else `wget`) for `http://`, `nc -z` (else bash's `/dev/tcp`)
//! for `tcp://`, run over the same connection, with the same backoff.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use slipway_ready::{Plan, PlanError, Target, parse_header, wait_blocking};

use crate::plan::ReadyTarget;

/// How long one attempt may take, and one blocking SSH call with it. A whole
/// attempt even near the deadline: libssh2 cannot resume other work on a
/// session whose channel open was cut short.
const ATTEMPT: Duration = Duration::from_secs(5);
/// How long the forwarder idles between looks at its socket and channel.
const POLL: Duration = Duration::from_millis(5);

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) is_ready: bool,
    pub(crate) attempts: u32,
    /// When it became ready, from the start of the wait.
    pub(crate) ready_after: Option<Duration>,
    /// The last failure when not ready.
    pub(crate) last_error: Option<String>,
}

/// Polls `target` until it answers 2xx (or opens, for `tcp://`) or `timeout`
/// passes, with ready-wait's defaults: 250 ms after a failure growing ×1.5 to
/// 2 s, up to 5 s per attempt. The session is left blocking, with `io` as its timeout.
pub(crate) fn wait(
    session: &ssh2::Session,
    target: &ReadyTarget,
    timeout: Duration,
    io: Duration,
) -> Readiness {
    if is_forwarding_prohibited(session, &target.host, target.port) {
        tracing::warn!(
            url = %target.shown(),
            "the host refuses TCP forwarding (`AllowTcpForwarding no`): probing readiness from the host itself with curl or wget"
        );
        let readiness = wait_on_host(session, target, timeout);
        session.set_blocking(true);
        session.set_timeout(crate::ssh::millis(io));
        return readiness;
    }
    let readiness = forward_and_wait(session, target, timeout).unwrap_or_else(|error| Readiness {
        is_ready: false,
        attempts: 0,
        ready_after: None,
        last_error: Some(error),
    });
    session.set_blocking(true);
    session.set_timeout(crate::ssh::millis(io));
    readiness
}

/// Whether the host refuses this connection's TCP channels: a
/// `direct-tcpip` open to `host:port` (as the host sees it) answered
/// "administratively prohibited", which is what sshd's `AllowTcpForwarding
/// no` (or a `PermitOpen` that leaves the address out) answers. A channel
/// that opens, or fails for another reason (nothing listens yet), means
/// forwarding is allowed. The session is left blocking, timeout unchanged.
pub(crate) fn is_forwarding_prohibited(session: &ssh2::Session, host: &str, port: u16) -> bool {
    session.set_blocking(true);
    match session.channel_direct_tcpip(host, port, None) {
        Ok(mut channel) => {
            let _ = channel.close();
            false
        }
        Err(error) => {
            tracing::debug!(%error, host, port, "direct-tcpip open failed");
            error.message().contains("administratively prohibited")
        }
    }
}

/// The shell line that probes `target` once from the host: prints the
/// HTTP status (`curl`), `200` (`wget`, which fails on any other), or
/// `open` (`tcp://`); exits 127 naming what is missing.
fn host_probe_line(target: &ReadyTarget) -> String {
    use slipway_core::output::shell_quote;
    let secs = ATTEMPT.as_secs();
    match &target.http_path {
        Some(_) => format!(
            "u={url}; if command -v curl >/dev/null 2>&1; then curl -sS -o /dev/null -w '%{{http_code}}' --max-time {secs} \"$u\"; \
             elif command -v wget >/dev/null 2>&1; then wget -q -O /dev/null -T {secs} -t 1 \"$u\" && echo 200; \
             else echo 'neither curl nor wget is installed on the host' >&2; exit 127; fi",
            url = shell_quote(&target.url)
        ),
        None => format!(
            "h={host}; p={port}; if command -v nc >/dev/null 2>&1; then nc -z -w {secs} \"$h\" \"$p\"; \
             elif command -v bash >/dev/null 2>&1; then timeout {secs} bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' \"$h\" \"$p\"; \
             else echo 'neither nc nor bash is installed on the host' >&2; exit 127; fi && echo open",
            host = shell_quote(&target.host),
            port = target.port
        ),
    }
}

/// Polls `target` from the host until it answers 2xx (or opens) or
/// `timeout` passes, with the forwarder's backoff: 250 ms after a failure,
/// ×1.5 up to 2 s.
fn wait_on_host(session: &ssh2::Session, target: &ReadyTarget, timeout: Duration) -> Readiness {
    let start = std::time::Instant::now();
    let deadline = start + timeout;
    let line = host_probe_line(target);
    let mut delay = Duration::from_millis(250);
    let mut attempts = 0;
    loop {
        if crate::cancel::requested().is_some() {
            return Readiness {
                is_ready: false,
                attempts,
                ready_after: None,
                last_error: Some("cancelled".to_owned()),
            };
        }
        attempts += 1;
        let outcome =
            crate::ssh::run_captured(session, &line, b"", ATTEMPT + Duration::from_secs(2));
        let last_error = match outcome {
            Ok((0, output)) => {
                let answer = output.lines().last().unwrap_or_default().trim().to_owned();
                let is_ready = answer == "open"
                    || answer
                        .parse::<u16>()
                        .is_ok_and(|code| (200..300).contains(&code));
                if is_ready {
                    return Readiness {
                        is_ready: true,
                        attempts,
                        ready_after: Some(start.elapsed()),
                        last_error: None,
                    };
                }
                format!("from the host: HTTP status {answer}")
            }
            Ok((127, output)) => {
                return Readiness {
                    is_ready: false,
                    attempts,
                    ready_after: None,
                    last_error: Some(format!(
                        "cannot probe from the host: {}",
                        crate::remote::reason(&output)
                    )),
                };
            }
            Ok((_, output)) => format!("from the host: {}", crate::remote::reason(&output)),
            Err(error) => {
                return Readiness {
                    is_ready: false,
                    attempts,
                    ready_after: None,
                    last_error: Some(format!(
                        "cannot probe from the host: {}",
                        crate::deploy::chain(&error)
                    )),
                };
            }
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Readiness {
                is_ready: false,
                attempts,
                ready_after: None,
                last_error: Some(last_error),
            };
        }
        // The backoff between attempts, not test synchronisation.
        std::thread::sleep(delay.min(left));
        delay = (delay.mul_f32(1.5)).min(Duration::from_secs(2));
    }
}

fn forward_and_wait(
    session: &ssh2::Session,
    target: &ReadyTarget,
    timeout: Duration,
) -> Result<Readiness, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|e| {
            format!(
                "cannot open a local forwarder for `{}`: {e}",
                target.shown()
            )
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| {
            format!(
                "cannot open a local forwarder for `{}`: {e}",
                target.shown()
            )
        })?
        .port();
    let plan = plan(target, port, timeout).map_err(|e| {
        format!(
            "cannot poll `{}` through the forwarder: {e}",
            target.shown()
        )
    })?;
    let stop = AtomicBool::new(false);
    let refusal = Mutex::new(None);
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| serve(session, &listener, target, &stop, &refusal));
        let outcome = wait_blocking(&plan, |event| {
            tracing::debug!(url = %target.shown(), state = ?event.state, "readiness");
        });
        stop.store(true, Ordering::Relaxed);
        outcome
    })
    .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let Some(polled) = outcome.targets.first() else {
        return Err("nothing was polled".to_owned());
    };
    // The forwarder's own `502` says less than why the channel did not open.
    let refused = refusal.into_inner().ok().flatten();
    let last_error = match (polled.last_status, refused) {
        (Some(502), Some(refused)) => Some(refused),
        // The deadline can end an attempt before it reports.
        _ => polled.last_error.clone().or_else(|| {
            Some(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))
        }),
    };
    Ok(Readiness {
        is_ready: outcome.ready,
        attempts: polled.attempts,
        ready_after: if outcome.ready {
            polled.ready_after
        } else {
            None
        },
        last_error: if outcome.ready { None } else { last_error },
    })
}

/// The plan that polls `target` through the forwarder on `port`: its path on
/// `127.0.0.1:port` with the original `Host` (`/` for `tcp://`).
fn plan(target: &ReadyTarget, port: u16, timeout: Duration) -> Result<Plan, PlanError> {
    let path = target.http_path.as_deref().unwrap_or("/");
    let mut plan = Plan::new(vec![Target::parse(&format!(
        "http://127.0.0.1:{port}{path}"
    ))?]);
    plan.timeout = timeout;
    plan.attempt_timeout = ATTEMPT;
    plan.user_agent = concat!("ssh-deploy/", env!("CARGO_PKG_VERSION")).to_owned();
    plan.http
        .headers
        .push(parse_header(&format!("Host: {}", authority(target)))?);
    Ok(plan)
}

/// `host:port` as a `Host` header spells it.
fn authority(target: &ReadyTarget) -> String {
    if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    }
}

/// Accepts the poller's connections one at a time until `stop`.
fn serve(
    session: &ssh2::Session,
    listener: &TcpListener,
    target: &ReadyTarget,
    stop: &AtomicBool,
    refusal: &Mutex<Option<String>>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => serve_one(session, target, stream, stop, refusal),
            Err(error) => {
                if error.kind() != ErrorKind::WouldBlock {
                    tracing::debug!(%error, "the forwarder cannot accept");
                }
                // A poll interval of the forwarder, not test synchronisation.
                std::thread::sleep(POLL);
            }
        }
    }
}

/// One connection: a fresh channel from the host, then the bridge (HTTP) or
/// the forwarder's own answer (`tcp://`, or a channel that cannot open).
fn serve_one(
    session: &ssh2::Session,
    target: &ReadyTarget,
    mut stream: TcpStream,
    stop: &AtomicBool,
    refusal: &Mutex<Option<String>>,
) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(ATTEMPT)).is_err() {
        return;
    }
    session.set_blocking(true);
    session.set_timeout(u32::try_from(ATTEMPT.as_millis()).unwrap_or(u32::MAX));
    let opened = session.channel_direct_tcpip(&target.host, target.port, None);
    let refused = opened.as_ref().err().map(|error| {
        format!(
            "cannot connect to {} from the host: {error}",
            authority(target)
        )
    });
    if let Ok(mut last) = refusal.lock() {
        last.clone_from(&refused);
    }
    match opened {
        Err(_) => answer(
            &mut stream,
            "502 Bad Gateway",
            refused.as_deref().unwrap_or_default(),
        ),
        Ok(mut channel) if target.http_path.is_none() => {
            let _ = channel.close();
            answer(&mut stream, "200 OK", "the channel opened");
        }
        Ok(channel) => bridge(session, channel, stream, stop),
    }
}

/// The forwarder's own answer, after the request it ignores.
fn answer(stream: &mut TcpStream, status: &str, body: &str) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.shutdown(Shutdown::Write);
}

/// Bridges the poller's socket and the channel until either ends or `stop`
/// ([`crate::ssh::bridge`]). The poller never half-closes, so its socket
/// closing (answer read, or its per-attempt timeout cutting a hung attempt)
/// ends the bridge and the channel with it.
fn bridge(
    session: &ssh2::Session,
    mut channel: ssh2::Channel,
    mut stream: TcpStream,
    stop: &AtomicBool,
) {
    // A poll interval of the forwarder, not test synchronisation.
    crate::ssh::bridge(session, &mut channel, &mut stream, stop, POLL);
    let _ = channel.close();
}

#[cfg(test)]
mod tests {
    use std::io::BufRead as _;

    use super::*;

    /// A session to a fresh sshd, which forwards to this machine's loopback.
    fn session(sshd: &slipway_testbed::Sshd) -> ssh2::Session {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, sshd.port())).unwrap();
        let mut session = ssh2::Session::new().unwrap();
        session.set_tcp_stream(tcp);
        session.handshake().unwrap();
        session
            .userauth_pubkey_file(&sshd.user(), None, &sshd.client_key_path(), None)
            .unwrap();
        session
    }

    /// An app on loopback: `/ok` answers 200 when the `Host` header is the
    /// app's own address (421 otherwise), `/hang` never answers, anything
    /// else is 404. Returns its port.
    fn app() -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut hung = Vec::new();
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut head = Vec::new();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    head.push(std::mem::take(&mut line).trim_end().to_ascii_lowercase());
                }
                // `tcp://` checks open and close without a request.
                let Some(first) = head.first() else { continue };
                let target = first.split(' ').nth(1).unwrap_or_default();
                let path = target.split('?').next().unwrap_or_default().to_owned();
                let is_own_host = head.contains(&format!("host: 127.0.0.1:{port}"));
                let status = match path.as_str() {
                    "/hang" => {
                        hung.push(stream);
                        continue;
                    }
                    "/ok" if is_own_host => "200 OK",
                    "/ok" => "421 Misdirected Request",
                    _ => "404 Not Found",
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
                );
            }
        });
        port
    }

    #[track_caller]
    fn check(session: &ssh2::Session, url: &str, expected: Result<(), &str>) {
        let target = crate::plan::ready_target(url).unwrap();
        let readiness = wait(
            session,
            &target,
            Duration::from_millis(1500),
            Duration::from_secs(10),
        );
        match expected {
            Ok(()) => assert!(readiness.is_ready, "{url}: {readiness:?}"),
            Err(error) => {
                assert!(!readiness.is_ready, "{url}: {readiness:?}");
                let last = readiness.last_error.unwrap_or_default();
                assert!(last.contains(error), "{url}: {last}");
            }
        }
    }

    #[test]
    fn waits_through_the_ssh_connection() {
        let sshd = slipway_testbed::Sshd::start();
        let session = session(&sshd);
        let app = app();
        let closed = slipway_testbed::free_port();
        check(&session, &format!("http://127.0.0.1:{app}/ok"), Ok(()));
        check(&session, &format!("tcp://127.0.0.1:{app}"), Ok(()));
        check(
            &session,
            &format!("http://127.0.0.1:{app}/missing"),
            Err("status 404, expected 200-299"),
        );
        check(
            &session,
            &format!("http://127.0.0.1:{app}/hang"),
            Err("no answer within"),
        );
        check(
            &session,
            &format!("http://127.0.0.1:{closed}/ok"),
            Err(&format!(
                "cannot connect to 127.0.0.1:{closed} from the host"
            )),
        );
        check(
            &session,
            &format!("tcp://127.0.0.1:{closed}"),
            Err(&format!(
                "cannot connect to 127.0.0.1:{closed} from the host"
            )),
        );
        // The session still works after cut attempts and refused channels.
        check(
            &session,
            &format!("http://127.0.0.1:{app}/ok?again"),
            Ok(()),
        );
    }
}
