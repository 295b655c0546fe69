//! The verified-token cache through the real server, real files and real reloads: a cached
//! allow never outlives its key, its identity, its role or its token's `exp`, and every answer
//! is the one a server without a cache gives.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use serde_json::json;
use tonic::transport::Channel;

/// How long a file edit may take to be installed (debounce included).
const RELOAD: Duration = Duration::from_secs(5);

const HITS: &str = "claimgate_token_cache_hits_total";
const MISSES: &str = "claimgate_token_cache_misses_total";
const ENTRIES: &str = "claimgate_token_cache_entries";

/// A fallback identity and `bot`; `bot` is editor on `model:a`, the fallback viewer.
const ACCESS_FULL: &str = "external_identities:\n  - name: anyone\n    sso_fqn: test-idp\n  - name: bot\n    sso_fqn: test-idp\n    claims:\n      repository: acme/api\nresources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: editor\n      - subject: external-identity:anyone\n        role: viewer\n";
/// The same with `bot` demoted to viewer.
const ACCESS_BOT_VIEWER: &str = "external_identities:\n  - name: anyone\n    sso_fqn: test-idp\n  - name: bot\n    sso_fqn: test-idp\n    claims:\n      repository: acme/api\nresources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: viewer\n      - subject: external-identity:anyone\n        role: viewer\n";
/// `bot` deleted: its tokens fall back to `anyone`.
const ACCESS_NO_BOT: &str = "external_identities:\n  - name: anyone\n    sso_fqn: test-idp\nresources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:anyone\n        role: viewer\n";
/// Neither `bot` nor the fallback: only an identity `bot`'s tokens do not match.
const ACCESS_NOBODY: &str = "external_identities:\n  - name: web\n    sso_fqn: test-idp\n    claims:\n      repository: acme/web\nresources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:web\n        role: viewer\n";
const ROUTES: &str = "routes:\n  - path: /a\n    methods: [GET]\n    resource: model:a\n    role: viewer\n  - path: /a\n    methods: [POST]\n    resource: model:a\n    role: editor\n";

fn sso(leeway: u64) -> String {
    format!(
        "sso_integrations:\n  - name: test-idp\n    type: oidc\n    issuer: {ISSUER}\n    audiences: [{AUDIENCE}]\n    jwks_file: jwks.json\n    algorithms: [RS256, ES256]\n    leeway_seconds: {leeway}\n"
    )
}

struct Setup {
    dir: ConfigDir,
    rsa: TestKey,
    ec: TestKey,
}

fn setup(leeway: u64) -> Setup {
    let rsa = TestKey::generate(Kind::Rs256, "rsa-1");
    let ec = TestKey::generate(Kind::Es256, "ec-1");
    let dir = ConfigDir::new();
    dir.write("jwks.json", &jwks(&[&rsa, &ec]));
    dir.write("sso.yaml", &sso(leeway));
    dir.write("access.yaml", ACCESS_FULL);
    dir.write("routes.yaml", ROUTES);
    Setup { dir, rsa, ec }
}

fn bot_claims() -> serde_json::Value {
    claims("bot-run", json!({"repository": "acme/api"}))
}

/// Replace a file in one step, as an editor's rename-save does, so no reload reads it half
/// written (hidden files are not configuration).
fn replace(dir: &ConfigDir, name: &str, content: &str) {
    let tmp = dir.write(&format!(".{name}.tmp"), content);
    std::fs::rename(tmp, dir.path().join(name)).unwrap();
}

/// Wait until the server installed a generation after `after`.
async fn reloaded(server: &TestServer, after: u64) -> bool {
    eventually(RELOAD, || async { server.store.generation() > after }).await
}

/// `(status, "identity role")` for an allow, `(status, reason)` for a denial.
async fn outcome(
    c: &mut AuthorizationClient<Channel>,
    token: &str,
    method: &str,
    path: &str,
) -> (u16, String) {
    let a = ask(c, check_bearer(method, path, token)).await;
    match a.status {
        200 => (
            200,
            format!(
                "{} {}",
                a.header("x-claimgate-identity").unwrap_or(""),
                a.header("x-claimgate-role").unwrap_or("")
            ),
        ),
        s => (s, a.reason().to_string()),
    }
}

