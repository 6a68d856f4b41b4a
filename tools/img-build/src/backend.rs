//! The builders behind one trait: `docker buildx build`, `docker build` with
//! BuildKit, and `buildah bud`. A backend only turns a build or a push into
//! an argv; running it is `run`'s job, so the dry run shows exactly what a
//! real run would execute.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use slipway_config::Platform;
use slipway_core::cli::UsageError;
use xshell::Shell;

use crate::cli::BackendChoice;
use crate::plan::{Plan, Target};
use slipway_config::SecretSource;

pub(crate) use slipway_contract::img_build::BackendKind;

/// Where the digest of what a command pushed can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DigestSource {
    /// Nothing pushed.
    None,
    /// buildx `--metadata-file`: `containerimage.digest`.
    MetadataFile(PathBuf),
    /// buildah `push --digestfile`.
    DigestFile(PathBuf),
    /// `docker push` prints `<tag>: digest: sha256:… size: …`.
    PushOutput,
}

/// One command, arguments as arguments (never a shell string).
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    /// What it does, e.g. `build linux/arm64` or `push 127.0.0.1:5000/app:sha-abc`.
    pub(crate) step: String,
    pub(crate) argv: Vec<String>,
    /// Environment variables set for it (names and values; never secrets).
    pub(crate) env: Vec<(String, String)>,
    /// Where the digest of what it pushed can be read.
    pub(crate) digest: DigestSource,
    /// The platform this command's push is for (per-platform builds).
    pub(crate) platform: Option<Platform>,
}

/// What one build is made of.
#[derive(Debug)]
pub(crate) struct BuildSpec<'a> {
    pub(crate) target: &'a Target,
    pub(crate) platforms: Vec<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) build_args: BTreeMap<String, String>,
    /// `--secret` values, already pointing at where the value is.
    pub(crate) secrets: Vec<String>,
    pub(crate) network: Option<&'a str>,
    pub(crate) push: bool,
    pub(crate) load: bool,
    /// The iidfile or metadata file this build writes.
    pub(crate) output_file: PathBuf,
    /// `SOURCE_DATE_EPOCH`: timestamps of what the build makes.
    pub(crate) source_date_epoch: i64,
    /// `--no-cache`: the builder reuses nothing.
    pub(crate) no_cache: bool,
}

