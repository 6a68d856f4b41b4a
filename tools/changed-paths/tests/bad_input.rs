//! The bad-input catalogue of `changed-paths` (docs/errors.md): each test is
//! one mistake users make, run through the real binary, and asserts exit 2,
//! nothing on stdout, and a message naming the flag, file, line or value and
//! what would be valid. None needs a service.

use std::path::Path;

use slipway_testbed::cmd::Cmd;

const BIN: &str = env!("CARGO_BIN_EXE_changed-paths");

/// A project's slipway.toml header: a registry, so images have repositories.
const PROJECT: &str = "[project]\nregistry = \"127.0.0.1:5000/demo\"\n";

/// Runs the binary in `dir` with `args` and `stdin` piped in, asserts exit 2
/// and an empty stdout, and that stderr contains `expected`; returns stderr.
#[track_caller]
fn check(dir: &Path, args: &[&str], stdin: &str, expected: &str) -> String {
    let output = Cmd::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "error")
        .stdin(stdin)
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?}: stdout is for data");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected `{expected}` in:\n{stderr}"
    );
    stderr
}

/// A temp dir holding `slipway.toml` with `contents`.
fn config(contents: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::write(dir.path().join("slipway.toml"), contents).expect("slipway.toml");
    dir
}

/// Runs with `--config slipway.toml` of `contents` and an empty stdin list.
#[track_caller]
fn check_config(contents: &str, expected: &str) -> String {
    let dir = config(contents);
    check(
        dir.path(),
        &["--config", "slipway.toml", "--files-from", "-"],
        "",
        expected,
    )
}

#[track_caller]
fn assert_contains(stderr: &str, expected: &str) {
    assert!(
        stderr.contains(expected),
        "expected `{expected}` in:\n{stderr}"
    );
}

