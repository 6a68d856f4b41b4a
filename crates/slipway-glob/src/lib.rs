//! Pattern syntax: paths-filter's glob dialect (picomatch with `dot: true`)
//! rewritten into the globs globset compiles, so one `GlobSet` answers for
//! every pattern of every filter in a single pass per path.
//!
//! What picomatch does and globset does not, and how it is bridged:
//! - a leading `!` negates the whole pattern (the caller decides what a
//!   negated pattern means); `!(a|b)` as a whole pattern negates `{a,b}`;
//! - `@(a|b)` is `{a,b}`; the other extglobs (`+(…)`, `*(…)`, `?(…)`, a
//!   `!(…)` inside a pattern, nested groups) and brace ranges (`{1..3}`)
//!   go to [`crate::extglob`], which matches them as picomatch does;
//! - `**` that is not a whole path segment is a plain `*` (`**.md` matches
//!   `a.md`, not `dir/a.md`);
//! - a trailing `/**` also matches the directory itself (`src/**` matches a
//!   file named `src`);
//! - a leading `./` is dropped.

pub mod extglob;

/// A pattern rewritten for globset: whether it was negated, and the globs
/// (any of which matching means the pattern matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// Whether a leading `!` (or `!(…)`) negated the pattern.
    pub negated: bool,
    /// The globset globs, without the negation (empty with `matcher`).
    pub globs: Vec<String>,
    /// The pattern's own matcher, when globset cannot express it.
    pub matcher: Option<crate::extglob::Matcher>,
}

/// Rewrites a paths-filter (picomatch) pattern; the error says what is not
/// supported.
pub fn translate(pattern: &str) -> Result<Translated, String> {
    let mut negated = false;
    let mut body = pattern;
    // picomatch: `!` negates when more follows, except the `!(…)` extglob.
    while body.len() > 1 && body.starts_with('!') && !body.starts_with("!(") {
        negated = !negated;
        body = &body[1..];
    }
    let owned;
    if let Some(inner) = whole_group(body, '!') {
        negated = !negated;
        owned = format!("@({inner})");
        body = &owned;
    }
    let body = body.strip_prefix("./").unwrap_or(body);
    if body.is_empty() {
        return Err("the pattern is empty".to_owned());
    }
    if crate::extglob::is_needed(body) {
        return Ok(Translated {
            negated,
            globs: Vec::new(),
            matcher: Some(crate::extglob::Matcher::parse(body)?),
        });
    }
    let glob = rewrite(body)?;
    let mut globs = vec![glob.clone()];
    if let Some(dir) = glob.strip_suffix("/**")
        && !dir.is_empty()
        && !dir.ends_with('\\')
    {
        globs.push(dir.to_owned());
    }
    Ok(Translated {
        negated,
        globs,
        matcher: None,
    })
}

/// `inner` when `text` is exactly `<prefix>(inner)` with balanced parentheses.
fn whole_group(text: &str, prefix: char) -> Option<&str> {
    let rest = text.strip_prefix(prefix)?.strip_prefix('(')?;
    let mut depth = 1;
    for (index, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return (index + 1 == rest.len()).then(|| &rest[..index]);
                }
            }
            _ => {}
        }
    }
    None
}

/// A rewritten glob that needs no glob matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plain {
    /// `**`: every path.
    Everything,
    /// A path without glob syntax: itself only.
    Literal(String),
    /// `<dir>/**`, `dir` without glob syntax: every path under `dir`.
    Tree(String),
}

/// What kind of plain glob `glob` (a [`translate`]d one) is, if any.
pub fn plain_kind(glob: &str) -> Option<Plain> {
    let is_literal = |text: &str| {
        !text.is_empty()
            && !text.contains(['*', '?', '[', ']', '{', '}', '\\'])
            && !text.starts_with('/')
            && !text.ends_with('/')
            && !text.contains("//")
    };
    if glob == "**" {
        Some(Plain::Everything)
    } else if let Some(dir) = glob.strip_suffix("/**").filter(|dir| is_literal(dir)) {
        Some(Plain::Tree(dir.to_owned()))
    } else if is_literal(glob) {
        Some(Plain::Literal(glob.to_owned()))
    } else {
        None
    }
}