/// A builder: how a build and a push are spelled.
pub(crate) trait Backend: Sync {
    /// Which builder this is.
    fn kind(&self) -> BackendKind;
    /// Whether one build makes a multi-platform image (else one build per platform).
    fn builds_multi_platform(&self) -> bool;
    /// The build command.
    fn build(&self, spec: &BuildSpec<'_>) -> Invocation;
    /// The command that pushes `reference`, or `None` when the build pushed already.
    fn push(&self, reference: &str, digest_file: &Path) -> Option<Invocation>;
}

/// The backend for a plan.
pub(crate) fn backend(plan: &Plan) -> Box<dyn Backend> {
    match plan.backend {
        BackendKind::Buildx => Box::new(Buildx {
            docker: plan.docker.clone(),
        }),
        BackendKind::Buildkit => Box::new(Buildkit {
            docker: plan.docker.clone(),
        }),
        BackendKind::Buildah => Box::new(Buildah {
            buildah: plan.buildah.clone(),
            registry: plan.registry.clone(),
        }),
    }
}

/// Picks the backend: the one asked for, or under `auto` the first that
/// answers (buildx, then docker with BuildKit, then buildah); says why.
/// `builder` says where a buildx builder was asked for (`--builder remote`):
/// only buildx can hand a build to one, so `auto` takes buildx without
/// probing, and the other backends refuse.
pub(crate) fn choose(
    choice: BackendChoice,
    docker: &Path,
    buildah: &Path,
    builder: Option<&str>,
) -> anyhow::Result<(BackendKind, String)> {
    if let Some(builder) = builder {
        return match choice {
            BackendChoice::Auto => Ok((
                BackendKind::Buildx,
                format!("{builder} is a buildx builder"),
            )),
            BackendChoice::Buildx => Ok((BackendKind::Buildx, "--backend buildx".to_owned())),
            BackendChoice::Buildkit => Err(UsageError::new(format!(
                "{builder} names a buildx builder, which the buildkit backend (`docker build` with DOCKER_BUILDKIT=1, on the daemon at $DOCKER_HOST) cannot use: choose `--backend buildx` or `auto`, or leave the builder out"
            ))),
            BackendChoice::Buildah => Err(UsageError::new(format!(
                "{builder} names a buildx builder, but buildah builds on this machine, without BuildKit, and cannot hand a build to a builder: choose `--backend buildx` or `auto`, or leave the builder out"
            ))),
        };
    }
    match choice {
        BackendChoice::Buildx => return Ok((BackendKind::Buildx, "--backend buildx".to_owned())),
        BackendChoice::Buildkit => {
            return Ok((BackendKind::Buildkit, "--backend buildkit".to_owned()));
        }
        BackendChoice::Buildah => {
            return Ok((BackendKind::Buildah, "--backend buildah".to_owned()));
        }
        BackendChoice::Auto => {}
    }
    let sh = Shell::new()?;
    let docker_shown = docker.display().to_string();
    let mut tried = Vec::new();
    let buildx = sh
        .cmd(docker)
        .args(["buildx", "version"])
        .quiet()
        .ignore_status()
        .output();
    match buildx {
        Ok(output) if output.status.success() => {
            return Ok((
                BackendKind::Buildx,
                format!("`{docker_shown} buildx version` succeeded"),
            ));
        }
        _ => tried.push(format!("`{docker_shown} buildx version` failed")),
    }
    let version = sh
        .cmd(docker)
        .args([
            "version",
            "--format",
            "{{.Client.Version}} {{.Server.Version}}",
        ])
        .quiet()
        .ignore_status()
        .output();
    match version {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            let client = text.split(' ').next().unwrap_or_default().to_owned();
            let major: u32 = client
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            // Docker 23 made `docker build` an alias of buildx: without the
            // plugin, DOCKER_BUILDKIT=1 fails and only the legacy builder is left.
            if major < 23 {
                return Ok((
                    BackendKind::Buildkit,
                    format!(
                        "`{docker_shown}` is client {client}, which builds with the daemon's BuildKit"
                    ),
                ));
            }
            tried.push(format!(
                "`{docker_shown}` is client {client}, which needs the buildx plugin for BuildKit (choose an older client with --docker PATH)"
            ));
        }
        _ => tried.push(format!(
            "`{docker_shown} version` failed (no client, or no daemon at $DOCKER_HOST)"
        )),
    }
    let buildah_shown = buildah.display().to_string();
    match sh
        .cmd(buildah)
        .arg("version")
        .quiet()
        .ignore_status()
        .output()
    {
        Ok(output) if output.status.success() => {
            return Ok((
                BackendKind::Buildah,
                format!("`{buildah_shown} version` succeeded"),
            ));
        }
        _ => tried.push(format!("`{buildah_shown} version` failed")),
    }
    anyhow::bail!("no builder is available: {}", tried.join("; "))
}

