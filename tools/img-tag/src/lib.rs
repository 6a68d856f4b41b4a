//! `img-tag`: compute image tags the way docker/metadata-action does, the
//! next version from Conventional Commits, and apply tags or promote images
//! in registries without moving layers through this machine.
//!
//! Flags -> plan -> work: every rule, flavor, image line, reference and
//! credential is parsed and checked before anything is computed or any
//! registry is changed.

mod apply;
mod cli;
mod context;
mod history;
mod promote;
mod remote;

use anyhow::Context as _;
use slipway_config::Config;
use slipway_core::cli::{UsageError, exit};
use slipway_core::image_ref::{Repository, Tag};
use slipway_core::output::{Output, Style, escape_control, escape_lines};
use slipway_tags::ImageSpec;
use slipway_tags::version::{self, Bump, ChangelogEntry, KNOWN_TYPES};

pub use cli::{
    ApplyArgs, CheckCommitArgs, Cli, Command, ComputeArgs, ContextArgs, LsArgs, NextVersionArgs,
    PromoteArgs, ReferrersArgs, RegistryArgs, ResolveArgs,
};
pub use slipway_contract::img_tag::{
    ApplyReport, CheckCommitReport, ComputeReport, LsReport, NextVersionReport, PromoteReport,
    ReferrerEntry, ReferrersReport, ResolveReport, TagChange,
};

