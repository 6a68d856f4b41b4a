//! Text from outside — tag names a registry lists, commit subjects — can
//! neither forge a GitHub workflow command (a line starting with `::`,
//! after any CR) nor move the terminal's cursor (ESC sequences): the human
//! output shows it escaped, exactly (docs/errors.md, "Text from outside").
//! JSON keeps the exact strings.

mod common;

use common::{img_tag, stderr, stdout};
use slipway_testbed::git::GitRepo;
use slipway_testbed::{Fault, HttpFault, Registry};

/// No line of `text`, split at LF and CR, starts (after blanks) with `::`,
/// and no ESC byte is left.
#[track_caller]
fn assert_inert(text: &str) {
    for line in text.split(['\n', '\r']) {
        assert!(
            !line.trim_start().starts_with("::"),
            "a forged workflow command in {text:?}"
        );
    }
    assert!(!text.contains('\u{1b}'), "a raw ESC in {text:?}");
}

#[test]
fn ls_shows_forged_tag_names_from_the_registry_escaped() {
    let registry = Registry::start();
    let list = r#"{"name":"team/app","tags":["::add-mask::forged","ok\r::error::x","\u001b[2Jclear","v1"]}"#;
    let front = HttpFault::start(
        registry.addr(),
        vec![Fault::new("/tags/list", 2, 200).method("GET").body(list)],
    );
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/team/app", front.host());
    let output = img_tag(dir.path(), &["ls", &image], &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert_inert(&text);
    assert_eq!(
        text,
        "\\u{1b}[2Jclear\n\\u{3a}:add-mask::forged\nok\\r::error::x\nv1\n"
    );
    let output = img_tag(dir.path(), &["ls", &image, "--format", "json"], &[], None);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["tags"],
        serde_json::json!([
            "\u{1b}[2Jclear",
            "::add-mask::forged",
            "ok\r::error::x",
            "v1"
        ])
    );
}

#[test]
fn commit_subjects_with_cr_esc_or_a_leading_colon_pair_are_shown_escaped() {
    let repo = GitRepo::new();
    repo.write("file.txt", "0");
    repo.commit("chore: init");
    repo.tag("v1.0.0");
    repo.write("file.txt", "1");
    repo.commit("feat: a\r::error::forged");
    repo.write("file.txt", "2");
    repo.commit("fix: b \u{1b}[2J\u{1b}[1;1Hclean");
    let output = img_tag(repo.path(), &["next-version", "--changelog"], &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let changelog = stdout(&output);
    assert_inert(&changelog);
    assert!(changelog.contains("- a\\r::error::forged ("), "{changelog}");
    assert!(
        changelog.contains("- b \\u{1b}[2J\\u{1b}[1;1Hclean ("),
        "{changelog}"
    );

    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(
        dir.path(),
        &["check-commit", "-"],
        &[],
        Some("::error::forged\r\u{1b}[2K: x\n"),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert_inert(&text);
    assert!(text.starts_with("invalid: "), "{text}");
    assert!(text.contains("\\r\\u{1b}[2K"), "{text}");
}
