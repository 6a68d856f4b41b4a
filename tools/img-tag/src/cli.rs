//! The command line of `img-tag`; the doc comments are its `--help`.

use slipway_core::image_ref::{ImageRef, Repository, Tag};
use slipway_tags::version::Bump;

/// Compute image tags (docker/metadata-action compatible) and next versions from git and CI facts; apply tags and promote images in registries without moving layers.
#[derive(Debug, clap::Parser)]
#[command(name = "img-tag", version = slipway_build_info::VERSION)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the tags and OCI labels for this commit, as docker/metadata-action would; touches no registry
    Compute(ComputeArgs),
    /// Print the next semver version from the Conventional Commits since the last release tag
    NextVersion(NextVersionArgs),
    /// Check that a commit message or pull request title is a Conventional Commit (exit 1 if not)
    CheckCommit(CheckCommitArgs),
    /// Add tags to an image in its registry, keeping its digest (indexes stay indexes); all tags move, or none
    Apply(ApplyArgs),
    /// Copy an image (every platform of an index) and its referrers to another repository or registry; blobs are mounted or streamed, never stored locally
    Promote(PromoteArgs),
    /// List the referrers of an image (signatures, SBOMs, attestations: manifests whose `subject` is its digest), from the referrers API, else the `sha256-<hex>` fallback tag
    Referrers(ReferrersArgs),
    /// Print the digest a reference points at
    Resolve(ResolveArgs),
    /// List the tags of a repository
    Ls(LsArgs),
}

/// How to reach registries: shared by `apply`, `promote`, `resolve` and `ls`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Username for the registries of this call [default: $REGISTRY_USER, else the first of $REGISTRY_AUTH_FILE (else $XDG_RUNTIME_DIR/containers/auth.json), ~/.config/containers/auth.json and the docker config that has the registry (`auths`, `credHelpers`, `credsStore`), else anonymous]
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,

    /// Read the password (or token) for --username from stdin
    #[arg(long, requires = "username")]
    pub password_stdin: bool,

    #[command(flatten)]
    pub connection: slipway_registry::RegistryArgs,

    /// Renamed `--plain-http`: refused with exit 2 saying so (ready-wait's `--insecure` skips TLS verification, a different meaning)
    #[arg(long, hide = true)]
    pub insecure: bool,
}

/// Flags of `img-tag apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The image, as `registry/repo:tag` or `registry/repo@sha256:…`
    #[arg(value_name = "IMAGE")]
    pub image: ImageRef,

    /// A tag to point at the image (repeatable); applied concurrently. Without it, the tags are computed as `img-tag compute` computes them (see --computed)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<Tag>,

    /// Compute the tags from the rules and the CI context, then apply them, in one call: the rules are --rule lines, else slipway.toml [tags] rules, else metadata-action's defaults [default: on when no --tag is given]
    #[arg(long, conflicts_with = "tags")]
    pub computed: bool,

    /// A metadata-action `tags:` line for the computed tags, e.g. `type=semver,pattern={{version}}`; repeatable [default: slipway.toml [tags] rules]
    #[arg(long = "rule", value_name = "RULE", conflicts_with = "tags")]
    pub rules: Vec<String>,

    /// A metadata-action `flavor:` line for the computed tags [default: slipway.toml [tags] flavor]
    #[arg(long = "flavor", value_name = "LINE", conflicts_with = "tags")]
    pub flavors: Vec<String>,

    #[command(flatten)]
    pub context: ContextArgs,

    /// Print what would change; change nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Flags of `img-tag promote`.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The image to copy, as `registry/repo:tag` or `registry/repo@sha256:…`
    #[arg(value_name = "SOURCE")]
    pub source: ImageRef,

    /// Where to, as `registry/repo[:tag]` [default tag: the source's]
    #[arg(value_name = "DESTINATION")]
    pub destination: ImageRef,

    /// Print what would be copied; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Copy the image only, not its referrers (signatures, SBOMs, attestations) [default: referrers of the image, of an index's children, and theirs, up to 4 levels deep, are copied before the tag is written]
    #[arg(long)]
    pub no_referrers: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    pub sides: SideCredentialArgs,
}

