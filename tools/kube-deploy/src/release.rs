//! What one deploy is: the images, each pinned to its digest, and the
//! release's facts (id, git sha, deployer) written on the workloads as
//! annotations, where `kubectl rollout history` shows them.

use std::collections::BTreeMap;

use slipway_config::{Config, Env};
use slipway_core::cli::UsageError;
use slipway_core::image_ref::ImageRef;

/// The change-cause kubectl shows in `rollout history`.
pub(crate) const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// The images of the release (a JSON object, image name -> reference).
pub(crate) const IMAGES_ANNOTATION: &str = "slipway.dev/images";
/// The git commit deployed.
pub(crate) const REVISION_ANNOTATION: &str = "slipway.dev/revision";
/// Who deployed.
pub(crate) const DEPLOYER_ANNOTATION: &str = "slipway.dev/deployer";

/// An image pinned to a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pinned {
    /// The `[images.<name>]` key.
    pub(crate) name: String,
    /// Its repository in slipway.toml (what manifests name).
    pub(crate) configured: String,
    /// The same in Docker's short form (`nginx` for `docker.io/library/nginx`).
    pub(crate) configured_familiar: String,
    /// The repository of the reference deployed (another registry after a promote).
    pub(crate) repository: String,
    /// `sha256:…`.
    pub(crate) digest: String,
    /// Given with `--image` (it must be used), not taken from img-build's report.
    pub(crate) is_explicit: bool,
}

impl Pinned {
    /// `repository@digest`.
    pub(crate) fn reference(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }

    /// The names a manifest may give the image: its repository as
    /// configured, in short form, or as deployed.
    pub(crate) fn names_in_manifests(&self) -> Vec<String> {
        let mut names = vec![self.configured.clone()];
        for other in [&self.configured_familiar, &self.repository] {
            if !names.contains(other) {
                names.push(other.clone());
            }
        }
        names
    }
}

/// The images to deploy: img-build's report (`images_from`: its text and
/// where it came from), then each `--image NAME=REF` over it. Every
/// reference must hold a digest.
pub(crate) fn pinned(
    config: &Config,
    env: &Env,
    flags: &[String],
    images_from: Option<(&str, &str)>,
) -> anyhow::Result<(Vec<Pinned>, Option<String>)> {
    let mut given: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let mut revision = None;
    if let Some((text, source)) = images_from {
        let report: slipway_contract::img_build::BuildReport = serde_json::from_str(text)
            .map_err(|error| {
                UsageError::caused_by(
                    format!(
                        "`--images-from {source}` is not img-build's JSON report (`img-build --format json`)"
                    ),
                    error,
                )
            })?;
        revision = Some(report.revision);
        for target in report.targets {
            // An image the env's `images` leaves out is not deployed here.
            let is_deployed =
                env.images.is_empty() || env.images.values().any(|i| *i == target.name);
            if let (Some(reference), true) = (target.reference, is_deployed) {
                given.insert(target.name, (reference, false));
            }
        }
    }
    for flag in flags {
        let Some((name, reference)) = flag.split_once('=') else {
            return Err(UsageError::new(format!(
                "`--image {flag}` is not `<image>=<registry/repo>@sha256:…`"
            )));
        };
        given.insert(name.to_owned(), (reference.to_owned(), true));
    }
    if given.is_empty() {
        return Err(UsageError::new(
            "no image to deploy: give `--image <image>=<registry/repo>@sha256:…` or `--images-from FILE` (img-build's JSON report)",
        ));
    }
    let mut images = Vec::new();
    for (name, (reference, is_explicit)) in given {
        let image = config.image(&name)?;
        let parsed: ImageRef = reference.parse().map_err(|error| {
            UsageError::caused_by(
                format!("`--image {name}={reference}` is not an image reference"),
                error,
            )
        })?;
        let Some(digest) = parsed.digest() else {
            return Err(UsageError::new(format!(
                "`{name}={reference}` names a tag, not a digest: kube-deploy deploys `repo@sha256:…` only, so that what the cluster runs is what was built (img-build's report, or `img-tag`, gives the digest)"
            )));
        };
        images.push(Pinned {
            name,
            configured: image.repository().to_string(),
            configured_familiar: image.repository().familiar(),
            repository: parsed.repository().to_string(),
            digest: digest.to_string(),
            is_explicit,
        });
    }
    Ok((images, revision))
}

/// One deploy's facts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Release {
    /// `YYYYMMDD-HHMMSS` (UTC) of its start.
    pub(crate) id: String,
    /// Image name -> `repo@sha256:…`.
    pub(crate) images: BTreeMap<String, String>,
    /// The git commit, when known.
    pub(crate) revision: Option<String>,
    /// Who deployed.
    pub(crate) deployer: String,
}

impl Release {
    /// The change-cause: `slipway <id>: app=repo@sha256:…; git 0123456; by alice`.
    pub(crate) fn change_cause(&self) -> String {
        let images: Vec<String> = self
            .images
            .iter()
            .map(|(name, reference)| format!("{name}={reference}"))
            .collect();
        let mut cause = format!("slipway {}: {}", self.id, images.join(", "));
        if let Some(revision) = &self.revision {
            cause.push_str(&format!("; git {}", revision.get(..7).unwrap_or(revision)));
        }
        cause.push_str(&format!("; by {}", self.deployer));
        cause
    }

    /// The annotations a workload gets.
    pub(crate) fn annotations(&self) -> Vec<(String, String)> {
        let mut annotations = vec![
            (CHANGE_CAUSE.to_owned(), self.change_cause()),
            (
                crate::manifests::RELEASE_ANNOTATION.to_owned(),
                self.id.clone(),
            ),
            (
                IMAGES_ANNOTATION.to_owned(),
                serde_json::to_string(&self.images).unwrap_or_default(),
            ),
            (DEPLOYER_ANNOTATION.to_owned(), self.deployer.clone()),
        ];
        if let Some(revision) = &self.revision {
            annotations.push((REVISION_ANNOTATION.to_owned(), revision.clone()));
        }
        annotations
    }
}

/// The release id of `kubectl rollout history`'s change-cause, if Slipway wrote it.
pub(crate) fn release_of_cause(cause: &str) -> Option<&str> {
    cause.strip_prefix("slipway ")?.split(':').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(revision: Option<&str>) -> Release {
        Release {
            id: "20261206-104500".to_owned(),
            images: BTreeMap::from([
                ("app".to_owned(), "r/app@sha256:aa".to_owned()),
                ("worker".to_owned(), "r/worker@sha256:bb".to_owned()),
            ]),
            revision: revision.map(str::to_owned),
            deployer: "alice".to_owned(),
        }
    }

    #[test]
    fn the_change_cause_names_release_digests_commit_and_deployer() {
        let cause = release(Some("0123456789abcdef0123456789abcdef01234567")).change_cause();
        assert_eq!(
            cause,
            "slipway 20261206-104500: app=r/app@sha256:aa, worker=r/worker@sha256:bb; git 0123456; by alice"
        );
        assert_eq!(release_of_cause(&cause), Some("20261206-104500"));
        assert_eq!(
            release(None).change_cause(),
            "slipway 20261206-104500: app=r/app@sha256:aa, worker=r/worker@sha256:bb; by alice"
        );
        assert_eq!(release_of_cause("kubectl set image …"), None);
    }
}
