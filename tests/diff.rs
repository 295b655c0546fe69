//! `claimgate diff`: each kind of change on small real configuration pairs (the example config
//! and an edited copy), a no-op edit that reports nothing, both sides validated, large
//! configurations, and the base read from a git revision.

mod common;

use common::*;
use serde_json::{json, Value};

fn path(dir: &ConfigDir) -> &str {
    dir.path().to_str().unwrap()
}

/// The JSON changes between the example config and `new`.
fn changes(base: &ConfigDir, new: &ConfigDir) -> Vec<Value> {
    let (code, out, err) = run(&[
        "diff",
        "--base",
        path(base),
        "--config",
        path(new),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc.as_object().unwrap().len(), 1, "{doc}");
    doc["changes"].as_array().unwrap().clone()
}

/// The example, and a copy of it with `edit` applied.
fn pair(edit: impl FnOnce(&ConfigDir)) -> (ConfigDir, ConfigDir) {
    let base = example_config_copy();
    let new = example_config_copy();
    edit(&new);
    (base, new)
}

const PROD_MANAGER: &str = "      - subject: external-identity:api-deployer-prod\n        role: manager\n      - subject: external-identity:prod-cluster\n        role: viewer";

#[test]
fn a_collaborator_added_is_a_role_granted() {
    let (base, new) = pair(|d| {
        d.edit(
            "resources.yaml",
            PROD_MANAGER,
            &format!("{PROD_MANAGER}\n      - subject: external-identity:api-deployer\n        role: editor"),
        )
    });
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "role_granted", "identity": "api-deployer", "resource": "workspace:prod", "role": "editor"})
        ]
    );
}

#[test]
fn a_collaborator_removed_is_a_role_revoked_and_a_new_role_is_a_role_changed() {
    let (base, new) = pair(|d| {
        d.edit(
            "resources.yaml",
            "      - subject: external-identity:ci-any\n        role: viewer\n",
            "",
        );
        d.edit(
            "resources.yaml",
            "external-identity:prod-cluster\n        role: viewer",
            "external-identity:prod-cluster\n        role: manager",
        );
    });
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "role_revoked", "identity": "ci-any", "resource": "model:acme/llama-70b", "was": "viewer"}),
            json!({"kind": "role_changed", "identity": "prod-cluster", "resource": "workspace:prod", "role": "manager", "was": "viewer"}),
        ]
    );
}

#[test]
fn a_deleted_identity_is_removed_once_and_revoked_on_each_resource_it_held() {
    let (base, new) = pair(|d| {
        d.edit(
            "identities.yaml",
            "  - name: api-deployer\n    sso_fqn: dev-oidc\n    claims:\n      repository: acme/api\n",
            "",
        )
    });
    // Its collaborator entries stay in resources.yaml: ignored with a warning, as serve does.
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "identity_removed", "identity": "api-deployer", "sso": "dev-oidc"}),
            json!({"kind": "role_revoked", "identity": "api-deployer", "resource": "cluster:prod", "was": "viewer"}),
            json!({"kind": "role_revoked", "identity": "api-deployer", "resource": "mcp-server:search", "was": "viewer"}),
            json!({"kind": "role_revoked", "identity": "api-deployer", "resource": "model:acme/llama-70b", "was": "editor"}),
            json!({"kind": "role_revoked", "identity": "api-deployer", "resource": "model:prod-ml/llama-70b", "was": "viewer"}),
            json!({"kind": "role_revoked", "identity": "api-deployer", "resource": "workspace:prod-ml", "was": "viewer"}),
            // Its membership of release-bots names no identity any more: it is no member.
            json!({"kind": "team_changed", "team": "release-bots", "added": [], "removed": ["api-deployer"]}),
        ]
    );
}

