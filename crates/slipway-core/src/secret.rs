//! Secrets (registry passwords, SSH keys, tokens) and the redaction of text
//! that may carry them. A secret's `Debug` prints `***`; reaching its bytes
//! takes an explicit `expose_secret()`, so it cannot slip into a log line or
//! an error message by formatting.

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

use base64::Engine as _;
pub use secrecy::{ExposeSecret, SecretString};

/// Every form of every secret this process holds, longest first: what
/// [`redact`] replaces by `***`. Filled by [`register`] and
/// [`register_basic`] when a secret is loaded (`Output::mask` registers
/// each secret it masks; the registry client registers its `Basic`
/// credentials and each token a token service issues).
static REDACTIONS: RwLock<Vec<Vec<u8>>> = RwLock::new(Vec::new());

/// Secrets shorter than this are not redacted: replacing every `a` or `ok`
/// in the output would garble it (a JSON report, `$GITHUB_OUTPUT`) and say
/// which letters the secret has. So such a secret is refused where it is
/// loaded ([`check_len`]), never held unredacted.
pub const MIN_REDACTED_LEN: usize = 4;

/// A secret of 1 to 3 bytes, refused ([`check_len`]): it could not be kept
/// out of the output without destroying the output, and is guessed at once.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} is {len} byte(s) long: a secret shorter than {MIN_REDACTED_LEN} bytes cannot be \
     redacted from output without garbling it (and is guessed at once); use a longer one"
)]
pub struct TooShort {
    /// Where the secret came from, e.g. ``the value of `REGISTRY_PASSWORD` ``.
    pub what: String,
    /// Its length in bytes.
    pub len: usize,
}

crate::cli::exit_status!(TooShort => USAGE);

/// Refuses a secret of 1 to 3 bytes (after a final newline, as [`register`]
/// reads it); `what` says where it came from. An empty secret is no secret
/// and passes.
pub fn check_len(secret: &str, what: &str) -> Result<(), TooShort> {
    let len = secret.trim_end_matches(['\r', '\n']).len();
    if (1..MIN_REDACTED_LEN).contains(&len) {
        Err(TooShort {
            what: what.to_owned(),
            len,
        })
    } else {
        Ok(())
    }
}

/// Registers `secret` for redaction in every form it may be sent or echoed
/// in: as it is, base64 (padded or not), JSON-escaped and percent-encoded.
/// A header value such as `Bearer abc…` or `Basic abc…` is covered by
/// registering the whole value; its credential part is registered too.
pub fn register(secret: &str) {
    let secret = secret.trim_end_matches(['\r', '\n']);
    let mut texts = vec![secret];
    if let Some((_scheme, credential)) = secret.split_once(' ') {
        texts.push(credential.trim());
    }
    // Each line of a multi-line secret (a private key) on its own, but not
    // PEM armour (`-----BEGIN … KEY-----`), which is no secret and appears
    // in messages about keys.
    for line in secret.lines().map(str::trim) {
        if !line.starts_with("-----") {
            texts.push(line);
        }
    }
    let mut forms = Vec::new();
    for text in texts {
        forms.push(text.as_bytes().to_vec());
        // Raw bytes are not found once a JSON document (a report, an
        // echoed body) escapes a `"` or `\` of the secret, nor once a URL
        // percent-encodes it.
        forms.push(json_escaped(text).into_bytes());
        forms.push(percent_encoded(text).into_bytes());
    }
    forms.extend(base64_forms(secret));
    insert(forms);
}

/// `text` as it appears inside a JSON string, without the quotes.
fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_owned()
}

/// `text` with every byte but RFC 3986's unreserved characters written `%XX`.
fn percent_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `%XX` escapes decoded (lossily where they do not form UTF-8).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Registers the password and the `Basic` credential of `user:password`
/// (base64 of the pair, as an `Authorization` header or a docker config
/// `auth` entry carries it).
pub fn register_basic(user: &str, password: &str) {
    register(password);
    insert(base64_forms(&format!("{user}:{password}")));
}

/// Base64 of `text`, padded and unpadded, standard and URL-safe.
fn base64_forms(text: &str) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .map(|engine| engine.encode(text).into_bytes())
        .collect()
}

