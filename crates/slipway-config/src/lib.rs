//! `slipway.toml`: finding it, loading it, and the checked, typed view every
//! tool reads (images, tag rules, envs and hosts).
//!
//! Loading validates everything it can without a network: unknown keys and
//! tables, types, globs, repositories, platforms, durations, hosts, the
//! `depends_on` graph and that bundle files exist. Every error names the file,
//! line and column and says what would be valid (see docs/config.md). Path
//! matching is not here; it belongs to slipway-git's `paths` (the glob
//! syntax, which loading checks, is slipway-glob).

mod error;
mod parse;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, ConfigErrorKind, Hint, Location};
pub use values::{
    BuildSecret, Host, PathPattern, Platform, SecretSource, ValueError, check_builder_name,
    is_variable_name,
};

use slipway_core::image_ref::Repository;

/// The file name looked for.
pub const FILE_NAME: &str = "slipway.toml";

/// A value with the place in slipway.toml it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value as written.
    pub value: T,
    /// Where it is written.
    pub at: Location,
}

/// A loaded and checked slipway.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file, as given (or as found by [`Config::discover`]).
    pub path: PathBuf,
    /// The directory holding the file; relative paths in it are relative to this.
    pub root: PathBuf,
    /// `[project]`.
    pub project: Project,
    /// `[rebuild_all]`.
    pub rebuild_all: RebuildAll,
    /// `[images.<name>]`, by name.
    pub images: BTreeMap<String, Image>,
    /// `[tags]`.
    pub tags: Tags,
    /// `[stale]`.
    pub stale: Stale,
    /// `[envs.<name>]`, by name.
    pub envs: BTreeMap<String, Env>,
}

/// `[project]`: facts about the whole repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The project's name; defaults to the name of the directory holding slipway.toml.
    pub name: String,
    /// Repository prefix; an image's repository defaults to `<registry>/<image name>`.
    pub registry: Option<Repository>,
    /// The branch releases come from; defaults to `main`.
    pub default_branch: String,
    /// Source URL, written into the `org.opencontainers.image.source` label.
    pub source: Option<String>,
    /// `builder`: the buildx builder every image is built on, unless an
    /// image names its own (`docker buildx build --builder NAME`).
    pub builder: Option<String>,
}

/// `[rebuild_all]`: paths whose change selects every image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RebuildAll {
    /// The globs, in order.
    pub paths: Vec<PathPattern>,
}

/// `[images.<name>]`: how to build one image and which paths it is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The key under `[images]`.
    pub name: String,
    /// Build context, relative to [`Config::root`]; defaults to `.`.
    pub context: PathBuf,
    /// Dockerfile, relative to [`Config::root`]; defaults to `<context>/Dockerfile`.
    pub dockerfile: PathBuf,
    /// Dockerfile stage to build.
    pub target: Option<String>,
    repository: Repository,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// Labels added to the image, besides the OCI ones Slipway computes.
    pub labels: BTreeMap<String, String>,
    /// Platforms to build for; empty means the builder's own.
    pub platforms: Vec<Platform>,
    /// Globs of the files the image is built from; `!` excludes.
    pub paths: Vec<PathPattern>,
    /// Images that must be built first, in the order written.
    pub depends_on: Vec<String>,
    /// The build arg that receives a dependency's built reference; defaults to `BASE_IMAGE`.
    pub depends_on_arg: String,
    /// `--cache-from` values, verbatim.
    pub cache_from: Vec<String>,
    /// `--cache-to` values, verbatim.
    pub cache_to: Vec<String>,
    /// Build secrets.
    pub secrets: Vec<BuildSecret>,
    /// `default`: whether anything automatic selects it (`--all`,
    /// `[rebuild_all]`, a dependency's change, the stale check); `false`
    /// means it is built and checked only when named.
    pub is_default: bool,
    /// `builder`: the buildx builder this image is built on (its own key,
    /// else `[project] builder`); `None` is the runner's own daemon.
    pub builder: Option<String>,
    /// Where the image's table starts.
    pub at: Location,
}

impl Image {
    /// Where the image is pushed: `repository`, or `<project.registry>/<name>`.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }
}

/// `[tags]`: docker/metadata-action `tags:` and `flavor:` lines, verbatim;
/// the tags module parses them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags {
    /// `tags:` lines, e.g. `type=sha`.
    pub rules: Vec<Located<String>>,
    /// `flavor:` lines, e.g. `latest=auto`.
    pub flavor: Vec<Located<String>>,
}

