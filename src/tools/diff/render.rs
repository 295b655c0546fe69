//! A diff as text for a terminal, as Markdown to post on a pull request, or as JSON.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::selection::shift_text;
use super::{Change, Diff, Effect};
use crate::core::text::plural;

/// How to print a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per change.
    Text,
    /// A summary line and tables, for a pull-request comment or a job summary.
    Markdown,
    /// `{"changes": [...]}`.
    Json,
}

/// A condition or field value as shown: strings quoted, the rest as JSON.
fn value(v: &Value) -> String {
    v.to_string()
}

/// A route's effect in a few words.
fn effect(e: &Option<Effect>) -> String {
    match e {
        None => "no route (403 no_route)".into(),
        Some(Effect::Public { .. }) => "public".into(),
        Some(Effect::Protected { resource, role }) => format!("{} on {resource}", role.as_str()),
    }
}

fn conditions(map: &Map<String, Value>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

/// The claims change as `key: old → new` items.
fn claims_text(added: &Map<String, Value>, removed: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    for (k, old) in conditions(removed) {
        match added.get(&k) {
            Some(new) => parts.push(format!("{k}: {old} → {}", value(new))),
            None => parts.push(format!("{k}: {old} → (removed)")),
        }
    }
    for (k, new) in conditions(added) {
        if !removed.contains_key(&k) {
            parts.push(format!("{k}: (none) → {new}"));
        }
    }
    parts.join(", ")
}

fn fields_text(fields: &Map<String, Value>) -> String {
    if fields.get("defined").and_then(|d| d.get("now")) == Some(&Value::Bool(true)) {
        return "added".into();
    }
    if fields.get("defined").and_then(|d| d.get("now")) == Some(&Value::Bool(false)) {
        return "removed".into();
    }
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}: {} → {}",
                value(v.get("was").unwrap_or(&Value::Null)),
                value(v.get("now").unwrap_or(&Value::Null))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A team's members added and removed as `+ a, - b`.
fn members_text(added: &[String], removed: &[String]) -> String {
    let plus = added.iter().map(|m| format!("+ {m}"));
    let minus = removed.iter().map(|m| format!("- {m}"));
    plus.chain(minus).collect::<Vec<_>>().join(", ")
}

/// A resource's parent as shown, `(none)` for a top-level resource.
fn parent(p: &Option<String>) -> String {
    p.clone().unwrap_or_else(|| "(none)".into())
}

fn route_where(route: &str, methods: &Option<Vec<String>>, host: &Option<String>) -> String {
    let mut s = match methods {
        Some(ms) => format!("{} {route}", ms.join(",")),
        None => route.to_owned(),
    };
    if let Some(h) = host {
        s.push_str(&format!(" (host {h})"));
    }
    s
}

impl Diff {
    /// The diff in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Text => self.text(),
            Format::Markdown => self.markdown(),
        }
    }

    /// One line: how many changes of each kind.
    pub fn summary(&self) -> String {
        if self.changes.is_empty() {
            return "no change in access, identities, SSOs or routes".into();
        }
        let count = |f: fn(&Change) -> bool| self.changes.iter().filter(|c| f(c)).count();
        let mut parts = Vec::new();
        let kinds: [(&str, usize); 11] = [
            (
                "granted",
                count(|c| matches!(c, Change::RoleGranted { .. })),
            ),
            (
                "revoked",
                count(|c| matches!(c, Change::RoleRevoked { .. })),
            ),
            (
                "role changed",
                count(|c| matches!(c, Change::RoleChanged { .. })),
            ),
            (
                "identity added",
                count(|c| matches!(c, Change::IdentityAdded { .. })),
            ),
            (
                "identity removed",
                count(|c| matches!(c, Change::IdentityRemoved { .. })),
            ),
            (
                "claims or selection changed",
                count(|c| {
                    matches!(
                        c,
                        Change::ClaimsChanged { .. }
                            | Change::SelectionShift { .. }
                            | Change::PossibleTie { .. }
                    )
                }),
            ),
            (
                "SSO changed",
                count(|c| matches!(c, Change::SsoChanged { .. })),
            ),
            (
                "enforcement changed",
                count(|c| matches!(c, Change::EnforcementChanged { .. })),
            ),
            (
                "team changed",
                count(|c| matches!(c, Change::TeamChanged { .. })),
            ),
            (
                "parent changed",
                count(|c| matches!(c, Change::ParentChanged { .. })),
            ),
            (
                "route changed",
                count(|c| matches!(c, Change::RouteChanged { .. })),
            ),
        ];
        for (name, n) in kinds {
            if n > 0 {
                parts.push(format!("{n} {name}"));
            }
        }
        format!(
            "{}: {}",
            plural(self.changes.len(), "change", "changes"),
            parts.join(", ")
        )
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            let line = match c {
                Change::RoleGranted { identity, resource, role } => {
                    format!("granted   {identity}: {} on {resource}", role.as_str())
                }
                Change::RoleRevoked { identity, resource, was } => {
                    format!("revoked   {identity}: {} on {resource}", was.as_str())
                }
                Change::RoleChanged { identity, resource, role, was } => format!(
                    "changed   {identity}: {} → {} on {resource}",
                    was.as_str(),
                    role.as_str()
                ),
                Change::IdentityAdded { identity, sso } => {
                    format!("identity  + {identity} (SSO {sso})")
                }
                Change::IdentityRemoved { identity, sso } => {
                    format!("identity  - {identity} (SSO {sso})")
                }
                Change::ClaimsChanged { identity, added, removed } => {
                    format!("claims    {identity}: {}", claims_text(added, removed))
                }
                Change::SelectionShift { identity, outranks, claims, was, .. } => {
                    format!("selection {}", shift_text(identity, outranks, *claims, *was))
                }
                Change::PossibleTie { identities, sso, claims } => format!(
                    "tie       {} and {} (SSO {sso}, {} each) can both match one token: it would be denied ambiguous_identity",
                    identities[0],
                    identities[1],
                    plural(*claims, "claim", "claims")
                ),
                Change::SsoChanged { sso, fields } => format!("sso       {sso}: {}", fields_text(fields)),
                Change::EnforcementChanged { resource, was, now } => format!(
                    "enforce   {resource}: {} → {now}",
                    was.unwrap_or("(new)")
                ),
                Change::TeamChanged { team, added, removed } => {
                    format!("team      {team}: {}", members_text(added, removed))
                }
                Change::ParentChanged { resource, was, now } => format!(
                    "parent    {resource}: {} → {}",
                    parent(was),
                    parent(now)
                ),
                Change::RouteChanged { route, methods, host, was, now } => format!(
                    "route     {}: {} → {}",
                    route_where(route, methods, host),
                    effect(was),
                    effect(now)
                ),
            };
            let _ = writeln!(out, "{line}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    fn markdown(&self) -> String {
        let mut out = format!("**claimgate diff**: {}\n", self.summary());
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut table = |title: &str, head: &[&str], rows: Vec<Vec<String>>| {
            if rows.is_empty() {
                return;
            }
            let _ = write!(out, "\n#### {title}\n\n| {} |\n|", head.join(" | "));
            for _ in head {
                out.push_str(" --- |");
            }
            out.push('\n');
            for row in rows {
                let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        };
        let code = |s: &str| format!("`{s}`");
        let mut granted = Vec::new();
        let mut revoked = Vec::new();
        let mut changed = Vec::new();
        let mut identities = Vec::new();
        let mut ssos = Vec::new();
        let mut routes = Vec::new();
        let mut enforcement = Vec::new();
        let mut teams = Vec::new();
        let mut parents = Vec::new();
        for c in &self.changes {
            match c {
                Change::RoleGranted { identity, resource, role } => {
                    granted.push(vec![code(identity), code(resource), role.as_str().into()])
                }
                Change::RoleRevoked { identity, resource, was } => {
                    revoked.push(vec![code(identity), code(resource), was.as_str().into()])
                }
                Change::RoleChanged { identity, resource, role, was } => changed.push(vec![
                    code(identity),
                    code(resource),
                    was.as_str().into(),
                    role.as_str().into(),
                ]),
                Change::IdentityAdded { identity, sso } => {
                    identities.push(vec![code(identity), code(sso), "added".into()])
                }
                Change::IdentityRemoved { identity, sso } => {
                    identities.push(vec![code(identity), code(sso), "removed".into()])
                }
                Change::ClaimsChanged { identity, added, removed } => identities.push(vec![
                    code(identity),
                    String::new(),
                    format!("claims: {}", claims_text(added, removed)),
                ]),
                Change::SelectionShift { identity, outranks, sso, claims, was } => identities.push(vec![
                    code(identity),
                    code(sso),
                    shift_text(identity, outranks, *claims, *was),
                ]),
                Change::PossibleTie { identities: pair, sso, claims } => identities.push(vec![
                    format!("{} and {}", code(&pair[0]), code(&pair[1])),
                    code(sso),
                    format!(
                        "can both match one token with {} each: it would be denied ambiguous_identity",
                        plural(*claims, "claim", "claims")
                    ),
                ]),
                Change::SsoChanged { sso, fields } => ssos.push(vec![code(sso), fields_text(fields)]),
                Change::EnforcementChanged { resource, was, now } => enforcement.push(vec![
                    code(resource),
                    was.unwrap_or("(new)").into(),
                    (*now).into(),
                ]),
                Change::TeamChanged { team, added, removed } => teams.push(vec![
                    code(team),
                    added.iter().map(|m| code(m)).collect::<Vec<_>>().join(", "),
                    removed.iter().map(|m| code(m)).collect::<Vec<_>>().join(", "),
                ]),
                Change::ParentChanged { resource, was, now } => {
                    parents.push(vec![code(resource), parent(was), parent(now)])
                }
                Change::RouteChanged { route, methods, host, was, now } => routes.push(vec![
                    code(route),
                    methods.as_ref().map_or("any".into(), |m| m.join(", ")),
                    host.clone().unwrap_or_else(|| "any".into()),
                    effect(was),
                    effect(now),
                ]),
            }
        }
        table("Granted", &["identity", "resource", "role"], granted);
        table("Revoked", &["identity", "resource", "was"], revoked);
        table("Changed", &["identity", "resource", "was", "now"], changed);
        table("Identities", &["identity", "SSO", "change"], identities);
        table("SSOs", &["SSO", "change"], ssos);
        table("Enforcement", &["resource", "was", "now"], enforcement);
        table(
            "Teams",
            &["team", "members added", "members removed"],
            teams,
        );
        table(
            "Parents",
            &["resource", "parent was", "parent now"],
            parents,
        );
        table(
            "Routes",
            &["route", "methods", "host", "was", "now"],
            routes,
        );
        for note in &self.notes {
            let _ = writeln!(out, "\n> note: {note}");
        }
        out
    }
}
