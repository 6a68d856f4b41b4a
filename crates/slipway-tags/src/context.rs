//! Gathering a [`TagContext`] the way docker/metadata-action does: explicit
//! values first, then the CI context (a view of [`CiContext`], the one
//! reader of GitHub's and GitLab's variables and event payload), then git.
//!
//! This is the one IO corner of `tags`: it reads the git repository. The
//! environment is passed in as a lookup function, so callers (and tests)
//! decide what it holds.

use std::path::Path;

use crate::{RepoInfo, TagContext};
use slipway_core::ci::{CiContext, Event, Provider};
use slipway_git::{GitError, GitFacts, Repo};

/// Values given explicitly (a tool's flags); each wins over the environment.
#[derive(Debug, Clone, Default)]
pub struct ContextInputs {
    /// The event name, e.g. `push`.
    pub event: Option<String>,
    /// The git ref, e.g. `refs/tags/v1.2.3`.
    pub git_ref: Option<String>,
    /// A pull request number; gives `refs/pull/<n>/merge` when no ref is given.
    pub pr_number: Option<u64>,
    /// The commit sha.
    pub sha: Option<String>,
    /// The default branch.
    pub default_branch: Option<String>,
}

/// Why the context could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// Git could not answer.
    #[error("cannot {what}")]
    Git {
        /// What was asked, e.g. `read HEAD's commit`.
        what: &'static str,
        /// Why.
        source: GitError,
    },
    /// The sha is not hexadecimal of a plausible length.
    #[error("invalid commit sha `{sha}`: expected 7 to 40 hexadecimal digits")]
    InvalidSha {
        /// The value given.
        sha: String,
    },
    /// `SOURCE_DATE_EPOCH` is not a number of seconds.
    #[error("invalid SOURCE_DATE_EPOCH `{value}`: expected seconds since 1970-01-01")]
    InvalidEpoch {
        /// The value given.
        value: String,
    },
    /// `DOCKER_METADATA_SHORT_SHA_LENGTH` is not a number.
    #[error("invalid DOCKER_METADATA_SHORT_SHA_LENGTH `{value}`: expected a number")]
    InvalidShortShaLength {
        /// The value given.
        value: String,
    },
}

impl slipway_core::cli::ExitStatus for ContextError {
    fn exit_code(&self) -> Option<u8> {
        match self {
            Self::InvalidSha { .. }
            | Self::InvalidEpoch { .. }
            | Self::InvalidShortShaLength { .. } => Some(slipway_core::cli::exit::USAGE),
            // Its cause, a git error, says.
            Self::Git { .. } => None,
        }
    }
}

/// Builds the tag context: `inputs` first, then the CI context `ci` (the one
/// reader of every CI's variables, [`CiContext::from_env_or_github_variables`]), then git.
/// `env` looks up the variables metadata-action reads beyond the CI's
/// (`SOURCE_DATE_EPOCH`, `DOCKER_METADATA_*`; empty values count as unset);
/// `default_branch_from_config` is slipway.toml's `[project]
/// default_branch`, if any; git is discovered from `cwd`.
pub fn gather(
    inputs: &ContextInputs,
    ci: &CiContext,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    default_branch_from_config: Option<String>,
) -> Result<TagContext, ContextError> {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    let repo = match Repo::discover(cwd) {
        Ok(repo) => Some(repo),
        Err(error) => {
            tracing::debug!(%error, "no git repository; using flags and the environment only");
            None
        }
    };

    let event_name = inputs
        .event
        .clone()
        .or_else(|| event_name(ci))
        .unwrap_or_else(|| "push".to_owned());
    let git_ref = match (&inputs.git_ref, inputs.pr_number) {
        (Some(git_ref), _) => git_ref.clone(),
        (None, Some(number)) => format!("refs/pull/{number}/merge"),
        (None, None) => match &ci.git_ref {
            // Same as metadata-action: `pull_request_target` runs on the base
            // branch, so the pull request's ref is rebuilt from its number.
            // A GitLab merge request's ref (and a Jenkins, Buildkite or
            // CircleCI pull request's) is spelled as GitHub's, so that
            // `type=ref,event=pr` gives `pr-<n>`.
            Some(_)
                if event_name.contains("pull_request_target")
                    || ci.event == Event::MergeRequest
                    || (ci.event == Event::PullRequest
                        && !matches!(ci.provider, Provider::GithubActions | Provider::None)) =>
            {
                ci.pr_number
                    .map(|n| format!("refs/pull/{n}/merge"))
                    .unwrap_or_default()
            }
            Some(git_ref) => git_ref.clone(),
            None => repo
                .as_ref()
                .map(ref_from_git)
                .transpose()?
                .unwrap_or_default(),
        },
    };
    let is_pr = event_name.contains("pull_request");
    let pr_head_sha = env("DOCKER_METADATA_PR_HEAD_SHA")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        .then(|| ci.pr_head_sha.clone())
        .flatten()
        .filter(|_| is_pr);
    let sha = match inputs
        .sha
        .clone()
        .or(pr_head_sha)
        .or_else(|| ci.sha.clone())
    {
        Some(sha) => sha,
        None => match &repo {
            Some(repo) => repo
                .head_sha()
                .map_err(|source| ContextError::Git {
                    what: "read HEAD's commit",
                    source,
                })?
                .to_string(),
            None => String::new(),
        },
    };
    let is_hex_sha = (7..=40).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !sha.is_empty() && !is_hex_sha {
        return Err(ContextError::InvalidSha { sha });
    }
    let default_branch = inputs
        .default_branch
        .clone()
        .or_else(|| ci.default_branch.clone())
        .or(default_branch_from_config)
        .or_else(|| repo.as_ref().and_then(|repo| repo.default_branch_guess()));
    let now = match env("SOURCE_DATE_EPOCH") {
        Some(epoch) => epoch
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
            .ok_or(ContextError::InvalidEpoch { value: epoch })?,
        None => jiff::Timestamp::now(),
    };
    let commit_date = commit_date(ci, &sha, repo.as_ref()).unwrap_or(now);
    let short_sha_length = match env("DOCKER_METADATA_SHORT_SHA_LENGTH") {
        Some(length) => length
            .parse()
            .map_err(|_| ContextError::InvalidShortShaLength { value: length })?,
        None => 7,
    };
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    Ok(TagContext {
        event_name,
        git_ref,
        sha,
        default_branch,
        // `{{base_ref}}` reads the first on a tag, the second on a pull
        // request; the CI context names both `base_ref`.
        base_ref: ci.base_ref.clone(),
        pr_base_ref: ci.base_ref.clone(),
        now,
        commit_date,
        short_sha_length,
        repository: RepoInfo {
            name: text(&ci.repository_name),
            description: text(&ci.repository_description),
            html_url: text(&ci.repository_url),
            license: text(&ci.repository_license),
        },
    })
}

