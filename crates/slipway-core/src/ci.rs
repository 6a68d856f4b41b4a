//! Which CI we run in (GitHub Actions, GitLab CI or none) and what event
//! started the run: sha, ref, pull request, push range, default branch.
//!
//! [`CiContext::from_env`] is pure over an injected environment (it may read
//! the file `GITHUB_EVENT_PATH` names), so every provider and event is
//! testable without a runner; [`CiContext::detect`] feeds it the process
//! environment. Empty variables count as unset: runners set several of them
//! to `""` for events they don't apply to (`GITHUB_BASE_REF` on a push).
//!
//! What the fields mean follows the providers' documentation of their
//! variables and of GitHub's webhook payloads, and how docker/metadata-action
//! and dorny/paths-filter read them (see [`CiContext::diff_range`]).

use std::path::{Path, PathBuf};

/// The sha git and GitHub use for "no commit": `before` of a push that
/// created its ref, and GitLab's `CI_COMMIT_BEFORE_SHA` outside pushes.
const NULL_SHA: &str = "0000000000000000000000000000000000000000";

/// Why the CI environment cannot be read, naming the variable or file.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    /// `GITHUB_EVENT_PATH` names a file that cannot be read.
    #[error("GITHUB_EVENT_PATH `{}` cannot be read: {reason}", .path.display())]
    EventFileUnreadable {
        /// The event file.
        path: PathBuf,
        /// What failed and the operating system's reason (fs_err's message).
        reason: String,
    },
    /// The event file is not JSON.
    #[error("GITHUB_EVENT_PATH `{}` is not valid JSON: {reason}", .path.display())]
    EventFileInvalid {
        /// The event file.
        path: PathBuf,
        /// What the JSON parser reported, with line and column.
        reason: String,
    },
    /// A field of the event payload has the wrong type.
    #[error("`{field}` in `{}` is not {expected}: found `{found}`", .path.display())]
    EventField {
        /// The event file.
        path: PathBuf,
        /// The field, as a dotted path (`pull_request.number`).
        field: &'static str,
        /// What it should be, e.g. `a number`.
        expected: &'static str,
        /// The JSON found there.
        found: String,
    },
    /// An environment variable has a value of the wrong form.
    #[error("{name} `{value}` is not {expected}")]
    Variable {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be, e.g. `a number`.
        expected: &'static str,
    },
}

// A CI variable or event file that cannot be used is bad input.
crate::cli::exit_status!(CiError => USAGE);

/// The CI system running us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// GitHub Actions (`GITHUB_ACTIONS=true`).
    GithubActions,
    /// GitLab CI (`GITLAB_CI=true`).
    GitlabCi,
    /// Jenkins (`JENKINS_URL` set), with the git plugin's and multibranch
    /// pipelines' variables.
    Jenkins,
    /// Buildkite (`BUILDKITE=true`).
    Buildkite,
    /// CircleCI (`CIRCLECI=true`).
    CircleCi,
    /// No CI we know: a developer's machine or another system.
    None,
}

/// What started the run, across providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A push of a branch (GitHub `push`, GitLab `push` without a tag).
    Push,
    /// A GitHub `pull_request`: runs the merge of head into base, with the
    /// pull request's code and without the base repository's secrets.
    PullRequest,
    /// A GitHub `pull_request_target`: runs the *base* branch's workflow and
    /// commit, with secrets; `GITHUB_SHA` is the base branch's head.
    PullRequestTarget,
    /// A GitLab `merge_request_event` pipeline.
    MergeRequest,
    /// A push (or creation) of a tag.
    Tag,
    /// A scheduled run (GitHub `schedule`, GitLab `schedule`).
    Schedule,
    /// A manual run (GitHub `workflow_dispatch`, GitLab `web`: "Run pipeline").
    WorkflowDispatch,
    /// Any other event, by its raw name (`merge_group`, `release`, `api`…).
    Other(String),
    /// Not in CI.
    Local,
}

/// The CI run we are part of; every field is `None` where the provider or
/// event doesn't say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiContext {
    /// The CI system.
    pub provider: Provider,
    /// The event, normalised across providers.
    pub event: Event,
    /// The event's raw name (`GITHUB_EVENT_NAME`, `CI_PIPELINE_SOURCE`);
    /// empty when not in CI.
    pub event_name: String,
    /// The commit the run checked out (`GITHUB_SHA`, `CI_COMMIT_SHA`). For a
    /// GitHub `pull_request` it is the test merge commit, not the PR's head.
    pub sha: Option<String>,
    /// The full ref: `refs/heads/x`, `refs/tags/v1`, `refs/pull/5/merge`,
    /// `refs/merge-requests/5/head`.
    pub git_ref: Option<String>,
    /// The ref's short name (`x`, `v1`, `5/merge`; GitLab: the branch or tag).
    pub ref_name: Option<String>,
    /// The branch a pull or merge request (or merge queue) targets, short
    /// (`main`); for a GitHub tag push, the branch the payload's `base_ref`
    /// names.
    pub base_ref: Option<String>,
    /// The branch a pull or merge request comes from, short.
    pub head_ref: Option<String>,
    /// The pull request number or merge request IID.
    pub pr_number: Option<u64>,
    /// The head commit of the pull or merge request (or merge queue entry).
    pub pr_head_sha: Option<String>,
    /// The base commit of the pull request (or merge queue entry); for a
    /// GitLab merge request, the merge base it is diffed against.
    pub pr_base_sha: Option<String>,
    /// What the pushed ref pointed at before the push (all zeros when the
    /// push created it).
    pub push_before: Option<String>,
    /// What the pushed ref points at after the push.
    pub push_after: Option<String>,
    /// The push created its ref (a new branch or tag): `before` is all zeros.
    pub is_new_branch: bool,
    /// The push was a force-push (GitHub payload `forced`; GitLab doesn't say).
    pub is_forced: bool,
    /// Where `push_before` comes from when it is not the pushed ref's
    /// previous value but the CI's record of an earlier build (Jenkins'
    /// `GIT_PREVIOUS_SUCCESSFUL_COMMIT`), said in words for reports.
    pub push_before_from: Option<&'static str>,
    /// The repository's default branch (payload `repository.default_branch`,
    /// `CI_DEFAULT_BRANCH`).
    pub default_branch: Option<String>,
    /// The repository as `owner/name` (GitLab: `group/subgroup/name`).
    pub repository: Option<String>,
    /// The forge's base URL (`https://github.com`).
    pub server_url: Option<String>,
    /// The run's id (`GITHUB_RUN_ID`, `CI_PIPELINE_ID`).
    pub run_id: Option<String>,
    /// The attempt of a re-run, from 1 (`GITHUB_RUN_ATTEMPT`).
    pub run_attempt: Option<u32>,
    /// Who started the run (`GITHUB_ACTOR`, `GITLAB_USER_LOGIN`).
    pub actor: Option<String>,
    /// The labels of the pull or merge request (payload
    /// `pull_request.labels[].name`, `CI_MERGE_REQUEST_LABELS`); empty
    /// outside one.
    pub pr_labels: Vec<String>,
    /// The repository's short name (payload `repository.name`).
    pub repository_name: Option<String>,
    /// The repository's description (payload `repository.description`).
    pub repository_description: Option<String>,
    /// The repository's web page (payload `repository.html_url`).
    pub repository_url: Option<String>,
    /// The repository's licence as an SPDX id (payload
    /// `repository.license.spdx_id`).
    pub repository_license: Option<String>,
    /// The dates of the commits the event describes, by sha (payload
    /// `commits[]` and `head_commit`, `id` and `timestamp`).
    pub commit_dates: Vec<(String, jiff::Timestamp)>,
}