/// What a glob's answer for a path depends on, so that it can be asked
/// of as little as possible (see [`super::index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// `<glob>/**`: globset's regex ends in `/.*`, whose `/` can only be a
    /// `/` of the path's directory, so every file of one directory gets the
    /// same answer (for a path with a `/`).
    Directory,
    /// `**/<name>`, `name` without `/`, `**`, `[` or `\`: its regex
    /// `(?:/?|.*/)<name>` can only match the part after the last `/`, so
    /// the glob holds exactly when `name` matches the file name. (A class
    /// is left out to be safe: whether `[!a]` may match `/` is globset's
    /// business.)
    Name(&'a str),
    /// Anything else: matched against the whole path.
    Path,
}

/// The [`Scope`] of `glob` (a [`translate`]d one).
pub fn scope(glob: &str) -> Scope<'_> {
    if let Some(name) = glob.strip_prefix("**/")
        && !name.is_empty()
        && !name.contains(['/', '[', ']', '\\'])
        && !name.contains("**")
    {
        Scope::Name(name)
    } else if glob.ends_with("/**") {
        Scope::Directory
    } else {
        Scope::Path
    }
}

/// The most alternatives [`star_alternatives`] expands a glob into.
const MAX_ALTERNATIVES: usize = 64;

/// `name` (a [`Scope::Name`] glob) as the list of globs made only of
/// literal text and `*` that it stands for, with its `{a,b}` groups
/// expanded (not nested, not empty, at most [`MAX_ALTERNATIVES`]); `None`
/// when it holds anything else (`?`, a class, an escape, a `,` outside a
/// group), which globset then matches. globset reads such a glob as
/// literal bytes and `[^/]*` (`literal_separator`), which is what a file
/// name compared byte by byte with `*` as any run gives.
pub fn star_alternatives(name: &str) -> Option<Vec<String>> {
    let mut alternatives = vec![String::new()];
    let mut rest = name;
    while !rest.is_empty() {
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}')?;
            let inside = &group[..end];
            if inside.is_empty() || inside.contains('{') {
                return None;
            }
            let choices: Vec<&str> = inside.split(',').collect();
            if alternatives.len() * choices.len() > MAX_ALTERNATIVES {
                return None;
            }
            alternatives = alternatives
                .iter()
                .flat_map(|before| {
                    choices
                        .iter()
                        .map(move |choice| format!("{before}{choice}"))
                })
                .collect();
            rest = &group[end + 1..];
        } else {
            let end = rest.find('{').unwrap_or(rest.len());
            let text = &rest[..end];
            if text.contains(',') {
                return None;
            }
            for alternative in &mut alternatives {
                alternative.push_str(text);
            }
            rest = &rest[end..];
        }
    }
    alternatives
        .iter()
        .all(|a| !a.contains(['?', '[', ']', '\\', '{', '}', '/']))
        .then_some(alternatives)
}

/// The literal text a path must start with for `glob` to match it, up to
/// and including the last `/` before any glob syntax (`scripts/` for
/// `scripts/**/*.py`); empty when there is none.
pub fn literal_directory(glob: &str) -> &str {
    let literal = &glob[..glob.find(['*', '?', '[', '{', '\\']).unwrap_or(glob.len())];
    &literal[..literal.rfind('/').map_or(0, |slash| slash + 1)]
}

