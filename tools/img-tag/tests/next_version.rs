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
        serde_json::json!({"version": "1.1.0", "previous": "1.0.0", "bump": "minor", "height": 2, "has_release": true})
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

fn commit(repo: &GitRepo, message: &str) {
    repo.write("file.txt", message);
    repo.commit(message);
}

#[test]
fn a_prerelease_never_sorts_below_a_release_made_elsewhere() {
    let repo = history(&["chore: init"]);
    repo.tag("v1.2.0");
    repo.checkout_new("dev");
    commit(&repo, "feat: a");
    // 1.3.0 is released from main; dev is not merged back.
    repo.checkout("main");
    commit(&repo, "feat: b");
    repo.tag("v1.3.0");
    repo.checkout("dev");
    commit(&repo, "fix: c");
    check(&repo, &["--prerelease", "dev"], "1.4.0-dev.2\n");
    // A release from dev is what its own commits ask for.
    check(&repo, &[], "1.3.0\n");
}

#[test]
fn on_a_detached_head_the_ci_names_the_branch() {
    let repo = history(&["chore: init"]);
    repo.tag("v1.0.0");
    commit(&repo, "feat: a");
    let head = repo.head();
    repo.checkout(&head);
    let args = [
        "next-version",
        "--prerelease",
        "dev",
        "--prerelease-branch",
        "dev",
    ];
    let run = |env: &[(&str, &str)], extra: &[&str]| {
        let output = img_tag(repo.path(), &[&args[..], extra].concat(), env, None);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stdout(&output)
    };
    assert_eq!(run(&[], &[]), "1.1.0\n");
    let github = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/heads/dev"),
    ];
    assert_eq!(run(&github, &[]), "1.1.0-dev.1\n");
    let gitlab = [
        ("GITLAB_CI", "true"),
        ("CI_PIPELINE_SOURCE", "push"),
        ("CI_COMMIT_BRANCH", "dev"),
    ];
    assert_eq!(run(&gitlab, &[]), "1.1.0-dev.1\n");
    assert_eq!(run(&[], &["--ref", "refs/heads/dev"]), "1.1.0-dev.1\n");
    // `--ref` wins over the CI's; a tag ref names no branch.
    assert_eq!(run(&github, &["--ref", "main"]), "1.1.0\n");
    assert_eq!(run(&[], &["--ref", "refs/tags/v1.1.0"]), "1.1.0\n");
}

#[test]
fn release_labels_decide_the_bump() {
    let repo = history(&["chore: init"]);
    repo.tag("v1.0.0");
    commit(&repo, "fix: a");
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    fs_err::write(
        &event,
        r#"{"action": "closed", "number": 7, "pull_request": {"number": 7, "merged": true, "labels": [{"name": "bug"}, {"name": "release:major"}]}}"#,
    )
    .unwrap();
    let event = event.display().to_string();
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_REF", "refs/pull/7/merge"),
        ("GITHUB_EVENT_PATH", event.as_str()),
    ];
    let output = img_tag(repo.path(), &["next-version"], &env, None);
    assert_eq!(stdout(&output), "2.0.0\n", "{}", stderr(&output));
    check(&repo, &["--labels", "release:minor,team:x"], "1.1.0\n");
    check(
        &repo,
        &["--labels", "release:minor", "--bump", "patch"],
        "1.0.1\n",
    );
    let output = img_tag(
        repo.path(),
        &[
            "next-version",
            "--labels",
            "release:skip",
            "--format",
            "json",
            "--exit-code",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"version": "1.0.0", "previous": "1.0.0", "bump": "none", "height": 1, "has_release": false})
    );
    let output = img_tag(
        repo.path(),
        &["next-version", "--labels", "release:huge"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: invalid `--labels`: unknown release label `release:huge`; valid: release:major, release:minor, release:patch, release:skip\n"
    );
}

#[test]
fn nothing_to_release_answers_no_with_exit_code() {
    let repo = history(&["chore: init"]);
    repo.tag("v1.0.0");
    commit(&repo, "docs: typo");
    let output = img_tag(repo.path(), &["next-version", "--exit-code"], &[], None);
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(1), "1.0.0\n".to_owned())
    );
    check(&repo, &[], "1.0.0\n");
    commit(&repo, "fix: a");
    let output = img_tag(repo.path(), &["next-version", "--exit-code"], &[], None);
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), "1.0.1\n".to_owned())
    );
}

#[test]
fn changelog_writes_a_section_on_top_once() {
    let repo = history(&["chore: init"]);
    repo.tag("v1.0.0");
    repo.write(
        "CHANGELOG.md",
        "# Changelog\n\n## 1.0.0\n\n- the first release\n",
    );
    repo.commit("docs: changelog");
    commit(
        &repo,
        "feat!: drop the v1 api\n\nBREAKING CHANGE: `/v1` is gone",
    );
    commit(&repo, "feat(ui): dark mode");
    let output = img_tag(repo.path(), &["next-version", "--changelog"], &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let section = stdout(&output);
    let written = fs_err::read_to_string(repo.path().join("CHANGELOG.md")).unwrap();
    assert!(
        written.starts_with(&format!("# Changelog\n\n{}\n## 1.0.0\n", section)),
        "{written}"
    );
    assert_eq!(
        section.matches("/v1").count(),
        1,
        "`feat!` listed once: {section}"
    );
    assert!(
        section.starts_with("## 2.0.0\n\n### Breaking changes\n\n- `/v1` is gone ("),
        "{section}"
    );
    assert!(
        section.contains("### Features\n\n- **ui:** dark mode ("),
        "{section}"
    );
    // Twice: nothing added.
    let again = img_tag(repo.path(), &["next-version", "--changelog"], &[], None);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        fs_err::read_to_string(repo.path().join("CHANGELOG.md")).unwrap(),
        written
    );
    // --dry-run prints the section and writes nothing.
    let other = history(&["feat: first"]);
    let output = img_tag(
        other.path(),
        &["next-version", "--changelog", "--dry-run"],
        &[],
        None,
    );
    assert!(
        stdout(&output).starts_with("## 0.1.0\n"),
        "{}",
        stderr(&output)
    );
    assert!(!other.path().join("CHANGELOG.md").exists());
    let output = img_tag(other.path(), &["next-version", "--changelog"], &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        fs_err::read_to_string(other.path().join("CHANGELOG.md"))
            .unwrap()
            .starts_with("# Changelog\n\n## 0.1.0\n\n### Features\n\n- first (")
    );
}

#[test]
fn check_commit_types_restrict_and_must_be_lower_case() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = img_tag(dir.path(), &[&["check-commit"], args].concat(), &[], None);
        (output.status.code().unwrap_or(-1), stdout(&output))
    };
    let types = ["--types", "feat,fix,docs,chore"];
    assert_eq!(run(&[&types[..], &["chore: x"]].concat()).0, 0);
    assert_eq!(
        run(&[&types[..], &["ci: x"]].concat()),
        (
            1,
            "invalid: unknown commit type `ci` in `ci: x`; valid types: feat, fix, docs, chore\n"
                .to_owned()
        )
    );
    assert_eq!(
        run(&["Feat: x"]),
        (
            1,
            "invalid: commit type `Feat` in `Feat: x` must be lower-case: `feat`\n".to_owned()
        )
    );
}
