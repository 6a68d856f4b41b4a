//! The real `image-stale-check` against a real registry and real git
//! histories: fresh, stale through paths, `[rebuild_all]` and `depends_on`,
//! missing, unknown, multi-platform indexes, explicit references, an
//! unreachable registry and the label cache.

mod common;

use common::{Run, project, push_image, run_in};
use slipway_testbed::Registry;
use slipway_testbed::git::GitRepo;
use slipway_testbed::images::push_index;

fn check(repo: &GitRepo, args: &[&str]) -> Run {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    run_in(repo.path(), &all)
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn fresh_at_the_commit_and_despite_unrelated_commits() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "main", Some(&built));
    }
    let run = check(&repo, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.statuses(),
        pairs(&[("base", "fresh"), ("app", "fresh"), ("worker", "fresh")])
    );
    assert_eq!(run.image("app")["because"], "same_commit");

    // Commits that touch none of an image's paths leave it fresh; an
    // excluded file (`!app/**/*.md`) does not count either.
    repo.write("README.md", "more\n");
    repo.commit("docs: readme");
    repo.write("app/NOTES.md", "notes\n");
    repo.commit("docs: app notes");
    let run = check(&repo, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.image("app")["because"], "no_relevant_change");
    assert_eq!(run.image("app")["revision"], built.as_str());

    let plain = run_in(repo.path(), &[]);
    assert!(
        plain
            .stdout
            .contains("nothing it is built from changed since"),
        "{plain:?}"
    );
    assert!(
        plain.stdout.contains("all 3 image(s) are fresh at"),
        "{plain:?}"
    );
}

#[test]
fn stale_through_a_path_change_lists_files_and_commits_newest_first() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "main", Some(&built));
    }
    repo.write("worker/main.rs", "fn main() { work() }\n");
    let first = repo.commit("feat(worker): work");
    repo.write("README.md", "unrelated\n");
    repo.commit("docs: unrelated");
    repo.write("worker/lib.rs", "pub fn work() {}\n");
    let second = repo.commit("feat(worker): lib");

    let run = check(&repo, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.statuses(),
        pairs(&[("base", "fresh"), ("app", "fresh"), ("worker", "stale")])
    );
    let worker = run.image("worker");
    let files: Vec<&str> = worker["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["worker/lib.rs", "worker/main.rs"]);
    let commits: Vec<&str> = worker["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(commits, [second.as_str(), first.as_str()]);

    // Against the first change only (`--rev`), one file and one commit.
    let run = check(&repo, &["--rev", &first, "--image", "worker"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.image("worker")["commits"].as_array().unwrap().len(), 1);

    let plain = run_in(repo.path(), &[]);
    assert!(plain.stdout.contains("    A worker/lib.rs\n"), "{plain:?}");
    assert!(
        plain
            .stdout
            .contains(&format!("    {} feat(worker): lib\n", &second[..7])),
        "{plain:?}"
    );
    assert!(
        plain
            .stdout
            .contains("1 of 3 image(s) are stale, missing or unknown at"),
        "{plain:?}"
    );
}

#[test]
fn stale_through_rebuild_all_and_through_depends_on() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "main", Some(&built));
    }
    repo.write("base/Dockerfile", "FROM scratch\nLABEL x=y\n");
    repo.commit("feat(base): label");
    let run = check(&repo, &[]);
    assert_eq!(
        run.statuses(),
        pairs(&[("base", "stale"), ("app", "stale"), ("worker", "fresh")])
    );
    assert_eq!(
        run.image("app")["files"][0]["via"],
        serde_json::json!({"kind": "depends_on", "image": "base"})
    );
    assert_eq!(run.image("base")["files"][0]["via"]["kind"], "paths");

    repo.write("Cargo.lock", "v2\n");
    repo.commit("chore: bump deps");
    let run = check(&repo, &["--image", "worker"]);
    assert_eq!(run.statuses(), pairs(&[("worker", "stale")]));
    assert_eq!(
        run.image("worker")["files"][0],
        serde_json::json!({"path": "Cargo.lock", "status": "modified", "via": {"kind": "rebuild_all"}})
    );
}

