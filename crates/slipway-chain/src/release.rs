//! `slipway release` (and `cargo xtask release`): the release chain, run from the tools' command
//! lines and their JSON reports (docs/pipeline.md):
//!
//! changed-paths → img-build `--push` → image-stale-check (the gate) →
//! img-tag (this commit's tags, as slipway.toml's rules give them, on the
//! images kept from the last release) → ssh-deploy deploy (readiness and
//! automatic rollback inside).
//!
//! Images the env deploys that were not rebuilt keep the reference of the
//! env's newest good release, read with `ssh-deploy releases`.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use slipway_config::Config;
use slipway_contract::ssh_deploy;
use slipway_contract::{changed_paths, img_build, img_tag};
use xshell::{Shell, cmd};

use crate::runner::{
    Connection, Outcome, Row, current_release, gate, is_digest_reference, json_output,
    parse_report, print_summary, run_json, tag_of, tool_failed,
};
use crate::tools::Provide;

/// Flags of `cargo xtask release`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The env of slipway.toml to deploy to
    #[arg(long)]
    pub env: String,
    /// Build every image instead of asking changed-paths
    #[arg(long, conflicts_with = "since")]
    pub all: bool,
    /// Build the images changed-paths selects between REF and HEAD
    #[arg(long, value_name = "REF")]
    pub since: Option<String>,
    /// Show the targets and img-build's plan; build, push and deploy nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// `cargo xtask release`: runs the chain; the summary table is on stdout.
pub fn run(sh: &Shell, provide: Provide<'_>, args: &Args) -> anyhow::Result<()> {
    release(sh, provide, args).map(|_| ())
}

