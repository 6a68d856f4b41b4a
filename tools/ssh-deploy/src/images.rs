//! Where a deploy's image references come from (`--images-from`, `--image`)
//! and the deploy gate that reads their revision labels from the registry
//! (`--require-revision`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context as _;
use slipway_config::{Config, Env};
use slipway_core::cli::UsageError;
use slipway_core::output::Output;

use crate::{DeployArgs, plan};

/// A deploy's image references: what `deploy.env` and the record hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Given {
    /// `deploy.env` variable -> `repo@sha256:…` (tags resolved to digests).
    pub(crate) vars: BTreeMap<String, String>,
    /// Variable -> the reference it was given as, for images given by tag.
    pub(crate) tags: BTreeMap<String, String>,
    /// The images' revision, when known and the same for every image.
    pub(crate) revision: Option<String>,
}

/// The `deploy.env` image variables from `--images-from` and `--image`
/// (flags win), every tag resolved to its digest through the registry
/// (references pinned by digest are not looked up), and checked against
/// `--require-revision` when given: nothing is deployed whose revision
/// label is not the commit being released.
pub(crate) fn given_images(
    config: &Config,
    env: &Env,
    args: &DeployArgs,
    out: &Output,
) -> anyhow::Result<Given> {
    plan::check_duplicate_images(&args.images)?;
    let mut given = Vec::new();
    let mut built = None;
    if let Some(path) = &args.images_from {
        let source = path.display().to_string();
        let text = read_images_from(path, &source)?;
        let (list, revision) = plan::images_from_report(&text, &source, env)?;
        built = Some((list.clone(), revision));
        given = list;
    }
    given.extend(args.images.iter().cloned());
    let mut vars = plan::image_vars(env, &given)?;
    // What each image's revision is known to be: img-build's for what it
    // built (unless `--image` overrides it), the label for what is looked up.
    let mut revisions: BTreeMap<String, Option<String>> = vars
        .iter()
        .map(|(var, reference)| {
            let from_report = built.as_ref().and_then(|(list, revision)| {
                let image = env.images.get(var)?;
                list.contains(&format!("{image}={reference}"))
                    .then(|| revision.clone())
            });
            (var.clone(), from_report)
        })
        .collect();
    let tags = resolve_tags(config, &args.registry, &mut vars, &mut revisions, out)?;
    let mut revision = None;
    if let Some(rev) = &args.require_revision {
        revision = Some(require_revision(config, &args.registry, rev, &vars, out)?);
    }
    let known: BTreeSet<&Option<String>> = revisions.values().collect();
    if revision.is_none() && known.len() == 1 {
        revision = known.into_iter().next().cloned().flatten();
    }
    Ok(Given {
        vars,
        tags,
        // A record keeps only a commit id (hex); anything else is no revision.
        revision: revision.filter(|r| is_commit_id(r)),
    })
}

