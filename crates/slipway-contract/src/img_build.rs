//! `img-build --format json`: a [`Report`], the plan of a `--dry-run`
//! ([`PlanReport`]) or what each image became ([`BuildReport`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::image_stale_check::Verdict;

/// The whole JSON document (untagged: a plan has `dry_run: true`, a build
/// report has `pushed` and `log_dir`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Report {
    /// `--dry-run`: what would run.
    Plan(PlanReport),
    /// A real run: what each image became.
    Built(BuildReport),
}

/// The builder a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `docker buildx build`.
    Buildx,
    /// `docker build` with BuildKit (`DOCKER_BUILDKIT=1`), without buildx.
    Buildkit,
    /// `buildah bud`.
    Buildah,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Buildx => "buildx",
            Self::Buildkit => "buildkit",
            Self::Buildah => "buildah",
        })
    }
}

/// The plan of a `--dry-run`: nothing is built or pushed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PlanReport {
    /// Always `true`.
    pub dry_run: bool,
    /// The builder chosen.
    pub backend: BackendKind,
    /// Why that builder (`--backend buildx`, or what auto-detection found).
    pub backend_reason: String,
    /// The commit built (40 hex digits), or what stands for it.
    pub revision: String,
    /// Whether `--push` was given.
    pub push: bool,
    /// Whether `--load` was given.
    pub load: bool,
    /// How many builds may run at once (`--jobs`).
    pub jobs: usize,
    /// The targets' names in build order (dependencies first).
    pub order: Vec<String>,
    /// One entry per target, in build order.
    pub targets: Vec<PlannedTarget>,
}

/// One target of a plan: what it is and the commands it runs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PlannedTarget {
    /// The image's name in slipway.toml.
    pub name: String,
    /// The repository it is pushed to (`registry/path`).
    pub repository: String,
    /// Every tag, as a full reference (`repo:tag`), the first one main.
    pub tags: Vec<String>,
    /// The OCI labels, by name.
    pub labels: BTreeMap<String, String>,
    /// The build args, by name (the dependency arg is added at run time).
    pub build_args: BTreeMap<String, String>,
    /// The platforms (`linux/amd64`, …); empty means the builder's own.
    pub platforms: Vec<String>,
    /// The images of this run it waits for.
    pub depends_on: Vec<String>,
    /// The build arg that receives the first dependency's built reference,
    /// and that dependency (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_arg: Option<DependencyArg>,
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// The Dockerfile stage built (absent for the last one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `--cache-from` values.
    pub cache_from: Vec<String>,
    /// `--cache-to` values.
    pub cache_to: Vec<String>,
    /// Secrets as `id=…,env=…` or `id=…,src=…`: where the value is, never the value.
    pub secrets: Vec<String>,
    /// The commands, in order.
    pub commands: Vec<Command>,
    /// Without buildx, a multi-platform image ends with an OCI index that
    /// Slipway assembles from the per-platform pushes and puts at these tags
    /// (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_tags: Option<Vec<String>>,
    /// `--only-stale`: the registry's answer and whether the build is
    /// skipped (absent without `--only-stale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_check: Option<Freshness>,
}

/// A dependency's built reference handed to the build as an arg.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DependencyArg {
    /// The build arg's name.
    pub arg: String,
    /// The image (name in slipway.toml) whose reference it receives.
    pub image: String,
}

/// One command, arguments as arguments (never a shell string).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Command {
    /// What it does, e.g. `build linux/arm64` or `push 127.0.0.1:5000/app:sha-abc`.
    pub step: String,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Environment variables set for it, as `[name, value]` pairs (never
    /// secrets; absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
}

/// The stale check's answer for one target, and what `--only-stale` does with it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Freshness {
    /// The reference looked up: the target's primary tag.
    pub reference: String,
    /// What the reference resolved to (`sha256:…`), when published.
    pub digest: Option<String>,
    /// The verdict, as `image-stale-check --format json` reports it
    /// (`status` and its fields).
    pub verdict: Verdict,
    /// Whether the build is skipped.
    pub skip: bool,
    /// Why the target is built or skipped, in words.
    pub decision: String,
}

/// What a real run did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BuildReport {
    /// The builder used.
    pub backend: BackendKind,
    /// The commit built (40 hex digits), or what stands for it.
    pub revision: String,
    /// Whether the images were pushed (`--push`).
    pub pushed: bool,
    /// The directory holding one build log per target.
    pub log_dir: PathBuf,
    /// One entry per target, in build order.
    pub targets: Vec<BuiltTarget>,
    /// The names of the targets neither built nor skipped as fresh.
    pub failed: Vec<String>,
}

/// How one target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Built (and pushed with `--push`).
    Built,
    /// Its build failed.
    Failed,
    /// Not built; `reason` says why.
    Skipped,
}

/// Why a target was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// An image it depends on was not built.
    DependencyFailed,
    /// An image failed and `--fail-fast` is given.
    FailFast,
    /// `--only-stale`: the image is already published for this commit.
    Fresh,
}

/// What one target became.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BuiltTarget {
    /// The image's name in slipway.toml.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// Why it was skipped: `fresh` (`--only-stale`), `dependency_failed` or
    /// `fail_fast` (absent unless skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<SkipReason>,
    /// The repository it is pushed to.
    pub repository: String,
    /// Every tag, as a full reference (`repo:tag`), the first one main.
    pub tags: Vec<String>,
    /// `repo@sha256:…` when pushed, else the main tag; null when not built.
    pub reference: Option<String>,
    /// The manifest's digest (`sha256:…`), or the index's for a
    /// multi-platform image.
    pub digest: Option<String>,
    /// The local image id, when the builder reports one.
    pub image_id: Option<String>,
    /// The platforms built; empty means the builder's own.
    pub platforms: Vec<String>,
    /// How long the build took, in seconds (millisecond precision).
    pub duration_seconds: f64,
    /// The build's log file.
    pub log: PathBuf,
    /// What went wrong (absent when nothing did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Mutable tags left where they are: the image they point at is not
    /// from an ancestor of this revision (absent when none was held).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_tags: Vec<HeldTag>,
}

/// A mutable tag img-build did not move, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldTag {
    /// The tag, as a full reference (`repo:tag`).
    pub tag: String,
    /// The digest it points at (and keeps).
    pub digest: Option<String>,
    /// The `org.opencontainers.image.revision` of that image, if it has one.
    pub revision: Option<String>,
    /// Why it was not moved, e.g. `its revision 0123456 is not an ancestor of 89abcde`.
    pub reason: String,
}
