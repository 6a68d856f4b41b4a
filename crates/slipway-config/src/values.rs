//! Small validated values of slipway.toml that tools also take from flags:
//! SSH hosts, build platforms, build secrets and path patterns.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Why a host, platform or build secret does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not `[user@]host[:port]`.
    #[error(
        "invalid host `{input}`: {reason}; expected `[user@]host[:port]`, e.g. `deploy@web1.example.com`, `root@127.0.0.1:2222` or `deploy@[::1]:22`"
    )]
    Host {
        /// The input.
        input: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Not `os/arch[/variant]`.
    #[error(
        "invalid platform `{input}`: expected `os/arch` or `os/arch/variant` in lowercase letters, digits and `_`, e.g. `linux/amd64` or `linux/arm64/v8`"
    )]
    Platform {
        /// The input.
        input: String,
    },
    /// Not `id=…,env=…` or `id=…,src=…`.
    #[error(
        "invalid build secret `{input}`: {reason}; expected `id=<id>,env=<VARIABLE>` or `id=<id>,src=<file>`, e.g. `id=npm,env=NPM_TOKEN`"
    )]
    Secret {
        /// The input.
        input: String,
        /// What is wrong.
        reason: String,
    },
}

slipway_core::cli::exit_status!(ValueError => USAGE);

/// An SSH destination: `[user@]host[:port]`, IPv6 addresses in brackets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host {
    /// The login user; `None` leaves it to the SSH defaults.
    pub user: Option<String>,
    /// Host name or address, without brackets.
    pub host: String,
    /// The port; `None` means 22.
    pub port: Option<u16>,
}

impl FromStr for Host {
    type Err = ValueError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ValueError::Host {
            input: input.to_owned(),
            reason,
        };
        let (user, rest) = match input.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, input),
        };
        if let Some(user) = user {
            let user_ok = !user.is_empty()
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !user_ok {
                return Err(fail(
                    "the user is empty or has characters other than letters, digits, `.`, `_` and `-`",
                ));
            }
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (address, after) = bracketed
                .split_once(']')
                .ok_or_else(|| fail("`[` without a closing `]`"))?;
            if address.is_empty()
                || !address
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return Err(fail("the bracketed address is not an IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| fail("only `:port` may follow `]`"))?,
                ),
            };
            (address, port)
        } else {
            match rest.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(fail("an IPv6 address must be in brackets"));
                }
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let host_ok = !host.is_empty()
            && (rest.starts_with('[')
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
        if !host_ok {
            return Err(fail(
                "the host is empty or has characters other than letters, digits, `.`, `-` and `_`",
            ));
        }
        let port = match port {
            None => None,
            Some(port) => match port.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return Err(fail("the port is not a number from 1 to 65535")),
            },
        };
        Ok(Self {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// A build platform, `os/arch[/variant]`, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `arm64`.
    pub arch: String,
    /// e.g. `v8`.
    pub variant: Option<String>,
}

impl FromStr for Platform {
    type Err = ValueError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        let parts: Vec<&str> = input.split('/').collect();
        match parts.as_slice() {
            [os, arch] if part_ok(os) && part_ok(arch) => Ok(Self {
                os: (*os).to_owned(),
                arch: (*arch).to_owned(),
                variant: None,
            }),
            [os, arch, variant] if part_ok(os) && part_ok(arch) && part_ok(variant) => Ok(Self {
                os: (*os).to_owned(),
                arch: (*arch).to_owned(),
                variant: Some((*variant).to_owned()),
            }),
            _ => Err(ValueError::Platform {
                input: input.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Where a build secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the build's caller.
    Env(String),
    /// A file, relative to the directory holding slipway.toml.
    File(PathBuf),
}

/// A build secret, as `docker buildx build --secret` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSecret {
    /// The id the Dockerfile mounts (`RUN --mount=type=secret,id=…`).
    pub id: String,
    /// Where the value comes from.
    pub source: SecretSource,
}

impl FromStr for BuildSecret {
    type Err = ValueError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| ValueError::Secret {
            input: input.to_owned(),
            reason,
        };
        let (mut id, mut source) = (None, None);
        for field in input.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| fail(format!("`{field}` is not `key=value`")))?;
            if value.is_empty() {
                return Err(fail(format!("`{key}` is empty")));
            }
            match key {
                "id" if id.is_none() => id = Some(value.to_owned()),
                "env" if source.is_none() => {
                    if !is_variable_name(value) {
                        return Err(fail(format!(
                            "`{value}` is not an environment variable name"
                        )));
                    }
                    source = Some(SecretSource::Env(value.to_owned()));
                }
                "src" if source.is_none() => {
                    source = Some(SecretSource::File(PathBuf::from(value)))
                }
                "id" | "env" | "src" => {
                    return Err(fail(format!(
                        "`{key}` is given twice, or both `env` and `src` are"
                    )));
                }
                _ => return Err(fail(format!("unknown field `{key}`"))),
            }
        }
        match (id, source) {
            (Some(id), Some(source)) => Ok(Self { id, source }),
            (None, _) => Err(fail("`id` is missing".to_owned())),
            (_, None) => Err(fail("neither `env` nor `src` is given".to_owned())),
        }
    }
}

impl fmt::Display for BuildSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::Env(var) => write!(f, "id={},env={var}", self.id),
            SecretSource::File(path) => write!(f, "id={},src={}", self.id, path.display()),
        }
    }
}