/// `[stale]`: what `image-stale-check` (and its pre-push hook) looks up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stale {
    /// `tag`: the tag the default branch publishes, e.g. `latest`; without
    /// it, derived from `[tags]` (see `stale::published_tag`).
    pub tag: Option<Located<String>>,
}

/// `[envs.<name>]`: where and how `ssh-deploy` deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// The key under `[envs]`.
    pub name: String,
    /// The hosts, deployed to in order.
    pub hosts: Vec<Host>,
    /// Absolute directory on each host holding the bundle, `deploy.env`
    /// and the release records.
    pub remote_path: String,
    /// Files (or directories of files) uploaded with each release, relative
    /// to [`Config::root`]; only checked to exist here: the deploying tool
    /// checks that each resolves to regular files inside the root.
    pub bundle: Vec<PathBuf>,
    /// Leading directories dropped from each bundle file's path relative
    /// to the root before it lands under `remote_path` (0 keeps the
    /// project's layout), as scp-action's `strip_components`.
    pub strip_components: u32,
    /// `env`: extra variables for the remote command, name -> value (not
    /// secret: they are in slipway.toml).
    pub env_vars: BTreeMap<String, String>,
    /// Command run in `remote_path` on each host.
    pub command: String,
    /// Environment variable holding the passphrase of an encrypted SSH key
    /// (ssh-deploy's `--ssh-key-passphrase-env` wins over it).
    pub ssh_key_passphrase_env: Option<String>,
    /// `deploy.env` variable name -> image name.
    pub images: BTreeMap<String, String>,
    /// URL `ready-wait` polls after the deploy.
    pub ready_url: Option<String>,
    /// How long to wait for `ready_url`; defaults to 60s.
    pub ready_timeout: Duration,
    /// How long to wait for another deploy's lock; defaults to 5m.
    pub lock_timeout: Duration,
    /// How many releases to keep on each host; defaults to 10.
    pub keep_releases: u32,
    /// `batch`: how many hosts deploy at once (ssh-deploy's `--batch` wins
    /// over it); `None` means all at once.
    pub batch: Option<Batch>,
    /// `preflight`: a command every host must run successfully, in the
    /// remote path, before any host is deployed to.
    pub preflight: Option<String>,
    /// `instances = true`: the env is a template of preview instances
    /// (`ssh-deploy --instance pr-123`); its `remote_path` ends in
    /// `/{instance}`.
    pub is_template: bool,
    /// `max_instances`: how many instances may exist on a host at once.
    pub max_instances: Option<u32>,
    /// `port_range`: the ports an instance's port is chosen from.
    pub port_range: Option<PortRange>,
    /// `teardown`: the command `ssh-deploy destroy` runs in an instance's
    /// directory before removing it.
    pub teardown: Option<String>,
    /// `target`: what the env deploys to (`ssh` unless said otherwise).
    /// Only an `ssh` env has hosts, a remote path, a bundle and a command;
    /// the others leave them empty and carry their own table.
    pub target: DeployTarget,
    /// `[envs.<name>.swarm]`, present exactly when `target = "swarm"`.
    pub swarm: Option<SwarmTarget>,
    /// `[envs.<name>.command]`, present exactly when `target = "command"`.
    pub command_target: Option<CommandTarget>,
    /// `[envs.<name>.kubernetes]`, present exactly when `target = "kubernetes"`.
    pub kubernetes: Option<KubernetesTarget>,
    /// Where the env's table starts.
    pub at: Location,
}

/// What an env deploys to: its `target` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeployTarget {
    /// Hosts reached over SSH (ssh-deploy); the default.
    #[default]
    Ssh,
    /// A Docker swarm stack (swarm-deploy).
    Swarm,
    /// Kubernetes workloads (kube-deploy).
    Kubernetes,
    /// A command run on the runner itself (cmd-deploy).
    Command,
}

impl DeployTarget {
    /// Every target, as written in slipway.toml.
    pub const ALL: [DeployTarget; 4] = [
        DeployTarget::Ssh,
        DeployTarget::Swarm,
        DeployTarget::Kubernetes,
        DeployTarget::Command,
    ];

    /// The value of `target` in slipway.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployTarget::Ssh => "ssh",
            DeployTarget::Swarm => "swarm",
            DeployTarget::Kubernetes => "kubernetes",
            DeployTarget::Command => "command",
        }
    }

    /// The tool that deploys to this target.
    pub fn tool(self) -> &'static str {
        match self {
            DeployTarget::Ssh => "ssh-deploy",
            DeployTarget::Swarm => "swarm-deploy",
            DeployTarget::Kubernetes => "kube-deploy",
            DeployTarget::Command => "cmd-deploy",
        }
    }
}

