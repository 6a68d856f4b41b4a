//! The git walk: a [`Judge`] diffs each published revision against the
//! commit judged, through one repository handle, and maps the changed files
//! to the filters (paths, `[rebuild_all]`, `depends_on`) that make an image
//! stale.

use super::*;
use slipway_git::OidSha as _;

/// Judges published images against one commit of one repository.
pub struct Judge {
    /// The one handle on the repository: diffs and history walks alike.
    pub(super) differ: Differ,
    pub(super) rev: Sha,
    pub(super) filters: Option<FilterSet>,
    /// For each image: the filter names whose files make it stale.
    pub(super) relevant: BTreeMap<String, Vec<(String, Via)>>,
    /// Changed files between a revision and `rev`, with the filters each
    /// matched (indices into the filter set).
    pub(super) diffs: HashMap<Sha, (Vec<ChangedFile>, Vec<Vec<usize>>)>,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge").field("rev", &self.rev).finish()
    }
}

impl Judge {
    /// A judge of images against commit `rev` of the repository at
    /// `repo_root`, with slipway.toml's filters when `config` is given.
    pub fn new(config: Option<&Config>, repo_root: &Path, rev: Sha) -> Result<Judge, StaleError> {
        let repo = slipway_git::Repo::open(repo_root).map_err(|error| match error {
            slipway_git::GitError::Open { path, source } => StaleError::Git { path, source },
            other => StaleError::History(other),
        })?;
        Self::from_repo(config, repo, rev)
    }

    /// [`Judge::new`] over a repository the caller has opened already (to
    /// resolve `rev`), so it is opened once.
    pub fn from_repo(
        config: Option<&Config>,
        repo: slipway_git::Repo,
        rev: Sha,
    ) -> Result<Judge, StaleError> {
        let repo_root = repo.workdir().to_owned();
        let differ = Differ::from_repo(repo);
        let (filters, relevant) = match config {
            Some(config) => {
                let set = FilterSet::compile(project::config_filters(config, &repo_root)?)?;
                let names: BTreeSet<String> = set.names().map(str::to_owned).collect();
                (Some(set), relevant_filters(config, &names))
            }
            None => (None, BTreeMap::new()),
        };
        Ok(Judge {
            differ,
            rev,
            filters,
            relevant,
            diffs: HashMap::new(),
        })
    }

    pub(super) fn repo(&self) -> &git2::Repository {
        self.differ.repository()
    }

    /// The commit images are judged against.
    pub fn rev(&self) -> &Sha {
        &self.rev
    }

    /// The verdict for `image` (a slipway.toml image name; any other name
    /// counts every changed file) given what is `published`.
    pub fn judge(&mut self, image: &str, published: &Published) -> Result<Verdict, StaleError> {
        if *published == Published::Missing {
            return Ok(Verdict::Missing);
        }
        let revision = match revision_of(published) {
            Ok(revision) => revision,
            Err(reason) => return Ok(Verdict::Unknown { reason }),
        };
        if revision == self.rev {
            return Ok(Verdict::Fresh {
                revision,
                because: FreshBecause::SameCommit,
            });
        }
        if self.repo().find_commit(revision.oid()).is_err() {
            return Ok(Verdict::Unknown {
                reason: Unknown::NotInHistory {
                    revision: revision.to_string(),
                    shallow: self.repo().is_shallow(),
                },
            });
        }
        let files = self.stale_files(image, &revision)?;
        if files.is_empty() {
            return Ok(Verdict::Fresh {
                revision,
                because: FreshBecause::NoRelevantChange,
            });
        }
        let commits = self.commits_touching(&revision, &files)?;
        Ok(Verdict::Stale {
            revision,
            files,
            commits,
        })
    }

    /// The changed files between `revision` and the judged commit that
    /// count for `image`.
    pub(super) fn stale_files(
        &mut self,
        image: &str,
        revision: &Sha,
    ) -> Result<Vec<StaleFile>, StaleError> {
        if !self.diffs.contains_key(revision) {
            let files = self
                .differ
                .between(revision, &self.rev, DiffOptions::default())?;
            let matched = match &self.filters {
                Some(filters) => filters.match_files(&files),
                None => Vec::new(),
            };
            self.diffs.insert(revision.clone(), (files, matched));
        }
        let (files, matched) = &self.diffs[revision];
        let names: Vec<&str> = self
            .filters
            .as_ref()
            .map(|f| f.names().collect())
            .unwrap_or_default();
        Ok(match self.relevant.get(image) {
            Some(relevant) => stale_files(relevant, &names, files, matched),
            None => files
                .iter()
                .map(|f| StaleFile {
                    path: f.path.clone(),
                    status: f.status,
                    via: Via::AnyFile,
                    path_bytes: f.path_bytes.clone(),
                })
                .collect(),
        })
    }

