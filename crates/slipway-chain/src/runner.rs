//! The runner library the chain's tasks share (release, promote, rollback,
//! demo): running a tool binary and reading its JSON report into the
//! contract type, the stale gate, the tools' exit codes passed through,
//! the current release of an env, and the summary table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use slipway_contract::image_stale_check;
use slipway_contract::ssh_deploy::{self, HostReport, ReleaseResult};
use slipway_core::image_ref::ImageRef;
use xshell::{Shell, cmd};

/// Where slipway.toml is and how ssh-deploy reaches the hosts: the flags
/// `release`, `promote` and `rollback` share.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The git repository holding slipway.toml
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Private key for ssh-deploy (default: the ssh-agent's keys)
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file for ssh-deploy (default: ~/.ssh/known_hosts)
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
}

impl Connection {
    /// The flags of `env`'s deploy tool: ssh-deploy's key and known_hosts
    /// for an SSH env, none for the other targets (their tools reach their
    /// targets without SSH keys of ours).
    pub fn flags_for(&self, env: &slipway_config::Env) -> Vec<String> {
        match env.target {
            slipway_config::DeployTarget::Ssh => self.ssh_flags(),
            _ => Vec::new(),
        }
    }

    /// ssh-deploy's flags for these keys and known_hosts.
    pub fn ssh_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(key) = &self.ssh_key {
            flags.push("--ssh-key".to_owned());
            flags.push(key.display().to_string());
        }
        if let Some(known_hosts) = &self.known_hosts {
            flags.push("--known-hosts".to_owned());
            flags.push(known_hosts.display().to_string());
        }
        flags
    }
}

/// One image the env deploys, and where its reference came from.
#[derive(Debug, Clone)]
pub struct Row {
    /// The image's name in slipway.toml.
    pub image: String,
    /// `repo@sha256:…`.
    pub reference: String,
    /// Built by this release (else kept from the newest good release).
    pub rebuilt: bool,
}

/// What a release did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The images img-build built (dependencies like `base` included).
    pub built: Vec<String>,
    /// The images the env deploys.
    pub rows: Vec<Row>,
    /// `(host, outcome)` of each host ssh-deploy reported, the outcome as
    /// its JSON spells it (`deployed`, `rolled_back`, …).
    pub hosts: Vec<(String, String)>,
    /// The tags each image (by name) got in this run, without the repository.
    pub tags: BTreeMap<String, Vec<String>>,
    /// How long each host (by name) took to get ready, in milliseconds, for
    /// hosts whose readiness check ran and passed.
    pub ready_ms: BTreeMap<String, u64>,
}

impl Outcome {
    /// Records each host of ssh-deploy's deploy report (its outcome, and how
    /// long readiness took where it was ready); returns why the hosts that
    /// were not deployed failed (empty: every host was deployed).
    pub fn record_hosts(&mut self, report: &ssh_deploy::Report) -> Vec<String> {
        for host in &report.hosts {
            self.hosts
                .push((host.host.clone(), host.outcome.as_str().to_owned()));
            if let (Some(true), Some(ms)) = (host.ready, host.ready_ms) {
                self.ready_ms.insert(host.host.clone(), ms);
            }
        }
        report.hosts.iter().filter_map(host_failure).collect()
    }
}

