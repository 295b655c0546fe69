//! `claimgate explain`: the whole decision for one token and request, step by step.
//!
//! The report is what an [`Observer`](pipeline::Observer) saw while
//! [`pipeline::decide_observed`], the function every check of the server runs, made the
//! decision, so it cannot drift from the server. What the report adds changes nothing: where
//! things are defined, the configured issuers closest to an unknown one, and the claims of
//! identities that selection never reached.
//!
//! This module is the entry point ([`explain`]); the report's schema (what `--json` prints)
//! is in `report`, the observer that records the decision into it in `recorder`, and the text
//! form in `text`.

use std::borrow::Cow;

use serde::Serialize;

use crate::core::config::Config;
use crate::core::decision::{self, Credentials};
use crate::core::keys::remote::Remote;
use crate::core::pipeline;
use crate::core::snapshot::{KeySource, Snapshot};
use crate::core::token;
use crate::server::provider::{ProviderOptions, RemoteKeys};

mod recorder;
mod report;
mod text;

pub use report::{
    BindingInfo, Candidate, CandidateVerdict, Capture, ClaimCheck, Collaborator, CredentialsKind,
    FailedStep, IssuerHint, Report, RequestInfo, RouteInfo, RouteTried, SelectionInfo,
    SelectionOutcome, Step, StepOutcome, TargetBy, TargetInfo, TeamCollaborator, TokenInfo,
    Verdict,
};

/// The request to explain, as given on the command line.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The token, or a whole `Authorization` value such as `Bearer …`; empty for none.
    pub token: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Path, with query.
    pub path: &'a str,
    /// Host (`:authority`).
    pub host: &'a str,
    /// The resource Envoy would name in `context_extensions`.
    pub resource: Option<&'a str>,
    /// The role Envoy would name in `context_extensions`.
    pub role: Option<&'a str>,
    /// The parent Envoy would name in `context_extensions`: where an undeclared resource sits.
    pub parent: Option<&'a str>,
}

/// The `Authorization` value the input stands for: a bare token gets the `Bearer` scheme,
/// anything with a space is taken as a whole header value.
pub fn authorization(token: &str) -> Option<Cow<'_, str>> {
    let t = token.trim();
    if t.is_empty() {
        None
    } else if t.contains(char::is_whitespace) {
        Some(Cow::Borrowed(t))
    } else {
        Some(Cow::Owned(format!("Bearer {t}")))
    }
}

/// What loading an SSO's remote keys before the decision gave.
#[derive(Debug, Clone, Serialize)]
pub struct KeyLoad {
    /// The SSO whose keys were fetched.
    pub sso: String,
    /// Where they were fetched from.
    pub source: String,
    /// How many usable keys the set holds, when the fetch succeeded.
    pub keys: Option<usize>,
    /// Why the fetch failed.
    pub error: Option<String>,
}

/// Fetch the remote keys of the SSO the token names, once, so the decision sees what a
/// running server would have loaded. `None` when the token names no SSO with remote keys.
pub async fn load_remote_keys(snap: &Snapshot, token: &str) -> Option<KeyLoad> {
    let remote = {
        let auth = authorization(token)?;
        let Credentials::Bearer(raw) = Credentials::from_header(&auth) else {
            return None;
        };
        let parsed = token::parse(raw).ok()?;
        let (_, sso) = snap.sso_for_issuer(parsed.issuer()?)?;
        (
            sso.name.to_string(),
            source_text(&sso.source),
            sso.remote.clone()?,
        )
    };
    let (sso, source, set) = remote;
    // Loaded as the tools load, without feeds: the one-shot fetch is this one.
    let result = match RemoteKeys::attached(&sso, &set, &ProviderOptions::default()) {
        Ok(keys) => keys.load_now().await,
        Err(e) => Err(e),
    };
    Some(KeyLoad {
        sso,
        source,
        keys: result.as_ref().ok().copied(),
        error: result.err().map(|e| e.to_string()),
    })
}

fn source_text(source: &KeySource) -> String {
    match source {
        KeySource::File(p) => p.display().to_string(),
        KeySource::Remote(Remote::Jwks(url)) => crate::core::text::redact_url(url.as_str()),
        KeySource::Remote(Remote::Discovery(issuer)) => format!("discovery from {issuer}"),
        KeySource::None => "none".into(),
    }
}

/// Explain the decision for `input` against `snap` at time `now` (seconds since the epoch).
///
/// `config` (the files the snapshot came from) adds `file:line:col` locations; `keys` is the
/// result of [`load_remote_keys`], if it was run.
pub fn explain(
    snap: &Snapshot,
    config: Option<&Config>,
    input: &Input<'_>,
    now: u64,
    keys: Option<KeyLoad>,
) -> Report {
    let auth = authorization(input.token);
    let credentials = match &auth {
        None => Credentials::Missing,
        Some(v) => Credentials::from_header(v),
    };
    let req = decision::Request {
        method: input.method,
        path: input.path,
        host: input.host,
        credentials,
        ext_resource: input.resource,
        ext_role: input.role,
        ext_enforcement: None,
        ext_parent: input.parent,
    };
    let mut watch = recorder::Watch::new(snap, config);
    let decision = pipeline::decide_observed(snap, &req, now, &mut watch);
    watch.report(input, credentials, decision, keys)
}

/// Configured issuers close to `iss`, and login-enabled SSOs that have it.
pub fn issuer_hints(snap: &Snapshot, iss: &str) -> Vec<IssuerHint> {
    let host = |s: &str| {
        url::Url::parse(s)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    };
    let without_scheme = |s: &str| {
        s.split_once("://")
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_else(|| s.to_owned())
    };
    let mut hints = Vec::new();
    for sso in &snap.ssos {
        let configured = &*sso.issuer;
        let closeness = if configured == iss {
            Some("has exactly this issuer".to_owned())
        } else if configured.trim_end_matches('/') == iss.trim_end_matches('/') {
            Some("differs only by a trailing slash (issuers are compared byte for byte)".to_owned())
        } else if configured.eq_ignore_ascii_case(iss) {
            Some("differs only in letter case (issuers are compared byte for byte)".to_owned())
        } else if without_scheme(configured) == without_scheme(iss) {
            Some("differs only in the scheme".to_owned())
        } else if host(configured).is_some() && host(configured) == host(iss) {
            Some(format!("has the same host but issuer {configured:?}"))
        } else {
            None
        };
        let Some(mut why) = closeness else { continue };
        if sso.login_enabled {
            why.push_str(
                ", but it has login_enabled: true: an SSO used for login verifies no token for external identities",
            );
        }
        hints.push(IssuerHint {
            sso: sso.name.to_string(),
            issuer: configured.to_owned(),
            why,
        });
    }
    hints
}

#[cfg(test)]
mod tests;