/// Escapes every character globset would read as syntax, for a literal path.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "*?[]{}\\!()@+".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The rewrite of one pattern body (see the module comment).
fn rewrite(body: &str) -> Result<String, String> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::with_capacity(body.len() + 4);
    let mut brace_depth = 0usize;
    let mut extglob_depth = 0usize;
    let mut i = 0;
    // A segment boundary for `**`: the start, `/`, or a brace delimiter.
    let is_boundary_before = |out: &str, brace_depth: usize| match out.chars().last() {
        None | Some('/') => true,
        Some('{' | ',') => brace_depth > 0,
        _ => false,
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push('\\');
                if let Some(next) = chars.get(i + 1) {
                    out.push(*next);
                }
                i += 2;
                continue;
            }
            '[' => {
                // A character class is copied as is, up to its closing `]`
                // (a `]` right after `[` or `[!` is a member).
                let mut j = i + 1;
                if matches!(chars.get(j), Some('!' | '^')) {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j < chars.len() {
                    out.extend(&chars[i..=j]);
                    i = j + 1;
                } else {
                    out.push_str("\\[");
                    i += 1;
                }
                continue;
            }
            '*' => {
                let mut n = 0;
                while chars.get(i + n) == Some(&'*') {
                    n += 1;
                }
                let next = chars.get(i + n).copied();
                if next == Some('(') {
                    return Err(unsupported_extglob('*'));
                }
                let boundary_after = match next {
                    None | Some('/') => true,
                    Some(',' | '}') => brace_depth > 0,
                    _ => false,
                };
                if n >= 2 && is_boundary_before(&out, brace_depth) && boundary_after {
                    out.push_str("**");
                } else {
                    out.push('*');
                }
                i += n;
                continue;
            }
            '?' | '+' | '!' if chars.get(i + 1) == Some(&'(') => {
                return Err(unsupported_extglob(c));
            }
            '@' if chars.get(i + 1) == Some(&'(') => {
                if extglob_depth > 0 || brace_depth > 0 {
                    return Err("nested groups `@(…)` are not supported".to_owned());
                }
                extglob_depth += 1;
                brace_depth += 1;
                out.push('{');
                i += 2;
                continue;
            }
            '|' if extglob_depth > 0 => out.push(','),
            ')' if extglob_depth > 0 => {
                extglob_depth -= 1;
                brace_depth -= 1;
                out.push('}');
            }
            '{' => {
                brace_depth += 1;
                out.push('{');
            }
            '}' if brace_depth > extglob_depth => {
                brace_depth -= 1;
                out.push('}');
            }
            // Inside `@(…)`, a `}` without its own `{` would close the
            // group's brace: it is a literal character, as picomatch reads
            // it. Found by fuzzing (fuzz/fuzz_targets/glob_filters.rs).
            '}' if extglob_depth > 0 => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    if extglob_depth > 0 {
        return Err("`@(` is not closed by `)`".to_owned());
    }
    Ok(out)
}

fn unsupported_extglob(c: char) -> String {
    format!(
        "the extglob `{c}(…)` is not supported: use `{{a,b}}` or `@(a|b)` for alternatives, and a leading `!` to negate a whole pattern"
    )
}

/// Compiles one rewritten glob the way every filter pattern is compiled:
/// `*` and `?` stop at `/`, `\` escapes, `{a,}` allows an empty alternative.
pub fn build(glob: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(true)
        .build()
}

/// globset's error without its echo of the glob (the message names it).
pub fn glob_reason(error: &globset::Error) -> String {
    error.kind().to_string()
}

