//! Stdout is data, stderr is for people: the one place a tool's report is
//! written, in the format the user chose, and where each CI's own log
//! syntax is emitted: GitHub Actions workflow commands (`::group::`,
//! `::add-mask::`, `::warning::`), GitLab CI's collapsible sections,
//! Buildkite's `---` groups. Which CI it is comes from
//! [`crate::ci::provider`]; outside a CI that has them, nothing is added.
//!
//! A tool's `run` returns one value implementing [`Report`]; `cli::finish`
//! hands it to [`Output::emit`]. Nothing else writes to stdout.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use secrecy::ExposeSecret as _;

use crate::ci::Provider;
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
    /// `NAME=value` lines of the step outputs, for GitLab's `artifacts:reports:dotenv` (values it cannot carry are left out, with a warning).
    Dotenv,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Json => "json",
            Format::Github => "github",
            Format::Shell => "shell",
            Format::Dotenv => "dotenv",
        }
    }
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
    /// Names must pass [`check_output_name`].
    fn outputs(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The step outputs as bytes, for values that may not be UTF-8 (paths
    /// from git): what `shell` and `github` write, byte for byte. The
    /// default is [`Report::outputs`].
    fn byte_outputs(&self) -> Vec<(String, Vec<u8>)> {
        self.outputs()
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .collect()
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

    /// Appends the `json` document to `out`: serde_json's pretty printing
    /// of the report, byte for byte. A report whose document holds large
    /// lists may write the same bytes by a faster route.
    fn write_json(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        serde_json::to_writer_pretty(out, self).map_err(std::io::Error::other)
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
    provider: Provider,
    github_workspace: Option<PathBuf>,
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
            provider: crate::ci::provider(&env),
            github_workspace: env("GITHUB_WORKSPACE")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
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
        self.provider == Provider::GithubActions
    }

    /// The CI this run is in ([`crate::ci::provider`]).
    pub fn ci_provider(&self) -> Provider {
        self.provider
    }

    /// Whether [`Output::group`] folds what follows in this CI's log
    /// (GitHub Actions, GitLab CI, Buildkite), so a tool can print a long
    /// log there instead of streaming it.
    pub fn has_log_groups(&self) -> bool {
        matches!(
            self.provider,
            Provider::GithubActions | Provider::GitlabCi | Provider::Buildkite
        )
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

    /// Progress reporting for this run: bars on a terminal outside CI,
    /// timestamped lines otherwise, nothing under `-q`. A CI that runs
    /// steps in a pseudo-terminal (Buildkite, CircleCI) still keeps a log,
    /// where redrawn bars (`\r`, cursor moves) are noise.
    pub fn progress(&self) -> Progress {
        Progress::new(
            self.quiet,
            self.stderr_is_terminal && self.provider == Provider::None,
        )
    }

    /// Writes the report to stdout in the chosen format (and, for `github`,
    /// the step outputs and summary to their files).
    pub fn emit(&self, report: &impl Report) -> std::io::Result<()> {
        let stdout_style = Style {
            enabled: self.stdout_color,
        };
        let plain = || escape_lines(&report.render_plain(&stdout_style), self.stdout_color);
        let text: Vec<u8> = match self.format {
            Format::Plain => plain().into_bytes(),
            Format::Json => {
                let mut json = Vec::new();
                report.write_json(&mut json)?;
                json.push(b'\n');
                json
            }
            Format::Shell => shell_exports(&checked_outputs(report, Format::Shell)?),
            Format::Dotenv => {
                let outputs = checked_outputs(report, Format::Dotenv)?;
                // Secrets become `***` before the values are checked, as
                // they are written.
                let outputs: Vec<(String, Vec<u8>)> = outputs
                    .into_iter()
                    .map(|(name, value)| (name, crate::secret::redact_bytes(&value).into_owned()))
                    .collect();
                // A value GitLab cannot carry is left out with a warning:
                // the work is done by now (a deploy, a tag moved), and what
                // a file name or a label holds must not fail the job.
                let (text, left_out) = dotenv_file(&outputs);
                for why in &left_out {
                    tracing::warn!("{why}");
                }
                if text.len() > GITLAB_DOTENV_LIMIT {
                    tracing::warn!(
                        "the dotenv report is {} bytes, above GitLab's default limit of \
                         {GITLAB_DOTENV_LIMIT} bytes: GitLab refuses the artifact unless the \
                         instance's `dotenv_size` limit was raised",
                        text.len()
                    );
                }
                text
            }
            Format::Github => {
                let outputs = checked_outputs(report, Format::Github)?;
                let mut text = plain().into_bytes();
                match &self.github_output {
                    Some(path) => {
                        let outputs = spill_large_outputs(outputs, path)?;
                        append(path, &github_output_file(&outputs, &delimiter_seed()))?;
                    }
                    None if !outputs.is_empty() => {
                        tracing::warn!(
                            "$GITHUB_OUTPUT is not set; the step outputs follow on stdout"
                        );
                        text.extend(github_output_file(&outputs, &delimiter_seed()));
                    }
                    None => {}
                }
                if let (Some(path), Some(summary)) =
                    (&self.github_step_summary, report.summary_markdown())
                {
                    append(path, crate::secret::redact(&summary).as_bytes())?;
                }
                text
            }
        };
        let text = crate::secret::redact_bytes(&text);
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&text)?;
        stdout.flush()
    }

    /// Under GitHub Actions, tells the runner to mask `secret` in every later
    /// log line (`::add-mask::`). Call it before the secret is first used.
    /// Also registers it for redaction ([`crate::secret::register`]), so
    /// every later line a tool prints shows it as `***`.
    pub fn mask(&self, secret: &secrecy::SecretString) {
        crate::secret::register(secret.expose_secret());
        if self.is_github_actions() {
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

    /// Opens a collapsible log group in this CI's syntax, closed when the
    /// guard drops: `::group::`/`::endgroup::` under GitHub Actions, a
    /// collapsed `section_start`/`section_end` pair under GitLab CI, a
    /// `--- ` group line under Buildkite (which has no end marker: the
    /// next group starts a new one); elsewhere a no-op. The title is
    /// redacted and escaped: it cannot end the line or the group.
    pub fn group(&self, title: &str) -> Group {
        let title = crate::secret::redact(title);
        let (start, end) = match self.provider {
            Provider::GithubActions => (
                format!("::group::{}\n", escape_workflow_data(&title)),
                Some("::endgroup::\n".to_owned()),
            ),
            Provider::GitlabCi => {
                let name = gitlab_section_name(&title);
                (
                    gitlab_section_start(unix_seconds(), &name, &title),
                    Some(name),
                )
            }
            Provider::Buildkite => (format!("--- {}\n", escape_control(&title)), None),
            Provider::Jenkins | Provider::CircleCi | Provider::None => {
                return Group { end: None };
            }
        };
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(start.as_bytes());
        let end = match (self.provider, end) {
            (Provider::GitlabCi, Some(name)) => Some(GroupEnd::GitlabSection(name)),
            (_, Some(line)) => Some(GroupEnd::Line(line)),
            (_, None) => None,
        };
        Group { end }
    }

    /// Under GitHub Actions, a warning annotation for the run
    /// (`::warning title=<tool>::<message>`, on stderr), with the message
    /// redacted and escaped as workflow command data; elsewhere a no-op (the
    /// report says it for people).
    pub fn warning(&self, message: &str) {
        if self.is_github_actions() {
            let line = annotation("warning", None, &tool_name(), message);
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(line.as_bytes());
        }
    }

    /// `file` as a GitHub annotation names it: relative to
    /// `$GITHUB_WORKSPACE` when it is inside it (a relative path is taken
    /// from the current directory first), else as given.
    pub fn annotation_path(&self, file: &std::path::Path) -> PathBuf {
        let Some(workspace) = &self.github_workspace else {
            return file.to_path_buf();
        };
        let absolute = if file.is_absolute() {
            file.to_path_buf()
        } else {
            match std::env::current_dir() {
                Ok(dir) => dir.join(file),
                Err(_) => return file.to_path_buf(),
            }
        };
        let absolute = normalize(&absolute);
        match absolute.strip_prefix(normalize(workspace)) {
            Ok(inside) if !inside.as_os_str().is_empty() => inside.to_path_buf(),
            _ => file.to_path_buf(),
        }
    }
}

/// `path` with `.` and `..` resolved lexically (no file system access, so
/// a file that does not exist still has a path).
fn normalize(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// The running tool's name for annotation titles: its binary's file name.
pub(crate) fn tool_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "slipway".to_owned())
}

/// Where a GitHub annotation points: a file, and a line and column in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationLocation {
    /// The file, as the annotation names it ([`Output::annotation_path`]).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

/// One GitHub annotation line, ending in a newline:
/// `::<level> file=…,line=…,col=…,title=…::<message>` (the location only
/// when there is one). Property values go through [`escape_workflow_property`],
/// the message through [`escape_workflow_data`], both after
/// [`crate::secret::redact`]: no secret is shown, and no outside text can
/// end the line, add a property or start a second command.
pub fn annotation(
    level: &str,
    location: Option<&AnnotationLocation>,
    title: &str,
    message: &str,
) -> String {
    let property = |value: &str| escape_workflow_property(&crate::secret::redact(value));
    let mut properties = Vec::new();
    if let Some(at) = location {
        properties.push(format!("file={}", property(&at.file.to_string_lossy())));
        properties.push(format!("line={}", at.line));
        if let Some(column) = at.column {
            properties.push(format!("col={column}"));
        }
    }
    properties.push(format!("title={}", property(title)));
    format!(
        "::{level} {}::{}\n",
        properties.join(","),
        escape_workflow_data(&crate::secret::redact(message))
    )
}

/// An open log group; dropping it ends the group.
#[derive(Debug)]
#[must_use = "the group closes when this guard drops"]
pub struct Group {
    end: Option<GroupEnd>,
}

#[derive(Debug)]
enum GroupEnd {
    /// A fixed line (`::endgroup::`).
    Line(String),
    /// A GitLab section's name: its `section_end` takes the time it ends.
    GitlabSection(String),
}

impl Drop for Group {
    fn drop(&mut self) {
        let line = match self.end.take() {
            Some(GroupEnd::Line(line)) => line,
            Some(GroupEnd::GitlabSection(name)) => gitlab_section_end(unix_seconds(), &name),
            None => return,
        };
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(line.as_bytes());
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A GitLab section name for `title`: GitLab accepts letters, digits, `_`,
/// `.` and `-` (anything else ends the marker), so every other character
/// becomes `_`; at most 64 characters, never empty.
pub fn gitlab_section_name(title: &str) -> String {
    let name: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "section".to_owned()
    } else {
        name
    }
}

/// The line that opens a collapsed GitLab section (GitLab's documented
/// syntax, `\e[0K` erasing what the marker printed):
/// `\e[0Ksection_start:<unix>:<name>[collapsed=true]\r\e[0K<header>`.
/// The header is escaped ([`escape_control`]): it cannot end the line.
pub fn gitlab_section_start(unix: u64, name: &str, header: &str) -> String {
    format!(
        "\x1b[0Ksection_start:{unix}:{name}[collapsed=true]\r\x1b[0K{}\n",
        escape_control(header)
    )
}

/// The line that closes the GitLab section `name`:
/// `\e[0Ksection_end:<unix>:<name>\r\e[0K`.
pub fn gitlab_section_end(unix: u64, name: &str) -> String {
    format!("\x1b[0Ksection_end:{unix}:{name}\r\x1b[0K\n")
}

/// ANSI styling that is a no-op when colour is off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Whether escape codes are written.
    pub enabled: bool,
}

impl Style {
    /// `text` (escaped with [`escape_control`]: a painted name may come
    /// from outside) in the colour `code`.
    fn paint(&self, code: &str, text: &str) -> String {
        let text = escape_control(text);
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.into_owned()
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
/// (`%`, CR and LF percent-encoded). Same as `escapeData` of
/// `@actions/toolkit`'s `command.ts`, which the runner reverses.
pub fn escape_workflow_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (`file=…`, `title=…`):
/// as [`escape_workflow_data`], plus `:` and `,`, which would end the
/// property list or the value. Same as `escapeProperty` of
/// `@actions/toolkit`'s `command.ts`.
pub fn escape_workflow_property(text: &str) -> String {
    escape_workflow_data(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// The characters a step output name may hold: ASCII letters, digits, `_`
/// and `-`, starting with a letter or `_`, at most 100 of them. Such a name
/// is written to `$GITHUB_OUTPUT` as it is (it holds no `=`, `<<`, newline
/// or space that would end it early) and becomes a shell variable with `-`
/// turned into `_`.
pub const OUTPUT_NAME_ALPHABET: &str =
    "ASCII letters, digits, `_` and `-`, starting with a letter or `_`, at most 100";

/// Checks that `name` can be written safely as a step output name (see
/// [`OUTPUT_NAME_ALPHABET`]); the error says why not.
pub fn check_output_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` cannot be a step output name: use {OUTPUT_NAME_ALPHABET}",
            escape_control(name)
        ))
    }
}

/// Checks that `name` can become a shell variable of `--format shell`
/// without taking over one that shells and programs read: besides
/// [`check_output_name`], it must hold a lowercase letter. Names without
/// one are the environment's (`PATH`, `IFS`, `BASH_ENV`, `ENV`,
/// `LD_PRELOAD`, `GIT_SSH_COMMAND`, …; POSIX leaves names with lowercase
/// letters to applications), and an `eval` of `export BASH_ENV=…` runs code
/// in every later bash. A list of dangerous names would never be complete.
pub fn check_shell_name(name: &str) -> Result<(), String> {
    check_output_name(name)?;
    if name.chars().any(|c| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` cannot be a shell variable: a name without a lowercase letter belongs to the environment (`PATH`, `IFS`, `BASH_ENV`, `LD_PRELOAD`, …); give it a lowercase letter, or use `--format json`"
        ))
    }
}

/// The shell variable of `--format shell` an output `name` becomes: `-`
/// (and anything else but ASCII letters and digits) turned into `_`.
pub fn shell_variable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Checks a report's output names for `format`: each with
/// [`check_output_name`] (`github`) or [`check_shell_name`] (`shell`), and
/// that no two of them are one output: the same name twice in
/// `$GITHUB_OUTPUT`, or, for `shell`, two names that become the same
/// variable (`a-b` and `a_b`), where the later would silently overwrite
/// the earlier. The error names both. `json` and `plain` write no outputs.
pub fn check_output_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
    format: Format,
) -> Result<(), String> {
    let mut seen: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for name in names {
        match format {
            Format::Shell | Format::Dotenv => check_shell_name(name)?,
            Format::Github => check_output_name(name)?,
            Format::Json | Format::Plain => return Ok(()),
        }
        let key = match format {
            Format::Shell | Format::Dotenv => shell_variable(name),
            _ => name.to_owned(),
        };
        if let Some(first) = seen.insert(key.clone(), name) {
            return Err(if first == name {
                format!(
                    "the output `{name}` would be written twice, the second overwriting the first: rename what it comes from, or use `--format json`"
                )
            } else {
                format!(
                    "the outputs `{first}` and `{name}` both become the {} `{key}`, the second overwriting the first: rename one of them, or use `--format json`",
                    if format == Format::Dotenv {
                        "dotenv variable"
                    } else {
                        "shell variable"
                    }
                )
            });
        }
    }
    Ok(())
}

/// The report's outputs, refusing names [`check_output_names`] rejects (a
/// tool checks its names before it works; this is the last line of
/// defence, an [`OutputNameError`] that `cli::finish` reports with exit 2,
/// before anything is written).
fn checked_outputs(
    report: &impl Report,
    format: Format,
) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let outputs = report.byte_outputs();
    check_output_names(outputs.iter().map(|(name, _)| name.as_str()), format).map_err(
        |message| std::io::Error::new(std::io::ErrorKind::InvalidInput, OutputNameError(message)),
    )?;
    Ok(outputs)
}

/// Outputs [`Output::emit`] refused: names ([`check_output_names`]). Bad input, which
/// `cli::finish` reports with exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OutputNameError(String);

/// GitHub caps one step output at 1 MiB (and all of a job's at 50 MiB).
pub const GITHUB_OUTPUT_LIMIT: usize = 1024 * 1024;

/// Values longer than [`GITHUB_OUTPUT_LIMIT`] are written to a file next to
/// `$GITHUB_OUTPUT` (`<name>.txt` in a fresh directory `slipway-outputs-*`
/// there) and replaced by that file's path, under the output name
/// `<name>_path`; a warning says so. The runner would otherwise fail the
/// step or cut the value.
fn spill_large_outputs(
    outputs: Vec<(String, Vec<u8>)>,
    github_output: &std::path::Path,
) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    if outputs
        .iter()
        .all(|(_, value)| value.len() <= GITHUB_OUTPUT_LIMIT)
    {
        return Ok(outputs);
    }
    let parent = github_output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let dir = tempfile::Builder::new()
        .prefix("slipway-outputs-")
        .tempdir_in(parent)?
        .keep();
    let mut kept = Vec::with_capacity(outputs.len());
    for (name, value) in outputs {
        if value.len() <= GITHUB_OUTPUT_LIMIT {
            kept.push((name, value));
            continue;
        }
        let file = dir.join(format!("{name}.txt"));
        fs_err::write(&file, crate::secret::redact_bytes(&value))?;
        tracing::warn!(
            "output `{name}` is {} bytes, above GitHub's limit of {GITHUB_OUTPUT_LIMIT} bytes \
             per output: it is written to `{}`, whose path is the output `{name}_path`",
            value.len(),
            file.display()
        );
        kept.push((
            format!("{name}_path"),
            file.to_string_lossy().into_owned().into_bytes(),
        ));
    }
    Ok(kept)
}

