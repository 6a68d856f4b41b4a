//! The report of a run and how it reads in plain text, in a GitHub step
//! summary and as an exit code; the JSON is the contract type itself.

use std::fmt::Write as _;

use slipway_core::cli::exit;
use slipway_core::output::{Style, escape_control, shell_quote};

use crate::remote;
use crate::{Outcome, ReleaseResult};
use slipway_contract::ssh_deploy::InstanceState;

/// A release's result as the records spell it.
fn release_result(result: ReleaseResult) -> &'static str {
    match result {
        ReleaseResult::Deployed => "deployed",
        ReleaseResult::Failed => "failed",
        ReleaseResult::Cancelled => "cancelled",
    }
}

/// The report of a run: [`slipway_contract::ssh_deploy::Report`], as
/// `--format json` prints it.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Report(pub slipway_contract::ssh_deploy::Report);

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        let mut text = String::new();
        if let Some(dry) = &self.0.dry_run {
            let _ = writeln!(text, "dry run: nothing was uploaded or run");
            let _ = writeln!(text, "hosts: {}", dry.hosts.join(" "));
            let _ = writeln!(text, "remote path: {}", dry.remote_path);
            for file in &dry.files {
                let _ = writeln!(
                    text,
                    "upload {} mode={} size={} sha256={}",
                    file.name, file.mode, file.size, file.sha256
                );
            }
            let _ = writeln!(text, "deploy.env:");
            for line in dry.deploy_env.lines() {
                let _ = writeln!(text, "  {line}");
            }
            let _ = writeln!(text, "command env:");
            for (name, value) in &dry.command_env {
                let _ = writeln!(text, "  {}", shell_quote(&format!("{name}={value}")));
            }
            let _ = writeln!(text, "run: {}", dry.command_line);
            if let Some(url) = &dry.ready_url {
                let _ = writeln!(text, "ready: {url} (through the SSH connection)");
            }
            return text;
        }
        if matches!(self.0.action.as_str(), "destroy" | "gc")
            && self
                .0
                .hosts
                .iter()
                .any(|h| h.outcome == Outcome::Listed && !h.instances.is_empty())
        {
            let _ = writeln!(
                text,
                "dry run: the instances listed would be destroyed; nothing was changed"
            );
        }
        for host in &self.0.hosts {
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
            // Everything after the (styled) outcome may hold text from the
            // host (a holder, an error from the remote command): control
            // characters are escaped so none can start a line of its own
            // (`::error …`) or move the cursor.
            let mut line = host.host.to_string();
            if let Some(instance) = &self.0.instance {
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
                let _ = write!(line, " lock={}", shell_quote(&remote::describe(lock)));
            }
            if let Some(error) = &host.error {
                let _ = write!(line, " error={}", shell_quote(error));
            }
            text.push_str(&escape_control(&line));
            text.push('\n');
            for release in &host.releases {
                let images: Vec<String> = release
                    .images
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                // A record is host data: escaped as the host line is.
                let line = format!(
                    "  {} {} {} git={} who={} {}{}{}{}",
                    release.id,
                    release.time,
                    match release.result {
                        ReleaseResult::Deployed => "deployed",
                        ReleaseResult::Failed => "failed",
                        ReleaseResult::Cancelled => "cancelled",
                    },
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
                        .collect::<String>()
                );
                let _ = writeln!(text, "{}", escape_control(&line));
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
                        .map(|r| format!(" result={}", release_result(r)))
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

    fn outputs(&self) -> Vec<(String, String)> {
        let deployed = self.0.hosts.iter().all(|h| h.outcome == Outcome::Deployed);
        let mut outputs = vec![("deployed".to_owned(), deployed.to_string())];
        if let Some(release) = self.0.hosts.iter().find_map(|h| h.release) {
            outputs.push(("release".to_owned(), release.to_string()));
        }
        outputs
    }

    fn summary_markdown(&self) -> Option<String> {
        let mut text = format!(
            "### ssh-deploy {} `{}`{}\n\n| host | outcome | release | error |\n| --- | --- | ---: | --- |\n",
            self.0.action,
            self.0.env,
            self.0
                .instance
                .as_deref()
                .map(|name| format!(" instance `{name}`"))
                .unwrap_or_default()
        );
        for host in &self.0.hosts {
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
        Some(text)
    }

    fn exit_code(&self) -> u8 {
        if self.0.hosts.iter().any(|h| h.outcome == Outcome::Error) {
            exit::FAILURE
        } else if self.0.hosts.iter().any(|h| {
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
}
