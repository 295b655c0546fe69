//! Request paths that are not in normal form: dot segments, parameters, percent-encoding.

use super::*;
use crate::core::routing::normalize::is_dot_segment;

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
