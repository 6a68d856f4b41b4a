//! Image references (`registry/path:tag@digest`), parsed by the grammar of
//! distribution/reference, the one docker uses.
//!
//! Parsing is pure and synchronous. A name without a registry is on Docker Hub
//! (`alpine` is `docker.io/library/alpine`), and `index.docker.io` is spelled
//! `docker.io`. One deliberate difference from docker: a first component is a
//! registry only if it contains `.` or `:` or is `localhost`; docker also takes
//! a first component with an uppercase letter as a registry, which turns a
//! typo like `Demo/App` into a request to a host called `Demo`.

use std::fmt;
use std::str::FromStr;

/// The registry of names that do not name one.
pub const DOCKER_HUB: &str = "docker.io";

/// The legacy name of Docker Hub, normalised to [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";

/// Docker Hub's namespace for official images (`alpine` is `library/alpine`).
const OFFICIAL_NAMESPACE: &str = "library/";

/// Longest name distribution accepts, counted like docker does: on the
/// normalised name, so `docker.io/library/` counts.
const NAME_MAX: usize = 255;

/// Longest tag distribution accepts.
const TAG_MAX: usize = 128;

/// Why a string is not an image reference, repository, tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The input was empty.
    #[error(
        "empty image reference; expected e.g. `alpine`, `alpine:3.20` or `registry.example.com/team/app@sha256:…`"
    )]
    Empty,
    /// A tag or digest without a name before it, like `:latest`.
    #[error(
        "`{input}` has no repository name; expected e.g. `alpine:3.20` or `127.0.0.1:5000/demo/app`"
    )]
    MissingName {
        /// The whole input.
        input: String,
    },
    /// A tag outside `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "invalid tag `{tag}`{}: a tag starts with a letter, digit or `_` and has at most 128 of `A-Z a-z 0-9 _ . -`",
        within(.input, .tag)
    )]
    InvalidTag {
        /// The offending tag.
        tag: String,
        /// The whole input.
        input: String,
    },
    /// A digest of a known algorithm with the wrong hex part.
    #[error(
        "invalid digest `{digest}`{}: expected `{algorithm}:` followed by {hex_len} lowercase hex digits",
        within(.input, .digest)
    )]
    InvalidDigest {
        /// The offending digest.
        digest: String,
        /// The whole input.
        input: String,
        /// The algorithm the digest names.
        algorithm: &'static str,
        /// How many hex digits that algorithm needs.
        hex_len: usize,
    },
    /// A digest of an algorithm other than sha256 or sha512.
    #[error(
        "invalid digest `{digest}`{}: expected `sha256:` followed by 64 lowercase hex digits, or `sha512:` followed by 128",
        within(.input, .digest)
    )]
    UnsupportedDigest {
        /// The offending digest.
        digest: String,
        /// The whole input.
        input: String,
    },
    /// A repository path with an uppercase letter.
    #[error("repository `{repository}` must be lowercase")]
    Uppercase {
        /// The name as written.
        repository: String,
    },
    /// A repository path component outside the grammar.
    #[error(
        "invalid path component `{component}` in `{input}`: a component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes, e.g. `my-app` or `team/app_v2`"
    )]
    InvalidComponent {
        /// The offending component.
        component: String,
        /// The whole input.
        input: String,
    },
    /// A registry that is not `host[:port]`.
    #[error(
        "invalid registry `{registry}` in `{input}`: expected a host name, an IPv4 address or an IPv6 address in brackets, optionally followed by `:port`, e.g. `registry.example.com:5000` or `[::1]:5000`"
    )]
    InvalidRegistry {
        /// The offending registry.
        registry: String,
        /// The whole input.
        input: String,
    },
    /// A registry port outside 1–65535 (`127.0.0.1:99999`).
    #[error(
        "invalid port `{port}` of registry `{registry}` in `{input}`: a port is a number from 1 to 65535, e.g. `registry.example.com:5000`"
    )]
    InvalidPort {
        /// The offending registry.
        registry: String,
        /// The port as written.
        port: String,
        /// The whole input.
        input: String,
    },
    /// A name longer than 255 characters.
    #[error("image name `{name}` is {len} characters long; at most 255 are allowed")]
    NameTooLong {
        /// The normalised name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// A 64-character hex string, which docker reads as an image ID.
    #[error(
        "`{input}` is a 64-character hexadecimal string, which is an image ID, not a repository name"
    )]
    HexName {
        /// The whole input.
        input: String,
    },
    /// A tag or digest where only a repository is allowed.
    #[error(
        "`{input}` is not a repository: it has a `:tag` or `@digest` part; write `[registry/]path`, e.g. `127.0.0.1:5000/demo` or `ghcr.io/acme/app`"
    )]
    NotARepository {
        /// The whole input.
        input: String,
    },
}

