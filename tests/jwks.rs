//! Keys from a real HTTP provider on 127.0.0.1: discovery, rotation, floods, outages.

mod common;

use std::time::Duration;

use claimgate::server::provider::ProviderOptions;
use common::provider::{Mode, Provider};
use common::*;
use serde_json::json;

const REST: &str = common::provider::REMOTE_REST;

fn sso(name: &str, issuer: &str, source: &str, algorithms: &str) -> String {
    format!("  - name: {name}\n    type: oidc\n    issuer: {issuer}\n    audiences: [{AUDIENCE}]\n    {source}\n    algorithms: {algorithms}\n")
}

fn fast(refresh_ms: u64) -> ProviderOptions {
    ProviderOptions {
        refresh: Duration::from_millis(refresh_ms),
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_secs(1),
        ..ProviderOptions::default()
    }
}

/// A config whose one SSO, `remote-idp` (issuer ISSUER), loads its keys from `idp`'s jwks_uri.
fn jwks_uri_config(idp: &Provider, algorithms: &str) -> ConfigDir {
    let dir = ConfigDir::new();
    let source = format!("jwks_uri: {}", idp.jwks_uri());
    dir.write(
        "sso.yaml",
        &format!(
            "sso_integrations:\n{}",
            sso("remote-idp", ISSUER, &source, algorithms)
        ),
    );
    dir.write("rest.yaml", REST);
    dir
}

async fn start(dir: &ConfigDir, opts: ProviderOptions) -> TestServer {
    TestServer::builder(dir.path()).provider(opts).start().await
}

fn token_for(key: &TestKey, issuer: &str) -> String {
    key.sign(&claims("ci", json!({"iss": issuer})))
}

async fn outcome(server: &TestServer, token: &str) -> (u16, String) {
    let mut c = server.client().await;
    let a = ask(&mut c, check_bearer("GET", "/a", token)).await;
    (
        a.status,
        if a.status == 200 {
            String::new()
        } else {
            a.reason().to_string()
        },
    )
}

/// REST plus an identity of another SSO.
fn rest_with(identity: &str, sso: &str) -> String {
    REST.replacen(
        "external_identities:\n",
        &format!("external_identities:\n  - name: {identity}\n    sso_fqn: {sso}\n"),
        1,
    )
}

