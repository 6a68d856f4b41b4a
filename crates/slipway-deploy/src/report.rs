//! The report of every deploy tool over this crate, in each format: the
//! JSON is `slipway_contract::ssh_deploy::Report` (the target is its one
//! host), the plain lines read as ssh-deploy's, and the exit code means
//! what it means there (1: the deploy failed or was rolled back).

use std::fmt::Write as _;

use slipway_contract::ssh_deploy::{Outcome, ReleaseResult};
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

fn result(result: ReleaseResult) -> &'static str {
    match result {
        ReleaseResult::Deployed => "deployed",
        ReleaseResult::Failed => "failed",
        ReleaseResult::Cancelled => "cancelled",
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
        for host in &self.report.hosts {
            let outcome = match host.outcome {
                Outcome::Deployed | Outcome::Listed => style.ok(host.outcome.as_str()),
                _ => style.error(host.outcome.as_str()),
            };
            let _ = write!(text, "{outcome} ");
            let mut line = host.host.clone();
            if let Some(release) = host.release {
                let _ = write!(line, " release={release}");
            }
            if let Some(ready) = host.ready {
                let _ = write!(line, " ready={ready}");
            }
            if let Some(to) = host.rolled_back_to {
                let _ = write!(line, " rolled_back_to={to}");
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
                let line = format!(
                    "  {} {} {} git={} who={} {}{}{}{}",
                    release.id,
                    release.time,
                    result(release.result),
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
                        .detail
                        .as_deref()
                        .map(|d| format!(" detail={}", shell_quote(d)))
                        .unwrap_or_default(),
                );
                let _ = writeln!(text, "{}", escape_control(&line));
            }
        }
        text
    }

    fn outputs(&self) -> Vec<(String, String)> {
        let deployed = self
            .report
            .hosts
            .iter()
            .all(|h| h.outcome == Outcome::Deployed);
        let mut outputs = vec![("deployed".to_owned(), deployed.to_string())];
        if let Some(release) = self.report.hosts.iter().find_map(|h| h.release) {
            outputs.push(("release".to_owned(), release.to_string()));
        }
        outputs
    }

    fn summary_markdown(&self) -> Option<String> {
        let mut text = format!(
            "### {} {} `{}`\n\n| target | outcome | release | error |\n| --- | --- | ---: | --- |\n",
            self.tool, self.report.action, self.report.env,
        );
        for host in &self.report.hosts {
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
        if self
            .report
            .hosts
            .iter()
            .any(|h| h.outcome == Outcome::Error)
        {
            exit::FAILURE
        } else if self
            .report
            .hosts
            .iter()
            .any(|h| matches!(h.outcome, Outcome::Failed | Outcome::RolledBack))
        {
            exit::NO
        } else {
            exit::SUCCESS
        }
    }
}
