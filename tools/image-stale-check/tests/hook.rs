//! The installed pre-push hook, run by a real `git push` to a local bare
//! remote: it warns about stale images and lets the push through, chains
//! with an existing hook (which still reads the pushed refs), and
//! re-installing changes nothing.

mod common;

use common::{project, push_image, run_in};
use slipway_testbed::Registry;
use slipway_testbed::cmd::Cmd;
use slipway_testbed::git::GitRepo;

/// `git push origin main` from `repo` through the test bed's builder (so
/// the hook, and the binary it runs, see no variable of the runner);
/// returns `(success, stderr)`.
fn push(repo: &GitRepo) -> (bool, String) {
    let git = slipway_testbed::require("git", "git");
    let output = Cmd::new(git)
        .current_dir(repo.path())
        .args(["push", "origin", "main"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "error")
        .run();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_real_push_warns_about_stale_images_and_goes_through() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "main", Some(&built));
    }
    let remote = repo.bare_clone();
    repo.git(&[
        "remote",
        "add",
        "origin",
        &remote.path().display().to_string(),
    ]);
    // An existing hook that records what git passes on stdin.
    let seen = repo.path().join(".git/seen-refs");
    let hook_path = repo.path().join(".git/hooks/pre-push");
    fs_err::create_dir_all(hook_path.parent().unwrap()).unwrap();
    fs_err::write(
        &hook_path,
        format!("#!/bin/sh\ncat > '{}'\n", seen.display()),
    )
    .unwrap();

    let install = run_in(repo.path(), &["install-hook"]);
    assert_eq!(install.code, 0, "{install:?}");
    assert!(
        install.stdout.starts_with("updated the pre-push hook `")
            && install
                .stdout
                .ends_with("(the existing hook's lines are kept)\n"),
        "{install:?}"
    );
    let again = run_in(repo.path(), &["install-hook"]);
    assert!(
        again.stdout.starts_with("unchanged the pre-push hook"),
        "{again:?}"
    );

    repo.write("app/main.rs", "fn main() { changed() }\n");
    let head = repo.commit("feat(app): change");
    let (ok, stderr) = push(&repo);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("1 of 3 image(s) are stale, missing or unknown at")
            && stderr.contains("; the push goes on"),
        "{stderr}"
    );
    assert!(stderr.contains("    M app/main.rs"), "{stderr}");
    assert_eq!(remote.git(&["rev-parse", "main"]), head);
    // The existing hook still got the refs line.
    let seen = fs_err::read_to_string(&seen).unwrap();
    assert!(
        seen.starts_with(&format!("refs/heads/main {head} refs/heads/main ")),
        "{seen}"
    );
}

#[test]
fn a_strict_hook_refuses_a_push_of_stale_images() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "main", Some(&built));
    }
    let remote = repo.bare_clone();
    repo.git(&[
        "remote",
        "add",
        "origin",
        &remote.path().display().to_string(),
    ]);
    let install = run_in(repo.path(), &["install-hook", "--strict"]);
    assert!(
        install.stdout.starts_with("installed the pre-push hook `"),
        "{install:?}"
    );

    // Fresh: the push goes through.
    repo.write("README.md", "docs\n");
    let docs = repo.commit("docs: readme");
    let (ok, stderr) = push(&repo);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("all 3 image(s) are fresh at"), "{stderr}");
    assert_eq!(remote.git(&["rev-parse", "main"]), docs);

    repo.write("worker/main.rs", "changed\n");
    repo.commit("feat(worker): change");
    let (ok, stderr) = push(&repo);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("; refusing the push"), "{stderr}");
    assert_eq!(remote.git(&["rev-parse", "main"]), docs);
}

#[test]
fn the_check_and_the_hook_look_up_the_tag_the_team_publishes() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    // The team publishes `latest` (on the default branch) and sha tags, no
    // branch tag: the check derives `latest` from the rules.
    let config = fs_err::read_to_string(repo.path().join("slipway.toml")).unwrap();
    repo.write(
        "slipway.toml",
        config + "\n[tags]\nrules = [\"type=sha\", \"type=raw,value=latest,enable={{is_default_branch}}\"]\n",
    );
    let built = repo.commit("tags: latest and sha");
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "latest", Some(&built));
    }
    let check = run_in(repo.path(), &["--format", "json"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert_eq!(check.json()["tag"], "latest");

    // `[stale] tag` names it; `install-hook --tag` overrides it for the hook.
    let config = fs_err::read_to_string(repo.path().join("slipway.toml")).unwrap();
    repo.write("slipway.toml", config + "\n[stale]\ntag = \"prod\"\n");
    let built = repo.commit("stale: prod");
    let check = run_in(repo.path(), &["--format", "json"]);
    assert_eq!(check.json()["tag"], "prod", "{check:?}");
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "stable", Some(&built));
    }
    let remote = repo.bare_clone();
    repo.git(&[
        "remote",
        "add",
        "origin",
        &remote.path().display().to_string(),
    ]);
    let install = run_in(
        repo.path(),
        &["install-hook", "--strict", "--tag", "stable"],
    );
    assert_eq!(install.code, 0, "{install:?}");
    repo.write("README.md", "docs\n");
    repo.commit("docs: readme");
    // `:prod` was never pushed: a strict hook looking it up would refuse.
    let (ok, stderr) = push(&repo);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("all 3 image(s) are fresh at"), "{stderr}");
}