/// Renders outputs in `$GITHUB_OUTPUT` file syntax. Single-line values are
/// `name=value`; multi-line values use the heredoc form with a delimiter
/// that occurs in none of the values, as the runner requires.
pub fn github_output_file(outputs: &[(String, Vec<u8>)], seed: &str) -> Vec<u8> {
    let mut text = Vec::new();
    for (name, value) in outputs {
        if value.contains(&b'\n') || value.contains(&b'\r') {
            let mut delimiter = format!("ghadelimiter_{seed}");
            while contains(value, delimiter.as_bytes()) {
                delimiter.push('_');
            }
            text.extend_from_slice(format!("{name}<<{delimiter}\n").as_bytes());
            text.extend_from_slice(value);
            text.extend_from_slice(format!("\n{delimiter}\n").as_bytes());
        } else {
            text.extend_from_slice(format!("{name}=").as_bytes());
            text.extend_from_slice(value);
            text.push(b'\n');
        }
    }
    text
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// GitLab's default limit on a dotenv report (`dotenv_size`, 5 KiB); an
/// instance's administrator can raise it, so a larger report is warned
/// about, not refused.
pub const GITLAB_DOTENV_LIMIT: usize = 5 * 1024;

/// Renders outputs as GitLab dotenv lines, `NAME=value`, for
/// `artifacts:reports:dotenv`: names as [`shell_variable`] makes them
/// (checked with [`check_shell_name`] first: GitLab takes ASCII letters,
/// digits and `_`, and the variables of later jobs must not replace
/// `PATH` or `LD_PRELOAD`), values exactly as they are.
///
/// GitLab reads each line with `^(.*)=(.*)$` (the name runs to the *last*
/// `=`) and strips blanks around the name and value; it documents no
/// quoting, no escapes and no multi-line values. So a value GitLab would
/// not give back byte for byte is left out, rather than encoded in a way
/// the next job would have to undo: one that is not UTF-8, holds `=` or a
/// control character (newline, CR, tab, …), or starts or ends with a
/// blank. The second list says, per output left out, which and why (the
/// caller warns).
pub fn dotenv_file(outputs: &[(String, Vec<u8>)]) -> (Vec<u8>, Vec<String>) {
    let mut text = Vec::new();
    let mut left_out = Vec::new();
    for (name, value) in outputs {
        let var = shell_variable(name);
        let why = match std::str::from_utf8(value) {
            Err(_) => Some("is not UTF-8".to_owned()),
            Ok(value) => {
                if let Some(c) = value.chars().find(|c| c.is_control()) {
                    Some(format!(
                        "holds the control character `{}` (one value per line, no multi-line values)",
                        c.escape_default()
                    ))
                } else if value.contains('=') {
                    Some("holds `=` (GitLab reads a line's name up to its last `=`)".to_owned())
                } else if value.trim() != value {
                    Some("starts or ends with a blank (GitLab strips them)".to_owned())
                } else {
                    text.extend_from_slice(format!("{var}={value}\n").as_bytes());
                    None
                }
            }
        };
        if let Some(why) = why {
            left_out.push(format!(
                "the output `{name}` is left out of the dotenv report: it {why}, and GitLab's dotenv has no quoting or escapes; use `--format json` for it"
            ));
        }
    }
    (text, left_out)
}

/// Renders outputs as `export NAME='value'` lines: `-` in a name becomes
/// `_` (names are checked with [`check_output_name`] first), values are
/// quoted with [`shell_quote_bytes`], so `eval` gives back every byte.
pub fn shell_exports(outputs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut text = Vec::new();
    for (name, value) in outputs {
        let var = shell_variable(name);
        text.extend_from_slice(format!("export {var}=").as_bytes());
        text.extend(inert_lines(&shell_quote_bytes(value)));
        text.push(b'\n');
    }
    text
}

/// A word of [`shell_quote_bytes`] whose lines cannot be read as GitHub
/// workflow commands when the exports are shown in a log: a newline or CR
/// that `::` (after blanks) follows gets an empty `''` after it, which
/// `sh` drops (a raw newline only occurs inside single quotes, where `''`
/// closes and reopens them), so the printed line starts with `'`.
fn inert_lines(quoted: &[u8]) -> Vec<u8> {
    let mut inert = Vec::with_capacity(quoted.len());
    for (at, &byte) in quoted.iter().enumerate() {
        inert.push(byte);
        if matches!(byte, b'\n' | b'\r')
            && quoted[at + 1..]
                .iter()
                .skip_while(|b| matches!(b, b' ' | b'\t'))
                .take(2)
                .eq(b"::")
        {
            inert.extend_from_slice(b"''");
        }
    }
    inert
}

/// Quotes a value for a POSIX shell: single quotes, with `'` written as `'\''`.
/// The result is one word whatever the value holds.
pub fn shell_quote(value: &str) -> String {
    String::from_utf8(shell_quote_bytes(value.as_bytes()))
        .expect("quoting UTF-8 adds only ASCII, so the result is UTF-8")
}

/// Quotes any bytes as one POSIX shell word that `sh` turns back into
/// exactly those bytes: a value made only of `A-Z a-z 0-9 @ % + = : , . / - _`
/// stays as it is; anything else goes inside single quotes, where `sh`
/// keeps every byte (newlines, `$`, backticks, `\`, bytes that are not
/// UTF-8) as it is, and `'` is written `'\''`. No `$'…'`: dash, Debian's
/// `sh`, does not know it. A NUL byte cannot be passed to a shell at all
/// (git paths never hold one).
pub fn shell_quote_bytes(value: &[u8]) -> Vec<u8> {
    if !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(b))
    {
        return value.to_vec();
    }
    let mut quoted = Vec::with_capacity(value.len() + 2);
    quoted.push(b'\'');
    for &byte in value {
        if byte == b'\'' {
            quoted.extend_from_slice(br"'\''");
        } else {
            quoted.push(byte);
        }
    }
    quoted.push(b'\'');
    quoted
}