impl std::fmt::Display for DeployTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[envs.<name>.swarm]`: the env's compose file deployed as a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmTarget {
    /// `compose_file`: the compose file, relative to [`Config::root`].
    pub compose_file: PathBuf,
    /// `stack`: the stack name; defaults to `<project>-<env>`.
    pub stack: String,
    /// `docker_host`: the manager (`ssh://user@host`, `tcp://…`,
    /// `unix://…`); without it, `DOCKER_HOST` or docker's default.
    pub docker_host: Option<String>,
    /// `prune`: remove services no longer in the compose file.
    pub prune: bool,
    /// `converge_timeout`: how long the services may take to converge;
    /// defaults to 5m.
    pub converge_timeout: Duration,
}

/// `[envs.<name>.kubernetes]`: workloads in a cluster, reached with kubectl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesTarget {
    /// `context`: the kubeconfig context (`kubectl --context`); without
    /// it, kubectl's current context.
    pub context: Option<String>,
    /// `namespace`: where the workloads, and the deploy's Lease, live;
    /// defaults to `default`.
    pub namespace: String,
    /// What is deployed: `workloads`, `manifests` or `kustomize`.
    pub source: KubernetesSource,
    /// `rollout_timeout`: how long each workload may take to roll out
    /// (`kubectl rollout status --timeout`); defaults to 5m.
    pub rollout_timeout: Duration,
}

/// What a kubernetes env deploys: exactly one of its three keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubernetesSource {
    /// `workloads`: running workloads whose containers get new images
    /// (`kubectl set image`).
    Workloads(Vec<Workload>),
    /// `manifests`: a manifest file or a directory of them, relative to
    /// [`Config::root`], applied with the images substituted.
    Manifests(PathBuf),
    /// `kustomize`: a kustomization directory (an overlay), relative to
    /// [`Config::root`], rendered with the images substituted and applied.
    Kustomize(PathBuf),
}

/// One entry of `workloads`: `"deployment/web" = { web = "app" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `deployment`, `statefulset` or `daemonset`.
    pub kind: String,
    /// The workload's name.
    pub name: String,
    /// Container name -> image name (an `[images.*]` key).
    pub containers: BTreeMap<String, String>,
}

/// `[envs.<name>.command]`: a command run on the runner with the images in
/// its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTarget {
    /// `run`: the command, run by `sh -c` in [`Config::root`].
    pub run: String,
    /// `history`: the directory holding the env's release records and its
    /// lock, relative to [`Config::root`] unless absolute.
    pub history: PathBuf,
    /// `timeout`: how long the command may run; defaults to 30m.
    pub timeout: Duration,
}

impl Config {
    /// Finds slipway.toml in `start` or the nearest parent directory and loads it.
    pub fn discover(start: &Path) -> Result<Config, ConfigError> {
        let start = fs_err::canonicalize(start).map_err(|source| {
            ConfigError::from(ConfigErrorKind::Read {
                path: start.to_owned(),
                source,
            })
        })?;
        let mut found = None;
        for candidate in start.ancestors().map(|dir| dir.join(FILE_NAME)) {
            match fs_err::metadata(&candidate) {
                Ok(metadata) if metadata.is_file() => {
                    found = Some(candidate);
                    break;
                }
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                // A slipway.toml that is there but cannot be looked at (a
                // symlink loop, no permission) is reported, not skipped:
                // "no slipway.toml" would send the user looking elsewhere.
                Err(source) => {
                    return Err(ConfigError::from(ConfigErrorKind::Read {
                        path: candidate,
                        source,
                    }));
                }
            }
        }
        match found {
            Some(path) => Self::load(&path),
            None => Err(ConfigError::from(ConfigErrorKind::NotFound { start })),
        }
    }

    /// Loads `explicit` if given (a file, or a directory holding slipway.toml;
    /// relative to `cwd`), else discovers from `cwd`.
    pub fn locate(explicit: Option<&Path>, cwd: &Path) -> Result<Config, ConfigError> {
        match explicit {
            Some(path) => {
                let path = cwd.join(path);
                if path.is_dir() {
                    Self::load(&path.join(FILE_NAME))
                } else {
                    Self::load(&path)
                }
            }
            None => Self::discover(cwd),
        }
    }

