//! `slipway promote` (and `cargo xtask promote`): deploy to one env exactly the images another env
//! runs, by digest, without building anything (docs/pipeline.md):
//!
//! ssh-deploy releases (the source env's newest good release) →
//! image-stale-check (the gate, on those exact references) → img-tag compute
//! (the target env's tags) → ssh-deploy deploy (readiness and automatic
//! rollback inside) → img-tag apply, once the target env runs the images.
//!
//! img-build is never run: a promoted image is the very manifest the source
//! env passed readiness with, so its digest cannot change on the way.
//!
//! Tags set in the registry, on each promoted image's own repository:
//! - the target env's name (`prod`), moved once the deploy succeeded, so
//!   `repo:prod` names what that env runs;
//! - the tags slipway.toml's `type=sha` rules give the gate's commit (e.g.
//!   `sha-1a2b3c4`), as `cargo xtask release` tags kept images: the image is
//!   fresh at that commit, so the tag tells the truth.
//!
//! Branch, semver and `latest` tags are not moved: they describe what a
//! ref's pipeline built and published (img-build sets them), and moving
//! `main` to an older image would mislead image-stale-check's default lookup.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use slipway_config::Config;
use slipway_contract::img_tag::{ApplyReport, ComputeReport};
use slipway_contract::ssh_deploy;
use slipway_core::image_ref::ImageRef;
use xshell::{Shell, cmd};

use crate::runner::{self, Connection, Outcome, Row};
use crate::tools::Provide;

/// Flags of `cargo xtask promote`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The env whose newest good release is promoted (e.g. `staging`)
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// The env to deploy those exact images to (e.g. `prod`)
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// The commit the promoted images must be fresh at (image-stale-check's
    /// gate) and whose `type=sha` tags they get
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub rev: String,
    /// Gate the images, then show the tags and the deploy plan; change
    /// nothing in the registry or on the hosts
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// `cargo xtask promote`: the summary table is on stdout.
pub fn run(sh: &Shell, provide: Provide<'_>, args: &Args) -> anyhow::Result<()> {
    promote(sh, provide, args).map(|_| ())
}

