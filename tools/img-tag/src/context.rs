//! The facts `compute` works from: the flags, handed to the shared gathering
//! in `slipway_tags::context` (flags first, then the CI context of
//! `slipway_core::ci`, then git).

use std::path::Path;

use slipway_core::ci::CiContext;
use slipway_tags::TagContext;
use slipway_tags::context::{ContextInputs, gather};

use crate::cli::ContextArgs;

/// Builds the tag context. `env` looks up environment variables (the real
/// process environment in `run`); `default_branch_from_config` is
/// slipway.toml's `[project] default_branch`, if any.
pub(crate) fn tag_context(
    args: &ContextArgs,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    default_branch_from_config: Option<String>,
) -> anyhow::Result<TagContext> {
    let inputs = ContextInputs {
        event: args.event.clone(),
        git_ref: args.git_ref.clone(),
        pr_number: args.pr_number,
        sha: args.sha.clone(),
        default_branch: args.default_branch.clone(),
    };
    let ci = CiContext::from_env_or_github_variables(env)?;
    Ok(gather(&inputs, &ci, env, cwd, default_branch_from_config)?)
}
