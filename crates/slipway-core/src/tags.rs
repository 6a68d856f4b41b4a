//! Image tags and OCI labels computed the way docker/metadata-action computes
//! them, from its own `tags:`, `flavor:` and `images:` lines, so a team can
//! paste its workflow's inputs and get the same tags in the same order.
//!
//! This module is pure: the caller gathers the facts (event, ref, sha,
//! default branch, clock) into a [`TagContext`]; nothing here reads the
//! environment, git or the clock.
//!
//! Where metadata-action would emit a tag that registries reject (one that
//! starts with `-` or `.`, or is longer than 128 characters), the leading
//! characters are dropped and the tag is cut at 128 characters instead,
//! keeping the prefix and suffix whole. Handlebars block helpers are not
//! supported; an unknown attribute or expression is an error, where the
//! action ignores it.

pub mod context;
pub mod pep440;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

/// The rules metadata-action uses when none are given.
pub const DEFAULT_RULES: [&str; 4] = [
    "type=schedule",
    "type=ref,event=branch",
    "type=ref,event=tag",
    "type=ref,event=pr",
];

/// The longest tag a registry accepts (the distribution spec's tag grammar).
pub const MAX_TAG_LEN: usize = 128;

/// Why a rule, flavor or image line is invalid, or could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// `type=` names no known rule type.
    #[error("unknown tag rule type `{value}` in `{rule}`{hint}; valid types: {valid}")]
    UnknownType {
        /// The rule line as given.
        rule: String,
        /// The unknown type.
        value: String,
        /// ` — did you mean …?`, or empty.
        hint: String,
        /// The valid types, comma-separated.
        valid: String,
    },
    /// An attribute that the rule's type does not take.
    #[error("unknown tag rule attribute `{key}` in `{rule}`{hint}; valid attributes: {valid}")]
    UnknownAttribute {
        /// The rule line as given.
        rule: String,
        /// The unknown attribute.
        key: String,
        /// ` — did you mean …?`, or empty.
        hint: String,
        /// The attributes this type takes, comma-separated.
        valid: String,
    },
    /// A required attribute is missing.
    #[error("tag rule `{rule}` needs a `{key}` attribute")]
    MissingAttribute {
        /// The rule line as given.
        rule: String,
        /// The missing attribute.
        key: String,
    },
    /// An attribute has a value outside its domain.
    #[error("invalid `{key}` value `{value}` in `{line}`; expected {expected}")]
    InvalidValue {
        /// The rule, flavor or image line as given.
        line: String,
        /// The attribute.
        key: String,
        /// The value as given (or as evaluated, for `enable`).
        value: String,
        /// What would be valid.
        expected: String,
    },
    /// A line cannot be split into fields (an unclosed quote).
    #[error("cannot parse `{line}`: {reason}")]
    Syntax {
        /// The line as given.
        line: String,
        /// What is wrong.
        reason: String,
    },
    /// A `{{…}}` expression is malformed or unknown where it is used.
    #[error("invalid expression in `{template}`: {reason}")]
    Expression {
        /// The template holding the expression.
        template: String,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// An unknown flavor entry.
    #[error(
        "unknown flavor entry `{key}` in `{line}`{hint}; valid entries: latest, prefix, suffix, onlatest"
    )]
    UnknownFlavor {
        /// The flavor line as given.
        line: String,
        /// The unknown key.
        key: String,
        /// ` — did you mean …?`, or empty.
        hint: String,
    },
    /// An unknown attribute in an `images:` line.
    #[error("unknown image attribute `{key}` in `{line}`; valid attributes: name, enable")]
    UnknownImageAttribute {
        /// The image line as given.
        line: String,
        /// The unknown key.
        key: String,
    },
}

impl crate::cli::ExitStatus for TagError {
    fn exit_code(&self) -> Option<u8> {
        Some(crate::cli::exit::USAGE)
    }
}

/// ` — did you mean `x`?` for the valid name nearest to `given`, or empty.
fn hint(given: &str, valid: &[&str]) -> String {
    valid
        .iter()
        .map(|candidate| (strsim::jaro_winkler(given, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| format!(" — did you mean `{candidate}`?"))
        .unwrap_or_default()
}

/// The kinds of rule metadata-action knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleType {
    /// `type=schedule`: a tag on scheduled runs (`nightly` by default).
    Schedule,
    /// `type=semver`: tags from a semver git tag or `value`.
    Semver,
    /// `type=pep440`: tags from a PEP 440 git tag or `value`.
    Pep440,
    /// `type=match`: a regex group of the git tag or `value`.
    Match,
    /// `type=edge`: `edge` on the default (or given) branch.
    Edge,
    /// `type=ref`: the branch, tag or pull request number.
    Ref(RefEvent),
    /// `type=raw`: a fixed value.
    Raw,
    /// `type=sha`: the commit sha.
    Sha,
}

impl RuleType {
    /// metadata-action's default priority for this type.
    pub fn default_priority(self) -> i64 {
        match self {
            RuleType::Schedule => 1000,
            RuleType::Semver | RuleType::Pep440 => 900,
            RuleType::Match => 800,
            RuleType::Edge => 700,
            RuleType::Ref(_) => 600,
            RuleType::Raw => 200,
            RuleType::Sha => 100,
        }
    }

    /// The attributes this type takes besides the common ones.
    fn own_attributes(self) -> &'static [&'static str] {
        match self {
            RuleType::Schedule => &["pattern"],
            RuleType::Semver | RuleType::Pep440 => &["pattern", "value", "match"],
            RuleType::Match => &["pattern", "group", "value"],
            RuleType::Edge => &["branch"],
            RuleType::Ref(_) => &["event"],
            RuleType::Raw => &["value"],
            RuleType::Sha => &["format"],
        }
    }
}

/// Which ref a `type=ref` rule renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefEvent {
    /// `event=branch`: the branch name.
    Branch,
    /// `event=tag`: the git tag name.
    Tag,
    /// `event=pr`: the pull request number, prefixed `pr-`.
    Pr,
}

const TYPES: [&str; 8] = [
    "schedule", "semver", "pep440", "match", "edge", "ref", "raw", "sha",
];
const COMMON_ATTRIBUTES: [&str; 5] = ["type", "enable", "priority", "prefix", "suffix"];

/// One line of metadata-action's `tags:` input, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRule {
    line: String,
    kind: RuleType,
    attrs: BTreeMap<String, String>,
    priority: i64,
}

impl TagRule {
    /// Parses a `tags:` line such as `type=semver,pattern={{version}}`. As in
    /// metadata-action, fields are comma-separated (double quotes protect a
    /// comma), a field without `=` is the `value`, and no `type` means `raw`.
    pub fn parse(line: &str) -> Result<TagRule, TagError> {
        let mut kind_name = None;
        let mut attrs = BTreeMap::new();
        for field in split_fields(line)? {
            match field.split_once('=') {
                None => {
                    attrs.insert("value".to_owned(), field.trim().to_owned());
                }
                Some((key, value)) => {
                    let key = key.trim().to_ascii_lowercase();
                    let value = value.trim().to_owned();
                    if key == "type" {
                        kind_name = Some(value);
                    } else {
                        attrs.insert(key, value);
                    }
                }
            }
        }
        let kind = match kind_name.as_deref().unwrap_or("raw") {
            "schedule" => RuleType::Schedule,
            "semver" => RuleType::Semver,
            "match" => RuleType::Match,
            "edge" => RuleType::Edge,
            "raw" => RuleType::Raw,
            "sha" => RuleType::Sha,
            "ref" => {
                check_attributes(line, RuleType::Ref(RefEvent::Branch), &attrs)?;
                let event = match attrs.get("event").map(String::as_str) {
                    Some("branch") => RefEvent::Branch,
                    Some("tag") => RefEvent::Tag,
                    Some("pr") => RefEvent::Pr,
                    Some(other) => {
                        return Err(TagError::InvalidValue {
                            line: line.to_owned(),
                            key: "event".to_owned(),
                            value: other.to_owned(),
                            expected: "`branch`, `tag` or `pr`".to_owned(),
                        });
                    }
                    None => return Err(missing(line, "event")),
                };
                RuleType::Ref(event)
            }
            "pep440" => RuleType::Pep440,
            other => {
                return Err(TagError::UnknownType {
                    rule: line.to_owned(),
                    value: other.to_owned(),
                    hint: hint(other, &TYPES),
                    valid: TYPES.join(", "),
                });
            }
        };
        check_attributes(line, kind, &attrs)?;
        // Same defaults as metadata-action's tag parser.
        match kind {
            RuleType::Schedule => {
                attrs
                    .entry("pattern".to_owned())
                    .or_insert_with(|| "nightly".to_owned());
            }
            RuleType::Semver | RuleType::Pep440 | RuleType::Match => {
                if !attrs.contains_key("pattern") {
                    return Err(missing(line, "pattern"));
                }
                attrs.entry("value".to_owned()).or_default();
                if let Some(pattern) = attrs.get("match").filter(|p| !p.is_empty()) {
                    compile_version_match(line, pattern)?;
                }
                if kind == RuleType::Match {
                    let group = attrs
                        .entry("group".to_owned())
                        .or_insert_with(|| "0".to_owned());
                    if group.parse::<usize>().is_err() {
                        return Err(invalid(line, "group", group, "a group number such as `1`"));
                    }
                    compile_match_pattern(line, &attrs["pattern"])?;
                }
            }
            RuleType::Edge => {
                attrs.entry("branch".to_owned()).or_default();
            }
            RuleType::Ref(RefEvent::Pr) => {
                attrs
                    .entry("prefix".to_owned())
                    .or_insert_with(|| "pr-".to_owned());
            }
            RuleType::Ref(_) => {}
            RuleType::Raw => {
                if !attrs.contains_key("value") {
                    return Err(missing(line, "value"));
                }
            }
            RuleType::Sha => {
                attrs
                    .entry("prefix".to_owned())
                    .or_insert_with(|| "sha-".to_owned());
                let format = attrs
                    .entry("format".to_owned())
                    .or_insert_with(|| "short".to_owned());
                if format != "short" && format != "long" {
                    return Err(invalid(line, "format", format, "`short` or `long`"));
                }
            }
        }
        attrs
            .entry("enable".to_owned())
            .or_insert_with(|| "true".to_owned());
        let priority = match attrs.get("priority") {
            None => kind.default_priority(),
            Some(value) => value
                .parse()
                .map_err(|_| invalid(line, "priority", value, "an integer such as `600`"))?,
        };
        for template in attrs.values() {
            parse_template(template)?;
        }
        Ok(TagRule {
            line: line.to_owned(),
            kind,
            attrs,
            priority,
        })
    }

