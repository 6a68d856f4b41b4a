//! The template engine: metadata-action's Handlebars subset (`{{branch}}`,
//! `{{sha}}`, `{{date 'YYYYMMDD'}}`, version parts) parsed and evaluated.

use super::*;

pub(super) struct VersionVars {
    pub(super) raw: String,
    pub(super) version: String,
    pub(super) major: String,
    pub(super) minor: String,
    pub(super) patch: String,
}

/// Which names a template may use, as in metadata-action: semver and
/// pep440 patterns see the version's parts, schedule patterns the dates,
/// everything else the global expressions.
pub(super) enum Scope<'a> {
    Global,
    Version(&'a VersionVars),
    Schedule,
}

impl Scope<'_> {
    pub(super) fn valid_names(&self) -> &'static str {
        match self {
            Scope::Global => {
                "branch, tag, sha, base_ref, is_default_branch, is_not_default_branch, date, commit_date"
            }
            Scope::Version(_) => "version, major, minor, patch, raw",
            Scope::Schedule => "date, commit_date",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expr {
    pub(super) name: String,
    pub(super) args: Vec<String>,
    pub(super) hash: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    Text(String),
    Expr(Expr),
}

/// Parses a handlebars-style template: text and `{{name 'arg' key='value'}}`.
pub(super) fn parse_template(template: &str) -> Result<Vec<Piece>, TagError> {
    let error = |reason: &str| TagError::Expression {
        template: template.to_owned(),
        reason: reason.to_owned(),
    };
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = find_close(after).ok_or_else(|| error("`{{` is not closed by `}}`"))?;
        let tokens = tokenize(&after[..end]).map_err(|reason| error(&reason))?;
        let mut tokens = tokens.into_iter();
        let Some(Token::Word(name)) = tokens.next() else {
            return Err(error("`{{}}` names no expression"));
        };
        if name.starts_with(['#', '/', '!', '>', '^']) {
            return Err(error(&format!(
                "`{{{{{name}` blocks, comments and partials are not supported"
            )));
        }
        let mut expr = Expr {
            name,
            args: Vec::new(),
            hash: Vec::new(),
        };
        for token in tokens {
            match token {
                Token::Quoted(arg) => expr.args.push(arg),
                Token::Word(word) => match word.split_once('=') {
                    Some((key, value)) => expr.hash.push((key.to_owned(), unquote(value))),
                    None => expr.args.push(word),
                },
            }
        }
        pieces.push(Piece::Expr(expr));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// The position of the `}}` closing an expression, skipping quoted strings.
pub(super) fn find_close(text: &str) -> Option<usize> {
    let mut quote = None;
    for (index, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '}') if text[index..].starts_with("}}") => return Some(index),
            (None, _) => {}
        }
    }
    None
}

pub(super) enum Token {
    Word(String),
    Quoted(String),
}

pub(super) fn tokenize(inner: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = inner.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '\'' || c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c => break,
                    Some(other) => text.push(other),
                    None => return Err(format!("a `{c}` string is not closed")),
                }
            }
            tokens.push(Token::Quoted(text));
        } else {
            let mut word = String::new();
            let mut quote = None;
            while let Some(&c) = chars.peek() {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c.is_whitespace() => break,
                    None if c == '\'' || c == '"' => quote = Some(c),
                    None => {}
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

pub(super) fn unquote(value: &str) -> String {
    for q in ['\'', '"'] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// Renders a template in a scope.
pub(super) fn eval(
    template: &str,
    scope: &Scope<'_>,
    ctx: &TagContext,
) -> Result<String, TagError> {
    let mut out = String::new();
    for piece in parse_template(template)? {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Expr(expr) => out.push_str(&eval_expr(template, &expr, scope, ctx)?),
        }
    }
    Ok(out)
}

pub(super) fn eval_expr(
    template: &str,
    expr: &Expr,
    scope: &Scope<'_>,
    ctx: &TagContext,
) -> Result<String, TagError> {
    let error = |reason: String| TagError::Expression {
        template: template.to_owned(),
        reason,
    };
    let name = expr.name.as_str();
    if name == "date" || name == "commit_date" {
        if matches!(scope, Scope::Version(_)) {
            return Err(error(format!(
                "`{name}` is not available here; valid names: {}",
                scope.valid_names()
            )));
        }
        let [format] = expr.args.as_slice() else {
            return Err(error(format!(
                "`{name}` takes one quoted format, as in `{{{{{name} 'YYYYMMDD'}}}}`"
            )));
        };
        let mut tz = jiff::tz::TimeZone::UTC;
        for (key, value) in &expr.hash {
            if key != "tz" {
                return Err(error(format!(
                    "unknown `{key}` attribute of `{name}`; valid: tz"
                )));
            }
            tz = jiff::tz::TimeZone::get(value).map_err(|_| {
                error(format!(
                    "unknown time zone `{value}` (use an IANA name such as `Europe/Paris`)"
                ))
            })?;
        }
        let time = if name == "date" {
            ctx.now
        } else {
            ctx.commit_date
        };
        return Ok(format_moment(&time.to_zoned(tz), format));
    }
    if !expr.args.is_empty() || !expr.hash.is_empty() {
        return Err(error(format!("`{name}` takes no arguments")));
    }
    let value = match (scope, name) {
        (Scope::Version(vars), "raw") => vars.raw.clone(),
        (Scope::Version(vars), "version") => vars.version.clone(),
        (Scope::Version(vars), "major") => vars.major.clone(),
        (Scope::Version(vars), "minor") => vars.minor.clone(),
        (Scope::Version(vars), "patch") => vars.patch.clone(),
        (Scope::Global, "branch") => ctx.branch().unwrap_or_default().to_owned(),
        (Scope::Global, "tag") => ctx.tag().unwrap_or_default().to_owned(),
        (Scope::Global, "sha") => ctx.short_sha().to_owned(),
        (Scope::Global, "is_default_branch") => ctx.is_default_branch().to_string(),
        // Same as metadata-action: the negation of `{{is_default_branch}}`.
        (Scope::Global, "is_not_default_branch") => (!ctx.is_default_branch()).to_string(),
        (Scope::Global, "base_ref") => {
            if ctx.tag().is_some() {
                ctx.base_ref
                    .as_deref()
                    .map(|r| r.strip_prefix("refs/heads/").unwrap_or(r).to_owned())
                    .unwrap_or_default()
            } else if ctx.pr().is_some() {
                ctx.pr_base_ref.clone().unwrap_or_default()
            } else {
                String::new()
            }
        }
        _ => {
            return Err(error(format!(
                "unknown expression `{{{{{name}}}}}`; valid names: {}",
                scope.valid_names()
            )));
        }
    };
    Ok(value)
}
