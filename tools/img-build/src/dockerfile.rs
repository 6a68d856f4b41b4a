//! The Dockerfile a target is built from, as the builder gets it.
//!
//! BuildKit caches the Dockerfile it was sent by the file's name and stat
//! (size, mtime), not its bytes (moby/buildkit#1368, #4817, #4950): several
//! `Dockerfile`s of one size and mtime, built from one context, all come
//! out as the first one. So every builder gets a private copy named by the
//! sha256 of its bytes (`<sha256>.Dockerfile`, with its
//! `<sha256>.Dockerfile.dockerignore` beside it when the original has a
//! `Dockerfile.dockerignore`): two files that share a name share their
//! bytes. The sha256 of the Dockerfile is also put in the image as the
//! label [`DOCKERFILE_LABEL`], which `verify` reads back after each build.
//!
//! This module also reads the global `ARG`s a `FROM` uses, so a base image
//! that would be empty is reported at plan time rather than by the builder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The label holding the sha256 (hex) of the Dockerfile bytes an image was built from.
pub(crate) const DOCKERFILE_LABEL: &str = "dev.slipway.dockerfile.sha256";

/// A target's Dockerfile, read once at plan time.
#[derive(Debug, Clone)]
pub(crate) struct Dockerfile {
    /// The Dockerfile as configured.
    pub(crate) original: PathBuf,
    /// Its bytes.
    pub(crate) bytes: Vec<u8>,
    /// The sha256 (hex) of `bytes`: the value of [`DOCKERFILE_LABEL`].
    pub(crate) sha256: String,
    /// The bytes of `<Dockerfile>.dockerignore` beside it, if there is one.
    pub(crate) ignore: Option<Vec<u8>>,
    /// Where the builder reads it: `<dir>/<sha256 of Dockerfile and ignore file>.Dockerfile`.
    pub(crate) copy: PathBuf,
}

impl Dockerfile {
    /// Reads `original` (and its `.dockerignore`) and names its copy in `dir`.
    pub(crate) fn read(original: &Path, dir: &Path) -> anyhow::Result<Dockerfile> {
        let bytes = slipway_core::input::read(original).context("cannot read the Dockerfile")?;
        let mut ignore_path = original.as_os_str().to_owned();
        ignore_path.push(".dockerignore");
        let ignore_path = PathBuf::from(ignore_path);
        let ignore = if ignore_path.is_file() {
            Some(
                slipway_core::input::read(&ignore_path)
                    .context("cannot read the Dockerfile's .dockerignore")?,
            )
        } else {
            None
        };
        let sha256 = sha256_hex(&bytes);
        // The ignore file travels with the Dockerfile under the same cached
        // name, so it is part of the name too.
        let name = match &ignore {
            Some(ignore) => {
                let mut both = bytes.clone();
                both.extend_from_slice(b"\0dockerignore\0");
                both.extend_from_slice(ignore);
                sha256_hex(&both)
            }
            None => sha256.clone(),
        };
        Ok(Dockerfile {
            original: original.to_owned(),
            copy: dir.join(format!("{name}.Dockerfile")),
            bytes,
            sha256,
            ignore,
        })
    }

    /// The copy of the ignore file, when the Dockerfile has one.
    pub(crate) fn ignore_copy(&self) -> Option<PathBuf> {
        self.ignore.as_ref().map(|_| {
            let mut path = self.copy.as_os_str().to_owned();
            path.push(".dockerignore");
            PathBuf::from(path)
        })
    }

    /// Writes the copy (and its ignore file) for the builder.
    pub(crate) fn write_copy(&self) -> anyhow::Result<()> {
        if let Some(dir) = self.copy.parent() {
            fs_err::create_dir_all(dir)?;
        }
        fs_err::write(&self.copy, &self.bytes)?;
        if let (Some(path), Some(ignore)) = (self.ignore_copy(), &self.ignore) {
            fs_err::write(path, ignore)?;
        }
        Ok(())
    }

