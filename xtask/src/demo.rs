//! `cargo xtask demo`: the release chain end to end on the bundled example
//! (examples/demo) against the test bed's registry, docker engine and sshd,
//! explained step by step for a newcomer (docs/pipeline.md): release to
//! `staging`, release one change, roll back, promote to `prod`.
//!
//! Everything runs on loopback in temp dirs; the test bed's guards stop the
//! services they started (by PID) when dropped.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use slipway_core::image_ref::ImageRef;
use slipway_testbed::git::GitRepo;
use slipway_testbed::{Dockerd, Registry, Sshd};
use xshell::{Shell, cmd};

use slipway_chain::runner::{self, Outcome};
use slipway_chain::{promote, release, rollback};

use crate::{build, packages, project_root};

/// Flags of `cargo xtask demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Skip installing missing Debian packages
    #[arg(long)]
    pub(crate) no_install: bool,
}

/// The file only the `app` image's paths cover; the demo's second release changes it.
const APP_FILE: &str = "app/www/index.html";

/// `cargo xtask demo`: starts the test bed, releases examples/demo twice
/// (everything, then only `app`), rolls back, promotes to `prod`, and
/// cleans up.
pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    if !args.no_install {
        say(
            "install the Debian packages the test bed needs (docker.io, docker-registry, openssh-server, …)",
        );
        packages::ensure(sh)?;
    }
    say("start a private registry, docker engine and sshd on loopback (the \"host\" we deploy to)");
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let sshd = Sshd::start();
    let busybox = dockerd.base_image(&registry);
    eprintln!(
        "registry {}, docker engine {}, sshd {}@127.0.0.1:{}",
        registry.host(),
        dockerd.host(),
        sshd.user(),
        sshd.port()
    );
    eprintln!("base image every demo image starts from: {busybox}");

    let result = demo(sh, &registry, &dockerd, &sshd, &busybox);
    say("clean up: stop the demo's containers, the services and remove the temp dirs");
    let docker = dockerd.client_path();
    let host = dockerd.host();
    let _ = cmd!(
        sh,
        "{docker} --host {host} rm --force demo-app demo-prod-app"
    )
    .quiet()
    .ignore_stdout()
    .ignore_stderr()
    .run();
    drop(sshd);
    drop(dockerd);
    drop(registry);
    result
}

fn demo(
    sh: &Shell,
    registry: &Registry,
    dockerd: &Dockerd,
    sshd: &Sshd,
    busybox: &str,
) -> anyhow::Result<()> {
    let app_port = slipway_testbed::free_port();
    let remote_path = dockerd.temp_dir().join("srv-demo");
    let prod_port = slipway_testbed::free_port();
    let prod_path = dockerd.temp_dir().join("srv-demo-prod");
    say("copy examples/demo into a temp git repository and fill in the run-time addresses");
    let repo = GitRepo::new();
    // The registry's address is also the Dockerfiles' ARG defaults, so it
    // is replaced in every file; the rest only appear in slipway.toml.
    let replacements = [
        ("127.0.0.1:5000".to_owned(), registry.host()),
        (
            "root@127.0.0.1:2222".to_owned(),
            format!("{}@127.0.0.1:{}", sshd.user(), sshd.port()),
        ),
        (
            "\"/srv/demo\"".to_owned(),
            format!("\"{}\"", remote_path.display()),
        ),
        (
            "\"/srv/demo-prod\"".to_owned(),
            format!("\"{}\"", prod_path.display()),
        ),
        ("unix:///var/run/docker.sock".to_owned(), dockerd.host()),
        ("18080".to_owned(), app_port.to_string()),
        ("18081".to_owned(), prod_port.to_string()),
    ];
    let example = project_root().join("examples/demo");
    let toml = fs_err::read_to_string(example.join("slipway.toml"))?;
    for (from, to) in &replacements {
        if !toml.contains(from.as_str()) {
            bail!(
                "examples/demo/slipway.toml no longer holds `{from}`, which the demo replaces with `{to}`"
            );
        }
    }
    copy_tree(&example, repo.path(), Path::new(""), &replacements)?;
    let generated = fs_err::read_to_string(repo.path().join("slipway.toml"))?;
    if !generated.contains(busybox) {
        bail!("the generated slipway.toml does not name the base image `{busybox}`");
    }
    let first = repo.commit("demo: first release");
    eprintln!("{}: commit {first}", repo.path().display());

    let _docker = sh.push_env("DOCKER", dockerd.client_path());
    let _host = sh.push_env("DOCKER_HOST", dockerd.host());
    let _config = sh.push_env("DOCKER_CONFIG", dockerd.temp_dir().join("client"));
    let _network = sh.push_env("SLIPWAY_NETWORK", "none");
    let connection = connection(&repo, sshd);
    let release_args = |all: bool, since: Option<String>| release::Args {
        env: "staging".to_owned(),
        all,
        since,
        dry_run: false,
        connection: connection.clone(),
    };
    let ready_url = format!("http://127.0.0.1:{app_port}/api/ready");
    let ready_wait = bin("ready-wait");

    say(
        "release 1: `cargo xtask release --env staging --all` builds base, app and migrator, and deploys",
    );
    let outcome = release::release(sh, &build::tools, &release_args(true, None))
        .context("the first release failed")?;
    expect_built(&outcome, &["app", "base", "migrator"])?;
    expect_page(app_port, "version 1")?;
    say(&format!(
        "ready-wait {ready_url}: the app answers once its migration ran"
    ));
    cmd!(sh, "{ready_wait} {ready_url} --timeout 30s")
        .run()
        .context("the app does not answer after release 1")?;

    say(&format!(
        "change {APP_FILE} (only the app's paths cover it) and commit"
    ));
    let page = fs_err::read_to_string(repo.path().join(APP_FILE))?;
    repo.write(APP_FILE, page.replace("version 1", "version 2"));
    let second = repo.commit("app: version 2 of the page");
    eprintln!("commit {second}");

    say(&format!(
        "release 2: `cargo xtask release --env staging --since {}` rebuilds only what changed",
        first.get(..7).unwrap_or(&first)
    ));
    let outcome = release::release(sh, &build::tools, &release_args(false, Some(first.clone())))
        .context("the second release failed")?;
    expect_built(&outcome, &["app"])?;
    expect_page(app_port, "version 2")?;
    eprintln!("only `app` was rebuilt; migrator kept its deployed reference");
    cmd!(sh, "{ready_wait} {ready_url} --timeout 30s")
        .run()
        .context("the app does not answer after release 2")?;

    say(
        "cargo xtask rollback --env staging: back to the previous good release (release 1's images)",
    );
    let rollback_args = rollback::Args {
        env: "staging".to_owned(),
        to: None,
        connection: connection.clone(),
    };
    rollback::rollback(sh, &build::tools, &rollback_args).context("the rollback failed")?;
    cmd!(sh, "{ready_wait} {ready_url} --timeout 30s")
        .run()
        .context("the app does not answer after the rollback")?;
    expect_page(app_port, "version 1")?;

    promote_to_prod(sh, dockerd, sshd, &repo, &first, prod_port)?;
    say(
        "demo passed: built everything, rebuilt only `app`, rolled back, promoted the exact digests without a build, and the app answered each time",
    );
    Ok(())
}