/// What a run of `img-tag` reports.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Report {
    /// `compute`: tags, labels and version.
    Compute(ComputeReport),
    /// `next-version`.
    NextVersion {
        /// What is printed.
        #[serde(flatten)]
        report: NextVersionReport,
        /// `--exit-code`: exit 1 when there is nothing to release.
        #[serde(skip)]
        exit_code: bool,
    },
    /// `check-commit`.
    CheckCommit(CheckCommitReport),
    /// `apply`.
    Apply(ApplyReport),
    /// `promote`.
    Promote(PromoteReport),
    /// `referrers`.
    Referrers(ReferrersReport),
    /// `resolve`.
    Resolve(ResolveReport),
    /// `ls`.
    Ls(LsReport),
}

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        match self {
            Report::Compute(report) => report
                .tags
                .iter()
                .map(|tag| format!("{}\n", escape_control(tag)))
                .collect(),
            // Commit subjects are outside text: a CR, an ESC or a line
            // starting with `::` is shown escaped.
            Report::NextVersion { report, .. } => match &report.changelog {
                Some(changelog) => escape_lines(changelog, false),
                None => format!("{}\n", report.version),
            },
            Report::CheckCommit(report) => match (&report.error, &report.commit, report.bump) {
                (Some(error), _, _) => {
                    format!("{}: {}\n", style.error("invalid"), escape_control(error))
                }
                (None, Some(commit), Some(bump)) => {
                    format!(
                        "{}: `{}` commit, bump {bump}\n",
                        style.ok("ok"),
                        escape_control(&commit.kind)
                    )
                }
                _ => String::new(),
            },
            Report::Apply(report) => {
                let repository = apply::repository_of(report);
                report
                    .tags
                    .iter()
                    .map(|change| {
                        let verb = match (change.changed, report.dry_run) {
                            (false, _) => "unchanged",
                            (true, true) => "would set",
                            (true, false) => "set",
                        };
                        let from = change
                            .previous_digest
                            .as_deref()
                            .filter(|_| change.changed)
                            .map(|digest| format!(" (was {digest})"))
                            .unwrap_or_default();
                        format!(
                            "{verb} {}:{} -> {}{from}\n",
                            repository, change.tag, report.digest
                        )
                    })
                    .collect()
            }
            Report::Promote(report) => format!(
                "{}{} -> {} {}\nblobs: {} mounted, {} copied ({} bytes), {} skipped\n{}",
                if report.dry_run {
                    "would promote "
                } else {
                    "promoted "
                },
                report.source,
                report.destination,
                report.digest,
                report.blobs_mounted,
                report.blobs_copied,
                report.bytes_copied,
                report.blobs_skipped,
                if report.referrers_copied > 0 {
                    format!(
                        "referrers: {} copied, {} referrers tag(s) updated\n",
                        report.referrers_copied, report.referrer_tags_updated
                    )
                } else {
                    String::new()
                }
            ),
            // Artifact types come from the registry: shown escaped.
            Report::Referrers(report) => report
                .referrers
                .iter()
                .map(|referrer| {
                    format!(
                        "{} {} {} bytes\n",
                        referrer.digest,
                        escape_control(referrer.artifact_type.as_deref().unwrap_or("-")),
                        referrer.size
                    )
                })
                .collect(),
            Report::Resolve(report) => format!("{}\n", report.digest),
            // Tag names come from the registry: a hostile one is shown escaped.
            Report::Ls(report) => report
                .tags
                .iter()
                .map(|tag| format!("{}\n", escape_control(tag)))
                .collect(),
        }
    }

    fn outputs(&self) -> Vec<(String, String)> {
        let json = serde_json::to_string(self).unwrap_or_default();
        match self {
            Report::Compute(report) => vec![
                ("tags".to_owned(), report.tags.join("\n")),
                (
                    "labels".to_owned(),
                    report
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                ("tag-names".to_owned(), report.tag_names.join("\n")),
                ("annotations".to_owned(), report.annotations.join("\n")),
                (
                    "version".to_owned(),
                    report.version.clone().unwrap_or_default(),
                ),
                ("json".to_owned(), json),
            ],
            Report::NextVersion { report, .. } => {
                let mut outputs = vec![
                    ("version".to_owned(), report.version.clone()),
                    ("has_release".to_owned(), report.has_release.to_string()),
                    (
                        "previous".to_owned(),
                        report.previous.clone().unwrap_or_default(),
                    ),
                    ("bump".to_owned(), report.bump.to_string()),
                ];
                if let Some(changelog) = &report.changelog {
                    outputs.push(("changelog".to_owned(), changelog.clone()));
                }
                outputs
            }
            Report::CheckCommit(report) => vec![("valid".to_owned(), report.valid.to_string())],
            Report::Apply(report) => vec![
                ("digest".to_owned(), report.digest.clone()),
                (
                    "tags".to_owned(),
                    report
                        .tags
                        .iter()
                        .map(|c| c.tag.clone())
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                ("json".to_owned(), json),
            ],
            Report::Promote(report) => vec![
                ("digest".to_owned(), report.digest.clone()),
                ("destination".to_owned(), report.destination.clone()),
                ("json".to_owned(), json),
            ],
            Report::Referrers(report) => vec![
                (
                    "referrers".to_owned(),
                    report
                        .referrers
                        .iter()
                        .map(|r| r.digest.clone())
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                ("json".to_owned(), json),
            ],
            Report::Resolve(report) => vec![("digest".to_owned(), report.digest.clone())],
            Report::Ls(report) => vec![("tags".to_owned(), report.tags.join("\n"))],
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Report::CheckCommit(report) if !report.valid => exit::NO,
            Report::NextVersion {
                report,
                exit_code: true,
            } if !report.has_release => exit::NO,
            _ => exit::SUCCESS,
        }
    }
}

/// Runs `img-tag`.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    match cli.command {
        Command::Compute(args) => {
            let config = Config::locate_optional(cli.global.config.as_deref(), &cwd)?;
            compute(
                &args,
                config.as_ref(),
                &|name| std::env::var(name).ok(),
                &cwd,
            )
            .map(Report::Compute)
        }
        Command::NextVersion(args) => {
            let ci = slipway_core::ci::CiContext::detect().map_err(anyhow::Error::new)?;
            next_version(&args, &ci, &cwd).map(|report| Report::NextVersion {
                report,
                exit_code: args.exit_code,
            })
        }
        Command::CheckCommit(args) => check_commit(&args).map(Report::CheckCommit),
        Command::Apply(args) => {
            // The plan first: computed tags are worked out (and checked)
            // before the registry is touched.
            let tags = if args.tags.is_empty() {
                let config = Config::locate_optional(cli.global.config.as_deref(), &cwd)?;
                computed_tags(&args, config.as_ref(), &cwd)?
            } else {
                args.tags.clone()
            };
            let client = remote::client(&args.registry, &[args.image.repository()], out)?;
            remote::block_on(apply::apply(&client, &args.image, &tags, args.dry_run))
                .map(Report::Apply)
        }
        Command::Promote(args) => {
            if args.destination.digest().is_some() {
                return Err(UsageError::new(format!(
                    "invalid DESTINATION `{}`: give a repository or `repository:tag`, not a digest (the digest is the source's)",
                    args.destination
                )));
            }
            let destination = match (args.destination.tag(), args.source.tag()) {
                (None, Some(tag)) => args.destination.clone().with_tag(tag.clone()),
                _ => args.destination.clone(),
            };
            let client = remote::promote_client(
                &args.registry,
                &args.sides,
                args.source.repository(),
                destination.repository(),
                out,
            )?;
            remote::block_on(promote::promote(
                &client,
                &args.source,
                &destination,
                args.dry_run,
                !args.no_referrers,
                &out.progress(),
            ))
            .map(Report::Promote)
        }
        Command::Referrers(args) => {
            let client = remote::client(&args.registry, &[args.image.repository()], out)?;
            remote::block_on(list_referrers(&client, &args)).map(Report::Referrers)
        }
        Command::Resolve(args) => {
            let client = remote::client(&args.registry, &[args.image.repository()], out)?;
            let digest = remote::block_on(async {
                client
                    .resolve(&args.image)
                    .await
                    .with_context(|| format!("cannot resolve `{}`", args.image))
            })?
            .with_context(|| format!("`{}` does not exist", args.image))?;
            Ok(Report::Resolve(ResolveReport {
                image: args.image.to_string(),
                digest: digest.to_string(),
            }))
        }
        Command::Ls(args) => {
            let client = remote::client(&args.registry, &[&args.repository], out)?;
            let mut tags = remote::block_on(async {
                client
                    .list_tags(&args.repository)
                    .await
                    .with_context(|| format!("cannot list the tags of `{}`", args.repository))
            })?;
            tags.sort();
            Ok(Report::Ls(LsReport {
                repository: args.repository.to_string(),
                tags,
            }))
        }
    }
}

