//! The grant that gives an identity its effective role, named the same way by every tool:
//! `editor via team:release-bots on workspace:prod-ml (inherited by model:acme/llama-70b)`.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::core::role::Role;
use crate::core::snapshot::{Held, Snapshot, Subject};

/// How a grant reaches the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The identity's own binding on the resource itself.
    Direct,
    /// A binding of one of the identity's teams on the resource itself.
    Team,
    /// A binding (the identity's or a team's) on an ancestor of the resource.
    Inherited,
}

impl Reach {
    /// The word shown for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Direct => "direct",
            Reach::Team => "team",
            Reach::Inherited => "inherited",
        }
    }
}

/// The binding that decided an identity's effective role on a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Via {
    /// Whom the binding names: `external-identity:NAME` or `team:NAME`.
    pub subject: String,
    /// The resource the binding is on.
    pub resource: String,
    /// The role it grants.
    pub role: Role,
    /// Whether the binding is on an ancestor rather than on the resource itself.
    pub inherited: bool,
    /// Direct, team or inherited, in one word.
    pub reach: Reach,
}

impl Via {
    /// The grant `held`, with its names resolved through `snap`.
    pub fn of(snap: &Snapshot, held: &Held) -> Via {
        let reach = match (held.inherited, held.subject) {
            (true, _) => Reach::Inherited,
            (false, Subject::Team(_)) => Reach::Team,
            (false, Subject::Identity(_)) => Reach::Direct,
        };
        Via {
            subject: format!(
                "{}{}",
                held.subject.prefix(),
                snap.subject_name(held.subject)
            ),
            resource: snap.resource_name(held.on).to_string(),
            role: held.role,
            inherited: held.inherited,
            reach,
        }
    }

    /// The grant in words, for the role it gives on `target`.
    pub fn describe<'a>(&'a self, target: &'a str) -> Described<'a> {
        Described { via: self, target }
    }
}

/// A grant shown against the resource it gives a role on (see [`Via::describe`]).
#[derive(Debug, Clone, Copy)]
pub struct Described<'a> {
    via: &'a Via,
    target: &'a str,
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.via;
        write!(f, "{} via {} on {}", v.role.as_str(), v.subject, v.resource)?;
        if v.inherited {
            write!(f, " (inherited by {})", self.target)
        } else {
            write!(f, " ({})", v.reach.as_str())
        }
    }
}

/// The identities that may hold a role on the declared resource `fqn`: those bound on it or
/// on an ancestor, themselves or through a team. Asking [`Snapshot::held`] of these alone
/// keeps a tool's cost to the bindings of one chain, not every identity.
pub fn candidates(snap: &Snapshot, fqn: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for on in std::iter::once(fqn).chain(snap.ancestors(fqn)) {
        for (subject, _) in snap.subject_bindings(on) {
            match subject {
                Subject::Identity(i) => {
                    out.insert(i as usize);
                }
                Subject::Team(t) => {
                    if let Some(team) = snap.teams.get(t as usize) {
                        out.extend(team.members.iter().copied());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(subject: &str, resource: &str, inherited: bool, reach: Reach) -> Via {
        Via {
            subject: subject.into(),
            resource: resource.into(),
            role: Role::Editor,
            inherited,
            reach,
        }
    }

    #[test]
    fn an_inherited_team_grant_names_the_team_the_ancestor_and_the_target() {
        let v = via(
            "team:release-bots",
            "workspace:prod-ml",
            true,
            Reach::Inherited,
        );
        assert_eq!(
            v.describe("model:acme/llama-70b").to_string(),
            "editor via team:release-bots on workspace:prod-ml (inherited by model:acme/llama-70b)"
        );
    }

    #[test]
    fn a_grant_on_the_target_itself_says_whether_it_is_direct_or_a_team() {
        let own = via("external-identity:a", "model:m", false, Reach::Direct);
        assert_eq!(
            own.describe("model:m").to_string(),
            "editor via external-identity:a on model:m (direct)"
        );
        let team = via("team:t", "model:m", false, Reach::Team);
        assert_eq!(
            team.describe("model:m").to_string(),
            "editor via team:t on model:m (team)"
        );
    }
}