#[test]
fn missing_tags_unlabelled_images_and_foreign_revisions() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    push_image(&host, "demo/app", "main", None);
    push_image(
        &host,
        "demo/worker",
        "main",
        Some("0123456789abcdef0123456789abcdef01234567"),
    );
    let run = check(&repo, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.statuses(),
        pairs(&[
            ("base", "missing"),
            ("app", "unknown"),
            ("worker", "unknown")
        ])
    );
    assert_eq!(run.image("app")["reason"], "no_label");
    assert_eq!(run.image("worker")["reason"], "not_in_history");
    assert_eq!(
        run.image("base")["reference"],
        format!("{host}/demo/base:main")
    );

    let plain = run_in(repo.path(), &[]);
    assert!(
        plain
            .stdout
            .contains("no `org.opencontainers.image.revision` label: rebuild it with `img-build`"),
        "{plain:?}"
    );
    assert!(
        plain.stdout.contains(
            "revision `0123456789abcdef0123456789abcdef01234567` is not in the local history: run `git fetch`"
        ),
        "{plain:?}"
    );
    assert!(
        plain.stdout.contains("no such tag: build and push it"),
        "{plain:?}"
    );
}

#[test]
fn every_platform_of_an_index_is_read() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    push_index(
        &host,
        "demo/app",
        "main",
        &[("amd64", &built), ("arm64", &built)],
    );
    let run = check(&repo, &["--image", "app"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.statuses(), pairs(&[("app", "fresh")]));

    repo.write("app/main.rs", "fn main() { app() }\n");
    let head = repo.commit("feat(app): change");
    push_index(
        &host,
        "demo/app",
        "main",
        &[("amd64", &head), ("arm64", &built)],
    );
    let run = check(&repo, &["--image", "app"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.image("app")["reason"], "inconsistent");
}

#[test]
fn explicit_references_and_tags() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    push_image(&host, "demo/app", "v1", Some(&built));
    push_image(&host, "other/tool", "1", Some(&built));
    repo.write("worker/main.rs", "changed\n");
    repo.commit("feat(worker): change");

    // A reference of a slipway.toml image is judged by its paths; any other
    // by every file.
    let run = check(
        &repo,
        &[
            &format!("{host}/demo/app:v1"),
            &format!("{host}/other/tool:1"),
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let tool = format!("{host}/other/tool:1");
    assert_eq!(run.statuses(), pairs(&[("app", "fresh"), (&tool, "stale")]));
    assert_eq!(run.image(&tool)["files"][0]["via"]["kind"], "any_file");

    let run = check(&repo, &["--tag", "v1", "--image", "app"]);
    assert_eq!((run.code, run.statuses()), (0, pairs(&[("app", "fresh")])));
    assert_eq!(run.json()["tag"], "v1");
}

#[test]
fn an_unreachable_registry_fails_the_check_but_never_the_hook() {
    let mut registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    registry.stop();

    let run = check(&repo, &["--timeout", "2s"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.statuses(),
        pairs(&[
            ("base", "unchecked"),
            ("app", "unchecked"),
            ("worker", "unchecked")
        ])
    );
    assert!(
        run.image("app")["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "cannot read the labels of `{host}/demo/app:main`: cannot reach"
            )),
        "{run:?}"
    );

    let hook = run_in(repo.path(), &["--hook", "--strict"]);
    assert_eq!(hook.code, 0, "{hook:?}");
    assert!(
        hook.stdout
            .contains("could not check 3 of 3 image(s): the registry did not answer in time or refused; the push goes on"),
        "{hook:?}"
    );
}

#[test]
fn labels_are_cached_by_digest() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    let digest = push_image(&host, "demo/app", "main", Some(&built));
    let run = check(&repo, &["--image", "app"]);
    assert_eq!(run.code, 0, "{run:?}");
    let cache_path = repo.path().join(".git/slipway/stale-cache.json");
    let cache: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&cache_path).unwrap()).unwrap();
    assert_eq!(cache["entries"][0]["digest"], digest.as_str());
    assert_eq!(
        cache["entries"][0]["platforms"][0]["revision"],
        built.as_str()
    );

    // A cached answer is used: an entry planted for the digest wins over
    // the registry's config blob (which says `built`).
    let planted = cache.to_string().replace(&built, "not-a-sha");
    fs_err::write(&cache_path, planted).unwrap();
    let run = check(&repo, &["--image", "app"]);
    assert_eq!(run.image("app")["reason"], "not_a_sha", "{run:?}");
    let run = check(&repo, &["--image", "app", "--no-cache"]);
    assert_eq!(run.image("app")["status"], "fresh", "{run:?}");
}

