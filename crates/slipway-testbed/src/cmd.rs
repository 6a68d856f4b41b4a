//! One way for every integration test to run a tool binary: [`Cmd`].
//!
//! A [`Cmd`] is the binary (`env!("CARGO_BIN_EXE_<tool>")`), its arguments,
//! working directory, environment and stdin; [`Cmd::run`] runs it to its end
//! within a deadline and returns an [`Outcome`] whose assertions are exact by
//! default.
//!
//! ```no_run
//! use slipway_testbed::cmd::Cmd;
//! let repo = slipway_testbed::git::GitRepo::new();
//! // In a tool's tests: `Cmd::new(env!("CARGO_BIN_EXE_img-tag"))`.
//! Cmd::new("target/debug/img-tag")
//!     .current_dir(repo.path())
//!     .args(["--format", "json"])
//!     .env("NO_COLOR", "1")
//!     .run()
//!     .assert(2, "", "error: ...\n");
//! ```
//!
//! # The environment policy
//!
//! The child starts from an **empty** environment, whatever the test runner
//! has set (CI variables such as `CI`, `GITHUB_ACTIONS`, `GITHUB_*`,
//! `GITLAB_CI`, `RUNNER_*`, proxies, `SLIPWAY_*`, `DOCKER_HOST`,
//! `SSH_AUTH_SOCK`, `RUST_LOG` never reach a test). It then gets exactly:
//!
//! - `PATH`, copied from the test process, because the tools run `git`,
//!   `docker`, `buildah`, `skopeo`, `ssh-keygen`… found on it;
//! - `HOME`, a fresh empty temp dir owned by the `Cmd` (or the directory
//!   given to [`Cmd::home`]), so no `~/.docker/config.json`, `~/.gitconfig`
//!   or `~/.ssh` of the machine is read;
//! - whatever the test sets with [`Cmd::env`] / [`Cmd::envs`].
//!
//! A test that needs a variable of the runner says so with
//! [`Cmd::env_from_runner`], so the dependency is visible in the test.
//!
//! # The bounded wait
//!
//! [`Cmd::run`] waits at most [`DEFAULT_TIMEOUT`] (or [`Cmd::timeout`]). A
//! binary still running then is killed and the test panics with what it
//! printed so far on stdout and stderr: a hung tool fails its test instead of
//! hanging nextest.
//!
//! # Exact assertions
//!
//! [`Outcome::assert`] compares the exit code, stdout and stderr exactly;
//! [`Outcome::success`] expects exit 0 and an empty stderr. Looser checks are
//! spelled out ([`Outcome::assert_code`], [`Outcome::stdout_str`] and a
//! `contains` in the test), so a reader sees where a test is lenient. Every
//! failed assertion prints the code and both streams.
//!
//! For a test that acts while the binary runs (stops a server, sends a
//! signal, starts a second run), [`Cmd::spawn`] returns a [`Running`] whose
//! [`Running::wait`] has the same deadline and whose drop kills the binary.
//! [`Cmd::command`] gives the bare `std::process::Command` with the same
//! environment policy, for the rare test that must own the child's stdio
//! (reading stderr line by line as it comes); the test then bounds it.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long [`Cmd::run`] waits for the binary unless [`Cmd::timeout`] says
/// otherwise: longer than any healthy run of a tool in the test suite
/// (image builds included), short enough that a hang is reported while
/// someone still waits for the result.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the child's `HOME` points.
#[derive(Debug, Clone)]
enum Home {
    /// A fresh empty directory, removed when the last [`Cmd`] or [`Running`]
    /// holding it drops.
    Temp(Arc<tempfile::TempDir>),
    /// A directory the test chose.
    Given(PathBuf),
}

