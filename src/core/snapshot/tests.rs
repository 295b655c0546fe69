//! Compiling configurations: what is accepted, what is refused and where.

use super::*;
use crate::core::config::{parse_texts, Files, KeyFiles, Severity};

fn compile_text(text: &str) -> Result<Snapshot, Vec<Diagnostic>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys.json"), r#"{"keys":[]}"#).unwrap();
    let mut d = Vec::new();
    let cfg = parse_texts(dir.path(), &[("c.yaml".into(), text.into())], &mut d);
    assert!(d.is_empty(), "{d:?}");
    // Key files are read as a load reads them, by the one reader.
    let mut key_files = KeyFiles::default();
    Files::new(cfg.dir.clone()).read_key_files(&cfg, &mut key_files);
    compile_with(&cfg, &key_files, None, None).map_err(|e| e.diagnostics().to_vec())
}

const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp\n    audiences: [cg]\n    jwks_file: keys.json\n";

fn errors(text: &str) -> Vec<String> {
    match compile_text(text) {
        Ok(_) => vec![],
        Err(d) => d
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect(),
    }
}

#[test]
fn a_minimal_config_compiles() {
    let snap = compile_text(&format!(
        "{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n"
    ))
    .unwrap();
    assert_eq!(snap.identities.len(), 1);
    assert!(snap.sso_for_issuer("https://idp").is_some());
    assert!(snap.sso_for_issuer("https://idp/").is_none());
}

