//! Helpers shared by the integration tests: the real binary, run through
//! the test bed's builder with a cleared environment, so the runner's own
//! `GITHUB_*` (or any CI variable) never leaks in.

use std::path::Path;

use slipway_testbed::cmd::{Cmd, Outcome};
use std::process::Output;

/// Runs `img-tag` in `dir` with only `env` (and `PATH`, a temp `HOME`) set,
/// `stdin` piped in (empty when `None`), within the builder's deadline.
pub(crate) fn img_tag(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Outcome {
    let mut command = Cmd::new(env!("CARGO_BIN_EXE_img-tag"));
    command
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied());
    if let Some(text) = stdin {
        command.stdin(text);
    }
    command.run()
}

/// Stdout as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
