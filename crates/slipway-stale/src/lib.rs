//! Staleness of published images: compare the `org.opencontainers.image.revision`
//! label of what is published with the commit being checked and with the
//! paths each image is built from.
//!
//! Two steps, usable apart: [`fetch_published`] reads labels from the
//! registry (manifests and config blobs only, every platform of an index,
//! through a small cache of answers by digest), and [`Judge`] turns what is
//! published into a [`Verdict`] against local git history, reusing the
//! filters `changed-paths` builds from slipway.toml ([`slipway_git::paths::project`]).
//! [`verdicts`] does both; [`revision_matches`] is the deploy gate's
//! question. This module never prints.

mod cache;
mod fetch;
mod judge;

pub use cache::*;
pub use fetch::*;
pub use judge::*;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use slipway_config::Config;
pub use slipway_contract::image_stale_check::{
    FreshBecause, ImageVerdict, REVISION_LABEL, StaleCommit, StaleFile, Unknown, Verdict, Via,
};
use slipway_core::image_ref::ImageRef;
use slipway_git::Sha;
use slipway_git::changes::{ChangedFile, ChangesError, DiffOptions, Differ};
use slipway_git::paths::{FilterSet, PathsError, project};
use slipway_registry::{PlatformLabels, RegistryClient, RegistryError};

/// What is published under one reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Published {
    /// No such tag (or no such local image).
    Missing,
    /// The reference resolves to `digest`.
    Found {
        /// The manifest (or index) digest, or the local image id.
        digest: String,
        /// The revision label of each image: one for a single image, one
        /// per platform for an index.
        platforms: Vec<PlatformRevision>,
    },
}

/// The revision label of one image of a reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlatformRevision {
    /// `os/arch[/variant]` for an index entry, `None` for a single image.
    pub platform: Option<String>,
    /// The `org.opencontainers.image.revision` label, if set.
    pub revision: Option<String>,
}

impl Published {
    /// What `labels` (from [`RegistryClient::fetch_config_labels`]) say about
    /// the reference resolving to `digest`.
    pub fn from_labels(digest: impl Into<String>, labels: &[PlatformLabels]) -> Published {
        Published::Found {
            digest: digest.into(),
            platforms: labels
                .iter()
                .map(|l| PlatformRevision {
                    platform: l.platform.as_ref().map(ToString::to_string),
                    revision: l.labels.get(REVISION_LABEL).cloned(),
                })
                .collect(),
        }
    }

    /// The digest, when found.
    pub fn digest(&self) -> Option<&str> {
        match self {
            Published::Missing => None,
            Published::Found { digest, .. } => Some(digest),
        }
    }
}

/// The deploy gate: whether every image of `published` was built from
/// exactly `sha` (a missing image, a missing label or any other revision is
/// `false`).
pub fn revision_matches(published: &Published, sha: &Sha) -> bool {
    matches!(revision_of(published), Ok(revision) if &revision == sha)
}

/// The one revision every image of `published` carries.
pub fn revision_of(published: &Published) -> Result<Sha, Unknown> {
    let Published::Found { platforms, .. } = published else {
        return Err(Unknown::NoImages);
    };
    let mut revisions = BTreeSet::new();
    for platform in platforms {
        match &platform.revision {
            Some(revision) => {
                revisions.insert(revision.clone());
            }
            None => {
                return Err(Unknown::NoLabel {
                    platform: platform.platform.clone(),
                });
            }
        }
    }
    let mut distinct = revisions.into_iter();
    match (distinct.next(), distinct.next()) {
        (None, _) => Err(Unknown::NoImages),
        (Some(first), None) => first.parse().map_err(|_| Unknown::NotASha { value: first }),
        (Some(first), Some(second)) => Err(Unknown::Inconsistent {
            revisions: [first, second].into_iter().chain(distinct).collect(),
        }),
    }
}

/// For a stale image, why, in one line for a CI annotation: the revision
/// it was built from and the files that changed since (the first five,
/// git-quoted); `None` for any other verdict.
pub fn stale_reason(verdict: &Verdict) -> Option<String> {
    let Verdict::Stale {
        revision, files, ..
    } = verdict
    else {
        return None;
    };
    let mut shown: Vec<String> = files
        .iter()
        .take(5)
        .map(|file| slipway_core::output::quote_path(file.bytes()))
        .collect();
    if files.len() > shown.len() {
        shown.push(format!("and {} more", files.len() - shown.len()));
    }
    Some(format!(
        "built from `{}`; {} file(s) it is built from changed since: {}",
        revision.short(),
        files.len(),
        shown.join(", ")
    ))
}

