//! The tenant guard: an identity of an SSO whose issuer is shared by every customer of a
//! hosting service (GitHub Actions, gitlab.com, Terraform Cloud, Google) must pin the tenant
//! with a condition, or any account on that service could obtain it. Audience checks do not
//! help: anyone can ask these issuers for a token with any audience.

use crate::core::identity::{ClaimMatcher, ClaimValue, Condition, Pattern};

/// How a claim's condition can pin the tenant.
#[derive(Debug, Clone, Copy)]
enum Pin {
    /// An exact value (or a `like` without wildcards): the claim is the tenant's own id/name.
    Exact,
    /// An exact value, or a `like` whose text before its first wildcard holds `OWNER/`.
    Path,
    /// A value, or a `like` whose text before its first wildcard, starts with this prefix
    /// followed by `OWNER` and the separator.
    Prefixed(&'static str, char),
}

/// A hosting service whose issuer every customer shares.
struct Service {
    issuer: &'static str,
    name: &'static str,
    claims: &'static [(&'static str, Pin)],
    /// How the message names the claims that pin.
    advice: &'static str,
}

const SERVICES: [Service; 4] = [
    Service {
        issuer: "https://token.actions.githubusercontent.com",
        name: "GitHub Actions",
        claims: &[
            ("repository_owner", Pin::Exact),
            ("repository_owner_id", Pin::Exact),
            ("repository", Pin::Path),
            ("repository_id", Pin::Exact),
            ("enterprise", Pin::Exact),
            ("enterprise_id", Pin::Exact),
            ("job_workflow_ref", Pin::Path),
            ("sub", Pin::Prefixed("repo:", '/')),
        ],
        advice: "an exact repository_owner, repository_owner_id, repository, repository_id, enterprise, enterprise_id, job_workflow_ref or sub, or a like pattern with the owner written before its first wildcard (repository: {like: \"OWNER/*\"}, sub: {like: \"repo:OWNER/*\"} or \"repo:OWNER@ID/*\")",
    },
    Service {
        issuer: "https://gitlab.com",
        name: "gitlab.com",
        claims: &[
            ("namespace_path", Pin::Path),
            ("namespace_id", Pin::Exact),
            ("project_path", Pin::Path),
            ("project_id", Pin::Exact),
            ("sub", Pin::Prefixed("project_path:", '/')),
        ],
        advice: "an exact namespace_path, namespace_id, project_path, project_id or sub, or a like pattern with the group written before its first wildcard (project_path: {like: \"GROUP/*\"}, sub: {like: \"project_path:GROUP/*\"})",
    },
    Service {
        issuer: "https://app.terraform.io",
        name: "Terraform Cloud",
        claims: &[
            ("terraform_organization_name", Pin::Exact),
            ("terraform_organization_id", Pin::Exact),
            ("sub", Pin::Prefixed("organization:", ':')),
        ],
        advice: "an exact terraform_organization_name or terraform_organization_id, or sub: {like: \"organization:ORG:*\"}",
    },
    Service {
        issuer: "https://accounts.google.com",
        name: "Google",
        claims: &[("hd", Pin::Exact), ("email", Pin::Exact)],
        advice: "an exact hd (the Workspace domain) or email",
    },
];

/// The hosting service whose shared issuer `issuer` is (by name), or `None`.
pub fn hosting_service(issuer: &str) -> Option<&'static str> {
    let issuer = issuer.trim_end_matches('/').to_ascii_lowercase();
    SERVICES.iter().find(|s| s.issuer == issuer).map(|s| s.name)
}

/// Why an identity of an SSO with `issuer` does not pin its tenant, or `None` when the issuer
/// is not a shared one or a condition pins it.
pub fn unpinned(
    identity: &str,
    sso: &str,
    issuer: &str,
    claims: &[ClaimMatcher],
) -> Option<String> {
    let issuer = issuer.trim_end_matches('/').to_ascii_lowercase();
    let service = SERVICES.iter().find(|s| s.issuer == issuer)?;
    let pinned = claims.iter().any(|c| {
        let name = c.path.pointer();
        service
            .claims
            .iter()
            .any(|(claim, pin)| name.strip_prefix('/') == Some(claim) && pins(&c.condition, *pin))
    });
    if pinned {
        return None;
    }
    Some(format!(
        "external identity {identity:?} of SSO {sso} does not pin the tenant: {issuer} issues tokens to every {} account, so any of them could obtain it; add {}",
        service.name, service.advice
    ))
}

/// Whether every token that meets `condition` belongs to one tenant (or a listed few).
fn pins(condition: &Condition, pin: Pin) -> bool {
    match condition {
        Condition::Equals(values) => values.iter().all(|v| value_pins(v, pin)),
        Condition::Like(patterns) => patterns.iter().all(|p| pattern_pins(p, pin)),
        // A negation or presence holds for accounts of every tenant.
        Condition::Not(_) | Condition::NotLike(_) | Condition::Present(_) => false,
    }
}

fn value_pins(value: &ClaimValue, pin: Pin) -> bool {
    match (value, pin) {
        (ClaimValue::Str(s), Pin::Prefixed(prefix, sep)) => owner_before(s, prefix, sep),
        (ClaimValue::Str(s), _) => !s.is_empty(),
        (_, Pin::Prefixed(..)) => false,
        _ => true,
    }
}

