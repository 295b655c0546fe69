//! Entries that never take effect: routes an earlier route shadows, identities no resource
//! names as a collaborator (themselves or through a team), and resources nothing targets.

use std::collections::{HashMap, HashSet};

use super::coverage::{can_target, covers};
use super::warn;
use crate::core::config::{section, Config, Diagnostic};
use crate::core::snapshot::{self, Snapshot};

/// A warning for each route that an earlier route covers entirely.
pub(super) fn shadowed_routes(config: &Config, snap: &Snapshot, out: &mut Vec<Diagnostic>) {
    let routes = snap.router.routes();
    // Routes compile one to one from the configuration when it is valid; anything else
    // would point at the wrong lines.
    if routes.len() != config.routes.len() {
        return;
    }
    for (j, later) in routes.iter().enumerate() {
        let Some(i) = routes[..j].iter().position(|first| covers(first, later)) else {
            continue;
        };
        let item = &config.routes[j];
        let field = if item.spec.path.is_some() {
            "path"
        } else {
            "path_prefix"
        };
        let first_at = config.place(config.routes[i].origin, section::ROUTES, None);
        out.push(warn(
            config,
            item.origin,
            section::ROUTES,
            Some(field),
            format!(
                "routes[{j}] is never used: routes[{i}] (at {first_at}) comes first and matches every request it would (first match wins)"
            ),
        ));
    }
}

/// A warning for each identity that no resource names as a collaborator, itself or through a
/// team it is a member of: a member of a team bound somewhere holds that team's roles.
pub(super) fn identities_without_collaborators(config: &Config, out: &mut Vec<Diagnostic>) {
    let subjects = || {
        config
            .resources
            .iter()
            .flat_map(|r| r.spec.collaborators.iter())
    };
    let bound_teams: HashSet<&str> = subjects()
        .filter_map(|c| c.subject.strip_prefix(snapshot::TEAM_SUBJECT))
        .collect();
    let mut bound: HashSet<&str> = subjects()
        .filter_map(|c| c.subject.strip_prefix(snapshot::IDENTITY_SUBJECT))
        .collect();
    // Teams bound nowhere, by member, to say why their membership gives nothing.
    let mut idle_teams: HashMap<&str, Vec<&str>> = HashMap::new();
    for team in &config.teams {
        let members = team
            .spec
            .members
            .iter()
            .filter_map(|m| m.strip_prefix(snapshot::IDENTITY_SUBJECT));
        if bound_teams.contains(team.spec.name.as_str()) {
            bound.extend(members);
        } else {
            for m in members {
                idle_teams.entry(m).or_default().push(&team.spec.name);
            }
        }
    }
    for item in &config.identities {
        let name = item.spec.name.as_str();
        if bound.contains(name) {
            continue;
        }
        let teams = match idle_teams.get(name) {
            Some(teams) => {
                let teams: Vec<String> = teams
                    .iter()
                    .map(|t| format!("{}{t}", snapshot::TEAM_SUBJECT))
                    .collect();
                format!(
                    ", and its {} ({}) no resource names either",
                    if teams.len() == 1 { "team" } else { "teams" },
                    teams.join(", ")
                )
            }
            None => String::new(),
        };
        out.push(warn(
            config,
            item.origin,
            section::EXTERNAL_IDENTITIES,
            Some("name"),
            format!(
                "external identity {name:?} is a collaborator of no resource{teams}: every request it is selected for is denied insufficient_role"
            ),
        ));
    }
}

/// A warning for each resource that no route, and no Envoy `context_extensions` given, targets,
/// and that is no ancestor of one that is targeted (or of a resource a route's `parent` places):
/// an ancestor's collaborators are consulted for everything inside it.
pub(super) fn unreachable_resources(
    config: &Config,
    snap: &Snapshot,
    envoy_resources: Option<&HashSet<String>>,
    out: &mut Vec<Diagnostic>,
) {
    let routes = snap.router.routes();
    let targeted = |fqn: &str| {
        envoy_resources.is_some_and(|e| e.contains(fqn))
            || routes
                .iter()
                .any(|r| can_target(r, fqn) || r.parent.as_ref().is_some_and(|p| p.can_name(fqn)))
    };
    let mut reached: HashSet<&str> = HashSet::new();
    for item in &config.resources {
        let fqn = item.spec.fqn.as_str();
        if targeted(fqn) {
            reached.insert(fqn);
            reached.extend(snap.ancestors(fqn));
        }
    }
    for item in &config.resources {
        let fqn = item.spec.fqn.as_str();
        if reached.contains(fqn) {
            continue;
        }
        let msg = match envoy_resources {
            Some(_) => format!(
                "resource {fqn:?} is targeted by no route and by no context_extensions of the Envoy configurations given: its collaborators are never consulted"
            ),
            None => format!(
                "resource {fqn:?} is targeted by no route: unless an Envoy route names it in context_extensions (pass --envoy-config to check), its collaborators are never consulted"
            ),
        };
        out.push(warn(
            config,
            item.origin,
            section::RESOURCES,
            Some("fqn"),
            msg,
        ));
    }
}
