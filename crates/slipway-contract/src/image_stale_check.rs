//! `image-stale-check --format json`: a [`Report`], either the verdicts of a
//! check or what `install-hook` did.

use std::path::PathBuf;

use slipway_git::Sha;
pub use slipway_stale::{
    FreshBecause, ImageVerdict, StaleCommit, StaleFile, Unknown, Verdict, Via,
};

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
