//! Facts about a git repository, read through git2: HEAD, branch, tags,
//! dirtiness, revisions, merge bases, history between two commits. The
//! crate's other modules build on them: [`changes`] (which files changed)
//! and [`paths`] (the filters that map changed files to targets).
//!
//! This module only reads; it never fetches, commits or moves refs. git2 is
//! blocking: async callers run it in `tokio::task::spawn_blocking` (a
//! [`Repo`] is `Send` but not `Sync`, so open it inside the closure).
//!
//! Every [`GitError`] names the repository and the revision or operation.
//! In a shallow clone (the default of `actions/checkout`), a revision that
//! cannot be found may simply be older than the fetched history, so those
//! errors say how to fetch more.

pub mod changes;
pub mod paths;

pub use slipway_contract::{InvalidSha, Sha};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a git operation failed, naming the repository and what was asked.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// No repository was found in `start` or any directory above it.
    #[error(
        "`{}` is not inside a git repository (searched upwards from `{}`)",
        .start.display(),
        .start.display()
    )]
    NotARepository {
        /// The directory the search started from.
        start: PathBuf,
    },
    /// A repository exists (or was asked for) at `path` but cannot be opened.
    #[error("cannot open the git repository at `{}`", .path.display())]
    Open {
        /// The path that was opened.
        path: PathBuf,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
    /// HEAD points at a branch without commits (a fresh `git init`).
    #[error("repository `{}` has no commits yet (HEAD is unborn)", .repo.display())]
    UnbornHead {
        /// The repository's work tree (or git dir, when bare).
        repo: PathBuf,
    },
    /// A revision does not name a commit in this repository.
    #[error(
        "cannot resolve `{rev}` in repository `{}`: {reason}{}",
        .repo.display(),
        shallow_hint(.shallow)
    )]
    Resolve {
        /// The repository's work tree (or git dir, when bare).
        repo: PathBuf,
        /// The revision as given (`HEAD~2`, a branch, a tag, a sha).
        rev: String,
        /// Why, e.g. `no such revision`.
        reason: String,
        /// Whether the repository is a shallow clone (the message then says
        /// how to fetch more history).
        shallow: bool,
    },
    /// Two commits share no history.
    #[error(
        "`{a}` and `{b}` have no common ancestor in repository `{}`{}",
        .repo.display(),
        shallow_hint(.shallow)
    )]
    NoMergeBase {
        /// The repository's work tree (or git dir, when bare).
        repo: PathBuf,
        /// The first commit.
        a: Sha,
        /// The second commit.
        b: Sha,
        /// Whether the repository is a shallow clone.
        shallow: bool,
    },
    /// A walk through history reached the edge of a shallow clone, so its
    /// answer (a version, a changelog, the commits since a revision) would
    /// be silently wrong.
    #[error(
        "cannot {what}: repository `{}` is a shallow clone and the history it needs is not \
         fetched; fetch it with `git fetch --unshallow` (or `--deepen=<n>`), or set \
         `fetch-depth: 0` on `actions/checkout`",
        .repo.display()
    )]
    ShallowHistory {
        /// The repository's work tree (or git dir, when bare).
        repo: PathBuf,
        /// What needed the history, e.g. `find the last release tag`.
        what: String,
    },
    /// A string that should be a full commit sha is not one.
    #[error("`{value}` is not a full commit sha: expected 40 hexadecimal digits")]
    InvalidSha {
        /// The rejected value.
        value: String,
    },
    /// Any other failure of git2 while reading the repository.
    #[error("cannot {operation} in repository `{}`", .repo.display())]
    Operation {
        /// The repository's work tree (or git dir, when bare).
        repo: PathBuf,
        /// What was being done, e.g. `read the working tree status`.
        operation: &'static str,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
}

slipway_core::cli::exit_status!(GitError => FAILURE);

/// The end of an error message about a missing revision in a shallow clone.
fn shallow_hint(shallow: &bool) -> &'static str {
    if *shallow {
        "; the repository is a shallow clone, so the commit may be older than its \
         fetched history: fetch more with `git fetch --deepen=<n>` or `git fetch \
         --unshallow`, or set `fetch-depth: 0` on `actions/checkout`"
    } else {
        ""
    }
}

/// A [`Sha`] as git2 reads it: the sha is a contract type (serde only), so
/// its conversions from and to git2's object ids live here.
pub trait OidSha {
    /// The sha of a git2 object id.
    fn from_oid(oid: git2::Oid) -> Self;
    /// The git2 object id of this sha.
    fn oid(&self) -> git2::Oid;
}

impl OidSha for Sha {
    fn from_oid(oid: git2::Oid) -> Self {
        // An oid prints as 40 lowercase hex digits, which is always a valid sha.
        Sha::try_from(oid.to_string()).expect("a git2 oid is 40 hex digits")
    }

    fn oid(&self) -> git2::Oid {
        // A `Sha` holds 40 hex digits by construction, which is always a valid oid.
        git2::Oid::from_str(self.as_str()).expect("a `Sha` is 40 hex digits")
    }
}

