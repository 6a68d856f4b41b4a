//! Referrers (OCI distribution 1.1): the manifests whose `subject` names a
//! given digest — signatures, SBOMs, attestations. A registry with the
//! referrers API lists them at `GET /v2/<name>/referrers/<digest>`; one
//! without it (404) keeps them in the "referrers tag schema" fallback: the
//! tag `sha256-<hex>` holding an image index of their descriptors. Pure:
//! reading and merging those index documents; the requests are in the
//! client ([`crate::RegistryClient::list_referrers`]).

use std::collections::BTreeMap;

use slipway_core::image_ref::Digest;

use crate::manifest::OCI_INDEX;

/// Where a list of referrers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSource {
    /// The registry's referrers API.
    Api,
    /// The `sha256-<hex>` fallback tag.
    FallbackTag,
    /// Neither: no API, and no fallback tag (so no referrers).
    Nothing,
}

impl ReferrersSource {
    /// `api`, `tag` or `none`, as the JSON reports say.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferrersSource::Api => "api",
            ReferrersSource::FallbackTag => "tag",
            ReferrersSource::Nothing => "none",
        }
    }
}

/// One referrer, as a descriptor in a referrers index.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrer {
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its `artifactType`, when the descriptor has one.
    pub artifact_type: Option<String>,
    /// The descriptor's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The descriptor exactly as listed, for a fallback index elsewhere.
    pub descriptor: serde_json::Value,
}

/// The fallback tag of `digest`: `<algorithm>-<hex>`.
pub fn fallback_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm().as_str(), digest.hex())
}

/// The referrers an index document lists; entries without a valid digest
/// or size are an error naming the entry.
pub fn parse_index(bytes: &[u8]) -> Result<Vec<Referrer>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| format!("not JSON: {error}"))?;
    let entries = value
        .get("manifests")
        .and_then(serde_json::Value::as_array)
        .ok_or("no `manifests` array")?;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let digest = entry
                .get("digest")
                .and_then(serde_json::Value::as_str)
                .and_then(|d| d.parse::<Digest>().ok())
                .ok_or_else(|| format!("`manifests[{i}].digest` is not a digest"))?;
            let size = entry
                .get("size")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| format!("`manifests[{i}].size` is not a size"))?;
            let text = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            let annotations = entry
                .get("annotations")
                .and_then(serde_json::Value::as_object)
                .map(|map| {
                    map.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Referrer {
                digest,
                media_type: text("mediaType").unwrap_or_default(),
                size,
                artifact_type: text("artifactType"),
                annotations,
                descriptor: entry.clone(),
            })
        })
        .collect()
}

/// The fallback index `existing` (none: empty) with `added` appended, each
/// digest once; `None` when every one was there already (nothing to write).
/// An existing index that cannot be read is replaced, as the spec allows
/// for a tag that is not a referrers index.
pub fn merge_index(existing: Option<&[u8]>, added: &[Referrer]) -> Option<Vec<u8>> {
    let mut manifests: Vec<serde_json::Value> = existing
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .and_then(|value| value.get("manifests")?.as_array().cloned())
        .unwrap_or_default();
    let present = |manifests: &[serde_json::Value], digest: &Digest| {
        manifests
            .iter()
            .any(|m| m.get("digest").and_then(|d| d.as_str()) == Some(digest.to_string().as_str()))
    };
    let mut changed = false;
    for referrer in added {
        if !present(&manifests, &referrer.digest) {
            manifests.push(referrer.descriptor.clone());
            changed = true;
        }
    }
    changed.then(|| {
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
            .to_string()
            .into_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referrer(hex: char) -> Referrer {
        let digest = format!("sha256:{}", hex.to_string().repeat(64));
        let descriptor = serde_json::json!({"mediaType": "m", "digest": digest, "size": 3, "artifactType": "application/spdx+json"});
        parse_index(
            serde_json::json!({"manifests": [descriptor]})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn merging_adds_each_digest_once_and_reports_no_change() {
        let a = referrer('a');
        let b = referrer('b');
        let first = merge_index(None, std::slice::from_ref(&a)).unwrap();
        assert_eq!(parse_index(&first).unwrap(), std::slice::from_ref(&a));
        assert_eq!(merge_index(Some(&first), std::slice::from_ref(&a)), None);
        let second = merge_index(Some(&first), &[a.clone(), b.clone()]).unwrap();
        assert_eq!(parse_index(&second).unwrap(), [a, b]);
    }

    #[test]
    fn the_fallback_tag_is_algorithm_dash_hex() {
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(fallback_tag(&digest), format!("sha256-{}", "a".repeat(64)));
    }

    #[test]
    fn a_bad_entry_is_named() {
        assert_eq!(
            parse_index(br#"{"manifests":[{"digest":"x","size":1}]}"#),
            Err("`manifests[0].digest` is not a digest".to_owned())
        );
    }
}