#[test]
fn a_new_identity_with_a_role_is_added_and_granted() {
    let (base, new) = pair(|d| {
        d.write(
            "more.yaml",
            "external_identities:\n  - name: web-deployer\n    sso_fqn: dev-oidc\n    claims: {repository: acme/web, ref: refs/heads/main, environment: prod}\nresources:\n  - fqn: model:acme/web\n    collaborators:\n      - {subject: \"external-identity:web-deployer\", role: manager}\n",
        );
    });
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "identity_added", "identity": "web-deployer", "sso": "dev-oidc"}),
            json!({"kind": "role_granted", "identity": "web-deployer", "resource": "model:acme/web", "role": "manager"}),
        ]
    );
}

#[test]
fn changed_claims_show_the_old_and_new_condition_per_key() {
    let (base, new) = pair(|d| {
        d.edit(
            "identities.yaml",
            "      environment: prod\n",
            "      environment: production\n",
        );
        d.edit("identities.yaml", "      ref: refs/heads/main\n", "");
        d.edit(
            "identities.yaml",
            "      /kubernetes.io/namespace: prod",
            "      /kubernetes.io/namespace: prod\n      /kubernetes.io/pod/uid: 7",
        );
    });
    let got = changes(&base, &new);
    assert_eq!(
        got[0],
        json!({"kind": "claims_changed", "identity": "api-deployer-prod",
               "added": {"environment": "production"},
               "removed": {"environment": "prod", "ref": "refs/heads/main"}})
    );
    assert_eq!(
        got[1],
        json!({"kind": "claims_changed", "identity": "prod-cluster",
               "added": {"/kubernetes.io/pod/uid": 7}, "removed": {}})
    );
}

#[test]
fn an_identity_that_gains_claims_is_reported_to_outrank_the_ones_it_now_wins_over() {
    let (base, new) = pair(|d| {
        d.edit(
            "identities.yaml",
            "    claims:\n      repository: acme/api\n\n",
            "    claims:\n      repository: acme/api\n      environment: prod\n      ref: refs/heads/main\n      actor: octocat\n\n",
        )
    });
    let got = changes(&base, &new);
    let shifts: Vec<&Value> = got
        .iter()
        .filter(|c| c["kind"] == "selection_shift")
        .collect();
    assert_eq!(
        shifts,
        [
            &json!({"kind": "selection_shift", "identity": "api-deployer", "outranks": "api-deployer-prod", "sso": "dev-oidc", "claims": [4, 3], "was": [1, 3]}),
            &json!({"kind": "selection_shift", "identity": "api-deployer", "outranks": "prod-cluster", "sso": "dev-oidc", "claims": [4, 2], "was": [1, 2]}),
        ]
    );
    assert_eq!(got[0]["kind"], "claims_changed");
}

/// `groups: [a, b]` meets both `groups: a` and `groups: b`: on a claim sent as an array,
/// different values do not keep two identities apart (as `validate` says too); on a claim sent
/// as one value (`repository`), they do.
#[test]
fn different_values_of_an_array_claim_are_a_possible_tie() {
    let identity = |name: &str, claims: &str| {
        format!("external_identities:\n  - name: {name}\n    sso_fqn: dev-oidc\n    claims: {{{claims}, site: y, zone: z}}\n")
    };
    let (base, new) = pair(|d| {
        // `team` keeps the two kinds apart.
        d.write("a.yaml", &identity("group-a", "groups: a, team: x"));
        d.write("b.yaml", &identity("group-b", "groups: b, team: x"));
        d.write("c.yaml", &identity("repo-c", "repository: c, team: w"));
        d.write("d.yaml", &identity("repo-d", "repository: d, team: w"));
    });
    let got = changes(&base, &new);
    let ties: Vec<&Value> = got.iter().filter(|c| c["kind"] == "possible_tie").collect();
    assert_eq!(
        ties,
        [
            &json!({"kind": "possible_tie", "identities": ["group-a", "group-b"], "sso": "dev-oidc", "claims": 4})
        ],
        "{got:#?}"
    );
}

