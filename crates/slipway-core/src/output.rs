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
            github_actions: crate::ci::is_github_actions(&env),
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
        let text: Vec<u8> = match self.format {
            Format::Plain => report.render_plain(&stdout_style).into_bytes(),
            Format::Json => {
                let mut json =
                    serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
                json.push('\n');
                json.into_bytes()
            }
            Format::Shell => shell_exports(&checked_outputs(report, Format::Shell)?),
            Format::Github => {
                let outputs = checked_outputs(report, Format::Github)?;
                let mut text = report.render_plain(&stdout_style).into_bytes();
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

/// The report's outputs, refusing a name [`check_output_name`] rejects, and
/// for `shell` one [`check_shell_name`] rejects (a tool checks its names
/// before it works; this is the last line of defence).
fn checked_outputs(
    report: &impl Report,
    format: Format,
) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let outputs = report.byte_outputs();
    for (name, _) in &outputs {
        let checked = match format {
            Format::Shell => check_shell_name(name),
            _ => check_output_name(name),
        };
        checked
            .map_err(|message| std::io::Error::new(std::io::ErrorKind::InvalidInput, message))?;
    }
    Ok(outputs)
}

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

/// Renders outputs as `export NAME='value'` lines: `-` in a name becomes
/// `_` (names are checked with [`check_output_name`] first), values are
/// quoted with [`shell_quote_bytes`], so `eval` gives back every byte.
pub fn shell_exports(outputs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut text = Vec::new();
    for (name, value) in outputs {
        let var: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        text.extend_from_slice(format!("export {var}=").as_bytes());
        text.extend(shell_quote_bytes(value));
        text.push(b'\n');
    }
    text
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

/// Escapes control characters but tab (newline, carriage return, escape,
/// …) in a text meant for one line of a human message, as `\n`, `\r` or
/// `\u{1b}`, so no value can start a line of its own (a forged
/// `::warning::`, a fake `error:`) or move the cursor.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    let is_escaped = |c: char| c.is_control() && c != '\t';
    if !text.chars().any(is_escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_escaped(c) {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

/// A path (or any name) from bytes for a line of plain output: as it is
/// when it is UTF-8 without control characters, `"` or `\`; otherwise in
/// double quotes with C escapes, as git quotes paths (`\n`, `\t`, `\"`,
/// `\\`, and `\ooo` octal for each byte that is not UTF-8 or is a
/// control character), so the exact bytes can be read back.
pub fn quote_path(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
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
