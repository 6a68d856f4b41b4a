//! `img-tag promote`: copy an image to another repository, on the same
//! registry or another, without storing layers locally.
//!
//! Order matters so that a tag never points at something incomplete: for an
//! index, each child's blobs, then the child manifest (by digest); for an
//! image, its blobs; then the referrers; the top manifest is pushed last,
//! under the tag. Blobs the destination has are skipped (HEAD); on the same
//! registry the rest are mounted (`POST …/blobs/uploads/?mount=…&from=…`,
//! no bytes move), across registries streamed from source to destination.
//!
//! Referrers (manifests whose `subject` is the image's digest, or a
//! child's) are listed at the source (API, else the `sha256-<hex>` fallback
//! tag) and each is copied as an image is (blobs, then its manifest by
//! digest, unchanged), then their own referrers, [`REFERRER_DEPTH`] levels
//! deep. A destination that answers the push without `OCI-Subject` has no
//! referrers API: its fallback index for the subject is extended (read,
//! merged without duplicates, written once per subject). Within one
//! repository nothing is copied: referrers attach to the digest, which a
//! retag keeps.
//!
//! Progress goes to stderr only (stdout keeps the report): each blob as it
//! is copied (a byte bar on a terminal, a line when it ends elsewhere), and
//! a closing table of each image's blobs, bytes and time, which the JSON
//! report carries too (`images`, `elapsed_ms`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use slipway_core::image_ref::{Digest, ImageRef, Repository};
use slipway_core::progress::{Progress, format_bytes, format_duration};
use slipway_registry::{BlobTransfer, Content, Descriptor, Manifest, RegistryClient};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Blobs transferred at the same time.
const PARALLEL_BLOBS: usize = 4;

/// Levels of referrers followed: an image's SBOM is level 1, the SBOM's
/// signature level 2. Deeper ones are not copied (and logged).
const REFERRER_DEPTH: usize = 4;

/// Referrer manifests one promote copies at most (a bound on a registry
/// that lists without end).
const MAX_REFERRERS: usize = 1000;

pub(crate) use slipway_contract::img_tag::{PromoteReport, PromotedImage};

/// What every step of one promote shares.
struct Promotion<'a> {
    client: &'a RegistryClient,
    from: &'a Repository,
    to: &'a Repository,
    dry_run: bool,
    progress: &'a Progress,
}

/// Copies `source` to `destination` (and its referrers unless
/// `with_referrers` is false), showing its progress on `progress`; see the
/// module docs.
pub(crate) async fn promote(
    client: &RegistryClient,
    source: &ImageRef,
    destination: &ImageRef,
    dry_run: bool,
    with_referrers: bool,
    progress: &Progress,
) -> anyhow::Result<PromoteReport> {
    let started = Instant::now();
    let top = client
        .fetch_manifest(source)
        .await
        .with_context(|| format!("cannot read the manifest of `{source}`"))?;
    let from = source.repository();
    let to = destination.repository();
    let promotion = Promotion {
        client,
        from,
        to,
        dry_run,
        progress,
    };
    let mut report = PromoteReport {
        source: source.to_string(),
        destination: destination.to_string(),
        digest: top.digest.to_string(),
        dry_run,
        ..PromoteReport::default()
    };
    let mut seen = HashSet::new();
    let subjects = copy_tree(&promotion, &top, false, &mut report, &mut seen).await?;
    if with_referrers && from != to {
        carry_referrers(&promotion, &top, subjects, &mut report, &mut seen).await?;
    }
    if !dry_run {
        let reference = destination
            .tag()
            .map_or_else(|| top.digest.to_string(), ToString::to_string);
        push(client, to, &reference, &top).await?;
        tracing::info!(%source, %destination, digest = %top.digest, "promoted");
    }
    report.elapsed = started.elapsed();
    show_table(progress, &report);
    Ok(report)
}

