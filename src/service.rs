//! The gRPC `envoy.service.auth.v3.Authorization` service.
//!
//! Failure semantics: every path returns an explicit `CheckResponse` with a status and an
//! HTTP response, because an empty `CheckResponse` means OK to Envoy. Denials are 401/403
//! with a JSON body. If claimgate is unreachable or returns a gRPC error, Envoy's own
//! `failure_mode_allow: false` turns that into a denial, so the service fails closed.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse, HeaderValue};
use tonic::{Request, Response, Status};

use std::time::{Duration, Instant};

use crate::clock::{unix_now, unix_now_millis};
use crate::decision::{self, Allow, Credentials, Decision, Enforcement, KeyWait, Reason};
use crate::decision_id::{self, DecisionId};
use crate::decision_log::{self, DecisionLog, Event};
use crate::metrics::Metrics;
use crate::pipeline::{self, DenialObserver, FactsObserver};
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::token_cache::{self, TokenCache};

mod response;

use response::allow_response;
pub use response::{deny_response, AllowMetadata, DRY_RUN_HEADER, IDENTITY_HEADERS};

/// Per-service state: only shared handles.
#[derive(Debug, Clone)]
pub struct CheckService {
    store: Arc<Store>,
    metrics: Metrics,
    key_wait: Duration,
    cache: Arc<TokenCache>,
    log: Option<DecisionLog>,
    dry_run_all: bool,
    allow_metadata: AllowMetadata,
}

/// The request headers as Envoy sent them, in either encoding.
enum Headers<'a> {
    Map(&'a HashMap<String, String>),
    Raw(&'a [HeaderValue]),
}

impl<'a> Headers<'a> {
    fn from_request(req: &'a CheckRequest) -> Option<Headers<'a>> {
        let http = req.attributes.as_ref()?.request.as_ref()?.http.as_ref()?;
        match &http.header_map {
            Some(map) if !map.headers.is_empty() => Some(Headers::Raw(&map.headers)),
            _ => Some(Headers::Map(&http.headers)),
        }
    }

    fn raw_value(h: &HeaderValue) -> &str {
        if h.raw_value.is_empty() {
            &h.value
        } else {
            std::str::from_utf8(&h.raw_value).unwrap_or("\u{fffd}")
        }
    }

    /// The single value of a header; `Err` when it appears more than once.
    fn single(&self, name: &str) -> Result<Option<&'a str>, ()> {
        match self {
            Headers::Map(m) => Ok(m.get(name).map(String::as_str)),
            Headers::Raw(list) => {
                let mut found = None;
                for h in list.iter() {
                    if h.key.eq_ignore_ascii_case(name) {
                        if found.is_some() {
                            return Err(());
                        }
                        found = Some(Self::raw_value(h));
                    }
                }
                Ok(found)
            }
        }
    }

    fn names(&self) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match self {
            Headers::Map(m) => Box::new(m.keys().map(String::as_str)),
            Headers::Raw(list) => Box::new(list.iter().map(|h| h.key.as_str())),
        }
    }
}

/// What a check reads from Envoy's request, borrowed from it.
struct Input<'r> {
    headers: Option<Headers<'r>>,
    request: Option<decision::Request<'r>>,
    request_id: String,
}

