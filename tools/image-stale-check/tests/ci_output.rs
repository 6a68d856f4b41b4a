//! Each CI's own output from the real `image-stale-check` against a real
//! registry: a stale image is a `::warning` annotation under GitHub
//! Actions (and nothing more elsewhere), and `--format dotenv` is what
//! GitLab's dotenv report reads back. The environment is cleared: only
//! the variables each test names reach the binary.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{BIN, Run, project, push_image};
use slipway_testbed::Registry;
use slipway_testbed::cmd::Cmd;
use slipway_testbed::git::GitRepo;

/// Runs the binary in `dir` with an empty docker config and `env` (the
/// test bed's `Cmd` clears everything else).
fn run_clean(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Cmd::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "error")
        .env("DOCKER_CONFIG", dir.join(".no-docker-config"))
        .envs(env.iter().copied())
        .run();
    Run {
        code: output.code().unwrap_or(-1),
        stdout: output.stdout_str(),
        stderr: output.stderr_str(),
    }
}

/// The project with every image published at its first commit, then a
/// commit that changes `worker/main.rs`: `worker` is stale. Returns the
/// registry guard, the repository and the first commit.
fn stale_worker() -> (Registry, GitRepo, String) {
    let registry = Registry::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(&host, &format!("demo/{image}"), "main", Some(&built));
    }
    repo.write("worker/main.rs", "fn main() { work() }\n");
    repo.commit("feat(worker): work");
    (registry, repo, built)
}

#[test]
fn a_stale_image_is_a_warning_annotation_under_github_actions() {
    let (_registry, repo, built) = stale_worker();
    let run = run_clean(repo.path(), &[], &[("GITHUB_ACTIONS", "true")]);
    assert_eq!(run.code, 1, "{run:?}");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("::warning"))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "::warning title=image-stale-check::`worker` is stale: built from `{}`; 1 file(s) it is built from changed since: worker/main.rs",
            &built[..7]
        )],
        "{run:?}"
    );

    // Outside GitHub Actions nothing is added: GitLab has no annotations.
    let run = run_clean(repo.path(), &[], &[("GITLAB_CI", "true")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(!run.stderr.contains("::warning"), "{run:?}");
}

/// GitLab's reading of a dotenv report (`Gitlab::Ci::Parsers::DotenvVariable`):
/// each line `^(.*)=(.*)$`, the name up to the last `=`, both sides
/// stripped, names of ASCII letters, digits and `_` only.
fn gitlab_dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| {
            let (name, value) = line.rsplit_once('=').expect("a `=` on every line");
            let name = name.trim();
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "GitLab refuses the name `{name}`"
            );
            (name.to_owned(), value.trim().to_owned())
        })
        .collect()
}

#[test]
fn dotenv_outputs_are_read_back_as_gitlab_reads_them() {
    let (_registry, repo, _) = stale_worker();
    let run = run_clean(
        repo.path(),
        &["--format", "dotenv"],
        &[("GITLAB_CI", "true")],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "fresh=base app\nstale=worker\nmissing=\nunknown=\nunchecked=\nall_fresh=false\n"
    );
    let variables = gitlab_dotenv(&run.stdout);
    assert_eq!(variables["fresh"], "base app");
    assert_eq!(variables["stale"], "worker");
    assert_eq!(variables["all_fresh"], "false");
    assert_eq!(variables.len(), 6);
}