/// What went wrong judging, beyond the verdicts themselves.
#[derive(Debug, thiserror::Error)]
pub enum StaleError {
    /// The repository cannot be opened or read.
    #[error("cannot read the git repository at `{}`", .path.display())]
    Git {
        /// The repository.
        path: PathBuf,
        /// What git2 said.
        #[source]
        source: git2::Error,
    },
    /// A history walk reached the edge of a shallow clone.
    #[error(transparent)]
    History(#[from] slipway_git::GitError),
    /// A diff failed.
    #[error(transparent)]
    Changes(#[from] ChangesError),
    /// slipway.toml's filters cannot be built.
    #[error(transparent)]
    Filters(#[from] project::ProjectFiltersError),
    /// slipway.toml's filters do not compile.
    #[error(transparent)]
    Paths(#[from] PathsError),
}

impl slipway_core::cli::ExitStatus for StaleError {
    fn exit_code(&self) -> Option<u8> {
        // Transparent variants are not causes of their own: ask them here.
        match self {
            Self::Git { .. } => Some(slipway_core::cli::exit::FAILURE),
            Self::History(error) => error.exit_code(),
            Self::Changes(error) => error.exit_code(),
            Self::Filters(error) => error.exit_code(),
            Self::Paths(error) => error.exit_code(),
        }
    }
}

/// Fetches and judges in one go: for each `(name, reference)`, what is
/// published and its verdict against commit `rev` of the repository at
/// `repo_root`. A reference that cannot be read becomes
/// [`Verdict::Unchecked`]; only git and slipway.toml problems are errors.
pub async fn verdicts(
    config: Option<&Config>,
    client: &RegistryClient,
    repo_root: &Path,
    rev: &Sha,
    images: &[(String, ImageRef)],
    options: &FetchOptions,
) -> Result<Vec<ImageVerdict>, StaleError> {
    let refs: Vec<ImageRef> = images.iter().map(|(_, r)| r.clone()).collect();
    let published = fetch_published(client, &refs, options).await;
    let published = published
        .into_iter()
        .map(|r| r.map_err(|e| error_chain(&e)))
        .collect();
    let mut judge = Judge::new(config, repo_root, rev.clone())?;
    judge_all(&mut judge, images, published)
}

/// Judges each image given what was found for it; a lookup that failed
/// (its error as text) becomes [`Verdict::Unchecked`].
pub fn judge_all(
    judge: &mut Judge,
    images: &[(String, ImageRef)],
    published: Vec<Result<Published, String>>,
) -> Result<Vec<ImageVerdict>, StaleError> {
    images
        .iter()
        .zip(published)
        .map(|((name, reference), published)| {
            let (digest, verdict) = match published {
                Ok(published) => (
                    published.digest().map(str::to_owned),
                    judge.judge(name, &published)?,
                ),
                Err(error) => (None, Verdict::Unchecked { error }),
            };
            Ok(ImageVerdict {
                image: name.clone(),
                reference: reference.to_string(),
                digest,
                verdict,
            })
        })
        .collect()
}

/// An error and its causes on one line, `: `-separated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The tag image-stale-check looks up by default: `[stale] tag` when
/// slipway.toml names one, else the tag a push to the default branch
/// publishes — `[tags]` rules evaluated for `refs/heads/<default branch>`,
/// the branch tag if they give it, else `latest`, else their first mutable
/// tag (see [`slipway_core::image_ref::Tag::is_immutable`]) — else, when they give
/// none, the branch tag.
pub fn published_tag(config: &Config) -> String {
    if let Some(tag) = &config.stale.tag {
        return tag.value.clone();
    }
    let branch = &config.project.default_branch;
    let fallback = slipway_tags::branch_tag(branch);
    let Ok((rules, flavor)) = slipway_tags::rules_and_flavor::<&str>(&[], &[], Some(&config.tags))
    else {
        return fallback;
    };
    let now = jiff::Timestamp::UNIX_EPOCH;
    let ctx = slipway_tags::TagContext {
        event_name: "push".to_owned(),
        git_ref: format!("refs/heads/{branch}"),
        // Any commit: the tag this answer needs is not the sha one.
        sha: "0".repeat(40),
        default_branch: Some(branch.clone()),
        base_ref: None,
        pr_base_ref: None,
        now,
        commit_date: now,
        short_sha_length: 7,
        repository: slipway_tags::RepoInfo::default(),
    };
    let Ok(meta) = slipway_tags::compute(&rules, &flavor, &[], &ctx) else {
        return fallback;
    };
    let mutable: Vec<slipway_core::image_ref::Tag> = meta
        .tags
        .iter()
        .filter_map(|tag| tag.parse::<slipway_core::image_ref::Tag>().ok())
        .filter(|tag| !tag.is_immutable())
        .collect();
    [fallback.as_str(), "latest"]
        .iter()
        .find_map(|wanted| mutable.iter().find(|t| t.as_str() == *wanted))
        .or(mutable.first())
        .map_or(fallback.clone(), ToString::to_string)
}

/// What slipway-stale's errors say: their exit codes ([`classify`]); none
/// names a place in a file. A tool that uses this crate passes it to
/// [`slipway_core::cli::finish`].
pub const ERRORS: slipway_core::cli::ErrorKinds =
    slipway_core::cli::ErrorKinds::codes_only(classify);

/// The exit code `cause` says if it is one of slipway-stale's errors: a tool that
/// uses this crate passes it to [`slipway_core::cli::finish`]. It asks the
/// `classify` of the Slipway crates this one wraps errors of as well.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    [
        slipway_core::cli::code::<StaleError>,
        slipway_core::cli::code::<FetchError>,
        slipway_config::classify,
        slipway_git::classify,
        slipway_registry::classify,
        slipway_tags::classify,
    ]
    .iter()
    .find_map(|code| code(cause))
}

/// Exit codes of errors of this crate and of the crates it wraps, classified
/// as `finish` classifies them.
#[cfg(test)]
mod exit_codes {
    use slipway_core::cli::{Classifier, UsageError, exit, exit_code_for};

    const CLASSIFIERS: &[Classifier] = &[slipway_git::classify, crate::classify];

    #[test]
    fn a_usage_error_with_a_cause_exits_2_and_keeps_the_cause() {
        let git = slipway_git::GitError::NotARepository {
            start: std::path::PathBuf::from("/srv/app"),
        };
        let error = UsageError::caused_by("`--require-revision v9`", git);
        assert_eq!(exit_code_for(&error, CLASSIFIERS), exit::USAGE);
        let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
        assert_eq!(
            causes,
            [
                "`--require-revision v9`",
                "`/srv/app` is not inside a git repository (searched upwards from `/srv/app`)",
            ]
        );
    }

    #[test]
    fn typed_errors_say_their_exit_code_through_context() {
        let bad_list = slipway_git::changes::ChangesError::NameStatus {
            origin: "changes.txt".to_owned(),
            line: 3,
            text: "X a".to_owned(),
            reason: "unknown status `X`".to_owned(),
        };
        let error = anyhow::Error::new(bad_list).context("cannot read `--files-from`");
        assert_eq!(exit_code_for(&error, CLASSIFIERS), exit::USAGE);
        // The typed error stays in the chain: its message is a cause line.
        let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
        assert_eq!(
            causes,
            [
                "cannot read `--files-from`",
                "changes.txt:3: cannot read `X a`: unknown status `X`"
            ]
        );
        // A transparent variant asks the error it wraps.
        let wrapped = crate::StaleError::Changes(slipway_git::changes::ChangesError::NameStatus {
            origin: "stdin".to_owned(),
            line: 1,
            text: "?".to_owned(),
            reason: "no status".to_owned(),
        });
        assert_eq!(
            exit_code_for(&anyhow::Error::new(wrapped), CLASSIFIERS),
            exit::USAGE
        );
        let git = slipway_git::Repo::discover(std::path::Path::new("/"))
            .map(|_| ())
            .map_err(|error| anyhow::Error::new(error).context("cannot open the repository"));
        assert_eq!(
            git.map_err(|error| exit_code_for(&error, CLASSIFIERS)),
            Err(exit::FAILURE)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_git::changes::ChangeStatus;

    #[track_caller]
    fn check_published(toml: &str, expected: &str) {
        let text = format!("[project]\nregistry = \"127.0.0.1:5000/demo\"\n{toml}");
        let config = Config::from_str(&text, Path::new("slipway.toml")).unwrap();
        assert_eq!(published_tag(&config), expected, "{toml}");
    }

    #[test]
    fn the_published_tag_is_what_a_push_to_the_default_branch_moves() {
        // metadata-action's defaults give the branch tag.
        check_published("", "main");
        check_published(
            "[tags]\nrules = [\"type=sha\", \"type=raw,value=latest,enable={{is_default_branch}}\"]\n",
            "latest",
        );
        check_published(
            "[tags]\nrules = [\"type=sha\", \"type=ref,event=branch\", \"type=raw,value=latest\"]\n",
            "main",
        );
        check_published(
            "default_branch = \"release/2\"\n[tags]\nrules = [\"type=sha\", \"type=ref,event=branch\"]\n",
            "release-2",
        );
        check_published(
            "[tags]\nrules = [\"type=sha\", \"type=raw,value=stable\"]\n",
            "stable",
        );
        // Only immutable tags: the branch tag, as before.
        check_published("[tags]\nrules = [\"type=sha\"]\n", "main");
        check_published(
            "[tags]\nrules = [\"type=sha\"]\n[stale]\ntag = \"prod\"\n",
            "prod",
        );
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn found(revisions: &[(Option<&str>, Option<&str>)]) -> Published {
        Published::Found {
            digest: "sha256:00".to_owned(),
            platforms: revisions
                .iter()
                .map(|(platform, revision)| PlatformRevision {
                    platform: platform.map(str::to_owned),
                    revision: revision.map(str::to_owned),
                })
                .collect(),
        }
    }

    #[track_caller]
    fn check(published: Published, expected: Result<&str, &str>) {
        let got = revision_of(&published)
            .map(|s| s.to_string())
            .map_err(|u| u.describe());
        let expected = expected.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(got, expected, "{published:?}");
    }

    #[test]
    fn revisions_of_published_images() {
        check(found(&[(None, Some(A))]), Ok(A));
        check(
            found(&[
                (Some("linux/amd64"), Some(A)),
                (Some("linux/arm64"), Some(A)),
            ]),
            Ok(A),
        );
        check(
            found(&[(None, None)]),
            Err("no `org.opencontainers.image.revision` label"),
        );
        check(
            found(&[(Some("linux/amd64"), Some(A)), (Some("linux/arm64"), None)]),
            Err("no `org.opencontainers.image.revision` label on platform `linux/arm64`"),
        );
        check(
            found(&[
                (Some("linux/amd64"), Some(B)),
                (Some("linux/arm64"), Some(A)),
            ]),
            Err(&format!(
                "its platforms carry different revisions: `{A}`, `{B}`"
            )),
        );
        check(
            found(&[(None, Some("v1.2.3"))]),
            Err("revision label `v1.2.3` is not a full commit sha"),
        );
        check(found(&[]), Err("the index lists no image"));
        check(Published::Missing, Err("the index lists no image"));
    }

    #[test]
    fn the_deploy_gate_wants_the_exact_commit() {
        let a: Sha = A.parse().unwrap();
        assert!(revision_matches(&found(&[(None, Some(A))]), &a));
        assert!(!revision_matches(&found(&[(None, Some(B))]), &a));
        assert!(!revision_matches(&found(&[(None, None)]), &a));
        assert!(!revision_matches(&Published::Missing, &a));
    }

    #[track_caller]
    fn check_files(relevant: &[(&str, Via)], matched: &[Vec<usize>], expected: &[(&str, Via)]) {
        let names = ["app", "base", "rebuild_all"];
        let files: Vec<ChangedFile> = ["app/main.rs", "base/Dockerfile", "Cargo.lock"]
            .into_iter()
            .map(|p| ChangedFile::new(p, ChangeStatus::Modified))
            .collect();
        let relevant: Vec<(String, Via)> = relevant
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        let got: Vec<(String, Via)> = stale_files(&relevant, &names, &files, matched)
            .into_iter()
            .map(|f| (f.path, f.via))
            .collect();
        let expected: Vec<(String, Via)> = expected
            .iter()
            .map(|(p, v)| ((*p).to_owned(), v.clone()))
            .collect();
        assert_eq!(got, expected, "{relevant:?} {matched:?}");
    }

    #[test]
    fn files_that_make_an_image_stale() {
        let dep = || Via::DependsOn {
            image: "base".to_owned(),
        };
        check_files(
            &[("app", Via::Paths)],
            &[vec![0], vec![1], vec![2]],
            &[("app/main.rs", Via::Paths)],
        );
        check_files(&[("app", Via::Paths)], &[vec![], vec![1], vec![2]], &[]);
        check_files(
            &[("app", Via::Paths), ("rebuild_all", Via::RebuildAll)],
            &[vec![], vec![], vec![2]],
            &[("Cargo.lock", Via::RebuildAll)],
        );
        check_files(
            &[("app", Via::Paths), ("base", dep())],
            &[vec![0], vec![1], vec![]],
            &[("app/main.rs", Via::Paths), ("base/Dockerfile", dep())],
        );
        check_files(
            &[("app", Via::Paths), ("base", dep())],
            &[vec![1], vec![1], vec![]],
            &[("base/Dockerfile", Via::Paths)],
        );
        check_files(&[("gone", Via::Paths)], &[vec![0], vec![1], vec![2]], &[]);
    }

    #[test]
    fn the_published_tag_of_an_awkward_branch_is_the_tag_img_tag_computes() {
        // Runs of characters a tag can't hold become one `-`, as in
        // metadata-action (and `img-tag compute`), so that the tag looked up
        // is the tag a push of the branch moved, not `latest`.
        check_published(
            "default_branch = \"release/+2024\"\n[tags]\nrules = [\"type=ref,event=branch\", \"type=raw,value=latest\"]\n",
            "release-2024",
        );
    }

    #[test]
    fn the_cache_keeps_the_newest_entries() {
        let mut cache = Cache::default();
        for i in 0..CACHE_ENTRIES + 3 {
            cache.insert(format!("sha256:{i}"), Vec::new());
        }
        cache.insert("sha256:5".to_owned(), Vec::new());
        assert_eq!(cache.entries.len(), CACHE_ENTRIES);
        assert!(cache.get("sha256:0").is_none());
        assert_eq!(
            cache.entries.last().map(|e| e.digest.as_str()),
            Some("sha256:5")
        );
    }

    /// The library path other tools take (`img-build --only-stale`, deploy
    /// gates): [`verdicts`] and [`revision_matches`] against a real
    /// registry and a real history, images pushed with curl.
    #[test]
    fn verdicts_and_the_gate_against_a_real_registry() {
        let registry = slipway_testbed::Registry::start();
        let host = registry.host();
        let repo = slipway_testbed::git::GitRepo::new();
        repo.write(
            "slipway.toml",
            format!(
                "[project]\nname = \"d\"\nregistry = \"{host}/d\"\n\n[images.app]\npaths = [\"app/**\"]\n\n[images.web]\npaths = [\"web/**\"]\n"
            ),
        );
        repo.write("app/a", "1");
        repo.write("web/w", "1");
        let built = repo.commit("initial");
        for name in ["app", "web"] {
            push_labelled(&host, &format!("d/{name}"), &built);
        }
        repo.write("web/w", "2");
        let head: Sha = repo.commit("change web").parse().unwrap();
        let config = Config::load(&repo.path().join("slipway.toml")).unwrap();
        let images: Vec<(String, ImageRef)> = ["app", "web"]
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    format!("{host}/d/{n}:main").parse().unwrap(),
                )
            })
            .collect();
        let client = RegistryClient::new(Default::default(), HashMap::new()).unwrap();
        let options = FetchOptions {
            timeout: Duration::from_secs(10),
            cache: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = runtime
            .block_on(verdicts(
                Some(&config),
                &client,
                repo.path(),
                &head,
                &images,
                &options,
            ))
            .unwrap();
        let statuses: Vec<&str> = got.iter().map(|v| v.verdict.status()).collect();
        assert_eq!(statuses, ["fresh", "stale"]);

        let refs: Vec<ImageRef> = images.into_iter().map(|(_, r)| r).collect();
        let published = runtime.block_on(fetch_published(&client, &refs, &options));
        let built: Sha = built.parse().unwrap();
        let gate: Vec<bool> = published
            .iter()
            .map(|p| revision_matches(p.as_ref().unwrap(), &built))
            .collect();
        assert_eq!(gate, [true, true]);
        assert!(!revision_matches(published[0].as_ref().unwrap(), &head));
    }

    /// Pushes `host/repository:main`, an image whose config carries
    /// `revision` as its revision label.
    fn push_labelled(host: &str, repository: &str, revision: &str) {
        slipway_testbed::images::push_image(host, repository, "main", "amd64", Some(revision));
    }
}