#[test]
fn two_identities_brought_to_equally_many_compatible_claims_are_a_possible_tie() {
    let (base, new) = pair(|d| {
        d.edit(
            "identities.yaml",
            "      /kubernetes.io/serviceaccount/name: deployer",
            "      /kubernetes.io/serviceaccount/name: deployer\n      cluster: eu-1",
        )
    });
    let got = changes(&base, &new);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[1],
        json!({"kind": "possible_tie", "identities": ["api-deployer-prod", "prod-cluster"], "sso": "dev-oidc", "claims": 3})
    );
    // An identity with more claims, all of the pair's, wins the tokens that match both.
    new.write(
        "winner.yaml",
        "external_identities:\n  - name: prod-deployer-in-cluster\n    sso_fqn: dev-oidc\n    claims: {repository: acme/api, environment: prod, cluster: eu-1, /kubernetes.io/namespace: prod}\n",
    );
    let got = changes(&base, &new);
    assert!(got.iter().all(|c| c["kind"] != "possible_tie"), "{got:?}");
}

#[test]
fn sso_changes_name_each_field_with_its_old_and_new_value() {
    let (base, new) = pair(|d| {
        d.edit(
            "sso.yaml",
            "audiences: [claimgate]",
            "audiences: [claimgate, other]",
        );
        d.edit("sso.yaml", "leeway_seconds: 30", "leeway_seconds: 60");
        d.edit(
            "sso.yaml",
            "algorithms: [RS256]",
            "algorithms: [RS256, ES256]",
        );
        d.write(
            "sso2.yaml",
            "sso_integrations:\n  - name: partner\n    type: oidc\n    issuer: https://partner.example.com\n    audiences: [claimgate]\n    jwks_uri: https://partner.example.com/keys\n",
        );
    });
    let got = changes(&base, &new);
    assert_eq!(
        got[0],
        json!({"kind": "sso_changed", "sso": "dev-oidc", "fields": {
            "algorithms": {"was": ["RS256"], "now": ["RS256", "ES256"]},
            "audiences": {"was": ["claimgate"], "now": ["claimgate", "other"]},
            "leeway_seconds": {"was": 30, "now": 60}}})
    );
    assert_eq!(got[1]["sso"], "partner");
    assert_eq!(
        got[1]["fields"]["defined"],
        json!({"was": false, "now": true})
    );
    assert_eq!(
        got[1]["fields"]["key_source"],
        json!({"was": null, "now": "jwks_uri https://partner.example.com/keys"})
    );
}

/// A `jwks_uri` is shown without its userinfo and query, which may be credentials; a change
/// only there is still a change.
#[test]
fn a_jwks_uri_is_compared_whole_and_shown_without_its_credentials() {
    let sso = |uri: &str| {
        format!("sso_integrations:\n  - name: partner\n    type: oidc\n    issuer: https://partner.example.com\n    audiences: [claimgate]\n    jwks_uri: {uri}\n")
    };
    let base = example_config_copy();
    base.write(
        "sso2.yaml",
        &sso("https://u:hunter2pw@partner.example.com/keys?access_token=old"),
    );
    let new = example_config_copy();
    new.write(
        "sso2.yaml",
        &sso("https://u:hunter2pw@partner.example.com/keys?access_token=t0ps3cr3t"),
    );
    let got = changes(&base, &new);
    assert_eq!(
        got,
        vec![
            json!({"kind": "sso_changed", "sso": "partner", "fields": {"key_source": {
            "was": "jwks_uri https://***@partner.example.com/keys?***",
            "now": "jwks_uri https://***@partner.example.com/keys?*** (other credentials or query)"}}})
        ]
    );
    for format in ["text", "markdown"] {
        let (code, out, err) = run(&[
            "diff",
            "--base",
            path(&base),
            "--config",
            path(&new),
            "--format",
            format,
        ]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            !out.contains("hunter2pw") && !out.contains("t0ps3cr3t"),
            "{out}"
        );
    }
}

#[test]
fn pinning_github_actions_to_a_key_file_is_an_sso_change_that_names_pinned_keys() {
    let (base, new) = pair(|d| {
        d.edit(
            "sso.yaml",
            "    discovery: true\n",
            "    jwks_file: keys/dev-jwks.json\n    pinned_keys: true\n",
        );
    });
    let got = changes(&base, &new);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["sso"], "github-actions");
    assert_eq!(
        got[0]["fields"]["pinned_keys"],
        json!({"was": false, "now": true})
    );
    assert_eq!(
        got[0]["fields"]["key_source"],
        json!({"was": "discovery from https://token.actions.githubusercontent.com", "now": "jwks_file keys/dev-jwks.json"})
    );
}

