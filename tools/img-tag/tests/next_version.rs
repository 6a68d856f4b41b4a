//! `img-tag next-version` and `check-commit` end to end, on real git histories.

mod common;

use common::{img_tag, stderr, stdout};
use slipway_testbed::git::GitRepo;

fn history(messages: &[&str]) -> GitRepo {
    let repo = GitRepo::new();
    for (index, message) in messages.iter().enumerate() {
        repo.write("file.txt", index.to_string());
        repo.commit(message);
    }
    repo
}

#[track_caller]
fn check(repo: &GitRepo, args: &[&str], expected: &str) {
    let output = img_tag(repo.path(), &[&["next-version"], args].concat(), &[], None);
    assert_eq!(
        stdout(&output),
        expected,
        "args {args:?}: {}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn the_bump_follows_the_commits_since_the_last_release() {
    let repo = history(&["chore: init"]);
    check(&repo, &[], "0.0.0\n");
    repo.tag("v1.2.0");
    check(&repo, &[], "1.2.0\n");
    repo.write("file.txt", "fix");
    repo.commit("fix: a crash");
    check(&repo, &[], "1.2.1\n");
    repo.write("file.txt", "feat");
    repo.commit("feat(api): search");
    check(&repo, &[], "1.3.0\n");
    check(&repo, &["--bump", "major"], "2.0.0\n");
    check(&repo, &["--bump", "none"], "1.2.0\n");
    repo.write("file.txt", "break");
    repo.commit("refactor: rename\n\nBREAKING CHANGE: `--old` is gone");
    check(&repo, &[], "2.0.0\n");
}

#[test]
fn prereleases_count_commits_and_fold_into_the_release() {
    let repo = history(&["chore: init"]);
    repo.tag("1.0.0");
    repo.write("file.txt", "a");
    repo.commit("feat: a");
    check(&repo, &["--prerelease", "dev"], "1.1.0-dev.1\n");
    // A pushed prerelease tag is not a release: the counter keeps counting.
    repo.tag("v1.1.0-dev.1");
    repo.write("file.txt", "b");
    repo.commit("fix: b");
    check(&repo, &["--prerelease", "dev"], "1.1.0-dev.2\n");
    check(
        &repo,
        &["--prerelease", "dev", "--prerelease-branch", "develop"],
        "1.1.0\n",
    );
    check(
        &repo,
        &["--prerelease", "dev", "--prerelease-branch", "main"],
        "1.1.0-dev.2\n",
    );
    let output = img_tag(repo.path(), &["next-version", "--changelog"], &[], None);
    let changelog = stdout(&output);
    assert!(
        changelog.starts_with("## 1.1.0\n\n### Features\n\n- a ("),
        "{changelog}"
    );
    assert!(changelog.contains("### Bug fixes\n\n- b ("), "{changelog}");
    let output = img_tag(
        repo.path(),
        &["next-version", "--format", "json"],
        &[],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"version": "1.1.0", "previous": "1.0.0", "bump": "minor", "height": 2})
    );
}

#[test]
fn a_bad_prerelease_id_is_a_usage_error() {
    let repo = history(&["chore: init"]);
    let output = img_tag(
        repo.path(),
        &["next-version", "--prerelease", "a.b"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: invalid `--prerelease` `a.b`: expected one identifier of letters, digits and `-`, such as `dev`\n"
    );
}

#[test]
fn check_commit_answers_yes_or_no() {
    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(
        dir.path(),
        &["check-commit", "feat(api)!: drop v1"],
        &[],
        None,
    );
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), "ok: `feat` commit, bump major\n".to_owned())
    );
    let output = img_tag(dir.path(), &["check-commit", "feature: x"], &[], None);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "invalid: unknown commit type `feature` in `feature: x` — did you mean `feat`?; valid types: build, chore, ci, docs, feat, fix, perf, refactor, revert, style, test\n"
    );
    let output = img_tag(
        dir.path(),
        &["check-commit", "--type", "feature", "feature: x"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0));
    let output = img_tag(
        dir.path(),
        &["check-commit", "-"],
        &[],
        Some("# a comment git adds\nfix: read from stdin\n"),
    );
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), "ok: `fix` commit, bump patch\n".to_owned())
    );
}

/// A shallow clone (actions/checkout's default `fetch-depth: 1`) lacks the
/// release tags and commits next-version reads: it printed `0.1.0`, exit 0.
/// Now it refuses (exit 3, as for other git failures) and says how to fetch
/// the history; a clone deep enough to hold every commit still works.
#[test]
fn a_shallow_clone_is_refused_with_the_fix() {
    let repo = history(&["chore: init", "feat: a"]);
    repo.tag("v1.2.0");
    repo.write("file.txt", "fix");
    repo.commit("fix: b");
    repo.write("file.txt", "feat");
    repo.commit("feat: c");
    for depth in [1, 2] {
        let clone = repo.clone_shallow(depth);
        for args in [&["next-version"][..], &["next-version", "--changelog"]] {
            let output = img_tag(clone.path(), args, &[], None);
            let text = stderr(&output);
            assert_eq!(
                output.status.code(),
                Some(3),
                "depth {depth} {args:?}: {text}"
            );
            assert_eq!(stdout(&output), "", "depth {depth} {args:?}");
            assert!(
                text.contains(
                    "error: cannot find the last release tag and the commits since \
                     (next-version, changelog): repository `"
                ) && text.contains(
                    "` is a shallow clone and the history it needs is not fetched; fetch it \
                     with `git fetch --unshallow` (or `--deepen=<n>`), or set `fetch-depth: 0` \
                     on `actions/checkout`"
                ),
                "depth {depth} {args:?}: {text}"
            );
        }
    }
    check(&repo.clone_shallow(10), &[], "1.3.0\n");
}
