//! claimgate behind a real Envoy, over plain HTTP: the `claimgate` binary, Envoy running the
//! shipped `envoy/envoy.yaml` (only ports and the upstream changed), and an upstream that echoes
//! what reached it. Envoy comes from `CLAIMGATE_TEST_ENVOY` (scripts/test.sh installs it) or
//! PATH; if it cannot be started the tests fail, they never skip.

mod common;

use common::envoy::{Envoy, EnvoyConfig, EnvoyStack, Seen, HEADER_MUTATION_FILTER};
use common::process::{Claimgate, HttpReply};
use common::*;
use serde_json::{json, Value};

const DEPLOYER_SUB: &str = "repo:acme/api:ref:refs/heads/main";

/// Two identities of the test SSO and no fallback, so a token matching neither has no identity.
const IDENTITIES: &str = "\
external_identities:
  - name: deployer
    sso_fqn: test-idp
    claims:
      repository: acme/api
  - name: reader
    sso_fqn: test-idp
    claims:
      repository: acme/docs
";

const RESOURCES: &str = "\
resources:
  - fqn: model:acme/llama-70b
    collaborators:
      - subject: external-identity:deployer
        role: editor
      - subject: external-identity:reader
        role: viewer
  - fqn: mcp-server:search
    collaborators:
      - subject: external-identity:deployer
        role: editor
";

/// The routes envoy.yaml relies on, plus a decoy for the path where Envoy names the resource
/// and role itself: were claimgate to consult it, the deployer (only an editor of the model)
/// would be denied there. Deleting a model needs a manager: a strict route before looser ones.
const ROUTES: &str = "\
routes:
  - path_prefix: /healthz
    public: true
  - path: /v1/models/{org}/{name}/{*rest}
    methods: [DELETE]
    resource: model:{org}/{name}
    role: manager
  - path: /v1/models/{org}/{name}/{*rest}
    methods: [GET, HEAD]
    resource: model:{org}/{name}
    role: viewer
  - path: /v1/models/{org}/{name}/{*rest}
    resource: model:{org}/{name}
    role: editor
  - path: /v1/mcp/search/{*rest}
    resource: model:acme/llama-70b
    role: manager
";

const MODEL_INFO: &str = "/v1/models/acme/llama-70b/info";

/// The three processes and the configuration behind them; dropping it kills them all.
type Stack = EnvoyStack;

impl Stack {
    /// The shipped envoy.yaml as it is.
    async fn start() -> Stack {
        Stack::start_with(|cfg| cfg).await
    }

    /// The shipped envoy.yaml with one more edit on top of the ports.
    async fn start_with(edit: impl FnOnce(EnvoyConfig) -> EnvoyConfig) -> Stack {
        Stack::start_full(&[], |cfg, claimgate| {
            edit(cfg.cluster_endpoint("claimgate", claimgate.grpc))
        })
        .await
    }

    /// claimgate with extra `serve` flags, and Envoy's config made from the shipped one and
    /// the running claimgate (the upstream is filled in).
    async fn start_full(
        flags: &[&str],
        edit: impl FnOnce(EnvoyConfig, &Claimgate) -> EnvoyConfig,
    ) -> Stack {
        EnvoyStack::launch([IDENTITIES, RESOURCES, ROUTES], flags, edit).await
    }

    fn token(&self, sub: &str, extra: Value) -> String {
        self.key.sign(&claims(sub, extra))
    }

