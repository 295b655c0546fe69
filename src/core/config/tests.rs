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
fn a_fault_at_the_end_of_a_file_without_a_final_newline_is_on_its_last_line() {
    // Found by the config_loader fuzz target: a control character on a last line without a
    // newline was reported on the line after it (3:1 of a two-line file).
    for (text, at) in [
        ("a: 1\nb\u{7}c", (2, 4)),
        ("\u{feff}routes: []\ne\u{7}\0\0\0]=", (2, 8)),
    ] {
        let (_, d) = parse(text);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].message.starts_with("invalid YAML"), "{}", d[0].message);
        assert_eq!((d[0].line, d[0].col), at, "{text:?}");
    }
    // With the newline, the fault is on the (empty) line after it, which the file has.
    let (_, d) = parse("a: 1\nb\u{7}c\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].line, d[0].col), (3, 1));
    // The same from the nesting check, which tokenizes a file with many brackets first.
    let brackets = format!("[[[[[[[[[[[[[[[[[`{}", "[".repeat(43));
    let (_, d) = parse(&format!("rkutes:ute{{:\n  - path:b.yaml {brackets}\n[["));
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].message.starts_with("invalid YAML"), "{}", d[0].message);
    assert_eq!((d[0].line, d[0].col), (3, 3));
    // An empty value at the very end is there too, not on the line after (found by the same
    // target: a collaborator's `role:` ending the file was reported past its end).
    let (c, d) = parse("routes:\n  - path: /x\n    role:");
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(c.files[0].marks().locate("routes[0].role"), (3, 10));
    // Lines are YAML's: a lone CR ends one too (found by the same target: a tab after 32 CRs
    // was on line 34 of a file of 17 LF lines, rightly).
    for (text, at) in [
        ("a: 1\rb\u{7}c", (2, 4)),
        ("a: 1\r\nb\u{7}c", (2, 4)),
        ("a:\r\r\r\t- path: /x\n", (4, 2)),
    ] {
        let (_, d) = parse(text);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].line, d[0].col), at, "{text:?}: {}", d[0].message);
    }
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
    assert_eq!(a.hash.len(), 64);
}

#[test]
fn a_parser_error_quotes_only_the_start_of_a_long_value() {
    let secret = format!("root:x:0:0:{}", "s".repeat(200));
    let (_, d) = parse(&format!("{secret}\n"));
    assert_eq!(d.len(), 1, "{d:?}");
    let message = &d[0].message;
    assert!(!message.contains(&secret[..60]), "{message}");
    assert!(
        message.contains(&format!("\"{}…\"", &secret[..MAX_QUOTED_CHARS])),
        "{message}"
    );
}

#[test]
fn excerpts_cut_long_quotations_of_either_kind_and_keep_short_ones() {
    let long = "x".repeat(50);
    let cut = format!("{}…", "x".repeat(MAX_QUOTED_CHARS));
    assert_eq!(
        excerpt_quotes(&format!("a \"{long}\" b `{long}` c \"short\"")),
        format!("a \"{cut}\" b `{cut}` c \"short\"")
    );
    // An escaped quote does not end a value; an unclosed one is cut all the same.
    let escaped = format!("\"{}\\\"{long}\" end", "y".repeat(10));
    assert!(
        excerpt_quotes(&escaped).ends_with("…\" end"),
        "{}",
        excerpt_quotes(&escaped)
    );
    assert_eq!(excerpt_quotes(&format!("\"{long}")), format!("\"{cut}"));
    // Exactly the limit is shown whole.
    let exact = "z".repeat(MAX_QUOTED_CHARS);
    assert_eq!(
        excerpt_quotes(&format!("\"{exact}\"")),
        format!("\"{exact}\"")
    );
}

#[test]
fn the_section_names_are_the_schemas() {
    // deny_unknown_fields: a misspelt constant would not parse.
    let doc = [
        section::SSO_INTEGRATIONS,
        section::EXTERNAL_IDENTITIES,
        section::RESOURCES,
        section::ROUTES,
        section::TEAMS,
    ]
    .map(|s| format!("{s}: []\n"))
    .concat();
    assert!(serde_yaml::from_str::<FileDoc>(&doc).is_ok());
}
