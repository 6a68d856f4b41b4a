//! Git history fixtures, built with the real `git` CLI, never fetched.
//!
//! A [`GitRepo`] is a fresh repository in its own temp dir (removed on drop),
//! on branch `main`, with a local author and committer. Every commit, merge
//! and annotated tag gets its own fixed, increasing date
//! (2026-01-01T00:00:00Z plus one minute per commit), so the same script of
//! calls yields the same shas on every machine.
//!
//! The user's configuration can't change results: `git` runs with
//! `GIT_CONFIG_NOSYSTEM=1`, `GIT_CONFIG_GLOBAL=/dev/null` and without any
//! inherited `GIT_DIR`-style variables (a test run from a git hook would
//! otherwise act on the outer repository).
//!
//! ```no_run
//! let repo = slipway_testbed::git::GitRepo::new();
//! repo.write("app/main.rs", "fn main() {}\n");
//! let first = repo.commit("feat: first");
//! repo.tag("v1.0.0");
//! assert_eq!(repo.head(), first);
//! ```
//!
//! Every method panics with the failing command and its stderr: this is test
//! support, and a broken fixture is a bug in the test.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

/// 2026-01-01T00:00:00Z as seconds since the Unix epoch: the first fixture date.
const EPOCH: u64 = 1_767_225_600;

/// Environment variables that point `git` at another repository or config;
/// removed from every `git` this module runs.
const INHERITED_GIT_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "XDG_CONFIG_HOME",
];

/// The author and committer name of every fixture commit.
pub const AUTHOR_NAME: &str = "Slipway Test";

/// The author and committer email of every fixture commit.
pub const AUTHOR_EMAIL: &str = "test@slipway.invalid";