/// `img-tag referrers`: the referrers of the digest `args.image` names.
async fn list_referrers(
    client: &slipway_registry::RegistryClient,
    args: &ReferrersArgs,
) -> anyhow::Result<ReferrersReport> {
    let image = &args.image;
    let digest = match image.digest() {
        Some(digest) => digest.clone(),
        None => client
            .resolve(image)
            .await
            .with_context(|| format!("cannot resolve `{image}`"))?
            .with_context(|| format!("`{image}` does not exist"))?,
    };
    let (listed, source) = client
        .list_referrers(image.repository(), &digest)
        .await
        .with_context(|| format!("cannot list the referrers of `{image}`"))?;
    let referrers = listed
        .into_iter()
        .filter(|r| {
            args.artifact_type
                .as_ref()
                .is_none_or(|wanted| r.artifact_type.as_ref() == Some(wanted))
        })
        .map(|r| ReferrerEntry {
            digest: r.digest.to_string(),
            media_type: r.media_type,
            artifact_type: r.artifact_type,
            size: r.size,
            annotations: r.annotations,
        })
        .collect();
    Ok(ReferrersReport {
        image: image.to_string(),
        digest: digest.to_string(),
        source: source.as_str().to_owned(),
        referrers,
    })
}

fn compute(
    args: &ComputeArgs,
    config: Option<&Config>,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &std::path::Path,
) -> anyhow::Result<ComputeReport> {
    // The plan: every line parsed and checked before anything is computed.
    let (rules, flavor) =
        slipway_tags::rules_and_flavor(&args.tags, &args.flavors, config.map(|c| &c.tags))
            .map_err(UsageError::new)?;
    let images = ImageSpec::parse_all(&args.images)
        .map_err(|e| UsageError::new(format!("invalid `--image`: {e}")))?;
    // A name that is no repository would print tags nobody can push.
    for image in &images {
        image.name.parse::<Repository>().map_err(|e| {
            UsageError::new(format!(
                "invalid `--image` `{}`: {e}; expected a repository such as `ghcr.io/acme/app`",
                image.name
            ))
        })?;
    }
    let default_branch = config.map(|c| c.project.default_branch.clone());
    let ctx = context::tag_context(&args.context, env, cwd, default_branch)?;
    tracing::debug!(event = %ctx.event_name, git_ref = %ctx.git_ref, sha = %ctx.sha, default_branch = ?ctx.default_branch, "tag context");
    let meta = slipway_tags::compute(&rules, &flavor, &images, &ctx)?;
    let labels = slipway_tags::oci_annotations(meta.version.as_deref(), &args.labels, &ctx)
        .map_err(|e| UsageError::new(format!("invalid `--label`: {e}")))?;
    let annotations =
        slipway_tags::oci_annotations(meta.version.as_deref(), &args.annotations, &ctx)
            .map_err(|e| UsageError::new(format!("invalid `--annotation`: {e}")))?;
    // Same as metadata-action: `manifest` unless the variable names levels.
    let levels: Vec<String> = env("DOCKER_METADATA_ANNOTATIONS_LEVELS")
        .filter(|levels| !levels.is_empty())
        .unwrap_or_else(|| "manifest".to_owned())
        .split(',')
        .map(|level| level.trim().to_owned())
        .collect();
    Ok(ComputeReport {
        tags: meta.tags,
        tag_names: meta.tag_names,
        labels,
        annotations: slipway_tags::annotations_at_levels(&annotations, &levels),
        version: meta.version,
    })
}

