//! The hand-written encoding of every kind of answer decodes, with prost, to exactly the
//! `CheckResponse` prost builds for it, and takes the length it says it will.

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::CheckResponse;
use proptest::prelude::*;
use prost::Message as _;

use super::{reference, AllowMetadata, Answer};
use crate::core::decision::{Allow, Deny, Grant, GrantSubject, GrantedBy, Reason, Who};
use crate::core::decision_id::{DecisionId, LEN};
use crate::core::role::Role;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9:/._-]{1,40}",
        "\\PC{0,12}",
        // Past a one-byte length.
        "[a-z]{120,300}",
    ]
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(vec![Role::Viewer, Role::Editor, Role::Manager])
}

fn reason() -> impl Strategy<Value = Reason> {
    prop::sample::select(Reason::ALL.to_vec())
}

fn deny() -> impl Strategy<Value = Deny> {
    (
        reason(),
        any::<bool>(),
        proptest::option::of((text(), role())),
        proptest::option::of((text(), text(), text(), proptest::option::of(role()))),
    )
        .prop_map(|(reason, token_sent, target, who)| Deny {
            reason,
            detail: "why".to_owned(),
            token_sent,
            key_wait: None,
            target,
            who: who.map(|(identity, sso, subject, role)| {
                Box::new(Who {
                    identity: identity.into(),
                    sso: sso.into(),
                    subject: subject.into(),
                    role,
                    granted_by: None,
                })
            }),
            dry_run: true,
            enforced: false,
        })
}

fn allow() -> impl Strategy<Value = Allow> {
    prop_oneof![
        (0usize..4).prop_map(|route| Allow::Public { route }),
        (text(), text(), text(), text(), role()).prop_map(|(i, s, sub, r, role)| {
            Allow::Identity(Grant {
                identity: Arc::from(i.as_str()),
                sso: Arc::from(s),
                subject: Arc::from(sub),
                resource: Arc::from(r.as_str()),
                role,
                required: Role::Viewer,
                granted_by: GrantedBy {
                    subject: GrantSubject::Identity(Arc::from(i.as_str())),
                    resource: Arc::from(r),
                    role,
                    inherited: false,
                },
            })
        }),
        deny().prop_map(|d| Allow::DryRun(Box::new(d))),
    ]
}

fn id() -> impl Strategy<Value = [u8; LEN]> {
    any::<u64>().prop_map(|millis| {
        let mut buf = [0u8; LEN];
        DecisionId::new(millis).encode(&mut buf);
        buf
    })
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        (
            allow(),
            proptest::collection::vec("x[-_]claimgate[-_][a-z_-]{0,12}", 0..4),
            prop::sample::select(vec![AllowMetadata::Full, AllowMetadata::DecisionId]),
            id(),
        )
            .prop_map(|(allow, mut remove, metadata, id)| {
                remove.sort();
                remove.dedup();
                Answer {
                    id,
                    kind: super::Kind::Allow {
                        allow,
                        remove: remove.into_iter().map(String::into_boxed_str).collect(),
                        metadata,
                    },
                }
            }),
        (deny(), "[ -~]{0,130}", id()).prop_map(|(d, request_id, id)| Answer::deny(
            &d,
            &request_id,
            id
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn an_answer_is_written_as_prost_would_build_it(answer in answer()) {
        let bytes = answer.to_bytes();
        prop_assert_eq!(bytes.len(), answer.encoded_len());
        let decoded = CheckResponse::decode(bytes.as_slice())
            .map_err(|e| TestCaseError::fail(format!("prost cannot read it: {e}")))?;
        prop_assert_eq!(decoded, reference::check_response(&answer));
    }
}

#[test]
fn a_denial_body_names_the_reason_and_both_ids() {
    let mut id = [0u8; LEN];
    DecisionId::new(1).encode(&mut id);
    let deny = Deny {
        reason: Reason::InsufficientRole,
        detail: String::new(),
        token_sent: true,
        key_wait: None,
        target: None,
        who: None,
        dry_run: false,
        enforced: false,
    };
    let answer = Answer::deny(&deny, r#"a"b\c"#, id);
    let resp = CheckResponse::decode(answer.to_bytes().as_slice()).unwrap();
    let Some(envoy_types::ext_authz::v3::pb::HttpResponse::DeniedResponse(d)) = resp.http_response
    else {
        panic!("not a denial: {resp:?}")
    };
    let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["reason"], "insufficient_role");
    assert_eq!(body["request_id"], r#"a"b\c"#);
    assert_eq!(body["decision_id"], answer.decision_id());
    assert_eq!(d.status.map(|s| s.code), Some(403));
}
