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
mod key_source;
/// The guard against identities any tenant of a shared issuer could obtain.
mod tenant;

pub use compile::compile_with;
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

/// One resource and who holds which role on it.
#[derive(Debug, Clone, Default)]
pub struct Resource {
    bindings: HashMap<usize, Role>,
    enforcement: Option<Enforcement>,
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
    resources: HashMap<Arc<str>, Resource>,
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

    /// The role the identity (an index into [`Snapshot::identities`]) holds on `resource`.
    pub fn role_of(&self, resource: &str, identity: usize) -> Option<Role> {
        self.binding(resource, identity).map(|(_, role)| role)
    }

    /// [`Snapshot::role_of`], with the resource's shared name (what a grant carries).
    pub fn binding(&self, resource: &str, identity: usize) -> Option<(&Arc<str>, Role)> {
        let (name, r) = self.resources.get_key_value(resource)?;
        r.bindings.get(&identity).map(|&role| (name, role))
    }

    /// Whether denials on `resource` are let through and only reported (`enforcement: dry_run`).
    pub fn dry_run(&self, resource: &str) -> bool {
        self.enforcement(resource) == Some(Enforcement::DryRun)
    }

    /// The `enforcement` a resource sets, if it sets one.
    pub fn enforcement(&self, resource: &str) -> Option<Enforcement> {
        self.resources.get(resource).and_then(|r| r.enforcement)
    }

    /// Every resource's FQN, in no particular order.
    pub fn resource_names(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(|k| &**k)
    }

    /// Whether a resource is defined.
    pub fn has_resource(&self, fqn: &str) -> bool {
        self.resources.contains_key(fqn)
    }

    /// Every binding of a resource: identity index and role.
    pub fn bindings(&self, fqn: &str) -> Vec<(usize, Role)> {
        let mut v: Vec<(usize, Role)> = self
            .resources
            .get(fqn)
            .map(|r| r.bindings.iter().map(|(i, r)| (*i, *r)).collect())
            .unwrap_or_default();
        v.sort();
        v
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

#[cfg(test)]
mod tests;
