//! What the registry subcommands share: credentials for the registries of a
//! call (found and masked before the first request), the client, and the
//! single-threaded runtime the concurrent requests run on.

use anyhow::Context as _;
use slipway_core::cli::UsageError;
use slipway_core::image_ref::Repository;
use slipway_core::output::Output;
use slipway_core::secret::SecretString;
use slipway_registry::auth::{CredentialSource, Credentials};
use slipway_registry::{RegistryClient, RegistryOptions};

use crate::cli::{RegistryArgs, SideCredentialArgs};

/// Builds the client for `repositories` (each `host/path`): credentials
/// from the flags (password on stdin), else `REGISTRY_USER`/`REGISTRY_PASSWORD`,
/// else the containers auth files and the docker config; every secret is
/// masked before use.
pub(crate) fn client(
    args: &RegistryArgs,
    repositories: &[&Repository],
    out: &Output,
) -> anyhow::Result<RegistryClient> {
    let options = options(args)?;
    let explicit = explicit(args)?;
    let targets: Vec<String> = repositories.iter().map(ToString::to_string).collect();
    Ok(RegistryClient::for_targets(
        targets.iter().map(|t| (t.as_str(), explicit.as_ref())),
        options,
        out,
    )?)
}

/// Builds the client of a promote: the SOURCE's repository with
/// `--src-username` (else the shared credentials), the DESTINATION's with
/// `--dest-username` (else the same).
pub(crate) fn promote_client(
    args: &RegistryArgs,
    sides: &SideCredentialArgs,
    source: &Repository,
    destination: &Repository,
    out: &Output,
) -> anyhow::Result<RegistryClient> {
    let options = options(args)?;
    let shared = explicit(args)?;
    let src = side(
        "src",
        sides.src_username.as_deref(),
        sides.src_password_env.as_deref(),
        sides.src_password_file.as_deref(),
    )?;
    let dest = side(
        "dest",
        sides.dest_username.as_deref(),
        sides.dest_password_env.as_deref(),
        sides.dest_password_file.as_deref(),
    )?;
    let (source, destination) = (source.to_string(), destination.to_string());
    Ok(RegistryClient::for_targets(
        [
            (source.as_str(), src.as_ref().or(shared.as_ref())),
            (destination.as_str(), dest.as_ref().or(shared.as_ref())),
        ],
        options,
        out,
    )?)
}

/// The registry options of `args`; an old `--insecure` is refused with its
/// new name before anything else is read (stdin included).
fn options(args: &RegistryArgs) -> anyhow::Result<RegistryOptions> {
    if args.insecure {
        return Err(UsageError::new(
            "`--insecure` was renamed `--plain-http` (plain HTTP to every registry); for one registry pass --plain-http-registry HOST[:PORT], for a private CA --ca-cert FILE",
        ));
    }
    Ok(RegistryOptions::for_tool("img-tag", &args.connection))
}

/// The credentials of `--username` and `--password-stdin`, if given.
fn explicit(args: &RegistryArgs) -> anyhow::Result<Option<Credentials>> {
    Ok(match (&args.username, args.password_stdin) {
        (Some(username), true) => {
            let password = slipway_core::input::read_stdin_to_string().map_err(|e| {
                UsageError::new(format!("`--password-stdin` cannot read the password: {e}"))
            })?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            if password.is_empty() {
                return Err(UsageError::new(
                    "`--password-stdin` read an empty password: pipe the password or token into img-tag",
                ));
            }
            Some(Credentials {
                username: username.clone(),
                password: SecretString::from(password),
                source: CredentialSource::Flags("`--password-stdin`".to_owned()),
            })
        }
        _ => None,
    })
}

/// The credentials of `--<side>-username` with the password of
/// `--<side>-password-env` or `--<side>-password-file`.
fn side(
    side: &str,
    username: Option<&str>,
    env: Option<&str>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<Credentials>> {
    let Some(username) = username else {
        return Ok(None);
    };
    let (password, source) = match (env, file) {
        (Some(name), _) => {
            // A password pasted in place of the variable's name must not be echoed.
            if !slipway_config::is_variable_name(name) {
                return Err(UsageError::new(format!(
                    "`--{side}-password-env` takes the name of an environment variable (letters, digits and `_`, not starting with a digit), e.g. `{}_REGISTRY_PASSWORD`, not the password itself; the value given is not shown: it may be a secret",
                    side.to_ascii_uppercase()
                )));
            }
            // A token can look like a name (`ghp_16C7…`, `Hunter2pass`): a
            // name that names no variable is not echoed. One that is set
            // (but not UTF-8) is a real variable's name, safe to show.
            let value = match std::env::var(name) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    return Err(UsageError::new(format!(
                        "the environment variable named by `--{side}-password-env` is not set (its name is not shown: it may be the password itself); set it to the password of `{username}`"
                    )));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(UsageError::new(format!(
                        "`--{side}-password-env {name}`: the environment variable `{name}` is not UTF-8; set it to the password of `{username}`"
                    )));
                }
            };
            (value, format!("`${name}` (`--{side}-password-env`)"))
        }
        (None, Some(path)) => {
            let value = slipway_core::input::read_to_string(path).map_err(|e| {
                // What names no file may be the password itself: not echoed,
                // whatever the failure (a JWT is too long for a file name; a
                // token after `file/` is under no directory). Only a path
                // where something exists is shown, with the error.
                if e.kind() == std::io::ErrorKind::NotFound {
                    return UsageError::new(format!(
                        "`--{side}-password-file`: there is no file at the path given (not shown: it may be the password itself); give the path of a file holding the password of `{username}`"
                    ));
                }
                if path.symlink_metadata().is_err() {
                    return UsageError::new(format!(
                        "`--{side}-password-file`: no file can be opened at the path given ({}; the path is not shown: it may be the password itself); give the path of a file holding the password of `{username}`",
                        e.kind()
                    ));
                }
                UsageError::new(format!(
                    "`--{side}-password-file {}` cannot be read: {e}",
                    path.display()
                ))
            })?;
            (
                value,
                format!("`{}` (`--{side}-password-file`)", path.display()),
            )
        }
        (None, None) => {
            return Err(UsageError::new(format!(
                "`--{side}-username {username}` needs its password: give `--{side}-password-env NAME` or `--{side}-password-file FILE` (never the password itself on the command line)"
            )));
        }
    };
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(UsageError::new(format!(
            "the password of `--{side}-username {username}` from {source} is empty"
        )));
    }
    // A password is one line: more is the wrong file or variable (a key, a
    // config), whose content must not go to a registry as a password.
    let lines = password.lines().count();
    if lines > 1 {
        return Err(UsageError::new(format!(
            "the password of `--{side}-username {username}` from {source} has {lines} lines: it must hold the password (or token) alone, on one line"
        )));
    }
    Ok(Some(Credentials {
        username: username.to_owned(),
        password: SecretString::from(password),
        source: CredentialSource::Flags(source),
    }))
}

/// Runs `work` on a single-threaded runtime: the requests of a call are
/// concurrent, but there is no CPU work to spread.
pub(crate) fn block_on<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}
