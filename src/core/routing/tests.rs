//! Routing's unit tests, by behaviour; the route builders here are shared with other
//! modules' tests.

use super::*;

/// Which route a request meets.
mod matching;
/// Request paths not in normal form.
mod paths;
/// No spelling of a request routes it differently from its canonical form.
mod spelling;
/// Templates: captures and refusals at load.
mod templates;

fn route(path: &str, resource: &str) -> Route {
    Route::compile(&RouteSource {
        path: Some(path),
        resource: Some(resource),
        role: Some(Role::Viewer),
        ..Default::default()
    })
    .unwrap()
}

fn resource_of(router: &Router, method: &str, path: &str) -> Option<String> {
    let m = router.find(method, "api.example.com", path)?;
    match &m.route.target {
        Target::Protected { resource, .. } => Some(m.resource(resource)),
        Target::Public => Some("public".into()),
    }
}

/// A compiled viewer route (`prefix:` makes a path prefix); shared with other modules' tests.
pub(crate) fn compiled(path: &str, methods: Option<&[&str]>, resource: &str) -> Route {
    let methods: Option<Vec<String>> = methods.map(|ms| ms.iter().map(|m| m.to_string()).collect());
    let (path, path_prefix) = match path.strip_prefix("prefix:") {
        Some(p) => (None, Some(p)),
        None => (Some(path), None),
    };
    Route::compile(&RouteSource {
        path,
        path_prefix,
        methods: methods.as_deref(),
        resource: Some(resource),
        role: Some(Role::Viewer),
        ..Default::default()
    })
    .unwrap()
}

/// [`compiled`] with `case_insensitive: true`.
pub(crate) fn case_insensitive(path: &str, resource: &str) -> Route {
    let (path, path_prefix) = match path.strip_prefix("prefix:") {
        Some(p) => (None, Some(p)),
        None => (Some(path), None),
    };
    Route::compile(&RouteSource {
        path,
        path_prefix,
        resource: Some(resource),
        role: Some(Role::Viewer),
        case_insensitive: true,
        ..Default::default()
    })
    .unwrap()
}