crate::cli::exit_status!(ImageRefError => USAGE);

/// ` in `input`` when the value is only part of the input, else nothing.
fn within(input: &str, value: &str) -> String {
    if input == value {
        String::new()
    } else {
        format!(" in `{input}`")
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the tag names one commit or one release, so it never has to
    /// move: `sha-` and at least 7 hex digits (`type=sha`), or a full semver
    /// version, `v` allowed (`1.4.2`, `v1.5.0-rc.1`). Every other tag
    /// (`latest`, a branch, `1`, `1.4`, `pr-7`) is mutable.
    pub fn is_immutable(&self) -> bool {
        let is_sha = self
            .0
            .strip_prefix("sha-")
            .is_some_and(|hex| hex.len() >= 7 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let version = self.0.strip_prefix('v').unwrap_or(&self.0);
        is_sha || semver::Version::parse(version).is_ok()
    }

    fn parse_in(tag: &str, input: &str) -> Result<Self, ImageRefError> {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut chars = tag.chars();
        let valid = chars.next().is_some_and(word)
            && chars.all(|c| word(c) || c == '.' || c == '-')
            && tag.len() <= TAG_MAX;
        if valid {
            Ok(Self(tag.to_owned()))
        } else {
            Err(ImageRefError::InvalidTag {
                tag: tag.to_owned(),
                input: input.to_owned(),
            })
        }
    }
}

impl FromStr for Tag {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_in(s, s)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hash function of a [`Digest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DigestAlgorithm {
    /// `sha256`, 64 hex digits.
    Sha256,
    /// `sha512`, 128 hex digits.
    Sha512,
}

impl DigestAlgorithm {
    /// The name used in digests, e.g. `sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// How many lowercase hex digits a digest of this algorithm has.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// A content digest: `sha256:` and 64 lowercase hex digits, or `sha512:` and 128.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// The hash function.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lowercase hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    fn parse_in(digest: &str, input: &str) -> Result<Self, ImageRefError> {
        let (algorithm, hex) = match digest.split_once(':') {
            Some(("sha256", hex)) => (DigestAlgorithm::Sha256, hex),
            Some(("sha512", hex)) => (DigestAlgorithm::Sha512, hex),
            _ => {
                return Err(ImageRefError::UnsupportedDigest {
                    digest: digest.to_owned(),
                    input: input.to_owned(),
                });
            }
        };
        let lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if hex.len() == algorithm.hex_len() && hex.chars().all(lower_hex) {
            Ok(Self {
                algorithm,
                hex: hex.to_owned(),
            })
        } else {
            Err(ImageRefError::InvalidDigest {
                digest: digest.to_owned(),
                input: input.to_owned(),
                algorithm: algorithm.as_str(),
                hex_len: algorithm.hex_len(),
            })
        }
    }
}

impl FromStr for Digest {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_in(s, s)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

/// A repository: a registry and a path, without tag or digest, e.g.
/// `127.0.0.1:5000/demo/app` or `docker.io/library/alpine`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    registry: String,
    path: String,
}

impl Repository {
    /// The registry, e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The path inside the registry, e.g. `library/alpine` or `demo/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The repository one level down: `127.0.0.1:5000/demo` joined with `app`
    /// is `127.0.0.1:5000/demo/app`. `name` may hold several components.
    pub fn join(&self, name: &str) -> Result<Repository, ImageRefError> {
        let input = format!("{self}/{name}");
        validate_path(name, &input, name)?;
        check_length(&input)?;
        let path = format!("{}/{name}", self.path);
        Ok(Self {
            registry: self.registry.clone(),
            path,
        })
    }

    /// This repository at a tag.
    pub fn with_tag(&self, tag: Tag) -> ImageRef {
        ImageRef::from_parts(self.clone(), Some(tag), None)
    }

    /// This repository at a digest.
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef::from_parts(self.clone(), None, Some(digest))
    }

    /// The short form docker prints: `alpine` for `docker.io/library/alpine`,
    /// `acme/app` for `docker.io/acme/app`, else the full name.
    pub fn familiar(&self) -> String {
        if self.registry != DOCKER_HUB {
            return self.to_string();
        }
        match self.path.strip_prefix(OFFICIAL_NAMESPACE) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            // A first component that reads as a registry (`acme.io/app` on
            // Docker Hub) keeps `docker.io/`, or the short form would name
            // another registry. Found by fuzzing (fuzz/fuzz_targets/image_ref.rs).
            _ if self.path.split('/').next().is_some_and(is_registry) => self.to_string(),
            _ => self.path.clone(),
        }
    }

    /// Parses the name part of `input` (no tag, no digest).
    fn parse_name(name: &str, input: &str) -> Result<Self, ImageRefError> {
        if name.is_empty() {
            return Err(ImageRefError::MissingName {
                input: input.to_owned(),
            });
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if is_registry(first) => {
                validate_registry(first, input)?;
                (first, rest)
            }
            _ => (DOCKER_HUB, name),
        };
        validate_path(path, input, name)?;
        let registry = if registry == DOCKER_HUB_LEGACY {
            DOCKER_HUB
        } else {
            registry
        };
        let path = if registry == DOCKER_HUB && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}{path}")
        } else {
            path.to_owned()
        };
        let repository = Self {
            registry: registry.to_owned(),
            path,
        };
        check_length(&repository.to_string())?;
        Ok(repository)
    }
}

