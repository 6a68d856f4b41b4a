//! What every tool does at its edges: the shared flags, start-up (logging,
//! colour, output format) and the one place the final error is printed.
//!
//! A tool's `main` is `parse → init → run → finish`; this module owns `init`
//! and `finish`, so every tool starts, logs and fails the same way.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::{ColorChoice, Format, Output, Report};

/// Exit codes shared by every tool, listed on each tool's docs page. A code is
/// never reused for a second meaning.
pub mod exit {
    /// Success: the work was done, or the check answered yes.
    pub const SUCCESS: u8 = 0;
    /// The check ran and the answer is no (stale, not ready, nothing matched).
    pub const NO: u8 = 1;
    /// Bad input: a usage error, a config error, an invalid value.
    pub const USAGE: u8 = 2;
    /// An operation failed: registry, docker, ssh, git, the file system.
    pub const FAILURE: u8 = 3;
}

/// Flags every tool accepts, spelled the same everywhere.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Path to slipway.toml [default: found by walking up from the current directory]
    #[arg(long, global = true, env = "SLIPWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Format of the report on stdout (`github` also writes $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY; `dotenv` is for GitLab's `artifacts:reports:dotenv`)
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_FORMAT",
        value_enum,
        default_value_t = Format::Plain
    )]
    pub format: Format,

    /// More logs on stderr: -v for debug, -vv for trace (RUST_LOG overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only errors on stderr: no progress, no warnings
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// When to colour stderr and plain output [NO_COLOR is honoured under `auto`]
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_COLOR",
        value_enum,
        default_value_t = ColorChoice::Auto,
        value_name = "WHEN"
    )]
    pub color: ColorChoice,
}

/// A usage mistake found after parsing (a flag combination, a value clap could
/// not check). `finish` exits with [`exit::USAGE`] when an error's chain holds
/// one, as it does for config and image-reference errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// Wraps a message as a usage error, ready for `?` in an `anyhow` function.
    #[allow(
        clippy::new_ret_no_self,
        reason = "tools build usage errors only to return them as anyhow errors"
    )]
    pub fn new(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(UsageError(message.into()))
    }

    /// A usage mistake whose reason is another error (a revision git cannot
    /// resolve): exits [`exit::USAGE`] whatever code `source` would say, and
    /// keeps `source` in the chain, printed as `caused by:`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> anyhow::Error {
        anyhow::Error::new(UsageErrorCause {
            message: message.into(),
            source: source.into(),
        })
    }
}

/// A [`UsageError`] with a cause: built by [`UsageError::caused_by`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageErrorCause {
    message: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// The hidden flags every binary answers before parsing its own, for
/// packagers (`cargo xtask dist` ships their output):
/// `--generate-completions bash|zsh|fish` prints the shell completion
/// script, `--generate-man` the man page (roff) of the binary's `C` command.
/// Returns the exit code when one of them was given (first on the command
/// line, alone), `None` otherwise; call it first thing in `main`.
pub fn generate<C: clap::CommandFactory>() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).take(3).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = C::command();
    let name = command.get_name().to_owned();
    let mut out = std::io::stdout().lock();
    let written = match args.as_slice() {
        ["--generate-man"] => clap_mangen::Man::new(command).render(&mut out),
        ["--generate-completions", shell] => {
            let shell = match *shell {
                "bash" => clap_complete::Shell::Bash,
                "zsh" => clap_complete::Shell::Zsh,
                "fish" => clap_complete::Shell::Fish,
                other => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "error: invalid value `{other}` for `--generate-completions`: valid shells are `bash`, `zsh`, `fish`"
                    );
                    return Some(ExitCode::from(exit::USAGE));
                }
            };
            clap_complete::generate(shell, &mut command, name, &mut out);
            Ok(())
        }
        ["--generate-completions"] => {
            let _ = writeln!(
                std::io::stderr(),
                "error: `--generate-completions` needs a shell: `bash`, `zsh` or `fish`"
            );
            return Some(ExitCode::from(exit::USAGE));
        }
        _ => return None,
    };
    Some(match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {error}");
            ExitCode::from(exit::FAILURE)
        }
    })
}

/// Sets up logging, colour and the output format; returns the [`Output`] the
/// tool reports through.
pub fn init(global: &GlobalArgs) -> Output {
    let output = Output::from_args(global);
    init_logging(global.verbose, global.quiet, output.stderr_color());
    output
}