/// A tool binary to run, with its arguments, working directory,
/// environment (cleared by default, see the [module docs](self)) and stdin.
#[derive(Debug)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    current_dir: Option<PathBuf>,
    /// Variables set on top of the policy's `PATH` and `HOME`, in order;
    /// `None` removes the variable.
    env: Vec<(OsString, Option<OsString>)>,
    home: Home,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Cmd {
    /// A command running `program` (usually `env!("CARGO_BIN_EXE_<tool>")`)
    /// with no arguments, the test's working directory, the cleared
    /// environment, an empty stdin and [`DEFAULT_TIMEOUT`].
    pub fn new(program: impl AsRef<Path>) -> Cmd {
        let home = tempfile::Builder::new()
            .prefix("slipway-test-home")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for the child's HOME: {e}"));
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            current_dir: None,
            env: Vec::new(),
            home: Home::Temp(Arc::new(home)),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs the binary in `dir`.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets a variable (the last setting of a name wins, as with `Command`).
    pub fn env(&mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Cmd {
        self.env
            .push((name.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Sets several variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Cmd
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (name, value) in vars {
            self.env(name, value);
        }
        self
    }

    /// Unsets a variable set earlier (or the policy's `PATH` or `HOME`).
    pub fn env_remove(&mut self, name: impl AsRef<OsStr>) -> &mut Cmd {
        self.env.push((name.as_ref().to_owned(), None));
        self
    }

    /// Passes the test runner's own value of `name`, if it has one: for the
    /// rare test that needs the machine's setting, said out loud.
    pub fn env_from_runner(&mut self, name: &str) -> &mut Cmd {
        match std::env::var_os(name) {
            Some(value) => self.env(name, value),
            None => self.env_remove(name),
        }
    }

    /// Points `HOME` at `dir` instead of a fresh empty temp dir.
    pub fn home(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.home = Home::Given(dir.as_ref().to_owned());
        self
    }

    /// Writes `bytes` to the binary's stdin, then closes it (by default
    /// stdin is empty: closed at once).
    pub fn stdin(&mut self, bytes: impl AsRef<[u8]>) -> &mut Cmd {
        self.stdin = Some(bytes.as_ref().to_owned());
        self
    }

    /// Waits at most `timeout` for the binary in [`Cmd::run`].
    pub fn timeout(&mut self, timeout: Duration) -> &mut Cmd {
        self.timeout = timeout;
        self
    }

    /// The `HOME` the child gets.
    pub fn home_dir(&self) -> &Path {
        match &self.home {
            Home::Temp(dir) => dir.path(),
            Home::Given(dir) => dir,
        }
    }

    /// The `std::process::Command` with this program, arguments, directory
    /// and environment policy, for a test that drives the child itself
    /// (signals, reading stderr as it comes). Its stdio is the caller's to
    /// choose; without [`Cmd::home`], `HOME` is this `Cmd`'s temp dir, so the
    /// `Cmd` must outlive the child.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home_dir());
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs the binary to its end and returns what it did. Panics (failing
    /// the test) if it cannot start, or if it runs longer than the timeout:
    /// then it is killed and the panic shows what it printed so far.
    pub fn run(&self) -> Outcome {
        self.spawn().wait()
    }

    /// Starts the binary and returns at once, for a test that acts while it
    /// runs (stops a server, sends a signal, starts a second one). Its
    /// stdin gets the [`Cmd::stdin`] bytes; stdout and stderr are captured.
    /// The timeout counts from here; a [`Running`] dropped unwaited (a test
    /// that failed half-way) kills the binary.
    pub fn spawn(&self) -> Running {
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.program.display()));
        let deadline = Instant::now() + self.timeout;

        // Stdin, stdout and stderr each get a thread, so that a child that
        // writes a lot before reading its stdin cannot deadlock the test.
        let mut stdin = child.stdin.take().expect("stdin was piped just above");
        let bytes = self.stdin.clone().unwrap_or_default();
        std::thread::spawn(move || {
            // A child that exits without reading its stdin closes the pipe:
            // that is its choice, not a test failure.
            let _ = stdin.write_all(&bytes);
        });
        let (done, finished) = mpsc::channel();
        let stdout = Captured::start(
            child.stdout.take().expect("stdout was piped just above"),
            done.clone(),
        );
        let stderr = Captured::start(
            child.stderr.take().expect("stderr was piped just above"),
            done,
        );
        Running {
            child: Some(child),
            what: format!("`{}` {:?}", self.program.display(), self.args),
            timeout: self.timeout,
            deadline,
            stdout,
            stderr,
            finished,
            _home: self.home.clone(),
        }
    }
}

/// A binary started by [`Cmd::spawn`]; killed when dropped unwaited.
#[derive(Debug)]
pub struct Running {
    child: Option<std::process::Child>,
    /// The program and its arguments, for failure messages.
    what: String,
    timeout: Duration,
    deadline: Instant,
    stdout: Captured,
    stderr: Captured,
    /// One message per stream when it reaches its end.
    finished: mpsc::Receiver<()>,
    /// Keeps the child's temp `HOME` alive while it runs.
    _home: Home,
}

impl Running {
    /// The child's process id (for signals).
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// What the binary has written to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stdout.bytes()).into_owned()
    }

    /// What the binary has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.bytes()).into_owned()
    }

    /// Waits for the binary to end, at most until the [`Cmd`]'s timeout
    /// (counted from the start); after that it is killed and the test
    /// fails with what it printed so far.
    pub fn wait(mut self) -> Outcome {
        let mut child = self.child.take().expect("a Running is waited for once");
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => panic!("cannot wait for {}: {e}", self.what),
            }
            if Instant::now() >= self.deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} ran longer than {:?} and was killed\n{}",
                    self.what,
                    self.timeout,
                    streams(&self.stdout.bytes(), &self.stderr.bytes()),
                );
            }
            // Polling, not sleeping as synchronisation: the loop ends on the
            // child's exit or on the deadline, whichever comes first.
            std::thread::sleep(Duration::from_millis(5));
        };
        // The streams end when every holder of the pipes has closed them; a
        // grandchild left running may keep them open, which the deadline
        // also bounds.
        for _ in 0..2 {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if self.finished.recv_timeout(left).is_err() {
                panic!(
                    "{} exited ({status}) but its stdout or stderr stayed open \
                     past {:?} (a process it started still holds them)\n{}",
                    self.what,
                    self.timeout,
                    streams(&self.stdout.bytes(), &self.stderr.bytes()),
                );
            }
        }
        Outcome {
            output: Output {
                status,
                stdout: self.stdout.bytes(),
                stderr: self.stderr.bytes(),
            },
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A stream read to its end by a thread; what has arrived so far is
/// readable at any time.
#[derive(Debug)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Reads `stream` on a thread, signalling `done` when it ends.
    fn start(mut stream: impl std::io::Read + Send + 'static, done: mpsc::Sender<()>) -> Captured {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let filling = Arc::clone(&buffer);
        std::thread::spawn(move || {
            let mut chunk = [0_u8; 8192];
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => filling
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .extend_from_slice(&chunk[..n]),
                }
            }
            let _ = done.send(());
        });
        Captured(buffer)
    }

    fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Both streams, for failure messages.
