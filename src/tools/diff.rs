//! `claimgate diff`: what a change of configuration does to access, for the review of a pull
//! request.
//!
//! Both sides are loaded and validated exactly as `serve` would ([`crate::core::load`]), so what is
//! compared is **effective** access: collaborators of missing identities are already gone, and
//! each identity holds one role per resource (the one it is given, not the ones it implies).
//! Everything is compared by name or by effect, never by position, so moving entries between
//! files or reordering them changes nothing.
//!
//! - `access.rs`: roles granted, revoked and changed; identities added, removed; claims;
//!   team members and resource parents changed (the causes of inherited and team roles).
//! - `claims.rs`: the one place that reads a claim condition, to compare and to show it.
//! - `selection.rs`: which identity a token selects, where that provably shifts.
//! - `ssos.rs`: SSO integrations, field by field.
//! - `routes.rs`: routes by effect, probed with a request per route and method.
//! - `render.rs`: text and Markdown; `git.rs`: the base side read from a git revision.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::core::config::ConfigError;
use crate::core::load::{self, Loaded};
use crate::core::role::Role;

mod access;
mod claims;
mod git;
mod render;
mod routes;
mod selection;
mod ssos;

pub use git::{checkout, GitError};
pub use render::Format;

/// What a route gives a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum Effect {
    /// A role on a resource; variables of the path show as `{name}`.
    Protected {
        /// The resource.
        resource: String,
        /// The role required.
        role: Role,
    },
    /// No token needed.
    Public {
        /// Always true.
        public: bool,
    },
}

/// One change between the two configurations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// An identity holds a role on a resource it had none on.
    RoleGranted {
        /// The identity.
        identity: String,
        /// The resource.
        resource: String,
        /// The role it now holds.
        role: Role,
    },
    /// An identity no longer holds any role on a resource.
    RoleRevoked {
        /// The identity.
        identity: String,
        /// The resource.
        resource: String,
        /// The role it held.
        was: Role,
    },
    /// An identity holds another role on a resource.
    RoleChanged {
        /// The identity.
        identity: String,
        /// The resource.
        resource: String,
        /// The role it now holds.
        role: Role,
        /// The role it held.
        was: Role,
    },
    /// A new identity (or one that moved to another SSO, which is a new set of tokens).
    IdentityAdded {
        /// The identity.
        identity: String,
        /// Its SSO.
        sso: String,
    },
    /// An identity is gone (or moved to another SSO).
    IdentityRemoved {
        /// The identity.
        identity: String,
        /// The SSO it had.
        sso: String,
    },
    /// The claims an identity requires changed: conditions by claim key.
    ClaimsChanged {
        /// The identity.
        identity: String,
        /// Conditions that are new (a changed key is in both maps).
        added: Map<String, Value>,
        /// Conditions that are gone.
        removed: Map<String, Value>,
    },
    /// An identity now outranks another for every token that matches both.
    SelectionShift {
        /// The identity that now wins.
        identity: String,
        /// The identity it now wins over.
        outranks: String,
        /// Their SSO.
        sso: String,
        /// Claim counts now: the winner's, the other's.
        claims: [usize; 2],
        /// Claim counts before, in the same order.
        was: [usize; 2],
    },
    /// Two identities that one token could both match, with as many claims: such a token
    /// would be denied `ambiguous_identity`.
    PossibleTie {
        /// The two identities.
        identities: [String; 2],
        /// Their SSO.
        sso: String,
        /// How many claims each has.
        claims: usize,
    },
    /// An SSO integration changed, was added or was removed.
    SsoChanged {
        /// The SSO.
        sso: String,
        /// Each field that changed: `{"was": …, "now": …}`.
        fields: Map<String, Value>,
    },
    /// A resource went into dry run or out of it (`was: null`: a new resource in dry run).
    EnforcementChanged {
        /// The resource.
        resource: String,
        /// `enforce` or `dry_run` before.
        was: Option<&'static str>,
        /// `enforce` or `dry_run` now.
        now: &'static str,
    },
    /// A team's members changed (a new team: all added; a team removed: all removed).
    TeamChanged {
        /// The team.
        team: String,
        /// Identities that are now members.
        added: Vec<String>,
        /// Identities that are no longer members.
        removed: Vec<String>,
    },
    /// A resource moved in the hierarchy: what it inherits changed.
    ParentChanged {
        /// The resource.
        resource: String,
        /// Its parent before (`null`: none).
        was: Option<String>,
        /// Its parent now (`null`: none).
        now: Option<String>,
    },
    /// Requests that a route matches get another answer.
    RouteChanged {
        /// The route's path or prefix, as written.
        route: String,
        /// The methods affected, when not every method.
        #[serde(skip_serializing_if = "Option::is_none")]
        methods: Option<Vec<String>>,
        /// The host, when the requests are for one.
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// What they got (`null`: no route matched).
        was: Option<Effect>,
        /// What they get now.
        now: Option<Effect>,
    },
}

/// Every change between two configurations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    /// The changes: access first, then identities, selection, enforcement, teams, parents,
    /// SSOs and routes.
    pub changes: Vec<Change>,
    /// What the comparison could not examine in full (printed, never in the JSON).
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// Which configuration of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `--base`: the configuration before the change.
    Base,
    /// `--config`: the configuration after it.
    New,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Base => "base",
            Side::New => "new",
        })
    }
}

/// Why a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// One side is not a valid configuration.
    #[error("the {side} configuration ({shown}) is invalid:\n{source}")]
    Invalid {
        /// Which side.
        side: Side,
        /// How the side was named.
        shown: String,
        /// Every diagnostic.
        source: ConfigError,
    },
    /// The base could not be read from git.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Load and validate one side, as `serve` would; `shown` names it in errors.
pub fn load_side(side: Side, dir: &Path, shown: &str) -> Result<Loaded, DiffError> {
    load::load(dir).map_err(|source| DiffError::Invalid {
        side,
        shown: shown.to_owned(),
        source,
    })
}

/// Everything that differs between `base` and `new`.
pub fn diff(base: &Loaded, new: &Loaded) -> Diff {
    let mut out = Diff::default();
    let identities = access::Identities::pair(&base.snapshot, &new.snapshot);
    access::roles(&identities, base, new, &mut out.changes);
    access::identities(&identities, &mut out.changes);
    selection::shifts(&identities, &mut out);
    access::enforcement(&base.snapshot, &new.snapshot, &mut out.changes);
    access::teams(&base.snapshot, &new.snapshot, &mut out.changes);
    access::parents(&base.snapshot, &new.snapshot, &mut out.changes);
    ssos::ssos(base, new, &mut out.changes);
    routes::routes(
        &base.snapshot.router,
        &new.snapshot.router,
        &mut out.changes,
    );
    out
}

impl Diff {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

#[cfg(test)]
mod tests;
