//! From slipway.toml text to a checked [`Config`].
//!
//! The text is parsed into toml's span-keeping tree (`DeTable`) and walked by
//! hand rather than through serde, so every message can name the exact line
//! and column of the offending key or value and say what would be valid
//! there. Checks that span tables (dependencies, repositories, env images)
//! run after the walk, with the locations kept from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::error::{ConfigError, ConfigErrorKind, Hint, Location};
use super::values::{self, BuildSecret, Host, PathPattern, Platform, is_variable_name};
use super::{
    CommandTarget, Config, DeployTarget, Env, Image, KubernetesSource, KubernetesTarget, Located,
    Project, RebuildAll, Stale, SwarmTarget, Tags, Workload,
};
use slipway_core::image_ref::Repository;

const TOP_KEYS: &[&str] = &["project", "rebuild_all", "images", "tags", "stale", "envs"];
const PROJECT_KEYS: &[&str] = &["name", "registry", "default_branch", "source", "builder"];
const REBUILD_ALL_KEYS: &[&str] = &["paths"];
const IMAGE_KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "target",
    "repository",
    "build_args",
    "labels",
    "platforms",
    "paths",
    "depends_on",
    "depends_on_arg",
    "cache_from",
    "cache_to",
    "secrets",
    "default",
    "builder",
];
const TAGS_KEYS: &[&str] = &["rules", "flavor"];
const STALE_KEYS: &[&str] = &["tag"];
const ENV_KEYS: &[&str] = &[
    "target",
    "hosts",
    "remote_path",
    "bundle",
    "command",
    "images",
    "ready_url",
    "ready_timeout",
    "lock_timeout",
    "keep_releases",
    "ssh_key_passphrase_env",
    "strip_components",
    "env",
    "batch",
    "preflight",
    "instances",
    "max_instances",
    "port_range",
    "teardown",
];

/// The keys every env has, whatever its target; an env that does not
/// deploy over SSH has these and its target's table.
const TARGET_ENV_KEYS: &[&str] = &[
    "target",
    "images",
    "ready_url",
    "ready_timeout",
    "lock_timeout",
    "keep_releases",
    "env",
];
const SWARM_KEYS: &[&str] = &[
    "compose_file",
    "stack",
    "docker_host",
    "prune",
    "converge_timeout",
];
const COMMAND_KEYS: &[&str] = &["run", "history", "timeout"];
const DEFAULT_CONVERGE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

const DEFAULT_BRANCH: &str = "main";
const DEFAULT_DEPENDS_ON_ARG: &str = "BASE_IMAGE";
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DEFAULT_KEEP_RELEASES: u32 = 10;

const PATHS_EXAMPLE: &str = r#"an array of globs like ["app/**", "!app/docs/**"]"#;
const DURATION_HINT: &str = "use e.g. `30s`, `2m`, `1h30m`";

/// Parses and checks `text`, read from `path`.
pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let source = Source::new(path, text);
    let document = DeTable::parse(text).map_err(|error| {
        ConfigError::from(ConfigErrorKind::Syntax {
            at: source.at(error.span().map_or(0, |span| span.start)),
            message: error.message().to_owned(),
        })
    })?;
    let top = Table::open(
        &source,
        String::new(),
        0,
        document.get_ref(),
        Some(TOP_KEYS),
    )?;
    let root = path.parent().unwrap_or(Path::new("")).to_owned();

    let project = project(
        top.table("project", Some(PROJECT_KEYS), "[project]")?,
        &root,
    )?;
    let rebuild_all = match top.table("rebuild_all", Some(REBUILD_ALL_KEYS), "[rebuild_all]")? {
        Some(table) => RebuildAll {
            paths: patterns(&table, "paths")?,
        },
        None => RebuildAll::default(),
    };

    let mut drafts = Vec::new();
    if let Some(images) = top.table("images", None, "[images.app]")? {
        for (key, value) in &images.entries {
            drafts.push(image(&images, key, value, &project)?);
        }
    }
    check_images(&drafts)?;
    let mut image_names: Vec<&str> = drafts.iter().map(|d| d.image.name.as_str()).collect();
    image_names.sort_unstable();

    let tags = match top.table("tags", Some(TAGS_KEYS), "[tags]")? {
        Some(table) => Tags {
            rules: table.strings(
                "rules",
                r#"an array of strings like ["type=sha", "type=ref,event=branch"]"#,
            )?,
            flavor: table.strings("flavor", r#"an array of strings like ["latest=auto"]"#)?,
        },
        None => Tags::default(),
    };

    let stale = match top.table("stale", Some(STALE_KEYS), "[stale]")? {
        Some(table) => {
            let tag = table.string("tag")?;
            if let Some(tag) = &tag
                && let Err(error) = tag.value.parse::<slipway_core::image_ref::Tag>()
            {
                return Err(table.invalid("tag", tag.at.clone(), error.to_string()));
            }
            Stale { tag }
        }
        None => Stale::default(),
    };

    let mut envs = BTreeMap::new();
    if let Some(table) = top.table("envs", None, "[envs.staging]")? {
        for (key, value) in &table.entries {
            let env = env(&table, key, value, &root, &image_names, &project.name)?;
            envs.insert(env.name.clone(), env);
        }
    }

    let images = drafts
        .into_iter()
        .map(|d| (d.image.name.clone(), d.image))
        .collect();
    Ok(Config {
        path: path.to_owned(),
        root,
        project,
        rebuild_all,
        images,
        tags,
        stale,
        envs,
    })
}

/// The text, for turning byte offsets into lines and columns.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file,
            text,
            line_starts,
        }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    fn at(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|start| *start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self
            .text
            .get(line_start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        Location {
            file: self.file.to_owned(),
            line,
            column,
        }
    }

    /// The offset of the `[` of the table header `key` is part of, if it is
    /// one (`[imagez]`, or `imagez` in `[imagez.app]`). TOML puts nothing
    /// else on a header's line, so a line starting with `[` is a header.
    fn header_of(&self, key: &Key<'_>, value: &Value<'_>) -> Option<usize> {
        if !value.get_ref().is_table() {
            return None;
        }
        let start = key.span().start;
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let indent =
            self.text[line_start..start].len() - self.text[line_start..start].trim_start().len();
        self.text[line_start + indent..]
            .starts_with('[')
            .then_some(line_start + indent)
    }
}

type Key<'i> = Spanned<DeString<'i>>;
type Value<'i> = Spanned<DeValue<'i>>;
/// A key and its string value, each with its location.
type StringEntry = (Located<String>, Located<String>);

