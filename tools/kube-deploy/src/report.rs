//! What `kube-deploy` prints on stdout: slipway-deploy's report (the
//! `slipway_contract::ssh_deploy::Report` every deploy tool prints, so the
//! chain reads them alike), with what only a kubernetes deploy has: the
//! kustomization that pinned the images and the List applied (manifests and
//! kustomize envs), and every kubectl command run (or, in a dry run, to run).

use slipway_core::output::Style;

/// The report of one run.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// The contract report: its fields are this JSON's top level.
    #[serde(flatten)]
    pub deploy: slipway_deploy::report::Report,
    /// Every kubectl command run, in order (the lease's renewals aside).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<Vec<String>>,
    /// The kustomization that pinned the images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kustomization: Option<String>,
    /// The `v1` List applied, as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        let mut text = self.deploy.render_plain(style);
        if self.deploy.report.dry_run.is_some()
            && let Some(manifest) = &self.manifest
        {
            text.push_str("manifest:\n");
            for line in manifest.lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        text
    }

    fn outputs(&self) -> Vec<(String, String)> {
        self.deploy.outputs()
    }

    fn summary_markdown(&self) -> Option<String> {
        self.deploy.summary_markdown()
    }

    fn exit_code(&self) -> u8 {
        self.deploy.exit_code()
    }
}
