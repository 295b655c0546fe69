//! The compiled form of one configuration: immutable and indexed for the request path.
//!
//! [`compile_with`] validates the whole parsed [`Config`](crate::core::config::Config) (names,
//! references, roles, routes, key files) and builds every lookup table a check needs: SSOs by
//! issuer, identities per SSO sorted by claim count, role bindings by resource. A check then
//! only reads.
//!
//! - `compile.rs`: one function per section of the configuration.
//! - `context.rs`: what every section's compiler shares (the diagnostics found so far).
//! - `key_source.rs`: where an SSO's keys come from, and remote key sets kept across reloads.
//! - `enforcement.rs`: a resource's `enforcement` (dry run is warned about).
//! - `hierarchy.rs`: teams and their members, each resource's parent and ancestor chain.
//!
//! The effective role of an identity on a resource is the highest role granted to it, or to
//! a team it belongs to, on the resource or any ancestor. Each resource keeps its chain
//! (itself, then every ancestor) and each identity its teams, both built here, so a check
//! makes at most one lookup per (ancestor × (teams + 1)) and walks nothing else.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::core::config::Diagnostic;
use crate::core::decision::Enforcement;
use crate::core::identity::Identity;
use crate::core::keys::remote::RemoteKeySet;
use crate::core::keys::{AlgSet, KeySet};
use crate::core::role::Role;
use crate::core::routing::Router;

/// Conditions of an identity's claims, compiled from YAML.
pub mod claims;
mod compile;
mod context;
mod enforcement;
mod hierarchy;
mod key_source;
/// The guard against identities any tenant of a shared issuer could obtain.
mod tenant;

pub use compile::compile_with;
pub use hierarchy::MAX_DEPTH;
pub use key_source::KeySource;

/// One compiled SSO integration.
#[derive(Debug)]
pub struct Sso {
    /// The SSO FQN (shared with every grant it backs: no copy per check).
    pub name: Arc<str>,
    /// The exact issuer.
    pub issuer: Box<str>,
    /// Accepted audiences.
    pub audiences: Box<[Box<str>]>,
    /// Allowed algorithms.
    pub algorithms: AlgSet,
    /// Clock skew for `exp`/`nbf`, in seconds.
    pub leeway: u64,
    /// Whether login is enabled (then it backs no identity and verifies no token).
    pub login_enabled: bool,
    /// Where the keys come from.
    pub source: KeySource,
    /// The current keys, swapped on their own when they are refreshed.
    pub keys: Arc<ArcSwap<KeySet>>,
    /// The remote key set, which a host fills (shared across snapshots while the source is
    /// unchanged).
    pub remote: Option<Arc<RemoteKeySet>>,
    /// The committed development key, when this SSO's key file holds it.
    pub dev_key: Option<crate::core::config::DevKeyUse>,
}

impl Sso {
    /// Whether this SSO's first key load has finished (always, for a key file).
    pub fn keys_loaded(&self) -> bool {
        self.remote.as_ref().is_none_or(|r| r.first_load_done())
    }
}

/// Who a collaborator binding names: an external identity or a team (indexes into
/// [`Snapshot::identities`] and [`Snapshot::teams`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// An external identity.
    Identity(u32),
    /// A team.
    Team(u32),
}

/// One team: a named group of external identities, bound as one collaborator.
#[derive(Debug, Clone)]
pub struct Team {
    /// The team's name (shared with every grant it backs).
    pub name: Arc<str>,
    /// Its members, as indexes into [`Snapshot::identities`], in configuration order.
    pub members: Box<[usize]>,
}

/// One resource, where it sits in the hierarchy and who holds which role on it.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    name: Arc<str>,
    parent: Option<u32>,
    /// Itself, then its parent, its parent's parent, ….
    chain: Box<[u32]>,
    bindings: hashbrown::HashMap<Subject, Role>,
    /// Whether any binding names an identity, and any a team: a check looks up only the kinds
    /// of subject a resource has bindings for.
    binds_identities: bool,
    binds_teams: bool,
    enforcement: Option<Enforcement>,
    /// Its own `enforcement`, else its nearest ancestor's.
    inherited_enforcement: Option<Enforcement>,
}

