//! What one deploy is: the images, each pinned to its digest, and the
//! release's facts (id, git sha, deployer) written on the workloads as
//! annotations, where `kubectl rollout history` shows them.

use std::collections::BTreeMap;

use slipway_config::Config;
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
}

impl Pinned {
    /// Image `name` of slipway.toml deployed as `reference` (`repo@sha256:…`).
    pub(crate) fn new(config: &Config, name: &str, reference: &str) -> anyhow::Result<Pinned> {
        let image = config.image(name)?;
        let parsed: ImageRef = reference.parse().map_err(|error| {
            UsageError::caused_by(
                format!("`{name}={reference}` is not an image reference"),
                error,
            )
        })?;
        let Some(digest) = parsed.digest() else {
            return Err(UsageError::new(format!(
                "`{name}={reference}` names a tag, not a digest: kube-deploy deploys `repo@sha256:…` only"
            )));
        };
        Ok(Pinned {
            name: name.to_owned(),
            configured: image.repository().to_string(),
            configured_familiar: image.repository().familiar(),
            repository: parsed.repository().to_string(),
            digest: digest.to_string(),
        })
    }

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

/// One deploy's facts, as the workloads' annotations carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReleaseFacts {
    /// The release's number in the env's history.
    pub(crate) id: String,
    /// Image name -> `repo@sha256:…`.
    pub(crate) images: BTreeMap<String, String>,
    /// The git commit, when known.
    pub(crate) revision: Option<String>,
    /// Who deployed.
    pub(crate) deployer: String,
}

impl ReleaseFacts {
    /// The facts of `release`, whose images are `images`.
    pub(crate) fn of(release: &slipway_deploy::Release, images: &[Pinned]) -> ReleaseFacts {
        ReleaseFacts {
            id: release.id.to_string(),
            images: images
                .iter()
                .map(|i| (i.name.clone(), i.reference()))
                .collect(),
            revision: release.git_sha.clone(),
            deployer: release.who.clone(),
        }
    }

    /// The change-cause: `slipway release 4: app=repo@sha256:…; git 0123456; by alice`.
    pub(crate) fn change_cause(&self) -> String {
        let images: Vec<String> = self
            .images
            .iter()
            .map(|(name, reference)| format!("{name}={reference}"))
            .collect();
        let mut cause = format!("slipway release {}: {}", self.id, images.join(", "));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn release(revision: Option<&str>) -> ReleaseFacts {
        ReleaseFacts {
            id: "4".to_owned(),
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
            "slipway release 4: app=r/app@sha256:aa, worker=r/worker@sha256:bb; git 0123456; by alice"
        );
        assert_eq!(
            release(None).change_cause(),
            "slipway release 4: app=r/app@sha256:aa, worker=r/worker@sha256:bb; by alice"
        );
    }
}
