//! The report of a run and how it reads in plain text, in a GitHub step
//! summary and as an exit code; the JSON is the contract type itself. Only
//! the dry run is ssh-deploy's own: hosts, releases, instances, outputs,
//! the summary and the exit code are slipway-deploy's `report`, which
//! every deploy tool shares.

use std::fmt::Write as _;

use slipway_core::output::{Style, shell_quote};

use crate::Outcome;
use crate::remote;

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
        text.push_str(&slipway_deploy::report::render_hosts(
            &self.0,
            style,
            &remote::describe,
        ));
        text
    }

    fn outputs(&self) -> Vec<(String, String)> {
        slipway_deploy::report::outputs(&self.0)
    }

    fn summary_markdown(&self) -> Option<String> {
        Some(slipway_deploy::report::summary_markdown(
            "ssh-deploy",
            "host",
            &self.0,
        ))
    }

    fn exit_code(&self) -> u8 {
        slipway_deploy::report::exit_code(&self.0)
    }
}