/// The event as metadata-action names it (GitHub's event names): GitHub's
/// own name, or another CI's event translated; `None` outside CI.
fn event_name(ci: &CiContext) -> Option<String> {
    let name = match (ci.provider, &ci.event) {
        (_, Event::Local) => return None,
        (Provider::GithubActions | Provider::None, _) => ci.event_name.as_str(),
        (_, Event::Push | Event::Tag) => "push",
        (_, Event::MergeRequest | Event::PullRequest) => "pull_request",
        (_, Event::Schedule) => "schedule",
        (_, Event::WorkflowDispatch) => "workflow_dispatch",
        _ => ci.event_name.as_str(),
    };
    Some(name.to_owned()).filter(|name| !name.is_empty())
}

/// HEAD as a ref, as metadata-action's git context reads it: the branch, else
/// a tag at HEAD (the highest semver one first), else nothing.
fn ref_from_git(repo: &Repo) -> Result<String, ContextError> {
    if let Some(branch) = repo.branch() {
        return Ok(format!("refs/heads/{branch}"));
    }
    let mut tags = repo.tags_at_head().map_err(|source| ContextError::Git {
        what: "list the tags at HEAD",
        source,
    })?;
    tags.sort_by_key(|tag| {
        std::cmp::Reverse(semver::Version::parse(tag.trim_start_matches('v')).ok())
    });
    Ok(tags
        .first()
        .map(|tag| format!("refs/tags/{tag}"))
        .unwrap_or_default())
}

/// The commit's date: from the CI event when it describes the commit (as
/// metadata-action does), else from git when HEAD is the commit.
fn commit_date(ci: &CiContext, sha: &str, repo: Option<&Repo>) -> Option<jiff::Timestamp> {
    let from_event = ci
        .commit_dates
        .iter()
        .find(|(id, _)| id == sha)
        .map(|(_, date)| *date);
    from_event.or_else(|| {
        let facts = GitFacts::collect(repo?).ok()?;
        (facts.sha.as_str() == sha)
            .then(|| jiff::Timestamp::from_second(facts.commit_time).ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(inputs: ContextInputs, vars: &[(&str, &str)], expected: Result<(&str, &str), &str>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = |name: &str| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        let ci = CiContext::from_env_or_github_variables(env).expect("the CI context is read");
        let result = gather(&inputs, &ci, &env, dir.path(), None);
        match (result, expected) {
            (Ok(ctx), Ok((git_ref, sha))) => {
                assert_eq!((ctx.git_ref.as_str(), ctx.sha.as_str()), (git_ref, sha));
            }
            (Err(error), Err(message)) => assert_eq!(error.to_string(), message),
            (other, expected) => panic!("got {other:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn explicit_values_win_over_the_environment() {
        let inputs = ContextInputs {
            git_ref: Some("refs/heads/x".into()),
            sha: Some("abcdef1".into()),
            ..ContextInputs::default()
        };
        check(
            inputs,
            &[("GITHUB_REF", "refs/heads/y"), ("GITHUB_SHA", "1234567")],
            Ok(("refs/heads/x", "abcdef1")),
        );
    }

    #[test]
    fn the_environment_fills_what_is_not_given() {
        check(
            ContextInputs::default(),
            &[("GITHUB_REF", "refs/tags/v1"), ("GITHUB_SHA", "1234567")],
            Ok(("refs/tags/v1", "1234567")),
        );
    }

    #[test]
    fn a_pull_request_number_gives_its_merge_ref() {
        check(
            ContextInputs {
                pr_number: Some(7),
                ..ContextInputs::default()
            },
            &[],
            Ok(("refs/pull/7/merge", "")),
        );
    }

    #[test]
    fn a_sha_that_is_not_hex_is_rejected() {
        check(
            ContextInputs {
                sha: Some("zzzzzzz".into()),
                ..ContextInputs::default()
            },
            &[],
            Err("invalid commit sha `zzzzzzz`: expected 7 to 40 hexadecimal digits"),
        );
    }

    #[test]
    fn a_bad_epoch_is_rejected() {
        check(
            ContextInputs::default(),
            &[("SOURCE_DATE_EPOCH", "soon")],
            Err("invalid SOURCE_DATE_EPOCH `soon`: expected seconds since 1970-01-01"),
        );
    }
}
