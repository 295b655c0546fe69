//! The recorder: the observer that watches the decision and writes the report.

use serde_json::{Map, Value};

use super::{
    issuer_hints, BindingInfo, Candidate, CandidateVerdict, Capture, ClaimCheck, Collaborator,
    FailedStep, Input, KeyLoad, Report, RequestInfo, RouteInfo, RouteTried, SelectionInfo,
    SelectionOutcome, Step, StepOutcome, TargetBy, TargetInfo, TeamCollaborator, TokenInfo,
    Verdict,
};
use crate::core::config::{section, Config};
use crate::core::decision::{Allow, Credentials, Decision, Deny, Reason};
use crate::core::identity::{Candidacy, ClaimMatcher, ClaimOutcome, Identity, IdentityObserver};
use crate::core::pipeline::Observer;
use crate::core::role::Role;
use crate::core::routing::{Route, RouteObserver, Target, TargetStep};
use crate::core::snapshot::{Held, Snapshot, Subject};
use crate::core::text::plural;
use crate::core::token::{Rejection, TokenObserver, TokenStep, TokenStepKind};
use crate::tools::grant::Via;

mod steps;

/// Locations of identities and routes, when the configuration files are at hand.
struct Places<'c> {
    config: Option<&'c Config>,
}

impl<'c> Places<'c> {
    fn new(config: Option<&'c Config>) -> Self {
        Places { config }
    }

    fn identity(&self, name: &str) -> Option<String> {
        self.config?.identity_place(name)
    }

    fn route(&self, index: usize) -> Option<String> {
        let c = self.config?;
        let item = c.routes.get(index)?;
        Some(c.place(item.origin, section::ROUTES, None))
    }
}

/// A route as the report shows it.
fn route_info(places: &Places<'_>, index: usize, route: &Route) -> RouteInfo {
    RouteInfo {
        index,
        location: places.route(index),
        path: route.display.to_string(),
        prefix: route.is_prefix(),
        methods: route
            .methods()
            .map(|ms| ms.iter().map(|m| m.to_string()).collect()),
        host: route.host().map(str::to_owned),
        case_insensitive: route.case_insensitive(),
    }
}

/// The observer that writes the report.
pub(super) struct Watch<'s> {
    snap: &'s Snapshot,
    places: Places<'s>,
    extensions: bool,
    unnormalized: bool,
    tried: Vec<RouteTried>,
    matched: Option<TargetInfo>,
    steps: Vec<Step>,
    header: Option<Value>,
    claims: Option<Value>,
    issuer: Option<String>,
    sso: Option<String>,
    pending: Vec<ClaimCheck>,
    candidates: Vec<Candidate>,
    binding: Option<BindingInfo>,
}

impl<'s> Watch<'s> {
    pub(super) fn new(snap: &'s Snapshot, config: Option<&'s Config>) -> Self {
        Watch {
            snap,
            places: Places::new(config),
            extensions: false,
            unnormalized: false,
            tried: Vec::new(),
            matched: None,
            steps: Vec::new(),
            header: None,
            claims: None,
            issuer: None,
            sso: None,
            pending: Vec::new(),
            candidates: Vec::new(),
            binding: None,
        }
    }
}

impl RouteObserver for Watch<'_> {
    fn target(&mut self, step: TargetStep<'_>) {
        match step {
            TargetStep::Extensions { .. } => self.extensions = true,
            TargetStep::Unnormalized => self.unnormalized = true,
            TargetStep::Missed { index, route, miss } => self.tried.push(RouteTried {
                route: route_info(&self.places, index, route),
                miss,
            }),
            TargetStep::Matched(m) => {
                let captures = m
                    .captures()
                    .map(|(name, value)| Capture {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    })
                    .collect();
                let (public, resource, role) = match &m.route.target {
                    Target::Public => (true, None, None),
                    Target::Protected { resource, role } => {
                        (false, Some(m.resource(resource)), Some(*role))
                    }
                };
                self.matched = Some(TargetInfo {
                    by: TargetBy::Route,
                    normalized: true,
                    tried: Vec::new(),
                    route: Some(route_info(&self.places, m.index, m.route)),
                    captures,
                    public,
                    resource,
                    role,
                    problem: None,
                });
            }
            TargetStep::Unrouted => {}
        }
    }
}

impl TokenObserver for Watch<'_> {
    fn token(&mut self, step: TokenStep<'_>, outcome: Result<(), &Rejection>) {
        match step {
            TokenStep::Parse { header, claims } => {
                self.header = header.map(|h| Value::Object(h.clone()));
                self.claims = claims.cloned();
            }
            TokenStep::Issuer { iss, sso } => {
                self.issuer = iss.map(str::to_owned);
                self.sso = sso.map(|s| s.name.to_string());
            }
            _ => {}
        }
        self.steps.push(steps::describe(step, outcome));
    }
}