#[test]
fn a_key_added_to_the_key_file_or_replaced_under_its_kid_is_an_sso_change() {
    let (base, new) = pair(|d| {
        let key = TestKey::generate(Kind::Rs256, "dev-rsa-2");
        let text = std::fs::read_to_string(d.path().join("keys/dev-jwks.json")).unwrap();
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        doc["keys"].as_array_mut().unwrap().push(key.jwk.clone());
        d.write("keys/dev-jwks.json", &doc.to_string());
    });
    // The example's dev-oidc reads this key file (github-actions uses discovery).
    let keys = json!({"keys": {"was": ["dev-rsa-1"], "now": ["dev-rsa-1", "dev-rsa-2"]}});
    assert_eq!(
        changes(&base, &new),
        [json!({"kind": "sso_changed", "sso": "dev-oidc", "fields": keys})]
    );
    let (base, new) = pair(|d| {
        let mut key = TestKey::generate(Kind::Rs256, "dev-rsa-1");
        key.jwk["kid"] = json!("dev-rsa-1");
        d.write("keys/dev-jwks.json", &jwks(&[&key]));
    });
    let got = changes(&base, &new);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["fields"]["keys"]["now"],
        "other keys under the same key ids"
    );
}

#[test]
fn route_changes_are_reported_by_effect() {
    let (base, new) = pair(|d| {
        // A role lowered, a path made public, and a route deleted.
        d.edit(
            "routes.yaml",
            "  - path: /v1/workspaces/{name}/{*rest}\n    resource: workspace:{name}\n    role: manager",
            "  - path: /v1/workspaces/{name}/{*rest}\n    resource: workspace:{name}\n    role: editor",
        );
        d.edit(
            "routes.yaml",
            "  - path_prefix: /healthz\n",
            "  - path_prefix: /healthz\n    public: true\n  - path_prefix: /status\n",
        );
        d.edit(
            "routes.yaml",
            "  - path: /v1/mcp/search/{*rest}\n    resource: mcp-server:search\n    role: viewer\n",
            "",
        );
    });
    let got = changes(&base, &new);
    assert_eq!(
        got,
        [
            json!({"kind": "route_changed", "route": "/v1/workspaces/{name}/{*rest}",
                   "methods": ["DELETE", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"],
                   "was": {"resource": "workspace:{name}", "role": "manager"},
                   "now": {"resource": "workspace:{name}", "role": "editor"}}),
            json!({"kind": "route_changed", "route": "/v1/mcp/search/{*rest}",
                   "was": {"resource": "mcp-server:search", "role": "viewer"}, "now": null}),
            json!({"kind": "route_changed", "route": "/status", "was": null, "now": {"public": true}}),
        ]
    );
}

#[test]
fn a_route_moved_in_front_of_a_stricter_one_shadows_it() {
    let (base, new) = pair(|d| {
        let text = std::fs::read_to_string(d.path().join("routes.yaml")).unwrap();
        let get = "  - path: /v1/workspaces/{name}/{*rest}\n    methods: [GET]\n    resource: workspace:{name}\n    role: viewer\n\n";
        let any = "  - path: /v1/workspaces/{name}/{*rest}\n    resource: workspace:{name}\n    role: manager\n\n";
        assert!(text.contains(&format!("{get}{any}")));
        d.write(
            "routes.yaml",
            &text.replace(&format!("{get}{any}"), &format!("{any}{get}")),
        );
    });
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "route_changed", "route": "/v1/workspaces/{name}/{*rest}", "methods": ["GET"],
                "was": {"resource": "workspace:{name}", "role": "viewer"},
                "now": {"resource": "workspace:{name}", "role": "manager"}})
        ]
    );
}