    fn deployer_token(&self) -> String {
        self.token(DEPLOYER_SUB, json!({"repository": "acme/api"}))
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpReply {
        self.envoy.request(method, path, headers).await
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpReply {
        self.send("GET", path, headers).await
    }
}

/// Reading a reply as the upstream's echo or as a claimgate denial.
trait ReplyExt {
    fn seen(&self) -> Seen;
    fn denial(&self, status: u16, reason: &str) -> Value;
}

impl ReplyExt for HttpReply {
    /// The upstream's echo of the request it received (the reply must come from the upstream).
    fn seen(&self) -> Seen {
        assert_eq!(self.status, 200, "expected the upstream's answer: {self:?}");
        Seen::parse(&self.body)
    }

    /// A claimgate denial: its status, JSON body and content type; returns the body.
    fn denial(&self, status: u16, reason: &str) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let body: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("denial body is JSON ({e}): {self:?}"));
        assert_eq!(body["reason"], reason, "{self:?}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert!(
            body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{self:?}"
        );
        body
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The five identity headers claimgate sets, as the upstream must see them: one value each.
fn identity_headers<'a>(
    identity: &'a str,
    subject: &'a str,
    resource: &'a str,
    role: &'a str,
) -> std::collections::BTreeMap<&'static str, Vec<&'a str>> {
    [
        ("x-claimgate-identity", vec![identity]),
        ("x-claimgate-sso", vec!["test-idp"]),
        ("x-claimgate-subject", vec![subject]),
        ("x-claimgate-resource", vec![resource]),
        ("x-claimgate-role", vec![role]),
    ]
    .into_iter()
    .collect()
}

/// Client-sent identity headers, in mixed case and with one claimgate never sets.
const SMUGGLED: [(&str, &str); 4] = [
    ("x-claimgate-identity", "admin"),
    ("x-claimgate-role", "manager"),
    ("X-Claimgate-Sso", "evil-idp"),
    ("x-claimgate-other", "1"),
];

#[tokio::test]
async fn an_allowed_request_reaches_the_upstream_with_claimgates_identity_headers() {
    let stack = Stack::start().await;
    let auth = bearer(&stack.deployer_token());

    let reply = stack.get(MODEL_INFO, &[("authorization", &auth)]).await;
    let seen = reply.seen();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, MODEL_INFO);
    assert_eq!(
        seen.claimgate_headers(),
        identity_headers("deployer", DEPLOYER_SUB, "model:acme/llama-70b", "editor")
    );
    assert_eq!(stack.upstream.requests(), 1);

    // The same decision is in Envoy's access log, from ext_authz dynamic metadata, with the
    // decision id the upstream was given next to the response code.
    let id = format!(" 200 decision_id={} ", seen.decision_id());
    stack
        .envoy
        .access_log_line(&[MODEL_INFO, &id, "identity=deployer", "role=editor"])
        .await;
}

#[tokio::test]
async fn client_sent_identity_headers_never_reach_the_upstream() {
    let stack = Stack::start().await;
    let auth = bearer(&stack.deployer_token());
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(SMUGGLED);

    let seen = stack.get(MODEL_INFO, &headers).await.seen();
    assert_eq!(
        seen.claimgate_headers(),
        identity_headers("deployer", DEPLOYER_SUB, "model:acme/llama-70b", "editor"),
        "only claimgate's values, and nothing claimgate does not set"
    );
}

/// envoy.yaml strips client `x-claimgate-*` headers before ext_authz; without that filter,
/// claimgate itself must overwrite its five and have Envoy remove every other one.
#[tokio::test]
async fn claimgate_alone_removes_smuggled_headers_when_envoy_does_not_strip_them() {
    let stack = Stack::start_with(|cfg| cfg.without_http_filter(HEADER_MUTATION_FILTER)).await;
    let auth = bearer(&stack.deployer_token());
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(SMUGGLED);

    let seen = stack.get(MODEL_INFO, &headers).await.seen();
    assert_eq!(
        seen.claimgate_headers(),
        identity_headers("deployer", DEPLOYER_SUB, "model:acme/llama-70b", "editor")
    );

    // On a public route claimgate sets none, so it removes them all.
    let seen = stack.get("/healthz", &SMUGGLED).await.seen();
    assert_eq!(seen.claimgate_headers(), Default::default());
    assert_eq!(stack.upstream.requests(), 2);
}

/// Spellings of identity headers that `x-claimgate-` alone does not match: CGI and WSGI
/// upstreams read `x_claimgate_identity` as `X-Claimgate-Identity`; and the bare prefix.
const FORGED_SPELLINGS: [(&str, &str); 5] = [
    ("x_claimgate_identity", "forged"),
    ("X_Claimgate_Role", "manager"),
    ("x-claimgate_sso", "evil-idp"),
    ("x_claimgate-subject", "root"),
    ("x-claimgate-", "forged"),
];

