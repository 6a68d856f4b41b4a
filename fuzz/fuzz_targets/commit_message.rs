//! Conventional Commit messages (`img-tag next-version`, `check-commit`,
//! the changelog): parsing never panics; a parsed commit has a lowercase
//! type, a one-line description, and a bump that agrees with its fields; the
//! next version never goes backwards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_tags::version::{self, Bump, ChangelogEntry, ConventionalCommit, KNOWN_TYPES, ParseCommit as _};

fuzz_target!(|text: &str| {
    match ConventionalCommit::parse(text) {
        Ok(commit) => {
            assert!(!commit.kind.is_empty());
            assert_eq!(
                commit.kind,
                commit.kind.to_ascii_lowercase(),
                "type not lowercased"
            );
            assert!(!commit.description.is_empty(), "empty description accepted");
            assert!(
                !commit.description.contains('\n'),
                "description spans lines"
            );
            assert_eq!(commit.description, commit.description.trim());
            if let Some(scope) = &commit.scope {
                assert!(!scope.is_empty(), "empty scope accepted");
            }
            let expected = if commit.is_breaking {
                Bump::Major
            } else {
                match commit.kind.as_str() {
                    "feat" => Bump::Minor,
                    "fix" | "perf" => Bump::Patch,
                    _ => Bump::None,
                }
            };
            assert_eq!(commit.bump(), expected);
            // The strict check accepts exactly the parsed commits of a known
            // type written in lower case (commitlint's default type-case).
            let strict = version::check(text, &KNOWN_TYPES);
            let subject = text.trim().lines().next().unwrap_or_default();
            let is_lower = subject.get(..commit.kind.len()) == Some(commit.kind.as_str());
            assert_eq!(
                strict.is_ok(),
                is_lower && KNOWN_TYPES.contains(&commit.kind.as_str())
            );
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(version::check(text, &KNOWN_TYPES).is_err());
        }
    }
    // The same text as a history: one message per `\0`-separated part.
    let messages: Vec<&str> = text.split('\0').collect();
    let bump = version::bump_for(&messages);
    for base in ["0.0.0", "0.3.1", "1.2.3"] {
        let base = semver::Version::parse(base).expect("a valid version");
        let next = version::apply_bump(&base, bump);
        if bump == Bump::None {
            assert_eq!(next, base);
        } else {
            assert!(next > base, "{base} bumped ({bump:?}) to the older {next}");
        }
    }
    let entries: Vec<ChangelogEntry> = messages
        .iter()
        .map(|message| ChangelogEntry {
            short_sha: "0123456".to_owned(),
            message: (*message).to_owned(),
        })
        .collect();
    let next = version::apply_bump(&semver::Version::new(1, 2, 3), bump);
    let section = version::changelog(&next, Some("2026-01-01"), &entries);
    assert!(section.starts_with(&format!("## {next} (2026-01-01)\n")));
});
