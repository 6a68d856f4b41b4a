//! The patterns globset cannot compile, matched the way picomatch 2 (and so
//! dorny/paths-filter) matches them: extglobs `@(…)`, `?(…)`, `*(…)`,
//! `+(…)`, `!(…)`, nested, and brace ranges `{1..3}`.
//!
//! A small matcher over the parsed pattern that moves the set of reachable
//! positions through it (no backtracking, so no pattern takes exponential
//! time); used only for the patterns that need it, every other pattern
//! stays in the one `GlobSet`.
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
pub struct Matcher {
    nodes: Vec<Node>,
}

/// Whether `body` (a pattern without its leading `!`) needs this matcher:
/// an extglob other than one flat `@(…)`, or a brace range.
pub fn is_needed(body: &str) -> bool {
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
    pub fn parse(body: &str) -> Result<Matcher, String> {
        let mut parser = Parser {
            chars: body.chars().collect(),
            pos: 0,
        };
        let nodes = parser.sequence(None)?;
        Ok(Matcher { nodes })
    }

    /// Whether the whole of `path` matches.
    pub fn is_match(&self, path: &str) -> bool {
        let mut starts = vec![false; path.len() + 1];
        starts[0] = true;
        ends(&self.nodes, path, starts)[path.len()]
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

/// The positions a pattern can reach in a text: one flag per byte offset
/// (offsets inside a character are never set).
type Positions = Vec<bool>;

/// The end of the path segment that `from` is in.
fn segment_end(text: &str, from: usize) -> usize {
    text[from..]
        .find('/')
        .map_or(text.len(), |offset| from + offset)
}

/// Where `nodes` can end when they start at any of `starts`. The whole set
/// of positions moves through the pattern at once (as an NFA simulation
/// does), so no pattern takes exponential time: nested repetitions such as
/// `*(*(a|aa))b` cost a polynomial of the path's length.
fn ends(nodes: &[Node], text: &str, starts: Positions) -> Positions {
    let mut positions = starts;
    for node in nodes {
        if !positions.contains(&true) {
            break;
        }
        positions = node_ends(node, text, &positions);
    }
    positions
}

fn node_ends(node: &Node, text: &str, starts: &[bool]) -> Positions {
    let len = text.len();
    let mut out = vec![false; len + 1];
    let bytes = text.as_bytes();
    let each_start = || (0..=len).filter(|p| starts[*p]);
    let one_char = |out: &mut Positions, accept: &dyn Fn(char) -> bool| {
        for p in each_start() {
            if let Some(c) = text[p..].chars().next().filter(|c| *c != '/' && accept(*c)) {
                out[p + c.len_utf8()] = true;
            }
        }
    };
    match node {
        Node::Literal(c) => {
            for p in each_start() {
                if text[p..].starts_with(*c) {
                    out[p + c.len_utf8()] = true;
                }
            }
        }
        Node::One => one_char(&mut out, &|_| true),
        Node::Class { negated, ranges } => one_char(&mut out, &|c| {
            ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
        }),
        Node::Star | Node::AnyAll | Node::AnyDirs | Node::AnyTail => {
            // `active`: some start at or before here reaches here.
            let mut active = false;
            for i in 0..=len {
                let boundary = text.is_char_boundary(i);
                match node {
                    Node::Star => {
                        active |= starts[i];
                        out[i] = active && boundary;
                        if bytes.get(i) == Some(&b'/') {
                            active = false;
                        }
                    }
                    Node::AnyAll => {
                        active |= starts[i];
                        out[i] = active && boundary;
                    }
                    Node::AnyDirs => {
                        out[i] = starts[i] || (active && i > 0 && bytes[i - 1] == b'/');
                        active |= starts[i];
                    }
                    _ => {
                        out[i] = starts[i] || (active && boundary);
                        active |= starts[i] && bytes.get(i) == Some(&b'/');
                    }
                }
            }
        }
        Node::Group {
            kind,
            alternatives,
            at_end,
            spans_segments,
        } => {
            let any_alternative = |from: &[bool]| {
                let mut reached = vec![false; len + 1];
                for alternative in alternatives {
                    for (i, hit) in ends(alternative, text, from.to_vec())
                        .into_iter()
                        .enumerate()
                    {
                        reached[i] |= hit;
                    }
                }
                reached
            };
            let closure = |mut reached: Positions| {
                let mut frontier = reached.clone();
                while frontier.contains(&true) {
                    let next = any_alternative(&frontier);
                    frontier = vec![false; len + 1];
                    for i in 0..=len {
                        if next[i] && !reached[i] {
                            reached[i] = true;
                            frontier[i] = true;
                        }
                    }
                }
                reached
            };
            match kind {
                Kind::ExactlyOne => out = any_alternative(starts),
                Kind::ZeroOrOne => {
                    out = any_alternative(starts);
                    for (i, hit) in starts.iter().enumerate() {
                        out[i] |= *hit;
                    }
                }
                Kind::ZeroOrMore => out = closure(starts.to_vec()),
                Kind::OneOrMore => out = closure(any_alternative(starts)),
                Kind::Not => {
                    for p in each_start() {
                        let mut at = vec![false; len + 1];
                        at[p] = true;
                        let reached = any_alternative(&at);
                        let limit = if *spans_segments {
                            len
                        } else {
                            segment_end(text, p)
                        };
                        if *at_end {
                            if limit == len && !reached[len] {
                                out[len] = true;
                            }
                        } else if !reached.contains(&true) {
                            for (i, slot) in out.iter_mut().enumerate().take(limit + 1).skip(p) {
                                *slot |= text.is_char_boundary(i);
                            }
                        }
                    }
                }
            }
        }
    }
    out
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
    fn nested_repetitions_do_not_backtrack() {
        // Exponential for a backtracking matcher: 2^28 ways to split the a's.
        let path = "a".repeat(28) + "c";
        check("*(*(*(a|aa)))b", &[&format!("-{path}")]);
        check("*(*(*(a|aa)))c", &[&format!("+{path}")]);
        check(
            "+(+(a)|a)+(a)",
            &["+aa", "-a", &format!("+{}", "a".repeat(40))],
        );
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