/// Copies what `top` points at (an index's children, each after its blobs;
/// an image's blobs), not `top` itself, adding an entry per image to
/// `report` (`referrer`: they are a referrer's). Returns the digests of
/// `top` and its children: the subjects whose referrers follow.
async fn copy_tree(
    promotion: &Promotion<'_>,
    top: &Manifest,
    referrer: bool,
    report: &mut PromoteReport,
    seen: &mut HashSet<Digest>,
) -> anyhow::Result<Vec<Digest>> {
    let Promotion {
        client,
        from,
        to,
        dry_run,
        ..
    } = *promotion;
    // Children first (by digest), each after its own blobs.
    let images: Vec<(Option<String>, Manifest)> = match top.content()? {
        Content::Index(children) => {
            let mut images = Vec::new();
            for child in children {
                let manifest = client
                    .fetch_manifest_by_digest(from, &child.digest)
                    .await
                    .with_context(|| format!("cannot read `{from}@{}`", child.digest))?;
                images.push((child.platform.as_ref().map(ToString::to_string), manifest));
            }
            images
        }
        Content::Image { .. } => vec![(None, top.clone())],
    };
    let mut digests = vec![top.digest.clone()];
    for (platform, image) in images {
        let started = Instant::now();
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
        let mut entry = transfer_blobs(promotion, blobs).await?;
        if image.digest != top.digest {
            if !dry_run {
                push(client, to, &image.digest.to_string(), &image).await?;
            }
            digests.push(image.digest.clone());
        }
        entry.digest = image.digest.to_string();
        entry.platform = platform;
        entry.referrer = referrer;
        entry.elapsed = started.elapsed();
        report.blobs_mounted += entry.blobs_mounted;
        report.blobs_copied += entry.blobs_copied;
        report.blobs_skipped += entry.blobs_skipped;
        report.bytes_copied += entry.bytes_copied;
        report.images.push(entry);
    }
    Ok(digests)
}

/// Copies the referrers of `subjects` (and theirs, [`REFERRER_DEPTH`]
/// levels) from `from` to `to`; `top` is pushed by digest before the first
/// one, for registries that want a referrer's subject present.
async fn carry_referrers(
    promotion: &Promotion<'_>,
    top: &Manifest,
    subjects: Vec<Digest>,
    report: &mut PromoteReport,
    seen: &mut HashSet<Digest>,
) -> anyhow::Result<()> {
    let Promotion {
        client,
        from,
        to,
        dry_run,
        ..
    } = *promotion;
    let mut carried = HashSet::new();
    let mut top_pushed = false;
    let mut level = subjects;
    for depth in 0..=REFERRER_DEPTH {
        let mut next = Vec::new();
        for subject in &level {
            let (listed, _) = client
                .list_referrers(from, subject)
                .await
                .with_context(|| format!("cannot list the referrers of `{from}@{subject}`"))?;
            if depth == REFERRER_DEPTH {
                if !listed.is_empty() {
                    tracing::warn!(%subject, "referrers deeper than {REFERRER_DEPTH} levels are not copied");
                }
                continue;
            }
            let mut unindexed = Vec::new();
            for referrer in listed {
                if !carried.insert(referrer.digest.clone()) {
                    continue;
                }
                if carried.len() > MAX_REFERRERS {
                    bail!(
                        "`{from}` lists over {MAX_REFERRERS} referrers for `{}`; not copying them (pass --no-referrers to copy the image alone)",
                        top.digest
                    );
                }
                let shown = format!("{from}@{}", referrer.digest);
                let manifest = client
                    .fetch_manifest_by_digest(from, &referrer.digest)
                    .await
                    .with_context(|| {
                        format!("cannot read referrer `{shown}` of `{subject}`; the destination tag was not written (pass --no-referrers to copy the image alone)")
                    })?;
                let tree = copy_tree(promotion, &manifest, true, report, seen)
                    .await
                    .with_context(|| format!("cannot copy referrer `{shown}` of `{subject}`; the destination tag was not written"))?;
                if !dry_run {
                    if !top_pushed {
                        push(client, to, &top.digest.to_string(), top).await?;
                        top_pushed = true;
                    }
                    let (digest, indexed) = client
                        .put_referrer(to, &referrer.digest.to_string(), &manifest)
                        .await
                        .with_context(|| format!("cannot push referrer `{shown}` of `{subject}` to `{to}`; the destination tag was not written"))?;
                    if digest != manifest.digest {
                        bail!(
                            "`{to}` stored referrer `{}` as `{digest}`; the digest must not change",
                            manifest.digest
                        );
                    }
                    if !indexed {
                        unindexed.push(referrer);
                    }
                }
                report.referrers_copied += 1;
                next.extend(tree);
            }
            if !unindexed.is_empty()
                && client
                    .add_to_fallback_index(to, subject, &unindexed)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot write the referrers tag `{to}:{}`; the destination tag was not written",
                            slipway_registry::referrers::fallback_tag(subject)
                        )
                    })?
            {
                report.referrer_tags_updated += 1;
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Ok(())
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

/// Makes `blobs` present at the destination, [`PARALLEL_BLOBS`] at a time,
/// each shown as it moves; returns their counts (an entry of the report
/// without its image's facts).
async fn transfer_blobs(
    promotion: &Promotion<'_>,
    blobs: Vec<Descriptor>,
) -> anyhow::Result<PromotedImage> {
    let dry_run = promotion.dry_run;
    let permits = Arc::new(Semaphore::new(PARALLEL_BLOBS));
    let same_registry = promotion.from.registry() == promotion.to.registry();
    let mut tasks = JoinSet::new();
    for blob in blobs {
        let (client, from, to, permits, progress) = (
            promotion.client.clone(),
            promotion.from.clone(),
            promotion.to.clone(),
            permits.clone(),
            promotion.progress.clone(),
        );
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let transfer = Arc::new(progress.transfer(&short(&blob.digest), blob.size));
            let outcome = if dry_run {
                match client.blob_size(&to, &blob.digest).await {
                    Ok(Some(_)) => Ok(BlobTransfer::Skipped),
                    Ok(None) if same_registry => Ok(BlobTransfer::Mounted),
                    Ok(None) => Ok(BlobTransfer::Copied(blob.size)),
                    Err(error) => Err(error),
                }
            } else {
                let moving = transfer.clone();
                client
                    .transfer_blob(
                        &from,
                        &to,
                        &blob,
                        Arc::new(move |bytes| moving.bytes(bytes)),
                    )
                    .await
            };
            if let Ok(done) = &outcome {
                transfer.finish(match (done, dry_run) {
                    (BlobTransfer::Skipped, _) => "already there",
                    (BlobTransfer::Mounted, false) => "mounted",
                    (BlobTransfer::Copied(_), false) => "copied",
                    (BlobTransfer::Mounted, true) => "would be mounted",
                    (BlobTransfer::Copied(_), true) => "would be copied",
                });
            }
            outcome.with_context(|| {
                format!("cannot copy blob `{}` from `{from}` to `{to}`", blob.digest)
            })
        });
    }
    let mut counts = PromotedImage::default();
    while let Some(joined) = tasks.join_next().await {
        match joined.context("a blob copy task panicked")?? {
            BlobTransfer::Skipped => counts.blobs_skipped += 1,
            BlobTransfer::Mounted => counts.blobs_mounted += 1,
            BlobTransfer::Copied(bytes) => {
                counts.blobs_copied += 1;
                counts.bytes_copied += bytes;
            }
        }
    }
    Ok(counts)
}

