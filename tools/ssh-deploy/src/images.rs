//! Where a deploy's image references come from (`--images-from`, `--image`)
//! and the deploy gate that reads their revision labels from the registry
//! (`--require-revision`).

use std::time::Duration;

use anyhow::Context as _;
use slipway_core::cli::UsageError;
use slipway_core::config::{Config, Env};
use slipway_core::output::Output;

use crate::{DeployArgs, plan};

/// The `deploy.env` image variables from `--images-from` and `--image`
/// (flags win), checked against `--require-revision` when given: nothing
/// is deployed whose revision label is not the commit being released.
pub(crate) fn given_images(
    config: &Config,
    env: &Env,
    args: &DeployArgs,
    out: &Output,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    plan::check_duplicate_images(&args.images)?;
    let mut given = Vec::new();
    if let Some(path) = &args.images_from {
        let source = path.display().to_string();
        let text = read_images_from(path, &source)?;
        given = plan::images_from_report(&text, &source, env)?;
    }
    given.extend(args.images.iter().cloned());
    let vars = plan::image_vars(env, &given)?;
    if let Some(rev) = &args.require_revision {
        require_revision(config, rev, &vars, out)?;
    }
    Ok(vars)
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
            UsageError::new(format!(
                "cannot read `--images-from {source}`: {error}; give img-build's JSON report (`img-build --format json > build.json`) or `-` for stdin"
            ))
        })?)
    };
    let mut bytes = Vec::new();
    reader
        .take(IMAGES_FROM_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| {
            UsageError::new(format!("cannot read `--images-from {source}`: {error}"))
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
fn require_revision(
    config: &Config,
    rev: &str,
    vars: &std::collections::BTreeMap<String, String>,
    out: &Output,
) -> anyhow::Result<()> {
    use slipway_core::image_ref::ImageRef;
    use slipway_core::registry::{RegistryClient, RegistryOptions};
    use slipway_core::stale;

    let sha = slipway_core::git::Repo::discover(&config.root)
        .and_then(|repo| repo.resolve(rev))
        .map_err(|error| UsageError::new(format!("`--require-revision {rev}`: {error}")))?;
    let images: Vec<ImageRef> = vars
        .values()
        .map(|reference| reference.parse())
        .collect::<Result<_, _>>()
        .context("an image reference no longer parses")?;
    let options = RegistryOptions {
        max_attempts: 3,
        user_agent: concat!("ssh-deploy/", env!("CARGO_PKG_VERSION")).to_owned(),
        ..RegistryOptions::default()
    };
    let client =
        RegistryClient::for_registries(images.iter().map(ImageRef::registry), None, options, out)?;
    let fetch = stale::FetchOptions {
        timeout: Duration::from_secs(30),
        cache: stale::default_cache_path(&config.root),
    };
    let published = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(stale::fetch_published(&client, &images, &fetch));
    let mut refused = Vec::new();
    for (image, published) in images.iter().zip(published) {
        let published = published.map_err(own_registry_hint)?;
        if !stale::revision_matches(&published, &sha) {
            let found = match stale::revision_of(&published) {
                Ok(revision) => format!("built from `{}`", revision.short()),
                Err(reason) => reason.describe(),
            };
            refused.push(format!("`{image}` ({found})"));
        }
    }
    if refused.is_empty() {
        tracing::info!(revision = %sha.short(), "every image was built from the release commit");
        Ok(())
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
fn own_registry_hint(error: slipway_core::stale::FetchError) -> anyhow::Error {
    use slipway_core::registry::RegistryError;
    use slipway_core::stale::FetchError;
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
