//! The commands one target runs, in order, for a backend: the same list the
//! dry run prints and the real run executes.

use std::collections::BTreeMap;

use slipway_config::Platform;

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
            // Each platform reads and writes its own cache: one ref for all
            // would hold one platform's layers, and the others would miss.
            let platform_target = Target {
                cache_from: target
                    .cache_from
                    .iter()
                    .map(|v| platform_cache(v, &slug))
                    .collect(),
                cache_to: target
                    .cache_to
                    .iter()
                    .map(|v| platform_cache(v, &slug))
                    .collect(),
                ..target.clone()
            };
            let mut build = backend.build(&BuildSpec {
                target: &platform_target,
                ..spec(
                    vec![platform.to_string()],
                    vec![platform_tag.clone()],
                    false,
                    format!("{name}-{slug}.iid"),
                )
            });
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

/// A registry cache value for one platform's build: its reference gets
/// `-<slug>` after its tag (`r/app:main` → `r/app:main-linux-arm64`, the tag
/// that platform's image is pushed as), or after its repository when it has
/// no tag (`r/cache` → `r/cache-linux-arm64`, buildah's cache repository).
/// Other values (`type=inline`, digests) are kept.
pub(crate) fn platform_cache(value: &str, slug: &str) -> String {
    let suffix = |reference: &str| -> String {
        // The tag, or the repository when there is none, ends the reference.
        if reference.contains('@') {
            reference.to_owned()
        } else {
            format!("{reference}-{slug}")
        }
    };
    if !value.contains('=') {
        return suffix(value);
    }
    value
        .split(',')
        .map(|field| match field.strip_prefix("ref=") {
            Some(reference) => format!("ref={}", suffix(reference)),
            None => field.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `linux/arm64/v8` as `linux-arm64-v8`, for tags and file names.
pub(crate) fn slug(platform: &Platform) -> String {
    platform.to_string().replace('/', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(value: &str, expected: &str) {
        assert_eq!(platform_cache(value, "linux-arm64"), expected, "`{value}`");
    }

    #[test]
    fn each_platform_gets_its_own_cache_ref() {
        check(
            "127.0.0.1:5000/demo/app:main",
            "127.0.0.1:5000/demo/app:main-linux-arm64",
        );
        check(
            "127.0.0.1:5000/demo/cache",
            "127.0.0.1:5000/demo/cache-linux-arm64",
        );
        check(
            "type=registry,ref=r.example/cache:app,mode=max",
            "type=registry,ref=r.example/cache:app-linux-arm64,mode=max",
        );
        check("type=inline", "type=inline");
        check("r.example/app@sha256:00", "r.example/app@sha256:00");
    }
}