/// Ends a run: emits the report and returns its exit code, or prints the
/// error once (`error: …`, then one `caused by:` line per cause; under
/// GitHub Actions also an `::error` annotation, pointing at the file, line
/// and column when a cause has them) and returns [`exit::USAGE`] or
/// [`exit::FAILURE`].
///
/// `kinds` are the [`ErrorKinds`] of the crates the tool uses besides
/// slipway-core: what their errors say of exit codes ([`exit_code_for`])
/// and of places in files.
pub fn finish<R: Report>(
    output: &Output,
    result: anyhow::Result<R>,
    kinds: &[ErrorKinds],
) -> ExitCode {
    match result {
        Ok(report) => match output.emit(&report) {
            Ok(()) => ExitCode::from(report.exit_code()),
            // A reader that went away (`| head`) is not our failure.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::from(report.exit_code())
            }
            // Output names that cannot be written (`output::check_output_names`):
            // refused before anything was written, as bad input.
            Err(error)
                if error
                    .get_ref()
                    .is_some_and(|inner| inner.is::<crate::output::OutputNameError>()) =>
            {
                let error = anyhow::Error::from(error).context(format!(
                    "cannot write the report in `--format {}`",
                    output.format().name()
                ));
                print_error(output, &error, &[]);
                ExitCode::from(exit::USAGE)
            }
            Err(error) => {
                let error = anyhow::Error::from(error).context("cannot write the report to stdout");
                print_error(output, &error, &[]);
                ExitCode::from(exit::FAILURE)
            }
        },
        Err(error) => {
            print_error(output, &error, kinds);
            let classifiers: Vec<Classifier> = kinds.iter().map(|kind| kind.classify).collect();
            ExitCode::from(exit_code_for(&error, &classifiers))
        }
    }
}

/// An error that says which exit code it means: [`exit::USAGE`] for bad
/// input, [`exit::FAILURE`] for a failed operation. Every error enum of
/// slipway-core implements it.
pub trait ExitStatus {
    /// The exit code this error means; `None` when its cause decides (a
    /// variant that only wraps another error).
    fn exit_code(&self) -> Option<u8>;
}

/// Implements [`ExitStatus`] for error types whose every variant means one
/// code: `exit_status!(ValueError => USAGE)` (a name of [`exit`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __exit_status {
    ($($error:ty => $code:ident),+ $(,)?) => {$(
        impl $crate::cli::ExitStatus for $error {
            fn exit_code(&self) -> Option<u8> {
                Some($crate::cli::exit::$code)
            }
        }
    )+};
}
pub use __exit_status as exit_status;

exit_status!(UsageError => USAGE, UsageErrorCause => USAGE);

