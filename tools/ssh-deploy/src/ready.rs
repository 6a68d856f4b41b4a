//! Readiness through the SSH connection: each attempt opens a direct-tcpip
//! channel from the host to the ready URL's address (so `127.0.0.1` means the
//! host itself and the port needs no firewall opening), sends one HTTP/1.0
//! `GET` and reads the status line. `tcp://` is ready once the channel opens.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use crate::plan::ReadyTarget;

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) is_ready: bool,
    pub(crate) attempts: u32,
    /// The last failure when not ready.
    pub(crate) last_error: Option<String>,
}

/// Polls `target` until it answers 2xx (or opens, for `tcp://`) or `timeout`
/// passes, pausing 250 ms after a failure and ×1.5 per failure up to 2 s;
/// each attempt may take up to 5 s.
pub(crate) fn wait(session: &ssh2::Session, target: &ReadyTarget, timeout: Duration) -> Readiness {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(250);
    let mut attempts = 0;
    loop {
        attempts += 1;
        // A whole attempt timeout even near the deadline: libssh2 cannot
        // resume other work on a session whose channel open was cut short.
        let error = match probe(session, target, Duration::from_secs(5)) {
            Ok(()) => {
                session.set_timeout(0);
                return Readiness {
                    is_ready: true,
                    attempts,
                    last_error: None,
                };
            }
            Err(error) => error,
        };
        tracing::debug!(url = target.url, attempts, error, "not ready yet");
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            session.set_timeout(0);
            return Readiness {
                is_ready: false,
                attempts,
                last_error: Some(error),
            };
        }
        // A poll interval against a remote service, not test synchronisation.
        std::thread::sleep(pause.min(left));
        pause = (pause.mul_f32(1.5)).min(Duration::from_secs(2));
    }
}

fn probe(session: &ssh2::Session, target: &ReadyTarget, timeout: Duration) -> Result<(), String> {
    session.set_timeout(
        u32::try_from(timeout.as_millis())
            .unwrap_or(u32::MAX)
            .max(1),
    );
    let mut channel = session
        .channel_direct_tcpip(&target.host, target.port, None)
        .map_err(|e| {
            format!(
                "cannot connect to {}:{} from the host: {e}",
                target.host, target.port
            )
        })?;
    let Some(path) = &target.http_path else {
        let _ = channel.close();
        return Ok(());
    };
    let host_header = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: ssh-deploy\r\nConnection: close\r\n\r\n"
    );
    channel
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < 8192 {
        match channel.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    let _ = channel.close();
    let line = String::from_utf8_lossy(&head);
    let status = status_of(line.lines().next().unwrap_or_default())
        .ok_or_else(|| "the answer is not HTTP".to_owned())?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

/// The status code of an HTTP status line.
fn status_of(line: &str) -> Option<u16> {
    let mut words = line.split_whitespace();
    words.next().filter(|w| w.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: Option<u16>) {
        assert_eq!(status_of(line), expected, "{line}");
    }

    #[test]
    fn status_lines() {
        check("HTTP/1.0 200 OK", Some(200));
        check("HTTP/1.1 404 Not Found", Some(404));
        check("SSH-2.0-OpenSSH", None);
        check("", None);
    }
}