#[test]
fn bad_input_is_a_usage_error() {
    let registry = Registry::start();
    let repo = project(&registry.host());
    let run = check(&repo, &["--rev", "no-such-branch"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("error: `--rev no-such-branch`: cannot resolve"),
        "{run:?}"
    );
    let run = check(&repo, &["--image", "ap"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = check(&repo, &["--strict"]);
    assert_eq!(run.code, 2, "{run:?}");

    let bare = GitRepo::new();
    bare.write("x", "x");
    bare.commit("x");
    let run = check(&bare, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("no slipway.toml found and no REF given"),
        "{run:?}"
    );
}

/// Shas, digests and the registry's port vary per run.
fn redacted(text: &str, repo: &GitRepo) -> String {
    let mut text = text.to_owned();
    for (n, sha) in repo
        .git(&["log", "--format=%H", "--reverse"])
        .lines()
        .enumerate()
    {
        text = text.replace(sha, &format!("[SHA{n}]"));
        text = text.replace(&sha[..7], &format!("[SHORT{n}]"));
    }
    let digest = regex::Regex::new("sha256:[0-9a-f]{64}").expect("a valid regex");
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").expect("a valid regex");
    let text = digest.replace_all(&text, "[DIGEST]");
    port.replace_all(&text, "[HOST]").into_owned()
}

#[test]
fn plain_and_json_reports() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    push_image(&host, "demo/base", "main", Some(&built));
    push_image(&host, "demo/app", "main", None);
    repo.write("Cargo.lock", "v2\n");
    repo.commit("chore: bump deps");
    repo.write("README.md", "docs\n");
    repo.commit("docs: readme");
    let plain = run_in(repo.path(), &[]);
    assert_eq!(plain.code, 1, "{plain:?}");
    insta::assert_snapshot!("plain", redacted(&plain.stdout, &repo));
    let json = check(&repo, &[]);
    insta::assert_snapshot!("json", redacted(&json.stdout, &repo));
}

#[test]
fn a_registry_that_never_answers_costs_the_hook_only_its_timeout() {
    // Connections are accepted (by the kernel's backlog) and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = silent.local_addr().unwrap().to_string();
    let repo = project(&host);
    let run = run_in(repo.path(), &["--hook", "--timeout", "300ms"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "unchecked base    {host}/demo/base:main  could not check: reading the labels of `{host}/demo/base:main` took longer than 300ms"
        )),
        "{run:?}"
    );
    assert!(run.stdout.contains("; the push goes on"), "{run:?}");
}

#[test]
fn github_format_writes_step_outputs_and_a_summary() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    push_image(&host, "demo/base", "main", Some(&built));
    push_image(&host, "demo/app", "main", Some(&built));
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let summary = dir.path().join("summary");
    let run = common::run_with_env(
        repo.path(),
        &["--format", "github"],
        &[
            ("GITHUB_OUTPUT", &output.display().to_string()),
            ("GITHUB_STEP_SUMMARY", &summary.display().to_string()),
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let outputs = fs_err::read_to_string(&output).unwrap();
    assert_eq!(
        outputs,
        "fresh=base app\nstale=\nmissing=worker\nunknown=\nunchecked=\nall_fresh=false\n"
    );
    let summary = fs_err::read_to_string(&summary).unwrap();
    assert!(
        summary.contains(&format!(
            "| worker | `{host}/demo/worker:main` | missing |  |"
        )),
        "{summary}"
    );
}

#[test]
fn an_image_out_of_the_default_build_is_checked_only_by_name() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let config = fs_err::read_to_string(repo.path().join("slipway.toml")).unwrap();
    repo.write(
        "slipway.toml",
        config + "\n[images.tools]\npaths = [\"tools/**\"]\ndefault = false\n",
    );
    let built = repo.commit("a tools image, rarely rebuilt");
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "main", Some(&built));
    }
    // Never pushed, yet the default check is all fresh: tools is not in it.
    let run = check(&repo, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.statuses(),
        pairs(&[("base", "fresh"), ("app", "fresh"), ("worker", "fresh")])
    );
    let run = check(&repo, &["--image", "tools"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.statuses(), pairs(&[("tools", "missing")]));
}