impl IdentityObserver for Watch<'_> {
    const EXHAUSTIVE: bool = true;

    fn claim(
        &mut self,
        _index: usize,
        claim: &ClaimMatcher,
        outcome: ClaimOutcome,
        actual: Option<&Value>,
    ) {
        self.pending.push(ClaimCheck {
            key: claim.key.to_string(),
            expected: claim.condition.to_json(),
            actual: actual.cloned(),
            outcome,
            text: claim.condition.explain(&claim.key, outcome, actual),
        });
    }

    fn candidate(&mut self, _index: usize, identity: &Identity, candidacy: Candidacy) {
        let (verdict, would_match) = match candidacy {
            Candidacy::Matched => (CandidateVerdict::Matched, None),
            Candidacy::Unmatched => (CandidateVerdict::Unmatched, None),
            Candidacy::NotReached { matches } => (CandidateVerdict::NotReached, Some(matches)),
        };
        self.candidates.push(Candidate {
            name: identity.name.to_string(),
            location: self.places.identity(&identity.name),
            claim_count: identity.claims.len(),
            verdict,
            would_match,
            claims: std::mem::take(&mut self.pending),
        });
    }
}

impl Observer for Watch<'_> {
    fn binding(&mut self, resource: &str, identity: &Identity, held: Option<Role>, required: Role) {
        let mut collaborators: Vec<Collaborator> = self
            .snap
            .bindings(resource)
            .into_iter()
            .filter_map(|(i, role)| {
                let identity = self.snap.identities.get(i)?.name.to_string();
                Some(Collaborator { identity, role })
            })
            .collect();
        collaborators.sort_by(|a, b| b.role.cmp(&a.role).then(a.identity.cmp(&b.identity)));
        let mut teams: Vec<TeamCollaborator> = self
            .snap
            .subject_bindings(resource)
            .into_iter()
            .filter(|(s, _)| matches!(s, Subject::Team(_)))
            .map(|(s, role)| TeamCollaborator {
                team: self.snap.subject_name(s).to_string(),
                role,
            })
            .collect();
        teams.sort_by(|a, b| b.role.cmp(&a.role).then(a.team.cmp(&b.team)));
        self.binding = Some(BindingInfo {
            resource: resource.to_owned(),
            defined: self.snap.has_resource(resource),
            identity: identity.name.to_string(),
            held,
            required,
            granted_by: None,
            collaborators,
            teams,
        });
    }

    fn held(&mut self, held: Option<&Held>) {
        if let (Some(binding), Some(held)) = (self.binding.as_mut(), held) {
            binding.granted_by = Some(Via::of(self.snap, held));
        }
    }
}