    /// The text, for parsing (invalid UTF-8 replaced).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// The sha256 of `bytes`, as 64 hex digits.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, bytes);
    hash.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A global `ARG` (declared before the first `FROM`) that a `FROM` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FromArg {
    /// The ARG's name.
    pub(crate) name: String,
    /// Its default, if the `ARG` line gives one.
    pub(crate) default: Option<String>,
    /// The `FROM` line that uses it, as written.
    pub(crate) from: String,
    /// Its 1-based line number.
    pub(crate) line: usize,
}

/// The global ARGs used by the `FROM` lines that building `stage` (or the
/// last stage) needs: that stage's, and those of the stages it starts from.
pub(crate) fn from_args(text: &str, stage: Option<&str>) -> Vec<FromArg> {
    let mut globals: BTreeMap<String, Option<String>> = BTreeMap::new();
    // (line, FROM's image, stage name, the FROM line)
    let mut stages: Vec<(usize, String, Option<String>, String)> = Vec::new();
    for (line, instruction) in instructions(text) {
        let (keyword, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((instruction.as_str(), ""));
        if keyword.eq_ignore_ascii_case("ARG") && stages.is_empty() {
            for word in rest.split_whitespace() {
                let (name, default) = match word.split_once('=') {
                    Some((name, value)) => (name, Some(unquote(value).to_owned())),
                    None => (word, None),
                };
                globals.insert(name.to_owned(), default);
            }
        } else if keyword.eq_ignore_ascii_case("FROM") {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let image = words.first().copied().unwrap_or_default().to_owned();
            let name = match words.as_slice() {
                [_, as_word, name, ..] if as_word.eq_ignore_ascii_case("as") => {
                    Some((*name).to_owned())
                }
                _ => None,
            };
            stages.push((line, image, name, instruction.trim().to_owned()));
        }
    }
    // The stages the build needs: the target stage (or the last one) and the
    // stages it starts `FROM`, transitively.
    let mut needed = Vec::new();
    let mut next = match stage {
        Some(stage) => stages.iter().position(|(_, _, name, _)| {
            name.as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(stage))
        }),
        None => stages.len().checked_sub(1),
    };
    let mut seen = BTreeSet::new();
    while let Some(index) = next {
        if !seen.insert(index) {
            break;
        }
        needed.push(index);
        let image = &stages[index].1;
        next = stages[..index].iter().rposition(|(_, _, name, _)| {
            name.as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(image))
        });
    }
    let mut args = Vec::new();
    for index in needed {
        let (line, image, _, from) = &stages[index];
        for name in variables(image) {
            // A name no global `ARG` declares is empty in `FROM` as well.
            if !args.iter().any(|a: &FromArg| a.name == name) {
                let default = globals.get(&name).cloned().flatten();
                args.push(FromArg {
                    name,
                    default,
                    from: from.clone(),
                    line: *line,
                });
            }
        }
    }
    args
}

/// The instructions of a Dockerfile, continuation lines joined, comments
/// dropped, with the line each starts on.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if logical.is_empty() {
            start = index + 1;
        }
        match raw.trim_end().strip_suffix('\\') {
            Some(body) => {
                logical.push_str(body);
                logical.push(' ');
            }
            None => {
                logical.push_str(trimmed);
                out.push((start, std::mem::take(&mut logical)));
            }
        }
    }
    if !logical.is_empty() {
        out.push((start, logical));
    }
    out
}

/// BuildKit's automatic platform ARGs, set in the global scope without a declaration.
const AUTOMATIC_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// The variables `$NAME` and `${NAME}` a word uses that could leave it
/// empty: not `${NAME:-default}` or `${NAME-default}` (a fallback), not
/// BuildKit's automatic platform ARGs.
fn variables(word: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = word;
    while let Some(position) = rest.find('$') {
        rest = &rest[position + 1..];
        let braced = rest.strip_prefix('{');
        let inner = braced.unwrap_or(rest);
        let name: String = inner
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = &inner[name.len()..];
        let has_fallback = braced.is_some() && (after.starts_with(":-") || after.starts_with('-'));
        if !name.is_empty() && !has_fallback && !AUTOMATIC_ARGS.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, stage: Option<&str>, expected: &[(&str, Option<&str>, usize)]) {
        let found: Vec<(String, Option<String>, usize)> = from_args(text, stage)
            .into_iter()
            .map(|a| (a.name, a.default, a.line))
            .collect();
        let expected: Vec<(String, Option<String>, usize)> = expected
            .iter()
            .map(|(n, d, l)| ((*n).to_owned(), d.map(str::to_owned), *l))
            .collect();
        assert_eq!(found, expected, "{text}");
    }

    #[test]
    fn a_global_arg_in_from_is_found_with_its_default() {
        check(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
            None,
            &[("BASE_IMAGE", None, 2)],
        );
        check(
            "ARG BASE=busybox:1\nFROM $BASE AS app\n",
            Some("app"),
            &[("BASE", Some("busybox:1"), 2)],
        );
        check("FROM scratch\nARG BASE\nCOPY a /\n", None, &[]);
    }

    #[test]
    fn a_fallback_or_an_automatic_platform_arg_is_never_empty() {
        check("ARG BASE\nFROM ${BASE:-busybox:1}\n", None, &[]);
        check("ARG BASE\nFROM ${BASE-busybox:1}\n", None, &[]);
        check(
            "FROM --platform=$BUILDPLATFORM golang:1-${TARGETARCH}\n",
            None,
            &[],
        );
        check(
            "ARG TAG\nFROM busybox:${TAG:+x}\n",
            None,
            &[("TAG", None, 2)],
        );
    }

    #[test]
    fn only_the_stages_the_target_needs_count() {
        let text = "ARG A\nARG B\nFROM $A AS one\nFROM one AS two\nFROM ${B} AS other\n";
        check(text, Some("two"), &[("A", None, 3)]);
        check(text, Some("other"), &[("B", None, 5)]);
        check(text, None, &[("B", None, 5)]);
    }

    #[test]
    fn copies_are_named_by_their_bytes() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let one = dir.path().join("one");
        let two = dir.path().join("two");
        fs_err::write(&one, "FROM scratch\nCOPY a /\n").expect("written");
        fs_err::write(&two, "FROM scratch\nCOPY b /\n").expect("written");
        let one = Dockerfile::read(&one, Path::new("/copies")).expect("read");
        let two = Dockerfile::read(&two, Path::new("/copies")).expect("read");
        assert_ne!(one.copy, two.copy);
        assert_eq!(
            one.copy,
            Path::new("/copies").join(format!("{}.Dockerfile", one.sha256))
        );
    }
}
