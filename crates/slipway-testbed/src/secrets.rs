//! Secret values for leak tests, and the check that none of their bytes
//! reached a tool's output or files.
//!
//! A leak is any 8-byte window of a secret, or the base64 of the secret or
//! of `user:secret` (an HTTP `Basic` header or a docker `auths` entry),
//! found anywhere in what is scanned. The one allowed occurrence is a
//! GitHub Actions `::add-mask::` line, which is how the runner learns what
//! to hide; [`assert_masked`] checks those lines exist and come first.

use std::path::Path;
use std::process::Output;

use crate::cmd::Cmd;

use base64::Engine as _;

/// The window length: no 8 consecutive bytes of a secret may appear.
pub const WINDOW: usize = 8;

/// A distinctive secret, `s3cr3t-<label>-<random hex>`, new on each call.
/// Keep `label` short (e.g. `Pa55`): every 8-byte window is looked for, so
/// a word such as `registry` in it would match harmless output.
pub fn distinctive(label: &str) -> String {
    let mut bytes = [0u8; 12];
    let file = fs_err::File::open("/dev/urandom").unwrap_or_else(|e| panic!("{e}"));
    std::io::Read::read_exact(&mut &file, &mut bytes).unwrap_or_else(|e| panic!("{e}"));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("s3cr3t-{label}-{hex}")
}

/// One secret to look for.
#[derive(Debug, Clone)]
pub struct Secret {
    /// What it is, for failure messages (`registry password`, `ssh key`).
    pub name: String,
    /// The secret itself.
    pub value: String,
    /// The username it goes with, if any: `user:value` in base64 is a leak too.
    pub user: Option<String>,
    /// Text that may legitimately be printed although it occurs inside the
    /// secret (an SSH private key holds its public key): windows that occur
    /// in it are not looked for.
    pub public: Vec<String>,
}

impl Secret {
    /// A secret named `name`.
    pub fn new(name: &str, value: &str) -> Secret {
        Secret {
            name: name.to_owned(),
            value: value.to_owned(),
            user: None,
            public: Vec::new(),
        }
    }

    /// The same secret, also looked for as base64 of `user:value`.
    pub fn with_user(mut self, user: &str) -> Secret {
        self.user = Some(user.to_owned());
        self
    }

    /// The same secret, not counting windows that occur in `public`.
    pub fn with_public(mut self, public: &str) -> Secret {
        self.public.push(public.to_owned());
        self
    }

    /// Every byte string whose presence is a leak.
    fn patterns(&self) -> Vec<Vec<u8>> {
        let bytes = self.value.as_bytes();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        if bytes.len() <= WINDOW {
            patterns.push(bytes.to_vec());
        } else {
            for window in bytes.windows(WINDOW) {
                // Line breaks differ between renderings (JSON escapes them),
                // so windows are taken within lines; the public part of a
                // key, and filler such as `AAAAAAAA`, are not secret.
                if window.contains(&b'\n')
                    || window.iter().all(|&b| b == window[0])
                    || self.public.iter().any(|p| contains(p.as_bytes(), window))
                {
                    continue;
                }
                patterns.push(window.to_vec());
            }
        }
        let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
        patterns.push(engine.encode(bytes).into_bytes());
        if let Some(user) = &self.user {
            patterns.push(engine.encode(format!("{user}:{}", self.value)).into_bytes());
        }
        patterns.sort();
        patterns.dedup();
        patterns
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `text` without its `::add-mask::` lines, the one place a secret may appear.
pub fn without_mask_lines(text: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b"::add-mask::") {
            kept.extend_from_slice(line);
        }
    }
    kept
}

/// Panics, naming `place` and the secret, if any of `secrets` leaked into
/// `bytes` (outside `::add-mask::` lines).
#[track_caller]
pub fn assert_no_leak(secrets: &[Secret], place: &str, bytes: &[u8]) {
    let scanned = without_mask_lines(bytes);
    for secret in secrets {
        for pattern in secret.patterns() {
            if let Some(at) = scanned
                .windows(pattern.len())
                .position(|w| w == pattern.as_slice())
            {
                let start = at.saturating_sub(80);
                let end = (at + pattern.len() + 80).min(scanned.len());
                panic!(
                    "the {} leaked into {place}: `{}` found in …{}…",
                    secret.name,
                    String::from_utf8_lossy(&pattern),
                    String::from_utf8_lossy(&scanned[start..end])
                );
            }
        }
    }
}

/// [`assert_no_leak`] for every regular file under `dir` (recursively),
/// each named by its path.
#[track_caller]
pub fn assert_no_leak_in_dir(secrets: &[Secret], dir: &Path) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_symlink() {
            continue;
        }
        if path.is_dir() {
            assert_no_leak_in_dir(secrets, &path);
        } else if path.is_file() {
            let bytes = fs_err::read(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_no_leak(secrets, &path.display().to_string(), &bytes);
        }
    }
}

