//! How the hosts are reached and who deploys: the hosts of a run, SSH
//! authentication (key file, key in a variable, agent, passphrase), host key
//! trust, and the identity written to the lock and the records.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use slipway_config::{Config, Env, Host};
use slipway_core::cli::UsageError;
use slipway_core::output::Output;
use slipway_core::secret::{ExposeSecret as _, SecretString};

use crate::{ConnectArgs, deploy, plan, ssh};

pub(crate) fn connect_plan(
    config: &Config,
    connect: &ConnectArgs,
    out: &Output,
) -> anyhow::Result<(
    Env,
    Option<crate::instance::Selected>,
    Vec<Host>,
    deploy::Connection,
)> {
    let (env, selected) = crate::instance::select(
        config.env_for(&connect.env, slipway_config::DeployTarget::Ssh)?,
        connect.instance.as_deref(),
    )?;
    plan::check_remote_path(&env)?;
    let hosts = hosts(&env, &connect.hosts)?;
    let connection = connection(connect, &env, out)?;
    Ok((env, selected, hosts, connection))
}

pub(crate) fn hosts(env: &Env, given: &[String]) -> anyhow::Result<Vec<Host>> {
    if given.is_empty() {
        return Ok(env.hosts.clone());
    }
    given
        .iter()
        .map(|h| h.parse::<Host>().context("invalid `--host`"))
        .collect()
}

pub(crate) fn connection(
    connect: &ConnectArgs,
    env: &Env,
    out: &Output,
) -> anyhow::Result<deploy::Connection> {
    let passphrase = || {
        passphrase(
            connect.ssh_key_passphrase_env.as_deref(),
            env.ssh_key_passphrase_env.as_deref(),
            out,
        )
    };
    let refuse_encrypted = |key: &str| {
        UsageError::new(format!(
            "{key} is encrypted with a passphrase; put the passphrase in an environment variable and name it with `--ssh-key-passphrase-env VARIABLE` (or `ssh_key_passphrase_env = \"VARIABLE\"` in [envs.{}]), or load the key into ssh-agent",
            env.name
        ))
    };
    let auth = match (&connect.ssh_key, &connect.ssh_key_env) {
        (Some(path), _) => {
            let text = check_private_key_file(path)?;
            let passphrase = passphrase()?;
            if passphrase.is_none() && plan::is_encrypted_key(text.expose_secret()) {
                return Err(refuse_encrypted(&format!("`--ssh-key {}`", path.display())));
            }
            ssh::Auth::KeyFile(path.clone(), passphrase)
        }
        (None, Some(var)) => {
            // A key pasted in place of the variable's name must not be echoed.
            if !slipway_config::is_variable_name(var) {
                return Err(UsageError::new(
                    "`--ssh-key-env` takes the name of an environment variable (letters, digits and `_`, not starting with a digit), e.g. `DEPLOY_KEY`, not the key itself; the value given is not shown: it may be a secret",
                ));
            }
            let key = std::env::var(var).ok().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                UsageError::new(format!(
                    "`--ssh-key-env {var}` names an environment variable that is unset or empty; it must hold the private key itself"
                ))
            })?;
            let key = SecretString::from(key);
            out.mask(&key);
            let passphrase = passphrase()?;
            if passphrase.is_none() && plan::is_encrypted_key(key.expose_secret()) {
                return Err(refuse_encrypted(&format!(
                    "the key in `--ssh-key-env {var}`"
                )));
            }
            ssh::Auth::KeyMemory(key, passphrase)
        }
        (None, None) => ssh::Auth::Agent,
    };
    let trust = match &connect.host_key_fingerprint {
        Some(value) => ssh::Trust::Fingerprint(plan::parse_fingerprint(value)?),
        None => ssh::Trust::KnownHosts {
            path: match &connect.known_hosts {
                Some(path) => path.clone(),
                None => home()?.join(".ssh/known_hosts"),
            },
            accept_new: connect.accept_new_host_key,
        },
    };
    Ok(deploy::Connection {
        auth,
        trust,
        default_user: login_name(),
        timeout: Duration::from(connect.connect_timeout),
        ssh_config: crate::ssh_config::load(connect.ssh_config.as_deref())?
            .map(std::sync::Arc::new),
    })
}

