//! Routes a change of letter case can skip: a strict route whose literal a case variant of
//! the request misses, while a looser route after it takes that variant.
//!
//! claimgate cannot know whether an upstream folds path case, so this warns only where the
//! configuration itself hints that it does: the strict route's literal has upper-case letters
//! (`/api/Users/...`), the later route is `case_insensitive`, or the later route spells the same
//! literal in another case. Each warning names a request pair that the route table really
//! splits: both are routed by the router itself before anything is said.

use super::warn;
use crate::core::config::{section, Config, Diagnostic};
use crate::core::routing::{PathMatcher, Route, RouteMatch, Router, Seg, Target};

/// A warning on each route that a case variant can skip, naming the later route that takes it.
pub(super) fn case_variants(config: &Config, router: &Router, out: &mut Vec<Diagnostic>) {
    let routes = router.routes();
    // Routes compile one to one from the configuration when it is valid; anything else
    // would point at the wrong lines.
    if routes.len() != config.routes.len() {
        return;
    }
    for (i, strict) in routes.iter().enumerate() {
        let Some(found) = (i + 1..routes.len()).find_map(|j| variant(router, i, j)) else {
            continue;
        };
        let item = &config.routes[i];
        let field = if item.spec.path.is_some() {
            "path"
        } else {
            "path_prefix"
        };
        let later_at = config.place(config.routes[found.later].origin, section::ROUTES, None);
        out.push(warn(
            config,
            item.origin,
            section::ROUTES,
            Some(field),
            format!(
                "routes[{i}] can be skipped by letter case: {method} {variant} is routed to routes[{j}] (at {later_at}), which needs {needs_later}, while {path} needs {needs}; if the upstream ignores path case, add case_insensitive: true to routes[{i}]",
                method = found.method,
                variant = found.variant,
                j = found.later,
                needs_later = found.needs_later,
                path = found.path,
                needs = needs(&strict.target, &found.resource),
            ),
        ));
    }
}

/// A request routed to the strict route and its case variant routed to a looser one.
struct Variant {
    later: usize,
    method: String,
    path: String,
    variant: String,
    resource: String,
    needs_later: String,
}

/// A route's path as literal segments and wildcards, and whether it takes more segments.
enum Pat<'a> {
    Lit(&'a str),
    Any,
}

fn shape(route: &Route) -> (Vec<Pat<'_>>, bool) {
    match &route.path {
        PathMatcher::Prefix(p) => (p.iter().map(|s| Pat::Lit(s)).collect(), true),
        PathMatcher::Template(t) => (
            t.iter()
                .filter_map(|s| match s {
                    Seg::Lit(l) => Some(Pat::Lit(l)),
                    Seg::Var => Some(Pat::Any),
                    Seg::Rest => None,
                })
                .collect(),
            matches!(t.last(), Some(Seg::Rest)),
        ),
    }
}

/// A case variant of a request for `routes[i]` that the router sends to `routes[j]`, where
/// `routes[j]` asks for less, at a literal the configuration hints an upstream folds.
fn variant(router: &Router, i: usize, j: usize) -> Option<Variant> {
    let routes = router.routes();
    let (strict, later) = (&routes[i], &routes[j]);
    if strict.case_insensitive() || matches!(strict.target, Target::Public) {
        return None;
    }
    let method = match (strict.methods(), later.methods()) {
        (None, None) => "GET",
        (Some(ms), None) | (None, Some(ms)) => ms.first().map(|m| &**m)?,
        (Some(a), Some(b)) => a.iter().find(|m| b.contains(m)).map(|m| &**m)?,
    };
    let host = match (strict.host(), later.host()) {
        (Some(a), Some(b)) if a != b => return None,
        (a, b) => a.or(b).unwrap_or(""),
    };
    let (mine, open) = shape(strict);
    let (theirs, _) = shape(later);
    let len = if open {
        mine.len().max(theirs.len())
    } else {
        mine.len()
    };
    // The deepest literal first: that is where a strict route usually differs.
    for (p, at) in mine.iter().enumerate().rev() {
        let Pat::Lit(lit) = at else { continue };
        let other = match theirs.get(p) {
            Some(Pat::Lit(l)) => Some(*l),
            _ => None,
        };
        let differs_in_case = other.is_some_and(|l| l != *lit && l.eq_ignore_ascii_case(lit));
        let hinted = lit.bytes().any(|b| b.is_ascii_uppercase())
            || later.case_insensitive()
            || differs_in_case;
        if !hinted {
            continue;
        }
        let respelled = match other {
            Some(l) if differs_in_case => l.to_owned(),
            _ if lit.bytes().any(|b| b.is_ascii_uppercase()) => lit.to_ascii_lowercase(),
            _ => lit.to_ascii_uppercase(),
        };
        let segment = |q: usize| match (mine.get(q), theirs.get(q)) {
            (Some(Pat::Lit(l)), _) | (_, Some(Pat::Lit(l))) => *l,
            _ => "x",
        };
        let segs: Vec<&str> = (0..len).map(segment).collect();
        let path = format!("/{}", segs.join("/"));
        let mut respelled_segs = segs;
        respelled_segs[p] = &respelled;
        let respelled_path = format!("/{}", respelled_segs.join("/"));
        let (Some(a), Some(b)) = (
            router.find(method, host, &path),
            router.find(method, host, &respelled_path),
        ) else {
            continue;
        };
        if a.index != i || b.index != j {
            continue;
        }
        let resource = resource_of(&a);
        let resource_later = resource_of(&b);
        let looser = match (&strict.target, &later.target) {
            (Target::Protected { role: r, .. }, Target::Protected { role: s, .. }) => {
                s < r || resource_later != resource
            }
            _ => true,
        };
        if looser {
            return Some(Variant {
                later: j,
                method: method.to_owned(),
                path,
                variant: respelled_path,
                needs_later: needs(&later.target, &resource_later),
                resource,
            });
        }
    }
    None
}