/// Promotes `staging` to `prod`: first at HEAD, which the gate must refuse
/// (`staging` runs release 1's `app`, older than HEAD's page), then at the first
/// commit; checks that `prod` runs exactly `staging`'s digests and that no
/// image was built.
fn promote_to_prod(
    sh: &Shell,
    dockerd: &Dockerd,
    sshd: &Sshd,
    repo: &GitRepo,
    first: &str,
    prod_port: u16,
) -> anyhow::Result<()> {
    let connection = connection(repo, sshd);
    let short = first.get(..7).unwrap_or(first);
    let promote_args = |rev: &str| promote::Args {
        from: "staging".to_owned(),
        to: "prod".to_owned(),
        rev: rev.to_owned(),
        dry_run: false,
        connection: connection.clone(),
    };
    // Both envs are read back from their hosts' release records.
    let ssh_deploy = bin("ssh-deploy");
    let _dir = sh.push_dir(repo.path());

    say("promote --from prod --to staging: refused, `prod` has no release yet");
    let mut backwards = promote_args("HEAD");
    std::mem::swap(&mut backwards.from, &mut backwards.to);
    match promote::promote(sh, &build::tools, &backwards) {
        Ok(_) => bail!("promote from `prod`, which has no release, should have been refused"),
        Err(error) if error.to_string().contains("has no good release") => {
            eprintln!("refused as expected: {error}");
        }
        Err(error) => {
            return Err(
                error.context("promote from an env without a release failed for another reason")
            );
        }
    }

    say(
        "promote --from staging --to prod: refused, since `staging` now runs release 1's app and HEAD changed its page",
    );
    match promote::promote(sh, &build::tools, &promote_args("HEAD")) {
        Ok(_) => bail!(
            "promote at HEAD should have been refused: `staging` runs an app image older than HEAD's page"
        ),
        Err(error) if format!("{error:#}").contains("image-stale-check") => {
            eprintln!("refused as expected: {error}");
        }
        Err(error) => {
            return Err(error.context("promote at HEAD failed for another reason than the gate"));
        }
    }

    say(&format!(
        "promote --from staging --to prod --rev {short}, first with --dry-run, then for real: the exact digests `staging` runs, tagged `prod`, deployed, no build"
    ));
    let docker = dockerd.client_path();
    let host = dockerd.host();
    let images = || -> anyhow::Result<Vec<String>> {
        let text = cmd!(
            sh,
            "{docker} --host {host} image ls --all --quiet --no-trunc"
        )
        .quiet()
        .read()
        .context("cannot list the docker engine's images")?;
        let mut ids: Vec<String> = text.lines().map(str::to_owned).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    };
    let before = images()?;
    let mut dry_run = promote_args(first);
    dry_run.dry_run = true;
    promote::promote(sh, &build::tools, &dry_run).context("the dry run of the promotion failed")?;
    if !runner::current_release(sh, &ssh_deploy, "prod", &connection)?.is_empty() {
        bail!("`promote --dry-run` deployed to `prod`");
    }
    let staging = runner::current_release(sh, &ssh_deploy, "staging", &connection)?;
    for reference in staging.values() {
        let repository = image_ref(reference)?.repository().clone();
        let tagged = format!("docker://{repository}:prod");
        if cmd!(sh, "skopeo inspect --tls-verify=false {tagged}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
        {
            bail!("`promote --dry-run` tagged `{repository}:prod`");
        }
    }
    eprintln!("the dry run tagged and deployed nothing");
    promote::promote(sh, &build::tools, &promote_args(first)).context("the promotion failed")?;
    if images()? != before {
        bail!("the docker engine holds new images after the promotion: something was built");
    }

    let prod = runner::current_release(sh, &ssh_deploy, "prod", &connection)?;
    if staging.is_empty() || prod != staging {
        bail!("`prod` runs {prod:?}, `staging` runs {staging:?}: they should be the same digests");
    }
    eprintln!("prod runs exactly what staging runs:");
    for (variable, reference) in &prod {
        eprintln!("  {variable}={reference}");
        // The registry (read with skopeo) has the env tag on that very digest.
        let image = image_ref(reference)?;
        let repository = image.repository();
        let digest = image
            .digest()
            .with_context(|| format!("`{reference}` is not a digest reference"))?
            .to_string();
        let tagged = format!("docker://{repository}:prod");
        let format = "{{.Digest}}";
        let found = cmd!(
            sh,
            "skopeo inspect --tls-verify=false --format {format} {tagged}"
        )
        .quiet()
        .read()
        .with_context(|| format!("skopeo cannot read `{repository}:prod`"))?;
        if found != digest {
            bail!("`{repository}:prod` is `{found}`, not the promoted `{digest}`");
        }
    }
    let ready_url = format!("http://127.0.0.1:{prod_port}/api/ready");
    let ready_wait = bin("ready-wait");
    cmd!(sh, "{ready_wait} {ready_url} --timeout 30s")
        .run()
        .context("the prod app does not answer after the promotion")?;
    expect_page(prod_port, "version 1")
}

/// `reference`, as a tool reported it, parsed.
fn image_ref(reference: &str) -> anyhow::Result<ImageRef> {
    reference
        .parse()
        .with_context(|| format!("`{reference}` is not an image reference"))
}

fn expect_built(outcome: &Outcome, expected: &[&str]) -> anyhow::Result<()> {
    eprintln!("rebuilt: [{}]", outcome.built.join(", "));
    if outcome.built != expected {
        bail!(
            "expected img-build to build [{}], it built [{}]",
            expected.join(", "),
            outcome.built.join(", ")
        );
    }
    Ok(())
}

/// Fetches the app's page and checks that it says `expected`.
fn expect_page(port: u16, expected: &str) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("cannot connect to the app on 127.0.0.1:{port}"))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let line = response
        .lines()
        .find(|l| l.contains("Hello"))
        .unwrap_or_default();
    eprintln!("GET http://127.0.0.1:{port}/index.html: {line}");
    if !response.contains(expected) {
        bail!("the app's page does not say `{expected}`: `{response}`");
    }
    Ok(())
}

