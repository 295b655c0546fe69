//! Shared test helpers: keys generated per test, tokens signed by hand, configuration
//! directories written to disk, and the real server started on 127.0.0.1:0.
#![allow(dead_code)]
pub mod capture;
pub mod codec;
pub mod configmap;
pub mod envoy;
pub mod h2_raw;
pub mod load;
pub mod pki;
pub mod process;
pub mod provider;
pub mod selection;
pub mod tokens;
pub mod wasm;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use claimgate::server::{Bound, ServeOptions};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{
    check_response::HttpResponse, AttributeContext, CheckRequest, CheckResponse,
};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// The kinds of key a test can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rs256,
    Es256,
    EdDsa,
}

/// A freshly generated signing key with its public JWK.
#[derive(Clone)]
pub struct TestKey {
    pub kind: Kind,
    pub kid: String,
    pub pem: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl TestKey {
    pub fn generate(kind: Kind, kid: &str) -> TestKey {
        use aws_lc_rs::encoding::AsDer;
        let (pem, encoding, alg) = match kind {
            Kind::Rs256 => {
                let kp =
                    aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
                let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).unwrap();
                let pem = pem("PRIVATE KEY", der.as_ref());
                let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
                (pem, key, Algorithm::RS256)
            }
            Kind::Es256 => {
                let kp = aws_lc_rs::signature::EcdsaKeyPair::generate(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                )
                .unwrap();
                let der = kp.to_pkcs8v1().unwrap();
                let pem = pem("PRIVATE KEY", der.as_ref());
                let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
                (pem, key, Algorithm::ES256)
            }
            Kind::EdDsa => {
                let kp = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
                let der = kp.to_pkcs8v1().unwrap();
                let pem = pem("PRIVATE KEY", der.as_ref());
                let key = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
                (pem, key, Algorithm::EdDSA)
            }
        };
        let jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        let mut jwk = serde_json::to_value(jwk).unwrap();
        let obj = jwk.as_object_mut().unwrap();
        obj.retain(|k, _| ["kty", "n", "e", "crv", "x", "y"].contains(&k.as_str()));
        obj.insert("kid".into(), kid.into());
        obj.insert("use".into(), "sig".into());
        TestKey {
            kind,
            kid: kid.to_string(),
            pem,
            encoding,
            jwk,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.kind {
            Kind::Rs256 => "RS256",
            Kind::Es256 => "ES256",
            Kind::EdDsa => "EdDSA",
        }
    }

    fn jwt_alg(&self) -> Algorithm {
        match self.kind {
            Kind::Rs256 => Algorithm::RS256,
            Kind::Es256 => Algorithm::ES256,
            Kind::EdDsa => Algorithm::EdDSA,
        }
    }

    /// Sign exactly these header and payload bytes.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.jwt_alg()).unwrap();
        format!("{input}.{sig}")
    }

    /// Sign a payload with the usual header (alg, kid, typ).
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg(), "kid": self.kid, "typ": "JWT"});
        self.sign_raw(&header.to_string(), &claims.to_string())
    }
}

pub fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

pub fn now() -> u64 {
    claimgate::core::clock::unix_now()
}

pub const ISSUER: &str = "https://idp.test.local";
pub const AUDIENCE: &str = "claimgate";

/// Standard valid claims for the test SSO.
pub fn claims(sub: &str, extra: Value) -> Value {
    let mut c =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": now() + 600});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            c[k] = v;
        }
    }
    c
}

/// A configuration directory on disk.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
}

impl ConfigDir {
    pub fn new() -> ConfigDir {
        ConfigDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }
}