fn streams(stdout: &[u8], stderr: &[u8]) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    )
}

/// What a finished run did: its exit status and both streams. It derefs to
/// [`std::process::Output`], so `outcome.status`, `outcome.stdout` and
/// functions taking `&Output` work on it.
#[derive(Debug, Clone)]
pub struct Outcome {
    output: Output,
}

impl std::ops::Deref for Outcome {
    type Target = Output;

    fn deref(&self) -> &Output {
        &self.output
    }
}

impl From<Outcome> for Output {
    fn from(outcome: Outcome) -> Output {
        outcome.output
    }
}

impl Outcome {
    /// The exit code, or `None` when a signal ended the binary.
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// The exit status.
    pub fn status(&self) -> ExitStatus {
        self.output.status
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Stdout parsed as one JSON document; panics with both streams when it
    /// is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{}", self.streams()))
    }

    /// Asserts the exit code, stdout and stderr, each exactly.
    #[track_caller]
    pub fn assert(&self, code: i32, stdout: &str, stderr: &str) -> &Outcome {
        if self.code() != Some(code)
            || self.output.stdout != stdout.as_bytes()
            || self.output.stderr != stderr.as_bytes()
        {
            panic!(
                "expected exit {code}, stdout {stdout:?}, stderr {stderr:?}\n\
                 got exit {}, stdout {:?}, stderr {:?}\n{}",
                self.code_text(),
                self.stdout_str(),
                self.stderr_str(),
                self.streams()
            );
        }
        self
    }

