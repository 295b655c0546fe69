//! `claimgate test`: decision tests, the decisions a team relies on written down and checked
//! in CI.
//!
//! Each case names a token (a literal one, or an SSO and claims), a request and the expected
//! answer. The answer is [`pipeline::decide`], the function every check of the server runs, on
//! the snapshot the configuration compiles to. The one difference from the server: each SSO
//! a case names trusts a key generated for this run (see `signer`), so described tokens are
//! really signed and really verified. A failed case carries what `claimgate explain` finds
//! for it, so the fix is in the output.
//!
//! - `cases.rs`: the test file schema and its located errors.
//! - `signer.rs`: the throwaway keys.
//! - `render.rs`: text and JSON output.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::core::config::{Config, Diagnostic};
use crate::core::decision::{self, Allow, Credentials, Decision, Reason};
use crate::core::identity::ClaimOutcome;
use crate::core::pipeline;
use crate::core::role::Role;
use crate::core::snapshot::Snapshot;
use crate::tools::explain::{self, CandidateVerdict, ClaimCheck, Report};

mod cases;
mod render;
mod signer;

pub use cases::RequestSpec;
pub use render::Format;
pub use signer::KeyError;

/// The token of a test case.
#[derive(Debug, Clone)]
pub enum TokenInput {
    /// No `Authorization` header.
    None,
    /// A token given as is (or a whole `Authorization` value).
    Literal(String),
    /// A token of `sso` with these claims, signed for the run.
    Described {
        /// The SSO whose test key signs it.
        sso: String,
        /// Claims over the defaults (`iss`, `aud`, `sub`, `iat`, `exp`).
        claims: Map<String, Value>,
    },
}

/// The expected answer of a test case.
#[derive(Debug, Clone, Serialize)]
pub struct Expect {
    /// Whether the request is allowed.
    pub allow: bool,
    /// The identity it is allowed as, if checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The role the identity holds, if checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The resource, if checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The reason of the denial, if checked.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "reason_code"
    )]
    pub reason: Option<Reason>,
}

fn reason_code<S: serde::Serializer>(r: &Option<Reason>, s: S) -> Result<S::Ok, S::Error> {
    r.map(Reason::code).serialize(s)
}

/// One test case, as read from its file.
#[derive(Debug, Clone)]
pub struct Case {
    /// The test file, as named on the command line.
    pub file: String,
    /// Line of its name.
    pub line: usize,
    /// Column of its name.
    pub col: usize,
    /// Its name.
    pub name: String,
    /// The token.
    pub token: TokenInput,
    /// The request.
    pub request: RequestSpec,
    /// The expected answer.
    pub expect: Expect,
}

/// The answer a case got.
#[derive(Debug, Clone, Serialize)]
pub struct Actual {
    /// Whether the request was allowed.
    pub allow: bool,
    /// Whether it was allowed by a public route.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
    /// The identity, when allowed as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Its role on the resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The reason code, when denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// How one case went.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The case's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// Line of its name.
    pub line: usize,
    /// Column of its name.
    pub col: usize,
    /// Whether the answer was the expected one.
    pub passed: bool,
    /// What was expected.
    pub expected: Expect,
    /// What the decision was.
    pub actual: Actual,
    /// Each way the answer differed.
    pub differences: Vec<String>,
    /// What `explain` says about the decision, for a failed case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Every case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The outcomes, in file and case order.
    pub tests: Vec<Outcome>,
    /// How many passed.
    pub passed: usize,
    /// How many failed.
    pub failed: usize,
}

/// Why tests could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A test file is unreadable or invalid.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Files(Vec<Diagnostic>),
    /// A throwaway key could not be made.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Read every test file (a directory stands for its `*.yaml`/`*.yml` files), checking the
/// cases against the snapshot they will run on.
pub fn read(paths: &[PathBuf], snap: &Snapshot) -> Result<Vec<Case>, SuiteError> {
    let files = cases::expand(paths).map_err(|d| SuiteError::Files(vec![d]))?;
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match cases::read(&file, snap) {
            Ok(cases) => all.extend(cases),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(SuiteError::Files(errors))
    }
}

