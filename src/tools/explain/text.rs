//! The text form of an explanation: one section per stage, one line per step.

use std::fmt;

use super::{
    CandidateVerdict, CredentialsKind, Report, RouteInfo, SelectionOutcome, StepOutcome, TargetBy,
};
use crate::core::routing::RouteMiss;
use crate::core::text::plural;

pub(super) fn route_line(r: &RouteInfo) -> String {
    let mut s = format!(
        "routes[{}] {} {}",
        r.index,
        if r.prefix { "path_prefix" } else { "path" },
        r.path
    );
    if let Some(ms) = &r.methods {
        s.push_str(&format!(", methods {}", ms.join(", ")));
    }
    if let Some(h) = &r.host {
        s.push_str(&format!(", host {h}"));
    }
    if r.case_insensitive {
        s.push_str(", case_insensitive");
    }
    if let Some(l) = &r.location {
        s.push_str(&format!(" ({l})"));
    }
    s
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        write!(f, "request   {} {}", r.method, r.path)?;
        if !r.host.is_empty() {
            write!(f, " (host {})", r.host)?;
        }
        let credentials = match r.credentials {
            CredentialsKind::Missing => "missing",
            CredentialsKind::NotBearer => "not bearer",
            CredentialsKind::Multiple => "multiple",
            CredentialsKind::Bearer => "bearer",
        };
        writeln!(f, ", credentials: {credentials}")?;

        let t = &self.target;
        match t.by {
            TargetBy::ContextExtensions => writeln!(
                f,
                "target    context_extensions: resource {}, role {} (routes are not consulted)",
                r.resource.as_deref().unwrap_or("(none)"),
                r.role.as_deref().unwrap_or("(none)")
            )?,
            TargetBy::Route => {
                if let Some(route) = &t.route {
                    writeln!(f, "target    {}", route_line(route))?;
                }
                if !t.captures.is_empty() {
                    let caps: Vec<String> = t
                        .captures
                        .iter()
                        .map(|c| format!("{} = {}", c.name, c.value))
                        .collect();
                    writeln!(f, "            captured {}", caps.join(", "))?;
                }
                match (&t.resource, t.role) {
                    (Some(res), Some(role)) => writeln!(
                        f,
                        "            resource {res}, role {} required",
                        role.as_str()
                    )?,
                    _ => writeln!(f, "            public: no token needed")?,
                }
            }
            TargetBy::None => writeln!(f, "target    none")?,
        }
        for tried in &t.tried {
            writeln!(
                f,
                "  skipped {}: {} does not match",
                route_line(&tried.route),
                match tried.miss {
                    RouteMiss::Method => "method",
                    RouteMiss::Host => "host",
                    RouteMiss::Path => "path",
                }
            )?;
        }
        if let Some(p) = &t.problem {
            writeln!(f, "  problem {p}")?;
        }

        let k = &self.token;
        if !k.checked {
            writeln!(f, "token     not checked")?;
        } else {
            writeln!(f, "token")?;
            if let Some(h) = &k.header {
                writeln!(f, "  header  {h}")?;
            }
            if let Some(c) = &k.claims {
                writeln!(f, "  claims  {c}")?;
            }
            if let Some(load) = &k.keys {
                match (&load.keys, &load.error) {
                    (Some(n), _) => writeln!(
                        f,
                        "  keys    SSO {}: fetched {} from {}",
                        load.sso,
                        plural(*n, "usable key", "usable keys"),
                        load.source
                    )?,
                    (None, Some(e)) => writeln!(
                        f,
                        "  keys    SSO {}: fetching from {} failed: {e}",
                        load.sso, load.source
                    )?,
                    _ => {}
                }
            }
            for s in &k.steps {
                let mark = match s.outcome {
                    StepOutcome::Ok => "ok    ",
                    StepOutcome::Failed => "FAILED",
                    StepOutcome::NotReached => "-     ",
                };
                let step = s.step.name();
                match s.reason {
                    Some(reason) => {
                        writeln!(f, "  {mark}  {step:<10}{}: {}", reason.code(), s.detail)?
                    }
                    None => writeln!(f, "  {mark}  {step:<10}{}", s.detail)?,
                }
            }
            for h in &k.issuer_hints {
                writeln!(
                    f,
                    "  hint    SSO {} (issuer {:?}) {}",
                    h.sso, h.issuer, h.why
                )?;
            }
            if k.issuer.is_some() && k.sso.is_none() && k.issuer_hints.is_empty() {
                writeln!(f, "  hint    no configured issuer comes close")?;
            }
        }

        if let Some(sel) = &self.identity {
            writeln!(
                f,
                "identity  SSO {}: {}, most claims first",
                sel.sso,
                plural(sel.candidates.len(), "identity", "identities")
            )?;
            for c in &sel.candidates {
                let mark = match (c.verdict, c.would_match) {
                    (CandidateVerdict::Matched, _) => "match  ",
                    (CandidateVerdict::Unmatched, _) => "no     ",
                    (_, Some(true)) => "skipped",
                    _ => "no     ",
                };
                write!(
                    f,
                    "  {mark} {} ({})",
                    c.name,
                    plural(c.claim_count, "claim", "claims")
                )?;
                if let Some(l) = &c.location {
                    write!(f, " {l}")?;
                }
                match (c.verdict, c.would_match) {
                    (CandidateVerdict::NotReached, Some(true)) => {
                        writeln!(f, ": would match, but selection had already ended")?
                    }
                    (CandidateVerdict::NotReached, _) => writeln!(f, ": not reached by selection")?,
                    _ => writeln!(f)?,
                }
                for claim in &c.claims {
                    writeln!(f, "            {}", claim.text)?;
                }
            }
            let label = match sel.outcome {
                SelectionOutcome::Chosen => "chosen",
                SelectionOutcome::Ambiguous => "tie",
                SelectionOutcome::NoIdentity => "none",
            };
            writeln!(f, "  {label:<8}{}", sel.why)?;
        }

        if let Some(b) = &self.binding {
            match b.held {
                Some(role) => writeln!(
                    f,
                    "binding   {} is {} on {}; {} required",
                    b.identity,
                    role.as_str(),
                    b.resource,
                    b.required.as_str()
                )?,
                None => writeln!(
                    f,
                    "binding   {} has no role on {}; {} required",
                    b.identity,
                    b.resource,
                    b.required.as_str()
                )?,
            }
            if let Some(via) = &b.granted_by {
                writeln!(f, "          granted {}", via.describe(&b.resource))?;
            }
            if !b.defined {
                writeln!(f, "          {} is not defined in resources", b.resource)?;
            } else if b.collaborators.is_empty() && b.teams.is_empty() {
                writeln!(f, "          {} has no collaborators", b.resource)?;
            } else {
                let teams = b
                    .teams
                    .iter()
                    .map(|t| format!("team:{} {}", t.team, t.role.as_str()));
                let list: Vec<String> = b
                    .collaborators
                    .iter()
                    .map(|c| format!("{} {}", c.identity, c.role.as_str()))
                    .chain(teams)
                    .collect();
                writeln!(f, "          collaborators: {}", list.join(", "))?;
            }
        }

        let v = &self.verdict;
        if v.allowed && v.would_deny.is_none() {
            writeln!(f, "verdict   ALLOW (200): {}", v.detail)
        } else {
            match &v.would_deny {
                Some(would) => write!(f, "verdict   ALLOW (200) {would}: {}", v.detail)?,
                None => write!(
                    f,
                    "verdict   DENY ({}) {}: {}",
                    v.status, v.reason, v.detail
                )?,
            }
            match v.failed_step {
                Some(step) => writeln!(f, " [failed step: {}]", step.name())?,
                None => writeln!(f)?,
            }
            match &v.dry_run {
                Some(resource) => writeln!(
                    f,
                    "dry run   waived: {resource} is in dry run, so the server lets this request through with x-claimgate-dry-run: {}",
                    v.reason
                ),
                None => Ok(()),
            }
        }
    }
}
