//! Image references as users write them (`--image`, slipway.toml
//! `repository`, contract JSON): parsing never panics, and what parses
//! prints to a string that parses back to the same value, in both the full
//! (`Display`) and the short (`familiar`) form.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use slipway_core::image_ref::{Digest, ImageRef, Repository, Tag};

fuzz_target!(|input: &str| {
    if let Ok(image) = ImageRef::from_str(input) {
        let full = image.to_string();
        let reparsed = ImageRef::from_str(&full).unwrap_or_else(|e| {
            panic!("`{input}` displays as `{full}`, which does not parse: {e}")
        });
        assert_eq!(
            reparsed, image,
            "`{input}` -> `{full}` is another reference"
        );
        let familiar = image.familiar();
        let reparsed = ImageRef::from_str(&familiar).unwrap_or_else(|e| {
            panic!("`{input}` has the familiar form `{familiar}`, which does not parse: {e}")
        });
        assert_eq!(
            reparsed, image,
            "`{input}` -> `{familiar}` is another reference"
        );
        let repository = image.repository().to_string();
        assert_eq!(
            Repository::from_str(&repository).as_ref(),
            Ok(image.repository()),
            "the repository `{repository}` of `{input}` does not parse back"
        );
        if let Some(tag) = image.tag() {
            assert!(
                tag.as_str().len() <= 128,
                "tag of `{input}` is over 128 characters"
            );
        }
    }
    if let Ok(repository) = Repository::from_str(input) {
        let text = repository.to_string();
        assert_eq!(
            Repository::from_str(&text).as_ref(),
            Ok(&repository),
            "repository `{input}` -> `{text}` does not parse back"
        );
        let familiar = repository.familiar();
        assert_eq!(
            Repository::from_str(&familiar).as_ref(),
            Ok(&repository),
            "repository `{input}` -> `{familiar}` does not parse back"
        );
        // A repository is an image reference without tag or digest.
        let image = ImageRef::from_str(input)
            .unwrap_or_else(|e| panic!("repository `{input}` is not an image reference: {e}"));
        assert!(image.tag().is_none() && image.digest().is_none());
    }
    if let Ok(tag) = Tag::from_str(input) {
        assert_eq!(tag.as_str(), input, "a tag is kept as written");
    }
    if let Ok(digest) = Digest::from_str(input) {
        assert_eq!(digest.to_string(), input, "a digest is kept as written");
        assert_eq!(digest.hex().len(), digest.algorithm().hex_len());
    }
});
