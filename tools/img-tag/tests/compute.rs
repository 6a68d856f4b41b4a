//! `img-tag compute` end to end: GitHub event payloads, git fallback, outputs.

mod common;

use common::{img_tag, stderr, stdout};
use slipway_testbed::git::GitRepo;

const SHA: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";

fn payload(dir: &std::path::Path, json: &str) -> String {
    let path = dir.join("event.json");
    fs_err::write(&path, json).expect("payload is written");
    path.display().to_string()
}

#[test]
fn a_tag_push_reads_the_event_and_payload_as_metadata_action_does() {
    let dir = tempfile::tempdir().unwrap();
    let event = payload(
        dir.path(),
        r#"{"repository":{"name":"app","description":"The app","html_url":"https://github.com/o/app","default_branch":"main","license":{"spdx_id":"MIT"}}}"#,
    );
    let output = img_tag(
        dir.path(),
        &[
            "compute",
            "--format",
            "json",
            "--image",
            "ghcr.io/o/app",
            "--tag",
            "type=semver,pattern={{version}}",
            "--tag",
            "type=semver,pattern={{major}}.{{minor}}",
            "--tag",
            "type=sha",
        ],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_SHA", SHA),
            ("GITHUB_EVENT_PATH", &event),
            ("SOURCE_DATE_EPOCH", "1578616200"),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "tags": ["ghcr.io/o/app:1.2.3", "ghcr.io/o/app:1.2", "ghcr.io/o/app:sha-860c190", "ghcr.io/o/app:latest"],
            "tag_names": ["1.2.3", "1.2", "sha-860c190", "latest"],
            "annotations": [
                "manifest:org.opencontainers.image.created=2020-01-10T00:30:00.000Z",
                "manifest:org.opencontainers.image.description=The app",
                "manifest:org.opencontainers.image.licenses=MIT",
                format!("manifest:org.opencontainers.image.revision={SHA}"),
                "manifest:org.opencontainers.image.source=https://github.com/o/app",
                "manifest:org.opencontainers.image.title=app",
                "manifest:org.opencontainers.image.url=https://github.com/o/app",
                "manifest:org.opencontainers.image.version=1.2.3"
            ],
            "labels": {
                "org.opencontainers.image.created": "2020-01-10T00:30:00.000Z",
                "org.opencontainers.image.description": "The app",
                "org.opencontainers.image.licenses": "MIT",
                "org.opencontainers.image.revision": SHA,
                "org.opencontainers.image.source": "https://github.com/o/app",
                "org.opencontainers.image.title": "app",
                "org.opencontainers.image.url": "https://github.com/o/app",
                "org.opencontainers.image.version": "1.2.3"
            },
            "version": "1.2.3"
        })
    );
}

