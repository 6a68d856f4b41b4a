//! slipway.toml as a user writes it: loading never panics; an error that
//! comes from the file names it and points at a line and column inside the
//! input; a file that loads has every image in its build order, after the
//! images it depends on, and its globs compile as path filters.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use slipway_config::{Config, Location};
use slipway_git::paths::FilterSet;
use slipway_git::paths::project::config_filters;

/// A directory that does not exist, so no bundle file or Dockerfile is found.
const ROOT: &str = "/nonexistent-slipway-fuzz";

fuzz_target!(|text: &str| {
    let path = Path::new(ROOT).join("slipway.toml");
    match Config::from_str(text, &path) {
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty());
            if let Some(at) = error.location() {
                check_location(text, at, &message);
                assert!(
                    message.contains("slipway.toml"),
                    "error `{message}` does not name the file"
                );
            }
        }
        Ok(config) => {
            for image in config.images.values() {
                check_location(text, &image.at, "image table");
            }
            for env in config.envs.values() {
                check_location(text, &env.at, "env table");
            }
            for rule in config.tags.rules.iter().chain(&config.tags.flavor) {
                check_location(text, &rule.at, "tag line");
            }
            let names: Vec<&str> = config.images.keys().map(String::as_str).collect();
            let order = config
                .build_order(&names)
                .unwrap_or_else(|e| panic!("a loaded config has no build order: {e}"));
            assert_eq!(
                order.len(),
                names.len(),
                "build order drops or repeats images"
            );
            for (position, name) in order.iter().enumerate() {
                for dependency in &config.images[name].depends_on {
                    let before = order[..position].contains(dependency);
                    assert!(
                        before,
                        "`{name}` is built before its dependency `{dependency}`"
                    );
                }
            }
            // Dockerfile-derived filters need files; those that only need
            // the config's own globs must compile, since loading checked them.
            if let Ok(specs) = config_filters(&config, Path::new(ROOT)) {
                if let Err(error) = FilterSet::compile(specs) {
                    panic!("globs slipway.toml accepted do not compile: {error}");
                }
            }
        }
    }
});

/// `at` is a 1-based line and column of `text` (the column may be one past
/// the line's end, where a parser stops at end of line or file).
fn check_location(text: &str, at: &Location, what: &str) {
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        at.line >= 1 && at.line <= lines.len(),
        "{what}: line {} outside the input's {} lines",
        at.line,
        lines.len()
    );
    let width = lines[at.line - 1].chars().count();
    assert!(
        at.column >= 1 && at.column <= width + 1,
        "{what}: column {} outside line {} ({width} characters)",
        at.column,
        at.line
    );
}
