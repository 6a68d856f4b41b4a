//! `img-tag <subcommand> --format json`: one document per subcommand, each
//! printed on its own (read the one of the subcommand you ran).

use std::collections::BTreeMap;

use std::fmt;

/// `img-tag compute --format json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ComputeReport {
    /// `image:tag` (bare tags without `--image`), in metadata-action's order.
    pub tags: Vec<String>,
    /// The tags without image names (metadata-action's `tag-names`).
    #[serde(default)]
    pub tag_names: Vec<String>,
    /// The OCI labels, by name (with `--label` entries).
    pub labels: BTreeMap<String, String>,
    /// metadata-action's `annotations`: `level:key=value`, for each level of
    /// `DOCKER_METADATA_ANNOTATIONS_LEVELS` (`manifest` by default).
    #[serde(default)]
    pub annotations: Vec<String>,
    /// The main version (the first tag), or null when no rule yields a tag.
    pub version: Option<String>,
}

/// `img-tag next-version --format json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NextVersionReport {
    /// The next version (SemVer, no `v`).
    pub version: String,
    /// The last release, or null.
    pub previous: Option<String>,
    /// The bump applied: `none`, `patch`, `minor` or `major`.
    pub bump: Bump,
    /// Commits since the last release.
    pub height: usize,
    /// Whether there is anything to release: false when no commit asks for
    /// a bump (or `release:skip`); `version` is then the last release's.
    #[serde(default)]
    pub has_release: bool,
    /// The Markdown changelog section (with `--changelog`; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog: Option<String>,
}

/// `img-tag check-commit --format json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckCommitReport {
    /// Whether the message is a valid Conventional Commit.
    pub valid: bool,
    /// Why not, when it is not (absent when valid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The parsed commit, when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<ConventionalCommit>,
    /// The bump it asks for, when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bump: Option<Bump>,
}

/// `img-tag apply --format json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ApplyReport {
    /// The image, as given (`repo@sha256:…` or `repo:tag`).
    pub image: String,
    /// Its digest (`sha256:…`), which every tag now points at.
    pub digest: String,
    /// One entry per `--tag`, in order.
    pub tags: Vec<TagChange>,
    /// Whether this was a `--dry-run` (nothing changed).
    pub dry_run: bool,
}

/// What happened to one tag of `apply`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TagChange {
    /// The tag.
    pub tag: String,
    /// Where it pointed before (`sha256:…`), or null if it did not exist.
    pub previous_digest: Option<String>,
    /// Whether it moved (with `--dry-run`: whether it would).
    pub changed: bool,
}

/// `img-tag promote --format json`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PromoteReport {
    /// The source, as given.
    pub source: String,
    /// The destination, with the tag it got.
    pub destination: String,
    /// The digest (`sha256:…`), the same in both places.
    pub digest: String,
    /// Blobs mounted from the source repository (same registry, no bytes moved).
    pub blobs_mounted: usize,
    /// Blobs streamed from source to destination.
    pub blobs_copied: usize,
    /// Blobs the destination had already.
    pub blobs_skipped: usize,
    /// Bytes streamed (the sizes of the copied blobs).
    pub bytes_copied: u64,
    /// Whether this was a `--dry-run` (the counts say what would happen).
    pub dry_run: bool,
    /// Referrer manifests (signatures, SBOMs, attestations, and their own
    /// referrers) pushed to the destination; 0 with `--no-referrers` or
    /// within one repository (referrers follow the digest there).
    #[serde(default)]
    pub referrers_copied: usize,
    /// Fallback `sha256-<hex>` index tags written or extended at the
    /// destination (registries without the referrers API).
    #[serde(default)]
    pub referrer_tags_updated: usize,
    /// The blobs of each image copied, in order: the image (or each
    /// platform of its index), then each referrer's. A blob two of them
    /// share counts in the first.
    #[serde(default)]
    pub images: Vec<PromotedImage>,
    /// Time from the start to the end of the promote; JSON `elapsed_ms`,
    /// whole milliseconds.
    #[serde(default, rename = "elapsed_ms", with = "super::millis")]
    pub elapsed: std::time::Duration,
}

/// One image of a promote and what became of its blobs: an entry of
/// [`PromoteReport::images`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PromotedImage {
    /// The image manifest's digest (`sha256:…`).
    pub digest: String,
    /// The platform of an index's image (`linux/amd64`); null for a
    /// single image or a referrer.
    pub platform: Option<String>,
    /// Whether it is a referrer (a signature, SBOM or attestation, or one
    /// of an index of them), not the promoted image.
    pub referrer: bool,
    /// Its blobs mounted from the source repository.
    pub blobs_mounted: usize,
    /// Its blobs streamed from source to destination.
    pub blobs_copied: usize,
    /// Its blobs the destination had already.
    pub blobs_skipped: usize,
    /// Bytes streamed for it.
    pub bytes_copied: u64,
    /// Time its blobs (and, for an index's image, its manifest) took;
    /// JSON `elapsed_ms`, whole milliseconds.
    #[serde(rename = "elapsed_ms", with = "super::millis")]
    pub elapsed: std::time::Duration,
}

/// `img-tag referrers --format json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReferrersReport {
    /// The reference, as given.
    pub image: String,
    /// The digest whose referrers these are.
    pub digest: String,
    /// `api` (the registry's referrers API), `tag` (the `sha256-<hex>`
    /// fallback index) or `none` (neither: no referrers).
    pub source: String,
    /// The referrers, as listed.
    pub referrers: Vec<ReferrerEntry>,
}

/// One referrer in a [`ReferrersReport`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReferrerEntry {
    /// The referrer manifest's digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its `artifactType`, e.g. `application/spdx+json`, when listed.
    pub artifact_type: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// The descriptor's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `img-tag resolve --format json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ResolveReport {
    /// The reference, as given.
    pub image: String,
    /// The digest (`sha256:…`) it points at.
    pub digest: String,
}

/// `img-tag ls --format json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LsReport {
    /// The repository, as given.
    pub repository: String,
    /// Its tags, sorted.
    pub tags: Vec<String>,
}

/// A parsed Conventional Commit message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConventionalCommit {
    /// `feat`, `fix`, … (lowercased).
    #[serde(rename = "type")]
    pub kind: String,
    /// The scope between parentheses, if any.
    pub scope: Option<String>,
    /// Whether `!` or a `BREAKING CHANGE:` footer marks a breaking change.
    pub is_breaking: bool,
    /// The subject after `: `.
    pub description: String,
    /// The text of the `BREAKING CHANGE:` footer, if any.
    pub breaking_note: Option<String>,
}

/// How much a release changes the version.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    /// Nothing to release.
    None,
    /// `x.y.Z+1`.
    Patch,
    /// `x.Y+1.0`.
    Minor,
    /// `X+1.0.0` (`0.Y+1.0` while the major version is 0).
    Major,
}

impl fmt::Display for Bump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bump::None => "none",
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        })
    }
}

impl ConventionalCommit {
    /// The bump this commit asks for: `!` or `BREAKING CHANGE:` major,
    /// `feat` minor, `fix` and `perf` patch, anything else none.
    pub fn bump(&self) -> Bump {
        if self.is_breaking {
            Bump::Major
        } else {
            match self.kind.as_str() {
                "feat" => Bump::Minor,
                "fix" | "perf" => Bump::Patch,
                _ => Bump::None,
            }
        }
    }
}
