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
pub fn finish<R: Report>(output: &Output, result: anyhow::Result<R>) -> ExitCode {
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
                print_error(output, &error);
                ExitCode::from(exit::USAGE)
            }
            Err(error) => {
                let error = anyhow::Error::from(error).context("cannot write the report to stdout");
                print_error(output, &error);
                ExitCode::from(exit::FAILURE)
            }
        },
        Err(error) => {
            print_error(output, &error);
            ExitCode::from(exit_code_for(&error))
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
macro_rules! exit_status {
    ($($error:ty => $code:ident),+ $(,)?) => {$(
        impl $crate::cli::ExitStatus for $error {
            fn exit_code(&self) -> Option<u8> {
                Some($crate::cli::exit::$code)
            }
        }
    )+};
}
pub(crate) use exit_status;

exit_status!(UsageError => USAGE, UsageErrorCause => USAGE);

/// The exit code an error maps to: that of the first cause in its chain
/// that says one ([`ExitStatus`]), else [`exit::FAILURE`].
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    error.chain().find_map(classify).unwrap_or(exit::FAILURE)
}

/// The exit code `cause` says, if it is one of slipway-core's errors (or a
/// [`UsageError`]) that decides one.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    fn code<E: ExitStatus + std::error::Error + 'static>(
        cause: &(dyn std::error::Error + 'static),
    ) -> Option<u8> {
        cause.downcast_ref::<E>().and_then(ExitStatus::exit_code)
    }
    use crate::{
        auth, changes, ci, config, duration, git, image_ref, paths, ready, registry, secret, stale,
        tags, version,
    };
    [
        code::<UsageError>,
        code::<UsageErrorCause>,
        code::<config::ConfigError>,
        code::<config::ValueError>,
        code::<image_ref::ImageRefError>,
        code::<duration::DurationError>,
        code::<ci::CiError>,
        code::<tags::TagError>,
        code::<tags::context::ContextError>,
        code::<version::CommitError>,
        code::<paths::PathsError>,
        code::<paths::project::ProjectFiltersError>,
        code::<ready::PlanError>,
        code::<git::GitError>,
        code::<changes::ChangesError>,
        code::<stale::StaleError>,
        code::<stale::FetchError>,
        code::<auth::AuthError>,
        code::<secret::TooShort>,
        code::<registry::ClientSetupError>,
        code::<registry::RegistryError>,
        code::<registry::ManifestError>,
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

/// The tools' own library targets (`img_tag`, `changed_paths`, …), which the
/// `-v` levels cover along with slipway-core.
fn own_targets(level: &str) -> String {
    [
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

fn print_error(output: &Output, error: &anyhow::Error) {
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
        let location = location_of(error).map(|at| crate::output::AnnotationLocation {
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

/// Where in a file the error is, if a cause in its chain knows: a
/// slipway.toml error from the file (line and column), a filters file
/// that is not valid YAML (line and column), a `.dockerignore` line, a
/// line of a `--files-from` list. Only a name that is a file counts (not
/// `stdin` or an inline `--filters` text).
fn location_of(error: &anyhow::Error) -> Option<crate::output::AnnotationLocation> {
    use crate::changes::ChangesError;
    use crate::paths::PathsError;
    let at = |file: &str, line: usize, column: Option<usize>| {
        std::path::Path::new(file)
            .is_file()
            .then(|| crate::output::AnnotationLocation {
                file: PathBuf::from(file),
                line,
                column,
            })
    };
    error.chain().find_map(|cause| {
        if let Some(config) = cause.downcast_ref::<crate::config::ConfigError>() {
            return config
                .location()
                .map(|location| crate::output::AnnotationLocation {
                    file: location.file.clone(),
                    line: location.line,
                    column: Some(location.column),
                });
        }
        match cause.downcast_ref::<PathsError>() {
            Some(PathsError::Yaml {
                file, line, column, ..
            }) => return at(file, *line, Some(*column)),
            Some(PathsError::DockerIgnore { file, line, .. }) => return at(file, *line, None),
            _ => {}
        }
        match cause.downcast_ref::<ChangesError>() {
            Some(ChangesError::NameStatus { origin, line, .. }) => at(origin, *line, None),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_anywhere_in_the_chain_exit_2() {
        let error = UsageError::new("`--jobs 0` must be at least 1").context("cannot build");
        assert_eq!(exit_code_for(&error), exit::USAGE);
    }

    #[test]
    fn a_usage_error_with_a_cause_exits_2_and_keeps_the_cause() {
        let git = crate::git::GitError::NotARepository {
            start: std::path::PathBuf::from("/srv/app"),
        };
        let error = UsageError::caused_by("`--require-revision v9`", git);
        assert_eq!(exit_code_for(&error), exit::USAGE);
        let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
        assert_eq!(
            causes,
            [
                "`--require-revision v9`",
                "`/srv/app` is not inside a git repository (searched upwards from `/srv/app`)",
            ]
        );
    }

    #[test]
    fn typed_errors_say_their_exit_code_through_context() {
        let bad_list = crate::changes::ChangesError::NameStatus {
            origin: "changes.txt".to_owned(),
            line: 3,
            text: "X a".to_owned(),
            reason: "unknown status `X`".to_owned(),
        };
        let error = anyhow::Error::new(bad_list).context("cannot read `--files-from`");
        assert_eq!(exit_code_for(&error), exit::USAGE);
        // The typed error stays in the chain: its message is a cause line.
        let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
        assert_eq!(
            causes,
            [
                "cannot read `--files-from`",
                "changes.txt:3: cannot read `X a`: unknown status `X`"
            ]
        );
        // A transparent variant asks the error it wraps.
        let wrapped = crate::stale::StaleError::Changes(crate::changes::ChangesError::NameStatus {
            origin: "stdin".to_owned(),
            line: 1,
            text: "?".to_owned(),
            reason: "no status".to_owned(),
        });
        assert_eq!(exit_code_for(&anyhow::Error::new(wrapped)), exit::USAGE);
        let git = crate::git::Repo::discover(std::path::Path::new("/"))
            .map(|_| ())
            .map_err(|error| anyhow::Error::new(error).context("cannot open the repository"));
        assert_eq!(
            git.map_err(|error| exit_code_for(&error)),
            Err(exit::FAILURE)
        );
    }

    #[test]
    fn other_errors_exit_3() {
        let error = anyhow::anyhow!("connection refused").context("cannot push `a:b`");
        assert_eq!(exit_code_for(&error), exit::FAILURE);
    }
}