    /// The commits reachable from the judged commit and not from
    /// `revision` that touched one of `files`, newest first.
    pub(super) fn commits_touching(
        &self,
        revision: &Sha,
        files: &[StaleFile],
    ) -> Result<Vec<StaleCommit>, StaleError> {
        let git_error = |source| StaleError::Git {
            path: self.differ_path(),
            source,
        };
        let wanted: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let mut commits = Vec::new();
        slipway_git::walk_range(
            self.repo(),
            revision,
            &self.rev,
            || {
                format!(
                    "list the commits since `{}` that make the image stale",
                    revision.short()
                )
            },
            git_error,
            |oid| {
                let commit = self.repo().find_commit(oid).map_err(git_error)?;
                let sha = Sha::from_oid(commit.id());
                let touched = match commit.parent_ids().next() {
                    Some(parent) => {
                        self.differ
                            .between(&Sha::from_oid(parent), &sha, DiffOptions::default())?
                    }
                    None => self.differ.all_added(&sha)?,
                };
                let hit: Vec<String> = touched
                    .into_iter()
                    .filter(|f| {
                        wanted.contains(f.path.as_str())
                            || f.from.as_deref().is_some_and(|p| wanted.contains(p))
                    })
                    .map(|f| f.path)
                    .collect();
                if !hit.is_empty() {
                    commits.push(StaleCommit {
                        sha,
                        summary: String::from_utf8_lossy(
                            commit.summary_bytes().unwrap_or_default(),
                        )
                        .into_owned(),
                        files: hit,
                    });
                }
                Ok(())
            },
        )?;
        Ok(commits)
    }

    pub(super) fn differ_path(&self) -> PathBuf {
        self.repo()
            .workdir()
            .unwrap_or_else(|| self.repo().path())
            .to_owned()
    }
}

/// For each image of `config`: the filters whose files make it stale, its
/// own first, then `[rebuild_all]`, then those of every image it depends
/// on, directly or not. `names` are the filters that exist.
pub fn relevant_filters(
    config: &Config,
    names: &BTreeSet<String>,
) -> BTreeMap<String, Vec<(String, Via)>> {
    let mut relevant = BTreeMap::new();
    for name in config.images.keys() {
        let mut list = vec![(name.clone(), Via::Paths)];
        if names.contains(project::REBUILD_ALL) && !config.images.contains_key(project::REBUILD_ALL)
        {
            list.push((project::REBUILD_ALL.to_owned(), Via::RebuildAll));
        }
        let mut seen = BTreeSet::from([name.clone()]);
        let mut queue: Vec<String> = config.images[name].depends_on.clone();
        while let Some(dependency) = queue.pop() {
            if !seen.insert(dependency.clone()) {
                continue;
            }
            if let Some(image) = config.images.get(&dependency) {
                queue.extend(image.depends_on.iter().cloned());
            }
            list.push((dependency.clone(), Via::DependsOn { image: dependency }));
        }
        relevant.insert(name.clone(), list);
    }
    relevant
}

/// The files of `files` matched by one of the `relevant` filters (named in
/// `names`, their matches in `matched`), each once with the first reason
/// that holds, sorted by path. Pure.
pub fn stale_files(
    relevant: &[(String, Via)],
    names: &[&str],
    files: &[ChangedFile],
    matched: &[Vec<usize>],
) -> Vec<StaleFile> {
    let mut out: BTreeMap<usize, Via> = BTreeMap::new();
    for (filter, via) in relevant {
        let Some(position) = names.iter().position(|n| n == filter) else {
            continue;
        };
        for index in matched.get(position).into_iter().flatten() {
            out.entry(*index).or_insert_with(|| via.clone());
        }
    }
    let mut stale: Vec<StaleFile> = out
        .into_iter()
        .filter_map(|(index, via)| {
            files.get(index).map(|f| StaleFile {
                path: f.path.clone(),
                status: f.status,
                via,
                path_bytes: f.path_bytes.clone(),
            })
        })
        .collect();
    stale.sort_by(|a, b| a.path.cmp(&b.path));
    stale
}
