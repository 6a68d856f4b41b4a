//! The OCI image index of a multi-platform image built without buildx: the
//! per-platform manifests were pushed by their builds; this assembles the
//! index from their digests, sizes and media types and puts it at every tag
//! through the registry client.

use anyhow::Context as _;
use slipway_config::Platform;
use slipway_core::image_ref::{Digest, Repository, Tag};
use slipway_core::output::Output;
use slipway_registry::{Manifest, OCI_INDEX};

/// Puts an index of `entries` (platform, pushed manifest digest) at each of
/// `tags` of `repository`; returns the index's digest.
pub(crate) fn push_index(
    repository: &Repository,
    entries: &[(Platform, Digest)],
    tags: &[Tag],
    options: &slipway_registry::RegistryOptions,
    out: &Output,
) -> anyhow::Result<Digest> {
    let client = crate::registry::client([repository.registry()], options, out)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut manifests = Vec::new();
        for (platform, digest) in entries {
            let image = repository.with_digest(digest.clone());
            let manifest = client
                .fetch_manifest(&image)
                .await
                .with_context(|| format!("cannot read the pushed manifest `{image}`"))?;
            let mut platform_json = serde_json::json!({
                "architecture": platform.arch,
                "os": platform.os,
            });
            if let Some(variant) = &platform.variant {
                platform_json["variant"] = serde_json::Value::from(variant.clone());
            }
            manifests.push(serde_json::json!({
                "mediaType": manifest.media_type,
                "digest": digest.to_string(),
                "size": manifest.bytes.len(),
                "platform": platform_json,
            }));
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec(&index).context("cannot serialise the index")?;
        let digest: Digest = sha256_digest(&bytes)
            .parse()
            .context("the index digest is malformed")?;
        let manifest = Manifest {
            media_type: OCI_INDEX.to_owned(),
            bytes,
            digest: digest.clone(),
        };
        for tag in tags {
            client
                .put_manifest(repository, tag.as_str(), &manifest)
                .await
                .with_context(|| format!("cannot push the index to `{repository}:{tag}`"))?;
        }
        Ok(digest)
    })
}

fn sha256_digest(bytes: &[u8]) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(bytes: &[u8], expected: &str) {
        assert_eq!(sha256_digest(bytes), expected);
    }

    #[test]
    fn digests_are_sha256_of_the_bytes() {
        check(
            b"",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
    }
}
