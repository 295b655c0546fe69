//! Unit tests of the entry point and the report's parts.

use serde_json::Value;

use super::*;
use crate::core::decision::Reason;
use crate::core::identity::ClaimOutcome;
use crate::core::routing::RouteMiss;
use crate::core::token::TokenStepKind;

fn credentials_of(input: &str) -> String {
    match authorization(input) {
        None => "missing".into(),
        Some(v) => format!("{:?}", Credentials::from_header(&v)),
    }
}

#[test]
fn a_bare_token_or_a_whole_authorization_value_is_accepted() {
    assert_eq!(credentials_of("abc.def.ghi\n"), "Bearer(\"abc.def.ghi\")");
    assert_eq!(
        credentials_of("Bearer abc.def.ghi"),
        "Bearer(\"abc.def.ghi\")"
    );
    assert_eq!(credentials_of("Basic dXNlcg=="), "NotBearer");
    assert_eq!(credentials_of("Bearer a, Bearer b"), "Multiple");
    assert_eq!(credentials_of("  "), "missing");
}

#[test]
fn a_failed_step_serializes_as_its_name_and_a_token_step_as_the_steps_name() {
    let mut all = vec![
        FailedStep::Credentials,
        FailedStep::Token,
        FailedStep::Route,
        FailedStep::Identity,
        FailedStep::Role,
        FailedStep::Service,
    ];
    all.extend(TokenStepKind::ALL.map(FailedStep::TokenStep));
    for step in all {
        assert_eq!(serde_json::to_value(step).unwrap(), step.name(), "{step:?}");
    }
    assert_eq!(
        serde_json::to_value(FailedStep::TokenStep(TokenStepKind::Key)).unwrap(),
        "key"
    );
}

#[test]
fn a_steps_reason_serializes_as_its_code() {
    let step = Step {
        step: TokenStepKind::Issuer,
        outcome: StepOutcome::Failed,
        detail: String::new(),
        reason: Some(Reason::UnknownIssuer),
        facts: serde_json::Map::new(),
    };
    let v = serde_json::to_value(&step).unwrap();
    assert_eq!(v["step"], "issuer");
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["reason"], "unknown_issuer");
    let ok = Step {
        reason: None,
        ..step
    };
    assert_eq!(serde_json::to_value(&ok).unwrap()["reason"], Value::Null);
}

#[test]
fn the_reports_enums_serialize_to_the_names_the_json_has_always_used() {
    fn name(v: impl serde::Serialize) -> String {
        serde_json::to_value(v)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }
    let credentials = [
        CredentialsKind::Missing,
        CredentialsKind::NotBearer,
        CredentialsKind::Multiple,
        CredentialsKind::Bearer,
    ];
    assert_eq!(
        credentials.map(name),
        ["missing", "not_bearer", "multiple", "bearer"]
    );
    assert_eq!(
        [TargetBy::ContextExtensions, TargetBy::Route, TargetBy::None].map(name),
        ["context_extensions", "route", "none"]
    );
    assert_eq!(
        [RouteMiss::Method, RouteMiss::Host, RouteMiss::Path].map(name),
        ["method", "host", "path"]
    );
    let claims = [
        ClaimOutcome::Matched,
        ClaimOutcome::Mismatched,
        ClaimOutcome::Missing,
    ];
    assert_eq!(claims.map(name), ["matched", "mismatched", "missing"]);
    let candidates = [
        CandidateVerdict::Matched,
        CandidateVerdict::Unmatched,
        CandidateVerdict::NotReached,
    ];
    assert_eq!(
        candidates.map(name),
        ["matched", "unmatched", "not_reached"]
    );
    let selections = [
        SelectionOutcome::Chosen,
        SelectionOutcome::NoIdentity,
        SelectionOutcome::Ambiguous,
    ];
    assert_eq!(selections.map(name), ["chosen", "no_identity", "ambiguous"]);
    let steps = [
        StepOutcome::Ok,
        StepOutcome::Failed,
        StepOutcome::NotReached,
    ];
    assert_eq!(steps.map(name), ["ok", "failed", "not_reached"]);
}

#[test]
fn a_route_line_says_when_the_route_ignores_letter_case() {
    let mut route = super::report::RouteInfo {
        index: 2,
        location: Some("routes.yaml:7:5".into()),
        path: "/api/{*rest}".into(),
        prefix: false,
        methods: Some(vec!["GET".into()]),
        host: None,
        case_insensitive: true,
    };
    assert_eq!(
        super::text::route_line(&route),
        "routes[2] path /api/{*rest}, methods GET, case_insensitive (routes.yaml:7:5)"
    );
    route.case_insensitive = false;
    assert_eq!(
        super::text::route_line(&route),
        "routes[2] path /api/{*rest}, methods GET (routes.yaml:7:5)"
    );
    let json = serde_json::to_value(&route).unwrap();
    assert_eq!(json["case_insensitive"], false);
}
