//! `claimgate who-can`: every identity holding a role on a resource, and what a token needs
//! to be that identity; or every resource one identity holds a role on. For access reviews,
//! answered from the files alone. Roles are effective: the identity's own bindings and its
//! teams', on the resource and on its ancestors, each with the grant that gives it.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::core::config::Config;
use crate::core::role::Role;
use crate::core::snapshot::{Held, Snapshot};
use crate::tools::grant::{candidates, Via};

/// Why a question could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// `resources` does not define the resource.
    #[error("resource {resource:?} is not defined in resources{}", hint(.similar))]
    UnknownResource {
        /// The resource asked about.
        resource: String,
        /// Defined resources with the same kind, to catch typos.
        similar: Vec<String>,
    },
    /// `external_identities` does not define the identity.
    #[error("identity {identity:?} is not defined in external_identities{}", hint(.similar))]
    UnknownIdentity {
        /// The identity asked about.
        identity: String,
        /// Defined identities sharing its first letters, to catch typos.
        similar: Vec<String>,
    },
}

fn hint(similar: &[String]) -> String {
    if similar.is_empty() {
        String::new()
    } else {
        format!(" (defined: {})", similar.join(", "))
    }
}

/// One identity holding a role on the resource.
#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    /// The external identity.
    pub identity: String,
    /// Where it is defined.
    pub location: Option<String>,
    /// Its effective role on the resource.
    pub role: Role,
    /// The grant that gives the role: direct, through a team, or inherited from an ancestor.
    pub via: Via,
    /// The SSO whose tokens it matches.
    pub sso: String,
    /// That SSO's issuer (the token's `iss`).
    pub issuer: String,
    /// The audiences the token's `aud` must name one of.
    pub audiences: Vec<String>,
    /// The claims the token must carry (keys starting with `/` are JSON Pointers): a value,
    /// a list (any of), or `{like|not|not_like|present: …}`.
    pub claims: Map<String, Value>,
    /// Each condition in words, for the text form (`repository="acme/api"`,
    /// `sub like "repo:acme/*"`).
    #[serde(skip)]
    pub conditions: Vec<String>,
}

/// Who holds at least a role on one resource.
#[derive(Debug, Clone, Serialize)]
pub struct WhoCan {
    /// The resource.
    pub resource: String,
    /// The least role asked about, if any.
    pub at_least: Option<Role>,
    /// Whether the resource is in dry run: its denials are let through and only reported.
    pub dry_run: bool,
    /// Every identity holding it, highest role first.
    pub holders: Vec<Holder>,
}

/// Every identity holding a role (at least `at_least`, if given) on `resource`.
///
/// `config` (the files the snapshot came from) adds where each identity is defined.
pub fn who_can(
    snap: &Snapshot,
    config: Option<&Config>,
    resource: &str,
    at_least: Option<Role>,
) -> Result<WhoCan, AuditError> {
    if !snap.has_resource(resource) {
        let kind = resource.split_once(':').map(|(k, _)| k).unwrap_or(resource);
        let mut similar: Vec<String> = config
            .map(|c| {
                c.resources
                    .iter()
                    .map(|r| r.spec.fqn.clone())
                    .filter(|f| f.split_once(':').is_some_and(|(k, _)| k == kind))
                    .take(10)
                    .collect()
            })
            .unwrap_or_default();
        similar.sort();
        return Err(AuditError::UnknownResource {
            resource: resource.to_owned(),
            similar,
        });
    }
    let mut holders: Vec<Holder> = candidates(snap, resource)
        .into_iter()
        .filter_map(|i| Some((i, snap.held(resource, i)?)))
        .filter(|(_, held)| at_least.is_none_or(|min| held.role >= min))
        .filter_map(|(i, held)| {
            let identity = snap.identities.get(i)?;
            let sso = snap.ssos.get(identity.sso)?;
            let location = config.and_then(|c| c.identity_place(&identity.name));
            Some(Holder {
                identity: identity.name.to_string(),
                location,
                role: held.role,
                via: Via::of(snap, &held),
                sso: sso.name.to_string(),
                issuer: sso.issuer.to_string(),
                audiences: sso.audiences.iter().map(|a| a.to_string()).collect(),
                claims: identity
                    .claims
                    .iter()
                    .map(|c| (c.key.to_string(), c.condition.to_json()))
                    .collect(),
                conditions: identity
                    .claims
                    .iter()
                    .map(|c| match c.condition.exact() {
                        Some(v) => format!("{}={}", c.key, v.to_json()),
                        None => format!("{} {}", c.key, c.condition.phrase()),
                    })
                    .collect(),
            })
        })
        .collect();
    holders.sort_by(|a, b| {
        b.role
            .cmp(&a.role)
            .then_with(|| a.identity.cmp(&b.identity))
    });
    Ok(WhoCan {
        resource: resource.to_owned(),
        at_least,
        dry_run: snap.dry_run(resource),
        holders,
    })
}

