//! Tag rules, flavor and images lines (img-tag `--tag`/`--flavor`/`--images`,
//! slipway.toml `[tags]`) and their `{{…}}` expressions: parsing and
//! computing never panic, and every computed tag is one a registry accepts.
//!
//! Input: one line each; a line starting `flavor:` is a flavor line,
//! `image:` an images line, `ref:` the git ref, `event:` the event name;
//! any other line is a tag rule.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use slipway_core::image_ref::Tag;
use slipway_tags::{Flavor, ImageSpec, RepoInfo, TagContext, TagRule};

fuzz_target!(|text: &str| {
    let mut rules = Vec::new();
    let mut flavor = Vec::new();
    let mut images = Vec::new();
    let mut ctx = context();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("flavor:") {
            flavor.push(rest);
        } else if let Some(rest) = line.strip_prefix("image:") {
            images.push(rest);
        } else if let Some(rest) = line.strip_prefix("ref:") {
            rest.clone_into(&mut ctx.git_ref);
        } else if let Some(rest) = line.strip_prefix("event:") {
            rest.clone_into(&mut ctx.event_name);
        } else {
            rules.push(line);
        }
    }
    let mut parsed = Vec::new();
    for line in &rules {
        match TagRule::parse(line) {
            Ok(rule) => parsed.push(rule),
            Err(error) => assert!(!error.to_string().is_empty()),
        }
    }
    let Ok(flavor) = Flavor::parse(&flavor) else {
        return;
    };
    let Ok(images) = ImageSpec::parse_all(&images) else {
        return;
    };
    let Ok(metadata) = slipway_tags::compute(&parsed, &flavor, &images, &ctx) else {
        return;
    };
    let image_names = images.iter().any(|image| image.enable);
    for tag in &metadata.tags {
        // `image:tag` when images are given (the image may hold a port's
        // `:`, a tag never does), else the bare tag.
        let bare = if image_names {
            tag.rsplit_once(':')
                .map(|(_, bare)| bare)
                .unwrap_or_else(|| panic!("`{tag}` has no `:` although images are given"))
        } else {
            tag
        };
        if let Err(error) = Tag::from_str(bare) {
            panic!("computed tag `{bare}` is not a valid tag: {error}");
        }
    }
    if let Some(version) = &metadata.version {
        assert!(
            Tag::from_str(version).is_ok(),
            "version `{version}` is not a valid tag"
        );
    }
});

/// A push to `main` with a fixed clock; the input can change ref and event.
fn context() -> TagContext {
    TagContext {
        event_name: "push".to_owned(),
        git_ref: "refs/heads/main".to_owned(),
        sha: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        default_branch: Some("main".to_owned()),
        base_ref: Some("refs/heads/main".to_owned()),
        pr_base_ref: Some("main".to_owned()),
        now: jiff::Timestamp::from_second(1_700_000_000).expect("a valid timestamp"),
        commit_date: jiff::Timestamp::from_second(1_690_000_000).expect("a valid timestamp"),
        short_sha_length: 7,
        repository: RepoInfo::default(),
    }
}
