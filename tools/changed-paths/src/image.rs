//! `--base-from-image`: the base commit is the `org.opencontainers.image.revision`
//! label of a published image (every platform of an index must agree),
//! read from its registry through manifests and config blobs only.

use anyhow::Context as _;
use slipway_core::image_ref::ImageRef;
use slipway_core::output::Output;
use slipway_git::Sha;
use slipway_registry::{RegistryClient, RegistryOptions};
use slipway_stale::{Published, REVISION_LABEL, Unknown};

/// The suffix `img-build` appends to the revision of a build from a dirty tree.
const DIRTY: &str = "-dirty";

/// What to do instead when the image says nothing usable.
const FIX: &str = "build it with img-build (which sets it) or pass --base";

/// The commit the image `text` names was built from; a dirty build's
/// commit with a warning.
pub(crate) fn base_revision(
    text: &str,
    registry: &slipway_registry::RegistryArgs,
    out: &Output,
) -> anyhow::Result<Sha> {
    let image: ImageRef = text
        .parse()
        .with_context(|| format!("`--base-from-image {text}` is not an image reference"))?;
    let client = client(image.registry(), registry, out)?;
    let labels = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(client.fetch_config_labels(&image))
        .map_err(|error| {
            if error.is_not_found() {
                anyhow::anyhow!(
                    "image `{text}` not found in its registry; check the reference (`--base-from-image`), or pass --base"
                )
            } else {
                anyhow::Error::new(error).context(format!("cannot read the labels of image `{text}`"))
            }
        })?;
    let digest = labels
        .first()
        .map(|l| l.digest.to_string())
        .unwrap_or_default();
    let (sha, dirty) = revision(text, Published::from_labels(digest, &labels))
        .map_err(|message| anyhow::anyhow!(message))?;
    if dirty {
        tracing::warn!(
            "image `{text}` was built from uncommitted changes on top of `{}` (`{}{DIRTY}`); comparing from that commit",
            sha.short(),
            sha.as_str()
        );
    }
    tracing::info!(base = %sha.short(), "base from the revision label of `{text}`");
    Ok(sha)
}

/// The one revision of `published` (the image `text`), `-dirty` removed
/// (and whether there was one), else what is wrong and how to fix it.
fn revision(text: &str, mut published: Published) -> Result<(Sha, bool), String> {
    let mut dirty = false;
    if let Published::Found { platforms, .. } = &mut published {
        for revision in platforms.iter_mut().filter_map(|p| p.revision.as_mut()) {
            if let Some(sha) = revision.strip_suffix(DIRTY) {
                *revision = sha.to_owned();
                dirty = true;
            }
        }
    }
    match slipway_stale::revision_of(&published) {
        Ok(sha) => Ok((sha, dirty)),
        Err(Unknown::NoLabel { platform: None }) => Err(format!(
            "image `{text}` has no `{REVISION_LABEL}` label; {FIX}"
        )),
        Err(Unknown::NoLabel {
            platform: Some(platform),
        }) => Err(format!(
            "image `{text}` has no `{REVISION_LABEL}` label on platform `{platform}`; {FIX}"
        )),
        Err(Unknown::Inconsistent { .. }) => {
            let Published::Found { platforms, .. } = &published else {
                return Err(format!("image `{text}` has no revision; {FIX}"));
            };
            let each: Vec<String> = platforms
                .iter()
                .map(|p| {
                    format!(
                        "`{}` at `{}`",
                        p.platform.as_deref().unwrap_or("image"),
                        p.revision.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            Err(format!(
                "the platforms of image `{text}` were built from different commits: {}; rebuild every platform from one commit, or pass --base",
                each.join(", ")
            ))
        }
        Err(Unknown::NotASha { value }) => Err(format!(
            "image `{text}` has `{REVISION_LABEL}` label `{value}`, not a full commit sha; {FIX}"
        )),
        Err(other) => Err(format!("image `{text}`: {}; {FIX}", other.describe())),
    }
}

/// A client for `registry` with its credentials (`REGISTRY_USER` and
/// `REGISTRY_PASSWORD`, else the docker config), masked before use.
fn client(
    registry: &str,
    args: &slipway_registry::RegistryArgs,
    out: &Output,
) -> anyhow::Result<RegistryClient> {
    let options = RegistryOptions::for_tool("changed-paths", args);
    Ok(RegistryClient::for_registries(
        [registry],
        None,
        options,
        out,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_stale::PlatformRevision;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// `platforms` as `(platform, revision)`; `expected` is `Ok((sha, dirty))`
    /// or the start of the error message.
    #[track_caller]
    fn check(platforms: &[(Option<&str>, Option<&str>)], expected: Result<(&str, bool), &str>) {
        let published = Published::Found {
            digest: "sha256:0".to_owned(),
            platforms: platforms
                .iter()
                .map(|(platform, revision)| PlatformRevision {
                    platform: platform.map(str::to_owned),
                    revision: revision.map(str::to_owned),
                })
                .collect(),
        };
        let got = revision("r/app:main", published);
        match (got, expected) {
            (Ok((sha, dirty)), Ok((want, want_dirty))) => {
                assert_eq!((sha.as_str(), dirty), (want, want_dirty));
            }
            (Err(message), Err(want)) => assert!(message.starts_with(want), "{message}"),
            (got, expected) => panic!("got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn revisions() {
        let dirty = format!("{A}-dirty");
        check(&[(None, Some(A))], Ok((A, false)));
        check(&[(None, Some(&dirty))], Ok((A, true)));
        check(
            &[
                (Some("linux/amd64"), Some(A)),
                (Some("linux/arm64"), Some(A)),
            ],
            Ok((A, false)),
        );
        check(
            &[
                (Some("linux/amd64"), Some(A)),
                (Some("linux/arm64"), Some(&dirty)),
            ],
            Ok((A, true)),
        );
        check(
            &[(None, None)],
            Err(
                "image `r/app:main` has no `org.opencontainers.image.revision` label; build it with img-build (which sets it) or pass --base",
            ),
        );
        check(
            &[(Some("linux/amd64"), Some(A)), (Some("linux/arm64"), None)],
            Err(
                "image `r/app:main` has no `org.opencontainers.image.revision` label on platform `linux/arm64`;",
            ),
        );
        check(
            &[
                (Some("linux/amd64"), Some(A)),
                (Some("linux/arm64"), Some(B)),
            ],
            Err(&format!(
                "the platforms of image `r/app:main` were built from different commits: `linux/amd64` at `{A}`, `linux/arm64` at `{B}`; rebuild"
            )),
        );
        check(
            &[(None, Some("v1.2.3"))],
            Err(
                "image `r/app:main` has `org.opencontainers.image.revision` label `v1.2.3`, not a full commit sha;",
            ),
        );
        check(&[], Err("image `r/app:main`: the index lists no image;"));
    }
}