impl From<InvalidSha> for GitError {
    fn from(error: InvalidSha) -> Self {
        GitError::InvalidSha { value: error.value }
    }
}

/// One commit of [`Repo::commits_between`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitInfo {
    /// The commit's sha.
    pub sha: Sha,
    /// The first line of the message.
    pub summary: String,
    /// The whole message (for conventional-commit footers such as
    /// `BREAKING CHANGE:`).
    pub message: String,
    /// The author's name.
    pub author: String,
    /// The commit (committer) time, in seconds since the Unix epoch.
    pub time: i64,
}

/// The facts about HEAD that tags, labels and reports are made of.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GitFacts {
    /// HEAD's commit.
    pub sha: Sha,
    /// The first seven hex digits of `sha`.
    pub short_sha: String,
    /// The checked-out branch; `None` when HEAD is detached (as in most CI
    /// checkouts of a pull request).
    pub branch: Option<String>,
    /// Tags pointing at HEAD, lightweight and annotated, sorted.
    pub tags_at_head: Vec<String>,
    /// Whether the work tree differs from HEAD (see [`Repo::is_dirty`]).
    pub is_dirty: bool,
    /// HEAD's commit (committer) time, in seconds since the Unix epoch.
    pub commit_time: i64,
}

impl GitFacts {
    /// Reads all facts about HEAD from `repo`.
    pub fn collect(repo: &Repo) -> Result<GitFacts, GitError> {
        let head = repo.head_commit()?;
        let sha = Sha::from_oid(head.id());
        Ok(GitFacts {
            short_sha: sha.short().to_owned(),
            sha,
            branch: repo.branch(),
            tags_at_head: repo.tags_at_head()?,
            is_dirty: repo.is_dirty()?,
            commit_time: head.time().seconds(),
        })
    }
}

/// Detects a history walk that reaches the edge of a shallow clone: the
/// commits listed in its `shallow` file have parents git did not fetch, so a
/// walk that yields one of them may have stopped early and its answer (the
/// last version tag, the commits since a revision, a changelog) would be
/// silently wrong. Every walk of history in Slipway checks each commit it
/// yields with [`HistoryGuard::check`]. In a full clone it checks nothing.
#[derive(Debug, Clone)]
pub struct HistoryGuard {
    repo: PathBuf,
    boundary: HashSet<git2::Oid>,
}

impl HistoryGuard {
    /// The guard for `repo` (its `shallow` file, read once).
    pub fn of(repo: &git2::Repository) -> HistoryGuard {
        let path = repo.workdir().unwrap_or_else(|| repo.path()).to_owned();
        let mut boundary = HashSet::new();
        if repo.is_shallow() {
            let file = repo.commondir().join("shallow");
            // In a linked worktree the list lives in the common git dir.
            if let Ok(text) = slipway_core::input::read_to_string(&file) {
                boundary.extend(
                    text.lines()
                        .filter_map(|l| git2::Oid::from_str(l.trim()).ok()),
                );
            }
        }
        HistoryGuard {
            repo: path,
            boundary,
        }
    }

    /// Whether the repository is a shallow clone.
    pub fn is_shallow(&self) -> bool {
        !self.boundary.is_empty()
    }

    /// Fails with [`GitError::ShallowHistory`], naming `what` needed the
    /// history, when `commit` is at the edge of a shallow clone.
    pub fn check(&self, commit: git2::Oid, what: impl FnOnce() -> String) -> Result<(), GitError> {
        if self.boundary.contains(&commit) {
            return Err(GitError::ShallowHistory {
                repo: self.repo.clone(),
                what: what(),
            });
        }
        Ok(())
    }

    /// The same refusal without a walk, for a command that needs history it
    /// cannot find (no parent of HEAD) in a shallow clone.
    pub fn refuse(&self, what: impl Into<String>) -> GitError {
        GitError::ShallowHistory {
            repo: self.repo.clone(),
            what: what.into(),
        }
    }
}

/// The one walk of a commit range: calls `each` with every commit reachable
/// from `head` and not from `base`, newest first (as `git log --date-order
/// base..head`), and refuses with [`GitError::ShallowHistory`], naming
/// `what` needed the history, when the walk reaches the edge of a shallow
/// clone ([`HistoryGuard`]). `git_error` says what a failure of git2 during
/// the walk means to the caller.
pub fn walk_range<E: From<GitError>>(
    repo: &git2::Repository,
    base: &Sha,
    head: &Sha,
    what: impl Fn() -> String,
    git_error: impl Fn(git2::Error) -> E,
    mut each: impl FnMut(git2::Oid) -> Result<(), E>,
) -> Result<(), E> {
    let mut walk = repo.revwalk().map_err(&git_error)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
        .map_err(&git_error)?;
    walk.push(head.oid()).map_err(&git_error)?;
    walk.hide(base.oid()).map_err(&git_error)?;
    let guard = HistoryGuard::of(repo);
    for oid in walk {
        let oid = oid.map_err(&git_error)?;
        guard.check(oid, &what)?;
        each(oid)?;
    }
    Ok(())
}