/// The variables that describe a GitHub event; outside a known CI, any of
/// them set is read as that event by
/// [`CiContext::from_env_or_github_variables`].
const GITHUB_EVENT_VARIABLES: [&str; 4] = [
    "GITHUB_EVENT_NAME",
    "GITHUB_REF",
    "GITHUB_SHA",
    "GITHUB_EVENT_PATH",
];

/// Whether `get` describes a GitHub Actions run (`GITHUB_ACTIONS=true`).
pub fn is_github_actions(get: impl Fn(&str) -> Option<String>) -> bool {
    get("GITHUB_ACTIONS").as_deref() == Some("true")
}

/// Which CI the variables `get` returns describe, by the variable each CI
/// sets to say it is there (GitHub Actions first, then GitLab CI, Jenkins,
/// Buildkite, CircleCI); empty variables count as unset. Reads nothing
/// else, so it cannot fail: [`crate::output`] uses it to pick each CI's
/// annotations and log sections.
pub fn provider(get: impl Fn(&str) -> Option<String>) -> Provider {
    let get = |name: &str| get(name).filter(|value| !value.is_empty());
    if is_github_actions(get) {
        Provider::GithubActions
    } else if get("GITLAB_CI").as_deref() == Some("true") {
        Provider::GitlabCi
    } else if get("JENKINS_URL").is_some() {
        Provider::Jenkins
    } else if get("BUILDKITE").as_deref() == Some("true") {
        Provider::Buildkite
    } else if get("CIRCLECI").as_deref() == Some("true") {
        Provider::CircleCi
    } else {
        Provider::None
    }
}

impl CiContext {
    /// The context of this process, from its environment.
    pub fn detect() -> Result<CiContext, CiError> {
        let ctx = Self::from_env(|name| std::env::var(name).ok())?;
        tracing::debug!(
            provider = ?ctx.provider,
            event = ?ctx.event,
            sha = ?ctx.sha,
            git_ref = ?ctx.git_ref,
            "detected the CI context"
        );
        Ok(ctx)
    }

    /// The context described by the variables `get` returns (and by the
    /// GitHub event file they name): GitHub Actions (`GITHUB_ACTIONS=true`),
    /// GitLab CI (`GITLAB_CI=true`), else [`CiContext::local`].
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<CiContext, CiError> {
        let get = |name: &str| get(name).filter(|value| !value.is_empty());
        match provider(get) {
            Provider::GithubActions => github(Provider::GithubActions, get),
            Provider::GitlabCi => gitlab(get),
            Provider::Jenkins => jenkins(get),
            Provider::Buildkite => buildkite(get),
            Provider::CircleCi => circleci(get),
            Provider::None => Ok(CiContext::local()),
        }
    }

    /// As [`CiContext::from_env`], but outside a known CI, GitHub's event
    /// variables (`GITHUB_EVENT_NAME`, `GITHUB_REF`, `GITHUB_SHA`,
    /// `GITHUB_EVENT_PATH`), when any is set, still describe the event, with
    /// [`Provider::None`]. Same as docker/metadata-action's documented
    /// defaults (`$GITHUB_REF`, …), which the tag context follows, so a run
    /// by hand or in another CI can give the event that way.
    pub fn from_env_or_github_variables(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<CiContext, CiError> {
        let get = |name: &str| get(name).filter(|value| !value.is_empty());
        let ctx = Self::from_env(get)?;
        if ctx.provider == Provider::None
            && GITHUB_EVENT_VARIABLES
                .iter()
                .any(|name| get(name).is_some())
        {
            return github(Provider::None, get);
        }
        Ok(ctx)
    }

    /// The context outside CI: no provider, event [`Event::Local`], no facts.
    pub fn local() -> CiContext {
        CiContext::empty(Provider::None, Event::Local, String::new())
    }

    fn empty(provider: Provider, event: Event, event_name: String) -> CiContext {
        CiContext {
            provider,
            event,
            event_name,
            sha: None,
            git_ref: None,
            ref_name: None,
            base_ref: None,
            head_ref: None,
            pr_number: None,
            pr_head_sha: None,
            pr_base_sha: None,
            push_before: None,
            push_after: None,
            is_new_branch: false,
            is_forced: false,
            push_before_from: None,
            default_branch: None,
            repository: None,
            server_url: None,
            run_id: None,
            run_attempt: None,
            actor: None,
            pr_labels: Vec::new(),
            repository_name: None,
            repository_description: None,
            repository_url: None,
            repository_license: None,
            commit_dates: Vec::new(),
        }
    }

    /// What this event means to diff, as `(base, head)` revisions:
    ///
    /// - a pull or merge request (or merge queue entry): its base sha (or,
    ///   without a payload, its base branch name, for the caller to resolve,
    ///   e.g. as `origin/<base>`) to its head sha (or the checked-out sha);
    /// - a push: `before` to `after`, unless the push created the ref
    ///   (`before` all zeros), when there is nothing to diff against;
    /// - anything else: `None`.
    ///
    /// Same choices as dorny/paths-filter without a token: pull requests
    /// compare against the base sha, pushes against `before`, and a new
    /// branch has no previous commit (the caller may fall back to the
    /// default branch, [`CiContext::default_branch`]).
    pub fn diff_range(&self) -> Option<(String, String)> {
        let is_review = matches!(
            self.event,
            Event::PullRequest | Event::PullRequestTarget | Event::MergeRequest
        ) || self.pr_head_sha.is_some();
        if is_review {
            let base = self.pr_base_sha.clone().or_else(|| self.base_ref.clone())?;
            let head = self.pr_head_sha.clone().or_else(|| self.sha.clone())?;
            return Some((base, head));
        }
        if matches!(self.event, Event::Push | Event::Tag) {
            let before = self
                .push_before
                .clone()
                .filter(|before| before != NULL_SHA)?;
            let after = self.push_after.clone().or_else(|| self.sha.clone())?;
            return Some((before, after));
        }
        None
    }
}

/// The context of a GitHub Actions run.
fn github(provider: Provider, get: impl Fn(&str) -> Option<String>) -> Result<CiContext, CiError> {
    let event_name = get("GITHUB_EVENT_NAME").unwrap_or_default();
    let git_ref = get("GITHUB_REF");
    let is_tag = git_ref
        .as_deref()
        .is_some_and(|r| r.starts_with("refs/tags/"));
    let event = match event_name.as_str() {
        "push" | "create" if is_tag => Event::Tag,
        "push" => Event::Push,
        "pull_request" => Event::PullRequest,
        "pull_request_target" => Event::PullRequestTarget,
        "schedule" => Event::Schedule,
        "workflow_dispatch" => Event::WorkflowDispatch,
        other => Event::Other(other.to_owned()),
    };
    let payload = match get("GITHUB_EVENT_PATH") {
        Some(path) => Some(Payload::read(Path::new(&path))?),
        None => None,
    };
    let field = |name: &'static str| -> Result<Option<String>, CiError> {
        payload.as_ref().map_or(Ok(None), |p| p.string(name))
    };