    /// Like [`Config::locate`], for tools that also work from flags alone:
    /// no slipway.toml found by discovery is `Ok(None)`; an explicit path
    /// that can't be loaded, or a file that is wrong, is still an error.
    pub fn locate_optional(
        explicit: Option<&Path>,
        cwd: &Path,
    ) -> Result<Option<Config>, ConfigError> {
        match Self::locate(explicit, cwd) {
            Ok(config) => Ok(Some(config)),
            Err(error)
                if explicit.is_none()
                    && matches!(error.kind(), ConfigErrorKind::NotFound { .. }) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = slipway_core::input::read_to_string(path).map_err(|source| {
            ConfigError::from(ConfigErrorKind::Read {
                path: path.to_owned(),
                source,
            })
        })?;
        Self::from_str(&text, path)
    }

    /// Checks `text` as if read from `path`: `path` appears in messages and its
    /// directory is the root (bundle files are looked for there).
    pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        parse::parse(text, path)
    }

    /// `path` (relative to the config's directory) as a path usable from here.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }

    /// The image called `name`; an unknown name lists the images, nearest first.
    pub fn image(&self, name: &str) -> Result<&Image, ConfigError> {
        self.images.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.images.keys().map(String::as_str).collect();
            ConfigError::from(ConfigErrorKind::UnknownImage {
                file: self.path.clone(),
                name: name.to_owned(),
                hint: Hint::name(name, &names),
                images: nearest_first(name, &names),
            })
        })
    }

    /// The env called `name`; an unknown name lists the envs, nearest first.
    pub fn env(&self, name: &str) -> Result<&Env, ConfigError> {
        self.envs.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.envs.keys().map(String::as_str).collect();
            ConfigError::from(ConfigErrorKind::UnknownEnv {
                file: self.path.clone(),
                name: name.to_owned(),
                hint: Hint::name(name, &names),
                envs: nearest_first(name, &names),
            })
        })
    }

    /// The env called `name`, which must deploy to `target`: another
    /// target's env is refused naming the tool that deploys it.
    pub fn env_for(&self, name: &str, target: DeployTarget) -> Result<&Env, ConfigError> {
        let env = self.env(name)?;
        if env.target == target {
            Ok(env)
        } else {
            Err(ConfigError::from(ConfigErrorKind::WrongTarget {
                env: env.name.clone(),
                target: env.target,
                tool: env.target.tool(),
            }))
        }
    }

    /// The `selected` images in build order: each after everything it depends
    /// on (directly or through images not selected), ties broken by name.
    /// Images that are not selected are not added.
    pub fn build_order(&self, selected: &[&str]) -> Result<Vec<String>, ConfigError> {
        for name in selected {
            self.image(name)?;
        }
        let selected: BTreeSet<&str> = selected.iter().copied().collect();
        Ok(self
            .topological_order()
            .into_iter()
            .filter(|name| selected.contains(name.as_str()))
            .collect())
    }

    /// The names of the images anything automatic selects: all but those
    /// with `default = false`.
    pub fn default_images(&self) -> BTreeSet<String> {
        self.images
            .values()
            .filter(|image| image.is_default)
            .map(|image| image.name.clone())
            .collect()
    }

    /// The given images and every image that depends on one of them, directly
    /// or transitively. Names that are not images are left out.
    pub fn dependents_closure<I, S>(&self, names: I) -> BTreeSet<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut closure: BTreeSet<String> = names
            .into_iter()
            .filter(|n| self.images.contains_key(n.as_ref()))
            .map(|n| n.as_ref().to_owned())
            .collect();
        loop {
            let before = closure.len();
            for image in self.images.values() {
                if image.depends_on.iter().any(|d| closure.contains(d)) {
                    closure.insert(image.name.clone());
                }
            }
            if closure.len() == before {
                return closure;
            }
        }
    }

    /// Every image, dependencies first, ties broken by name (Kahn's algorithm).
    /// Loading rejected cycles, so every image appears.
    fn topological_order(&self) -> Vec<String> {
        let mut waiting: BTreeMap<&str, usize> = self
            .images
            .values()
            .map(|i| (i.name.as_str(), i.depends_on.len()))
            .collect();
        let mut ready: BTreeSet<&str> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(name, _)| *name)
            .collect();
        let mut order = Vec::with_capacity(self.images.len());
        while let Some(name) = ready.pop_first() {
            waiting.remove(name);
            order.push(name.to_owned());
            for image in self.images.values() {
                if image.depends_on.iter().any(|d| d == name)
                    && let Some(count) = waiting.get_mut(image.name.as_str())
                {
                    *count -= 1;
                    if *count == 0 {
                        ready.insert(image.name.as_str());
                    }
                }
            }
        }
        order
    }
}