/// A TOML table being read, with its entries in file order.
struct Table<'a, 'i> {
    source: &'a Source<'a>,
    /// Dotted name, e.g. `images.app`; empty for the top level.
    name: String,
    /// Where the table starts.
    at: Location,
    entries: Vec<(&'a Key<'i>, &'a Value<'i>)>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// Opens `table`; with `allowed`, the first key (in file order) not in it
    /// is an error.
    fn open(
        source: &'a Source<'a>,
        name: String,
        start: usize,
        table: &'a DeTable<'i>,
        allowed: Option<&[&str]>,
    ) -> Result<Self, ConfigError> {
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let table = Self {
            source,
            at: source.at(start),
            name,
            entries,
        };
        if let Some(allowed) = allowed {
            for (key, value) in &table.entries {
                let key_name: &str = key.get_ref();
                if allowed.contains(&key_name) {
                    continue;
                }
                return Err(if let Some(header) = source.header_of(key, value) {
                    ConfigError::from(ConfigErrorKind::UnknownTable {
                        at: source.at(header),
                        table: table.child(key_name),
                        hint: Hint::table(key_name, allowed, &table.name),
                    })
                } else {
                    ConfigError::from(ConfigErrorKind::UnknownKey {
                        at: source.at(key.span().start),
                        table: table.name.clone(),
                        key: key_name.to_owned(),
                        hint: Hint::key(key_name, allowed),
                    })
                });
            }
        }
        Ok(table)
    }

    fn child(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| *v)
    }

    fn at(&self, value: &Value<'_>) -> Location {
        self.source.at(value.span().start)
    }

    fn wrong_type(
        &self,
        key: &str,
        value: &Value<'_>,
        expected: &str,
        found: String,
    ) -> ConfigError {
        ConfigError::from(ConfigErrorKind::WrongType {
            at: self.at(value),
            table: self.name.clone(),
            key: key.to_owned(),
            expected: expected.to_owned(),
            found,
        })
    }

    fn invalid(&self, key: &str, at: Location, reason: String) -> ConfigError {
        ConfigError::from(ConfigErrorKind::InvalidValue {
            at,
            table: self.name.clone(),
            key: key.to_owned(),
            reason,
        })
    }

    /// The sub-table `key`, which must be a table.
    fn table(
        &self,
        key: &str,
        allowed: Option<&[&str]>,
        example: &str,
    ) -> Result<Option<Table<'a, 'i>>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        self.as_table(key, value, allowed, example).map(Some)
    }

    fn as_table(
        &self,
        key: &str,
        value: &'a Value<'i>,
        allowed: Option<&[&str]>,
        example: &str,
    ) -> Result<Table<'a, 'i>, ConfigError> {
        match value.get_ref() {
            DeValue::Table(table) => Table::open(
                self.source,
                self.child(key),
                value.span().start,
                table,
                allowed,
            ),
            other => {
                Err(self.wrong_type(key, value, &format!("a table like {example}"), found(other)))
            }
        }
    }

    fn string(&self, key: &str) -> Result<Option<Located<String>>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value.get_ref() {
            DeValue::String(text) => Ok(Some(Located {
                value: text.to_string(),
                at: self.at(value),
            })),
            other => Err(self.wrong_type(key, value, "a string", found(other))),
        }
    }

    /// A string that must be present and not empty; `what` explains it.
    fn required_string(&self, key: &str, what: &str) -> Result<Located<String>, ConfigError> {
        match self.string(key)? {
            Some(text) if text.value.is_empty() => {
                Err(self.invalid(key, text.at, format!("must not be empty; {what}")))
            }
            Some(text) => Ok(text),
            None => Err(ConfigError::from(ConfigErrorKind::MissingKey {
                at: self.at.clone(),
                table: self.name.clone(),
                key: key.to_owned(),
                what: what.to_owned(),
            })),
        }
    }

    /// An optional string that must not be empty when present.
    fn non_empty_string(&self, key: &str) -> Result<Option<Located<String>>, ConfigError> {
        match self.string(key)? {
            Some(text) if text.value.is_empty() => Err(self.invalid(
                key,
                text.at,
                "must not be empty; leave the key out instead".to_owned(),
            )),
            other => Ok(other),
        }
    }

    fn strings(&self, key: &str, expected: &str) -> Result<Vec<Located<String>>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.wrong_type(key, value, expected, found(value.get_ref())));
        };
        items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(text) => Ok(Located {
                    value: text.to_string(),
                    at: self.at(item),
                }),
                other => Err(self.wrong_type(
                    key,
                    item,
                    expected,
                    format!("{} in the array", found(other)),
                )),
            })
            .collect()
    }

    /// A table of strings, e.g. `build_args = { RUST_VERSION = "1.95" }`.
    /// This table's own entries as strings (a table of strings whose keys are free).
    fn string_map_of_self(&self, expected: &str) -> Result<Vec<StringEntry>, ConfigError> {
        self.entries
            .iter()
            .map(|(k, v)| match v.get_ref() {
                DeValue::String(text) => Ok((
                    Located {
                        value: k.get_ref().to_string(),
                        at: self.source.at(k.span().start),
                    },
                    Located {
                        value: text.to_string(),
                        at: self.at(v),
                    },
                )),
                other => Err(ConfigError::from(ConfigErrorKind::InvalidValue {
                    at: self.at(v),
                    table: self.name.clone(),
                    key: k.get_ref().to_string(),
                    reason: format!("expected {expected}, found {}", found(other)),
                })),
            })
            .collect()
    }

    fn string_map(&self, key: &str, expected: &str) -> Result<Vec<StringEntry>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(Vec::new());
        };
        let DeValue::Table(table) = value.get_ref() else {
            return Err(self.wrong_type(key, value, expected, found(value.get_ref())));
        };
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
            .into_iter()
            .map(|(k, v)| match v.get_ref() {
                DeValue::String(text) => Ok((
                    Located {
                        value: k.get_ref().to_string(),
                        at: self.source.at(k.span().start),
                    },
                    Located {
                        value: text.to_string(),
                        at: self.at(v),
                    },
                )),
                other => Err(self.wrong_type(
                    key,
                    v,
                    expected,
                    format!("{} for `{}`", found(other), k.get_ref()),
                )),
            })
            .collect()
    }

    fn boolean(&self, key: &str, expected: &str) -> Result<Option<bool>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value.get_ref() {
            DeValue::Boolean(flag) => Ok(Some(*flag)),
            other => Err(self.wrong_type(key, value, expected, found(other))),
        }
    }

    fn integer(&self, key: &str, expected: &str) -> Result<Option<Located<i64>>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value.get_ref() {
            DeValue::Integer(integer) => {
                match i64::from_str_radix(integer.as_str(), integer.radix()) {
                    Ok(number) => Ok(Some(Located {
                        value: number,
                        at: self.at(value),
                    })),
                    Err(_) => Err(self.wrong_type(
                        key,
                        value,
                        expected,
                        "an integer out of range".to_owned(),
                    )),
                }
            }
            other => Err(self.wrong_type(key, value, expected, found(other))),
        }
    }

    fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let Some(text) = self.string(key)? else {
            return Ok(default);
        };
        slipway_core::duration::parse(&text.value).map_err(|error| {
            let why = match error {
                slipway_core::duration::DurationError::Syntax { .. } => {
                    format!("`{}` is not a duration; {DURATION_HINT}", text.value)
                }
                range => format!("`{key}` {range}"),
            };
            self.invalid(key, text.at, why)
        })
    }
}

