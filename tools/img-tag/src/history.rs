//! The history `next-version` reads: the last release tag reachable from
//! HEAD (prereleases ignored, so a release folds in its prereleases' commits),
//! the commits since, and the highest release tagged anywhere (so a
//! prerelease never sorts below a release that exists).

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context as _;

/// The last release and what came after it.
pub(crate) struct History {
    /// The highest `X.Y.Z` or `vX.Y.Z` tag on a commit reachable from HEAD.
    pub(crate) previous: Option<semver::Version>,
    /// The highest `X.Y.Z` or `vX.Y.Z` tag of the repository, wherever it is.
    pub(crate) highest: Option<semver::Version>,
    /// The commits since, newest first: short sha and message.
    pub(crate) commits: Vec<(String, String)>,
    /// HEAD's branch, when not detached.
    pub(crate) branch: Option<String>,
    /// The repository's work tree (its git dir when bare).
    pub(crate) root: std::path::PathBuf,
}

/// Reads the history of the repository holding `dir`.
pub(crate) fn read(dir: &Path) -> anyhow::Result<History> {
    let repo = git2::Repository::discover(dir)
        .with_context(|| format!("`{}` is not inside a git repository", dir.display()))?;
    let head = repo
        .head()
        .and_then(|head| head.peel_to_commit())
        .context("cannot read HEAD's commit (does the repository have commits?)")?;
    let branch = repo
        .head()
        .ok()
        .filter(|head| head.is_branch())
        .and_then(|head| head.shorthand().ok().map(str::to_owned));

    // In a shallow clone the walk stops at the fetched edge: the last
    // release tag and the commits since would be silently wrong (a depth-1
    // clone gave 0.1.0), so reaching the edge is refused.
    let guard = slipway_git::HistoryGuard::of(&repo);
    let walk = |hide: Option<git2::Oid>| -> anyhow::Result<Vec<git2::Oid>> {
        let mut walk = repo.revwalk().context("cannot walk the history")?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
        walk.push(head.id())?;
        if let Some(hide) = hide {
            walk.hide(hide)?;
        }
        let oids = walk
            .collect::<Result<Vec<_>, _>>()
            .context("cannot walk the history")?;
        for oid in &oids {
            guard.check(*oid, || {
                "find the last release tag and the commits since (next-version, changelog)"
                    .to_owned()
            })?;
        }
        Ok(oids)
    };
    let reachable: HashSet<git2::Oid> = walk(None)?.into_iter().collect();
    let mut best: Option<(semver::Version, git2::Oid)> = None;
    let mut highest: Option<semver::Version> = None;
    let names = repo.tag_names(None).context("cannot list the tags")?;
    for name in names.iter().flatten().flatten() {
        let Ok(version) = semver::Version::parse(name.strip_prefix('v').unwrap_or(name)) else {
            continue;
        };
        if !version.pre.is_empty() {
            continue;
        }
        if highest.as_ref().is_none_or(|v| version > *v) {
            highest = Some(version.clone());
        }
        let commit = repo
            .revparse_single(&format!("refs/tags/{name}"))
            .and_then(|object| object.peel_to_commit())
            .with_context(|| format!("cannot read the commit of tag `{name}`"))?;
        if reachable.contains(&commit.id()) && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, commit.id()));
        }
    }
    let mut commits = Vec::new();
    for oid in walk(best.as_ref().map(|(_, oid)| *oid))? {
        let commit = repo.find_commit(oid).context("cannot read a commit")?;
        let sha = oid.to_string();
        commits.push((
            sha[..7].to_owned(),
            String::from_utf8_lossy(commit.message_bytes()).into_owned(),
        ));
    }
    Ok(History {
        previous: best.map(|(version, _)| version),
        highest,
        commits,
        branch,
        root: repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf(),
    })
}
