//! Manifests as stored: the exact bytes and media type a registry returned,
//! and the few fields Slipway reads from them (children of an index, config
//! and layers of an image). Parsing is lenient JSON: unknown fields are kept
//! in the bytes, which are never re-serialised, so digests never change.

use std::fmt;

use slipway_core::image_ref::Digest;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list (schema 2).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Every manifest media type Slipway asks for (`Accept`), indexes first.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// A manifest exactly as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its media type (the `Content-Type` it was served with, else its
    /// `mediaType` field).
    pub media_type: String,
    /// The raw bytes; re-putting them unchanged keeps the digest.
    pub bytes: Vec<u8>,
    /// The digest of `bytes`, as the registry reported it.
    pub digest: Digest,
}

/// A content descriptor: what a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The media type of the target.
    pub media_type: String,
    /// The target's digest.
    pub digest: Digest,
    /// The target's size in bytes.
    pub size: u64,
    /// The platform, for an index entry that names one.
    pub platform: Option<Platform>,
}

/// An OS/architecture pair, as in an index entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// What a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// An index (or manifest list): its child manifests.
    Index(Vec<Descriptor>),
    /// An image manifest: its config and layers.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layer blobs, in order.
        layers: Vec<Descriptor>,
    },
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON.
    #[error("manifest `{digest}` is not JSON: {reason}")]
    NotJson {
        /// The manifest.
        digest: Digest,
        /// The JSON error.
        reason: String,
    },
    /// A field is missing or of the wrong type.
    #[error(
        "manifest `{digest}` has no valid `{field}`; expected an OCI or Docker schema 2 manifest"
    )]
    Field {
        /// The manifest.
        digest: Digest,
        /// The JSON path of the field.
        field: String,
    },
    /// Schema 1 and other media types are not supported.
    #[error(
        "manifest `{digest}` has media type `{media_type}`; supported: {}",
        MANIFEST_MEDIA_TYPES.join(", ")
    )]
    MediaType {
        /// The manifest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
}

slipway_core::cli::exit_status!(ManifestError => FAILURE);

impl Manifest {
    /// Whether it is an index or manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    /// The descriptors the manifest points at.
    pub fn content(&self) -> Result<Content, ManifestError> {
        let value: serde_json::Value =
            serde_json::from_slice(&self.bytes).map_err(|error| ManifestError::NotJson {
                digest: self.digest.clone(),
                reason: error.to_string(),
            })?;
        let field = |name: &str| ManifestError::Field {
            digest: self.digest.clone(),
            field: name.to_owned(),
        };
        let descriptor =
            |value: &serde_json::Value, at: &str| -> Result<Descriptor, ManifestError> {
                let digest = value
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .and_then(|d| d.parse::<Digest>().ok())
                    .ok_or_else(|| field(&format!("{at}.digest")))?;
                let size = value
                    .get("size")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| field(&format!("{at}.size")))?;
                let media_type = value
                    .get("mediaType")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_owned();
                let platform = value.get("platform").and_then(|p| {
                    Some(Platform {
                        os: p.get("os")?.as_str()?.to_owned(),
                        architecture: p.get("architecture")?.as_str()?.to_owned(),
                        variant: p.get("variant").and_then(|v| v.as_str()).map(str::to_owned),
                    })
                });
                Ok(Descriptor {
                    media_type,
                    digest,
                    size,
                    platform,
                })
            };
        match self.media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => {
                let entries = value
                    .get("manifests")
                    .and_then(|m| m.as_array())
                    .ok_or_else(|| field("manifests"))?;
                let children = entries
                    .iter()
                    .enumerate()
                    .map(|(i, entry)| descriptor(entry, &format!("manifests[{i}]")))
                    .collect::<Result<_, _>>()?;
                Ok(Content::Index(children))
            }
            OCI_MANIFEST | DOCKER_MANIFEST => {
                let config = descriptor(
                    value.get("config").ok_or_else(|| field("config"))?,
                    "config",
                )?;
                let layers = value
                    .get("layers")
                    .and_then(|l| l.as_array())
                    .ok_or_else(|| field("layers"))?
                    .iter()
                    .enumerate()
                    .map(|(i, layer)| descriptor(layer, &format!("layers[{i}]")))
                    .collect::<Result<_, _>>()?;
                Ok(Content::Image { config, layers })
            }
            other => Err(ManifestError::MediaType {
                digest: self.digest.clone(),
                media_type: other.to_owned(),
            }),
        }
    }
}