/// Checks that `pattern` (a path glob, without slipway.toml's leading `!`)
/// compiles as a filter will compile it, so a config that loads never fails
/// later on a pattern the matcher reads differently; the error says why not.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    // A pattern with its own matcher was checked when it was parsed.
    for text in translate(pattern)?.globs {
        build(&text).map_err(|e| glob_reason(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(pattern: &str, negated: bool, globs: &[&str]) {
        let translated = translate(pattern).expect("supported pattern");
        assert_eq!(
            translated,
            Translated {
                negated,
                globs: globs.iter().map(|g| (*g).to_owned()).collect(),
                matcher: None,
            },
            "pattern `{pattern}`"
        );
    }

    #[track_caller]
    fn check_error(pattern: &str, expected: &str) {
        assert_eq!(
            translate(pattern).expect_err("unsupported"),
            expected,
            "pattern `{pattern}`"
        );
    }

    #[test]
    fn rewrites() {
        check("src/**/*.js", false, &["src/**/*.js"]);
        check("src/**", false, &["src/**", "src"]);
        check("**", false, &["**"]);
        check("**.md", false, &["*.md"]);
        check("a/**b/c", false, &["a/*b/c"]);
        check("!docs/**", true, &["docs/**", "docs"]);
        check("!!a", false, &["a"]);
        check("!(**/*.tsx|**/*.less)", true, &["{**/*.tsx,**/*.less}"]);
        check("@(a|b)/*.md", false, &["{a,b}/*.md"]);
        check("{**/*.js,lib}", false, &["{**/*.js,lib}"]);
        check("./src/*", false, &["src/*"]);
        check("!", false, &["!"]);
        check("[!a]*", false, &["[!a]*"]);
        check("\\*.md", false, &["\\*.md"]);
    }

    #[test]
    fn plain_globs_need_no_matching() {
        assert_eq!(plain_kind("**"), Some(Plain::Everything));
        assert_eq!(
            plain_kind("src/go/**"),
            Some(Plain::Tree("src/go".to_owned()))
        );
        assert_eq!(
            plain_kind("Cargo.lock"),
            Some(Plain::Literal("Cargo.lock".to_owned()))
        );
        assert_eq!(
            plain_kind(".github"),
            Some(Plain::Literal(".github".to_owned()))
        );
        for glob in [
            "src/*/x", "src/**/a", "a?", "a/[bc]", "{a,b}", "\\*", "/abs", "a//b", "**/x",
            "x/**/**",
        ] {
            assert_eq!(plain_kind(glob), None, "`{glob}`");
        }
    }

    #[test]
    fn scopes_say_what_an_answer_depends_on() {
        assert_eq!(scope("**/*.sh"), Scope::Name("*.sh"));
        assert_eq!(scope("**/tests/**"), Scope::Directory);
        assert_eq!(scope("src/*/**"), Scope::Directory);
        assert_eq!(scope("**/**"), Scope::Directory);
        for glob in ["**/a/b", "**/[ab]", "**/a\\*", "src/**/*.py", "*.sh"] {
            assert_eq!(scope(glob), Scope::Path, "`{glob}`");
        }
        assert_eq!(
            star_alternatives("*.{yml,yaml}"),
            Some(vec!["*.yml".to_owned(), "*.yaml".to_owned()])
        );
        assert_eq!(
            star_alternatives("{a,}{b,c}"),
            Some(["ab", "ac", "b", "c"].map(str::to_owned).to_vec())
        );
        for name in ["a?", "[ab]", "a,b", "{}", "{a,{b}}", "a}", "\\*"] {
            assert_eq!(star_alternatives(name), None, "`{name}`");
        }
        assert_eq!(literal_directory("scripts/**/*.py"), "scripts/");
        assert_eq!(literal_directory("a/b*/c"), "a/");
        assert_eq!(literal_directory("*.md"), "");
        assert_eq!(literal_directory("a\\*/b/*"), "");
    }

    #[test]
    fn a_closing_brace_inside_an_extglob_is_literal() {
        // The fuzzer's pattern: the `}` closed the group's brace, then the
        // `)` took the brace depth below zero.
        check(
            "@(docs}site)/**",
            false,
            &["{docs\\}site}/**", "{docs\\}site}"],
        );
        let glob = build("{docs\\}site}/**").expect("a valid glob");
        assert!(glob.compile_matcher().is_match("docs}site/index.md"));
    }

    #[test]
    fn hands_what_globset_cannot_do_to_the_extglob_matcher() {
        for pattern in ["src/+(a|b)", "!x/*(y)", "v{1..3}/**", "@(a|@(b|c))"] {
            let translated = translate(pattern).expect("supported pattern");
            assert!(translated.matcher.is_some(), "`{pattern}`");
            assert!(translated.globs.is_empty(), "`{pattern}`");
        }
        assert!(translate("!x/*(y)").expect("valid").negated);
        check_error("./", "the pattern is empty");
        check_error("@(a", "`@(` is not closed by `)`");
        check_error("+(a", "an extglob `(` is not closed by `)`");
    }
}
