//! The report of every deploy tool, in each format — the one copy
//! ssh-deploy and the tools over this crate share: the JSON is
//! `slipway_contract::ssh_deploy::Report` (a target that is not a host is
//! its one host), the plain lines of hosts, releases and instances
//! ([`render_hosts`]), the outputs ([`outputs`]), the step summary
//! ([`summary_markdown`]) and the exit code ([`exit_code`]: 1 when a deploy
//! failed, was rolled back, skipped or cancelled). Only the dry run reads
//! differently per tool (an upload to hosts, or a target's commands).

use std::fmt::Write as _;

use slipway_contract::ssh_deploy::{InstanceState, LockHolder, Outcome, Release, ReleaseResult};
use slipway_core::cli::exit;
use slipway_core::output::{Style, escape_control, shell_quote};

/// A deploy tool's report, printed by `Output::emit`.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Report {
    /// The contract type, as `--format json` prints it.
    pub report: slipway_contract::ssh_deploy::Report,
    /// The tool, for the step summary's title.
    #[serde(skip)]
    pub tool: &'static str,
}

/// A release's result as the records spell it.
pub fn result_word(result: ReleaseResult) -> &'static str {
    match result {
        ReleaseResult::Deployed => "deployed",
        ReleaseResult::Failed => "failed",
        ReleaseResult::Cancelled => "cancelled",
    }
}

/// One line per host of `report` (its outcome styled, then what is known
/// of it), each followed by its releases and instances, indented.
/// `describe_lock` says who holds a lock (`lock status`). Everything after
/// the styled outcome may hold text from a host or target (a holder, an
/// error of a remote command): control characters are escaped so none can
/// start a line of its own (`::error …`) or move the cursor.
pub fn render_hosts(
    report: &slipway_contract::ssh_deploy::Report,
    style: &Style,
    describe_lock: &dyn Fn(&LockHolder) -> String,
) -> String {
    let mut text = String::new();
    for host in &report.hosts {
        let outcome = match host.outcome {
            Outcome::Deployed
            | Outcome::Listed
            | Outcome::Unlocked
            | Outcome::Released
            | Outcome::Destroyed
            | Outcome::Absent => style.ok(host.outcome.as_str()),
            Outcome::Skipped | Outcome::NotStarted | Outcome::Locked | Outcome::Cancelled => {
                style.warn(host.outcome.as_str())
            }
            _ => style.error(host.outcome.as_str()),
        };
        let _ = write!(text, "{outcome} ");
        let mut line = host.host.to_string();
        if let Some(instance) = &report.instance {
            let _ = write!(line, " instance={instance}");
        }
        if let Some(release) = host.release {
            let _ = write!(line, " release={release}");
        }
        if !host.uploaded.is_empty() || !host.unchanged.is_empty() {
            let _ = write!(
                line,
                " uploaded={} unchanged={}",
                host.uploaded.len(),
                host.unchanged.len()
            );
        }
        if let Some(status) = host.exit_status {
            let _ = write!(line, " exit_status={status}");
        }
        if let Some(ready) = host.ready {
            let _ = write!(line, " ready={ready}");
        }
        if let Some(to) = host.rolled_back_to {
            let _ = write!(line, " rolled_back_to={to}");
        }
        if let Some(lock) = &host.lock {
            let _ = write!(line, " lock={}", shell_quote(&describe_lock(lock)));
        }
        if let Some(error) = &host.error {
            let _ = write!(line, " error={}", shell_quote(error));
        }
        text.push_str(&escape_control(&line));
        text.push('\n');
        for release in &host.releases {
            let _ = writeln!(text, "{}", release_line(release));
        }
        for instance in &host.instances {
            let images: Vec<String> = instance
                .images
                .iter()
                .map(|(k, v)| format!(" {k}={v}"))
                .collect();
            // A record is host data: escaped as the host line is.
            let line = format!(
                "  {} {} port={} last_deploy={} release={}{}{}{}",
                instance.name,
                match instance.state {
                    InstanceState::Active => "active",
                    InstanceState::Destroyed => "destroyed",
                },
                instance.port.map_or("-".to_owned(), |p| p.to_string()),
                instance.last_deploy.as_deref().unwrap_or("-"),
                instance.release.map_or("-".to_owned(), |r| r.to_string()),
                instance
                    .result
                    .map(|r| format!(" result={}", result_word(r)))
                    .unwrap_or_default(),
                images.concat(),
                instance
                    .destroyed
                    .as_deref()
                    .map(|at| format!(
                        " destroyed={at} by={}",
                        shell_quote(instance.destroyed_by.as_deref().unwrap_or("-"))
                    ))
                    .unwrap_or_default(),
            );
            let _ = writeln!(text, "{}", escape_control(&line));
        }
    }
    text
}