/// Renders text from outside (a registry, git, a file, a server, a value a
/// user typed) for one human line: the one escaper of such text. Control
/// characters but tab (newline, carriage return, escape, C1 controls like
/// U+009B, …) become `\n`, `\r` or `\u{1b}`, and a leading `::` (after
/// any blanks) becomes `\u{3a}:`, so no value can start a line of its own,
/// be read as a GitHub workflow command (`::error::`, `::add-mask::`,
/// `::stop-commands::`, which the runner finds after trimming blanks) or
/// move the cursor. Text without any of these is returned as it is.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    let is_escaped = |c: char| c.is_control() && c != '\t';
    let command_at = workflow_command_at(text);
    if command_at.is_none() && !text.chars().any(is_escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for (at, c) in text.char_indices() {
        if Some(at) == command_at {
            escaped.push_str("\\u{3a}");
        } else if is_escaped(c) {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

/// Where a line starting with `text` would hold a workflow command's
/// leading `:`: the byte offset of `::` after the leading blanks (that are
/// not escaped), if there is one.
fn workflow_command_at(text: &str) -> Option<usize> {
    let start = text
        .char_indices()
        .find(|&(_, c)| !(c.is_whitespace() && (!c.is_control() || c == '\t')))
        .map_or(text.len(), |(at, _)| at);
    text[start..].starts_with("::").then_some(start)
}

/// Escapes every line of a rendered text (a report) with
/// [`escape_keeping_color`], keeping its newlines. The last line of
/// defence: whatever a tool forgot to escape, its output cannot forge a
/// line or a workflow command, or rewrite the terminal.
pub fn escape_lines(text: &str, keep_color: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            escaped.push('\n');
        }
        escaped.push_str(&escape_keeping_color(line, keep_color));
    }
    escaped
}

/// [`escape_control`] of `text`, but, when `keep_color`, for the colour
/// sequences (`ESC [ digits ; m`) [`Style`] writes; every other escape
/// sequence is shown escaped.
pub fn escape_keeping_color(text: &str, keep_color: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((start, end)) = find_color(rest).filter(|_| keep_color) {
        escaped.push_str(&escape_control(&rest[..start]));
        escaped.push_str(&rest[start..end]);
        rest = &rest[end..];
    }
    escaped.push_str(&escape_control(rest));
    escaped
}

/// The first SGR (colour) sequence in `text`: `ESC [`, digits and `;`, `m`.
fn find_color(text: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(found) = text[from..].find("\u{1b}[") {
        let start = from + found;
        let params = &text[start + 2..];
        let len = params
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(params.len());
        if params[len..].starts_with('m') {
            return Some((start, start + 2 + len + 1));
        }
        from = start + 1;
    }
    None
}

/// A path (or any name) from bytes for a line of plain output: as it is
/// when it is UTF-8 without control characters, `"` or `\`, and does not
/// start with `::` (a workflow command, see [`escape_control`]); otherwise in
/// double quotes with C escapes, as git quotes paths (`\n`, `\t`, `\"`,
/// `\\`, and `\ooo` octal for each byte that is not UTF-8 or is a
/// control character), so the exact bytes can be read back.
pub fn quote_path(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
        && workflow_command_at(text).is_none()
    {
        return text.to_owned();
    }
    let mut quoted = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => quoted.push_str("\\\""),
                '\\' => quoted.push_str("\\\\"),
                '\n' => quoted.push_str("\\n"),
                '\t' => quoted.push_str("\\t"),
                '\r' => quoted.push_str("\\r"),
                c if c.is_control() => {
                    let mut buffer = [0; 4];
                    for byte in c.encode_utf8(&mut buffer).bytes() {
                        quoted.push_str(&format!("\\{byte:03o}"));
                    }
                }
                c => quoted.push(c),
            }
        }
        for byte in chunk.invalid() {
            quoted.push_str(&format!("\\{byte:03o}"));
        }
    }
    quoted.push('"');
    quoted
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

