//! `changed-paths` against `git diff --name-status` alone: on a repository
//! of 50,000 files with 10,000 changed between two commits, matched against
//! 50 filters; on the shape of issue #19 (a 2-year diff of a 38,500-file
//! monorepo: 36,700 files changed across 40 language directories, 50
//! realistic filters, JSON with file lists); and its `--help` start-up
//! against a bare process spawn.
//!
//! The fixture repositories are made once with `git fast-import` under
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
    let monorepo = monorepo_fixture(sh)?;
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
    let mut ours_monorepo = ours.clone();
    ours_monorepo.dir = Some(monorepo.clone());
    let mut theirs_monorepo = theirs.clone();
    theirs_monorepo.dir = Some(monorepo);
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
            name: "changed-paths: 2-year diff, 36,700 of 38,500 files in 40 languages, 50 filters, JSON file lists".to_owned(),
            ours: ours_monorepo,
            theirs: theirs_monorepo,
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
    let mut filters = String::new();
    for k in 0..FILTERS {
        let _ = writeln!(
            filters,
            "f{k:02}:\n  - 'src/d{k:02}*/**'\n  - '**/*.f{k:02}'"
        );
    }
    cached_repository(
        sh,
        "changed-paths-50k",
        "50,000-file",
        fast_import_stream,
        &filters,
    )
}

