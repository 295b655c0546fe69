//! One request, decided by the core's pipeline and answered through a [`Host`]: the request
//! read from its headers (and the route's settings instead of ext_authz's
//! context_extensions), the decision rendered with the core's response builders, so the
//! client and the upstream see what the ext_authz server would have them see.

use std::sync::Arc;

use claimgate::core::decision::{Credentials, Decision, Reason, Request};
use claimgate::core::decision_id::{self, DecisionId};
use claimgate::core::pipeline;
use claimgate::core::response::{self, Fields};
use claimgate::core::snapshot::Snapshot;
use claimgate::core::store::Store;
use claimgate::core::token_cache::TokenCache;

use crate::host::Host;

/// What a check needs of its VM: the store of the configuration in service and the VM's
/// token cache.
#[derive(Debug)]
pub struct Vm {
    /// The configuration in service.
    pub store: Arc<Store>,
    /// Tokens this VM has verified.
    pub cache: TokenCache,
}

/// Whether the request goes on to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed: its headers were set; continue.
    Continue,
    /// Answered with a local reply; stop.
    Replied,
}

/// The request headers a check reads, borrowed from the host's list.
#[derive(Debug, Default)]
struct Read<'h> {
    method: &'h str,
    path: &'h str,
    authority: &'h str,
    authorization: Option<&'h str>,
    authorizations: usize,
    request_id: &'h str,
    /// Client-sent names that look like claimgate's own.
    ours: Vec<&'h str>,
}

impl<'h> Read<'h> {
    fn of(headers: &'h [(String, String)]) -> Read<'h> {
        let mut read = Read::default();
        for (name, value) in headers {
            match name.as_str() {
                ":method" => read.method = value,
                ":path" => read.path = value,
                ":authority" => read.authority = value,
                "authorization" => {
                    read.authorization = Some(value);
                    read.authorizations += 1;
                }
                "x-request-id" => read.request_id = value,
                n if response::is_ours(n.as_bytes()) => read.ours.push(n),
                _ => {}
            }
        }
        read
    }

    fn credentials(&self) -> Credentials<'h> {
        match (self.authorizations, self.authorization) {
            (1, Some(v)) => Credentials::from_header(v),
            (0, _) | (_, None) => Credentials::Missing,
            _ => Credentials::Multiple,
        }
    }
}

/// Decide the request `host` holds against `vm` (none before a bundle loaded), and answer it.
pub fn check(host: &impl Host, vm: Option<&Vm>) -> Verdict {
    let millis = host.now_millis();
    let headers = host.request_headers();
    let read = Read::of(&headers);
    let settings =
        ["resource", "role", "enforcement", "parent"].map(|name| host.route_setting(name));
    let request = Request {
        method: read.method,
        path: read.path,
        host: read.authority,
        credentials: read.credentials(),
        ext_resource: settings[0].as_deref(),
        ext_role: settings[1].as_deref(),
        ext_enforcement: settings[2].as_deref(),
        ext_parent: settings[3].as_deref(),
    };
    let decision = match vm {
        Some(vm) => decide(&vm.store.load(), &vm.cache, &request, millis / 1000),
        None => Decision::deny(Reason::NotReady, "no configuration loaded", false),
    };
    host.count(&decision);
    let mut buf = [0u8; decision_id::LEN];
    let id = DecisionId::new(millis).encode(&mut buf);
    match decision {
        Decision::Allow(allow) => {
            let set = Fields::of(&allow, id);
            for (name, _, value) in set.headers() {
                host.set_request_header(name, value);
            }
            let ours = |n: &str| set.all().iter().any(|(h, _, _)| h.eq_ignore_ascii_case(n));
            for name in read.ours.iter().filter(|n| !ours(n)) {
                host.remove_request_header(name);
            }
            Verdict::Continue
        }
        Decision::Deny(deny) => {
            let request_id = response::request_id([read.request_id]);
            let www = response::www_authenticate(&deny);
            let body = response::deny_body(&deny, &request_id, id);
            host.reply(
                deny.reason.status(),
                response::deny_headers(www, id).collect(),
                &body,
            );
            Verdict::Replied
        }
    }
}

/// The pipeline's decision; an SSO whose remote keys have not arrived yet answers
/// `not_ready`, as the server does once its wait for them ends.
fn decide(snap: &Snapshot, cache: &TokenCache, request: &Request<'_>, now: u64) -> Decision {
    let decision = pipeline::decide_cached(snap, cache, request, now);
    if let Decision::Deny(d) = &decision {
        let remote = d
            .key_wait
            .as_ref()
            .and_then(|w| snap.ssos.get(w.sso))
            .and_then(|s| s.remote.as_deref());
        if remote.is_some_and(|r| !r.first_load_done()) {
            return Decision::deny(Reason::NotReady, "the SSO's keys are still loading", false);
        }
    }
    decision.waived(false)
}