/// `a string`, `an integer`, … for "found …".
fn found(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
    .to_owned()
}

fn project(table: Option<Table<'_, '_>>, root: &Path) -> Result<Project, ConfigError> {
    let Some(table) = table else {
        return Ok(Project {
            name: directory_name(root),
            registry: None,
            default_branch: DEFAULT_BRANCH.to_owned(),
            source: None,
            builder: None,
        });
    };
    let registry = match table.string("registry")? {
        None => None,
        Some(text) => Some(registry(&table, text)?),
    };
    Ok(Project {
        name: table
            .non_empty_string("name")?
            .map_or_else(|| directory_name(root), |n| n.value),
        registry,
        default_branch: table
            .non_empty_string("default_branch")?
            .map_or_else(|| DEFAULT_BRANCH.to_owned(), |b| b.value),
        source: table.non_empty_string("source")?.map(|s| s.value),
        builder: builder(&table)?,
    })
}

/// `builder`: a buildx builder's name (`docker buildx create --name`).
fn builder(table: &Table<'_, '_>) -> Result<Option<String>, ConfigError> {
    let Some(text) = table.string("builder")? else {
        return Ok(None);
    };
    match values::check_builder_name(&text.value) {
        Ok(()) => Ok(Some(text.value)),
        Err(reason) => Err(table.invalid("builder", text.at, reason)),
    }
}

/// `project.registry`, a repository prefix.
fn registry(table: &Table<'_, '_>, text: Located<String>) -> Result<Repository, ConfigError> {
    // A bare host would parse as a Docker Hub repository (`registry.example.com`
    // is a valid path component), silently pushing to the wrong place.
    let first = text.value.split('/').next().unwrap_or_default();
    let bare_host = !text.value.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    if bare_host {
        return Err(table.invalid(
            "registry",
            text.at,
            format!(
                "`{0}` is a registry host without a repository path; write e.g. `{0}/demo`",
                text.value
            ),
        ));
    }
    text.value.parse().map_err(|reason| {
        ConfigError::from(ConfigErrorKind::InvalidRepository {
            at: text.at,
            table: table.name.clone(),
            value: text.value.clone(),
            reason,
        })
    })
}