fn insert(forms: Vec<Vec<u8>>) {
    let mut redactions = REDACTIONS.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if form.len() >= MIN_REDACTED_LEN && !redactions.contains(&form) {
            redactions.push(form);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    redactions.sort_by_key(|form| std::cmp::Reverse(form.len()));
}

/// `text` with every registered secret form replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    match redact_bytes(text.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// `bytes` with every registered secret form replaced by `***`.
pub fn redact_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    let redactions = REDACTIONS.read().unwrap_or_else(|e| e.into_inner());
    let mut text = Cow::Borrowed(bytes);
    for form in redactions.iter() {
        if text
            .windows(form.len())
            .any(|window| window == form.as_slice())
        {
            text = Cow::Owned(replace_all(&text, form, b"***"));
        }
    }
    text
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

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

/// The parts of `url` that [`redact_url`] hides, as written and
/// percent-decoded: the userinfo's password (or a lone user, which is a
/// token), and the values of secret-looking query parameters. A user name
/// that comes with a password is not secret and is not returned.
pub fn url_secrets(url: &str) -> Vec<String> {
    let rest = url.find("://").map_or(url, |at| &url[at + 3..]);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut secrets = Vec::new();
    if let Some((userinfo, _host)) = authority.rsplit_once('@') {
        match userinfo.split_once(':') {
            Some((_user, password)) => secrets.push(password),
            None => secrets.push(userinfo),
        }
    }
    if let Some((_path, query)) = tail.split_once('?') {
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && is_secret_query_key(key)
            {
                secrets.push(value);
            }
        }
    }
    let mut all = Vec::new();
    for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
        all.push(secret.to_owned());
        all.push(percent_decoded(secret));
    }
    all.sort();
    all.dedup();
    all
}

/// Registers every part of `url` that [`url_secrets`] names, and the
/// `Basic` credential an HTTP client sends for its userinfo; returns those
/// parts, for the caller to mask.
pub fn register_url(url: &str) -> Vec<String> {
    let secrets = url_secrets(url);
    for secret in &secrets {
        register(secret);
    }
    let rest = url.find("://").map_or(url, |at| &url[at + 3..]);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if let Some((userinfo, _host)) = authority.rsplit_once('@') {
        // An HTTP client sends `Authorization: Basic base64(user:password)`,
        // with an empty password for a lone user, which an endpoint may echo.
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        register_basic(&percent_decoded(user), &percent_decoded(password));
        register_basic(user, password);
    }
    secrets
}

fn is_secret_query_key(key: &str) -> bool {
    SECRET_QUERY_KEYS.contains(&key.to_ascii_lowercase().as_str())
}

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
                    Some((key, _)) if is_secret_query_key(key) => {
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

    #[test]
    fn secrets_of_1_to_3_bytes_are_refused_naming_where_they_came_from() {
        for short in ["a", "ab", "abc", "ab\n"] {
            let error = check_len(short, "the value of `X`").unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "the value of `X` is {} byte(s) long: a secret shorter than 4 bytes cannot be \
                     redacted from output without garbling it (and is guessed at once); use a \
                     longer one",
                    short.trim_end().len()
                )
            );
        }
        for fine in ["", "abcd", "\n", "é€"] {
            assert!(check_len(fine, "x").is_ok(), "{fine:?}");
        }
    }

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
    fn registered_secrets_are_redacted_in_every_form() {
        register("Bearer tok-3f9a-redact-me");
        register_basic("ci-user", "pa55-redact-me");
        let basic = base64::engine::general_purpose::STANDARD.encode("ci-user:pa55-redact-me");
        let text = format!(
            "echo: Authorization: Basic {basic}\nX-Token: tok-3f9a-redact-me pass=pa55-redact-me"
        );
        assert_eq!(
            redact(&text),
            "echo: Authorization: Basic ***\nX-Token: *** pass=***"
        );
        assert_eq!(redact("nothing secret"), "nothing secret");
    }

    #[test]
    fn escaped_forms_of_registered_secrets_are_redacted() {
        register(r#"ab\cd"ef-escaped-me"#);
        let json = serde_json::to_string(r#"key: ab\cd"ef-escaped-me"#).unwrap();
        assert_eq!(redact(&json), r#""key: ***""#);
        assert_eq!(redact("?k=ab%5Ccd%22ef-escaped-me"), "?k=***");
    }

    #[track_caller]
    fn check_url_secrets(url: &str, expected: &[&str]) {
        assert_eq!(url_secrets(url), expected, "url `{url}`");
    }

    #[test]
    fn url_secrets_are_what_redact_url_hides() {
        check_url_secrets("https://example.com/x?page=2", &[]);
        check_url_secrets("https://bob:hunter2@example.com/x", &["hunter2"]);
        check_url_secrets("https://ghp_tok@example.com/x", &["ghp_tok"]);
        check_url_secrets(
            "https://example.com/x?Token=a%2Fb&page=2#frag",
            &["a%2Fb", "a/b"],
        );
        check_url_secrets("https://example.com/x?token=", &[]);
    }

    #[test]
    fn registered_urls_redact_their_basic_credentials() {
        let secrets = register_url("http://ghp_LoneUrlUser42@127.0.0.1:9/r?sig=sig-url-99");
        assert_eq!(secrets, ["ghp_LoneUrlUser42", "sig-url-99"]);
        let basic = base64::engine::general_purpose::STANDARD.encode("ghp_LoneUrlUser42:");
        assert_eq!(
            redact(&format!("Basic {basic} sig-url-99")),
            "Basic *** ***"
        );
    }

    #[test]
    fn secrets_debug_as_redacted() {
        let secret = SecretString::from("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose_secret(), "hunter2");
    }
}
