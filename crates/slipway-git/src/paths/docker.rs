//! The paths an image is built from, derived from its build when
//! slipway.toml gives it no `paths`: its Dockerfile, the `COPY`/`ADD`
//! sources inside its context, less what the context's `.dockerignore`
//! excludes.
//!
//! Text in, patterns out: the caller reads the files. Sources that cannot
//! be known from the Dockerfile alone (`--from=` another stage or image,
//! URLs, heredocs) are skipped; `$VARIABLES` in a source become `*`.

use super::glob::{build, escape};
use super::{FilterSpec, PathsError, PatternSpec, RuleSpec, Semantics};

/// One `COPY`/`ADD` source of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    /// The source, relative to the build context, as written.
    pub source: String,
    /// The 1-based line of the instruction.
    pub line: usize,
}

/// The sources that `COPY`/`ADD` instructions take from the build context.
pub fn copy_sources(dockerfile: &str) -> Vec<CopySource> {
    let mut escape_char = '\\';
    // The `# escape=` parser directive, before any instruction or comment.
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        let Some(directive) = trimmed.strip_prefix('#') else {
            break;
        };
        if let Some((key, value)) = directive.split_once('=')
            && key.trim().eq_ignore_ascii_case("escape")
        {
            escape_char = value.trim().chars().next().unwrap_or('\\');
        } else {
            break;
        }
    }
    let mut sources = Vec::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (index, raw) in dockerfile.lines().enumerate() {
        let trimmed = raw.trim();
        if logical.is_empty() {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            start_line = index + 1;
        } else if trimmed.starts_with('#') || trimmed.is_empty() {
            // Comments and blank lines inside a continuation are dropped.
            continue;
        }
        let line = raw.trim_end();
        if let Some(body) = line.strip_suffix(escape_char) {
            logical.push_str(body);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        instruction_sources(&logical, start_line, &mut sources);
        logical.clear();
    }
    if !logical.is_empty() {
        instruction_sources(&logical, start_line, &mut sources);
    }
    sources
}

fn instruction_sources(instruction: &str, line: usize, sources: &mut Vec<CopySource>) {
    let instruction = instruction.trim();
    let (keyword, rest) = instruction
        .split_once(char::is_whitespace)
        .unwrap_or((instruction, ""));
    let is_add = keyword.eq_ignore_ascii_case("ADD");
    if !is_add && !keyword.eq_ignore_ascii_case("COPY") {
        return;
    }
    let mut rest = rest.trim_start();
    // Flags come first: `--from=` takes from another stage or image, so
    // nothing in the context; the others (`--chown`, `--chmod`, `--link`, …)
    // don't change what is read.
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        if word.starts_with("from=") || word == "from" {
            return;
        }
        rest = after.trim_start();
    }
    let words: Vec<String> = if rest.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(rest) {
            Ok(words) => words,
            Err(_) => return,
        }
    } else {
        rest.split_whitespace().map(str::to_owned).collect()
    };
    if words.len() < 2 || words.iter().any(|w| w.starts_with("<<")) {
        return;
    }
    for source in &words[..words.len() - 1] {
        if is_add && (source.contains("://") || source.starts_with("git@")) {
            continue;
        }
        sources.push(CopySource {
            source: source.clone(),
            line,
        });
    }
}

/// Joins a context-relative path to the context, normalised: no `./`, no
/// empty segments, no leading `/`; `""` for the context itself.
fn join(context: &str, path: &str) -> String {
    let mut segments: Vec<&str> = context
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    segments.join("/")
}

/// A Docker source glob (Go `filepath.Match`: `*`, `?`, `[…]`, `\`) in this
/// module's pattern syntax: braces and extglob characters are literal.
fn docker_glob(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' | '!' | '@' | '+' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            '$' => {
                // `$VAR` or `${VAR}`: unknown here, so any name.
                if chars.peek() == Some(&'{') {
                    for next in chars.by_ref() {
                        if next == '}' {
                            break;
                        }
                    }
                } else {
                    while chars
                        .peek()
                        .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
                    {
                        chars.next();
                    }
                }
                out.push('*');
            }
            _ => out.push(c),
        }
    }
    out
}