/// The image references (by `deploy.env` variable) of the newest good
/// release; every host must agree.
pub fn current_release(
    sh: &Shell,
    ssh_deploy: &std::path::Path,
    env_name: &str,
    connection: &Connection,
) -> anyhow::Result<BTreeMap<String, String>> {
    // Every deploy tool prints ssh-deploy's report shape; only ssh-deploy
    // takes the SSH flags.
    let tool = ssh_deploy
        .file_name()
        .map_or_else(|| "ssh-deploy".into(), |n| n.to_string_lossy().into_owned());
    let flags = if tool == "ssh-deploy" {
        connection.ssh_flags()
    } else {
        Vec::new()
    };
    let text = cmd!(
        sh,
        "{ssh_deploy} releases --env {env_name} {flags...} --format json"
    )
    .read()
    .with_context(|| format!("step `{tool} releases` failed"))?;
    let report: ssh_deploy::Report = parse_report(text.as_bytes(), &format!("{tool} releases"))?;
    let mut agreed: Option<BTreeMap<String, String>> = None;
    for host in report.hosts {
        let images = host
            .releases
            .into_iter()
            .filter(|r| r.result == ReleaseResult::Deployed)
            .max_by_key(|r| r.id)
            .map(|r| r.images)
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
pub fn json_output(
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

/// A tool's stdout parsed as its JSON report, the contract type `T` of
/// `slipway_contract`; an error names the step and says what is wrong
/// (a missing or mistyped field, or no JSON at all).
pub fn parse_report<T: serde::de::DeserializeOwned>(
    stdout: &[u8],
    step: &str,
) -> anyhow::Result<T> {
    let text = String::from_utf8_lossy(stdout);
    let text = text.trim();
    serde_json::from_str(text).with_context(|| {
        let shown: String = text.chars().take(400).collect();
        let more = if shown.len() < text.len() { "…" } else { "" };
        format!("step `{step}` did not print the JSON report it promises: `{shown}{more}`")
    })
}

/// The gate: image-stale-check on the exact `references`, against `rev`
/// (default HEAD). Returns why each image that is not `fresh` is refused
/// (empty: every one is fresh) with the tool's exit status; an error when
/// the tool could not judge.
pub fn gate(
    sh: &Shell,
    stale_check: &Path,
    references: &[&str],
    rev: Option<&str>,
) -> anyhow::Result<(std::process::ExitStatus, Vec<String>)> {
    let rev: Vec<&str> = rev.map(|rev| vec!["--rev", rev]).unwrap_or_default();
    let (status, verdicts): (_, image_stale_check::CheckReport) = run_json(
        "image-stale-check",
        cmd!(sh, "{stale_check} {rev...} --format json {references...}"),
        None,
    )?;
    let mut refused = Vec::new();
    for verdict in &verdicts.images {
        let status = verdict.verdict.status();
        eprintln!("{status:<9} {}", verdict.reference);
        if status != "fresh" {
            refused.push(format!("`{}` is {status}", verdict.reference));
        }
    }
    if verdicts.images.len() != references.len() {
        refused.push(format!(
            "{} of {} image(s) were judged",
            verdicts.images.len(),
            references.len()
        ));
    }
    if !status.success() && refused.is_empty() {
        refused.push(format!("image-stale-check exited with {status}"));
    }
    Ok((status, refused))
}

/// A step whose tool answered no (the stale gate refused, a deploy failed):
/// the chain exits with the tool's exit code, as the tool alone would.
#[derive(Debug)]
pub struct ToolFailed {
    /// The tool's exit code (never 0).
    pub code: u8,
    message: String,
}

impl std::fmt::Display for ToolFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolFailed {}

/// The error of a step whose tool exited with `status`, carrying its code
/// (`3`, an operation failed, when it has none: killed by a signal).
pub fn tool_failed(status: &std::process::ExitStatus, message: String) -> anyhow::Error {
    let code = status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .filter(|code| *code != 0)
        .unwrap_or(slipway_core::cli::exit::FAILURE);
    anyhow::Error::new(ToolFailed { code, message })
}

/// The exit code of the chain for `error`: a tool's own code when a tool
/// said no, else the code the error's type says (`2` for bad input such as
/// an unknown env, `3` for a failed operation).
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ToolFailed>().map(|tool| tool.code))
        .unwrap_or_else(|| slipway_core::cli::exit_code_for(error, &[slipway_config::classify]))
}

/// Runs a tool (see [`json_output`]) and parses its stdout as the report `T`;
/// returns the exit status with it, since a failing tool still reports.
pub fn run_json<T: serde::de::DeserializeOwned>(
    step: &str,
    command: xshell::Cmd<'_>,
    stdin: Option<&str>,
) -> anyhow::Result<(std::process::ExitStatus, T)> {
    let output = json_output(command, stdin).with_context(|| format!("step `{step}` failed"))?;
    Ok((output.status, parse_report(&output.stdout, step)?))
}

/// Why a host of ssh-deploy's report was not deployed, and whether
/// ssh-deploy rolled it back; `None` when it was deployed.
pub fn host_failure(host: &HostReport) -> Option<String> {
    if host.outcome == ssh_deploy::Outcome::Deployed {
        return None;
    }
    let rolled_back = match host.rolled_back_to {
        Some(n) => format!("; ssh-deploy rolled back to release {n}"),
        None => "; not rolled back (see ssh-deploy's log above)".to_owned(),
    };
    Some(format!(
        "{}: {}: {}{rolled_back}",
        host.host,
        host.outcome.as_str(),
        host.error.as_deref().unwrap_or("no error reported")
    ))
}

/// Whether `reference` is an image reference by digest (`repo@sha256:…`).
pub fn is_digest_reference(reference: &str) -> bool {
    reference
        .parse::<ImageRef>()
        .is_ok_and(|image| image.digest().is_some())
}

/// The tag of a full reference `registry[:port]/repo:tag` (the reference
/// itself when it has none).
pub fn tag_of(reference: &str) -> String {
    match reference
        .parse::<ImageRef>()
        .map(|image| image.tag().cloned())
    {
        Ok(Some(tag)) => tag.to_string(),
        _ => reference.to_owned(),
    }
}

/// The first 12 hex digits of the digest of `repo@sha256:…` (`-` without
/// one).
fn short_digest(reference: &str) -> String {
    match reference
        .parse::<ImageRef>()
        .map(|image| image.digest().cloned())
    {
        Ok(Some(digest)) => digest.hex().chars().take(12).collect(),
        _ => "-".to_owned(),
    }
}

/// Milliseconds as seconds: to the millisecond under one second, else to
/// the tenth (`0.004`, `2.5`).
fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("0.{ms:03}")
    } else {
        format!("{}.{}", ms / 1000, ms % 1000 / 100)
    }
}