/// Rejects what the chosen backend cannot do, naming the image and what would work.
pub(crate) fn validate(plan: &Plan) -> anyhow::Result<()> {
    for target in &plan.targets {
        let name = &target.name;
        let multi = target.platforms.len() > 1;
        match plan.backend {
            BackendKind::Buildx => {
                if let Some(builder) = &target.builder
                    && !plan.push
                    && !plan.load
                {
                    return Err(UsageError::new(format!(
                        "image `{name}` is built on buildx builder `{builder}`, which keeps what it builds in its own cache, not in an image store on this machine: add `--push` to push it to its registry, or `--load` to load it into the local docker"
                    )));
                }
                if multi && plan.load {
                    return Err(UsageError::new(format!(
                        "image `{name}` is built for {} platforms, which `--load` cannot keep in the local image store: use `--push`",
                        target.platforms.len()
                    )));
                }
            }
            BackendKind::Buildkit | BackendKind::Buildah => {
                if multi && !plan.push {
                    return Err(UsageError::new(format!(
                        "image `{name}` is built for {} platforms: without buildx each platform is pushed and an index assembled in the registry, so `--push` is needed",
                        target.platforms.len()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Keeps the cache values of `target` that `backend` can use and drops the
/// others, returning one notice per dropped value: one slipway.toml serves a
/// laptop (buildah, classic BuildKit) and a CI runner (buildx). buildx takes
/// every value; classic BuildKit reads registry images (`cache_from`) and
/// writes `type=inline`; buildah reads and writes registry repositories.
pub(crate) fn fit_cache(backend: BackendKind, target: &mut Target) -> Vec<String> {
    let mut notices = Vec::new();
    let name = target.name.clone();
    let mut keep = |key: &str,
                    values: &mut Vec<String>,
                    usable: &dyn Fn(&str) -> bool,
                    what: &str| {
        values.retain(|value| {
            let is_usable = usable(value);
            if !is_usable {
                notices.push(format!(
                    "`{key}` value `{value}` of image `{name}` is left out: the {backend} backend {what} (buildx takes it)"
                ));
            }
            is_usable
        });
    };
    match backend {
        BackendKind::Buildx => {}
        BackendKind::Buildkit => {
            keep(
                "cache_from",
                &mut target.cache_from,
                &|v| registry_cache_ref(v).is_some(),
                "reads only registry caches (`type=registry,ref=REPO:TAG` or an image reference)",
            );
            keep(
                "cache_to",
                &mut target.cache_to,
                &|v| v == "type=inline",
                "writes only `type=inline`",
            );
        }
        BackendKind::Buildah => {
            let usable = |v: &str| registry_cache_ref(v).is_some();
            let what = "uses only registry caches (`type=registry,ref=REPO` or a repository)";
            keep("cache_from", &mut target.cache_from, &usable, what);
            keep("cache_to", &mut target.cache_to, &usable, what);
        }
    }
    notices
}

/// The image reference of a registry cache value: `type=registry,ref=X` or a bare `X`.
fn registry_cache_ref(value: &str) -> Option<String> {
    if !value.contains('=') {
        return Some(value.to_owned());
    }
    let fields: Vec<&str> = value.split(',').collect();
    if !fields.contains(&"type=registry") {
        return None;
    }
    fields
        .iter()
        .find_map(|f| f.strip_prefix("ref="))
        .map(str::to_owned)
}

/// `--secret` value for a build secret: buildx reads env vars itself; the
/// others get a file (`env_file` is where the value was written).
pub(crate) fn secret_arg(
    kind: BackendKind,
    id: &str,
    secret: &SecretSource,
    env_file: &str,
) -> String {
    match (secret, kind) {
        (SecretSource::Env(var), BackendKind::Buildx) => format!("id={id},env={var}"),
        (SecretSource::Env(_), _) => format!("id={id},src={env_file}"),
        (SecretSource::File(path), _) => format!("id={id},src={}", path.display()),
    }
}

/// The flags every backend spells the same: file, stage, platform, args, labels, tags, secrets.
fn common_args(spec: &BuildSpec<'_>, args: &mut Vec<String>) {
    let mut push = |flag: &str, value: String| {
        args.push(flag.to_owned());
        args.push(value);
    };
    // The copy named by its bytes, never the original: BuildKit would reuse
    // another Dockerfile of the same name, size and mtime (see `dockerfile`).
    push("--file", spec.target.build_file.copy.display().to_string());
    if let Some(stage) = &spec.target.stage {
        push("--target", stage.clone());
    }
    if !spec.platforms.is_empty() {
        push("--platform", spec.platforms.join(","));
    }
    for (key, value) in &spec.build_args {
        push("--build-arg", format!("{key}={value}"));
    }
    for (key, value) in &spec.target.labels {
        push("--label", format!("{key}={value}"));
    }
    for tag in &spec.tags {
        push("--tag", tag.clone());
    }
    for secret in &spec.secrets {
        push("--secret", secret.clone());
    }
    if let Some(network) = spec.network {
        push("--network", network.to_owned());
    }
    if spec.no_cache {
        args.push("--no-cache".to_owned());
    }
}

struct Buildx {
    docker: PathBuf,
}

impl Backend for Buildx {
    fn kind(&self) -> BackendKind {
        BackendKind::Buildx
    }

    fn builds_multi_platform(&self) -> bool {
        true
    }

    fn build(&self, spec: &BuildSpec<'_>) -> Invocation {
        let mut args = vec![
            self.docker.display().to_string(),
            "buildx".to_owned(),
            "build".to_owned(),
        ];
        if let Some(builder) = &spec.target.builder {
            args.extend(["--builder".to_owned(), builder.clone()]);
        }
        common_args(spec, &mut args);
        for value in &spec.target.cache_from {
            args.extend(["--cache-from".to_owned(), value.clone()]);
        }
        for value in &spec.target.cache_to {
            args.extend(["--cache-to".to_owned(), value.clone()]);
        }
        args.extend([
            "--metadata-file".to_owned(),
            spec.output_file.display().to_string(),
        ]);
        if spec.push {
            args.push("--push".to_owned());
        } else if spec.load {
            args.push("--load".to_owned());
        }
        args.push(spec.target.context.display().to_string());
        Invocation {
            step: "build".to_owned(),
            argv: args,
            env: vec![(
                "SOURCE_DATE_EPOCH".to_owned(),
                spec.source_date_epoch.to_string(),
            )],
            digest: if spec.push {
                DigestSource::MetadataFile(spec.output_file.clone())
            } else {
                DigestSource::None
            },
            platform: None,
        }
    }

    fn push(&self, _reference: &str, _digest_file: &Path) -> Option<Invocation> {
        None
    }
}

struct Buildkit {
    docker: PathBuf,
}

impl Backend for Buildkit {
    fn kind(&self) -> BackendKind {
        BackendKind::Buildkit
    }

    fn builds_multi_platform(&self) -> bool {
        false
    }

    fn build(&self, spec: &BuildSpec<'_>) -> Invocation {
        let mut args = vec![self.docker.display().to_string(), "build".to_owned()];
        let mut spec_args = spec.build_args.clone();
        if spec.target.cache_to.iter().any(|v| v == "type=inline") {
            spec_args.insert("BUILDKIT_INLINE_CACHE".to_owned(), "1".to_owned());
        }
        let spec = BuildSpec {
            build_args: spec_args,
            ..clone_spec(spec)
        };
        common_args(&spec, &mut args);
        for value in &spec.target.cache_from {
            if let Some(reference) = registry_cache_ref(value) {
                args.extend(["--cache-from".to_owned(), reference]);
            }
        }
        args.extend([
            "--iidfile".to_owned(),
            spec.output_file.display().to_string(),
        ]);
        args.push(spec.target.context.display().to_string());
        Invocation {
            step: "build".to_owned(),
            argv: args,
            env: vec![
                ("DOCKER_BUILDKIT".to_owned(), "1".to_owned()),
                (
                    "SOURCE_DATE_EPOCH".to_owned(),
                    spec.source_date_epoch.to_string(),
                ),
            ],
            digest: DigestSource::None,
            platform: None,
        }
    }

    fn push(&self, reference: &str, _digest_file: &Path) -> Option<Invocation> {
        Some(Invocation {
            step: format!("push {reference}"),
            argv: vec![
                self.docker.display().to_string(),
                "push".to_owned(),
                reference.to_owned(),
            ],
            env: Vec::new(),
            digest: DigestSource::PushOutput,
            platform: None,
        })
    }
}

struct Buildah {
    buildah: PathBuf,
    /// The registry flags: a registry Slipway speaks plain HTTP to is one
    /// buildah must be told may be plain HTTP.
    registry: slipway_registry::RegistryOptions,
}

impl Buildah {
    /// `--tls-verify=false` for a registry spoken to in plain HTTP (a
    /// loopback one without a certs.d directory, or one named by
    /// `--plain-http`/`--plain-http-registry`): buildah, unlike docker,
    /// allows plain HTTP only when told, and the telling also turns off
    /// its certificate checks for that registry.
    fn tls_verify_flag(&self, registry: &str) -> Option<String> {
        self.registry
            .is_plain_http(registry)
            .then(|| "--tls-verify=false".to_owned())
    }
}

impl Backend for Buildah {
    fn kind(&self) -> BackendKind {
        BackendKind::Buildah
    }

    fn builds_multi_platform(&self) -> bool {
        false
    }

    fn build(&self, spec: &BuildSpec<'_>) -> Invocation {
        let mut args = vec![self.buildah.display().to_string(), "bud".to_owned()];
        // Base images (a dependency's pushed reference) are pulled from the
        // image's own registry.
        args.extend(self.tls_verify_flag(spec.target.repo.registry()));
        common_args(spec, &mut args);
        if let Some(ignore) = spec.target.build_file.ignore_copy() {
            // BuildKit finds `<Dockerfile>.dockerignore` beside the Dockerfile
            // by itself; buildah is told.
            args.extend(["--ignorefile".to_owned(), ignore.display().to_string()]);
        }
        // Every timestamp in the image (created, history, file times) is
        // the commit's: a rerun at one commit gives the same layers.
        args.extend(["--timestamp".to_owned(), spec.source_date_epoch.to_string()]);
        let cache_from: Vec<String> = spec
            .target
            .cache_from
            .iter()
            .filter_map(|v| registry_cache_ref(v))
            .collect();
        let cache_to: Vec<String> = spec
            .target
            .cache_to
            .iter()
            .filter_map(|v| registry_cache_ref(v))
            .collect();
        if !cache_from.is_empty() || !cache_to.is_empty() {
            // buildah caches only with `--layers`.
            args.push("--layers".to_owned());
        }
        for reference in cache_from {
            args.extend(["--cache-from".to_owned(), reference]);
        }
        for reference in cache_to {
            args.extend(["--cache-to".to_owned(), reference]);
        }
        args.extend([
            "--iidfile".to_owned(),
            spec.output_file.display().to_string(),
        ]);
        args.push(spec.target.context.display().to_string());
        Invocation {
            step: "build".to_owned(),
            argv: args,
            env: Vec::new(),
            digest: DigestSource::None,
            platform: None,
        }
    }

    fn push(&self, reference: &str, digest_file: &Path) -> Option<Invocation> {
        let mut argv = vec![self.buildah.display().to_string(), "push".to_owned()];
        let host = reference.split('/').next().unwrap_or_default();
        argv.extend(self.tls_verify_flag(host));
        argv.extend([
            "--digestfile".to_owned(),
            digest_file.display().to_string(),
            reference.to_owned(),
            format!("docker://{reference}"),
        ]);
        Some(Invocation {
            step: format!("push {reference}"),
            argv,
            env: Vec::new(),
            digest: DigestSource::DigestFile(digest_file.to_owned()),
            platform: None,
        })
    }
}

fn clone_spec<'a>(spec: &BuildSpec<'a>) -> BuildSpec<'a> {
    BuildSpec {
        target: spec.target,
        platforms: spec.platforms.clone(),
        tags: spec.tags.clone(),
        build_args: spec.build_args.clone(),
        secrets: spec.secrets.clone(),
        network: spec.network,
        push: spec.push,
        load: spec.load,
        output_file: spec.output_file.clone(),
        source_date_epoch: spec.source_date_epoch,
        no_cache: spec.no_cache,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(value: &str, expected: Option<&str>) {
        assert_eq!(registry_cache_ref(value).as_deref(), expected, "`{value}`");
    }

    #[test]
    fn registry_cache_values_give_their_reference() {
        check("type=registry,ref=r/cache:app", Some("r/cache:app"));
        check("r/cache:app", Some("r/cache:app"));
    }

    #[test]
    fn other_cache_types_have_no_reference() {
        check("type=gha,scope=app", None);
        check("type=local,src=/tmp/c", None);
        check("type=inline", None);
    }
}
