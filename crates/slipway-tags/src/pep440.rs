//! PEP 440 versions as docker/metadata-action reads them for `type=pep440`:
//! its `@renovate/pep440` package's `valid`, `clean`, `explain`, `major`,
//! `minor` and `patch`, so `1.1beta2` gives `1.1b2`, `1.0dev4` gives
//! `1.0.dev4` and `1.2post1` gives `1.2.post1`.
//!
//! Pure: a version string in, its parts out.

use std::sync::LazyLock;

/// PEP 440's version pattern (its appendix B), as `@renovate/pep440` uses
/// it: case-insensitive, anchored, a leading `v` allowed.
static VERSION: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(concat!(
        r"(?i)^v?(?:(?:(?P<epoch>[0-9]+)!)?(?P<release>[0-9]+(?:\.[0-9]+)*)",
        r"(?P<pre>[-_\.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_\.]?(?P<pre_n>[0-9]+)?)?",
        r"(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?",
        r"(?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?)",
        r"(?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?$",
    ))
    .expect("PEP 440's version pattern is a valid regex")
});

/// A version that conforms to PEP 440, split into its normalised parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep440 {
    epoch: String,
    release: Vec<String>,
    pre: Option<(String, String)>,
    post: Option<String>,
    dev: Option<String>,
    local: Option<Vec<String>>,
}

/// A number as JavaScript's `Number()` prints it back, for the sizes
/// versions use: leading zeros dropped.
fn number(digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

impl Pep440 {
    /// Parses `text`; `None` when it does not conform to PEP 440 (surrounding
    /// whitespace included, as `pep440.valid` refuses it).
    pub fn parse(text: &str) -> Option<Pep440> {
        let caps = VERSION.captures(text)?;
        let group = |name: &str| caps.name(name).map(|m| m.as_str());
        let letter = |letter: Option<&str>, digits: Option<&str>| {
            letter.map(|letter| {
                let letter = match letter.to_ascii_lowercase().as_str() {
                    "alpha" => "a".to_owned(),
                    "beta" => "b".to_owned(),
                    "c" | "pre" | "preview" => "rc".to_owned(),
                    other => other.to_owned(),
                };
                (letter, number(digits.unwrap_or("0")))
            })
        };
        let post = match (group("post_l"), group("post_n1").or(group("post_n2"))) {
            (Some(_), digits) => Some(number(digits.unwrap_or("0"))),
            (None, Some(digits)) => Some(number(digits)),
            (None, None) => None,
        };
        Some(Pep440 {
            epoch: number(group("epoch").unwrap_or("0")),
            release: group("release")?.split('.').map(number).collect(),
            pre: letter(group("pre_l"), group("pre_n")),
            post,
            dev: group("dev_l").map(|_| number(group("dev_n").unwrap_or("0"))),
            local: group("local").map(|local| {
                local
                    .split(['.', '_', '-'])
                    .map(|part| {
                        if part.bytes().all(|b| b.is_ascii_digit()) {
                            number(part)
                        } else {
                            part.to_ascii_lowercase()
                        }
                    })
                    .collect()
            }),
        })
    }

    /// The normalised form (`pep440.clean`): `1.1beta2` is `1.1b2`, `1.0dev4`
    /// is `1.0.dev4`, `v1.2` is `1.2`. As the package does, local segments are
    /// joined with `,` (`1.0+abc.1` is `1.0+abc,1`; a tag makes it `1.0-abc-1`).
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        if self.epoch != "0" {
            out.push_str(&self.epoch);
            out.push('!');
        }
        out.push_str(&self.release.join("."));
        if let Some((letter, number)) = &self.pre {
            out.push_str(letter);
            out.push_str(number);
        }
        if let Some(post) = &self.post {
            out.push_str(".post");
            out.push_str(post);
        }
        if let Some(dev) = &self.dev {
            out.push_str(".dev");
            out.push_str(dev);
        }
        if let Some(local) = &self.local {
            out.push('+');
            out.push_str(&local.join(","));
        }
        out
    }

    /// Whether it is a pre-, post- or dev-release: metadata-action then
    /// gives only `{{version}}` (or `{{raw}}`) and no `latest`.
    pub fn is_not_final(&self) -> bool {
        self.pre.is_some() || self.post.is_some() || self.dev.is_some()
    }

    /// The first release number.
    pub fn major(&self) -> &str {
        &self.release[0]
    }

    /// The second release number, `0` when absent.
    pub fn minor(&self) -> &str {
        self.release.get(1).map_or("0", String::as_str)
    }

    /// The third release number, `0` when absent.
    pub fn patch(&self) -> &str {
        self.release.get(2).map_or("0", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(raw: &str, expected: Option<(&str, bool, [&str; 3])>) {
        let parsed = Pep440::parse(raw);
        let got = parsed.as_ref().map(|v| {
            (
                v.normalized(),
                v.is_not_final(),
                [v.major(), v.minor(), v.patch()],
            )
        });
        let expected = expected.map(|(n, f, parts)| (n.to_owned(), f, parts));
        assert_eq!(got, expected, "version `{raw}`");
    }

    #[test]
    fn normalises_as_renovate_pep440_does() {
        check("1.2.3", Some(("1.2.3", false, ["1", "2", "3"])));
        check("v1.2.3", Some(("1.2.3", false, ["1", "2", "3"])));
        check("V1.2", Some(("1.2", false, ["1", "2", "0"])));
        check("1", Some(("1", false, ["1", "0", "0"])));
        check("1.1beta2", Some(("1.1b2", true, ["1", "1", "0"])));
        check("1.0dev4", Some(("1.0.dev4", true, ["1", "0", "0"])));
        check("1.2post1", Some(("1.2.post1", true, ["1", "2", "0"])));
        check("1.2.3rc2", Some(("1.2.3rc2", true, ["1", "2", "3"])));
        check("1.2.3-rc.2", Some(("1.2.3rc2", true, ["1", "2", "3"])));
        check("1.2.3.alpha", Some(("1.2.3a0", true, ["1", "2", "3"])));
        check("1.2.3c1", Some(("1.2.3rc1", true, ["1", "2", "3"])));
        check("1.2.3preview1", Some(("1.2.3rc1", true, ["1", "2", "3"])));
        check("1.2.3-1", Some(("1.2.3.post1", true, ["1", "2", "3"])));
        check("1.2.3.rev", Some(("1.2.3.post0", true, ["1", "2", "3"])));
        check("1.2.3r4", Some(("1.2.3.post4", true, ["1", "2", "3"])));
        check(
            "1.2.3post1.dev1",
            Some(("1.2.3.post1.dev1", true, ["1", "2", "3"])),
        );
        check("2!1.01.002", Some(("2!1.1.2", false, ["1", "1", "2"])));
        check("0!1.0", Some(("1.0", false, ["1", "0", "0"])));
        check(
            "1.0+Ubuntu-1",
            Some(("1.0+ubuntu,1", false, ["1", "0", "0"])),
        );
        check("1.0+abc.007", Some(("1.0+abc,7", false, ["1", "0", "0"])));
        check("1.2.3.4.5", Some(("1.2.3.4.5", false, ["1", "2", "3"])));
        check("1.2.3RC1", Some(("1.2.3rc1", true, ["1", "2", "3"])));
        check("1.2.3-beta.67", Some(("1.2.3b67", true, ["1", "2", "3"])));
        check("1.2.3-beta.x", None);
        check(" 1.2.3", None);
        check("1.2.3 ", None);
        check("p1/v1.2.3", None);
        check("1.2.x", None);
        check("", None);
    }
}
