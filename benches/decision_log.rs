//! What the decision log costs a warm check: the same request, its token already cached,
//! with no decision log and with every decision logged (allow rate 1, to `/dev/null`, so the
//! disk is not what is measured). Run: `cargo bench --bench decision_log`.
//!
//! The logged check builds its event (the request's fields, the token's facts from the cache
//! entry, the decision) and hands it to the writer thread's queue; the writer serialises it.
//! After the run the bench prints how many events the writer wrote and how many found the
//! queue full: dropped events cost less than written ones, so a run with many drops
//! understates the cost.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use claimgate::core::clock::unix_now;
use claimgate::server::decision_log::{DecisionLog, Options, Sink, QUEUE};
use claimgate::server::metrics::Metrics;
use claimgate::server::service::CheckService;
use criterion::{criterion_group, criterion_main, Criterion};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Request as AttrRequest,
};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

const CONFIG: &str = "\
sso_integrations:
  - name: ci
    type: oidc
    issuer: https://idp.example.com
    audiences: [claimgate]
    jwks_file: jwks.json
external_identities:
  - name: any
    sso_fqn: ci
  - name: api
    sso_fqn: ci
    claims: {repository: acme/api}
resources:
  - fqn: model:acme/m7
    collaborators:
      - subject: external-identity:api
        role: editor
routes:
  - path: /v1/models/{org}/{name}/{*rest}
    resource: model:{org}/{name}
    role: editor
";

fn request(token: &str) -> CheckRequest {
    let mut headers = HashMap::new();
    headers.insert("authorization".to_string(), format!("Bearer {token}"));
    headers.insert(
        "x-request-id".to_string(),
        "7f1c3a52-3f7e-4a5e-9d7c-1b2a3c4d5e6f".to_string(),
    );
    headers.insert("user-agent".to_string(), "curl/8.5.0".to_string());
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: "/v1/models/acme/m7/generate?stream=true".into(),
                    host: "api.example.com".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn metric(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn bench(c: &mut Criterion) {
    let (encoding, jwk) = common::rsa_key();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jwks.json"),
        json!({"keys": [jwk]}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("config.yaml"), CONFIG).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let now = unix_now();
    let claims = json!({
        "iss": "https://idp.example.com", "aud": "claimgate", "sub": "repo:acme/api:ref:refs/heads/main",
        "repository": "acme/api", "jti": "5d0c8a6e-3c1f-4e0e-9a59-0f1f6b1d2c3e",
        "iat": now, "exp": now + 3600,
    });
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let req = request(&token);

    let metrics = Metrics::new();
    let store = claimgate::core::load::install_first(
        claimgate::core::load::load(dir.path()).unwrap().snapshot,
        &metrics,
    );
    let wait = Duration::from_millis(100);
    let plain = CheckService::new(store.clone(), metrics.clone(), wait);
    let options = Options {
        sink: Sink::File("/dev/null".into()),
        allow_rate: 1.0,
        queue: QUEUE,
    };
    let (log, writer) = DecisionLog::start(&options, metrics.clone()).unwrap();
    let logged = CheckService::new(store, metrics.clone(), wait).with_decision_log(log);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    for service in [&plain, &logged] {
        let answer = rt.block_on(service.check_request(&req));
        assert!(
            matches!(answer.http_response, Some(HttpResponse::OkResponse(_))),
            "the benchmark request must be allowed: {answer:?}"
        );
    }

    // As the gRPC codec runs a check: the request's bytes in, the answer's bytes out.
    let bytes = bytes::Bytes::from(prost::Message::encode_to_vec(&req));
    let mut out = Vec::with_capacity(1024);
    let mut wire_check = |service: &CheckService| {
        out.clear();
        rt.block_on(service.check_bytes(std::hint::black_box(bytes.clone()), &mut out))
            .unwrap();
        out.len()
    };
    let mut g = c.benchmark_group("decision_log");
    g.bench_function("warm_check", |b| b.iter(|| wire_check(&plain)));
    g.bench_function("warm_check_logged", |b| b.iter(|| wire_check(&logged)));
    g.finish();

    drop(logged);
    writer.finish(Duration::from_secs(10));
    eprintln!(
        "decision log: {} events written, {} dropped (queue full)",
        metric(&metrics, "claimgate_decision_log_events_total"),
        metric(&metrics, "claimgate_decision_log_dropped_total"),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
