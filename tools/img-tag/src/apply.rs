//! `img-tag apply`: point tags at an image by re-putting its manifest bytes
//! unchanged under each tag, so the digest stays and an index stays an
//! index. All the tags of a call move concurrently; if one fails, the ones
//! already moved go back where they were.
//!
//! A tag that did not exist before is deleted on rollback when the registry
//! supports deleting tags; it is never removed by deleting its manifest,
//! which would take every other tag of that manifest with it.

use anyhow::{Context as _, anyhow};
use slipway_core::image_ref::{Digest, ImageRef, Repository, Tag};
use slipway_registry::{Manifest, RegistryClient, RegistryError};
use tokio::task::JoinSet;

pub(crate) use slipway_contract::img_tag::{ApplyReport, TagChange};

/// The repository of `report`'s image, for the plain rendering (the image
/// as given when it does not parse).
pub(crate) fn repository_of(report: &ApplyReport) -> String {
    report.image.parse::<ImageRef>().map_or_else(
        |_| report.image.clone(),
        |image| image.repository().to_string(),
    )
}

/// Applies `tags` to `image`; see the module docs.
pub(crate) async fn apply(
    client: &RegistryClient,
    image: &ImageRef,
    tags: &[Tag],
    dry_run: bool,
) -> anyhow::Result<ApplyReport> {
    let manifest = client
        .fetch_manifest(image)
        .await
        .with_context(|| format!("cannot read the manifest of `{image}`"))?;
    let repository = image.repository();
    let previous = previous_digests(client, repository, tags).await?;
    let report = ApplyReport {
        image: image.to_string(),
        digest: manifest.digest.to_string(),
        tags: tags
            .iter()
            .zip(&previous)
            .map(|(tag, previous)| TagChange {
                tag: tag.to_string(),
                previous_digest: previous.as_ref().map(ToString::to_string),
                changed: previous.as_ref() != Some(&manifest.digest),
            })
            .collect(),
        dry_run,
    };
    if dry_run {
        return Ok(report);
    }
    let to_move: Vec<(Tag, Option<Digest>)> = tags
        .iter()
        .zip(previous)
        .filter(|(_, previous)| previous.as_ref() != Some(&manifest.digest))
        .map(|(tag, previous)| (tag.clone(), previous))
        .collect();
    let mut moves = JoinSet::new();
    for (index, (tag, _)) in to_move.iter().enumerate() {
        let (client, repository, manifest, tag) = (
            client.clone(),
            repository.clone(),
            manifest.clone(),
            tag.clone(),
        );
        moves.spawn(async move {
            let result = client
                .put_manifest(&repository, tag.as_str(), &manifest)
                .await;
            (index, result)
        });
    }
    let mut moved = Vec::new();
    let mut failures = Vec::new();
    while let Some(joined) = moves.join_next().await {
        let (index, result) = joined.context("a tag update task panicked")?;
        match result {
            Ok(_) => moved.push(index),
            Err(error) => failures.push((index, error)),
        }
    }
    let Some((failed_index, error)) = failures.into_iter().min_by_key(|(index, _)| *index) else {
        tracing::info!(image = %image, tags = to_move.len(), "tags applied");
        return Ok(report);
    };
    moved.sort_unstable();
    let undone: Vec<(Tag, Option<Digest>)> = moved
        .into_iter()
        .map(|index| to_move[index].clone())
        .collect();
    let summary = rollback(client, repository, &undone).await;
    let failed_tag = &to_move[failed_index].0;
    Err(anyhow!(error).context(format!(
        "cannot point tag `{failed_tag}` of `{repository}` at `{}`; {summary}",
        manifest.digest
    )))
}

/// Where each tag points now (HEAD, concurrently), in the order of `tags`.
async fn previous_digests(
    client: &RegistryClient,
    repository: &Repository,
    tags: &[Tag],
) -> anyhow::Result<Vec<Option<Digest>>> {
    let mut lookups = JoinSet::new();
    for (index, tag) in tags.iter().enumerate() {
        let (client, image) = (client.clone(), repository.with_tag(tag.clone()));
        lookups.spawn(async move { (index, client.resolve(&image).await, image) });
    }
    let mut previous = vec![None; tags.len()];
    while let Some(joined) = lookups.join_next().await {
        let (index, result, image) = joined.context("a tag lookup task panicked")?;
        previous[index] = result.with_context(|| format!("cannot read where `{image}` points"))?;
    }
    Ok(previous)
}

/// Puts every tag of `moved` back, and says what it did: "rolled back …",
/// or which tags it could not restore.
async fn rollback(
    client: &RegistryClient,
    repository: &Repository,
    moved: &[(Tag, Option<Digest>)],
) -> String {
    if moved.is_empty() {
        return "no other tag was moved".to_owned();
    }
    let mut restored = Vec::new();
    let mut problems = Vec::new();
    for (tag, previous) in moved {
        let outcome: Result<bool, RegistryError> = match previous {
            Some(digest) => restore(client, repository, tag, digest)
                .await
                .map(|()| true),
            None => client.delete_tag(repository, tag.as_str()).await,
        };
        match (outcome, previous) {
            (Ok(true), Some(digest)) => restored.push(format!("`{tag}` to `{digest}`")),
            (Ok(true), None) => restored.push(format!("new tag `{tag}` deleted")),
            (Ok(false), _) => problems.push(format!(
                "new tag `{tag}` left in place (the registry does not support deleting tags)"
            )),
            // Name what the tag must go back to, and how: the registry that
            // failed mid-apply may be back by the time someone reads this.
            (Err(error), Some(digest)) => problems.push(format!(
                "`{tag}` not restored to `{digest}` (where it pointed before): {error}; \
                 restore it with `img-tag apply {repository}@{digest} --tag {tag}`"
            )),
            (Err(error), None) => problems.push(format!(
                "new tag `{tag}` not deleted (it did not exist before): {error}; delete it \
                 with `skopeo delete docker://{repository}:{tag}` or the registry's API"
            )),
        }
    }
    let mut parts = Vec::new();
    if !restored.is_empty() {
        parts.push(format!("rolled back {}", restored.join(", ")));
    }
    parts.extend(problems);
    parts.join("; ")
}

async fn restore(
    client: &RegistryClient,
    repository: &Repository,
    tag: &Tag,
    digest: &Digest,
) -> Result<(), RegistryError> {
    let manifest: Manifest = client.fetch_manifest_by_digest(repository, digest).await?;
    client
        .put_manifest(repository, tag.as_str(), &manifest)
        .await
        .map(|_| ())
}
