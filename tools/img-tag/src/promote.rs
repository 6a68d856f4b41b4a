//! `img-tag promote`: copy an image to another repository, on the same
//! registry or another, without storing layers locally.
//!
//! Order matters so that a tag never points at something incomplete: for an
//! index, each child's blobs, then the child manifest (by digest); for an
//! image, its blobs; the top manifest is pushed last, under the tag. Blobs
//! the destination has are skipped (HEAD); on the same registry the rest
//! are mounted (`POST …/blobs/uploads/?mount=…&from=…`, no bytes move),
//! across registries streamed from source to destination.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use slipway_core::image_ref::{Digest, ImageRef, Repository};
use slipway_registry::{BlobTransfer, Content, Descriptor, Manifest, RegistryClient};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Blobs transferred at the same time.
const PARALLEL_BLOBS: usize = 4;

pub(crate) use slipway_contract::img_tag::PromoteReport;

/// Copies `source` to `destination`; see the module docs.
pub(crate) async fn promote(
    client: &RegistryClient,
    source: &ImageRef,
    destination: &ImageRef,
    dry_run: bool,
) -> anyhow::Result<PromoteReport> {
    let top = client
        .fetch_manifest(source)
        .await
        .with_context(|| format!("cannot read the manifest of `{source}`"))?;
    let from = source.repository();
    let to = destination.repository();
    // Children first (by digest), each after its own blobs.
    let images: Vec<Manifest> = match top.content()? {
        Content::Index(children) => {
            let mut images = Vec::new();
            for child in children {
                let manifest = client
                    .fetch_manifest_by_digest(from, &child.digest)
                    .await
                    .with_context(|| format!("cannot read `{from}@{}`", child.digest))?;
                images.push(manifest);
            }
            images
        }
        Content::Image { .. } => vec![top.clone()],
    };
    let mut report = PromoteReport {
        source: source.to_string(),
        destination: destination.to_string(),
        digest: top.digest.to_string(),
        dry_run,
        ..PromoteReport::default()
    };
    let mut seen = HashSet::new();
    for image in &images {
        let Content::Image { config, layers } = image.content()? else {
            bail!(
                "`{from}@{}` is an index inside an index; img-tag copies one level of index",
                image.digest
            );
        };
        let blobs: Vec<Descriptor> = std::iter::once(config)
            .chain(layers)
            .filter(|blob| seen.insert(blob.digest.clone()))
            .collect();
        transfer_blobs(client, from, to, blobs, dry_run, &mut report).await?;
        if image.digest != top.digest && !dry_run {
            push(client, to, &image.digest.to_string(), image).await?;
        }
    }
    if !dry_run {
        let reference = destination
            .tag()
            .map_or_else(|| top.digest.to_string(), ToString::to_string);
        push(client, to, &reference, &top).await?;
        tracing::info!(%source, %destination, digest = %top.digest, "promoted");
    }
    Ok(report)
}

async fn push(
    client: &RegistryClient,
    to: &Repository,
    reference: &str,
    manifest: &Manifest,
) -> anyhow::Result<()> {
    let digest: Digest = client
        .put_manifest(to, reference, manifest)
        .await
        .with_context(|| {
            format!(
                "cannot push manifest `{}` to `{to}:{reference}`",
                manifest.digest
            )
        })?;
    if digest != manifest.digest {
        bail!(
            "`{to}` stored manifest `{}` as `{digest}`; the digest must not change",
            manifest.digest
        );
    }
    Ok(())
}

async fn transfer_blobs(
    client: &RegistryClient,
    from: &Repository,
    to: &Repository,
    blobs: Vec<Descriptor>,
    dry_run: bool,
    report: &mut PromoteReport,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(PARALLEL_BLOBS));
    let same_registry = from.registry() == to.registry();
    let mut tasks = JoinSet::new();
    for blob in blobs {
        let (client, from, to, permits) =
            (client.clone(), from.clone(), to.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = if dry_run {
                match client.blob_size(&to, &blob.digest).await {
                    Ok(Some(_)) => Ok(BlobTransfer::Skipped),
                    Ok(None) if same_registry => Ok(BlobTransfer::Mounted),
                    Ok(None) => Ok(BlobTransfer::Copied(blob.size)),
                    Err(error) => Err(error),
                }
            } else {
                client.transfer_blob(&from, &to, &blob).await
            };
            outcome.with_context(|| {
                format!("cannot copy blob `{}` from `{from}` to `{to}`", blob.digest)
            })
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined.context("a blob copy task panicked")?? {
            BlobTransfer::Skipped => report.blobs_skipped += 1,
            BlobTransfer::Mounted => report.blobs_mounted += 1,
            BlobTransfer::Copied(bytes) => {
                report.blobs_copied += 1;
                report.bytes_copied += bytes;
            }
        }
    }
    Ok(())
}
