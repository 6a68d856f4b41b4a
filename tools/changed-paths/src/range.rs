//! Which commits to compare: the flags, else the CI event, with the same
//! choices as dorny/paths-filter (pull request: merge base of its base;
//! push: `before`; a new branch: the default branch's merge base; a first
//! push: every file added; anything else: the default branch's merge base,
//! or the last commit when on the default branch).

use anyhow::Context as _;
use slipway_core::ci::{CiContext, Event, Provider};
use slipway_git::changes::Differ;
use slipway_git::{Repo, Sha};

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Range {
    /// The diff between two commits.
    Commits {
        /// The older side.
        base: Sha,
        /// The newer side.
        head: Sha,
        /// How the base was chosen, for logs and the plain report.
        why: String,
    },
    /// Every file of `head`, as added.
    AllAdded {
        /// The commit.
        head: Sha,
        /// Why there is nothing to compare with.
        why: String,
    },
}

/// The flags that choose a range.
#[derive(Debug, Clone, Default)]
pub(crate) struct RangeFlags {
    pub(crate) base: Option<String>,
    pub(crate) head: Option<String>,
    pub(crate) merge_base: bool,
    /// A base already resolved elsewhere (`--base-from-image`), with how.
    pub(crate) base_commit: Option<(Sha, String)>,
}

/// A usage error for a `--base` that names no revision but looks like a
/// mistyped branch or tag (`mian`): exit 2 with the nearest names. `None`
/// when nothing is near, or in a shallow clone, where the name may just not
/// be fetched (git's error then says how to fetch it).
fn misspelt_base(repo: &Repo, base: &str) -> Option<anyhow::Error> {
    if repo.is_shallow() {
        return None;
    }
    let names = repo.ref_names();
    if names.iter().any(|name| name == base) {
        return None;
    }
    let mut near: Vec<(f64, &String)> = names
        .iter()
        .map(|name| (strsim::jaro_winkler(base, name), name))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0));
    let near: Vec<String> = near.iter().take(3).map(|(_, n)| format!("`{n}`")).collect();
    (!near.is_empty()).then(|| {
        slipway_core::cli::UsageError::new(format!(
            "invalid `--base` `{base}`: no branch, tag or commit has that name — did you mean {}?",
            near.join(" or ")
        ))
    })
}

