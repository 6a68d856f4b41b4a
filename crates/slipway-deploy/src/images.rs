//! A deploy's images, pinned to `repo@sha256:…` before anything is touched
//! — the one copy every deploy tool uses, ssh-deploy included:
//! `--images-from` (img-build's JSON report) and `--image NAME=REF` (flags
//! win), each tag resolved to its digest through the registry (manifests
//! and config blobs only, never a layer), and the deploy gate
//! `--require-revision`: nothing is deployed whose
//! `org.opencontainers.image.revision` label is not the commit being
//! released. A bare `latest` is refused, an image given twice is refused,
//! every image of the env must be given, an image the env does not deploy
//! is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use slipway_config::Env;
use slipway_core::cli::UsageError;
use slipway_core::image_ref::{Digest, ImageRef};
use slipway_core::output::Output;
use slipway_stale::Published;

/// The images of one deploy: what the target runs and the record holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pinned {
    /// The env's `images` variable -> `repo@sha256:…` (tags resolved to digests).
    pub vars: BTreeMap<String, String>,
    /// Variable -> the reference it was given as, for images given by tag.
    pub tags: BTreeMap<String, String>,
    /// The images' revision (a commit id), when known and the same for
    /// every image: `--require-revision`'s commit, else what img-build's
    /// report and the revision labels of images given by tag agree on.
    pub revision: Option<String>,
}

/// What a deploy was given for its images.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `--images-from`: img-build's JSON report, a path or `-` for stdin.
    pub images_from: Option<&'a Path>,
    /// `--image NAME=REF` values, which win over the report.
    pub images: &'a [String],
    /// `--require-revision REV`, resolved in the git repository at `root`.
    pub require_revision: Option<&'a str>,
    /// How the registry is reached (the tool's *Registry connection* flags).
    pub registry: &'a slipway_registry::RegistryArgs,
    /// The project root (slipway.toml's directory): the git repository
    /// `--require-revision` names a commit of, and whose `.git` holds the
    /// registry label cache.
    pub root: Option<&'a Path>,
}

/// The most `--images-from` reads: img-build's report for a few images is a
/// few kB; more is not a report (`/dev/zero` would fill the memory).
const IMAGES_FROM_LIMIT: u64 = 4 * 1024 * 1024;

