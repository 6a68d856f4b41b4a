//! The commands one target runs, in order, for a backend: the same list the
//! dry run prints and the real run executes.

use std::collections::BTreeMap;

use slipway_core::config::Platform;

use crate::backend::{Backend, BuildSpec, Invocation, secret_arg};
use crate::plan::{Plan, Target};

/// What one target runs.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    /// The commands, in order.
    pub(crate) commands: Vec<Invocation>,
    /// Without buildx, a multi-platform image ends with an OCI index that
    /// Slipway assembles from the per-platform pushes and puts at these tags.
    pub(crate) index_tags: Option<Vec<String>>,
}

/// The commands of `target`. `dependency_ref` is the built reference handed
/// to the dependency arg; `secret_file` names the file an env secret's value
/// is written to (by secret id).
pub(crate) fn work(
    plan: &Plan,
    backend: &dyn Backend,
    target: &Target,
    dependency_ref: Option<&str>,
    secret_file: &dyn Fn(&str) -> String,
) -> Work {
    let mut build_args: BTreeMap<String, String> = target.build_args.clone();
    if let (Some(arg), Some(reference)) = (&target.dependency_arg, dependency_ref) {
        build_args.insert(arg.arg.clone(), reference.to_owned());
    }
    // BuildKit 0.11+ reads it as a build arg for reproducible timestamps;
    // buildah gets `--timestamp` instead.
    if backend.kind() != crate::backend::BackendKind::Buildah {
        build_args
            .entry("SOURCE_DATE_EPOCH".to_owned())
            .or_insert_with(|| plan.source_date_epoch.to_string());
    }
    let secrets: Vec<String> = target
        .secret_sources
        .iter()
        .map(|(id, secret)| secret_arg(backend.kind(), id, secret, &secret_file(id)))
        .collect();
    let spec = |platforms: Vec<String>, tags: Vec<String>, push: bool, file: String| BuildSpec {
        target,
        platforms,
        tags,
        build_args: build_args.clone(),
        secrets: secrets.clone(),
        network: plan.network.as_deref(),
        push,
        load: plan.load,
        output_file: plan.log_dir.join(file),
        source_date_epoch: plan.source_date_epoch,
        no_cache: plan.no_cache,
    };
    let name = &target.name;
    let mut commands = Vec::new();
    if target.platform_values.len() > 1 && !backend.builds_multi_platform() {
        let main_tag = target.tags.first().cloned().unwrap_or_default();
        for platform in &target.platform_values {
            let slug = slug(platform);
            let platform_tag = format!("{main_tag}-{slug}");
            let mut build = backend.build(&spec(
                vec![platform.to_string()],
                vec![platform_tag.clone()],
                false,
                format!("{name}-{slug}.iid"),
            ));
            build.step = format!("build {platform}");
            commands.push(build);
            let digest_file = plan.log_dir.join(format!("{name}-{slug}.digest"));
            if let Some(mut push) = backend.push(&platform_tag, &digest_file) {
                push.platform = Some(platform.clone());
                commands.push(push);
            }
        }
        return Work {
            commands,
            index_tags: Some(target.tags.clone()),
        };
    }
    let file = if backend.builds_multi_platform() {
        format!("{name}.metadata.json")
    } else {
        format!("{name}.iid")
    };
    commands.push(backend.build(&spec(
        target.platforms.clone(),
        target.tags.clone(),
        plan.push,
        file,
    )));
    if plan.push {
        for (i, tag) in target.tags.iter().enumerate() {
            let digest_file = plan.log_dir.join(format!("{name}-{i}.digest"));
            commands.extend(backend.push(tag, &digest_file));
        }
    }
    Work {
        commands,
        index_tags: None,
    }
}

/// `linux/arm64/v8` as `linux-arm64-v8`, for tags and file names.
pub(crate) fn slug(platform: &Platform) -> String {
    platform.to_string().replace('/', "-")
}