/// The last component of `root` (made absolute), or `project`.
fn directory_name(root: &Path) -> String {
    let dir = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    std::path::absolute(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".to_owned())
}

/// A `paths` list: globs checked as the paths module reads them, `!` for
/// exclusions.
fn patterns(table: &Table<'_, '_>, key: &str) -> Result<Vec<PathPattern>, ConfigError> {
    table
        .strings(key, PATHS_EXAMPLE)?
        .into_iter()
        .map(|glob| {
            let (pattern, negated) = match glob.value.strip_prefix('!') {
                Some(rest) => (rest, true),
                None => (glob.value.as_str(), false),
            };
            let invalid = |reason: String| {
                ConfigError::from(ConfigErrorKind::InvalidGlob {
                    at: glob.at.clone(),
                    table: table.name.clone(),
                    key: key.to_owned(),
                    glob: glob.value.clone(),
                    reason,
                })
            };
            if pattern.is_empty() {
                return Err(invalid("the pattern is empty".to_owned()));
            }
            // Read exactly as the paths module will match it (paths-filter's
            // picomatch rules: `*` stays inside one directory, `**` crosses
            // them, an unclosed `[` is a literal).
            slipway_glob::check_pattern(pattern).map_err(invalid)?;
            Ok(PathPattern {
                pattern: pattern.to_owned(),
                negated,
            })
        })
        .collect()
}

/// An image with the locations later checks need.
struct ImageDraft {
    image: Image,
    depends_on: Vec<Located<String>>,
    /// Where the repository comes from: `repository`, or the table.
    repository_at: Location,
}

fn image<'a, 'i>(
    images: &Table<'a, 'i>,
    key: &'a Key<'i>,
    value: &'a Value<'i>,
    project: &Project,
) -> Result<ImageDraft, ConfigError> {
    let name: &str = key.get_ref();
    let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        return Err(ConfigError::from(ConfigErrorKind::InvalidImageName {
            at: images.source.at(key.span().start),
            name: name.to_owned(),
        }));
    }
    let table = images.as_table(name, value, Some(IMAGE_KEYS), &format!("[images.{name}]"))?;

    let context = table
        .non_empty_string("context")?
        .map_or_else(|| PathBuf::from("."), |c| PathBuf::from(c.value));
    let dockerfile = match table.non_empty_string("dockerfile")? {
        Some(path) => PathBuf::from(path.value),
        None if context == Path::new(".") => PathBuf::from("Dockerfile"),
        None => context.join("Dockerfile"),
    };

    let (repository, repository_at) = match table.string("repository")? {
        Some(text) => {
            let repository = text.value.parse().map_err(|reason| {
                ConfigError::from(ConfigErrorKind::InvalidRepository {
                    at: text.at.clone(),
                    table: table.name.clone(),
                    value: text.value.clone(),
                    reason,
                })
            })?;
            (repository, text.at)
        }
        None => match &project.registry {
            Some(registry) => {
                let repository = registry.join(name).map_err(|reason| {
                    ConfigError::from(ConfigErrorKind::InvalidRepository {
                        at: table.at.clone(),
                        table: table.name.clone(),
                        value: format!("{registry}/{name}"),
                        reason,
                    })
                })?;
                (repository, table.at.clone())
            }
            None => {
                return Err(ConfigError::from(ConfigErrorKind::MissingRepository {
                    at: table.at.clone(),
                    image: name.to_owned(),
                }));
            }
        },
    };

    let mut build_args = BTreeMap::new();
    for (arg, text) in table.string_map(
        "build_args",
        r#"a table of strings like { RUST_VERSION = "1.95" }"#,
    )? {
        if !is_variable_name(&arg.value) {
            return Err(table.invalid(
                "build_args",
                arg.at,
                format!("`{}` is not a build argument name; use letters, digits and `_`, not starting with a digit", arg.value),
            ));
        }
        build_args.insert(arg.value, text.value);
    }
    let labels = table
        .string_map(
            "labels",
            r#"a table of strings like { "com.example.team" = "web" }"#,
        )?
        .into_iter()
        .map(|(k, v)| (k.value, v.value))
        .collect();

    let platforms = table
        .strings("platforms", r#"an array of strings like ["linux/amd64"]"#)?
        .into_iter()
        .map(|p| {
            p.value
                .parse::<Platform>()
                .map_err(|e| table.invalid("platforms", p.at, e.to_string()))
        })
        .collect::<Result<_, _>>()?;

    let depends_on = table.strings("depends_on", r#"an array of image names like ["base"]"#)?;
    let depends_on_arg = match table.string("depends_on_arg")? {
        Some(arg) if !is_variable_name(&arg.value) => {
            return Err(table.invalid(
                "depends_on_arg",
                arg.at,
                format!("`{}` is not a build argument name; use letters, digits and `_`, e.g. `BASE_IMAGE`", arg.value),
            ));
        }
        Some(arg) => arg.value,
        None => DEFAULT_DEPENDS_ON_ARG.to_owned(),
    };

    let cache_from = plain_strings(
        &table,
        "cache_from",
        r#"an array of strings like ["type=registry,ref=127.0.0.1:5000/demo/cache:app"]"#,
    )?;
    let cache_to = plain_strings(
        &table,
        "cache_to",
        r#"an array of strings like ["type=inline"]"#,
    )?;
    let secrets = table
        .strings(
            "secrets",
            r#"an array of strings like ["id=npm,env=NPM_TOKEN"]"#,
        )?
        .into_iter()
        .map(|s| {
            s.value
                .parse::<BuildSecret>()
                .map_err(|e| table.invalid("secrets", s.at, e.to_string()))
        })
        .collect::<Result<_, _>>()?;

    let mut names = BTreeSet::new();
    let depends_on_names = depends_on
        .iter()
        .filter(|d| names.insert(d.value.clone()))
        .map(|d| d.value.clone())
        .collect();

    Ok(ImageDraft {
        image: Image {
            name: name.to_owned(),
            context,
            dockerfile,
            target: table.non_empty_string("target")?.map(|t| t.value),
            repository,
            build_args,
            labels,
            platforms,
            paths: patterns(&table, "paths")?,
            depends_on: depends_on_names,
            depends_on_arg,
            cache_from,
            cache_to,
            secrets,
            is_default: table
                .boolean("default", "`true` or `false`")?
                .unwrap_or(true),
            builder: builder(&table)?.or_else(|| project.builder.clone()),
            at: table.at.clone(),
        },
        depends_on,
        repository_at,
    })
}

/// Strings kept verbatim; empty ones are an error.
fn plain_strings(
    table: &Table<'_, '_>,
    key: &str,
    expected: &str,
) -> Result<Vec<String>, ConfigError> {
    table
        .strings(key, expected)?
        .into_iter()
        .map(|s| {
            if s.value.is_empty() {
                Err(table.invalid(key, s.at, "an entry is empty".to_owned()))
            } else {
                Ok(s.value)
            }
        })
        .collect()
}

/// Checks across images: dependencies exist and do not loop, and no two
/// images share a repository.
fn check_images(drafts: &[ImageDraft]) -> Result<(), ConfigError> {
    let mut names: Vec<&str> = drafts.iter().map(|d| d.image.name.as_str()).collect();
    names.sort_unstable();
    for draft in drafts {
        for dependency in &draft.depends_on {
            if !names.contains(&dependency.value.as_str()) {
                return Err(ConfigError::from(ConfigErrorKind::UnknownDependency {
                    at: dependency.at.clone(),
                    image: draft.image.name.clone(),
                    dependency: dependency.value.clone(),
                    hint: Hint::name(&dependency.value, &names),
                    images: names.iter().map(|n| (*n).to_owned()).collect(),
                }));
            }
        }
    }
    if let Some(error) = find_cycle(drafts) {
        return Err(error);
    }
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for draft in drafts {
        let repository = draft.image.repository.to_string();
        if let Some(other) = seen.insert(repository.clone(), &draft.image.name) {
            return Err(ConfigError::from(ConfigErrorKind::DuplicateRepository {
                at: draft.repository_at.clone(),
                image: draft.image.name.clone(),
                other: other.to_owned(),
                repository,
            }));
        }
    }
    Ok(())
}

/// A depth-first search in name order; the first back edge is the cycle.
fn find_cycle(drafts: &[ImageDraft]) -> Option<ConfigError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        index: usize,
        drafts: &[ImageDraft],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<ConfigError> {
        marks[index] = Mark::Open;
        stack.push(index);
        for dependency in &drafts[index].depends_on {
            let Some(next) = drafts.iter().position(|d| d.image.name == dependency.value) else {
                continue;
            };
            match marks[next] {
                Mark::Done => {}
                Mark::New => {
                    if let Some(error) = visit(next, drafts, marks, stack) {
                        return Some(error);
                    }
                }
                Mark::Open => {
                    let from = stack.iter().position(|i| *i == next).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[from..]
                        .iter()
                        .map(|i| drafts[*i].image.name.clone())
                        .collect();
                    cycle.push(drafts[next].image.name.clone());
                    // The first image's `depends_on` entry that starts the loop.
                    let first = &drafts[stack[from]];
                    let second = &cycle[1];
                    let at = first
                        .depends_on
                        .iter()
                        .find(|d| &d.value == second)
                        .map_or_else(|| first.image.at.clone(), |d| d.at.clone());
                    return Some(ConfigError::from(ConfigErrorKind::DependencyCycle {
                        at,
                        cycle,
                    }));
                }
            }
        }
        stack.pop();
        marks[index] = Mark::Done;
        None
    }

    let mut order: Vec<usize> = (0..drafts.len()).collect();
    order.sort_by(|a, b| drafts[*a].image.name.cmp(&drafts[*b].image.name));
    let mut marks = vec![Mark::New; drafts.len()];
    for index in order {
        if marks[index] == Mark::New
            && let Some(error) = visit(index, drafts, &mut marks, &mut Vec::new())
        {
            return Some(error);
        }
    }
    None
}

fn env<'a, 'i>(
    envs: &Table<'a, 'i>,
    key: &'a Key<'i>,
    value: &'a Value<'i>,
    root: &Path,
    image_names: &[&str],
    project: &str,
) -> Result<Env, ConfigError> {
    let name: &str = key.get_ref();
    let example = format!("[envs.{name}]");
    let table = envs.as_table(name, value, None, &example)?;
    let target = env_target(&table)?;
    let (swarm, command_target) = match target {
        DeployTarget::Ssh => {
            envs.as_table(name, value, Some(ENV_KEYS), &example)?;
            (None, None)
        }
        other => {
            check_target_keys(&table, name, other)?;
            let swarm = match other {
                DeployTarget::Swarm => Some(swarm_target(&table, root, project, name)?),
                _ => None,
            };
            let command = match other {
                DeployTarget::Command => Some(command_target(&table)?),
                _ => None,
            };
            let kubernetes = match other {
                DeployTarget::Kubernetes => {
                    Some(kubernetes_target(&table, root, name, image_names)?)
                }
                _ => None,
            };
            let mut env = target_env(&table, name, image_names, other, swarm, command)?;
            env.kubernetes = kubernetes;
            return Ok(env);
        }
    };

    let host_texts = table.strings(
        "hosts",
        r#"an array of strings like ["deploy@web1.example.com:22"]"#,
    )?;
    if host_texts.is_empty() {
        let what = r#"the SSH hosts to deploy to, e.g. `hosts = ["deploy@web1.example.com"]`"#;
        return Err(match table.get("hosts") {
            Some(value) => table.invalid(
                "hosts",
                table.at(value),
                format!("must not be empty; {what}"),
            ),
            None => ConfigError::from(ConfigErrorKind::MissingKey {
                at: table.at.clone(),
                table: table.name.clone(),
                key: "hosts".to_owned(),
                what: what.to_owned(),
            }),
        });
    }
    let hosts = host_texts
        .into_iter()
        .map(|h| {
            h.value
                .parse::<Host>()
                .map_err(|e| table.invalid("hosts", h.at, e.to_string()))
        })
        .collect::<Result<_, _>>()?;

    let remote_path = table.required_string(
        "remote_path",
        "the absolute directory on each host that holds the bundle and the release records, e.g. `/srv/demo`",
    )?;
    if !remote_path.value.starts_with('/') {
        return Err(table.invalid(
            "remote_path",
            remote_path.at,
            format!(
                "`{}` is relative; it must be absolute, e.g. `/srv/demo`",
                remote_path.value
            ),
        ));
    }

    let mut bundle = Vec::new();
    for file in table.strings(
        "bundle",
        r#"an array of paths like ["deploy/compose.yml", "deploy/deploy.sh"]"#,
    )? {
        let path = PathBuf::from(&file.value);
        let resolved = root.join(&path);
        // Only that the entry exists: what it may be (a regular file or a
        // directory of them inside the project) is the deploying tool's
        // check, which names what a symlink points at.
        if file.value.is_empty() || resolved.symlink_metadata().is_err() {
            return Err(ConfigError::from(ConfigErrorKind::BundleFileMissing {
                at: file.at,
                env: name.to_owned(),
                file: path,
                resolved,
            }));
        }
        bundle.push(path);
    }

    let command = table.required_string(
        "command",
        "the command run in `remote_path` on each host, e.g. `./deploy.sh`",
    )?;

    let Common {
        images,
        ready_url,
        keep_releases,
        env_vars,
    } = common_keys(&table, name, image_names)?;

    let strip_components = match table.integer("strip_components", "an integer like 1")? {
        None => 0,
        Some(n) => u32::try_from(n.value).ok().filter(|n| *n <= 64).ok_or_else(|| {
            table.invalid(
                "strip_components",
                n.at,
                format!(
                    "`{}` is not a number of leading directories to drop; use 0 (keep the paths as in the project) to 64",
                    n.value
                ),
            )
        })?,
    };

    let batch = match table.string("batch")? {
        Some(text) => Some(
            text.value
                .parse::<super::Batch>()
                .map_err(|reason| table.invalid("batch", text.at, reason))?,
        ),
        None => None,
    };

    let template = template_keys(&table, &remote_path, ready_url.as_deref())?;

    Ok(Env {
        name: name.to_owned(),
        is_template: template.is_template,
        max_instances: template.max_instances,
        port_range: template.port_range,
        teardown: template.teardown,
        strip_components,
        env_vars,
        hosts,
        remote_path: remote_path.value,
        bundle,
        command: command.value,
        ssh_key_passphrase_env: table.string("ssh_key_passphrase_env")?.map(|v| v.value),
        images,
        ready_url,
        ready_timeout: table.duration("ready_timeout", DEFAULT_READY_TIMEOUT)?,
        lock_timeout: table.duration("lock_timeout", DEFAULT_LOCK_TIMEOUT)?,
        keep_releases,
        batch,
        preflight: table.non_empty_string("preflight")?.map(|v| v.value),
        target,
        swarm,
        command_target,
        kubernetes: None,
        at: table.at.clone(),
    })
}

/// The keys every env has ([`TARGET_ENV_KEYS`] but `target`).
struct Common {
    images: BTreeMap<String, String>,
    ready_url: Option<String>,
    keep_releases: u32,
    env_vars: BTreeMap<String, String>,
}

fn common_keys(
    table: &Table<'_, '_>,
    name: &str,
    image_names: &[&str],
) -> Result<Common, ConfigError> {
    let mut images = BTreeMap::new();
    for (var, image) in
        table.string_map("images", r#"a table of strings like { APP_IMAGE = "app" }"#)?
    {
        let var_ok = var
            .value
            .starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
            && var
                .value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !var_ok {
            return Err(table.invalid(
                "images",
                var.at,
                format!("`{}` is not a variable name; use uppercase letters, digits and `_`, not starting with a digit, e.g. `APP_IMAGE`", var.value),
            ));
        }
        if !image_names.contains(&image.value.as_str()) {
            return Err(ConfigError::from(ConfigErrorKind::UnknownEnvImage {
                at: image.at,
                env: name.to_owned(),
                var: var.value,
                hint: Hint::name(&image.value, image_names),
                image: image.value,
                images: image_names.iter().map(|n| (*n).to_owned()).collect(),
            }));
        }
        images.insert(var.value, image.value);
    }

    let ready_url = match table.string("ready_url")? {
        Some(url) => {
            let valid = ["http://", "https://", "tcp://"].iter().any(|scheme| {
                url.value
                    .strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty())
            });
            if !valid {
                return Err(table.invalid(
                    "ready_url",
                    url.at,
                    // The URL may hold a password or a token: shown redacted.
                    format!("`{}` is not an `http://`, `https://` or `tcp://` URL, e.g. `http://127.0.0.1:8080/ready`", slipway_core::secret::RedactedUrl(&url.value)),
                ));
            }
            Some(url.value)
        }
        None => None,
    };

    let keep_releases = match table.integer("keep_releases", "an integer like 10")? {
        None => DEFAULT_KEEP_RELEASES,
        Some(n) => u32::try_from(n.value)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                table.invalid(
                    "keep_releases",
                    n.at,
                    format!("`{}` is not a number of releases; keep at least 1", n.value),
                )
            })?,
    };

    let mut env_vars = BTreeMap::new();
    for (var, value) in
        table.string_map("env", r#"a table of strings like { LOG_LEVEL = "info" }"#)?
    {
        let why = if !is_variable_name(&var.value) {
            Some(format!(
                "`{}` is not a variable name; use letters, digits and `_`, not starting with a digit, e.g. `LOG_LEVEL`",
                var.value
            ))
        } else if var.value.starts_with("SLIPWAY_") || images.contains_key(&var.value) {
            Some(format!(
                "`{}` is set by ssh-deploy (`SLIPWAY_…` and the env's `images` variables); give it another name",
                var.value
            ))
        } else if value.value.contains('\0') {
            Some(format!(
                "the value of `{}` holds a NUL byte, which no environment variable can carry",
                var.value
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(table.invalid("env", var.at, why));
        }
        env_vars.insert(var.value, value.value);
    }

    Ok(Common {
        images,
        ready_url,
        keep_releases,
        env_vars,
    })
}

/// `target`: `ssh` unless written.
fn env_target(table: &Table<'_, '_>) -> Result<DeployTarget, ConfigError> {
    let Some(text) = table.string("target")? else {
        return Ok(DeployTarget::Ssh);
    };
    DeployTarget::ALL
        .into_iter()
        .find(|t| t.as_str() == text.value)
        .ok_or_else(|| {
            table.invalid(
                "target",
                text.at,
                format!(
                    "`{}` is not a deploy target; use `ssh` (the default), `swarm`, `kubernetes` or `command`",
                    text.value
                ),
            )
        })
}

/// The table key of a non-SSH target (`[envs.dev.swarm]`).
fn target_table(target: DeployTarget) -> &'static str {
    target.as_str()
}

/// An env that does not deploy over SSH has the common keys and its
/// target's table: an SSH key is refused saying so, any other key as
/// unknown, with the valid ones.
fn check_target_keys(
    table: &Table<'_, '_>,
    name: &str,
    target: DeployTarget,
) -> Result<(), ConfigError> {
    let mut allowed: Vec<&str> = TARGET_ENV_KEYS.to_vec();
    allowed.push(target_table(target));
    for (key, _) in &table.entries {
        let key_name: &str = key.get_ref();
        if allowed.contains(&key_name) {
            continue;
        }
        if ENV_KEYS.contains(&key_name) {
            return Err(table.invalid(
                key_name,
                table.source.at(key.span().start),
                format!(
                    "`{key_name}` is a key of envs deployed over SSH, and env `{name}` deploys to {target} (`target = \"{target}\"`); its keys are {}",
                    allowed
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        return Err(ConfigError::from(ConfigErrorKind::UnknownKey {
            at: table.source.at(key.span().start),
            table: table.name.clone(),
            key: key_name.to_owned(),
            hint: Hint::key(key_name, &allowed),
        }));
    }
    Ok(())
}

/// The env of a target that is not SSH: no hosts, remote path, bundle or
/// command of its own.
fn target_env(
    table: &Table<'_, '_>,
    name: &str,
    image_names: &[&str],
    target: DeployTarget,
    swarm: Option<SwarmTarget>,
    command_target: Option<CommandTarget>,
) -> Result<Env, ConfigError> {
    let Common {
        images,
        ready_url,
        keep_releases,
        env_vars,
    } = common_keys(table, name, image_names)?;
    if ready_url
        .as_deref()
        .is_some_and(|url| url.contains(super::PORT_PLACEHOLDER))
    {
        return Err(table.invalid(
            "ready_url",
            table.at.clone(),
            format!(
                "`{}` in `ready_url` is for template envs deployed over SSH; env `{name}` deploys to {target}",
                super::PORT_PLACEHOLDER
            ),
        ));
    }
    Ok(Env {
        name: name.to_owned(),
        hosts: Vec::new(),
        remote_path: String::new(),
        bundle: Vec::new(),
        strip_components: 0,
        env_vars,
        command: String::new(),
        ssh_key_passphrase_env: None,
        images,
        ready_url,
        ready_timeout: table.duration("ready_timeout", DEFAULT_READY_TIMEOUT)?,
        lock_timeout: table.duration("lock_timeout", DEFAULT_LOCK_TIMEOUT)?,
        keep_releases,
        batch: None,
        preflight: None,
        is_template: false,
        max_instances: None,
        port_range: None,
        teardown: None,
        target,
        swarm,
        command_target,
        kubernetes: None,
        at: table.at.clone(),
    })
}

/// `[envs.<name>.swarm]`.
fn swarm_target(
    env: &Table<'_, '_>,
    root: &Path,
    project: &str,
    name: &str,
) -> Result<SwarmTarget, ConfigError> {
    let example = r#"[envs.dev.swarm] with `compose_file = "deploy/compose.yml"`"#;
    let Some(table) = env.table("swarm", Some(SWARM_KEYS), example)? else {
        return Err(ConfigError::from(ConfigErrorKind::MissingKey {
            at: env.at.clone(),
            table: env.name.clone(),
            key: "swarm".to_owned(),
            what: format!(
                "a swarm env needs its table, e.g. `[envs.{name}.swarm]` with `compose_file = \"deploy/compose.yml\"`"
            ),
        }));
    };
    let file = table.required_string(
        "compose_file",
        "the compose file deployed as the stack, relative to slipway.toml, e.g. `deploy/compose.yml`",
    )?;
    let compose_file = PathBuf::from(&file.value);
    let resolved = root.join(&compose_file);
    if !resolved.is_file() {
        return Err(table.invalid(
            "compose_file",
            file.at,
            format!(
                "`{}` is not a file (looked at `{}`); name the compose file relative to slipway.toml",
                file.value,
                resolved.display()
            ),
        ));
    }
    let stack = match table.string("stack")? {
        Some(stack) => {
            if !is_stack_name(&stack.value) {
                return Err(table.invalid(
                    "stack",
                    stack.at,
                    format!(
                        "`{}` is not a stack name; use at most {MAX_STACK_NAME} letters, digits, `_`, `.` and `-`, starting with a letter or digit, e.g. `demo-prod`",
                        stack.value
                    ),
                ));
            }
            stack.value
        }
        None => {
            // The project's name is a directory's by default (`.tmpXYZ`,
            // `my app`): its characters a stack name cannot hold become `-`.
            let project: String = project
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let project = project.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            let derived = if project.is_empty() {
                name.to_owned()
            } else {
                format!("{project}-{name}")
            };
            if !is_stack_name(&derived) {
                return Err(ConfigError::from(ConfigErrorKind::MissingKey {
                    at: table.at.clone(),
                    table: table.name.clone(),
                    key: "stack".to_owned(),
                    what: format!(
                        "the default stack name `{derived}` (`<project>-<env>`) is not a valid one (at most {MAX_STACK_NAME} letters, digits, `_`, `.` and `-`); set `stack`, e.g. `stack = \"demo-{name}\"`"
                    ),
                }));
            }
            derived
        }
    };
    let docker_host = table.non_empty_string("docker_host")?.map(|v| v.value);
    if let Some(host) = &docker_host
        && !["ssh://", "tcp://", "unix://", "npipe://"]
            .iter()
            .any(|scheme| host.starts_with(scheme))
    {
        return Err(table.invalid(
            "docker_host",
            table.at.clone(),
            format!(
                "`{}` is not a docker host; use `ssh://user@host`, `tcp://host:2376` or `unix:///path/docker.sock`",
                slipway_core::secret::RedactedUrl(host)
            ),
        ));
    }
    Ok(SwarmTarget {
        compose_file,
        stack,
        docker_host,
        prune: table
            .boolean("prune", "`true` or `false`")?
            .unwrap_or(false),
        converge_timeout: table.duration("converge_timeout", DEFAULT_CONVERGE_TIMEOUT)?,
    })
}

const KUBERNETES_KEYS: &[&str] = &[
    "context",
    "namespace",
    "workloads",
    "manifests",
    "kustomize",
    "rollout_timeout",
];
const DEFAULT_ROLLOUT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The workload kinds `kubectl rollout` manages.
const WORKLOAD_KINDS: &[&str] = &["deployment", "statefulset", "daemonset"];

/// `[envs.<name>.kubernetes]`.
fn kubernetes_target(
    env: &Table<'_, '_>,
    root: &Path,
    name: &str,
    image_names: &[&str],
) -> Result<KubernetesTarget, ConfigError> {
    let example =
        r#"[envs.prod.kubernetes] with `namespace = "shop"` and `kustomize = "k8s/overlays/prod"`"#;
    let Some(table) = env.table("kubernetes", Some(KUBERNETES_KEYS), example)? else {
        return Err(ConfigError::from(ConfigErrorKind::MissingKey {
            at: env.at.clone(),
            table: env.name.clone(),
            key: "kubernetes".to_owned(),
            what: format!(
                "a kubernetes env needs its table, e.g. `[envs.{name}.kubernetes]` with `kustomize = \"k8s/overlays/{name}\"`"
            ),
        }));
    };
    let context = table.non_empty_string("context")?.map(|v| v.value);
    let namespace = match table.non_empty_string("namespace")? {
        Some(text) if !is_dns_label(&text.value) => {
            return Err(table.invalid(
                "namespace",
                text.at,
                format!(
                    "`{}` is not a namespace name: 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit",
                    text.value
                ),
            ));
        }
        Some(text) => text.value,
        None => "default".to_owned(),
    };
    let mut workloads = Vec::new();
    if let Some(list) = table.table(
        "workloads",
        None,
        r#"{ "deployment/web" = { web = "app" } }"#,
    )? {
        for (key, value) in &list.entries {
            let workload: &str = key.get_ref();
            let at = list.source.at(key.span().start);
            let (kind, workload_name) = workload.split_once('/').unwrap_or(("", workload));
            if !WORKLOAD_KINDS.contains(&kind) || !is_dns_subdomain(workload_name) {
                return Err(table.invalid(
                    "workloads",
                    at,
                    format!(
                        "`{workload}` is not a workload: write `deployment/NAME`, `statefulset/NAME` or `daemonset/NAME` (what `kubectl rollout` manages), NAME in lowercase letters, digits, `-` and `.`"
                    ),
                ));
            }
            let containers = list.as_table(workload, value, None, r#"{ web = "app" }"#)?;
            let mut images = BTreeMap::new();
            for (container, image) in containers
                .string_map_of_self(r#"a table of container = image name, like { web = "app" }"#)?
            {
                if !is_dns_label(&container.value) {
                    return Err(table.invalid(
                        "workloads",
                        container.at,
                        format!(
                            "`{}` is not a container name: lowercase letters, digits and `-`",
                            container.value
                        ),
                    ));
                }
                if !image_names.contains(&image.value.as_str()) {
                    return Err(table.invalid(
                        "workloads",
                        image.at,
                        format!(
                            "container `{}` of `{workload}` gets image `{}`, which is not an [images.*] table; images are {}",
                            container.value,
                            image.value,
                            image_names
                                .iter()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                images.insert(container.value, image.value);
            }
            if images.is_empty() {
                return Err(table.invalid(
                    "workloads",
                    at,
                    format!("`{workload}` names no container: write e.g. `\"{workload}\" = {{ web = \"app\" }}` (container = image)"),
                ));
            }
            workloads.push(Workload {
                kind: kind.to_owned(),
                name: workload_name.to_owned(),
                containers: images,
            });
        }
    }
    let path_of = |key: &str| -> Result<Option<PathBuf>, ConfigError> {
        let Some(text) = table.non_empty_string(key)? else {
            return Ok(None);
        };
        let resolved = root.join(&text.value);
        let is_there = if key == "kustomize" {
            ["kustomization.yaml", "kustomization.yml", "Kustomization"]
                .iter()
                .any(|f| resolved.join(f).is_file())
        } else {
            resolved.is_dir() || resolved.is_file()
        };
        if !is_there {
            let what = if key == "kustomize" {
                "a directory holding a kustomization.yaml"
            } else {
                "a manifest file or a directory of them"
            };
            return Err(table.invalid(
                key,
                text.at,
                format!(
                    "`{}` is not {what} (looked at `{}`); name it relative to slipway.toml",
                    text.value,
                    resolved.display()
                ),
            ));
        }
        Ok(Some(PathBuf::from(text.value)))
    };
    let manifests = path_of("manifests")?;
    let kustomize = path_of("kustomize")?;
    let source = match (workloads.is_empty(), manifests, kustomize) {
        (false, None, None) => KubernetesSource::Workloads(workloads),
        (true, Some(dir), None) => KubernetesSource::Manifests(dir),
        (true, None, Some(dir)) => KubernetesSource::Kustomize(dir),
        _ => {
            return Err(ConfigError::from(ConfigErrorKind::MissingKey {
                at: table.at.clone(),
                table: table.name.clone(),
                key: "workloads".to_owned(),
                what: "say what is deployed with exactly one of `workloads` (`kubectl set image` on running workloads), `manifests` (a directory of manifests applied) or `kustomize` (an overlay applied)".to_owned(),
            }));
        }
    };
    Ok(KubernetesTarget {
        context,
        namespace,
        source,
        rollout_timeout: table.duration("rollout_timeout", DEFAULT_ROLLOUT_TIMEOUT)?,
    })
}

/// A DNS-1123 label: what a namespace or container name is.
fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A DNS-1123 subdomain: what a workload's name is.
fn is_dns_subdomain(name: &str) -> bool {
    (1..=253).contains(&name.len()) && name.split('.').all(is_dns_label)
}

/// The longest stack name: swarm-deploy keeps a stack's records as docker
/// configs `slipway.<stack>.release.<N>`, and swarm refuses a config name
/// longer than 64 characters; 40 leaves 7 digits for `N`.
const MAX_STACK_NAME: usize = 40;

/// A docker stack (and service) name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most
/// [`MAX_STACK_NAME`] characters.
fn is_stack_name(name: &str) -> bool {
    name.len() <= MAX_STACK_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `[envs.<name>.command]`.
fn command_target(env: &Table<'_, '_>) -> Result<CommandTarget, ConfigError> {
    let example = r#"[envs.prod.command] with `run = "pulumi up --yes"`"#;
    let Some(table) = env.table("command", Some(COMMAND_KEYS), example)? else {
        return Err(ConfigError::from(ConfigErrorKind::MissingKey {
            at: env.at.clone(),
            table: env.name.clone(),
            key: "command".to_owned(),
            what: "a command env needs its table, e.g. `[envs.prod.command]` with `run = \"./deploy.sh\"`".to_owned(),
        }));
    };
    let run = table.required_string(
        "run",
        "the command run by `sh -c` on the runner, e.g. `pulumi up --yes --config imageTag=$SLIPWAY_TAG`",
    )?;
    let history = match table.non_empty_string("history")? {
        Some(path) => PathBuf::from(path.value),
        None => PathBuf::from(".slipway/releases").join(env.name.trim_start_matches("envs.")),
    };
    Ok(CommandTarget {
        run: run.value,
        history,
        timeout: table.duration("timeout", DEFAULT_COMMAND_TIMEOUT)?,
    })
}

/// The keys of a template env (`instances`, `max_instances`, `port_range`,
/// `teardown`).
struct TemplateKeys {
    is_template: bool,
    max_instances: Option<u32>,
    port_range: Option<super::PortRange>,
    teardown: Option<String>,
}

/// Reads and checks the template keys: `{instance}` only as the last
/// component of `remote_path` of an env with `instances = true` (each
/// instance a directory of its own under one directory of the env), the
/// other keys only with it, and `{port}` in `ready_url` only with
/// `port_range`.
fn template_keys(
    table: &Table<'_, '_>,
    remote_path: &Located<String>,
    ready_url: Option<&str>,
) -> Result<TemplateKeys, ConfigError> {
    use super::{INSTANCE_PLACEHOLDER, PORT_PLACEHOLDER};
    let is_template = table
        .boolean("instances", "`true` or `false`")?
        .unwrap_or(false);
    let max_instances = match table.integer("max_instances", "an integer like 5")? {
        None => None,
        Some(n) => Some(
            u32::try_from(n.value)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    table.invalid(
                        "max_instances",
                        n.at,
                        format!(
                            "`{}` is not a number of instances; allow at least 1",
                            n.value
                        ),
                    )
                })?,
        ),
    };
    let port_range = match table.string("port_range")? {
        Some(text) => Some(
            text.value
                .parse::<super::PortRange>()
                .map_err(|reason| table.invalid("port_range", text.at, reason))?,
        ),
        None => None,
    };
    let teardown = table.non_empty_string("teardown")?.map(|v| v.value);
    let path = &remote_path.value;
    if is_template {
        let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
        if last != INSTANCE_PLACEHOLDER || parent.is_empty() || parent.contains('{') {
            return Err(table.invalid(
                "remote_path",
                remote_path.at.clone(),
                format!(
                    "`{path}` must end in `/{INSTANCE_PLACEHOLDER}` in an env with `instances = true` (each instance gets a directory of its own under one directory of the env), e.g. `/srv/previews/{INSTANCE_PLACEHOLDER}`"
                ),
            ));
        }
    } else {
        if path.contains(INSTANCE_PLACEHOLDER) {
            return Err(table.invalid(
                "remote_path",
                remote_path.at.clone(),
                format!(
                    "`{INSTANCE_PLACEHOLDER}` in `{path}` needs `instances = true` in the env (a template of preview instances)"
                ),
            ));
        }
        for (key, is_set) in [
            ("max_instances", max_instances.is_some()),
            ("port_range", port_range.is_some()),
            ("teardown", teardown.is_some()),
        ] {
            if is_set {
                return Err(table.invalid(
                    key,
                    table.at.clone(),
                    format!("`{key}` needs `instances = true` in the env (a template of preview instances)"),
                ));
            }
        }
    }
    if ready_url.is_some_and(|url| url.contains(PORT_PLACEHOLDER)) && port_range.is_none() {
        return Err(table.invalid(
            "ready_url",
            table.at.clone(),
            format!(
                "`{PORT_PLACEHOLDER}` in `ready_url` needs `port_range` in the env (the ports an instance's port is chosen from), e.g. `port_range = \"20000-20999\"`"
            ),
        ));
    }
    Ok(TemplateKeys {
        is_template,
        max_instances,
        port_range,
        teardown,
    })
}
