//! `--local`: what the local Docker engine holds under a reference, read
//! with `docker image inspect` (the image's config only).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use slipway_core::image_ref::ImageRef;
use slipway_stale::{PlatformRevision, Published, REVISION_LABEL};

/// The image id and revision label of `image` in the local engine, or
/// `Missing` when the engine has no such image.
pub(crate) fn inspect(docker: &Path, image: &ImageRef) -> anyhow::Result<Published> {
    let output = std::process::Command::new(docker)
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Id}}\t{{json .Config.Labels}}",
        ])
        .arg(image.to_string())
        .output()
        .with_context(|| format!("cannot run `{}`", docker.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("No such image") {
            return Ok(Published::Missing);
        }
        anyhow::bail!(
            "`{} image inspect {image}` failed: {}",
            docker.display(),
            stderr.trim()
        );
    }
    parse(&stdout).with_context(|| format!("cannot read `docker image inspect {image}`"))
}

/// Parses `<id>\t<labels as JSON or null>`.
fn parse(line: &str) -> anyhow::Result<Published> {
    let (id, labels) = line
        .trim()
        .split_once('\t')
        .context("expected `<id>\\t<labels>`")?;
    let labels: Option<BTreeMap<String, String>> =
        serde_json::from_str(labels).context("the labels are not a JSON object")?;
    Ok(Published::Found {
        digest: id.to_owned(),
        platforms: vec![PlatformRevision {
            platform: None,
            revision: labels.and_then(|mut l| l.remove(REVISION_LABEL)),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: Option<Option<&str>>) {
        let got = parse(line).ok().map(|p| match p {
            Published::Found { platforms, .. } => platforms[0].revision.clone(),
            Published::Missing => None,
        });
        assert_eq!(got, expected.map(|r| r.map(str::to_owned)), "{line}");
    }

    #[test]
    fn inspect_lines() {
        check(
            "sha256:1\t{\"org.opencontainers.image.revision\":\"abc\"}\n",
            Some(Some("abc")),
        );
        check("sha256:1\tnull\n", Some(None));
        check("sha256:1\t{\"other\":\"x\"}", Some(None));
        check("garbage", None);
    }
}
