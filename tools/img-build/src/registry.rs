//! The one place img-build sets up its registry client: the options the
//! plan built with [`RegistryOptions::for_tool`] (the shared defaults and
//! registry flags) and credentials of every registry involved, masked
//! before use.

use slipway_core::output::Output;
use slipway_registry::{RegistryClient, RegistryOptions};

/// A client for `registries` with img-build's options.
pub(crate) fn client<'a>(
    registries: impl IntoIterator<Item = &'a str>,
    options: &RegistryOptions,
    out: &Output,
) -> anyhow::Result<RegistryClient> {
    Ok(RegistryClient::for_registries(
        registries,
        None,
        options.clone(),
        out,
    )?)
}
