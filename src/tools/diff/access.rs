//! Effective access, identity by identity: whether it exists on each side, the role it holds
//! on each resource, and the claims a token needs to be it.
//!
//! An identity that moved to another SSO is another set of tokens under the same name: it is
//! reported removed and added, and its roles revoked and granted, so a reviewer sees that the
//! access now goes to other callers.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Map;

use super::claims::{by_key, condition, same_condition};
use super::Change;
use crate::core::load::Loaded;
use crate::core::role::Role;
use crate::core::snapshot::Snapshot;
use crate::tools::grant::candidates;

/// The identities of both sides, paired by name.
pub(super) struct Identities<'s> {
    /// The base snapshot.
    pub(super) base: &'s Snapshot,
    /// The new snapshot.
    pub(super) new: &'s Snapshot,
    /// Each name: its index in the base and in the new snapshot.
    pub(super) by_name: BTreeMap<&'s str, (Option<usize>, Option<usize>)>,
}

impl<'s> Identities<'s> {
    pub(super) fn pair(base: &'s Snapshot, new: &'s Snapshot) -> Self {
        let mut by_name: BTreeMap<&str, (Option<usize>, Option<usize>)> = BTreeMap::new();
        for (i, id) in base.identities.iter().enumerate() {
            by_name.entry(&id.name).or_default().0 = Some(i);
        }
        for (i, id) in new.identities.iter().enumerate() {
            by_name.entry(&id.name).or_default().1 = Some(i);
        }
        Identities { base, new, by_name }
    }

    /// The SSO name of base identity `b`.
    pub(super) fn base_sso(&self, b: usize) -> &'s str {
        &self.base.ssos[self.base.identities[b].sso].name
    }

    /// The SSO name of new identity `n`.
    pub(super) fn new_sso(&self, n: usize) -> &'s str {
        &self.new.ssos[self.new.identities[n].sso].name
    }

    /// Both indexes of `name` when it is on both sides with the same SSO.
    pub(super) fn kept(&self, name: &str) -> Option<(usize, usize)> {
        match self.by_name.get(name) {
            Some((Some(b), Some(n))) if self.base_sso(*b) == self.new_sso(*n) => Some((*b, *n)),
            _ => None,
        }
    }
}

/// Each identity's effective role on each declared resource (its own bindings and its
/// teams', on the resource and its ancestors), by identity index.
fn roles_of(loaded: &Loaded) -> Vec<BTreeMap<&str, Role>> {
    let snap = &loaded.snapshot;
    let mut out: Vec<BTreeMap<&str, Role>> = vec![BTreeMap::new(); snap.identities.len()];
    for fqn in snap.resource_names() {
        for identity in candidates(snap, fqn) {
            if let (Some(held), Some(roles)) = (snap.held(fqn, identity), out.get_mut(identity)) {
                roles.insert(fqn, held.role);
            }
        }
    }
    out
}

/// Identities added and removed, and role changes, identity by identity.
pub(super) fn roles(ids: &Identities<'_>, base: &Loaded, new: &Loaded, out: &mut Vec<Change>) {
    let base_roles = roles_of(base);
    let new_roles = roles_of(new);
    let empty = BTreeMap::new();
    for (name, (b, n)) in &ids.by_name {
        let kept = ids.kept(name).is_some();
        let was = match b {
            Some(b) => base_roles.get(*b).unwrap_or(&empty),
            None => &empty,
        };
        let now = match n {
            Some(n) => new_roles.get(*n).unwrap_or(&empty),
            None => &empty,
        };
        if let (Some(b), false) = (b, kept) {
            out.push(Change::IdentityRemoved {
                identity: name.to_string(),
                sso: ids.base_sso(*b).to_owned(),
            });
        }
        if let (Some(n), false) = (n, kept) {
            out.push(Change::IdentityAdded {
                identity: name.to_string(),
                sso: ids.new_sso(*n).to_owned(),
            });
        }
        if !kept {
            for (resource, role) in was {
                out.push(Change::RoleRevoked {
                    identity: name.to_string(),
                    resource: resource.to_string(),
                    was: *role,
                });
            }
            for (resource, role) in now {
                out.push(Change::RoleGranted {
                    identity: name.to_string(),
                    resource: resource.to_string(),
                    role: *role,
                });
            }
            continue;
        }
        role_changes(name, was, now, out);
    }
}

