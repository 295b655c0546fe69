//! The report's schema: what `claimgate explain --json` prints, and the text renders.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::KeyLoad;
use crate::core::decision::{Credentials, Reason};
use crate::core::identity::ClaimOutcome;
use crate::core::role::Role;
use crate::core::routing::RouteMiss;
use crate::core::token::TokenStepKind;
use crate::tools::grant::Via;

/// The whole explanation of one decision.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The request as decided.
    pub request: RequestInfo,
    /// How the resource and role were found.
    pub target: TargetInfo,
    /// Token verification, step by step.
    pub token: TokenInfo,
    /// Identity selection, when the token was verified.
    pub identity: Option<SelectionInfo>,
    /// The binding looked up, when an identity was chosen and a resource named.
    pub binding: Option<BindingInfo>,
    /// The answer the server gives.
    pub verdict: Verdict,
}

/// The request as decided.
#[derive(Debug, Clone, Serialize)]
pub struct RequestInfo {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Host.
    pub host: String,
    /// What the `Authorization` header held.
    pub credentials: CredentialsKind,
    /// `context_extensions.resource`, if given.
    pub resource: Option<String>,
    /// `context_extensions.role`, if given.
    pub role: Option<String>,
    /// `context_extensions.parent`, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// What the `Authorization` header held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsKind {
    /// No header.
    Missing,
    /// A value that is not a bearer token.
    NotBearer,
    /// More than one value.
    Multiple,
    /// One bearer token.
    Bearer,
}

impl From<Credentials<'_>> for CredentialsKind {
    fn from(c: Credentials<'_>) -> Self {
        match c {
            Credentials::Missing => CredentialsKind::Missing,
            Credentials::NotBearer => CredentialsKind::NotBearer,
            Credentials::Multiple => CredentialsKind::Multiple,
            Credentials::Bearer(_) => CredentialsKind::Bearer,
        }
    }
}

/// A route, as written.
#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    /// Its index in the route list (as in `routes[N]`).
    pub index: usize,
    /// Where it is defined.
    pub location: Option<String>,
    /// Its `path` template or `path_prefix`.
    pub path: String,
    /// Whether `path` is a prefix.
    pub prefix: bool,
    /// Its methods; `None` for any.
    pub methods: Option<Vec<String>>,
    /// Its host, if limited to one.
    pub host: Option<String>,
    /// Whether its path is matched in any letter case (`case_insensitive: true`).
    pub case_insensitive: bool,
}

/// A route tried before the one that matched, and the condition it failed.
#[derive(Debug, Clone, Serialize)]
pub struct RouteTried {
    /// The route.
    #[serde(flatten)]
    pub route: RouteInfo,
    /// The condition it failed.
    pub miss: RouteMiss,
}

/// Where the resource and role came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetBy {
    /// Envoy named them in `context_extensions`; routes were not consulted.
    ContextExtensions,
    /// A route matched.
    Route,
    /// Nothing gave them.
    None,
}

/// How the resource and role were found.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    /// Where they came from.
    pub by: TargetBy,
    /// Whether the path is normalized (an unnormalized path matches no route).
    pub normalized: bool,
    /// Routes tried before the match (or all of them when none matched).
    pub tried: Vec<RouteTried>,
    /// The route that matched.
    pub route: Option<RouteInfo>,
    /// Variables the matched route captured, in template order.
    pub captures: Vec<Capture>,
    /// Whether the matched route is public.
    pub public: bool,
    /// The resource the request targets.
    pub resource: Option<String>,
    /// The role it requires.
    pub role: Option<Role>,
    /// Why no usable target was found, if so.
    pub problem: Option<String>,
}

/// One variable a route captured from the path.
#[derive(Debug, Clone, Serialize)]
pub struct Capture {
    /// The variable's name.
    pub name: String,
    /// The path text it captured.
    pub value: String,
}

/// The outcome of one verification step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It passed.
    Ok,
    /// It failed; verification stopped here.
    Failed,
    /// An earlier step failed.
    NotReached,
}

/// One verification step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Which step.
    pub step: TokenStepKind,
    /// How it went.
    pub outcome: StepOutcome,
    /// What it looked at, or why it failed.
    pub detail: String,
    /// The reason code, when it failed.
    #[serde(serialize_with = "reason_code")]
    pub reason: Option<Reason>,
    /// The values it looked at.
    pub facts: Map<String, Value>,
}

/// A reason as its code.
fn reason_code<S: Serializer>(reason: &Option<Reason>, s: S) -> Result<S::Ok, S::Error> {
    reason.map(Reason::code).serialize(s)
}

/// A configured issuer close to a token's unknown one.
#[derive(Debug, Clone, Serialize)]
pub struct IssuerHint {
    /// The SSO.
    pub sso: String,
    /// Its issuer.
    pub issuer: String,
    /// How it differs, or why it does not count.
    pub why: String,
}