/// A blob's short name in progress lines: `sha256:` and 12 hex digits.
fn short(digest: &Digest) -> String {
    let hex = digest.hex();
    let end = hex.len().min(12);
    format!("{}:{}", digest.algorithm().as_str(), &hex[..end])
}

/// The closing table on stderr: each image's blobs, bytes moved and time,
/// then the totals.
fn show_table(progress: &Progress, report: &PromoteReport) {
    let row = |name: String, mounted, copied, skipped, bytes, elapsed| {
        vec![
            name,
            format!("{mounted}"),
            format!("{copied}"),
            format!("{skipped}"),
            format_bytes(bytes),
            format_duration(elapsed),
        ]
    };
    let mut rows: Vec<Vec<String>> = report
        .images
        .iter()
        .map(|image| {
            let digest = image
                .digest
                .parse::<Digest>()
                .map_or_else(|_| image.digest.clone(), |digest| short(&digest));
            let what = match (&image.platform, image.referrer) {
                (_, true) => " referrer".to_owned(),
                (Some(platform), false) => format!(" {platform}"),
                (None, false) => String::new(),
            };
            row(
                format!("{digest}{what}"),
                image.blobs_mounted,
                image.blobs_copied,
                image.blobs_skipped,
                image.bytes_copied,
                image.elapsed,
            )
        })
        .collect();
    rows.push(row(
        "total".to_owned(),
        report.blobs_mounted,
        report.blobs_copied,
        report.blobs_skipped,
        report.bytes_copied,
        report.elapsed,
    ));
    progress.table(
        &["image", "mounted", "copied", "skipped", "bytes", "time"],
        &rows,
    );
}