    let mut ctx = CiContext::empty(provider, event, event_name.clone());
    ctx.ref_name = get("GITHUB_REF_NAME").or_else(|| git_ref.as_deref().map(short_ref));
    ctx.git_ref = git_ref;
    ctx.sha = get("GITHUB_SHA");
    ctx.repository = get("GITHUB_REPOSITORY");
    ctx.server_url = get("GITHUB_SERVER_URL");
    ctx.run_id = get("GITHUB_RUN_ID");
    ctx.run_attempt = number(&get, "GITHUB_RUN_ATTEMPT")?;
    ctx.actor = get("GITHUB_ACTOR");
    ctx.default_branch = field("repository.default_branch")?;
    if let Some(payload) = &payload {
        // Read leniently, as metadata-action does: these only fill labels.
        let text = |field: &str| {
            payload
                .get(field)
                .and_then(serde_json::Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        ctx.repository_name = text("repository.name");
        ctx.repository_description = text("repository.description");
        ctx.repository_url = text("repository.html_url");
        ctx.repository_license = text("repository.license.spdx_id");
        ctx.commit_dates = payload.commit_dates();
    }

    match event_name.as_str() {
        "pull_request"
        | "pull_request_target"
        | "pull_request_review"
        | "pull_request_review_comment" => {
            ctx.base_ref = get("GITHUB_BASE_REF").or(field("pull_request.base.ref")?);
            ctx.head_ref = get("GITHUB_HEAD_REF").or(field("pull_request.head.ref")?);
            ctx.pr_base_sha = field("pull_request.base.sha")?;
            ctx.pr_head_sha = field("pull_request.head.sha")?;
            ctx.pr_number = match &payload {
                Some(p) => p.number("pull_request.number")?.or(p.number("number")?),
                None => None,
            };
            ctx.pr_labels = payload
                .as_ref()
                .and_then(|p| p.get("pull_request.labels"))
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|label| label.get("name")?.as_str().map(str::to_owned))
                .collect();
        }
        "merge_group" => {
            ctx.base_ref = field("merge_group.base_ref")?.map(|r| short_ref(&r));
            ctx.head_ref = field("merge_group.head_ref")?.map(|r| short_ref(&r));
            ctx.pr_base_sha = field("merge_group.base_sha")?;
            ctx.pr_head_sha = field("merge_group.head_sha")?;
        }
        "push" => {
            ctx.push_before = field("before")?;
            ctx.push_after = field("after")?;
            ctx.is_new_branch = ctx.push_before.as_deref() == Some(NULL_SHA);
            ctx.is_forced = match &payload {
                Some(p) => p.boolean("forced")?.unwrap_or(false),
                None => false,
            };
            ctx.base_ref = field("base_ref")?.map(|r| short_ref(&r));
        }
        _ => {}
    }
    Ok(ctx)
}

/// The context of a GitLab CI pipeline.
fn gitlab(get: impl Fn(&str) -> Option<String>) -> Result<CiContext, CiError> {
    let event_name = get("CI_PIPELINE_SOURCE").unwrap_or_default();
    let tag = get("CI_COMMIT_TAG");
    let branch = get("CI_COMMIT_BRANCH");
    let iid = number::<u64>(&get, "CI_MERGE_REQUEST_IID")?;
    let event = match event_name.as_str() {
        "push" if tag.is_some() => Event::Tag,
        "push" => Event::Push,
        "merge_request_event" => Event::MergeRequest,
        "schedule" => Event::Schedule,
        "web" => Event::WorkflowDispatch,
        other => Event::Other(other.to_owned()),
    };

    let mut ctx = CiContext::empty(Provider::GitlabCi, event, event_name);
    ctx.sha = get("CI_COMMIT_SHA");
    ctx.ref_name = get("CI_COMMIT_REF_NAME");
    ctx.git_ref = if let Some(tag) = &tag {
        Some(format!("refs/tags/{tag}"))
    } else if let Some(iid) = iid {
        get("CI_MERGE_REQUEST_REF_PATH").or(Some(format!("refs/merge-requests/{iid}/head")))
    } else {
        branch.as_ref().map(|branch| format!("refs/heads/{branch}"))
    };
    ctx.pr_number = iid;
    ctx.pr_labels = get("CI_MERGE_REQUEST_LABELS")
        .map(|labels| labels.split(',').map(|l| l.trim().to_owned()).collect())
        .unwrap_or_default();
    ctx.base_ref = get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME");
    ctx.head_ref = get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME");
    if iid.is_some() {
        // CI_MERGE_REQUEST_SOURCE_BRANCH_SHA is set only in merged-results
        // pipelines, where CI_COMMIT_SHA is the merge; otherwise the
        // checked-out commit is the source branch's head.
        ctx.pr_head_sha = get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA").or(ctx.sha.clone());
        ctx.pr_base_sha = get("CI_MERGE_REQUEST_DIFF_BASE_SHA")
            .or_else(|| get("CI_MERGE_REQUEST_TARGET_BRANCH_SHA"));
    }
    // GitLab sets CI_COMMIT_BEFORE_SHA to all zeros outside pushes (merge
    // requests, schedules, manual runs), so it means "new ref" only on a push.
    if matches!(ctx.event, Event::Push | Event::Tag) {
        ctx.push_before = get("CI_COMMIT_BEFORE_SHA");
        ctx.push_after = ctx.sha.clone();
        ctx.is_new_branch = ctx.push_before.as_deref() == Some(NULL_SHA);
    }
    ctx.default_branch = get("CI_DEFAULT_BRANCH");
    ctx.repository = get("CI_PROJECT_PATH");
    ctx.server_url = get("CI_SERVER_URL");
    ctx.run_id = get("CI_PIPELINE_ID");
    ctx.actor = get("GITLAB_USER_LOGIN");
    Ok(ctx)
}

/// The context of a Jenkins build. Jenkins has no event name: a build with
/// `CHANGE_ID` is a pull request (multibranch), with `TAG_NAME` a tag, else
/// a branch build, whose range starts at the last successful build's commit.
/// Variables as Jenkins documents them: the git plugin's `GIT_COMMIT`,
/// `GIT_BRANCH` (`origin/main`), `GIT_PREVIOUS_COMMIT` (the commit of the
/// previous build of this branch) and `GIT_PREVIOUS_SUCCESSFUL_COMMIT`;
/// multibranch pipelines' `BRANCH_NAME` (`main`, `PR-5`, `v1.2.3`),
/// `CHANGE_ID`, `CHANGE_TARGET`, `CHANGE_BRANCH`, `TAG_NAME`.
fn jenkins(get: impl Fn(&str) -> Option<String>) -> Result<CiContext, CiError> {
    let change = number::<u64>(&get, "CHANGE_ID")?;
    let tag = get("TAG_NAME");
    let (event, event_name) = if change.is_some() {
        (Event::PullRequest, "pull_request")
    } else if tag.is_some() {
        (Event::Tag, "tag")
    } else {
        (Event::Push, "push")
    };
    let mut ctx = CiContext::empty(Provider::Jenkins, event, event_name.to_owned());
    ctx.sha = get("GIT_COMMIT");
    // The git plugin names the remote-tracking branch (`origin/main`).
    let branch = get("BRANCH_NAME").or_else(|| {
        get("GIT_BRANCH").map(|branch| {
            [
                "refs/remotes/origin/",
                "remotes/origin/",
                "origin/",
                "refs/heads/",
            ]
            .iter()
            .find_map(|prefix| branch.strip_prefix(prefix))
            .unwrap_or(&branch)
            .to_owned()
        })
    });
    if let Some(number) = change {
        ctx.git_ref = Some(format!("refs/pull/{number}/head"));
        ctx.ref_name = branch;
        ctx.pr_number = Some(number);
        ctx.base_ref = get("CHANGE_TARGET");
        ctx.head_ref = get("CHANGE_BRANCH");
    } else if let Some(tag) = tag {
        ctx.git_ref = Some(format!("refs/tags/{tag}"));
        ctx.ref_name = Some(tag);
    } else {
        ctx.git_ref = branch.as_ref().map(|b| format!("refs/heads/{b}"));
        ctx.ref_name = branch;
        let successful = get("GIT_PREVIOUS_SUCCESSFUL_COMMIT");
        let (before, from) = match successful {
            Some(sha) => (
                Some(sha),
                "the last successful build's commit (GIT_PREVIOUS_SUCCESSFUL_COMMIT)",
            ),
            None => (
                get("GIT_PREVIOUS_COMMIT"),
                "the previous build's commit (GIT_PREVIOUS_COMMIT)",
            ),
        };
        ctx.push_before_from = before.as_ref().map(|_| from);
        ctx.push_before = before;
        ctx.push_after = ctx.sha.clone();
    }
    ctx.run_id = get("BUILD_NUMBER");
    Ok(ctx)
}

/// The context of a Buildkite build, from its documented variables:
/// `BUILDKITE_COMMIT` (a sha, or `HEAD` before the agent resolved it),
/// `BUILDKITE_BRANCH`, `BUILDKITE_TAG`, `BUILDKITE_PULL_REQUEST` (the number,
/// or `false`), `BUILDKITE_PULL_REQUEST_BASE_BRANCH`, `BUILDKITE_SOURCE`
/// (`webhook`, `api`, `ui`, `trigger_job`, `schedule`) and
/// `BUILDKITE_PIPELINE_DEFAULT_BRANCH`. It gives no push range.
fn buildkite(get: impl Fn(&str) -> Option<String>) -> Result<CiContext, CiError> {
    let source = get("BUILDKITE_SOURCE").unwrap_or_default();
    let pull_request = get("BUILDKITE_PULL_REQUEST").filter(|value| value != "false");
    let number = pull_request
        .map(|value| {
            value.parse::<u64>().map_err(|_| CiError::Variable {
                name: "BUILDKITE_PULL_REQUEST",
                value,
                expected: "a number or `false`",
            })
        })
        .transpose()?;
    let tag = get("BUILDKITE_TAG");
    let branch = get("BUILDKITE_BRANCH");
    let event = if number.is_some() {
        Event::PullRequest
    } else if tag.is_some() {
        Event::Tag
    } else {
        match source.as_str() {
            "webhook" => Event::Push,
            "schedule" => Event::Schedule,
            "ui" => Event::WorkflowDispatch,
            other => Event::Other(other.to_owned()),
        }
    };
    let mut ctx = CiContext::empty(Provider::Buildkite, event, source);
    ctx.sha = get("BUILDKITE_COMMIT").filter(|sha| sha != "HEAD");
    if let Some(number) = number {
        ctx.git_ref = Some(format!("refs/pull/{number}/head"));
        ctx.pr_number = Some(number);
        ctx.base_ref = get("BUILDKITE_PULL_REQUEST_BASE_BRANCH");
        ctx.head_ref = branch.clone();
        ctx.ref_name = branch;
    } else if let Some(tag) = tag {
        ctx.git_ref = Some(format!("refs/tags/{tag}"));
        ctx.ref_name = Some(tag);
    } else {
        ctx.git_ref = branch.as_ref().map(|b| format!("refs/heads/{b}"));
        ctx.ref_name = branch;
    }
    ctx.default_branch = get("BUILDKITE_PIPELINE_DEFAULT_BRANCH");
    ctx.run_id = get("BUILDKITE_BUILD_ID");
    ctx.actor = get("BUILDKITE_BUILD_CREATOR");
    Ok(ctx)
}

/// The context of a CircleCI job, from its documented variables:
/// `CIRCLE_SHA1`, `CIRCLE_BRANCH`, `CIRCLE_TAG`, `CIRCLE_PR_NUMBER` (set
/// only for a pull request from a fork, whose build is the pull request's),
/// `CIRCLE_PULL_REQUEST` (the URL of the branch's open pull request, ending
/// in its number). A branch build with an open pull request stays a push
/// build (its number is kept in `pr_number`); CircleCI names no base branch
/// and gives no push range.
fn circleci(get: impl Fn(&str) -> Option<String>) -> Result<CiContext, CiError> {
    let fork_number = number::<u64>(&get, "CIRCLE_PR_NUMBER")?;
    let url_number = match get("CIRCLE_PULL_REQUEST") {
        Some(url) => {
            let last = url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            Some(last.parse::<u64>().map_err(|_| CiError::Variable {
                name: "CIRCLE_PULL_REQUEST",
                value: url.clone(),
                expected: "a pull request URL ending in its number",
            })?)
        }
        None => None,
    };
    let tag = get("CIRCLE_TAG");
    let branch = get("CIRCLE_BRANCH");
    let (event, event_name) = if fork_number.is_some() {
        (Event::PullRequest, "pull_request")
    } else if tag.is_some() {
        (Event::Tag, "tag")
    } else {
        (Event::Push, "push")
    };
    let mut ctx = CiContext::empty(Provider::CircleCi, event, event_name.to_owned());
    ctx.sha = get("CIRCLE_SHA1");
    ctx.pr_number = fork_number.or(url_number);
    if let Some(number) = fork_number {
        ctx.git_ref = Some(format!("refs/pull/{number}/head"));
        ctx.head_ref = branch.clone();
        ctx.ref_name = branch;
    } else if let Some(tag) = tag {
        ctx.git_ref = Some(format!("refs/tags/{tag}"));
        ctx.ref_name = Some(tag);
    } else {
        ctx.git_ref = branch.as_ref().map(|b| format!("refs/heads/{b}"));
        ctx.ref_name = branch;
    }
    ctx.run_id = get("CIRCLE_WORKFLOW_ID");
    ctx.actor = get("CIRCLE_USERNAME");
    if let (Some(owner), Some(name)) = (
        get("CIRCLE_PROJECT_USERNAME"),
        get("CIRCLE_PROJECT_REPONAME"),
    ) {
        ctx.repository = Some(format!("{owner}/{name}"));
    }
    Ok(ctx)
}

/// The variable `name` as a number, if set.
fn number<T: std::str::FromStr>(
    get: impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, CiError> {
    get(name)
        .map(|value| {
            value.parse().map_err(|_| CiError::Variable {
                name,
                value: value.clone(),
                expected: "a number",
            })
        })
        .transpose()
}

/// `refs/heads/x` and `refs/tags/x` as `x`; other refs unchanged but for a
/// leading `refs/` (`refs/pull/5/merge` as `pull/5/merge`).
fn short_ref(full: &str) -> String {
    ["refs/heads/", "refs/tags/", "refs/"]
        .iter()
        .find_map(|prefix| full.strip_prefix(prefix))
        .unwrap_or(full)
        .to_owned()
}

/// The GitHub event payload: the webhook's JSON, written by the runner to
/// the file `GITHUB_EVENT_PATH` names.
struct Payload {
    path: PathBuf,
    json: serde_json::Value,
}

impl Payload {
    fn read(path: &Path) -> Result<Payload, CiError> {
        let text =
            crate::input::read_to_string(path).map_err(|e| CiError::EventFileUnreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let json = serde_json::from_str(&text).map_err(|e| CiError::EventFileInvalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Payload {
            path: path.to_owned(),
            json,
        })
    }

    /// The value at a dotted `field` path; `null` counts as absent.
    fn get(&self, field: &str) -> Option<&serde_json::Value> {
        field
            .split('.')
            .try_fold(&self.json, |value, key| value.get(key))
            .filter(|value| !value.is_null())
    }

    /// `commits[]` and `head_commit` as `(id, timestamp)`; commits without
    /// both, or with a timestamp that is not RFC 3339, are left out.
    fn commit_dates(&self) -> Vec<(String, jiff::Timestamp)> {
        let commits = self.get("commits").and_then(serde_json::Value::as_array);
        commits
            .into_iter()
            .flatten()
            .chain(self.get("head_commit"))
            .filter_map(|commit| {
                let id = commit.get("id")?.as_str()?;
                let date = commit.get("timestamp")?.as_str()?.parse().ok()?;
                Some((id.to_owned(), date))
            })
            .collect()
    }

    fn wrong_type(&self, field: &'static str, expected: &'static str) -> CiError {
        CiError::EventField {
            path: self.path.clone(),
            field,
            expected,
            found: self.get(field).map(ToString::to_string).unwrap_or_default(),
        }
    }

    fn string(&self, field: &'static str) -> Result<Option<String>, CiError> {
        match self.get(field) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong_type(field, "a string")),
        }
    }

    fn number(&self, field: &'static str) -> Result<Option<u64>, CiError> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(field, "a number")),
        }
    }