/// `apply` without `--tag`: the tags `compute` would print for this
/// context, from `--rule`/`--flavor`, else slipway.toml's `[tags]`, else
/// metadata-action's defaults.
fn computed_tags(
    args: &ApplyArgs,
    config: Option<&Config>,
    cwd: &std::path::Path,
) -> anyhow::Result<Vec<Tag>> {
    let (rules, flavor) =
        slipway_tags::rules_and_flavor(&args.rules, &args.flavors, config.map(|c| &c.tags))
            .map_err(|e| UsageError::new(e.replace("`--tag`", "`--rule`")))?;
    let default_branch = config.map(|c| c.project.default_branch.clone());
    let ctx = context::tag_context(
        &args.context,
        &|name| std::env::var(name).ok(),
        cwd,
        default_branch,
    )?;
    let meta = slipway_tags::compute(&rules, &flavor, &[], &ctx)?;
    if meta.tag_names.is_empty() {
        return Err(UsageError::new(format!(
            "no rule yields a tag for ref `{}` (event `{}`): nothing to apply; give --tag, or rules that match (--rule, slipway.toml [tags] rules)",
            ctx.git_ref, ctx.event_name
        )));
    }
    meta.tag_names
        .iter()
        .map(|name| {
            name.parse::<Tag>().map_err(|e| {
                UsageError::new(format!("computed tag `{name}` is not a valid tag: {e}"))
            })
        })
        .collect()
}

fn next_version(
    args: &NextVersionArgs,
    ci: &slipway_core::ci::CiContext,
    cwd: &std::path::Path,
) -> anyhow::Result<NextVersionReport> {
    if let Some(id) = args
        .prerelease
        .as_ref()
        .filter(|id| semver::Prerelease::new(id).is_err() || id.is_empty() || id.contains('.'))
    {
        return Err(UsageError::new(format!(
            "invalid `--prerelease` `{id}`: expected one identifier of letters, digits and `-`, such as `dev`"
        )));
    }
    let label_bump = match &args.labels {
        Some(labels) => release_label_bump(labels)
            .map_err(|label| UsageError::new(format!("invalid `--labels`: {label}")))?,
        // A label on the pull request that is not a release label is none of
        // our business; only `release:*` ones are read.
        None => release_label_bump(&ci.pr_labels).unwrap_or(None),
    };
    let history = history::read(&cwd.join(&args.repo))?;
    let branch = branch_being_built(args.git_ref.as_deref(), ci, history.branch.as_deref());
    tracing::debug!(?branch, "branch for --prerelease-branch");
    let on_prerelease_branch = args.prerelease_branch.is_empty()
        || branch
            .as_ref()
            .is_some_and(|branch| args.prerelease_branch.contains(branch));
    let prerelease = args.prerelease.as_deref().filter(|_| on_prerelease_branch);
    let messages: Vec<&str> = history
        .commits
        .iter()
        .map(|(_, message)| message.as_str())
        .collect();
    let next = version::next_version(
        history.previous.as_ref(),
        history.highest.as_ref(),
        &messages,
        args.bump.or(label_bump),
        prerelease,
    )
    .map_err(|e| UsageError::new(format!("invalid `--prerelease`: {e}")))?;
    if !next.has_release {
        tracing::info!(version = %next.version, "nothing to release");
    }
    let changelog = if args.changelog {
        let entries: Vec<ChangelogEntry> = history
            .commits
            .iter()
            .map(|(short_sha, message)| ChangelogEntry {
                short_sha: short_sha.clone(),
                message: message.clone(),
            })
            .collect();
        let section = version::changelog(&next.version, None, &entries);
        if !args.dry_run {
            let file = match &args.changelog_file {
                Some(file) => cwd.join(file),
                None => history.root.join("CHANGELOG.md"),
            };
            write_changelog(&file, &next.version, &section)?;
        }
        Some(section)
    } else {
        None
    };
    Ok(NextVersionReport {
        version: next.version.to_string(),
        previous: next.previous.map(|v| v.to_string()),
        bump: next.bump,
        height: next.height,
        has_release: next.has_release,
        changelog,
    })
}