/// Run `cases` against `snap` at time `now`. The SSOs the cases name trust a key made for
/// this run (in `snap` only, which a test run must not share with a server).
pub fn run(
    snap: &Snapshot,
    config: Option<&Config>,
    cases: &[Case],
    now: u64,
) -> Result<Results, SuiteError> {
    let ssos: Vec<usize> = cases
        .iter()
        .filter_map(|c| match &c.token {
            TokenInput::Described { sso, .. } => snap.ssos.iter().position(|s| *s.name == **sso),
            _ => None,
        })
        .collect();
    let signer = signer::Signer::trust(snap, &ssos)?;
    let mut tests = Vec::with_capacity(cases.len());
    for case in cases {
        tests.push(run_case(snap, config, &signer, case, now));
    }
    let passed = tests.iter().filter(|t| t.passed).count();
    Ok(Results {
        failed: tests.len() - passed,
        passed,
        tests,
    })
}

fn run_case(
    snap: &Snapshot,
    config: Option<&Config>,
    signer: &signer::Signer,
    case: &Case,
    now: u64,
) -> Outcome {
    let token = match &case.token {
        TokenInput::None => Ok(String::new()),
        TokenInput::Literal(t) => Ok(t.clone()),
        TokenInput::Described { sso, claims } => {
            match snap.ssos.iter().position(|s| *s.name == **sso) {
                Some(i) => signer.sign(snap, i, claims, now),
                None => Err(format!("SSO {sso} is not defined")),
            }
        }
    };
    let token = match token {
        Ok(t) => t,
        Err(why) => return unsigned(case, why),
    };
    let r = &case.request;
    let input = explain::Input {
        token: &token,
        method: r.method.as_deref().unwrap_or("GET"),
        path: r.path.as_deref().unwrap_or("/"),
        host: r.host.as_deref().unwrap_or(""),
        resource: r.resource.as_deref(),
        role: r.role.as_deref(),
        parent: r.parent.as_deref(),
    };
    let auth = explain::authorization(&token);
    let req = decision::Request {
        method: input.method,
        path: input.path,
        host: input.host,
        credentials: auth
            .as_deref()
            .map_or(Credentials::Missing, Credentials::from_header),
        ext_resource: input.resource,
        ext_role: input.role,
        ext_enforcement: None,
        ext_parent: input.parent,
    };
    let decision = pipeline::decide(snap, &req, now);
    let actual = actual(&decision);
    let differences = compare(&case.expect, &actual);
    let hint = (!differences.is_empty()).then(|| {
        let report = explain::explain(snap, config, &input, now, None);
        hint(&case.expect, &report)
    });
    Outcome {
        name: case.name.clone(),
        file: case.file.clone(),
        line: case.line,
        col: case.col,
        passed: differences.is_empty(),
        expected: case.expect.clone(),
        actual,
        differences,
        hint,
    }
}

/// A case whose token could not be signed: failed, saying why.
fn unsigned(case: &Case, why: String) -> Outcome {
    Outcome {
        name: case.name.clone(),
        file: case.file.clone(),
        line: case.line,
        col: case.col,
        passed: false,
        expected: case.expect.clone(),
        actual: Actual {
            allow: false,
            public: false,
            identity: None,
            role: None,
            resource: None,
            reason: None,
        },
        differences: vec![format!("the token could not be signed: {why}")],
        hint: None,
    }
}

fn actual(decision: &Decision) -> Actual {
    let mut a = Actual {
        allow: matches!(decision, Decision::Allow(_)),
        public: false,
        identity: None,
        role: None,
        resource: None,
        reason: None,
    };
    match decision {
        Decision::Allow(Allow::Public { .. }) => a.public = true,
        Decision::Allow(Allow::Identity(g)) => {
            a.identity = Some(g.identity.to_string());
            a.role = Some(g.role);
            a.resource = Some(g.resource.to_string());
        }
        // A test checks what enforcing decides: dry run only changes what the server does
        // with a denial (and `pipeline::decide` never waives one).
        Decision::Allow(Allow::DryRun(d)) => {
            a.allow = false;
            a.reason = Some(d.reason.code());
        }
        Decision::Deny(d) => a.reason = Some(d.reason.code()),
    }
    a
}

