//! What can be wrong with a slipway.toml, and where: every error that comes
//! from the file carries a [`Location`] and says what would be valid.

use std::fmt;
use std::path::PathBuf;

use slipway_core::image_ref::ImageRefError;

/// A place in a config file: the path as given (relative when given
/// relative), 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The config file, as given.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The tail of an "unknown …" message: the nearest valid name, or the list of
/// valid names when none is close. Displays with its leading ` — `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint(String);

impl Hint {
    /// Suggests the candidate nearest to `wrong` as `` `key` ``, or lists them all.
    pub(crate) fn key(wrong: &str, candidates: &[&str]) -> Self {
        match nearest(wrong, candidates) {
            Some(best) => Self(format!(" — did you mean `{best}`?")),
            None => Self(format!(" — valid keys: {}", backticked(candidates))),
        }
    }

    /// Suggests the nearest table as `[prefix.name]`, or lists them all.
    pub(crate) fn table(wrong: &str, candidates: &[&str], prefix: &str) -> Self {
        let bracket = |name: &str| {
            if prefix.is_empty() {
                format!("[{name}]")
            } else {
                format!("[{prefix}.{name}]")
            }
        };
        match nearest(wrong, candidates) {
            Some(best) => Self(format!(" — did you mean {}?", bracket(best))),
            None => Self(format!(
                " — valid tables and keys: {}",
                candidates
                    .iter()
                    .map(|c| bracket(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Suggests the nearest name as `` `name` ``, or nothing.
    pub(crate) fn name(wrong: &str, candidates: &[&str]) -> Self {
        match nearest(wrong, candidates) {
            Some(best) => Self(format!(" — did you mean `{best}`?")),
            None => Self(String::new()),
        }
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How far apart two names are (Damerau–Levenshtein, so a swap costs one).
pub(crate) fn distance(a: &str, b: &str) -> usize {
    strsim::damerau_levenshtein(a, b)
}

/// The closest candidate, if it is close enough to be a likely typo: at most
/// a third of the word's length in edits, and never more than three.
pub(crate) fn nearest<'a>(wrong: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (wrong.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (distance(wrong, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// `` `a`, `b`, `c` ``.
pub(crate) fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `[images.app]`, or `the top-level table` for the root.
fn table_label(table: &str) -> String {
    if table.is_empty() {
        "the top-level table".to_owned()
    } else {
        format!("[{table}]")
    }
}

/// The names, or a note that there are none.
fn name_list(names: &[String]) -> String {
    if names.is_empty() {
        "none are defined".to_owned()
    } else {
        names.join(", ")
    }
}

/// An error finding, reading or checking slipway.toml; [`ConfigError::kind`]
/// says which, with its facts. Boxed, so a `Result` carrying it stays small.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ConfigError(Box<ConfigErrorKind>);

// A config that cannot be read or used is bad input.
slipway_core::cli::exit_status!(ConfigError => USAGE);

impl ConfigError {
    /// What went wrong, with the facts.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.0
    }

    /// Where in the file, when the error comes from the file.
    pub fn location(&self) -> Option<&Location> {
        use ConfigErrorKind as K;
        match self.kind() {
            K::Syntax { at, .. }
            | K::UnknownKey { at, .. }
            | K::UnknownTable { at, .. }
            | K::MissingKey { at, .. }
            | K::WrongType { at, .. }
            | K::InvalidValue { at, .. }
            | K::InvalidGlob { at, .. }
            | K::InvalidRepository { at, .. }
            | K::MissingRepository { at, .. }
            | K::DuplicateRepository { at, .. }
            | K::InvalidImageName { at, .. }
            | K::UnknownDependency { at, .. }
            | K::DependencyCycle { at, .. }
            | K::UnknownEnvImage { at, .. }
            | K::BundleFileMissing { at, .. } => Some(at),
            K::NotFound { .. }
            | K::Read { .. }
            | K::UnknownImage { .. }
            | K::UnknownEnv { .. }
            | K::WrongTarget { .. } => None,
        }
    }
}

impl From<ConfigErrorKind> for ConfigError {
    fn from(kind: ConfigErrorKind) -> Self {
        Self(Box::new(kind))
    }
}

/// Everything that can be wrong with finding, reading or checking slipway.toml.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    /// No slipway.toml in the start directory or any parent.
    #[error(
        "no slipway.toml in `{}` or any parent directory; create one at the repository root or pass its path with --config",
        .start.display()
    )]
    NotFound {
        /// Where the walk started.
        start: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read config `{}`", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("invalid TOML at {at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The TOML parser's message.
        message: String,
    },
    /// A key no table of this kind has.
    #[error("unknown key `{key}` in {} at {at}{hint}", table_label(.table))]
    UnknownKey {
        /// Where the key is.
        at: Location,
        /// The table holding it, e.g. `images.app`; empty for the top level.
        table: String,
        /// The key.
        key: String,
        /// The nearest valid key, or all of them.
        hint: Hint,
    },
    /// A table header naming no known table.
    #[error("unknown table [{table}] at {at}{hint}")]
    UnknownTable {
        /// Where the header is.
        at: Location,
        /// The full dotted name.
        table: String,
        /// The nearest valid table, or all of them.
        hint: Hint,
    },
    /// A required key is absent.
    #[error("missing key `{key}` in [{table}] at {at}: {what}")]
    MissingKey {
        /// Where the table starts.
        at: Location,
        /// The table, e.g. `envs.staging`.
        table: String,
        /// The key.
        key: String,
        /// What the key is for and an example.
        what: String,
    },
    /// A value of the wrong TOML type.
    #[error("`{key}` in {} at {at}: expected {expected}, found {found}", table_label(.table))]
    WrongType {
        /// Where the value is.
        at: Location,
        /// The table holding it.
        table: String,
        /// The key.
        key: String,
        /// What is valid, with an example.
        expected: String,
        /// What was there, e.g. `a string`.
        found: String,
    },
    /// A value of the right type that does not make sense.
    #[error("`{key}` in {} at {at}: {reason}", table_label(.table))]
    InvalidValue {
        /// Where the value is.
        at: Location,
        /// The table holding it.
        table: String,
        /// The key.
        key: String,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// A glob in a `paths` list that globset rejects.
    #[error("invalid glob `{glob}` in [{table}] {key} at {at}: {reason}")]
    InvalidGlob {
        /// Where the glob is.
        at: Location,
        /// The table holding it.
        table: String,
        /// The key, `paths`.
        key: String,
        /// The glob as written.
        glob: String,
        /// globset's reason.
        reason: String,
    },
    /// An image repository (explicit, or derived from `project.registry`) that
    /// is not a repository.
    #[error("invalid repository `{value}` for [{table}] at {at}: {reason}")]
    InvalidRepository {
        /// Where the value is.
        at: Location,
        /// The table, e.g. `images.app` or `project`.
        table: String,
        /// The repository as written or derived.
        value: String,
        /// Why it is not one.
        reason: ImageRefError,
    },
    /// An image with no `repository` while the project has no `registry`.
    #[error(
        "[images.{image}] at {at} has no repository: set `repository` in [images.{image}] or `registry` in [project], e.g. `registry = \"127.0.0.1:5000/demo\"`"
    )]
    MissingRepository {
        /// Where the image's table starts.
        at: Location,
        /// The image.
        image: String,
    },
    /// Two images pushing to one repository.
    #[error(
        "[images.{image}] at {at} uses repository `{repository}`, which [images.{other}] already uses; give each image its own `repository`"
    )]
    DuplicateRepository {
        /// Where the second image's repository comes from.
        at: Location,
        /// The second image.
        image: String,
        /// The first image.
        other: String,
        /// The repository both use.
        repository: String,
    },
    /// An image name that cannot be a repository component or a target.
    #[error(
        "invalid image name `{name}` at {at}: an image name is lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit, e.g. `app` or `web-worker`"
    )]
    InvalidImageName {
        /// Where the name is.
        at: Location,
        /// The name.
        name: String,
    },
    /// `depends_on` names something that is not an image.
    #[error(
        "[images.{image}] depends_on `{dependency}` at {at}, which is not an image{hint} (images: {})",
        .images.join(", ")
    )]
    UnknownDependency {
        /// Where the name is.
        at: Location,
        /// The image that depends.
        image: String,
        /// The name that is not an image.
        dependency: String,
        /// The nearest image name.
        hint: Hint,
        /// Every image.
        images: Vec<String>,
    },
    /// `depends_on` loops.
    #[error("`depends_on` forms a cycle: {} (at {at})", .cycle.join(" -> "))]
    DependencyCycle {
        /// The `depends_on` of the cycle's first image.
        at: Location,
        /// The images in the loop, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// An `[envs.*] images` entry naming something that is not an image.
    #[error(
        "[envs.{env}] images `{var}` = `{image}` at {at}, which is not an image{hint} (images: {})",
        name_list(.images)
    )]
    UnknownEnvImage {
        /// Where the name is.
        at: Location,
        /// The env.
        env: String,
        /// The variable.
        var: String,
        /// The name that is not an image.
        image: String,
        /// The nearest image name.
        hint: Hint,
        /// Every image.
        images: Vec<String>,
    },
    /// A bundle file that does not exist.
    #[error(
        "bundle file `{}` in [envs.{env}] at {at} does not exist (looked for `{}`; bundle paths are relative to the directory holding slipway.toml)",
        .file.display(), .resolved.display()
    )]
    BundleFileMissing {
        /// Where the path is.
        at: Location,
        /// The env.
        env: String,
        /// The path as written.
        file: PathBuf,
        /// The path looked for.
        resolved: PathBuf,
    },
    /// A name given on the command line (or by another tool) that is not an image.
    #[error("unknown image `{name}` in `{}`{hint} (images, nearest first: {})", .file.display(), name_list(.images))]
    UnknownImage {
        /// The config file.
        file: PathBuf,
        /// The name asked for.
        name: String,
        /// The nearest image name.
        hint: Hint,
        /// Every image, nearest first.
        images: Vec<String>,
    },
    /// A name given on the command line (or by another tool) that is not an env.
    #[error("unknown env `{name}` in `{}`{hint} (envs, nearest first: {})", .file.display(), name_list(.envs))]
    UnknownEnv {
        /// The config file.
        file: PathBuf,
        /// The name asked for.
        name: String,
        /// The nearest env name.
        hint: Hint,
        /// Every env, nearest first.
        envs: Vec<String>,
    },
    /// An env asked of a tool that does not deploy to its target, e.g.
    /// ssh-deploy for an env with `target = "swarm"`.
    #[error("env `{env}` deploys to {target}: use {tool}")]
    WrongTarget {
        /// The env.
        env: String,
        /// Its `target`.
        target: crate::DeployTarget,
        /// The tool that deploys to it.
        tool: &'static str,
    },
}
