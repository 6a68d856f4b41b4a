//! Flags and slipway.toml turned into a checked plan: which images, in what
//! order, with which tags, labels, build args, secrets and cache, built by
//! which backend. Nothing here runs a build; everything a build needs is
//! decided and validated here first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use slipway_config::{Config, Platform, SecretSource};
use slipway_core::cli::{ExitStatus as _, UsageError};
use slipway_core::image_ref::{Repository, Tag};
use slipway_tags::ImageSpec;
use slipway_tags::context::{ContextInputs, gather};

use crate::backend::BackendKind;
use crate::cli::Cli;
use crate::dockerfile::{DOCKERFILE_LABEL, Dockerfile};

/// Everything a run will do, decided before anything runs.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) backend: BackendKind,
    /// Why this backend (`--backend buildah`, or what detection found).
    pub(crate) backend_reason: String,
    pub(crate) docker: PathBuf,
    pub(crate) buildah: PathBuf,
    /// The images, in build order (each after what it depends on).
    pub(crate) targets: Vec<Target>,
    pub(crate) push: bool,
    pub(crate) load: bool,
    pub(crate) jobs: usize,
    pub(crate) fail_fast: bool,
    pub(crate) network: Option<String>,
    /// The full commit sha, with `-dirty` when the tree has uncommitted changes.
    pub(crate) revision: String,
    /// `SOURCE_DATE_EPOCH` for the builds: the environment's, else the commit's time.
    pub(crate) source_date_epoch: i64,
    /// `--no-cache`: no cache values, and the builder told so.
    pub(crate) no_cache: bool,
    /// What the plan left out and the user should know (cache values the backend cannot use).
    pub(crate) notices: Vec<String>,
    pub(crate) log_dir: PathBuf,
    /// How Slipway's own registry calls (index push, freshness, tag holds,
    /// verification) reach each registry.
    pub(crate) registry: slipway_registry::RegistryOptions,
}

/// One image to build.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) repository: String,
    pub(crate) repo: Repository,
    /// Every tag, as a full reference (`repo:tag`), the first one main.
    pub(crate) tags: Vec<String>,
    pub(crate) tag_names: Vec<Tag>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) build_args: BTreeMap<String, String>,
    pub(crate) platforms: Vec<String>,
    pub(crate) platform_values: Vec<Platform>,
    /// The images of this run it waits for.
    pub(crate) depends_on: Vec<String>,
    /// The build arg that receives the first dependency's built reference, and that dependency.
    pub(crate) dependency_arg: Option<DependencyArg>,
    pub(crate) context: PathBuf,
    pub(crate) dockerfile: PathBuf,
    /// The Dockerfile's bytes, their sha256 and the copy the builder reads.
    pub(crate) build_file: Dockerfile,
    pub(crate) stage: Option<String>,
    pub(crate) cache_from: Vec<String>,
    pub(crate) cache_to: Vec<String>,
    /// Secrets as `id=…,env=…` or `id=…,src=…`: where the value is, never the value.
    pub(crate) secrets: Vec<String>,
    /// Each secret's id and source: a variable checked to be set, or a file
    /// checked to exist, resolved against the config's root.
    pub(crate) secret_sources: Vec<(String, SecretSource)>,
    /// The buildx builder it is built on (`--builder`, else slipway.toml's
    /// `builder`); `None` is the client's current builder.
    pub(crate) builder: Option<String>,
}

pub(crate) use slipway_contract::img_build::DependencyArg;

