//! The command line of `kube-deploy`; the doc comments are its `--help`.

use std::path::PathBuf;
use std::time::Duration;

/// Deploy image digests to Kubernetes workloads with kubectl, with a lease lock, rollout, readiness and rollback.
///
/// The env is a `target = "kubernetes"` env of slipway.toml with its
/// `[envs.<name>.kubernetes]` table: `context`, `namespace`, and what is
/// deployed — named `workloads` (`kubectl annotate` + `kubectl set image`),
/// or `manifests` / `kustomize` rendered offline by `kubectl kustomize`
/// with every image pinned to its digest (kustomize's `images:`) and
/// applied (`kubectl apply -f -`). Then `kubectl rollout status --timeout`
/// for each workload and the env's `ready_url`; when a rollout or the
/// readiness fails, `kubectl rollout undo --to-revision` of each workload
/// the deploy gave a new revision, back to its revision before, else the
/// previous release applied again (unless --no-rollback).
/// A report shows the manifests only for --dry-run, each Secret's values
/// as `***`.
///
/// Images are the env's `images` (each `--image` or img-build's report,
/// tags resolved to digests through the registry). The lock is a
/// `coordination.k8s.io/v1` Lease `slipway-<env>` in the namespace, taken
/// with optimistic concurrency (create, or replace at the resourceVersion
/// read), renewed every 10 s while the deploy runs and released at the
/// end: a killed deploy stops renewing it and the next one takes it over
/// once it has seen it unchanged for 30 s; SIGINT or SIGTERM gives it back
/// before kube-deploy exits 130 or 143. The release records are the ConfigMap
/// `slipway-<env>-releases`; each workload's `kubernetes.io/change-cause`
/// names the release, so `kubectl rollout history` agrees with `releases`.
///
/// Exit status:
///   0  deployed (or the releases listed)
///   1  the deploy ran and failed: a rollout or the readiness failed (the
///      changed workloads were rolled back unless --no-rollback)
///   2  bad input: flags, slipway.toml, image references, manifests, an env
///      that is not `target = "kubernetes"`
///   3  an operation failed: kubectl could not reach the cluster or was
///      refused, the registry, another deploy holds the env's lease past
///      `lock_timeout`, or the deploy lost its lease (nothing more changed
///      or recorded)
#[derive(Debug, clap::Parser)]
#[command(name = "kube-deploy", version = slipway_build_info::VERSION, about, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Deploy image digests to the env's workloads
    Deploy(DeployArgs),
    /// Redeploy the previous good release (or `--to N`): its images applied again
    Rollback(RollbackArgs),
    /// List the env's releases, from its records in the cluster
    Releases(ClusterArgs),
}

/// Which env, and how kubectl reaches its cluster.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The env in slipway.toml (`[envs.<NAME>]` with `target = "kubernetes"`)
    #[arg(long, env = "SLIPWAY_ENV", value_name = "NAME")]
    pub env: String,

    /// The kubeconfig context [default: the env's `context`, else kubectl's current context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The namespace [default: the env's `namespace`, else `default`]
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,

    /// The kubectl binary to run: 1.21 or newer (its `kustomize` v4 renders
    /// the manifests), asked with `kubectl version --client` first
    #[arg(long, env = "KUBECTL", value_name = "PATH", default_value = "kubectl")]
    pub kubectl: PathBuf,
}

/// `deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// An image to deploy: `NAME=REGISTRY/REPO@sha256:…` or a tag such as `NAME=REGISTRY/REPO:sha-0123456`
    /// (resolved to its digest; never `latest`); repeat per image; wins over --images-from
    #[arg(long = "image", value_name = "IMAGE=REF")]
    pub images: Vec<String>,

    /// img-build's JSON report (`img-build --format json`), read from FILE or `-` (stdin)
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<PathBuf>,

    /// Refuse to deploy (exit 2, before anything is touched) unless every image's
    /// `org.opencontainers.image.revision` label, read from its registry, is this commit
    /// (a sha or any revision of the repository around slipway.toml, e.g. `HEAD`)
    #[arg(long, value_name = "REV")]
    pub require_revision: Option<String>,

    /// How long each workload may take to roll out [default: the env's `rollout_timeout`, else 5m]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<Duration>,

    /// Leave a failed rollout or readiness as it is (no `kubectl rollout undo`)
    #[arg(long)]
    pub no_rollback: bool,

    /// Print the kubectl commands and the manifests that would be applied (Secrets' values as `***`); touch no cluster
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub registry: slipway_registry::RegistryArgs,
}

/// `rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// The release to go back to, as `releases` numbers them [default: the deployed release
    /// before the current one]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub to: Option<u64>,

    /// How long each workload may take to roll back [default: the env's `rollout_timeout`, else 5m]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<Duration>,

    /// Print the release it would go back to, the kubectl commands and the manifests; read the
    /// records (the one cluster read), change and record nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// A duration flag, as every tool parses them (`30s`, `5m`).
fn duration(value: &str) -> Result<Duration, String> {
    slipway_core::duration::parse(value).map_err(|e| e.to_string())
}
