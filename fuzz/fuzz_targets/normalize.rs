//! The route path normalizer (`claimgate::core::routing::normalized_path`) and the router behind it.
//!
//! For every path it accepts:
//! - it is the raw path up to its query or fragment, and accepting it again changes nothing
//!   (idempotent);
//! - it is its own RFC 3986 meaning (unreserved characters spelled plainly, no dot
//!   segments), and holds nothing an upstream reads differently (empty segments,
//!   backslashes, `;` parameters);
//! - the route it picks is the route its fully decoded spelling picks (what an upstream that
//!   decodes before it routes serves), so no spelling reaches a looser route than its meaning.
//!
//! The input is a path after an even first byte; after an odd one, each byte picks a piece
//! of `PIECES`.
#![no_main]

use claimgate::core::role::Role;
use claimgate::core::routing::{normalized_path, Route, RouteSource, Router};
use claimgate_fuzz::path_reference::{fully_decoded, rfc_normal};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Pieces that spell the same segment differently, or that upstreams read in their own way.
const PIECES: [&str; 32] = [
    "v1",
    "things",
    "admin",
    "a:b",
    "a%3Ab",
    "a%3ab",
    "caf\u{e9}",
    "caf%C3%A9",
    "caf%c3%a9",
    ".",
    "..",
    "%2e",
    "%2E",
    "%2e%2e",
    ".%2E",
    "..;",
    ";x",
    "%3B",
    "%2F",
    "%2f",
    "%5C",
    "\\",
    "%61dmin",
    "%41",
    "%7e",
    "%7E",
    "~",
    "%20",
    "%",
    "%zz",
    "?q=1",
    "#f",
];

/// Strict routes first, each followed by a looser one an alternative spelling could reach.
fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let routes = [
            ("/v1/things/admin/{*rest}", false),
            ("/v1/things/a:b/{*rest}", false),
            ("/v1/things/caf\u{e9}/{*rest}", false),
            ("/v1/things/~/{*rest}", false),
            ("/v1/things/{id}/x", false),
            ("/v1/things/{*rest}", false),
            ("/v1/admin", true),
            ("/v1", true),
        ];
        Router::new(
            routes
                .iter()
                .enumerate()
                .map(|(i, (path, prefix))| {
                    let resource = format!("r{i}");
                    let src = RouteSource {
                        path: (!prefix).then_some(*path),
                        path_prefix: prefix.then_some(*path),
                        resource: Some(&resource),
                        role: Some(Role::Viewer),
                        ..RouteSource::default()
                    };
                    Route::compile(&src).expect("the fuzz routes compile")
                })
                .collect(),
        )
    })
}

fn route_of(path: &str) -> Option<usize> {
    router().find("GET", "", path).map(|m| m.index)
}

fuzz_target!(|data: &[u8]| {
    let raw = match data.split_first() {
        // An even first byte: the rest is the path (how the committed seeds are written).
        Some((mode, rest)) if mode % 2 == 0 => String::from_utf8_lossy(rest).into_owned(),
        // Odd: each byte picks a piece; its high bit glues it to the one before, else a `/`
        // goes between them.
        Some((_, rest)) => {
            let mut s = String::new();
            for b in rest {
                if b & 0x80 == 0 {
                    s.push('/');
                }
                s.push_str(PIECES[usize::from(b & 0x7f) % PIECES.len()]);
            }
            s
        }
        None => return,
    };
    let Some(path) = normalized_path(&raw) else {
        assert_eq!(route_of(&raw), None, "{raw:?} is refused but routed");
        return;
    };
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    assert_eq!(path, &raw[..end], "{raw:?}: not its own path");
    assert_eq!(normalized_path(path), Some(path), "{raw:?}: not idempotent");
    assert_eq!(
        rfc_normal(path),
        path,
        "{raw:?}: not in RFC 3986 normal form"
    );
    let segments = path.strip_prefix('/').unwrap_or(path);
    let segments = segments.strip_suffix('/').unwrap_or(segments);
    if !segments.is_empty() {
        assert!(
            !segments.split('/').any(str::is_empty),
            "{raw:?}: an empty segment"
        );
    }
    assert!(
        !path.contains(['\\', ';']),
        "{raw:?}: read differently upstream"
    );
    // What an upstream that decodes the path serves, when that is still one path.
    let routed = route_of(&raw);
    if let Some(decoded) = fully_decoded(path) {
        if !decoded.contains(['?', '#', '%']) && normalized_path(&decoded) == Some(&*decoded) {
            assert_eq!(
                routed,
                route_of(&decoded),
                "{raw:?} routes as written, {decoded:?} as decoded"
            );
        }
    }
});
