//! The gRPC `envoy.service.auth.v3.Authorization` service.
//!
//! Failure semantics: every path returns an explicit `CheckResponse` with a status and an
//! HTTP response, because an empty `CheckResponse` means OK to Envoy. Denials are 401/403
//! with a JSON body. If claimgate is unreachable or returns a gRPC error, Envoy's own
//! `failure_mode_allow: false` turns that into a denial, so the service fails closed.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value as PbValue};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tonic::{Request, Response, Status};

use std::time::{Duration, Instant};

use crate::clock::{unix_now, unix_now_millis};
use crate::decision::{self, Allow, Credentials, Decision, Deny, Enforcement, KeyWait, Reason};
use crate::decision_id::{self, DecisionId};
use crate::decision_log::{self, DecisionLog, Event};
use crate::metrics::Metrics;
use crate::pipeline::{self, DenialObserver, FactsObserver};
use crate::role::Role;
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::token_cache::{self, TokenCache};

/// Headers claimgate sets on an allowed request; every other `x-claimgate-*` is removed.
pub const IDENTITY_HEADERS: [&str; 5] = [
    "x-claimgate-identity",
    "x-claimgate-sso",
    "x-claimgate-subject",
    "x-claimgate-resource",
    "x-claimgate-role",
];

/// The header that tells the upstream a denial was let through by dry run, and its reason.
pub const DRY_RUN_HEADER: &str = "x-claimgate-dry-run";

const HEADER_PREFIX: &str = "x-claimgate-";

// gRPC status codes (google.rpc.Code) used in CheckResponse.status.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

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

/// What an allow puts in Envoy's dynamic metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowMetadata {
    /// Every field the headers carry (identity, SSO, subject, resource, role), the decision
    /// id, and a dry run's reason: what the shipped access log prints.
    #[default]
    Full,
    /// Only the decision id (and a dry run's reason): Envoy's worker merges a much smaller
    /// struct per request, and the access log still joins the decision log by id.
    DecisionId,
}

