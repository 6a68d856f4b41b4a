//! `image-stale-check` when the registry misbehaves: answering 429 before
//! it serves, refusing connections, a name that does not resolve, and a
//! registry that accepts connections but never answers. The check must
//! ride out the first, and fail the others in bounded time with an error
//! naming the registry's host and port (exit 3; under `--hook`, a warning
//! and exit 0).

mod common;

use std::time::Duration;

use common::{Run, project, push_image};
use slipway_testbed::UNRESOLVABLE_REGISTRY as UNRESOLVABLE;
use slipway_testbed::git::GitRepo;
use slipway_testbed::{Fault, HttpFault, Mode, Registry, TcpProxy};

/// No fault may make the check hang: each run must end within this.
const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn a_registry_answering_429_is_waited_for_and_the_check_succeeds() {
    let registry = Registry::start();
    let front = HttpFault::start(
        registry.addr(),
        vec![
            Fault::new("/v2/demo/app/manifests/main", 2, 429)
                .method("HEAD")
                .header("Retry-After", "1"),
        ],
    );
    let repo = project(&front.host());
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(
            &registry.host(),
            &format!("demo/{image}"),
            "main",
            Some(&built),
        );
    }
    let run = run_bounded(&repo, &["--format", "json", "--no-cache"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.image("app")["status"], "fresh", "{run:?}");
    let heads = front.seen_matching("HEAD", "/v2/demo/app/manifests/main");
    let faulted: Vec<Option<u16>> = heads.iter().map(|s| s.faulted).collect();
    assert_eq!(faulted, [Some(429), Some(429), None], "it really retried");
    for pair in heads.windows(2) {
        // `Retry-After: 1` is honoured: never sooner (a lower bound only).
        assert!(
            pair[1].at - pair[0].at >= Duration::from_secs(1),
            "retried after {:?}",
            pair[1].at - pair[0].at
        );
    }
}

#[test]
fn a_refused_connection_fails_the_check_naming_the_host_and_port() {
    let host = format!("127.0.0.1:{}", slipway_testbed::free_port());
    let repo = project(&host);
    let run = run_bounded(&repo, &["--format", "json", "--timeout", "5s"]);
    assert_eq!(run.code, 3, "{run:?}");
    let error = run.image("app")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.starts_with(&format!(
            "cannot read the labels of `{host}/demo/app:main`: cannot reach `{host}` for `HEAD /v2/demo/app/manifests/main`"
        )),
        "{run:?}"
    );
    assert!(error.contains("Connection refused"), "{run:?}");

    let hook = run_bounded(&repo, &["--hook"]);
    assert_eq!(hook.code, 0, "a hook never blocks the push: {hook:?}");
    assert!(
        hook.stdout.contains("could not check 3 of 3 image(s)"),
        "{hook:?}"
    );
}

#[test]
fn an_unresolvable_registry_fails_the_check_naming_the_host_and_port() {
    let repo = project(UNRESOLVABLE);
    let run = run_bounded(&repo, &["--format", "json", "--timeout", "5s"]);
    assert_eq!(run.code, 3, "{run:?}");
    let error = run.image("app")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(&format!("cannot reach `{UNRESOLVABLE}`")),
        "{run:?}"
    );
    assert!(error.contains("dns"), "{run:?}");
}

#[test]
fn a_registry_that_never_answers_fails_the_check_within_its_timeout() {
    let registry = Registry::start();
    let proxy = TcpProxy::start(registry.addr());
    // Connections are accepted, then nothing comes back for a minute.
    proxy.set_mode(Mode::Delay(Duration::from_secs(60)));
    let host = proxy.addr().to_string();
    let repo = project(&host);
    let run = run_bounded(&repo, &["--format", "json", "--timeout", "2s"]);
    assert_eq!(run.code, 3, "{run:?}");
    let error = run.image("app")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(&format!("`{host}/demo/app:main`")),
        "the error names the registry's host:port: {run:?}"
    );
}

/// Runs the check in `repo` (as `common::run_in` does), failing the test
/// if it takes longer than [`DEADLINE`] (the builder kills it and fails
/// with what it printed so far).
fn run_bounded(repo: &GitRepo, args: &[&str]) -> Run {
    common::command(repo.path(), args, &[])
        .timeout(DEADLINE)
        .run()
        .into()
}
