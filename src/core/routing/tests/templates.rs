//! Templates: what a variable captures, and the templates refused at load.

use super::*;

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
