//! The hosts as OpenSSH's client knows them: `~/.ssh/config` (or the file
//! of `--ssh-config`) read for `Host` blocks and the keys ssh-deploy
//! honours: `HostName`, `User`, `Port`, `IdentityFile` and `ProxyJump`.
//!
//! OpenSSH's rules (ssh_config(5)): keywords are case-insensitive and may be
//! followed by `=`; a `Host` line's patterns use `*` and `?`, a `!pattern`
//! excludes; for each key the first value found wins, so explicit
//! `slipway.toml` values and flags (applied before this) win over the file.
//! `Match` blocks are skipped (their conditions are not evaluated) and
//! other keys are ignored. `IdentityFile`s are tried without a
//! passphrase; jump hosts' own `ProxyJump` is not followed.

use std::path::{Path, PathBuf};

use slipway_core::cli::UsageError;

/// The ssh config: `path` (`--ssh-config`), which must be readable, else
/// `~/.ssh/config` when it exists, else none.
pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Option<SshConfig>> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let (path, flag) = match (path, &home) {
        (Some(path), _) => (path.to_path_buf(), "`--ssh-config`"),
        (None, Some(home)) if home.join(".ssh/config").is_file() => {
            (home.join(".ssh/config"), "the ssh config")
        }
        (None, _) => return Ok(None),
    };
    let text = slipway_core::input::read_to_string(&path).map_err(|error| {
        UsageError::caused_by(
            format!(
                "cannot read {flag} `{}`; give an OpenSSH client config file",
                path.display()
            ),
            error,
        )
    })?;
    let config = SshConfig::parse(&text, home).map_err(|(line, why)| {
        UsageError::new(format!("{flag} `{}:{line}`: {why}", path.display()))
    })?;
    Ok(Some(config))
}

/// A parsed ssh config: its `Host` blocks in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SshConfig {
    blocks: Vec<Block>,
    /// Where `~/` in `IdentityFile` points.
    home: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Block {
    /// `None` for a `Match` block, which never applies.
    patterns: Option<Vec<String>>,
    settings: Vec<(String, String)>,
}

/// What the config says about one host alias; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostSettings {
    pub(crate) host_name: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) identity_files: Vec<PathBuf>,
    /// `ProxyJump`'s hops, `[user@]host[:port]` each (`none` is no jump).
    pub(crate) proxy_jump: Vec<String>,
}

impl SshConfig {
    /// Parses `text`; a line that cannot be read (a bad `Port`) is an error
    /// naming its 1-based line number.
    pub(crate) fn parse(text: &str, home: Option<PathBuf>) -> Result<SshConfig, (usize, String)> {
        let mut config = SshConfig {
            home,
            blocks: vec![Block {
                patterns: Some(vec!["*".to_owned()]),
                settings: Vec::new(),
            }],
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
                Some((key, rest)) => (
                    key,
                    rest.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                        .trim(),
                ),
                None => (line, ""),
            };
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "host" => config.blocks.push(Block {
                    patterns: Some(words(value)),
                    settings: Vec::new(),
                }),
                "match" => config.blocks.push(Block::default()),
                _ => {
                    if key == "port" && value.parse::<u16>().map_or(true, |p| p == 0) {
                        return Err((index + 1, format!("`Port {value}` is not a port (1-65535)")));
                    }
                    if let Some(block) = config.blocks.last_mut() {
                        block.settings.push((key, unquote(value)));
                    }
                }
            }
        }
        Ok(config)
    }

    /// The settings for `alias`, first value wins.
    pub(crate) fn lookup(&self, alias: &str) -> HostSettings {
        let home = self.home.as_deref();
        let mut found = HostSettings::default();
        let mut has_jump = false;
        for block in &self.blocks {
            let Some(patterns) = &block.patterns else {
                continue;
            };
            if !matches_host(patterns, alias) {
                continue;
            }
            for (key, value) in &block.settings {
                match key.as_str() {
                    "hostname" if found.host_name.is_none() => {
                        found.host_name = Some(value.replace("%h", alias).replace("%%", "%"));
                    }
                    "user" if found.user.is_none() => found.user = Some(value.clone()),
                    "port" if found.port.is_none() => found.port = value.parse().ok(),
                    "identityfile" => found.identity_files.push(expand_home(value, home)),
                    "proxyjump" if !has_jump => {
                        has_jump = true;
                        if !value.eq_ignore_ascii_case("none") {
                            found.proxy_jump = value
                                .split(',')
                                .map(str::trim)
                                .filter(|hop| !hop.is_empty())
                                .map(str::to_owned)
                                .collect();
                        }
                    }
                    _ => {}
                }
            }
        }
        found
    }
}

/// Whether `alias` matches a `Host` line: any pattern matches and no
/// negated one does.
fn matches_host(patterns: &[String], alias: &str) -> bool {
    let mut is_match = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, alias) => return false,
            Some(_) => {}
            None => is_match |= glob(pattern, alias),
        }
    }
    is_match
}

/// OpenSSH's pattern match: `*` any run, `?` one character, case-insensitive.
fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(unquote).collect()
}

fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_owned()
}

fn expand_home(value: &str, home: Option<&std::path::Path>) -> PathBuf {
    match (value.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# a team's config
Host bastion
    HostName 127.0.0.1
    Port 2200
    User jump

Host web? !web9
    HostName %h.internal
    ProxyJump bastion
    IdentityFile ~/.ssh/deploy_key

Match user nobody
    Port 1

Host *
    User = deploy
    Port=22
    IdentityFile \"/keys/fallback\"
";

    #[track_caller]
    fn check(alias: &str, expected: HostSettings) {
        let config =
            SshConfig::parse(CONFIG, Some(PathBuf::from("/home/me"))).expect("valid config");
        assert_eq!(config.lookup(alias), expected, "`{alias}`");
    }

    #[test]
    fn first_value_wins_and_patterns_match_as_openssh_does() {
        check(
            "bastion",
            HostSettings {
                host_name: Some("127.0.0.1".to_owned()),
                user: Some("jump".to_owned()),
                port: Some(2200),
                identity_files: vec![PathBuf::from("/keys/fallback")],
                proxy_jump: vec![],
            },
        );
        check(
            "web1",
            HostSettings {
                host_name: Some("web1.internal".to_owned()),
                user: Some("deploy".to_owned()),
                port: Some(22),
                identity_files: vec![
                    PathBuf::from("/home/me/.ssh/deploy_key"),
                    PathBuf::from("/keys/fallback"),
                ],
                proxy_jump: vec!["bastion".to_owned()],
            },
        );
        // `!web9` excludes it from the block; `web10` has one character too many.
        for alias in ["web9", "web10"] {
            check(
                alias,
                HostSettings {
                    host_name: None,
                    user: Some("deploy".to_owned()),
                    port: Some(22),
                    identity_files: vec![PathBuf::from("/keys/fallback")],
                    proxy_jump: vec![],
                },
            );
        }
    }

    #[test]
    fn globs() {
        assert!(glob("*.example.com", "a.b.EXAMPLE.com"));
        assert!(glob("w?b*", "web1"));
        assert!(!glob("w?b", "wb"));
        assert!(glob("*", ""));
        assert!(!glob("a*c", "abd"));
    }

    #[test]
    fn a_bad_port_names_its_line() {
        assert_eq!(
            SshConfig::parse("Host a\n  Port http\n", None),
            Err((2, "`Port http` is not a port (1-65535)".to_owned()))
        );
    }
}
