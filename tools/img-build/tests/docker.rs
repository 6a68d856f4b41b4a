//! Real builds through a private dockerd's BuildKit (Debian's 20.10 client),
//! pushed to a real registry and checked with skopeo: labels, tags, digests,
//! the dependency handed over, secrets kept out of every output, an OCI
//! index assembled by Slipway, and a failure that skips only its dependents.

mod common;

use common::{THREE_IMAGES, check_pushed, img_build, json, project, run, skopeo_inspect, target};
use slipway_testbed::cmd::Cmd;
use slipway_testbed::{Dockerd, Registry};

fn img_build_docker(dir: &std::path::Path, dockerd: &Dockerd) -> Cmd {
    let mut command = img_build(dir);
    command
        .args([
            "--backend",
            "buildkit",
            "--network",
            "none",
            "--format",
            "json",
        ])
        .arg("--docker")
        .arg(dockerd.client_path())
        .env("DOCKER_HOST", dockerd.host())
        .env("DOCKER_CONFIG", dockerd.temp_dir().join("client"));
    command
}

#[test]
fn base_app_and_migrator_are_built_labelled_and_pushed_in_order() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let busybox = dockerd.base_image(&registry);
    let images = THREE_IMAGES.replace(
        "[images.app]\ntarget = \"app\"\n",
        "[images.app]\ntarget = \"app\"\nsecrets = [\"id=token,env=APP_TOKEN\"]\n",
    );
    let repo = project(
        &registry.host(),
        &images.replace(
            "[images.base]\ndockerfile = \"base.Dockerfile\"\n",
            &format!("[images.base]\ndockerfile = \"base.Dockerfile\"\nbuild_args = {{ BUSYBOX = \"{busybox}\" }}\n"),
        ),
        "ARG BUSYBOX\nFROM ${BUSYBOX}\nCOPY base.txt /base.txt\nRUN cat /base.txt > /copied.txt\n",
    );
    // The app stage proves the secret reached the build without showing it.
    repo.write(
        "Dockerfile",
        common::TWO_STAGES.replace(
            "COPY app.txt /app.txt\n",
            "COPY app.txt /app.txt\nRUN --mount=type=secret,id=token test -s /run/secrets/token\n",
        ),
    );
    let head = repo.commit("secret check");
    let output = run(img_build_docker(repo.path(), &dockerd)
        .args(["--all", "--push", "--jobs", "2", "--log-dir", "logs"])
        .env("APP_TOKEN", "very-secret-token-value"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{}", dockerd.log());
    assert!(
        stderr.contains("img-build: backend buildkit (--backend buildkit)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("app | "),
        "build output is streamed with a prefix:\n{stderr}"
    );
    let report = json(&output);
    assert_eq!(report["failed"], serde_json::json!([]));

    let base = check_pushed(&report, "base", &head);
    let app = check_pushed(&report, "app", &head);
    let migrator = check_pushed(&report, "migrator", &head);
    assert_eq!(app["Labels"]["com.example.team"], "web");
    // Both stages start FROM the base image just pushed: its layers come first.
    let base_layers = base["Layers"].as_array().unwrap();
    // The app stage adds a COPY and a RUN layer, the migrator a COPY layer.
    for (image, added) in [(&app, 2), (&migrator, 1)] {
        let layers = image["Layers"].as_array().unwrap();
        assert_eq!(layers[..base_layers.len()], base_layers[..]);
        assert_eq!(layers.len(), base_layers.len() + added);
    }
    let base_ref = target(&report, "base")["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let app_log = fs_err::read_to_string(repo.path().join("logs/app.log")).unwrap();
    assert!(
        app_log.contains(&format!("BASE_IMAGE={base_ref}")),
        "{app_log}"
    );

    let mut everything = String::from_utf8_lossy(&output.stdout).into_owned() + &stderr;
    for name in ["base", "app", "migrator"] {
        everything +=
            &fs_err::read_to_string(repo.path().join(format!("logs/{name}.log"))).unwrap();
    }
    assert!(!everything.contains("very-secret-token-value"));
}

#[test]
fn a_multi_platform_index_is_assembled_and_a_failure_skips_only_its_dependents() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let repo = project(
        &registry.host(),
        "[images.multi]\ndockerfile = \"base.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
         [images.broken]\ndockerfile = \"broken.Dockerfile\"\n\n\
         [images.dependent]\ndockerfile = \"base.Dockerfile\"\ndepends_on = [\"broken\"]\n",
        "FROM scratch\nCOPY base.txt /base.txt\n",
    );
    repo.write("broken.Dockerfile", "FROM scratch\nCOPY missing.txt /\n");
    repo.commit("broken");
    let output = run(img_build_docker(repo.path(), &dockerd).args([
        "--all",
        "--push",
        "--jobs",
        "2",
        "--log-dir",
        "logs",
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let report = json(&output);
    assert_eq!(report["failed"], serde_json::json!(["broken", "dependent"]));
    let broken = target(&report, "broken");
    assert_eq!(broken["status"], "failed");
    assert_eq!(
        broken["log"],
        repo.path().join("logs/broken.log").display().to_string()
    );
    let broken_log = fs_err::read_to_string(repo.path().join("logs/broken.log")).unwrap();
    assert!(broken_log.contains("missing.txt"), "{broken_log}");
    let dependent = target(&report, "dependent");
    assert_eq!(dependent["status"], "skipped");
    assert_eq!(dependent["error"], "dependency `broken` was not built");

    let multi = target(&report, "multi");
    assert_eq!(multi["status"], "built", "{stderr}");
    assert_eq!(
        multi["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    let digest = multi["digest"].as_str().unwrap();
    for tag in multi["tags"].as_array().unwrap() {
        common::check_index(
            tag.as_str().unwrap(),
            digest,
            &["linux/amd64", "linux/arm64"],
        );
    }
    // Each entry is the image built for that platform, labelled.
    let main = multi["tags"][0].as_str().unwrap();
    let arm = skopeo_inspect(&format!("{main}-linux-arm64"), false);
    assert_eq!(arm["Architecture"], "arm64");
    assert_eq!(
        arm["Labels"]["org.opencontainers.image.revision"],
        repo.head()
    );
}

#[test]
fn a_failed_build_says_why_in_its_error_and_keeps_its_logs() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let busybox = dockerd.base_image(&registry);
    let repo = project(
        &registry.host(),
        &format!(
            "[images.fails]\ndockerfile = \"base.Dockerfile\"\nbuild_args = {{ BUSYBOX = \"{busybox}\" }}\nsecrets = [\"id=token,env=APP_TOKEN\"]\n"
        ),
        "ARG BUSYBOX\nFROM ${BUSYBOX}\nRUN --mount=type=secret,id=token echo \"token is $(cat /run/secrets/token)\" && echo 'migrations: table t is missing' && exit 7\n",
    );
    let output = run(img_build_docker(repo.path(), &dockerd)
        .args(["--all", "--push", "--force-tags"])
        .env("APP_TOKEN", "very-secret-token-value"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let report = json(&output);
    let error = target(&report, "fails")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    // The builder's own last words, not only "exited with 1".
    assert!(
        error.starts_with("`build` failed: ") && error.contains("; the log ends with:\n"),
        "{error}"
    );
    assert!(error.contains("migrations: table t is missing"), "{error}");
    assert!(error.contains("token is ***"), "{error}");
    assert!(!error.contains("very-secret-token-value"), "{error}");
    // The default log dir is kept and named.
    let log_dir = report["log_dir"].as_str().unwrap();
    assert!(
        std::path::Path::new(log_dir).join("fails.log").is_file(),
        "{log_dir}"
    );
    assert!(
        stderr.contains(&format!(
            "img-build: the build logs are kept in `{log_dir}`"
        )),
        "{stderr}"
    );
    fs_err::remove_dir_all(log_dir).unwrap();

    // After a success, the default log dir is gone.
    repo.write(
        "base.Dockerfile",
        "ARG BUSYBOX\nFROM ${BUSYBOX}\nCOPY base.txt /\n",
    );
    repo.commit("fixed");
    let output = run(img_build_docker(repo.path(), &dockerd)
        .args(["--all", "--push"])
        .env("APP_TOKEN", "very-secret-token-value"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log_dir = json(&output)["log_dir"].as_str().unwrap().to_owned();
    assert!(!std::path::Path::new(&log_dir).exists(), "{log_dir}");
}

#[test]
fn every_platform_finds_its_own_registry_cache_on_a_fresh_daemon() {
    let registry = Registry::start();
    let host = registry.host();
    // A base whose layer differs per platform, so each platform's layers
    // on top of it have their own cache keys.
    let repo = project(
        &host,
        &format!(
            "[images.base]\ndockerfile = \"base.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
             [images.multi]\ndockerfile = \"multi.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\
             build_args = {{ BASE_IMAGE = \"{host}/demo/base:main\" }}\ncache_from = [\"{host}/demo/multi:main\"]\ncache_to = [\"type=inline\"]\n"
        ),
        "FROM scratch\nARG TARGETARCH\nCOPY arch-${TARGETARCH}.txt /arch.txt\n",
    );
    repo.write("arch-amd64.txt", "amd64\n");
    repo.write("arch-arm64.txt", "arm64\n");
    repo.write(
        "multi.Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY base.txt /deps.txt\nCOPY app.txt /app.txt\n",
    );
    repo.commit("multi");
    let build = |dockerd: &Dockerd, image: &str| {
        let output = run(img_build_docker(repo.path(), dockerd).args([
            "--only",
            image,
            "--push",
            "--log-dir",
            "../logs",
        ]));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        fs_err::read_to_string(repo.path().join(format!("../logs/{image}.log"))).unwrap()
    };
    let first = Dockerd::start();
    build(&first, "base");
    let cold = build(&first, "multi");
    assert!(
        cold.contains(&format!("--cache-from {host}/demo/multi:main-linux-arm64")),
        "{cold}"
    );
    drop(first);
    // A code-only change, built on a daemon that has never seen the project:
    // both platforms take the unchanged layer from their own cache.
    repo.write("app.txt", "app, changed\n");
    repo.commit("code only");
    let warm = build(&Dockerd::start(), "multi");
    let platforms: Vec<&str> = warm.split("$ ").filter(|c| c.contains(" build ")).collect();
    assert_eq!(platforms.len(), 2, "{warm}");
    for (platform, log) in ["amd64", "arm64"].iter().zip(&platforms) {
        let deps = log
            .lines()
            .find(|l| l.contains("COPY base.txt /deps.txt"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{platform}: {log}"));
        assert!(
            log.lines().any(|l| l == format!("{deps} CACHED")),
            "{platform} misses its cache:\n{log}"
        );
    }
}
