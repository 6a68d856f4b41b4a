//! Mutable tags only move forward in commit history.
//!
//! A tag that names one commit or one release (`sha-<short>`, a full
//! semver such as `1.4.2` or `v1.4.2`) is immutable: pushing it again at its
//! commit is harmless. Every other tag (`latest`, a branch, `1`, `1.4`,
//! `pr-7`) is mutable: before a pushed run, each one is looked up in the
//! registry, and it moves only when the image it points at was built from
//! this revision or one of its ancestors (its
//! `org.opencontainers.image.revision` label, compared through git).
//! Otherwise — a rerun of an older pipeline, another branch, an image
//! without the label, a revision the local history does not have — the tag
//! is held: left out of the build's tags and pushes, with a notice on stderr
//! and in the report. `--force-tags` skips the check.
//!
//! The check runs before the build; a tag moved by someone else between the
//! check and the push is not seen.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use slipway_config::Config;
use slipway_contract::img_build::HeldTag;
use slipway_core::image_ref::ImageRef;
use slipway_core::output::Output;
use slipway_git::{Repo, Sha};
use slipway_stale::REVISION_LABEL;

use crate::plan::Plan;

/// Looks up every mutable tag of every target of `plan` and takes the held
/// ones out of the plan; returns them by target name. Errors when the
/// registry cannot be read: a tag is never moved or held blindly.
pub(crate) fn hold_tags(
    plan: &mut Plan,
    config: &Config,
    out: &Output,
) -> anyhow::Result<BTreeMap<String, Vec<HeldTag>>> {
    let mut held: BTreeMap<String, Vec<HeldTag>> = BTreeMap::new();
    let lookups: Vec<(String, ImageRef)> = plan
        .targets
        .iter()
        .flat_map(|target| {
            target
                .tag_names
                .iter()
                .filter(|tag| !tag.is_immutable())
                .map(|tag| (target.name.clone(), target.repo.with_tag(tag.clone())))
        })
        .collect();
    if lookups.is_empty() {
        return Ok(held);
    }
    let ours: Sha = plan
        .revision
        .trim_end_matches("-dirty")
        .parse()
        .with_context(|| format!("the revision `{}` is not a commit sha", plan.revision))?;
    let repo =
        Repo::discover(&config.root).context("cannot open the repository tags are compared in")?;
    let registries: BTreeSet<&str> = lookups.iter().map(|(_, image)| image.registry()).collect();
    let client = crate::registry::client(registries, &plan.registry, out)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let progress = out.progress();
    for (name, image) in &lookups {
        let platforms = match runtime.block_on(client.fetch_config_labels(image)) {
            Ok(platforms) => platforms,
            Err(error) if error.is_not_found() => continue,
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!(
                    "cannot read `{image}` to tell whether its tag may move to this build (`--force-tags` moves it without asking)"
                )));
            }
        };
        let digest = platforms.first().map(|p| p.digest.to_string());
        let revisions: BTreeSet<&str> = platforms
            .iter()
            .filter_map(|p| p.labels.get(REVISION_LABEL))
            .map(|r| r.trim_end_matches("-dirty"))
            .collect();
        let current = match revisions.iter().collect::<Vec<_>>().as_slice() {
            [one] => one.parse::<Sha>().ok(),
            _ => None,
        };
        let reason = match &current {
            None if revisions.is_empty() => Some(format!(
                "the image it points at has no `{REVISION_LABEL}` label"
            )),
            None => Some(format!(
                "the image it points at has no single commit in `{REVISION_LABEL}` ({})",
                revisions.iter().copied().collect::<Vec<_>>().join(", ")
            )),
            Some(current) if current == &ours => None,
            Some(current) => match repo.is_ancestor(current, &ours) {
                Ok(true) => None,
                Ok(false) => Some(format!(
                    "it points at {}, which is not an ancestor of {} (a rerun of an older pipeline, or another branch)",
                    current.short(),
                    ours.short()
                )),
                Err(_) => Some(format!(
                    "it points at {}, which the local history does not have{}",
                    current.short(),
                    if repo.is_shallow() {
                        " (a shallow clone: fetch the history, e.g. `fetch-depth: 0`)"
                    } else {
                        ""
                    }
                )),
            },
        };
        let Some(reason) = reason else {
            tracing::debug!(%image, "the tag moves forward");
            continue;
        };
        progress.println(&format!(
            "img-build: `{image}` stays where it is: {reason}; `--force-tags` moves it"
        ));
        held.entry(name.clone()).or_default().push(HeldTag {
            tag: image.to_string(),
            digest,
            revision: revisions.first().map(|r| (*r).to_owned()),
            reason,
        });
    }
    for target in &mut plan.targets {
        let Some(tags) = held.get(&target.name) else {
            continue;
        };
        let is_held = |full: &str| tags.iter().any(|h| h.tag == full);
        let keep: Vec<usize> = (0..target.tags.len())
            .filter(|&i| !is_held(&target.tags[i]))
            .collect();
        if keep.is_empty() {
            anyhow::bail!(
                "image `{}` would push no tag: every tag it has is held ({}); add an immutable tag rule such as `type=sha`, or pass `--force-tags`",
                target.name,
                tags.iter()
                    .map(|h| format!("`{}`", h.tag))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        target.tags = keep.iter().map(|&i| target.tags[i].clone()).collect();
        target.tag_names = keep.iter().map(|&i| target.tag_names[i].clone()).collect();
    }
    Ok(held)
}