/// The bump release labels ask for: `release:skip` wins (nothing to
/// release), else the highest of `release:major|minor|patch`; `None` without
/// a release label. The error names a `release:` label that is none of these.
fn release_label_bump(labels: &[String]) -> Result<Option<Bump>, String> {
    let mut bump = None;
    let mut skip = false;
    for label in labels {
        let Some(kind) = label.trim().strip_prefix("release:") else {
            continue;
        };
        let this = match kind.trim() {
            "major" => Bump::Major,
            "minor" => Bump::Minor,
            "patch" => Bump::Patch,
            "skip" => {
                skip = true;
                continue;
            }
            other => {
                return Err(format!(
                    "unknown release label `release:{other}`; valid: release:major, release:minor, release:patch, release:skip"
                ));
            }
        };
        bump = bump.max(Some(this));
    }
    Ok(if skip { Some(Bump::None) } else { bump })
}

/// The branch `--prerelease-branch` is compared with: `--ref`, else the CI
/// context's (a branch push's ref, a pull or merge request's head branch),
/// else HEAD's branch. A tag ref names no branch. CI wins over git because
/// CI checkouts are often detached (GitLab, Jenkins, a checkout by sha); a
/// tag at HEAD does not matter, the branch decides.
fn branch_being_built(
    flag: Option<&str>,
    ci: &slipway_core::ci::CiContext,
    head_branch: Option<&str>,
) -> Option<String> {
    if let Some(git_ref) = flag {
        return match git_ref.strip_prefix("refs/") {
            Some(rest) => rest.strip_prefix("heads/").map(str::to_owned),
            None => Some(git_ref.to_owned()),
        };
    }
    match ci.git_ref.as_deref() {
        Some(git_ref) if git_ref.starts_with("refs/heads/") => {
            git_ref.strip_prefix("refs/heads/").map(str::to_owned)
        }
        Some(_) if ci.head_ref.is_some() => ci.head_ref.clone(),
        Some(_) => None,
        None => head_branch.map(str::to_owned),
    }
}

/// Puts `section` on top of the changelog `file` (a temp file renamed over
/// it), unless it already has the version's section.
fn write_changelog(
    file: &std::path::Path,
    version: &semver::Version,
    section: &str,
) -> anyhow::Result<()> {
    let old = match slipway_core::input::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(anyhow::Error::new(error)),
    };
    let Some(new) = version::prepend_section(&old, version, section) else {
        tracing::info!(file = %file.display(), %version, "the changelog already has this version");
        return Ok(());
    };
    let temp = file.with_extension("md.tmp");
    fs_err::write(&temp, new)?;
    fs_err::rename(&temp, file)?;
    tracing::info!(file = %file.display(), %version, "changelog updated");
    Ok(())
}

fn check_commit(args: &CheckCommitArgs) -> anyhow::Result<CheckCommitReport> {
    let message = if args.message == "-" {
        let text = slipway_core::input::read_stdin_to_string()
            .map_err(|e| UsageError::new(format!("cannot read the message from stdin: {e}")))?;
        // Same as git's default cleanup: comment lines are not part of the message.
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        args.message.clone()
    };
    let types: Vec<&str> = match &args.types {
        Some(only) => only
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect(),
        None => KNOWN_TYPES
            .iter()
            .copied()
            .chain(args.extra_types.iter().map(String::as_str))
            .collect(),
    };
    Ok(match version::check(&message, &types) {
        Ok(commit) => CheckCommitReport {
            valid: true,
            error: None,
            bump: Some(commit.bump()),
            commit: Some(commit),
        },
        Err(error) => CheckCommitReport {
            valid: false,
            error: Some(error.to_string()),
            commit: None,
            bump: None,
        },
    })
}