/// The media type of manifest `bytes` served as `content_type`: the header
/// when it names a manifest type, else the document's `mediaType` field
/// (some registries answer `application/json`).
pub fn media_type_of(content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned())
        .filter(|c| MANIFEST_MEDIA_TYPES.contains(&c.as_str()));
    header.or_else(|| {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        value
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    })
}

/// The labels of an image config blob (`config.Labels`); none is empty.
pub fn config_labels(
    config: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct ImageConfig {
        #[serde(default)]
        config: Option<Inner>,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default, rename = "Labels")]
        labels: Option<std::collections::BTreeMap<String, String>>,
    }
    let parsed: ImageConfig = serde_json::from_slice(config)?;
    Ok(parsed
        .config
        .and_then(|inner| inner.labels)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    fn manifest(media_type: &str, json: &str) -> Manifest {
        Manifest {
            media_type: media_type.to_owned(),
            bytes: json.as_bytes().to_vec(),
            digest: DIGEST.parse().expect("valid digest"),
        }
    }

    #[track_caller]
    fn check(media_type: &str, json: &str, expected: &str) {
        let got = match manifest(media_type, json).content() {
            Ok(Content::Index(children)) => children
                .iter()
                .map(|c| {
                    let platform = c
                        .platform
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    format!("{}:{}:{platform}", &c.digest.hex()[63..], c.size)
                })
                .collect::<Vec<_>>()
                .join(" "),
            Ok(Content::Image { config, layers }) => format!(
                "config {} layers {}",
                config.size,
                layers
                    .iter()
                    .map(|l| l.size.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected, "{json}");
    }

    #[test]
    fn reads_indexes_and_images() {
        check(
            OCI_INDEX,
            &format!(
                r#"{{"manifests":[{{"digest":"{DIGEST}","size":5,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
            ),
            "1:5:linux/arm64/v8",
        );
        check(
            DOCKER_LIST,
            &format!(r#"{{"manifests":[{{"digest":"{DIGEST}","size":5}}]}}"#),
            "1:5:",
        );
        check(
            OCI_MANIFEST,
            &format!(
                r#"{{"config":{{"digest":"{DIGEST}","size":2}},"layers":[{{"digest":"{DIGEST}","size":3}},{{"digest":"{DIGEST}","size":4}}]}}"#
            ),
            "config 2 layers 3,4",
        );
        check(
            OCI_MANIFEST,
            r#"{"layers":[]}"#,
            &format!(
                "manifest `{DIGEST}` has no valid `config`; expected an OCI or Docker schema 2 manifest"
            ),
        );
        check(
            OCI_INDEX,
            r#"{"manifests":[{"size":1}]}"#,
            &format!(
                "manifest `{DIGEST}` has no valid `manifests[0].digest`; expected an OCI or Docker schema 2 manifest"
            ),
        );
        check(
            "text/plain",
            "{}",
            &format!(
                "manifest `{DIGEST}` has media type `text/plain`; supported: {}",
                MANIFEST_MEDIA_TYPES.join(", ")
            ),
        );
        check(
            OCI_INDEX,
            "{",
            &format!(
                "manifest `{DIGEST}` is not JSON: EOF while parsing an object at line 1 column 1"
            ),
        );
    }

    #[test]
    fn media_type_prefers_the_header() {
        assert_eq!(
            media_type_of(Some(OCI_INDEX), b"{}").as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            media_type_of(Some("application/json"), br#"{"mediaType":"x"}"#).as_deref(),
            Some("x")
        );
        assert_eq!(media_type_of(None, b"{}"), None);
    }

    #[test]
    fn labels_come_from_the_config() {
        let labels = config_labels(br#"{"config":{"Labels":{"a":"1"}}}"#).expect("valid config");
        assert_eq!(labels.get("a").map(String::as_str), Some("1"));
        assert!(
            config_labels(br#"{"config":{"Labels":null}}"#)
                .expect("valid")
                .is_empty()
        );
        assert!(config_labels(b"{}").expect("valid").is_empty());
    }
}