impl Watch<'_> {
    pub(super) fn report(
        mut self,
        input: &Input<'_>,
        credentials: Credentials<'_>,
        decision: Decision,
        keys: Option<KeyLoad>,
    ) -> Report {
        let request = RequestInfo {
            method: input.method.to_owned(),
            path: input.path.to_owned(),
            host: input.host.to_owned(),
            credentials: credentials.into(),
            resource: input.resource.map(str::to_owned),
            role: input.role.map(str::to_owned),
            parent: input.parent.map(str::to_owned),
        };
        let target = self.target_info(input);
        let failed = self
            .steps
            .iter()
            .find(|s| s.outcome == StepOutcome::Failed)
            .map(|s| s.step);
        if !self.steps.is_empty() {
            for kind in TokenStepKind::ALL.into_iter().skip(self.steps.len()) {
                self.steps.push(Step {
                    step: kind,
                    outcome: StepOutcome::NotReached,
                    detail: "not reached".into(),
                    reason: None,
                    facts: Map::new(),
                });
            }
        }
        let unknown_issuer = self
            .steps
            .iter()
            .any(|s| s.step == TokenStepKind::Issuer && s.reason == Some(Reason::UnknownIssuer));
        let issuer_hints = match (&self.issuer, unknown_issuer) {
            (Some(iss), true) => issuer_hints(self.snap, iss),
            _ => Vec::new(),
        };
        let verified = !self.steps.is_empty() && failed.is_none();
        let identity = if verified {
            self.selection_info()
        } else {
            None
        };
        let token = TokenInfo {
            checked: !self.steps.is_empty(),
            header: self.header,
            claims: self.claims,
            issuer: self.issuer,
            sso: self.sso,
            keys,
            steps: self.steps,
            issuer_hints,
        };
        // The server lets a denial through when its target is in dry run: explain answers as
        // the server does (allowed, 200) and says what it would deny, and why.
        let denied = |d: Deny| {
            let waived = d.dry_run && d.target.is_some();
            Verdict {
                allowed: waived,
                status: if waived { 200 } else { d.reason.status() },
                would_deny: waived.then(|| format!("would deny: {} (dry run)", d.reason.code())),
                reason: d.reason.code(),
                failed_step: Some(match d.reason {
                    Reason::MissingToken => FailedStep::Credentials,
                    Reason::MalformedToken if credentials == Credentials::Multiple => {
                        FailedStep::Credentials
                    }
                    Reason::NoIdentity | Reason::AmbiguousIdentity => FailedStep::Identity,
                    Reason::NoRoute => FailedStep::Route,
                    Reason::InsufficientRole => FailedStep::Role,
                    Reason::NotReady | Reason::Internal => FailedStep::Service,
                    _ => failed.map_or(FailedStep::Token, FailedStep::TokenStep),
                }),
                dry_run: match (&d.target, d.dry_run) {
                    (Some((resource, _)), true) => Some(resource.clone()),
                    _ => None,
                },
                detail: d.detail,
                identity: None,
                sso: None,
                subject: None,
                resource: None,
                role: None,
            }
        };
        let verdict = match decision {
            Decision::Allow(Allow::Public { route }) => Verdict {
                allowed: true,
                status: 200,
                reason: "allowed",
                detail: format!("routes[{route}] is public: no token is needed"),
                failed_step: None,
                identity: None,
                sso: None,
                subject: None,
                resource: None,
                role: None,
                dry_run: None,
                would_deny: None,
            },
            Decision::Allow(Allow::Identity(g)) => Verdict {
                allowed: true,
                status: 200,
                reason: "allowed",
                detail: format!(
                    "identity {} is {} on {}",
                    g.identity,
                    g.role.as_str(),
                    g.resource
                ),
                failed_step: None,
                identity: Some(g.identity.to_string()),
                sso: Some(g.sso.to_string()),
                subject: Some(g.subject.to_string()),
                resource: Some(g.resource.to_string()),
                role: Some(g.role),
                dry_run: None,
                would_deny: None,
            },
            Decision::Allow(Allow::DryRun(d)) => denied(*d),
            Decision::Deny(d) => denied(d),
        };
        Report {
            request,
            target,
            token,
            identity,
            binding: self.binding,
            verdict,
        }
    }

    fn target_info(&mut self, input: &Input<'_>) -> TargetInfo {
        let tried = std::mem::take(&mut self.tried);
        if self.extensions {
            let role = input.role.and_then(Role::parse);
            let usable = role.is_some() && input.resource.is_some_and(|r| !r.is_empty());
            return TargetInfo {
                by: TargetBy::ContextExtensions,
                normalized: true,
                tried,
                route: None,
                captures: Vec::new(),
                public: false,
                resource: input.resource.map(str::to_owned),
                role,
                problem: (!usable).then(|| {
                    "context_extensions need both a resource and a role (viewer, editor or manager); the request is denied no_route once the token is verified".to_owned()
                }),
            };
        }
        match self.matched.take() {
            Some(matched) => TargetInfo { tried, ..matched },
            None => TargetInfo {
                by: TargetBy::None,
                normalized: !self.unnormalized,
                tried,
                route: None,
                captures: Vec::new(),
                public: false,
                resource: None,
                role: None,
                problem: Some(if self.unnormalized {
                    "the path is not normalized ('.' or '..' segments, empty segments, backslashes or encoded slashes), so no route matches; the request is denied no_route once the token is verified".to_owned()
                } else {
                    format!(
                        "no route matches {} {} (host {:?}); the request is denied no_route once the token is verified",
                        input.method, input.path, input.host
                    )
                }),
            },
        }
    }

    fn selection_info(&mut self) -> Option<SelectionInfo> {
        let sso = self.sso.clone()?;
        let candidates = std::mem::take(&mut self.candidates);
        let matched: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| c.verdict == CandidateVerdict::Matched)
            .collect();
        let (outcome, chosen, why) = match matched.as_slice() {
            [] => {
                let closest = candidates
                    .iter()
                    .filter(|c| c.claim_count > 0)
                    .min_by_key(|c| c.claims.iter().filter(|k| k.outcome != ClaimOutcome::Matched).count());
                let why = match (candidates.is_empty(), closest) {
                    (true, _) => format!("SSO {sso} backs no external identity"),
                    (false, Some(c)) => format!(
                        "no identity of SSO {sso} has all its claims in the token; closest: {} ({} of {} fail)",
                        c.name,
                        c.claims.iter().filter(|k| k.outcome != ClaimOutcome::Matched).count(),
                        plural(c.claim_count, "claim", "claims")
                    ),
                    (false, None) => format!("no identity of SSO {sso} has all its claims in the token"),
                };
                (SelectionOutcome::NoIdentity, None, why)
            }
            [one] => {
                let also: Vec<String> = candidates
                    .iter()
                    .filter(|c| c.would_match == Some(true))
                    .map(|c| format!("{} ({})", c.name, plural(c.claim_count, "claim", "claims")))
                    .collect();
                let mut why = format!(
                    "{} matches with {}, and no other identity with as many claims matches",
                    one.name,
                    plural(one.claim_count, "claim", "claims")
                );
                if !also.is_empty() {
                    why.push_str(&format!(
                        "; also matching, with fewer claims: {}",
                        also.join(", ")
                    ));
                }
                (SelectionOutcome::Chosen, Some(one.name.clone()), why)
            }
            [a, b, ..] => (
                SelectionOutcome::Ambiguous,
                None,
                format!(
                    "{} and {} both match with {}: give the one that should win another claim, or make them exclusive (the same claim with different values)",
                    a.name,
                    b.name,
                    plural(a.claim_count, "claim", "claims")
                ),
            ),
        };
        Some(SelectionInfo {
            sso,
            candidates,
            outcome,
            chosen,
            why,
        })
    }
}