/// `names` sorted by edit distance to `wanted`, then alphabetically.
fn nearest_first(wanted: &str, names: &[&str]) -> Vec<String> {
    let mut sorted: Vec<(usize, &str)> = names
        .iter()
        .map(|n| (error::distance(wanted, n), *n))
        .collect();
    sorted.sort();
    sorted.into_iter().map(|(_, n)| n.to_owned()).collect()
}

/// How many hosts of an env deploy at once: `batch = "2"` or `batch = "25%"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// This many hosts (at least 1).
    Hosts(u32),
    /// This percentage of the hosts, rounded up (1 to 100).
    Percent(u32),
}

impl Batch {
    /// The batch size for `hosts` hosts (at least 1).
    pub fn size(self, hosts: usize) -> usize {
        match self {
            Batch::Hosts(n) => usize::try_from(n).unwrap_or(usize::MAX).max(1),
            Batch::Percent(p) => {
                let p = usize::try_from(p).unwrap_or(100);
                (hosts * p).div_ceil(100).max(1)
            }
        }
    }
}

impl std::str::FromStr for Batch {
    type Err = String;

    /// Parses `N` (hosts) or `P%` (percent of the hosts).
    fn from_str(text: &str) -> Result<Batch, String> {
        let bad = || {
            format!(
                "`{text}` is not a batch size; give a number of hosts (at least 1) like `2`, or a percentage from 1% to 100% like `25%`"
            )
        };
        match text.strip_suffix('%') {
            Some(percent) => percent
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .map(Batch::Percent)
                .ok_or_else(bad),
            None => text
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .map(Batch::Hosts)
                .ok_or_else(bad),
        }
    }
}

/// What slipway-config's errors say: their exit codes ([`classify`]) and
/// the line and column in slipway.toml ([`locate`]). A tool that uses this
/// crate passes it to [`slipway_core::cli::finish`].
pub const ERRORS: slipway_core::cli::ErrorKinds =
    slipway_core::cli::ErrorKinds { classify, locate };

/// The place in slipway.toml a [`ConfigError`] names, for a CI annotation.
pub fn locate(
    cause: &(dyn std::error::Error + 'static),
) -> Option<slipway_core::output::AnnotationLocation> {
    let location = cause.downcast_ref::<ConfigError>()?.location()?;
    Some(slipway_core::output::AnnotationLocation {
        file: location.file.clone(),
        line: location.line,
        column: Some(location.column),
    })
}

/// The exit code `cause` says if it is one of slipway-config's errors: a tool that
/// uses this crate passes it to [`slipway_core::cli::finish`].
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    [
        slipway_core::cli::code::<ConfigError>,
        slipway_core::cli::code::<ValueError>,
    ]
    .iter()
    .find_map(|code| code(cause))
}

/// The placeholder of an instance name in a template env's keys.
pub const INSTANCE_PLACEHOLDER: &str = "{instance}";

/// The placeholder of an instance's port in `ready_url`.
pub const PORT_PLACEHOLDER: &str = "{port}";

/// The ports a template env's instances take theirs from:
/// `port_range = "20000-20999"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port of the range.
    pub first: u16,
    /// The last port of the range (included).
    pub last: u16,
}

