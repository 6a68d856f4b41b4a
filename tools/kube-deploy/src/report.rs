//! What `kube-deploy` prints on stdout: one report per run, JSON or plain.

use slipway_core::output::Style;

use crate::kubectl::Kubectl;
use crate::release::Release;

/// How a deploy or rollback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `--dry-run`, or a query: nothing changed.
    None,
    /// Every workload rolled out and the env is ready.
    Deployed,
    /// Something failed and what changed was rolled back.
    RolledBack,
    /// Something failed and nothing was rolled back (`--no-rollback`, or nothing had changed).
    Failed,
}

/// One revision of a workload, as `kubectl rollout history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Revision {
    /// The workload's revision number.
    pub revision: u64,
    /// The Slipway release that made it, read from its change-cause.
    pub release: Option<String>,
    /// Its `kubernetes.io/change-cause`.
    pub change_cause: Option<String>,
}

/// One workload of the env.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadReport {
    /// `deployment/web`.
    pub workload: String,
    /// `rolled out`, or `failed: <reason>` (deploys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Its revisions, oldest first (`releases`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<Revision>,
}

/// The report of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// `deploy`, `rollback` or `releases`.
    pub action: &'static str,
    /// The env.
    pub env: String,
    /// The kubeconfig context, when one is named.
    pub context: Option<String>,
    /// The namespace.
    pub namespace: String,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// How it ended.
    pub outcome: Outcome,
    /// The release deployed (deploys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) release: Option<Release>,
    /// The lease held while it ran, `namespace/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// The workloads.
    pub workloads: Vec<WorkloadReport>,
    /// Every kubectl command run (or, with `--dry-run`, to be run), in order.
    pub commands: Vec<Vec<String>>,
    /// The kustomization that pinned the images (manifests and kustomize envs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kustomization: Option<String>,
    /// The `v1` List applied (manifests and kustomize envs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// How long the env took to get ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_ms: Option<u64>,
    /// What failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl Report {
    pub(crate) fn new(action: &'static str, env: &str, kubectl: &Kubectl, dry_run: bool) -> Report {
        Report {
            action,
            env: env.to_owned(),
            context: kubectl.context.clone(),
            namespace: kubectl.namespace.clone(),
            dry_run,
            outcome: Outcome::None,
            release: None,
            lease: None,
            workloads: Vec::new(),
            commands: Vec::new(),
            kustomization: None,
            manifest: None,
            ready_ms: None,
            failure: None,
        }
    }
}

impl slipway_core::output::Report for Report {
    fn render_plain(&self, _style: &Style) -> String {
        let mut text = format!(
            "{} env {} (context {}, namespace {})",
            self.action,
            self.env,
            self.context.as_deref().unwrap_or("current"),
            self.namespace
        );
        if self.dry_run {
            text.push_str(": dry run, nothing changed");
        }
        text.push('\n');
        if let Some(release) = &self.release {
            text.push_str(&format!("release {}\n", release.id));
            for (name, reference) in &release.images {
                text.push_str(&format!("  image {name} {reference}\n"));
            }
        }
        for workload in &self.workloads {
            match &workload.outcome {
                Some(outcome) => text.push_str(&format!("{}: {outcome}\n", workload.workload)),
                None => text.push_str(&format!("{}\n", workload.workload)),
            }
            for revision in &workload.revisions {
                text.push_str(&format!(
                    "  {} {}\n",
                    revision.revision,
                    revision.change_cause.as_deref().unwrap_or("<none>")
                ));
            }
        }
        if self.dry_run || self.action != "releases" {
            text.push_str("commands:\n");
            for argv in &self.commands {
                text.push_str(&format!(
                    "  {}\n",
                    argv.iter()
                        .map(|a| slipway_core::output::shell_quote(a))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
        }
        if self.dry_run
            && let Some(manifest) = &self.manifest
        {
            text.push_str("manifest:\n");
            for line in manifest.lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        match self.outcome {
            Outcome::None => {}
            Outcome::Deployed => text.push_str(&match self.ready_ms {
                Some(ms) => format!("outcome: deployed, ready after {ms} ms\n"),
                None => "outcome: deployed\n".to_owned(),
            }),
            Outcome::RolledBack => text.push_str("outcome: rolled back\n"),
            Outcome::Failed => text.push_str("outcome: failed\n"),
        }
        if let Some(failure) = &self.failure {
            text.push_str(&format!("failure: {failure}\n"));
        }
        text
    }

    fn outputs(&self) -> Vec<(String, String)> {
        let mut outputs = vec![(
            "outcome".to_owned(),
            serde_json::to_value(self.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        )];
        if let Some(release) = &self.release {
            outputs.push(("release".to_owned(), release.id.clone()));
        }
        outputs
    }

    fn exit_code(&self) -> u8 {
        match self.outcome {
            Outcome::RolledBack | Outcome::Failed => slipway_core::cli::exit::NO,
            Outcome::None | Outcome::Deployed => slipway_core::cli::exit::SUCCESS,
        }
    }
}