#[test]
fn pep440_labels_and_annotations_as_metadata_action_gives_them() {
    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(
        dir.path(),
        &[
            "compute",
            "--format",
            "json",
            "--image",
            "ghcr.io/o/app",
            "--tag",
            "type=pep440,pattern={{version}}",
            "--tag",
            "type=pep440,pattern={{major}}.{{minor}}",
            "--label",
            "maintainer=CrazyMax",
            "--label",
            "org.opencontainers.image.title=MyCustomTitle",
            "--annotation",
            "org.opencontainers.image.vendor=MyCompany",
        ],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_SHA", SHA),
            ("SOURCE_DATE_EPOCH", "1578616200"),
            ("DOCKER_METADATA_ANNOTATIONS_LEVELS", "manifest,index"),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        json["tags"],
        serde_json::json!([
            "ghcr.io/o/app:1.2.3",
            "ghcr.io/o/app:1.2",
            "ghcr.io/o/app:latest"
        ])
    );
    assert_eq!(json["labels"]["maintainer"], "CrazyMax");
    assert_eq!(
        json["labels"]["org.opencontainers.image.title"],
        "MyCustomTitle"
    );
    assert_eq!(json["labels"].get("org.opencontainers.image.vendor"), None);
    let annotations: Vec<&str> = json["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(annotations.len(), 18, "{annotations:?}");
    assert!(annotations.contains(&"manifest:org.opencontainers.image.vendor=MyCompany"));
    assert!(annotations.contains(&"index:org.opencontainers.image.vendor=MyCompany"));
    assert!(annotations.contains(&"index:org.opencontainers.image.version=1.2.3"));
    assert!(!annotations.iter().any(|a| a.contains("maintainer")));
}

#[test]
fn pull_request_target_takes_the_number_from_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let event = payload(
        dir.path(),
        r#"{"number":42,"pull_request":{"base":{"ref":"main"},"head":{"sha":"1111111111111111111111111111111111111111"}}}"#,
    );
    let env = [
        ("GITHUB_EVENT_NAME", "pull_request_target"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_SHA", SHA),
        ("GITHUB_EVENT_PATH", event.as_str()),
        ("DOCKER_METADATA_PR_HEAD_SHA", "true"),
    ];
    let args = [
        "compute",
        "--tag",
        "type=ref,event=pr",
        "--tag",
        "type=sha",
        "--tag",
        "type=raw,value=to-{{base_ref}}",
    ];
    let output = img_tag(dir.path(), &args, &env, None);
    assert_eq!(
        stdout(&output),
        "pr-42\nto-main\nsha-1111111\n",
        "{}",
        stderr(&output)
    );
    // A flag overrides what the environment says.
    let output = img_tag(
        dir.path(),
        &[&args[..], &["--pr-number", "7", "--sha", SHA]].concat(),
        &env,
        None,
    );
    assert_eq!(
        stdout(&output),
        "pr-7\nto-main\nsha-860c190\n",
        "{}",
        stderr(&output)
    );
}

#[test]
fn without_ci_the_facts_come_from_git() {
    let repo = GitRepo::new();
    repo.write("a.txt", "a");
    let sha = repo.commit("feat: first");
    repo.checkout_new("feature/Login");
    let output = img_tag(
        repo.path(),
        &[
            "compute",
            "--tag",
            "type=ref,event=branch",
            "--tag",
            "type=sha",
            "--tag",
            "type=edge,branch=main",
        ],
        &[],
        None,
    );
    assert_eq!(
        stdout(&output),
        format!("feature-Login\nsha-{}\n", &sha[..7]),
        "{}",
        stderr(&output)
    );

    repo.checkout("main");
    let output = img_tag(
        repo.path(),
        &[
            "compute",
            "--tag",
            "type=sha",
            "--flavor",
            "latest=default-branch",
        ],
        &[],
        None,
    );
    assert_eq!(
        stdout(&output),
        format!("sha-{}\nlatest\n", &sha[..7]),
        "{}",
        stderr(&output)
    );

    repo.tag("v2.0.0");
    repo.checkout(&sha);
    let output = img_tag(
        repo.path(),
        &["compute", "--tag", "type=semver,pattern={{major}}"],
        &[],
        None,
    );
    assert_eq!(stdout(&output), "2\nlatest\n", "{}", stderr(&output));
}

#[test]
fn rules_come_from_slipway_toml_when_no_flag_is_given() {
    let repo = GitRepo::new();
    repo.write(
        "slipway.toml",
        "[project]\nname = \"demo\"\ndefault_branch = \"main\"\n\n[tags]\nrules = [\"type=raw,value=from-config\", \"type=edge\"]\nflavor = [\"suffix=-x\"]\n",
    );
    repo.commit("chore: config");
    let output = img_tag(repo.path(), &["compute"], &[], None);
    assert_eq!(
        stdout(&output),
        "edge-x\nfrom-config-x\n",
        "{}",
        stderr(&output)
    );
    let output = img_tag(
        repo.path(),
        &["compute", "--tag", "type=raw,value=flag"],
        &[],
        None,
    );
    assert_eq!(stdout(&output), "flag-x\n", "{}", stderr(&output));
}

#[test]
fn github_format_writes_the_step_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("github_output");
    let output = img_tag(
        dir.path(),
        &[
            "compute",
            "--format",
            "github",
            "--tag",
            "type=raw,value=a",
            "--tag",
            "type=raw,value=b",
        ],
        &[
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
            ("GITHUB_SHA", SHA),
            ("GITHUB_REF", "refs/heads/main"),
            ("SOURCE_DATE_EPOCH", "0"),
        ],
        None,
    );
    assert_eq!(stdout(&output), "a\nb\n", "{}", stderr(&output));
    let written = fs_err::read_to_string(&outputs).unwrap();
    assert!(written.starts_with("tags<<ghadelimiter_"), "{written}");
    assert!(written.contains("\na\nb\nghadelimiter_"), "{written}");
    assert!(
        written.contains("org.opencontainers.image.created=1970-01-01T00:00:00.000Z"),
        "{written}"
    );
    assert!(written.contains("version=a\n"), "{written}");
    assert!(
        written.contains("json={\"tags\":[\"a\",\"b\"]"),
        "{written}"
    );
}

