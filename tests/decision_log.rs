//! The decision log of the `claimgate` binary: one line per decision with the ids the caller
//! saw, never in the way of a check (a sink nobody reads only costs dropped, counted lines),
//! and never a credential in any output.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::process::Claimgate;
use common::*;
use serde_json::{json, Value};

fn config() -> (ConfigDir, TestKey) {
    let key = TestKey::generate(Kind::Rs256, "rsa-1");
    let dir = fixture_config(&key);
    (dir, key)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Wait (bounded) until the log at `path` has `n` lines.
async fn wait_for_lines(path: &Path, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(10), || async {
        log_lines(path).len() >= n
    })
    .await;
    log_lines(path)
}

fn by_id<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["decision_id"] == id)
        .unwrap_or_else(|| panic!("no line has decision_id {id}: {lines:#?}"))
}

#[tokio::test]
async fn every_decision_is_one_line_under_the_id_its_caller_was_given_and_rotation_reopens_it() {
    let (dir, key) = config();
    let logs = tempfile::tempdir().unwrap();
    let path = logs.path().join("decisions.log");
    let server = Claimgate::start_with(
        dir.path(),
        &[
            "--decision-log",
            path.to_str().unwrap(),
            "--token-cache-entries",
            "16",
        ],
    )
    .await;
    let mut c = server.client().await;
    let token = key.sign(&claims(
        "run-1",
        json!({"repository": "acme/api", "jti": "j-1"}),
    ));

    let allow = ask(
        &mut c,
        check_bearer("GET", "/v1/models/acme/llama/x?q=1", &token),
    )
    .await;
    // The same token again: its facts come from the token cache's entry.
    let cached = ask(
        &mut c,
        check_bearer("GET", "/v1/models/acme/llama/y", &token),
    )
    .await;
    let role = ask(&mut c, check_bearer("GET", "/v1/admin/x", &token)).await;
    let anonymous = ask(&mut c, check("GET", "/v1/models/acme/llama/x", &[])).await;
    assert_eq!(allow.status, 200);
    assert_eq!(role.reason(), "insufficient_role");
    assert_eq!(anonymous.reason(), "missing_token");

    let lines = wait_for_lines(&path, 4).await;
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for a in [&allow, &cached] {
        let line = by_id(&lines, a.header("x-claimgate-decision-id").unwrap());
        assert_eq!(line["result"]["allowed"], true);
        assert_eq!(line["result"]["identity"], "api");
        assert_eq!(line["result"]["role"], "editor");
        assert_eq!(line["result"]["required_role"], "viewer");
        assert_eq!(line["token"]["sub"], "run-1");
        assert_eq!(line["token"]["jti"], "j-1");
        assert_eq!(line["token"]["kid"], "rsa-1");
        assert_eq!(line["token"]["aud"], json!(["claimgate"]));
        assert!(line["token"].get("repository").is_none(), "{line}");
    }
    let first = by_id(&lines, allow.header("x-claimgate-decision-id").unwrap());
    assert_eq!(first["request"]["path"], "/v1/models/acme/llama/x");
    assert_eq!(first["request"]["method"], "GET");

    let line = by_id(&lines, role.body["decision_id"].as_str().unwrap());
    assert_eq!(
        line["result"],
        json!({"allowed": false, "status": 403, "reason": "insufficient_role", "dry_run": false,
               "identity": "api", "sso": "test-idp", "resource": "workspace:prod",
               "role": null, "required_role": "manager"})
    );
    let line = by_id(&lines, anonymous.header("x-claimgate-decision-id").unwrap());
    assert!(line.get("token").is_none(), "{line}");
    assert_eq!(line["result"]["status"], 401);
    assert_eq!(line["result"]["resource"], "model:acme/llama");

    // logrotate: move the file, SIGUSR1, and the next decision starts the new file.
    let rotated = logs.path().join("decisions.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    server.signal("-USR1");
    eventually(Duration::from_secs(10), || async { path.exists() }).await;
    let after = ask(&mut c, check("GET", "/healthz", &[])).await;
    let lines = wait_for_lines(&path, 1).await;
    assert_eq!(lines.len(), 1, "{}", server.logs());
    assert_eq!(
        lines[0]["decision_id"],
        after.header("x-claimgate-decision-id").unwrap()
    );
    assert_eq!(log_lines(&rotated).len(), 4);
    assert_eq!(
        server.metric("claimgate_decision_log_dropped_total").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn allows_can_be_sampled_away_but_denials_are_always_written() {
    let (dir, key) = config();
    let server = Claimgate::start_with(
        dir.path(),
        &["--decision-log", "-", "--decision-log-allow-rate", "0"],
    )
    .await;
    let mut c = server.client().await;
    let token = key.sign(&claims("run-1", json!({})));
    for _ in 0..5 {
        ask(
            &mut c,
            check_bearer("GET", "/v1/models/acme/llama/x", &token),
        )
        .await;
    }
    let denied = ask(&mut c, check("GET", "/v1/models/acme/llama/x", &[])).await;
    eventually(Duration::from_secs(10), || async {
        server.stdout().lines().count() >= 1
    })
    .await;
    let out = server.stdout();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["decision_id"], denied.body["decision_id"]);
}

/// The configuration digest is the whole SHA-256, in the decision log and on `/readyz` alike.
#[tokio::test]
async fn the_config_digest_is_the_whole_sha256_in_the_log_and_on_readyz() {
    let (dir, _key) = config();
    let server = Claimgate::start_with(dir.path(), &["--decision-log", "-"]).await;
    let mut c = server.client().await;
    ask(&mut c, check("GET", "/v1/models/acme/llama/x", &[])).await;
    eventually(Duration::from_secs(10), || async {
        server.stdout().lines().count() >= 1
    })
    .await;
    let out = server.stdout();
    let line: Value = serde_json::from_str(out.lines().next().unwrap_or_default()).unwrap();
    let digest = line["config_digest"].as_str().unwrap_or_default();
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    assert_eq!(hex.len(), 64, "{digest}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{digest}");
    let readyz = server.get("/readyz").await.body;
    assert!(readyz.contains(hex), "{readyz}");
}

/// A FIFO that claimgate can open (the test holds it open for reading and writing) but that
/// nobody reads: once the pipe, the writer's buffer and the queue are full, every check is
/// still answered, and the decisions that found no room are counted as dropped.
#[tokio::test]
async fn a_sink_that_stops_reading_keeps_checks_answering_and_counts_the_drops() {
    let (dir, _key) = config();
    let fifo_dir = tempfile::tempdir().unwrap();
    let fifo = fifo_dir.path().join("decisions.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Read-write never blocks on Linux, and keeps a reader present that never reads.
    let _held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let mut server =
        Claimgate::start_with(dir.path(), &["--decision-log", fifo.to_str().unwrap()]).await;

    // More denials (always logged) than the queue (4096), the writer's buffer and the pipe
    // can hold, from a few concurrent callers.
    const CALLERS: usize = 8;
    const PER_CALLER: usize = 1000;
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let mut c = server.client().await;
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            for _ in 0..PER_CALLER {
                let a = ask(&mut c, check("GET", "/v1/models/acme/llama/x", &[])).await;
                assert_eq!(a.reason(), "missing_token");
                answered += 1;
            }
            answered
        }));
    }
    let mut answered = 0;
    for t in tasks {
        answered += t.await.unwrap();
    }
    assert_eq!(answered, CALLERS * PER_CALLER);
    let dropped = server
        .metric("claimgate_decision_log_dropped_total")
        .await
        .unwrap();
    let written = server
        .metric("claimgate_decision_log_events_total")
        .await
        .unwrap();
    assert!(dropped > 0.0, "nothing dropped; written {written}");
    assert!(
        dropped + written <= answered as f64,
        "{dropped} + {written}"
    );
    // The stuck sink does not hold shutdown up forever either.
    let status = server.terminate().await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.logs()
    );
}