/// The env's image variables from `--images-from` and `--image` (flags
/// win), every tag resolved to its digest through the registry
/// (references pinned by digest are not looked up), and checked against
/// `--require-revision` when given. `tool` names the registry client and
/// the tool in messages.
pub fn pin_images(
    env: &Env,
    request: &Request<'_>,
    tool: &str,
    out: &Output,
) -> anyhow::Result<Pinned> {
    check_duplicate_images(request.images)?;
    let mut given = Vec::new();
    let mut built = None;
    if let Some(path) = request.images_from {
        let source = path.display().to_string();
        let text = read_images_from(path, &source, tool)?;
        let (list, revision) = images_from_report(&text, &source, env)?;
        built = Some((list.clone(), revision));
        given = list;
    }
    given.extend(request.images.iter().cloned());
    let mut vars = image_vars(env, &given)?;
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
    let fetcher = Fetcher {
        registry: request.registry,
        root: request.root,
        tool,
        out,
    };
    let tags = resolve_tags(&fetcher, &mut vars, &mut revisions)?;
    let mut revision = None;
    if let Some(rev) = request.require_revision {
        revision = Some(require_revision(&fetcher, rev, &vars)?);
    }
    let known: BTreeSet<&Option<String>> = revisions.values().collect();
    if revision.is_none() && known.len() == 1 {
        revision = known.into_iter().next().cloned().flatten();
    }
    Ok(Pinned {
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

/// Refuses two `--image` flags for one image: which one was meant is not
/// for a deploy tool to guess.
fn check_duplicate_images(given: &[String]) -> anyhow::Result<()> {
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

/// `--images-from`: the image references of img-build's JSON report
/// (`text`, read from `source`) as `<image>=<reference>` values, for the
/// images `env` deploys. Targets img-build did not build (failed, or not
/// selected) have no reference and are left to `--image`. Also returns
/// the revision img-build built.
fn images_from_report(
    text: &str,
    source: &str,
    env: &Env,
) -> anyhow::Result<(Vec<String>, String)> {
    let report: slipway_contract::img_build::BuildReport = serde_json::from_str(text).map_err(|error| {
        UsageError::caused_by(
            format!(
                "`--images-from {source}` is not img-build's JSON report (`img-build --format json`)"
            ),
            error,
        )
    })?;
    let images = report
        .targets
        .into_iter()
        .filter(|target| env.images.values().any(|image| *image == target.name))
        .filter_map(|target| Some(format!("{}={}", target.name, target.reference?)))
        .collect();
    Ok((images, report.revision))
}

/// Parses `--image <image>=<ref>` values into the env's image variables
/// through its `images` table; every variable needs a reference, and each
/// reference must be immutable (a digest, or a tag other than `latest`).
/// A later value for an image wins over an earlier one.
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
            .with_context(|| format!("invalid `--image {value}`"))?;
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

/// How a deploy reads the registry: its flags, the label cache, the tool.
struct Fetcher<'a> {
    registry: &'a slipway_registry::RegistryArgs,
    root: Option<&'a Path>,
    tool: &'a str,
    out: &'a Output,
}

impl Fetcher<'_> {
    /// What the registry holds under each of `images` (manifests and config
    /// blobs only), one result per image.
    fn fetch(
        &self,
        images: &[ImageRef],
    ) -> anyhow::Result<Vec<Result<Published, slipway_stale::FetchError>>> {
        use slipway_registry::{RegistryClient, RegistryOptions};

        let options = RegistryOptions {
            max_attempts: 3,
            ..RegistryOptions::for_tool(self.tool, self.registry)
        };
        let client = RegistryClient::for_registries(
            images.iter().map(ImageRef::registry),
            None,
            options,
            self.out,
        )?;
        let fetch = slipway_stale::FetchOptions {
            timeout: Duration::from_secs(30),
            cache: self.root.and_then(slipway_stale::default_cache_path),
        };
        Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(slipway_stale::fetch_published(&client, images, &fetch)))
    }
}

/// Replaces each reference of `vars` given by tag with `repo@<digest>`,
/// read from the registry, and notes its revision label in `revisions`;
/// returns the tags given. A tag the registry does not have is bad input.
fn resolve_tags(
    fetcher: &Fetcher<'_>,
    vars: &mut BTreeMap<String, String>,
    revisions: &mut BTreeMap<String, Option<String>>,
) -> anyhow::Result<BTreeMap<String, String>> {
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
    let published = fetcher.fetch(&images)?;
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

/// Reads `--images-from` (a file or `-` for stdin), at most
/// [`IMAGES_FROM_LIMIT`] bytes.
fn read_images_from(path: &Path, source: &str, tool: &str) -> anyhow::Result<String> {
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
            "`--images-from {source}` is larger than {} MiB, the most {tool} reads; give img-build's JSON report (`img-build --format json > build.json`)",
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
    fetcher: &Fetcher<'_>,
    rev: &str,
    vars: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let root = fetcher.root.unwrap_or(Path::new("."));
    let sha = slipway_git::Repo::discover(root)
        .and_then(|repo| repo.resolve(rev))
        .map_err(|error| UsageError::caused_by(format!("`--require-revision {rev}`"), error))?;
    let images: Vec<ImageRef> = vars
        .values()
        .map(|reference| reference.parse())
        .collect::<Result<_, _>>()
        .context("an image reference no longer parses")?;
    let published = fetcher.fetch(&images)?;
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

/// A registry's refusal (401/403) with the deploy tools' own way out: the
/// library's hint names `--username`/`--password-stdin`, which they do not
/// have.
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