/// The role changes of one identity that is on both sides.
fn role_changes(
    name: &str,
    was: &BTreeMap<&str, Role>,
    now: &BTreeMap<&str, Role>,
    out: &mut Vec<Change>,
) {
    for (resource, old) in was {
        match now.get(resource) {
            None => out.push(Change::RoleRevoked {
                identity: name.to_owned(),
                resource: resource.to_string(),
                was: *old,
            }),
            Some(role) if role != old => out.push(Change::RoleChanged {
                identity: name.to_owned(),
                resource: resource.to_string(),
                role: *role,
                was: *old,
            }),
            Some(_) => {}
        }
    }
    for (resource, role) in now {
        if !was.contains_key(resource) {
            out.push(Change::RoleGranted {
                identity: name.to_owned(),
                resource: resource.to_string(),
                role: *role,
            });
        }
    }
}

/// The claims of each identity on both sides that changed, condition by condition.
pub(super) fn identities(ids: &Identities<'_>, out: &mut Vec<Change>) {
    for name in ids.by_name.keys() {
        let Some((b, n)) = ids.kept(name) else {
            continue;
        };
        let was = by_key(&ids.base.identities[b]);
        let now = by_key(&ids.new.identities[n]);
        let mut added = Map::new();
        let mut removed = Map::new();
        for (key, old) in &was {
            if !now.get(key).is_some_and(|c| same_condition(old, c)) {
                removed.insert(old.key.to_string(), condition(old));
            }
        }
        for (key, c) in &now {
            if !was.get(key).is_some_and(|old| same_condition(old, c)) {
                added.insert(c.key.to_string(), condition(c));
            }
        }
        if !added.is_empty() || !removed.is_empty() {
            out.push(Change::ClaimsChanged {
                identity: name.to_string(),
                added,
                removed,
            });
        }
    }
}

/// Resources whose denials are now let through (dry run) or enforced again: a dry-run
/// resource lets every routed request reach its upstream, so the change is access.
pub(super) fn enforcement(base: &Snapshot, new: &Snapshot, out: &mut Vec<Change>) {
    let mode = |dry: bool| if dry { "dry_run" } else { "enforce" };
    let mut names: Vec<&str> = new.resource_names().collect();
    names.sort_unstable();
    for name in names {
        let now = new.dry_run(name);
        let was = base.has_resource(name).then(|| base.dry_run(name));
        if was.unwrap_or(false) != now || (was.is_none() && now) {
            out.push(Change::EnforcementChanged {
                resource: name.to_owned(),
                was: was.map(mode),
                now: mode(now),
            });
        }
    }
}

/// Teams whose members changed, by member name: a team added lists every member as added,
/// one removed every member as removed. Members that name no identity are not members.
pub(super) fn teams(base: &Snapshot, new: &Snapshot, out: &mut Vec<Change>) {
    let members = |snap: &Snapshot| -> BTreeMap<String, BTreeSet<String>> {
        snap.teams
            .iter()
            .map(|t| {
                let names = t
                    .members
                    .iter()
                    .filter_map(|m| snap.identities.get(*m))
                    .map(|i| i.name.to_string())
                    .collect();
                (t.name.to_string(), names)
            })
            .collect()
    };
    let was = members(base);
    let now = members(new);
    let none = BTreeSet::new();
    let names: BTreeSet<&String> = was.keys().chain(now.keys()).collect();
    for team in names {
        let old = was.get(team).unwrap_or(&none);
        let new = now.get(team).unwrap_or(&none);
        let added: Vec<String> = new.difference(old).cloned().collect();
        let removed: Vec<String> = old.difference(new).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            out.push(Change::TeamChanged {
                team: team.clone(),
                added,
                removed,
            });
        }
    }
}

/// Resources on both sides whose `parent` changed: every role inherited through it moves.
pub(super) fn parents(base: &Snapshot, new: &Snapshot, out: &mut Vec<Change>) {
    let mut names: Vec<&str> = new
        .resource_names()
        .filter(|n| base.has_resource(n))
        .collect();
    names.sort_unstable();
    for name in names {
        let was = base.parent_of(name);
        let now = new.parent_of(name);
        if was != now {
            out.push(Change::ParentChanged {
                resource: name.to_owned(),
                was: was.map(str::to_owned),
                now: now.map(str::to_owned),
            });
        }
    }
}