/// The rules of a `.dockerignore`, matched as Docker does: patterns are
/// relative to the context, a pattern also excludes everything under a
/// directory it matches, `!` re-includes, and the last matching line wins.
#[derive(Debug, Clone)]
pub struct DockerIgnore {
    set: globset::GlobSet,
    /// For each glob of `set`: the rule it belongs to.
    glob_rule: Vec<usize>,
    /// Each rule's text (as written) and whether it re-includes.
    rules: Vec<(String, bool)>,
}

impl DockerIgnore {
    /// Parses `.dockerignore` text for a context at `context` (relative to
    /// the repository root); `file` names it in errors.
    pub fn parse(text: &str, context: &str, file: &str) -> Result<DockerIgnore, PathsError> {
        let mut builder = globset::GlobSetBuilder::new();
        let mut glob_rule = Vec::new();
        let mut rules = Vec::new();
        let prefix = join("", context);
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = join("", pattern);
            if cleaned.is_empty() {
                continue;
            }
            let full = if prefix.is_empty() {
                cleaned
            } else {
                format!("{}/{cleaned}", escape(&prefix))
            };
            for glob in [full.clone(), format!("{full}/**")] {
                let compiled = build(&glob).map_err(|e| PathsError::DockerIgnore {
                    file: file.to_owned(),
                    line: index + 1,
                    pattern: line.to_owned(),
                    reason: e.kind().to_string(),
                })?;
                builder.add(compiled);
                glob_rule.push(rules.len());
            }
            rules.push((line.to_owned(), negated));
        }
        let set = builder.build().map_err(|e| PathsError::DockerIgnore {
            file: file.to_owned(),
            line: 0,
            pattern: String::new(),
            reason: e.kind().to_string(),
        })?;
        Ok(DockerIgnore {
            set,
            glob_rule,
            rules,
        })
    }

    /// The line that leaves `path` (relative to the repository root) out of
    /// the context, if one does.
    pub fn excluded_by(&self, path: &str) -> Option<&str> {
        let last = self
            .set
            .matches(path)
            .into_iter()
            .map(|glob| self.glob_rule[glob])
            .max()?;
        let (text, negated) = &self.rules[last];
        (!negated).then_some(text.as_str())
    }
}

