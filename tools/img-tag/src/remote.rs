//! What the registry subcommands share: credentials for the registries of a
//! call (found and masked before the first request), the client, and the
//! single-threaded runtime the concurrent requests run on.

use anyhow::Context as _;
use slipway_core::cli::UsageError;
use slipway_core::output::Output;
use slipway_core::secret::SecretString;
use slipway_registry::auth::Credentials;
use slipway_registry::{RegistryClient, RegistryOptions};

use crate::cli::RegistryArgs;

/// Builds the client for `registries`: credentials from the flags (password
/// on stdin), else `REGISTRY_USER`/`REGISTRY_PASSWORD`, else the docker
/// config; every secret is masked before use.
pub(crate) fn client(
    args: &RegistryArgs,
    registries: &[&str],
    out: &Output,
) -> anyhow::Result<RegistryClient> {
    if args.insecure {
        return Err(UsageError::new(
            "`--insecure` was renamed `--plain-http` (plain HTTP to every registry); for one registry pass --plain-http-registry HOST[:PORT], for a private CA --ca-cert FILE",
        ));
    }
    let explicit = match (&args.username, args.password_stdin) {
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
            })
        }
        _ => None,
    };
    let options = RegistryOptions::for_tool("img-tag", &args.connection);
    Ok(RegistryClient::for_registries(
        registries.iter().copied(),
        explicit.as_ref(),
        options,
        out,
    )?)
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