/// The key's passphrase, from the variable `--ssh-key-passphrase-env` (or
/// the env's `ssh_key_passphrase_env`) names; masked, never printed.
fn passphrase(
    flag: Option<&str>,
    config: Option<&str>,
    out: &Output,
) -> anyhow::Result<Option<SecretString>> {
    let Some(var) = flag.or(config) else {
        return Ok(None);
    };
    let shown = if flag.is_some() {
        "--ssh-key-passphrase-env"
    } else {
        "ssh_key_passphrase_env"
    };
    // A passphrase pasted in place of the variable's name must not be echoed.
    if !slipway_config::is_variable_name(var) {
        return Err(UsageError::new(format!(
            "`{shown}` takes the name of an environment variable (letters, digits and `_`, not starting with a digit), e.g. `DEPLOY_KEY_PASSPHRASE`, not the passphrase itself; the value given is not shown: it may be a secret"
        )));
    }
    let value = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            UsageError::new(format!(
                "`{shown} {var}` names an environment variable that is unset or empty; it must hold the key's passphrase"
            ))
        })?;
    slipway_core::secret::check_len(&value, &format!("the passphrase in `{var}`"))?;
    let value = SecretString::from(value);
    out.mask(&value);
    Ok(Some(value))
}

/// Checks before connecting that `--ssh-key` is a readable private key: a
/// missing file or a `.pub` given by mistake is bad input, not an SSH
/// failure. Returns the key's text.
fn check_private_key_file(path: &std::path::Path) -> anyhow::Result<SecretString> {
    // A key pasted in place of the path must not be echoed.
    let shown = path.to_string_lossy();
    if shown.contains("PRIVATE KEY") || shown.contains('\n') {
        return Err(UsageError::new(
            "`--ssh-key` (or `SLIPWAY_SSH_KEY`) holds a private key itself, not a file path; pass a key file, or the key with `--ssh-key-env VARIABLE`; the value given is not shown: it is a secret",
        ));
    }
    // Capped: `--ssh-key /dev/zero` fails naming the file and the limit.
    let text = slipway_core::input::read(path).map_err(|error| {
        UsageError::caused_by(
            format!(
                "cannot read `--ssh-key {}`; give a private key file, e.g. `~/.ssh/id_ed25519`",
                path.display()
            ),
            error,
        )
    })?;
    // OpenSSH (`BEGIN OPENSSH PRIVATE KEY`), PEM (`BEGIN RSA PRIVATE KEY`)
    // and PKCS#8 (`BEGIN [ENCRYPTED ]PRIVATE KEY`) keys all have this marker.
    if !String::from_utf8_lossy(&text).contains("PRIVATE KEY-----") {
        return Err(UsageError::new(format!(
            "`--ssh-key {}` is not a private key (no `-----BEGIN … PRIVATE KEY-----` line); give the private key, not its `.pub`",
            path.display()
        )));
    }
    Ok(SecretString::from(
        String::from_utf8_lossy(&text).into_owned(),
    ))
}

/// The local login name, as OpenSSH defaults the remote user to.
fn login_name() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| UsageError::new("$HOME is unset, so `~/.ssh/known_hosts` cannot be found; pass `--known-hosts FILE` or `--host-key-fingerprint SHA256:…`"))
}

pub(crate) fn identity(config: &Config) -> deploy::Identity {
    let machine = fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let user = login_name().unwrap_or_else(|| "unknown".to_owned());
    let holder = format!("{user}@{machine}");
    let who = std::env::var("GITHUB_ACTOR")
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| holder.clone());
    let git_sha = slipway_git::Repo::discover(&config.root)
        .and_then(|repo| repo.head_sha())
        .map(|sha| sha.as_str().to_owned())
        .ok()
        .or_else(|| std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()));
    let ci = slipway_core::ci::CiContext::detect().ok();
    let ci_job = ci.and_then(|ci| {
        let run = ci.run_id?;
        Some(match (ci.provider, ci.server_url, ci.repository) {
            (slipway_core::ci::Provider::GithubActions, Some(server), Some(repository)) => {
                format!("{server}/{repository}/actions/runs/{run}")
            }
            (slipway_core::ci::Provider::GitlabCi, Some(server), Some(repository)) => {
                format!("{server}/{repository}/-/pipelines/{run}")
            }
            _ => format!("run {run}"),
        })
    });
    deploy::Identity {
        holder,
        machine,
        ci_job,
        who,
        git_sha,
    }
}