#[tokio::test]
async fn identity_headers_in_any_spelling_never_reach_the_upstream() {
    let stack = Stack::start().await;
    let auth = bearer(&stack.deployer_token());
    for forged in FORGED_SPELLINGS {
        let before = stack.upstream.requests();
        let reply = stack
            .get(MODEL_INFO, &[("authorization", &auth), forged])
            .await;
        // Refused or let through: either way the upstream never sees a forged value.
        if reply.status == 200 {
            assert_eq!(
                reply.seen().claimgate_headers(),
                identity_headers("deployer", DEPLOYER_SUB, "model:acme/llama-70b", "editor"),
                "{forged:?}"
            );
        } else {
            assert_eq!(stack.upstream.requests(), before, "{forged:?}: {reply:?}");
        }
    }
}

/// The shipped envoy.yaml sets `headers_with_underscores_action: REJECT_REQUEST`: Envoy itself
/// answers 400, before any filter runs.
#[tokio::test]
async fn the_shipped_envoy_config_refuses_header_names_with_underscores() {
    let stack = Stack::start().await;
    let auth = bearer(&stack.deployer_token());
    for name in ["x_claimgate_identity", "some_other_header"] {
        let reply = stack
            .get(MODEL_INFO, &[("authorization", &auth), (name, "1")])
            .await;
        assert_eq!(reply.status, 400, "{name}: {reply:?}");
    }
    assert_eq!(stack.upstream.requests(), 0);
}

/// With underscores allowed and without envoy.yaml's header-stripping filter, claimgate is
/// the only defense: it must see every spelling (envoy.yaml's allowed_headers) and remove it.
#[tokio::test]
async fn claimgate_alone_removes_identity_headers_in_any_spelling() {
    let stack = Stack::start_with(|cfg| {
        cfg.without_http_filter(HEADER_MUTATION_FILTER)
            .headers_with_underscores("ALLOW")
    })
    .await;
    let auth = bearer(&stack.deployer_token());
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(FORGED_SPELLINGS);

    let seen = stack.get(MODEL_INFO, &headers).await.seen();
    assert_eq!(
        seen.claimgate_headers(),
        identity_headers("deployer", DEPLOYER_SUB, "model:acme/llama-70b", "editor")
    );

    let seen = stack.get("/healthz", &FORGED_SPELLINGS).await.seen();
    assert_eq!(seen.claimgate_headers(), Default::default());
    assert_eq!(stack.upstream.requests(), 2);
}

#[tokio::test]
async fn a_request_without_a_token_is_a_401_that_never_reaches_the_upstream() {
    let stack = Stack::start().await;

    let reply = stack.get(MODEL_INFO, &[]).await;
    reply.denial(401, "missing_token");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="claimgate""#)
    );
    // Unknown paths too: authentication comes before routing.
    stack
        .get("/no/such/route", &[])
        .await
        .denial(401, "missing_token");
    assert_eq!(stack.upstream.requests(), 0);
    stack
        .envoy
        .access_log_line(&[MODEL_INFO, " 401 ", "reason=missing_token"])
        .await;
}

#[tokio::test]
async fn bad_signature_expired_and_wrong_audience_tokens_are_401_with_their_reason() {
    let stack = Stack::start().await;
    let impostor = TestKey::generate(Kind::Es256, "e2e-1");
    let repo = json!({"repository": "acme/api"});
    let now = now();
    let cases = [
        (
            "signed by another key with the same kid",
            impostor.sign(&claims(DEPLOYER_SUB, repo.clone())),
            "invalid_signature",
        ),
        (
            "expired ten minutes ago",
            stack.token(
                DEPLOYER_SUB,
                json!({"repository": "acme/api", "iat": now - 1200, "exp": now - 600}),
            ),
            "expired",
        ),
        (
            "for another audience",
            stack.token(
                DEPLOYER_SUB,
                json!({"repository": "acme/api", "aud": "someone-else"}),
            ),
            "audience_mismatch",
        ),
    ];
    for (what, token, reason) in cases {
        let reply = stack
            .get(MODEL_INFO, &[("authorization", &bearer(&token))])
            .await;
        assert_eq!(reply.status, 401, "{what}: {reply:?}");
        reply.denial(401, reason);
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Bearer realm="claimgate", error="invalid_token""#),
            "{what}"
        );
    }
    assert_eq!(stack.upstream.requests(), 0);
}

