//! What `deploy --dry-run` shows: the files, `deploy.env`, the command line
//! and the ready URL, computed without connecting to any host.

use std::collections::BTreeMap;

use slipway_config::{Env, Host};
use slipway_contract::ssh_deploy::Report as Json;

use crate::plan::{self, BundleFile};
use crate::{DryRun, DryRunFile};

/// The dry run's report for `hosts` of `env`, with the `bundle` files and the image variables `vars`.
pub(crate) fn report(
    env: &Env,
    hosts: &[Host],
    bundle: &[BundleFile],
    vars: &BTreeMap<String, String>,
    secret_vars: &[(String, slipway_core::secret::SecretString)],
) -> anyhow::Result<Json> {
    let env_file = plan::deploy_env_file(vars)?;
    let command_env = plan::command_env(&env.name, 0, vars)
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "SLIPWAY_RELEASE" => (k, "<next release number>".to_owned()),
            _ => (k, v),
        })
        .chain(env.env_vars.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect::<Vec<_>>();
    // `--env-var` values are read from stdin by the line's first words.
    let line_env = command_env.clone();
    let command_env: Vec<(String, String)> = command_env
        .into_iter()
        .chain(
            secret_vars
                .iter()
                .map(|(k, _)| (k.clone(), "***".to_owned())),
        )
        .collect();
    let mut files: Vec<DryRunFile> = bundle
        .iter()
        .chain([&env_file])
        .map(|f| DryRunFile {
            name: f.name.clone(),
            mode: format!("{:04o}", f.mode),
            size: f.size,
            sha256: f.sha256.clone().unwrap_or_default(),
        })
        .collect();
    files.dedup_by(|a, b| a.name == b.name);
    Ok(Json {
        env: env.name.clone(),
        action: "deploy".to_owned(),
        instance: None,
        dry_run: Some(DryRun {
            hosts: hosts.iter().map(ToString::to_string).collect(),
            remote_path: env.remote_path.clone(),
            files,
            deploy_env: String::from_utf8_lossy(env_file.contents.as_deref().unwrap_or_default())
                .into_owned(),
            command_line: format!(
                "{}{}",
                plan::secret_reads(secret_vars).0,
                plan::remote_command_line(&env.remote_path, &[], &line_env, &env.command)
            ),
            command_env,
            ready_url: env
                .ready_url
                .as_deref()
                .map(slipway_core::secret::redact_url),
        }),
        hosts: Vec::new(),
    })
}
