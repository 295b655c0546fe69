//! Audit and rollout through the real Envoy running the shipped `envoy/envoy.yaml`: one
//! decision id in the client's 403, claimgate's decision log and Envoy's access log; a
//! resource in dry run lets a wrong role through with the reason, and an enforcing resource
//! next to it still denies.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::envoy::{EnvoyStack, Seen};
use common::*;
use serde_json::{json, Value};

const IDENTITIES: &str = "\
external_identities:
  - name: reader
    sso_fqn: test-idp
    claims:
      repository: acme/docs
";

/// The same identity is a viewer of both; only the workspace is in dry run.
const RESOURCES: &str = "\
resources:
  - fqn: model:acme/llama-70b
    collaborators:
      - subject: external-identity:reader
        role: viewer
  - fqn: workspace:prod
    enforcement: dry_run
    collaborators:
      - subject: external-identity:reader
        role: viewer
";

const ROUTES: &str = "\
routes:
  - path_prefix: /healthz
    public: true
  - path: /v1/models/{org}/{name}/{*rest}
    methods: [GET, HEAD]
    resource: model:{org}/{name}
    role: viewer
  - path: /v1/models/{org}/{name}/{*rest}
    resource: model:{org}/{name}
    role: editor
  - path: /v1/workspaces/{ws}/{*rest}
    resource: workspace:{ws}
    role: manager
";

/// The three processes, with claimgate's decision log in `log`.
struct Stack {
    inner: EnvoyStack,
    log: PathBuf,
    _logs: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Stack {
        let logs = tempfile::tempdir().unwrap();
        let log = logs.path().join("decisions.log");
        let flags = ["--decision-log", log.to_str().unwrap()];
        let inner =
            EnvoyStack::launch([IDENTITIES, RESOURCES, ROUTES], &flags, |cfg, claimgate| {
                cfg.cluster_endpoint("claimgate", claimgate.grpc)
            })
            .await;
        Stack {
            inner,
            log,
            _logs: logs,
        }
    }

    fn reader(&self) -> String {
        let t = self.inner.key.sign(&claims(
            "repo:acme/docs",
            json!({"repository": "acme/docs"}),
        ));
        format!("Bearer {t}")
    }
}

/// The decision log's line with this id, waited for (bounded).
async fn log_line(path: &Path, id: &str) -> Value {
    let find = || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let line = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["decision_id"] == id);
        (line, text)
    };
    eventually(Duration::from_secs(10), || async { find().0.is_some() }).await;
    let (line, text) = find();
    line.unwrap_or_else(|| panic!("no decision log line has id {id}:\n{text}"))
}

#[tokio::test]
async fn a_dry_run_resource_lets_a_wrong_role_through_and_logs_it_while_its_enforcing_neighbour_denies(
) {
    let stack = Stack::start().await;
    let auth = stack.reader();
    let path = "/v1/workspaces/prod/deploy";

    let reply = stack
        .inner
        .envoy
        .request("POST", path, &[("authorization", &auth)])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.inner.envoy.logs());
    let seen = Seen::parse(&reply.body);
    let upstream: Vec<(&str, Vec<&str>)> = seen.claimgate_headers().into_iter().collect();
    assert_eq!(
        upstream,
        vec![
            ("x-claimgate-dry-run", vec!["insufficient_role"]),
            ("x-claimgate-identity", vec!["reader"]),
            ("x-claimgate-resource", vec!["workspace:prod"]),
            ("x-claimgate-role", vec!["viewer"]),
            ("x-claimgate-sso", vec!["test-idp"]),
            ("x-claimgate-subject", vec!["repo:acme/docs"]),
        ]
    );
    let id = seen.decision_id().to_owned();
    let line = log_line(&stack.log, &id).await;
    assert_eq!(
        line["result"],
        json!({"allowed": true, "status": 200, "reason": "insufficient_role", "dry_run": true,
               "identity": "reader", "sso": "test-idp", "resource": "workspace:prod",
               "role": "viewer", "required_role": "manager"})
    );
    assert_eq!(line["request"]["path"], path);
    stack
        .inner
        .envoy
        .access_log_line(&[
            path,
            &format!(" 200 decision_id={id} "),
            "dry_run=insufficient_role",
        ])
        .await;

    // The same identity's wrong role on the enforcing resource next to it.
    let path = "/v1/models/acme/llama-70b/weights";
    let reply = stack
        .inner
        .envoy
        .request("POST", path, &[("authorization", &auth)])
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["reason"], "insufficient_role");
    assert_eq!(
        stack.inner.upstream.requests(),
        1,
        "the denial never reached the upstream"
    );
    let id = body["decision_id"]
        .as_str()
        .expect("a decision id in the body");
    assert_eq!(
        reply.header("x-claimgate-decision-id"),
        Some(id),
        "{reply:?}"
    );
    let line = log_line(&stack.log, id).await;
    assert_eq!(line["result"]["allowed"], false);
    assert_eq!(line["result"]["status"], 403);
    assert_eq!(line["result"]["dry_run"], false);
    stack
        .inner
        .envoy
        .access_log_line(&[
            path,
            &format!(" 403 decision_id={id} "),
            "reason=insufficient_role",
        ])
        .await;
}

#[tokio::test]
async fn the_decision_id_of_an_anonymous_denial_is_the_same_for_the_client_the_log_and_envoy() {
    let stack = Stack::start().await;
    let path = "/v1/models/acme/llama-70b/info";
    let reply = stack.inner.envoy.request("GET", path, &[]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    let id = body["decision_id"]
        .as_str()
        .expect("a decision id in the body");
    assert_eq!(reply.header("x-claimgate-decision-id"), Some(id));
    let line = log_line(&stack.log, id).await;
    assert_eq!(line["result"]["reason"], "missing_token");
    assert!(line.get("token").is_none(), "{line}");
    // Envoy's x-request-id travels into the log too, so either id finds the other.
    let request_id = line["request"]["request_id"].as_str().unwrap();
    assert_eq!(body["request_id"], request_id);
    stack
        .inner
        .envoy
        .access_log_line(&[
            path,
            &format!(" 401 decision_id={id} "),
            &format!("request_id={request_id}"),
        ])
        .await;
}
