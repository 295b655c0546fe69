//! Unit tests of the decision test runner: how an answer is compared with the expected one.

use super::*;

fn expect(allow: bool) -> Expect {
    Expect {
        allow,
        identity: None,
        role: None,
        resource: None,
        reason: None,
    }
}

fn allowed(identity: &str, role: Role) -> Actual {
    Actual {
        allow: true,
        public: false,
        identity: Some(identity.into()),
        role: Some(role),
        resource: Some("model:a".into()),
        reason: None,
    }
}

#[test]
fn only_the_fields_a_test_names_are_compared() {
    assert!(compare(&expect(true), &allowed("a", Role::Viewer)).is_empty());
    let want = Expect {
        identity: Some("b".into()),
        role: Some(Role::Editor),
        ..expect(true)
    };
    assert_eq!(
        compare(&want, &allowed("a", Role::Editor)),
        ["expected identity b, got a"]
    );
}

#[test]
fn a_different_verdict_is_one_difference_that_describes_the_answer() {
    let want = Expect {
        reason: Some(Reason::NoRoute),
        ..expect(false)
    };
    assert_eq!(
        compare(&want, &allowed("a", Role::Manager)),
        ["expected deny, got allow (identity a, role manager, resource model:a)"]
    );
    let denied = Actual {
        allow: false,
        public: false,
        identity: None,
        role: None,
        resource: None,
        reason: Some("insufficient_role"),
    };
    assert_eq!(
        compare(&want, &denied),
        ["expected reason no_route, got insufficient_role"]
    );
}

#[test]
fn a_public_allow_has_no_identity_to_match() {
    let public = Actual {
        allow: true,
        public: true,
        identity: None,
        role: None,
        resource: None,
        reason: None,
    };
    let want = Expect {
        identity: Some("a".into()),
        ..expect(true)
    };
    assert_eq!(
        compare(&want, &public),
        ["expected identity a, got none (a public route)"]
    );
}