#[test]
fn reordering_files_and_entries_without_changing_meaning_reports_no_change() {
    let base = example_config_copy();
    let new = example_config_copy();
    let read = |name: &str| std::fs::read_to_string(new.path().join(name)).unwrap();
    // Every section in one file of another name, each list in another order (routes only
    // where no two overlap), collaborators shuffled, claim keys respelled as JSON Pointers,
    // the values of list, pattern and negation conditions reordered, and the key file
    // reformatted.
    let identities = "external_identities:\n  - name: api-deployer-prod\n    sso_fqn: dev-oidc\n    claims: {ref: refs/heads/main, /environment: prod, repository: acme/api}\n  - name: prod-cluster\n    sso_fqn: dev-oidc\n    claims:\n      /kubernetes.io/serviceaccount/name: deployer\n      /kubernetes.io/namespace: prod\n  - name: api-deployer\n    sso_fqn: dev-oidc\n    claims: {/repository: acme/api}\n  - name: ci-any\n    sso_fqn: dev-oidc\n  - name: gh-api-deploy-prod\n    sso_fqn: github-actions\n    claims:\n      actor: {not: [\"renovate[bot]\", \"dependabot[bot]\"]}\n      ref: [refs/heads/release, refs/heads/main]\n      environment: prod\n      repository_id: \"7654321\"\n      repository_owner_id: \"1234567\"\n  - name: gh-acme-ci\n    sso_fqn: github-actions\n    claims:\n      event_name: {not_like: \"pull_request*\"}\n      sub: {like: [\"repo:acme@1234567/*\", \"repo:acme/*\"]}\nteams:\n  - name: release-bots\n    members: [external-identity:prod-cluster, external-identity:api-deployer]\n";
    let resources = "resources:\n  - fqn: model:prod-ml/llama-70b\n    parent: workspace:prod-ml\n    collaborators:\n      - {subject: \"external-identity:ci-any\", role: viewer}\n  - fqn: workspace:prod-ml\n    parent: cluster:prod\n    collaborators:\n      - {subject: \"external-identity:api-deployer-prod\", role: editor}\n  - fqn: cluster:prod\n    collaborators:\n      - {subject: \"team:release-bots\", role: viewer}\n  - fqn: mcp-server:search\n    collaborators:\n      - {subject: \"external-identity:gh-acme-ci\", role: viewer}\n      - {subject: \"external-identity:api-deployer\", role: viewer}\n  - fqn: workspace:prod\n    collaborators:\n      - {subject: \"external-identity:gh-api-deploy-prod\", role: manager}\n      - {subject: \"external-identity:prod-cluster\", role: viewer}\n      - {subject: \"external-identity:api-deployer-prod\", role: manager}\n  - fqn: model:acme/llama-70b\n    collaborators:\n      - {subject: \"external-identity:api-deployer-prod\", role: manager}\n      - {subject: \"external-identity:api-deployer\", role: editor}\n      - {subject: \"external-identity:ci-any\", role: viewer}\n";
    let routes = read("routes.yaml");
    let mcp =
        "  - path: /v1/mcp/search/{*rest}\n    resource: mcp-server:search\n    role: viewer\n";
    let routes = routes
        .replace(mcp, "")
        .replace("routes:\n", &format!("routes:\n{mcp}"));
    let sso = read("sso.yaml");
    for name in [
        "identities.yaml",
        "resources.yaml",
        "routes.yaml",
        "sso.yaml",
    ] {
        std::fs::remove_file(new.path().join(name)).unwrap();
    }
    new.write(
        "all.yaml",
        &format!("{routes}\n{resources}\n{sso}\n{identities}"),
    );
    let jwks: Value = serde_json::from_str(&read("keys/dev-jwks.json")).unwrap();
    new.write(
        "keys/dev-jwks.json",
        &serde_json::to_string_pretty(&jwks).unwrap(),
    );
    let (code, out, err) = run(&[
        "diff",
        "--base",
        path(&base),
        "--config",
        path(&new),
        "--exit-code",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "no change in access, identities, SSOs or routes\n");
    assert_eq!(changes(&base, &new), Vec::<Value>::new());
}

#[test]
fn exit_code_gates_on_changes_and_text_and_markdown_summarize_them() {
    let (base, new) = pair(|d| {
        d.edit(
            "resources.yaml",
            "      - subject: external-identity:ci-any\n        role: viewer\n",
            "",
        )
    });
    let args = ["diff", "--base", path(&base), "--config", path(&new)];
    let (code, out, _) = run(&args);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "revoked   ci-any: viewer on model:acme/llama-70b\n1 change: 1 revoked\n"
    );
    let (code, _, _) = run(&[&args[..], &["--exit-code"]].concat());
    assert_eq!(code, 1);
    let (code, out, _) = run(&[&args[..], &["--format", "markdown", "--exit-code"]].concat());
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "**claimgate diff**: 1 change: 1 revoked\n\n#### Revoked\n\n| identity | resource | was |\n| --- | --- | --- |\n| `ci-any` | `model:acme/llama-70b` | viewer |\n"
    );
}