#[tokio::test]
async fn two_authorization_headers_are_a_401() {
    let stack = Stack::start().await;
    let first = bearer(&stack.deployer_token());
    let second = bearer(&stack.token("someone-else", json!({"repository": "acme/docs"})));

    for (a, b) in [(&first, &second), (&first, &first)] {
        let reply = stack
            .get(MODEL_INFO, &[("authorization", a), ("authorization", b)])
            .await;
        reply.denial(401, "malformed_token");
    }
    assert_eq!(stack.upstream.requests(), 0);
}

#[tokio::test]
async fn too_low_a_role_is_403_insufficient_role_and_no_identity_is_403_no_identity() {
    let stack = Stack::start().await;

    // The reader is a viewer of the model; writing needs editor.
    let reader = bearer(&stack.token("docs-bot", json!({"repository": "acme/docs"})));
    let reply = stack
        .send(
            "POST",
            "/v1/models/acme/llama-70b/weights",
            &[("authorization", &reader)],
        )
        .await;
    reply.denial(403, "insufficient_role");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="claimgate", error="insufficient_scope""#)
    );

    // A valid token whose claims fit no identity (and there is no fallback).
    let stranger = bearer(&stack.token("stranger", json!({"repository": "other/repo"})));
    stack
        .get(MODEL_INFO, &[("authorization", &stranger)])
        .await
        .denial(403, "no_identity");

    assert_eq!(stack.upstream.requests(), 0);
}

#[tokio::test]
async fn the_public_route_needs_no_token_and_still_strips_smuggled_headers() {
    let stack = Stack::start().await;

    let seen = stack.get("/healthz", &[]).await.seen();
    assert_eq!(seen.path, "/healthz");
    assert_eq!(seen.claimgate_headers(), Default::default());

    let seen = stack.get("/healthz", &SMUGGLED).await.seen();
    assert_eq!(seen.claimgate_headers(), Default::default());
    assert_eq!(stack.upstream.requests(), 2);
}

#[tokio::test]
async fn context_extensions_on_an_envoy_route_name_the_resource_and_role() {
    let stack = Stack::start().await;
    let deployer = bearer(&stack.deployer_token());

    // claimgate's own route for this path (the decoy) would want manager on the model; Envoy's
    // route names mcp-server:search and viewer instead. The role header is the identity's role.
    let seen = stack
        .get("/v1/mcp/search/query", &[("authorization", &deployer)])
        .await
        .seen();
    assert_eq!(
        seen.claimgate_headers(),
        identity_headers("deployer", DEPLOYER_SUB, "mcp-server:search", "editor")
    );

    // The reader has no role on mcp-server:search.
    let reader = bearer(&stack.token("docs-bot", json!({"repository": "acme/docs"})));
    stack
        .get("/v1/mcp/search/query", &[("authorization", &reader)])
        .await
        .denial(403, "insufficient_role");
    assert_eq!(stack.upstream.requests(), 1);
    stack
        .envoy
        .access_log_line(&["/v1/mcp/search/query", " 200 ", "route=mcp-search"])
        .await;
}

#[tokio::test]
async fn envoy_fails_closed_when_claimgate_is_down() {
    let mut stack = Stack::start().await;
    let auth = bearer(&stack.deployer_token());
    stack
        .get(MODEL_INFO, &[("authorization", &auth)])
        .await
        .seen();
    assert_eq!(stack.upstream.requests(), 1);

    stack.claimgate.stop();

    // A valid token, no token, the public route: nobody can decide, so nobody gets through.
    // envoy.yaml's status_on_error makes that a 503 rather than Envoy's default 403.
    for (path, headers) in [
        (MODEL_INFO, vec![("authorization", auth.as_str())]),
        (MODEL_INFO, vec![]),
        ("/healthz", vec![]),
    ] {
        let reply = stack.get(path, &headers).await;
        assert_eq!(reply.status, 503, "{path}: {reply:?}");
    }
    assert_eq!(
        stack.upstream.requests(),
        1,
        "the upstream was never called"
    );
}