/// Panics unless `stderr` holds an `::add-mask::` line for every non-empty
/// line of each secret (escaped as the runner expects). With `first_use`, a
/// text found on a line printed only once the secret is in use (e.g. a log
/// line of the first request), each mask line must come before that line.
#[track_caller]
pub fn assert_masked(secrets: &[Secret], stderr: &[u8], first_use: Option<&str>) {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    let use_at = first_use.map(|marker| {
        lines
            .iter()
            .position(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no line with `{marker}` in stderr:\n{text}"))
    });
    for secret in secrets {
        for part in secret.value.lines().filter(|l| !l.trim().is_empty()) {
            let escaped = part
                .replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A");
            let mask = format!("::add-mask::{escaped}");
            let at = lines.iter().position(|l| *l == mask).unwrap_or_else(|| {
                panic!("no `{mask}` for the {} in stderr:\n{text}", secret.name)
            });
            if let Some(use_at) = use_at {
                assert!(
                    at < use_at,
                    "the mask of the {} comes after its first use (line {use_at}):\n{text}",
                    secret.name
                );
            }
        }
    }
}

/// A finished run of a tool under GitHub Actions, with the files the runner
/// would read (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`).
#[derive(Debug)]
pub struct GithubRun {
    /// What the tool printed and how it exited.
    pub output: Output,
    /// The directory holding `github_output` and `step_summary`.
    pub files: tempfile::TempDir,
}

impl GithubRun {
    /// Runs `cmd` (environment cleared, bounded wait: see [`Cmd`]) to its
    /// end with `GITHUB_ACTIONS=true`, the GitHub files in a new temp dir,
    /// `RUST_LOG=trace` (every target, our dependencies too) and
    /// `NO_COLOR`; stdin is whatever `cmd` says (empty by default).
    pub fn run(cmd: &mut Cmd) -> GithubRun {
        let files = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let output = cmd
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", files.path().join("github_output"))
            .env("GITHUB_STEP_SUMMARY", files.path().join("step_summary"))
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .run()
            .into();
        GithubRun { output, files }
    }

    /// [`GithubRun::run`] with `stdin` piped in (e.g. `--password-stdin`).
    pub fn run_with_stdin(cmd: &mut Cmd, stdin: &str) -> GithubRun {
        GithubRun::run(cmd.stdin(stdin))
    }

    /// The exit code.
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Panics if any of `secrets` is in stdout, stderr (outside
    /// `::add-mask::` lines), the GitHub files, or a file under `dirs`.
    #[track_caller]
    pub fn assert_no_leak(&self, secrets: &[Secret], dirs: &[&Path]) {
        assert_no_leak(secrets, "stdout", &self.output.stdout);
        assert_no_leak(secrets, "stderr", &self.output.stderr);
        assert_no_leak_in_dir(secrets, self.files.path());
        for dir in dirs {
            assert_no_leak_in_dir(secrets, dir);
        }
    }

    /// [`assert_masked`] on this run's stderr.
    #[track_caller]
    pub fn assert_masked(&self, secrets: &[Secret], first_use: Option<&str>) {
        assert_masked(secrets, &self.output.stderr, first_use);
    }
}

/// `user:password` in base64, as an HTTP `Basic` authorization carries it.
pub fn basic_auth(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Writes `dir/config.json`, a docker config whose `auths` entry for `host`
/// holds `user:password` in base64, as `docker login` stores it; returns `dir`
/// as a string for `DOCKER_CONFIG`.
pub fn write_docker_config(dir: &Path, host: &str, user: &str, password: &str) -> String {
    let auth = basic_auth(user, password);
    fs_err::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    dir.display().to_string()
}

/// Copies `from` (on a registry without auth) to `to` on a registry that
/// needs `user`/`password`, with skopeo, so a test has an image behind auth.
pub fn copy_image(from: &str, to: &str, user: &str, password: &str) {
    let skopeo = crate::require("skopeo", "skopeo");
    let output = std::process::Command::new(&skopeo)
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("--dest-creds={user}:{password}"))
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", skopeo.display()));
    assert!(
        output.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_base64_and_basic_headers_are_leaks() {
        let secret = Secret::new("password", "s3cr3t-pw-0123456789").with_user("bot");
        assert_no_leak(
            std::slice::from_ref(&secret),
            "text",
            b"seven bytes are not a leak: s3cr3t-",
        );
        for leak in [
            "x s3cr3t-pw-0123456789 y",
            "...-pw-01234...",
            // base64 of `bot:s3cr3t-pw-0123456789`
            "Authorization: Basic Ym90OnMzY3IzdC1wdy0wMTIzNDU2Nzg5",
        ] {
            let caught = std::panic::catch_unwind(|| {
                assert_no_leak(std::slice::from_ref(&secret), "text", leak.as_bytes());
            });
            assert!(caught.is_err(), "`{leak}` is a leak");
        }
        let masked = b"::add-mask::s3cr3t-pw-0123456789\nok\n";
        assert_no_leak(std::slice::from_ref(&secret), "stderr", masked);
        assert_masked(&[secret], masked, Some("ok"));
    }
}
