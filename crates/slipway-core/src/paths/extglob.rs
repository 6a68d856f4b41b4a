//! The patterns globset cannot compile, matched the way picomatch 2 (and so
//! dorny/paths-filter) matches them: extglobs `@(…)`, `?(…)`, `*(…)`,
//! `+(…)`, `!(…)`, nested, and brace ranges `{1..3}`.
//!
//! A small backtracking matcher over the parsed pattern; used only for the
//! patterns that need it, every other pattern stays in the one `GlobSet`.
//! picomatch's readings kept here, quirks included:
//! - `{a..b}` is not expanded: picomatch sorts the ends (and a step) as
//!   strings and makes the character class `[a-b]` of them, so `{1..3}`
//!   matches one of `1`, `2`, `3`, `{01..10}` one of `0` and `1`, and an
//!   invalid class (`{19..5}`) is the literal text `19..5`;
//! - `!(x)` inside a pattern holds where the text does not *start* with `x`,
//!   then takes what follows up to the next `/`; at the end of a pattern,
//!   where the rest of the path is not exactly `x`;
//! - `*` and `?` never match `/`; `**` as a whole segment matches any number
//!   of segments, and a trailing `/**` also matches the directory itself.

/// One parsed pattern element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Literal(char),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**/`: nothing, or anything ending with `/`.
    AnyDirs,
    /// A trailing `/**`: nothing, or `/` and anything.
    AnyTail,
    /// `**` on its own: anything.
    AnyAll,
    /// `[…]`: one character (never `/`) in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// An extglob or a brace list: alternatives, each a sequence.
    Group {
        kind: Kind,
        alternatives: Vec<Vec<Node>>,
        /// `!(…)` only: nothing but closing parentheses follows it.
        at_end: bool,
        /// `!(…)` only: an alternative holds a `/`, so it may span segments.
        spans_segments: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `@(…)` and `{a,b}`.
    ExactlyOne,
    /// `?(…)`.
    ZeroOrOne,
    /// `*(…)`.
    ZeroOrMore,
    /// `+(…)`.
    OneOrMore,
    /// `!(…)`.
    Not,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matcher {
    nodes: Vec<Node>,
}

/// Whether `body` (a pattern without its leading `!`) needs this matcher:
/// an extglob other than one flat `@(…)`, or a brace range.
pub(crate) fn is_needed(body: &str) -> bool {
    let chars: Vec<char> = body.chars().collect();
    let mut depth = 0usize;
    let mut escaped = false;
    for (index, c) in chars.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '?' | '*' | '+' | '!' if chars.get(index + 1) == Some(&'(') => return true,
            '@' if chars.get(index + 1) == Some(&'(') => {
                if depth > 0 {
                    return true;
                }
                depth += 1;
            }
            ')' if depth > 0 => depth -= 1,
            '{' if brace_range(&chars[index..]).is_some() => return true,
            _ => {}
        }
    }
    false
}

/// The ends (and step) of a brace range at the start of `chars` (`{1..3}`,
/// `{a..e}`, `{01..10..2}`), and the range's length in characters.
fn brace_range(chars: &[char]) -> Option<(Vec<String>, usize)> {
    let close = chars.iter().position(|c| *c == '}')?;
    let inner: String = chars[1..close].iter().collect();
    if inner.contains(['{', ',']) {
        return None;
    }
    let parts: Vec<&str> = inner.split("..").collect();
    let is_end = |part: &&str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    ((2..=3).contains(&parts.len()) && parts.iter().all(is_end))
        .then(|| (parts.iter().map(|p| (*p).to_owned()).collect(), close + 1))
}

impl Matcher {
    /// Parses a pattern body (no leading `!`); the error says what is wrong.
    pub(crate) fn parse(body: &str) -> Result<Matcher, String> {
        let mut parser = Parser {
            chars: body.chars().collect(),
            pos: 0,
        };
        let nodes = parser.sequence(None)?;
        Ok(Matcher { nodes })
    }

