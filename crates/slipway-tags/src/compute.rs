//! The compute engine: rules, flavor and images evaluated against a
//! [`TagContext`] into tags, labels and the version, with metadata-action's
//! sanitiser and img-tag's fix for tags registries reject.

use super::*;

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
    pub(super) fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    pub(super) fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    pub(super) fn pr(&self) -> Option<&str> {
        self.git_ref
            .strip_prefix("refs/pull/")
            .map(|rest| rest.strip_suffix("/merge").unwrap_or(rest))
    }

    pub(super) fn short_sha(&self) -> &str {
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
pub(super) struct Version {
    pub(super) main: Option<String>,
    pub(super) partial: Vec<String>,
    pub(super) latest: Option<bool>,
}

impl Version {
    pub(super) fn set(&mut self, tag: Affixed, latest: bool) {
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
pub(super) struct Affixed {
    pub(super) prefix: String,
    pub(super) value: String,
    pub(super) suffix: String,
}

impl Affixed {
    /// The tag: sanitised as metadata-action does, then made valid. A tag too
    /// long for a registry loses the end of its value, never its prefix or
    /// suffix, so variants (`suffix=-alpine`, `suffix=-debian`) of a long
    /// branch stay apart.
    pub(super) fn to_valid_tag(&self) -> String {
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
pub(super) fn iso_millis(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The rule's prefix and suffix, or else the flavor's (metadata-action's
/// `setValue`): a rule's own `prefix=`, even empty, replaces the flavor's.
pub(super) fn affix(
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
pub(super) fn version_source(rule: &TagRule, ctx: &TagContext) -> Result<Option<String>, TagError> {
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
pub(super) fn compile_version_match(line: &str, pattern: &str) -> Result<regex::Regex, TagError> {
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
pub(super) fn semver_value(
    rule: &TagRule,
    ctx: &TagContext,
) -> Result<Option<(String, bool)>, TagError> {
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
pub(super) fn pep440_value(
    rule: &TagRule,
    ctx: &TagContext,
) -> Result<Option<(String, bool)>, TagError> {
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

pub(super) fn is_raw_statement(pattern: &str) -> bool {
    matches!(parse_template(pattern).as_deref(), Ok([Piece::Expr(expr)]) if expr.name == "raw")
}

/// A match rule's tag: the regex group of the git tag (or `value`).
pub(super) fn match_value(rule: &TagRule, ctx: &TagContext) -> Result<Option<String>, TagError> {
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
pub(super) fn compile_match_pattern(line: &str, pattern: &str) -> Result<regex::Regex, TagError> {
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
