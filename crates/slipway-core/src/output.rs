//! Stdout is data, stderr is for people: the one place a tool's report is
//! written, in the format the user chose, and where GitHub Actions workflow
//! commands (`::group::`, `::add-mask::`) are emitted.
//!
//! A tool's `run` returns one value implementing [`Report`]; `cli::finish`
//! hands it to [`Output::emit`]. Nothing else writes to stdout.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use secrecy::ExposeSecret as _;

use crate::cli::{GlobalArgs, exit};
use crate::progress::Progress;

/// Formats a report can be printed in (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Stable, greppable lines for people and `grep`.
    Plain,
    /// One JSON document and a newline, snake_case fields.
    Json,
    /// Plain on stdout, plus step outputs to $GITHUB_OUTPUT and a Markdown table to $GITHUB_STEP_SUMMARY.
    Github,
    /// `export NAME='value'` lines of the step outputs, for `eval` in a shell.
    Shell,
}

/// When to colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when the stream is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// What a tool's run produces: serialisable for `json`, renderable for
/// `plain`, with optional step outputs and a Markdown summary for `github`.
pub trait Report: serde::Serialize {
    /// The plain rendering: stable lines, one fact per line, each ending in `\n`.
    fn render_plain(&self, style: &Style) -> String;

    /// Named step outputs (`$GITHUB_OUTPUT`, `shell` exports), in order.
    fn outputs(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// A Markdown section for `$GITHUB_STEP_SUMMARY`.
    fn summary_markdown(&self) -> Option<String> {
        None
    }

    /// The exit code this report means: [`exit::SUCCESS`] unless the check
    /// answered no ([`exit::NO`]).
    fn exit_code(&self) -> u8 {
        exit::SUCCESS
    }
}

/// Where a run's report and workflow commands go, and how they look.
#[derive(Debug, Clone)]
pub struct Output {
    format: Format,
    stdout_color: bool,
    stderr_color: bool,
    stderr_is_terminal: bool,
    quiet: bool,
    github_actions: bool,
    github_output: Option<PathBuf>,
    github_step_summary: Option<PathBuf>,
}

impl Output {
    /// Builds the output from the shared flags and the process environment.
    pub fn from_args(global: &GlobalArgs) -> Output {
        Output::from_env(global.format, global.color, global.quiet, |name| {
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Builds the output from explicit settings and an environment lookup;
    /// what the terminal checks see is the real process's streams.
    pub fn from_env(
        format: Format,
        color: ColorChoice,
        quiet: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Output {
        let no_color = env("NO_COLOR").is_some_and(|value| !value.is_empty());
        let stdout_is_terminal = std::io::stdout().is_terminal();
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let wants = |is_terminal: bool| match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        Output {
            format,
            stdout_color: wants(stdout_is_terminal) && matches!(format, Format::Plain),
            stderr_color: wants(stderr_is_terminal),
            stderr_is_terminal,
            quiet,
            github_actions: env("GITHUB_ACTIONS").as_deref() == Some("true"),
            github_output: env("GITHUB_OUTPUT")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            github_step_summary: env("GITHUB_STEP_SUMMARY")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        }
    }

    /// The chosen `--format`.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the run is inside GitHub Actions (`GITHUB_ACTIONS=true`).
    pub fn is_github_actions(&self) -> bool {
        self.github_actions
    }

    /// Whether `-q` was given.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Whether stderr gets colour.
    pub fn stderr_color(&self) -> bool {
        self.stderr_color
    }

    /// The style for text written to stderr.
    pub fn stderr_style(&self) -> Style {
        Style {
            enabled: self.stderr_color,
        }
    }

    /// Progress reporting for this run: bars on a terminal, timestamped lines
    /// otherwise, nothing under `-q`.
    pub fn progress(&self) -> Progress {
        Progress::new(self.quiet, self.stderr_is_terminal && !self.github_actions)
    }

    /// Writes the report to stdout in the chosen format (and, for `github`,
    /// the step outputs and summary to their files).
    pub fn emit(&self, report: &impl Report) -> std::io::Result<()> {
        let stdout_style = Style {
            enabled: self.stdout_color,
        };
        let text = match self.format {
            Format::Plain => report.render_plain(&stdout_style),
            Format::Json => {
                // Streamed: a large report (changed-paths on a big diff) is
                // never held twice in memory.
                let mut stdout =
                    std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
                serde_json::to_writer_pretty(&mut stdout, report).map_err(std::io::Error::other)?;
                stdout.write_all(b"\n")?;
                return stdout.flush();
            }
            Format::Shell => shell_exports(&report.outputs()),
            Format::Github => {
                let outputs = report.outputs();
                let mut text = report.render_plain(&stdout_style);
                match &self.github_output {
                    Some(path) => append(path, &github_output_file(&outputs, &delimiter_seed()))?,
                    None if !outputs.is_empty() => {
                        tracing::warn!(
                            "$GITHUB_OUTPUT is not set; the step outputs follow on stdout"
                        );
                        text.push_str(&github_output_file(&outputs, &delimiter_seed()));
                    }
                    None => {}
                }
                if let (Some(path), Some(summary)) =
                    (&self.github_step_summary, report.summary_markdown())
                {
                    append(path, &summary)?;
                }
                text
            }
        };
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()
    }

    /// Under GitHub Actions, tells the runner to mask `secret` in every later
    /// log line (`::add-mask::`). Call it before the secret is first used.
    pub fn mask(&self, secret: &secrecy::SecretString) {
        if self.github_actions {
            for line in secret
                .expose_secret()
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "::add-mask::{}", escape_workflow_data(line));
            }
        }
    }

    /// Opens a collapsible log group under GitHub Actions (closed when the
    /// guard drops); elsewhere a no-op.
    pub fn group(&self, title: &str) -> Group {
        if self.github_actions {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "::group::{}", escape_workflow_data(title));
        }
        Group {
            is_open: self.github_actions,
        }
    }
}

/// An open `::group::`; dropping it writes `::endgroup::`.
#[derive(Debug)]
#[must_use = "the group closes when this guard drops"]
pub struct Group {
    is_open: bool,
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.is_open {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "::endgroup::");
        }
    }
}