/// Every window of `WINDOW` bytes of `secret`.
const WINDOW: usize = 16;

fn windows(secret: &str) -> impl Iterator<Item = &[u8]> {
    secret.as_bytes().windows(WINDOW)
}

#[tokio::test]
async fn no_output_ever_holds_a_piece_of_a_token_sent_or_of_a_claim_not_listed() {
    let (dir, key) = config();
    let other = TestKey::generate(Kind::Rs256, "rsa-1");
    let logs = tempfile::tempdir().unwrap();
    let path = logs.path().join("decisions.log");
    // Debug level (`Claimgate::start_with` sets CLAIMGATE_LOG=debug), decision log to a file and stdout
    // both: every output there is.
    let mut server =
        Claimgate::start_with(dir.path(), &["--decision-log", path.to_str().unwrap()]).await;
    let mut c = server.client().await;
    let unlisted = "UNLISTED-CLAIM-VALUE-7f3a9c1e5b";
    let with_secret = |sub: &str, extra: Value| {
        let mut extra = extra;
        extra["private"] = json!(unlisted);
        claims(sub, extra)
    };
    let good = key.sign(&with_secret("run-1", json!({"repository": "acme/api"})));
    let wrong_role = key.sign(&with_secret("run-2", json!({})));
    let expired = key.sign(&with_secret("run-3", json!({"exp": now() - 3600})));
    let forged = other.sign(&with_secret("run-4", json!({"repository": "acme/api"})));
    let unknown_kid = key.sign_raw(
        &json!({"alg": "RS256", "kid": "nope"}).to_string(),
        &with_secret("run-5", json!({})).to_string(),
    );
    let mut tampered = good.clone();
    tampered.push_str("AAAA");
    let (head, rest) = good.split_at(good.find('.').unwrap());
    let not_json_header = format!("bm90IGpzb24gYXQgYWxsIGF0IGFsbA{rest}");
    let four_parts = format!("{good}.{head}");
    let garbage = "Zm9vYmFyYmF6cXV4LXRoaXMtaXMtbm90LWEtand0LWF0LWFsbC0xMjM0NTY3ODkw".to_owned();
    let oversized = format!("{head}.{}.{}", "QUFB".repeat(2500), "c2ln".repeat(10));
    let tokens = [
        &good,
        &wrong_role,
        &expired,
        &forged,
        &unknown_kid,
        &tampered,
        &not_json_header,
        &four_parts,
        &garbage,
        &oversized,
    ];

    for (i, t) in tokens.iter().enumerate() {
        for path in ["/v1/models/acme/llama/x", "/v1/admin/x"] {
            let a = ask(&mut c, check_bearer("GET", path, t)).await;
            assert!(
                a.status == 200 || a.status == 401 || a.status == 403,
                "{i}: {a:?}"
            );
        }
        // The same token twice in one header, under another scheme, and in the query string.
        let twice = format!("Bearer {t}, Bearer {t}");
        ask(
            &mut c,
            check(
                "GET",
                "/v1/models/acme/llama/x",
                &[("authorization", &twice)],
            ),
        )
        .await;
        let basic = format!("Basic {t}");
        ask(
            &mut c,
            check(
                "GET",
                "/v1/models/acme/llama/x",
                &[("authorization", &basic)],
            ),
        )
        .await;
        let query = format!("/v1/models/acme/llama/x?access_token={t}");
        ask(&mut c, check("GET", &query, &[])).await;
        let raw = check_raw(
            "GET",
            "/v1/models/acme/llama/x",
            &[("authorization", &bearer(t))],
        );
        ask(&mut c, raw).await;
    }
    // Twice over with the cache warm.
    let a = ask(
        &mut c,
        check_bearer("GET", "/v1/models/acme/llama/x", &good),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");

    // Stop, so that everything queued is written, then read every output there is.
    let status = server.terminate().await;
    assert!(status.is_some_and(|s| s.success()), "{}", server.logs());
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(log.lines().count() >= tokens.len() * 6, "{log}");
    assert!(
        log.contains("\"sub\":\"run-1\""),
        "the log says something: {log}"
    );
    let outputs = [
        ("decision log", log),
        ("stdout", server.stdout()),
        ("stderr", server.stderr()),
    ];
    assert!(
        outputs[2].1.contains("DEBUG"),
        "stderr is at debug level: {}",
        outputs[2].1
    );
    let seen: HashSet<&[u8]> = outputs
        .iter()
        .flat_map(|(_, text)| text.as_bytes().windows(WINDOW))
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        let signature = t.rsplit('.').next().unwrap_or(t);
        for part in [t.as_str(), signature] {
            if let Some(w) = windows(part).find(|w| seen.contains(w)) {
                let w = String::from_utf8_lossy(w);
                let (name, _) = outputs.iter().find(|(_, o)| o.contains(&*w)).unwrap();
                panic!("token {i}: {w:?} is in the {name}");
            }
        }
    }
    for (name, text) in &outputs {
        assert!(
            !text.contains(unlisted),
            "an unlisted claim is in the {name}"
        );
    }
}