/// Token verification, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Whether verification ran (not for public routes or requests without a bearer token).
    pub checked: bool,
    /// The decoded header.
    pub header: Option<Value>,
    /// The decoded payload.
    pub claims: Option<Value>,
    /// The `iss` claim.
    pub issuer: Option<String>,
    /// The SSO with exactly that issuer.
    pub sso: Option<String>,
    /// The one-shot fetch of remote keys, if the SSO's keys are remote.
    pub keys: Option<KeyLoad>,
    /// The steps, in order; after a failure the rest are `not_reached`.
    pub steps: Vec<Step>,
    /// When the issuer is unknown: configured issuers that come close.
    pub issuer_hints: Vec<IssuerHint>,
}

/// One claim of a candidate identity against the token.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimCheck {
    /// The claim key as configured (`/…` is a JSON Pointer).
    pub key: String,
    /// The configured condition: a value, a list, or `{like|not|not_like|present: …}`.
    pub expected: Value,
    /// The token's value, if it has the claim.
    pub actual: Option<Value>,
    /// How it fared.
    pub outcome: ClaimOutcome,
    /// The outcome in the condition's own words (`sub like "repo:acme/*" matched "…"`).
    pub text: String,
}

/// How selection judged one identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateVerdict {
    /// All its claims hold.
    Matched,
    /// A claim does not hold.
    Unmatched,
    /// Selection had ended before it.
    NotReached,
}

/// One identity of the SSO and how it fared.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The identity.
    pub name: String,
    /// Where it is defined.
    pub location: Option<String>,
    /// How many claims it has.
    pub claim_count: usize,
    /// How selection judged it.
    pub verdict: CandidateVerdict,
    /// For [`CandidateVerdict::NotReached`]: whether all its claims hold.
    pub would_match: Option<bool>,
    /// Every claim, checked.
    pub claims: Vec<ClaimCheck>,
}

/// How identity selection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionOutcome {
    /// One identity was chosen.
    Chosen,
    /// No identity matches.
    NoIdentity,
    /// Two identities match with equally many claims.
    Ambiguous,
}

/// Identity selection.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionInfo {
    /// The SSO that verified the token.
    pub sso: String,
    /// Its identities, most claims first, as selection walked them.
    pub candidates: Vec<Candidate>,
    /// How selection ended.
    pub outcome: SelectionOutcome,
    /// The chosen identity.
    pub chosen: Option<String>,
    /// Why.
    pub why: String,
}

/// The binding looked up for the chosen identity.
#[derive(Debug, Clone, Serialize)]
pub struct BindingInfo {
    /// The resource.
    pub resource: String,
    /// Whether `resources` defines it.
    pub defined: bool,
    /// The identity.
    pub identity: String,
    /// Its role on the resource.
    pub held: Option<Role>,
    /// The role required.
    pub required: Role,
    /// The grant that gives the role: its subject, the resource it is on, and whether it is
    /// inherited from an ancestor (absent when the identity holds no role).
    pub granted_by: Option<Via>,
    /// Every collaborator of the resource that is an external identity.
    pub collaborators: Vec<Collaborator>,
    /// Every team bound on the resource itself, with its role.
    pub teams: Vec<TeamCollaborator>,
}

/// One team bound on a resource.
#[derive(Debug, Clone, Serialize)]
pub struct TeamCollaborator {
    /// The team.
    pub team: String,
    /// Its role.
    pub role: Role,
}

/// One collaborator of a resource.
#[derive(Debug, Clone, Serialize)]
pub struct Collaborator {
    /// The identity.
    pub identity: String,
    /// Its role.
    pub role: Role,
}

/// The answer the server gives.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// The HTTP status Envoy returns (200 when allowed).
    pub status: u16,
    /// `allowed`, or the reason code.
    pub reason: &'static str,
    /// What decided it.
    pub detail: String,
    /// The step that denied it.
    pub failed_step: Option<FailedStep>,
    /// The identity, when allowed with one.
    pub identity: Option<String>,
    /// Its SSO.
    pub sso: Option<String>,
    /// The token's `sub`.
    pub subject: Option<String>,
    /// The resource.
    pub resource: Option<String>,
    /// The identity's role on it.
    pub role: Option<Role>,
    /// For a denial: the resource in dry run that makes the server let it through anyway.
    pub dry_run: Option<String>,
    /// For a denial let through by dry run: `would deny: REASON (dry run)`.
    pub would_deny: Option<String>,
}

/// The step that denied a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedStep {
    /// The `Authorization` header: missing, not a bearer token, or more than one.
    Credentials,
    /// Token verification, with no one step to blame.
    Token,
    /// Finding what the request targets.
    Route,
    /// Identity selection.
    Identity,
    /// The binding: the role held is too low, or there is none.
    Role,
    /// claimgate itself: not ready, or broken.
    Service,
    /// One step of token verification, named as the step.
    #[serde(untagged)]
    TokenStep(TokenStepKind),
}

impl FailedStep {
    /// The step's name, as serialized.
    pub fn name(self) -> &'static str {
        match self {
            FailedStep::Credentials => "credentials",
            FailedStep::Token => "token",
            FailedStep::Route => "route",
            FailedStep::Identity => "identity",
            FailedStep::Role => "role",
            FailedStep::Service => "service",
            FailedStep::TokenStep(kind) => kind.name(),
        }
    }
}

impl Report {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.verdict.allowed
    }
}
