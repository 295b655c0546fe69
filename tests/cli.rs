//! The `claimgate` binary as a user runs it: validate, token, serve.

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example_config() -> String {
    format!("{}/config", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn validate_accepts_the_shipped_example_config() {
    let (code, out, err) = run(&["validate", "--config", &example_config()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("valid (0 warning(s))"), "{out}");
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
        ("bad subject", "resources:\n  - fqn: model:a\n    collaborators:\n      - subject: user:bob\n        role: viewer\n", "broken.yaml:4:18: error: subject \"user:bob\" must be external-identity:NAME"),
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
        let snap = claimgate::server::load_snapshot(dir.path()).unwrap();
        let req = claimgate::decision::Request {
            method: "GET",
            path: "/a",
            host: "h",
            credentials: claimgate::decision::Credentials::Bearer(token),
            ext_resource: None,
            ext_role: None,
        };
        let decision = claimgate::decision::decide(&snap, &req, now());
        let claimgate::Decision::Allow(claimgate::decision::Allow::Identity(grant)) = decision
        else {
            panic!("{alg}: {decision:?}")
        };
        assert_eq!(
            (
                &*grant.identity,
                grant.subject.as_str(),
                grant.role.as_str()
            ),
            ("bot", "ci-1", "editor")
        );
        let verified = claimgate::token::verify(&snap, token, now()).unwrap();
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_refuses_a_bad_config_before_binding_any_port() {
    let dir = ConfigDir::new();
    valid_base(&dir);
    dir.write(
        "broken.yaml",
        "external_identities:\n  - name: a\n    sso_fqn: nope\n",
    );
    let grpc = free_port();
    let http = free_port();
    let (code, _, err) = run(&[
        "serve",
        "--config",
        dir.path().to_str().unwrap(),
        "--grpc-addr",
        &format!("127.0.0.1:{grpc}"),
        "--http-addr",
        &format!("127.0.0.1:{http}"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("broken.yaml:3:14: error: sso_fqn \"nope\""),
        "{err}"
    );
    // The ports were never taken.
    std::net::TcpListener::bind(("127.0.0.1", grpc)).unwrap();
    std::net::TcpListener::bind(("127.0.0.1", http)).unwrap();
}

#[test]
fn serve_runs_the_example_config_and_drains_on_sigterm() {
    let grpc = free_port();
    let http = free_port();
    let mut child = Command::new(bin())
        .args(["serve", "--config", &example_config()])
        .env("CLAIMGATE_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("CLAIMGATE_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", http)) {
            use std::io::Write as _;
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            if resp.starts_with("HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let kill = |sig: &str| {
        Command::new("kill").args([sig, &pid]).status().unwrap();
    };
    if !ready {
        kill("-KILL");
        panic!("serve did not become ready");
    }
    kill("-TERM");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            kill("-KILL");
            panic!("serve did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("configuration loaded"), "{err}");
    assert!(err.contains("shutting down"), "{err}");
}
