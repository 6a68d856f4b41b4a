//! Where a deploy's image references come from (`--images-from`, `--image`)
//! and the deploy gate that reads their revision labels from the registry
//! (`--require-revision`): slipway-deploy's `images`, the one copy every
//! deploy tool uses, given ssh-deploy's flags.

use slipway_config::{Config, Env};
use slipway_core::output::Output;

use crate::DeployArgs;

/// A deploy's image references: what `deploy.env` and the record hold.
pub(crate) use slipway_deploy::images::Pinned as Given;

/// The `deploy.env` image variables from `--images-from` and `--image`
/// (flags win), every tag resolved to its digest through the registry
/// (references pinned by digest are not looked up), and checked against
/// `--require-revision` when given: nothing is deployed whose revision
/// label is not the commit being released.
pub(crate) fn given_images(
    config: &Config,
    env: &Env,
    args: &DeployArgs,
    out: &Output,
) -> anyhow::Result<Given> {
    let request = slipway_deploy::images::Request {
        images_from: args.images_from.as_deref(),
        images: &args.images,
        require_revision: args.require_revision.as_deref(),
        registry: &args.registry,
        root: Some(&config.root),
    };
    slipway_deploy::images::pin_images(env, &request, "ssh-deploy", out)
}