/// A git repository in a temp dir, removed when dropped.
#[derive(Debug)]
pub struct GitRepo {
    /// Removes the repository when dropped.
    _dir: tempfile::TempDir,
    /// The directory git works in: the work tree, or the git dir of a bare clone.
    root: PathBuf,
    /// Minutes after [`EPOCH`] of the last date handed out.
    clock: Cell<u64>,
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl GitRepo {
    /// `git init` on branch `main` in a new temp dir, with a local author.
    pub fn new() -> Self {
        let dir = temp_dir();
        let root = dir.path().join("repo");
        run_git(dir.path(), 0, &["init", "--quiet", "repo"]);
        let repo = Self::at(dir, root, 0);
        repo.configure();
        repo
    }

    /// Wraps an existing directory; `clock` continues from the source's dates.
    fn at(dir: tempfile::TempDir, root: PathBuf, clock: u64) -> Self {
        Self {
            _dir: dir,
            root,
            clock: Cell::new(clock),
        }
    }

    /// Local settings that make commits work and stay reproducible.
    fn configure(&self) {
        for (key, value) in [
            ("user.name", AUTHOR_NAME),
            ("user.email", AUTHOR_EMAIL),
            ("commit.gpgsign", "false"),
            ("tag.gpgsign", "false"),
            ("core.autocrlf", "false"),
        ] {
            self.git(&["config", "--local", key, value]);
        }
    }

    /// The work tree (for a [`GitRepo::bare_clone`], the bare repository).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes `contents` to `path` (relative to the work tree), creating
    /// parent directories. Not staged until [`GitRepo::commit`].
    pub fn write(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
        let path = self.root.join(path);
        create_parent(&path);
        fs_err::write(&path, contents).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Removes the file at `path` (relative to the work tree).
    pub fn remove(&self, path: impl AsRef<Path>) {
        fs_err::remove_file(self.root.join(path)).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Renames `from` to `to` (both relative to the work tree), creating
    /// parent directories of `to`.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) {
        let to = self.root.join(to);
        create_parent(&to);
        fs_err::rename(self.root.join(from), to).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stages everything (`git add -A`) and commits it, even if nothing
    /// changed; returns the new commit's full sha.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.tick();
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    /// Runs `git args` in the repository and returns its stdout without the
    /// trailing newline; panics with stderr if git fails.
    pub fn git(&self, args: &[&str]) -> String {
        run_git(&self.root, self.clock.get(), args)
    }

    /// Creates `branch` at HEAD and switches to it.
    pub fn checkout_new(&self, branch: &str) {
        self.git(&["checkout", "--quiet", "-b", branch]);
    }

    /// Switches to `rev`: a branch name, or anything else for a detached HEAD.
    pub fn checkout(&self, rev: &str) {
        self.git(&[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            rev,
        ]);
    }

    /// Merges `branch` into the current branch with a merge commit (even if
    /// a fast-forward were possible); returns the merge commit's sha.
    pub fn merge(&self, branch: &str, message: &str) -> String {
        self.tick();
        self.git(&["merge", "--quiet", "--no-ff", "-m", message, branch]);
        self.head()
    }

    /// A lightweight tag `name` at HEAD.
    pub fn tag(&self, name: &str) {
        self.git(&["tag", name]);
    }

    /// An annotated tag `name` at HEAD with `message`.
    pub fn tag_annotated(&self, name: &str, message: &str) {
        self.tick();
        self.git(&["tag", "-a", name, "-m", message]);
    }

    /// The full sha of HEAD.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// A `git clone --depth depth` of this repository through `file://` (a
    /// plain path would ignore `--depth`), in its own temp dir.
    pub fn clone_shallow(&self, depth: u32) -> GitRepo {
        let url = format!("file://{}", self.root.display());
        self.clone_with(&["--depth", &depth.to_string(), &url])
    }

    /// A `git clone --bare` of this repository in its own temp dir, to push
    /// to or use as a remote; its [`GitRepo::path`] is the bare repository.
    pub fn bare_clone(&self) -> GitRepo {
        let source = self.root.display().to_string();
        self.clone_with(&["--bare", &source])
    }

    /// `git clone --quiet <args> repo` in a new temp dir.
    fn clone_with(&self, args: &[&str]) -> GitRepo {
        let dir = temp_dir();
        let mut clone_args = vec!["clone", "--quiet"];
        clone_args.extend_from_slice(args);
        clone_args.push("repo");
        run_git(dir.path(), self.clock.get(), &clone_args);
        let root = dir.path().join("repo");
        let clone = Self::at(dir, root, self.clock.get());
        clone.configure();
        clone
    }

    /// Advances the clock by one minute, for the next dated object.
    fn tick(&self) {
        self.clock.set(self.clock.get() + 1);
    }
}

/// Runs `git args` in `dir` with dates `minutes` after [`EPOCH`] and a
/// configuration that ignores the user's; panics with stderr on failure.
fn run_git(dir: &Path, minutes: u64, args: &[&str]) -> String {
    let git = super::require("git", "git");
    let date = format!("{} +0000", EPOCH + minutes * 60);
    let mut command = Command::new(git);
    command
        .current_dir(dir)
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    for variable in INHERITED_GIT_VARIABLES {
        command.env_remove(variable);
    }
    let output = super::run(&mut command, &|| format!("in `{}`", dir.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.trim_end_matches('\n').to_owned()
}

/// Creates the parent directories of `path`.
fn create_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A new temp dir for one repository.
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("slipway-git")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(repo: &GitRepo, args: &[&str], expected: &str) {
        assert_eq!(repo.git(args), expected, "git {}", args.join(" "));
    }

    /// The same script of calls, run twice, gives the same shas.
    fn scripted() -> GitRepo {
        let repo = GitRepo::new();
        repo.write("a.txt", "a\n");
        repo.commit("first");
        repo.checkout_new("feature");
        repo.write("dir/b.txt", "b\n");
        repo.commit("second");
        repo.checkout("main");
        repo.merge("feature", "merge feature");
        repo.tag_annotated("v1.0.0", "release 1.0.0");
        repo
    }

    #[test]
    fn histories_are_reproducible() {
        let (one, two) = (scripted(), scripted());
        assert_eq!(one.head(), two.head());
        assert_ne!(one.path(), two.path());
        assert_eq!(
            one.git(&["rev-parse", "v1.0.0"]),
            two.git(&["rev-parse", "v1.0.0"])
        );
    }

    #[test]
    fn dates_authors_and_branch_are_fixed() {
        let repo = scripted();
        check(&repo, &["branch", "--show-current"], "main");
        check(
            &repo,
            &["log", "--format=%an <%ae> %aI %cI %s"],
            "Slipway Test <test@slipway.invalid> 2026-01-01T00:03:00Z 2026-01-01T00:03:00Z merge feature\n\
             Slipway Test <test@slipway.invalid> 2026-01-01T00:02:00Z 2026-01-01T00:02:00Z second\n\
             Slipway Test <test@slipway.invalid> 2026-01-01T00:01:00Z 2026-01-01T00:01:00Z first",
        );
        check(
            &repo,
            &[
                "for-each-ref",
                "--format=%(objecttype) %(taggerdate:iso-strict)",
                "refs/tags",
            ],
            "tag 2026-01-01T00:04:00Z",
        );
    }

    #[test]
    fn files_are_written_removed_and_renamed() {
        let repo = GitRepo::new();
        repo.write("a/b.txt", "b\n");
        repo.write("c.txt", "c\n");
        repo.commit("add");
        repo.rename("a/b.txt", "d/e.txt");
        repo.remove("c.txt");
        repo.commit("move and remove");
        check(&repo, &["ls-files"], "d/e.txt");
        check(
            &repo,
            &["diff", "--name-status", "--no-renames", "HEAD~1", "HEAD"],
            "D\ta/b.txt\nD\tc.txt\nA\td/e.txt",
        );
    }

    #[test]
    fn detached_checkout_and_lightweight_tag() {
        let repo = GitRepo::new();
        let first = repo.commit("first");
        repo.commit("second");
        repo.checkout(&first);
        repo.tag("v0.1.0");
        check(&repo, &["branch", "--show-current"], "");
        check(&repo, &["cat-file", "-t", "v0.1.0"], "commit");
        assert_eq!(repo.head(), first);
    }

    #[test]
    fn shallow_and_bare_clones() {
        let repo = GitRepo::new();
        for n in 0..4 {
            repo.commit(&format!("commit {n}"));
        }
        let shallow = repo.clone_shallow(2);
        check(&shallow, &["rev-parse", "--is-shallow-repository"], "true");
        check(&shallow, &["rev-list", "--count", "HEAD"], "2");
        assert_eq!(shallow.head(), repo.head());
        let after_clone = shallow.commit("in clone");
        assert_ne!(after_clone, repo.head());

        let bare = repo.bare_clone();
        check(&bare, &["rev-parse", "--is-bare-repository"], "true");
        check(&bare, &["rev-parse", "main"], &repo.head());
    }

    #[test]
    fn failures_name_the_command_and_stderr() {
        let repo = GitRepo::new();
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            repo.git(&["rev-parse", "--verify", "nope"])
        }))
        .expect_err("rev-parse of a missing rev fails");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("\"rev-parse\" \"--verify\" \"nope\""),
            "{message}"
        );
        assert!(
            message.contains("fatal: Needed a single revision"),
            "{message}"
        );
    }
}