impl PortRange {
    /// How many ports the range holds.
    pub fn len(self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Whether the range holds no port (never, once parsed).
    pub fn is_empty(self) -> bool {
        self.last < self.first
    }

    /// Whether `port` lies in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;

    /// Parses `FIRST-LAST`, two ports from 1 to 65535, `FIRST <= LAST`.
    fn from_str(text: &str) -> Result<PortRange, String> {
        let bad = || {
            format!(
                "`{text}` is not a port range; give `FIRST-LAST`, two ports from 1 to 65535 with FIRST <= LAST, e.g. `20000-20999`"
            )
        };
        let (first, last) = text.split_once('-').ok_or_else(bad)?;
        let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p >= 1);
        match (port(first), port(last)) {
            (Some(first), Some(last)) if first <= last => Ok(PortRange { first, last }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: &str = r#"
[project]
registry = "127.0.0.1:5000/demo"

[images.base]
[images.app]
depends_on = ["base"]
[images.worker]
depends_on = ["base"]
[images.migrator]
depends_on = ["app"]
[images.tools]
"#;

    fn graph() -> Config {
        Config::from_str(GRAPH, Path::new("slipway.toml")).unwrap()
    }

    #[track_caller]
    fn check(selected: &[&str], order: &[&str], closure: &[&str]) {
        let config = graph();
        assert_eq!(
            config.build_order(selected).unwrap(),
            order,
            "build order of {selected:?}"
        );
        let expected: BTreeSet<String> = closure.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            config.dependents_closure(selected),
            expected,
            "dependents of {selected:?}"
        );
    }

    #[test]
    fn build_order_puts_dependencies_first_and_closure_adds_dependents() {
        check(&[], &[], &[]);
        check(
            &["app", "base"],
            &["base", "app"],
            &["app", "base", "migrator", "worker"],
        );
        check(
            &["migrator", "base"],
            &["base", "migrator"],
            &["app", "base", "migrator", "worker"],
        );
        check(&["tools"], &["tools"], &["tools"]);
        check(&["app"], &["app"], &["app", "migrator"]);
        check(
            &["migrator", "worker", "app", "base", "tools"],
            &["base", "app", "migrator", "tools", "worker"],
            &["app", "base", "migrator", "tools", "worker"],
        );
    }

    #[test]
    fn default_false_leaves_an_image_out_of_the_default_images() {
        let text = format!("{GRAPH}default = false\n");
        let config = Config::from_str(&text, Path::new("slipway.toml")).unwrap();
        assert!(!config.images["tools"].is_default);
        let defaults: Vec<String> = config.default_images().into_iter().collect();
        assert_eq!(defaults, ["app", "base", "migrator", "worker"]);
        assert_eq!(graph().default_images().len(), 5);
    }

    #[test]
    fn unknown_names_list_the_images_nearest_first() {
        let config = graph();
        assert_eq!(
            config.build_order(&["ap"]).unwrap_err().to_string(),
            "unknown image `ap` in `slipway.toml` — did you mean `app`? (images, nearest first: app, base, tools, worker, migrator)"
        );
        assert_eq!(
            config.env("prod").unwrap_err().to_string(),
            "unknown env `prod` in `slipway.toml` (envs, nearest first: none are defined)"
        );
        assert_eq!(config.dependents_closure(["nope"]), BTreeSet::new());
    }

    #[test]
    fn discover_walks_up_and_locate_prefers_the_explicit_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let deep = root.join("a/b/c");
        fs_err::create_dir_all(&deep).unwrap();
        fs_err::write(root.join(FILE_NAME), "[project]\nname = \"top\"\n").unwrap();
        fs_err::write(root.join("a/other.toml"), "[project]\nname = \"other\"\n").unwrap();

        let found = Config::discover(&deep).unwrap();
        assert_eq!(
            (found.path, found.root, found.project.name),
            (root.join(FILE_NAME), root.clone(), "top".to_owned())
        );
        let explicit = Config::locate(Some(Path::new("a/other.toml")), &root).unwrap();
        assert_eq!(explicit.project.name, "other");
        let by_dir = Config::locate(Some(Path::new("..")), &root.join("a")).unwrap();
        assert_eq!(by_dir.project.name, "top");
        assert_eq!(Config::locate(None, &deep).unwrap().project.name, "top");

        let empty = tempfile::tempdir().unwrap();
        let start = empty.path().canonicalize().unwrap();
        let error = Config::discover(&start).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "no slipway.toml in `{}` or any parent directory; create one at the repository root or pass its path with --config",
                start.display()
            )
        );
    }

    #[test]
    fn locate_optional_tolerates_only_a_missing_discovered_file() {
        let empty = tempfile::tempdir().unwrap();
        let start = empty.path().canonicalize().unwrap();
        assert!(Config::locate_optional(None, &start).unwrap().is_none());
        let explicit = Config::locate_optional(Some(Path::new("missing.toml")), &start);
        assert!(explicit.unwrap_err().to_string().contains("missing.toml"));
        fs_err::write(start.join(FILE_NAME), "[projekt]\n").unwrap();
        let broken = Config::locate_optional(None, &start)
            .unwrap_err()
            .to_string();
        assert!(broken.starts_with("unknown table [projekt]"), "{broken}");
        fs_err::write(start.join(FILE_NAME), "").unwrap();
        assert!(Config::locate_optional(None, &start).unwrap().is_some());
    }
}