/// Where a request's target sits: the declared resource itself, or (for a resource that is
/// not declared) the declared parent the request named. Found once per check by
/// [`Snapshot::place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    target: Option<u32>,
    start: Option<u32>,
}

impl Place {
    /// Whether the target itself is a declared resource.
    pub fn is_declared(&self) -> bool {
        self.target.is_some()
    }

    /// Whether the target reaches any declared resource (itself or a parent).
    pub fn is_placed(&self) -> bool {
        self.start.is_some()
    }
}

/// The grant that gives an identity its effective role on a resource: the highest role,
/// and of equal ones the nearest resource, and there the identity's own before a team's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The effective role.
    pub role: Role,
    /// Whom the binding names: the identity, or a team it is a member of.
    pub subject: Subject,
    /// The resource the binding is on (an index; see [`Snapshot::resource_name`]).
    pub on: u32,
    /// Whether the binding is on an ancestor rather than on the target itself.
    pub inherited: bool,
}

/// The compiled, immutable configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Which configuration this is; set by the [`crate::core::store::Store`] when it is installed.
    pub generation: u64,
    /// Content hash of the files it came from, key files included.
    pub hash: Arc<str>,
    /// Files outside the YAML that the configuration reads (key files).
    pub referenced_files: Vec<std::path::PathBuf>,
    /// SSO integrations, in configuration order.
    pub ssos: Vec<Sso>,
    issuers: HashMap<Box<str>, usize>,
    /// External identities, in configuration order.
    pub identities: Vec<Identity>,
    by_sso: Vec<Vec<usize>>,
    /// The identities' exact conditions, indexed: what a check selects with.
    pub identity_index: crate::core::identity::Index,
    identity_by_name: HashMap<Box<str>, usize>,
    /// Teams, in configuration order.
    pub teams: Vec<Team>,
    team_by_name: HashMap<Box<str>, u32>,
    /// Each identity's teams (indexes into `teams`), by identity index.
    member_of: Vec<Box<[u32]>>,
    resources: Vec<Resource>,
    resource_by_fqn: HashMap<Arc<str>, u32>,
    binding_count: usize,
    /// The routes.
    pub router: Router,
    /// Warnings found while compiling.
    pub warnings: Vec<Diagnostic>,
}

impl Snapshot {
    /// The SSO (index and value) that verifies tokens with this exact issuer.
    pub fn sso_for_issuer(&self, iss: &str) -> Option<(usize, &Sso)> {
        self.issuers.get(iss).map(|&i| (i, &self.ssos[i]))
    }

    /// The identities of an SSO, most claims first.
    pub fn identities_of(&self, sso: usize) -> &[usize] {
        self.by_sso.get(sso).map(Vec::as_slice).unwrap_or(&[])
    }

    /// An identity by name.
    pub fn identity(&self, name: &str) -> Option<&Identity> {
        self.identity_by_name
            .get(name)
            .map(|&i| &self.identities[i])
    }

    /// The effective role of the identity (an index into [`Snapshot::identities`]) on the
    /// declared `resource`.
    pub fn role_of(&self, resource: &str, identity: usize) -> Option<Role> {
        self.held(resource, identity).map(|h| h.role)
    }

    /// The grant that gives the identity its effective role on the declared `resource`.
    pub fn held(&self, resource: &str, identity: usize) -> Option<Held> {
        self.held_at(self.place(resource, None), identity)
    }

    /// Where a target sits: `resource` itself when declared (its own parent wins), else
    /// `parent` when that is declared, else nowhere (no grant reaches it).
    pub fn place(&self, resource: &str, parent: Option<&str>) -> Place {
        match self.resource_by_fqn.get(resource) {
            Some(&i) => Place {
                target: Some(i),
                start: Some(i),
            },
            None => Place {
                target: None,
                start: parent.and_then(|p| self.resource_by_fqn.get(p).copied()),
            },
        }
    }

