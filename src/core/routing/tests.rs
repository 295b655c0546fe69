use super::normalize::is_dot_segment;
use super::*;

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

#[test]
fn templates_capture_one_segment_and_the_rest() {
    let r = Router::new(vec![route(
        "/v1/models/{org}/{name}/{*rest}",
        "model:{org}/{name}",
    )]);
    assert_eq!(
        resource_of(&r, "GET", "/v1/models/acme/llama/infer?x=1").as_deref(),
        Some("model:acme/llama")
    );
    assert_eq!(
        resource_of(&r, "GET", "/v1/models/acme/llama").as_deref(),
        Some("model:acme/llama")
    );
    assert_eq!(resource_of(&r, "GET", "/v1/models/acme").as_deref(), None);
    assert_eq!(
        resource_of(&r, "GET", "/v2/models/acme/llama").as_deref(),
        None
    );
}

#[test]
fn exact_templates_reject_extra_segments() {
    let r = Router::new(vec![route("/v1/items/{id}", "item:{id}")]);
    assert_eq!(
        resource_of(&r, "GET", "/v1/items/7").as_deref(),
        Some("item:7")
    );
    assert_eq!(
        resource_of(&r, "GET", "/v1/items/7/").as_deref(),
        Some("item:7")
    );
    assert_eq!(resource_of(&r, "GET", "/v1/items/7/x"), None);
}

#[test]
fn prefixes_match_whole_segments_and_methods_and_host_filter() {
    let public = Route::compile(&RouteSource {
        path_prefix: Some("/healthz"),
        public: true,
        ..Default::default()
    })
    .unwrap();
    let methods = ["GET".to_string()];
    let get_only = Route::compile(&RouteSource {
        path: Some("/a"),
        methods: Some(&methods),
        host: Some("API.example.com"),
        resource: Some("x:a"),
        role: Some(Role::Viewer),
        ..Default::default()
    })
    .unwrap();
    let r = Router::new(vec![public, get_only]);
    assert_eq!(
        resource_of(&r, "GET", "/healthz/live").as_deref(),
        Some("public")
    );
    assert_eq!(resource_of(&r, "GET", "/healthzX"), None);
    assert_eq!(resource_of(&r, "GET", "/a").as_deref(), Some("x:a"));
    assert_eq!(resource_of(&r, "POST", "/a"), None);
    assert!(r.find("GET", "api.example.com:8080", "/a").is_some());
    assert!(r.find("GET", "other.example.com", "/a").is_none());
}

#[test]
fn dot_segments_are_recognized_in_every_spelling() {
    for dot in [".", "..", "%2e", "%2E", "%2e%2E", ".%2e", "%2e."] {
        assert!(is_dot_segment(dot), "{dot}");
    }
    for not in ["", "...", "a", ".a", "%2f", "%2", "%2e%2e%2e", "a.."] {
        assert!(!is_dot_segment(not), "{not}");
    }
}

#[test]
fn unnormalized_paths_match_nothing() {
    let public = Route::compile(&RouteSource {
        path_prefix: Some("/public"),
        public: true,
        ..Default::default()
    })
    .unwrap();
    let r = Router::new(vec![public]);
    for p in [
        "/public/../admin",
        "/public/%2e%2E/admin",
        "/public//x",
        "/public/a%2Fb",
        "/public\\x",
        "public",
    ] {
        assert!(r.find("GET", "h", p).is_none(), "{p}");
    }
    assert!(r.find("GET", "h", "/public/a?q=/../").is_some());
}