    /// Whether the whole of `path` matches.
    pub(crate) fn is_match(&self, path: &str) -> bool {
        let len = path.len();
        matches(&self.nodes, path, 0, &mut |end| end == len)
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    /// Parses up to the end, or up to (not past) the group's delimiter:
    /// `|` or `)` in an extglob, `,` or `}` in braces.
    fn sequence(&mut self, group: Option<char>) -> Result<Vec<Node>, String> {
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.chars.get(self.pos) else {
                return match group {
                    Some(')') => Err("an extglob `(` is not closed by `)`".to_owned()),
                    Some(_) => Err("a `{` is not closed by `}`".to_owned()),
                    None => Ok(out),
                };
            };
            match (group, c) {
                (Some(')'), '|' | ')') | (Some('}'), ',' | '}') => return Ok(out),
                _ => {}
            }
            let next = self.chars.get(self.pos + 1).copied();
            match c {
                '\\' => {
                    out.push(Node::Literal(next.unwrap_or('\\')));
                    self.pos += 2;
                }
                '?' | '*' | '+' | '@' | '!' if next == Some('(') => {
                    out.push(self.extglob(c)?);
                }
                '*' => self.stars(&mut out),
                '?' => {
                    out.push(Node::One);
                    self.pos += 1;
                }
                '[' => out.push(self.class()),
                '{' => self.brace(&mut out)?,
                _ => {
                    out.push(Node::Literal(c));
                    self.pos += 1;
                }
            }
        }
    }

    fn extglob(&mut self, marker: char) -> Result<Node, String> {
        self.pos += 2;
        let start = self.pos;
        let mut alternatives = Vec::new();
        loop {
            alternatives.push(self.sequence(Some(')'))?);
            let delimiter = self.chars[self.pos];
            self.pos += 1;
            if delimiter == ')' {
                break;
            }
        }
        let inner = &self.chars[start..self.pos - 1];
        let kind = match marker {
            '?' => Kind::ZeroOrOne,
            '*' => Kind::ZeroOrMore,
            '+' => Kind::OneOrMore,
            '!' => Kind::Not,
            _ => Kind::ExactlyOne,
        };
        Ok(Node::Group {
            kind,
            alternatives,
            at_end: self.chars[self.pos..].iter().all(|c| *c == ')'),
            spans_segments: inner.len() > 1 && inner.contains(&'/'),
        })
    }

    /// `*`, or `**` as a whole segment (between `/`, the pattern's ends and
    /// group delimiters), as picomatch reads them.
    fn stars(&mut self, out: &mut Vec<Node>) {
        let start = self.pos;
        while self.chars.get(self.pos) == Some(&'*') {
            self.pos += 1;
        }
        let before = start.checked_sub(1).map(|i| self.chars[i]);
        let after = self.chars.get(self.pos).copied();
        let bounded_before = matches!(before, None | Some('/' | '(' | '|' | '{' | ','));
        let bounded_after = matches!(after, None | Some('/' | ')' | '|' | '}' | ','));
        if self.pos - start < 2 || !bounded_before || !bounded_after {
            out.push(Node::Star);
        } else if after == Some('/') {
            self.pos += 1;
            out.push(Node::AnyDirs);
        } else if before == Some('/') && out.last() == Some(&Node::Literal('/')) {
            out.pop();
            out.push(Node::AnyTail);
        } else {
            out.push(Node::AnyAll);
        }
    }

    /// `[…]` up to its `]` (a `]` first, or after `!`/`^`, is a member);
    /// without one, a literal `[`.
    fn class(&mut self) -> Node {
        let mut end = self.pos + 1;
        let negated = matches!(self.chars.get(end), Some('!' | '^'));
        if negated {
            end += 1;
        }
        let members_start = end;
        if self.chars.get(end) == Some(&']') {
            end += 1;
        }
        while end < self.chars.len() && self.chars[end] != ']' {
            end += 1;
        }
        if end >= self.chars.len() {
            self.pos += 1;
            return Node::Literal('[');
        }
        let ranges = class_ranges(&self.chars[members_start..end]).unwrap_or_default();
        self.pos = end + 1;
        Node::Class { negated, ranges }
    }