#[test]
fn an_invalid_side_is_an_error_naming_the_side_and_the_place() {
    let (base, new) = pair(|d| d.edit("resources.yaml", "role: editor", "role: owner"));
    let (code, out, err) = run(&["diff", "--base", path(&base), "--config", path(&new)]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains(&format!(
            "the new configuration ({}) is invalid",
            path(&new)
        )),
        "{err}"
    );
    assert!(
        err.contains("resources.yaml:8:15: error: role \"owner\""),
        "{err}"
    );
    let (code, _, err) = run(&["diff", "--base", path(&new), "--config", path(&base)]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "the base configuration ({}) is invalid",
            path(&new)
        )),
        "{err}"
    );
}

/// `n` identities of the dev SSO, each exclusive by repository, each a viewer of its own model.
fn large_config(n: usize, changed: impl Fn(usize) -> bool) -> ConfigDir {
    let dir = example_config_copy();
    let mut ids = String::from("external_identities:\n");
    let mut res = String::from("resources:\n");
    for i in 0..n {
        let env = if changed(i) { "staging" } else { "prod" };
        ids.push_str(&format!(
            "  - name: bot-{i}\n    sso_fqn: dev-oidc\n    claims: {{repository: acme/repo-{i}, environment: {env}}}\n"
        ));
        let role = if changed(i) { "editor" } else { "viewer" };
        res.push_str(&format!(
            "  - fqn: model:acme/m-{i}\n    collaborators:\n      - {{subject: \"external-identity:bot-{i}\", role: {role}}}\n"
        ));
    }
    dir.write("bots.yaml", &format!("{ids}{res}"));
    dir
}

#[test]
fn a_diff_between_two_configurations_of_ten_thousand_identities_completes() {
    let base = large_config(10_000, |_| false);
    let new = large_config(10_000, |i| i % 100 == 0);
    let got = changes(&base, &new);
    let kinds = |k: &str| got.iter().filter(|c| c["kind"] == k).count();
    assert_eq!(kinds("role_changed"), 100);
    assert_eq!(kinds("claims_changed"), 100);
    assert_eq!(got.len(), 200, "{:?}", &got[..3]);
}