fn append(path: &PathBuf, text: &[u8]) -> std::io::Result<()> {
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(&crate::secret::redact_bytes(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_github(outputs: &[(&str, &str)], expected: &str) {
        let outputs: Vec<(String, Vec<u8>)> = outputs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(
            String::from_utf8(github_output_file(&outputs, "SEED")).unwrap(),
            expected
        );
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

    /// A line of an exported value is never a workflow command in a log,
    /// and `sh` still reads the exact bytes.
    #[test]
    fn shell_exports_never_start_a_line_with_a_workflow_command() {
        let outputs = vec![
            ("a".to_owned(), b"x\n::error::y".to_vec()),
            ("b".to_owned(), b"x\r \t::add-mask::y".to_vec()),
            ("c".to_owned(), b"::x\n:y".to_vec()),
        ];
        let text = shell_exports(&outputs);
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            "export a='x\n''::error::y'\nexport b='x\r'' \t::add-mask::y'\nexport c='::x\n:y'\n"
        );
        let mut script = text;
        script.extend_from_slice(b"printf '%s\\0' \"$a\" \"$b\" \"$c\"\n");
        let out = std::process::Command::new("sh")
            .args(["-c", &String::from_utf8(script).unwrap()])
            .output()
            .unwrap();
        let printed: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        for (i, (_, value)) in outputs.iter().enumerate() {
            assert_eq!(printed[i], value.as_slice());
        }
    }

    #[test]
    fn shell_exports_make_valid_names() {
        let outputs = vec![
            ("app".to_owned(), b"true".to_vec()),
            ("app-files".to_owned(), b"a b".to_vec()),
            ("_1st".to_owned(), b"x\xff".to_vec()),
        ];
        assert_eq!(
            shell_exports(&outputs),
            b"export app=true\nexport app_files='a b'\nexport _1st='x\xff'\n"
        );
    }

    #[test]
    fn shell_names_without_a_lowercase_letter_are_refused() {
        for good in ["app", "App", "app_FILES", "x1"] {
            assert_eq!(check_shell_name(good), Ok(()), "`{good}`");
        }
        for bad in [
            "PATH",
            "BASH_ENV",
            "IFS",
            "ENV",
            "LD_PRELOAD",
            "_",
            "X1",
            "a b",
        ] {
            assert!(check_shell_name(bad).is_err(), "`{bad}` was accepted");
        }
    }

    #[test]
    fn outputs_that_would_be_one_are_refused_naming_both() {
        assert_eq!(
            check_output_names(["a-b", "x", "a_b"], Format::Shell).unwrap_err(),
            "the outputs `a-b` and `a_b` both become the shell variable `a_b`, the second \
             overwriting the first: rename one of them, or use `--format json`"
        );
        assert_eq!(check_output_names(["a-b", "a_b"], Format::Github), Ok(()));
        assert!(check_output_names(["a", "a"], Format::Github).is_err());
        assert_eq!(check_output_names(["a", "a", "BAD"], Format::Json), Ok(()));
        assert!(check_output_names(["PATH"], Format::Shell).is_err());
    }

    /// The last line of defence: a report whose outputs collide is refused
    /// by `emit` itself, with an error `cli::finish` turns into exit 2,
    /// before anything is written.
    #[test]
    fn emit_refuses_colliding_outputs_before_writing() {
        #[derive(serde::Serialize)]
        struct Colliding;
        impl Report for Colliding {
            fn render_plain(&self, _: &Style) -> String {
                String::new()
            }
            fn outputs(&self) -> Vec<(String, String)> {
                vec![("a-b".into(), "1".into()), ("a_b".into(), "2".into())]
            }
        }
        let output = Output::from_env(Format::Shell, ColorChoice::Never, false, |_| None);
        let error = output.emit(&Colliding).unwrap_err();
        assert!(
            error
                .get_ref()
                .is_some_and(|inner| inner.is::<OutputNameError>()),
            "{error}"
        );
    }

    #[test]
    fn output_names_outside_the_safe_alphabet_are_refused() {
        for good in ["app", "app-files", "_x", "A_1-b"] {
            assert_eq!(check_output_name(good), Ok(()), "`{good}`");
        }
        for bad in [
            "",
            "1st",
            "a=b",
            "a\nb",
            "a b",
            "a<<EOF",
            "é",
            "a.b",
            &"x".repeat(101),
        ] {
            assert!(check_output_name(bad).is_err(), "`{bad}` was accepted");
        }
        assert_eq!(
            check_output_name("x\ny=1").unwrap_err(),
            "`x\\ny=1` cannot be a step output name: use ASCII letters, digits, `_` and `-`, \
             starting with a letter or `_`, at most 100"
        );
    }

    #[test]
    fn paths_are_quoted_as_git_quotes_them() {
        assert_eq!(quote_path(b"src/main.rs"), "src/main.rs");
        assert_eq!(quote_path("dé jà.txt".as_bytes()), "dé jà.txt");
        assert_eq!(quote_path(b"a\nb"), r#""a\nb""#);
        assert_eq!(quote_path(b"q\"\\x"), r#""q\"\\x""#);
        assert_eq!(quote_path(b"bad\xff\xfe.txt"), r#""bad\377\376.txt""#);
        assert_eq!(quote_path(b"esc\x1b[31m"), r#""esc\033[31m""#);
    }

    #[test]
    fn control_characters_are_escaped_in_message_values() {
        assert_eq!(escape_control("plain\ttab"), "plain\ttab");
        assert_eq!(
            escape_control("x\n::warning::forged\r\x1b[2K"),
            r"x\n::warning::forged\r\u{1b}[2K"
        );
    }

    #[test]
    fn a_leading_workflow_command_is_escaped_visibly() {
        assert_eq!(escape_control("::error::x"), r"\u{3a}:error::x");
        assert_eq!(escape_control(" \t::add-mask::x"), " \t\\u{3a}:add-mask::x");
        assert_eq!(escape_control("a ::b"), "a ::b");
        assert_eq!(escape_control(":x"), ":x");
        assert_eq!(escape_control("\n::x"), r"\n::x");
        assert_eq!(quote_path(b"::error::x"), r#""::error::x""#);
        assert_eq!(quote_path(b"a::b"), "a::b");
    }

    #[test]
    fn rendered_lines_keep_newlines_and_colour_only() {
        let styled = Style { enabled: true }.bold("::stop-commands::\x1b[2Jx");
        assert_eq!(styled, "\x1b[1m\\u{3a}:stop-commands::\\u{1b}[2Jx\x1b[0m");
        assert_eq!(
            escape_lines(
                "a\n::error::x\r::b\n\x1b[31mred\x1b[0m\x1b]0;title\x07",
                true
            ),
            "a\n\\u{3a}:error::x\\r::b\n\x1b[31mred\x1b[0m\\u{1b}]0;title\\u{7}"
        );
        assert_eq!(escape_lines("\x1b[31mred", false), r"\u{1b}[31mred");
    }

    /// Property: whatever bytes a value holds (newlines, quotes, `$(…)`,
    /// backticks, `\`, bytes that are not UTF-8), the word
    /// [`shell_quote_bytes`] makes, evaluated by a real `sh`, gives back
    /// exactly those bytes. The values are generated (seeded, so a failure
    /// reproduces) from an alphabet biased towards what a shell treats
    /// specially; `sh` prints each with `printf '%s\0'`.
    #[test]
    fn shell_quoting_round_trips_any_bytes_through_sh() {
        const SPECIAL: &[u8] = b"'\"$`\\\n\r\t (){};&|<>*?[]~#!=%@-";
        let mut rng = fastrand::Rng::with_seed(0x5119_3a7e);
        let mut values: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"'".to_vec(),
            b"''\\'".to_vec(),
            b"$(touch PWNED)".to_vec(),
            b"`touch PWNED`".to_vec(),
            b"a\nb\n".to_vec(),
            b"\xff\xfe\x80".to_vec(),
            b"-n".to_vec(),
            b"~root".to_vec(),
        ];
        for _ in 0..2000 {
            let len = rng.usize(0..24);
            let value: Vec<u8> = (0..len)
                .map(|_| match rng.u8(0..4) {
                    0 => SPECIAL[rng.usize(0..SPECIAL.len())],
                    1 => rng.u8(0x80..=0xff),
                    2 => rng.u8(1..0x20),
                    _ => rng.u8(0x20..0x7f),
                })
                .collect();
            values.push(value);
        }
        let mut script = b"printf '%s\\0'".to_vec();
        for value in &values {
            script.push(b' ');
            script.extend(shell_quote_bytes(value));
        }
        let dir = tempfile::tempdir().unwrap();
        let script_path = dir.path().join("script.sh");
        fs_err::write(&script_path, &script).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&script_path)
            .current_dir(dir.path())
            .output()
            .expect("sh runs (Debian package dash)");
        assert!(out.status.success(), "sh failed: {out:?}");
        let printed: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        assert_eq!(printed.len(), values.len() + 1, "one word per value");
        for (value, printed) in values.iter().zip(printed) {
            assert_eq!(
                printed,
                value.as_slice(),
                "value {:?} quoted as {:?}",
                String::from_utf8_lossy(value),
                String::from_utf8_lossy(&shell_quote_bytes(value))
            );
        }
        assert!(
            !dir.path().join("PWNED").exists(),
            "a quoted value ran a command"
        );
    }

    #[test]
    fn workflow_data_escapes_percent_and_newlines() {
        assert_eq!(escape_workflow_data("50%\r\nnext"), "50%25%0D%0Anext");
        // `:` and `,` end nothing in the data part: kept, as `escapeData` keeps them.
        assert_eq!(escape_workflow_data("a: b, c::d"), "a: b, c::d");
    }

    /// `escapeProperty` of `@actions/toolkit`: `%` first, then CR, LF, `:`, `,`.
    #[test]
    fn workflow_properties_escape_colon_and_comma_too() {
        assert_eq!(
            escape_workflow_property("C:\\a,b%3A\r\n"),
            "C%3A\\a%2Cb%253A%0D%0A"
        );
        assert_eq!(escape_workflow_property("slipway.toml"), "slipway.toml");
    }

    #[track_caller]
    fn check_annotation(
        level: &str,
        location: Option<(&str, usize, usize)>,
        message: &str,
        expected: &str,
    ) {
        let location = location.map(|(file, line, column)| AnnotationLocation {
            file: PathBuf::from(file),
            line,
            column: (column > 0).then_some(column),
        });
        assert_eq!(
            annotation(level, location.as_ref(), "img-tag", message),
            expected
        );
    }

    #[test]
    fn annotations_carry_the_location_and_escape_what_comes_from_outside() {
        check_annotation(
            "error",
            Some(("deploy/slipway.toml", 7, 1)),
            "unknown key `platfroms`",
            "::error file=deploy/slipway.toml,line=7,col=1,title=img-tag::unknown key `platfroms`\n",
        );
        // A line without a column (a `.dockerignore` line).
        check_annotation(
            "error",
            Some((".dockerignore", 4, 0)),
            "bad pattern",
            "::error file=.dockerignore,line=4,title=img-tag::bad pattern\n",
        );
        check_annotation(
            "error",
            None,
            "no slipway.toml found",
            "::error title=img-tag::no slipway.toml found\n",
        );
        // A file name cannot add a property or end the property list; a
        // message cannot start a second command on a line of its own.
        check_annotation(
            "warning",
            Some(("a,line=99::x.toml", 1, 2)),
            "50% done\n::error::forged",
            "::warning file=a%2Cline=99%3A%3Ax.toml,line=1,col=2,title=img-tag::50%25 done%0A::error::forged\n",
        );
    }

    #[test]
    fn gitlab_sections_are_collapsed_and_their_names_safe() {
        assert_eq!(gitlab_section_name("img-build app"), "img-build_app");
        assert_eq!(gitlab_section_name("v1.2 é:[x]"), "v1.2____x_");
        assert_eq!(gitlab_section_name(""), "section");
        assert_eq!(gitlab_section_name(&"x".repeat(100)).len(), 64);
        assert_eq!(
            gitlab_section_start(1_700_000_000, "img-build_app", "img-build app"),
            "\x1b[0Ksection_start:1700000000:img-build_app[collapsed=true]\r\x1b[0Kimg-build app\n"
        );
        assert_eq!(
            gitlab_section_start(1, "x", "a\r\x1b[0Kb\nc"),
            "\x1b[0Ksection_start:1:x[collapsed=true]\r\x1b[0Ka\\r\\u{1b}[0Kb\\nc\n"
        );
        assert_eq!(
            gitlab_section_end(1_700_000_009, "img-build_app"),
            "\x1b[0Ksection_end:1700000009:img-build_app\r\x1b[0K\n"
        );
    }

    #[track_caller]
    fn check_dotenv(outputs: &[(&str, &[u8])], expected: Result<&str, &str>) {
        let outputs: Vec<(String, Vec<u8>)> = outputs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
            .collect();
        let (text, left_out) = dotenv_file(&outputs);
        let text = String::from_utf8(text).unwrap();
        match expected {
            Ok(expected) => assert_eq!((text.as_str(), left_out), (expected, vec![])),
            Err(why) => assert_eq!((text.as_str(), left_out), ("", vec![why.to_owned()])),
        }
    }

    #[test]
    fn dotenv_lines_are_name_equals_value() {
        check_dotenv(
            &[
                ("app", b"true"),
                ("app-count", b"2"),
                ("targets", br#"["app","worker"]"#),
                ("empty", b""),
                ("inner", b"a b:c/d@sha256:0"),
            ],
            Ok(
                "app=true\napp_count=2\ntargets=[\"app\",\"worker\"]\nempty=\ninner=a b:c/d@sha256:0\n",
            ),
        );
    }

    #[test]
    fn dotenv_leaves_out_values_gitlab_would_not_give_back() {
        let refused = |why: &str| {
            format!(
                "the output `x` is left out of the dotenv report: it {why}, and GitLab's \
                 dotenv has no quoting or escapes; use `--format json` for it"
            )
        };
        for (value, why) in [
            (
                &b"a\nb"[..],
                "holds the control character `\\n` (one value per line, no multi-line values)",
            ),
            (
                b"a\rb",
                "holds the control character `\\r` (one value per line, no multi-line values)",
            ),
            (
                b"a\x1bb",
                "holds the control character `\\u{1b}` (one value per line, no multi-line values)",
            ),
            (
                b"k=v",
                "holds `=` (GitLab reads a line's name up to its last `=`)",
            ),
            (b" a", "starts or ends with a blank (GitLab strips them)"),
            (b"a ", "starts or ends with a blank (GitLab strips them)"),
            (b"\xff", "is not UTF-8"),
        ] {
            check_dotenv(&[("x", value)], Err(&refused(why)));
        }
    }

    #[test]
    fn dotenv_names_follow_the_shell_rules() {
        assert!(check_output_names(["PATH"], Format::Dotenv).is_err());
        assert_eq!(
            check_output_names(["a-b", "a_b"], Format::Dotenv).unwrap_err(),
            "the outputs `a-b` and `a_b` both become the dotenv variable `a_b`, the second \
             overwriting the first: rename one of them, or use `--format json`"
        );
        assert_eq!(
            check_output_names(["app", "app_count"], Format::Dotenv),
            Ok(())
        );
    }

    #[test]
    fn ci_providers_get_their_own_log_groups() {
        let output = |name: &'static str, value: &'static str| {
            Output::from_env(Format::Plain, ColorChoice::Never, false, move |n| {
                (n == name).then(|| value.to_owned())
            })
        };
        assert_eq!(
            output("GITLAB_CI", "true").ci_provider(),
            Provider::GitlabCi
        );
        assert!(output("GITLAB_CI", "true").has_log_groups());
        assert!(output("BUILDKITE", "true").has_log_groups());
        assert!(!output("JENKINS_URL", "http://ci").has_log_groups());
        assert!(!output("CIRCLECI", "true").has_log_groups());
        assert!(!output("GITLAB_CI", "").has_log_groups());
    }

    #[test]
    fn annotation_paths_are_relative_to_the_workspace_inside_it() {
        let output = Output::from_env(Format::Plain, ColorChoice::Never, false, |name| {
            (name == "GITHUB_WORKSPACE").then(|| "/home/runner/work/app".to_owned())
        });
        let path = |p: &str| output.annotation_path(std::path::Path::new(p));
        assert_eq!(
            path("/home/runner/work/app/deploy/slipway.toml"),
            PathBuf::from("deploy/slipway.toml")
        );
        assert_eq!(
            path("/home/runner/work/app/x/../slipway.toml"),
            PathBuf::from("slipway.toml")
        );
        assert_eq!(
            path("/etc/slipway.toml"),
            PathBuf::from("/etc/slipway.toml")
        );
        assert_eq!(
            path("/home/runner/work/application/slipway.toml"),
            PathBuf::from("/home/runner/work/application/slipway.toml")
        );
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