    /// The grant that gives the identity its effective role at `place`: one lookup per
    /// ancestor and subject (the identity and each of its teams), nothing allocated.
    pub fn held_at(&self, place: Place, identity: usize) -> Option<Held> {
        let start = place.start?;
        let teams = self.member_of.get(identity).map_or(&[][..], |t| &t[..]);
        let me = Subject::Identity(u32::try_from(identity).ok()?);
        let mut best: Option<Held> = None;
        for &on in self.resources[start as usize].chain.iter() {
            let res = &self.resources[on as usize];
            let mine = res.binds_identities.then_some(me);
            let theirs = if res.binds_teams { teams } else { &[] };
            let subjects = mine
                .into_iter()
                .chain(theirs.iter().map(|&t| Subject::Team(t)));
            let bindings = &res.bindings;
            for subject in subjects {
                if let Some(&role) = bindings.get(&subject) {
                    // Strictly higher only: the nearest resource, and the identity before
                    // its teams, names a grant of equal role.
                    if best.is_none_or(|b| role > b.role) {
                        best = Some(Held {
                            role,
                            subject,
                            on,
                            inherited: place.target != Some(on),
                        });
                    }
                }
            }
            if best.is_some_and(|b| b.role == Role::Manager) {
                break;
            }
        }
        best
    }

    /// The `enforcement` at `place`: the target's own, else its nearest ancestor's.
    pub fn enforcement_at(&self, place: Place) -> Option<Enforcement> {
        place
            .start
            .and_then(|i| self.resources[i as usize].inherited_enforcement)
    }

    /// The shared name of the declared target at `place`, if it is declared.
    pub fn declared_name(&self, place: Place) -> Option<&Arc<str>> {
        place.target.map(|i| &self.resources[i as usize].name)
    }

    /// The FQN of a resource by index (as in [`Held::on`]).
    pub fn resource_name(&self, index: u32) -> &Arc<str> {
        &self.resources[index as usize].name
    }

    /// A subject's shared name, without its kind.
    pub fn subject_name(&self, subject: Subject) -> &Arc<str> {
        match subject {
            Subject::Identity(i) => &self.identities[i as usize].name,
            Subject::Team(t) => &self.teams[t as usize].name,
        }
    }

    /// Whether denials on `resource` are let through and only reported (`enforcement:
    /// dry_run` on it or, when it sets none, on its nearest ancestor that does).
    pub fn dry_run(&self, resource: &str) -> bool {
        self.enforcement(resource) == Some(Enforcement::DryRun)
    }

    /// The `enforcement` a declared resource sets, else the one its nearest ancestor sets.
    pub fn enforcement(&self, resource: &str) -> Option<Enforcement> {
        self.enforcement_at(self.place(resource, None))
    }

    /// Every resource's FQN, in configuration order.
    pub fn resource_names(&self) -> impl Iterator<Item = &str> {
        self.resources.iter().map(|r| &*r.name)
    }

    /// Whether a resource is defined.
    pub fn has_resource(&self, fqn: &str) -> bool {
        self.resource_by_fqn.contains_key(fqn)
    }

    /// The declared parent of a declared resource.
    pub fn parent_of(&self, fqn: &str) -> Option<&str> {
        let r = &self.resources[*self.resource_by_fqn.get(fqn)? as usize];
        r.parent.map(|p| &*self.resources[p as usize].name)
    }

    /// The ancestors of a declared resource, nearest first (empty when it has none or is
    /// not declared).
    pub fn ancestors(&self, fqn: &str) -> impl Iterator<Item = &str> {
        let chain = self
            .resource_by_fqn
            .get(fqn)
            .map_or(&[][..], |&i| &self.resources[i as usize].chain[1..]);
        chain.iter().map(|&i| &*self.resources[i as usize].name)
    }