#[tokio::test]
async fn a_decision_log_that_cannot_be_written_never_stops_the_server_and_is_reported_once() {
    let (dir, _key) = config();
    let missing = tempfile::tempdir().unwrap();
    let path = missing.path().join("no-such-dir").join("decisions.log");
    let server =
        Claimgate::start_with(dir.path(), &["--decision-log", path.to_str().unwrap()]).await;
    let mut c = server.client().await;
    for _ in 0..20 {
        let a = ask(&mut c, check("GET", "/v1/models/acme/llama/x", &[])).await;
        assert_eq!(a.reason(), "missing_token");
    }
    let dropped = eventually(Duration::from_secs(10), || async {
        server.metric("claimgate_decision_log_dropped_total").await == Some(20.0)
    })
    .await;
    assert!(dropped, "{}", server.logs());
    assert_eq!(
        server
            .metric("claimgate_decision_log_write_errors_total")
            .await,
        Some(1.0)
    );
    let reported = server
        .stderr()
        .lines()
        .filter(|l| l.contains("decision log: open failed"))
        .count();
    assert_eq!(reported, 1, "{}", server.stderr());
}

#[test]
fn an_allow_rate_outside_zero_to_one_is_refused_before_serving() {
    let (dir, _key) = config();
    let out = std::process::Command::new(bin())
        .args(["serve", "--config", dir.path().to_str().unwrap()])
        .args(["--decision-log", "-", "--decision-log-allow-rate", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a number from 0 to 1"), "{err}");
}
