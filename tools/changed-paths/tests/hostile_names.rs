//! File names that try to run code or get lost on the way to a shell:
//! committed for real, diffed by the real binary, and its `--format shell`
//! output evaluated by a real `sh` (docs/reliability.md, "Output").

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::Command;

use slipway_testbed::cmd::Cmd;
use slipway_testbed::git::GitRepo;

const BIN: &str = env!("CARGO_BIN_EXE_changed-paths");

/// Every kind of byte git allows in a name that a shell treats specially.
const HOSTILE: &[&[u8]] = &[
    b"x\n$(touch PWNED)",
    b"it's \"q\" `touch PWNED`.txt",
    b"back\\slash\\",
    b"dollar$HOME;id",
    b"bad\xff\xfe name",
    b"plain.rs",
];

fn changed_paths(repo: &GitRepo, base: &str, args: &[&str]) -> std::process::Output {
    let output: std::process::Output = Cmd::new(BIN)
        .current_dir(repo.path())
        .args(["--base", base, "--filter", "all=**"])
        .args(args)
        .env("NO_COLOR", "1")
        .run()
        .into();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Sources `exports` in `sh` (in an empty directory), then evaluates the
/// list in `$all_files` into words and prints each followed by NUL.
fn eval_in_sh(exports: &[u8], dir: &Path) -> Vec<Vec<u8>> {
    fs_err::write(dir.join("out.sh"), exports).expect("out.sh is written");
    let out = Command::new("sh")
        .current_dir(dir)
        .args([
            "-c",
            r#". ./out.sh && eval "set -- $all_files" && printf '%s\0' "$@""#,
        ])
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "{out:?}");
    let mut words: Vec<Vec<u8>> = out.stdout.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    assert_eq!(words.pop().as_deref(), Some(&b""[..]), "NUL-terminated");
    words
}

#[test]
fn shell_output_of_hostile_file_names_runs_nothing_and_gives_back_the_exact_names() {
    let repo = GitRepo::new();
    repo.write("README", "x");
    let base = repo.commit("chore: start");
    for name in HOSTILE {
        repo.write(OsStr::from_bytes(name), "x");
    }
    repo.commit("feat: hostile names");
    let mut expected: Vec<Vec<u8>> = HOSTILE.iter().map(|n| n.to_vec()).collect();
    expected.sort();

    for list_format in ["shell", "escape"] {
        let output = changed_paths(
            &repo,
            &base,
            &["--format", "shell", "--list-files", list_format],
        );
        let sandbox = tempfile::tempdir().unwrap();
        let names = eval_in_sh(&output.stdout, sandbox.path());
        assert_eq!(
            names
                .iter()
                .map(|n| String::from_utf8_lossy(n))
                .collect::<Vec<_>>(),
            expected
                .iter()
                .map(|n| String::from_utf8_lossy(n))
                .collect::<Vec<_>>(),
            "--list-files {list_format}"
        );
        assert_eq!(names, expected, "--list-files {list_format}: exact bytes");
        let leftovers: Vec<_> = fs_err::read_dir(sandbox.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            ["out.sh"],
            "--list-files {list_format} ran a command"
        );
        assert!(!repo.path().join("PWNED").exists());
    }

    // Plain output shows each name on one line, quoted as git quotes it.
    let plain = changed_paths(&repo, &base, &[]);
    let plain = String::from_utf8(plain.stdout).expect("plain output is UTF-8");
    assert!(
        plain.contains("  added \"bad\\377\\376 name\"\n"),
        "{plain}"
    );
    assert!(
        plain.contains("  added \"x\\n$(touch PWNED)\"\n"),
        "{plain}"
    );
    assert!(plain.contains("  added \"back\\\\slash\\\\\"\n"), "{plain}");

    // JSON keeps the exact bytes of a name that is not UTF-8 in `path_bytes`.
    let json = changed_paths(&repo, &base, &["--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let bad = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f.get("path_bytes").is_some())
        .expect("a file with path_bytes");
    let bytes: Vec<u8> = bad["path_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
        .collect();
    assert_eq!(bytes, b"bad\xff\xfe name");
    assert_eq!(bad["path"], "bad\u{fffd}\u{fffd} name");
}

/// A committed name or a filter from a committed file can neither forge a
/// GitHub workflow command (a line starting with `::`, after any CR) nor
/// rewrite the terminal, even with `--color always`: `--explain` quotes a
/// path starting with `::` as git quotes names, and a filter name holding
/// ESC is shown escaped inside the colour codes (docs/errors.md, "Text
/// from outside").
#[test]
fn explain_and_colour_show_forged_commands_and_escapes_inert() {
    let repo = GitRepo::new();
    repo.write("README", "x");
    let base = repo.commit("chore: start");
    repo.write("::error::forged", "x");
    repo.write(OsStr::from_bytes(b"a\r::add-mask::x"), "x");
    repo.write(
        "filters.yml",
        "\"x\\u001b[2Jy\":\n  - \"::*\"\n  - \"\\u001b[31m*\"\n",
    );
    repo.commit("feat: forged");
    let output: std::process::Output = Cmd::new(BIN)
        .current_dir(repo.path())
        .args(["--base", &base, "--filters", "filters.yml", "--explain"])
        .args(["--color", "always"])
        .run()
        .into();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{text}");
    for line in text.split(['\n', '\r']) {
        assert!(
            !line.trim_start().starts_with("::"),
            "a forged workflow command in {text:?}"
        );
    }
    let without_colour = text
        .replace("\u{1b}[1m", "")
        .replace("\u{1b}[32m", "")
        .replace("\u{1b}[2m", "")
        .replace("\u{1b}[0m", "");
    assert!(!without_colour.contains('\u{1b}'), "a raw ESC in {text:?}");
    assert!(
        text.contains("\n\u{1b}[1mx\\u{1b}[2Jy\u{1b}[0m: \u{1b}[32mtrue\u{1b}[0m (1 file)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n\"::error::forged\" [added]\n  x\\u{1b}[2Jy: matched by `::*`"),
        "{text}"
    );
    assert!(text.contains("\n\"a\\r::add-mask::x\" [added]\n"), "{text}");
}

/// `--format shell` keeps a newline of a value inside its quotes, so a
/// committed name `x<newline>::error::forged` printed a log line starting
/// with `::`, a workflow command when the exports are shown in a GitHub
/// Actions log. Such a line now starts with an empty `''`, which `sh`
/// drops: every line is inert and `eval` still gives back the exact name.
#[test]
fn shell_output_never_starts_a_line_with_a_workflow_command() {
    let repo = GitRepo::new();
    repo.write("README", "x");
    let base = repo.commit("chore: start");
    let names: [&[u8]; 2] = [b"x\n::error::forged", b"y\r  ::add-mask::z"];
    for name in names {
        repo.write(OsStr::from_bytes(name), "x");
    }
    repo.commit("feat: forged commands");
    for list_format in ["shell", "escape", "csv"] {
        let output = changed_paths(
            &repo,
            &base,
            &["--format", "shell", "--list-files", list_format],
        );
        for line in output.stdout.split(|b| matches!(b, b'\n' | b'\r')) {
            let line = String::from_utf8_lossy(line);
            assert!(
                !line.trim_start().starts_with("::"),
                "{list_format}: a workflow command in {:?}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        if list_format != "csv" {
            let sandbox = tempfile::tempdir().unwrap();
            let mut words = eval_in_sh(&output.stdout, sandbox.path());
            words.sort();
            assert_eq!(
                words,
                [names[0].to_vec(), names[1].to_vec()],
                "{list_format}"
            );
        }
    }
}