impl<'r> Input<'r> {
    fn read(req: &'r CheckRequest) -> Input<'r> {
        let headers = Headers::from_request(req);
        let http = req
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let ext = req.attributes.as_ref().map(|a| &a.context_extensions);
        let request_id = request_id(headers.as_ref(), http.map(|h| h.id.as_str()).unwrap_or(""));
        let request = match (&headers, http) {
            (Some(headers), Some(http)) => {
                let credentials = match headers.single("authorization") {
                    Err(()) => Credentials::Multiple,
                    Ok(None) => Credentials::Missing,
                    Ok(Some(v)) => Credentials::from_header(v),
                };
                let host = match http.host.as_str() {
                    "" => headers.single(":authority").ok().flatten().unwrap_or(""),
                    h => h,
                };
                Some(decision::Request {
                    method: &http.method,
                    path: &http.path,
                    host,
                    credentials,
                    ext_resource: ext.and_then(|e| e.get("resource")).map(String::as_str),
                    ext_role: ext.and_then(|e| e.get("role")).map(String::as_str),
                    ext_enforcement: ext.and_then(|e| e.get("enforcement")).map(String::as_str),
                })
            }
            _ => None,
        };
        Input {
            headers,
            request,
            request_id,
        }
    }

    /// Decide; with `facts`, also keep what the decision log may say about the token. With
    /// `dry_run_all`, a denial names the identity it was found to be.
    fn decide(
        &self,
        snap: &Snapshot,
        cache: &TokenCache,
        facts: Option<&mut FactsObserver>,
        dry_run_all: bool,
    ) -> Decision {
        let now = unix_now();
        match (&self.request, facts) {
            (Some(request), Some(facts)) => {
                pipeline::decide_cached_observed(snap, cache, request, now, facts)
            }
            (Some(request), None) if dry_run_all => {
                pipeline::decide_cached_observed(snap, cache, request, now, &mut DenialObserver)
            }
            (Some(request), None) => pipeline::decide_cached(snap, cache, request, now),
            (None, _) => Decision::deny(
                Reason::Internal,
                "CheckRequest carries no HTTP attributes; is this the HTTP ext_authz filter?",
                false,
            ),
        }
    }
}

impl CheckService {
    /// A service deciding on `store`'s snapshots and counting in `metrics`; a check waits
    /// at most `key_wait` for remote keys it lacks.
    pub fn new(store: Arc<Store>, metrics: Metrics, key_wait: Duration) -> Self {
        let cache = Arc::new(TokenCache::new(
            token_cache::DEFAULT_ENTRIES,
            metrics.clone(),
        ));
        CheckService {
            store,
            metrics,
            key_wait,
            cache,
            log: None,
            dry_run_all: false,
            allow_metadata: AllowMetadata::Full,
        }
    }

    /// The same service putting `what` in an allow's dynamic metadata.
    pub fn with_allow_metadata(self, what: AllowMetadata) -> Self {
        CheckService {
            allow_metadata: what,
            ..self
        }
    }

    /// The same service with denials of every routed request enforced, or let through and
    /// only reported (`serve --enforcement dry_run`).
    pub fn with_enforcement(self, enforcement: Enforcement) -> Self {
        CheckService {
            dry_run_all: enforcement == Enforcement::DryRun,
            ..self
        }
    }

    /// The same service writing every decision to `log`.
    pub fn with_decision_log(self, log: DecisionLog) -> Self {
        CheckService {
            log: Some(log),
            ..self
        }
    }

    /// The same service remembering at most `entries` verified tokens (0: none).
    pub fn with_token_cache(self, entries: usize) -> Self {
        let cache = Arc::new(TokenCache::new(entries, self.metrics.clone()));
        CheckService { cache, ..self }
    }