/// In a shallow clone (actions/checkout's default) the commits since an
/// image's revision may not all be fetched even when the revision is: the
/// list of commits that make it stale was cut short at the clone's edge.
/// The check refuses with exit 3 and the fix; a clone holding the history
/// answers as before. (A revision the clone lacks altogether is `unknown`,
/// `not_in_history`, with `shallow: true`.)
#[test]
fn a_shallow_clone_is_refused_when_the_history_is_cut() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    // The image is built from a side branch, merged into main later; main
    // changed the worker meanwhile (`M1`).
    repo.checkout_new("side");
    repo.write("worker/side.rs", "pub fn side() {}\n");
    let built = repo.commit("feat(worker): side");
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "main", Some(&built));
    }
    repo.checkout("main");
    repo.write("worker/main.rs", "fn main() { 1 }\n");
    repo.commit("feat(worker): m1");
    repo.write("README.md", "m2\n");
    repo.commit("docs: m2");
    repo.merge("side", "merge side");
    repo.write("README.md", "m3\n");
    repo.commit("docs: m3");

    // Depth 3 holds the built commit, but not `M1`, which the walk needs.
    let clone = repo.clone_shallow(3);
    clone.git(&["cat-file", "-e", &built]);
    let run = check(&clone, &["--image", "worker"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "cannot list the commits since `{}` that make the image stale: repository `",
            &built[..7]
        )) && run.stderr.contains(
            "is a shallow clone and the history it needs is not fetched; fetch it with \
             `git fetch --unshallow` (or `--deepen=<n>`), or set `fetch-depth: 0` on \
             `actions/checkout`"
        ),
        "{run:?}"
    );
    let run = check(&repo.clone_shallow(50), &["--image", "worker"]);
    assert_eq!(run.code, 1, "{run:?}");
    let worker = run.image("worker");
    let commits: Vec<&str> = worker["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap())
        .collect();
    assert!(commits.contains(&"feat(worker): m1"), "{commits:?}");
}

/// A stale file whose name is not UTF-8 was printed with U+FFFD; plain
/// output now quotes it as git does, and JSON adds its exact bytes.
#[test]
fn a_file_name_that_is_not_utf8_is_shown_exactly() {
    use std::os::unix::ffi::OsStrExt as _;
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    push_image(&host, "demo/worker", "main", Some(&built));
    repo.write(std::ffi::OsStr::from_bytes(b"worker/bad\xff\nname.rs"), "x");
    repo.commit("feat(worker): odd name");
    let plain = run_in(repo.path(), &["--image", "worker"]);
    assert_eq!(plain.code, 1, "{plain:?}");
    assert!(
        plain
            .stdout
            .contains("    A \"worker/bad\\377\\nname.rs\"\n"),
        "{plain:?}"
    );
    let run = check(&repo, &["--image", "worker"]);
    let bytes: Vec<u8> = run.image("worker")["files"][0]["path_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
        .collect();
    assert_eq!(bytes, b"worker/bad\xff\nname.rs");
}

/// A revision label is text from a published image: one holding a newline
/// and `::error::`, a CR, or ESC sequences is shown escaped in the verdict
/// line, so it can neither forge a workflow command nor rewrite the
/// terminal (docs/errors.md, "Text from outside"); JSON keeps it exact.
#[test]
fn a_forged_revision_label_is_shown_escaped() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    // JSON escapes, as the label is written into the config blob.
    push_image(
        &host,
        "demo/app",
        "main",
        Some("x\\n::error::forged\\r::add-mask::y\\u001b[2J"),
    );
    let plain = run_in(repo.path(), &["--color", "always"]);
    assert_eq!(plain.code, 1, "{plain:?}");
    for line in plain.stdout.split(['\n', '\r']) {
        assert!(
            !line.trim_start().starts_with("::"),
            "a forged workflow command in {plain:?}"
        );
    }
    assert!(
        plain.stdout.contains(
            "revision label `x\\n::error::forged\\r::add-mask::y\\u{1b}[2J` is not a full commit sha: rebuild it"
        ),
        "{plain:?}"
    );
    let without_colour = plain
        .stdout
        .replace("\u{1b}[32m", "")
        .replace("\u{1b}[33m", "")
        .replace("\u{1b}[1;31m", "")
        .replace("\u{1b}[0m", "");
    assert!(!without_colour.contains('\u{1b}'), "{plain:?}");
    let json = check(&repo, &[]);
    assert_eq!(
        json.image("app")["value"],
        "x\n::error::forged\r::add-mask::y\u{1b}[2J"
    );
}

#[test]
fn an_awkward_default_branch_is_looked_up_by_the_tag_img_tag_computes() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = GitRepo::new();
    repo.write(
        "slipway.toml",
        format!(
            "[project]\nregistry = \"{host}/demo\"\ndefault_branch = \"release/+2024\"\n\n\
             [tags]\nrules = [\"type=ref,event=branch\", \"type=raw,value=latest\"]\n\n\
             [images.app]\npaths = [\"app/**\"]\n"
        ),
    );
    repo.write("app/main.rs", "fn main() {}\n");
    repo.commit("initial");
    // `img-tag compute --ref refs/heads/release/+2024` gives `release-2024`
    // (tools/img-tag/tests/compute.rs), as metadata-action does: a run of
    // characters a tag can't hold becomes one `-`.
    let run = check(&repo, &[]);
    assert_eq!(
        run.image("app")["reference"],
        format!("{host}/demo/app:release-2024"),
        "{run:?}"
    );
    assert_eq!(run.statuses(), pairs(&[("app", "missing")]));
}