/// Copies the files under `from` to `to` with each `(from, to)` text
/// replacement applied, keeping their modes.
pub(crate) fn copy_tree(
    from: &Path,
    to: &Path,
    relative: &Path,
    replacements: &[(String, String)],
) -> anyhow::Result<()> {
    for entry in fs_err::read_dir(from.join(relative))? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(from, to, &path, replacements)?;
        } else {
            let target = to.join(&path);
            if let Some(parent) = target.parent() {
                fs_err::create_dir_all(parent)?;
            }
            let source = from.join(&path);
            let mut text = fs_err::read_to_string(&source)?;
            for (old, new) in replacements {
                text = text.replace(old.as_str(), new);
            }
            fs_err::write(&target, text)?;
            fs_err::set_permissions(&target, fs_err::metadata(&source)?.permissions())?;
        }
    }
    Ok(())
}

fn bin(tool: &str) -> PathBuf {
    build::bin_dir().join(tool)
}

fn say(what: &str) {
    eprintln!("\n>>> demo: {what}");
}

/// The demo's repository and its test-bed sshd's key and known_hosts.
fn connection(repo: &GitRepo, sshd: &Sshd) -> runner::Connection {
    runner::Connection {
        repo: repo.path().to_path_buf(),
        ssh_key: Some(sshd.client_key_path()),
        known_hosts: Some(sshd.known_hosts_path()),
    }
}