    /// `{a,b}` alternatives, a `{x..y}` range, or a literal `{`.
    fn brace(&mut self, out: &mut Vec<Node>) -> Result<(), String> {
        if let Some((mut ends, len)) = brace_range(&self.chars[self.pos..]) {
            self.pos += len;
            // Same as picomatch's `expandRange`: the ends sorted as strings,
            // made a character class; an invalid class is the literal text.
            ends.sort();
            let class: Vec<char> = ends.join("-").chars().collect();
            match class_ranges(&class) {
                Some(ranges) => out.push(Node::Class {
                    negated: false,
                    ranges,
                }),
                None => out.extend(ends.join("..").chars().map(Node::Literal)),
            }
            return Ok(());
        }
        // picomatch: braces without a top-level comma are literal.
        let mut depth = 0usize;
        let mut has_comma = false;
        let mut closed = false;
        for c in &self.chars[self.pos..] {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        closed = true;
                        break;
                    }
                }
                ',' if depth == 1 => has_comma = true,
                _ => {}
            }
        }
        if !closed || !has_comma {
            out.push(Node::Literal('{'));
            self.pos += 1;
            return Ok(());
        }
        self.pos += 1;
        let mut alternatives = Vec::new();
        loop {
            alternatives.push(self.sequence(Some('}'))?);
            let delimiter = self.chars[self.pos];
            self.pos += 1;
            if delimiter == '}' {
                break;
            }
        }
        out.push(Node::Group {
            kind: Kind::ExactlyOne,
            alternatives,
            at_end: false,
            spans_segments: false,
        });
        Ok(())
    }
}

/// A class's members as ranges, read as a JavaScript regex class reads them
/// (`a-c`, single characters; a `-` that cannot make a range is itself);
/// `None` when a range runs backwards, which JavaScript refuses.
fn class_ranges(members: &[char]) -> Option<Vec<(char, char)>> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < members.len() {
        let low = members[i];
        if members.get(i + 1) == Some(&'-') && i + 2 < members.len() {
            let high = members[i + 2];
            if high < low {
                return None;
            }
            ranges.push((low, high));
            i += 3;
        } else {
            ranges.push((low, low));
            i += 1;
        }
    }
    Some(ranges)
}

/// The character boundaries of `text` from `from` to `to`, both included.
fn boundaries(text: &str, from: usize, to: usize) -> impl Iterator<Item = usize> + '_ {
    text[from..to]
        .char_indices()
        .map(move |(offset, _)| from + offset)
        .chain(std::iter::once(to))
}

/// The end of the path segment that `from` is in.
fn segment_end(text: &str, from: usize) -> usize {
    text[from..]
        .find('/')
        .map_or(text.len(), |offset| from + offset)
}

