//! After a build: proof that the image holds its own Dockerfile. The label
//! [`DOCKERFILE_LABEL`] is read back from what was built (the local image
//! store for `docker build` and buildah, before anything is pushed; the
//! registry for what buildx pushed) and compared with the sha256 of the
//! Dockerfile bytes the plan read. A mismatch fails the target.

use std::collections::BTreeMap;

use anyhow::Context as _;
use slipway_core::image_ref::{Digest, ImageRef};
use slipway_core::output::Output;
use xshell::Shell;

use crate::backend::BackendKind;
use crate::dockerfile::DOCKERFILE_LABEL;
use crate::plan::{Plan, Target};

/// Reads the labels of a locally stored image (an image id or a tag) with
/// the backend's own client and checks them.
pub(crate) fn local(plan: &Plan, target: &Target, image: &str) -> anyhow::Result<String> {
    let sh = Shell::new()?;
    // buildah 1.28's `--format` has no `json` function: its whole
    // document is read instead.
    let output = match plan.backend {
        BackendKind::Buildah => sh
            .cmd(&plan.buildah)
            .args(["inspect", "--type", "image"])
            .arg(image),
        BackendKind::Buildkit | BackendKind::Buildx => sh
            .cmd(&plan.docker)
            .args(["image", "inspect", "--format"])
            .arg("{{json .Config.Labels}}")
            .arg(image),
    }
    .quiet()
    .ignore_status()
    .output()
    .context("cannot run the image inspection")?;
    if !output.status.success() {
        anyhow::bail!(
            "cannot read the labels of the built image `{image}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("the inspection of `{image}` is not JSON"))?;
    let labels = match plan.backend {
        BackendKind::Buildah => json.pointer("/OCIv1/config/Labels").cloned(),
        BackendKind::Buildkit | BackendKind::Buildx => Some(json),
    };
    let labels: Option<BTreeMap<String, String>> = labels
        .map(serde_json::from_value)
        .transpose()
        .with_context(|| format!("the labels of `{image}` are not a JSON object"))?
        .flatten();
    check(target, &format!("`{image}`"), &labels.unwrap_or_default())
}

/// Reads the labels of every platform of `repo@digest` from the registry and checks them.
pub(crate) fn pushed(
    plan: &Plan,
    target: &Target,
    digest: &Digest,
    out: &Output,
) -> anyhow::Result<String> {
    let client = crate::registry::client([target.repo.registry()], &plan.registry, out)?;
    let image: ImageRef = target.repo.with_digest(digest.clone());
    let platforms = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(client.fetch_config_labels(&image))
        .with_context(|| format!("cannot read the labels of the pushed image `{image}`"))?;
    let mut checked = Vec::new();
    for platform in &platforms {
        let shown = match &platform.platform {
            Some(p) => format!("`{image}` ({}/{})", p.os, p.architecture),
            None => format!("`{image}`"),
        };
        checked.push(check(target, &shown, &platform.labels)?);
    }
    Ok(checked.join("; "))
}

/// Compares the label with the Dockerfile's sha256; says what matched.
fn check(
    target: &Target,
    shown: &str,
    labels: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let expected = &target.build_file.sha256;
    match labels.get(DOCKERFILE_LABEL) {
        Some(found) if found == expected => Ok(format!(
            "{shown} was built from `{}` (sha256 {expected})",
            target.dockerfile.display()
        )),
        Some(found) => anyhow::bail!(
            "image `{}` was built from another Dockerfile: {shown} has `{DOCKERFILE_LABEL}={found}`, but `{}` has sha256 `{expected}`; nothing more of it is pushed (report this with the build log: the builder used a cached Dockerfile)",
            target.name,
            target.dockerfile.display()
        ),
        None => anyhow::bail!(
            "image `{}`: {shown} has no `{DOCKERFILE_LABEL}` label, so which Dockerfile it was built from cannot be checked",
            target.name
        ),
    }
}
