//! Every decision has one id, handed to whoever may need to find its log line: the upstream
//! on allow, the client on deny (header and body), and Envoy's access log (dynamic metadata).

mod common;

use common::*;
use serde_json::json;

async fn server() -> (ConfigDir, TestServer, TestKey) {
    let key = TestKey::generate(Kind::Rs256, "rsa-1");
    let dir = fixture_config(&key);
    let server = TestServer::start(dir.path()).await;
    (dir, server, key)
}

fn is_uuid_v7(id: &str) -> bool {
    id.len() == 36
        && id.as_bytes()[14] == b'7'
        && id.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        })
}

#[tokio::test]
async fn a_denial_carries_one_decision_id_in_its_header_body_and_metadata() {
    let (_dir, server, _key) = server().await;
    let mut c = server.client().await;
    let a = ask(&mut c, check("GET", "/v1/models/acme/llama/x", &[])).await;
    assert_eq!(a.status, 401, "{a:?}");
    let id = a
        .header("x-claimgate-decision-id")
        .expect("the header")
        .to_owned();
    assert!(is_uuid_v7(&id), "{id}");
    assert_eq!(a.body["decision_id"], id.as_str());
    assert_eq!(a.metadata.as_ref().unwrap()["decision_id"], id);
    server.stop().await;
}

#[tokio::test]
async fn an_allow_overwrites_a_client_sent_decision_id_and_names_it_in_metadata() {
    let (_dir, server, key) = server().await;
    let mut c = server.client().await;
    let auth = format!("Bearer {}", key.sign(&claims("run-1", json!({}))));
    for path in ["/v1/models/acme/llama/x", "/healthz"] {
        let headers = [
            ("authorization", auth.as_str()),
            ("x-claimgate-decision-id", "forged"),
        ];
        let a = ask(&mut c, check("GET", path, &headers)).await;
        assert_eq!(a.status, 200, "{a:?}");
        let id = a.header("x-claimgate-decision-id").expect("the header");
        assert!(is_uuid_v7(id), "{id}");
        assert!(
            !a.removed.iter().any(|r| r == "x-claimgate-decision-id"),
            "set, not removed: {a:?}"
        );
        assert_eq!(a.metadata.as_ref().unwrap()["decision_id"], id);
    }
    server.stop().await;
}

#[tokio::test]
async fn every_check_gets_its_own_decision_id_and_later_ones_sort_after() {
    let (_dir, server, _key) = server().await;
    let mut c = server.client().await;
    let mut ids = Vec::new();
    for _ in 0..50 {
        let a = ask(&mut c, check("GET", "/healthz", &[])).await;
        ids.push(a.header("x-claimgate-decision-id").unwrap().to_owned());
    }
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    // Sortable to the millisecond: the first 48 bits are the time.
    let first_ms = |id: &str| id.replace('-', "")[..12].to_owned();
    assert!(first_ms(&ids[0]) <= first_ms(&ids[49]), "{ids:?}");
    server.stop().await;
}