/// Chooses the range from the flags, else from `ctx`.
pub(crate) fn choose(
    repo: &Repo,
    differ: &Differ,
    ctx: &CiContext,
    flags: &RangeFlags,
    config_default_branch: Option<&str>,
) -> anyhow::Result<Range> {
    let resolve = |rev: &str| {
        repo.resolve(rev)
            .with_context(|| format!("cannot resolve `{rev}`"))
    };
    let full_sha = |text: &str, role: &'static str| -> anyhow::Result<Sha> {
        let sha: Sha = text
            .parse()
            .with_context(|| format!("the CI event's {role} is not a commit"))?;
        differ.require_commit(&sha, role)?;
        Ok(sha)
    };
    let head = match &flags.head {
        Some(rev) => resolve(rev)?,
        None => repo.head_sha().context("cannot read HEAD")?,
    };

    if let Some((base, why)) = &flags.base_commit {
        differ.require_commit(base, "base")?;
        return Ok(Range::Commits {
            base: base.clone(),
            head,
            why: why.clone(),
        });
    }

    if let Some(base) = &flags.base {
        let base_sha = resolve(base).map_err(|error| misspelt_base(repo, base).unwrap_or(error))?;
        differ.require_commit(&base_sha, "base")?;
        if flags.merge_base {
            let merge_base = repo.merge_base(&base_sha, &head)?;
            return Ok(Range::Commits {
                base: merge_base,
                head,
                why: format!("merge base of `{base}` and the head"),
            });
        }
        return Ok(Range::Commits {
            base: base_sha,
            head,
            why: format!("`{base}`"),
        });
    }

    let default_branch = ctx
        .default_branch
        .clone()
        .or_else(|| config_default_branch.map(str::to_owned))
        .or_else(|| repo.default_branch_guess());
    // A branch name as the clone knows it: `origin/<name>` in CI, else local.
    let resolve_branch = |name: &str| {
        repo.resolve(&format!("origin/{name}"))
            .or_else(|_| repo.resolve(name))
            .ok()
    };

    let is_review = matches!(
        ctx.event,
        Event::PullRequest | Event::PullRequestTarget | Event::MergeRequest
    ) || ctx.pr_head_sha.is_some();
    if is_review {
        let head = match (&flags.head, &ctx.pr_head_sha) {
            (None, Some(sha)) => full_sha(sha, "head")?,
            _ => head,
        };
        let base = match (&ctx.pr_base_sha, &ctx.base_ref) {
            (Some(sha), _) => full_sha(sha, "base")?,
            (None, Some(branch)) => resolve_branch(branch).with_context(|| {
                format!("the pull request's base branch `{branch}` is not in this clone; fetch it (`git fetch origin {branch}`)")
            })?,
            (None, None) if let Some(branch) = &default_branch
                && let Some(default_sha) = resolve_branch(branch) =>
            {
                let merge_base = repo.merge_base(&default_sha, &head)?;
                return Ok(Range::Commits {
                    base: merge_base,
                    head,
                    why: format!(
                        "merge base of `{branch}`: the CI names no base branch of the pull request"
                    ),
                });
            }
            (None, None) => anyhow::bail!(slipway_core::cli::UsageError(
                "the pull request event names no base: give `--base REV`".to_owned()
            )),
        };
        let merge_base = repo.merge_base(&base, &head)?;
        return Ok(Range::Commits {
            base: merge_base,
            head,
            why: "merge base of the pull request's base".to_owned(),
        });
    }

    // Jenkins' previous build, Buildkite and CircleCI give no push range:
    // a branch build without one is read as any other run (below), and the
    // report says which range that was.
    let no_push_range = ctx.push_before.is_none()
        && !ctx.is_new_branch
        && matches!(
            ctx.provider,
            Provider::Jenkins | Provider::Buildkite | Provider::CircleCi
        );
    if matches!(ctx.event, Event::Push | Event::Tag) && !(no_push_range && ctx.event == Event::Push)
    {
        let head = match (&flags.head, &ctx.push_after) {
            (None, Some(sha)) => full_sha(sha, "head")?,
            _ => head,
        };
        if !ctx.is_new_branch
            && let Some(before) = &ctx.push_before
        {
            let before: Sha = before
                .parse()
                .context("the push event's `before` is not a commit")?;
            match differ.require_commit(&before, "base") {
                Ok(()) => {
                    return Ok(Range::Commits {
                        base: before,
                        head,
                        why: if let Some(from) = ctx.push_before_from {
                            from.to_owned()
                        } else if ctx.is_forced {
                            "the commit the force-push replaced".to_owned()
                        } else {
                            "the push's previous commit".to_owned()
                        },
                    });
                }
                // A force-push's old commit is often not fetched: compare
                // with the default branch instead of failing, as long as
                // the clone is complete (a shallow one must say so).
                Err(error)
                    if (ctx.is_forced || ctx.push_before_from.is_some()) && !repo.is_shallow() =>
                {
                    tracing::warn!("{error}; comparing with the default branch instead");
                }
                Err(error) => return Err(error.into()),
            }
        }
        if ctx.event == Event::Tag {
            let before_head = repo.resolve(&format!("{}^", head.as_str())).ok();
            // No parent in a shallow clone is the fetched edge, not a first commit.
            if before_head.is_none() && repo.is_shallow() {
                return Err(repo
                    .history_guard()
                    .refuse("find the last version tag")
                    .into());
            }
            let previous = match before_head {
                Some(parent) => repo.latest_semver_tag(&parent)?,
                None => None,
            };
            return Ok(match previous {
                Some((_, name, sha)) => Range::Commits {
                    base: sha,
                    head,
                    why: format!("the previous version tag `{name}`"),
                },
                None => Range::AllAdded {
                    head,
                    why: "first version tag".to_owned(),
                },
            });
        }
        let on_default = default_branch.is_some() && default_branch == ctx.ref_name;
        if let (false, Some(branch)) = (on_default, &default_branch)
            && let Some(default_sha) = resolve_branch(branch)
        {
            let merge_base = repo.merge_base(&default_sha, &head)?;
            return Ok(Range::Commits {
                base: merge_base,
                head,
                why: format!("new branch: merge base of `{branch}`"),
            });
        }
        return Ok(Range::AllAdded {
            head,
            why: if ctx.push_before_from.is_some() {
                "the previous build's commit is not in this clone: nothing to compare with"
                    .to_owned()
            } else {
                "first push: nothing to compare with".to_owned()
            },
        });
    }

    // workflow_dispatch, schedule, other events, and no CI.
    if let Some(branch) = &default_branch
        && let Some(default_sha) = resolve_branch(branch)
    {
        let merge_base = repo.merge_base(&default_sha, &head)?;
        if merge_base != head {
            return Ok(Range::Commits {
                base: merge_base,
                head,
                why: format!(
                    "merge base of `{branch}`{}",
                    no_range_note(ctx, no_push_range)
                ),
            });
        }
    }
    match repo.resolve(&format!("{}^", head.as_str())) {
        Ok(parent) => Ok(Range::Commits {
            base: parent,
            head,
            why: format!("the last commit{}", no_range_note(ctx, no_push_range)),
        }),
        Err(error) if repo.is_shallow() => Err(anyhow::Error::new(error)
            .context("cannot find the parent of HEAD in this shallow clone; fetch more history (actions/checkout `fetch-depth: 0`, or `git fetch --deepen=<n>`)")),
        Err(_) => Ok(Range::AllAdded {
            head,
            why: "the first commit: nothing to compare with".to_owned(),
        }),
    }
}

/// Why a branch build was compared as a run without a push: its CI, named.
fn no_range_note(ctx: &CiContext, no_push_range: bool) -> String {
    let name = match ctx.provider {
        Provider::Jenkins => "Jenkins gives no previous build's commit",
        Provider::Buildkite => "Buildkite gives no push range",
        Provider::CircleCi => "CircleCI gives no push range",
        _ => return String::new(),
    };
    if no_push_range && ctx.event == Event::Push {
        format!(" ({name})")
    } else {
        String::new()
    }
}
