//! Entries that never take effect: routes an earlier route shadows, identities no resource
//! names as a collaborator, and resources nothing targets.

use std::collections::HashSet;

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

/// A warning for each identity that no resource names as a collaborator.
pub(super) fn identities_without_collaborators(config: &Config, out: &mut Vec<Diagnostic>) {
    let bound: HashSet<&str> = config
        .resources
        .iter()
        .flat_map(|r| r.spec.collaborators.iter())
        .filter_map(|c| c.subject.strip_prefix(snapshot::IDENTITY_SUBJECT))
        .collect();
    for item in &config.identities {
        if bound.contains(item.spec.name.as_str()) {
            continue;
        }
        out.push(warn(
            config,
            item.origin,
            section::EXTERNAL_IDENTITIES,
            Some("name"),
            format!(
                "external identity {:?} is a collaborator of no resource: every request it is selected for is denied insufficient_role",
                item.spec.name
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