impl fmt::Display for WhoCan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.holders.len() {
            0 => "no identity holds".to_owned(),
            1 => "1 identity holds".to_owned(),
            n => format!("{n} identities hold"),
        };
        match self.at_least {
            Some(min) => writeln!(f, "{}: {who} {} or higher", self.resource, min.as_str())?,
            None => writeln!(f, "{}: {who} a role", self.resource)?,
        }
        if self.dry_run {
            writeln!(
                f,
                "  DRY RUN: denials on {} are let through (with x-claimgate-dry-run) and only logged: every request routed to it reaches the upstream",
                self.resource
            )?;
        }
        for h in &self.holders {
            write!(f, "  {:<8} {}", h.role.as_str(), h.identity)?;
            match &h.location {
                Some(l) => writeln!(f, " ({l})")?,
                None => writeln!(f)?,
            }
            writeln!(f, "           granted {}", h.via.describe(&self.resource))?;
            writeln!(
                f,
                "           token: iss {:?} (SSO {}), aud one of {}",
                h.issuer,
                h.sso,
                h.audiences.join(", ")
            )?;
            if h.conditions.is_empty() {
                writeln!(f, "           claims: none (any token of the SSO)")?;
            } else {
                writeln!(f, "           claims: {}", h.conditions.join(", "))?;
            }
        }
        if !self.holders.is_empty() {
            writeln!(
                f,
                "A token with these claims selects the identity unless another identity of the same SSO with more claims also matches it."
            )?;
        }
        Ok(())
    }
}

/// One declared resource an identity holds a role on.
#[derive(Debug, Clone, Serialize)]
pub struct Holding {
    /// The resource.
    pub resource: String,
    /// The identity's effective role on it.
    pub role: Role,
    /// The grant that gives the role.
    pub via: Via,
    /// Whether the resource is in dry run (its own or inherited): its denials are let through.
    pub dry_run: bool,
}

/// Every declared resource one identity holds a role on.
#[derive(Debug, Clone, Serialize)]
pub struct Holdings {
    /// The identity.
    pub identity: String,
    /// Where it is defined.
    pub location: Option<String>,
    /// The SSO whose tokens it matches.
    pub sso: String,
    /// The teams it is a member of.
    pub teams: Vec<String>,
    /// The least role asked about, if any.
    pub at_least: Option<Role>,
    /// Each resource, in configuration order.
    pub resources: Vec<Holding>,
}

/// Every declared resource `identity` holds a role (at least `at_least`, if given) on.
pub fn held_by(
    snap: &Snapshot,
    config: Option<&Config>,
    identity: &str,
    at_least: Option<Role>,
) -> Result<Holdings, AuditError> {
    let Some(index) = snap.identities.iter().position(|i| &*i.name == identity) else {
        let prefix: String = identity.chars().take(3).collect();
        let mut similar: Vec<String> = snap
            .identities
            .iter()
            .map(|i| i.name.to_string())
            .filter(|n| n.starts_with(&prefix))
            .take(10)
            .collect();
        similar.sort();
        return Err(AuditError::UnknownIdentity {
            identity: identity.to_owned(),
            similar,
        });
    };
    let sso = snap
        .ssos
        .get(snap.identities[index].sso)
        .map_or(String::new(), |s| s.name.to_string());
    let resources = snap
        .effective_roles(index)
        .into_iter()
        .filter(|(_, held)| at_least.is_none_or(|min| held.role >= min))
        .map(|(fqn, held): (&str, Held)| Holding {
            resource: fqn.to_owned(),
            role: held.role,
            via: Via::of(snap, &held),
            dry_run: snap.dry_run(fqn),
        })
        .collect();
    Ok(Holdings {
        identity: identity.to_owned(),
        location: config.and_then(|c| c.identity_place(identity)),
        sso,
        teams: snap
            .teams_of(index)
            .iter()
            .filter_map(|t| snap.teams.get(*t as usize))
            .map(|t| t.name.to_string())
            .collect(),
        at_least,
        resources,
    })
}

impl fmt::Display for Holdings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.at_least {
            Some(min) => format!("{} or higher", min.as_str()),
            None => "a role".to_owned(),
        };
        let count = match self.resources.len() {
            1 => "1 resource".to_owned(),
            n => format!("{n} resources"),
        };
        write!(f, "{} holds {what} on {count}", self.identity)?;
        match &self.location {
            Some(l) => writeln!(f, " ({l}, SSO {})", self.sso)?,
            None => writeln!(f, " (SSO {})", self.sso)?,
        }
        if !self.teams.is_empty() {
            let teams: Vec<String> = self.teams.iter().map(|t| format!("team:{t}")).collect();
            writeln!(f, "  member of {}", teams.join(", "))?;
        }
        for h in &self.resources {
            write!(f, "  {:<8} {}", h.role.as_str(), h.resource)?;
            if h.dry_run {
                // As the resource form says: every request routed to it reaches the upstream.
                writeln!(f, " (DRY RUN: denials are let through and only logged)")?;
            } else {
                writeln!(f)?;
            }
            writeln!(f, "           granted {}", h.via.describe(&h.resource))?;
        }
        Ok(())
    }
}