/// Envoy normalizes the path before ext_authz, so claimgate decides on the path the upstream
/// is asked for; an encoded slash is refused outright. (The requests go out byte for byte.)
#[tokio::test]
async fn paths_are_normalized_by_envoy_before_claimgate_decides() {
    let stack = Stack::start().await;
    let auth = bearer(&stack.deployer_token());

    // `..` cannot borrow the public route's decision.
    stack
        .get("/healthz/../v1/models/acme/llama-70b/info", &[])
        .await
        .denial(401, "missing_token");

    // Dot segments and doubled slashes reach claimgate and the upstream already resolved.
    let seen = stack
        .get(
            "/v1//models/acme/./llama-70b/x/../info",
            &[("authorization", &auth)],
        )
        .await
        .seen();
    assert_eq!(seen.path, MODEL_INFO);

    let reply = stack
        .get(
            "/v1/models/acme%2Fllama-70b/info",
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(stack.upstream.requests(), 1);

    // Percent-encoded letters are decoded (RFC 3986 6.2.2.2): claimgate decides on, and the
    // upstream is asked for, the plain spelling.
    let seen = stack
        .get(
            "/v1/models/%61cme/llama-70b/inf%6F",
            &[("authorization", &auth)],
        )
        .await
        .seen();
    assert_eq!(seen.path, MODEL_INFO);
}

/// A lowercase method (HTTP/2 carries one as is) meets the route written for DELETE; paths
/// Envoy resolves are decided as resolved, which is what the upstream is asked for.
#[tokio::test]
async fn a_requests_spelling_through_envoy_never_picks_a_looser_route() {
    let stack = Stack::start().await;
    let auth = bearer(&stack.deployer_token());
    let with_token = [("authorization", auth.as_str())];

    // The deployer edits the model but may not delete it, in any spelling of DELETE.
    for method in ["DELETE", "delete", "Delete"] {
        stack
            .envoy
            .request_h2(method, "/v1/models/acme/llama-70b/weights", &with_token)
            .await
            .denial(403, "insufficient_role");
    }
    let seen = stack
        .envoy
        .request_h2("get", MODEL_INFO, &with_token)
        .await
        .seen();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("get", MODEL_INFO)
    );

    // Envoy's normalize_path resolves `..;` as Tomcat does: never the public route.
    let borrowed = "/healthz/..;/v1/models/acme/llama-70b/info";
    stack.get(borrowed, &[]).await.denial(401, "missing_token");
    let seen = stack.get(borrowed, &with_token).await.seen();
    assert_eq!(seen.path, MODEL_INFO);
    // A `;` parameter it passes on, and claimgate refuses it.
    stack
        .get("/v1/models/acme/llama-70b;x=1/info", &with_token)
        .await
        .denial(403, "no_route");
    assert_eq!(stack.upstream.requests(), 2);
}

/// With Envoy's path normalization off, what it passes on unchanged is refused by claimgate.
#[tokio::test]
async fn without_envoys_path_normalization_claimgate_refuses_dot_dot_semicolon_itself() {
    let stack = Stack::start_with(|cfg| cfg.ingress_setting("normalize_path", false)).await;
    let auth = bearer(&stack.deployer_token());
    let with_token = [("authorization", auth.as_str())];

    let borrowed = "/healthz/..;/v1/models/acme/llama-70b/info";
    stack.get(borrowed, &[]).await.denial(401, "missing_token");
    stack
        .envoy
        .request_h2("GET", borrowed, &[])
        .await
        .denial(401, "missing_token");
    stack
        .get(borrowed, &with_token)
        .await
        .denial(403, "no_route");
    stack
        .get("/v1/models/acme/llama-70b;x=1/info", &with_token)
        .await
        .denial(403, "no_route");
    // Nor are percent-encoded letters decoded: claimgate refuses them rather than compare
    // them as written.
    stack
        .get("/v1/models/%61cme/llama-70b/inf%6F", &with_token)
        .await
        .denial(403, "no_route");
    assert_eq!(stack.upstream.requests(), 0);
}