#[test]
fn bad_templates_are_refused_with_the_field() {
    let bad = |path: &str, resource: &str| {
        Route::compile(&RouteSource {
            path: Some(path),
            resource: Some(resource),
            role: Some(Role::Viewer),
            ..Default::default()
        })
        .unwrap_err()
    };
    assert_eq!(bad("v1/x", "a:b").field, "path");
    assert_eq!(bad("/v1/{*rest}/x", "a:b").field, "path");
    assert_eq!(bad("/v1/a{b}", "a:b").field, "path");
    assert_eq!(bad("/v1/{a}/{a}", "a:b").field, "path");
    assert_eq!(bad("/v1/{a}", "m:{b}").field, "resource");
    let e = Route::compile(&RouteSource {
        path: Some("/x"),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.field, "resource");
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

/// The layout: a strict route first, a looser one after it (first match wins).
fn strict_then_loose() -> Router {
    Router::new(vec![
        compiled("/v1/things/{*rest}", Some(&["DELETE"]), "x:strict"),
        compiled("/v1/things/{*rest}", None, "x:loose"),
    ])
}

#[test]
fn methods_compare_case_insensitively() {
    let r = strict_then_loose();
    for method in ["DELETE", "delete", "Delete", "dElEtE"] {
        assert_eq!(
            resource_of(&r, method, "/v1/things/x").as_deref(),
            Some("x:strict"),
            "{method}"
        );
    }
    assert_eq!(
        resource_of(&r, "GET", "/v1/things/x").as_deref(),
        Some("x:loose")
    );
    assert_eq!(
        resource_of(&r, "DELETES", "/v1/things/x").as_deref(),
        Some("x:loose")
    );
}

fn on_host(host: &str) -> Route {
    Route::compile(&RouteSource {
        path_prefix: Some("/"),
        host: Some(host),
        resource: Some("x:host"),
        role: Some(Role::Viewer),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn the_host_loses_its_port_and_one_trailing_dot_and_compares_without_case() {
    let r = Router::new(vec![on_host("admin.example.com"), on_host("[::1]")]);
    let host_of = |host: &str| r.find("GET", host, "/x").map(|m| m.index);
    for host in [
        "admin.example.com",
        "Admin.Example.COM",
        "admin.example.com.",
        "admin.example.com:443",
        "admin.example.com.:443",
        "ADMIN.EXAMPLE.COM.:8443",
        "admin.example.com:",
    ] {
        assert_eq!(host_of(host), Some(0), "{host}");
    }
    for host in ["[::1]", "[::1]:8080", "[::1]:"] {
        assert_eq!(host_of(host), Some(1), "{host}");
    }
    for host in [
        "",
        "admin.example.com..",
        "admin.example.com:x",
        "admin.example.com:443:443",
        "other.example.com",
        "xadmin.example.com",
        ".",
        ":443",
        "[::1]x",
        "[::1]:80x",
        "::1",
    ] {
        assert_eq!(host_of(host), None, "{host}");
    }
}

#[test]
fn config_hosts_are_normalized_and_a_port_is_refused() {
    assert_eq!(
        on_host("Admin.Example.com.").host(),
        Some("admin.example.com")
    );
    assert_eq!(on_host("[::1]").host(), Some("[::1]"));
    assert_eq!(on_host("[FE80::1]").host(), Some("[fe80::1]"));
    for bad in [
        "",
        ".",
        "admin.example.com:443",
        "[::1]:8080",
        "::1",
        "[::1",
        "[]",
        "*.example.com",
        "a b",
        "a/b",
        "ex\u{e4}mple.com",
    ] {
        let e = Route::compile(&RouteSource {
            path_prefix: Some("/"),
            host: Some(bad),
            public: true,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.field, "host", "{bad}");
    }
}

#[test]
fn a_percent_encoded_unreserved_character_matches_nothing() {
    let r = Router::new(vec![
        compiled("/v1/things/admin/{*rest}", None, "x:strict"),
        compiled("/{*rest}", None, "x:loose"),
    ]);
    for p in [
        "/v1/things/%61dmin/x",
        "/v1/things/%61%64%6D%69%6E/x",
        "/v1/things/admin/%7E",
        "/v1/%2d",
        "/v1/%5f",
        "/v1/%39",
        "/v1/a%2Eb",
    ] {
        assert_eq!(resource_of(&r, "GET", p), None, "{p}");
    }
    for (p, resource) in [
        ("/v1/things/admin/x", "x:strict"),
        ("/v1/a%20b", "x:loose"),
        ("/v1/%C3%A9%25", "x:loose"),
        ("/v1/%6", "x:loose"),
        ("/v1/%zz", "x:loose"),
        ("/v1/x?%61", "x:loose"),
    ] {
        assert_eq!(resource_of(&r, "GET", p).as_deref(), Some(resource), "{p}");
    }
    assert!(Route::compile(&RouteSource {
        path_prefix: Some("/v1/%61dmin"),
        public: true,
        ..Default::default()
    })
    .is_err());
}

#[test]
fn a_semicolon_parameter_in_any_segment_matches_nothing() {
    let public = Route::compile(&RouteSource {
        path_prefix: Some("/healthz"),
        public: true,
        ..Default::default()
    })
    .unwrap();
    let r = Router::new(vec![
        public,
        compiled("/v1/things/admin/{*rest}", None, "x:strict"),
        compiled("/{*rest}", None, "x:loose"),
    ]);
    for p in [
        "/v1/things/admin;/x",
        "/v1/things/admin;x=1/x",
        "/a;jsessionid=1/b",
        "/a/b;",
        "/healthz;",
        "/healthz/..;/v1/things/admin/x",
        "/healthz/.;/x",
        "/healthz/%2e%2e;/v1/things/admin/x",
        "/healthz/x/..;x/y",
        "/v1/things/admin%3B/x",
        "/v1/things/admin%3b/x",
    ] {
        assert_eq!(resource_of(&r, "GET", p), None, "{p}");
    }
    // After the query or fragment a `;` is data, not a path parameter.
    assert_eq!(
        resource_of(&r, "GET", "/v1/things/admin/x?a=1;b=2").as_deref(),
        Some("x:strict")
    );
    assert_eq!(
        resource_of(&r, "GET", "/healthz?a;b").as_deref(),
        Some("public")
    );
    assert_eq!(
        resource_of(&r, "GET", "/healthz#;").as_deref(),
        Some("public")
    );
}

#[test]
fn dot_segments_with_a_parameter_are_dot_segments() {
    for dot in ["..;", ".;", "%2e%2e;", "..;x", ".%2E;a=b"] {
        assert!(is_dot_segment(dot), "{dot}");
    }
    for not in [";", "a;..", "...;", ";.."] {
        assert!(!is_dot_segment(not), "{not}");
    }
}

#[test]
fn a_template_or_prefix_that_no_normalized_path_can_match_is_refused() {
    for (path, prefix) in [
        ("/v1/admin;/x", None),
        ("/v1/a%2Fb", None),
        ("/v1/a%3bb", None),
        ("/v1/..;", None),
        ("/v1/a\\b", None),
        ("/v1/x", Some("/v1/admin;")),
        ("/v1/x", Some("/v1/../x")),
        ("/v1/x", Some("/v1/a%2fb")),
    ] {
        let (path, path_prefix) = match prefix {
            Some(p) => (None, Some(p)),
            None => (Some(path), None),
        };
        let e = Route::compile(&RouteSource {
            path,
            path_prefix,
            public: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.field == "path" || e.field == "path_prefix",
            "{path:?} {path_prefix:?}: {e}"
        );
    }
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

#[test]
fn literal_case_counts_unless_the_route_is_case_insensitive() {
    let r = Router::new(vec![
        case_insensitive("/v1/Models/{org}/{*rest}", "model:{org}"),
        case_insensitive("prefix:/Admin", "x:admin"),
        compiled("/v1/things/admin/{*rest}", None, "x:strict"),
        compiled("/{*rest}", None, "x:loose"),
    ]);
    let at = |p: &str| resource_of(&r, "GET", p);
    // Literals fold; what a variable captures keeps the request's spelling.
    assert_eq!(at("/v1/models/acme/x").as_deref(), Some("model:acme"));
    assert_eq!(at("/V1/MODELS/AcMe/x").as_deref(), Some("model:AcMe"));
    assert_eq!(at("/admin/x").as_deref(), Some("x:admin"));
    assert_eq!(at("/ADMIN").as_deref(), Some("x:admin"));
    assert_eq!(at("/v1/things/admin/x").as_deref(), Some("x:strict"));
    assert_eq!(at("/v1/things/ADMIN/x").as_deref(), Some("x:loose"));
    assert_eq!(at("/V1/things/admin/x").as_deref(), Some("x:loose"));
    // Folding is ASCII only.
    assert_eq!(at("/v1/MODELſ/acme/x").as_deref(), Some("x:loose"));
}

mod spelling {
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
}

#[test]
fn a_percent_encoded_character_meets_the_literal_it_spells() {
    // Found by the normalize fuzz target: `/v1/things/a%3Ab/x` skipped the strict route for
    // `{id}/x`, while an upstream that decodes serves it as `/v1/things/a:b/x`.
    let r = Router::new(vec![
        route("/v1/things/a:b/{*rest}", "x:strict"),
        route("/v1/things/caf\u{e9}/{*rest}", "x:accent"),
        route("/v1/things/{id}/x", "x:{id}"),
        route("/{*rest}", "x:loose"),
    ]);
    for p in [
        "/v1/things/a:b/x",
        "/v1/things/a%3Ab/x",
        "/v1/things/a%3ab/x",
    ] {
        assert_eq!(
            resource_of(&r, "GET", p).as_deref(),
            Some("x:strict"),
            "{p}"
        );
    }
    for p in ["/v1/things/caf%C3%A9/x", "/v1/things/caf%c3%a9/x"] {
        assert_eq!(
            resource_of(&r, "GET", p).as_deref(),
            Some("x:accent"),
            "{p}"
        );
    }
    // A capture keeps its spelling; `%` without two hex digits is itself.
    assert_eq!(
        resource_of(&r, "GET", "/v1/things/a%3Ac/x").as_deref(),
        Some("x:a%3Ac")
    );
    let r = Router::new(vec![
        route("/v1/100%/x", "x:percent"),
        route("/v1/a%3Ab/x", "x:written-encoded"),
        route("/{*rest}", "x:loose"),
    ]);
    for (p, resource) in [
        ("/v1/100%/x", "x:percent"),
        ("/v1/100%25/x", "x:percent"),
        ("/v1/a:b/x", "x:written-encoded"),
        ("/v1/a%3ab/x", "x:written-encoded"),
    ] {
        assert_eq!(resource_of(&r, "GET", p).as_deref(), Some(resource), "{p}");
    }
    // Case-insensitive routes fold the decoded letters.
    let folded = Route::compile(&RouteSource {
        path_prefix: Some("/v1/Caf%C3%A9:X"),
        public: true,
        case_insensitive: true,
        ..Default::default()
    })
    .unwrap();
    let r = Router::new(vec![folded]);
    assert!(r.find("GET", "", "/v1/caf%C3%A9%3ax/y").is_some());
    // A literal whose encodings decode to no text could never be met: refused.
    assert!(Route::compile(&RouteSource {
        path_prefix: Some("/v1/%FF"),
        public: true,
        ..Default::default()
    })
    .is_err());
}