impl FromStr for Repository {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (_, tag) = split_tag(s);
        if s.contains('@') || tag.is_some() {
            return Err(ImageRefError::NotARepository {
                input: s.to_owned(),
            });
        }
        check_hex_name(s)?;
        Self::parse_name(s, s)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// A full image reference: repository, optional tag, optional digest.
///
/// `Display` prints the normalised, fully qualified form
/// (`docker.io/library/alpine:3.20`); it never adds a tag that was not there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    repository: Repository,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Puts a reference together from parsed parts.
    pub fn from_parts(repository: Repository, tag: Option<Tag>, digest: Option<Digest>) -> Self {
        Self {
            repository,
            tag,
            digest,
        }
    }

    /// The repository (registry and path).
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// The registry, e.g. `docker.io`.
    pub fn registry(&self) -> &str {
        self.repository.registry()
    }

    /// The path inside the registry, e.g. `library/alpine`.
    pub fn path(&self) -> &str {
        self.repository.path()
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest, if the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same reference with `tag` instead of its tag; the digest is kept.
    pub fn with_tag(self, tag: Tag) -> Self {
        Self {
            tag: Some(tag),
            ..self
        }
    }

    /// The same reference with `digest` instead of its digest; the tag is kept.
    pub fn with_digest(self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self
        }
    }

    /// The short form docker prints, e.g. `alpine:3.20` for
    /// `docker.io/library/alpine:3.20`.
    pub fn familiar(&self) -> String {
        let mut text = self.repository.familiar();
        self.push_suffix(&mut text);
        text
    }

    fn push_suffix(&self, text: &mut String) {
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag.as_str());
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(&digest.to_string());
        }
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse_in(digest, input)?)),
            None => (input, None),
        };
        let (name, tag) = split_tag(rest);
        let tag = tag.map(|tag| Tag::parse_in(tag, input)).transpose()?;
        check_hex_name(input)?;
        let repository = Repository::parse_name(name, input)?;
        Ok(Self {
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.repository.to_string();
        self.push_suffix(&mut text);
        f.write_str(&text)
    }
}

/// Splits `name[:tag]`: the tag follows the last `:` after the last `/`, so a
/// registry port (`localhost:5000/app`) is not a tag.
fn split_tag(rest: &str) -> (&str, Option<&str>) {
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    }
}

fn check_length(name: &str) -> Result<(), ImageRefError> {
    if name.len() > NAME_MAX {
        Err(ImageRefError::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
        })
    } else {
        Ok(())
    }
}