/// Each way `actual` differs from `expect`.
fn compare(expect: &Expect, actual: &Actual) -> Vec<String> {
    let mut out = Vec::new();
    if expect.allow != actual.allow {
        out.push(format!(
            "expected {}, got {}",
            if expect.allow { "allow" } else { "deny" },
            describe(actual)
        ));
        return out;
    }
    if let Some(want) = expect.reason {
        if actual.reason != Some(want.code()) {
            out.push(format!(
                "expected reason {}, got {}",
                want.code(),
                actual.reason.unwrap_or("none")
            ));
        }
    }
    let mut field = |name: &str, want: Option<&str>, got: Option<&str>| {
        if let Some(want) = want {
            if got != Some(want) {
                let got = match got {
                    Some(g) => g.to_owned(),
                    None if actual.public => "none (a public route)".to_owned(),
                    None => "none".to_owned(),
                };
                out.push(format!("expected {name} {want}, got {got}"));
            }
        }
    };
    field(
        "identity",
        expect.identity.as_deref(),
        actual.identity.as_deref(),
    );
    field(
        "role",
        expect.role.map(Role::as_str),
        actual.role.map(Role::as_str),
    );
    field(
        "resource",
        expect.resource.as_deref(),
        actual.resource.as_deref(),
    );
    out
}

/// The answer in a few words: `deny (insufficient_role)`, `allow (identity a, role editor)`.
fn describe(a: &Actual) -> String {
    if !a.allow {
        return format!("deny ({})", a.reason.unwrap_or("no reason"));
    }
    if a.public {
        return "allow (a public route)".into();
    }
    let mut parts = Vec::new();
    if let Some(i) = &a.identity {
        parts.push(format!("identity {i}"));
    }
    if let Some(r) = a.role {
        parts.push(format!("role {}", r.as_str()));
    }
    if let Some(r) = &a.resource {
        parts.push(format!("resource {r}"));
    }
    format!("allow ({})", parts.join(", "))
}

/// What `explain` says that bears on the difference: why the expected identity was not
/// chosen, or the verdict and the step that decided it.
fn hint(expect: &Expect, report: &Report) -> String {
    let mut parts = Vec::new();
    if let (Some(want), Some(sel)) = (&expect.identity, &report.identity) {
        if sel.chosen.as_deref() != Some(want.as_str()) {
            match sel.candidates.iter().find(|c| c.name == *want) {
                Some(c) => {
                    let failed: Vec<String> = c
                        .claims
                        .iter()
                        .filter(|k| k.outcome != ClaimOutcome::Matched)
                        .map(claim_text)
                        .collect();
                    let state = match (c.verdict, failed.is_empty()) {
                        (CandidateVerdict::NotReached, true) => {
                            "matches, but selection had ended before it".to_owned()
                        }
                        (_, true) => "matches".to_owned(),
                        (_, false) => failed.join("; "),
                    };
                    parts.push(format!("{want}: {state}"));
                }
                None => parts.push(format!(
                    "{want} is not an identity of SSO {} (its sso_fqn names another SSO)",
                    sel.sso
                )),
            }
            parts.push(sel.why.clone());
        }
    }
    let v = &report.verdict;
    let mut verdict = if v.allowed {
        format!("allowed: {}", v.detail)
    } else {
        format!("{}: {}", v.reason, v.detail)
    };
    if let Some(step) = v.failed_step {
        verdict.push_str(&format!(" [failed step: {}]", step.name()));
    }
    parts.push(verdict);
    parts.join("; ")
}

/// A claim that kept an identity out, in the condition's own words.
fn claim_text(c: &ClaimCheck) -> String {
    c.text.clone()
}

#[cfg(test)]
mod tests;
