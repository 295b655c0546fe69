//! Routes by effect: the requests each route is written for, asked of both route tables.
//!
//! Every route of either side stands for the requests it names: its path with each variable
//! spelled `{name}` (so the resource shows as its template), for each method it allows (or,
//! for a route with none, each method any route names plus one that none does), and for each
//! host any route names plus none. Both tables answer each such request with the route the
//! server would pick; where the answers differ, the route changed by effect. Routes that were
//! only reordered, moved between files or rewritten without changing what they match are no
//! change, and an earlier route that now shadows a later one is.

use std::collections::{BTreeMap, BTreeSet};

use super::{Change, Effect};
use crate::core::routing::{Route, Router, Target};

/// A method no route names, standing for all of them.
const OTHER_METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

/// The answer of one route table to a request: the effect of the route that matched.
fn answer(router: &Router, method: &str, host: &str, path: &str) -> Option<Effect> {
    let m = router.find(method, host, path)?;
    Some(match &m.route.target {
        Target::Public => Effect::Public { public: true },
        Target::Protected { resource, role } => Effect::Protected {
            resource: m.resource(resource),
            role: *role,
        },
    })
}

/// The paths a route is written for, with each variable spelled `{name}`; for a route that
/// folds case, also in upper case (the requests a change of `case_insensitive` moves).
fn sample_paths(route: &Route) -> Vec<String> {
    let display = &*route.display;
    let mut paths = if route.is_prefix() {
        let base = display.trim_end_matches('/');
        let whole = if base.is_empty() { "/" } else { base };
        vec![whole.to_owned(), format!("{base}/{{rest}}")]
    } else {
        let path = display
            .split('/')
            .map(|seg| match seg.strip_prefix("{*") {
                Some(rest) => format!("{{{rest}"),
                None => seg.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        vec![path]
    };
    if route.case_insensitive() {
        let upper: Vec<String> = paths.iter().map(|p| upper_literals(p)).collect();
        paths.extend(upper);
    }
    paths
}

/// `path` with its literal segments in upper case and its `{variables}` as they are.
fn upper_literals(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                seg.to_owned()
            } else {
                seg.to_ascii_uppercase()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What a set of requests got, and gets now.
type Key = (String, Option<String>, Option<Effect>, Option<Effect>);

pub(super) fn routes(base: &Router, new: &Router, out: &mut Vec<Change>) {
    let all: Vec<&Route> = base.routes().iter().chain(new.routes()).collect();
    let mut methods: BTreeSet<String> = all
        .iter()
        .flat_map(|r| {
            r.methods()
                .unwrap_or_default()
                .iter()
                .map(|m| m.to_string())
        })
        .collect();
    if let Some(other) = OTHER_METHODS.iter().find(|m| !methods.contains(**m)) {
        methods.insert((*other).to_owned());
    }
    let mut hosts: BTreeSet<String> = all
        .iter()
        .filter_map(|r| r.host())
        .map(str::to_owned)
        .collect();
    hosts.insert(String::new());
    // Each request once, credited to the first route written for it.
    let mut asked: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut found: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    let mut order: Vec<Key> = Vec::new();
    for route in &all {
        let route_methods: Vec<String> = match route.methods() {
            Some(ms) => ms.iter().map(|m| m.to_string()).collect(),
            None => methods.iter().cloned().collect(),
        };
        let route_hosts: Vec<String> = match route.host() {
            Some(h) => vec![h.to_owned()],
            None => hosts.iter().cloned().collect(),
        };
        for path in sample_paths(route) {
            for host in &route_hosts {
                for method in &route_methods {
                    if !asked.insert((path.clone(), method.clone(), host.clone())) {
                        continue;
                    }
                    let was = answer(base, method, host, &path);
                    let now = answer(new, method, host, &path);
                    if was == now {
                        continue;
                    }
                    let host = (!host.is_empty()).then(|| host.clone());
                    let key = (route.display.to_string(), host, was, now);
                    let entry = found.entry(key.clone()).or_default();
                    if entry.is_empty() {
                        order.push(key);
                    }
                    entry.insert(method.clone());
                }
            }
        }
    }
    for key in order {
        let Some(affected) = found.remove(&key) else {
            continue;
        };
        let (route, host, was, now) = key;
        let every = affected.len() == methods.len();
        out.push(Change::RouteChanged {
            route,
            methods: (!every).then(|| affected.into_iter().collect()),
            host,
            was,
            now,
        });
    }
}