    /// Every binding of a resource to an external identity: identity index and role.
    pub fn bindings(&self, fqn: &str) -> Vec<(usize, Role)> {
        let mut v: Vec<(usize, Role)> = self
            .subject_bindings(fqn)
            .into_iter()
            .filter_map(|(s, r)| match s {
                Subject::Identity(i) => Some((i as usize, r)),
                Subject::Team(_) => None,
            })
            .collect();
        v.sort();
        v
    }

    /// Every binding written on a resource, to identities and teams, sorted by subject.
    pub fn subject_bindings(&self, fqn: &str) -> Vec<(Subject, Role)> {
        let mut v: Vec<(Subject, Role)> = self
            .resource_by_fqn
            .get(fqn)
            .map(|&i| {
                let r = &self.resources[i as usize];
                r.bindings.iter().map(|(s, r)| (*s, *r)).collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// A team by name: its index and value.
    pub fn team(&self, name: &str) -> Option<(u32, &Team)> {
        let &i = self.team_by_name.get(name)?;
        Some((i, &self.teams[i as usize]))
    }

    /// The teams an identity (an index into [`Snapshot::identities`]) is a member of.
    pub fn teams_of(&self, identity: usize) -> &[u32] {
        self.member_of.get(identity).map_or(&[], |t| &t[..])
    }

    /// Every declared resource on which the identity holds a role, with the grant that
    /// gives it, in configuration order of the resources.
    pub fn effective_roles(&self, identity: usize) -> Vec<(&str, Held)> {
        (0..self.resources.len() as u32)
            .filter_map(|i| {
                let place = Place {
                    target: Some(i),
                    start: Some(i),
                };
                let held = self.held_at(place, identity)?;
                Some((&*self.resources[i as usize].name, held))
            })
            .collect()
    }

    /// The SSOs whose key file holds the committed development key, and where.
    pub fn dev_key_files(&self) -> impl Iterator<Item = &crate::core::config::DevKeyUse> {
        self.ssos.iter().filter_map(|s| s.dev_key.as_ref())
    }

    /// Counts for logs: identities, bindings, routes.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.identities.len(),
            self.binding_count,
            self.router.routes().len(),
        )
    }

    /// Whether this is no configuration at all: no SSO integration (no token can be
    /// verified) and no route (nothing is public). Such a snapshot could only deny, so it
    /// is loaded but never ready, and every check is denied `not_ready` (see
    /// [`NO_CONFIGURATION`]).
    pub fn is_empty(&self) -> bool {
        self.ssos.is_empty() && self.router.routes().is_empty()
    }

    /// Whether this snapshot can answer checks: it is a configuration, and every SSO that
    /// verifies tokens has finished its first key load. `/readyz` and the gRPC health
    /// service both answer with this.
    pub fn is_ready(&self) -> bool {
        !self.is_empty() && self.awaiting_keys().next().is_none()
    }

    /// The SSOs that verify tokens and whose first key load has not finished.
    pub fn awaiting_keys(&self) -> impl Iterator<Item = &Sso> {
        self.ssos
            .iter()
            .filter(|s| !s.login_enabled && !s.keys_loaded())
    }
}

/// Why an empty configuration ([`Snapshot::is_empty`]) is not ready, and how to supply one:
/// for `/readyz` and the log.
pub const NO_CONFIGURATION: &str = "no configuration supplied: the configuration directory \
    defines no SSO integration and no route, so every request is denied; supply your own \
    configuration there (in Kubernetes: an overlay that replaces the claimgate-config \
    ConfigMap, or the git-sync overlay; deploy/kubernetes/overlays/dev runs the example)";

/// The prefix of collaborator subjects that name external identities.
pub const IDENTITY_SUBJECT: &str = "external-identity:";

/// The prefix of collaborator subjects that name teams.
pub const TEAM_SUBJECT: &str = "team:";

impl Subject {
    /// The prefix the configuration writes before the subject's name.
    pub fn prefix(self) -> &'static str {
        match self {
            Subject::Identity(_) => IDENTITY_SUBJECT,
            Subject::Team(_) => TEAM_SUBJECT,
        }
    }
}

#[cfg(test)]
mod tests;