impl AllowMetadata {
    /// `full` or `decision-id`, as on the command line.
    pub fn parse(s: &str) -> Option<AllowMetadata> {
        match s {
            "full" => Some(AllowMetadata::Full),
            "decision-id" => Some(AllowMetadata::DecisionId),
            _ => None,
        }
    }
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

fn header(key: &str, value: impl Into<String>) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

fn string_value(s: &str) -> PbValue {
    PbValue {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

/// Whether `name`, case folded and with `_` read as `-`, starts with `x-claimgate-` (the bare
/// prefix too): CGI and WSGI upstreams read `x_claimgate_identity` as `X-Claimgate-Identity`.
/// Compared as bytes, so a name with any UTF-8 in it is simply not one of ours.
fn is_identity_header(name: &str) -> bool {
    name.len() >= HEADER_PREFIX.len()
        && name
            .bytes()
            .zip(HEADER_PREFIX.bytes())
            .all(|(n, p)| (if n == b'_' { b'-' } else { n }).eq_ignore_ascii_case(&p))
}

fn allow_response(
    allow: Allow,
    headers: Option<&Headers<'_>>,
    id: &str,
    what: AllowMetadata,
) -> CheckResponse {
    // What claimgate sets: (header, dynamic metadata field, value); a field without a header
    // goes to metadata only.
    let mut set = Fields::default();
    set.push((decision_id::HEADER, "decision_id", id));
    match &allow {
        Allow::Public { .. } => {}
        Allow::Identity(g) => identity_fields(
            &mut set,
            [&g.identity, &g.sso, &g.subject, &g.resource],
            Some(g.role),
        ),
        Allow::DryRun(d) => {
            set.push((DRY_RUN_HEADER, "dry_run", d.reason.code()));
            set.push(("", "reason", d.reason.code()));
            // The identity it was found to be, when it got that far; none without a token.
            if let (Some(who), Some((resource, _))) = (&d.who, &d.target) {
                identity_fields(
                    &mut set,
                    [&who.identity, &who.sso, &who.subject, resource],
                    who.role,
                );
            }
        }
    }
    // Remove every client-sent x-claimgate-* header we do not overwrite ourselves; on a
    // public route that is all of them but the decision id.
    let ours = |n: &str| set.all().iter().any(|(h, _, _)| h.eq_ignore_ascii_case(n));
    let mut headers_to_remove: Vec<String> = headers
        .map(|h| {
            h.names()
                .filter(|n| is_identity_header(n))
                .filter(|n| !ours(n))
                // Envoy's own spelling of the name: lowercase, underscores kept.
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    headers_to_remove.sort();
    headers_to_remove.dedup();
    // Sized up front: a filtered iterator would let the map grow (and allocate) as it fills.
    let mut metadata: HashMap<String, PbValue> = HashMap::with_capacity(set.all().len());
    metadata.extend(
        set.all()
            .iter()
            .filter(|(_, field, _)| {
                what == AllowMetadata::Full
                    || matches!(*field, "decision_id" | "dry_run" | "reason")
            })
            .map(|(_, field, v)| ((*field).to_owned(), string_value(v))),
    );
    let mut headers = Vec::with_capacity(set.all().len());
    headers.extend(
        set.all()
            .iter()
            .filter(|(h, _, _)| !h.is_empty())
            .map(|(h, _, v)| header(h, *v)),
    );
    CheckResponse {
        status: Some(RpcStatus {
            code: OK,
            ..Default::default()
        }),
        // Envoy files these under its filter's namespace (`envoy.filters.http.ext_authz`), so an
        // access log reads `%DYNAMIC_METADATA(envoy.filters.http.ext_authz:identity)%`.
        dynamic_metadata: Some(Struct { fields: metadata }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..Default::default()
        })),
    }
}

/// What an allow sets, on the stack: (header, dynamic metadata field, value).
#[derive(Default)]
struct Fields<'a> {
    items: [(&'static str, &'static str, &'a str); 9],
    len: usize,
}

impl<'a> Fields<'a> {
    fn push(&mut self, item: (&'static str, &'static str, &'a str)) {
        // Nine is every field an allow can set: the id, the dry-run pair and five of identity.
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = item;
            self.len += 1;
        }
    }

    fn all(&self) -> &[(&'static str, &'static str, &'a str)] {
        &self.items[..self.len]
    }
}

/// The identity headers and metadata: identity, SSO, subject, resource, and the role when
/// one is held.
fn identity_fields<'a>(set: &mut Fields<'a>, values: [&'a str; 4], role: Option<Role>) {
    const FIELDS: [&str; 5] = ["identity", "sso", "subject", "resource", "role"];
    for ((h, field), v) in IDENTITY_HEADERS.iter().zip(FIELDS).zip(values) {
        set.push((h, field, v));
    }
    if let Some(role) = role {
        set.push((IDENTITY_HEADERS[4], FIELDS[4], role.as_str()));
    }
}

/// Build the denial Envoy sends to the client.
pub fn deny_response(deny: &Deny, request_id: &str, id: &str) -> CheckResponse {
    let status = deny.reason.status();
    let body = serde_json::json!({
        "error": deny.reason.message(),
        "reason": deny.reason.code(),
        "request_id": request_id,
        "decision_id": id,
    })
    .to_string();
    let mut headers = vec![
        header("content-type", "application/json"),
        header(decision_id::HEADER, id),
    ];
    match status {
        401 if deny.token_sent => headers.push(header(
            "www-authenticate",
            r#"Bearer realm="claimgate", error="invalid_token""#,
        )),
        401 => headers.push(header("www-authenticate", r#"Bearer realm="claimgate""#)),
        _ if deny.reason == Reason::InsufficientRole => headers.push(header(
            "www-authenticate",
            r#"Bearer realm="claimgate", error="insufficient_scope""#,
        )),
        _ => {}
    }
    let code = match status {
        401 => UNAUTHENTICATED,
        403 => PERMISSION_DENIED,
        _ => UNAVAILABLE,
    };
    CheckResponse {
        status: Some(RpcStatus {
            code,
            message: deny.reason.code().to_owned(),
            ..Default::default()
        }),
        dynamic_metadata: Some(Struct {
            fields: [
                ("reason".to_owned(), string_value(deny.reason.code())),
                ("decision_id".to_owned(), string_value(id)),
            ]
            .into_iter()
            .collect(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: status as i32,
            }),
            headers,
            body,
        })),
    }
}
