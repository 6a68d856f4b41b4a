//! Which patterns a path hits: every glob of every filter, filed by what
//! its answer depends on, so that a large diff asks each question as
//! rarely as it can.
//!
//! - `**`, a literal path, a literal directory's tree (`src/go/**`): no
//!   glob matching at all (a hash lookup, for a tree once per directory);
//! - `<glob>/**`: one `GlobSet` asked once per directory, since every file
//!   of a directory gets the same answer ([`glob::Scope::Directory`]);
//! - `**/<name>`: asked about the file name only ([`glob::Scope::Name`]):
//!   `*.<ext>` by a lookup of the extension, other globs of literal text
//!   and `*` compared directly, the rest by one `GlobSet`;
//! - every other glob: one `GlobSet` asked about the whole path, skipped
//!   for the directories none of its globs' literal start (`scripts/` of
//!   `scripts/**/*.py`) allows;
//! - extglobs and brace ranges: their own matchers, per path.
//!
//! Changed files come sorted, so the files of one directory follow each
//! other and the per-directory answers are computed once per directory.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::{extglob, glob};

/// FNV-1a, for the maps looked up once per file or directory: their keys
/// are short (an extension, a directory) and come from the filters, so
/// SipHash's resistance to chosen keys buys nothing and costs more than
/// the lookup.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type Map<V> = HashMap<String, V, BuildHasherDefault<Fnv>>;

/// The compiled index; pattern numbers are the caller's.
#[derive(Debug, Clone)]
pub(super) struct PatternIndex {
    /// Patterns holding the glob `**`.
    everything: Vec<usize>,
    /// Patterns holding a glob that is one literal path, by that path.
    literals: Map<Vec<usize>>,
    /// Patterns holding a glob `<dir>/**` (`dir` literal), by `dir`.
    trees: Map<Vec<usize>>,
    /// Globs `<glob>/**`, asked once per directory.
    directories: GlobGroup,
    /// Globs `**/<name>`, asked about file names.
    names: Names,
    /// Every other glob, asked about whole paths.
    paths: GlobGroup,
    /// The literal directories the globs of `paths` start with; `None`
    /// when one of them starts with none (every path must be asked).
    path_starts: Option<Vec<String>>,
    /// Patterns globset cannot express, each with its own matcher.
    matchers: Vec<(extglob::Matcher, usize)>,
}

/// A `GlobSet` and, for each of its globs, the patterns holding it.
#[derive(Debug, Clone)]
struct GlobGroup {
    set: globset::GlobSet,
    patterns: Vec<Vec<usize>>,
}

impl GlobGroup {
    /// Adds the patterns whose globs match `candidate` to `into`.
    fn hits(&self, candidate: &str, globs: &mut Vec<usize>, into: &mut Vec<usize>) {
        if self.set.is_empty() {
            return;
        }
        self.set.matches_into(candidate, globs);
        for glob in globs.iter() {
            into.extend_from_slice(&self.patterns[*glob]);
        }
    }
}

/// The file-name globs.
#[derive(Debug, Clone)]
struct Names {
    /// `*.<ext>` (`ext` without `.` or `*`), by `ext`.
    extensions: Map<Vec<usize>>,
    /// Other globs of literal text and `*`, as their literal parts.
    stars: Vec<(Vec<String>, Vec<usize>)>,
    /// The rest.
    others: GlobGroup,
}

impl Names {
    fn hits(&self, name: &str, globs: &mut Vec<usize>, into: &mut Vec<usize>) {
        if !self.extensions.is_empty()
            && let Some(dot) = name.rfind('.')
            && let Some(patterns) = self.extensions.get(&name[dot + 1..])
        {
            into.extend_from_slice(patterns);
        }
        for (parts, patterns) in &self.stars {
            if star_match(parts, name.as_bytes()) {
                into.extend_from_slice(patterns);
            }
        }
        self.others.hits(name, globs, into);
    }
}