    fn boolean(&self, field: &'static str) -> Result<Option<bool>, CiError> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => value
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong_type(field, "true or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "1111111111111111111111111111111111111111";
    const AFTER: &str = "2222222222222222222222222222222222222222";
    const BASE: &str = "3333333333333333333333333333333333333333";
    const HEAD: &str = "4444444444444444444444444444444444444444";
    const MERGE: &str = "5555555555555555555555555555555555555555";

    /// What every GitHub Actions run has, whatever the event.
    const GITHUB: &[(&str, &str)] = &[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "octo/app"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_RUN_ATTEMPT", "2"),
        ("GITHUB_ACTOR", "octocat"),
        ("GITHUB_BASE_REF", ""),
        ("GITHUB_HEAD_REF", ""),
    ];

    /// What every GitLab CI pipeline has, whatever the source.
    const GITLAB: &[(&str, &str)] = &[
        ("GITLAB_CI", "true"),
        ("CI", "true"),
        ("CI_PROJECT_PATH", "group/sub/app"),
        ("CI_SERVER_URL", "https://gitlab.example.com"),
        ("CI_PIPELINE_ID", "7"),
        ("CI_DEFAULT_BRANCH", "main"),
        ("GITLAB_USER_LOGIN", "dev"),
        ("CI_COMMIT_TAG", ""),
    ];

    fn s(value: &str) -> Option<String> {
        Some(value.to_owned())
    }

    fn github(event: Event, name: &str) -> CiContext {
        CiContext {
            repository: s("octo/app"),
            server_url: s("https://github.com"),
            run_id: s("42"),
            run_attempt: Some(2),
            actor: s("octocat"),
            ..CiContext::empty(Provider::GithubActions, event, name.to_owned())
        }
    }

    fn gitlab(event: Event, name: &str) -> CiContext {
        CiContext {
            repository: s("group/sub/app"),
            server_url: s("https://gitlab.example.com"),
            run_id: s("7"),
            default_branch: s("main"),
            actor: s("dev"),
            ..CiContext::empty(Provider::GitlabCi, event, name.to_owned())
        }
    }

    /// Runs `from_env` over `common` and `env`, with `event` (if any) written
    /// to a temp file named by `GITHUB_EVENT_PATH`; errors have the temp dir
    /// as `[TMP]`.
    #[track_caller]
    fn check(
        common: &[(&str, &str)],
        env: &[(&str, &str)],
        event: Option<&str>,
        expected: Result<CiContext, &str>,
        diff: Option<(&str, &str)>,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut vars: Vec<(String, String)> = common
            .iter()
            .chain(env)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(json) = event {
            let path = dir.path().join("event.json");
            fs_err::write(&path, json).expect("event file written");
            vars.push(("GITHUB_EVENT_PATH".to_owned(), path.display().to_string()));
        }
        let get = |name: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let actual = CiContext::from_env(get).map_err(|e| {
            e.to_string()
                .replace(&dir.path().display().to_string(), "[TMP]")
        });
        match (&actual, &expected) {
            (Ok(actual), Ok(expected)) => {
                assert_eq!(actual, expected);
                let diff = diff.map(|(base, head)| (base.to_owned(), head.to_owned()));
                assert_eq!(actual.diff_range(), diff, "diff_range");
            }
            (Err(actual), Err(expected)) => assert_eq!(actual, expected),
            _ => panic!("got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn github_push() {
        let env = [
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", AFTER),
        ];
        let event = format!(
            r#"{{"ref": "refs/heads/main", "before": "{BEFORE}", "after": "{AFTER}", "created": false, "forced": false, "base_ref": null, "repository": {{"default_branch": "main"}}}}"#
        );
        let push = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            push_before: s(BEFORE),
            push_after: s(AFTER),
            default_branch: s("main"),
            ..github(Event::Push, "push")
        };
        check(
            GITHUB,
            &env,
            Some(&event),
            Ok(push.clone()),
            Some((BEFORE, AFTER)),
        );

        let forced = event.replace(r#""forced": false"#, r#""forced": true"#);
        check(
            GITHUB,
            &env,
            Some(&forced),
            Ok(CiContext {
                is_forced: true,
                ..push.clone()
            }),
            Some((BEFORE, AFTER)),
        );

        let new_branch = event
            .replace(BEFORE, NULL_SHA)
            .replace(r#""created": false"#, r#""created": true"#);
        check(
            GITHUB,
            &env,
            Some(&new_branch),
            Ok(CiContext {
                push_before: s(NULL_SHA),
                is_new_branch: true,
                ..push.clone()
            }),
            None,
        );

        // Without the payload, the sha and ref still tell what was pushed.
        check(
            GITHUB,
            &env,
            None,
            Ok(CiContext {
                push_before: None,
                push_after: None,
                default_branch: None,
                ..push
            }),
            None,
        );
    }

    #[test]
    fn github_tag_push() {
        let env = [
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_REF_NAME", "v1.2.3"),
            ("GITHUB_SHA", AFTER),
        ];
        let event = format!(
            r#"{{"ref": "refs/tags/v1.2.3", "before": "{NULL_SHA}", "after": "{AFTER}", "created": true, "forced": false, "base_ref": "refs/heads/main", "repository": {{"default_branch": "main"}}}}"#
        );
        let tag = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/tags/v1.2.3"),
            ref_name: s("v1.2.3"),
            base_ref: s("main"),
            push_before: s(NULL_SHA),
            push_after: s(AFTER),
            is_new_branch: true,
            default_branch: s("main"),
            ..github(Event::Tag, "push")
        };
        check(GITHUB, &env, Some(&event), Ok(tag), None);
        let env = [
            ("GITHUB_EVENT_NAME", "create"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_SHA", AFTER),
        ];
        let created = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/tags/v1.2.3"),
            ref_name: s("v1.2.3"),
            ..github(Event::Tag, "create")
        };
        check(GITHUB, &env, None, Ok(created), None);
    }

    #[test]
    fn github_pull_requests() {
        let event = format!(
            r#"{{"action": "synchronize", "number": 5, "before": "{BEFORE}", "after": "{HEAD}", "pull_request": {{"number": 5, "labels": [{{"name": "release:minor"}}, {{"name": "bug"}}], "head": {{"sha": "{HEAD}", "ref": "feature"}}, "base": {{"sha": "{BASE}", "ref": "main"}}}}, "repository": {{"default_branch": "main"}}}}"#
        );
        let labels = vec!["release:minor".to_owned(), "bug".to_owned()];
        let env = [
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/5/merge"),
            ("GITHUB_REF_NAME", "5/merge"),
            ("GITHUB_SHA", MERGE),
            ("GITHUB_BASE_REF", "main"),
            ("GITHUB_HEAD_REF", "feature"),
        ];
        let pr = CiContext {
            sha: s(MERGE),
            git_ref: s("refs/pull/5/merge"),
            ref_name: s("5/merge"),
            base_ref: s("main"),
            head_ref: s("feature"),
            pr_number: Some(5),
            pr_head_sha: s(HEAD),
            pr_base_sha: s(BASE),
            default_branch: s("main"),
            pr_labels: labels.clone(),
            ..github(Event::PullRequest, "pull_request")
        };
        check(
            GITHUB,
            &env,
            Some(&event),
            Ok(pr.clone()),
            Some((BASE, HEAD)),
        );

        // Without a payload: the base branch against the test merge commit.
        let bare = CiContext {
            pr_number: None,
            pr_head_sha: None,
            pr_base_sha: None,
            default_branch: None,
            pr_labels: Vec::new(),
            ..pr
        };
        check(GITHUB, &env, None, Ok(bare), Some(("main", MERGE)));

        // pull_request_target runs on the base branch's head.
        let env = [
            ("GITHUB_EVENT_NAME", "pull_request_target"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", BASE),
            ("GITHUB_BASE_REF", "main"),
            ("GITHUB_HEAD_REF", "feature"),
        ];
        let target = CiContext {
            sha: s(BASE),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            base_ref: s("main"),
            head_ref: s("feature"),
            pr_number: Some(5),
            pr_head_sha: s(HEAD),
            pr_base_sha: s(BASE),
            default_branch: s("main"),
            pr_labels: labels,
            ..github(Event::PullRequestTarget, "pull_request_target")
        };
        check(GITHUB, &env, Some(&event), Ok(target), Some((BASE, HEAD)));
    }

    #[test]
    fn github_merge_queue_schedule_and_manual_runs() {
        let queue_ref = format!("refs/heads/gh-readonly-queue/main/pr-5-{HEAD}");
        let env = [
            ("GITHUB_EVENT_NAME", "merge_group"),
            ("GITHUB_REF", queue_ref.as_str()),
            ("GITHUB_SHA", MERGE),
        ];
        let event = format!(
            r#"{{"action": "checks_requested", "merge_group": {{"head_sha": "{MERGE}", "head_ref": "{queue_ref}", "base_sha": "{BASE}", "base_ref": "refs/heads/main"}}, "repository": {{"default_branch": "main"}}}}"#
        );
        let queue = CiContext {
            sha: s(MERGE),
            git_ref: s(&queue_ref),
            ref_name: s(&format!("gh-readonly-queue/main/pr-5-{HEAD}")),
            base_ref: s("main"),
            head_ref: s(&format!("gh-readonly-queue/main/pr-5-{HEAD}")),
            pr_head_sha: s(MERGE),
            pr_base_sha: s(BASE),
            default_branch: s("main"),
            ..github(Event::Other("merge_group".to_owned()), "merge_group")
        };
        check(GITHUB, &env, Some(&event), Ok(queue), Some((BASE, MERGE)));

        let env = [
            ("GITHUB_EVENT_NAME", "schedule"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", AFTER),
        ];
        let schedule = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            ..github(Event::Schedule, "schedule")
        };
        check(
            GITHUB,
            &env,
            Some(r#"{"schedule": "0 3 * * *"}"#),
            Ok(schedule),
            None,
        );

        let env = [
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_REF", "refs/heads/release"),
            ("GITHUB_REF_NAME", "release"),
            ("GITHUB_SHA", AFTER),
        ];
        let event = r#"{"inputs": {"env": "staging"}, "ref": "refs/heads/release", "repository": {"default_branch": "main"}}"#;
        let manual = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/release"),
            ref_name: s("release"),
            default_branch: s("main"),
            ..github(Event::WorkflowDispatch, "workflow_dispatch")
        };
        check(GITHUB, &env, Some(event), Ok(manual), None);

        let env = [
            ("GITHUB_EVENT_NAME", "release"),
            ("GITHUB_REF", "refs/tags/v2.0.0"),
            ("GITHUB_SHA", AFTER),
        ];
        let release = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/tags/v2.0.0"),
            ref_name: s("v2.0.0"),
            ..github(Event::Other("release".to_owned()), "release")
        };
        check(GITHUB, &env, None, Ok(release), None);
    }

    #[test]
    fn github_errors_name_the_file_field_and_value() {
        let env = [
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/5/merge"),
        ];
        check(
            GITHUB,
            &env,
            Some(r#"{"pull_request": {"number": "five"}}"#),
            Err("`pull_request.number` in `[TMP]/event.json` is not a number: found `\"five\"`"),
            None,
        );
        check(
            GITHUB,
            &env,
            Some(r#"{"pull_request": {"head": {"sha": 4}}}"#),
            Err("`pull_request.head.sha` in `[TMP]/event.json` is not a string: found `4`"),
            None,
        );
        check(
            GITHUB,
            &env,
            Some("{\"pull_request\": \n"),
            Err(
                "GITHUB_EVENT_PATH `[TMP]/event.json` is not valid JSON: EOF while parsing a value at line 2 column 0",
            ),
            None,
        );
        let push = [
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
        ];
        check(
            GITHUB,
            &push,
            Some(r#"{"forced": "yes"}"#),
            Err("`forced` in `[TMP]/event.json` is not true or false: found `\"yes\"`"),
            None,
        );
        let missing = [
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", "/nonexistent/event.json"),
        ];
        check(
            GITHUB,
            &missing,
            None,
            Err(
                "GITHUB_EVENT_PATH `/nonexistent/event.json` cannot be read: failed to open file \
                 `/nonexistent/event.json`: No such file or directory (os error 2)",
            ),
            None,
        );
        let attempt = [
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_RUN_ATTEMPT", "first"),
        ];
        check(
            GITHUB,
            &attempt,
            None,
            Err("GITHUB_RUN_ATTEMPT `first` is not a number"),
            None,
        );
    }

    #[test]
    fn gitlab_pipelines() {
        let env = [
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_SHA", AFTER),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_BEFORE_SHA", BEFORE),
        ];
        let push = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            push_before: s(BEFORE),
            push_after: s(AFTER),
            ..gitlab(Event::Push, "push")
        };
        check(GITLAB, &env, None, Ok(push), Some((BEFORE, AFTER)));

        let env = [
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_SHA", AFTER),
            ("CI_COMMIT_REF_NAME", "v1.2.3"),
            ("CI_COMMIT_TAG", "v1.2.3"),
            ("CI_COMMIT_BEFORE_SHA", NULL_SHA),
        ];
        let tag = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/tags/v1.2.3"),
            ref_name: s("v1.2.3"),
            push_before: s(NULL_SHA),
            push_after: s(AFTER),
            is_new_branch: true,
            ..gitlab(Event::Tag, "push")
        };
        check(GITLAB, &env, None, Ok(tag), None);

        let env = [
            ("CI_PIPELINE_SOURCE", "merge_request_event"),
            ("CI_COMMIT_SHA", HEAD),
            ("CI_COMMIT_REF_NAME", "feature"),
            ("CI_COMMIT_BEFORE_SHA", NULL_SHA),
            ("CI_MERGE_REQUEST_IID", "12"),
            ("CI_MERGE_REQUEST_REF_PATH", "refs/merge-requests/12/head"),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature"),
            ("CI_MERGE_REQUEST_DIFF_BASE_SHA", BASE),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", ""),
        ];
        let mr = CiContext {
            sha: s(HEAD),
            git_ref: s("refs/merge-requests/12/head"),
            ref_name: s("feature"),
            base_ref: s("main"),
            head_ref: s("feature"),
            pr_number: Some(12),
            pr_head_sha: s(HEAD),
            pr_base_sha: s(BASE),
            ..gitlab(Event::MergeRequest, "merge_request_event")
        };
        check(GITLAB, &env, None, Ok(mr.clone()), Some((BASE, HEAD)));

        // A merged-results pipeline checks out the merge; the source head is separate.
        let merged = [
            &env[..],
            &[
                ("CI_COMMIT_SHA", MERGE),
                ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", HEAD),
            ],
        ]
        .concat();
        check(
            GITLAB,
            &merged,
            None,
            Ok(CiContext {
                sha: s(MERGE),
                ..mr
            }),
            Some((BASE, HEAD)),
        );

        let env = [
            ("CI_PIPELINE_SOURCE", "schedule"),
            ("CI_COMMIT_SHA", AFTER),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_BEFORE_SHA", NULL_SHA),
        ];
        let schedule = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            ..gitlab(Event::Schedule, "schedule")
        };
        check(GITLAB, &env, None, Ok(schedule), None);

        let env = [
            ("CI_PIPELINE_SOURCE", "web"),
            ("CI_COMMIT_SHA", AFTER),
            ("CI_COMMIT_BRANCH", "main"),
        ];
        let manual = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ..gitlab(Event::WorkflowDispatch, "web")
        };
        check(GITLAB, &env, None, Ok(manual), None);

        let env = [
            ("CI_PIPELINE_SOURCE", "api"),
            ("CI_MERGE_REQUEST_IID", "twelve"),
        ];
        check(
            GITLAB,
            &env,
            None,
            Err("CI_MERGE_REQUEST_IID `twelve` is not a number"),
            None,
        );
    }

    /// What a Jenkins build has, whatever the job (Jenkins' own variables).
    const JENKINS: &[(&str, &str)] = &[
        ("JENKINS_URL", "https://jenkins.example.com/"),
        ("JENKINS_HOME", "/var/jenkins_home"),
        ("BUILD_NUMBER", "31"),
        ("BUILD_ID", "31"),
        ("JOB_NAME", "app/main"),
        ("GIT_URL", "https://github.com/octo/app.git"),
    ];

    fn jenkins(event: Event, name: &str) -> CiContext {
        CiContext {
            run_id: s("31"),
            ..CiContext::empty(Provider::Jenkins, event, name.to_owned())
        }
    }

    #[test]
    fn jenkins_builds() {
        // A multibranch build of `main` after a two-commit push: the range
        // starts at the last successful build's commit.
        let env = [
            ("BRANCH_NAME", "main"),
            ("GIT_COMMIT", AFTER),
            ("GIT_BRANCH", "origin/main"),
            ("GIT_PREVIOUS_COMMIT", BEFORE),
            ("GIT_PREVIOUS_SUCCESSFUL_COMMIT", BASE),
        ];
        let push = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            push_before: s(BASE),
            push_after: s(AFTER),
            push_before_from: Some(
                "the last successful build's commit (GIT_PREVIOUS_SUCCESSFUL_COMMIT)",
            ),
            ..jenkins(Event::Push, "push")
        };
        check(JENKINS, &env, None, Ok(push.clone()), Some((BASE, AFTER)));

        // A freestyle job: no BRANCH_NAME, GIT_BRANCH names the remote's
        // branch; no successful build yet, so the previous build's commit.
        let env = [
            ("GIT_COMMIT", AFTER),
            ("GIT_BRANCH", "origin/feature/login"),
            ("GIT_PREVIOUS_COMMIT", BEFORE),
        ];
        let freestyle = CiContext {
            git_ref: s("refs/heads/feature/login"),
            ref_name: s("feature/login"),
            push_before: s(BEFORE),
            push_before_from: Some("the previous build's commit (GIT_PREVIOUS_COMMIT)"),
            ..push.clone()
        };
        check(JENKINS, &env, None, Ok(freestyle), Some((BEFORE, AFTER)));

        // The branch's first build: no range.
        let env = [("GIT_COMMIT", AFTER), ("GIT_BRANCH", "origin/main")];
        let first = CiContext {
            push_before: None,
            push_before_from: None,
            ..push
        };
        check(JENKINS, &env, None, Ok(first), None);

        // A multibranch pull request build (GitHub branch source).
        let env = [
            ("BRANCH_NAME", "PR-5"),
            ("CHANGE_ID", "5"),
            ("CHANGE_TARGET", "main"),
            ("CHANGE_BRANCH", "feature"),
            ("CHANGE_URL", "https://github.com/octo/app/pull/5"),
            ("GIT_COMMIT", MERGE),
            ("GIT_BRANCH", "PR-5"),
            ("GIT_PREVIOUS_COMMIT", BEFORE),
        ];
        let pr = CiContext {
            sha: s(MERGE),
            git_ref: s("refs/pull/5/head"),
            ref_name: s("PR-5"),
            base_ref: s("main"),
            head_ref: s("feature"),
            pr_number: Some(5),
            ..jenkins(Event::PullRequest, "pull_request")
        };
        check(JENKINS, &env, None, Ok(pr), Some(("main", MERGE)));

        // A tag build.
        let env = [
            ("BRANCH_NAME", "v1.2.3"),
            ("TAG_NAME", "v1.2.3"),
            ("TAG_UNIXTIME", "1700000000000"),
            ("GIT_COMMIT", AFTER),
            ("GIT_BRANCH", "v1.2.3"),
        ];
        let tag = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/tags/v1.2.3"),
            ref_name: s("v1.2.3"),
            ..jenkins(Event::Tag, "tag")
        };
        check(JENKINS, &env, None, Ok(tag), None);

        check(
            JENKINS,
            &[("CHANGE_ID", "abc")],
            None,
            Err("CHANGE_ID `abc` is not a number"),
            None,
        );
    }

