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
    /// The `v1` List a dry run would apply, as JSON, each Secret's
    /// `data` and `stringData` values shown as `***` (`shown_manifest`).
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

/// The List `list` as a report shows it: every `kind: Secret` item's
/// `data` and `stringData` values replaced by `***` (the keys stay, so a
/// reader sees what the Secret holds, never its values). `None` when
/// `list` is not the JSON List kube-deploy renders: nothing unredacted is
/// shown then.
pub(crate) fn shown_manifest(list: &str) -> Option<String> {
    let mut list: serde_json::Value = serde_json::from_str(list).ok()?;
    for item in list.get_mut("items")?.as_array_mut()? {
        if item.get("kind").and_then(serde_json::Value::as_str) != Some("Secret") {
            continue;
        }
        for field in ["data", "stringData"] {
            match item.get_mut(field) {
                Some(serde_json::Value::Object(values)) => {
                    for value in values.values_mut() {
                        *value = serde_json::Value::String("***".to_owned());
                    }
                }
                Some(other) if !other.is_null() => {
                    *other = serde_json::Value::String("***".to_owned());
                }
                _ => {}
            }
        }
        // `kubectl apply` keeps the whole object, values included, in this
        // annotation when the manifest carried one.
        if let Some(serde_json::Value::Object(annotations)) =
            item.pointer_mut("/metadata/annotations")
        {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    let text = serde_json::to_string_pretty(&list).ok()?;
    Some(text + "\n")
}
