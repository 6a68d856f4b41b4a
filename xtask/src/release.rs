//! `cargo xtask release`: the release chain, run from the tools' command
//! lines and their JSON reports (docs/pipeline.md):
//!
//! changed-paths → img-build `--push` → image-stale-check (the gate) →
//! img-tag (the commit's `sha-<short>` tag on images kept from the last
//! release) → ssh-deploy deploy (readiness and automatic rollback inside).
//!
//! Images the env deploys that were not rebuilt keep the reference of the
//! env's newest good release, read with `ssh-deploy releases`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::Value;
use slipway_core::config::Config;
use xshell::{Shell, cmd};

use crate::{TOOLS, cargo, project_root};

/// Flags of `cargo xtask release`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// The env of slipway.toml to deploy to
    #[arg(long)]
    pub(crate) env: String,
    /// Build every image instead of asking changed-paths
    #[arg(long, conflicts_with = "since")]
    pub(crate) all: bool,
    /// Build the images changed-paths selects between REF and HEAD
    #[arg(long, value_name = "REF")]
    pub(crate) since: Option<String>,
    /// Show the targets and img-build's plan; build, push and deploy nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// The git repository holding slipway.toml
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) repo: PathBuf,
    /// Private key for ssh-deploy (default: the ssh-agent's keys)
    #[arg(long, value_name = "FILE")]
    pub(crate) ssh_key: Option<PathBuf>,
    /// known_hosts file for ssh-deploy (default: ~/.ssh/known_hosts)
    #[arg(long, value_name = "FILE")]
    pub(crate) known_hosts: Option<PathBuf>,
}

/// One image the env deploys, and where its reference came from.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The image's name in slipway.toml.
    pub(crate) image: String,
    /// `repo@sha256:…`.
    pub(crate) reference: String,
    /// Built by this release (else kept from the newest good release).
    pub(crate) rebuilt: bool,
}

/// What a release did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The images img-build built (dependencies like `base` included).
    pub(crate) built: Vec<String>,
    /// The images the env deploys.
    pub(crate) rows: Vec<Row>,
    /// `(host, outcome)` of each host ssh-deploy reported.
    pub(crate) hosts: Vec<(String, String)>,
}

/// `cargo xtask release`: runs the chain; the summary table is on stdout.
pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    release(sh, args).map(|_| ())
}

