//! Secrets (registry passwords, SSH keys, tokens) and the redaction of text
//! that may carry them. A secret's `Debug` prints `***`; reaching its bytes
//! takes an explicit `expose_secret()`, so it cannot slip into a log line or
//! an error message by formatting.

use std::fmt;

pub use secrecy::{ExposeSecret, SecretString};

/// A URL whose userinfo (`user:password@`) and secret-looking query values
/// are replaced by `***` when displayed. Use it for every URL that goes into
/// a message or a log.
#[derive(Clone, Copy)]
pub struct RedactedUrl<'a>(pub &'a str);

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.0))
    }
}

impl fmt::Debug for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(self.0))
    }
}

const SECRET_QUERY_KEYS: &[&str] = &[
    "token",
    "access_token",
    "password",
    "secret",
    "sig",
    "signature",
    "key",
    "api_key",
    "apikey",
];

/// Returns `url` with the userinfo's password (or a lone token user) and the
/// values of secret-looking query parameters replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***{host}"),
                None => format!("***{host}"),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _))
                        if SECRET_QUERY_KEYS.contains(&key.to_ascii_lowercase().as_str()) =>
                    {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            let mut tail = format!("{path}?{}", query.join("&"));
            if let Some(fragment) = fragment {
                tail.push('#');
                tail.push_str(fragment);
            }
            tail
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(url: &str, expected: &str) {
        assert_eq!(redact_url(url), expected, "url `{url}`");
        assert_eq!(RedactedUrl(url).to_string(), expected);
    }

    #[test]
    fn redaction() {
        check(
            "https://registry.example.com/v2/",
            "https://registry.example.com/v2/",
        );
        check(
            "https://bob:hunter2@example.com/x",
            "https://bob:***@example.com/x",
        );
        check(
            "https://ghp_token@example.com/x",
            "https://***@example.com/x",
        );
        check(
            "https://example.com/x?token=abc&page=2",
            "https://example.com/x?token=***&page=2",
        );
        check(
            "http://127.0.0.1:5000/v2/?Password=p#frag",
            "http://127.0.0.1:5000/v2/?Password=***#frag",
        );
        check("ssh://deploy@host:22", "ssh://***@host:22");
        check("example.com:5000/repo", "example.com:5000/repo");
    }

    #[test]
    fn secrets_debug_as_redacted() {
        let secret = SecretString::from("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose_secret(), "hunter2");
    }
}