    /// The rule's type.
    pub fn kind(&self) -> RuleType {
        self.kind
    }

    /// The rule's priority (explicit, or its type's default).
    pub fn priority(&self) -> i64 {
        self.priority
    }

    /// The line the rule was parsed from.
    pub fn line(&self) -> &str {
        &self.line
    }

    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// Rejects attributes the rule's type does not take, naming the nearest valid one.
fn check_attributes(
    line: &str,
    kind: RuleType,
    attrs: &BTreeMap<String, String>,
) -> Result<(), TagError> {
    let own = kind.own_attributes();
    for key in attrs.keys() {
        if !own.contains(&key.as_str()) && !COMMON_ATTRIBUTES.contains(&key.as_str()) {
            let valid: Vec<&str> = COMMON_ATTRIBUTES.iter().chain(own).copied().collect();
            return Err(TagError::UnknownAttribute {
                rule: line.to_owned(),
                key: key.clone(),
                hint: hint(key, &valid),
                valid: valid.join(", "),
            });
        }
    }
    Ok(())
}

fn missing(line: &str, key: &str) -> TagError {
    TagError::MissingAttribute {
        rule: line.to_owned(),
        key: key.to_owned(),
    }
}

fn invalid(line: &str, key: &str, value: &str, expected: &str) -> TagError {
    TagError::InvalidValue {
        line: line.to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// Splits a line into comma-separated fields the way csv-parse does: a field
/// that starts with `"` runs to the closing quote, `""` inside is one quote.
fn split_fields(line: &str) -> Result<Vec<String>, TagError> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(TagError::Syntax {
                            line: line.to_owned(),
                            reason: "a quoted field is not closed".to_owned(),
                        });
                    }
                }
            }
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            break;
        }
    }
    // csv-parse skips an empty line; a trailing comma gives an empty field,
    // which carries nothing either.
    fields.retain(|field| !field.trim().is_empty());
    Ok(fields)
}

/// Sorts rules as metadata-action does: by priority, highest first; rules of
/// equal priority keep their order.
pub fn sort_rules(rules: &mut [TagRule]) {
    rules.sort_by_key(|rule| std::cmp::Reverse(rule.priority));
}

/// metadata-action's `latest=` flavor, plus img-tag's `default-branch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Latest {
    /// The first rule that yields a tag decides (semver without prerelease,
    /// match and `ref,event=tag` say yes).
    #[default]
    Auto,
    /// Always add `latest`.
    True,
    /// Never add `latest`.
    False,
    /// Add `latest` when the ref is the default branch (img-tag only).
    DefaultBranch,
}

/// The tag rules and flavor of a run: each from the command line when given
/// (`--tag`, `--flavor` lines), else from slipway.toml's `[tags]` (`config`,
/// when there is one). Every line is parsed before anything is computed;
/// the error names the flag, or the `[tags]` key and its file:line:col.
pub fn rules_and_flavor<S: AsRef<str>>(
    tag_flags: &[S],
    flavor_flags: &[S],
    config: Option<&crate::config::Tags>,
) -> Result<(Vec<TagRule>, Flavor), String> {
    let rules = if tag_flags.is_empty() {
        config
            .map(|c| c.rules.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|line| {
                TagRule::parse(&line.value)
                    .map_err(|e| format!("invalid `[tags] rules` entry at {}: {e}", line.at))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        tag_flags
            .iter()
            .map(|line| TagRule::parse(line.as_ref()).map_err(|e| format!("invalid `--tag`: {e}")))
            .collect::<Result<Vec<_>, _>>()?
    };
    let flavor = if flavor_flags.is_empty() {
        let lines = config.map(|c| c.flavor.as_slice()).unwrap_or_default();
        let values: Vec<&str> = lines.iter().map(|line| line.value.as_str()).collect();
        Flavor::parse(&values).map_err(|e| {
            let at = lines
                .first()
                .map(|line| line.at.to_string())
                .unwrap_or_default();
            format!("invalid `[tags] flavor` at {at}: {e}")
        })?
    } else {
        Flavor::parse(flavor_flags).map_err(|e| format!("invalid `--flavor`: {e}"))?
    };
    Ok((rules, flavor))
}

/// metadata-action's `flavor:` input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flavor {
    /// When `latest` is added.
    pub latest: Latest,
    /// Prefix of every tag whose rule has no `prefix`.
    pub prefix: String,
    /// Whether `latest` gets the prefix too (`onlatest=true` after `prefix=`).
    pub prefix_on_latest: bool,
    /// Suffix of every tag whose rule has no `suffix`.
    pub suffix: String,
    /// Whether `latest` gets the suffix too (`onlatest=true` after `suffix=`).
    pub suffix_on_latest: bool,
}

impl Flavor {
    /// Parses `flavor:` lines (`latest=auto`, `prefix=v,onlatest=true`, …);
    /// later lines override earlier ones.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Flavor, TagError> {
        let mut flavor = Flavor::default();
        for line in lines {
            let line = line.as_ref();
            let mut on_latest_for = "";
            for field in split_fields(line)? {
                let Some((key, value)) = field.split_once('=') else {
                    return Err(TagError::Syntax {
                        line: line.to_owned(),
                        reason: format!("flavor entry `{}` has no `=`", field.trim()),
                    });
                };
                let key = key.trim().to_ascii_lowercase();
                let value = value.trim();
                match key.as_str() {
                    "latest" => {
                        flavor.latest = match value {
                            "auto" => Latest::Auto,
                            "true" => Latest::True,
                            "false" => Latest::False,
                            "default-branch" => Latest::DefaultBranch,
                            _ => {
                                return Err(invalid(
                                    line,
                                    "latest",
                                    value,
                                    "`auto`, `true`, `false` or `default-branch`",
                                ));
                            }
                        }
                    }
                    "prefix" => {
                        value.clone_into(&mut flavor.prefix);
                        on_latest_for = "prefix";
                    }
                    "suffix" => {
                        value.clone_into(&mut flavor.suffix);
                        on_latest_for = "suffix";
                    }
                    "onlatest" => {
                        let on = match value {
                            "true" => true,
                            "false" => false,
                            _ => return Err(invalid(line, "onlatest", value, "`true` or `false`")),
                        };
                        match on_latest_for {
                            "prefix" => flavor.prefix_on_latest = on,
                            "suffix" => flavor.suffix_on_latest = on,
                            _ => {}
                        }
                    }
                    _ => {
                        return Err(TagError::UnknownFlavor {
                            line: line.to_owned(),
                            hint: hint(&key, &["latest", "prefix", "suffix", "onlatest"]),
                            key,
                        });
                    }
                }
            }
        }
        for template in [&flavor.prefix, &flavor.suffix] {
            parse_template(template)?;
        }
        Ok(flavor)
    }
}

/// One image of metadata-action's `images:` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The image name, lowercased as metadata-action does.
    pub name: String,
    /// Whether tags are emitted for it (`enable=false` turns it off).
    pub enable: bool,
}

impl ImageSpec {
    /// Parses `images:` lines: `name` or `name=…,enable=…` per line, or, as
    /// in the action's old format, one line of comma-separated names.
    pub fn parse_all<S: AsRef<str>>(lines: &[S]) -> Result<Vec<ImageSpec>, TagError> {
        if let [line] = lines {
            let fields = split_fields(line.as_ref())?;
            if fields.iter().all(|field| !field.contains('=')) {
                return Ok(fields
                    .iter()
                    .map(|field| ImageSpec {
                        name: field.trim().to_lowercase(),
                        enable: true,
                    })
                    .collect());
            }
        }
        let mut images = Vec::new();
        for line in lines {
            let line = line.as_ref();
            let mut image = ImageSpec {
                name: String::new(),
                enable: true,
            };
            for field in split_fields(line)? {
                match field.split_once('=') {
                    None => field.trim().clone_into(&mut image.name),
                    Some((key, value)) => {
                        let value = value.trim();
                        match key.trim().to_ascii_lowercase().as_str() {
                            "name" => value.clone_into(&mut image.name),
                            "enable" => {
                                image.enable = match value {
                                    "true" => true,
                                    "false" => false,
                                    _ => {
                                        return Err(invalid(
                                            line,
                                            "enable",
                                            value,
                                            "`true` or `false`",
                                        ));
                                    }
                                }
                            }
                            other => {
                                return Err(TagError::UnknownImageAttribute {
                                    line: line.to_owned(),
                                    key: other.to_owned(),
                                });
                            }
                        }
                    }
                }
            }
            if image.name.is_empty() {
                return Err(missing(line, "name"));
            }
            image.name = image.name.to_lowercase();
            images.push(image);
        }
        Ok(images)
    }
}

/// What the repository hosting the code says about itself (the `repository`
/// object of a GitHub event payload); used for the OCI labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoInfo {
    /// `org.opencontainers.image.title`: the repository's name.
    pub name: String,
    /// `org.opencontainers.image.description`.
    pub description: String,
    /// `org.opencontainers.image.url` and `.source`: the repository's web page.
    pub html_url: String,
    /// `org.opencontainers.image.licenses`: an SPDX id.
    pub license: String,
}