#[test]
fn references_and_names_are_checked_with_locations() {
    let e = errors(&format!(
        "{SSO}external_identities:\n  - name: bot\n    sso_fqn: nope\n"
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("c.yaml:9:14: error: sso_fqn \"nope\""),
        "{e:?}"
    );
    let e = errors(&format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n  - name: bot\n    sso_fqn: ci\n"));
    assert!(
        e[0].contains("defined twice (first at c.yaml:8:11)"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{SSO}external_identities:\n  - name: bad name\n    sso_fqn: ci\n"
    ));
    assert!(e[0].contains("letters, digits and hyphens"), "{e:?}");
}

#[test]
fn login_enabled_sso_cannot_back_identities() {
    let text = SSO.replace("type: oidc", "type: oidc\n    login_enabled: true");
    let e = errors(&format!(
        "{text}external_identities:\n  - name: bot\n    sso_fqn: ci\n"
    ));
    assert!(e[0].contains("login_enabled: true"), "{e:?}");
}

#[test]
fn bad_roles_routes_and_claims_are_errors() {
    let base = format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n");
    let e = errors(&format!("{base}resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: owner\n"));
    assert!(e[0].contains("role \"owner\""), "{e:?}");
    let e = errors(&format!(
        "{base}routes:\n  - path: /a/{{x}}\n    resource: model:{{y}}\n    role: viewer\n"
    ));
    assert!(e[0].contains("{y} is not a variable"), "{e:?}");
    let e = errors(&format!(
        "{base}routes:\n  - path: /a\n    resource: model:missing\n    role: viewer\n"
    ));
    assert!(e[0].contains("not defined in resources"), "{e:?}");
    let e = errors(&format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n    claims:\n      groups: [a, [b]]\n"));
    assert!(e[0].contains("string, number or boolean"), "{e:?}");
    let e = errors(&SSO.replace(
        "jwks_file: keys.json",
        "jwks_uri: http://idp.example.com/keys",
    ));
    assert!(e[0].contains("must use https"), "{e:?}");
    assert!(errors(&SSO.replace("jwks_file: keys.json", "jwks_uri: https://idp/keys")).is_empty());
    let e = errors(&SSO.replace(
        "audiences: [cg]",
        "audiences: [cg]\n    algorithms: [HS256]",
    ));
    assert!(e[0].contains("HS256"), "{e:?}");
}

#[test]
fn every_malformed_condition_is_an_error_at_its_line_and_column() {
    let text = format!(
        "{SSO}external_identities:
  - name: bot
    sso_fqn: ci
    claims:
      a: {{matches: x}}
      b: []
      c: {{like: 'x\\y'}}
      d: {{like: '{stars}'}}
      e: {{not_like: '{long}'}}
      f: {{like: 'a*', not: b}}
      g:
        like: [ok, '*']
        present: true
      h: {{present: 1}}
",
        stars = "?".repeat(17),
        long = "a".repeat(1025),
    );
    let e = errors(&text);
    let expect = [
        "c.yaml:11:20: error: claim \"a\": unknown operator \"matches\"",
        "c.yaml:12:10: error: claim \"b\": the list is empty",
        "c.yaml:13:17: error: claim \"c\": pattern has a bad escape `\\y`: only",
        "c.yaml:14:17: error: claim \"d\": pattern has 17 wildcards; at most 16",
        "c.yaml:15:21: error: claim \"e\": pattern is 1025 bytes long; at most 1024",
        "c.yaml:16:28: error: claim \"f\": not and like cannot be combined",
        "c.yaml:19:18: error: claim \"g\": like and present cannot be combined",
        "c.yaml:20:20: error: claim \"h\": present must be true or false",
    ];
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    for (got, want) in e.iter().zip(expect) {
        assert!(
            got.starts_with(want),
            "{got}\n  does not start with\n{want}"
        );
    }
}

#[test]
fn an_identity_names_at_most_32_claims() {
    let claims: String = (0..33).map(|i| format!("      c{i}: x\n")).collect();
    let e = errors(&format!(
        "{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n    claims:\n{claims}"
    ));
    assert!(
        e[0].contains("33 claims; an identity has at most 32"),
        "{e:?}"
    );
    let claims: String = (0..32).map(|i| format!("      c{i}: x\n")).collect();
    let ok =
        format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n    claims:\n{claims}");
    assert!(errors(&ok).is_empty());
}

#[test]
fn a_missing_collaborator_identity_is_a_warning_and_ignored() {
    let snap = compile_text(&format!(
        "{SSO}resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:gone\n        role: viewer\n"
    ))
    .unwrap();
    assert_eq!(snap.warnings.len(), 2, "{:?}", snap.warnings); // plus: the empty key set
    assert!(snap
        .warnings
        .iter()
        .any(|w| w.message.contains("\"gone\" does not exist")));
    assert!(snap.bindings("model:a").is_empty());
}

#[test]
fn identities_are_indexed_most_claims_first() {
    let snap = compile_text(&format!(
        "{SSO}external_identities:\n  - name: any\n    sso_fqn: ci\n  - name: two\n    sso_fqn: ci\n    claims: {{a: 1, b: true}}\n  - name: one\n    sso_fqn: ci\n    claims: {{a: 1}}\n"
    ))
    .unwrap();
    let order: Vec<&str> = snap
        .identities_of(0)
        .iter()
        .map(|i| &*snap.identities[*i].name)
        .collect();
    assert_eq!(order, ["two", "one", "any"]);
    assert_eq!(snap.identity_index.order(0), snap.identities_of(0));
}

/// A configuration with two identities, a team, and a cluster → workspace → model chain.
const HIERARCHY: &str = "external_identities:
  - name: bot
    sso_fqn: ci
  - name: other
    sso_fqn: ci
teams:
  - name: release-bots
    members: [external-identity:bot]
resources:
  - fqn: cluster:prod
    collaborators:
      - {subject: team:release-bots, role: viewer}
  - fqn: workspace:ml
    parent: cluster:prod
    enforcement: dry_run
    collaborators:
      - {subject: team:release-bots, role: editor}
  - fqn: model:llama
    parent: workspace:ml
    collaborators:
      - {subject: external-identity:other, role: manager}
";

fn diagnostics(text: &str) -> Vec<String> {
    match compile_text(text) {
        Ok(s) => s.warnings.iter().map(|d| d.to_string()).collect(),
        Err(d) => d.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn a_team_grant_on_an_ancestor_gives_the_effective_role_and_names_itself() {
    let snap = compile_text(&format!("{SSO}{HIERARCHY}")).unwrap();
    let bot = 0;
    let held = snap.held("model:llama", bot).unwrap();
    assert_eq!(held.role, Role::Editor);
    assert_eq!(held.subject, Subject::Team(0));
    assert_eq!(&**snap.resource_name(held.on), "workspace:ml");
    assert!(held.inherited);
    // A grant on a child never reaches its parent.
    assert_eq!(snap.role_of("workspace:ml", 1), None);
    assert_eq!(snap.role_of("model:llama", 1), Some(Role::Manager));
    let direct = snap.held("model:llama", 1).unwrap();
    assert!(!direct.inherited);
    assert_eq!(direct.subject, Subject::Identity(1));
    // Dry run is inherited from the nearest ancestor that sets it.
    assert!(snap.dry_run("model:llama"));
    assert!(!snap.dry_run("cluster:prod"));
    assert_eq!(
        snap.ancestors("model:llama").collect::<Vec<_>>(),
        ["workspace:ml", "cluster:prod"]
    );
    assert_eq!(snap.parent_of("workspace:ml"), Some("cluster:prod"));
    assert_eq!(snap.teams_of(bot), [0]);
    let roles: Vec<(&str, Role)> = snap
        .effective_roles(bot)
        .into_iter()
        .map(|(r, h)| (r, h.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("cluster:prod", Role::Viewer),
            ("workspace:ml", Role::Editor),
            ("model:llama", Role::Editor)
        ]
    );
}

#[test]
fn an_undeclared_resource_is_placed_under_a_declared_parent_only() {
    let snap = compile_text(&format!("{SSO}{HIERARCHY}")).unwrap();
    let under = snap.place("model:new", Some("workspace:ml"));
    assert!(!under.is_declared() && under.is_placed());
    assert_eq!(snap.held_at(under, 0).map(|h| h.role), Some(Role::Editor));
    assert!(snap.held_at(under, 0).unwrap().inherited);
    assert!(!snap.place("model:new", Some("workspace:nope")).is_placed());
    // A declared resource's own parent wins over the one a request names.
    let own = snap.place("model:llama", Some("cluster:prod"));
    assert_eq!(snap.held_at(own, 0).map(|h| h.role), Some(Role::Editor));
}

#[test]
fn a_missing_parent_a_cycle_and_a_deep_chain_are_errors_where_written() {
    let base = format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n");
    let e = errors(&format!(
        "{base}resources:\n  - fqn: model:a\n    parent: workspace:nope\n"
    ));
    assert_eq!(
        e,
        ["c.yaml:12:13: error: parent \"workspace:nope\" is not a declared resource"]
    );
    let e = errors(&format!(
        "{base}resources:\n  - fqn: a:x\n    parent: b:x\n  - fqn: b:x\n    parent: c:x\n  - fqn: c:x\n    parent: a:x\n  - fqn: d:x\n    parent: d:x\n"
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(
        e[0],
        "c.yaml:12:13: error: resources form a cycle: a:x → b:x → c:x → a:x"
    );
    assert!(e[1].ends_with("resources form a cycle: d:x → d:x"), "{e:?}");
    let mut deep = format!("{base}resources:\n  - fqn: r:0\n");
    for i in 1..=MAX_DEPTH {
        deep.push_str(&format!("  - fqn: r:{i}\n    parent: r:{}\n", i - 1));
    }
    let e = errors(&deep);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("the chain of r:32 is deeper than 32"),
        "{e:?}"
    );
    // Exactly the limit is allowed.
    let legal = deep.rsplit_once("  - fqn: r:32").unwrap().0;
    assert!(errors(legal).is_empty());
}

#[test]
fn teams_are_checked_and_do_not_nest() {
    let base = format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n");
    let d = diagnostics(&format!(
        "{base}teams:\n  - name: a\n    members: [external-identity:bot, external-identity:gone]\n  - name: a\n  - name: b\n    members: [team:a, external-identity:a]\n  - name: empty\n    members: []\n"
    ));
    let has = |s: &str| assert!(d.iter().any(|d| d.contains(s)), "{s}: {d:?}");
    has("c.yaml:12:38: warning: external identity \"gone\" does not exist; this member is ignored");
    has("c.yaml:13:11: error: team \"a\" is defined twice (first at c.yaml:11:11)");
    has("error: member \"team:a\" is a team; teams do not nest");
    has("error: \"a\" is a team, not an external identity; teams do not nest");
    has("warning: team empty has no members");
}

#[test]
fn collaborator_subjects_name_the_right_kind() {
    let base = format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\nteams:\n  - name: bots\n    members: [external-identity:bot]\n");
    let d = diagnostics(&format!(
        "{base}resources:\n  - fqn: m:a\n    collaborators:\n      - {{subject: external-identity:bots, role: viewer}}\n      - {{subject: team:nope, role: viewer}}\n      - {{subject: team:bot, role: viewer}}\n"
    ));
    let has = |s: &str| assert!(d.iter().any(|d| d.contains(s)), "{s}: {d:?}");
    has("error: \"bots\" is a team, not an external identity; write team:bots");
    has("warning: team \"nope\" does not exist; this collaborator is ignored");
    has("bot is an external identity: write external-identity:bot");
}

#[test]
fn a_route_parent_that_can_never_name_a_declared_resource_is_warned_about() {
    let base = format!("{SSO}{HIERARCHY}");
    let route = |parent: &str| {
        format!("{base}routes:\n  - path: /w/{{ws}}/m/{{m}}\n    resource: model:{{m}}\n    parent: {parent}\n    role: viewer\n")
    };
    let warned = |text: String| {
        compile_text(&text)
            .unwrap()
            .warnings
            .iter()
            .any(|d| d.message.contains("can never name a declared resource"))
    };
    assert!(!warned(route("workspace:{ws}")));
    assert!(warned(route("project:{ws}")));
    assert!(warned(route("workspace:x{ws}")));
    let e = errors(&route("workspace:{nope}"));
    assert!(e[0].contains("{nope} is not a variable"), "{e:?}");
}

mod effective_role {
    //! The effective role against a naive reference: walk every ancestor, read every binding.

    use super::*;
    use proptest::prelude::*;

    /// A generated configuration: each resource's parent (always an earlier one, so no
    /// cycle), each team's members (identity indexes), and bindings (resource, subject, role).
    #[derive(Debug, Clone)]
    struct World {
        parents: Vec<Option<usize>>,
        identities: usize,
        teams: Vec<Vec<usize>>,
        bindings: Vec<(usize, Subject, Role)>,
    }

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::Viewer), Just(Role::Editor), Just(Role::Manager)]
    }

    fn world() -> impl Strategy<Value = World> {
        (1usize..10, 1usize..5, 0usize..4).prop_flat_map(|(n, ids, teams)| {
            let parents = (0..n)
                .map(|i| {
                    if i == 0 {
                        Just(None).boxed()
                    } else {
                        proptest::option::of(0..i).boxed()
                    }
                })
                .collect::<Vec<_>>();
            let members = proptest::collection::vec(proptest::collection::vec(0..ids, 0..4), teams);
            let subject = if teams == 0 {
                (0..ids as u32).prop_map(Subject::Identity).boxed()
            } else {
                prop_oneof![
                    (0..ids as u32).prop_map(Subject::Identity),
                    (0..teams as u32).prop_map(Subject::Team),
                ]
                .boxed()
            };
            let bindings = proptest::collection::vec((0..n, subject, role()), 0..12);
            (parents, members, bindings).prop_map(move |(parents, teams, bindings)| World {
                parents,
                identities: ids,
                teams,
                bindings,
            })
        })
    }

    fn subject_yaml(s: Subject) -> String {
        match s {
            Subject::Identity(i) => format!("external-identity:id{i}"),
            Subject::Team(t) => format!("team:t{t}"),
        }
    }

    fn yaml(w: &World) -> String {
        let mut y = format!("{SSO}external_identities:\n");
        for i in 0..w.identities {
            y.push_str(&format!(
                "  - name: id{i}\n    sso_fqn: ci\n    claims: {{n: {i}}}\n"
            ));
        }
        if !w.teams.is_empty() {
            y.push_str("teams:\n");
        }
        for (t, members) in w.teams.iter().enumerate() {
            let mut unique = members.clone();
            unique.sort();
            unique.dedup();
            let list: Vec<String> = unique
                .iter()
                .map(|m| format!("external-identity:id{m}"))
                .collect();
            y.push_str(&format!(
                "  - name: t{t}\n    members: [{}]\n",
                list.join(", ")
            ));
        }
        y.push_str("resources:\n");
        for (r, parent) in w.parents.iter().enumerate() {
            y.push_str(&format!("  - fqn: res:r{r}\n"));
            if let Some(p) = parent {
                y.push_str(&format!("    parent: res:r{p}\n"));
            }
            let mut seen = std::collections::HashSet::new();
            let mine: Vec<String> = w
                .bindings
                .iter()
                .filter(|(on, s, _)| *on == r && seen.insert(*s))
                .map(|(_, s, role)| {
                    format!(
                        "      - {{subject: {}, role: {}}}\n",
                        subject_yaml(*s),
                        role.as_str()
                    )
                })
                .collect();
            if !mine.is_empty() {
                y.push_str("    collaborators:\n");
                y.push_str(&mine.concat());
            }
        }
        y
    }

    /// The first binding of each (resource, subject), as the YAML writes it.
    fn reference(w: &World, resource: usize, identity: usize) -> Option<Role> {
        let mut seen = std::collections::HashSet::new();
        let bindings: Vec<_> = w
            .bindings
            .iter()
            .filter(|(on, s, _)| seen.insert((*on, *s)))
            .collect();
        let mut best = None;
        let mut at = Some(resource);
        while let Some(r) = at {
            for (on, s, role) in &bindings {
                let names_me = match *s {
                    Subject::Identity(i) => i as usize == identity,
                    Subject::Team(t) => w.teams[t as usize].contains(&identity),
                };
                if *on == r && names_me {
                    best = best.max(Some(*role));
                }
            }
            at = w.parents[r];
        }
        best
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn the_effective_role_is_the_highest_grant_on_any_ancestor_to_the_identity_or_its_teams(w in world()) {
            let snap = compile_text(&yaml(&w)).map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
            for r in 0..w.parents.len() {
                let fqn = format!("res:r{r}");
                for i in 0..w.identities {
                    let want = reference(&w, r, i);
                    let held = snap.held(&fqn, i);
                    prop_assert_eq!(held.map(|h| h.role), want, "{} for id{}", fqn, i);
                    // An undeclared child placed under the resource inherits the same role.
                    let under = snap.place("res:undeclared", Some(&fqn));
                    prop_assert_eq!(snap.held_at(under, i).map(|h| h.role), want);
                    if let Some(h) = held {
                        // The grant named is on the resource or an ancestor, and is inherited
                        // exactly when it is on an ancestor.
                        let on = snap.resource_name(h.on).to_string();
                        prop_assert_eq!(h.inherited, on != fqn);
                        prop_assert!(on == fqn || snap.ancestors(&fqn).any(|a| a == on));
                    }
                }
            }
        }
    }
}