fn is(status: u16, what: &str) -> (u16, String) {
    (status, what.to_string())
}

async fn metric(server: &TestServer, series: &str) -> f64 {
    server.metric(series).await.expect(series)
}

#[tokio::test]
async fn a_cached_allow_does_not_outlive_the_removal_of_its_key() {
    let s = setup(5);
    let server = TestServer::start(s.dir.path()).await;
    let mut c = server.client().await;
    let token = s.rsa.sign(&bot_claims());
    for _ in 0..2 {
        assert_eq!(
            outcome(&mut c, &token, "GET", "/a").await,
            is(200, "bot editor")
        );
    }
    assert_eq!(
        metric(&server, HITS).await,
        1.0,
        "the second check is a hit"
    );

    let generation = server.store.generation();
    replace(&s.dir, "jwks.json", &jwks(&[&s.ec]));
    assert!(reloaded(&server, generation).await);
    assert_eq!(
        outcome(&mut c, &token, "GET", "/a").await,
        is(401, "unknown_key")
    );
    assert_eq!(
        metric(&server, ENTRIES).await,
        0.0,
        "the stale entry is gone"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_cached_allow_does_not_outlive_the_deletion_of_its_identity() {
    let s = setup(5);
    let server = TestServer::start(s.dir.path()).await;
    let mut c = server.client().await;
    let token = s.rsa.sign(&bot_claims());
    for _ in 0..2 {
        assert_eq!(
            outcome(&mut c, &token, "GET", "/a").await,
            is(200, "bot editor")
        );
    }
    assert_eq!(metric(&server, HITS).await, 1.0);

    let generation = server.store.generation();
    replace(&s.dir, "access.yaml", ACCESS_NO_BOT);
    assert!(reloaded(&server, generation).await);
    for _ in 0..2 {
        assert_eq!(
            outcome(&mut c, &token, "GET", "/a").await,
            is(200, "anyone viewer"),
            "the token falls back to the remaining identity"
        );
    }

    let generation = server.store.generation();
    replace(&s.dir, "access.yaml", ACCESS_NOBODY);
    assert!(reloaded(&server, generation).await);
    assert_eq!(
        outcome(&mut c, &token, "GET", "/a").await,
        is(403, "no_identity")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_cached_allow_does_not_outlive_a_role_change() {
    let s = setup(5);
    let server = TestServer::start(s.dir.path()).await;
    let mut c = server.client().await;
    let token = s.rsa.sign(&bot_claims());
    for _ in 0..2 {
        assert_eq!(
            outcome(&mut c, &token, "POST", "/a").await,
            is(200, "bot editor")
        );
    }
    assert_eq!(metric(&server, HITS).await, 1.0);

    let generation = server.store.generation();
    replace(&s.dir, "access.yaml", ACCESS_BOT_VIEWER);
    assert!(reloaded(&server, generation).await);
    assert_eq!(
        outcome(&mut c, &token, "POST", "/a").await,
        is(403, "insufficient_role")
    );
    assert_eq!(
        outcome(&mut c, &token, "GET", "/a").await,
        is(200, "bot viewer")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_cached_allow_does_not_outlive_the_tokens_exp() {
    let s = setup(0);
    let server = TestServer::start(s.dir.path()).await;
    let mut c = server.client().await;
    let exp = now() + 3;
    let mut claims = bot_claims();
    claims["exp"] = exp.into();
    let token = s.rsa.sign(&claims);

    // Ask until the token has expired; every allow must come before `exp`. The server's clock
    // reads after `before`, so an allow at `before >= exp` is an allow after `exp`.
    let mut allows = 0;
    loop {
        let before = now();
        let got = outcome(&mut c, &token, "GET", "/a").await;
        if got.0 == 200 {
            assert_eq!(got, is(200, "bot editor"));
            assert!(before < exp, "allowed at {before}, exp {exp}, leeway 0");
            allows += 1;
        } else {
            assert_eq!(got, is(401, "expired"));
            assert!(now() >= exp, "expired before its exp");
            break;
        }
        assert!(before < exp + 10, "still allowed 10 s after exp");
        // The server's real clock passing `exp` is the subject, end to end: ask at a steady
        // pace until it has.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(allows >= 2, "the token was allowed and then cached");
    assert!(metric(&server, HITS).await >= 1.0);
    assert_eq!(
        metric(&server, ENTRIES).await,
        0.0,
        "an expired token leaves the cache"
    );
    // And it stays expired, cached or not.
    assert_eq!(
        outcome(&mut c, &token, "GET", "/a").await,
        is(401, "expired")
    );
    server.stop().await;
}

#[tokio::test]
async fn repeated_checks_with_one_token_are_counted_as_hits() {
    let s = setup(5);
    let server = TestServer::start(s.dir.path()).await;
    let mut c = server.client().await;
    let token = s.rsa.sign(&bot_claims());
    for _ in 0..5 {
        assert_eq!(
            outcome(&mut c, &token, "GET", "/a").await,
            is(200, "bot editor")
        );
    }
    assert_eq!(metric(&server, HITS).await, 4.0);
    assert_eq!(metric(&server, MISSES).await, 1.0);
    assert_eq!(metric(&server, ENTRIES).await, 1.0);
    server.stop().await;
}

#[tokio::test]
async fn a_server_without_a_token_cache_counts_no_hits() {
    let s = setup(5);
    let server = TestServer::builder(s.dir.path())
        .token_cache(0)
        .start()
        .await;
    let mut c = server.client().await;
    let token = s.rsa.sign(&bot_claims());
    for _ in 0..5 {
        assert_eq!(
            outcome(&mut c, &token, "GET", "/a").await,
            is(200, "bot editor")
        );
    }
    assert_eq!(metric(&server, HITS).await, 0.0);
    assert_eq!(metric(&server, MISSES).await, 0.0);
    assert_eq!(metric(&server, ENTRIES).await, 0.0);
    server.stop().await;
}

/// One server with the default cache and one without, on the same directory.
struct Pair {
    on: TestServer,
    off: TestServer,
    c_on: AuthorizationClient<Channel>,
    c_off: AuthorizationClient<Channel>,
}

impl Pair {
    async fn start(s: &Setup) -> Pair {
        let on = TestServer::builder(s.dir.path())
            .token_cache(claimgate::core::token_cache::DEFAULT_ENTRIES)
            .start()
            .await;
        let off = TestServer::builder(s.dir.path())
            .token_cache(0)
            .start()
            .await;
        let (c_on, c_off) = (on.client().await, off.client().await);
        Pair {
            on,
            off,
            c_on,
            c_off,
        }
    }

    /// Ask both; the whole responses (status, headers, body, metadata) must be equal.
    async fn same(&mut self, token: &str, method: &str, path: &str) -> Answer {
        let on = self.raw(true, token, method, path).await;
        let off = self.raw(false, token, method, path).await;
        assert_eq!(
            on, off,
            "{method} {path}: cache on and off answer differently"
        );
        read(on)
    }

    async fn raw(&mut self, cached: bool, token: &str, method: &str, path: &str) -> CheckResponse {
        let c = if cached {
            &mut self.c_on
        } else {
            &mut self.c_off
        };
        let resp = c
            .check(check_bearer(method, path, token))
            .await
            .expect("no gRPC error")
            .into_inner();
        without_decision_id(resp)
    }

    async fn reloaded(&self, after: u64) -> bool {
        reloaded(&self.on, after).await && reloaded(&self.off, after).await
    }

    async fn stop(self) {
        self.on.stop().await;
        self.off.stop().await;
    }
}

#[tokio::test]
async fn every_answer_is_the_same_with_the_cache_on_and_off() {
    let s = setup(5);
    let mut pair = Pair::start(&s).await;
    let stranger = TestKey::generate(Kind::Rs256, "rsa-1");
    let t = now();
    let with = |extra: serde_json::Value| {
        let mut c = bot_claims();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // (token, method, path, status, reason or identity and role)
    let cases = [
        (
            stranger.sign(&bot_claims()),
            "GET",
            "bad signature",
            401,
            "invalid_signature",
        ),
        (
            s.rsa.sign(&with(json!({"iat": t - 600, "exp": t - 60}))),
            "GET",
            "expired",
            401,
            "expired",
        ),
        (
            s.rsa.sign(&with(json!({"aud": "someone-else"}))),
            "GET",
            "wrong audience",
            401,
            "audience_mismatch",
        ),
        (
            s.rsa
                .sign(&with(json!({"iss": "https://unknown.test.local"}))),
            "GET",
            "unknown issuer",
            401,
            "unknown_issuer",
        ),
        (
            s.rsa.sign(&with(json!({"nbf": t + 600}))),
            "GET",
            "not yet valid",
            401,
            "not_yet_valid",
        ),
        (
            TestKey::generate(Kind::Es256, "nope").sign(&bot_claims()),
            "GET",
            "unknown kid",
            401,
            "unknown_key",
        ),
        (
            "not.a.jwt".to_string(),
            "GET",
            "malformed",
            401,
            "malformed_token",
        ),
        (
            s.ec.sign(&claims("web-run", json!({"repository": "acme/web"}))),
            "POST",
            "fallback identity, too weak",
            403,
            "insufficient_role",
        ),
        (
            s.ec.sign(&bot_claims()),
            "POST",
            "allowed",
            200,
            "bot editor",
        ),
    ];
    let verified = 2; // the last two pass verification and may be cached
    let rounds = 3;
    for (token, method, what, status, expected) in &cases {
        for _ in 0..rounds {
            let a = pair.same(token, method, "/a").await;
            assert_eq!(a.status, *status, "{what}: {a:?}");
            if a.status == 200 {
                let got = format!(
                    "{} {}",
                    a.header("x-claimgate-identity").unwrap_or(""),
                    a.header("x-claimgate-role").unwrap_or("")
                );
                assert_eq!(got, *expected, "{what}");
            } else {
                assert_eq!(a.reason(), *expected, "{what}");
            }
        }
    }
    // Only tokens that verified are cached: the bad ones miss every time.
    assert_eq!(
        metric(&pair.on, HITS).await,
        (verified * (rounds - 1)) as f64
    );
    assert_eq!(
        metric(&pair.on, MISSES).await,
        (cases.len() * rounds - verified * (rounds - 1)) as f64
    );
    assert_eq!(metric(&pair.on, ENTRIES).await, verified as f64);
    pair.stop().await;
}

/// The order of P-256, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `n - s` for a 32-byte big-endian `s` with `0 < s < n`.
fn negate_mod_n(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = P256_N[i] as i16 - s[i] as i16 - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0, "s < n");
    out
}

/// The same token with its ES256 signature `(r, s)` replaced by `(r, n - s)`.
fn malleate(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert_eq!(sig.len(), 64, "ES256 signatures are r || s");
    let twin_s = negate_mod_n(&sig[32..]);
    sig[32..].copy_from_slice(&twin_s);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The same token with one bit of its signature flipped.
fn tamper(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[10] ^= 0x01;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn negating_mod_n_twice_gives_back_s() {
    let s: [u8; 32] = std::array::from_fn(|i| (i * 37 + 11) as u8);
    assert_ne!(negate_mod_n(&s), s);
    assert_eq!(negate_mod_n(&negate_mod_n(&s)), s);
    let one: [u8; 32] = std::array::from_fn(|i| u8::from(i == 31));
    let mut n_minus_one = P256_N;
    n_minus_one[31] -= 1;
    assert_eq!(negate_mod_n(&one), n_minus_one);
}

#[tokio::test]
async fn an_ecdsa_token_and_its_malleated_twin_are_each_verified_on_their_own() {
    let s = setup(5);
    let mut pair = Pair::start(&s).await;
    let token = s.ec.sign(&bot_claims());
    let twin = malleate(&token);
    assert_ne!(twin, token);

    for _ in 0..2 {
        assert_eq!(pair.same(&token, "GET", "/a").await.status, 200);
    }
    // The twin carries the same claims: whatever its answer, it is the uncached server's,
    // and it comes from a verification of its own, not from the original's entry.
    let misses = metric(&pair.on, MISSES).await;
    let first = pair.same(&twin, "GET", "/a").await;
    assert_eq!(metric(&pair.on, MISSES).await, misses + 1.0);
    let again = pair.same(&twin, "GET", "/a").await;
    assert_eq!(
        (first.status, first.reason()),
        (again.status, again.reason())
    );
    // A signature that does not verify is not rescued by the cached original either.
    let bad = pair.same(&tamper(&token), "GET", "/a").await;
    assert_eq!((bad.status, bad.reason()), (401, "invalid_signature"));

    // Another token is cached, then its key removed: its twin, never seen, is denied too.
    let other =
        s.ec.sign(&claims("bot-run-2", json!({"repository": "acme/api"})));
    for _ in 0..2 {
        assert_eq!(pair.same(&other, "GET", "/a").await.status, 200);
    }
    let generation = pair.on.store.generation();
    replace(&s.dir, "jwks.json", &jwks(&[&s.rsa]));
    assert!(pair.reloaded(generation).await);
    for t in [&malleate(&other), &other, &twin, &token] {
        let a = pair.same(t, "GET", "/a").await;
        assert_eq!((a.status, a.reason()), (401, "unknown_key"));
    }
    pair.stop().await;
}

// The property: random sequences of checks, reloads, key rotations and clock moves, decided
// with and without the cache side by side, give identical decisions.

mod property {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, OnceLock};

    use claimgate::core::decision::{Credentials, Request};
    use claimgate::core::keys::KeySet;
    use claimgate::core::pipeline;
    use claimgate::core::token_cache::TokenCache;
    use claimgate::server::metrics::Metrics;
    use claimgate::{Snapshot, Store};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::{json, Value};

    use super::{malleate, tamper};
    use crate::common::*;

    /// The synthetic clock starts here; tokens are minted around it.
    const T0: u64 = 1_900_000_000;

    const ROUTES: [(&str, &str); 5] = [
        ("GET", "/a"),
        ("POST", "/a"),
        ("DELETE", "/a"),
        ("GET", "/public"),
        ("GET", "/nowhere"),
    ];

    struct Pool {
        k1: TestKey,
        k2: TestKey,
        tokens: Vec<(&'static str, String)>,
    }

    /// Keys and tokens, made once: signing is the slow part.
    fn pool() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let k1 = TestKey::generate(Kind::Es256, "k1");
            let k2 = TestKey::generate(Kind::Es256, "k2");
            let k3 = TestKey::generate(Kind::Es256, "k3");
            let c = |extra: Value| {
                let mut c =
                    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "run", "exp": T0 + 10_000});
                for (k, v) in extra.as_object().unwrap() {
                    c[k] = v.clone();
                }
                c
            };
            let bot = json!({"repository": "acme/api"});
            let bot_prod = json!({"repository": "acme/api", "environment": "prod"});
            let web_prod = json!({"repository": "acme/web", "environment": "prod"});
            let valid = k1.sign(&c(bot.clone()));
            let with = |mut base: Value, extra: Value| {
                for (k, v) in extra.as_object().unwrap() {
                    base[k] = v.clone();
                }
                c(base)
            };
            // The first five are the ones checks mostly pick: valid for a while at least.
            let tokens = vec![
                ("bot k1", valid.clone()),
                ("bot k2", k2.sign(&c(bot.clone()))),
                (
                    "expires soon",
                    k1.sign(&with(bot.clone(), json!({"exp": T0 + 6}))),
                ),
                (
                    "short window",
                    k2.sign(&with(
                        bot_prod.clone(),
                        json!({"nbf": T0 + 2, "exp": T0 + 9}),
                    )),
                ),
                ("bot-prod", k1.sign(&c(bot_prod))),
                ("web-prod", k1.sign(&c(web_prod))),
                (
                    "fallback only",
                    k1.sign(&c(json!({"repository": "acme/other"}))),
                ),
                (
                    "nbf ahead",
                    k2.sign(&with(bot.clone(), json!({"nbf": T0 + 4}))),
                ),
                (
                    "wrong audience",
                    k1.sign(&with(bot.clone(), json!({"aud": "someone-else"}))),
                ),
                (
                    "unknown issuer",
                    k1.sign(&with(bot.clone(), json!({"iss": "https://other.test"}))),
                ),
                ("malleated twin", malleate(&valid)),
                ("tampered", tamper(&valid)),
                ("unknown kid", k3.sign(&c(bot))),
            ];
            Pool { k1, k2, tokens }
        })
    }

    /// The key files a configuration or a rotation can hold.
    fn key_file(variant: usize) -> String {
        let p = pool();
        match variant {
            0 => jwks(&[&p.k1]),
            1 => jwks(&[&p.k2]),
            _ => jwks(&[&p.k1, &p.k2]),
        }
    }

    /// One configuration: which identities exist, `bot`'s role, the leeway and the keys.
    #[derive(Debug, Clone)]
    struct Conf {
        anyone: bool,
        bot: bool,
        bot_prod: bool,
        web: bool,
        env_prod: bool,
        bot_role: Option<&'static str>,
        leeway: u64,
        keys: usize,
    }

    impl Conf {
        fn write(&self, dir: &ConfigDir) {
            dir.write("jwks.json", &key_file(self.keys));
            dir.write(
                "sso.yaml",
                &format!(
                    "sso_integrations:\n  - name: test-idp\n    type: oidc\n    issuer: {ISSUER}\n    audiences: [{AUDIENCE}]\n    jwks_file: jwks.json\n    algorithms: [ES256]\n    leeway_seconds: {}\n",
                    self.leeway
                ),
            );
            // A placeholder keeps the SSO with at least one identity.
            let mut ids = String::from("external_identities:\n  - name: nobody\n    sso_fqn: test-idp\n    claims:\n      repository: acme/none\n");
            let mut collaborators = String::new();
            let mut add = |name: &str, claims: &[(&str, &str)], role: Option<&str>| {
                ids.push_str(&format!("  - name: {name}\n    sso_fqn: test-idp\n"));
                if !claims.is_empty() {
                    ids.push_str("    claims:\n");
                    for (k, v) in claims {
                        ids.push_str(&format!("      {k}: {v}\n"));
                    }
                }
                if let Some(role) = role {
                    collaborators.push_str(&format!(
                        "      - subject: external-identity:{name}\n        role: {role}\n"
                    ));
                }
            };
            if self.anyone {
                add("anyone", &[], Some("viewer"));
            }
            if self.bot {
                add("bot", &[("repository", "acme/api")], self.bot_role);
            }
            if self.bot_prod {
                add(
                    "bot-prod",
                    &[("repository", "acme/api"), ("environment", "prod")],
                    Some("manager"),
                );
            }
            if self.web {
                add("web", &[("repository", "acme/web")], Some("editor"));
            }
            if self.env_prod {
                add("env-prod", &[("environment", "prod")], Some("viewer"));
            }
            let resources = if collaborators.is_empty() {
                "resources:\n  - fqn: model:a\n".to_string()
            } else {
                format!("resources:\n  - fqn: model:a\n    collaborators:\n{collaborators}")
            };
            dir.write("access.yaml", &format!("{ids}{resources}"));
            dir.write(
                "routes.yaml",
                "routes:\n  - path: /public\n    public: true\n  - path: /a\n    methods: [GET]\n    resource: model:a\n    role: viewer\n  - path: /a\n    methods: [POST]\n    resource: model:a\n    role: editor\n  - path: /a\n    methods: [DELETE]\n    resource: model:a\n    role: manager\n",
            );
        }

        fn snapshot(&self, dir: &ConfigDir) -> Snapshot {
            self.write(dir);
            claimgate::core::load::load(dir.path())
                .expect("a valid configuration")
                .snapshot
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Decide a request with a token of the pool, on the current snapshot or (as a check
        /// still in flight would) on the one before it.
        Check {
            token: usize,
            route: usize,
            previous: bool,
        },
        /// Install a changed configuration.
        Reload(Conf),
        /// Swap the current SSO's key set: a fresh set, or the one made earlier for the same
        /// file (so a set can come back).
        Rotate { keys: usize, fresh: bool },
        /// Move the clock (NTP may move it back too).
        Advance(i64),
    }

    fn conf() -> impl Strategy<Value = Conf> {
        (
            any::<[bool; 5]>(),
            prop::sample::select(vec![None, Some("viewer"), Some("editor"), Some("manager")]),
            prop::sample::select(vec![0u64, 3]),
            0..3usize,
        )
            .prop_map(
                |([anyone, bot, bot_prod, web, env_prod], bot_role, leeway, keys)| Conf {
                    anyone,
                    bot,
                    bot_prod,
                    web,
                    env_prod,
                    bot_role,
                    leeway,
                    keys,
                },
            )
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            // Mostly the valid tokens, so they are seen again while their entries hold.
            14 => (prop_oneof![3 => 0..5usize, 2 => 0..pool().tokens.len()], 0..ROUTES.len(), prop::bool::weighted(0.15))
                .prop_map(|(token, route, previous)| Op::Check { token, route, previous }),
            1 => conf().prop_map(Op::Reload),
            1 => (0..3usize, any::<bool>()).prop_map(|(keys, fresh)| Op::Rotate { keys, fresh }),
            2 => (-2i64..=6).prop_map(Op::Advance),
        ]
    }

    fn hits(metrics: &Metrics) -> u64 {
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("claimgate_token_cache_hits_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Run one sequence; returns the cache hits it had.
    fn run(capacity: usize, initial: &Conf, ops: &[Op]) -> Result<u64, TestCaseError> {
        let p = pool();
        let dir = ConfigDir::new();
        let store = Store::new(initial.snapshot(&dir));
        let metrics = Metrics::new();
        let cache = TokenCache::new(capacity, metrics.clone());
        let mut previous: Arc<Snapshot> = store.load_full();
        let mut now = T0;
        // Key sets made once per file, so a rotation can bring the very same set back.
        let sets: Vec<Arc<KeySet>> = (0..3)
            .map(|v| {
                let algs = store.load().ssos[0].algorithms;
                Arc::new(KeySet::from_jwks(key_file(v).as_bytes(), algs).unwrap().0)
            })
            .collect();
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Check {
                    token,
                    route,
                    previous: old,
                } => {
                    let snap = if *old {
                        previous.clone()
                    } else {
                        store.load_full()
                    };
                    let (what, token) = &p.tokens[*token];
                    let (method, path) = ROUTES[*route];
                    let req = Request {
                        method,
                        path,
                        host: "api.example.com",
                        credentials: Credentials::Bearer(token),
                        ext_resource: None,
                        ext_role: None,
                        ext_enforcement: None,
                        ext_parent: None,
                    };
                    let cached = pipeline::decide_cached(&snap, &cache, &req, now);
                    let fresh = pipeline::decide(&snap, &req, now);
                    prop_assert_eq!(
                        cached,
                        fresh,
                        "step {}: {} {} {} at T0{:+}",
                        step,
                        what,
                        method,
                        path,
                        now as i64 - T0 as i64
                    );
                }
                Op::Reload(conf) => {
                    previous = store.load_full();
                    store.install(conf.snapshot(&dir));
                }
                Op::Rotate { keys, fresh } => {
                    let snap = store.load();
                    let set = if *fresh {
                        let algs = snap.ssos[0].algorithms;
                        Arc::new(
                            KeySet::from_jwks(key_file(*keys).as_bytes(), algs)
                                .unwrap()
                                .0,
                        )
                    } else {
                        sets[*keys].clone()
                    };
                    snap.ssos[0].keys.store(set);
                }
                Op::Advance(d) => now = now.saturating_add_signed(*d),
            }
        }
        Ok(hits(&metrics))
    }

    #[test]
    fn decisions_with_the_token_cache_equal_decisions_without_it() {
        let mut runner = TestRunner::new(Config {
            cases: 128,
            // A failure prints its shrunk input; no regression files are written under tests/.
            failure_persistence: None,
            ..Config::default()
        });
        let total = AtomicU64::new(0);
        let strategy = (
            prop::sample::select(vec![1usize, 3, 64]),
            conf(),
            prop::collection::vec(op(), 1..60),
        );
        let result = runner.run(&strategy, |(capacity, initial, ops)| {
            total.fetch_add(run(capacity, &initial, &ops)?, Ordering::Relaxed);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        // The property says nothing if the cache was never used.
        assert!(
            total.load(Ordering::Relaxed) > 100,
            "too few cache hits: {}",
            total.load(Ordering::Relaxed)
        );
    }
}