/// The facts tags are computed from, read as metadata-action reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagContext {
    /// `GITHUB_EVENT_NAME`: `push`, `pull_request`, `schedule`, …
    pub event_name: String,
    /// `GITHUB_REF`: `refs/heads/main`, `refs/tags/v1.2.3`, `refs/pull/15/merge`.
    pub git_ref: String,
    /// The commit: 40 hex digits (may be empty when unknown).
    pub sha: String,
    /// The repository's default branch, when known.
    pub default_branch: Option<String>,
    /// The push payload's `base_ref` (for `{{base_ref}}` on tags).
    pub base_ref: Option<String>,
    /// The pull request's base branch (for `{{base_ref}}` on pull requests).
    pub pr_base_ref: Option<String>,
    /// "Now", for `{{date}}` and labels (`SOURCE_DATE_EPOCH` fixes it).
    pub now: jiff::Timestamp,
    /// The commit's date, for `{{commit_date}}`.
    pub commit_date: jiff::Timestamp,
    /// The length of `{{sha}}` and `type=sha` short shas (7 by default).
    pub short_sha_length: usize,
    /// The repository facts for the labels.
    pub repository: RepoInfo,
}

impl TagContext {
    fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    fn pr(&self) -> Option<&str> {
        self.git_ref
            .strip_prefix("refs/pull/")
            .map(|rest| rest.strip_suffix("/merge").unwrap_or(rest))
    }

    fn short_sha(&self) -> &str {
        let len = self.short_sha_length.min(self.sha.len());
        &self.sha[..len]
    }

    /// Same as metadata-action's `{{is_default_branch}}`: the ref (with
    /// `refs/heads/` removed) is the default branch, or the event is one that
    /// always runs on the default branch's last commit.
    pub fn is_default_branch(&self) -> bool {
        let branch = self
            .git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.git_ref);
        if branch.is_empty() {
            return false;
        }
        if self.default_branch.as_deref() == Some(branch) {
            return true;
        }
        ["create", "discussion", "issues", "schedule"]
            .iter()
            .any(|event| self.event_name.contains(event))
    }
}

/// The tags, labels and version computed from rules and a context.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// `image:tag` for each enabled image (bare tags when no image is given),
    /// in metadata-action's order: the main version, the others, `latest`.
    pub tags: Vec<String>,
    /// The tags without image names (metadata-action's `tag-names`).
    pub tag_names: Vec<String>,
    /// The OCI labels metadata-action emits, keyed by name.
    pub labels: BTreeMap<String, String>,
    /// The main version (the first tag), if any rule produced one.
    pub version: Option<String>,
}

#[derive(Default)]
struct Version {
    main: Option<String>,
    partial: Vec<String>,
    latest: Option<bool>,
}

impl Version {
    fn set(&mut self, tag: Affixed, latest: bool) {
        let value = tag.to_valid_tag();
        if value.is_empty() {
            return;
        }
        match &self.main {
            None => self.main = Some(value),
            Some(main) if *main != value => self.partial.push(value),
            Some(_) => {}
        }
        if self.latest.is_none() {
            self.latest = Some(latest);
        }
    }
}

/// A rule's value with the prefix and suffix it gets (the rule's or the
/// flavor's), kept apart so that a cut to [`MAX_TAG_LEN`] keeps them whole.
struct Affixed {
    prefix: String,
    value: String,
    suffix: String,
}

impl Affixed {
    /// The tag: sanitised as metadata-action does, then made valid. A tag too
    /// long for a registry loses the end of its value, never its prefix or
    /// suffix, so variants (`suffix=-alpine`, `suffix=-debian`) of a long
    /// branch stay apart.
    fn to_valid_tag(&self) -> String {
        let whole = sanitize(&format!("{}{}{}", self.prefix, self.value, self.suffix));
        if whole.trim_start_matches(['-', '.']).len() <= MAX_TAG_LEN {
            return make_valid(&whole);
        }
        let prefix = sanitize(&self.prefix);
        let suffix = sanitize(&self.suffix);
        let value = sanitize(&self.value);
        let (prefix, value) = match prefix.trim_start_matches(['-', '.']) {
            "" => ("", value.trim_start_matches(['-', '.'])),
            trimmed => (trimmed, value.as_str()),
        };
        let Some(room) = MAX_TAG_LEN.checked_sub(prefix.len() + suffix.len()) else {
            return make_valid(&whole);
        };
        // Sanitised text is ASCII, so any byte index is a char boundary.
        format!("{prefix}{}{suffix}", &value[..value.len().min(room)])
    }
}

/// Same as metadata-action: every run of characters a tag can't hold becomes
/// one `-` (so `feature/login` becomes `feature-login`).
pub fn sanitize(tag: &str) -> String {
    static INVALID: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new("[^a-zA-Z0-9._-]+").expect("the pattern is a valid regex")
    });
    INVALID.replace_all(tag, "-").into_owned()
}

/// The tag `type=ref,event=branch` gives `branch` (without prefix or
/// suffix): metadata-action's sanitiser, then [`make_valid`]. The one
/// branch → tag rule: image-stale-check looks up what img-tag computes.
pub fn branch_tag(branch: &str) -> String {
    make_valid(&sanitize(branch))
}

/// img-tag's fix for tags registries reject: leading `-` and `.` dropped,
/// cut at [`MAX_TAG_LEN`] characters. `tag` is already sanitised (ASCII).
pub fn make_valid(tag: &str) -> String {
    let trimmed = tag.trim_start_matches(['-', '.']);
    trimmed[..trimmed.len().min(MAX_TAG_LEN)].to_owned()
}