/// Promotes and prints the summary table; an error names the step.
pub fn promote(sh: &Shell, provide: Provide<'_>, args: &Args) -> anyhow::Result<Outcome> {
    let (from, to) = (&args.from, &args.to);
    if from == to {
        bail!(
            "`--from {from}` and `--to {to}` are the same env: promote copies one env's release to another; to redeploy `{to}` use `slipway rollback --env {to} --to N` or `slipway release --env {to}`"
        );
    }
    let repo = sh.current_dir().join(&args.connection.repo);
    let config = Config::discover(&repo).context("`--repo`: cannot load slipway.toml")?;
    let from_env = config
        .env(from)
        .with_context(|| format!("`--from {from}` is not an env of slipway.toml"))?
        .clone();
    let to_env = config
        .env(to)
        .with_context(|| format!("`--to {to}` is not an env of slipway.toml"))?
        .clone();

    step("find the tools");
    let tools = provide(sh)?;
    tools.require(&[
        "image-stale-check",
        "img-tag",
        from_env.target.tool(),
        to_env.target.tool(),
    ])?;
    let bin = |tool: &str| tools.path(tool);
    let _dir = sh.push_dir(&repo);
    let rev = &args.rev;
    let commit = format!("{rev}^{{commit}}");
    let sha = cmd!(sh, "git rev-parse --verify --quiet {commit}")
        .quiet()
        .read()
        .with_context(|| format!("`--rev {rev}` is not a commit of `{}`", repo.display()))?;
    let short: String = sha.chars().take(7).collect();

    // Each env's own deploy tool (ssh-deploy, swarm-deploy, kube-deploy,
    // cmd-deploy); each prints ssh-deploy's report shape.
    let (from_tool, to_tool) = (from_env.target.tool(), to_env.target.tool());
    step(&format!(
        "{from_tool} releases: the images env `{from}` runs (its newest good release)"
    ));
    let running = runner::current_release(sh, &bin(from_tool), from, &args.connection)?;
    if running.is_empty() {
        bail!(
            "env `{from}` has no good release to promote (no release recorded as `deployed` on its hosts): release it first with `slipway release --env {from} --all`"
        );
    }
    let rows = target_images(&from_env.images, &running, &to_env.images, from, to)?;
    for row in &rows {
        eprintln!("{:<10} {}", row.image, row.reference);
    }

    step(&format!(
        "image-stale-check: the gate (every promoted image fresh at {short})"
    ));
    let references: Vec<&str> = rows.iter().map(|r| r.reference.as_str()).collect();
    let (status, refused) = runner::gate(sh, &bin("image-stale-check"), &references, Some(&sha))?;
    if !refused.is_empty() {
        let short: String = sha.chars().take(7).collect();
        return Err(runner::tool_failed(
            &status,
            format!(
                "step `image-stale-check` refused the promotion: {} at {short}; nothing was tagged or deployed. Release env `{from}` at this commit first, or promote what it runs as of an older commit with `--rev`",
                refused.join(", ")
            ),
        ));
    }

    let tags = env_tags(sh, &bin("img-tag"), &config, to, &sha)?;
    let img_tag = bin("img-tag");
    let ssh_deploy = bin(to_tool);
    let mut flags = args.connection.flags_for(&to_env);
    for row in &rows {
        flags.push("--image".to_owned());
        flags.push(format!("{}={}", row.image, row.reference));
    }
    if args.dry_run {
        step(&format!(
            "img-tag apply --dry-run: the tags {} would point at the promoted digests",
            tags.join(", ")
        ));
        apply_tags(sh, &img_tag, &rows, &tags, true)?;
        step(&format!(
            "{to_tool} deploy --env {to} --dry-run: the same digests, no build"
        ));
        cmd!(sh, "{ssh_deploy} deploy --env {to} {flags...} --dry-run")
            .run()
            .with_context(|| format!("step `{to_tool} deploy --dry-run` failed"))?;
        eprintln!("dry run: nothing was tagged or deployed");
        return Ok(Outcome {
            rows,
            ..Outcome::default()
        });
    }

    step(&format!(
        "{to_tool} deploy --env {to}: the same digests, no build (readiness and rollback inside)"
    ));
    let (status, report): (_, ssh_deploy::Report) = runner::run_json(
        &format!("{to_tool} deploy"),
        cmd!(
            sh,
            "{ssh_deploy} deploy --env {to} {flags...} --format json"
        ),
        None,
    )?;
    let mut outcome = Outcome {
        rows,
        ..Outcome::default()
    };
    let failures = outcome.record_hosts(&report);
    if !status.success() || !failures.is_empty() || report.hosts.is_empty() {
        runner::print_summary(&outcome);
        bail!(
            "step `{to_tool} deploy --env {to}` failed ({status}): {}; the `{to}` tags were not moved",
            if failures.is_empty() {
                "no host reported".to_owned()
            } else {
                failures.join("; ")
            }
        );
    }

    // Tagged only once `to` runs the images, so `repo:<to>` never names
    // what the env does not run.
    step(&format!(
        "img-tag apply: point {} at the promoted digests",
        tags.join(", ")
    ));
    apply_tags(sh, &img_tag, &outcome.rows, &tags, false)?;
    for row in &outcome.rows {
        outcome.tags.insert(row.image.clone(), tags.clone());
    }
    runner::print_summary(&outcome);
    eprintln!(
        "promoted {from} -> {to}: {} image(s), nothing built",
        outcome.rows.len()
    );
    Ok(outcome)
}

/// The images `to` deploys, each with the reference `from` runs, matched by
/// image name (the envs may name their `deploy.env` variables differently).
fn target_images(
    from_images: &BTreeMap<String, String>,
    running: &BTreeMap<String, String>,
    to_images: &BTreeMap<String, String>,
    from: &str,
    to: &str,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for image in to_images.values() {
        let reference = from_images
            .iter()
            .filter(|(_, name)| *name == image)
            .find_map(|(variable, _)| running.get(variable));
        let Some(reference) = reference else {
            bail!(
                "env `{to}` deploys image `{image}`, which env `{from}`'s newest good release does not run: release `{image}` to `{from}` first (`slipway release --env {from} --all`), or deploy `{to}` with `slipway release --env {to}`"
            );
        };
        if !runner::is_digest_reference(reference) {
            bail!(
                "env `{from}` runs `{image}` as `{reference}`, not by digest: promote moves exact digests only; release `{from}` again with `slipway release --env {from} --all`"
            );
        }
        rows.push(Row {
            image: image.clone(),
            reference: reference.clone(),
            rebuilt: false,
        });
    }
    Ok(rows)
}

