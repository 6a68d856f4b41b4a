//! `image-stale-check --format json`: a [`Report`], either the verdicts of a
//! check or what `install-hook` did.

use std::path::PathBuf;

use crate::Sha;
use crate::changed_paths::ChangeStatus;

/// The whole JSON document: [`CheckReport`] or [`HookReport`] (untagged; a
/// check has `rev`, a hook report `path`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Report {
    /// A check.
    Check(CheckReport),
    /// `install-hook`.
    Hook(HookReport),
}

/// The verdicts of a check.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckReport {
    /// The commit images were judged against (40 hex digits).
    pub rev: Sha,
    /// The tag looked up for slipway.toml's images (null for explicit refs).
    pub tag: Option<String>,
    /// Where the images were looked up: `registry` or `local`.
    pub source: String,
    /// Whether this ran as the pre-push hook.
    pub hook: bool,
    /// Whether `--strict` was given.
    pub strict: bool,
    /// One verdict per image, in the order checked; each has `image`,
    /// `reference`, `digest` and the verdict's `status` with its fields.
    pub images: Vec<ImageVerdict>,
}

/// What `install-hook` did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HookReport {
    /// The hook file.
    pub path: PathBuf,
    /// `installed`, `updated`, `unchanged`, or `would_write` (`--dry-run`).
    pub action: String,
    /// Whether the file holds other hook lines, kept around Slipway's block.
    pub chained: bool,
    /// The hook's full text under `--dry-run` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// The OCI label holding the commit an image was built from.
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// Why a published image's revision cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unknown {
    /// An image (or an index entry) has no revision label.
    NoLabel {
        /// The platform without it, `None` for a single image.
        platform: Option<String>,
    },
    /// The platforms of an index carry different revisions.
    Inconsistent {
        /// The distinct revisions, sorted.
        revisions: Vec<String>,
    },
    /// The label is not a full 40-hex-digit commit sha.
    NotASha {
        /// The label's value.
        value: String,
    },
    /// The revision is not a commit of the local repository.
    NotInHistory {
        /// The revision.
        revision: String,
        /// Whether the repository is a shallow clone.
        shallow: bool,
    },
    /// An index without any image (only attestations, or empty).
    NoImages,
}

impl Unknown {
    /// What is wrong, in one phrase.
    pub fn describe(&self) -> String {
        match self {
            Unknown::NoLabel { platform: None } => format!("no `{REVISION_LABEL}` label"),
            Unknown::NoLabel {
                platform: Some(platform),
            } => format!("no `{REVISION_LABEL}` label on platform `{platform}`"),
            Unknown::Inconsistent { revisions } => format!(
                "its platforms carry different revisions: `{}`",
                revisions.join("`, `")
            ),
            Unknown::NotASha { value } => {
                format!("revision label `{value}` is not a full commit sha")
            }
            Unknown::NotInHistory { revision, .. } => {
                format!("revision `{revision}` is not in the local history")
            }
            Unknown::NoImages => "the index lists no image".to_owned(),
        }
    }

    /// How to fix it.
    pub fn fix(&self) -> &'static str {
        match self {
            Unknown::NoLabel { .. } | Unknown::NotASha { .. } | Unknown::NoImages => {
                "rebuild it with `img-build`, which sets the label, or pass `--label org.opencontainers.image.revision=$(git rev-parse HEAD)` to docker build"
            }
            Unknown::Inconsistent { .. } => {
                "rebuild every platform from one commit (one multi-platform build)"
            }
            Unknown::NotInHistory { shallow: true, .. } => {
                "the clone is shallow: run `git fetch --unshallow`"
            }
            Unknown::NotInHistory { shallow: false, .. } => {
                "run `git fetch` to get the commit, or rebuild the image from this history"
            }
        }
    }
}

/// Why a changed file makes an image stale.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Via {
    /// The image's own paths (or the paths derived from its Dockerfile).
    Paths,
    /// `[rebuild_all]`.
    RebuildAll,
    /// The paths of an image it depends on (directly or not).
    DependsOn {
        /// That image.
        image: String,
    },
    /// Not in slipway.toml: every changed file counts.
    AnyFile,
}

/// A changed file that makes an image stale.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaleFile {
    /// The path, relative to the repository root.
    pub path: String,
    /// How it changed between the revision and the checked commit.
    pub status: ChangeStatus,
    /// Why it counts.
    pub via: Via,
    /// The path's exact bytes when they are not UTF-8 (then `path` shows
    /// U+FFFD in their place), as `ChangedFile::path_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<Vec<u8>>,
}

impl StaleFile {
    /// The path's exact bytes.
    pub fn bytes(&self) -> &[u8] {
        self.path_bytes.as_deref().unwrap_or(self.path.as_bytes())
    }
}

/// A commit that touched one of the stale files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaleCommit {
    /// The commit.
    pub sha: Sha,
    /// The first line of its message.
    pub summary: String,
    /// The stale files it touched.
    pub files: Vec<String>,
}

/// Why a published image is fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreshBecause {
    /// It was built from the checked commit itself.
    SameCommit,
    /// No file it is built from changed since its revision.
    NoRelevantChange,
}

/// The answer for one image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    /// Published and up to date.
    Fresh {
        /// The published revision.
        revision: Sha,
        /// Why.
        because: FreshBecause,
    },
    /// Published, but files it is built from changed since.
    Stale {
        /// The published revision.
        revision: Sha,
        /// The changed files that count, sorted by path.
        files: Vec<StaleFile>,
        /// The commits that touched them, newest first.
        commits: Vec<StaleCommit>,
    },
    /// No such tag.
    Missing,
    /// Published, but its revision cannot be judged.
    Unknown {
        /// Why.
        #[serde(flatten)]
        reason: Unknown,
    },
    /// The check could not run for this image (registry unreachable, slow).
    Unchecked {
        /// What failed.
        error: String,
    },
}

impl Verdict {
    /// The status as a word: `fresh`, `stale`, `missing`, `unknown`, `unchecked`.
    pub fn status(&self) -> &'static str {
        match self {
            Verdict::Fresh { .. } => "fresh",
            Verdict::Stale { .. } => "stale",
            Verdict::Missing => "missing",
            Verdict::Unknown { .. } => "unknown",
            Verdict::Unchecked { .. } => "unchecked",
        }
    }
}

/// The verdict of one image, with what was looked up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageVerdict {
    /// The image's name in slipway.toml, or the reference as given.
    pub image: String,
    /// The reference looked up.
    pub reference: String,
    /// What it resolved to, when found.
    pub digest: Option<String>,
    /// The answer.
    #[serde(flatten)]
    pub verdict: Verdict,
}
