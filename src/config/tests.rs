//! Parsing configuration files: schema errors, YAML errors and locations.

use super::*;

fn parse(text: &str) -> (Config, Vec<Diagnostic>) {
    let mut d = Vec::new();
    let c = parse_texts(Path::new("."), &[("a.yaml".into(), text.into())], &mut d);
    (c, d)
}

#[test]
fn marks_point_at_values_by_path() {
    let text =
        "external_identities:\n  - name: bot\n    sso_fqn: ci\n  - name: other\n    sso_fqn: x\n";
    let (c, d) = parse(text);
    assert!(d.is_empty(), "{d:?}");
    let marks = c.files[0].marks();
    assert_eq!(marks.locate("external_identities[1].sso_fqn"), (5, 14));
    assert_eq!(marks.locate("external_identities[0].name"), (2, 11));
    // A missing field falls back to its item.
    assert_eq!(marks.locate("external_identities[1].claims"), (4, 5));
}

#[test]
fn unknown_field_is_an_error_with_location() {
    let (_, d) = parse("routes:\n  - path: /x\n    rol: viewer\n");
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].line, d[0].col), (3, 5));
    assert!(
        d[0].message.contains("unknown field `rol`"),
        "{}",
        d[0].message
    );
}

#[test]
fn bad_yaml_is_an_error_with_location() {
    let (_, d) = parse("routes:\n  - path: [\n");
    assert_eq!(d.len(), 1);
    assert!(d[0].message.starts_with("invalid YAML"), "{}", d[0].message);
}

#[test]
fn empty_and_comment_only_files_are_fine() {
    let (c, d) = parse("# nothing yet\n");
    assert!(d.is_empty());
    assert!(c.routes.is_empty());
}

#[test]
fn duplicate_yaml_keys_are_refused() {
    let (_, d) = parse("routes: []\nroutes: []\n");
    assert_eq!(d.len(), 1, "{d:?}");
}

#[test]
fn hash_changes_with_content() {
    let (a, _) = parse("routes: []\n");
    let (b, _) = parse("routes: [] # edited\n");
    assert_ne!(a.hash, b.hash);
    assert_eq!(a.hash.len(), 16);
}
