//! Reading a route's path template and resource template, once, when the snapshot is built.

use super::normalize::{decoded_literal, flaw};
use super::{err, Part, ResourceTemplate, RouteError, Seg, MAX_VARS, NOT_UTF8};

fn valid_var(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A parsed path template: its segments and its variable names.
type Template = (Box<[Seg]>, Box<[Box<str>]>);

pub(super) fn parse_template(t: &str) -> Result<Template, RouteError> {
    if !t.starts_with('/') {
        return Err(err("path", "must start with '/'"));
    }
    let body = &t[1..];
    let body = body.strip_suffix('/').unwrap_or(body);
    let mut segs = Vec::new();
    let mut vars: Vec<Box<str>> = Vec::new();
    if body.is_empty() {
        return Ok((segs.into(), vars.into()));
    }
    let parts: Vec<&str> = body.split('/').collect();
    for (i, s) in parts.iter().enumerate() {
        if s.is_empty() {
            return Err(err("path", "empty segment ('//')"));
        }
        if let Some(inner) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            let (rest, name) = match inner.strip_prefix('*') {
                Some(n) => (true, n),
                None => (false, inner),
            };
            if !valid_var(name) {
                return Err(err(
                    "path",
                    format!("{{{inner}}}: variable names are letters, digits and '_'"),
                ));
            }
            if vars.iter().any(|v| &**v == name) {
                return Err(err("path", format!("variable {{{name}}} appears twice")));
            }
            if rest && i + 1 != parts.len() {
                return Err(err("path", format!("{{*{name}}} must be the last segment")));
            }
            if vars.len() == MAX_VARS {
                return Err(err("path", format!("at most {MAX_VARS} variables")));
            }
            vars.push(name.into());
            segs.push(if rest { Seg::Rest } else { Seg::Var });
        } else if s.contains(['{', '}']) {
            return Err(err(
                "path",
                format!("segment {s:?}: a variable must be a whole segment, like {{name}}"),
            ));
        } else if let Some(why) = flaw(s) {
            return Err(err("path", format!("segment {s:?}: {why}")));
        } else {
            let lit = decoded_literal(s)
                .ok_or_else(|| err("path", format!("segment {s:?}: {NOT_UTF8}")))?;
            segs.push(Seg::Lit(lit));
        }
    }
    Ok((segs.into(), vars.into()))
}

pub(super) fn parse_resource(r: &str, vars: &[Box<str>]) -> Result<ResourceTemplate, RouteError> {
    let mut parts = Vec::new();
    let mut rest = r;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Lit(rest[..open].into()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| err("resource", "unclosed '{'"))?
            + open;
        let name = &rest[open + 1..close];
        let idx = vars.iter().position(|v| &**v == name).ok_or_else(|| {
            err(
                "resource",
                format!("{{{name}}} is not a variable of the path"),
            )
        })?;
        parts.push(Part::Var(idx));
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(err("resource", "unmatched '}'"));
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.into()));
    }
    Ok(ResourceTemplate {
        parts: parts.into(),
        text: r.into(),
    })
}
