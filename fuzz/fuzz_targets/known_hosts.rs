//! known_hosts files as ssh-deploy reads them (`--known-hosts`,
//! `~/.ssh/known_hosts`): reading never panics or crashes libssh2's parser;
//! a rejected file names a line inside it; and a line in the form
//! `--accept-new-host-key` appends is read back as a match for its host and
//! key, and as a mismatch for another key.
//!
//! Input: the known_hosts text. Its bytes also make one host name, port and
//! key for the round trip.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let session = ssh2::Session::new().expect("libssh2 can allocate a session");
    let mut known = session
        .known_hosts()
        .expect("a session has a known_hosts store");
    if let Err((line, error)) = ssh_deploy::read_known_hosts(&mut known, text) {
        let lines = text.lines().count();
        assert!(
            line >= 1 && line <= lines,
            "line {line} of {lines} rejected: {error}"
        );
    }
    // Lookups in whatever was read must not crash either.
    let key = text.as_bytes();
    for (name, port) in [("example.com", 22), ("127.0.0.1", 2222), ("[::1]", 22)] {
        let _ = known.check_port(name, port, key);
    }

    // The round trip, with the line format ssh-deploy appends:
    // `name type base64(key)`, where name is `host` on port 22, else `[host]:port`.
    let host: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .take(40)
        .collect();
    if host.is_empty() {
        return;
    }
    let port = if text.len() % 3 == 0 {
        22
    } else {
        1024 + (text.len() % 60000) as u16
    };
    let mut key = b"\0\0\0\x0bssh-ed25519\0\0\0\x20".to_vec();
    key.extend(text.bytes().chain(std::iter::repeat(0x5a)).take(32));
    let name = if port == 22 {
        host.clone()
    } else {
        format!("[{host}]:{port}")
    };
    let line = format!(
        "{name} ssh-ed25519 {}\n",
        base64::engine::general_purpose::STANDARD.encode(&key)
    );
    let mut fresh = session
        .known_hosts()
        .expect("a session has a known_hosts store");
    if let Err((_, error)) = ssh_deploy::read_known_hosts(&mut fresh, &line) {
        panic!("the line ssh-deploy appends for `{host}` port {port} is rejected: {error}\n{line}");
    }
    assert!(
        matches!(
            fresh.check_port(&host, port, &key),
            ssh2::CheckResult::Match
        ),
        "`{host}` port {port} is not found with its own key after reading\n{line}"
    );
    let mut other = key.clone();
    let last = other.len() - 1;
    other[last] ^= 1;
    assert!(
        matches!(
            fresh.check_port(&host, port, &other),
            ssh2::CheckResult::Mismatch
        ),
        "`{host}` port {port} with another key is not a mismatch\n{line}"
    );
});