/// Whether `text` looks like a commit id (hex, 4 to 64 characters).
fn is_commit_id(text: &str) -> bool {
    (4..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Replaces each reference of `vars` given by tag with `repo@<digest>`,
/// read from the registry, and notes its revision label in `revisions`;
/// returns the tags given. A tag the registry does not have is bad input.
fn resolve_tags(
    config: &Config,
    registry: &slipway_registry::RegistryArgs,
    vars: &mut BTreeMap<String, String>,
    revisions: &mut BTreeMap<String, Option<String>>,
    out: &Output,
) -> anyhow::Result<BTreeMap<String, String>> {
    use slipway_core::image_ref::{Digest, ImageRef};
    use slipway_stale::Published;

    let mut tagged = Vec::new();
    for (var, reference) in vars.iter() {
        let image: ImageRef = reference
            .parse()
            .context("an image reference no longer parses")?;
        if image.digest().is_none() {
            tagged.push((var.clone(), image));
        }
    }
    if tagged.is_empty() {
        return Ok(BTreeMap::new());
    }
    let images: Vec<ImageRef> = tagged.iter().map(|(_, image)| image.clone()).collect();
    let published = fetch_published(config, registry, &images, out)?;
    let mut tags = BTreeMap::new();
    for ((var, image), published) in tagged.into_iter().zip(published) {
        let published = published
            .map_err(own_registry_hint)
            .with_context(|| format!("cannot resolve `{image}` to a digest"))?;
        let Published::Found { digest, .. } = &published else {
            return Err(UsageError::new(format!(
                "`{image}` does not resolve: the registry `{}` has no such tag; give a tag that is pushed, or a digest (`repo@sha256:…`)",
                image.registry()
            )));
        };
        let digest: Digest = digest.parse().with_context(|| {
            format!(
                "the registry answered `{image}` with the digest `{digest}`, which does not parse"
            )
        })?;
        let pinned = ImageRef::from_parts(image.repository().clone(), None, Some(digest));
        tracing::info!(%image, %pinned, "resolved the tag to its digest");
        revisions.insert(
            var.clone(),
            slipway_stale::revision_of(&published)
                .ok()
                .map(|sha| sha.as_str().to_owned()),
        );
        vars.insert(var.clone(), pinned.to_string());
        tags.insert(var, image.to_string());
    }
    Ok(tags)
}

/// What the registry holds under each of `images` (manifests and config
/// blobs only), one result per image.
fn fetch_published(
    config: &Config,
    registry: &slipway_registry::RegistryArgs,
    images: &[slipway_core::image_ref::ImageRef],
    out: &Output,
) -> anyhow::Result<Vec<Result<slipway_stale::Published, slipway_stale::FetchError>>> {
    use slipway_core::image_ref::ImageRef;
    use slipway_registry::{RegistryClient, RegistryOptions};

    let options = RegistryOptions {
        max_attempts: 3,
        ..RegistryOptions::for_tool("ssh-deploy", registry)
    };
    let client =
        RegistryClient::for_registries(images.iter().map(ImageRef::registry), None, options, out)?;
    let fetch = slipway_stale::FetchOptions {
        timeout: Duration::from_secs(30),
        cache: slipway_stale::default_cache_path(&config.root),
    };
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(slipway_stale::fetch_published(&client, images, &fetch)))
}

/// The most `--images-from` reads: img-build's report for a few images is a
/// few kB; more is not a report (`/dev/zero` would fill the memory).
const IMAGES_FROM_LIMIT: u64 = 4 * 1024 * 1024;

/// Reads `--images-from` (a file or `-` for stdin), at most
/// [`IMAGES_FROM_LIMIT`] bytes.
fn read_images_from(path: &std::path::Path, source: &str) -> anyhow::Result<String> {
    use std::io::Read as _;
    let reader: Box<dyn std::io::Read> = if source == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(fs_err::File::open(path).map_err(|error| {
            UsageError::caused_by(
                format!(
                    "cannot read `--images-from {source}`; give img-build's JSON report (`img-build --format json > build.json`) or `-` for stdin"
                ),
                error,
            )
        })?)
    };
    let mut bytes = Vec::new();
    reader
        .take(IMAGES_FROM_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| {
            UsageError::caused_by(format!("cannot read `--images-from {source}`"), error)
        })?;
    if bytes.len() as u64 > IMAGES_FROM_LIMIT {
        return Err(UsageError::new(format!(
            "`--images-from {source}` is larger than {} MiB, the most ssh-deploy reads; give img-build's JSON report (`img-build --format json > build.json`)",
            IMAGES_FROM_LIMIT / 1024 / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        UsageError::new(format!(
            "`--images-from {source}` is not img-build's JSON report (`img-build --format json`): it is not UTF-8 text"
        ))
    })
}

/// The deploy gate: every image's `org.opencontainers.image.revision`,
/// read from its registry (manifest and config blob only), must be `rev`.
/// Returns the commit `rev` names.
fn require_revision(
    config: &Config,
    registry: &slipway_registry::RegistryArgs,
    rev: &str,
    vars: &BTreeMap<String, String>,
    out: &Output,
) -> anyhow::Result<String> {
    use slipway_core::image_ref::ImageRef;

    let sha = slipway_git::Repo::discover(&config.root)
        .and_then(|repo| repo.resolve(rev))
        .map_err(|error| UsageError::caused_by(format!("`--require-revision {rev}`"), error))?;
    let images: Vec<ImageRef> = vars
        .values()
        .map(|reference| reference.parse())
        .collect::<Result<_, _>>()
        .context("an image reference no longer parses")?;
    let published = fetch_published(config, registry, &images, out)?;
    let mut refused = Vec::new();
    for (image, published) in images.iter().zip(published) {
        let published = published.map_err(own_registry_hint)?;
        if !slipway_stale::revision_matches(&published, &sha) {
            let found = match slipway_stale::revision_of(&published) {
                Ok(revision) => format!("built from `{}`", revision.short()),
                Err(reason) => reason.describe(),
            };
            refused.push(format!("`{image}` ({found})"));
        }
    }
    if refused.is_empty() {
        tracing::info!(revision = %sha.short(), "every image was built from the release commit");
        Ok(sha.as_str().to_owned())
    } else {
        Err(UsageError::new(format!(
            "refusing to deploy images not built from `{}` (`--require-revision {rev}`): {}",
            sha.short(),
            refused.join(", ")
        )))
    }
}

/// A registry's refusal (401/403) with ssh-deploy's own way out: the
/// library's hint names `--username`/`--password-stdin`, which ssh-deploy
/// does not have.
fn own_registry_hint(error: slipway_stale::FetchError) -> anyhow::Error {
    use slipway_registry::RegistryError;
    use slipway_stale::FetchError;
    match &error {
        FetchError::Registry { image, source } => match source.as_ref() {
            RegistryError::Unauthorized {
            registry,
            method,
            path,
            status,
            credentials,
            message,
            } => anyhow::anyhow!(
                "`{registry}` refused {credentials} for `{method} {path}` ({status}){message}; `--require-revision` reads the registry with the credentials of `docker login {registry}` (the docker config or its credential helper), or of `REGISTRY_USER` and `REGISTRY_PASSWORD` in the environment"
            )
            .context(format!("cannot read the labels of `{image}`")),
            _ => anyhow::Error::from(error),
        },
        FetchError::Timeout { .. } => anyhow::Error::from(error),
    }
}