impl Plan {
    /// The target called `name`.
    pub(crate) fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// Builds and checks the plan, choosing the backend for the selected
/// images (a buildx builder needs buildx). `env` is the process environment.
pub(crate) fn plan(
    cli: &Cli,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> anyhow::Result<Plan> {
    let names = selected(cli, config, cwd)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let order = config.build_order(&refs)?;
    let builder_reason = match &cli.builder {
        Some(builder) => Some(format!("`--builder {builder}`")),
        None => order.iter().find_map(|name| {
            let builder = config.image(name).ok()?.builder.as_ref()?;
            Some(format!(
                "`builder = \"{builder}\"` of image `{name}` in slipway.toml"
            ))
        }),
    };
    let backend = crate::backend::choose(
        cli.backend,
        &cli.docker,
        &cli.buildah,
        builder_reason.as_deref(),
    )?;

    let (rules, flavor) =
        slipway_tags::rules_and_flavor(&cli.tags, &cli.flavors, Some(&config.tags))
            .map_err(UsageError::new)?;
    let inputs = ContextInputs {
        git_ref: cli.git_ref.clone(),
        ..ContextInputs::default()
    };
    let ci = slipway_core::ci::CiContext::from_env_or_github_variables(env)?;
    let ctx = gather(
        &inputs,
        &ci,
        env,
        &config.root,
        Some(config.project.default_branch.clone()),
    )
    .map_err(|error| {
        // Bad input stands alone; a failed read says what it was for.
        if error.exit_code() == Some(slipway_core::cli::exit::USAGE) {
            anyhow::Error::new(error)
        } else {
            anyhow::Error::new(error).context("cannot gather the facts tags are computed from")
        }
    })?;
    let revision = revision(config, &ctx.sha, cli.require_clean)?;
    // Same as BuildKit and buildah's reproducible builds: timestamps come
    // from `SOURCE_DATE_EPOCH`, which defaults to the commit's time, so a
    // rerun at one commit labels (and, where the builder allows, builds)
    // the same image.
    let source_date_epoch = if env("SOURCE_DATE_EPOCH").is_some() {
        ctx.now.as_second()
    } else {
        ctx.commit_date.as_second()
    };
    let created = jiff::Timestamp::from_second(source_date_epoch)
        .unwrap_or(ctx.now)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let log_dir = match &cli.log_dir {
        Some(dir) => cwd.join(dir),
        None => std::env::temp_dir().join(format!(
            "img-build-{}-{}",
            config.project.name,
            std::process::id()
        )),
    };

    let mut targets = Vec::new();
    for name in &order {
        let image = config.image(name)?;
        let repo = image.repository().clone();
        let specs = ImageSpec::parse_all(&[repo.to_string()])
            .map_err(|e| UsageError::new(format!("invalid repository of `{name}`: {e}")))?;
        let meta = slipway_tags::compute(&rules, &flavor, &specs, &ctx)
            .map_err(|e| UsageError::new(format!("cannot compute the tags of `{name}`: {e}")))?;
        if meta.tags.is_empty() {
            return Err(UsageError::new(format!(
                "the tag rules give image `{name}` no tag for ref `{}`: add a rule that always applies, e.g. `--tag type=sha`",
                ctx.git_ref
            )));
        }
        let prefix = format!("{repo}:");
        let tag_names = meta
            .tags
            .iter()
            .map(|full| {
                let bare = full.strip_prefix(&prefix).unwrap_or(full);
                bare.parse::<Tag>()
                    .map_err(|e| UsageError::new(format!("invalid tag `{bare}` for `{name}`: {e}")))
            })
            .collect::<anyhow::Result<Vec<Tag>>>()?;
        let tags = tag_names.iter().map(|t| format!("{repo}:{t}")).collect();

        let mut labels: BTreeMap<String, String> = meta
            .labels
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .collect();
        labels.insert(
            "org.opencontainers.image.created".to_owned(),
            created.clone(),
        );
        labels.insert("org.opencontainers.image.title".to_owned(), name.clone());
        let version = meta
            .version
            .clone()
            .unwrap_or_else(|| revision.chars().take(7).collect());
        labels.insert("org.opencontainers.image.version".to_owned(), version);
        if let Some(source) = &config.project.source {
            labels.insert("org.opencontainers.image.source".to_owned(), source.clone());
        }
        labels.extend(image.labels.clone());
        // The stale check compares this label with HEAD: nothing may override it.
        labels.insert(slipway_stale::REVISION_LABEL.to_owned(), revision.clone());

        let depends_on: Vec<String> = image
            .depends_on
            .iter()
            .filter(|d| order.contains(d))
            .cloned()
            .collect();
        let dependency_arg = image.depends_on.first().and_then(|first| {
            if order.contains(first) {
                Some(DependencyArg {
                    arg: image.depends_on_arg.clone(),
                    image: first.clone(),
                })
            } else {
                tracing::debug!(image = %name, dependency = %first, "dependency not built in this run; the Dockerfile's default applies");
                None
            }
        });

        let mut secret_sources = Vec::new();
        for secret in &image.secrets {
            let source = match &secret.source {
                SecretSource::Env(var) => {
                    let Some(value) = env(var) else {
                        return Err(UsageError::new(format!(
                            "secret `{}` of image `{name}` reads ${var}, which is not set",
                            secret.id
                        )));
                    };
                    slipway_core::secret::check_len(
                        &value,
                        &format!("secret `{}` of image `{name}` (${var})", secret.id),
                    )
                    .map_err(|e| UsageError::new(e.to_string()))?;
                    SecretSource::Env(var.clone())
                }
                SecretSource::File(path) => {
                    let path = config.resolve(path);
                    if !path.is_file() {
                        return Err(UsageError::new(format!(
                            "secret `{}` of image `{name}` reads `{}`, which is not a file",
                            secret.id,
                            path.display()
                        )));
                    }
                    // Read once, capped, so that a runaway file fails here
                    // (the run reads it again to redact it from logs).
                    let value = slipway_core::input::read(&path).map_err(|e| {
                        UsageError::new(format!(
                            "cannot read secret `{}` of image `{name}`: {e}",
                            secret.id
                        ))
                    })?;
                    slipway_core::secret::check_len(
                        &String::from_utf8_lossy(&value),
                        &format!(
                            "secret `{}` of image `{name}` (`{}`)",
                            secret.id,
                            path.display()
                        ),
                    )
                    .map_err(|e| UsageError::new(e.to_string()))?;
                    SecretSource::File(path)
                }
            };
            secret_sources.push((secret.id.clone(), source));
        }

        // `components` drops the `.` of a context of `.`, for readable commands.
        let context: PathBuf = config.resolve(&image.context).components().collect();
        let dockerfile: PathBuf = config.resolve(&image.dockerfile).components().collect();
        if !dockerfile.is_file() {
            return Err(UsageError::new(format!(
                "the Dockerfile of image `{name}` does not exist: `{}` (set `dockerfile` in [images.{name}] at {})",
                dockerfile.display(),
                image.at
            )));
        }
        let build_file =
            Dockerfile::read(&dockerfile, &log_dir.join("dockerfiles")).map_err(|e| {
                UsageError::new(format!(
                    "cannot read the Dockerfile of image `{name}`: {e:#}"
                ))
            })?;
        // Proof of which Dockerfile the image was built from, checked after
        // each build; like the revision, nothing overrides it.
        labels.insert(DOCKERFILE_LABEL.to_owned(), build_file.sha256.clone());
        check_from_args(
            config,
            name,
            &build_file,
            image.target.as_deref(),
            &image.build_args,
            dependency_arg.as_ref(),
            &order,
        )?;
        targets.push(Target {
            name: name.clone(),
            repository: repo.to_string(),
            repo,
            tags,
            tag_names,
            labels,
            build_args: image.build_args.clone(),
            platforms: image.platforms.iter().map(ToString::to_string).collect(),
            platform_values: image.platforms.clone(),
            depends_on,
            dependency_arg,
            context,
            dockerfile,
            build_file,
            stage: image.target.clone(),
            cache_from: scoped_cache(
                cache_values(cli.no_cache, &cli.cache_from, &image.cache_from),
                name,
            ),
            cache_to: scoped_cache(
                cache_values(cli.no_cache, &cli.cache_to, &image.cache_to),
                name,
            ),
            secrets: image.secrets.iter().map(ToString::to_string).collect(),
            secret_sources,
            builder: cli.builder.clone().or_else(|| image.builder.clone()),
        });
    }

    let jobs = match cli.jobs {
        Some(jobs) => usize::from(jobs),
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let mut notices = Vec::new();
    for target in &mut targets {
        notices.extend(crate::backend::fit_cache(backend.0, target));
    }
    let plan = Plan {
        backend: backend.0,
        backend_reason: backend.1,
        docker: cli.docker.clone(),
        buildah: cli.buildah.clone(),
        targets,
        push: cli.push,
        load: cli.load,
        jobs,
        fail_fast: cli.fail_fast,
        network: cli.network.clone(),
        revision,
        source_date_epoch,
        log_dir,
        no_cache: cli.no_cache,
        notices,
        registry: slipway_registry::RegistryOptions::for_tool("img-build", &cli.registry),
    };
    crate::backend::validate(&plan)?;
    Ok(plan)
}

/// Refuses, at plan time, a target whose `FROM` would name no image: a
/// global `ARG` it uses has no default and gets no value in this run.
fn check_from_args(
    config: &Config,
    name: &str,
    dockerfile: &Dockerfile,
    stage: Option<&str>,
    build_args: &BTreeMap<String, String>,
    dependency_arg: Option<&DependencyArg>,
    order: &[String],
) -> anyhow::Result<()> {
    let image = config.image(name)?;
    let shown = dockerfile
        .original
        .strip_prefix(&config.root)
        .unwrap_or(&dockerfile.original)
        .display()
        .to_string();
    for arg in crate::dockerfile::from_args(&dockerfile.text(), stage) {
        let has_value = arg.default.as_deref().is_some_and(|d| !d.is_empty())
            || build_args.get(&arg.name).is_some_and(|v| !v.is_empty())
            || dependency_arg.is_some_and(|d| d.arg == arg.name);
        if has_value {
            continue;
        }
        let fix = format!(
            "give it a default (`ARG {arg_name}=…` in `{shown}`) or a value (`build_args = {{ {arg_name} = \"…\" }}` in [images.{name}])",
            arg_name = arg.name
        );
        let dependency = image
            .depends_on
            .first()
            .filter(|d| image.depends_on_arg == arg.name && !order.contains(d));
        let message = match dependency {
            Some(dependency) => format!(
                "image `{name}` cannot be built without `{dependency}`: `{}` at `{shown}:{}` uses `ARG {}`, which has no default and is set to `{dependency}`'s reference only when `{dependency}` is built in the same run; build it too (`--only {dependency},{name}`), or {fix}",
                arg.from, arg.line, arg.name
            ),
            None => format!(
                "image `{name}` has no base image: `{}` at `{shown}:{}` uses `ARG {}`, which has no default and no value: {fix}",
                arg.from, arg.line, arg.name
            ),
        };
        return Err(UsageError::new(message));
    }
    Ok(())
}

/// The image names the flags select, before ordering.
fn selected(cli: &Cli, config: &Config, cwd: &Path) -> anyhow::Result<Vec<String>> {
    if !cli.only.is_empty() {
        let names: Vec<String> = cli.only.iter().map(|n| n.trim().to_owned()).collect();
        if names.iter().any(String::is_empty) {
            return Err(UsageError::new(format!(
                "invalid `--only {}`: an image name is empty",
                cli.only.join(",")
            )));
        }
        return Ok(names);
    }
    if let Some(path) = &cli.targets_from {
        return targets_from(path, cwd);
    }
    if cli.all {
        // `default = false` images are built only when named (`--only`).
        let defaults = config.default_images();
        for name in config.images.keys().filter(|n| !defaults.contains(*n)) {
            tracing::info!(image = %name, "`default = false`: not part of `--all`; build it with `--only {name}`");
        }
        return Ok(defaults.into_iter().collect());
    }
    Err(UsageError::new(
        "choose the images to build: `--only NAMES`, `--all`, or `--targets-from FILE` (changed-paths' JSON)",
    ))
}

/// The `targets` list of changed-paths' JSON report, from a file or stdin (`-`).
fn targets_from(path: &Path, cwd: &Path) -> anyhow::Result<Vec<String>> {
    let (shown, text) = if path == Path::new("-") {
        let text = slipway_core::input::read_stdin_to_string().map_err(|e| {
            UsageError::new(format!("invalid `--targets-from`: cannot read stdin: {e}"))
        })?;
        ("stdin".to_owned(), text)
    } else {
        let path = cwd.join(path);
        let text = slipway_core::input::read_to_string(&path)
            .map_err(|e| UsageError::new(format!("invalid `--targets-from`: {e}")))?;
        (format!("`{}`", path.display()), text)
    };
    let report: slipway_contract::changed_paths::Targets = serde_json::from_str(&text)
        .map_err(|e| {
            if e.is_data() {
                UsageError::new(format!(
                    "invalid `--targets-from`: {shown} has no `targets` list of image names ({e}); expected changed-paths' `--format json` report, e.g. {{\"targets\": [\"app\"]}}"
                ))
            } else {
                UsageError::new(format!(
                    "invalid `--targets-from`: {shown} is not JSON ({e}); expected changed-paths' `--format json` report"
                ))
            }
        })?;
    Ok(report.targets)
}

/// The revision label: HEAD's full sha (with `-dirty` for uncommitted
/// changes), else a full sha from the environment when there is no git.
fn revision(config: &Config, ctx_sha: &str, require_clean: bool) -> anyhow::Result<String> {
    match slipway_git::Repo::discover(&config.root) {
        Ok(repo) => {
            let facts = slipway_git::GitFacts::collect(&repo)
                .context("cannot read HEAD's commit and whether the tree is clean")?;
            if facts.is_dirty {
                if require_clean {
                    return Err(UsageError::new(format!(
                        "the working tree at `{}` has uncommitted changes and `--require-clean` is given: commit or stash them",
                        repo.workdir().display()
                    )));
                }
                tracing::warn!(sha = %facts.sha, "the working tree has uncommitted changes; the revision label says `-dirty`");
                return Ok(format!("{}-dirty", facts.sha));
            }
            Ok(facts.sha.to_string())
        }
        Err(error) if ctx_sha.len() == 40 => {
            tracing::debug!(%error, "no git repository; the revision comes from the environment");
            Ok(ctx_sha.to_owned())
        }
        Err(error) => Err(anyhow::Error::new(error).context(format!(
            "cannot tell the commit images are built from: `{}` is not in a git repository and $GITHUB_SHA is not a full sha",
            config.root.display()
        ))),
    }
}

/// The cache values of one image: none with `--no-cache`, the flags' when
/// given (they win over slipway.toml), else slipway.toml's.
fn cache_values<'a>(no_cache: bool, flags: &'a [String], config: &'a [String]) -> &'a [String] {
    match (no_cache, flags.is_empty()) {
        (true, _) => &[],
        (false, false) => flags,
        (false, true) => config,
    }
}

/// Same as docker/build-push-action's advice: each image gets its own gha
/// cache scope, else images overwrite each other's cache.
fn scoped_cache(values: &[String], name: &str) -> Vec<String> {
    values
        .iter()
        .map(|value| {
            let is_gha = value.split(',').any(|field| field == "type=gha");
            let has_scope = value.split(',').any(|field| field.starts_with("scope="));
            if is_gha && !has_scope {
                format!("{value},scope={name}")
            } else {
                value.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(values: &[&str], name: &str, expected: &[&str]) {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        assert_eq!(scoped_cache(&values, name), expected);
        assert_eq!(cache_values(true, &values, &values), [] as [String; 0]);
    }

    #[test]
    fn gha_cache_gets_a_scope_per_image() {
        check(
            &["type=gha,mode=max"],
            "app",
            &["type=gha,mode=max,scope=app"],
        );
    }

    #[test]
    fn an_explicit_gha_scope_is_kept() {
        check(
            &["type=gha,scope=shared"],
            "app",
            &["type=gha,scope=shared"],
        );
    }

    #[test]
    fn other_cache_types_are_verbatim() {
        check(
            &["type=inline", "type=registry,ref=r/c:app"],
            "app",
            &["type=inline", "type=registry,ref=r/c:app"],
        );
    }
}