/// The filter of an image without `paths`: its Dockerfile, the context's
/// `.dockerignore`, and each `COPY`/`ADD` source (as a file and as a
/// directory), less what `.dockerignore` excludes. `context` and
/// `dockerfile_path` are relative to the repository root.
pub fn derived_filter(
    name: &str,
    context: &str,
    dockerfile_path: &str,
    dockerfile: &str,
    dockerignore: Option<DockerIgnore>,
) -> FilterSpec {
    let mut patterns = Vec::new();
    let build_file = |path: String, origin: &str| PatternSpec {
        text: escape(&path),
        origin: origin.to_owned(),
        ignores_dockerignore: true,
    };
    patterns.push(build_file(
        join("", dockerfile_path),
        "the image's Dockerfile",
    ));
    patterns.push(build_file(
        join(context, ".dockerignore"),
        "the context's .dockerignore",
    ));
    for source in copy_sources(dockerfile) {
        let path = join(context, &docker_glob(&source.source));
        let origin = format!(
            "COPY source `{}` at {dockerfile_path}:{}",
            source.source, source.line
        );
        if path.is_empty() {
            patterns.push(PatternSpec::new("**", origin));
        } else {
            patterns.push(PatternSpec::new(format!("{path}/**"), origin));
        }
    }
    FilterSpec {
        name: name.to_owned(),
        semantics: Semantics::Exclude,
        rules: vec![RuleSpec {
            statuses: None,
            patterns,
        }],
        dockerignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::{ChangeStatus, ChangedFile};
    use crate::paths::FilterSet;

    #[track_caller]
    fn check_sources(dockerfile: &str, expected: &[(&str, usize)]) {
        let got: Vec<(String, usize)> = copy_sources(dockerfile)
            .into_iter()
            .map(|s| (s.source, s.line))
            .collect();
        let expected: Vec<(String, usize)> = expected
            .iter()
            .map(|(s, l)| ((*s).to_owned(), *l))
            .collect();
        assert_eq!(got, expected, "Dockerfile:\n{dockerfile}");
    }

    #[test]
    fn copy_and_add_sources() {
        check_sources("FROM x\nCOPY a.txt /app/\n", &[("a.txt", 2)]);
        check_sources(
            "COPY --chown=1:1 --chmod=644 src lib /app/",
            &[("src", 1), ("lib", 1)],
        );
        check_sources("COPY --from=build /out /app\nCOPY --from build /x /y", &[]);
        check_sources("copy [\"a b\", \"c\", \"/dst/\"]", &[("a b", 1), ("c", 1)]);
        check_sources(
            "COPY a \\\n  # comment\n  b \\\n  /dst",
            &[("a", 1), ("b", 1)],
        );
        check_sources("# escape=`\nFROM x\nCOPY a `\n  /dst", &[("a", 3)]);
        check_sources(
            "ADD https://x/y.tgz /y\nADD local.tgz /z",
            &[("local.tgz", 2)],
        );
        check_sources("COPY <<EOF /etc/x\nhi\nEOF", &[]);
        check_sources("RUN cp a b\nCOPY --link . .", &[(".", 2)]);
    }

    #[track_caller]
    fn check_ignore(dockerignore: &str, path: &str, expected: Option<&str>) {
        let ignore = DockerIgnore::parse(dockerignore, "ctx", "ctx/.dockerignore").expect("valid");
        assert_eq!(
            ignore.excluded_by(path),
            expected,
            "{path} with:\n{dockerignore}"
        );
    }

    #[test]
    fn dockerignore_semantics() {
        check_ignore("*.md", "ctx/README.md", Some("*.md"));
        check_ignore("*.md", "ctx/docs/a.md", None);
        check_ignore("**/*.md", "ctx/docs/a.md", Some("**/*.md"));
        check_ignore("docs", "ctx/docs/a/b.txt", Some("docs"));
        check_ignore("/docs/", "ctx/docs/a.txt", Some("/docs/"));
        check_ignore("docs\n!docs/keep.txt", "ctx/docs/keep.txt", None);
        check_ignore("!docs/keep.txt\ndocs", "ctx/docs/keep.txt", Some("docs"));
        check_ignore("# comment\n\n./tmp", "ctx/tmp/x", Some("./tmp"));
        check_ignore("*", "other/x", None);
    }

    #[track_caller]
    fn check_derived(dockerignore: &str, path: &str, expected: bool) {
        let dockerfile =
            "FROM base\nCOPY --from=deps /deps /deps\nCOPY src/ /app/src/\nCOPY package.json ./\n";
        let ignore = DockerIgnore::parse(dockerignore, "app", "app/.dockerignore").expect("valid");
        let spec = derived_filter("app", "app", "app/Dockerfile", dockerfile, Some(ignore));
        let set = FilterSet::compile(vec![spec]).expect("valid");
        let matched = set.match_files(&[ChangedFile::new(path, ChangeStatus::Modified)]);
        assert_eq!(!matched[0].is_empty(), expected, "{path}");
    }

    #[test]
    fn derived_paths() {
        check_derived("", "app/src/main.js", true);
        check_derived("", "app/src/deep/a.js", true);
        check_derived("", "app/package.json", true);
        check_derived("", "app/Dockerfile", true);
        check_derived("", "app/.dockerignore", true);
        check_derived("", "app/README.md", false);
        check_derived("", "deps/x", false);
        check_derived("**/*.test.js", "app/src/a.test.js", false);
        check_derived("Dockerfile", "app/Dockerfile", true);
        check_derived("src\n!src/keep.js", "app/src/keep.js", true);
    }
}
