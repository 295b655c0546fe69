//! Unit tests of the entry point and the report's parts.

use super::*;

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