/// A glob of a `paths` list; `!` in front excludes what it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// The glob without the `!`.
    pub pattern: String,
    /// Whether the glob excludes (`!app/docs/**`).
    pub negated: bool,
}

/// Checks a buildx builder name as buildx's store does (`^[a-zA-Z][a-zA-Z0-9._-]*$`),
/// so a bad name fails here, naming the key or flag, not in the middle of a build.
pub fn check_builder_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let is_valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if is_valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a buildx builder name: it starts with a letter and holds only letters, digits, `.`, `-` and `_` (as `docker buildx create --name` takes)"
        ))
    }
}

/// Whether `name` is a shell/environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_names_follow_buildx() {
        for name in ["remote", "k8s-builder", "b.1_x"] {
            assert_eq!(check_builder_name(name), Ok(()), "{name}");
        }
        for name in ["", "-x", "1builder", "a b", "a/b"] {
            assert!(check_builder_name(name).is_err(), "{name}");
        }
    }

    #[track_caller]
    fn check<T: FromStr<Err = ValueError> + fmt::Display>(
        input: &str,
        expected: Result<&str, &str>,
    ) {
        let actual = input
            .parse::<T>()
            .map(|v| v.to_string())
            .map_err(|e| e.to_string());
        assert_eq!(
            actual,
            expected.map(str::to_owned).map_err(str::to_owned),
            "input `{input}`"
        );
    }

    #[test]
    fn hosts() {
        check::<Host>("root@127.0.0.1:2222", Ok("root@127.0.0.1:2222"));
        check::<Host>("deploy@[::1]:22", Ok("deploy@[::1]:22"));
        check::<Host>("[::1]", Ok("[::1]"));
        check::<Host>("web1.example.com", Ok("web1.example.com"));
        check::<Host>(
            "::1",
            Err(
                "invalid host `::1`: an IPv6 address must be in brackets; expected `[user@]host[:port]`, e.g. `deploy@web1.example.com`, `root@127.0.0.1:2222` or `deploy@[::1]:22`",
            ),
        );
        check::<Host>(
            "web:99999",
            Err(
                "invalid host `web:99999`: the port is not a number from 1 to 65535; expected `[user@]host[:port]`, e.g. `deploy@web1.example.com`, `root@127.0.0.1:2222` or `deploy@[::1]:22`",
            ),
        );
        check::<Host>(
            "@web",
            Err(
                "invalid host `@web`: the user is empty or has characters other than letters, digits, `.`, `_` and `-`; expected `[user@]host[:port]`, e.g. `deploy@web1.example.com`, `root@127.0.0.1:2222` or `deploy@[::1]:22`",
            ),
        );
        check::<Host>(
            "web one",
            Err(
                "invalid host `web one`: the host is empty or has characters other than letters, digits, `.`, `-` and `_`; expected `[user@]host[:port]`, e.g. `deploy@web1.example.com`, `root@127.0.0.1:2222` or `deploy@[::1]:22`",
            ),
        );
    }

    #[test]
    fn platforms() {
        check::<Platform>("linux/amd64", Ok("linux/amd64"));
        check::<Platform>("linux/arm64/v8", Ok("linux/arm64/v8"));
        check::<Platform>(
            "linux",
            Err(
                "invalid platform `linux`: expected `os/arch` or `os/arch/variant` in lowercase letters, digits and `_`, e.g. `linux/amd64` or `linux/arm64/v8`",
            ),
        );
        check::<Platform>(
            "Linux/AMD64",
            Err(
                "invalid platform `Linux/AMD64`: expected `os/arch` or `os/arch/variant` in lowercase letters, digits and `_`, e.g. `linux/amd64` or `linux/arm64/v8`",
            ),
        );
    }

    #[test]
    fn secrets() {
        check::<BuildSecret>("id=npm,env=NPM_TOKEN", Ok("id=npm,env=NPM_TOKEN"));
        check::<BuildSecret>("src=.npmrc,id=npmrc", Ok("id=npmrc,src=.npmrc"));
        check::<BuildSecret>(
            "id=npm",
            Err(
                "invalid build secret `id=npm`: neither `env` nor `src` is given; expected `id=<id>,env=<VARIABLE>` or `id=<id>,src=<file>`, e.g. `id=npm,env=NPM_TOKEN`",
            ),
        );
        check::<BuildSecret>(
            "npm",
            Err(
                "invalid build secret `npm`: `npm` is not `key=value`; expected `id=<id>,env=<VARIABLE>` or `id=<id>,src=<file>`, e.g. `id=npm,env=NPM_TOKEN`",
            ),
        );
        check::<BuildSecret>(
            "id=a,env=X,src=y",
            Err(
                "invalid build secret `id=a,env=X,src=y`: `src` is given twice, or both `env` and `src` are; expected `id=<id>,env=<VARIABLE>` or `id=<id>,src=<file>`, e.g. `id=npm,env=NPM_TOKEN`",
            ),
        );
        check::<BuildSecret>(
            "id=a,type=env",
            Err(
                "invalid build secret `id=a,type=env`: unknown field `type`; expected `id=<id>,env=<VARIABLE>` or `id=<id>,src=<file>`, e.g. `id=npm,env=NPM_TOKEN`",
            ),
        );
    }
}
