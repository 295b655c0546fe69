//! The gRPC `envoy.service.auth.v3.Authorization` service.
//!
//! Failure semantics: every path returns an explicit `CheckResponse` with a status and an
//! HTTP response, because an empty `CheckResponse` means OK to Envoy. Denials are 401/403
//! with a JSON body. If claimgate is unreachable or returns a gRPC error, Envoy's own
//! `failure_mode_allow: false` turns that into a denial, so the service fails closed.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use prost::Message as _;

use std::time::{Duration, Instant};

use crate::core::clock::{unix_now, unix_now_millis};
use crate::core::decision::{self, Allow, Credentials, Decision, Enforcement, KeyWait, Reason};
use crate::core::decision_id::{self, DecisionId};
use crate::core::pipeline::{self, DenialObserver, FactsObserver};
use crate::core::response as shown;
use crate::core::snapshot::Snapshot;
use crate::core::store::Store;
use crate::core::token_cache::{self, TokenCache};
use crate::server::decision_log::{self, DecisionLog, Event};
use crate::server::metrics::Metrics;
use crate::server::provider::RemoteKeys;

mod codec;
mod request;
mod response;
mod wire;

pub use crate::core::response::{DRY_RUN_HEADER, IDENTITY_HEADERS};
pub use codec::AuthorizationService;
pub use request::{Headers, Repeated, RequestView};
pub use response::{AllowMetadata, Answer, UnknownAllowMetadata};
pub use wire::WireError;

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

/// What a check reads from Envoy's request, borrowed from it.
struct Input<'r> {
    headers: Option<Headers<'r>>,
    request: Option<decision::Request<'r>>,
    request_id: Cow<'r, str>,
}

impl<'r> Input<'r> {
    fn read(req: &'r RequestView) -> Input<'r> {
        let headers = req.headers();
        let request_id = request_id(headers.as_ref(), req.id());
        let request = headers.as_ref().map(|headers| {
            let credentials = match headers.single("authorization") {
                Err(Repeated) => Credentials::Multiple,
                Ok(None) => Credentials::Missing,
                Ok(Some(v)) => Credentials::from_header(v),
            };
            let host = match req.host() {
                "" => headers.single(":authority").ok().flatten().unwrap_or(""),
                h => h,
            };
            decision::Request {
                method: req.method(),
                path: req.path(),
                host,
                credentials,
                ext_resource: req.extension("resource"),
                ext_role: req.extension("role"),
                ext_enforcement: req.extension("enforcement"),
                ext_parent: req.extension("parent"),
            }
        });
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
    pub async fn check(&self, req: &RequestView) -> Answer {
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
        span.record("request_id", &*input.request_id);
        span.record("generation", snap.generation);
        let facts = logged.as_mut().map(|l| &mut l.1);
        let mut decision = input.decide(&snap, &self.cache, facts, self.dry_run_all);
        if let Some(wait) = key_wait(&decision) {
            let remote = snap.ssos.get(wait.sso).and_then(|s| s.remote.as_deref());
            if let Some(remote) = remote.and_then(RemoteKeys::of) {
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

    /// The codec's three steps in one call: read `request` (one `CheckRequest`'s bytes) in
    /// place, check it, and write the `CheckResponse` to `out`.
    pub async fn check_bytes(
        &self,
        request: Bytes,
        out: &mut impl BufMut,
    ) -> Result<(), WireError> {
        let view = RequestView::parse(request)?;
        self.check(&view).await.encode(out);
        Ok(())
    }

    /// `check` for a caller holding prost values (tests, benches, tools): the request is
    /// encoded and read in place, and the answer written and decoded, as on the wire.
    pub async fn check_request(&self, req: &CheckRequest) -> CheckResponse {
        let mut out = Vec::new();
        let read = match self
            .check_bytes(Bytes::from(req.encode_to_vec()), &mut out)
            .await
        {
            Ok(()) => CheckResponse::decode(out.as_slice()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        // Never an empty (OK) response: the error a gRPC client would get instead.
        read.unwrap_or_else(|message| CheckResponse {
            status: Some(RpcStatus {
                code: tonic::Code::Internal as i32,
                message,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn answer(
        &self,
        decision: Decision,
        input: &Input<'_>,
        generation: u64,
        id: DecisionId,
    ) -> Answer {
        self.metrics.record(&decision);
        log_decision(&decision, &input.request_id, generation, id);
        let mut buf = [0u8; decision_id::LEN];
        id.encode(&mut buf);
        match decision {
            Decision::Allow(allow) => {
                Answer::allow(allow, input.headers.as_ref(), buf, self.allow_metadata)
            }
            Decision::Deny(deny) => Answer::deny(&deny, &input.request_id, buf),
        }
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
    let kind = decision.kind().as_str();
    span.record("decision", kind);
    match decision {
        Decision::Allow(Allow::Identity(g)) => {
            span.record("identity", &*g.identity);
            tracing::debug!(
                decision = kind,
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
            tracing::debug!(
                decision = kind,
                request_id,
                decision_id = %id,
                generation,
                route,
                "check: public route"
            )
        }
        Decision::Allow(Allow::DryRun(d)) => {
            span.record("reason", d.reason.code());
            tracing::debug!(
                decision = kind,
                request_id,
                decision_id = %id,
                generation,
                reason = d.reason.code(),
                detail = %d.detail,
                "check: denial let through by dry run"
            )
        }
        Decision::Deny(d) => {
            span.record("reason", d.reason.code());
            tracing::debug!(
                decision = kind,
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

/// The client's `x-request-id`, else Envoy's id, when either is a sane token to echo; a new
/// one otherwise.
fn request_id<'r>(headers: Option<&Headers<'r>>, envoy_id: &'r str) -> Cow<'r, str> {
    let from_header = headers.and_then(|h| h.single("x-request-id").ok().flatten());
    shown::request_id([from_header.unwrap_or(""), envoy_id])
}