/// ANSI styling that is a no-op when colour is off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Whether escape codes are written.
    pub enabled: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold red, for errors and failures.
    pub fn error(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// Yellow, for warnings and "stale"-like answers.
    pub fn warn(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Green, for success.
    pub fn ok(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Bold, for names.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dim, for secondary detail.
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Escapes a workflow command's data part as the Actions runner expects
/// (`%`, CR and LF percent-encoded).
pub fn escape_workflow_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Renders outputs in `$GITHUB_OUTPUT` file syntax. Single-line values are
/// `name=value`; multi-line values use the heredoc form with a delimiter
/// that occurs in none of the values, as the runner requires.
pub fn github_output_file(outputs: &[(String, String)], seed: &str) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        if value.contains('\n') || value.contains('\r') {
            let mut delimiter = format!("ghadelimiter_{seed}");
            while value.contains(&delimiter) {
                delimiter.push('_');
            }
            text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        } else {
            text.push_str(&format!("{name}={value}\n"));
        }
    }
    text
}

/// Renders outputs as `export NAME='value'` lines: names with characters a
/// shell variable can't hold get `_` there, values are single-quoted.
pub fn shell_exports(outputs: &[(String, String)]) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        let mut var: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if var.starts_with(|c: char| c.is_ascii_digit()) {
            var.insert(0, '_');
        }
        text.push_str(&format!("export {var}={}\n", shell_quote(value)));
    }
    text
}

/// Quotes a value for a POSIX shell: single quotes, with `'` written as `'\''`.
/// The result is one word whatever the value holds.
pub fn shell_quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A random-enough delimiter suffix, from the process's random hasher keys.
fn delimiter_seed() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", hasher.finish())
}

fn append(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_github(outputs: &[(&str, &str)], expected: &str) {
        let outputs: Vec<(String, String)> = outputs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(github_output_file(&outputs, "SEED"), expected);
    }

    #[test]
    fn single_line_values_are_name_equals_value() {
        check_github(&[("app", "true"), ("count", "3")], "app=true\ncount=3\n");
    }

    #[test]
    fn multi_line_values_use_a_heredoc() {
        check_github(
            &[("files", "a.rs\nb.rs")],
            "files<<ghadelimiter_SEED\na.rs\nb.rs\nghadelimiter_SEED\n",
        );
    }

    #[test]
    fn the_delimiter_never_occurs_in_the_value() {
        check_github(
            &[("evil", "x\nghadelimiter_SEED\ninjected=1")],
            "evil<<ghadelimiter_SEED_\nx\nghadelimiter_SEED\ninjected=1\nghadelimiter_SEED_\n",
        );
    }

    #[test]
    fn the_seed_differs_between_calls() {
        assert_ne!(delimiter_seed(), delimiter_seed());
    }

    #[track_caller]
    fn check_quote(value: &str, expected: &str) {
        assert_eq!(shell_quote(value), expected, "value `{value}`");
    }

    #[test]
    fn shell_quoting() {
        check_quote("plain-value_1.2", "plain-value_1.2");
        check_quote("", "''");
        check_quote("two words", "'two words'");
        check_quote("it's", r"'it'\''s'");
        check_quote("$(touch /tmp/pwned)", "'$(touch /tmp/pwned)'");
        check_quote("`id`", "'`id`'");
        check_quote("a\nb", "'a\nb'");
    }

    #[test]
    fn shell_exports_make_valid_names() {
        let outputs = vec![
            ("app".to_owned(), "true".to_owned()),
            ("app-files".to_owned(), "a b".to_owned()),
            ("1st".to_owned(), "x".to_owned()),
        ];
        assert_eq!(
            shell_exports(&outputs),
            "export app=true\nexport app_files='a b'\nexport _1st=x\n"
        );
    }

    #[test]
    fn workflow_data_escapes_percent_and_newlines() {
        assert_eq!(escape_workflow_data("50%\r\nnext"), "50%25%0D%0Anext");
    }

    #[test]
    fn no_color_turns_auto_colour_off() {
        let output = Output::from_env(Format::Plain, ColorChoice::Auto, false, |name| {
            (name == "NO_COLOR").then(|| "1".to_owned())
        });
        assert!(!output.stderr_color());
        let forced = Output::from_env(Format::Plain, ColorChoice::Always, false, |_| None);
        assert!(forced.stderr_color());
    }

    #[test]
    fn github_actions_is_detected_from_the_environment() {
        let output = Output::from_env(Format::Json, ColorChoice::Never, false, |name| {
            (name == "GITHUB_ACTIONS").then(|| "true".to_owned())
        });
        assert!(output.is_github_actions());
        assert_eq!(output.format(), Format::Json);
    }
}
