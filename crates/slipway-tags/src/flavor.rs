//! metadata-action's `flavor:` lines (`latest`, `prefix`, `suffix`) and where
//! rules and flavor come from (flags over slipway.toml's `[tags]`).

use super::*;

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
    config: Option<&slipway_config::Tags>,
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
