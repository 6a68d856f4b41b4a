//! The one place img-build sets up its registry client: the shared
//! defaults ([`RegistryOptions::for_tool`]) and credentials of every
//! registry involved, masked before use.

use slipway_core::output::Output;
use slipway_registry::{RegistryClient, RegistryOptions};

/// A client for `registries` with img-build's options.
pub(crate) fn client<'a>(
    registries: impl IntoIterator<Item = &'a str>,
    out: &Output,
) -> anyhow::Result<RegistryClient> {
    Ok(RegistryClient::for_registries(
        registries,
        None,
        RegistryOptions::for_tool("img-build"),
        out,
    )?)
}
