//! The rule parser: metadata-action's `tags:` lines (`type=semver,pattern={{version}}`)
//! into [`TagRule`]s, checked attribute by attribute, and their priority order.

use super::*;

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
    pub(super) fn own_attributes(self) -> &'static [&'static str] {
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

pub(super) const TYPES: [&str; 8] = [
    "schedule", "semver", "pep440", "match", "edge", "ref", "raw", "sha",
];
pub(super) const COMMON_ATTRIBUTES: [&str; 5] = ["type", "enable", "priority", "prefix", "suffix"];

/// One line of metadata-action's `tags:` input, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRule {
    pub(super) line: String,
    pub(super) kind: RuleType,
    pub(super) attrs: BTreeMap<String, String>,
    pub(super) priority: i64,
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

    pub(super) fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// Rejects attributes the rule's type does not take, naming the nearest valid one.
pub(super) fn check_attributes(
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

pub(super) fn missing(line: &str, key: &str) -> TagError {
    TagError::MissingAttribute {
        rule: line.to_owned(),
        key: key.to_owned(),
    }
}

pub(super) fn invalid(line: &str, key: &str, value: &str, expected: &str) -> TagError {
    TagError::InvalidValue {
        line: line.to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// Splits a line into comma-separated fields the way csv-parse does: a field
/// that starts with `"` runs to the closing quote, `""` inside is one quote.
pub(super) fn split_fields(line: &str) -> Result<Vec<String>, TagError> {
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

impl fmt::Display for TagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}