/// A recorded release as one indented line: id, time, result, commit,
/// who, images, then what is set of `rollback_of`, `rolled_back_to`, the
/// tags the images were given as and why it failed (`detail`). A record
/// is host data: escaped as a host line is.
pub fn release_line(release: &Release) -> String {
    let images: Vec<String> = release
        .images
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let line = format!(
        "  {} {} {} git={} who={} {}{}{}{}{}",
        release.id,
        release.time,
        result_word(release.result),
        release
            .git_sha
            .as_deref()
            .map_or("-", |s| s.get(..12).unwrap_or(s)),
        release.who,
        images.join(" "),
        release
            .rollback_of
            .map(|n| format!(" rollback_of={n}"))
            .unwrap_or_default(),
        release
            .rolled_back_to
            .map(|n| format!(" rolled_back_to={n}"))
            .unwrap_or_default(),
        release
            .tags
            .iter()
            .map(|(var, tag)| format!(" tag:{var}={tag}"))
            .collect::<String>(),
        release
            .detail
            .as_deref()
            .map(|d| format!(" detail={}", shell_quote(d)))
            .unwrap_or_default(),
    );
    escape_control(&line).into_owned()
}

/// The CI outputs of a run: `deployed` (every host deployed) and the
/// `release` of the first host that has one.
pub fn outputs(report: &slipway_contract::ssh_deploy::Report) -> Vec<(String, String)> {
    let deployed = report.hosts.iter().all(|h| h.outcome == Outcome::Deployed);
    let mut outputs = vec![("deployed".to_owned(), deployed.to_string())];
    if let Some(release) = report.hosts.iter().find_map(|h| h.release) {
        outputs.push(("release".to_owned(), release.to_string()));
    }
    outputs
}

/// The step summary of a run: a title naming `tool`, the action, the env
/// and the instance, then one table row per host (`column` heads the first
/// column: `host`, or `target` where the one host is a target).
pub fn summary_markdown(
    tool: &str,
    column: &str,
    report: &slipway_contract::ssh_deploy::Report,
) -> String {
    let mut text = format!(
        "### {tool} {} `{}`{}\n\n| {column} | outcome | release | error |\n| --- | --- | ---: | --- |\n",
        report.action,
        report.env,
        report
            .instance
            .as_deref()
            .map(|name| format!(" instance `{name}`"))
            .unwrap_or_default()
    );
    for host in &report.hosts {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} |",
            host.host,
            host.outcome.as_str(),
            host.release.map(|r| r.to_string()).unwrap_or_default(),
            host.error
                .as_deref()
                .unwrap_or_default()
                .replace('|', "\\|")
        );
    }
    text
}

/// The exit code of a run: 3 when an operation failed on a host, 1 when a
/// deploy failed, was rolled back, skipped, not started or cancelled, else 0.
pub fn exit_code(report: &slipway_contract::ssh_deploy::Report) -> u8 {
    if report.hosts.iter().any(|h| h.outcome == Outcome::Error) {
        exit::FAILURE
    } else if report.hosts.iter().any(|h| {
        matches!(
            h.outcome,
            Outcome::Failed
                | Outcome::RolledBack
                | Outcome::Skipped
                | Outcome::NotStarted
                | Outcome::Cancelled
        )
    }) {
        exit::NO
    } else {
        exit::SUCCESS
    }
}

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        let mut text = String::new();
        if let Some(dry) = &self.report.dry_run {
            let _ = writeln!(text, "dry run: nothing was deployed or recorded");
            let _ = writeln!(text, "target: {}", dry.hosts.join(" "));
            let _ = writeln!(text, "command env:");
            for (name, value) in &dry.command_env {
                let _ = writeln!(text, "  {}", shell_quote(&format!("{name}={value}")));
            }
            for line in dry.command_line.lines() {
                let _ = writeln!(text, "run: {line}");
            }
            if let Some(url) = &dry.ready_url {
                let _ = writeln!(text, "ready: {url}");
            }
            return text;
        }
        // No target over this crate takes a lock `lock status` reports.
        render_hosts(&self.report, style, &|lock| lock.holder.clone())
    }

    fn outputs(&self) -> Vec<(String, String)> {
        outputs(&self.report)
    }

    fn summary_markdown(&self) -> Option<String> {
        Some(summary_markdown(self.tool, "target", &self.report))
    }

    fn exit_code(&self) -> u8 {
        exit_code(&self.report)
    }
}