/// Same as docker: a bare 64-hex string is an image ID and never a name.
fn check_hex_name(input: &str) -> Result<(), ImageRefError> {
    let is_id = input.len() == 64
        && input
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if is_id {
        Err(ImageRefError::HexName {
            input: input.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Whether the first component of a name is a registry rather than a path.
fn is_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// `host[:port]`, where host is a domain name, an IPv4 address or `[IPv6]`.
fn validate_registry(registry: &str, input: &str) -> Result<(), ImageRefError> {
    let invalid = || ImageRefError::InvalidRegistry {
        registry: registry.to_owned(),
        input: input.to_owned(),
    };
    let (host_ok, port) = if let Some(bracketed) = registry.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        let address_ok =
            !address.is_empty() && address.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        };
        (address_ok, port)
    } else {
        let (host, port) = match registry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        (host.split('.').all(is_domain_component), port)
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !(host_ok && port_ok) {
        return Err(invalid());
    }
    // Digits only, but they must also fit a port: `:99999` is no address.
    match port {
        Some(port) if !port.parse::<u16>().is_ok_and(|p| p != 0) => {
            Err(ImageRefError::InvalidPort {
                registry: registry.to_owned(),
                port: port.to_owned(),
                input: input.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(component: &str) -> bool {
    !component.is_empty()
        && !component.starts_with('-')
        && !component.ends_with('-')
        && component
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Checks every `/`-separated component of a repository path.
fn validate_path(path: &str, input: &str, name: &str) -> Result<(), ImageRefError> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ImageRefError::Uppercase {
            repository: name.to_owned(),
        });
    }
    match path.split('/').find(|c| !is_path_component(c)) {
        Some(component) => Err(ImageRefError::InvalidComponent {
            component: component.to_owned(),
            input: input.to_owned(),
        }),
        None => Ok(()),
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        // A run of letters and digits, at least one.
        let start = i;
        while i < bytes.len() && alphanumeric(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // One separator: `.`, `_`, `__` or one or more `-`.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// Serialises as the `Display` string and deserialises through `FromStr`.
macro_rules! serde_as_string {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_as_string!(ImageRef, Repository, Tag, Digest);

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_immutable(tag: &str, expected: bool) {
        let parsed: Tag = tag.parse().expect("a valid tag");
        assert_eq!(parsed.is_immutable(), expected, "`{tag}`");
    }

    #[test]
    fn sha_tags_and_full_versions_are_immutable_the_rest_moves() {
        for tag in [
            "sha-0123abc",
            "sha-0123456789abcdef0123456789abcdef01234567",
            "1.4.2",
            "v1.4.2",
            "1.5.0-rc.1",
        ] {
            check_immutable(tag, true);
        }
        for tag in ["latest", "main", "1", "1.4", "pr-7", "sha-xyz", "feature-x"] {
            check_immutable(tag, false);
        }
    }

    const SHA256_F: &str =
        "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    /// Parses `input` and compares its fully qualified form (or its error).
    #[track_caller]
    fn check(input: &str, expected: Result<&str, &str>) {
        let actual = input
            .parse::<ImageRef>()
            .map(|r| r.to_string())
            .map_err(|e| e.to_string());
        let expected = expected.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(actual, expected, "input `{input}`");
        if let Ok(text) = &actual {
            let again = text.parse::<ImageRef>().map(|r| r.to_string());
            assert_eq!(again.as_ref(), Ok(text), "round trip of `{input}`");
        }
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        check("alpine", Ok("docker.io/library/alpine"));
        check("alpine:3.20", Ok("docker.io/library/alpine:3.20"));
        check("acme/app", Ok("docker.io/acme/app"));
        check("docker.io/alpine", Ok("docker.io/library/alpine"));
        check(
            "index.docker.io/library/alpine:latest",
            Ok("docker.io/library/alpine:latest"),
        );
        check("index.docker.io/acme/app", Ok("docker.io/acme/app"));
        check("test_com", Ok("docker.io/library/test_com"));
        check("test_com/foo", Ok("docker.io/test_com/foo"));
    }

    #[test]
    fn a_first_component_with_a_dot_a_colon_or_localhost_is_a_registry() {
        check("test.com:tag", Ok("docker.io/library/test.com:tag"));
        check("test.com:5000", Ok("docker.io/library/test.com:5000"));
        check("test.com/repo:tag", Ok("test.com/repo:tag"));
        check("test:5000/repo", Ok("test:5000/repo"));
        check("test-com:8080/foo", Ok("test-com:8080/foo"));
        check("localhost/app", Ok("localhost/app"));
        check("localhost:5000/app:1.0", Ok("localhost:5000/app:1.0"));
        check(
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            Ok("sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
        );
        check(
            "b.gcr.io/test.example.com/my-app:test.example.com",
            Ok("b.gcr.io/test.example.com/my-app:test.example.com"),
        );
        check(
            "xn--n3h.com/myimage:xn--n3h.com",
            Ok("xn--n3h.com/myimage:xn--n3h.com"),
        );
        check("foo_bar.com:8080", Ok("docker.io/library/foo_bar.com:8080"));
        check("foo/foo_bar.com:8080", Ok("docker.io/foo/foo_bar.com:8080"));
        check("192.168.1.1", Ok("docker.io/library/192.168.1.1"));
        check(
            "192.168.1.1:5000/repo:5050",
            Ok("192.168.1.1:5000/repo:5050"),
        );
        check("127.0.0.1:5000/demo/app", Ok("127.0.0.1:5000/demo/app"));
    }

    #[test]
    fn a_registry_port_must_be_1_to_65535() {
        check("127.0.0.1:65535/a:b", Ok("127.0.0.1:65535/a:b"));
        check("localhost:1/a", Ok("localhost:1/a"));
        check(
            "127.0.0.1:99999/a:b",
            Err(
                "invalid port `99999` of registry `127.0.0.1:99999` in `127.0.0.1:99999/a:b`: a port is a number from 1 to 65535, e.g. `registry.example.com:5000`",
            ),
        );
        check(
            "[::1]:0/a",
            Err(
                "invalid port `0` of registry `[::1]:0` in `[::1]:0/a`: a port is a number from 1 to 65535, e.g. `registry.example.com:5000`",
            ),
        );
        check(
            "r.io:65536/a",
            Err(
                "invalid port `65536` of registry `r.io:65536` in `r.io:65536/a`: a port is a number from 1 to 65535, e.g. `registry.example.com:5000`",
            ),
        );
    }

    #[test]
    fn ipv6_registries_are_bracketed() {
        check("[2001:db8::1]/repo", Ok("[2001:db8::1]/repo"));
        check(
            "[2001:db8:1:2:3:4:5:6]/repo:tag",
            Ok("[2001:db8:1:2:3:4:5:6]/repo:tag"),
        );
        check("[::1]:5000/repo", Ok("[::1]:5000/repo"));
        check("[2001:db8::]:5000/repo", Ok("[2001:db8::]:5000/repo"));
        check(
            "[fe80::1%eth0]:5000/repo",
            Err(
                "invalid registry `[fe80::1%eth0]:5000` in `[fe80::1%eth0]:5000/repo`: expected a host name, an IPv4 address or an IPv6 address in brackets, optionally followed by `:port`, e.g. `registry.example.com:5000` or `[::1]:5000`",
            ),
        );
        check(
            "[2001:db8::1]:5000",
            Err(
                "invalid path component `[2001:db8::1]` in `[2001:db8::1]:5000`: a component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes, e.g. `my-app` or `team/app_v2`",
            ),
        );
    }

    #[test]
    fn tags_and_digests_may_both_be_present() {
        check(
            &format!("test:5000/repo@{SHA256_F}"),
            Ok(&format!("test:5000/repo@{SHA256_F}")),
        );
        check(
            &format!("test:5000/repo:tag@{SHA256_F}"),
            Ok(&format!("test:5000/repo:tag@{SHA256_F}")),
        );
        check(
            &format!("[2001:db8::1]:5000/repo:tag@{SHA256_F}"),
            Ok(&format!("[2001:db8::1]:5000/repo:tag@{SHA256_F}")),
        );
        check(
            &format!(
                "xn--7o8h.com/myimage:xn--7o8h.com@sha512:{}",
                "f".repeat(128)
            ),
            Ok(&format!(
                "xn--7o8h.com/myimage:xn--7o8h.com@sha512:{}",
                "f".repeat(128)
            )),
        );
        check(
            "lowercase:Uppercase",
            Ok("docker.io/library/lowercase:Uppercase"),
        );
        check("a:_x", Ok("docker.io/library/a:_x"));
    }

    #[test]
    fn path_components_use_lowercase_and_separators() {
        check("x/a.b_c__d---e", Ok("docker.io/x/a.b_c__d---e"));
        check(
            "aa/asdf$$^/aa",
            Err(
                "invalid path component `asdf$$^` in `aa/asdf$$^/aa`: a component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes, e.g. `my-app` or `team/app_v2`",
            ),
        );
        check(
            "a___b",
            Err(
                "invalid path component `a___b` in `a___b`: a component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes, e.g. `my-app` or `team/app_v2`",
            ),
        );
        check(
            "a..b",
            Err(
                "invalid path component `a..b` in `a..b`: a component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes, e.g. `my-app` or `team/app_v2`",
            ),
        );
        check(
            "app-",
            Err(
                "invalid path component `app-` in `app-`: a component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes, e.g. `my-app` or `team/app_v2`",
            ),
        );
        check(
            "a//b",
            Err(
                "invalid path component `` in `a//b`: a component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes, e.g. `my-app` or `team/app_v2`",
            ),
        );
        check(
            "Uppercase:tag",
            Err("repository `Uppercase` must be lowercase"),
        );
        check("My/App", Err("repository `My/App` must be lowercase"));
        check(
            "test:5000/Uppercase/lowercase:tag",
            Err("repository `test:5000/Uppercase/lowercase` must be lowercase"),
        );
    }

    #[test]
    fn bad_tags_digests_and_names_say_what_is_valid() {
        check(
            "",
            Err(
                "empty image reference; expected e.g. `alpine`, `alpine:3.20` or `registry.example.com/team/app@sha256:…`",
            ),
        );
        check(
            ":justtag",
            Err(
                "`:justtag` has no repository name; expected e.g. `alpine:3.20` or `127.0.0.1:5000/demo/app`",
            ),
        );
        check(
            &format!("@{SHA256_F}"),
            Err(&format!(
                "`@{SHA256_F}` has no repository name; expected e.g. `alpine:3.20` or `127.0.0.1:5000/demo/app`"
            )),
        );
        check(
            "repo:-bad",
            Err(
                "invalid tag `-bad` in `repo:-bad`: a tag starts with a letter, digit or `_` and has at most 128 of `A-Z a-z 0-9 _ . -`",
            ),
        );
        check(
            &format!("repo:{}", "t".repeat(129)),
            Err(&format!(
                "invalid tag `{0}` in `repo:{0}`: a tag starts with a letter, digit or `_` and has at most 128 of `A-Z a-z 0-9 _ . -`",
                "t".repeat(129)
            )),
        );
        check(
            "repo@sha256:ffffffffffffffffffffffffffffffffff",
            Err(
                "invalid digest `sha256:ffffffffffffffffffffffffffffffffff` in `repo@sha256:ffffffffffffffffffffffffffffffffff`: expected `sha256:` followed by 64 lowercase hex digits",
            ),
        );
        check(
            &format!("repo@sha256:{}", "F".repeat(64)),
            Err(&format!(
                "invalid digest `sha256:{0}` in `repo@sha256:{0}`: expected `sha256:` followed by 64 lowercase hex digits",
                "F".repeat(64)
            )),
        );
        check(
            &format!("validname@invaliddigest:{}", "f".repeat(64)),
            Err(&format!(
                "invalid digest `invaliddigest:{0}` in `validname@invaliddigest:{0}`: expected `sha256:` followed by 64 lowercase hex digits, or `sha512:` followed by 128",
                "f".repeat(64)
            )),
        );
        check(
            &"z".repeat(64),
            Ok(&format!("docker.io/library/{}", "z".repeat(64))),
        );
        check(
            &"f".repeat(64),
            Err(&format!(
                "`{}` is a 64-character hexadecimal string, which is an image ID, not a repository name",
                "f".repeat(64)
            )),
        );
    }

    #[test]
    fn names_are_at_most_255_characters_once_normalised() {
        // `docker.io/` is 10 characters, so 245 are left for the path.
        let max = format!("{}a", "a/".repeat(122));
        check(
            &format!("{max}:tag-puts-this-over-max"),
            Ok(&format!("docker.io/{max}:tag-puts-this-over-max")),
        );
        let long = format!("{}a", "a/".repeat(123));
        check(
            &format!("{long}:tag"),
            Err(&format!(
                "image name `docker.io/{long}` is 257 characters long; at most 255 are allowed"
            )),
        );
        let registry = format!("r.io/{}aa", "a/".repeat(124));
        check(&registry, Ok(&registry));
    }

    #[test]
    fn familiar_names_drop_docker_hub() {
        let familiar = |s: &str| s.parse::<ImageRef>().map(|r| r.familiar());
        assert_eq!(
            familiar("docker.io/library/alpine:latest"),
            Ok("alpine:latest".to_owned())
        );
        assert_eq!(familiar("acme/app"), Ok("acme/app".to_owned()));
        assert_eq!(
            familiar("docker.io/library/a/b"),
            Ok("library/a/b".to_owned())
        );
        assert_eq!(
            familiar("localhost:5000/app:1"),
            Ok("localhost:5000/app:1".to_owned())
        );
    }

    #[test]
    fn familiar_names_keep_docker_hub_when_the_path_starts_like_a_registry() {
        for input in [
            "index.docker.io/acme.io/app/web:latest",
            "docker.io/localhost/app",
        ] {
            let image: ImageRef = input.parse().unwrap();
            assert_eq!(image.registry(), DOCKER_HUB);
            let familiar = image.familiar();
            assert_eq!(familiar.parse::<ImageRef>(), Ok(image), "`{familiar}`");
        }
        assert_eq!(
            "docker.io/acme.io/app"
                .parse::<Repository>()
                .unwrap()
                .familiar(),
            "docker.io/acme.io/app"
        );
    }

    #[test]
    fn repositories_join_and_take_tags_and_digests() {
        let repo: Repository = "127.0.0.1:5000/demo".parse().unwrap();
        let app = repo.join("app").unwrap();
        assert_eq!(app.to_string(), "127.0.0.1:5000/demo/app");
        assert_eq!((app.registry(), app.path()), ("127.0.0.1:5000", "demo/app"));
        let tagged = app.with_tag("sha-0123456".parse().unwrap());
        assert_eq!(tagged.to_string(), "127.0.0.1:5000/demo/app:sha-0123456");
        let pinned = tagged.with_digest(SHA256_F.parse().unwrap());
        assert_eq!(
            pinned.to_string(),
            format!("127.0.0.1:5000/demo/app:sha-0123456@{SHA256_F}")
        );
        assert_eq!(
            app.with_digest(SHA256_F.parse().unwrap()).to_string(),
            format!("127.0.0.1:5000/demo/app@{SHA256_F}")
        );
        assert_eq!(
            repo.join("My").unwrap_err().to_string(),
            "repository `My` must be lowercase"
        );
        assert_eq!(
            "alpine".parse::<Repository>().unwrap().to_string(),
            "docker.io/library/alpine"
        );
        assert_eq!(
            "localhost:5000"
                .parse::<Repository>()
                .unwrap_err()
                .to_string(),
            "`localhost:5000` is not a repository: it has a `:tag` or `@digest` part; write `[registry/]path`, e.g. `127.0.0.1:5000/demo` or `ghcr.io/acme/app`"
        );
    }

    #[test]
    fn tags_and_digests_parse_alone() {
        assert_eq!(
            "-bad".parse::<Tag>().unwrap_err().to_string(),
            "invalid tag `-bad`: a tag starts with a letter, digit or `_` and has at most 128 of `A-Z a-z 0-9 _ . -`"
        );
        assert_eq!(
            "md5:abc".parse::<Digest>().unwrap_err().to_string(),
            "invalid digest `md5:abc`: expected `sha256:` followed by 64 lowercase hex digits, or `sha512:` followed by 128"
        );
        let digest: Digest = SHA256_F.parse().unwrap();
        assert_eq!(
            (digest.algorithm(), digest.hex().len()),
            (DigestAlgorithm::Sha256, 64)
        );
    }

    #[test]
    fn serde_uses_the_string_form() {
        let image: ImageRef = serde_json::from_str("\"alpine:3.20\"").unwrap();
        assert_eq!(
            serde_json::to_string(&image).unwrap(),
            "\"docker.io/library/alpine:3.20\""
        );
        let error = serde_json::from_str::<Tag>("\"-x\"")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("invalid tag `-x`"), "{error}");
        let repo: Repository = serde_json::from_str("\"127.0.0.1:5000/demo\"").unwrap();
        assert_eq!(serde_json::to_value(&repo).unwrap(), "127.0.0.1:5000/demo");
    }
}