/// The README's walk-through, exactly: the example config, a token minted by `claimgate token`
/// with the committed development key, and envoy.yaml's own stand-in upstream (the
/// `demo_upstream` listener echoing identity headers back as response headers).
#[tokio::test]
async fn the_readme_quickstart_works_on_the_example_config_and_the_demo_upstream() {
    let root = env!("CARGO_MANIFEST_DIR");
    // The example trusts the committed development key: the README's command passes --dev.
    let claimgate =
        Claimgate::start_with(&std::path::Path::new(root).join("config"), &["--dev"]).await;
    // The upstream cluster must name the demo listener's port, so that one is held up front
    // until Envoy has bound it too.
    let demo = common::process::hold_port();
    let envoy = Envoy::start(
        EnvoyConfig::shipped()
            .listener_port("demo_upstream", demo.port)
            .cluster_endpoint("claimgate", claimgate.grpc)
            .cluster_endpoint("upstream", ([127, 0, 0, 1], demo.port).into()),
    )
    .await;
    drop(demo);
    let out = std::process::Command::new(bin())
        .current_dir(root)
        .args([
            "token",
            "--key",
            "config/keys/dev-only-private-key.pem",
            "--kid",
            "dev-rsa-1",
            "--iss",
            "https://dev-idp.claimgate.local",
            "--aud",
            "claimgate",
            "--sub",
            "repo:acme/api:ref:refs/heads/main",
            "--claim",
            "repository=acme/api",
        ])
        .output()
        .expect("claimgate token");
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).expect("token is text");
    let auth = bearer(token.trim());
    let with_token = [("authorization", auth.as_str())];

    let allowed = envoy.request("GET", MODEL_INFO, &with_token).await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    for (name, value) in [
        ("x-claimgate-identity", "api-deployer"),
        ("x-claimgate-sso", "dev-oidc"),
        ("x-claimgate-subject", "repo:acme/api:ref:refs/heads/main"),
        ("x-claimgate-resource", "model:acme/llama-70b"),
        ("x-claimgate-role", "editor"),
    ] {
        assert_eq!(allowed.header(name), Some(value), "{name}: {allowed:?}");
    }

    envoy
        .request("GET", MODEL_INFO, &[])
        .await
        .denial(401, "missing_token");
    envoy
        .request("POST", "/healthz/..;/v1/workspaces/prod/deploy", &[])
        .await
        .denial(401, "missing_token");
    envoy
        .request("POST", "/v1/workspaces/prod/x", &with_token)
        .await
        .denial(403, "insufficient_role");

    let public = envoy.request("GET", "/healthz", &[]).await;
    assert_eq!(public.status, 200, "{public:?}");
    assert_eq!(public.header("x-claimgate-identity"), None);

    let mcp = envoy
        .request("GET", "/v1/mcp/search/query", &with_token)
        .await;
    assert_eq!(mcp.status, 200, "{mcp:?}");
    assert_eq!(
        mcp.header("x-claimgate-resource"),
        Some("mcp-server:search")
    );

    // A model declared nowhere, placed in its workspace by the route's parent: viewer through
    // the team's grant on the cluster around it, and no more.
    let placed = envoy
        .request(
            "GET",
            "/v1/workspaces/prod-ml/models/mistral-7b/info",
            &with_token,
        )
        .await;
    assert_eq!(placed.status, 200, "{placed:?}");
    assert_eq!(
        placed.header("x-claimgate-resource"),
        Some("model:prod-ml/mistral-7b")
    );
    assert_eq!(placed.header("x-claimgate-role"), Some("viewer"));
    envoy
        .request(
            "POST",
            "/v1/workspaces/prod-ml/models/mistral-7b/weights",
            &with_token,
        )
        .await
        .denial(403, "insufficient_role");
}

#[tokio::test]
async fn envoy_reaches_claimgate_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("grpc.sock");
    let flag = format!("unix:{}", socket.display());
    let stack = Stack::start_full(&["--grpc-addr", &flag], |cfg, _| {
        cfg.cluster_pipe("claimgate", &socket)
    })
    .await;
    assert!(socket.exists(), "claimgate listens on {}", socket.display());

    let token = bearer(&stack.deployer_token());
    let seen = stack
        .get(MODEL_INFO, &[("authorization", token.as_str())])
        .await
        .seen();
    assert_eq!(
        seen.headers.get("x-claimgate-identity"),
        Some(&vec!["deployer".to_owned()]),
        "{seen:?}"
    );
    stack
        .get(MODEL_INFO, &[])
        .await
        .denial(401, "missing_token");
    assert_eq!(stack.upstream.requests(), 1);
}