    /// What a Buildkite job has, whatever the build.
    const BUILDKITE: &[(&str, &str)] = &[
        ("BUILDKITE", "true"),
        ("CI", "true"),
        ("BUILDKITE_BUILD_ID", "0190-abcd"),
        ("BUILDKITE_BUILD_NUMBER", "88"),
        ("BUILDKITE_BUILD_CREATOR", "Dev Eloper"),
        ("BUILDKITE_PIPELINE_DEFAULT_BRANCH", "main"),
        ("BUILDKITE_REPO", "git@github.com:octo/app.git"),
        ("BUILDKITE_TAG", ""),
    ];

    fn buildkite(event: Event, name: &str) -> CiContext {
        CiContext {
            run_id: s("0190-abcd"),
            actor: s("Dev Eloper"),
            default_branch: s("main"),
            ..CiContext::empty(Provider::Buildkite, event, name.to_owned())
        }
    }

    #[test]
    fn buildkite_builds() {
        let env = [
            ("BUILDKITE_SOURCE", "webhook"),
            ("BUILDKITE_COMMIT", AFTER),
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_PULL_REQUEST", "false"),
            ("BUILDKITE_PULL_REQUEST_BASE_BRANCH", ""),
        ];
        let push = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            ..buildkite(Event::Push, "webhook")
        };
        check(BUILDKITE, &env, None, Ok(push), None);

