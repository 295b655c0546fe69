//! Identity headers in any spelling: whatever names and values a CheckRequest carries, in the
//! `headers` map or as raw `header_map` entries, a check answers without panicking, and no
//! header whose name (case folded, `_` read as `-`) starts with `x-claimgate-` reaches the
//! upstream unless claimgate overwrites it with its own value.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use claimgate::server::metrics::Metrics;
use claimgate::server::service::CheckService;
use claimgate::Store;
use common::*;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use proptest::prelude::*;
use serde_json::json;

const PREFIX: &str = "x-claimgate-";

/// The shared fixture behind an in-process service, and a token it allows.
struct Setup {
    service: CheckService,
    runtime: tokio::runtime::Runtime,
    bearer: String,
    _dir: ConfigDir,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = TestKey::generate(Kind::Rs256, "rsa-1");
        let dir = fixture_config(&key);
        let snapshot = claimgate::core::load::load(dir.path())
            .expect("fixture loads")
            .snapshot;
        let store = std::sync::Arc::new(Store::new(snapshot));
        Setup {
            service: CheckService::new(store, Metrics::new(), Duration::from_millis(100)),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            bearer: format!("Bearer {}", key.sign(&claims("run-1", json!({})))),
            _dir: dir,
        }
    })
}

/// Whether Envoy must not let this header through unless claimgate set it; said differently
/// from the service's own test, so the two can disagree.
fn is_identity_spelling(name: &str) -> bool {
    name.get(..PREFIX.len())
        .is_some_and(|head| head.replace('_', "-").eq_ignore_ascii_case(PREFIX))
}

/// Names near and in claimgate's prefix: any case, either separator, any or no suffix.
fn prefixed_name() -> impl Strategy<Value = String> {
    let suffix = prop_oneof![
        Just(String::new()),
        "[a-z_-]{1,10}",
        Just("identity".to_owned()),
        any::<String>(),
    ];
    (
        prop::collection::vec(any::<bool>(), PREFIX.len()),
        prop::sample::select(vec!["", "-", "_", "é", "\u{1F600}"]),
        suffix,
    )
        .prop_map(|(upper, last, suffix)| {
            // The first eleven characters, each in either case, `-` or `_` after the `x`.
            let head: String = "x-claimgate"
                .chars()
                .zip(upper)
                .map(|(c, up)| match c {
                    '-' if up => '_',
                    c if up => c.to_ascii_uppercase(),
                    c => c,
                })
                .collect();
            format!("{head}{last}{suffix}")
        })
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prefixed_name(),
        2 => any::<String>(),
        1 => prop::sample::select(vec![
            "authorization",
            "x-request-id",
            ":authority",
            "x-claimgate-identity",
            "X-Claimgate-Role",
            "x-claimgate-sso",
            "x-claimgate-subject",
            "x-claimgate-resource",
        ])
        .prop_map(String::from),
    ]
}

/// A raw header's value: either encoding Envoy may use, including bytes that are not UTF-8.
fn raw_value() -> impl Strategy<Value = (String, Vec<u8>)> {
    prop_oneof![
        any::<String>().prop_map(|v| (v, Vec::new())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| (String::new(), b)),
    ]
}

/// A request to a route that allows the fixture's token, to the public route, or to one
/// that denies it; the token comes first, so a generated `authorization` can replace it.
fn request(
    path: &str,
    raw: bool,
    headers: &[(String, (String, Vec<u8>))],
) -> (CheckRequest, Vec<String>) {
    let mut req = check("GET", path, &[]);
    let http = req
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .expect("check() builds HTTP attributes");
    let bearer = setup().bearer.clone();
    if raw {
        let mut list = vec![HeaderValue {
            key: "authorization".into(),
            raw_value: bearer.into_bytes(),
            ..Default::default()
        }];
        list.extend(headers.iter().map(|(k, (value, raw_value))| HeaderValue {
            key: k.clone(),
            value: value.clone(),
            raw_value: raw_value.clone(),
        }));
        http.header_map = Some(HeaderMap { headers: list });
    } else {
        http.headers.insert("authorization".into(), bearer);
        for (k, (value, _)) in headers {
            http.headers.insert(k.clone(), value.clone());
        }
    }
    let names = headers.iter().map(|(k, _)| k.clone()).collect();
    (req, names)
}

/// Envoy's answer lets no identity header through that claimgate did not set.
fn no_identity_header_survives(names: &[String], resp: &CheckResponse) -> Result<(), String> {
    if resp.status.is_none() {
        return Err("no status: an empty CheckResponse means OK to Envoy".into());
    }
    let ok = match &resp.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        // A denial: nothing reaches the upstream.
        Some(_) => return Ok(()),
        None => return Err("no http_response".into()),
    };
    let mut set = Vec::new();
    for h in &ok.headers {
        if h.append_action != HeaderAppendAction::OverwriteIfExistsOrAdd as i32 {
            return Err(format!("appended, not overwritten: {h:?}"));
        }
        set.extend(h.header.as_ref().map(|h| h.key.as_str()));
    }
    for name in names.iter().filter(|n| is_identity_spelling(n)) {
        let removed = ok.headers_to_remove.contains(&name.to_ascii_lowercase());
        let overwritten = set.iter().any(|s| s.eq_ignore_ascii_case(name));
        if !removed && !overwritten {
            return Err(format!("{name:?} survives: {ok:?}"));
        }
    }
    for removed in &ok.headers_to_remove {
        if !is_identity_spelling(removed)
            || !names.iter().any(|n| n.to_ascii_lowercase() == *removed)
        {
            return Err(format!(
                "removes {removed:?}, which is not a sent identity header"
            ));
        }
        if set.contains(&removed.as_str()) {
            return Err(format!("removes {removed:?}, which it also sets"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // A failure prints its shrunk input; no regression files are written under tests/.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_header_name_or_value_panics_a_check_or_survives_as_an_identity_header(
        path in prop::sample::select(vec![
            "/v1/models/acme/llama/infer",
            "/healthz",
            "/v1/admin/users",
        ]),
        raw in any::<bool>(),
        headers in prop::collection::vec((header_name(), raw_value()), 0..8),
    ) {
        let s = setup();
        let (req, names) = request(path, raw, &headers);
        let resp = s.runtime.block_on(s.service.check_request(&req));
        prop_assert_eq!(no_identity_header_survives(&names, &resp), Ok(()));
    }
}

/// The generators reach what the property is about: allowed requests carrying identity
/// headers in several spellings (otherwise the property above could hold vacuously).
#[test]
fn the_property_sees_allowed_requests_with_forged_spellings() {
    let headers: Vec<(String, (String, Vec<u8>))> =
        ["x_claimgate_identity", "X-CLAIMGATE-ROLE", "x-claimgate-"]
            .iter()
            .map(|n| (n.to_string(), ("forged".to_owned(), Vec::new())))
            .collect();
    for raw in [false, true] {
        let (req, names) = request("/v1/models/acme/llama/infer", raw, &headers);
        let s = setup();
        let resp = s.runtime.block_on(s.service.check_request(&req));
        let Some(HttpResponse::OkResponse(ok)) = &resp.http_response else {
            panic!("the fixture's token is allowed: {resp:?}");
        };
        assert_eq!(no_identity_header_survives(&names, &resp), Ok(()));
        assert_eq!(
            ok.headers_to_remove,
            vec!["x-claimgate-".to_string(), "x_claimgate_identity".into()],
            "raw={raw}"
        );
    }
}