    /// Asserts exit 0 and an empty stderr (stdout is the caller's to check).
    #[track_caller]
    pub fn success(&self) -> &Outcome {
        if !self.output.status.success() || !self.output.stderr.is_empty() {
            panic!(
                "expected exit 0 and an empty stderr, got exit {}\n{}",
                self.code_text(),
                self.streams()
            );
        }
        self
    }

    /// Asserts the exit code only: the test checks the streams itself.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Outcome {
        if self.code() != Some(code) {
            panic!(
                "expected exit {code}, got exit {}\n{}",
                self.code_text(),
                self.streams()
            );
        }
        self
    }

    /// Asserts stdout exactly.
    #[track_caller]
    pub fn assert_stdout(&self, stdout: &str) -> &Outcome {
        if self.output.stdout != stdout.as_bytes() {
            panic!(
                "expected stdout {stdout:?}, got {:?}\n{}",
                self.stdout_str(),
                self.streams()
            );
        }
        self
    }

    /// Asserts stderr exactly.
    #[track_caller]
    pub fn assert_stderr(&self, stderr: &str) -> &Outcome {
        if self.output.stderr != stderr.as_bytes() {
            panic!(
                "expected stderr {stderr:?}, got {:?}\n{}",
                self.stderr_str(),
                self.streams()
            );
        }
        self
    }

    fn code_text(&self) -> String {
        match self.code() {
            Some(code) => code.to_string(),
            None => format!("by signal ({})", self.output.status),
        }
    }

    fn streams(&self) -> String {
        format!(
            "exit {}\n{}",
            self.code_text(),
            streams(&self.output.stdout, &self.output.stderr)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -c SCRIPT` through the builder.
    fn sh(script: &str) -> Cmd {
        let mut cmd = Cmd::new("/bin/sh");
        cmd.args(["-c", script]);
        cmd
    }

    /// The panic message of `f`.
    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("the closure panics");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }

    #[test]
    fn the_child_sees_only_path_home_and_what_the_test_sets() {
        let mut cmd = sh("env | LC_ALL=C sort");
        cmd.env("NO_COLOR", "1");
        let outcome = cmd.run();
        let expected = format!(
            "HOME={}\nNO_COLOR=1\nPATH={}\nPWD={}\n",
            cmd.home_dir().display(),
            std::env::var("PATH").unwrap_or_default(),
            std::env::current_dir().unwrap().display(),
        );
        // `sh` itself exports PWD (and may add SHLVL); nothing else appears.
        let seen = outcome.stdout_str().replace("SHLVL=1\n", "");
        assert_eq!(seen, expected);
        outcome.success();
    }

    #[test]
    fn the_runners_ci_variables_never_reach_the_child() {
        // The test process may itself run under CI; the check holds either way.
        let outcome = sh(
            "echo \"${CI-unset} ${GITHUB_ACTIONS-unset} ${GITLAB_CI-unset} \
             ${RUNNER_OS-unset} ${SLIPWAY_FORMAT-unset}\"",
        )
        .run();
        outcome.assert(0, "unset unset unset unset unset\n", "");
    }

    #[test]
    fn env_from_runner_passes_the_runners_value_said_out_loud() {
        let path = std::env::var("PATH").unwrap_or_default();
        sh("echo \"$PATH\"")
            .env("PATH", "/nowhere")
            .env_from_runner("PATH")
            .run()
            .assert(0, &format!("{path}\n"), "");
    }

    #[test]
    fn home_is_an_empty_temp_dir_or_the_one_given() {
        let given = tempfile::tempdir().unwrap();
        fs_err::write(given.path().join("mine"), "").unwrap();
        sh("ls -A \"$HOME\"; echo \"$HOME\"")
            .home(given.path())
            .run()
            .assert(0, &format!("mine\n{}\n", given.path().display()), "");
        let cmd = sh("ls -A \"$HOME\"");
        cmd.run().assert(0, "", "");
        assert!(cmd.home_dir().is_dir());
    }

    #[test]
    fn stdin_bytes_reach_the_child_and_the_default_stdin_is_empty() {
        sh("cat; echo end")
            .stdin("line\n")
            .run()
            .assert(0, "line\nend\n", "");
        sh("cat; echo end").run().assert(0, "end\n", "");
    }

    #[test]
    fn a_large_output_before_reading_stdin_does_not_deadlock() {
        let big = "x".repeat(1 << 20);
        let outcome = sh("head -c 1048576 /dev/zero; cat >/dev/null; echo done >&2")
            .stdin(&big)
            .run();
        assert_eq!(outcome.stdout.len(), 1 << 20);
        outcome.assert_stderr("done\n");
    }

    #[test]
    fn current_dir_and_args_are_the_childs() {
        let dir = tempfile::tempdir().unwrap();
        sh("pwd; echo \"$0 $1\"")
            .arg("zero")
            .arg("one two")
            .current_dir(dir.path())
            .run()
            .assert(0, &format!("{}\nzero one two\n", dir.path().display()), "");
    }

    #[test]
    fn a_hung_binary_is_killed_and_the_test_fails_with_what_it_printed() {
        let started = Instant::now();
        let message = panic_message(|| {
            sh("echo before; echo oops >&2; exec sleep 30")
                .timeout(Duration::from_millis(500))
                .run();
        });
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the wait is bounded"
        );
        assert!(
            message.contains("ran longer than 500ms and was killed")
                && message.contains("--- stdout ---\nbefore\n")
                && message.contains("--- stderr ---\noops\n"),
            "{message}"
        );
    }

    #[test]
    fn a_grandchild_holding_the_pipes_fails_the_test_within_the_deadline() {
        let message = panic_message(|| {
            sh("sleep 5 & echo started")
                .timeout(Duration::from_millis(500))
                .run();
        });
        assert!(
            message.contains("exited (exit status: 0) but its stdout or stderr stayed open")
                && message.contains("started"),
            "{message}"
        );
    }

    #[test]
    fn assertions_are_exact_and_show_both_streams() {
        let outcome = sh("echo out; echo err >&2; exit 3").run();
        outcome
            .assert(3, "out\n", "err\n")
            .assert_code(3)
            .assert_stdout("out\n")
            .assert_stderr("err\n");
        assert_eq!(outcome.code(), Some(3));
        assert_eq!(outcome.status.code(), Some(3), "derefs to Output");

        let message = panic_message(|| {
            sh("echo out; echo err >&2; exit 3")
                .run()
                .assert(3, "out", "err\n");
        });
        assert!(
            message.contains("expected exit 3, stdout \"out\", stderr \"err\\n\"")
                && message.contains("got exit 3, stdout \"out\\n\""),
            "{message}"
        );
        let message = panic_message(|| {
            sh("echo warning >&2").run().success();
        });
        assert!(
            message.contains("expected exit 0 and an empty stderr, got exit 0")
                && message.contains("--- stderr ---\nwarning\n"),
            "{message}"
        );
    }

    #[test]
    fn json_parses_stdout_or_fails_with_both_streams() {
        let outcome = sh("echo '{\"a\": [1]}'").run();
        assert_eq!(outcome.json(), serde_json::json!({"a": [1]}));
        let message = panic_message(|| {
            sh("echo not json; echo why >&2").run().json();
        });
        assert!(
            message.contains("stdout is not one JSON document")
                && message.contains("not json")
                && message.contains("why"),
            "{message}"
        );
    }

    #[test]
    fn a_spawned_binary_shows_its_output_as_it_comes_and_is_waited_with_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        let running = sh("echo ready >&2; while [ ! -e go ]; do sleep 0.01; done; echo done")
            .current_dir(dir.path())
            .spawn();
        let started = Instant::now();
        while running.stderr_so_far() != "ready\n" {
            assert!(started.elapsed() < Duration::from_secs(10), "never ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(crate::process_exists(running.id()));
        fs_err::write(&go, "").unwrap();
        running.wait().assert(0, "done\n", "ready\n");
    }

    #[test]
    fn a_running_binary_dropped_unwaited_is_killed() {
        let running = sh("exec sleep 30").spawn();
        let pid = running.id();
        drop(running);
        assert!(!crate::process_exists(pid), "pid {pid} still runs");
    }

    #[test]
    fn a_signal_is_reported_as_such() {
        let message = panic_message(|| {
            sh("kill -9 $$").run().assert_code(0);
        });
        assert!(message.contains("got exit by signal"), "{message}");
    }
}