/// Runs the chain and prints its summary table; an error names the step.
pub(crate) fn release(sh: &Shell, args: &Args) -> anyhow::Result<Outcome> {
    step("build the tools");
    let cargo = cargo();
    let packages: Vec<String> = TOOLS
        .iter()
        .flat_map(|t| ["-p".to_owned(), (*t).to_owned()])
        .collect();
    cmd!(sh, "{cargo} build --quiet --bins {packages...}")
        .run()
        .context("step `build the tools` failed")?;
    let bin = |tool: &str| bin_dir().join(tool);

    let repo = sh.current_dir().join(&args.repo);
    let _dir = sh.push_dir(&repo);
    let config = Config::discover(&repo)?;
    let env = config.env(&args.env)?.clone();
    let head = cmd!(sh, "git rev-parse HEAD")
        .quiet()
        .read()
        .context("cannot read HEAD")?;
    let short: String = head.chars().take(7).collect();

    step("changed-paths: which images need a build");
    let targets_json = if args.all {
        let names: Vec<&String> = config.images.keys().collect();
        eprintln!("--all: every image of slipway.toml");
        serde_json::json!({ "targets": names }).to_string()
    } else {
        let tool = bin("changed-paths");
        let base: Vec<String> = match &args.since {
            Some(since) => vec!["--base".to_owned(), since.clone()],
            None => Vec::new(),
        };
        cmd!(sh, "{tool} {base...} --format json")
            .read()
            .context("step `changed-paths` failed")?
    };
    let targets: Vec<String> = parse(&targets_json, "changed-paths")?
        .get("targets")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
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
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let report = parse(&stdout, "img-build")?;
        if !output.status.success() {
            let failed = report
                .get("failed")
                .map(Value::to_string)
                .unwrap_or_default();
            bail!(
                "step `img-build` failed ({}): failed images {failed}; nothing was deployed",
                output.status
            );
        }
        for target in report
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = str_field(target, "name");
            let reference = str_field(target, "reference");
            if !name.is_empty() && reference.contains("@sha256:") {
                built.insert(name, reference);
            }
        }
        outcome.built = built.keys().cloned().collect();
        build_json = Some(stdout);
    }

    // The deployed images: rebuilt ones from img-build, the rest from the
    // newest good release on the hosts.
    let kept_needed = env.images.values().any(|image| !built.contains_key(image));
    let current = if kept_needed {
        step("ssh-deploy releases: the references of images not rebuilt");
        current_release(sh, &bin("ssh-deploy"), args)?
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
    let stale_check = bin("image-stale-check");
    let references: Vec<&str> = outcome.rows.iter().map(|r| r.reference.as_str()).collect();
    let output = json_output(
        cmd!(sh, "{stale_check} --format json {references...}"),
        None,
    )?;
    let verdicts = parse(
        &String::from_utf8_lossy(&output.stdout),
        "image-stale-check",
    )?;
    let mut refused = Vec::new();
    for verdict in verdicts
        .get("images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let status = str_field(verdict, "status");
        eprintln!("{status:<9} {}", str_field(verdict, "reference"));
        if status != "fresh" {
            refused.push(format!("`{}` is {status}", str_field(verdict, "reference")));
        }
    }
    if !output.status.success() || !refused.is_empty() {
        bail!(
            "step `image-stale-check` refused the release: {}; nothing was deployed",
            refused.join(", ")
        );
    }

    let kept: Vec<&Row> = outcome.rows.iter().filter(|r| !r.rebuilt).collect();
    if !kept.is_empty() {
        step("img-tag: publish the kept images under this commit's tag too");
        let img_tag = bin("img-tag");
        let tag = format!("sha-{short}");
        for row in kept {
            let reference = &row.reference;
            cmd!(sh, "{img_tag} apply {reference} --tag {tag}")
                .run()
                .with_context(|| format!("step `img-tag` failed for `{reference}`"))?;
        }
    }

    step("ssh-deploy: deploy, wait for readiness (rolls back by itself when not ready)");
    let ssh_deploy = bin("ssh-deploy");
    let env_name = &args.env;
    let mut flags = connection_flags(args);
    for row in outcome.rows.iter().filter(|r| !r.rebuilt) {
        flags.push("--image".to_owned());
        flags.push(format!("{}={}", row.image, row.reference));
    }
    let output = match &build_json {
        Some(json) => json_output(
            cmd!(
                sh,
                "{ssh_deploy} deploy --env {env_name} --images-from - {flags...} --format json"
            ),
            Some(json),
        )?,
        None => json_output(
            cmd!(
                sh,
                "{ssh_deploy} deploy --env {env_name} {flags...} --format json"
            ),
            None,
        )?,
    };
    let report = parse(
        &String::from_utf8_lossy(&output.stdout),
        "ssh-deploy deploy",
    )?;
    let mut failures = Vec::new();
    for host in host_entries(&report) {
        let name = str_field(host, "host");
        let result = str_field(host, "outcome");
        failures.extend(host_failure(host));
        outcome.hosts.push((name, result));
    }
    print_summary(&outcome);
    if !output.status.success() || !failures.is_empty() {
        bail!(
            "step `ssh-deploy deploy` failed ({}): {}",
            output.status,
            failures.join("; ")
        );
    }
    Ok(outcome)
}