/// An open git repository.
pub struct Repo {
    inner: git2::Repository,
    /// The work tree, or the git dir of a bare repository; named in errors.
    path: PathBuf,
}

impl fmt::Debug for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repo").field("path", &self.path).finish()
    }
}

impl Repo {
    /// The repository containing `start`, searching `start` and then each
    /// directory above it, as `git` does.
    pub fn discover(start: &Path) -> Result<Repo, GitError> {
        match git2::Repository::discover(start) {
            Ok(inner) => Ok(Self::wrap(inner)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Err(GitError::NotARepository {
                start: start.to_owned(),
            }),
            Err(source) => Err(GitError::Open {
                path: start.to_owned(),
                source,
            }),
        }
    }

    /// The repository at exactly `path` (a work tree, or a bare repository).
    pub fn open(path: &Path) -> Result<Repo, GitError> {
        git2::Repository::open(path)
            .map(Self::wrap)
            .map_err(|source| GitError::Open {
                path: path.to_owned(),
                source,
            })
    }

    fn wrap(inner: git2::Repository) -> Repo {
        // `components` drops the trailing `/` git2 puts on these paths.
        let path = inner
            .workdir()
            .unwrap_or_else(|| inner.path())
            .components()
            .collect();
        Repo { inner, path }
    }

    /// The work tree's root, or the repository itself when it is bare.
    pub fn workdir(&self) -> &Path {
        &self.path
    }

    /// The git directory (`.git` of a work tree).
    pub fn git_dir(&self) -> &Path {
        self.inner.path()
    }

    /// The opened git2 repository, for a module that walks it further
    /// (`changes::Differ`) without opening it again.
    pub fn into_git2(self) -> git2::Repository {
        self.inner
    }

    /// HEAD's commit.
    pub fn head_sha(&self) -> Result<Sha, GitError> {
        Ok(Sha::from_oid(self.head_commit()?.id()))
    }

    fn head_commit(&self) -> Result<git2::Commit<'_>, GitError> {
        let head = self.inner.head().map_err(|source| match source.code() {
            git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound => GitError::UnbornHead {
                repo: self.path.clone(),
            },
            _ => self.operation("read HEAD", source),
        })?;
        head.peel_to_commit()
            .map_err(|source| self.operation("read HEAD's commit", source))
    }

    /// The checked-out branch's short name; `None` when HEAD is detached.
    /// A branch without commits yet (after `git init`) still has its name.
    pub fn branch(&self) -> Option<String> {
        let head = self.inner.find_reference("HEAD").ok()?;
        let target = head.symbolic_target().ok()??;
        target.strip_prefix("refs/heads/").map(str::to_owned)
    }

