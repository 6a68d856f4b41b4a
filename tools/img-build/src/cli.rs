//! The command line of `img-build`; the doc comments are its `--help`.

use std::path::PathBuf;

/// Build the selected images from their Dockerfiles, labelled, tagged, in dependency order.
///
/// Images are the `[images.*]` tables of slipway.toml. The whole plan (targets,
/// order, tags, labels, commands) is computed and checked before any build
/// starts; `--dry-run` prints it.
#[derive(Debug, clap::Parser)]
#[command(name = "img-build", version = slipway_build_info::VERSION, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    /// Build these images (comma-separated or repeated)
    #[arg(long, value_name = "NAMES", value_delimiter = ',', conflicts_with_all = ["all", "targets_from"])]
    pub only: Vec<String>,

    /// Build every image of slipway.toml
    #[arg(long, conflicts_with = "targets_from")]
    pub all: bool,

    /// Build the `targets` listed by `changed-paths --format json`, read from FILE or `-` (stdin)
    #[arg(long, value_name = "FILE")]
    pub targets_from: Option<PathBuf>,

    /// Which builder to run: `auto` picks the first available of buildx, buildkit, buildah and says which
    #[arg(long, value_enum, env = "SLIPWAY_BACKEND", default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,

    /// Build on this buildx builder (`docker buildx build --builder NAME`): a remote BuildKit, a Kubernetes builder [default: slipway.toml's `builder`, else the runner's own daemon]
    ///
    /// Wins over `builder` in slipway.toml for every image. A builder needs
    /// the buildx backend (`auto` picks it without probing; `buildkit` and
    /// `buildah` refuse it), and, since a remote builder has no image store
    /// on this machine, `--push` or `--load`. Create one first, e.g. `docker
    /// buildx create --name remote --driver remote tcp://buildkitd:1234` or
    /// `docker buildx create --name k8s --driver kubernetes`.
    #[arg(long, env = "SLIPWAY_BUILDER", value_name = "NAME", value_parser = builder_name)]
    pub builder: Option<String>,

    /// The docker client to run (buildx and buildkit backends)
    #[arg(long, env = "DOCKER", value_name = "PATH", default_value = "docker")]
    pub docker: PathBuf,

    /// The buildah binary to run (buildah backend)
    #[arg(long, env = "BUILDAH", value_name = "PATH", default_value = "buildah")]
    pub buildah: PathBuf,

    /// Push every tag to its registry; the report then holds each image's digest
    #[arg(long, conflicts_with = "load")]
    pub push: bool,

    /// Skip the images already published for this commit (requires `--push`)
    ///
    /// Before building, each selected image's primary tag (its `sha-<short>`
    /// tag if the tag rules give one, else its first tag) is looked up in the
    /// registry, as `image-stale-check` does. An image is skipped only when
    /// that tag holds an image whose `org.opencontainers.image.revision` is
    /// the commit being built, and every image of this run it depends on is
    /// skipped too; the report then lists it as `skipped`, reason `fresh`,
    /// with the published digest, which dependents get as their build arg.
    /// An image fresh only because no file it is built from changed since an
    /// older commit is built: its sha tag for this commit does not exist and
    /// its revision label names another commit (`img-tag` can retag it
    /// instead). With uncommitted changes nothing is skipped. A registry
    /// that cannot be read is an error (exit 3), never a silent rebuild or
    /// skip. `--dry-run` shows each image's answer.
    #[arg(long)]
    pub only_stale: bool,

    /// Move mutable tags even backwards or sideways in history
    ///
    /// By default a mutable tag (`latest`, a branch, `1`, `1.4`: anything but
    /// `sha-<hex>` and a full semver version) moves only to an image whose
    /// revision descends from (or is) the revision of the image it points at
    /// now, read from the registry; otherwise it is left where it is, with a
    /// notice on stderr and in the report's `held_tags`.
    #[arg(long)]
    pub force_tags: bool,

    /// Keep the images in the local image store (buildx `--load`; docker and buildah always do)
    #[arg(long)]
    pub load: bool,

    /// Print the plan and the exact commands, run nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How many independent images build at once [default: the number of CPUs]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Stop starting images after the first failure (running ones finish)
    #[arg(long)]
    pub fail_fast: bool,

    /// Refuse to build from a working tree with uncommitted changes (else the revision label gets `-dirty`)
    #[arg(long)]
    pub require_clean: bool,

    /// Network mode for `RUN` steps, passed to the builder as `--network` (e.g. `none`, `host`) [default: the builder's]
    #[arg(long, env = "SLIPWAY_NETWORK", value_name = "MODE")]
    pub network: Option<String>,

    /// A `--cache-from` value for every image, repeatable, instead of slipway.toml's `cache_from`
    ///
    /// Values the backend cannot use are left out with a notice (e.g.
    /// `type=gha` without buildx), so one setting serves every builder.
    #[arg(long = "cache-from", value_name = "VALUE", conflicts_with = "no_cache")]
    pub cache_from: Vec<String>,

    /// A `--cache-to` value for every image, repeatable, instead of slipway.toml's `cache_to`
    #[arg(long = "cache-to", value_name = "VALUE", conflicts_with = "no_cache")]
    pub cache_to: Vec<String>,

    /// Build without any cache: no `cache_from`/`cache_to`, and `--no-cache` to the builder
    #[arg(long)]
    pub no_cache: bool,

    /// A metadata-action `tags:` line, repeatable [default: slipway.toml's `[tags] rules`, else metadata-action's defaults]
    #[arg(long = "tag", value_name = "RULE")]
    pub tags: Vec<String>,

    /// A metadata-action `flavor:` line, repeatable [default: slipway.toml's `[tags] flavor`]
    #[arg(long = "flavor", value_name = "LINE")]
    pub flavors: Vec<String>,

    /// The git ref tags are computed for [default: $GITHUB_REF (GitLab: $CI_COMMIT_TAG, $CI_COMMIT_BRANCH, or a merge request's `refs/pull/<iid>/merge`; Jenkins, Buildkite, CircleCI: their tag, branch, or pull request's `refs/pull/<n>/merge`), else HEAD's branch or tag]
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,

    /// Directory for each image's build log (`<image>.log`) [default: a new temp dir, named in failures]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    #[command(flatten)]
    pub registry: slipway_registry::RegistryArgs,
}

/// `--builder`: a buildx builder name, checked as buildx checks it.
fn builder_name(value: &str) -> Result<String, String> {
    slipway_config::check_builder_name(value).map(|()| value.to_owned())
}

/// The builders `img-build` can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The first available of buildx, buildkit, buildah
    Auto,
    /// `docker buildx build` (needs the buildx plugin)
    Buildx,
    /// `docker build` with `DOCKER_BUILDKIT=1` (a docker client before 23.0, or with buildx)
    Buildkit,
    /// `buildah bud`, daemonless
    Buildah,
}
