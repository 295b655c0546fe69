//! Which route a request meets: prefixes, methods, hosts, literal case; first match wins.

use super::*;

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