fn empty_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn a_filter_without_a_name_says_name_equals_glob() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--files-from", "-", "--filter", "app/**"],
        "",
        "error: `--filter app/**` is not `NAME=GLOB`, e.g. `--filter 'app=app/**'`",
    );
}

#[test]
fn a_filter_name_that_cannot_be_a_step_output_is_refused() {
    let dir = empty_dir();
    // A newline would inject a `$GITHUB_OUTPUT` line, `=` would end the name.
    check(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--format",
            "github",
            "--filter",
            "app\ninjected=true=**",
        ],
        "",
        "error: invalid filter name for `--format github`: `app\\ninjected` cannot be a step \
         output name: use ASCII letters, digits, `_` and `-`, starting with a letter or `_`, at \
         most 100",
    );
    fs_err::write(dir.path().join("filters.yml"), "\"a b\": ['**']\n").unwrap();
    check(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--format",
            "shell",
            "--filters",
            "filters.yml",
        ],
        "",
        "`a b` cannot be a step output name",
    );
}

/// `--format shell` output is meant for `eval`: a filter named `BASH_ENV`
/// (or `PATH`, `IFS`, `LD_PRELOAD`) exported `BASH_ENV=true`, and the next
/// bash ran the file `true`. Names without a lowercase letter belong to the
/// environment and are refused for `shell`; `github` outputs are no
/// variables, so the same name is fine there.
#[test]
fn a_filter_named_like_an_environment_variable_is_refused_for_shell() {
    let dir = empty_dir();
    for name in ["BASH_ENV", "PATH", "IFS", "LD_PRELOAD"] {
        check(
            dir.path(),
            &[
                "--files-from",
                "-",
                "--format",
                "shell",
                "--filter",
                &format!("{name}=**"),
            ],
            "",
            &format!(
                "error: invalid filter name for `--format shell`: `{name}` cannot be a shell variable: a name without a lowercase letter belongs to the environment (`PATH`, `IFS`, `BASH_ENV`, `LD_PRELOAD`, …); give it a lowercase letter, or use `--format json`"
            ),
        );
    }
}

#[test]
fn an_unclosed_brace_in_a_filter_names_the_pattern_and_the_filter() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--files-from", "-", "--filter", "app=app/{src,lib"],
        "",
        "error: invalid pattern `app/{src,lib` in filter `app` (--filter): unclosed alternate group; missing '}'",
    );
}

#[test]
fn an_unknown_status_lists_the_valid_ones() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--files-from", "-", "--status", "added|changed"],
        "a\n",
        "error: `--status added|changed`: unknown change status `changed`: expected one of `added`, `copied`, `deleted`, `modified`, `renamed`, `unmerged`",
    );
}

#[test]
fn an_unknown_status_letter_in_the_file_list_names_the_line() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--files-from", "-"],
        "M\tok.rs\nX\tapp/a.rs\n",
        "error: stdin:2: cannot read `X\tapp/a.rs`: unknown status `X`: expected a letter of `ACDMRTU` or a name",
    );
}

#[test]
fn a_missing_files_from_file_is_named() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--files-from", "changed.txt"],
        "",
        "error: failed to open file `changed.txt`: No such file or directory",
    );
}

#[test]
fn a_missing_filters_file_is_named() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--files-from", "-", "--filters", ".github/filters.yml"],
        "",
        "error: failed to open file `.github/filters.yml`: No such file or directory",
    );
}

#[test]
fn broken_filters_yaml_gives_file_line_and_column() {
    let dir = empty_dir();
    fs_err::write(dir.path().join("filters.yml"), "src: [\n").expect("filters");
    check(
        dir.path(),
        &["--files-from", "-", "--filters", "filters.yml"],
        "",
        "error: filters.yml:2:1: while parsing a node, did not find expected node content",
    );
}

#[test]
fn filters_yaml_that_is_a_list_says_what_the_root_must_be() {
    let dir = empty_dir();
    fs_err::write(dir.path().join("filters.yml"), "- src/**\n").expect("filters");
    check(
        dir.path(),
        &["--files-from", "-", "--filters", "filters.yml"],
        "",
        "error: filters.yml:1:1: the root is not a mapping: expected `name: pattern` or `name: [patterns]` entries",
    );
}

#[test]
fn filters_and_files_from_cannot_both_read_stdin() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--files-from", "-", "--filters", "-"],
        "",
        "error: `--filters -` and `--files-from -` cannot both read stdin; give one of them a file",
    );
}

#[test]
fn base_and_working_tree_conflict() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--base", "main", "--working-tree"],
        "",
        "error: the argument '--base <REV>' cannot be used with '--working-tree'",
    );
}

#[test]
fn merge_base_needs_a_base() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--merge-base"],
        "",
        "error: the following required arguments were not provided:\n  --base <REV>",
    );
}

#[test]
fn an_unknown_list_files_format_lists_the_valid_ones() {
    let dir = empty_dir();
    check(
        dir.path(),
        &["--files-from", "-", "--list-files", "xml"],
        "",
        "error: invalid value 'xml' for '--list-files <FORMAT>'\n  [possible values: none, csv, json, shell, escape]",
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = empty_dir();
    let stderr = check(
        dir.path(),
        &["--config", "ci/slipway.toml", "--files-from", "-"],
        "",
        "error: cannot read config `",
    );
    assert!(stderr.contains("ci/slipway.toml`"), "{stderr}");
}

#[test]
fn a_misspelt_config_key_gets_the_nearest_key() {
    check_config(
        &format!("{PROJECT}[images.app]\npahts = [\"app/**\"]\n"),
        "slipway.toml:4:1 — did you mean `paths`?",
    );
}

#[test]
fn a_paths_string_instead_of_an_array_shows_the_expected_form() {
    let stderr = check_config(
        &format!("{PROJECT}[images.app]\npaths = \"app/**\"\n"),
        "error: `paths` in [images.app] at ",
    );
    assert_contains(
        &stderr,
        "slipway.toml:4:9: expected an array of globs like [\"app/**\", \"!app/docs/**\"], found a string",
    );
}

#[test]
fn depends_on_an_unknown_image_suggests_the_nearest() {
    let stderr = check_config(
        &format!("{PROJECT}[images.app]\ndepends_on = [\"bsae\"]\n[images.base]\n"),
        "[images.app] depends_on `bsae` at ",
    );
    assert_contains(
        &stderr,
        "slipway.toml:4:15, which is not an image — did you mean `base`? (images: app, base)",
    );
}

#[test]
fn a_dependency_cycle_is_spelt_out() {
    check_config(
        &format!(
            "{PROJECT}[images.app]\ndepends_on = [\"base\"]\n[images.base]\ndepends_on = [\"app\"]\n"
        ),
        "error: `depends_on` forms a cycle: app -> base -> app (at ",
    );
}

#[test]
fn an_invalid_glob_in_config_paths_names_image_file_and_position() {
    check_config(
        &format!("{PROJECT}[images.app]\npaths = [\"app/{{a,b\"]\n"),
        "error: invalid glob `app/{a,b` in [images.app] paths at ",
    );
}

#[test]
fn a_misspelt_table_gets_the_nearest_table() {
    check_config(
        &format!("{PROJECT}[imagez.app]\n"),
        "slipway.toml:3:1 — did you mean [images]?",
    );
}

#[test]
fn invalid_toml_gives_line_and_column() {
    check_config(
        &format!("{PROJECT}[images.app\n"),
        "slipway.toml:3:12: unclosed table, expected `]`",
    );
}

#[test]
fn an_image_without_a_repository_says_where_to_set_one() {
    check_config(
        "[images.app]\n",
        "has no repository: set `repository` in [images.app] or `registry` in [project], e.g. `registry = \"127.0.0.1:5000/demo\"`",
    );
}

#[test]
fn an_endless_input_file_is_refused_naming_it_and_the_limit() {
    // Each of these grew memory without bound.
    let dir = empty_dir();
    for args in [
        &["--config", "/dev/zero", "--files-from", "-"][..],
        &["--files-from", "/dev/zero"],
        &["--files-from", "-", "--filters", "/dev/zero"],
    ] {
        check(
            dir.path(),
            args,
            "",
            "`/dev/zero` is larger than 16 MiB, the most Slipway reads from one input; is it the right file?",
        );
    }
}

#[test]
fn a_slipway_toml_symlink_loop_is_reported_with_its_path() {
    // It was taken for "no slipway.toml" and the filters of the project ignored.
    let dir = empty_dir();
    std::os::unix::fs::symlink("slipway.toml", dir.path().join("slipway.toml")).unwrap();
    fs_err::create_dir(dir.path().join("work")).unwrap();
    let stderr = check(
        &dir.path().join("work"),
        &["--files-from", "-"],
        "",
        "error: cannot read config `",
    );
    assert!(stderr.contains("/slipway.toml`"), "{stderr}");
    assert!(
        stderr.contains("Too many levels of symbolic links"),
        "{stderr}"
    );
}

#[test]
fn a_value_with_newlines_cannot_forge_an_output_line() {
    // The file name was printed raw: its second line became a workflow command.
    let dir = empty_dir();
    let stderr = check(
        dir.path(),
        &["--files-from", "missing\n::warning::forged\r\x1b[2K"],
        "",
        r"failed to open file `missing\n::warning::forged\r\u{1b}[2K`",
    );
    assert!(
        stderr.lines().all(|line| !line.starts_with("::")),
        "{stderr}"
    );
}

/// Two filters whose outputs would be one — `a-b` and `a_b` are both the
/// shell variable `a_b` under `--format shell`; a filter `a_count` and the
/// count of a filter `a` are one step output — were written one after the
/// other, the second silently overwriting the first. Now they are refused
/// before any work (exit 2), naming both (docs/errors.md).
#[test]
fn filters_whose_outputs_collide_are_refused_naming_both() {
    let dir = empty_dir();
    check(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--format",
            "shell",
            "--filter",
            "a-b=src/**",
            "--filter",
            "a_b=docs/**",
        ],
        "src/x\n",
        "error: invalid filter name for `--format shell`: the outputs `a-b` and `a_b` both \
         become the shell variable `a_b`, the second overwriting the first: rename one of them, \
         or use `--format json`",
    );
    check(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--format",
            "github",
            "--filter",
            "web=src/**",
            "--filter",
            "web_count=docs/**",
        ],
        "src/x\n",
        "error: invalid filter name for `--format github`: the output `web_count` would be \
         written twice, the second overwriting the first: rename what it comes from, or use \
         `--format json`",
    );
    // `github` outputs are no variables: `a-b` and `a_b` are two outputs there.
    let output_file = dir.path().join("github_output");
    let output = Cmd::new(BIN)
        .current_dir(dir.path())
        .args(["--files-from", "-", "--format", "github"])
        .args(["--filter", "a-b=src/**", "--filter", "a_b=docs/**"])
        .env("GITHUB_OUTPUT", &output_file)
        .stdin("src/x\n")
        .run();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let written = fs_err::read_to_string(&output_file).unwrap();
    assert!(written.starts_with("a-b=true\na-b_count=1\n"), "{written}");
    assert!(written.contains("\na_b=false\na_b_count=0\n"), "{written}");
}