/// Whether `nodes` match `text` from `at` up to some end for which `then`
/// holds (the rest of the pattern, as a continuation).
fn matches(nodes: &[Node], text: &str, at: usize, then: &mut dyn FnMut(usize) -> bool) -> bool {
    let Some((node, rest)) = nodes.split_first() else {
        return then(at);
    };
    let next_char = text[at..].chars().next();
    match node {
        Node::Literal(c) => next_char == Some(*c) && matches(rest, text, at + c.len_utf8(), then),
        Node::One => match next_char {
            Some(c) if c != '/' => matches(rest, text, at + c.len_utf8(), then),
            _ => false,
        },
        Node::Class { negated, ranges } => match next_char {
            Some(c) if c != '/' => {
                let within = ranges.iter().any(|(low, high)| (*low..=*high).contains(&c));
                within != *negated && matches(rest, text, at + c.len_utf8(), then)
            }
            _ => false,
        },
        Node::Star => {
            boundaries(text, at, segment_end(text, at)).any(|end| matches(rest, text, end, then))
        }
        Node::AnyAll => boundaries(text, at, text.len()).any(|end| matches(rest, text, end, then)),
        Node::AnyDirs => boundaries(text, at, text.len())
            .filter(|end| *end == at || text[..*end].ends_with('/'))
            .any(|end| matches(rest, text, end, then)),
        Node::AnyTail => {
            if matches(rest, text, at, then) {
                return true;
            }
            next_char == Some('/')
                && boundaries(text, at + 1, text.len()).any(|end| matches(rest, text, end, then))
        }
        Node::Group {
            kind,
            alternatives,
            at_end,
            spans_segments,
        } => match kind {
            Kind::ExactlyOne => one_of(alternatives, rest, text, at, then),
            Kind::ZeroOrOne => {
                matches(rest, text, at, then) || one_of(alternatives, rest, text, at, then)
            }
            Kind::ZeroOrMore => repeat(alternatives, rest, text, at, false, then),
            Kind::OneOrMore => repeat(alternatives, rest, text, at, true, then),
            Kind::Not => {
                let limit = if *spans_segments {
                    text.len()
                } else {
                    segment_end(text, at)
                };
                let excluded = |end_wanted: Option<usize>| {
                    alternatives.iter().any(|alternative| {
                        matches(alternative, text, at, &mut |end| {
                            end_wanted.is_none_or(|wanted| end == wanted)
                        })
                    })
                };
                if *at_end {
                    limit == text.len()
                        && !excluded(Some(text.len()))
                        && matches(rest, text, text.len(), then)
                } else {
                    !excluded(None)
                        && boundaries(text, at, limit).any(|end| matches(rest, text, end, then))
                }
            }
        },
    }
}

fn one_of(
    alternatives: &[Vec<Node>],
    rest: &[Node],
    text: &str,
    at: usize,
    then: &mut dyn FnMut(usize) -> bool,
) -> bool {
    for alternative in alternatives {
        if matches(alternative, text, at, &mut |end| {
            matches(rest, text, end, then)
        }) {
            return true;
        }
    }
    false
}