        let env = [
            ("BUILDKITE_SOURCE", "webhook"),
            ("BUILDKITE_COMMIT", HEAD),
            ("BUILDKITE_BRANCH", "feature"),
            ("BUILDKITE_PULL_REQUEST", "12"),
            ("BUILDKITE_PULL_REQUEST_BASE_BRANCH", "main"),
            (
                "BUILDKITE_PULL_REQUEST_REPO",
                "git://github.com/octo/app.git",
            ),
        ];
        let pr = CiContext {
            sha: s(HEAD),
            git_ref: s("refs/pull/12/head"),
            ref_name: s("feature"),
            base_ref: s("main"),
            head_ref: s("feature"),
            pr_number: Some(12),
            ..buildkite(Event::PullRequest, "webhook")
        };
        check(BUILDKITE, &env, None, Ok(pr), Some(("main", HEAD)));

        // A tag build: BUILDKITE_BRANCH holds the tag too.
        let env = [
            ("BUILDKITE_SOURCE", "webhook"),
            ("BUILDKITE_COMMIT", AFTER),
            ("BUILDKITE_BRANCH", "v1.2.3"),
            ("BUILDKITE_TAG", "v1.2.3"),
            ("BUILDKITE_PULL_REQUEST", "false"),
        ];
        let tag = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/tags/v1.2.3"),
            ref_name: s("v1.2.3"),
            ..buildkite(Event::Tag, "webhook")
        };
        check(BUILDKITE, &env, None, Ok(tag), None);

        // A build from the web UI on `HEAD`, before the agent resolved it.
        let env = [
            ("BUILDKITE_SOURCE", "ui"),
            ("BUILDKITE_COMMIT", "HEAD"),
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_PULL_REQUEST", "false"),
        ];
        let manual = CiContext {
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            ..buildkite(Event::WorkflowDispatch, "ui")
        };
        check(BUILDKITE, &env, None, Ok(manual), None);

        let env = [
            ("BUILDKITE_SOURCE", "schedule"),
            ("BUILDKITE_COMMIT", AFTER),
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_PULL_REQUEST", "false"),
        ];
        let schedule = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            ..buildkite(Event::Schedule, "schedule")
        };
        check(BUILDKITE, &env, None, Ok(schedule), None);

        check(
            BUILDKITE,
            &[("BUILDKITE_PULL_REQUEST", "yes")],
            None,
            Err("BUILDKITE_PULL_REQUEST `yes` is not a number or `false`"),
            None,
        );
    }

    /// What a CircleCI job has, whatever the build.
    const CIRCLECI: &[(&str, &str)] = &[
        ("CIRCLECI", "true"),
        ("CI", "true"),
        ("CIRCLE_BUILD_NUM", "120"),
        ("CIRCLE_WORKFLOW_ID", "6fa2-wf"),
        ("CIRCLE_USERNAME", "octocat"),
        ("CIRCLE_PROJECT_USERNAME", "octo"),
        ("CIRCLE_PROJECT_REPONAME", "app"),
        ("CIRCLE_REPOSITORY_URL", "git@github.com:octo/app.git"),
    ];

    fn circleci(event: Event, name: &str) -> CiContext {
        CiContext {
            run_id: s("6fa2-wf"),
            actor: s("octocat"),
            repository: s("octo/app"),
            ..CiContext::empty(Provider::CircleCi, event, name.to_owned())
        }
    }

    #[test]
    fn circleci_builds() {
        let env = [("CIRCLE_SHA1", AFTER), ("CIRCLE_BRANCH", "main")];
        let push = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/heads/main"),
            ref_name: s("main"),
            ..circleci(Event::Push, "push")
        };
        check(CIRCLECI, &env, None, Ok(push.clone()), None);

        // A branch with an open pull request is still built as a push.
        let env = [
            ("CIRCLE_SHA1", AFTER),
            ("CIRCLE_BRANCH", "feature"),
            ("CIRCLE_PULL_REQUEST", "https://github.com/octo/app/pull/9"),
            ("CIRCLE_PULL_REQUESTS", "https://github.com/octo/app/pull/9"),
        ];
        let branch = CiContext {
            git_ref: s("refs/heads/feature"),
            ref_name: s("feature"),
            pr_number: Some(9),
            ..push
        };
        check(CIRCLECI, &env, None, Ok(branch), None);

        // A pull request from a fork: the build is the pull request's.
        let env = [
            ("CIRCLE_SHA1", HEAD),
            ("CIRCLE_BRANCH", "pull/9"),
            ("CIRCLE_PR_NUMBER", "9"),
            ("CIRCLE_PR_USERNAME", "forker"),
            ("CIRCLE_PR_REPONAME", "app"),
            ("CIRCLE_PULL_REQUEST", "https://github.com/octo/app/pull/9"),
        ];
        let fork = CiContext {
            sha: s(HEAD),
            git_ref: s("refs/pull/9/head"),
            ref_name: s("pull/9"),
            head_ref: s("pull/9"),
            pr_number: Some(9),
            ..circleci(Event::PullRequest, "pull_request")
        };
        check(CIRCLECI, &env, None, Ok(fork), None);

        let env = [("CIRCLE_SHA1", AFTER), ("CIRCLE_TAG", "v1.2.3")];
        let tag = CiContext {
            sha: s(AFTER),
            git_ref: s("refs/tags/v1.2.3"),
            ref_name: s("v1.2.3"),
            ..circleci(Event::Tag, "tag")
        };
        check(CIRCLECI, &env, None, Ok(tag), None);

        check(
            CIRCLECI,
            &[("CIRCLE_PULL_REQUEST", "https://github.com/octo/app/pulls")],
            None,
            Err(
                "CIRCLE_PULL_REQUEST `https://github.com/octo/app/pulls` is not a pull request URL ending in its number",
            ),
            None,
        );
    }

    #[test]
    fn outside_ci() {
        check(&[], &[], None, Ok(CiContext::local()), None);
        check(
            &[("GITHUB_ACTIONS", "false"), ("GITLAB_CI", "")],
            &[("GITHUB_SHA", AFTER)],
            None,
            Ok(CiContext::local()),
            None,
        );
        assert!(!is_github_actions(|_| None));
        let vars = |name: &str| match name {
            "GITHUB_SHA" => Some(AFTER.to_owned()),
            "GITHUB_REF" => Some("refs/heads/main".to_owned()),
            _ => None,
        };
        assert_eq!(
            CiContext::from_env_or_github_variables(vars).map_err(|e| e.to_string()),
            Ok(CiContext {
                sha: s(AFTER),
                git_ref: s("refs/heads/main"),
                ref_name: s("main"),
                ..CiContext::empty(Provider::None, Event::Other(String::new()), String::new())
            })
        );
        assert_eq!(
            CiContext::from_env_or_github_variables(|_| None).map_err(|e| e.to_string()),
            Ok(CiContext::local())
        );
        assert!(is_github_actions(
            |name| (name == "GITHUB_ACTIONS").then(|| "true".to_owned())
        ));
    }
}
