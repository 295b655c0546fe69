//! `claimgate validate` reads team membership: an identity that holds roles only through a team
//! bound somewhere is not unused, a member of teams bound nowhere is told so, and a possible
//! tie between members of one team says the team's roles do not help.

mod common;

use common::*;

/// The shared fixture with its hierarchy file (release-bots: api, api-prod, bound on
/// workspace:prod-ml) and `extra` beside it; validate's output.
fn validate_with(extra: &str) -> String {
    let key = TestKey::generate(Kind::Rs256, "rsa-1");
    let dir = fixture_config(&key);
    dir.write("hierarchy.yaml", FIXTURE_HIERARCHY);
    dir.write("extra.yaml", extra);
    let (code, out, err) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "warnings alone pass: {out}{err}");
    out
}

const EXTRA: &str = "teams:
  - name: bound
    members:
      - external-identity:through-team
  - name: idle
    members:
      - external-identity:idle-member
resources:
  - fqn: model:team-only
    parent: workspace:prod-ml
    collaborators:
      - subject: team:bound
        role: viewer
external_identities:
  - name: through-team
    sso_fqn: test-idp
    claims: {repository: acme/through, environment: team}
  - name: idle-member
    sso_fqn: test-idp
    claims: {repository: acme/idle, environment: idle}
  - name: nowhere
    sso_fqn: test-idp
    claims: {repository: acme/nowhere, environment: none}
";

#[test]
fn validate_counts_a_member_of_a_bound_team_as_used_and_names_a_team_bound_nowhere() {
    let out = validate_with(EXTRA);
    assert!(
        !out.contains("\"through-team\" is a collaborator of no resource"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("extra.yaml:18:11: warning: external identity \"idle-member\" is a collaborator of no resource, and its team (team:idle) no resource names either: every request it is selected for is denied insufficient_role")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("extra.yaml:21:11: warning: external identity \"nowhere\" is a collaborator of no resource: every request")),
        "{out}"
    );
}

#[test]
fn validate_says_a_possible_tie_between_members_of_one_team_is_denied_all_the_same() {
    // Two identities of one team, each with two claims of its own: a token with all four
    // matches both.
    let out = validate_with(
        "teams:
  - name: pair
    members:
      - external-identity:twin-a
      - external-identity:twin-b
resources:
  - fqn: model:pair
    collaborators:
      - subject: team:pair
        role: viewer
external_identities:
  - name: twin-a
    sso_fqn: test-idp
    claims: {a: x, b: y}
  - name: twin-b
    sso_fqn: test-idp
    claims: {c: x, d: y}
",
    );
    let tie = out
        .lines()
        .find(|l| l.contains("\"twin-a\"") && l.contains("\"twin-b\""))
        .unwrap_or_else(|| panic!("no tie reported:\n{out}"));
    assert!(
        tie.ends_with("(both are members of team:pair: the team's roles do not help, a tie is denied before any role is looked up)"),
        "{tie}"
    );
    // A tie between identities that share no team says nothing of teams.
    assert!(
        out.lines()
            .filter(|l| l.contains("ambiguous_identity") && !l.contains("twin-b"))
            .all(|l| !l.contains("members of")),
        "{out}"
    );
}