/// Credentials for one side of a promote (skopeo's `--src-creds` and
/// `--dest-creds`, without a password on the command line).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Credentials per side")]
pub struct SideCredentialArgs {
    /// Username for the SOURCE's registry only (a promote between registries that need different users); its password comes from --src-password-env or --src-password-file [default: --username, else as for any registry]
    #[arg(long, value_name = "USER")]
    pub src_username: Option<String>,

    /// The environment variable holding the password (or token) of --src-username, e.g. `SRC_REGISTRY_PASSWORD`
    #[arg(
        long,
        value_name = "NAME",
        requires = "src_username",
        conflicts_with = "src_password_file"
    )]
    pub src_password_env: Option<String>,

    /// A file holding the password (or token) of --src-username (one line)
    #[arg(long, value_name = "FILE", requires = "src_username")]
    pub src_password_file: Option<std::path::PathBuf>,

    /// Username for the DESTINATION's registry only; its password comes from --dest-password-env or --dest-password-file [default: --username, else as for any registry]
    #[arg(long, value_name = "USER")]
    pub dest_username: Option<String>,

    /// The environment variable holding the password (or token) of --dest-username, e.g. `DEST_REGISTRY_PASSWORD`
    #[arg(
        long,
        value_name = "NAME",
        requires = "dest_username",
        conflicts_with = "dest_password_file"
    )]
    pub dest_password_env: Option<String>,

    /// A file holding the password (or token) of --dest-username (one line)
    #[arg(long, value_name = "FILE", requires = "dest_username")]
    pub dest_password_file: Option<std::path::PathBuf>,
}

/// Flags of `img-tag referrers`.
#[derive(Debug, clap::Args)]
pub struct ReferrersArgs {
    /// The image, as `registry/repo:tag` or `registry/repo@sha256:…`
    #[arg(value_name = "IMAGE")]
    pub image: ImageRef,

    /// Only referrers of this artifact type, e.g. `application/spdx+json`
    #[arg(long, value_name = "TYPE", value_parser = media_type)]
    pub artifact_type: Option<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Flags of `img-tag resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The reference, as `registry/repo:tag`
    #[arg(value_name = "IMAGE")]
    pub image: ImageRef,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Flags of `img-tag ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// The repository, as `registry/repo`
    #[arg(value_name = "REPOSITORY")]
    pub repository: Repository,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Flags of `img-tag compute`.
#[derive(Debug, clap::Args)]
pub struct ComputeArgs {
    /// A metadata-action `tags:` line, e.g. `type=semver,pattern={{version}}`; repeatable, kept in order [default: slipway.toml [tags] rules, else metadata-action's defaults]
    #[arg(long = "tag", value_name = "RULE")]
    pub tags: Vec<String>,

    /// A metadata-action `flavor:` line, e.g. `latest=auto` or `prefix=v,onlatest=true`; `latest=default-branch` is img-tag's own [default: slipway.toml [tags] flavor]
    #[arg(long = "flavor", value_name = "LINE")]
    pub flavors: Vec<String>,

    /// A metadata-action `images:` line (`ghcr.io/o/app` or `name=…,enable=…`); repeatable; without it tags are printed bare
    #[arg(long = "image", value_name = "LINE")]
    pub images: Vec<String>,

    /// A label to add or override, `key=value` (expressions such as `{{branch}}` allowed), as metadata-action's `labels:`; repeatable
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// An annotation to add or override, `key=value`, as metadata-action's `annotations:`; repeatable. Levels come from $DOCKER_METADATA_ANNOTATIONS_LEVELS (comma-separated) [default level: manifest]
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    #[command(flatten)]
    pub context: ContextArgs,
}

/// The facts tags are computed from: shared by `compute` and `apply`.
#[derive(Debug, clap::Args)]
pub struct ContextArgs {
    /// The event name [default: $GITHUB_EVENT_NAME (GitLab: $CI_PIPELINE_SOURCE as GitHub names it; Jenkins, Buildkite, CircleCI: `push` or `pull_request`), else `push`]
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,

    /// The git ref, e.g. `refs/tags/v1.2.3` [default: $GITHUB_REF (GitLab: $CI_COMMIT_TAG, $CI_COMMIT_BRANCH, or a merge request's `refs/pull/<iid>/merge`; Jenkins, Buildkite, CircleCI: their tag, branch, or pull request's `refs/pull/<n>/merge`), else HEAD's branch or tag]
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,