/// The image references (by `deploy.env` variable) of the newest good
/// release; every host must agree.
fn current_release(
    sh: &Shell,
    ssh_deploy: &std::path::Path,
    args: &Args,
) -> anyhow::Result<BTreeMap<String, String>> {
    let env_name = &args.env;
    let flags = connection_flags(args);
    let text = cmd!(
        sh,
        "{ssh_deploy} releases --env {env_name} {flags...} --format json"
    )
    .read()
    .context("step `ssh-deploy releases` failed")?;
    let report = parse(&text, "ssh-deploy releases")?;
    let mut agreed: Option<BTreeMap<String, String>> = None;
    for host in host_entries(&report) {
        let newest = host
            .get("releases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| str_field(r, "result") == "deployed")
            .max_by_key(|r| r.get("id").and_then(Value::as_u64).unwrap_or(0));
        let images: BTreeMap<String, String> = newest
            .and_then(|r| r.get("images"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        match &agreed {
            Some(previous) if *previous != images => bail!(
                "step `ssh-deploy releases` failed: the hosts of env `{env_name}` run different images; deploy them all with `--all` first"
            ),
            _ => agreed = Some(images),
        }
    }
    Ok(agreed.unwrap_or_default())
}

/// Runs a tool with its stderr on the terminal (it is for people) and
/// returns its exit status and stdout (its JSON report), whatever the status.
fn json_output(
    command: xshell::Cmd<'_>,
    stdin: Option<&str>,
) -> anyhow::Result<std::process::Output> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut command = Command::from(command);
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run `{program}`"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .with_context(|| format!("cannot write to `{program}`'s stdin"))?;
    }
    child
        .wait_with_output()
        .with_context(|| format!("cannot wait for `{program}`"))
}

/// Why a host of ssh-deploy's report was not deployed, and whether
/// ssh-deploy rolled it back; `None` when it was deployed.
fn host_failure(host: &Value) -> Option<String> {
    let result = str_field(host, "outcome");
    if result == "deployed" {
        return None;
    }
    let rolled_back = match host.get("rolled_back_to").and_then(Value::as_u64) {
        Some(n) => format!("; ssh-deploy rolled back to release {n}"),
        None => "; not rolled back (see ssh-deploy's log above)".to_owned(),
    };
    let error = match str_field(host, "error") {
        error if error.is_empty() => "no error reported".to_owned(),
        error => error,
    };
    Some(format!(
        "{}: {result}: {error}{rolled_back}",
        str_field(host, "host")
    ))
}

fn connection_flags(args: &Args) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(key) = &args.ssh_key {
        flags.push("--ssh-key".to_owned());
        flags.push(key.display().to_string());
    }
    if let Some(known_hosts) = &args.known_hosts {
        flags.push("--known-hosts".to_owned());
        flags.push(known_hosts.display().to_string());
    }
    flags
}

fn print_summary(outcome: &Outcome) {
    println!(
        "\n{:<10} {:<8} {:<73} {:<24} result",
        "image", "source", "digest", "host"
    );
    for row in &outcome.rows {
        let digest = row.reference.rsplit_once('@').map_or("-", |(_, d)| d);
        let source = if row.rebuilt { "built" } else { "kept" };
        for (host, result) in &outcome.hosts {
            println!(
                "{:<10} {source:<8} {digest:<73} {host:<24} {result}",
                row.image
            );
        }
    }
}

/// The per-host entries of an ssh-deploy report: the report itself when it
/// is an array, else the first array of objects with a `host` field.
fn host_entries(report: &Value) -> Vec<&Value> {
    let is_hosts = |items: &Vec<Value>| items.iter().all(|i| i.get("host").is_some());
    match report {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map
            .values()
            .filter_map(Value::as_array)
            .find(|items| !items.is_empty() && is_hosts(items))
            .map(|items| items.iter().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn str_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn parse(text: &str, tool: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text.trim())
        .with_context(|| format!("step `{tool}` printed no JSON report: `{}`", text.trim()))
}

/// Where cargo puts the debug binaries.
pub(crate) fn bin_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
        .join("debug")
}

fn step(name: &str) {
    eprintln!("\n== xtask release: {name}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each host entry of `report`, with the failure the release reports for it.
    #[track_caller]
    fn check(report: &str, expected: &[(&str, Option<&str>)]) {
        let value: Value = serde_json::from_str(report).expect("valid JSON");
        let found: Vec<(String, Option<String>)> = host_entries(&value)
            .into_iter()
            .map(|h| (str_field(h, "host"), host_failure(h)))
            .collect();
        let expected: Vec<(String, Option<String>)> = expected
            .iter()
            .map(|(h, f)| ((*h).to_owned(), f.map(str::to_owned)))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn reads_the_hosts_of_a_report() {
        check(
            r#"[{"host": "a", "outcome": "deployed"}, {"host": "b", "outcome": "deployed"}]"#,
            &[("a", None), ("b", None)],
        );
        check(
            r#"{"env": "demo", "hosts": [{"host": "a", "outcome": "deployed"}]}"#,
            &[("a", None)],
        );
        check(r#"{"env": "demo", "hosts": []}"#, &[]);
        check(r#""nothing""#, &[]);
        check(
            r#"[{"host": "a", "outcome": "rolled_back", "error": "not ready", "rolled_back_to": 3}]"#,
            &[(
                "a",
                Some("a: rolled_back: not ready; ssh-deploy rolled back to release 3"),
            )],
        );
        check(
            r#"[{"host": "a", "outcome": "failed", "error": "exit 1", "rolled_back_to": null}]"#,
            &[(
                "a",
                Some("a: failed: exit 1; not rolled back (see ssh-deploy's log above)"),
            )],
        );
        check(
            r#"[{"host": "a", "outcome": "error"}]"#,
            &[(
                "a",
                Some("a: error: no error reported; not rolled back (see ssh-deploy's log above)"),
            )],
        );
    }
}
