//! `--only-stale`: which targets are already published for the commit being
//! built, asked of the registry through `slipway_stale` (the verdict
//! `image-stale-check` gives), and so skipped.
//!
//! Only a `fresh` verdict because the published image was built from this
//! very commit skips a build; a target whose dependency is built is built
//! too. A registry that cannot be read is an error: a build step must not
//! silently rebuild or skip. This module decides; `run` and `report` act
//! on the decisions.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use slipway_config::Config;
use slipway_core::image_ref::{Digest, ImageRef};
use slipway_core::output::Output;
use slipway_git::Sha;
use slipway_registry::{RegistryClient, RegistryOptions};
use slipway_stale::{FetchOptions, FreshBecause, ImageVerdict, Verdict};

use crate::plan::{Plan, Target};

/// The most time one image's lookup may take, retries included.
const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) use slipway_contract::img_build::Freshness;

/// The published image of `fresh` as a build arg for dependents: `repo@sha256:…`.
pub(crate) fn published_reference(fresh: &Freshness, target: &Target) -> Option<String> {
    fresh
        .digest
        .as_ref()
        .map(|digest| format!("{}@{digest}", target.repository))
}

/// The published digest of `fresh`, parsed.
pub(crate) fn published_digest(fresh: &Freshness) -> Option<Digest> {
    fresh.digest.as_ref().and_then(|d| d.parse().ok())
}

/// The tag a build pushes as its primary one: `sha-<short>` when the tag
/// rules give one (it names this commit alone), else the first tag.
fn primary_tag(target: &Target) -> Option<&slipway_core::image_ref::Tag> {
    target
        .tag_names
        .iter()
        .find(|tag| tag.as_str().starts_with("sha-"))
        .or_else(|| target.tag_names.first())
}

/// Asks the registry about every target of `plan` and decides, in build
/// order, which ones are skipped. Errors when a registry cannot be read.
pub(crate) fn check(
    plan: &Plan,
    config: &Config,
    out: &Output,
) -> anyhow::Result<BTreeMap<String, Freshness>> {
    if plan.targets.is_empty() {
        return Ok(BTreeMap::new());
    }
    let head = plan.revision.strip_suffix("-dirty");
    let is_dirty = head.is_some();
    let rev: Sha = head
        .unwrap_or(&plan.revision)
        .parse()
        .with_context(|| format!("the revision `{}` is not a commit sha", plan.revision))?;
    let repo = slipway_git::Repo::discover(&config.root)
        .context("cannot open the repository the stale check compares with")?;
    let images: Vec<(String, ImageRef)> = plan
        .targets
        .iter()
        .map(|target| {
            let tag = primary_tag(target)
                .with_context(|| format!("image `{}` has no tag to look up", target.name))?;
            Ok((target.name.clone(), target.repo.with_tag(tag.clone())))
        })
        .collect::<anyhow::Result<_>>()?;
    let client = client(&images, &plan.registry, out)?;
    let options = FetchOptions {
        timeout: TIMEOUT,
        cache: Some(slipway_stale::cache_path(&repo)),
    };
    let verdicts = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(slipway_stale::verdicts(
            Some(config),
            &client,
            repo.workdir(),
            &rev,
            &images,
            &options,
        ))
        .context("cannot judge the published images against the local history")?;
    if is_dirty {
        tracing::warn!("the working tree has uncommitted changes: `--only-stale` skips nothing");
    }
    let mut decided: BTreeMap<String, Freshness> = BTreeMap::new();
    for (target, verdict) in plan.targets.iter().zip(verdicts) {
        if let Verdict::Unchecked { error } = &verdict.verdict {
            anyhow::bail!(
                "cannot tell whether `{}` is fresh: {error}; `--only-stale` neither rebuilds nor skips an image it cannot check",
                verdict.reference
            );
        }
        let built_dependency = target
            .depends_on
            .iter()
            .find(|d| decided.get(*d).is_some_and(|f| !f.skip));
        let freshness = decide(verdict, is_dirty, built_dependency.map(String::as_str));
        tracing::debug!(image = %target.name, skip = freshness.skip, decision = %freshness.decision, "stale check");
        decided.insert(target.name.clone(), freshness);
    }
    Ok(decided)
}