/// The summary table: one line per image and host, columns as wide as
/// their values (80 columns for short host names).
pub fn print_summary(outcome: &Outcome) {
    let mut lines = vec![[
        "image".to_owned(),
        "digest".to_owned(),
        "tags".to_owned(),
        "host".to_owned(),
        "ready".to_owned(),
    ]];
    for row in &outcome.rows {
        let tags = outcome
            .tags
            .get(&row.image)
            .map_or("-".to_owned(), |tags| tags.join(","));
        for (host, result) in &outcome.hosts {
            let ready = match outcome.ready_ms.get(host) {
                Some(ms) => format!("ready in {} s", seconds(*ms)),
                None => result.clone(),
            };
            lines.push([
                row.image.clone(),
                short_digest(&row.reference),
                tags.clone(),
                host.clone(),
                ready,
            ]);
        }
    }
    let mut widths = [0; 5];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    println!();
    for [image, digest, tags, host, ready] in &lines {
        println!(
            "{image:<w0$}  {digest:<w1$}  {tags:<w2$}  {host:<w3$}  {ready}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The failure the release reports for a host entry of ssh-deploy's JSON.
    #[track_caller]
    fn failure(host: &str) -> Option<String> {
        let host: HostReport = serde_json::from_str(host).expect("a host entry");
        host_failure(&host)
    }

    const HOST: &str = r#""uploaded": [], "unchanged": [], "exit_status": 0, "ready": true"#;

    #[test]
    fn says_why_a_host_was_not_deployed_and_whether_it_was_rolled_back() {
        let deployed = format!(
            r#"{{"host": "a", "outcome": "deployed", "release": 2, {HOST}, "ready_ms": 40, "rolled_back_to": null, "error": null}}"#
        );
        assert_eq!(failure(&deployed), None);
        let rolled_back = format!(
            r#"{{"host": "a", "outcome": "rolled_back", "release": 4, {HOST}, "rolled_back_to": 3, "error": "not ready"}}"#
        );
        assert_eq!(
            failure(&rolled_back).as_deref(),
            Some("a: rolled_back: not ready; ssh-deploy rolled back to release 3")
        );
        let failed = format!(
            r#"{{"host": "a", "outcome": "failed", "release": null, {HOST}, "rolled_back_to": null, "error": "exit 1"}}"#
        );
        assert_eq!(
            failure(&failed).as_deref(),
            Some("a: failed: exit 1; not rolled back (see ssh-deploy's log above)")
        );
        let error = format!(
            r#"{{"host": "a", "outcome": "error", "release": null, {HOST}, "rolled_back_to": null, "error": null}}"#
        );
        assert_eq!(
            failure(&error).as_deref(),
            Some("a: error: no error reported; not rolled back (see ssh-deploy's log above)")
        );
    }

    #[test]
    fn a_report_that_breaks_the_contract_names_the_step_and_the_field() {
        let error = parse_report::<ssh_deploy::Report>(
            br#"{"env": "demo", "hosts": []}"#,
            "ssh-deploy deploy",
        )
        .expect_err("`action` is missing");
        let message = format!("{error:#}");
        assert!(message.contains("step `ssh-deploy deploy`"), "{message}");
        assert!(message.contains("missing field `action`"), "{message}");
        let error = parse_report::<slipway_contract::img_build::BuildReport>(
            b"error: no such image\n",
            "img-build",
        )
        .expect_err("not JSON");
        assert!(
            format!("{error:#}").contains(
                "step `img-build` did not print the JSON report it promises: `error: no such image`"
            ),
            "{error:#}"
        );
    }

    #[test]
    fn a_tools_refusal_exits_with_the_tools_code() {
        // A real exit status: image-stale-check's "stale" is 1.
        let status = std::process::Command::new("sh")
            .args(["-c", "exit 1"])
            .status()
            .unwrap();
        let error = tool_failed(
            &status,
            "step `image-stale-check` refused the release".into(),
        )
        .context("cannot release env `prod`");
        assert_eq!(exit_code_for(&error), 1);
        // A config mistake says 2 through the chain's own errors.
        let config = slipway_config::Config::from_str(
            "[project]\nregistry = \"127.0.0.1:5000/demo\"\n",
            Path::new("slipway.toml"),
        )
        .unwrap();
        let typo = anyhow::Error::new(config.env("prdo").unwrap_err());
        assert_eq!(exit_code_for(&typo), 2);
        // Anything else is a failed operation.
        assert_eq!(exit_code_for(&anyhow::anyhow!("connection refused")), 3);
    }

    #[test]
    fn the_summary_shows_tags_and_a_short_digest() {
        assert_eq!(tag_of("127.0.0.1:5000/demo/app:sha-0123456"), "sha-0123456");
        assert_eq!(tag_of("127.0.0.1:5000/demo/app"), "127.0.0.1:5000/demo/app");
        assert_eq!(
            short_digest(&format!(
                "127.0.0.1:5000/app@sha256:{}",
                "0123456789abcdef".repeat(4)
            )),
            "0123456789ab"
        );
        assert_eq!(short_digest("127.0.0.1:5000/app:latest"), "-");
        assert_eq!(seconds(4), "0.004");
        assert_eq!(seconds(999), "0.999");
        assert_eq!(seconds(2590), "2.5");
    }
}
