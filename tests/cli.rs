//! The `claimgate` binary as a user runs it: validate, token, serve, explain, who-can.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{serve_refusing, try_get, wait_for_serving, ChildGuard, ANY_PORT};
use common::*;
use serde_json::json;

fn example_config() -> String {
    format!("{}/config", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn validate_accepts_the_shipped_example_config() {
    let (code, out, err) = run(&["validate", "--config", &example_config()]);
    assert_eq!(code, 0, "{out}{err}");
    // Its one warning: dev-oidc trusts the committed development key (the demo's).
    assert!(out.contains("valid (1 warning(s))"), "{out}");
    assert!(
        out.contains("sso.yaml:9:16: warning: keys/dev-jwks.json: kid \"dev-rsa-1\" is the development key committed in claimgate's repository"),
        "{out}"
    );
}

#[test]
fn validate_reads_the_config_dir_from_the_environment() {
    let out = Command::new(bin())
        .arg("validate")
        .env("CLAIMGATE_CONFIG", example_config())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

fn valid_base(dir: &ConfigDir) {
    let key = TestKey::generate(Kind::Es256, "k1");
    dir.write("jwks.json", &jwks(&[&key]));
    dir.write("sso.yaml", &sso_yaml("[ES256]"));
}

/// Each broken file, and the `file:line:col: error:` line validate must print for it.
#[test]
fn validate_reports_each_kind_of_error_with_its_location() {
    let cases: &[(&str, &str, &str)] = &[
        ("bad YAML", "routes:\n  - path: [\n", "broken.yaml:3:1: error: invalid YAML"),
        ("unknown field", "routes:\n  - path: /a\n    rol: viewer\n", "broken.yaml:3:5: error: routes[0]: unknown field `rol`"),
        ("wrong type", "external_identities:\n  - name: a\n    sso_fqn: [x]\n", "broken.yaml:3:14: error: external_identities[0].sso_fqn: invalid type"),
        ("duplicate identity", "external_identities:\n  - name: a\n    sso_fqn: test-idp\n  - name: a\n    sso_fqn: test-idp\n", "broken.yaml:4:11: error: external identity \"a\" is defined twice (first at broken.yaml:2:11)"),
        ("bad identity name", "external_identities:\n  - name: a_b\n    sso_fqn: test-idp\n", "broken.yaml:2:11: error: identity name \"a_b\""),
        ("unknown SSO", "external_identities:\n  - name: a\n    sso_fqn: nope\n", "broken.yaml:3:14: error: sso_fqn \"nope\" names no SSO integration"),
        ("login-enabled SSO", "sso_integrations:\n  - name: login\n    type: oidc\n    login_enabled: true\n    issuer: https://login\n    audiences: [a]\n    jwks_file: jwks.json\n    algorithms: [ES256]\nexternal_identities:\n  - name: a\n    sso_fqn: login\n", "broken.yaml:11:14: error: SSO \"login\" has login_enabled: true"),
        ("duplicate SSO", "sso_integrations:\n  - name: test-idp\n    type: oidc\n    issuer: https://x\n    audiences: [a]\n    jwks_file: jwks.json\n", "sso.yaml:2:11: error: SSO \"test-idp\" is defined twice (first at broken.yaml:2:11)"),
        ("bad role", "resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:x\n        role: owner\n", "broken.yaml:5:15: error: role \"owner\" is not viewer, editor or manager"),
        ("bad subject", "resources:\n  - fqn: model:a\n    collaborators:\n      - subject: user:bob\n        role: viewer\n", "broken.yaml:4:18: error: subject \"user:bob\" must be external-identity:NAME or team:NAME"),
        ("bad fqn", "resources:\n  - fqn: nocolon\n", "broken.yaml:2:10: error: resource fqn \"nocolon\""),
        ("bad route template", "routes:\n  - path: /a/{*rest}/b\n    resource: model:a\n    role: viewer\n", "broken.yaml:2:11: error: {*rest} must be the last segment"),
        ("route variable not in path", "resources:\n  - fqn: model:a\nroutes:\n  - path: /a/{x}\n    resource: model:{y}\n    role: viewer\n", "broken.yaml:5:15: error: {y} is not a variable of the path"),
        ("route to unknown resource", "routes:\n  - path: /a\n    resource: model:missing\n    role: viewer\n", "broken.yaml:3:15: error: resource \"model:missing\" is not defined in resources"),
        ("route role", "routes:\n  - path: /a\n    resource: model:a\n    role: admin\n", "broken.yaml:4:11: error: role \"admin\""),
        ("unsupported algorithm", "sso_integrations:\n  - name: s2\n    type: oidc\n    issuer: https://x\n    audiences: [a]\n    jwks_file: jwks.json\n    algorithms: [HS256]\n", "broken.yaml:7:17: error: algorithm \"HS256\" is not allowed"),
        ("two key sources", "sso_integrations:\n  - name: s2\n    type: oidc\n    issuer: https://x\n    audiences: [a]\n    jwks_file: jwks.json\n    discovery: true\n", "broken.yaml:2:5: error: give exactly one of jwks_file, jwks_uri, discovery: true"),
        ("plain-http key URL", "sso_integrations:\n  - name: s2\n    type: oidc\n    issuer: https://x\n    audiences: [a]\n    jwks_uri: http://idp.example.com/keys\n", "broken.yaml:6:15: error: \"http://idp.example.com/keys\" must use https"),
        ("discovery over plain http", "sso_integrations:\n  - name: s2\n    type: oidc\n    issuer: http://idp.example.com\n    audiences: [a]\n    discovery: true\n", "broken.yaml:4:13: error: discovery needs a fetchable issuer"),
        ("missing key file", "sso_integrations:\n  - name: s2\n    type: oidc\n    issuer: https://x\n    audiences: [a]\n    jwks_file: nope.json\n", "broken.yaml:6:16: error: nope.json: cannot read"),
        ("leeway too large", "sso_integrations:\n  - name: s2\n    type: oidc\n    issuer: https://x\n    audiences: [a]\n    jwks_file: jwks.json\n    leeway_seconds: 301\n", "broken.yaml:7:21: error: leeway_seconds is 301; at most 300"),
        ("same issuer twice", "sso_integrations:\n  - name: s2\n    type: oidc\n    issuer: https://idp.test.local\n    audiences: [a]\n    jwks_file: jwks.json\n", "sso.yaml:4:13: error: issuer \"https://idp.test.local\" is already used by SSO s2"),
    ];
    for (name, text, expected) in cases {
        let dir = ConfigDir::new();
        valid_base(&dir);
        dir.write("broken.yaml", text);
        let (code, out, err) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(
            out.lines().any(|l| l.starts_with(expected)),
            "{name}: expected a line starting with\n  {expected}\ngot:\n{out}"
        );
    }
}

/// `run`, killing the process if it has not exited after 30 s (a hang fails the test).
fn run_bounded(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut status = None;
    eventually_blocking(Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("claimgate {args:?} did not finish");
    };
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
    )
}

/// Each directory entry that could freeze or mislead a load, and the line validate prints.
#[test]
fn validate_refuses_files_that_are_not_regular_files_inside_the_config_dir() {
    let outside = ConfigDir::new();
    let foreign = outside.write("jwks.json", "{\"keys\": []}");
    let parent = format!(
        "../{}/jwks.json",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    let with_key_file = |dir: &ConfigDir, jwks_file: &str| {
        dir.write(
            "sso.yaml",
            &sso_yaml("[ES256]")
                .replace("jwks_file: jwks.json", &format!("jwks_file: {jwks_file}")),
        );
    };
    type Case<'a> = (&'a str, Box<dyn Fn(&ConfigDir) + 'a>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "a FIFO as key file",
            Box::new(|d| {
                let fifo = d.path().join("keys.fifo");
                assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
                with_key_file(d, "keys.fifo");
            }),
            "sso.yaml:6:16: error: keys.fifo: cannot read: not a regular file",
        ),
        (
            "/dev/zero as key file",
            Box::new(|d| {
                std::os::unix::fs::symlink("/dev/zero", d.path().join("zero.json")).unwrap();
                with_key_file(d, "zero.json");
            }),
            "sso.yaml:6:16: error: zero.json: resolves to /dev/zero, outside the configuration directory",
        ),
        (
            "a key file in a parent directory",
            Box::new(|d| with_key_file(d, &parent)),
            "sso.yaml:6:16: error: ../",
        ),
        (
            "a key file by absolute path",
            Box::new(|d| with_key_file(d, foreign.to_str().unwrap())),
            "sso.yaml:6:16: error: /",
        ),
        (
            "this process's output as key file",
            Box::new(|d| with_key_file(d, "/proc/self/fd/1")),
            "sso.yaml:6:16: error: /proc/self/fd/1: is an absolute path",
        ),
        (
            "a dangling link as config file",
            Box::new(|d| {
                std::os::unix::fs::symlink("gone/routes.yaml", d.path().join("routes.yaml"))
                    .unwrap();
            }),
            "routes.yaml:1:1: error: cannot read: a symbolic link whose target does not exist",
        ),
    ];
    for (name, make, expected) in &cases {
        let dir = ConfigDir::new();
        valid_base(&dir);
        make(&dir);
        let (code, out, err) = run_bounded(&["validate", "--config", dir.path().to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(
            out.lines().any(|l| l.starts_with(expected)),
            "{name}: expected a line starting with\n  {expected}\ngot:\n{out}"
        );
    }
    // A parent directory and an absolute path say what is wrong with them.
    let dir = ConfigDir::new();
    valid_base(&dir);
    with_key_file(&dir, &parent);
    let (_, out, _) = run_bounded(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert!(out.contains("outside the configuration directory"), "{out}");
    with_key_file(&dir, foreign.to_str().unwrap());
    let (_, out, _) = run_bounded(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert!(out.contains("is an absolute path"), "{out}");
}

#[test]
fn validate_refuses_deeply_nested_yaml_without_parsing_it() {
    let dir = ConfigDir::new();
    valid_base(&dir);
    let levels = 80_000;
    dir.write(
        "deep.yaml",
        &format!("routes: {}{}\n", "[".repeat(levels), "]".repeat(levels)),
    );
    let (code, out, err) = run_bounded(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.lines().any(|l| l.starts_with("deep.yaml:1:")
            && l.contains("error: collections are nested deeper than 64 levels")),
        "{out}"
    );
}

#[test]
fn validate_warns_about_collaborators_of_deleted_identities_but_accepts() {
    let dir = ConfigDir::new();
    valid_base(&dir);
    dir.write(
        "res.yaml",
        "resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:gone\n        role: viewer\n",
    );
    let (code, out, _) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("res.yaml:4:18: warning: external identity \"gone\" does not exist"),
        "{out}"
    );
}

#[test]
fn token_mints_what_the_server_verifies_for_each_key_type() {
    for (kind, alg) in [
        (Kind::Rs256, "RS256"),
        (Kind::Es256, "ES256"),
        (Kind::EdDsa, "EdDSA"),
    ] {
        let key = TestKey::generate(kind, "k1");
        let dir = ConfigDir::new();
        dir.write("jwks.json", &jwks(&[&key]));
        dir.write("sso.yaml", &sso_yaml(&format!("[{alg}]")));
        dir.write(
            "rest.yaml",
            "external_identities:\n  - name: bot\n    sso_fqn: test-idp\n    claims:\n      repository: acme/api\n      run: 7\nresources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: editor\nroutes:\n  - path: /a\n    resource: model:a\n    role: viewer\n",
        );
        let pem = dir.write("key.pem", &key.pem);
        let (code, token, err) = run(&[
            "token",
            "--key",
            pem.to_str().unwrap(),
            "--iss",
            ISSUER,
            "--aud",
            AUDIENCE,
            "--sub",
            "ci-1",
            "--kid",
            "k1",
            "--claim",
            "repository=acme/api",
            "--claim",
            "run=7",
            "--ttl",
            "10m",
        ]);
        assert_eq!(code, 0, "{err}");
        let token = token.trim();
        let snap = claimgate::core::load::load(dir.path()).unwrap().snapshot;
        let req = claimgate::core::decision::Request {
            method: "GET",
            path: "/a",
            host: "h",
            credentials: claimgate::core::decision::Credentials::Bearer(token),
            ext_resource: None,
            ext_role: None,
            ext_enforcement: None,
            ext_parent: None,
        };
        let decision = claimgate::core::pipeline::decide(&snap, &req, now());
        let claimgate::Decision::Allow(claimgate::core::decision::Allow::Identity(grant)) =
            decision
        else {
            panic!("{alg}: {decision:?}")
        };
        assert_eq!(
            (&*grant.identity, &*grant.subject, grant.role.as_str()),
            ("bot", "ci-1", "editor")
        );
        let verified = claimgate::core::token::verify(&snap, token, now()).unwrap();
        let exp = verified.claims["exp"].as_u64().unwrap();
        assert!(exp > now() + 500 && exp <= now() + 600, "ttl 10m");
        assert_eq!(verified.claims["run"], json!(7));
    }
}

#[test]
fn token_refuses_a_key_that_is_not_a_private_key() {
    let dir = ConfigDir::new();
    let p = dir.write("not-a-key.pem", "hello");
    let (code, _, err) = run(&[
        "token",
        "--key",
        p.to_str().unwrap(),
        "--iss",
        "i",
        "--aud",
        "a",
        "--sub",
        "s",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not an RSA, EC"), "{err}");
}

#[test]
fn serve_refuses_a_bad_config_before_binding_any_port() {
    let dir = ConfigDir::new();
    valid_base(&dir);
    dir.write(
        "broken.yaml",
        "external_identities:\n  - name: a\n    sso_fqn: nope\n",
    );
    // The test holds both ports: had serve tried to bind one, it would fail with
    // "cannot listen" instead of naming the configuration's error.
    let (code, err) = serve_refusing(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("broken.yaml:3:14: error: sso_fqn \"nope\""),
        "{err}"
    );
    assert!(!err.contains("cannot listen"), "{err}");
}

#[tokio::test]
async fn serve_runs_the_example_config_and_drains_on_sigterm() {
    let logs = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--config", &example_config()])
        // The example trusts the committed development key, which only a demo may.
        .env("CLAIMGATE_DEV", "true")
        .env("CLAIMGATE_GRPC_ADDR", ANY_PORT)
        .env("CLAIMGATE_HTTP_ADDR", ANY_PORT)
        .env("NO_COLOR", "1");
    let mut child = ChildGuard::spawn("claimgate", cmd, logs.path()).unwrap();
    let http = match wait_for_serving(&mut child).await {
        Ok(bound) => bound.http,
        Err(why) => panic!("serve did not bind: {why:?}\n{}", child.logs()),
    };
    let ready = eventually(Duration::from_secs(20), || async {
        matches!(try_get(http, "/readyz").await, Ok(r) if r.status == 200)
    })
    .await;
    assert!(ready, "serve did not become ready\n{}", child.logs());
    child.signal("-TERM");
    let Some(status) = child.exited_within(Duration::from_secs(20)).await else {
        panic!("serve did not stop on SIGTERM\n{}", child.logs());
    };
    let err = child.stderr();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("configuration loaded"), "{err}");
    assert!(err.contains("shutting down"), "{err}");
}

// ---------------------------------------------------------------------------------------
// explain

struct ExplainFixture {
    dir: ConfigDir,
    rsa: TestKey,
    other: TestKey,
}

fn explain_fixture() -> ExplainFixture {
    let rsa = TestKey::generate(Kind::Rs256, "rsa-1");
    let other = TestKey::generate(Kind::Rs256, "other-1");
    let dir = fixture_three_ssos(&[&rsa], "[RS256]", &other);
    ExplainFixture { dir, rsa, other }
}

/// Run `claimgate explain --json` off the async runtime; returns the exit code and report.
async fn explain_json(args: Vec<String>) -> (i32, serde_json::Value) {
    tokio::task::spawn_blocking(move || {
        let mut all = vec!["explain".to_string(), "--json".to_string()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let (code, out, err) = run(&refs);
        let report = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("explain --json printed no JSON ({e}): {out}{err}"));
        (code, report)
    })
    .await
    .unwrap()
}

fn explain_args(dir: &ConfigDir, token: &str, method: &str, path: &str) -> Vec<String> {
    [
        "--config",
        dir.path().to_str().unwrap(),
        "--token",
        token,
        "--method",
        method,
        "--path",
        path,
        "--host",
        "api.example.com",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One token per reason code: the in-process server answers over gRPC, the binary explains
/// the same token on the same directory, and both say the same; explain names the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_gives_the_servers_verdict_for_one_token_per_reason_code() {
    let f = explain_fixture();
    let server = TestServer::start(f.dir.path()).await;
    let mut c = server.client().await;
    let good = claims("ci", json!({}));
    let models = "/v1/models/acme/llama/x";
    let jku = f.rsa.sign_raw(
        &json!({"alg": "RS256", "kid": "rsa-1", "jku": "https://evil/keys"}).to_string(),
        &good.to_string(),
    );
    let tampered = {
        let t = f.rsa.sign(&good);
        let parts: Vec<&str> = t.split('.').collect();
        let other = f.rsa.sign(&claims("root", json!({})));
        let payload = other.split('.').nth(1).unwrap().to_string();
        format!("{}.{}.{}", parts[0], payload, parts[2])
    };
    let cases: Vec<(&str, String, &str, &str, &str, &str)> = vec![
        // name, token, method, path, reason, failed step
        (
            "allowed",
            f.rsa.sign(&claims("ci", json!({"repository": "acme/api"}))),
            "POST",
            models,
            "allowed",
            "",
        ),
        (
            "public route",
            String::new(),
            "GET",
            "/healthz/live",
            "allowed",
            "",
        ),
        (
            "missing_token",
            String::new(),
            "GET",
            models,
            "missing_token",
            "credentials",
        ),
        (
            "malformed_token: garbage",
            "abc".into(),
            "GET",
            models,
            "malformed_token",
            "parse",
        ),
        (
            "malformed_token: jku header",
            jku,
            "GET",
            models,
            "malformed_token",
            "header",
        ),
        (
            "malformed_token: sub",
            f.rsa.sign(&claims(" lead", json!({}))),
            "GET",
            models,
            "malformed_token",
            "subject",
        ),
        (
            "unknown_issuer",
            f.rsa
                .sign(&claims("a", json!({"iss": "https://idp.test.local/"}))),
            "GET",
            models,
            "unknown_issuer",
            "issuer",
        ),
        (
            "unknown_key",
            f.other.sign(&good),
            "GET",
            models,
            "unknown_key",
            "key",
        ),
        (
            "algorithm_not_allowed",
            f.rsa
                .sign_raw(r#"{"alg":"RS384","kid":"rsa-1"}"#, &good.to_string()),
            "GET",
            models,
            "algorithm_not_allowed",
            "algorithm",
        ),
        (
            "invalid_signature",
            tampered,
            "GET",
            models,
            "invalid_signature",
            "signature",
        ),
        (
            "expired",
            f.rsa.sign(&claims("a", json!({"exp": now() - 100}))),
            "GET",
            models,
            "expired",
            "times",
        ),
        (
            "not_yet_valid",
            f.rsa.sign(&claims("a", json!({"nbf": now() + 100}))),
            "GET",
            models,
            "not_yet_valid",
            "times",
        ),
        (
            "audience_mismatch",
            f.rsa.sign(&claims("a", json!({"aud": "someone-else"}))),
            "GET",
            models,
            "audience_mismatch",
            "audience",
        ),
        (
            "no_identity",
            f.other
                .sign(&claims("a", json!({"iss": "https://other.test.local"}))),
            "GET",
            models,
            "no_identity",
            "identity",
        ),
        (
            "ambiguous_identity",
            f.rsa.sign(&claims("a", json!({"team": "x", "org": "y"}))),
            "GET",
            models,
            "ambiguous_identity",
            "identity",
        ),
        (
            "no_route",
            f.rsa.sign(&good),
            "GET",
            "/v2/unknown",
            "no_route",
            "route",
        ),
        (
            "insufficient_role",
            f.rsa.sign(&good),
            "POST",
            models,
            "insufficient_role",
            "role",
        ),
    ];
    for (name, token, method, path, reason, step) in cases {
        let headers: Vec<(&str, String)> = if token.is_empty() {
            vec![]
        } else {
            vec![("authorization", format!("Bearer {token}"))]
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = ask(&mut c, check(method, path, &headers)).await;
        let server_reason = if a.status == 200 {
            "allowed"
        } else {
            a.reason()
        };
        assert_eq!(server_reason, reason, "{name}: the server said {a:?}");

        let (code, report) = explain_json(explain_args(&f.dir, &token, method, path)).await;
        let v = &report["verdict"];
        assert_eq!(v["status"], json!(a.status), "{name}: {v}");
        assert_eq!(v["reason"], json!(reason), "{name}: {v}");
        assert_eq!(code, if reason == "allowed" { 0 } else { 1 }, "{name}");
        if step.is_empty() {
            assert_eq!(v["failed_step"], serde_json::Value::Null, "{name}: {v}");
        } else {
            assert_eq!(v["failed_step"], json!(step), "{name}: {v}");
        }
        // A failing token step is marked failed, with the reason, and the rest not reached.
        let steps = report["token"]["steps"].as_array().unwrap();
        if let Some(i) = steps.iter().position(|s| s["step"] == json!(step)) {
            assert_eq!(steps[i]["outcome"], "failed", "{name}: {steps:?}");
            assert_eq!(steps[i]["reason"], json!(reason), "{name}");
            assert!(steps[..i].iter().all(|s| s["outcome"] == "ok"), "{name}");
            assert!(
                steps[i + 1..].iter().all(|s| s["outcome"] == "not_reached"),
                "{name}"
            );
        }
    }

    // context_extensions stand in for routes, on both sides.
    let t = f.rsa.sign(&claims("ci", json!({"repository": "acme/api"})));
    for (role, reason) in [
        ("editor", "allowed"),
        ("manager", "insufficient_role"),
        ("owner", "no_route"),
    ] {
        let req = with_context(
            check(
                "GET",
                "/not/routed",
                &[("authorization", &format!("Bearer {t}"))],
            ),
            &[("resource", "model:acme/llama"), ("role", role)],
        );
        let a = ask(&mut c, req).await;
        let mut args = explain_args(&f.dir, &t, "GET", "/not/routed");
        args.extend(["--resource", "model:acme/llama", "--role", role].map(String::from));
        let (_, report) = explain_json(args).await;
        assert_eq!(report["verdict"]["status"], json!(a.status), "role {role}");
        assert_eq!(report["verdict"]["reason"], json!(reason), "role {role}");
        assert_eq!(report["target"]["by"], "context_extensions");
    }
    server.stop().await;
}

#[tokio::test]
async fn explain_json_lists_every_candidate_with_each_claim_matched_mismatched_or_missing() {
    let f = explain_fixture();
    let t = f.rsa.sign(&claims(
        "ci",
        json!({"repository": "acme/api", "environment": "dev", "run_attempt": "1"}),
    ));
    let (code, report) =
        explain_json(explain_args(&f.dir, &t, "GET", "/v1/models/acme/llama/x")).await;
    assert_eq!(code, 0, "{report:#}");
    let sel = &report["identity"];
    assert_eq!(sel["sso"], "test-idp");
    assert_eq!(sel["outcome"], "chosen");
    assert_eq!(sel["chosen"], "api");
    let candidates = sel["candidates"].as_array().unwrap();
    let names: Vec<&str> = candidates
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["api-prod", "ns-prod", "api", "tie-a", "tie-b", "anyone"],
        "most claims first"
    );
    let by_name = |n: &str| candidates.iter().find(|c| c["name"] == n).unwrap();

    let api_prod = by_name("api-prod");
    assert_eq!(api_prod["verdict"], "unmatched");
    assert_eq!(api_prod["location"], "identities.yaml:9:11");
    assert_eq!(
        api_prod["claims"],
        json!([
            {"key": "repository", "expected": "acme/api", "actual": "acme/api", "outcome": "matched",
             "text": "repository = \"acme/api\" matched \"acme/api\""},
            {"key": "environment", "expected": "prod", "actual": "dev", "outcome": "mismatched",
             "text": "environment = \"prod\" failed: it is \"dev\""},
        ])
    );
    // Every claim is shown, even after the first that fails; "1" is not 1.
    let ns = by_name("ns-prod");
    assert_eq!(ns["claims"][0]["outcome"], "missing");
    assert_eq!(ns["claims"][0]["actual"], serde_json::Value::Null);
    assert_eq!(ns["claims"][1]["outcome"], "mismatched");
    assert_eq!(ns["claims"][1]["expected"], json!(1));
    assert_eq!(ns["claims"][1]["actual"], json!("1"));

    assert_eq!(by_name("api")["verdict"], "matched");
    // Selection stops at the first count below the winner's; the rest are shown anyway.
    let anyone = by_name("anyone");
    assert_eq!(anyone["verdict"], "not_reached");
    assert_eq!(anyone["would_match"], true);
    assert_eq!(by_name("tie-a")["verdict"], "unmatched");

    let b = &report["binding"];
    assert_eq!(b["identity"], "api");
    assert_eq!(b["held"], "editor");
    assert_eq!(b["required"], "viewer");
    assert_eq!(b["collaborators"].as_array().unwrap().len(), 3);
    assert_eq!(report["target"]["route"]["index"], 1);
    assert_eq!(
        report["target"]["captures"][0],
        json!({"name": "org", "value": "acme"})
    );
    assert_eq!(report["verdict"]["identity"], "api");
    assert_eq!(report["verdict"]["role"], "editor");
}

#[test]
fn explain_text_names_the_failing_step_and_reads_the_token_from_stdin() {
    let f = explain_fixture();
    let t = f.rsa.sign(&claims("a", json!({"exp": now() - 100})));
    let mut child = Command::new(bin())
        .args([
            "explain",
            "--config",
            f.dir.path().to_str().unwrap(),
            "--token",
            "-",
        ])
        .args(["--path", "/v1/models/acme/llama/x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{t}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("  ok      signature"), "{text}");
    assert!(
        text.contains("  FAILED  times     expired: expired at"),
        "{text}"
    );
    assert!(text.contains("  -       audience  not reached"), "{text}");
    assert!(
        text.contains("verdict   DENY (401) expired:") && text.contains("[failed step: times]"),
        "{text}"
    );
    assert!(!text.contains(&t), "the token itself is never printed");
}

#[tokio::test]
async fn explain_names_the_closest_issuers_when_none_matches() {
    let f = explain_fixture();
    let path = "/v1/models/acme/llama/x";
    let t = f
        .rsa
        .sign(&claims("a", json!({"iss": "https://idp.test.local/"})));
    let (_, report) = explain_json(explain_args(&f.dir, &t, "GET", path)).await;
    let hints = report["token"]["issuer_hints"].as_array().unwrap();
    assert_eq!(hints.len(), 1, "{hints:?}");
    assert_eq!(hints[0]["sso"], "test-idp");
    assert!(hints[0]["why"].as_str().unwrap().contains("trailing slash"));

    let t = f
        .other
        .sign(&claims("a", json!({"iss": "https://login.test.local"})));
    let (_, report) = explain_json(explain_args(&f.dir, &t, "GET", path)).await;
    assert_eq!(report["verdict"]["reason"], "unknown_issuer");
    let hints = report["token"]["issuer_hints"].as_array().unwrap();
    assert_eq!(hints[0]["sso"], "login-idp");
    assert!(
        hints[0]["why"]
            .as_str()
            .unwrap()
            .contains("login_enabled: true"),
        "{hints:?}"
    );

    let t = f.rsa.sign(&claims(
        "a",
        json!({"iss": "https://unrelated.example.com"}),
    ));
    let (_, report) = explain_json(explain_args(&f.dir, &t, "GET", path)).await;
    assert_eq!(report["token"]["issuer_hints"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_fetches_remote_keys_once_before_deciding() {
    let key = TestKey::generate(Kind::Es256, "remote-1");
    let idp = common::provider::Provider::start(jwks(&[&key])).await;
    let dir = common::provider::remote_config(&idp.jwks_uri());
    let t = key.sign(&claims("ci", json!({})));
    let (code, report) = explain_json(explain_args(&dir, &t, "GET", "/a")).await;
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["token"]["keys"]["sso"], "remote-idp");
    assert_eq!(report["token"]["keys"]["keys"], 1);
    assert_eq!(idp.jwks_fetches(), 1);

    idp.set_mode(common::provider::Mode::Status500);
    let (code, report) = explain_json(explain_args(&dir, &t, "GET", "/a")).await;
    assert_eq!(code, 1);
    assert_eq!(report["verdict"]["reason"], "unknown_key");
    assert!(
        report["token"]["keys"]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{report:#}"
    );
}

#[test]
fn explain_help_says_that_every_claim_of_the_token_is_printed() {
    let (code, out, err) = run(&["explain", "--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shows every claim of the token"), "{out}");
    assert!(out.contains("Every claim of it is printed"), "{out}");
    // The short help keeps to one line per item, and still says so.
    let (_, short, _) = run(&["explain", "-h"]);
    assert!(short.contains("Every claim of it is printed"), "{short}");
}

#[test]
fn explain_exits_2_on_a_config_error_or_a_usage_error() {
    let f = explain_fixture();
    let dir = f.dir.path().to_str().unwrap();
    let (code, _, err) = run(&[
        "explain",
        "--config",
        dir,
        "--token",
        "x",
        "--resource",
        "model:a",
    ]);
    assert_eq!(code, 2, "--resource needs --role: {err}");
    f.dir.write(
        "broken.yaml",
        "external_identities:\n  - name: a\n    sso_fqn: nope\n",
    );
    let (code, _, err) = run(&["explain", "--config", dir, "--token", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("broken.yaml:3:14: error: sso_fqn \"nope\""),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// validate: the review

/// A valid directory with one finding of each warning kind.
fn findings_dir() -> ConfigDir {
    let dir = ConfigDir::new();
    valid_base(&dir);
    dir.write(
        "ids.yaml",
        "external_identities:\n  - name: by-repo\n    sso_fqn: test-idp\n    claims:\n      repository: acme/api\n  - name: by-team\n    sso_fqn: test-idp\n    claims:\n      team: ml\n  - name: by-other-repo\n    sso_fqn: test-idp\n    claims:\n      repository: acme/web\n  - name: unused\n    sso_fqn: test-idp\n    claims:\n      repository: acme/unused\n      team: none\n",
    );
    dir.write(
        "res.yaml",
        "resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:by-repo\n        role: viewer\n      - subject: external-identity:by-team\n        role: viewer\n      - subject: external-identity:by-other-repo\n        role: viewer\n      - subject: external-identity:gone\n        role: viewer\n  - fqn: model:orphan\n",
    );
    dir.write(
        "routes.yaml",
        "routes:\n  - path: /v1/{*rest}\n    resource: model:a\n    role: viewer\n  - path: /v1/items/{id}\n    methods: [GET]\n    resource: model:a\n    role: editor\n",
    );
    dir
}

#[test]
fn validate_warns_about_each_kind_of_finding_with_its_location() {
    let dir = findings_dir();
    let (code, out, err) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "warnings alone pass: {out}{err}");
    let expected = [
        // A token with both repository and team matches two one-claim identities.
        "ids.yaml:6:11: warning: external identities \"by-repo\" (at ids.yaml:2:11) and \"by-team\" of SSO test-idp both have 1 claim and a token with repository=\"acme/api\", team=\"ml\" matches both",
        "ids.yaml:10:11: warning: external identities \"by-team\" (at ids.yaml:6:11) and \"by-other-repo\"",
        "ids.yaml:14:11: warning: external identity \"unused\" is a collaborator of no resource",
        "res.yaml:10:18: warning: external identity \"gone\" does not exist",
        "res.yaml:12:10: warning: resource \"model:orphan\" is targeted by no route",
        "routes.yaml:5:11: warning: routes[1] is never used: routes[0] (at routes.yaml:2:5)",
    ];
    for e in expected {
        assert!(
            out.lines().any(|l| l.starts_with(e)),
            "expected a line starting with\n  {e}\ngot:\n{out}"
        );
    }
    // Same repository claim, different values: exclusive, so no tie between those two.
    assert!(
        !out.contains("\"by-repo\" (at ids.yaml:2:11) and \"by-other-repo\""),
        "{out}"
    );
    assert!(out.ends_with("valid (6 warning(s))\n"), "{out}");
}

/// An upper-case literal hints at an upstream that folds case (ASP.NET): `/api/admin/x` would
/// skip the admin route and reach the viewer route. `case_insensitive: true` answers it.
#[test]
fn validate_warns_when_letter_case_can_skip_a_strict_route_for_a_looser_one() {
    let dir = ConfigDir::new();
    valid_base(&dir);
    let routes = |admin_extra: &str| {
        format!(
            "resources:\n  - fqn: model:a\nroutes:\n  - path: /api/Admin/{{*rest}}\n{admin_extra}    resource: model:a\n    role: manager\n  - path: /api/{{*rest}}\n    resource: model:a\n    role: viewer\n"
        )
    };
    dir.write("routes.yaml", &routes(""));
    let (code, out, err) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "a warning alone passes: {out}{err}");
    assert!(
        out.lines().any(|l| l.starts_with(
            "routes.yaml:4:11: warning: routes[0] can be skipped by letter case: GET /api/admin is routed to routes[1] (at routes.yaml:7:5), which needs viewer on model:a, while /api/Admin needs manager on model:a"
        )),
        "{out}"
    );
    dir.write("routes.yaml", &routes("    case_insensitive: true\n"));
    let (_, out, _) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert!(!out.contains("letter case"), "{out}");
}

#[test]
fn validate_strict_fails_on_a_warning_and_passes_a_clean_config() {
    let dir = findings_dir();
    let (code, out, _) = run(&[
        "validate",
        "--config",
        dir.path().to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(code, 1, "{out}");
    let clean = ConfigDir::new();
    valid_base(&clean);
    clean.write(
        "rest.yaml",
        "external_identities:\n  - name: bot\n    sso_fqn: test-idp\nresources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: viewer\nroutes:\n  - path: /a\n    resource: model:a\n    role: viewer\n",
    );
    let (code, out, _) = run(&[
        "validate",
        "--config",
        clean.path().to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid (0 warning(s))"), "{out}");
}

/// `::error file=…,line=…,col=…::…` or `::warning …`, as GitHub Actions reads them.
fn is_annotation(line: &str) -> bool {
    let Some(rest) = line
        .strip_prefix("::error ")
        .or_else(|| line.strip_prefix("::warning "))
    else {
        return false;
    };
    let Some((props, message)) = rest.split_once("::") else {
        return false;
    };
    let props: Vec<&str> = props.split(',').collect();
    let numeric = |p: &str, name: &str| {
        p.strip_prefix(name)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    props.len() == 3
        && props[0]
            .strip_prefix("file=")
            .is_some_and(|f| !f.is_empty())
        && numeric(props[1], "line=")
        && numeric(props[2], "col=")
        && !message.is_empty()
        && !message.contains('\n')
}

#[test]
fn validate_format_github_prints_workflow_annotations() {
    let dir = findings_dir();
    let root = dir.path().to_str().unwrap();
    let (code, out, _) = run(&["validate", "--config", root, "--format", "github"]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let (summary, annotations) = lines.split_last().unwrap();
    assert_eq!(annotations.len(), 6, "{out}");
    for l in annotations {
        assert!(is_annotation(l), "not an annotation: {l}");
        assert!(l.starts_with("::warning "), "{l}");
    }
    let shadow = format!("::warning file={root}/routes.yaml,line=5,col=11::routes[1] is never used: routes[0] (at routes.yaml:2:5) comes first and matches every request it would (first match wins)");
    assert!(annotations.contains(&shadow.as_str()), "{out}");
    assert!(summary.ends_with("valid (6 warning(s))"), "{summary}");

    dir.write(
        "broken.yaml",
        "external_identities:\n  - name: a\n    sso_fqn: nope\n",
    );
    let (code, out, _) = run(&["validate", "--config", root, "--format", "github"]);
    assert_eq!(code, 1);
    let first = out.lines().next().unwrap();
    assert!(is_annotation(first), "{first}");
    assert_eq!(
        first,
        format!("::error file={root}/broken.yaml,line=3,col=14::sso_fqn \"nope\" names no SSO integration")
    );
}

#[test]
fn validate_format_json_is_one_document_with_every_finding() {
    let dir = findings_dir();
    let (code, out, _) = run(&[
        "validate",
        "--config",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["errors"], 0);
    assert_eq!(doc["warnings"], 6);
    let d = doc["diagnostics"].as_array().unwrap();
    assert_eq!(d.len(), 6);
    let shadow = d.iter().find(|d| d["file"] == "routes.yaml").unwrap();
    assert_eq!(
        (shadow["line"].as_u64(), shadow["col"].as_u64()),
        (Some(5), Some(11))
    );
    assert_eq!(shadow["severity"], "warning");
    assert!(shadow["path"].as_str().unwrap().ends_with("routes.yaml"));
}

#[test]
fn validate_counts_a_resource_named_by_envoy_context_extensions_as_reached() {
    let dir = ConfigDir::new();
    valid_base(&dir);
    dir.write(
        "rest.yaml",
        "external_identities:\n  - name: bot\n    sso_fqn: test-idp\nresources:\n  - fqn: mcp-server:search\n    collaborators:\n      - subject: external-identity:bot\n        role: viewer\n",
    );
    let root = dir.path().to_str().unwrap();
    let (_, out, _) = run(&["validate", "--config", root]);
    assert!(
        out.contains("resource \"mcp-server:search\" is targeted by no route"),
        "{out}"
    );
    // The shipped Envoy config names mcp-server:search for /v1/mcp/search.
    let envoy = format!("{}/envoy/envoy.yaml", env!("CARGO_MANIFEST_DIR"));
    let (code, out, _) = run(&[
        "validate",
        "--config",
        root,
        "--envoy-config",
        &envoy,
        "--strict",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&[
        "validate",
        "--config",
        root,
        "--envoy-config",
        "/nonexistent/envoy.yaml",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot read"), "{out}");
}

// ---------------------------------------------------------------------------------------
// who-can

#[test]
fn who_can_lists_each_example_collaborator_as_direct_and_agrees_with_who_can_identity() {
    let text = std::fs::read_to_string(format!("{}/resources.yaml", example_config())).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let resources = doc["resources"].as_sequence().unwrap();
    assert_eq!(resources.len(), 6);
    let mut by_resource: Vec<(String, String, String)> = Vec::new();
    for r in resources {
        let fqn = r["fqn"].as_str().unwrap();
        let (code, out, err) = run(&[
            "who-can",
            "--config",
            &example_config(),
            "--resource",
            fqn,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
        let holders = answer["holders"].as_array().unwrap();
        // Every identity bound on the resource itself is listed; where its own binding is
        // what decides, it is shown as direct.
        for c in r["collaborators"].as_sequence().into_iter().flatten() {
            let Some(name) = c["subject"]
                .as_str()
                .unwrap()
                .strip_prefix("external-identity:")
            else {
                continue;
            };
            let holder = holders
                .iter()
                .find(|h| h["identity"].as_str() == Some(name))
                .unwrap_or_else(|| panic!("{fqn}: {name} missing in {out}"));
            if holder["role"].as_str() == c["role"].as_str() {
                assert_eq!(holder["via"]["reach"], "direct", "{fqn}: {holder}");
                assert_eq!(
                    holder["via"]["resource"].as_str(),
                    Some(fqn),
                    "{fqn}: {holder}"
                );
            }
        }
        for h in holders {
            by_resource.push((
                h["identity"].as_str().unwrap().to_string(),
                fqn.to_string(),
                h["role"].as_str().unwrap().to_string(),
            ));
        }
    }
    let text = std::fs::read_to_string(format!("{}/identities.yaml", example_config())).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut by_identity: Vec<(String, String, String)> = Vec::new();
    for i in doc["external_identities"].as_sequence().unwrap() {
        let name = i["name"].as_str().unwrap();
        let (code, out, err) = run(&[
            "who-can",
            "--config",
            &example_config(),
            "--identity",
            name,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
        for h in answer["resources"].as_array().unwrap() {
            by_identity.push((
                name.to_string(),
                h["resource"].as_str().unwrap().to_string(),
                h["role"].as_str().unwrap().to_string(),
            ));
        }
    }
    by_resource.sort();
    by_identity.sort();
    assert_eq!(by_resource, by_identity);
}

#[test]
fn who_can_shows_the_role_and_the_token_each_identity_takes() {
    let (code, out, _) = run(&[
        "who-can",
        "--config",
        &example_config(),
        "--resource",
        "model:acme/llama-70b",
        "--json",
    ]);
    assert_eq!(code, 0);
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    let holders = answer["holders"].as_array().unwrap();
    let roles: Vec<&str> = holders
        .iter()
        .map(|h| h["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["manager", "editor", "viewer"], "highest role first");
    assert_eq!(
        holders[0],
        json!({
            "identity": "api-deployer-prod",
            "location": "identities.yaml:20:11",
            "role": "manager",
            "via": {
                "subject": "external-identity:api-deployer-prod",
                "resource": "model:acme/llama-70b",
                "role": "manager",
                "inherited": false,
                "reach": "direct",
            },
            "sso": "dev-oidc",
            "issuer": "https://dev-idp.claimgate.local",
            "audiences": ["claimgate"],
            "claims": {"repository": "acme/api", "environment": "prod", "ref": "refs/heads/main"},
        })
    );
    assert_eq!(holders[2]["claims"], json!({}));

    let (code, out, _) = run(&[
        "who-can",
        "--config",
        &example_config(),
        "--resource",
        "model:acme/llama-70b",
        "--role",
        "editor",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("model:acme/llama-70b: 2 identities hold editor or higher\n"),
        "{out}"
    );
    assert!(
        out.contains("  manager  api-deployer-prod (identities.yaml:20:11)\n"),
        "{out}"
    );
    assert!(
        out.contains("           claims: repository=\"acme/api\"\n"),
        "{out}"
    );
    assert!(!out.contains("ci-any"), "{out}");
}

#[test]
fn who_can_refuses_an_undefined_resource_and_a_bad_role() {
    let (code, _, err) = run(&[
        "who-can",
        "--config",
        &example_config(),
        "--resource",
        "model:acme/llama",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("resource \"model:acme/llama\" is not defined in resources (defined: model:acme/llama-70b, model:prod-ml/llama-70b)"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "who-can",
        "--config",
        &example_config(),
        "--resource",
        "model:acme/llama-70b",
        "--role",
        "owner",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_format_set_for_validate_in_the_environment_does_not_break_test_or_diff() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = root.join("config");
    let config = config.to_str().unwrap();
    let tests = root.join("config/tests");
    for args in [
        vec!["validate", "--config", config],
        vec!["test", "--config", config, tests.to_str().unwrap()],
        vec!["diff", "--base", config, "--config", config],
    ] {
        let out = Command::new(bin())
            .args(&args)
            .env("CLAIMGATE_FORMAT", "github")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    }
}

#[test]
fn serve_flag_defaults_are_the_library_defaults() {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: claimgate::server::ServeArgs,
    }
    // Each default is written twice (the flag and `Default`): they must not drift apart.
    let opts = Serve::parse_from(["serve", "--config", "x"]).args.options();
    assert_eq!(
        opts.connections,
        claimgate::server::listener::ConnectionOptions::default()
    );
    let reload = claimgate::server::reload::ReloadOptions::default();
    assert_eq!(
        (opts.reload.debounce, opts.reload.poll, opts.reload.timeout),
        (reload.debounce, reload.poll, reload.timeout)
    );
    let provider = claimgate::server::provider::ProviderOptions::default();
    assert_eq!(
        (
            opts.provider.refresh,
            opts.provider.refetch_min_interval,
            opts.provider.refetch_wait,
            opts.provider.connect_timeout,
            opts.provider.timeout,
        ),
        (
            provider.refresh,
            provider.refetch_min_interval,
            provider.refetch_wait,
            provider.connect_timeout,
            provider.timeout,
        )
    );
    assert!(opts.tls.is_none() && opts.decision_log.is_none());
}