/// `img-tag apply` of `tags` on each row's digest, one line per tag.
fn apply_tags(
    sh: &Shell,
    img_tag: &Path,
    rows: &[Row],
    tags: &[String],
    is_dry_run: bool,
) -> anyhow::Result<()> {
    let tag_flags: Vec<String> = tags
        .iter()
        .flat_map(|t| ["--tag".to_owned(), t.clone()])
        .collect();
    let dry_run = is_dry_run.then_some("--dry-run");
    for row in rows {
        let reference = &row.reference;
        let tag_flags = &tag_flags;
        let (status, report): (_, ApplyReport) = runner::run_json(
            "img-tag apply",
            cmd!(
                sh,
                "{img_tag} apply {reference} {tag_flags...} {dry_run...} --format json"
            ),
            None,
        )?;
        if !status.success() {
            bail!("step `img-tag apply` failed ({status}) for `{reference}`");
        }
        let repository = match reference.parse::<ImageRef>() {
            Ok(image) => image.repository().to_string(),
            Err(_) => reference.clone(),
        };
        for change in &report.tags {
            let verb = match (change.changed, is_dry_run) {
                (false, _) => "unchanged",
                (true, true) => "would set",
                (true, false) => "set",
            };
            eprintln!("{verb} {repository}:{} -> {}", change.tag, report.digest);
        }
    }
    Ok(())
}

/// The tags a promotion to `env` sets: the env's name, then what the
/// `type=sha` rules of slipway.toml give `sha` (computed by img-tag, so
/// `format=long`, `prefix` and `DOCKER_METADATA_SHORT_SHA_LENGTH` hold).
fn env_tags(
    sh: &Shell,
    img_tag: &Path,
    config: &Config,
    env: &str,
    sha: &str,
) -> anyhow::Result<Vec<String>> {
    let mut tags = vec![env.to_owned()];
    let rules: Vec<String> = config
        .tags
        .rules
        .iter()
        .filter(|rule| is_sha_rule(&rule.value))
        .flat_map(|rule| ["--tag".to_owned(), rule.value.clone()])
        .collect();
    if rules.is_empty() {
        return Ok(tags);
    }
    let text = cmd!(
        sh,
        "{img_tag} compute {rules...} --flavor latest=false --sha {sha} --format json"
    )
    .read()
    .context("step `img-tag compute` failed")?;
    let report: ComputeReport = runner::parse_report(text.as_bytes(), "img-tag compute")?;
    for tag in report.tags {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// Whether a metadata-action `tags:` line is a `type=sha` rule.
fn is_sha_rule(rule: &str) -> bool {
    rule.split(',')
        .any(|attribute| attribute.trim().replace(' ', "") == "type=sha")
}

fn step(name: &str) {
    eprintln!("\n== promote: {name}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const APP: &str =
        "r/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[track_caller]
    fn check(to_images: &[(&str, &str)], expected: Result<&[(&str, &str)], &str>) {
        let from_images = map(&[("APP_IMAGE", "app"), ("MIGRATOR_IMAGE", "migrator")]);
        let running = map(&[
            ("APP_IMAGE", APP),
            ("MIGRATOR_IMAGE", "r/migrator:sha-1234567"),
        ]);
        let got = target_images(&from_images, &running, &map(to_images), "staging", "prod")
            .map(|rows| {
                rows.into_iter()
                    .map(|r| (r.image, r.reference))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|rows| {
                rows.iter()
                    .map(|(i, r)| ((*i).to_owned(), (*r).to_owned()))
                    .collect::<Vec<_>>()
            })
            .map_err(str::to_owned);
        assert_eq!(got, expected);
    }

    #[test]
    fn the_target_env_gets_the_source_envs_references_by_image_name() {
        check(&[("WEB", "app")], Ok(&[("app", APP)]));
        check(
            &[("WEB", "base")],
            Err(
                "env `prod` deploys image `base`, which env `staging`'s newest good release does not run: release `base` to `staging` first (`slipway release --env staging --all`), or deploy `prod` with `slipway release --env prod`",
            ),
        );
        check(
            &[("M", "migrator")],
            Err(
                "env `staging` runs `migrator` as `r/migrator:sha-1234567`, not by digest: promote moves exact digests only; release `staging` again with `slipway release --env staging --all`",
            ),
        );
    }

    #[test]
    fn sha_rules_are_recognised() {
        assert!(is_sha_rule("type=sha"));
        assert!(is_sha_rule("type=sha,format=long"));
        assert!(is_sha_rule("prefix=x-, type = sha"));
        assert!(!is_sha_rule("type=ref,event=branch"));
        assert!(!is_sha_rule("type=raw,value=type=sha"));
    }
}
