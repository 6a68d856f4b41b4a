//! `changed-paths` against `git diff --name-status` alone, on a repository
//! of 50,000 files with 10,000 changed between two commits, matched against
//! 50 filters; and its `--help` start-up against a bare process spawn.
//!
//! The fixture repository is made once with `git fast-import` under
//! target/bench-fixtures and reused by later runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use xshell::{Shell, cmd};

use super::{Cmd, Comparison, Goal};

const DIRS: usize = 500;
const FILES_PER_DIR: usize = 100;
/// Every fifth file changes: 10,000 of 50,000.
const CHANGE_EVERY: usize = 5;
const FILTERS: usize = 50;

pub(super) fn comparisons(sh: &Shell, bin_dir: &Path) -> anyhow::Result<Vec<Comparison>> {
    let fixture = fixture(sh)?;
    let tool = bin_dir.join("changed-paths");
    let mut ours = Cmd::new(
        &tool,
        &[
            "--base",
            "base",
            "--head",
            "head",
            "--filters",
            "filters.yml",
            "--format",
            "json",
        ],
    );
    ours.dir = Some(fixture.clone());
    let mut theirs = Cmd::new("git", &["diff", "--name-status", "base", "head"]);
    theirs.dir = Some(fixture);
    let floor = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .context("no `true` binary in /bin or /usr/bin to measure a bare process spawn")?;
    Ok(vec![
        Comparison {
            name: "changed-paths: 10,000 of 50,000 files, 50 filters".to_owned(),
            ours,
            theirs,
            goal: Goal::RatioAtMost(1.0),
        },
        Comparison {
            name: "changed-paths: `--help` start-up (goal: under 5 ms)".to_owned(),
            ours: Cmd::new(&tool, &["--help"]),
            theirs: Cmd::new(floor, &[]),
            goal: Goal::Report,
        },
    ])
}

/// The fixture repository: tags `base` (50,000 files) and `head` (10,000 of
/// them modified), and `filters.yml` with 50 filters.
fn fixture(sh: &Shell) -> anyhow::Result<PathBuf> {
    let dir = crate::target_dir().join("bench-fixtures/changed-paths-50k");
    let done = dir.join(".fixture-complete");
    if done.exists() {
        return Ok(dir);
    }
    eprintln!(
        "xtask bench: building the 50,000-file fixture in {}",
        dir.display()
    );
    if dir.exists() {
        fs_err::remove_dir_all(&dir)?;
    }
    fs_err::create_dir_all(&dir)?;
    let stream = fast_import_stream();
    let git_dir = dir.join(".git");
    cmd!(sh, "git init --quiet {dir}").run()?;
    cmd!(sh, "git --git-dir {git_dir} fast-import --quiet")
        .stdin(stream)
        .run()
        .context("git fast-import failed")?;
    // A work tree at `head`, so the tool runs where a checkout would be.
    cmd!(
        sh,
        "git -C {dir} -c advice.detachedHead=false checkout --quiet head"
    )
    .run()?;
    let mut filters = String::new();
    for k in 0..FILTERS {
        let _ = writeln!(
            filters,
            "f{k:02}:\n  - 'src/d{k:02}*/**'\n  - '**/*.f{k:02}'"
        );
    }
    fs_err::write(dir.join("filters.yml"), filters)?;
    fs_err::write(&done, "")?;
    Ok(dir)
}

/// Two commits in `git fast-import` syntax, tagged `base` and `head`.
fn fast_import_stream() -> String {
    let mut stream = String::with_capacity(8 << 20);
    let commit = |stream: &mut String, mark: usize, message: &str, parent: Option<usize>| {
        let _ = write!(
            stream,
            "commit refs/heads/main\nmark :{mark}\ncommitter Bench <bench@slipway.invalid> 1767225600 +0000\ndata {}\n{message}\n",
            message.len()
        );
        if let Some(parent) = parent {
            let _ = writeln!(stream, "from :{parent}");
        }
    };
    let file = |stream: &mut String, dir: usize, file: usize, version: &str| {
        let contents = format!("{dir}/{file} {version}\n");
        let _ = write!(
            stream,
            "M 100644 inline src/d{dir:03}/{file:03}.txt\ndata {}\n{contents}",
            contents.len()
        );
    };
    commit(&mut stream, 1, "base", None);
    for dir in 0..DIRS {
        for f in 0..FILES_PER_DIR {
            file(&mut stream, dir, f, "v1");
        }
    }
    stream.push('\n');
    commit(&mut stream, 2, "head", Some(1));
    for dir in 0..DIRS {
        for f in (0..FILES_PER_DIR).filter(|f| f % CHANGE_EVERY == 0) {
            file(&mut stream, dir, f, "v2");
        }
    }
    stream.push_str("\nreset refs/tags/base\nfrom :1\n\nreset refs/tags/head\nfrom :2\n\n");
    stream
}