#[test]
fn bad_input_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(
        dir.path(),
        &["compute", "--tag", "type=ref,evnt=branch", "--sha", SHA],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: invalid `--tag`: unknown tag rule attribute `evnt` in `type=ref,evnt=branch` — did you mean `event`?; valid attributes: type, enable, priority, prefix, suffix, event\n"
    );
    let output = img_tag(
        dir.path(),
        &["compute", "--flavor", "latest=yes", "--sha", SHA],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    let output = img_tag(dir.path(), &["compute", "--sha", "xyz"], &[], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: invalid commit sha `xyz`: expected 7 to 40 hexadecimal digits\n"
    );
}

#[test]
fn help_is_the_manual() {
    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(dir.path(), &["--help"], &[], None);
    insta::assert_snapshot!("help", stdout(&output));
    let output = img_tag(dir.path(), &["compute", "--help"], &[], None);
    insta::assert_snapshot!("compute_help", stdout(&output));
    let output = img_tag(dir.path(), &["next-version", "--help"], &[], None);
    insta::assert_snapshot!("next_version_help", stdout(&output));
}

#[test]
fn gitlab_pipelines_get_the_tags_of_their_branch_and_merge_request() {
    let repo = GitRepo::new();
    repo.write("a.txt", "a\n");
    let head = repo.commit("initial");
    // GitLab's runner checks out the commit: HEAD is detached.
    repo.checkout(&head);
    let common = [
        ("GITLAB_CI", "true"),
        ("CI", "true"),
        ("CI_COMMIT_SHA", head.as_str()),
        ("CI_DEFAULT_BRANCH", "main"),
        ("CI_PROJECT_PATH", "group/app"),
        ("SOURCE_DATE_EPOCH", "0"),
    ];
    let compute = |env: &[(&str, &str)]| {
        let env: Vec<(&str, &str)> = common.iter().chain(env).copied().collect();
        let output = img_tag(
            repo.path(),
            &[
                "compute",
                "--tag",
                "type=ref,event=branch",
                "--tag",
                "type=ref,event=pr",
                "--tag",
                "type=sha",
            ],
            &env,
            None,
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stdout(&output)
    };
    let short = &head[..7];
    let branch = compute(&[
        ("CI_PIPELINE_SOURCE", "push"),
        ("CI_COMMIT_BRANCH", "feature/login"),
        ("CI_COMMIT_REF_NAME", "feature/login"),
        (
            "CI_COMMIT_BEFORE_SHA",
            "0000000000000000000000000000000000000000",
        ),
    ]);
    assert_eq!(branch, format!("feature-login\nsha-{short}\n"));
    let merge_request = compute(&[
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
        ("CI_MERGE_REQUEST_IID", "5"),
        ("CI_MERGE_REQUEST_REF_PATH", "refs/merge-requests/5/head"),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature/login"),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ("CI_COMMIT_REF_NAME", "feature/login"),
    ]);
    assert_eq!(merge_request, format!("pr-5\nsha-{short}\n"));
}

#[test]
fn an_awkward_branch_gets_the_tag_image_stale_check_looks_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(
        dir.path(),
        &[
            "compute",
            "--ref",
            "refs/heads/release/+2024",
            "--sha",
            SHA,
            "--tag",
            "type=ref,event=branch",
        ],
        &[("SOURCE_DATE_EPOCH", "0")],
        None,
    );
    // The same tag image-stale-check looks up for a default branch
    // `release/+2024` (tools/image-stale-check/tests/check.rs).
    assert_eq!(stdout(&output), "release-2024\n", "{}", stderr(&output));
}