/// Whether `name` matches the glob whose literal parts, between its `*`s,
/// are `parts` (one part: no `*`, the name itself). Leftmost matching of
/// the middle parts is enough, as `*` matches any run.
fn star_match(parts: &[String], name: &[u8]) -> bool {
    let [first, middle @ .., last] = parts else {
        return parts.first().is_some_and(|only| only.as_bytes() == name);
    };
    let Some(rest) = name.strip_prefix(first.as_bytes()) else {
        return false;
    };
    let Some(mut rest) = rest.strip_suffix(last.as_bytes()) else {
        return false;
    };
    for part in middle
        .iter()
        .map(String::as_bytes)
        .filter(|p| !p.is_empty())
    {
        match rest.windows(part.len()).position(|window| window == part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Collects globs into a [`PatternIndex`]; a glob held by several
/// patterns is compiled once.
#[derive(Debug, Default)]
pub(super) struct IndexBuilder {
    everything: Vec<usize>,
    literals: Map<Vec<usize>>,
    trees: Map<Vec<usize>>,
    directories: GroupBuilder,
    extensions: Map<Vec<usize>>,
    stars: Vec<(Vec<String>, Vec<usize>)>,
    names: GroupBuilder,
    paths: GroupBuilder,
    path_starts: Vec<String>,
    /// Whether a glob of `paths` starts with no literal directory.
    path_unanchored: bool,
    matchers: Vec<(extglob::Matcher, usize)>,
}

#[derive(Debug)]
struct GroupBuilder {
    set: globset::GlobSetBuilder,
    slots: HashMap<String, usize>,
    patterns: Vec<Vec<usize>>,
}

impl Default for GroupBuilder {
    fn default() -> GroupBuilder {
        GroupBuilder {
            set: globset::GlobSetBuilder::new(),
            slots: HashMap::new(),
            patterns: Vec::new(),
        }
    }
}

impl GroupBuilder {
    fn add(&mut self, text: &str, pattern: usize) -> Result<(), globset::Error> {
        let slot = match self.slots.get(text) {
            Some(slot) => *slot,
            None => {
                self.set.add(glob::build(text)?);
                self.patterns.push(Vec::new());
                self.slots.insert(text.to_owned(), self.patterns.len() - 1);
                self.patterns.len() - 1
            }
        };
        self.patterns[slot].push(pattern);
        Ok(())
    }

    fn build(self) -> Result<GlobGroup, globset::Error> {
        Ok(GlobGroup {
            set: self.set.build()?,
            patterns: self.patterns,
        })
    }
}

impl IndexBuilder {
    /// Files `glob` (a [`glob::translate`]d one) for `pattern`.
    pub(super) fn add_glob(&mut self, text: &str, pattern: usize) -> Result<(), globset::Error> {
        match glob::plain_kind(text) {
            Some(glob::Plain::Everything) => self.everything.push(pattern),
            Some(glob::Plain::Literal(path)) => {
                self.literals.entry(path).or_default().push(pattern)
            }
            Some(glob::Plain::Tree(dir)) => self.trees.entry(dir).or_default().push(pattern),
            None => match glob::scope(text) {
                glob::Scope::Directory => self.directories.add(text, pattern)?,
                glob::Scope::Name(name) => {
                    // Compiled even when matched without globset: an
                    // invalid glob is refused as before.
                    glob::build(text)?;
                    self.add_name(name, pattern)?;
                }
                glob::Scope::Path => {
                    self.paths.add(text, pattern)?;
                    match glob::literal_directory(text) {
                        "" => self.path_unanchored = true,
                        start => self.path_starts.push(start.to_owned()),
                    }
                }
            },
        }
        Ok(())
    }

    fn add_name(&mut self, name: &str, pattern: usize) -> Result<(), globset::Error> {
        let Some(alternatives) = glob::star_alternatives(name) else {
            return self.names.add(name, pattern);
        };
        for alternative in alternatives {
            if let Some(extension) = alternative.strip_prefix("*.")
                && !extension.contains(['.', '*'])
            {
                let patterns = self.extensions.entry(extension.to_owned()).or_default();
                if !patterns.contains(&pattern) {
                    patterns.push(pattern);
                }
                continue;
            }
            let parts: Vec<String> = alternative.split('*').map(str::to_owned).collect();
            match self.stars.iter_mut().find(|(known, _)| *known == parts) {
                Some((_, patterns)) if patterns.contains(&pattern) => {}
                Some((_, patterns)) => patterns.push(pattern),
                None => self.stars.push((parts, vec![pattern])),
            }
        }
        Ok(())
    }

    /// Files a pattern globset cannot express, with its own matcher.
    pub(super) fn add_matcher(&mut self, matcher: extglob::Matcher, pattern: usize) {
        self.matchers.push((matcher, pattern));
    }

    pub(super) fn build(self) -> Result<PatternIndex, globset::Error> {
        Ok(PatternIndex {
            everything: self.everything,
            literals: self.literals,
            trees: self.trees,
            directories: self.directories.build()?,
            names: Names {
                extensions: self.extensions,
                stars: self.stars,
                others: self.names.build()?,
            },
            paths: self.paths.build()?,
            path_starts: (!self.path_unanchored).then_some(self.path_starts),
            matchers: self.matchers,
        })
    }
}

/// The patterns the last path hit, and what the next path can reuse.
#[derive(Debug, Default)]
pub(super) struct Hits {
    /// By pattern: whether it hit.
    pub(super) hits: Vec<bool>,
    /// The patterns set in `hits` (a pattern may be listed twice).
    pub(super) touched: Vec<usize>,
    globs: Vec<usize>,
    /// The directory whose answers follow, if any.
    directory: Option<String>,
    /// The patterns every file of `directory` hits.
    directory_patterns: Vec<usize>,
    /// Whether a glob asked about whole paths can match in `directory`.
    directory_asks_paths: bool,
}

impl Hits {
    /// Room for `patterns` patterns.
    pub(super) fn new(patterns: usize) -> Hits {
        Hits {
            hits: vec![false; patterns],
            ..Hits::default()
        }
    }
}

impl PatternIndex {
    /// Records in `hits` the patterns `path` hits, forgetting the last
    /// path's.
    pub(super) fn mark(&self, path: &str, hits: &mut Hits) {
        for index in hits.touched.drain(..) {
            hits.hits[index] = false;
        }
        let Hits {
            hits: _,
            touched,
            globs,
            directory,
            directory_patterns,
            directory_asks_paths,
        } = hits;
        touched.extend_from_slice(&self.everything);
        if !self.literals.is_empty()
            && let Some(patterns) = self.literals.get(path)
        {
            touched.extend_from_slice(patterns);
        }
        let (name, asks_paths) = match path.as_bytes().iter().rposition(|b| *b == b'/') {
            Some(end) => {
                let dir = &path[..end];
                if directory.as_deref() != Some(dir) {
                    directory_patterns.clear();
                    if !self.trees.is_empty() {
                        for (slash, _) in dir.match_indices('/').chain([(end, "/")]) {
                            if let Some(patterns) = self.trees.get(&path[..slash]) {
                                directory_patterns.extend_from_slice(patterns);
                            }
                        }
                    }
                    // Any file of the directory gives the same answer: this one.
                    self.directories.hits(path, globs, directory_patterns);
                    // A literal start ends with `/`, so it lies within the directory.
                    *directory_asks_paths = self.path_starts.as_ref().is_none_or(|starts| {
                        starts
                            .iter()
                            .any(|start| path[..=end].starts_with(start.as_str()))
                    });
                    match directory {
                        Some(known) => {
                            known.clear();
                            known.push_str(dir);
                        }
                        None => *directory = Some(dir.to_owned()),
                    }
                }
                touched.extend_from_slice(directory_patterns);
                (&path[end + 1..], *directory_asks_paths)
            }
            // A path without a directory: `**/**` is still asked.
            None => {
                self.directories.hits(path, globs, touched);
                (path, self.path_starts.is_none())
            }
        };
        self.names.hits(name, globs, touched);
        if asks_paths {
            self.paths.hits(path, globs, touched);
        }
        for (matcher, pattern) in &self.matchers {
            if matcher.is_match(path) {
                touched.push(*pattern);
            }
        }
        for pattern in touched.iter() {
            hits.hits[*pattern] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every glob asked about every path, one at a time: the answer the
    /// index must give.
    fn reference(globs: &[globset::GlobMatcher], path: &str) -> Vec<usize> {
        globs
            .iter()
            .enumerate()
            .filter(|(_, glob)| glob.is_match(path))
            .map(|(index, _)| index)
            .collect()
    }

    #[test]
    fn each_scope_answers_as_the_whole_glob_would() {
        let globs = [
            "**",
            "src/go/**",
            "src/go",
            "src",
            "**/*.sh",
            "**/Dockerfile*",
            "**/Makefile",
            "**/*.{yml,yaml,toml}",
            "**/tests/**",
            "**/tests",
            "**/a?",
            "**/{x,}",
            "**/*",
            "**/**",
            "/**",
            "a/**/**",
            "{a,b}/**",
            "a\\/**",
            "**/[ab]",
            "**/*[!a]b",
            "**/*.tar.gz",
            "**/*.",
            "**/.*",
            "**/a*b*c",
            "**/*a*",
            "**/{a,b}*{c,}",
            "**/a,b",
            "**/{}x",
            "**/x?",
            "**/\\*",
            "s*/x/**/*.py",
            "/x/*",
            "a/{b,x}/*",
            "**/x[/]y",
            "*/**",
            "s*/**",
            "**/t*/**",
            "scripts/**/*.py",
            "docs/**/*.md",
            "*",
            "*.sh",
            "a/*/c",
            "**/b/*",
        ];
        let mut builder = IndexBuilder::default();
        for (index, text) in globs.iter().enumerate() {
            builder.add_glob(text, index).expect("valid glob");
        }
        let index = builder.build().expect("valid globs");
        let matchers: Vec<globset::GlobMatcher> = globs
            .iter()
            .map(|text| glob::build(text).expect("valid glob").compile_matcher())
            .collect();
        // Sorted as git sorts, so directories repeat and change, with odd
        // names: no directory, a leading or trailing `/`, a newline.
        let mut paths: Vec<String> = [
            "src",
            "a",
            "x",
            "ab",
            "Makefile",
            "run.sh",
            "/",
            "/a",
            "/x/y",
            "a/",
            "a/b/",
            "b/",
            "tests",
            "tests/",
            "a\nb/c.sh",
            "a/b\n",
            "a/b/c",
            "a/x/c",
            "a/b/a",
            "d/e/b",
            "x.tar.gz",
            "tar.gz",
            ".",
            "x.",
            ".hidden",
            "abc",
            "aXbYc",
            "acb",
            "bc",
            "a,b",
            "*",
            "x",
            "s1/x/y/z.py",
            "s1/x/z.py",
            "sx/z.py",
        ]
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
        for dir in [
            "src/go",
            "src/go/m01",
            "src/go/m01/tests",
            "src/gone",
            "scripts",
            "scripts/py",
            "docs",
            "docs/tests/x",
            "b",
            "x",
            "a",
            "a/b",
            "sub/tests",
            "t/tests/u",
        ] {
            for name in [
                "Dockerfile",
                "Dockerfile.dev",
                "Makefile",
                "a",
                "a.sh",
                "c.yml",
                "d.toml",
                "e.md",
                "f.py",
                "tests",
                "x",
                "y",
                "ab",
                "x.tar.gz",
                ".hidden",
                "aXbYc",
                "z.py",
            ] {
                paths.push(format!("{dir}/{name}"));
            }
        }
        paths.sort();
        let mut hits = Hits::new(globs.len());
        for path in &paths {
            index.mark(path, &mut hits);
            let found: Vec<usize> = (0..globs.len()).filter(|i| hits.hits[*i]).collect();
            assert_eq!(found, reference(&matchers, path), "`{path:?}`");
        }
        // A fresh start, and paths out of order, give the same answers.
        let mut hits = Hits::new(globs.len());
        for path in paths.iter().rev() {
            index.mark(path, &mut hits);
            let found: Vec<usize> = (0..globs.len()).filter(|i| hits.hits[*i]).collect();
            assert_eq!(found, reference(&matchers, path), "`{path:?}`");
        }
    }
}