/// A repository built once under `bench-fixtures/NAME` of the target
/// directory (a marker file says it is complete): `stream` imported with
/// `git fast-import`, a work tree at tag `head` (the tool runs where a
/// checkout would be), and `filters` in `filters.yml`.
fn cached_repository(
    sh: &Shell,
    name: &str,
    what: &str,
    stream: fn() -> String,
    filters: &str,
) -> anyhow::Result<PathBuf> {
    let dir = crate::target_dir().join("bench-fixtures").join(name);
    let done = dir.join(".fixture-complete");
    if done.exists() {
        return Ok(dir);
    }
    eprintln!(
        "xtask bench: building the {what} fixture in {}",
        dir.display()
    );
    if dir.exists() {
        fs_err::remove_dir_all(&dir)?;
    }
    fs_err::create_dir_all(&dir)?;
    let git_dir = dir.join(".git");
    cmd!(sh, "git init --quiet {dir}").run()?;
    cmd!(sh, "git --git-dir {git_dir} fast-import --quiet")
        .stdin(stream())
        .run()
        .context("git fast-import failed")?;
    cmd!(
        sh,
        "git -C {dir} -c advice.detachedHead=false checkout --quiet head"
    )
    .run()?;
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

/// The 40 language directories of the monorepo fixture, with their file
/// extension.
const LANGUAGES: [(&str, &str); 40] = [
    ("go", "go"),
    ("rust", "rs"),
    ("python", "py"),
    ("java", "java"),
    ("kotlin", "kt"),
    ("scala", "scala"),
    ("ruby", "rb"),
    ("php", "php"),
    ("js", "js"),
    ("ts", "ts"),
    ("swift", "swift"),
    ("c", "c"),
    ("cpp", "cpp"),
    ("csharp", "cs"),
    ("fsharp", "fs"),
    ("haskell", "hs"),
    ("ocaml", "ml"),
    ("elixir", "ex"),
    ("erlang", "erl"),
    ("clojure", "clj"),
    ("lua", "lua"),
    ("perl", "pl"),
    ("r", "r"),
    ("julia", "jl"),
    ("dart", "dart"),
    ("zig", "zig"),
    ("nim", "nim"),
    ("crystal", "cr"),
    ("elm", "elm"),
    ("purescript", "purs"),
    ("fortran", "f90"),
    ("cobol", "cob"),
    ("ada", "adb"),
    ("pascal", "pas"),
    ("groovy", "groovy"),
    ("vb", "vb"),
    ("matlab", "m"),
    ("solidity", "sol"),
    ("terraform", "tf"),
    ("sql", "sql"),
];
/// Modules per language and files per module: 40 × 25 × 38 = 38,000 files.
const MODULES: usize = 25;
const FILES_PER_MODULE: usize = 38;
/// Commits of the two years between `base` and `head`.
const HISTORY: usize = 100;

/// Every path of the monorepo at `base` (38,500), and whether it changes
/// by `head`: all but 2 files per module (36,000), and every file outside
/// the language directories (500); 200 more are added (36,700 in all).
fn monorepo_paths() -> (Vec<(String, bool)>, Vec<String>) {
    let mut paths = Vec::with_capacity(38_500);
    for (language, extension) in LANGUAGES {
        for module in 0..MODULES {
            for file in 0..FILES_PER_MODULE {
                let path = match file {
                    0 => format!("src/{language}/m{module:02}/Dockerfile"),
                    1..=5 => format!("src/{language}/m{module:02}/tests/t{file}.{extension}"),
                    _ => format!("src/{language}/m{module:02}/f{file:03}.{extension}"),
                };
                paths.push((path, file % 20 != 3));
            }
        }
    }
    let others = [
        ("scripts", "sh", 100),
        ("scripts/py", "py", 50),
        ("docs", "md", 200),
        (".github/workflows", "yml", 30),
        ("config", "toml", 60),
        ("build", "mk", 40),
        ("locks", "lock", 20),
    ];
    for (dir, extension, count) in others {
        for file in 0..count {
            paths.push((format!("{dir}/x{file:03}.{extension}"), true));
        }
    }
    let added = (0..200)
        .map(|file| format!("src/{}/new/n{file:03}.txt", LANGUAGES[file % 40].0))
        .collect();
    (paths, added)
}

/// The monorepo fixture: tags `base` and `head`, `HISTORY` commits apart,
/// and `filters.yml` with one filter per language, one for everything and
/// eight for scripts, CI, Docker, make, docs, config, tests and lock files.
fn monorepo_fixture(sh: &Shell) -> anyhow::Result<PathBuf> {
    let mut filters = String::new();
    for (language, _) in LANGUAGES {
        let _ = writeln!(filters, "{language}: 'src/{language}/**'");
    }
    filters.push_str(concat!(
        "all: '**'\n",
        "scripts:\n  - 'scripts/**'\n  - '**/*.sh'\n",
        "python-scripts: 'scripts/**/*.py'\n",
        "ci: '.github/**'\n",
        "docker: '**/Dockerfile*'\n",
        "make:\n  - '**/Makefile'\n  - '**/*.mk'\n",
        "docs: 'docs/**/*.md'\n",
        "config: '**/*.{yml,yaml,toml}'\n",
        "tests: '**/tests/**'\n",
        "lock: '**/*.lock'\n",
    ));
    cached_repository(
        sh,
        "changed-paths-monorepo",
        "38,500-file monorepo",
        monorepo_stream,
        &filters,
    )
}

/// `base`, then `HISTORY` commits that each change their share of the
/// files (the last one is `head`), in `git fast-import` syntax.
fn monorepo_stream() -> String {
    let (paths, added) = monorepo_paths();
    let mut stream = String::with_capacity(16 << 20);
    let commit = |stream: &mut String, mark: usize| {
        let message = format!("commit {mark}");
        let _ = write!(
            stream,
            "commit refs/heads/main\nmark :{mark}\ncommitter Bench <bench@slipway.invalid> {} +0000\ndata {}\n{message}\n",
            1_704_067_200 + mark * 631_152,
            message.len()
        );
        if mark > 1 {
            let _ = writeln!(stream, "from :{}", mark - 1);
        }
    };
    let file = |stream: &mut String, path: &str, version: usize| {
        let contents = format!("{path} v{version}\n");
        let _ = write!(
            stream,
            "M 100644 inline {path}\ndata {}\n{contents}",
            contents.len()
        );
    };
    commit(&mut stream, 1);
    for (path, _) in &paths {
        file(&mut stream, path, 1);
    }
    stream.push('\n');
    let changing: Vec<&str> = paths
        .iter()
        .filter(|(_, changes)| *changes)
        .map(|(path, _)| path.as_str())
        .collect();
    for step in 0..HISTORY {
        commit(&mut stream, step + 2);
        for (index, path) in changing.iter().enumerate() {
            if index % HISTORY == step {
                file(&mut stream, path, step + 2);
            }
        }
        for (index, path) in added.iter().enumerate() {
            if index % HISTORY == step {
                file(&mut stream, path, step + 2);
            }
        }
        stream.push('\n');
    }
    let _ = write!(
        stream,
        "reset refs/tags/base\nfrom :1\n\nreset refs/tags/head\nfrom :{}\n\n",
        HISTORY + 1
    );
    stream
}
