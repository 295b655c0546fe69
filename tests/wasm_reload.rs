//! A new bundle reaches a running Envoy without a restart and without a failed request:
//! the filter's configuration served by extension config discovery from a watched file,
//! replaced atomically while requests keep coming; a bundle that does not load is refused
//! there and the previous one keeps deciding.

mod common;

use std::time::Duration;

use common::envoy::{Echo, Envoy, Seen};
use common::wasm::{bundle_of, envoy_wasm_config, publish, wasm_file, with_discovered_filter};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_bundle_is_taken_without_a_restart_and_no_request_fails_meanwhile() {
    let wasm = wasm_file();
    let key = TestKey::generate(Kind::Rs256, "k1");
    let config = fixture_config(&key);
    let first = bundle_of(config.path(), &[]);
    // The second configuration makes `api` a manager instead of an editor of the model.
    config.edit(
        "resources.yaml",
        "      - subject: external-identity:api\n        role: editor",
        "      - subject: external-identity:api\n        role: manager",
    );
    let second = bundle_of(config.path(), &[]);

    let upstream = Echo::start().await;
    let discovery = tempfile::tempdir().unwrap();
    let (envoy_config, typed_config) = with_discovered_filter(
        envoy_wasm_config(&wasm, &first).cluster_endpoint("upstream", upstream.addr),
        discovery.path(),
    );
    publish(discovery.path(), &typed_config, &first, 1);
    let envoy = Envoy::start(envoy_config).await;

    let token = key.sign(&claims("x", json!({"repository": "acme/api"})));
    let auth = format!("Bearer {token}");
    let role = |reply: &common::process::HttpReply| -> String {
        assert_eq!(
            reply.status,
            200,
            "a request failed: {reply:?}\n{}",
            envoy.logs()
        );
        let seen = Seen::parse(&reply.body);
        seen.headers["x-claimgate-role"].join(",")
    };
    let path = "/v1/models/acme/llama/info";
    let first_role = role(
        &envoy
            .request_h2("GET", path, &[("authorization", &auth)])
            .await,
    );
    assert_eq!(first_role, "editor");

    publish(discovery.path(), &typed_config, &second, 2);
    let mut answered = 0;
    let swapped = eventually(Duration::from_secs(30), || {
        let envoy = &envoy;
        let auth = &auth;
        answered += 1;
        async move {
            let reply = envoy
                .request_h2("GET", path, &[("authorization", auth)])
                .await;
            role(&reply) == "manager"
        }
    })
    .await;
    assert!(
        swapped,
        "after {answered} requests the new bundle was not in service"
    );

    // A bundle that does not load is refused by the filter; the one in service keeps deciding.
    let broken = r#"{"claimgate_bundle": 1, "files": {"routes.yaml": "routes: [\n"}}"#;
    publish(discovery.path(), &typed_config, broken, 3);
    let refused = eventually(Duration::from_secs(30), || {
        let logs = envoy.logs();
        std::future::ready(logs.contains("the bundle was refused"))
    })
    .await;
    assert!(refused, "the broken bundle was not seen:\n{}", envoy.logs());
    for _ in 0..5 {
        let reply = envoy
            .request_h2("GET", path, &[("authorization", &auth)])
            .await;
        assert_eq!(role(&reply), "manager");
    }
}