/// Whether one target is skipped, given its verdict, whether the tree is
/// dirty, and a dependency of this run that is built (if any).
fn decide(verdict: ImageVerdict, is_dirty: bool, built_dependency: Option<&str>) -> Freshness {
    let (skip, decision) = match &verdict.verdict {
        Verdict::Fresh {
            because: FreshBecause::SameCommit,
            ..
        } => match (is_dirty, built_dependency) {
            (true, _) => (
                false,
                "published for this commit, but the working tree has uncommitted changes: built"
                    .to_owned(),
            ),
            (false, Some(dependency)) => (
                false,
                format!("published for this commit, but dependency `{dependency}` is built: built"),
            ),
            (false, None) => (true, "published for this commit: skipped".to_owned()),
        },
        Verdict::Fresh {
            because: FreshBecause::NoRelevantChange,
            revision,
        } => (
            false,
            format!(
                "fresh by its paths but built from `{}`, not this commit: built (`img-tag` can retag it instead)",
                revision.short()
            ),
        ),
        Verdict::Stale { revision, .. } => (
            false,
            format!(
                "stale: files it is built from changed since `{}`: built",
                revision.short()
            ),
        ),
        Verdict::Missing => (false, "not published: built".to_owned()),
        Verdict::Unknown { reason } => (false, format!("{}: built", reason.describe())),
        Verdict::Unchecked { error } => (false, format!("not checked ({error}): built")),
    };
    Freshness {
        reference: verdict.reference,
        digest: verdict.digest,
        verdict: verdict.verdict,
        skip,
        decision,
    }
}

/// A registry client with the credentials of every registry involved.
fn client(
    images: &[(String, ImageRef)],
    options: &RegistryOptions,
    out: &Output,
) -> anyhow::Result<RegistryClient> {
    let options = RegistryOptions {
        max_attempts: 3,
        retry_budget: TIMEOUT,
        ..options.clone()
    };
    let registries = images.iter().map(|(_, image)| image.registry());
    Ok(RegistryClient::for_registries(
        registries, None, options, out,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";
    const OLDER: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn sha(text: &str) -> Sha {
        text.parse().expect("a full sha")
    }

    #[track_caller]
    fn check(verdict: Verdict, is_dirty: bool, dependency: Option<&str>, expected: (bool, &str)) {
        let freshness = decide(
            ImageVerdict {
                image: "app".to_owned(),
                reference: "127.0.0.1:5000/demo/app:sha-0123456".to_owned(),
                digest: Some("sha256:00".to_owned()),
                verdict,
            },
            is_dirty,
            dependency,
        );
        assert_eq!((freshness.skip, freshness.decision.as_str()), expected);
    }

    fn same_commit() -> Verdict {
        Verdict::Fresh {
            revision: sha(HEAD),
            because: FreshBecause::SameCommit,
        }
    }

    #[test]
    fn only_an_image_of_this_commit_is_skipped() {
        check(
            same_commit(),
            false,
            None,
            (true, "published for this commit: skipped"),
        );
        check(
            Verdict::Fresh {
                revision: sha(OLDER),
                because: FreshBecause::NoRelevantChange,
            },
            false,
            None,
            (
                false,
                "fresh by its paths but built from `89abcde`, not this commit: built (`img-tag` can retag it instead)",
            ),
        );
        check(
            Verdict::Missing,
            false,
            None,
            (false, "not published: built"),
        );
    }

    #[test]
    fn a_built_dependency_or_a_dirty_tree_builds_a_fresh_image() {
        check(
            same_commit(),
            false,
            Some("base"),
            (
                false,
                "published for this commit, but dependency `base` is built: built",
            ),
        );
        check(
            same_commit(),
            true,
            None,
            (
                false,
                "published for this commit, but the working tree has uncommitted changes: built",
            ),
        );
    }
}
