//! The filters slipway.toml implies: one per image (its `paths`, or the
//! paths derived from its Dockerfile and `.dockerignore`) and
//! `[rebuild_all]`. Shared by `changed-paths` (which images to build) and
//! `image-stale-check` (which published images are stale), so both answer
//! the same question the same way.
//!
//! The one place in `paths` that reads files: each image's Dockerfile and
//! `.dockerignore`, and nothing else.

use std::path::{Path, PathBuf};

use super::{FilterSpec, PathsError, PatternSpec, docker, exclude_filter};
use slipway_config::{Config, PathPattern};

/// The name of the filter `[rebuild_all]` becomes.
pub const REBUILD_ALL: &str = "rebuild_all";

/// Why the filters of a slipway.toml could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProjectFiltersError {
    /// An image without `paths` whose Dockerfile cannot be read.
    #[error(
        "image `{image}` has no `paths`, so they are derived from its Dockerfile, which cannot be read"
    )]
    Dockerfile {
        /// The image's name.
        image: String,
        /// The read error (it names the file).
        #[source]
        source: std::io::Error,
    },
    /// A `.dockerignore` that exists but cannot be read.
    #[error("cannot read the `.dockerignore` of image `{image}`")]
    DockerIgnoreRead {
        /// The image's name.
        image: String,
        /// The read error (it names the file).
        #[source]
        source: std::io::Error,
    },
    /// A `.dockerignore` that is not valid.
    #[error(transparent)]
    DockerIgnore(#[from] PathsError),
}

impl slipway_core::cli::ExitStatus for ProjectFiltersError {
    fn exit_code(&self) -> Option<u8> {
        match self {
            Self::DockerIgnore(error) => error.exit_code(),
            Self::Dockerfile { .. } | Self::DockerIgnoreRead { .. } => {
                Some(slipway_core::cli::exit::FAILURE)
            }
        }
    }
}

/// One filter per image of `config` (its `paths`, or the paths derived from
/// its build) and `[rebuild_all]` when it has paths, with patterns relative
/// to `repo_root` (slipway.toml's paths are relative to its own directory).
pub fn config_filters(
    config: &Config,
    repo_root: &Path,
) -> Result<Vec<FilterSpec>, ProjectFiltersError> {
    let origin = config.path.display().to_string();
    let root = canonical(&config.root);
    let prefix = root
        .strip_prefix(canonical(repo_root))
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default();
    let relative = |path: &Path| join(&prefix, &path.to_string_lossy());
    let to_specs = |patterns: &[PathPattern], table: &str| -> Vec<PatternSpec> {
        patterns
            .iter()
            .map(|p| {
                let glob = if prefix.is_empty() {
                    p.pattern.clone()
                } else {
                    format!("{}/{}", escape_prefix(&prefix), p.pattern)
                };
                let text = if p.negated { format!("!{glob}") } else { glob };
                PatternSpec::new(text, format!("{origin} [{table}]"))
            })
            .collect()
    };
    let mut specs = Vec::new();
    for (name, image) in &config.images {
        if !image.paths.is_empty() {
            specs.push(exclude_filter(
                name,
                to_specs(&image.paths, &format!("images.{name}")),
            ));
            continue;
        }
        let dockerfile = slipway_core::input::read_to_string(&config.resolve(&image.dockerfile))
            .map_err(|source| ProjectFiltersError::Dockerfile {
                image: name.clone(),
                source,
            })?;
        let context = relative(&image.context);
        let ignore_path = config.resolve(&image.context).join(".dockerignore");
        let ignore = match slipway_core::input::read_to_string(&ignore_path) {
            Ok(text) => Some(docker::DockerIgnore::parse(
                &text,
                &context,
                &ignore_path.display().to_string(),
            )?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ProjectFiltersError::DockerIgnoreRead {
                    image: name.clone(),
                    source,
                });
            }
        };
        specs.push(docker::derived_filter(
            name,
            &context,
            &relative(&image.dockerfile),
            &dockerfile,
            ignore,
        ));
    }
    if !config.rebuild_all.paths.is_empty() {
        specs.push(exclude_filter(
            REBUILD_ALL,
            to_specs(&config.rebuild_all.paths, "rebuild_all"),
        ));
    }
    Ok(specs)
}

fn canonical(path: &Path) -> PathBuf {
    fs_err::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// `prefix/path` with `.` segments dropped.
fn join(prefix: &str, path: &str) -> String {
    prefix
        .split('/')
        .chain(path.split('/'))
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// A directory prefix with glob characters escaped.
fn escape_prefix(prefix: &str) -> String {
    prefix
        .chars()
        .flat_map(|c| {
            let escape = "*?[]{}\\!()@+".contains(c);
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(prefix: &str, path: &str, expected: &str) {
        assert_eq!(join(prefix, path), expected, "join(`{prefix}`, `{path}`)");
    }

    #[test]
    fn joins_drop_dot_segments() {
        check("", "app", "app");
        check("", ".", "");
        check("sub", "./app/Dockerfile", "sub/app/Dockerfile");
        check("a/b", "c", "a/b/c");
    }

    #[test]
    fn prefixes_escape_glob_characters() {
        assert_eq!(escape_prefix("a[1]/b*"), "a\\[1\\]/b\\*");
    }
}