fn resource_of(m: &RouteMatch<'_, '_>) -> String {
    match &m.route.target {
        Target::Protected { resource, .. } => m.resource(resource),
        Target::Public => String::new(),
    }
}

fn needs(target: &Target, resource: &str) -> String {
    match target {
        Target::Public => "no token".to_owned(),
        Target::Protected { role, .. } => format!("{} on {resource}", role.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::parse_texts;
    use crate::core::role::Role;
    use crate::core::routing::RouteSource;

    /// The warnings for a routes file, as `validate` prints them.
    fn warnings(routes: &str) -> Vec<String> {
        let dir = std::path::Path::new("config");
        let mut d = Vec::new();
        let cfg = parse_texts(dir, &[("r.yaml".into(), routes.into())], &mut d);
        assert!(d.is_empty(), "{d:?}");
        let compiled = cfg
            .routes
            .iter()
            .map(|item| {
                let s = &item.spec;
                Route::compile(&RouteSource {
                    path: s.path.as_deref(),
                    path_prefix: s.path_prefix.as_deref(),
                    methods: s.methods.as_deref(),
                    host: s.host.as_deref(),
                    resource: s.resource.as_deref(),
                    role: s.role.as_deref().and_then(Role::parse),
                    public: s.public,
                    case_insensitive: s.case_insensitive,
                })
                .unwrap()
            })
            .collect();
        let mut out = Vec::new();
        case_variants(&cfg, &Router::new(compiled), &mut out);
        out.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn an_upper_case_literal_that_a_looser_route_takes_in_lower_case_is_reported() {
        let w = warnings(
            "routes:\n  - path: /api/Admin/{*rest}\n    resource: m:a\n    role: manager\n  - path: /api/{*rest}\n    resource: m:a\n    role: viewer\n",
        );
        assert_eq!(
            w,
            ["r.yaml:2:11: warning: routes[0] can be skipped by letter case: GET /api/admin is routed to routes[1] (at r.yaml:5:5), which needs viewer on m:a, while /api/Admin needs manager on m:a; if the upstream ignores path case, add case_insensitive: true to routes[0]"]
        );
    }

    #[test]
    fn routes_that_differ_only_in_literal_case_are_reported() {
        let w = warnings(
            "routes:\n  - path: /v1/admin/{*rest}\n    resource: m:a\n    role: manager\n  - path: /v1/ADMIN/{*rest}\n    public: true\n",
        );
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].contains("GET /v1/ADMIN is routed to routes[1] (at r.yaml:5:5), which needs no token, while /v1/admin needs manager on m:a"),
            "{w:#?}"
        );
    }

    #[test]
    fn a_case_insensitive_later_route_is_a_hint_that_the_upstream_folds_case() {
        let w = warnings(
            "routes:\n  - path: /v1/admin/{id}\n    methods: [DELETE]\n    resource: m:a\n    role: manager\n  - path: /v1/{a}/{b}\n    case_insensitive: true\n    resource: m:a\n    role: editor\n",
        );
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].contains("DELETE /v1/ADMIN/x is routed to routes[1]"),
            "{w:#?}"
        );
    }

    #[test]
    fn nothing_is_said_without_a_hint_or_when_the_variant_is_not_looser() {
        for routes in [
            // All lower case, the usual layout: claimgate cannot know the upstream folds case.
            "routes:\n  - path: /v1/things/admin/{*rest}\n    resource: m:a\n    role: manager\n  - path: /v1/things/{*rest}\n    resource: m:a\n    role: viewer\n",
            // The strict route folds case itself.
            "routes:\n  - path: /api/Admin/{*rest}\n    case_insensitive: true\n    resource: m:a\n    role: manager\n  - path: /api/{*rest}\n    resource: m:a\n    role: viewer\n",
            // The later route asks for as much.
            "routes:\n  - path: /api/Admin/{*rest}\n    resource: m:a\n    role: editor\n  - path: /api/{*rest}\n    resource: m:a\n    role: manager\n",
            // Methods that never meet.
            "routes:\n  - path: /api/Admin/{*rest}\n    methods: [POST]\n    resource: m:a\n    role: manager\n  - path: /api/{*rest}\n    methods: [GET]\n    resource: m:a\n    role: viewer\n",
            // Another host.
            "routes:\n  - path: /api/Admin/{*rest}\n    host: a.example\n    resource: m:a\n    role: manager\n  - path: /api/{*rest}\n    host: b.example\n    resource: m:a\n    role: viewer\n",
            // A case-insensitive route in between takes every variant first.
            "routes:\n  - path: /api/Admin/{*rest}\n    resource: m:a\n    role: manager\n  - path: /api/admin/{*rest}\n    case_insensitive: true\n    resource: m:a\n    role: manager\n  - path: /api/{*rest}\n    resource: m:a\n    role: viewer\n",
            // The later route cannot take the variant: one segment only.
            "routes:\n  - path: /api/Admin/x\n    resource: m:a\n    role: manager\n  - path: /api/{a}\n    resource: m:a\n    role: viewer\n",
            // A public strict route has nothing to lose.
            "routes:\n  - path_prefix: /Healthz\n    public: true\n  - path: /{*rest}\n    resource: m:a\n    role: viewer\n",
        ] {
            assert_eq!(warnings(routes), Vec::<String>::new(), "{routes}");
        }
    }
}