    /// Decide one request and build Envoy's answer; never returns an empty (OK) response.
    ///
    /// The one check entry. An `unknown_key` denial from an SSO with remote keys says what
    /// would cure it: the check waits once (bounded by `key_wait`) for the SSO's first key
    /// load or one shared refetch of its `kid`, then decides once more.
    #[tracing::instrument(
        level = "debug",
        name = "check",
        skip_all,
        fields(request_id, generation, decision, reason, identity)
    )]
    pub async fn check_request(&self, req: &CheckRequest) -> CheckResponse {
        let _timer = self.metrics.time_check();
        let unix_millis = unix_now_millis();
        let id = DecisionId::new(unix_millis);
        // Only a logged check reads the clock for its duration and keeps the token's facts.
        let mut logged = self
            .log
            .as_ref()
            .map(|_| (Instant::now(), FactsObserver::default()));
        let snap = self.store.load_full();
        let input = Input::read(req);
        let span = tracing::Span::current();
        span.record("request_id", input.request_id.as_str());
        span.record("generation", snap.generation);
        let facts = logged.as_mut().map(|l| &mut l.1);
        let mut decision = input.decide(&snap, &self.cache, facts, self.dry_run_all);
        if let Some(wait) = key_wait(&decision) {
            if let Some(remote) = snap.ssos.get(wait.sso).and_then(|s| s.remote.clone()) {
                let cured = if remote.first_load_done() {
                    remote.refetch_for(wait.kid.as_deref()).await
                } else if remote.wait_first_load(self.key_wait).await {
                    true
                } else {
                    decision =
                        Decision::deny(Reason::NotReady, "the SSO's keys are still loading", false);
                    false
                };
                if cured {
                    let facts = logged.as_mut().map(|l| &mut l.1);
                    decision = input.decide(&snap, &self.cache, facts, self.dry_run_all);
                }
            }
        }
        // After any wait for keys: the denial that stands is the one dry run lets through.
        let decision = decision.waived(self.dry_run_all);
        if let (Some(log), Some((start, facts))) = (&self.log, logged) {
            let sampled = matches!(
                decision,
                Decision::Allow(Allow::Public { .. } | Allow::Identity(_))
            );
            if log.wants(sampled) {
                log.send(Event {
                    id,
                    unix_millis,
                    generation: snap.generation,
                    config_digest: snap.hash.clone(),
                    request: decision_log::RequestFields::new(
                        input.request.as_ref(),
                        &input.request_id,
                    ),
                    token: facts.facts,
                    result: decision_log::Outcome::of(&decision),
                    duration_us: start.elapsed().as_micros() as u64,
                });
            }
        }
        self.answer(decision, &input, snap.generation, id)
    }

    fn answer(
        &self,
        decision: Decision,
        input: &Input<'_>,
        generation: u64,
        id: DecisionId,
    ) -> CheckResponse {
        self.metrics.record(&decision);
        log_decision(&decision, &input.request_id, generation, id);
        let mut buf = [0u8; decision_id::LEN];
        let id = id.encode(&mut buf);
        match decision {
            Decision::Allow(allow) => {
                allow_response(allow, input.headers.as_ref(), id, self.allow_metadata)
            }
            Decision::Deny(deny) => deny_response(&deny, &input.request_id, id),
        }
    }
}

#[tonic::async_trait]
impl Authorization for CheckService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(self.check_request(request.get_ref()).await))
    }
}

/// What an `unknown_key` denial may wait for.
fn key_wait(decision: &Decision) -> Option<&KeyWait> {
    match decision {
        Decision::Deny(d) => d.key_wait.as_ref(),
        Decision::Allow(_) => None,
    }
}

/// One debug line per decision, and what it learned recorded on the check's span.
fn log_decision(decision: &Decision, request_id: &str, generation: u64, id: DecisionId) {
    let span = tracing::Span::current();
    match decision {
        Decision::Allow(Allow::Identity(g)) => {
            span.record("decision", "allow");
            span.record("identity", &*g.identity);
            tracing::debug!(
                decision = "allow",
                request_id,
                decision_id = %id,
                generation,
                identity = %g.identity,
                sso = %g.sso,
                resource = %g.resource,
                role = g.role.as_str(),
                "check"
            )
        }
        Decision::Allow(Allow::Public { route }) => {
            span.record("decision", "allow");
            tracing::debug!(
                decision = "allow",
                request_id,
                decision_id = %id,
                generation,
                route,
                "check: public route"
            )
        }
        Decision::Allow(Allow::DryRun(d)) => {
            span.record("decision", "dry_run_deny");
            span.record("reason", d.reason.code());
            tracing::debug!(
                decision = "dry_run_deny",
                request_id,
                decision_id = %id,
                generation,
                reason = d.reason.code(),
                detail = %d.detail,
                "check: denial let through by dry run"
            )
        }
        Decision::Deny(d) => {
            span.record("decision", "deny");
            span.record("reason", d.reason.code());
            tracing::debug!(
                decision = "deny",
                request_id,
                decision_id = %id,
                generation,
                reason = d.reason.code(),
                detail = %d.detail,
                "check"
            )
        }
    }
}

fn request_id(headers: Option<&Headers<'_>>, envoy_id: &str) -> String {
    let from_header = headers.and_then(|h| h.single("x-request-id").ok().flatten());
    for candidate in [from_header.unwrap_or(""), envoy_id] {
        if !candidate.is_empty()
            && candidate.len() <= 128
            && candidate.bytes().all(|b| b.is_ascii_graphic())
        {
            return candidate.to_owned();
        }
    }
    uuid::Uuid::new_v4().to_string()
}