    /// The commit sha [default: $GITHUB_SHA (GitLab: $CI_COMMIT_SHA; Jenkins: $GIT_COMMIT; Buildkite: $BUILDKITE_COMMIT; CircleCI: $CIRCLE_SHA1), else HEAD]
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,

    /// The default branch [default: the event payload's repository (GitLab: $CI_DEFAULT_BRANCH; Buildkite: $BUILDKITE_PIPELINE_DEFAULT_BRANCH), else slipway.toml, else origin/HEAD, main or master]
    #[arg(long, value_name = "BRANCH")]
    pub default_branch: Option<String>,

    /// A pull request number; sets the ref to `refs/pull/N/merge` unless --ref is given
    #[arg(long, value_name = "N")]
    pub pr_number: Option<u64>,
}

/// Flags of `img-tag next-version`.
#[derive(Debug, clap::Args)]
pub struct NextVersionArgs {
    /// Use this bump instead of the one the commits (and release labels) ask for
    #[arg(long, value_enum, value_name = "BUMP")]
    pub bump: Option<Bump>,

    /// Release labels, comma-separated: `release:major`, `release:minor`, `release:patch` or `release:skip` decide the bump; other labels are ignored [default: the labels of the pull request in $GITHUB_EVENT_PATH, or $CI_MERGE_REQUEST_LABELS]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub labels: Option<Vec<String>>,

    /// Make a prerelease `X.Y.Z-<ID>.<N>`, N counting the commits since the last release; it never sorts below a release tagged anywhere in the repository
    #[arg(long, value_name = "ID")]
    pub prerelease: Option<String>,

    /// Only make the prerelease on this branch (repeatable); elsewhere the version is a release [default: every branch]
    #[arg(long, value_name = "BRANCH", requires = "prerelease")]
    pub prerelease_branch: Vec<String>,

    /// The ref being built, `refs/heads/dev` or `dev`, for --prerelease-branch [default: the CI's ($GITHUB_REF, $CI_COMMIT_BRANCH; a pull request's head branch), else HEAD's branch]
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,

    /// Write the version's changelog section on top of CHANGELOG.md (created if missing; a version already there is left alone), and print the section instead of the version
    #[arg(long)]
    pub changelog: bool,

    /// The changelog file --changelog writes [default: CHANGELOG.md at the repository's root]
    #[arg(long, value_name = "FILE", requires = "changelog")]
    pub changelog_file: Option<std::path::PathBuf>,

    /// With --changelog, print the section but write no file
    #[arg(long)]
    pub dry_run: bool,

    /// Exit 1 when there is nothing to release (no commit asks for a bump, or `release:skip`)
    #[arg(long)]
    pub exit_code: bool,

    /// The repository [default: the one holding the current directory]
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: std::path::PathBuf,
}

/// Flags of `img-tag check-commit`.
#[derive(Debug, clap::Args)]
pub struct CheckCommitArgs {
    /// The message or title to check; `-` reads it from stdin (lines starting with `#` are dropped, as git does)
    #[arg(value_name = "MSG|-")]
    pub message: String,

    /// Accept this type too, besides build, chore, ci, docs, feat, fix, perf, refactor, revert, style, test (repeatable)
    #[arg(long = "type", value_name = "TYPE", conflicts_with = "types")]
    pub extra_types: Vec<String>,

    /// Accept only these types, comma-separated, e.g. `feat,fix,docs,chore` [default: build, chore, ci, docs, feat, fix, perf, refactor, revert, style, test]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub types: Option<Vec<String>>,
}

/// A media type `type/subtype` (RFC 6838 characters), for `--artifact-type`.
fn media_type(value: &str) -> Result<String, String> {
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match value.split_once('/') {
        Some((kind, subtype)) if valid(kind) && valid(subtype) => Ok(value.to_owned()),
        _ => Err(format!(
            "`{value}` is not a media type: expected `type/subtype` (letters, digits and `!#$&^_.+-`), e.g. `application/spdx+json`"
        )),
    }
}