    /// The tags pointing at HEAD's commit, lightweight and annotated, sorted.
    pub fn tags_at_head(&self) -> Result<Vec<String>, GitError> {
        let head = self.head_commit()?.id();
        let mut tags: Vec<String> = self
            .tags()?
            .into_iter()
            .filter(|(_, commit)| *commit == head)
            .map(|(name, _)| name)
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// The short names of the branches (local, and remote-tracking ones as
    /// `origin/x`) and tags, sorted: what a mistyped revision may have meant.
    pub fn ref_names(&self) -> Vec<String> {
        let Ok(references) = self.inner.references() else {
            return Vec::new();
        };
        let mut names: Vec<String> = references
            .flatten()
            .filter_map(|reference| {
                let name = reference.name().ok()?;
                ["refs/heads/", "refs/remotes/", "refs/tags/"]
                    .iter()
                    .find_map(|prefix| name.strip_prefix(prefix))
                    .filter(|short| !short.ends_with("/HEAD"))
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Every tag that names a commit, with that commit (annotated tags peeled).
    fn tags(&self) -> Result<Vec<(String, git2::Oid)>, GitError> {
        let references = self
            .inner
            .references_glob("refs/tags/*")
            .map_err(|source| self.operation("list tags", source))?;
        let mut tags = Vec::new();
        for reference in references {
            let reference = reference.map_err(|source| self.operation("list tags", source))?;
            let Some(name) = reference
                .name()
                .ok()
                .and_then(|name| name.strip_prefix("refs/tags/"))
            else {
                continue;
            };
            // A tag may name a tree or a blob (rare, but legal): not a version of anything.
            if let Ok(commit) = reference.peel_to_commit() {
                tags.push((name.to_owned(), commit.id()));
            }
        }
        Ok(tags)
    }

    /// Whether the work tree differs from HEAD: modified tracked files,
    /// staged changes, or untracked files that are not ignored. Files
    /// matched by `.gitignore` alone leave it clean. A bare repository is
    /// never dirty.
    pub fn is_dirty(&self) -> Result<bool, GitError> {
        if self.inner.is_bare() {
            return Ok(false);
        }
        let mut options = git2::StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(false)
            .include_ignored(false)
            .include_unmodified(false);
        let statuses = self
            .inner
            .statuses(Some(&mut options))
            .map_err(|source| self.operation("read the working tree status", source))?;
        Ok(statuses.iter().any(|entry| {
            let status = entry.status();
            !status.is_empty() && !status.contains(git2::Status::IGNORED)
        }))
    }

    /// The commit `rev` names: any revision git understands (`HEAD~2`, a
    /// branch, a tag, a full or short sha, `origin/main`).
    pub fn resolve(&self, rev: &str) -> Result<Sha, GitError> {
        let object = self
            .inner
            .revparse_single(rev)
            .map_err(|e| self.resolve_error(rev, &e))?;
        let commit = object.peel_to_commit().map_err(|_| GitError::Resolve {
            repo: self.path.clone(),
            rev: rev.to_owned(),
            reason: format!(
                "it names a {}, not a commit",
                object.kind().map_or("non-commit object", |kind| kind.str())
            ),
            shallow: false,
        })?;
        Ok(Sha::from_oid(commit.id()))
    }

    /// The error for a revision git2 could not find or parse.
    fn resolve_error(&self, rev: &str, error: &git2::Error) -> GitError {
        let (reason, missing) = match error.code() {
            git2::ErrorCode::NotFound => ("no such revision".to_owned(), true),
            git2::ErrorCode::Ambiguous => (
                "it is ambiguous: give more hex digits or a full sha".to_owned(),
                false,
            ),
            git2::ErrorCode::InvalidSpec => ("not a valid revision".to_owned(), false),
            _ => (error.message().to_owned(), false),
        };
        GitError::Resolve {
            repo: self.path.clone(),
            rev: rev.to_owned(),
            reason,
            shallow: missing && self.is_shallow(),
        }
    }

    /// The commit `sha` names, or an error saying it is not in the repository.
    fn find_commit(&self, sha: &Sha) -> Result<git2::Commit<'_>, GitError> {
        self.inner
            .find_commit(sha.oid())
            .map_err(|e| self.resolve_error(sha.as_str(), &e))
    }

    /// The best common ancestor of `a` and `b`, as `git merge-base a b`.
    pub fn merge_base(&self, a: &Sha, b: &Sha) -> Result<Sha, GitError> {
        self.find_commit(a)?;
        self.find_commit(b)?;
        match self.inner.merge_base(a.oid(), b.oid()) {
            Ok(oid) => Ok(Sha::from_oid(oid)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Err(GitError::NoMergeBase {
                repo: self.path.clone(),
                a: a.clone(),
                b: b.clone(),
                shallow: self.is_shallow(),
            }),
            Err(source) => Err(self.operation("compute a merge base", source)),
        }
    }

    /// The commits reachable from `head` but not from `base`, newest first,
    /// as `git log --date-order base..head`.
    pub fn commits_between(&self, base: &Sha, head: &Sha) -> Result<Vec<CommitInfo>, GitError> {
        self.find_commit(base)?;
        self.find_commit(head)?;
        let mut commits = Vec::new();
        walk_range(
            &self.inner,
            base,
            head,
            || {
                format!(
                    "list the commits between `{}` and `{}`",
                    base.short(),
                    head.short()
                )
            },
            |source| self.operation("walk the history", source),
            |oid| {
                let commit = self
                    .inner
                    .find_commit(oid)
                    .map_err(|source| self.operation("read a commit", source))?;
                commits.push(CommitInfo {
                    sha: Sha::from_oid(commit.id()),
                    summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                        .into_owned(),
                    message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
                    author: String::from_utf8_lossy(commit.author().name_bytes()).into_owned(),
                    time: commit.time().seconds(),
                });
                Ok(())
            },
        )?;
        Ok(commits)
    }

    /// Whether the repository is a shallow clone (`git clone --depth`).
    pub fn is_shallow(&self) -> bool {
        self.inner.is_shallow()
    }

    /// The guard every history walk of this repository goes through (see
    /// [`HistoryGuard`]).
    pub fn history_guard(&self) -> HistoryGuard {
        HistoryGuard::of(&self.inner)
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors, as
    /// `git merge-base --is-ancestor`.
    pub fn is_ancestor(&self, ancestor: &Sha, descendant: &Sha) -> Result<bool, GitError> {
        if ancestor == descendant {
            self.find_commit(ancestor)?;
            return Ok(true);
        }
        self.find_commit(ancestor)?;
        self.find_commit(descendant)?;
        self.inner
            .graph_descendant_of(descendant.oid(), ancestor.oid())
            .map_err(|source| self.operation("compare two commits' history", source))
    }

    /// The branch the project probably releases from: the target of
    /// `origin/HEAD` (set by `git clone`), else `main` or `master` if such a
    /// branch exists locally or on `origin`.
    pub fn default_branch_guess(&self) -> Option<String> {
        let from_origin = self
            .inner
            .find_reference("refs/remotes/origin/HEAD")
            .ok()
            .and_then(|head| {
                head.symbolic_target()
                    .ok()
                    .flatten()
                    .and_then(|target| target.strip_prefix("refs/remotes/origin/"))
                    .map(str::to_owned)
            });
        from_origin.or_else(|| {
            ["main", "master"]
                .into_iter()
                .find(|name| {
                    [
                        format!("refs/heads/{name}"),
                        format!("refs/remotes/origin/{name}"),
                    ]
                    .iter()
                    .any(|reference| self.inner.find_reference(reference).is_ok())
                })
                .map(str::to_owned)
        })
    }

    /// The highest semver tag (`1.2.3` or `v1.2.3`, pre-releases included,
    /// ordered by semver precedence) on a commit reachable from
    /// `reachable_from`: its version, the tag's name and its commit. Tags
    /// that are not semver are ignored; `None` when there is none.
    ///
    /// When two tags carry the same version (`v1.0.0` and `1.0.0`), the one
    /// whose name sorts first wins.
    pub fn latest_semver_tag(
        &self,
        reachable_from: &Sha,
    ) -> Result<Option<(semver::Version, String, Sha)>, GitError> {
        let mut by_commit: HashMap<git2::Oid, Vec<(semver::Version, String)>> = HashMap::new();
        for (name, commit) in self.tags()? {
            let bare = name.strip_prefix('v').unwrap_or(&name);
            if let Ok(version) = semver::Version::parse(bare) {
                by_commit.entry(commit).or_default().push((version, name));
            }
        }
        if by_commit.is_empty() {
            return Ok(None);
        }
        self.find_commit(reachable_from)?;
        let walk_error = |source| self.operation("walk the history", source);
        let mut walk = self.inner.revwalk().map_err(walk_error)?;
        walk.push(reachable_from.oid()).map_err(walk_error)?;
        let guard = self.history_guard();
        let mut reachable = HashSet::new();
        for oid in walk {
            let oid = oid.map_err(walk_error)?;
            guard.check(oid, || "find the last version tag".to_owned())?;
            reachable.insert(oid);
        }
        let best = by_commit
            .into_iter()
            .filter(|(commit, _)| reachable.contains(commit))
            .flat_map(|(commit, tags)| {
                tags.into_iter()
                    .map(move |(version, name)| (version, name, commit))
            })
            // Highest version first; for equal versions, the smaller name.
            .min_by(|(va, na, _), (vb, nb, _)| vb.cmp(va).then_with(|| na.cmp(nb)));
        Ok(best.map(|(version, name, commit)| (version, name, Sha::from_oid(commit))))
    }

    fn operation(&self, operation: &'static str, source: git2::Error) -> GitError {
        GitError::Operation {
            repo: self.path.clone(),
            operation,
            source,
        }
    }
}

/// What slipway-git's errors say: their exit codes ([`classify`]) and the
/// places in files they name ([`locate`]). A tool that uses this crate
/// passes it to [`slipway_core::cli::finish`].
pub const ERRORS: slipway_core::cli::ErrorKinds =
    slipway_core::cli::ErrorKinds { classify, locate };

/// The place in a file a cause names, for a CI annotation: a filters file
/// that is not valid YAML (line and column), a `.dockerignore` line, a line
/// of a `--files-from` list. Only a name that is a file counts (not `stdin`
/// or an inline `--filters` text).
pub fn locate(
    cause: &(dyn std::error::Error + 'static),
) -> Option<slipway_core::output::AnnotationLocation> {
    use crate::changes::ChangesError;
    use crate::paths::PathsError;
    let at = |file: &str, line: usize, column: Option<usize>| {
        std::path::Path::new(file)
            .is_file()
            .then(|| slipway_core::output::AnnotationLocation {
                file: std::path::PathBuf::from(file),
                line,
                column,
            })
    };
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
}

/// The exit code `cause` says if it is one of slipway-git's errors: a tool that
/// uses this crate passes it to [`slipway_core::cli::finish`]. It asks the
/// `classify` of the Slipway crates this one wraps errors of as well.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    [
        slipway_core::cli::code::<GitError>,
        slipway_core::cli::code::<changes::ChangesError>,
        slipway_core::cli::code::<paths::PathsError>,
        slipway_core::cli::code::<paths::project::ProjectFiltersError>,
        slipway_config::classify,
    ]
    .iter()
    .find_map(|code| code(cause))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_testbed::git::GitRepo;

    /// Asks `repo` for one fact, rendered as a string (errors as `error: …`
    /// with the repository path as `[REPO]`). Revisions in `query` are
    /// resolved by the `git` CLI, the independent oracle.
    fn ask(fixture: &GitRepo, query: &str) -> String {
        let repo = Repo::open(fixture.path()).expect("fixture opens");
        let oracle = |rev: &str| -> Sha {
            fixture
                .git(&["rev-parse", &format!("{rev}^{{commit}}")])
                .parse()
                .expect("40 hex")
        };
        let words: Vec<&str> = query.split(' ').collect();
        let rendered: Result<String, GitError> = match words.as_slice() {
            ["head"] => repo.head_sha().map(|sha| sha.to_string()),
            ["short"] => repo.head_sha().map(|sha| sha.short().to_owned()),
            ["branch"] => Ok(repo.branch().unwrap_or_else(|| "(detached)".to_owned())),
            ["tags"] => repo.tags_at_head().map(|tags| tags.join(",")),
            ["dirty"] => repo.is_dirty().map(|dirty| dirty.to_string()),
            ["shallow"] => Ok(repo.is_shallow().to_string()),
            ["resolve", rev] => repo.resolve(rev).map(|sha| sha.to_string()),
            ["merge-base", a, b] => repo
                .merge_base(&oracle(a), &oracle(b))
                .map(|sha| sha.to_string()),
            ["ancestor", a, b] => repo
                .is_ancestor(&oracle(a), &oracle(b))
                .map(|is| is.to_string()),
            ["log", base, head] => {
                repo.commits_between(&oracle(base), &oracle(head))
                    .map(|commits| {
                        let lines: Vec<String> = commits
                            .iter()
                            .map(|c| {
                                format!("{} {} {} {}", c.sha.short(), c.summary, c.author, c.time)
                            })
                            .collect();
                        lines.join("\n")
                    })
            }
            ["default-branch"] => Ok(repo
                .default_branch_guess()
                .unwrap_or_else(|| "(none)".to_owned())),
            ["latest-semver", rev] => {
                repo.latest_semver_tag(&oracle(rev))
                    .map(|found| match found {
                        Some((version, name, sha)) => format!("{version} {name} {}", sha.short()),
                        None => "(none)".to_owned(),
                    })
            }
            _ => panic!("unknown query `{query}`"),
        };
        match rendered {
            Ok(value) => value,
            Err(e) => {
                format!("error: {e}").replace(&fixture.path().display().to_string(), "[REPO]")
            }
        }
    }

    #[track_caller]
    fn check(fixture: &GitRepo, query: &str, expected: &str) {
        assert_eq!(ask(fixture, query), expected, "`{query}`");
    }

    /// `git rev-parse` of `rev` in `fixture`, and its first seven digits.
    fn sha(fixture: &GitRepo, rev: &str) -> String {
        fixture.git(&["rev-parse", &format!("{rev}^{{commit}}")])
    }

    fn short(fixture: &GitRepo, rev: &str) -> String {
        fixture.git(&["rev-parse", "--short=7", rev])
    }

    /// main: first - second - merge(feature: on-feature) - after-merge,
    /// with `*.log` ignored and `a.txt` tracked.
    fn history() -> GitRepo {
        let repo = GitRepo::new();
        repo.write(".gitignore", "*.log\n");
        repo.write("a.txt", "a\n");
        repo.commit("first");
        repo.commit("second");
        repo.checkout_new("feature");
        repo.write("b.txt", "b\n");
        repo.commit("on-feature");
        repo.checkout("main");
        repo.write("c.txt", "c\n");
        repo.commit("on-main");
        repo.merge("feature", "merge feature");
        repo.commit("after-merge");
        repo
    }

    #[test]
    fn head_sha_short_sha_and_branch() {
        let repo = history();
        check(&repo, "head", &repo.head());
        check(&repo, "short", &short(&repo, "HEAD"));
        check(&repo, "branch", "main");
        repo.checkout_new("topic/x");
        check(&repo, "branch", "topic/x");
        repo.checkout("HEAD~1");
        check(&repo, "branch", "(detached)");
        check(&repo, "head", &sha(&repo, "main~1"));
    }

    #[test]
    fn discover_walks_up_and_names_the_start_when_nothing_is_found() {
        let fixture = history();
        fixture.write("deep/er/file.txt", "x\n");
        let repo = Repo::discover(&fixture.path().join("deep/er")).expect("found from below");
        assert_eq!(repo.workdir(), fixture.path());

        let outside = tempfile::tempdir().expect("temp dir");
        let error = Repo::discover(outside.path()).expect_err("not a repository");
        let shown = outside.path().display();
        assert_eq!(
            error.to_string(),
            format!("`{shown}` is not inside a git repository (searched upwards from `{shown}`)")
        );
        let error = Repo::open(outside.path()).expect_err("not a repository");
        assert_eq!(
            error.to_string(),
            format!("cannot open the git repository at `{shown}`")
        );
    }

    #[test]
    fn unborn_head_is_a_clear_error_but_keeps_the_branch_name() {
        let repo = GitRepo::new();
        check(
            &repo,
            "head",
            "error: repository `[REPO]` has no commits yet (HEAD is unborn)",
        );
        check(&repo, "branch", "main");
        check(&repo, "dirty", "false");
    }

    #[test]
    fn tags_at_head_lists_lightweight_and_annotated_sorted() {
        let repo = history();
        check(&repo, "tags", "");
        repo.tag("zeta");
        repo.tag_annotated("v1.0.0", "release");
        repo.tag("alpha");
        check(&repo, "tags", "alpha,v1.0.0,zeta");
        repo.commit("later");
        check(&repo, "tags", "");
        repo.checkout("v1.0.0");
        check(&repo, "tags", "alpha,v1.0.0,zeta");
    }

    #[test]
    fn dirty_means_modified_staged_or_untracked_but_not_ignored() {
        let clean = history();
        check(&clean, "dirty", "false");

        let ignored_only = history();
        ignored_only.write("build.log", "noise\n");
        ignored_only.write("logs/more.log", "noise\n");
        check(&ignored_only, "dirty", "false");

        let untracked = history();
        untracked.write("new/file.txt", "new\n");
        check(&untracked, "dirty", "true");

        let modified = history();
        modified.write("a.txt", "changed\n");
        check(&modified, "dirty", "true");

        let staged = history();
        staged.write("d.txt", "d\n");
        staged.git(&["add", "d.txt"]);
        check(&staged, "dirty", "true");

        let deleted = history();
        deleted.remove("a.txt");
        check(&deleted, "dirty", "true");
    }

    #[test]
    fn resolve_understands_what_git_understands() {
        let repo = history();
        repo.tag_annotated("v1.0.0", "release");
        repo.tag("light");
        check(&repo, "resolve HEAD", &sha(&repo, "HEAD"));
        check(&repo, "resolve HEAD~2", &sha(&repo, "HEAD~2"));
        check(&repo, "resolve HEAD~1^2", &sha(&repo, "feature"));
        check(&repo, "resolve feature", &sha(&repo, "feature"));
        check(&repo, "resolve v1.0.0", &sha(&repo, "HEAD"));
        check(&repo, "resolve light", &sha(&repo, "HEAD"));
        check(
            &repo,
            &format!("resolve {}", short(&repo, "HEAD~3")),
            &sha(&repo, "HEAD~3"),
        );
        check(
            &repo,
            "resolve v9.9",
            "error: cannot resolve `v9.9` in repository `[REPO]`: no such revision",
        );
        check(
            &repo,
            "resolve HEAD~40",
            "error: cannot resolve `HEAD~40` in repository `[REPO]`: no such revision",
        );
        check(
            &repo,
            "resolve HEAD:a.txt",
            "error: cannot resolve `HEAD:a.txt` in repository `[REPO]`: it names a blob, not a commit",
        );
        check(
            &repo,
            "resolve ..",
            "error: cannot resolve `..` in repository `[REPO]`: not a valid revision",
        );
    }

    #[test]
    fn resolve_in_a_shallow_clone_says_how_to_fetch_more() {
        let origin = history();
        let first = sha(&origin, "main~4");
        let clone = origin.clone_shallow(2);
        let hint = "; the repository is a shallow clone, so the commit may be older than its \
                    fetched history: fetch more with `git fetch --deepen=<n>` or `git fetch \
                    --unshallow`, or set `fetch-depth: 0` on `actions/checkout`";
        check(&clone, "shallow", "true");
        check(&origin, "shallow", "false");
        check(&clone, "resolve HEAD~1", &sha(&origin, "HEAD~1"));
        check(
            &clone,
            &format!("resolve {first}"),
            &format!(
                "error: cannot resolve `{first}` in repository `[REPO]`: no such revision{hint}"
            ),
        );
        check(
            &clone,
            "resolve HEAD~4",
            &format!(
                "error: cannot resolve `HEAD~4` in repository `[REPO]`: no such revision{hint}"
            ),
        );
        check(
            &clone,
            "resolve v9",
            &format!("error: cannot resolve `v9` in repository `[REPO]`: no such revision{hint}"),
        );
        // History and ancestry that reach past the boundary fail the same way.
        let repo = Repo::open(clone.path()).expect("opens");
        let (first, head) = (first.parse().expect("sha"), repo.head_sha().expect("head"));
        let expected = format!(
            "cannot resolve `{first}` in repository `{}`: no such revision{hint}",
            clone.path().display()
        );
        let log = repo
            .commits_between(&first, &head)
            .expect_err("base not fetched");
        assert_eq!(log.to_string(), expected);
        let ancestry = repo.is_ancestor(&first, &head).expect_err("not fetched");
        assert_eq!(ancestry.to_string(), expected);
    }

    #[test]
    fn merge_base_and_ancestry() {
        let repo = history();
        repo.checkout_new("later");
        repo.commit("on-later");
        repo.checkout("main");
        repo.git(&["checkout", "--quiet", "--orphan", "unrelated"]);
        repo.commit("root of another history");
        repo.checkout("main");
        check(&repo, "merge-base main later", &sha(&repo, "main"));
        check(&repo, "merge-base feature main~2", &sha(&repo, "main~3"));
        check(&repo, "merge-base main~1 feature", &sha(&repo, "feature"));
        let (main, unrelated) = (sha(&repo, "main"), sha(&repo, "unrelated"));
        check(
            &repo,
            "merge-base main unrelated",
            &format!(
                "error: `{main}` and `{unrelated}` have no common ancestor in repository `[REPO]`"
            ),
        );
        check(&repo, "ancestor main later", "true");
        check(&repo, "ancestor later main", "false");
        check(&repo, "ancestor main main", "true");
        check(&repo, "ancestor feature main", "true");
        check(&repo, "ancestor unrelated main", "false");
    }

    #[test]
    fn commits_between_is_git_log_newest_first() {
        let repo = history();
        let line = |rev: &str, summary: &str, minute: i64| {
            format!(
                "{} {summary} Slipway Test {}",
                short(&repo, rev),
                1_767_225_600 + minute * 60
            )
        };
        let expected = [
            line("HEAD", "after-merge", 6),
            line("HEAD~1", "merge feature", 5),
            line("HEAD~2", "on-main", 4),
            line("feature", "on-feature", 3),
        ]
        .join("\n");
        check(&repo, "log main~3 main", &expected);
        let oracle = repo.git(&[
            "log",
            "--date-order",
            "--abbrev=7",
            "--format=%h %s %an %ct",
            "main~3..main",
        ]);
        check(&repo, "log main~3 main", &oracle);
        let from_feature = [
            line("HEAD", "after-merge", 6),
            line("HEAD~1", "merge feature", 5),
            line("HEAD~2", "on-main", 4),
        ];
        check(&repo, "log feature main", &from_feature.join("\n"));
        check(&repo, "log main main", "");
        check(&repo, "log main main~3", "");
    }

    #[test]
    fn commit_messages_keep_their_body() {
        let fixture = GitRepo::new();
        let base = fixture.commit("base");
        fixture.commit("feat!: drop the old flag\n\nBREAKING CHANGE: `--old` is gone");
        let repo = Repo::open(fixture.path()).expect("opens");
        let commits = repo
            .commits_between(&base.parse().expect("sha"), &repo.head_sha().expect("head"))
            .expect("history");
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].summary, "feat!: drop the old flag");
        assert_eq!(
            commits[0].message,
            "feat!: drop the old flag\n\nBREAKING CHANGE: `--old` is gone\n"
        );
    }

    #[test]
    fn default_branch_guess() {
        let on_main = history();
        check(&on_main, "default-branch", "main");

        let on_master = GitRepo::new();
        on_master.commit("first");
        on_master.git(&["branch", "-m", "main", "master"]);
        check(&on_master, "default-branch", "master");

        let on_trunk = GitRepo::new();
        on_trunk.commit("first");
        on_trunk.git(&["branch", "-m", "main", "trunk"]);
        check(&on_trunk, "default-branch", "(none)");

        // A clone knows the origin's HEAD, whatever the branch is called.
        let clone = on_trunk.clone_shallow(1);
        check(&clone, "default-branch", "trunk");
        clone.checkout_new("feature");
        check(&clone, "default-branch", "trunk");
    }

    #[test]
    fn latest_semver_tag_is_the_highest_reachable() {
        let repo = GitRepo::new();
        repo.commit("first");
        repo.tag("v0.9.0");
        repo.tag("release-7");
        repo.commit("second");
        repo.tag_annotated("v1.0.0", "release 1.0.0");
        repo.tag("1.0.0");
        repo.checkout_new("side");
        repo.commit("on side");
        repo.tag("v5.0.0");
        repo.checkout("main");
        repo.commit("third");
        repo.tag("v1.1.0-rc.1");
        repo.tag("v1.1");
        repo.tag("v10");
        repo.commit("fourth");
        check(
            &repo,
            "latest-semver main",
            &format!("1.1.0-rc.1 v1.1.0-rc.1 {}", short(&repo, "main~1")),
        );
        check(
            &repo,
            "latest-semver main~2",
            &format!("1.0.0 1.0.0 {}", short(&repo, "main~2")),
        );
        check(
            &repo,
            "latest-semver main~3",
            &format!("0.9.0 v0.9.0 {}", short(&repo, "main~3")),
        );
        check(
            &repo,
            "latest-semver side",
            &format!("5.0.0 v5.0.0 {}", short(&repo, "side")),
        );
        let untagged = GitRepo::new();
        untagged.commit("first");
        untagged.tag("latest");
        check(&untagged, "latest-semver HEAD", "(none)");
    }

    #[test]
    fn facts_bundle_head() {
        let fixture = history();
        fixture.tag("v2.0.0");
        fixture.write("untracked.txt", "x\n");
        let facts =
            GitFacts::collect(&Repo::discover(fixture.path()).expect("opens")).expect("facts");
        assert_eq!(
            facts,
            GitFacts {
                sha: fixture.head().parse().expect("sha"),
                short_sha: short(&fixture, "HEAD"),
                branch: Some("main".to_owned()),
                tags_at_head: vec!["v2.0.0".to_owned()],
                is_dirty: true,
                commit_time: 1_767_225_600 + 6 * 60,
            }
        );
    }

    #[test]
    fn sha_parses_only_full_hex() {
        let upper = "0123456789ABCDEF0123456789abcdef01234567";
        assert_eq!(
            upper.parse::<Sha>().expect("valid").as_str(),
            upper.to_ascii_lowercase()
        );
        assert_eq!(upper.parse::<Sha>().expect("valid").short(), "0123456");
        for bad in ["0123456", "g123456789abcdef0123456789abcdef01234567", ""] {
            let error = bad.parse::<Sha>().expect_err("invalid");
            assert_eq!(
                error.to_string(),
                format!("`{bad}` is not a full commit sha: expected 40 hexadecimal digits")
            );
        }
        let json = serde_json::to_string(&upper.parse::<Sha>().expect("valid")).expect("json");
        assert_eq!(json, format!("\"{}\"", upper.to_ascii_lowercase()));
    }
}