#[tokio::test]
async fn discovery_finds_the_keys_and_a_foreign_issuer_is_refused() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let honest = Provider::start(jwks(&[&key])).await;
    let liar = Provider::start(jwks(&[&key])).await;
    liar.lie_about_issuer("https://somebody-else.example.com");
    let dir = ConfigDir::new();
    dir.write(
        "sso.yaml",
        &format!(
            "sso_integrations:\n{}{}",
            sso("remote-idp", &honest.issuer(), "discovery: true", "[ES256]"),
            sso("liar-idp", &liar.issuer(), "discovery: true", "[ES256]")
        ),
    );
    dir.write("rest.yaml", &rest_with("liar-bot", "liar-idp"));
    let server = start(&dir, ProviderOptions::default()).await;
    let body = server.ready_body().await;
    assert!(body.contains("liar-idp"), "{body}");
    assert!(!body.contains("remote-idp"), "{body}");
    assert_eq!(
        outcome(&server, &token_for(&key, &honest.issuer())).await,
        (200, String::new())
    );
    assert_eq!(honest.discovery_fetches(), 1);
    assert_eq!(honest.jwks_fetches(), 1);
    // The liar's keys are never fetched; its tokens are unknown_key.
    assert_eq!(liar.jwks_fetches(), 0);
    assert_eq!(
        outcome(&server, &token_for(&key, &liar.issuer())).await.1,
        "unknown_key"
    );
    let failures = server
        .metric(r#"claimgate_jwks_refreshes_total{result="failure",sso="liar-idp"}"#)
        .await;
    assert!(failures.unwrap_or(0.0) >= 1.0, "{failures:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_a_removed_key_stops_verifying() {
    let old = TestKey::generate(Kind::Rs256, "old");
    let new = TestKey::generate(Kind::Rs256, "new");
    let idp = Provider::start(jwks(&[&old])).await;
    let dir = jwks_uri_config(&idp, "[RS256]");
    // Background refresh is slow here: only the unknown kid may cause the second fetch.
    let server = start(&dir, ProviderOptions::default()).await;
    server.ready_body().await;
    assert_eq!(
        outcome(&server, &token_for(&old, ISSUER)).await,
        (200, String::new())
    );
    assert_eq!(idp.jwks_fetches(), 1);

    idp.set_jwks(jwks(&[&old, &new]));
    assert_eq!(
        outcome(&server, &token_for(&new, ISSUER)).await,
        (200, String::new()),
        "the first new-key token is allowed"
    );
    assert_eq!(idp.jwks_fetches(), 2, "exactly one refetch");
    assert_eq!(
        outcome(&server, &token_for(&new, ISSUER)).await,
        (200, String::new())
    );
    assert_eq!(idp.jwks_fetches(), 2);
    server.stop().await;

    // The old key is removed at the provider: after the next refresh it stops verifying.
    let server = start(&dir, fast(300)).await;
    server.ready_body().await;
    assert_eq!(
        outcome(&server, &token_for(&old, ISSUER)).await,
        (200, String::new())
    );
    idp.set_jwks(jwks(&[&new]));
    let gone = eventually(Duration::from_secs(5), || async {
        outcome(&server, &token_for(&old, ISSUER)).await == (401, "unknown_key".to_string())
    })
    .await;
    assert!(gone, "the removed key stops verifying");
    assert_eq!(
        outcome(&server, &token_for(&new, ISSUER)).await,
        (200, String::new())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_random_kids_costs_the_provider_at_most_one_refetch() {
    let key = TestKey::generate(Kind::EdDsa, "real");
    let idp = Provider::start(jwks(&[&key])).await;
    let dir = jwks_uri_config(&idp, "[EdDSA]");
    // The window must outlast the run however slow the machine is: the test counts fetches
    // per window.
    let opts = ProviderOptions {
        refetch_min_interval: Duration::from_secs(600),
        ..ProviderOptions::default()
    };
    let server = start(&dir, opts).await;
    server.ready_body().await;
    let payload = claims("ci", json!({})).to_string();
    const TASKS: usize = 8;
    const PER_TASK: usize = 1250;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let mut c = server.client().await;
        let key = key.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let kid = format!("random-{t}-{i}-{}", rand_suffix(t * PER_TASK + i));
                let header = json!({"alg": "EdDSA", "kid": kid}).to_string();
                let token = key.sign_raw(&header, &payload);
                let a = ask(&mut c, check_bearer("GET", "/a", &token)).await;
                assert_eq!((a.status, a.reason()), (401, "unknown_key"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let fetches = idp.jwks_fetches();
    assert!(fetches <= 2, "10,000 random kids caused {fetches} fetches");
    assert_eq!(
        outcome(&server, &key.sign(&claims("ci", json!({})))).await,
        (200, String::new())
    );
    server.stop().await;
}

fn rand_suffix(i: usize) -> u64 {
    // Distinct, unpredictable-looking kids without another dependency.
    (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

#[tokio::test]
async fn provider_outages_keep_the_last_good_keys() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let idp = Provider::start(jwks(&[&key])).await;
    let dir = jwks_uri_config(&idp, "[ES256]");
    let server = start(&dir, fast(200)).await;
    server.ready_body().await;
    let token = token_for(&key, ISSUER);
    let failures = r#"claimgate_jwks_refreshes_total{result="failure",sso="remote-idp"}"#;
    for mode in [
        Mode::Status500,
        Mode::Hang,
        Mode::HugeBody,
        Mode::InvalidJson,
        Mode::EmptyKeys,
        Mode::Normal,
    ] {
        let before = server.metric(failures).await.unwrap_or(0.0);
        idp.set_mode(mode);
        if mode == Mode::Normal {
            // Down: connection refused.
            idp.stop();
        }
        let counted = eventually(Duration::from_secs(8), || async {
            server.metric(failures).await.unwrap_or(0.0) >= before + 2.0
        })
        .await;
        assert!(counted, "{mode:?}: refresh failures are counted");
        assert_eq!(
            outcome(&server, &token).await,
            (200, String::new()),
            "{mode:?}: last good keys still verify"
        );
        assert_eq!(
            server
                .metric(r#"claimgate_jwks_keys{sso="remote-idp"}"#)
                .await,
            Some(1.0),
            "{mode:?}"
        );
    }
    // Back up: refreshes succeed again.
    idp.restart().await;
    let before = server
        .metric(r#"claimgate_jwks_refreshes_total{result="success",sso="remote-idp"}"#)
        .await
        .unwrap_or(0.0);
    assert!(
        eventually(Duration::from_secs(8), || async {
            server
                .metric(r#"claimgate_jwks_refreshes_total{result="success",sso="remote-idp"}"#)
                .await
                .unwrap_or(0.0)
                > before
        })
        .await
    );
    server.stop().await;
}

#[tokio::test]
async fn symmetric_and_weak_keys_are_never_used() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let good = TestKey::generate(Kind::Rs256, "good");
    let weak = TestKey::generate(Kind::Rs256, "weak");
    // Keep the exponent, cut the modulus to 1024 bits: if this key were used, the result
    // would be invalid_signature, not unknown_key.
    let mut weak_jwk = weak.jwk.clone();
    let n = b64.decode(weak_jwk["n"].as_str().unwrap()).unwrap();
    weak_jwk["n"] = b64.encode(&n[..128]).into();
    let secret = b"0123456789abcdef0123456789abcdef";
    let set = json!({"keys": [good.jwk, weak_jwk, {"kty": "oct", "kid": "hmac", "k": b64.encode(secret)}]}).to_string();
    let idp = Provider::start(set).await;
    let dir = jwks_uri_config(&idp, "[RS256]");
    let server = start(&dir, ProviderOptions::default()).await;
    server.ready_body().await;
    assert_eq!(
        server
            .metric(r#"claimgate_jwks_keys{sso="remote-idp"}"#)
            .await,
        Some(1.0)
    );
    assert_eq!(
        outcome(&server, &token_for(&good, ISSUER)).await,
        (200, String::new())
    );
    assert_eq!(
        outcome(&server, &token_for(&weak, ISSUER)).await,
        (401, "unknown_key".to_string())
    );
    // HMAC with the oct key: the algorithm is refused before any key is looked at ...
    let payload = claims("ci", json!({})).to_string();
    let input = format!(
        "{}.{}",
        b64.encode(json!({"alg": "HS256", "kid": "hmac"}).to_string()),
        b64.encode(&payload)
    );
    let hmac = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(
        outcome(&server, &format!("{input}.{hmac}")).await,
        (401, "algorithm_not_allowed".to_string())
    );
    // ... and an allowed algorithm naming the oct key finds no key.
    let t = good.sign_raw(
        &json!({"alg": "RS256", "kid": "hmac"}).to_string(),
        &payload,
    );
    assert_eq!(outcome(&server, &t).await, (401, "unknown_key".to_string()));
    server.stop().await;
}

#[tokio::test]
async fn startup_with_one_provider_down_waits_for_both_then_serves_the_healthy_one() {
    let healthy_key = TestKey::generate(Kind::Es256, "h1");
    let flaky_key = TestKey::generate(Kind::Es256, "f1");
    let healthy = Provider::start(jwks(&[&healthy_key])).await;
    let flaky = Provider::start(jwks(&[&flaky_key])).await;
    flaky.set_mode(Mode::Hang);
    let dir = ConfigDir::new();
    dir.write(
        "sso.yaml",
        &format!(
            "sso_integrations:\n{}{}",
            sso(
                "remote-idp",
                ISSUER,
                &format!("jwks_uri: {}", healthy.jwks_uri()),
                "[ES256]"
            ),
            sso(
                "flaky-idp",
                "https://flaky.test.local",
                &format!("jwks_uri: {}", flaky.jwks_uri()),
                "[ES256]"
            )
        ),
    );
    dir.write("rest.yaml", &rest_with("flaky-bot", "flaky-idp"));
    let opts = ProviderOptions {
        timeout: Duration::from_millis(1500),
        refresh: Duration::from_secs(600),
        ..ProviderOptions::default()
    };
    let server = start(&dir, opts).await;
    // The flaky provider hangs until the timeout: not ready yet, and its tokens wait, then 503.
    let (status, body) = server.http_get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("flaky-idp"), "{body}");
    assert_eq!(
        outcome(&server, &token_for(&flaky_key, "https://flaky.test.local")).await,
        (503, "not_ready".to_string())
    );
    let body = server.ready_body().await;
    assert!(
        body.contains("flaky-idp") && body.contains("unknown_key"),
        "{body}"
    );
    assert_eq!(
        outcome(&server, &token_for(&healthy_key, ISSUER)).await,
        (200, String::new())
    );
    assert_eq!(
        outcome(&server, &token_for(&flaky_key, "https://flaky.test.local")).await,
        (401, "unknown_key".to_string())
    );
    server.stop().await;
}

#[tokio::test]
async fn the_binary_fetches_keys_through_discovery() {
    // A separate process: proves the shipped binary's HTTP client works on its own TLS setup.
    let key = TestKey::generate(Kind::EdDsa, "k1");
    let idp = Provider::start(jwks(&[&key])).await;
    let dir = ConfigDir::new();
    dir.write(
        "sso.yaml",
        &format!(
            "sso_integrations:\n{}",
            sso("remote-idp", &idp.issuer(), "discovery: true", "[EdDSA]")
        ),
    );
    dir.write("rest.yaml", REST);
    let serve = common::process::Claimgate::start(dir.path()).await;
    let mut c = serve.client().await;
    let token = token_for(&key, &idp.issuer());
    let a = ask(&mut c, check_bearer("GET", "/a", &token)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_reload_that_keeps_the_key_source_keeps_the_keys_without_refetching() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let idp = Provider::start(jwks(&[&key])).await;
    let dir = jwks_uri_config(&idp, "[ES256]");
    let server = start(&dir, ProviderOptions::default()).await;
    server.ready_body().await;
    let token = token_for(&key, ISSUER);
    assert_eq!(outcome(&server, &token).await, (200, String::new()));
    assert_eq!(idp.jwks_fetches(), 1);
    // Three edits that leave sso.yaml alone: each is swapped in, none refetches keys.
    for (i, role) in ["editor", "manager", "viewer"].iter().enumerate() {
        dir.write(
            "rest.yaml",
            &REST.replace("role: viewer\nroutes:", &format!("role: {role}\nroutes:")),
        );
        let generation = (i + 2) as u64;
        assert!(
            eventually(Duration::from_secs(2), || async {
                server.store.generation() == generation
            })
            .await,
            "edit {i} is swapped in"
        );
        assert_eq!(outcome(&server, &token).await, (200, String::new()));
    }
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "no refetch on edits that keep the key source"
    );
    let keys = r#"claimgate_jwks_keys{sso="remote-idp"}"#;
    assert_eq!(
        server.metric(keys).await,
        Some(1.0),
        "reloads do not report remote keys as empty"
    );
    // Changing the key source is a new key set, loaded once.
    dir.write(
        "sso.yaml",
        &std::fs::read_to_string(dir.path().join("sso.yaml"))
            .unwrap()
            .replace("[ES256]", "[ES256, ES384]"),
    );
    assert!(eventually(Duration::from_secs(3), || async { idp.jwks_fetches() == 2 }).await);
    assert!(
        eventually(Duration::from_secs(2), || async {
            outcome(&server, &token).await == (200, String::new())
        })
        .await
    );
    assert_eq!(server.metric(keys).await, Some(1.0));
    server.stop().await;
}

/// Provider options that trust the test CA of the HTTPS provider.
fn trusting_test_ca() -> ProviderOptions {
    ProviderOptions {
        extra_roots: vec![common::provider::test_ca()],
        ..ProviderOptions::default()
    }
}

/// A config whose one SSO, `remote-idp`, finds its keys through discovery from `idp`.
fn discovery_config(idp: &Provider, algorithms: &str) -> ConfigDir {
    let dir = ConfigDir::new();
    dir.write(
        "sso.yaml",
        &format!(
            "sso_integrations:\n{}",
            sso("remote-idp", &idp.issuer(), "discovery: true", algorithms)
        ),
    );
    dir.write("rest.yaml", REST);
    dir
}

#[tokio::test]
async fn discovery_over_https_loads_keys_only_from_a_provider_whose_certificate_is_trusted() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let idp = Provider::start_tls(jwks(&[&key])).await;
    let dir = discovery_config(&idp, "[ES256]");
    let token = token_for(&key, &idp.issuer());

    let untrusting = start(&dir, ProviderOptions::default()).await;
    let body = untrusting.ready_body().await;
    assert!(body.contains("remote-idp"), "{body}");
    assert_eq!(
        outcome(&untrusting, &token).await,
        (401, "unknown_key".to_string())
    );
    assert_eq!(
        idp.discovery_fetches(),
        0,
        "no request passes a failed handshake"
    );
    untrusting.stop().await;

    let trusting = start(&dir, trusting_test_ca()).await;
    let body = trusting.ready_body().await;
    assert!(!body.contains("remote-idp"), "{body}");
    assert_eq!(outcome(&trusting, &token).await, (200, String::new()));
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
    trusting.stop().await;
}

#[tokio::test]
async fn an_https_issuer_cannot_send_its_keys_over_plain_http() {
    let key = TestKey::generate(Kind::Es256, "k1");
    // Anyone who can answer on a loopback port of the claimgate host (a sidecar, another
    // tenant's process) would otherwise serve the keys of an HTTPS issuer.
    let plain = Provider::start(jwks(&[&key])).await;
    let idp = Provider::start_tls(jwks(&[&key])).await;
    idp.point_jwks_uri_at(&plain.jwks_uri());
    let dir = discovery_config(&idp, "[ES256]");
    let server = start(&dir, trusting_test_ca()).await;
    let body = server.ready_body().await;
    assert!(
        body.contains("remote-idp") && body.contains("https"),
        "{body}"
    );
    assert_eq!(
        outcome(&server, &token_for(&key, &idp.issuer())).await,
        (401, "unknown_key".to_string())
    );
    assert!(idp.discovery_fetches() >= 1);
    assert_eq!(
        plain.jwks_fetches(),
        0,
        "the plain-http URL is never fetched"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_loopback_http_issuer_may_name_a_loopback_http_jwks_uri() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let keys = Provider::start(jwks(&[&key])).await;
    let idp = Provider::start(jwks(&[])).await;
    idp.point_jwks_uri_at(&keys.jwks_uri());
    let dir = discovery_config(&idp, "[ES256]");
    let server = start(&dir, ProviderOptions::default()).await;
    server.ready_body().await;
    assert_eq!(
        outcome(&server, &token_for(&key, &idp.issuer())).await,
        (200, String::new())
    );
    assert_eq!((idp.jwks_fetches(), keys.jwks_fetches()), (0, 1));
    server.stop().await;
}

#[tokio::test]
async fn a_refetch_of_the_same_keys_keeps_the_tokens_they_verified_cached() {
    let key = TestKey::generate(Kind::EdDsa, "real");
    let idp = Provider::start(jwks(&[&key])).await;
    let dir = jwks_uri_config(&idp, "[EdDSA]");
    let server = start(&dir, ProviderOptions::default()).await;
    server.ready_body().await;
    let token = key.sign(&claims("ci", json!({})));
    for _ in 0..2 {
        assert_eq!(outcome(&server, &token).await, (200, String::new()));
    }
    // A token naming a kid the set lacks makes claimgate fetch the (unchanged) set again.
    let fetches = idp.jwks_fetches();
    let header = json!({"alg": "EdDSA", "kid": "not-in-the-set"}).to_string();
    let stranger = key.sign_raw(&header, &claims("ci", json!({})).to_string());
    assert_eq!(
        outcome(&server, &stranger).await,
        (401, "unknown_key".to_string())
    );
    assert!(
        idp.jwks_fetches() > fetches,
        "the unknown kid was looked up"
    );
    let misses = server.metric("claimgate_token_cache_misses_total").await;
    assert_eq!(outcome(&server, &token).await, (200, String::new()));
    assert_eq!(
        server.metric("claimgate_token_cache_misses_total").await,
        misses,
        "the token verified with the same keys is still cached"
    );
    server.stop().await;
}

/// A `jwks_uri` may carry credentials (`user:password@`, `?access_token=`): `/readyz` (which
/// anyone who reaches the port can read) and the refresh warnings name the URL without them,
/// whether the provider answered an error or could not be reached at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_urls_are_shown_without_their_credentials_on_readyz_and_in_logs() {
    let idp = Provider::start(jwks(&[&TestKey::generate(Kind::Es256, "k1")])).await;
    idp.set_mode(Mode::Status500);
    let with_secrets = |uri: &str| {
        let (scheme, rest) = uri.split_once("://").unwrap();
        format!("{scheme}://keyuser:hunter2pw@{rest}?access_token=t0ps3cr3t&x=1")
    };
    let refusing = with_secrets(&idp.jwks_uri());
    // Port 1 (tcpmux): a privileged port nothing listens on here and no test can take, so
    // the connection is refused without a port picked, released and raced for.
    let closed = with_secrets("http://127.0.0.1:1/keys");
    let dir = ConfigDir::new();
    dir.write(
        "sso.yaml",
        &format!(
            "sso_integrations:\n{}{}",
            sso(
                "remote-idp",
                ISSUER,
                &format!("jwks_uri: {refusing}"),
                "[ES256]"
            ),
            sso(
                "closed-idp",
                "https://closed.test.local",
                &format!("jwks_uri: {closed}"),
                "[ES256]"
            )
        ),
    );
    dir.write("rest.yaml", &rest_with("closed-bot", "closed-idp"));
    let mut serve = common::process::Claimgate::start(dir.path()).await;
    let readyz = serve.get("/readyz").await.body;
    assert!(
        readyz.contains("remote-idp") && readyz.contains("closed-idp"),
        "{readyz}"
    );
    assert!(readyz.contains("HTTP 500"), "{readyz}");
    let logged = eventually(Duration::from_secs(5), || async {
        serve.logs().matches("key refresh failed").count() >= 2
    })
    .await;
    let logs = serve.logs();
    assert!(logged, "{logs}");
    for shown in [&readyz, &logs] {
        for secret in ["keyuser", "hunter2pw", "t0ps3cr3t", "access_token"] {
            assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        }
        assert!(shown.contains("://***@127.0.0.1:"), "{shown}");
        assert!(shown.contains("/keys?***"), "{shown}");
    }
    serve.terminate().await;
}
