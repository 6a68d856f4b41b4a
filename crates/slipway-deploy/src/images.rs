//! A deploy's images, pinned to `repo@sha256:…` before anything is touched:
//! `--images-from` (img-build's JSON report) and `--image NAME=REF` (flags
//! win), each tag resolved to its digest through the registry (a HEAD
//! request; no manifest body, no layer). The same rules as ssh-deploy's
//! `images` module: a bare `latest` is refused, every image of the env must
//! be given, an image the env does not deploy is refused.

use std::collections::BTreeMap;

use anyhow::Context as _;
use slipway_config::Env;
use slipway_core::cli::UsageError;
use slipway_core::image_ref::ImageRef;
use slipway_core::output::Output;

/// The images of one deploy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pinned {
    /// The env's `images` variable -> `repo@sha256:…`.
    pub vars: BTreeMap<String, String>,
    /// Variable -> the reference it was given as, for images given by tag.
    pub tags: BTreeMap<String, String>,
    /// The revision img-build's report names, for `--images-from`.
    pub revision: Option<String>,
}

/// The most `--images-from` reads: img-build's report for a few images is a
/// few kB; more is not a report.
const IMAGES_FROM_LIMIT: u64 = 4 * 1024 * 1024;

/// Pins the images of `env` given by `images_from` (a path, `-` for stdin)
/// and `images` (`NAME=REF`, which win), resolving tags through the
/// registry as `tool`, reached as `registry` says.
pub fn pin(
    env: &Env,
    images_from: Option<&std::path::Path>,
    images: &[String],
    registry: &slipway_registry::RegistryArgs,
    tool: &str,
    out: &Output,
) -> anyhow::Result<Pinned> {
    let mut given = Vec::new();
    let mut revision = None;
    if let Some(path) = images_from {
        let source = path.display().to_string();
        let text = read_images_from(path, &source)?;
        let report: slipway_contract::img_build::BuildReport = serde_json::from_str(&text)
            .map_err(|error| {
                UsageError::caused_by(
                    format!(
                        "`--images-from {source}` is not img-build's JSON report (`img-build --format json`)"
                    ),
                    error,
                )
            })?;
        given.extend(
            report
                .targets
                .into_iter()
                .filter(|target| env.images.values().any(|image| *image == target.name))
                .filter_map(|target| Some(format!("{}={}", target.name, target.reference?))),
        );
        revision = Some(report.revision).filter(|r| is_commit_id(r));
    }
    check_duplicates(images)?;
    // Flags win over the report: drop the report's entry of an image given.
    given.retain(|entry| {
        let name = entry.split_once('=').map_or("", |(n, _)| n);
        !images
            .iter()
            .any(|flag| flag.split_once('=').is_some_and(|(n, _)| n == name))
    });
    given.extend(images.iter().cloned());
    let mut vars = image_vars(env, &given)?;
    let tags = resolve_tags(&mut vars, registry, tool, out)?;
    Ok(Pinned {
        vars,
        tags,
        revision,
    })
}

/// Whether `text` looks like a commit id (hex, 4 to 64 characters).
fn is_commit_id(text: &str) -> bool {
    (4..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_duplicates(given: &[String]) -> anyhow::Result<()> {
    for (index, value) in given.iter().enumerate() {
        let Some((name, _)) = value.split_once('=') else {
            continue;
        };
        if let Some(other) = given[..index]
            .iter()
            .find(|earlier| earlier.split_once('=').is_some_and(|(n, _)| n == name))
        {
            return Err(UsageError::new(format!(
                "image `{name}` is given twice: `--image {other}` and `--image {value}`; give one reference per image"
            )));
        }
    }
    Ok(())
}

/// The env's image variables from `NAME=REF` values.
fn image_vars(env: &Env, given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut by_image: BTreeMap<String, String> = BTreeMap::new();
    for value in given {
        let (name, reference) = value.split_once('=').ok_or_else(|| {
            UsageError::new(format!(
                "invalid `--image {value}`: expected `<image>=<registry/repo>@sha256:<digest>`, e.g. `app=registry.example.com/app@sha256:…`"
            ))
        })?;
        let parsed: ImageRef = reference
            .parse()
            .map_err(|error| UsageError::caused_by(format!("invalid `--image {value}`"), error))?;
        let is_mutable =
            parsed.digest().is_none() && parsed.tag().is_none_or(|tag| tag.as_str() == "latest");
        if is_mutable {
            return Err(UsageError::new(format!(
                "`--image {value}` is not immutable: give a digest (`repo@sha256:…`) or a tag such as `sha-<commit>`, never `latest`"
            )));
        }
        if !env.images.values().any(|image| image == name) {
            let known: Vec<String> = env.images.values().map(|n| format!("`{n}`")).collect();
            return Err(UsageError::new(format!(
                "`--image {value}` names image `{name}`, which env `{}` does not deploy; its images are {}",
                env.name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        by_image.insert(name.to_owned(), parsed.to_string());
    }
    let mut vars = BTreeMap::new();
    let mut missing = Vec::new();
    for (var, image) in &env.images {
        match by_image.get(image) {
            Some(reference) => {
                vars.insert(var.clone(), reference.clone());
            }
            None => missing.push(format!("`--image {image}=…` (for `{var}`)")),
        }
    }
    if !missing.is_empty() {
        return Err(UsageError::new(format!(
            "env `{}` needs {}",
            env.name,
            missing.join(", ")
        )));
    }
    Ok(vars)
}

/// Replaces each reference given by tag with `repo@<digest>`; returns the
/// tags given. A tag the registry does not have is bad input.
fn resolve_tags(
    vars: &mut BTreeMap<String, String>,
    registry: &slipway_registry::RegistryArgs,
    tool: &str,
    out: &Output,
) -> anyhow::Result<BTreeMap<String, String>> {
    use slipway_registry::{RegistryClient, RegistryOptions};

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
    let options = RegistryOptions {
        max_attempts: 3,
        ..RegistryOptions::for_tool(tool, registry)
    };
    let client = RegistryClient::for_registries(
        tagged.iter().map(|(_, image)| image.registry()),
        None,
        options,
        out,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut tags = BTreeMap::new();
    for (var, image) in tagged {
        let digest = runtime
            .block_on(client.resolve(&image))
            .with_context(|| format!("cannot resolve `{image}` to a digest"))?
            .ok_or_else(|| {
                UsageError::new(format!(
                    "`{image}` does not resolve: the registry `{}` has no such tag; give a tag that is pushed, or a digest (`repo@sha256:…`)",
                    image.registry()
                ))
            })?;
        let pinned = ImageRef::from_parts(image.repository().clone(), None, Some(digest));
        tracing::info!(%image, %pinned, "resolved the tag to its digest");
        vars.insert(var.clone(), pinned.to_string());
        tags.insert(var, image.to_string());
    }
    Ok(tags)
}

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
            "`--images-from {source}` is larger than {} MiB; give img-build's JSON report (`img-build --format json > build.json`)",
            IMAGES_FROM_LIMIT / 1024 / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        UsageError::new(format!(
            "`--images-from {source}` is not img-build's JSON report (`img-build --format json`): it is not UTF-8 text"
        ))
    })
}