/// Says which exit code `cause` means if it is one of a crate's error types
/// ([`ExitStatus`]); each Slipway library crate has one, named `classify`.
pub type Classifier = fn(&(dyn std::error::Error + 'static)) -> Option<u8>;

/// Says where in a file `cause` is, if it is one of a crate's error types
/// that knows (and the file exists: stdin or an inline text has no place to
/// point at).
pub type Locator =
    fn(&(dyn std::error::Error + 'static)) -> Option<crate::output::AnnotationLocation>;

/// What a library crate knows of its own errors: their exit codes and
/// their places in files. Each Slipway library crate has one, `ERRORS`,
/// and a tool passes [`finish`] those of the crates it uses.
#[derive(Debug, Clone, Copy)]
pub struct ErrorKinds {
    /// The exit code a cause says.
    pub classify: Classifier,
    /// The place in a file a cause names.
    pub locate: Locator,
}

impl ErrorKinds {
    /// A crate whose errors name no place in a file.
    pub const fn codes_only(classify: Classifier) -> ErrorKinds {
        ErrorKinds {
            classify,
            locate: |_| None,
        }
    }
}

/// The exit code an error maps to: that of the first cause in its chain
/// that says one, asking slipway-core's errors ([`classify`]) and then
/// `classifiers` (those of the crates the tool uses), else [`exit::FAILURE`].
pub fn exit_code_for(error: &anyhow::Error, classifiers: &[Classifier]) -> u8 {
    error
        .chain()
        .find_map(|cause| {
            classify(cause).or_else(|| classifiers.iter().find_map(|classify| classify(cause)))
        })
        .unwrap_or(exit::FAILURE)
}

/// The exit code `cause` says if it is an `E` that decides one: the building
/// block of each crate's `classify`.
pub fn code<E: ExitStatus + std::error::Error + 'static>(
    cause: &(dyn std::error::Error + 'static),
) -> Option<u8> {
    cause.downcast_ref::<E>().and_then(ExitStatus::exit_code)
}

/// The exit code `cause` says, if it is one of slipway-core's errors (or a
/// [`UsageError`]) that decides one.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    use crate::{ci, duration, image_ref, secret};
    [
        code::<UsageError>,
        code::<UsageErrorCause>,
        code::<image_ref::ImageRefError>,
        code::<duration::DurationError>,
        code::<ci::CiError>,
        code::<secret::TooShort>,
    ]
    .iter()
    .find_map(|code| code(cause))
}

/// One stderr subscriber for `tracing`: `warn` by default, `-v` = `debug` and
/// `-vv` = `trace` for Slipway's own targets, `-q` = `error`; `RUST_LOG`
/// overrides all of it.
fn init_logging(verbose: u8, quiet: bool, color: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error".to_owned(),
        (false, 0) => "warn".to_owned(),
        (false, 1) => "warn,slipway=debug,slipway_core=debug".to_owned() + &own_targets("debug"),
        (false, _) => "warn,slipway=trace,slipway_core=trace".to_owned() + &own_targets("trace"),
    };
    // The TLS verifier logs each refused certificate at `error`; the error
    // Slipway returns says the same, with what to do about it.
    let default = default + ",rustls_platform_verifier=off";
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A second init (tests calling `init` twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || SafeStderr { color })
        .with_ansi(color)
        .with_target(verbose > 0)
        .without_time()
        .try_init();
}

/// The tools' own library targets (`img_tag`, `changed_paths`, …) and the
/// library crates', which the `-v` levels cover along with slipway-core.
fn own_targets(level: &str) -> String {
    [
        "slipway_config",
        "slipway_git",
        "slipway_registry",
        "slipway_tags",
        "slipway_stale",
        "slipway_ready",
        "img_build",
        "img_tag",
        "changed_paths",
        "ssh_deploy",
        "ready_wait",
        "image_stale_check",
    ]
    .iter()
    .map(|target| format!(",{target}={level}"))
    .collect()
}

/// Stderr for log lines: each line a subscriber writes is redacted
/// ([`crate::secret::redact`]) and its control characters are escaped
/// ([`crate::output::escape_keeping_color`]: all but its final newline, and colour
/// sequences when colour is on), so a logged value can neither leak a
/// secret nor start a line of its own or a workflow command.
struct SafeStderr {
    color: bool,
}

impl std::io::Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let mut safe =
            crate::output::escape_keeping_color(&crate::secret::redact(body), self.color);
        if body.len() < text.len() {
            safe.push('\n');
        }
        std::io::stderr().lock().write_all(safe.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// One line of a human message: secrets redacted, control characters
/// escaped, so a value (a path, a server's answer) cannot forge a line.
fn message_line(text: &str) -> String {
    crate::output::escape_control(&crate::secret::redact(text)).into_owned()
}

fn print_error(output: &Output, error: &anyhow::Error, kinds: &[ErrorKinds]) {
    let style = output.stderr_style();
    let mut text = format!(
        "{}: {}\n",
        style.error("error"),
        message_line(&error.to_string())
    );
    for cause in error.chain().skip(1) {
        text.push_str(&format!(
            "  caused by: {}\n",
            message_line(&cause.to_string())
        ));
    }
    let mut stderr = std::io::stderr().lock();
    // Nothing sensible is left to do if stderr itself is gone.
    let _ = stderr.write_all(text.as_bytes());
    if output.is_github_actions() {
        let mut message = error.to_string();
        for cause in error.chain().skip(1) {
            message.push_str(&format!(": {cause}"));
        }
        let location = location_of(error, kinds).map(|at| crate::output::AnnotationLocation {
            file: output.annotation_path(&at.file),
            ..at
        });
        let line = crate::output::annotation(
            "error",
            location.as_ref(),
            &crate::output::tool_name(),
            &message,
        );
        let _ = stderr.write_all(line.as_bytes());
    }
}

/// Where in a file the error is: the place the first cause in its chain
/// that knows one says (a slipway.toml error's line and column, a filters
/// file that is not valid YAML, a `.dockerignore` line, a line of a
/// `--files-from` list), asking each crate's [`ErrorKinds::locate`].
fn location_of(
    error: &anyhow::Error,
    kinds: &[ErrorKinds],
) -> Option<crate::output::AnnotationLocation> {
    error
        .chain()
        .find_map(|cause| kinds.iter().find_map(|kind| (kind.locate)(cause)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_anywhere_in_the_chain_exit_2() {
        let error = UsageError::new("`--jobs 0` must be at least 1").context("cannot build");
        assert_eq!(exit_code_for(&error, &[]), exit::USAGE);
    }

    #[test]
    fn other_errors_exit_3() {
        let error = anyhow::anyhow!("connection refused").context("cannot push `a:b`");
        assert_eq!(exit_code_for(&error, &[]), exit::FAILURE);
    }
}