fn pattern_pins(pattern: &Pattern, pin: Pin) -> bool {
    let (literal, wild) = pattern.literal_prefix();
    match pin {
        Pin::Exact => !wild && !literal.is_empty(),
        Pin::Path => (!wild && !literal.is_empty()) || owner_before(&literal, "", '/'),
        Pin::Prefixed(prefix, sep) => owner_before(&literal, prefix, sep),
    }
}

/// Whether `text` starts with `prefix`, then a non-empty owner, then `sep`: the owner is
/// written out in full, so `acme*` (which also matches `acme-evil`) does not count.
fn owner_before(text: &str, prefix: &str, sep: char) -> bool {
    text.strip_prefix(prefix)
        .and_then(|rest| rest.split_once(sep))
        .is_some_and(|(owner, _)| !owner.is_empty() && !owner.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snapshot::claims::condition;

    fn check(issuer: &str, claims: &[(&str, &str)]) -> Option<String> {
        let claims: Vec<ClaimMatcher> = claims
            .iter()
            .map(|(k, v)| {
                let v: serde_yaml::Value = serde_yaml::from_str(v).expect("yaml");
                condition(k, &v).expect("valid condition")
            })
            .collect();
        unpinned("ci", "gh", issuer, &claims)
    }

    const GITHUB: &str = "https://token.actions.githubusercontent.com";

    #[test]
    fn github_identities_must_pin_the_owner() {
        let pinned = [
            ("repository_owner", "acme"),
            ("repository_owner_id", "'123456'"),
            ("repository_owner_id", "123456"),
            ("repository", "acme/api"),
            ("repository", "{like: 'acme/*'}"),
            ("repository_id", "'98765'"),
            ("enterprise", "acme-corp"),
            ("enterprise_id", "'42'"),
            (
                "job_workflow_ref",
                "{like: 'acme/workflows/.github/workflows/*'}",
            ),
            ("sub", "{like: 'repo:acme/*'}"),
            ("sub", "{like: 'repo:acme@123456/*'}"),
            ("sub", "'repo:acme/api:ref:refs/heads/main'"),
            ("repository", "[acme/api, acme/web]"),
            ("/repository_owner", "acme"),
        ];
        for (k, v) in pinned {
            assert_eq!(check(GITHUB, &[(k, v)]), None, "{k}: {v}");
        }
        let open = [
            ("sub", "{like: 'repo:*'}"),
            ("sub", "{like: 'repo:acme*'}"),
            ("sub", "{like: '*'}"),
            ("sub", "'anything'"),
            ("repository", "{like: 'acme*'}"),
            ("repository_owner", "{like: 'acme*'}"),
            ("repository_owner", "{not: evil}"),
            ("repository_owner", "{present: true}"),
            ("environment", "prod"),
            ("actor", "alice"),
        ];
        for (k, v) in open {
            let e = check(GITHUB, &[(k, v)]).unwrap_or_else(|| panic!("{k}: {v} pinned"));
            assert!(e.contains("repository_owner, repository_owner_id"), "{e}");
        }
        assert!(check(GITHUB, &[]).is_some());
        assert!(check(&format!("{GITHUB}/"), &[("environment", "prod")]).is_some());
        let like_list = check(GITHUB, &[("repository", "{like: ['acme/*', '*']}")]);
        assert!(like_list.is_some(), "every pattern of a list must pin");
    }

    #[test]
    fn gitlab_terraform_and_google_identities_must_pin_their_tenant() {
        let cases = [
            ("https://gitlab.com", "namespace_path", "acme", true),
            (
                "https://gitlab.com",
                "namespace_path",
                "{like: 'acme/*'}",
                true,
            ),
            ("https://gitlab.com", "project_path", "acme/api", true),
            ("https://gitlab.com", "project_id", "'42'", true),
            ("https://gitlab.com", "namespace_id", "'7'", true),
            (
                "https://gitlab.com",
                "sub",
                "{like: 'project_path:acme/*'}",
                true,
            ),
            (
                "https://gitlab.com",
                "sub",
                "{like: 'project_path:acme*'}",
                false,
            ),
            ("https://gitlab.com", "ref", "main", false),
            (
                "https://app.terraform.io",
                "terraform_organization_name",
                "acme",
                true,
            ),
            (
                "https://app.terraform.io",
                "sub",
                "{like: 'organization:acme:*'}",
                true,
            ),
            (
                "https://app.terraform.io",
                "sub",
                "{like: 'organization:*'}",
                false,
            ),
            (
                "https://app.terraform.io",
                "terraform_workspace_name",
                "prod",
                false,
            ),
            ("https://accounts.google.com", "hd", "acme.com", true),
            ("https://accounts.google.com", "email", "ci@acme.com", true),
            (
                "https://accounts.google.com",
                "email",
                "{like: '*@acme.com'}",
                false,
            ),
            (
                "https://accounts.google.com",
                "email_verified",
                "true",
                false,
            ),
            ("https://idp.acme.com", "anything", "{present: true}", true),
        ];
        for (issuer, k, v, pins) in cases {
            let found = check(issuer, &[(k, v)]);
            assert_eq!(found.is_none(), pins, "{issuer} {k}: {v}: {found:?}");
        }
        let e = check("https://gitlab.com", &[]).expect("unpinned");
        assert!(
            e.contains("namespace_path") && e.contains("project_path"),
            "{e}"
        );
        let e = check("https://app.terraform.io", &[]).expect("unpinned");
        assert!(e.contains("terraform_organization_name"), "{e}");
        let e = check("https://accounts.google.com", &[]).expect("unpinned");
        assert!(e.contains("hd") && e.contains("email"), "{e}");
    }
}
