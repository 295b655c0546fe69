//! Teams and the resource hierarchy, compiled: each team's members and each identity's
//! teams; each resource's parent, its ancestor chain and the `enforcement` it inherits.
//!
//! Everything a check needs is built here, once: a check reads a resource's chain and an
//! identity's team list and never walks the configuration.

use std::collections::HashMap;

use super::context::{Ctx, RES, TEAMS};
use super::{Resource, Team, IDENTITY_SUBJECT, TEAM_SUBJECT};
use crate::core::config::Origin;

/// The longest chain of resources (a resource and its ancestors) a configuration may hold.
pub const MAX_DEPTH: usize = 32;

/// The compiled teams and their indexes.
pub(super) struct Teams {
    pub(super) list: Vec<Team>,
    pub(super) by_name: HashMap<Box<str>, u32>,
    /// Each identity's teams, by identity index.
    pub(super) member_of: Vec<Box<[u32]>>,
}

/// Compile `teams:`: names unique, members external identities that exist (teams do not
/// nest); a member naming no identity is ignored with a warning, as a deleted identity's
/// collaborator is.
pub(super) fn teams(
    cx: &mut Ctx<'_>,
    identities: &HashMap<Box<str>, usize>,
    identity_count: usize,
) -> Teams {
    let config = cx.config();
    let mut out = Teams {
        list: Vec::new(),
        by_name: HashMap::new(),
        member_of: Vec::new(),
    };
    let mut member_of: Vec<Vec<u32>> = vec![Vec::new(); identity_count];
    let mut origins: Vec<Origin> = Vec::new();
    // A member may name a team defined later in the files: it is still a team.
    let team_names: std::collections::HashSet<&str> =
        config.teams.iter().map(|t| t.spec.name.as_str()).collect();
    for item in &config.teams {
        let s = &item.spec;
        let o = item.origin;
        if !super::compile::valid_identity_name(&s.name) {
            cx.error(
                o,
                TEAMS,
                Some("name"),
                format!("team name {:?} must be letters, digits and hyphens", s.name),
            );
        }
        if let Some(&first) = out.by_name.get(s.name.as_str()) {
            let at = config.place(origins[first as usize], TEAMS, Some("name"));
            cx.error(
                o,
                TEAMS,
                Some("name"),
                format!("team {:?} is defined twice (first at {at})", s.name),
            );
            continue;
        }
        if s.members.is_empty() {
            cx.warn(
                o,
                TEAMS,
                Some("name"),
                format!("team {} has no members; its bindings grant nothing", s.name),
            );
        }
        let index = out.list.len() as u32;
        let mut members: Vec<usize> = Vec::new();
        for (mi, m) in s.members.iter().enumerate() {
            let field = format!("members[{mi}]");
            let Some(name) = m.strip_prefix(IDENTITY_SUBJECT) else {
                let why = match m.strip_prefix(TEAM_SUBJECT) {
                    Some(_) => format!(
                        "member {m:?} is a team; teams do not nest, so a member is external-identity:NAME"
                    ),
                    None => format!("member {m:?} must be external-identity:NAME"),
                };
                cx.error(o, TEAMS, Some(&field), why);
                continue;
            };
            match identities.get(name) {
                Some(&id) if !members.contains(&id) => {
                    members.push(id);
                    member_of[id].push(index);
                }
                Some(_) => cx.error(
                    o,
                    TEAMS,
                    Some(&field),
                    format!("{m:?} is listed twice in team {}", s.name),
                ),
                None if team_names.contains(name) => cx.error(
                    o,
                    TEAMS,
                    Some(&field),
                    format!("{name:?} is a team, not an external identity; teams do not nest"),
                ),
                None => cx.warn(
                    o,
                    TEAMS,
                    Some(&field),
                    format!("external identity {name:?} does not exist; this member is ignored"),
                ),
            }
        }
        out.by_name.insert(s.name.as_str().into(), index);
        origins.push(o);
        out.list.push(Team {
            name: s.name.as_str().into(),
            members: members.into(),
        });
    }
    out.member_of = member_of.into_iter().map(Vec::into_boxed_slice).collect();
    out
}

/// Link each resource to its parent (`parents[i]`: the `parent` as written, where), then
/// build every chain and the `enforcement` each resource inherits. A parent naming no
/// declared resource, a cycle and a chain deeper than [`MAX_DEPTH`] are errors.
pub(super) fn link(
    cx: &mut Ctx<'_>,
    resources: &mut [Resource],
    parents: &[Option<(Origin, &str)>],
    by_fqn: &HashMap<std::sync::Arc<str>, u32>,
) {
    for (i, p) in parents.iter().enumerate() {
        let Some((o, name)) = *p else { continue };
        match by_fqn.get(name) {
            Some(&p) => resources[i].parent = Some(p),
            None => cx.error(
                o,
                RES,
                Some("parent"),
                format!("parent {name:?} is not a declared resource"),
            ),
        }
    }
    // Chains are built parents first; a resource's chain is itself then its parent's chain.
    // The walk from each resource up to one already built finds cycles on the way.
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnPath,
        Built,
    }
    let mut state = vec![State::New; resources.len()];
    let mut path: Vec<u32> = Vec::new();
    for start in 0..resources.len() {
        let mut at = start as u32;
        path.clear();
        // Up to the first resource already built, a root, or a cycle.
        let cycle = loop {
            match state[at as usize] {
                State::Built => break None,
                State::OnPath => break Some(at),
                State::New => {}
            }
            state[at as usize] = State::OnPath;
            path.push(at);
            match resources[at as usize].parent {
                Some(p) => at = p,
                None => break None,
            }
        };
        if let Some(first) = cycle {
            let from = path.iter().position(|&r| r == first).unwrap_or(0);
            let members = &path[from..];
            let names: Vec<&str> = members
                .iter()
                .chain(std::iter::once(&first))
                .map(|&r| &*resources[r as usize].name)
                .collect();
            let o = parents[first as usize].map(|(o, _)| o);
            if let Some(o) = o {
                cx.error(
                    o,
                    RES,
                    Some("parent"),
                    format!("resources form a cycle: {}", names.join(" → ")),
                );
            }
            // A configuration with a cycle is refused; its chains stop short of it.
            for &r in members {
                resources[r as usize].parent = None;
            }
        }
        // Build from the top of the path down: each one's parent is built by then.
        for &r in path.iter().rev() {
            let res = &resources[r as usize];
            let mut chain = vec![r];
            let mut enforcement = res.enforcement;
            if let Some(p) = res.parent {
                let parent = &resources[p as usize];
                // Past the limit the configuration is refused; the chain is cut there so a
                // long one costs no more memory than a legal one.
                chain.extend(parent.chain.iter().take(MAX_DEPTH));
                enforcement = enforcement.or(parent.inherited_enforcement);
                if parent.chain.len() == MAX_DEPTH {
                    if let Some((o, _)) = parents[r as usize] {
                        let names: Vec<&str> = chain
                            .iter()
                            .map(|&c| &*resources[c as usize].name)
                            .collect();
                        cx.error(
                            o,
                            RES,
                            Some("parent"),
                            format!(
                                "the chain of {} is deeper than {MAX_DEPTH}: {}",
                                res.name,
                                names.join(" → ")
                            ),
                        );
                    }
                }
            }
            let res = &mut resources[r as usize];
            res.chain = chain.into();
            res.inherited_enforcement = enforcement;
            state[r as usize] = State::Built;
        }
    }
}