/// Computes tags, labels and version from rules (in declaration order; an
/// empty list means [`DEFAULT_RULES`]), a flavor and images.
pub fn compute(
    rules: &[TagRule],
    flavor: &Flavor,
    images: &[ImageSpec],
    ctx: &TagContext,
) -> Result<Metadata, TagError> {
    let mut rules = if rules.is_empty() {
        DEFAULT_RULES
            .iter()
            .map(|line| TagRule::parse(line))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        rules.to_vec()
    };
    sort_rules(&mut rules);
    let mut version = Version::default();
    for rule in &rules {
        let enabled = eval(rule.attr("enable"), &Scope::Global, ctx)?;
        match enabled.as_str() {
            "true" => {}
            "false" => continue,
            _ => {
                return Err(invalid(
                    &rule.line,
                    "enable",
                    &enabled,
                    "an expression that gives `true` or `false`",
                ));
            }
        }
        let latest = |auto: bool| match flavor.latest {
            Latest::Auto => auto,
            Latest::True => true,
            Latest::False | Latest::DefaultBranch => false,
        };
        match rule.kind {
            RuleType::Schedule => {
                if ctx.event_name.contains("schedule") {
                    let value = eval(rule.attr("pattern"), &Scope::Schedule, ctx)?;
                    version.set(affix(&value, rule, flavor, ctx)?, latest(false));
                }
            }
            RuleType::Semver => {
                if let Some((value, is_release)) = semver_value(rule, ctx)? {
                    version.set(affix(&value, rule, flavor, ctx)?, latest(is_release));
                }
            }
            RuleType::Pep440 => {
                if let Some((value, is_release)) = pep440_value(rule, ctx)? {
                    version.set(affix(&value, rule, flavor, ctx)?, latest(is_release));
                }
            }
            RuleType::Match => {
                if let Some(value) = match_value(rule, ctx)? {
                    version.set(affix(&value, rule, flavor, ctx)?, latest(true));
                }
            }
            RuleType::Ref(RefEvent::Branch) => {
                if let Some(branch) = ctx.branch() {
                    version.set(affix(branch, rule, flavor, ctx)?, latest(false));
                }
            }
            RuleType::Ref(RefEvent::Tag) => {
                if let Some(tag) = ctx.tag() {
                    version.set(affix(tag, rule, flavor, ctx)?, latest(true));
                }
            }
            RuleType::Ref(RefEvent::Pr) => {
                if let Some(pr) = ctx.pr() {
                    version.set(affix(pr, rule, flavor, ctx)?, latest(false));
                }
            }
            RuleType::Edge => {
                if let Some(branch) = ctx.branch() {
                    let wanted = match rule.attr("branch") {
                        "" => ctx.default_branch.as_deref().unwrap_or_default(),
                        wanted => wanted,
                    };
                    if wanted == branch {
                        version.set(affix("edge", rule, flavor, ctx)?, latest(false));
                    }
                }
            }
            RuleType::Raw => {
                let value = eval(rule.attr("value"), &Scope::Global, ctx)?;
                version.set(affix(&value, rule, flavor, ctx)?, latest(false));
            }
            RuleType::Sha => {
                if !ctx.sha.is_empty() {
                    let sha = match rule.attr("format") {
                        "long" => ctx.sha.as_str(),
                        _ => ctx.short_sha(),
                    };
                    version.set(affix(sha, rule, flavor, ctx)?, latest(false));
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    version.partial.retain(|tag| seen.insert(tag.clone()));
    let is_latest = match flavor.latest {
        Latest::DefaultBranch => ctx.is_default_branch(),
        _ => version.latest.unwrap_or(false),
    };

    let mut tags = Vec::new();
    let mut tag_names = Vec::new();
    if let Some(main) = &version.main {
        let mut bare: Vec<String> = std::iter::once(main.clone())
            .chain(version.partial.iter().cloned())
            .collect();
        if is_latest {
            let prefix = if flavor.prefix_on_latest {
                eval(&flavor.prefix, &Scope::Global, ctx)?
            } else {
                String::new()
            };
            let suffix = if flavor.suffix_on_latest {
                eval(&flavor.suffix, &Scope::Global, ctx)?
            } else {
                String::new()
            };
            let latest = make_valid(&sanitize(&format!("{prefix}latest{suffix}")));
            if !bare.contains(&latest) {
                bare.push(latest);
            }
        }
        let enabled: Vec<&ImageSpec> = images.iter().filter(|image| image.enable).collect();
        if enabled.is_empty() {
            tags.clone_from(&bare);
        } else {
            for image in enabled {
                tags.extend(bare.iter().map(|tag| format!("{}:{tag}", image.name)));
            }
        }
        tag_names = bare;
    }
    let labels = oci_annotations::<&str>(version.main.as_deref(), &[], ctx)?;
    Ok(Metadata {
        tags,
        tag_names,
        labels,
        version: version.main,
    })
}

/// The OCI annotations metadata-action writes as labels (and, under
/// `manifest:` and the other levels, as annotations): title, description,
/// url, source, version, created, revision, licenses; then each of `extra`
/// (`key=value`, expressions rendered), a later key replacing an earlier
/// one's value, as its `labels:` and `annotations:` inputs do. An entry
/// without `=` is dropped, as there.
pub fn oci_annotations<S: AsRef<str>>(
    version: Option<&str>,
    extra: &[S],
    ctx: &TagContext,
) -> Result<BTreeMap<String, String>, TagError> {
    let repo = &ctx.repository;
    let mut labels: BTreeMap<String, String> = [
        ("title", repo.name.clone()),
        ("description", repo.description.clone()),
        ("url", repo.html_url.clone()),
        ("source", repo.html_url.clone()),
        ("version", version.unwrap_or_default().to_owned()),
        ("created", iso_millis(ctx.now)),
        ("revision", ctx.sha.clone()),
        ("licenses", repo.license.clone()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("org.opencontainers.image.{key}"), value))
    .collect();
    for entry in extra {
        let rendered = eval(entry.as_ref(), &Scope::Global, ctx)?;
        if let Some((key, value)) = rendered.split_once('=') {
            labels.insert(key.to_owned(), value.to_owned());
        }
    }
    Ok(labels)
}

/// metadata-action's `annotations` output: each annotation under each level
/// (`manifest`, `index`, `manifest-descriptor`, `index-descriptor`; from
/// `DOCKER_METADATA_ANNOTATIONS_LEVELS`, `manifest` by default), as
/// `level:key=value`, level by level.
pub fn annotations_at_levels(
    annotations: &BTreeMap<String, String>,
    levels: &[String],
) -> Vec<String> {
    levels
        .iter()
        .flat_map(|level| {
            annotations
                .iter()
                .map(move |(key, value)| format!("{level}:{key}={value}"))
        })
        .collect()
}

/// `2020-01-10T00:30:00.000Z`, as JavaScript's `Date.toISOString`.
fn iso_millis(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The rule's prefix and suffix, or else the flavor's (metadata-action's
/// `setValue`): a rule's own `prefix=`, even empty, replaces the flavor's.
fn affix(
    value: &str,
    rule: &TagRule,
    flavor: &Flavor,
    ctx: &TagContext,
) -> Result<Affixed, TagError> {
    let prefix = match rule.attrs.get("prefix") {
        Some(prefix) => eval(prefix, &Scope::Global, ctx)?,
        None => eval(&flavor.prefix, &Scope::Global, ctx)?,
    };
    let suffix = match rule.attrs.get("suffix") {
        Some(suffix) => eval(suffix, &Scope::Global, ctx)?,
        None => eval(&flavor.suffix, &Scope::Global, ctx)?,
    };
    Ok(Affixed {
        prefix,
        value: value.to_owned(),
        suffix,
    })
}

/// The version a semver or pep440 rule reads, as metadata-action reads it:
/// `value` (its expressions rendered) or else the git tag; `match=` keeps
/// its regex's group 1 (when it does not match, the value is kept, with a
/// warning); then `/` becomes `-`. `None` when the rule does not apply.
fn version_source(rule: &TagRule, ctx: &TagContext) -> Result<Option<String>, TagError> {
    let mut raw = match (rule.attr("value"), ctx.tag()) {
        ("", None) => return Ok(None),
        ("", Some(tag)) => tag.to_owned(),
        (value, _) => eval(value, &Scope::Global, ctx)?,
    };
    let pattern = rule.attr("match");
    if !pattern.is_empty() {
        let regex = compile_version_match(&rule.line, pattern)?;
        match regex.captures(&raw) {
            None => {
                tracing::warn!(pattern, value = %raw, rule = %rule.line, "`match` does not match; the value is used whole");
            }
            Some(captures) => match captures.get(1) {
                Some(group) => raw = group.as_str().to_owned(),
                None => {
                    tracing::warn!(pattern, value = %raw, rule = %rule.line, "`match` has no group 1; the rule yields no tag");
                    return Ok(None);
                }
            },
        }
    }
    Ok(Some(raw.replace('/', "-")))
}

/// `match=` of a semver or pep440 rule: a regex whose group 1 is the version.
fn compile_version_match(line: &str, pattern: &str) -> Result<regex::Regex, TagError> {
    regex::Regex::new(pattern).map_err(|error| {
        invalid(
            line,
            "match",
            pattern,
            &format!("a regex whose group 1 is the version ({error})"),
        )
    })
}

/// A semver rule's tag and whether it is a release (not a prerelease), or
/// `None` when the rule does not apply. Same as metadata-action: the git tag
/// (or `value`) must be valid semver, a leading `v` allowed; a prerelease
/// gets its full version whatever the pattern, unless the pattern is `{{raw}}`.
fn semver_value(rule: &TagRule, ctx: &TagContext) -> Result<Option<(String, bool)>, TagError> {
    let Some(raw) = version_source(rule, ctx)? else {
        return Ok(None);
    };
    let cleaned = raw.trim().trim_start_matches(['v', '=']).trim_start();
    let Ok(parsed) = semver::Version::parse(cleaned) else {
        tracing::warn!(value = %raw, rule = %rule.line, "not a valid semver; the rule yields no tag");
        return Ok(None);
    };
    let vars = VersionVars {
        raw: raw.clone(),
        version: semver::Version {
            build: semver::BuildMetadata::EMPTY,
            ..parsed.clone()
        }
        .to_string(),
        major: parsed.major.to_string(),
        minor: parsed.minor.to_string(),
        patch: parsed.patch.to_string(),
    };
    let pattern = rule.attr("pattern");
    if parsed.pre.is_empty() {
        Ok(Some((eval(pattern, &Scope::Version(&vars), ctx)?, true)))
    } else if is_raw_statement(pattern) {
        Ok(Some((vars.raw, false)))
    } else {
        Ok(Some((vars.version, false)))
    }
}

/// A pep440 rule's tag and whether it is a final release, or `None` when the
/// rule does not apply. Same as metadata-action: the version must conform to
/// PEP 440; a pre-, post- or dev-release gets its normalised version (or
/// `{{raw}}`) whatever the pattern, and is no `latest`.
fn pep440_value(rule: &TagRule, ctx: &TagContext) -> Result<Option<(String, bool)>, TagError> {
    let Some(raw) = version_source(rule, ctx)? else {
        return Ok(None);
    };
    let Some(parsed) = pep440::Pep440::parse(&raw) else {
        tracing::warn!(value = %raw, rule = %rule.line, "does not conform to PEP 440; the rule yields no tag");
        return Ok(None);
    };
    let pattern = rule.attr("pattern");
    if parsed.is_not_final() {
        let value = if is_raw_statement(pattern) {
            raw
        } else {
            parsed.normalized()
        };
        return Ok(Some((value, false)));
    }
    let vars = VersionVars {
        raw,
        version: parsed.normalized(),
        major: parsed.major().to_owned(),
        minor: parsed.minor().to_owned(),
        patch: parsed.patch().to_owned(),
    };
    Ok(Some((eval(pattern, &Scope::Version(&vars), ctx)?, true)))
}

fn is_raw_statement(pattern: &str) -> bool {
    matches!(parse_template(pattern).as_deref(), Ok([Piece::Expr(expr)]) if expr.name == "raw")
}

/// A match rule's tag: the regex group of the git tag (or `value`).
fn match_value(rule: &TagRule, ctx: &TagContext) -> Result<Option<String>, TagError> {
    let subject = match (rule.attr("value"), ctx.tag()) {
        ("", None) => return Ok(None),
        ("", Some(tag)) => tag.to_owned(),
        (value, _) => eval(value, &Scope::Global, ctx)?,
    };
    let regex = compile_match_pattern(&rule.line, rule.attr("pattern"))?;
    let group: usize = rule.attr("group").parse().unwrap_or_default();
    let Some(captures) = regex.captures(&subject) else {
        tracing::warn!(pattern = rule.attr("pattern"), %subject, "pattern does not match; the rule yields no tag");
        return Ok(None);
    };
    Ok(captures.get(group).map(|m| m.as_str().to_owned()))
}

/// `pattern=` of a match rule: `/regex/flags` (flags `i`, `m`, `s`; `g` is
/// meaningless for one match and ignored) or a bare regex.
fn compile_match_pattern(line: &str, pattern: &str) -> Result<regex::Regex, TagError> {
    let (body, flags) = match pattern
        .strip_prefix('/')
        .and_then(|rest| rest.rsplit_once('/'))
    {
        Some((body, flags)) if !body.is_empty() => (body, flags),
        _ => (pattern, ""),
    };
    let mut builder = regex::RegexBuilder::new(body);
    for flag in flags.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            'g' | 'u' => &mut builder,
            _ => {
                return Err(invalid(
                    line,
                    "pattern",
                    pattern,
                    "regex flags among `i`, `m`, `s`, `g`, `u`",
                ));
            }
        };
    }
    builder.build().map_err(|error| {
        invalid(
            line,
            "pattern",
            pattern,
            &format!("a valid regex ({error})"),
        )
    })
}

struct VersionVars {
    raw: String,
    version: String,
    major: String,
    minor: String,
    patch: String,
}

/// Which names a template may use, as in metadata-action: semver and
/// pep440 patterns see the version's parts, schedule patterns the dates,
/// everything else the global expressions.
enum Scope<'a> {
    Global,
    Version(&'a VersionVars),
    Schedule,
}

impl Scope<'_> {
    fn valid_names(&self) -> &'static str {
        match self {
            Scope::Global => {
                "branch, tag, sha, base_ref, is_default_branch, is_not_default_branch, date, commit_date"
            }
            Scope::Version(_) => "version, major, minor, patch, raw",
            Scope::Schedule => "date, commit_date",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Expr {
    name: String,
    args: Vec<String>,
    hash: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Expr(Expr),
}

/// Parses a handlebars-style template: text and `{{name 'arg' key='value'}}`.
fn parse_template(template: &str) -> Result<Vec<Piece>, TagError> {
    let error = |reason: &str| TagError::Expression {
        template: template.to_owned(),
        reason: reason.to_owned(),
    };
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = find_close(after).ok_or_else(|| error("`{{` is not closed by `}}`"))?;
        let tokens = tokenize(&after[..end]).map_err(|reason| error(&reason))?;
        let mut tokens = tokens.into_iter();
        let Some(Token::Word(name)) = tokens.next() else {
            return Err(error("`{{}}` names no expression"));
        };
        if name.starts_with(['#', '/', '!', '>', '^']) {
            return Err(error(&format!(
                "`{{{{{name}` blocks, comments and partials are not supported"
            )));
        }
        let mut expr = Expr {
            name,
            args: Vec::new(),
            hash: Vec::new(),
        };
        for token in tokens {
            match token {
                Token::Quoted(arg) => expr.args.push(arg),
                Token::Word(word) => match word.split_once('=') {
                    Some((key, value)) => expr.hash.push((key.to_owned(), unquote(value))),
                    None => expr.args.push(word),
                },
            }
        }
        pieces.push(Piece::Expr(expr));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// The position of the `}}` closing an expression, skipping quoted strings.
fn find_close(text: &str) -> Option<usize> {
    let mut quote = None;
    for (index, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '}') if text[index..].starts_with("}}") => return Some(index),
            (None, _) => {}
        }
    }
    None
}

enum Token {
    Word(String),
    Quoted(String),
}

fn tokenize(inner: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = inner.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '\'' || c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c => break,
                    Some(other) => text.push(other),
                    None => return Err(format!("a `{c}` string is not closed")),
                }
            }
            tokens.push(Token::Quoted(text));
        } else {
            let mut word = String::new();
            let mut quote = None;
            while let Some(&c) = chars.peek() {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c.is_whitespace() => break,
                    None if c == '\'' || c == '"' => quote = Some(c),
                    None => {}
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

fn unquote(value: &str) -> String {
    for q in ['\'', '"'] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// Renders a template in a scope.
fn eval(template: &str, scope: &Scope<'_>, ctx: &TagContext) -> Result<String, TagError> {
    let mut out = String::new();
    for piece in parse_template(template)? {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Expr(expr) => out.push_str(&eval_expr(template, &expr, scope, ctx)?),
        }
    }
    Ok(out)
}

fn eval_expr(
    template: &str,
    expr: &Expr,
    scope: &Scope<'_>,
    ctx: &TagContext,
) -> Result<String, TagError> {
    let error = |reason: String| TagError::Expression {
        template: template.to_owned(),
        reason,
    };
    let name = expr.name.as_str();
    if name == "date" || name == "commit_date" {
        if matches!(scope, Scope::Version(_)) {
            return Err(error(format!(
                "`{name}` is not available here; valid names: {}",
                scope.valid_names()
            )));
        }
        let [format] = expr.args.as_slice() else {
            return Err(error(format!(
                "`{name}` takes one quoted format, as in `{{{{{name} 'YYYYMMDD'}}}}`"
            )));
        };
        let mut tz = jiff::tz::TimeZone::UTC;
        for (key, value) in &expr.hash {
            if key != "tz" {
                return Err(error(format!(
                    "unknown `{key}` attribute of `{name}`; valid: tz"
                )));
            }
            tz = jiff::tz::TimeZone::get(value).map_err(|_| {
                error(format!(
                    "unknown time zone `{value}` (use an IANA name such as `Europe/Paris`)"
                ))
            })?;
        }
        let time = if name == "date" {
            ctx.now
        } else {
            ctx.commit_date
        };
        return Ok(format_moment(&time.to_zoned(tz), format));
    }
    if !expr.args.is_empty() || !expr.hash.is_empty() {
        return Err(error(format!("`{name}` takes no arguments")));
    }
    let value = match (scope, name) {
        (Scope::Version(vars), "raw") => vars.raw.clone(),
        (Scope::Version(vars), "version") => vars.version.clone(),
        (Scope::Version(vars), "major") => vars.major.clone(),
        (Scope::Version(vars), "minor") => vars.minor.clone(),
        (Scope::Version(vars), "patch") => vars.patch.clone(),
        (Scope::Global, "branch") => ctx.branch().unwrap_or_default().to_owned(),
        (Scope::Global, "tag") => ctx.tag().unwrap_or_default().to_owned(),
        (Scope::Global, "sha") => ctx.short_sha().to_owned(),
        (Scope::Global, "is_default_branch") => ctx.is_default_branch().to_string(),
        // Same as metadata-action: the negation of `{{is_default_branch}}`.
        (Scope::Global, "is_not_default_branch") => (!ctx.is_default_branch()).to_string(),
        (Scope::Global, "base_ref") => {
            if ctx.tag().is_some() {
                ctx.base_ref
                    .as_deref()
                    .map(|r| r.strip_prefix("refs/heads/").unwrap_or(r).to_owned())
                    .unwrap_or_default()
            } else if ctx.pr().is_some() {
                ctx.pr_base_ref.clone().unwrap_or_default()
            } else {
                String::new()
            }
        }
        _ => {
            return Err(error(format!(
                "unknown expression `{{{{{name}}}}}`; valid names: {}",
                scope.valid_names()
            )));
        }
    };
    Ok(value)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats a time with moment.js tokens, as metadata-action's `{{date}}`:
/// `YYYY YY Q MMMM MMM MM M DDDD DDD DD Do D dddd ddd dd d WW W HH H hh h kk
/// k mm m ss s SSS SS S A a ZZ Z X x`, `[literal]`; other characters pass
/// through.
pub fn format_moment(time: &jiff::Zoned, format: &str) -> String {
    const TOKENS: [&str; 36] = [
        "YYYY", "YY", "Q", "MMMM", "MMM", "MM", "M", "DDDD", "DDD", "Do", "DD", "D", "dddd", "ddd",
        "dd", "d", "WW", "W", "HH", "H", "hh", "h", "kk", "k", "mm", "m", "ss", "s", "SSS", "SS",
        "S", "A", "a", "ZZ", "Z", "X",
    ];
    let mut out = String::new();
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        if let Some(end) = rest.find(']').filter(|_| c == '[') {
            out.push_str(&rest[1..end]);
            rest = &rest[end + 1..];
            continue;
        }
        if rest.starts_with('x') {
            out.push_str(&time.timestamp().as_millisecond().to_string());
            rest = &rest[1..];
            continue;
        }
        let Some(token) = TOKENS.iter().find(|token| rest.starts_with(*token)) else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        out.push_str(&moment_token(time, token));
        rest = &rest[token.len()..];
    }
    out
}

fn moment_token(time: &jiff::Zoned, token: &str) -> String {
    let month = usize::try_from(time.month()).unwrap_or(1).clamp(1, 12);
    let weekday = usize::try_from(time.weekday().to_sunday_zero_offset()).unwrap_or(0);
    let hour12 = match time.hour() % 12 {
        0 => 12,
        h => h,
    };
    let offset = time.offset().seconds();
    let sign = if offset < 0 { '-' } else { '+' };
    let (oh, om) = (offset.abs() / 3600, offset.abs() % 3600 / 60);
    let millis = time.subsec_nanosecond() / 1_000_000;
    let day = time.day();
    match token {
        "YYYY" => format!("{:04}", time.year()),
        "YY" => format!("{:02}", time.year().rem_euclid(100)),
        "Q" => ((month - 1) / 3 + 1).to_string(),
        "MMMM" => MONTHS[month - 1].to_owned(),
        "MMM" => MONTHS[month - 1][..3].to_owned(),
        "MM" => format!("{month:02}"),
        "M" => month.to_string(),
        "DDDD" => format!("{:03}", time.day_of_year()),
        "DDD" => time.day_of_year().to_string(),
        "Do" => {
            let suffix = match (day % 10, day % 100) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{day}{suffix}")
        }
        "DD" => format!("{day:02}"),
        "D" => day.to_string(),
        "dddd" => WEEKDAYS[weekday].to_owned(),
        "ddd" => WEEKDAYS[weekday][..3].to_owned(),
        "dd" => WEEKDAYS[weekday][..2].to_owned(),
        "d" => weekday.to_string(),
        "WW" => format!("{:02}", time.date().iso_week_date().week()),
        "W" => time.date().iso_week_date().week().to_string(),
        "HH" => format!("{:02}", time.hour()),
        "H" => time.hour().to_string(),
        "hh" => format!("{hour12:02}"),
        "h" => hour12.to_string(),
        "kk" => format!("{:02}", if time.hour() == 0 { 24 } else { time.hour() }),
        "k" => (if time.hour() == 0 { 24 } else { time.hour() }).to_string(),
        "mm" => format!("{:02}", time.minute()),
        "m" => time.minute().to_string(),
        "ss" => format!("{:02}", time.second()),
        "s" => time.second().to_string(),
        "SSS" => format!("{millis:03}"),
        "SS" => format!("{:02}", millis / 10),
        "S" => (millis / 100).to_string(),
        "A" => (if time.hour() < 12 { "AM" } else { "PM" }).to_owned(),
        "a" => (if time.hour() < 12 { "am" } else { "pm" }).to_owned(),
        "ZZ" => format!("{sign}{oh:02}{om:02}"),
        "Z" => format!("{sign}{oh:02}:{om:02}"),
        "X" => time.timestamp().as_second().to_string(),
        _ => token.to_owned(),
    }
}

impl fmt::Display for TagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_slipway_toml_and_errors_name_their_source() {
        let text = "[project]\nname = \"p\"\nregistry = \"r.io/p\"\n\n[tags]\nrules = [\"type=sha\", \"type=nope\"]\nflavor = [\"latest=false\"]\n";
        let config = crate::config::Config::from_str(text, std::path::Path::new("slipway.toml"))
            .expect("a config whose tag lines are only parsed later");
        let error = rules_and_flavor::<&str>(&[], &[], Some(&config.tags)).expect_err("type=nope");
        assert!(
            error.starts_with("invalid `[tags] rules` entry at slipway.toml:6:"),
            "{error}"
        );
        let (rules, flavor) = rules_and_flavor(
            &["type=ref,event=branch"],
            &["prefix=v"],
            Some(&config.tags),
        )
        .expect("the flags replace the file's lines");
        assert_eq!(rules.len(), 1);
        assert_eq!(flavor.prefix, "v");
        let error =
            rules_and_flavor(&["type=sha"], &["latest=sometimes"], None).expect_err("a bad flavor");
        assert!(error.starts_with("invalid `--flavor`: "), "{error}");
        let (rules, flavor) = rules_and_flavor::<&str>(&[], &[], None).expect("nothing given");
        assert!(rules.is_empty());
        assert_eq!(flavor, Flavor::default());
    }

    const SHA: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";

    fn ctx(event: &str, git_ref: &str) -> TagContext {
        TagContext {
            event_name: event.to_owned(),
            git_ref: git_ref.to_owned(),
            sha: SHA.to_owned(),
            default_branch: Some("master".to_owned()),
            base_ref: None,
            pr_base_ref: Some("main".to_owned()),
            now: "2020-01-10T00:30:00Z".parse().unwrap(),
            commit_date: "2020-01-09T12:34:56Z".parse().unwrap(),
            short_sha_length: 7,
            repository: RepoInfo::default(),
        }
    }

    fn push(branch: &str) -> TagContext {
        ctx("push", &format!("refs/heads/{branch}"))
    }

    fn tag(name: &str) -> TagContext {
        ctx("push", &format!("refs/tags/{name}"))
    }

    fn pr(number: u32) -> TagContext {
        ctx("pull_request", &format!("refs/pull/{number}/merge"))
    }

    fn schedule(branch: &str) -> TagContext {
        ctx("schedule", &format!("refs/heads/{branch}"))
    }

    fn run(
        ctx: &TagContext,
        rules: &[&str],
        flavor: &[&str],
        images: &[&str],
    ) -> Result<Metadata, TagError> {
        let rules = rules
            .iter()
            .map(|r| TagRule::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let flavor = Flavor::parse(flavor)?;
        let images = ImageSpec::parse_all(images)?;
        compute(&rules, &flavor, &images, ctx)
    }

    #[track_caller]
    fn check(ctx: TagContext, rules: &[&str], flavor: &[&str], expected: &[&str]) {
        let meta = run(&ctx, rules, flavor, &[]).expect("valid rules");
        assert_eq!(
            meta.tags, expected,
            "rules {rules:?}, flavor {flavor:?}, ref `{}`",
            ctx.git_ref
        );
    }

    #[track_caller]
    fn check_error(ctx: TagContext, rules: &[&str], flavor: &[&str], expected: &str) {
        let error = run(&ctx, rules, flavor, &[]).expect_err("invalid input");
        assert_eq!(
            error.to_string(),
            expected,
            "rules {rules:?}, flavor {flavor:?}"
        );
    }

    #[test]
    fn default_rules() {
        check(push("master"), &[], &[], &["master"]);
        check(push("feature/login"), &[], &[], &["feature-login"]);
        check(tag("v1.1.1"), &[], &[], &["v1.1.1", "latest"]);
        check(pr(15), &[], &[], &["pr-15"]);
        check(schedule("master"), &[], &[], &["nightly", "master"]);
        check(ctx("workflow_dispatch", ""), &[], &[], &[]);
    }

    #[test]
    fn sha_rules() {
        check(push("master"), &["type=sha"], &[], &["sha-860c190"]);
        check(
            push("master"),
            &["type=sha,format=long"],
            &[],
            &[&format!("sha-{SHA}")],
        );
        check(push("master"), &["type=sha,prefix="], &[], &["860c190"]);
        check(
            push("master"),
            &["type=sha,prefix=commit-,suffix=-x"],
            &[],
            &["commit-860c190-x"],
        );
        // The sha rule's default `sha-` prefix is its own attribute, so the
        // flavor's prefix never applies to it; the flavor's suffix does.
        check(
            push("master"),
            &["type=sha"],
            &["prefix=foo-"],
            &["sha-860c190"],
        );
        check(
            push("master"),
            &["type=sha"],
            &["suffix=-alpine"],
            &["sha-860c190-alpine"],
        );
        check(tag("v1.0.0"), &["type=sha"], &[], &["sha-860c190"]);
        check(pr(3), &["type=sha"], &[], &["sha-860c190"]);
    }

    #[test]
    fn ref_rules() {
        check(tag("v1.0.0"), &["type=ref,event=branch"], &[], &[]);
        check(
            tag("v1.0.0"),
            &["type=ref,event=tag"],
            &[],
            &["v1.0.0", "latest"],
        );
        check(push("master"), &["type=ref,event=tag"], &[], &[]);
        check(pr(2), &["type=ref,event=pr"], &[], &["pr-2"]);
        check(pr(2), &["type=ref,event=pr,prefix=pull-"], &[], &["pull-2"]);
        check(pr(2), &["type=ref,event=pr"], &["prefix=foo-"], &["pr-2"]);
        check(push("master"), &["type=ref,event=pr"], &[], &[]);
        check(
            push("feature/a/b@#!"),
            &["type=ref,event=branch"],
            &[],
            &["feature-a-b-"],
        );
        check(
            tag("release/1.0"),
            &["type=ref,event=tag"],
            &[],
            &["release-1.0", "latest"],
        );
        check(
            push("dev"),
            &["type=ref,event=branch"],
            &["prefix=br-,suffix=-x"],
            &["br-dev-x"],
        );
        check(
            ctx("pull_request_target", "refs/pull/7/merge"),
            &["type=ref,event=pr"],
            &[],
            &["pr-7"],
        );
    }

    #[test]
    fn semver_rules() {
        let all = [
            "type=semver,pattern={{version}}",
            "type=semver,pattern={{major}}.{{minor}}",
            "type=semver,pattern={{major}}",
        ];
        check(tag("v1.2.3"), &all[..1], &[], &["1.2.3", "latest"]);
        check(tag("v1.2.3"), &all, &[], &["1.2.3", "1.2", "1", "latest"]);
        check(tag("1.2.3"), &all, &[], &["1.2.3", "1.2", "1", "latest"]);
        check(tag("v0.1.0"), &all, &[], &["0.1.0", "0.1", "0", "latest"]);
        // A prerelease gets its full version whatever the pattern, and no latest.
        check(tag("v1.2.3-beta.1"), &all, &[], &["1.2.3-beta.1"]);
        check(
            tag("v1.2.3-rc.1"),
            &["type=semver,pattern={{raw}}"],
            &[],
            &["v1.2.3-rc.1"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{raw}}"],
            &[],
            &["v1.2.3", "latest"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern=v{{major}}"],
            &[],
            &["v1", "latest"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{major}}.{{minor}}.{{patch}}"],
            &[],
            &["1.2.3", "latest"],
        );
        check(push("master"), &all, &[], &[]);
        check(
            push("master"),
            &["type=semver,pattern={{version}},value=v2.0.0"],
            &[],
            &["2.0.0", "latest"],
        );
        check(tag("foo"), &all, &[], &[]);
        check(tag("1.2"), &all, &[], &[]);
        check(tag("v01.2.3"), &all, &[], &[]);
        check(tag("v1.2.3+build.5"), &all[..1], &[], &["1.2.3", "latest"]);
        check(
            tag("v1.2.3+build.5"),
            &["type=semver,pattern={{raw}}"],
            &[],
            &["v1.2.3-build.5", "latest"],
        );
        check(
            tag("v1.2.3-alpha"),
            &["type=semver,pattern={{version}}", "type=raw,value=dev"],
            &[],
            &["1.2.3-alpha", "dev"],
        );
    }

    #[test]
    fn semver_match_keeps_group_one_of_the_raw_tag() {
        // metadata-action's README table for `type=semver`.
        let rule = r"type=semver,pattern={{version}},match=v(\d.\d.\d)$";
        check(tag("p1/v1.2.3"), &[rule], &[], &["1.2.3", "latest"]);
        check(
            push("master"),
            &[r"type=semver,pattern={{version}},value=p1/v1.0.0,match=v(\d.\d.\d)$"],
            &[],
            &["1.0.0", "latest"],
        );
        // No match: the value is used whole (`/` then becomes `-`).
        check(tag("v1.2.3"), &[rule], &[], &["1.2.3", "latest"]);
        check(tag("p1/x"), &[rule], &[], &[]);
        check(
            tag("p1/v2.0.8-beta.67"),
            &[r"type=semver,pattern={{major}},match=p1/(v.*)"],
            &[],
            &["2.0.8-beta.67"],
        );
        check_error(
            tag("v1"),
            &["type=semver,pattern={{version}},match=v(("],
            &[],
            "invalid `match` value `v((` in `type=semver,pattern={{version}},match=v((`; expected a regex whose group 1 is the version (regex parse error:\n    v((\n      ^\nerror: unclosed group)",
        );
    }

    #[test]
    fn pep440_rules_as_metadata_actions_readme() {
        // Its README table for `type=pep440`, line by line.
        let cases: [(&str, &str, &[&str]); 12] = [
            ("1.2.3", "{{raw}}", &["1.2.3", "latest"]),
            ("1.2.3", "{{version}}", &["1.2.3", "latest"]),
            ("v1.2.3", "{{version}}", &["1.2.3", "latest"]),
            ("1.2.3", "{{major}}.{{minor}}", &["1.2", "latest"]),
            ("1.2.3", "v{{major}}", &["v1", "latest"]),
            ("v1.2.3rc2", "{{raw}}", &["v1.2.3rc2"]),
            ("1.2.3rc2", "{{version}}", &["1.2.3rc2"]),
            ("1.2.3rc2", "{{major}}.{{minor}}", &["1.2.3rc2"]),
            ("1.2.3post1", "{{major}}.{{minor}}", &["1.2.3.post1"]),
            ("1.2.3beta2", "{{major}}.{{minor}}", &["1.2.3b2"]),
            ("1.0dev4", "{{major}}.{{minor}}", &["1.0.dev4"]),
            ("1.1beta2", "{{version}}", &["1.1b2"]),
        ];
        for (git_tag, pattern, expected) in cases {
            let rule = format!("type=pep440,pattern={pattern}");
            check(tag(git_tag), &[&rule], &[], expected);
        }
        check(
            tag("p1/v1.2.3"),
            &[r"type=pep440,pattern={{version}},match=v(\d.\d.\d)$"],
            &[],
            &["1.2.3", "latest"],
        );
        check(
            push("master"),
            &["type=pep440,pattern={{version}},value=1.0.0"],
            &[],
            &["1.0.0", "latest"],
        );
        check(
            tag("1.2"),
            &["type=pep440,pattern={{major}}.{{minor}}.{{patch}}"],
            &[],
            &["1.2.0", "latest"],
        );
        // A local version is a release; `+` becomes `-`.
        check(
            tag("1.2.3+ubuntu.1"),
            &["type=pep440,pattern={{version}}"],
            &[],
            &["1.2.3-ubuntu-1", "latest"],
        );
        check(tag("1.2.x"), &["type=pep440,pattern={{version}}"], &[], &[]);
        check(
            push("master"),
            &["type=pep440,pattern={{version}}"],
            &[],
            &[],
        );
        // Priority 900, as semver.
        check(
            tag("1.2.3"),
            &["type=ref,event=tag", "type=pep440,pattern={{major}}"],
            &[],
            &["1", "1.2.3", "latest"],
        );
    }

    #[test]
    fn is_not_default_branch_is_the_negation() {
        let rule = "type=raw,value=dev,enable={{is_not_default_branch}}";
        check(push("feature"), &[rule], &[], &["dev"]);
        check(push("master"), &[rule], &[], &[]);
        check(tag("v1.0.0"), &[rule], &[], &["dev"]);
        check(schedule("master"), &[rule], &[], &[]);
    }

    #[test]
    fn a_cut_keeps_the_flavor_prefix_and_suffix() {
        let long = "feature/".to_owned() + &"x".repeat(150);
        let rules = ["type=ref,event=branch"];
        let cut = format!(
            "feature-{}",
            "x".repeat(128 - "feature-".len() - "-alpine".len())
        );
        check(
            push(&long),
            &rules,
            &["suffix=-alpine"],
            &[&format!("{cut}-alpine")],
        );
        let cut = format!(
            "feature-{}",
            "x".repeat(128 - "feature-".len() - "-debian".len())
        );
        check(
            push(&long),
            &rules,
            &["suffix=-debian"],
            &[&format!("{cut}-debian")],
        );
        let cut = format!(
            "feature-{}",
            "x".repeat(128 - "feature-".len() - "v2-".len())
        );
        check(
            push(&long),
            &rules,
            &["prefix=v2-"],
            &[&format!("v2-{cut}")],
        );
        // Exactly 128 characters is not cut.
        let exact = "y".repeat(121);
        check(
            push(&exact),
            &rules,
            &["suffix=-alpine"],
            &[&format!("{exact}-alpine")],
        );
    }

    #[test]
    fn custom_labels_and_annotations_replace_or_add() {
        let ctx = push("master");
        let labels = oci_annotations(
            Some("1.0.0"),
            &[
                "maintainer=CrazyMax",
                "org.opencontainers.image.title=MyCustomTitle",
                "org.opencontainers.image.vendor=MyCompany",
                "built.from={{branch}}",
                "a=b=c",
                "no-equals-sign",
            ],
            &ctx,
        )
        .expect("valid entries");
        assert_eq!(labels["maintainer"], "CrazyMax");
        assert_eq!(labels["org.opencontainers.image.title"], "MyCustomTitle");
        assert_eq!(labels["org.opencontainers.image.vendor"], "MyCompany");
        assert_eq!(labels["org.opencontainers.image.version"], "1.0.0");
        assert_eq!(labels["built.from"], "master");
        assert_eq!(labels["a"], "b=c");
        assert!(!labels.contains_key("no-equals-sign"));
        let annotations = annotations_at_levels(
            &BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            &["manifest".to_owned(), "index".to_owned()],
        );
        assert_eq!(annotations, ["manifest:k=v", "index:k=v"]);
    }

    #[test]
    fn order_is_priority_then_declaration() {
        check(
            tag("v1.2.3"),
            &["type=ref,event=tag", "type=semver,pattern={{version}}"],
            &[],
            &["1.2.3", "v1.2.3", "latest"],
        );
        check(
            tag("v1.2.3"),
            &[
                "type=sha",
                "type=ref,event=branch",
                "type=semver,pattern={{version}}",
            ],
            &[],
            &["1.2.3", "sha-860c190", "latest"],
        );
        check(
            push("master"),
            &["type=raw,value=b", "type=raw,value=a"],
            &[],
            &["b", "a"],
        );
        check(
            push("master"),
            &["type=raw,value=b", "type=raw,value=a,priority=201"],
            &[],
            &["a", "b"],
        );
        check(
            push("master"),
            &["type=sha", "type=raw,value=x"],
            &[],
            &["x", "sha-860c190"],
        );
        check(
            push("master"),
            &["type=sha,priority=300", "type=raw,value=x"],
            &[],
            &["sha-860c190", "x"],
        );
        check(
            push("master"),
            &["type=edge", "type=ref,event=branch"],
            &[],
            &["edge", "master"],
        );
    }

    #[test]
    fn latest_auto_is_decided_by_the_first_rule_that_yields_a_tag() {
        check(
            tag("v1.0.0"),
            &["type=sha", "type=ref,event=tag"],
            &[],
            &["v1.0.0", "sha-860c190", "latest"],
        );
        check(
            tag("v1.0.0"),
            &["type=sha,priority=601", "type=ref,event=tag"],
            &[],
            &["sha-860c190", "v1.0.0"],
        );
        check(tag("v1.0.0"), &["type=raw,value=foo"], &[], &["foo"]);
        check(
            tag("v1.0.0"),
            &["type=match,pattern=\\d.\\d.\\d"],
            &[],
            &["1.0.0", "latest"],
        );
        // A semver rule that yields nothing leaves the decision to the next one.
        check(
            tag("foo"),
            &["type=semver,pattern={{version}}", "type=ref,event=tag"],
            &[],
            &["foo", "latest"],
        );
        check(push("master"), &["type=ref,event=branch"], &[], &["master"]);
        check(
            tag("v2.0.0-rc.1"),
            &["type=semver,pattern={{version}}", "type=ref,event=tag"],
            &[],
            &["2.0.0-rc.1", "v2.0.0-rc.1"],
        );
    }

    #[test]
    fn latest_flavor() {
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["latest=false"],
            &["1.2.3"],
        );
        check(
            push("master"),
            &["type=ref,event=branch"],
            &["latest=true"],
            &["master", "latest"],
        );
        check(
            tag("v1.2.3-beta"),
            &["type=semver,pattern={{version}}"],
            &["latest=true"],
            &["1.2.3-beta", "latest"],
        );
        check(
            push("master"),
            &["type=sha"],
            &["latest=default-branch"],
            &["sha-860c190", "latest"],
        );
        check(
            push("dev"),
            &["type=sha"],
            &["latest=default-branch"],
            &["sha-860c190"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["latest=default-branch"],
            &["1.2.3"],
        );
        // No tag at all means no `latest` either.
        check(
            push("master"),
            &["type=ref,event=tag"],
            &["latest=true"],
            &[],
        );
        check(
            push("master"),
            &["type=raw,value=latest"],
            &["latest=true"],
            &["latest"],
        );
    }

    #[test]
    fn flavor_prefix_and_suffix() {
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["prefix=v"],
            &["v1.2.3", "latest"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["prefix=v,onlatest=true"],
            &["v1.2.3", "vlatest"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["suffix=-alpine,onlatest=true"],
            &["1.2.3-alpine", "latest-alpine"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["suffix=-alpine"],
            &["1.2.3-alpine", "latest"],
        );
        check(
            push("master"),
            &["type=raw,value=foo,prefix="],
            &["prefix=x-"],
            &["foo"],
        );
        check(
            push("master"),
            &["type=raw,value=foo"],
            &["prefix={{date 'YYYY'}}-"],
            &["2020-foo"],
        );
        check(
            push("master"),
            &["type=raw,value=foo"],
            &["prefix=a-", "prefix=b-"],
            &["b-foo"],
        );
    }

    #[test]
    fn match_rules() {
        check(
            tag("v1.2.3"),
            &["type=match,pattern=v(\\d.\\d),group=1"],
            &[],
            &["1.2", "latest"],
        );
        check(tag("v1.2.3"), &["type=match,pattern=x(\\d)"], &[], &[]);
        check(
            tag("V2.0"),
            &["type=match,pattern=/^v(.*)$/i,group=1"],
            &[],
            &["2.0", "latest"],
        );
        check(
            push("master"),
            &["type=match,pattern=\\d+,value=build-42"],
            &[],
            &["42", "latest"],
        );
        check(push("master"), &["type=match,pattern=\\d+"], &[], &[]);
        check(
            tag("app/v12.3"),
            &["type=match,\"pattern=app/v(\\d{1,3})\",group=1"],
            &[],
            &["12", "latest"],
        );
        check(
            tag("v1"),
            &["type=match,pattern=v(\\d)(x)?,group=2"],
            &[],
            &[],
        );
    }

    #[test]
    fn edge_rules() {
        check(push("master"), &["type=edge"], &[], &["edge"]);
        check(push("dev"), &["type=edge"], &[], &[]);
        check(push("dev"), &["type=edge,branch=dev"], &[], &["edge"]);
        check(tag("v1.0.0"), &["type=edge"], &[], &[]);
    }

    #[test]
    fn raw_rules_and_expressions() {
        check(
            push("master"),
            &["type=raw,value=foo", "type=raw,value=bar"],
            &[],
            &["foo", "bar"],
        );
        check(push("master"), &["foo"], &[], &["foo"]);
        check(
            push("master"),
            &["type=raw,value=foo", "type=raw,value=foo"],
            &[],
            &["foo"],
        );
        check(
            push("feature/x"),
            &["type=raw,value={{branch}}"],
            &[],
            &["feature-x"],
        );
        check(tag("v1"), &["type=raw,value={{branch}}"], &[], &[]);
        check(
            push("master"),
            &["type=raw,value={{sha}}"],
            &[],
            &["860c190"],
        );
        check(
            push("master"),
            &["type=raw,value={{date 'YYYYMMDD'}}"],
            &[],
            &["20200110"],
        );
        check(
            push("master"),
            &["type=raw,value={{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}"],
            &[],
            &["20200110-093000"],
        );
        check(
            push("master"),
            &["type=raw,value={{commit_date 'YYYY-MM-DDTHH:mm'}}"],
            &[],
            &["2020-01-09T12-34"],
        );
        check(
            tag("v1"),
            &["type=raw,value=custom-{{tag}}"],
            &[],
            &["custom-v1"],
        );
        check(
            pr(4),
            &["type=raw,value=into-{{base_ref}}"],
            &[],
            &["into-main"],
        );
        check(
            push("master"),
            &["type=raw,value={{ branch }}-{{sha}}"],
            &[],
            &["master-860c190"],
        );
        check(push("master"), &["type=raw,value=my tag"], &[], &["my-tag"]);
    }

    #[test]
    fn enable_expressions() {
        let latest = ["type=raw,value=latest,enable={{is_default_branch}}"];
        check(push("master"), &latest, &[], &["latest"]);
        check(push("dev"), &latest, &[], &[]);
        check(tag("v1.0.0"), &latest, &[], &[]);
        check(schedule("dev"), &latest, &[], &["latest"]);
        check(
            push("master"),
            &["type=ref,event=branch,enable=false"],
            &[],
            &[],
        );
        check(
            push("master"),
            &["type=ref,event=branch,enable=false", "type=sha"],
            &[],
            &["sha-860c190"],
        );
    }

    #[test]
    fn schedule_rules() {
        check(schedule("master"), &["type=schedule"], &[], &["nightly"]);
        check(
            schedule("master"),
            &["type=schedule,pattern={{date 'YYYYMMDD'}}"],
            &[],
            &["20200110"],
        );
        check(
            schedule("master"),
            &["type=schedule,pattern=nightly-{{date 'YYYY.MM'}}"],
            &[],
            &["nightly-2020.01"],
        );
        check(push("master"), &["type=schedule"], &[], &[]);
        check(
            schedule("master"),
            &["type=schedule"],
            &["latest=true"],
            &["nightly", "latest"],
        );
    }

    #[test]
    fn tags_registries_reject_are_made_valid() {
        check(push("-dash"), &["type=ref,event=branch"], &[], &["dash"]);
        check(
            push("master"),
            &["type=raw,value=.hidden"],
            &[],
            &["hidden"],
        );
        check(push("master"), &["type=raw,value=/"], &[], &[]);
        let long = "a".repeat(200);
        check(
            push(&long),
            &["type=ref,event=branch"],
            &[],
            &[&"a".repeat(128)],
        );
    }

    #[test]
    fn images_prefix_every_tag() {
        let meta = run(
            &tag("v1.0.0"),
            &["type=ref,event=tag"],
            &[],
            &["user/app", "ghcr.io/User/App"],
        )
        .unwrap();
        assert_eq!(
            meta.tags,
            [
                "user/app:v1.0.0",
                "user/app:latest",
                "ghcr.io/user/app:v1.0.0",
                "ghcr.io/user/app:latest"
            ]
        );
        let meta = run(
            &tag("v1.0.0"),
            &["type=ref,event=tag"],
            &[],
            &["user/app,ghcr.io/x/y"],
        )
        .unwrap();
        assert_eq!(
            meta.tags,
            [
                "user/app:v1.0.0",
                "user/app:latest",
                "ghcr.io/x/y:v1.0.0",
                "ghcr.io/x/y:latest"
            ]
        );
        let meta = run(
            &tag("v1.0.0"),
            &["type=ref,event=tag"],
            &[],
            &["name=a/b", "name=c/d,enable=false"],
        )
        .unwrap();
        assert_eq!(meta.tags, ["a/b:v1.0.0", "a/b:latest"]);
    }

    #[test]
    fn labels_are_metadata_actions() {
        let mut context = tag("v1.2.3");
        context.repository = RepoInfo {
            name: "app".to_owned(),
            description: "An app".to_owned(),
            html_url: "https://github.com/o/app".to_owned(),
            license: "MIT".to_owned(),
        };
        let meta = run(&context, &["type=semver,pattern={{version}}"], &[], &[]).unwrap();
        let labels: Vec<String> = meta
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            labels,
            [
                "org.opencontainers.image.created=2020-01-10T00:30:00.000Z",
                "org.opencontainers.image.description=An app",
                "org.opencontainers.image.licenses=MIT",
                &format!("org.opencontainers.image.revision={SHA}"),
                "org.opencontainers.image.source=https://github.com/o/app",
                "org.opencontainers.image.title=app",
                "org.opencontainers.image.url=https://github.com/o/app",
                "org.opencontainers.image.version=1.2.3",
            ]
        );
        assert_eq!(meta.version.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn errors_name_the_rule_and_what_is_valid() {
        check_error(
            push("m"),
            &["type=ref,evnt=branch"],
            &[],
            "unknown tag rule attribute `evnt` in `type=ref,evnt=branch` — did you mean `event`?; valid attributes: type, enable, priority, prefix, suffix, event",
        );
        check_error(
            push("m"),
            &["type=semvr,pattern={{version}}"],
            &[],
            "unknown tag rule type `semvr` in `type=semvr,pattern={{version}}` — did you mean `semver`?; valid types: schedule, semver, pep440, match, edge, ref, raw, sha",
        );
        check_error(
            push("m"),
            &["type=semver"],
            &[],
            "tag rule `type=semver` needs a `pattern` attribute",
        );
        check_error(
            push("m"),
            &["type=ref"],
            &[],
            "tag rule `type=ref` needs a `event` attribute",
        );
        check_error(
            push("m"),
            &["type=ref,event=push"],
            &[],
            "invalid `event` value `push` in `type=ref,event=push`; expected `branch`, `tag` or `pr`",
        );
        check_error(
            push("m"),
            &["type=sha,format=medium"],
            &[],
            "invalid `format` value `medium` in `type=sha,format=medium`; expected `short` or `long`",
        );
        check_error(
            push("m"),
            &["type=raw,value=x,priority=high"],
            &[],
            "invalid `priority` value `high` in `type=raw,value=x,priority=high`; expected an integer such as `600`",
        );
        check_error(
            push("m"),
            &["type=raw,value=x,enable={{branch}}"],
            &[],
            "invalid `enable` value `m` in `type=raw,value=x,enable={{branch}}`; expected an expression that gives `true` or `false`",
        );
        check_error(
            push("m"),
            &["type=raw,value={{brnch}}"],
            &[],
            "invalid expression in `{{brnch}}`: unknown expression `{{brnch}}`; valid names: branch, tag, sha, base_ref, is_default_branch, is_not_default_branch, date, commit_date",
        );
        check_error(
            push("m"),
            &["type=raw,value={{branch"],
            &[],
            "invalid expression in `{{branch`: `{{` is not closed by `}}`",
        );
        check_error(
            push("m"),
            &["type=pep440,value=1.0"],
            &[],
            "tag rule `type=pep440,value=1.0` needs a `pattern` attribute",
        );
        check_error(
            push("m"),
            &[],
            &["latest=maybe"],
            "invalid `latest` value `maybe` in `latest=maybe`; expected `auto`, `true`, `false` or `default-branch`",
        );
        check_error(
            push("m"),
            &[],
            &["prefx=v"],
            "unknown flavor entry `prefx` in `prefx=v` — did you mean `prefix`?; valid entries: latest, prefix, suffix, onlatest",
        );
        check_error(
            push("m"),
            &["type=raw,value={{date 'YYYY' tz='Mars/Base'}}"],
            &[],
            "invalid expression in `{{date 'YYYY' tz='Mars/Base'}}`: unknown time zone `Mars/Base` (use an IANA name such as `Europe/Paris`)",
        );
        check_error(
            tag("v1.0.0"),
            &["type=semver,pattern={{branch}}"],
            &[],
            "invalid expression in `{{branch}}`: unknown expression `{{branch}}`; valid names: version, major, minor, patch, raw",
        );
    }

    #[track_caller]
    fn check_moment(format: &str, expected: &str) {
        let time: jiff::Timestamp = "2021-03-04T05:06:07.089Z".parse().unwrap();
        assert_eq!(
            format_moment(&time.to_zoned(jiff::tz::TimeZone::UTC), format),
            expected,
            "format `{format}`"
        );
    }

    #[test]
    fn moment_formats() {
        check_moment("YYYYMMDD", "20210304");
        check_moment("YY-M-D H:m:s", "21-3-4 5:6:7");
        check_moment("YYYY-MM-DDTHH:mm:ss.SSSZ", "2021-03-04T05:06:07.089+00:00");
        check_moment("[week] W, Q, DDD, Do", "week 9, 1, 63, 4th");
        check_moment(
            "dddd ddd MMMM MMM hh A a",
            "Thursday Thu March Mar 05 AM am",
        );
        check_moment("X", "1614834367");
    }
}
