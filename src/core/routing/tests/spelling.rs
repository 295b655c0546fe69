//! No spelling of a request routes it differently from its canonical form: method case,
//! host case, a trailing dot, a port. Path case counts only where a route says so.

use super::*;
use proptest::prelude::*;

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const HOSTS: [&str; 5] = [
    "api.example.com",
    "admin.example.com",
    "[::1]",
    "other.test",
    "",
];
const SEGMENTS: [&str; 9] = [
    "v1", "things", "admin", "models", "acme", "llama", "x", "healthz", "42",
];

fn table(all_case_insensitive: bool) -> Router {
    let methods = |ms: &[&str]| -> Vec<String> { ms.iter().map(|m| m.to_string()).collect() };
    let (delete, get) = (methods(&["DELETE"]), methods(&["GET"]));
    let rows: [RouteSource<'_>; 8] = [
        RouteSource {
            path_prefix: Some("/healthz"),
            public: true,
            ..Default::default()
        },
        RouteSource {
            path: Some("/v1/things/{*rest}"),
            methods: Some(&delete),
            resource: Some("x:delete"),
            ..Default::default()
        },
        RouteSource {
            path_prefix: Some("/"),
            host: Some("Admin.Example.com."),
            resource: Some("x:admin-host"),
            ..Default::default()
        },
        RouteSource {
            path: Some("/v1/{*rest}"),
            host: Some("[::1]"),
            resource: Some("x:{rest}"),
            ..Default::default()
        },
        RouteSource {
            path: Some("/v1/things/admin/{*rest}"),
            resource: Some("x:admin"),
            case_insensitive: true,
            ..Default::default()
        },
        RouteSource {
            path: Some("/v1/Models/{org}/{name}/{*rest}"),
            resource: Some("model:{org}/{name}"),
            case_insensitive: true,
            ..Default::default()
        },
        RouteSource {
            path: Some("/v1/things/{id}"),
            methods: Some(&get),
            resource: Some("x:{id}"),
            ..Default::default()
        },
        RouteSource {
            path: Some("/v1/{*rest}"),
            resource: Some("x:loose"),
            ..Default::default()
        },
    ];
    Router::new(
        rows.into_iter()
            .map(|mut src| {
                if !src.public {
                    src.role = Some(Role::Viewer);
                }
                src.case_insensitive |= all_case_insensitive;
                Route::compile(&src).unwrap()
            })
            .collect(),
    )
}

/// The route index and the resource, as a request is decided.
fn decide(r: &Router, method: &str, host: &str, path: &str) -> Option<(usize, String)> {
    let m = r.find(method, host, path)?;
    let resource = match &m.route.target {
        Target::Protected { resource, .. } => m.resource(resource),
        Target::Public => "public".into(),
    };
    Some((m.index, resource))
}

/// `s` with the letters at `flips` in the other case.
fn recase(s: &str, flips: &[bool]) -> String {
    s.chars()
        .zip(flips.iter().cycle())
        .map(|(c, &flip)| match (flip, c.is_ascii_lowercase()) {
            (false, _) => c,
            (true, true) => c.to_ascii_uppercase(),
            (true, false) => c.to_ascii_lowercase(),
        })
        .collect()
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(&SEGMENTS[..]), 0..6),
        any::<bool>(),
        prop::option::of("[a-z;=&]{0,6}"),
    )
        .prop_map(|(segs, slash, query)| {
            let mut p = format!("/{}", segs.join("/"));
            if slash && !segs.is_empty() {
                p.push('/');
            }
            if let Some(q) = query {
                p.push('?');
                p.push_str(&q);
            }
            p
        })
}

fn flips() -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(any::<bool>(), 1..16)
}

proptest! {
    #[test]
    fn method_and_host_spelling_never_change_the_route(
        method in prop::sample::select(&METHODS[..]),
        host in prop::sample::select(&HOSTS[..]),
        path in path(),
        method_flips in flips(),
        host_flips in flips(),
        dot in any::<bool>(),
        port in prop::option::of("[0-9]{0,5}"),
    ) {
        let r = table(false);
        let mut spelled = recase(host, &host_flips);
        if dot && !host.is_empty() && !host.ends_with(']') {
            spelled.push('.');
        }
        if let Some(port) = port {
            spelled.push(':');
            spelled.push_str(&port);
        }
        prop_assert_eq!(
            decide(&r, &recase(method, &method_flips), &spelled, &path),
            decide(&r, method, host, &path),
            "{} {} {}", method, spelled, path
        );
    }

    #[test]
    fn path_case_never_changes_the_route_of_case_insensitive_routes(
        method in prop::sample::select(&METHODS[..]),
        host in prop::sample::select(&HOSTS[..]),
        path in path(),
        path_flips in flips(),
    ) {
        let r = table(true);
        let (end, query) = path.split_at(path.find('?').unwrap_or(path.len()));
        let spelled = format!("{}{query}", recase(end, &path_flips));
        let canonical = decide(&r, method, host, &path);
        let variant = decide(&r, method, host, &spelled);
        prop_assert_eq!(
            variant.as_ref().map(|(i, _)| *i),
            canonical.as_ref().map(|(i, _)| *i),
            "{}", spelled
        );
        // Captured values keep the request's spelling.
        if let (Some((_, a)), Some((_, b))) = (&variant, &canonical) {
            prop_assert!(a.eq_ignore_ascii_case(b), "{} vs {}", a, b);
        }
    }

    #[test]
    fn a_parameter_or_dot_dot_semicolon_in_any_segment_matches_nothing(
        path in path(),
        at in any::<prop::sample::Index>(),
        param in prop::sample::select(&[";", ";x", ";jsessionid=1", "/..;", "/.;", "/%2e%2e;", "%3B"][..]),
    ) {
        let r = table(false);
        let end = path.find('?').unwrap_or(path.len());
        // After some segment (never inside the query).
        let cuts: Vec<usize> = path[..end]
            .match_indices('/')
            .map(|(i, _)| i)
            .skip(1)
            .chain([end])
            .filter(|&i| i > 1)
            .collect();
        prop_assume!(!cuts.is_empty());
        let cut = cuts[at.index(cuts.len())];
        let spelled = format!("{}{param}{}", &path[..cut], &path[cut..]);
        prop_assert_eq!(decide(&r, "GET", "api.example.com", &spelled), None, "{}", spelled);
    }
}