#[test]
fn the_base_can_be_a_git_revision_of_the_repository_holding_the_new_config() {
    let repo = ConfigDir::new();
    let example = example_config_copy();
    let config = repo.path().join("deploy/config");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::rename(example.path(), &config).unwrap();
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "example"]);
    let resources = config.join("resources.yaml");
    let text = std::fs::read_to_string(&resources).unwrap();
    std::fs::write(&resources, text.replacen("role: viewer", "role: editor", 1)).unwrap();
    let config_arg = config.to_str().unwrap();
    let (code, out, err) = run(&["diff", "--base", "git:HEAD", "--config", config_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "changed   ci-any: viewer → editor on model:acme/llama-70b\n1 change: 1 role changed\n"
    );
    // Committed, the change is in HEAD: against HEAD nothing differs, against HEAD~1 it does.
    git(repo.path(), &["commit", "-q", "-am", "ci-any edits"]);
    let (code, out, _) = run(&[
        "diff",
        "--base",
        "git:HEAD",
        "--config",
        config_arg,
        "--exit-code",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, _, _) = run(&[
        "diff",
        "--base",
        "git:HEAD~1",
        "--config",
        config_arg,
        "--exit-code",
    ]);
    assert_eq!(code, 1);
    let (code, _, err) = run(&[
        "diff",
        "--base",
        "git:no-such-branch",
        "--config",
        config_arg,
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("git:no-such-branch is not a revision of the repository"),
        "{err}"
    );
    // A directory that did not exist at the revision.
    let later = repo.path().join("later");
    std::fs::rename(&config, &later).unwrap();
    let (code, _, err) = run(&[
        "diff",
        "--base",
        "git:HEAD",
        "--config",
        later.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the configuration directory later does not exist at git:HEAD"),
        "{err}"
    );
}

#[test]
fn a_git_base_outside_a_git_repository_is_a_clear_error() {
    let dir = example_config_copy();
    let (code, _, err) = run(&["diff", "--base", "git:HEAD", "--config", path(&dir)]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{} is not inside a git repository", path(&dir))),
        "{err}"
    );
}

#[test]
fn a_route_that_starts_folding_case_changes_the_requests_spelled_in_another_case() {
    let (base, new) = pair(|d| {
        d.edit(
            "routes.yaml",
            "  - path: /v1/mcp/search/{*rest}\n",
            "  - path: /v1/mcp/search/{*rest}\n    case_insensitive: true\n",
        )
    });
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "route_changed", "route": "/v1/mcp/search/{*rest}", "was": null,
                "now": {"resource": "mcp-server:search", "role": "viewer"}})
        ]
    );
}

#[test]
fn conditions_beyond_equality_are_shown_as_written_old_and_new() {
    let (base, new) = pair(|d| {
        d.edit(
            "identities.yaml",
            "event_name: {not_like: \"pull_request*\"}",
            "event_name: {not_like: [\"pull_request*\", workflow_dispatch]}",
        )
    });
    assert_eq!(
        changes(&base, &new),
        [json!({"kind": "claims_changed", "identity": "gh-acme-ci",
                "added": {"event_name": {"not_like": ["pull_request*", "workflow_dispatch"]}},
                "removed": {"event_name": {"not_like": "pull_request*"}}})]
    );
    let (_, out, _) = run(&["diff", "--base", path(&base), "--config", path(&new)]);
    assert!(
        out.starts_with("claims    gh-acme-ci: event_name: {\"not_like\":\"pull_request*\"} → {\"not_like\":[\"pull_request*\",\"workflow_dispatch\"]}\n"),
        "{out}"
    );
}