/// Runs the chain and prints its summary table; an error names the step.
pub fn release(sh: &Shell, provide: Provide<'_>, args: &Args) -> anyhow::Result<Outcome> {
    // The plan first: slipway.toml and the env are checked before anything
    // is built, so a typo costs nothing.
    let repo = sh.current_dir().join(&args.connection.repo);
    let config = Config::discover(&repo)?;
    let env = config.env(&args.env)?.clone();

    step("find the tools");
    let tools = provide(sh)?;
    // changed-paths only picks the images, which `--all` does itself.
    let picker = if args.all {
        None
    } else {
        Some("changed-paths")
    };
    let needed: Vec<&str> = picker
        .into_iter()
        .chain([
            "img-build",
            "image-stale-check",
            "img-tag",
            env.target.tool(),
        ])
        .collect();
    tools.require(&needed)?;
    let bin = |tool: &str| tools.path(tool);
    let _dir = sh.push_dir(&repo);

    step("changed-paths: which images need a build");
    let (targets, targets_json) = if args.all {
        let names: Vec<String> = config.default_images().into_iter().collect();
        eprintln!("--all: every image of slipway.toml but those with `default = false`");
        let json = serde_json::json!({ "targets": names }).to_string();
        (names, json)
    } else {
        let tool = bin("changed-paths");
        let base: Vec<String> = match &args.since {
            Some(since) => vec!["--base".to_owned(), since.clone()],
            None => Vec::new(),
        };
        let text = cmd!(sh, "{tool} {base...} --format json")
            .read()
            .context("step `changed-paths` failed")?;
        let report: changed_paths::Report = parse_report(text.as_bytes(), "changed-paths")?;
        (report.targets, text)
    };
    eprintln!("targets: [{}]", targets.join(", "));

    let img_build = bin("img-build");
    if args.dry_run {
        step("img-build --dry-run (nothing is built, pushed or deployed)");
        cmd!(sh, "{img_build} --targets-from - --push --dry-run")
            .stdin(&targets_json)
            .run()
            .context("step `img-build --dry-run` failed")?;
        return Ok(Outcome::default());
    }

    let mut outcome = Outcome::default();
    let mut built: BTreeMap<String, String> = BTreeMap::new();
    let mut build_json = None;
    if !targets.is_empty() {
        step("img-build: build, label and push the targets");
        let output = json_output(
            cmd!(sh, "{img_build} --targets-from - --push --format json"),
            Some(&targets_json),
        )?;
        let report: img_build::BuildReport = parse_report(&output.stdout, "img-build")?;
        if !output.status.success() {
            return Err(tool_failed(
                &output.status,
                format!(
                    "step `img-build` failed ({}): failed images [{}]; nothing was deployed",
                    output.status,
                    report.failed.join(", ")
                ),
            ));
        }
        for target in report.targets {
            if let Some(reference) = target.reference.filter(|r| is_digest_reference(r)) {
                let tags = target.tags.iter().map(|t| tag_of(t)).collect();
                outcome.tags.insert(target.name.clone(), tags);
                built.insert(target.name, reference);
            }
        }
        outcome.built = built.keys().cloned().collect();
        build_json = Some(String::from_utf8_lossy(&output.stdout).into_owned());
    }

    // The deployed images: rebuilt ones from img-build, the rest from the
    // newest good release on the hosts.
    let kept_needed = env.images.values().any(|image| !built.contains_key(image));
    let current = if kept_needed {
        step(&format!(
            "{} releases: the references of images not rebuilt",
            env.target.tool()
        ));
        current_release(sh, &bin(env.target.tool()), &args.env, &args.connection)?
    } else {
        BTreeMap::new()
    };
    for (variable, image) in &env.images {
        let row = match built.get(image) {
            Some(reference) => Row {
                image: image.clone(),
                reference: reference.clone(),
                rebuilt: true,
            },
            None => match current.get(variable) {
                Some(reference) => Row {
                    image: image.clone(),
                    reference: reference.clone(),
                    rebuilt: false,
                },
                None => bail!(
                    "step `releases` failed: image `{image}` was not rebuilt and no good release of env `{}` deployed it; run `cargo xtask release --env {} --all`",
                    args.env,
                    args.env
                ),
            },
        };
        outcome.rows.push(row);
    }

    step("image-stale-check: the gate (every deployed image fresh at HEAD)");
    let references: Vec<&str> = outcome.rows.iter().map(|r| r.reference.as_str()).collect();
    let (status, refused) = gate(sh, &bin("image-stale-check"), &references, None)?;
    if !refused.is_empty() {
        return Err(tool_failed(
            &status,
            format!(
                "step `image-stale-check` refused the release: {}; nothing was deployed",
                refused.join(", ")
            ),
        ));
    }

    let kept: Vec<&Row> = outcome.rows.iter().filter(|r| !r.rebuilt).collect();
    if !kept.is_empty() {
        step("img-tag: give the kept images this commit's tags too");
        let img_tag = bin("img-tag");
        // The tags img-build gave the rebuilt images: slipway.toml's rules
        // at this commit (sha, the branch, a semver tag when HEAD is a
        // release tag, latest per the flavor).
        let (_, computed): (_, img_tag::ComputeReport) = run_json(
            "img-tag compute",
            cmd!(sh, "{img_tag} compute --format json"),
            None,
        )?;
        let flags: Vec<String> = computed
            .tags
            .iter()
            .flat_map(|tag| ["--tag".to_owned(), tag.clone()])
            .collect();
        for row in kept.iter().filter(|_| !flags.is_empty()) {
            let (reference, flags) = (&row.reference, &flags);
            cmd!(sh, "{img_tag} apply {reference} {flags...}")
                .run()
                .with_context(|| format!("step `img-tag apply` failed for `{reference}`"))?;
            outcome
                .tags
                .insert(row.image.clone(), computed.tags.clone());
        }
    }

    // The env's deploy tool: ssh-deploy, swarm-deploy, kube-deploy or
    // cmd-deploy; each prints ssh-deploy's report shape.
    let tool = env.target.tool();
    step(&format!(
        "{tool}: deploy, wait for readiness (rolls back by itself when not ready)"
    ));
    let ssh_deploy = bin(tool);
    let env_name = &args.env;
    let mut flags = args.connection.flags_for(&env);
    for row in outcome.rows.iter().filter(|r| !r.rebuilt) {
        flags.push("--image".to_owned());
        flags.push(format!("{}={}", row.image, row.reference));
    }
    let (status, report): (_, ssh_deploy::Report) = match &build_json {
        Some(json) => run_json(
            &format!("{tool} deploy"),
            cmd!(
                sh,
                "{ssh_deploy} deploy --env {env_name} --images-from - {flags...} --format json"
            ),
            Some(json),
        )?,
        None => run_json(
            &format!("{tool} deploy"),
            cmd!(
                sh,
                "{ssh_deploy} deploy --env {env_name} {flags...} --format json"
            ),
            None,
        )?,
    };
    let failures = outcome.record_hosts(&report);
    print_summary(&outcome);
    if !status.success() || !failures.is_empty() {
        return Err(tool_failed(
            &status,
            format!(
                "step `{tool} deploy` failed ({}): {}",
                status,
                failures.join("; ")
            ),
        ));
    }
    Ok(outcome)
}

fn step(name: &str) {
    eprintln!("\n== release: {name}");
}
