//! Each CI's own output from the real `changed-paths`: a config error is
//! an `::error` annotation at its file, line and column under GitHub
//! Actions, and `--format dotenv` is what GitLab's dotenv report reads
//! back (or a refusal naming the value it cannot carry). The environment
//! is cleared: only the variables each test names reach the binary.

use slipway_testbed::cmd::Cmd;
use std::collections::BTreeMap;
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_changed-paths");

/// Runs the binary in `dir` with `stdin` and `env` (the test bed's `Cmd`
/// clears everything else); returns exit code, stdout and stderr.
fn run_clean(
    dir: &Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let output = Cmd::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(stdin)
        .run();
    (
        output.code().unwrap_or(-1),
        output.stdout_str(),
        output.stderr_str(),
    )
}

/// A workspace holding `deploy/slipway.toml` whose third line has a
/// misspelt key.
fn workspace_with_a_bad_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::create_dir_all(dir.path().join("deploy")).expect("deploy/");
    fs_err::write(
        dir.path().join("deploy/slipway.toml"),
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\nregsitry_auth = \"x\"\n",
    )
    .expect("slipway.toml");
    dir
}

#[test]
fn a_config_error_under_github_actions_is_an_error_annotation_at_its_location() {
    let dir = workspace_with_a_bad_config();
    let workspace = dir.path().to_str().expect("a UTF-8 temp dir");
    // Run from `deploy/` with a relative `--config`: the annotation names
    // the file from the workspace root, where GitHub looks for it.
    let (code, stdout, stderr) = run_clean(
        &dir.path().join("deploy"),
        &["--config", "slipway.toml", "--files-from", "-"],
        "",
        &[("GITHUB_ACTIONS", "true"), ("GITHUB_WORKSPACE", workspace)],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    let message = format!(
        "unknown key `regsitry_auth` in [project] at {workspace}/deploy/slipway.toml:3:1 \
         — valid keys: `name`, `registry`, `default_branch`, `source`, `builder`"
    );
    assert_eq!(
        stderr,
        format!(
            "error: {message}\n\
             ::error file=deploy/slipway.toml,line=3,col=1,title=changed-paths::{message}\n"
        )
    );

    // Outside GitHub Actions, the human line only.
    let (code, _, stderr) = run_clean(
        &dir.path().join("deploy"),
        &["--config", "slipway.toml", "--files-from", "-"],
        "",
        &[("GITLAB_CI", "true"), ("GITHUB_WORKSPACE", workspace)],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("::error"), "{stderr}");
}

#[test]
fn an_error_without_a_location_is_an_annotation_with_the_tool_as_title() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = run_clean(
        dir.path(),
        &["--files-from", "missing.txt", "--filter", "app=src/**"],
        "",
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_eq!(code, 2, "{stderr}");
    let annotation = stderr
        .lines()
        .find(|line| line.starts_with("::error"))
        .unwrap_or_else(|| panic!("no annotation in:\n{stderr}"));
    assert!(
        annotation.starts_with("::error title=changed-paths::"),
        "{annotation}"
    );
    assert!(annotation.contains("missing.txt"), "{annotation}");
}

/// GitLab's reading of a dotenv report (`Gitlab::Ci::Parsers::DotenvVariable`):
/// each line `^(.*)=(.*)$`, the name up to the last `=`, both sides
/// stripped, names of ASCII letters, digits and `_` only.
fn gitlab_dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| {
            let (name, value) = line.rsplit_once('=').expect("a `=` on every line");
            let name = name.trim();
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "GitLab refuses the name `{name}`"
            );
            (name.to_owned(), value.trim().to_owned())
        })
        .collect()
}

const CHANGES: &str = "M\tsrc/main.rs\nA\tsrc/lib.rs\n";

#[test]
fn dotenv_outputs_are_read_back_as_gitlab_reads_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run_clean(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filter",
            "app=src/**",
            "--filter",
            "web-docs=docs/**",
            "--list-files",
            "json",
            "--format",
            "dotenv",
        ],
        CHANGES,
        &[("GITLAB_CI", "true")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "app=true\napp_count=2\napp_files=[\"src/main.rs\",\"src/lib.rs\"]\n\
         web_docs=false\nweb_docs_count=0\nweb_docs_files=[]\n\
         changes=[\"app\"]\ntargets=[\"app\"]\n"
    );
    let variables = gitlab_dotenv(&stdout);
    assert_eq!(variables["app"], "true");
    assert_eq!(variables["app_files"], r#"["src/main.rs","src/lib.rs"]"#);
    assert_eq!(variables["web_docs_count"], "0");
    assert_eq!(variables["targets"], r#"["app"]"#);
    assert_eq!(variables.len(), 8);
}

#[test]
fn a_value_gitlab_cannot_carry_is_left_out_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run_clean(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filter",
            "app=src/**",
            "--list-files",
            "json",
            "--format",
            "dotenv",
        ],
        "M\tsrc/key=value.txt\n",
        &[("GITLAB_CI", "true")],
    );
    // The file name is data, not bad input: the other outputs are written,
    // the one GitLab would misread is left out, and a warning says which.
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "app=true\napp_count=1\nchanges=[\"app\"]\ntargets=[\"app\"]\n"
    );
    assert_eq!(
        stderr,
        " WARN the output `app_files` is left out of the dotenv report: it holds `=` \
         (GitLab reads a line's name up to its last `=`), and GitLab's dotenv has no quoting \
         or escapes; use `--format json` for it\n"
    );
}

#[test]
fn a_filter_named_like_an_environment_variable_is_refused_for_dotenv() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run_clean(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filter",
            "PATH=src/**",
            "--format",
            "dotenv",
        ],
        CHANGES,
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with(
            "error: invalid filter name for `--format dotenv`: `PATH` cannot be a shell variable"
        ),
        "{stderr}"
    );
}

#[test]
fn a_filters_file_or_changes_list_error_points_at_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::write(dir.path().join("filters.yml"), "src: [\n").expect("filters");
    let github = [("GITHUB_ACTIONS", "true")];
    let (code, _, stderr) = run_clean(
        dir.path(),
        &["--files-from", "-", "--filters", "filters.yml"],
        "",
        &github,
    );
    assert_eq!(code, 2, "{stderr}");
    let annotation = stderr.lines().nth(1).unwrap_or_default();
    assert!(
        annotation.starts_with(
            "::error file=filters.yml,line=2,col=1,title=changed-paths::filters.yml:2:1: "
        ),
        "{stderr}"
    );

    // A `--files-from` line: the line, no column.
    fs_err::write(dir.path().join("changes.txt"), "M\tsrc/a.rs\nX\tb\n").expect("changes");
    let (code, _, stderr) = run_clean(
        dir.path(),
        &["--files-from", "changes.txt", "--filter", "app=src/**"],
        "",
        &github,
    );
    assert_eq!(code, 2, "{stderr}");
    let annotation = stderr
        .lines()
        .find(|line| line.starts_with("::error"))
        .unwrap_or_default();
    assert!(
        annotation.starts_with("::error file=changes.txt,line=2,title=changed-paths::"),
        "{stderr}"
    );

    // From stdin there is no file to point at.
    let (code, _, stderr) = run_clean(
        dir.path(),
        &["--files-from", "-", "--filter", "app=src/**"],
        "X\tb\n",
        &github,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with("::error title=changed-paths::")),
        "{stderr}"
    );
}