#[test]
fn jenkins_buildkite_and_circleci_builds_get_their_branch_and_pr_tags() {
    let repo = GitRepo::new();
    repo.write("a.txt", "a\n");
    let head = repo.commit("initial");
    repo.checkout(&head);
    let compute = |env: &[(&str, &str)]| {
        let env: Vec<(&str, &str)> = [("SOURCE_DATE_EPOCH", "0")]
            .iter()
            .chain(env)
            .copied()
            .collect();
        let output = img_tag(
            repo.path(),
            &[
                "compute",
                "--tag",
                "type=ref,event=branch",
                "--tag",
                "type=ref,event=pr",
                "--tag",
                "type=ref,event=tag",
                "--tag",
                "type=sha",
            ],
            &env,
            None,
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stdout(&output)
    };
    let short = &head[..7];
    // A Jenkins multibranch build of `main`.
    let jenkins = compute(&[
        ("JENKINS_URL", "https://jenkins.example.com/"),
        ("GIT_COMMIT", head.as_str()),
        ("GIT_BRANCH", "origin/main"),
        ("BRANCH_NAME", "main"),
    ]);
    assert_eq!(jenkins, format!("main\nsha-{short}\n"));
    let jenkins_pr = compute(&[
        ("JENKINS_URL", "https://jenkins.example.com/"),
        ("GIT_COMMIT", head.as_str()),
        ("BRANCH_NAME", "PR-7"),
        ("CHANGE_ID", "7"),
        ("CHANGE_TARGET", "main"),
        ("CHANGE_BRANCH", "feature"),
    ]);
    assert_eq!(jenkins_pr, format!("pr-7\nsha-{short}\n"));
    // A Buildkite pull request build.
    let buildkite = compute(&[
        ("BUILDKITE", "true"),
        ("BUILDKITE_SOURCE", "webhook"),
        ("BUILDKITE_COMMIT", head.as_str()),
        ("BUILDKITE_BRANCH", "feature"),
        ("BUILDKITE_PULL_REQUEST", "12"),
        ("BUILDKITE_PULL_REQUEST_BASE_BRANCH", "main"),
    ]);
    assert_eq!(buildkite, format!("pr-12\nsha-{short}\n"));
    // A CircleCI tag build.
    let circleci = compute(&[
        ("CIRCLECI", "true"),
        ("CIRCLE_SHA1", head.as_str()),
        ("CIRCLE_TAG", "v1.2.3"),
    ]);
    // `latest` follows a version tag, as metadata-action's `latest=auto`.
    assert_eq!(circleci, format!("v1.2.3\nsha-{short}\nlatest\n"));
}

#[test]
fn version_prints_the_package_version_and_the_commit() {
    slipway_testbed::cmd::Cmd::new(env!("CARGO_BIN_EXE_img-tag"))
        .arg("--version")
        .run()
        .assert(
            0,
            &slipway_testbed::version_line("img-tag", env!("CARGO_PKG_VERSION")),
            "",
        );
}
