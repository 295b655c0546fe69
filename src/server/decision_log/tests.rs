use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::{json, Value};

use super::*;
use crate::core::decision::{Credentials, Grant, GrantSubject, GrantedBy, Reason};
use crate::core::role::Role;

fn request() -> Request<'static> {
    Request {
        method: "GET",
        path: "/v1/models/x?access_token=secret",
        host: "api.example.com",
        credentials: Credentials::Missing,
        ext_resource: None,
        ext_role: None,
        ext_enforcement: None,
        ext_parent: None,
    }
}

fn event(decision: &Decision) -> Event {
    let header = json!({"alg": "RS256", "kid": "k1"});
    let claims = json!({"iss": "https://idp", "sub": "s", "aud": "claimgate", "exp": 5, "x": 1});
    Event {
        id: DecisionId::new(1_764_439_200_123),
        unix_millis: 1_764_439_200_123,
        generation: 3,
        config_digest: "0123456789abcdef".into(),
        request: RequestFields::new(Some(&request()), "req-1"),
        token: Some(Facts::read(header.as_object().unwrap(), &claims)),
        result: Outcome::of(decision),
        duration_us: 14,
    }
}

fn line(event: &Event) -> Value {
    let mut out = Vec::new();
    event.write_line(&mut out);
    assert_eq!(out.last(), Some(&b'\n'));
    serde_json::from_slice(&out).unwrap()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn a_line_has_exactly_the_specified_fields() {
    let allow = Decision::Allow(Allow::Identity(Grant {
        identity: "deployer".into(),
        sso: "ci".into(),
        subject: "s".into(),
        resource: "model:a/b".into(),
        role: Role::Editor,
        required: Role::Viewer,
        granted_by: GrantedBy {
            subject: GrantSubject::Team("release-bots".into()),
            resource: "workspace:prod-ml".into(),
            role: Role::Editor,
            inherited: true,
        },
    }));
    let v = line(&event(&allow));
    assert_eq!(
        keys(&v),
        BTreeSet::from([
            "decision_id",
            "time",
            "generation",
            "config_digest",
            "request",
            "token",
            "result",
            "duration_us"
        ])
    );
    assert_eq!(v["time"], "2025-11-29T18:00:00.123Z");
    assert_eq!(v["config_digest"], "sha256:0123456789abcdef");
    assert_eq!(
        v["request"],
        json!({"method": "GET", "host": "api.example.com", "path": "/v1/models/x", "request_id": "req-1"})
    );
    assert_eq!(
        v["token"],
        json!({"iss": "https://idp", "sub": "s", "aud": ["claimgate"], "kid": "k1", "exp": 5})
    );
    assert_eq!(
        v["result"],
        json!({"allowed": true, "status": 200, "reason": null, "dry_run": false,
               "identity": "deployer", "sso": "ci", "resource": "model:a/b",
               "role": "editor", "required_role": "viewer",
               "granted_by": {"subject": "team:release-bots", "resource": "workspace:prod-ml"}})
    );
    assert_eq!(v["duration_us"], 14);

    let deny = Decision::deny(Reason::MissingToken, "no Authorization header", false);
    let mut e = event(&deny);
    e.token = None;
    let v = line(&e);
    assert!(!keys(&v).contains("token"));
    assert_eq!(v["result"]["status"], 401);
    assert_eq!(v["result"]["reason"], "missing_token");
    assert_eq!(v["result"]["allowed"], false);
}

fn options(sink: Sink) -> Options {
    Options {
        sink,
        allow_rate: 1.0,
        queue: 64,
    }
}

fn metric(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Wait (bounded) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn a_file_moved_away_is_reopened_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.log");
    let metrics = Metrics::new();
    let (log, writer) =
        DecisionLog::start(&options(Sink::File(path.clone())), metrics.clone()).unwrap();
    let deny = Decision::deny(Reason::MissingToken, "", false);
    log.send(event(&deny));
    eventually("the first line", || lines(&path) == 1);
    let rotated = dir.path().join("decisions.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    log.reopen();
    log.send(event(&deny));
    eventually("a line in the new file", || lines(&path) == 1);
    assert_eq!(lines(&rotated), 1);
    drop(log);
    assert!(writer.finish(Duration::from_secs(10)));
    assert_eq!(metric(&metrics, "claimgate_decision_log_events_total"), 2.0);
}

#[test]
fn a_sink_that_cannot_be_opened_is_reported_once_counted_and_retried_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-yet").join("decisions.log");
    let metrics = Metrics::new();
    let (log, writer) =
        DecisionLog::start(&options(Sink::File(path.clone())), metrics.clone()).unwrap();
    let deny = Decision::deny(Reason::MissingToken, "", false);
    for _ in 0..5 {
        log.send(event(&deny));
    }
    eventually("five drops", || {
        metric(&metrics, "claimgate_decision_log_dropped_total") == 5.0
    });
    assert_eq!(
        metric(&metrics, "claimgate_decision_log_write_errors_total"),
        1.0
    );
    std::fs::create_dir(dir.path().join("not-yet")).unwrap();
    log.reopen();
    log.send(event(&deny));
    eventually("the line after the reopen", || lines(&path) == 1);
    assert_eq!(
        metric(&metrics, "claimgate_decision_log_write_errors_total"),
        1.0
    );
    drop(log);
    assert!(writer.finish(Duration::from_secs(10)));
}

#[test]
fn allows_are_sampled_and_denials_never_are() {
    let metrics = Metrics::new();
    let mut opts = options(Sink::Stdout);
    opts.allow_rate = 0.0;
    let (log, _writer) = DecisionLog::start(&opts, metrics).unwrap();
    assert!(!log.wants(true));
    assert!(log.wants(false));
    let half = DecisionLog {
        allow_rate: 0.5,
        ..log.clone()
    };
    let kept = (0..2000).filter(|_| half.wants(true)).count();
    assert!((500..1500).contains(&kept), "{kept}");
}

#[test]
fn a_denial_let_through_by_dry_run_is_an_allow_that_names_its_reason() {
    let mut deny = crate::core::decision::Deny {
        reason: Reason::InsufficientRole,
        detail: String::new(),
        token_sent: true,
        key_wait: None,
        target: Some(("workspace:prod".into(), Role::Manager)),
        who: None,
        dry_run: true,
        enforced: false,
    };
    let waived = Decision::Deny(deny.clone()).waived(false);
    let v = line(&event(&waived));
    assert_eq!(v["result"]["allowed"], true);
    assert_eq!(v["result"]["status"], 200);
    assert_eq!(v["result"]["dry_run"], true);
    assert_eq!(v["result"]["reason"], "insufficient_role");
    assert_eq!(v["result"]["resource"], "workspace:prod");
    assert_eq!(v["result"]["required_role"], "manager");
    // Without a target (no route matched) nothing is waived, whatever the flags say.
    deny.target = None;
    assert!(matches!(
        Decision::Deny(deny).waived(true),
        Decision::Deny(_)
    ));
}

#[test]
fn a_sink_that_fails_to_write_is_reported_once_and_its_lines_are_counted_as_dropped() {
    // Linux's /dev/full opens, and fails every write with ENOSPC (a full disk).
    let metrics = Metrics::new();
    let sink = Sink::File("/dev/full".into());
    let (log, writer) = DecisionLog::start(&options(sink), metrics.clone()).unwrap();
    let deny = Decision::deny(Reason::MissingToken, "", false);
    for _ in 0..10 {
        log.send(event(&deny));
    }
    eventually("ten drops", || {
        metric(&metrics, "claimgate_decision_log_dropped_total") == 10.0
    });
    assert_eq!(metric(&metrics, "claimgate_decision_log_events_total"), 0.0);
    assert_eq!(
        metric(&metrics, "claimgate_decision_log_write_errors_total"),
        1.0
    );
    // A reopen tries again (and fails again, once).
    log.reopen();
    log.send(event(&deny));
    eventually("a second error", || {
        metric(&metrics, "claimgate_decision_log_write_errors_total") == 2.0
    });
    drop(log);
    assert!(writer.finish(Duration::from_secs(10)));
}

#[test]
fn bursts_and_pauses_lose_nothing_the_queue_had_room_for() {
    // The writer waits in `recv` when idle and sleeps between batches when busy; across both,
    // every event is written or counted as dropped, and a burst no larger than the queue
    // loses nothing.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.log");
    let metrics = Metrics::new();
    let opts = Options {
        queue: 256,
        ..options(Sink::File(path.clone()))
    };
    let (log, writer) = DecisionLog::start(&opts, metrics.clone()).unwrap();
    let deny = Decision::deny(Reason::MissingToken, "", false);
    let mut sent = 0;
    for burst in [1, 200, 3, 256, 50, 1] {
        for _ in 0..burst {
            log.send(event(&deny));
            sent += 1;
        }
        eventually("the burst written", || lines(&path) == sent);
        // Long enough for the writer to go back to waiting in `recv`.
        std::thread::sleep(BATCH_INTERVAL * 3);
    }
    // Four threads at once, more than the queue holds: written plus dropped is all of it.
    std::thread::scope(|s| {
        for _ in 0..4 {
            let log = log.clone();
            let deny = deny.clone();
            s.spawn(move || {
                for _ in 0..2000 {
                    log.send(event(&deny));
                }
            });
        }
    });
    sent += 8000;
    drop(log);
    assert!(writer.finish(Duration::from_secs(10)));
    let written = metric(&metrics, "claimgate_decision_log_events_total");
    let dropped = metric(&metrics, "claimgate_decision_log_dropped_total");
    assert_eq!(written as usize, lines(&path));
    assert_eq!((written + dropped) as usize, sent);
}