/// `*(…)` (`at_least_one` false) and `+(…)`: repetitions that make progress,
/// so an alternative that can match nothing cannot loop.
fn repeat(
    alternatives: &[Vec<Node>],
    rest: &[Node],
    text: &str,
    at: usize,
    at_least_one: bool,
    then: &mut dyn FnMut(usize) -> bool,
) -> bool {
    if !at_least_one && matches(rest, text, at, then) {
        return true;
    }
    for alternative in alternatives {
        let found = matches(alternative, text, at, &mut |end| {
            if end == at {
                at_least_one && matches(rest, text, end, then)
            } else {
                repeat(alternatives, rest, text, end, false, then)
            }
        });
        if found {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pattern` against each path: `+path` must match, `-path` must not.
    #[track_caller]
    fn check(pattern: &str, paths: &[&str]) {
        let matcher = Matcher::parse(pattern).expect("a valid pattern");
        for case in paths {
            let (expected, path) = match case.strip_prefix('+') {
                Some(path) => (true, path),
                None => (false, case.strip_prefix('-').unwrap_or(case)),
            };
            assert_eq!(
                matcher.is_match(path),
                expected,
                "`{pattern}` against `{path}`"
            );
        }
    }

    #[test]
    fn extglobs_as_picomatch_documents_them() {
        // picomatch's README examples (its `isMatch` table).
        check("+(abc)", &["+abc", "+abcabc", "-", "-abcd"]);
        check("*(abc)", &["+", "+abc", "+abcabc", "-ab"]);
        check("?(abc)", &["+", "+abc", "-abcabc"]);
        check("@(abc)", &["+abc", "-", "-abcabc"]);
        check("!(abc)", &["-abc", "+abd", "+abcd"]);
        check("foo/!(abc)", &["+foo/bar", "-foo/abc", "-foo/x/y"]);
        check("!(*.js)", &["-a.js", "+a.ts", "-dir/a.ts"]);
        check("*.!(js)", &["-a.js", "+a.ts", "+a.jsx"]);
        check("a/!(b)*/c", &["-a/b/c", "-a/bx/c", "+a/x/c", "+a/xb/c"]);
        check("+(a|b)", &["+a", "+ab", "+abba", "-abc", "-"]);
        check(
            "src/*(*.)ts",
            &["+src/a.ts", "+src/a.b.ts", "+src/ts", "-src/x/a.ts"],
        );
        check("lib/?(x)y.rs", &["+lib/y.rs", "+lib/xy.rs", "-lib/xxy.rs"]);
        check(
            "@(src|lib)/**/*.rs",
            &["+src/a.rs", "+lib/x/y.rs", "-app/a.rs"],
        );
        check("+(@(a|b)c)", &["+ac", "+acbc", "-ab"]);
        check("*(a|+(b))x", &["+x", "+abbbx", "+bax", "-cx"]);
        check(
            "docs/!(*.md|*.txt)",
            &["+docs/a.rs", "-docs/a.md", "-docs/a.txt"],
        );
        check("!(a/b)", &["-a/b", "+a/c", "+b"]);
        check("+(a|)", &["+", "+a", "+aa", "-b"]);
    }

    #[test]
    fn brace_ranges_as_picomatch_reads_them() {
        check(
            "v{1..3}/**",
            &["+v1/a", "+v3/a/b", "+v2", "-v4/a", "-v12/a"],
        );
        check("{3..1}.txt", &["+1.txt", "+2.txt", "+3.txt", "-4.txt"]);
        check("{a..c}", &["+a", "+c", "-d", "-ab"]);
        // `{01..10}` is the class `[01-10]`: one `0` or `1`.
        check("f{01..10}", &["+f0", "+f1", "-f01", "-f10", "-f5"]);
        // A step joins the class: `[1-10-2]` is `1`, `0`-`2`.
        check("{1..10..2}", &["+0", "+1", "+2", "-3", "-10"]);
        // An invalid class is the literal text.
        check("{19..5}", &["+19..5", "-7"]);
        check("@(x|{1..2})", &["+x", "+1", "+2", "-3"]);
    }

    #[test]
    fn the_rest_of_the_syntax() {
        check("a/**/b", &["+a/b", "+a/x/b", "+a/x/y/b", "-ab"]);
        check("**/*.md", &["+a.md", "+x/y/a.md", "-a.rs"]);
        check("a/**", &["+a", "+a/b", "+a/b/c", "-ab"]);
        check("**", &["+a", "+a/b"]);
        check("x/*.{md,txt}", &["+x/a.md", "+x/a.txt", "-x/a.rs"]);
        check("[!a]?", &["+bc", "-ac", "-b/"]);
        check("\\*x", &["+*x", "-ax"]);
        check("{a}", &["+{a}", "-a"]);
        check("[x", &["+[x"]);
        assert_eq!(
            Matcher::parse("+(a").map(|_| ()),
            Err("an extglob `(` is not closed by `)`".to_owned())
        );
        check("@(a|{b,c)", &["+a", "+{b,c"]);
    }

    #[test]
    fn what_needs_this_matcher() {
        for pattern in ["+(a)", "a/*(b)", "?(x)", "x!(y)", "@(a|@(b))", "v{1..3}"] {
            assert!(is_needed(pattern), "`{pattern}`");
        }
        for pattern in ["@(a|b)/x", "src/**", "{a,b}", "\\+(a)", "a..b", "{a.b}"] {
            assert!(!is_needed(pattern), "`{pattern}`");
        }
    }
}