/// The server's default options for the configuration in `dir`, on 127.0.0.1 ports the
/// system picks.
pub fn serve_options(dir: &Path) -> ServeOptions {
    ServeOptions {
        config_dir: dir.to_path_buf(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        reload: claimgate::server::reload::ReloadOptions::default(),
        provider: claimgate::server::provider::ProviderOptions::default(),
        token_cache_entries: claimgate::core::token_cache::DEFAULT_ENTRIES,
        connections: claimgate::server::listener::ConnectionOptions::default(),
        tls: None,
        decision_log: None,
        enforcement: claimgate::core::decision::Enforcement::Enforce,
        allow_metadata: claimgate::server::service::AllowMetadata::Full,
        dev: false,
    }
}

/// The SSO section for the test issuer, with keys in `jwks.json`.
pub fn sso_yaml(algorithms: &str) -> String {
    format!(
        "sso_integrations:\n  - name: test-idp\n    type: oidc\n    issuer: {ISSUER}\n    audiences: [{AUDIENCE}, other-aud]\n    jwks_file: jwks.json\n    algorithms: {algorithms}\n    leeway_seconds: 5\n"
    )
}

/// The shared fixture of the gRPC and explain tests: a fallback identity, more specific ones,
/// a JSON Pointer claim, a numeric claim, and a pair that ties; resources with each role; routes
/// with templates, methods and a public prefix.
pub const FIXTURE_IDENTITIES: &str = r#"
external_identities:
  - name: anyone
    sso_fqn: test-idp
  - name: api
    sso_fqn: test-idp
    claims:
      repository: acme/api
  - name: api-prod
    sso_fqn: test-idp
    claims:
      repository: acme/api
      environment: prod
  - name: ns-prod
    sso_fqn: test-idp
    claims:
      /kubernetes.io/namespace: prod
      run_attempt: 1
  - name: tie-a
    sso_fqn: test-idp
    claims:
      team: x
  - name: tie-b
    sso_fqn: test-idp
    claims:
      org: y
"#;

/// Resources of the shared fixture.
pub const FIXTURE_RESOURCES: &str = r#"
resources:
  - fqn: model:acme/llama
    collaborators:
      - subject: external-identity:anyone
        role: viewer
      - subject: external-identity:api
        role: editor
      - subject: external-identity:api-prod
        role: manager
  - fqn: workspace:prod
    collaborators:
      - subject: external-identity:api-prod
        role: manager
      - subject: external-identity:ns-prod
        role: viewer
"#;

/// Routes of the shared fixture.
pub const FIXTURE_ROUTES: &str = r#"
routes:
  - path_prefix: /healthz
    public: true
  - path: /v1/models/{org}/{name}/{*rest}
    methods: [GET]
    resource: model:{org}/{name}
    role: viewer
  - path: /v1/models/{org}/{name}/{*rest}
    methods: [POST]
    resource: model:{org}/{name}
    role: editor
  - path: /v1/admin/{*rest}
    resource: workspace:prod
    role: manager
  - path: /v1/prod/{*rest}
    resource: workspace:prod
    role: viewer
"#;

/// Teams and a resource hierarchy beside the shared fixture (written as its own file):
/// cluster:prod > workspace:prod-ml > model:acme/llama-70b, team release-bots (api, api-prod)
/// editor on the workspace; workspace:staging-ml in dry run with model:acme/staged in it; a
/// route whose models are not declared, placed by its `parent` template.
pub const FIXTURE_HIERARCHY: &str = r#"
teams:
  - name: release-bots
    members:
      - external-identity:api
      - external-identity:api-prod
resources:
  - fqn: cluster:prod
  - fqn: workspace:prod-ml
    parent: cluster:prod
    collaborators:
      - subject: team:release-bots
        role: editor
  - fqn: model:acme/llama-70b
    parent: workspace:prod-ml
    collaborators:
      - subject: external-identity:anyone
        role: viewer
  - fqn: workspace:staging-ml
    parent: cluster:prod
    enforcement: dry_run
  - fqn: model:acme/staged
    parent: workspace:staging-ml
routes:
  - path: /v2/workspaces/{ws}/models/{name}/{*rest}
    resource: model:{ws}/{name}
    parent: workspace:{ws}
    role: editor
  - path: /v2/workspaces/{ws}
    resource: workspace:{ws}
    role: viewer
"#;

/// The shared fixture's identities, resources and routes (`FIXTURE_*`) in a new directory,
/// for a test that writes its own keys and SSOs.
pub fn fixture_policy() -> ConfigDir {
    let dir = ConfigDir::new();
    dir.write("identities.yaml", FIXTURE_IDENTITIES);
    dir.write("resources.yaml", FIXTURE_RESOURCES);
    dir.write("routes.yaml", FIXTURE_ROUTES);
    dir
}

/// The shared fixture (`FIXTURE_*`) in a new directory, its SSO `test-idp` trusting `key` alone.
pub fn fixture_config(key: &TestKey) -> ConfigDir {
    let dir = fixture_policy();
    dir.write("jwks.json", &jwks(&[key]));
    dir.write("sso.yaml", &sso_yaml(&format!("[{}]", key.alg())));
    dir
}

/// The shared fixture with three SSOs: `test-idp` trusting `keys` for `algorithms` (such as
/// `[RS256]`), and `other-idp` and `login-idp` (a login SSO) trusting `other` alone.
pub fn fixture_three_ssos(keys: &[&TestKey], algorithms: &str, other: &TestKey) -> ConfigDir {
    let dir = fixture_policy();
    dir.write("jwks.json", &jwks(keys));
    dir.write("other-jwks.json", &jwks(&[other]));
    let more_ssos = "  - name: other-idp\n    type: oidc\n    issuer: https://other.test.local\n    audiences: [claimgate]\n    jwks_file: other-jwks.json\n  - name: login-idp\n    type: oidc\n    login_enabled: true\n    issuer: https://login.test.local\n    audiences: [claimgate]\n    jwks_file: other-jwks.json\n";
    dir.write("sso.yaml", &format!("{}{more_ssos}", sso_yaml(algorithms)));
    dir
}

/// The server running in this process.
pub struct TestServer {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub store: std::sync::Arc<claimgate::Store>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// The options of a [`TestServer`] to start: [`serve_options`] with what a test changes.
pub struct TestServerBuilder {
    opts: ServeOptions,
}

impl TestServerBuilder {
    /// How the configuration directory is watched.
    pub fn reload(mut self, reload: claimgate::server::reload::ReloadOptions) -> Self {
        self.opts.reload = reload;
        self
    }

    /// How remote keys are fetched.
    pub fn provider(mut self, provider: claimgate::server::provider::ProviderOptions) -> Self {
        self.opts.provider = provider;
        self
    }

    /// A token cache of `entries` (0: none).
    pub fn token_cache(mut self, entries: usize) -> Self {
        self.opts.token_cache_entries = entries;
        self
    }

    /// Enforce denials or only report them.
    pub fn enforcement(mut self, enforcement: claimgate::core::decision::Enforcement) -> Self {
        self.opts.enforcement = enforcement;
        self
    }

    /// Trust the development key committed in the repository (`--dev`).
    pub fn dev(mut self) -> Self {
        self.opts.dev = true;
        self
    }

    /// Serve gRPC over TLS with these files.
    pub fn tls(mut self, tls: claimgate::server::tls::TlsFiles) -> Self {
        self.opts.tls = Some(tls);
        self
    }

    /// What the Check answer's dynamic metadata carries.
    pub fn allow_metadata(mut self, allow: claimgate::server::service::AllowMetadata) -> Self {
        self.opts.allow_metadata = allow;
        self
    }

    /// Connection limits and timeouts.
    pub fn connections(
        mut self,
        connections: claimgate::server::listener::ConnectionOptions,
    ) -> Self {
        self.opts.connections = connections;
        self
    }

    /// The options as built, for a test that binds them itself.
    pub fn into_options(self) -> ServeOptions {
        self.opts
    }

    /// Bind on 127.0.0.1 ports the system picks and serve in this process.
    pub async fn start(self) -> TestServer {
        let bound = Bound::bind(&self.opts).await.expect("server starts");
        let grpc = bound.grpc_addr();
        let http = bound.http_addr();
        let store = bound.store();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(async move {
            bound
                .run(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            grpc,
            http,
            store,
            stop: Some(tx),
            handle: Some(handle),
        }
    }
}

impl TestServer {
    /// The server on `dir` with default options.
    pub async fn start(dir: &Path) -> TestServer {
        Self::builder(dir).start().await
    }

    /// The server on `dir`, with options to change before [`TestServerBuilder::start`].
    pub fn builder(dir: &Path) -> TestServerBuilder {
        TestServerBuilder {
            opts: serve_options(dir),
        }
    }

    pub async fn client(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        let resp = http_client()
            .get(format!("http://{}{path}", self.http))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// `/readyz`'s body once it answers 200; panics with the last body after 10s.
    pub async fn ready_body(&self) -> String {
        let last = std::cell::RefCell::new(String::new());
        let ready = eventually(std::time::Duration::from_secs(10), || async {
            let (status, body) = self.http_get("/readyz").await;
            *last.borrow_mut() = body;
            status == 200
        })
        .await;
        let last = last.into_inner();
        assert!(ready, "never ready: {last}");
        last
    }

    /// The value of one unlabelled or fully labelled metric line, e.g. `claimgate_config_generation`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.http_get("/metrics").await;
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
    }
}

/// A CheckRequest as Envoy's HTTP filter sends it (headers as a map).
pub fn check(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let mut map = HashMap::new();
    for (k, v) in headers {
        map.entry(k.to_lowercase())
            .and_modify(|e: &mut String| {
                e.push(',');
                e.push_str(v)
            })
            .or_insert_with(|| v.to_string());
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    id: "envoy-id-1".into(),
                    method: method.into(),
                    path: path.into(),
                    host: "api.example.com".into(),
                    headers: map,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// A CheckRequest carrying `Authorization: Bearer <token>`.
pub fn check_bearer(method: &str, path: &str, token: &str) -> CheckRequest {
    check(
        method,
        path,
        &[("authorization", &format!("Bearer {token}"))],
    )
}

/// The same, with `encode_raw_headers: true` (header_map, repeated headers kept apart).
pub fn check_raw(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let mut req = check(method, path, &[]);
    let http = req
        .attributes
        .as_mut()
        .unwrap()
        .request
        .as_mut()
        .unwrap()
        .http
        .as_mut()
        .unwrap();
    http.header_map = Some(HeaderMap {
        headers: headers
            .iter()
            .map(|(k, v)| HeaderValue {
                key: k.to_lowercase(),
                raw_value: v.as_bytes().to_vec(),
                ..Default::default()
            })
            .collect(),
    });
    req
}

pub fn with_context(mut req: CheckRequest, ext: &[(&str, &str)]) -> CheckRequest {
    let attrs = req.attributes.as_mut().unwrap();
    for (k, v) in ext {
        attrs
            .context_extensions
            .insert(k.to_string(), v.to_string());
    }
    req
}

/// A CheckResponse read back as what Envoy would do with it.
#[derive(Debug)]
pub struct Answer {
    pub grpc_code: i32,
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub removed: Vec<String>,
    pub body: Value,
    pub metadata: Option<HashMap<String, String>>,
}

impl Answer {
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

pub fn read(resp: CheckResponse) -> Answer {
    use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
    use envoy_types::pb::google::protobuf::value::Kind as PbKind;
    let grpc_code = resp.status.as_ref().expect("status is always set").code;
    let metadata = resp.dynamic_metadata.as_ref().map(|s| {
        s.fields
            .iter()
            .map(|(k, v)| match &v.kind {
                Some(PbKind::StringValue(s)) => (k.clone(), s.clone()),
                other => panic!("unexpected metadata {other:?}"),
            })
            .collect()
    });
    match resp.http_response.expect("http_response is always set") {
        HttpResponse::OkResponse(ok) => {
            let mut headers = HashMap::new();
            for h in ok.headers {
                assert_eq!(
                    h.append_action,
                    HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                    "identity headers overwrite"
                );
                let hv = h.header.unwrap();
                headers.insert(hv.key, hv.value);
            }
            Answer {
                grpc_code,
                status: 200,
                headers,
                removed: ok.headers_to_remove,
                body: Value::Null,
                metadata,
            }
        }
        HttpResponse::ErrorResponse(e) => panic!("claimgate never sends error_response: {e:?}"),
        HttpResponse::DeniedResponse(d) => {
            let headers = d
                .headers
                .into_iter()
                .map(|h| {
                    let hv = h.header.unwrap();
                    (hv.key, hv.value)
                })
                .collect();
            Answer {
                grpc_code,
                status: d.status.unwrap().code as u16,
                headers,
                removed: vec![],
                body: serde_json::from_str(&d.body).expect("deny body is JSON"),
                metadata,
            }
        }
    }
}

/// The response with its decision id (header, body, metadata) replaced by a fixed text, so
/// that two answers to the same request compare equal.
pub fn without_decision_id(mut resp: CheckResponse) -> CheckResponse {
    use envoy_types::pb::google::protobuf::value::Kind as PbKind;
    let id = resp
        .dynamic_metadata
        .as_ref()
        .and_then(|m| m.fields.get("decision_id"))
        .and_then(|v| match &v.kind {
            Some(PbKind::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
        .expect("every answer has a decision id in its metadata");
    let blank = |s: &mut String| *s = s.replace(&id, "DECISION-ID");
    if let Some(m) = resp.dynamic_metadata.as_mut() {
        for v in m.fields.values_mut() {
            if let Some(PbKind::StringValue(s)) = v.kind.as_mut() {
                blank(s);
            }
        }
    }
    match resp.http_response.as_mut() {
        Some(HttpResponse::OkResponse(ok)) => ok
            .headers
            .iter_mut()
            .flat_map(|h| h.header.as_mut())
            .for_each(|h| blank(&mut h.value)),
        Some(HttpResponse::DeniedResponse(d)) => {
            blank(&mut d.body);
            d.headers
                .iter_mut()
                .flat_map(|h| h.header.as_mut())
                .for_each(|h| blank(&mut h.value))
        }
        _ => {}
    }
    resp
}

pub async fn ask(client: &mut AuthorizationClient<Channel>, req: CheckRequest) -> Answer {
    read(client.check(req).await.expect("no gRPC error").into_inner())
}

/// (status, the role granted) for an allowed request, (status, reason) for a denied one.
pub async fn role_or_reason(
    c: &mut AuthorizationClient<Channel>,
    token: &str,
    method: &str,
    path: &str,
) -> (u16, String) {
    let a = ask(c, check_bearer(method, path, token)).await;
    match a.status {
        200 => (200, a.header("x-claimgate-role").unwrap_or("").to_string()),
        s => (s, a.reason().to_string()),
    }
}

/// Path of the built `claimgate` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_claimgate"))
}

/// Run the claimgate binary with `args` to the end: its exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Poll `check` until it returns true, for at most `bound`; returns whether it did.
pub async fn eventually<F, Fut>(bound: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// [`eventually`] for a test without a runtime (a child process watched from a plain `#[test]`).
pub fn eventually_blocking(bound: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + bound;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Install aws-lc-rs as the process's TLS provider (the one claimgate links), once, so
/// test HTTP clients can be built.
pub fn tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// A plain HTTP client for tests.
pub fn http_client() -> reqwest::Client {
    tls_provider();
    reqwest::Client::new()
}

/// A copy of the shipped example configuration (`config/`, with its keys and tests), to edit.
pub fn example_config_copy() -> ConfigDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir = ConfigDir::new();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        dir.path(),
    );
    dir
}

impl ConfigDir {
    /// Replace `from` by `to` in the file `name`, which must hold it.
    pub fn edit(&self, name: &str, from: &str, to: &str) {
        let p = self.dir.path().join(name);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{name} does not hold {from:?}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }
}

/// Run git in `dir` with a throwaway identity and no signing; panics with git's stderr.
pub fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