#[test]
fn a_resource_put_in_dry_run_and_back_is_an_enforcement_change() {
    let (base, new) = pair(|d| {
        d.edit(
            "resources.yaml",
            "  - fqn: workspace:prod\n",
            "  - fqn: workspace:prod\n    enforcement: dry_run\n",
        )
    });
    let dry = json!({"kind": "enforcement_changed", "resource": "workspace:prod", "was": "enforce", "now": "dry_run"});
    assert_eq!(changes(&base, &new), vec![dry]);
    let back = json!({"kind": "enforcement_changed", "resource": "workspace:prod", "was": "dry_run", "now": "enforce"});
    assert_eq!(changes(&new, &base), vec![back]);
    let (code, out, _) = run(&[
        "diff",
        "--base",
        path(&base),
        "--config",
        path(&new),
        "--format",
        "markdown",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("1 enforcement changed"), "{out}");
    assert!(
        out.contains("| `workspace:prod` | enforce | dry_run |"),
        "{out}"
    );
}

const RELEASE_BOTS: &str = "      - external-identity:prod-cluster\n";

#[test]
fn a_member_added_to_a_team_bound_on_a_cluster_lists_every_pair_it_changes() {
    let (base, new) = pair(|d| {
        d.edit(
            "identities.yaml",
            RELEASE_BOTS,
            &format!("{RELEASE_BOTS}      - external-identity:gh-acme-ci\n"),
        )
    });
    // release-bots is a viewer of cluster:prod, so of the workspace and the model in it.
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "role_granted", "identity": "gh-acme-ci", "resource": "cluster:prod", "role": "viewer"}),
            json!({"kind": "role_granted", "identity": "gh-acme-ci", "resource": "model:prod-ml/llama-70b", "role": "viewer"}),
            json!({"kind": "role_granted", "identity": "gh-acme-ci", "resource": "workspace:prod-ml", "role": "viewer"}),
            json!({"kind": "team_changed", "team": "release-bots", "added": ["gh-acme-ci"], "removed": []}),
        ]
    );
    let (code, text, err) = run(&["diff", "--base", path(&base), "--config", path(&new)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("\ngranted   gh-acme-ci: viewer on workspace:prod-ml\n"),
        "{text}"
    );
    assert!(
        text.contains("\nteam      release-bots: + gh-acme-ci\n"),
        "{text}"
    );
    assert!(
        text.ends_with("4 changes: 3 granted, 1 team changed\n"),
        "{text}"
    );
    let (_, md, _) = run(&[
        "diff",
        "--base",
        path(&base),
        "--config",
        path(&new),
        "--format",
        "markdown",
    ]);
    assert!(
        md.contains("#### Teams\n\n| team | members added | members removed |\n| --- | --- | --- |\n| `release-bots` | `gh-acme-ci` |  |\n"),
        "{md}"
    );
}

#[test]
fn a_member_removed_from_a_team_revokes_what_only_the_team_gave() {
    let (base, new) = pair(|d| d.edit("identities.yaml", RELEASE_BOTS, ""));
    // prod-cluster keeps its own viewer binding on workspace:prod.
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "role_revoked", "identity": "prod-cluster", "resource": "cluster:prod", "was": "viewer"}),
            json!({"kind": "role_revoked", "identity": "prod-cluster", "resource": "model:prod-ml/llama-70b", "was": "viewer"}),
            json!({"kind": "role_revoked", "identity": "prod-cluster", "resource": "workspace:prod-ml", "was": "viewer"}),
            json!({"kind": "team_changed", "team": "release-bots", "added": [], "removed": ["prod-cluster"]}),
        ]
    );
}

#[test]
fn a_resource_moved_out_of_its_parent_is_a_parent_change_with_the_inherited_roles_it_loses() {
    let (base, new) = pair(|d| {
        d.edit(
            "resources.yaml",
            "  - fqn: workspace:prod-ml\n    parent: cluster:prod\n",
            "  - fqn: workspace:prod-ml\n",
        )
    });
    assert_eq!(
        changes(&base, &new),
        [
            json!({"kind": "role_revoked", "identity": "api-deployer", "resource": "model:prod-ml/llama-70b", "was": "viewer"}),
            json!({"kind": "role_revoked", "identity": "api-deployer", "resource": "workspace:prod-ml", "was": "viewer"}),
            json!({"kind": "role_revoked", "identity": "prod-cluster", "resource": "model:prod-ml/llama-70b", "was": "viewer"}),
            json!({"kind": "role_revoked", "identity": "prod-cluster", "resource": "workspace:prod-ml", "was": "viewer"}),
            json!({"kind": "parent_changed", "resource": "workspace:prod-ml", "was": "cluster:prod", "now": null}),
        ]
    );
    let (code, out, err) = run(&[
        "diff",
        "--base",
        path(&base),
        "--config",
        path(&new),
        "--format",
        "markdown",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("#### Parents\n\n| resource | parent was | parent now |\n| --- | --- | --- |\n| `workspace:prod-ml` | cluster:prod | (none) |\n"),
        "{out}"
    );
    let (_, text, _) = run(&["diff", "--base", path(&base), "--config", path(&new)]);
    assert!(
        text.contains("\nparent    workspace:prod-ml: cluster:prod → (none)\n"),
        "{text}"
    );
}
